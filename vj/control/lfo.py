"""Tempo-synced LFOs and a beat quantiser, both driven by the active TempoState's beat position."""

from __future__ import annotations

import math
import threading

from vj.tempo import TempoState

SHAPES = ("sine", "triangle", "saw", "ramp", "square", "random")


def beat_position(state: TempoState) -> float:
    """Beats since the source's origin, continuous: whole beats + phase."""
    return state.beat_count + state.beat_phase


def _hash01(n: int, seed: int) -> float:
    """A fixed pseudo-random value in [0, 1) per cycle index (sample-and-hold, no RNG state)."""
    x = (n * 0x9E3779B1 + seed * 0x85EBCA77) & 0xFFFFFFFF
    x ^= x >> 16
    x = (x * 0x7FEB352D) & 0xFFFFFFFF
    x ^= x >> 15
    x = (x * 0x846CA68B) & 0xFFFFFFFF
    x ^= x >> 16
    return x / 2**32


class Lfo:
    """A low-frequency oscillator locked to the beat: one cycle every `rate_beats` beats.

    `value(state)` is in [0, 1] (0.5 centre for sine/triangle); `phase` shifts by a fraction
    of a cycle. With no tempo (state None) it holds `rest`. Stateless: any thread, any time.
    """

    def __init__(
        self,
        shape: str = "sine",
        rate_beats: float = 1.0,
        phase: float = 0.0,
        rest: float = 0.5,
        seed: int = 0,
    ) -> None:
        if shape not in SHAPES:
            raise ValueError(f"LFO shape {shape!r} not in {SHAPES}")
        if not (math.isfinite(rate_beats) and rate_beats > 0):
            raise ValueError(f"LFO rate_beats {rate_beats!r} must be a positive number of beats")
        self.shape, self.rate_beats, self.phase, self.rest, self.seed = (
            shape,
            float(rate_beats),
            float(phase),
            float(rest),
            int(seed),
        )

    def value(self, state: TempoState | None) -> float:
        if state is None:
            return self.rest
        cycles = beat_position(state) / self.rate_beats + self.phase
        n = math.floor(cycles)
        x = cycles - n  # [0, 1) within the cycle
        s = self.shape
        if s == "sine":
            return 0.5 - 0.5 * math.cos(2.0 * math.pi * x)  # starts at 0 on the beat
        if s == "triangle":
            return 1.0 - abs(2.0 * x - 1.0) if x >= 0.5 else 2.0 * x
        if s == "saw":
            return x
        if s == "ramp":
            return 1.0 - x
        if s == "square":
            return 1.0 if x < 0.5 else 0.0
        return _hash01(n, self.seed)


class BeatQuantizer:
    """Delays triggers to the next beat / bar / n-beat boundary of the active tempo.

    `arm(name, state)` queues a trigger; `poll(state)` returns the names whose boundary has
    been reached. A press up to `grace_beats` after a boundary fires at once (human lateness).
    With no tempo, triggers fire immediately. If the beat position jumps backwards (the tempo
    source changed, transport restarted), pending triggers retarget the next boundary.
    """

    def __init__(self, division: str | float = "beat", grace_beats: float = 0.125) -> None:
        if division not in ("beat", "bar") and not (
            isinstance(division, int | float) and division > 0
        ):
            raise ValueError(f"quantise division {division!r}: 'beat', 'bar' or beats > 0")
        self.division = division
        self.grace_beats = float(grace_beats)
        self._pending: list[tuple[str, float]] = []  # (name, target beat position)
        self._fire_now: list[str] = []
        self._lock = threading.Lock()  # arm (controller threads) vs poll (render thread)

    def _div(self, state: TempoState) -> float:
        if self.division == "beat":
            return 1.0
        if self.division == "bar":
            return float(state.beats_per_bar)
        return float(self.division)

    def _boundaries(self, state: TempoState) -> tuple[float, float]:
        """(previous boundary, next boundary) in beat positions; bars follow bar_position."""
        pos = beat_position(state)
        div = self._div(state)
        if self.division == "bar":
            prev = pos - state.bar_position
        else:
            prev = math.floor(pos / div + 1e-9) * div
        return prev, prev + div

    def arm(self, name: str, state: TempoState | None) -> None:
        with self._lock:
            if state is None:
                self._fire_now.append(name)
                return
            prev, nxt = self._boundaries(state)
            if beat_position(state) - prev <= self.grace_beats:
                self._fire_now.append(name)
            else:
                self._pending.append((name, nxt))

    @property
    def pending(self) -> list[str]:
        with self._lock:
            return [n for n, _ in self._pending] + list(self._fire_now)

    def poll(self, state: TempoState | None) -> list[str]:
        with self._lock:
            return self._poll(state)

    def _poll(self, state: TempoState | None) -> list[str]:
        fired, self._fire_now = self._fire_now, []
        if not self._pending:
            return fired
        if state is None:  # tempo lost: nothing to wait for
            fired += [n for n, _ in self._pending]
            self._pending = []
            return fired
        pos = beat_position(state)
        div = self._div(state)
        keep: list[tuple[str, float]] = []
        for name, target in self._pending:
            if pos >= target - 1e-9:
                fired.append(name)
            elif target - pos > div + 1e-6:  # position jumped backwards: retarget
                keep.append((name, self._boundaries(state)[1]))
            else:
                keep.append((name, target))
        self._pending = keep
        return fired
