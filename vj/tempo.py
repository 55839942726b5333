"""Tempo sources (beat tracker, tap, MIDI clock, Ableton Link) and the arbiter that picks one.

Every source answers `state(t_ns)` with a TempoState, or None while it has nothing to say.
The arbiter asks them in priority order; the first active one drives BPM and phase.
"""

from __future__ import annotations

import math
from typing import NamedTuple, Protocol

import numpy as np

from vj.clock import now_ns


class TempoState(NamedTuple):
    """Immutable; a NamedTuple because a source builds one per audio block (cheaper than a
    frozen dataclass by several µs)."""

    bpm: float
    beat_phase: float  # 0..1 within the current beat
    bar_position: float  # 0..beats_per_bar
    beats_per_bar: int = 4
    beat_count: int = 0  # whole beats since the source started


class TempoSource(Protocol):
    name: str

    def state(self, t_ns: int) -> TempoState | None:
        """Tempo and phase at clock time t_ns, or None when the source is not active."""


class TempoArbiter:
    """Picks the first active source in priority order (highest first)."""

    def __init__(self, sources: list[TempoSource] | None = None) -> None:
        self._sources: list[TempoSource] = list(sources or [])

    def add(self, source: TempoSource, priority: int | None = None) -> None:
        srcs = list(self._sources)
        srcs.insert(len(srcs) if priority is None else priority, source)
        self._sources = srcs  # replace, never mutate: readers iterate a stable list

    @property
    def sources(self) -> tuple[TempoSource, ...]:
        return tuple(self._sources)

    @property
    def names(self) -> list[str]:
        return [s.name for s in self._sources]

    def current(self, t_ns: int | None = None) -> tuple[TempoState | None, str]:
        t = now_ns() if t_ns is None else t_ns
        for s in self._sources:
            st = s.state(t)
            if st is not None:
                return st, s.name
        return None, "none"


class TapTempo:
    """Tap tempo: the median interval of the last taps sets BPM; the last tap is beat one.

    Active for `timeout_beats` beats after the last tap when `hold` is False, forever when True.
    """

    name = "tap"

    def __init__(
        self,
        max_taps: int = 8,
        reset_after_s: float = 2.0,
        beats_per_bar: int = 4,
        hold: bool = True,
    ) -> None:
        self._taps = np.zeros(max_taps, np.int64)  # ring of tap times (ns)
        self._n = 0
        self._reset_ns = int(reset_after_s * 1e9)
        self._beats_per_bar = beats_per_bar
        self._hold = hold
        self._bpm = 0.0
        self._anchor_ns = 0  # time of a beat-one
        self._bar_taps = 0  # taps in the current run, to place beat one at the first tap

    def tap(self, t_ns: int | None = None) -> None:
        t = now_ns() if t_ns is None else t_ns
        cap = len(self._taps)
        if self._n and t <= self._taps[(self._n - 1) % cap]:
            return  # the same tap twice (two controllers, one stamp) or out of order: one tap
        if self._n and t - self._taps[(self._n - 1) % cap] > self._reset_ns:
            self._n = 0  # a long pause starts a new tap run
        if self._n == 0:
            self._anchor_ns = t
        self._taps[self._n % cap] = t
        self._n += 1
        k = min(self._n, cap)
        if k >= 2:
            times = np.sort(self._taps[:k]) if self._n > cap else self._taps[:k]
            self._bpm = 60e9 / float(np.median(np.diff(times)))
            # keep the first tap of the run as beat one, re-phased onto the latest tap
            beats = round((t - self._anchor_ns) * self._bpm / 60e9)
            self._anchor_ns = t - int(beats * 60e9 / self._bpm)

    def downbeat(self, t_ns: int) -> bool:
        """Mark the tapped beat nearest t_ns as beat 1, the tapped tempo and grid kept; False
        before two taps."""
        if self._bpm <= 0:
            return False
        period = 60e9 / self._bpm
        self._anchor_ns += int(round((t_ns - self._anchor_ns) / period) * period)
        return True

    def clear(self) -> None:
        self._n = 0
        self._bpm = 0.0

    def state(self, t_ns: int) -> TempoState | None:
        if self._bpm <= 0:
            return None
        # Python ints and floats: numpy scalars cost ~10x as much per call here
        anchor = int(self._anchor_ns)
        beats = (t_ns - anchor) * self._bpm / 60e9
        if not self._hold:
            last = int(self._taps[(self._n - 1) % len(self._taps)])
            if beats - (last - anchor) * self._bpm / 60e9 > 16:
                return None
        whole = math.floor(beats)
        return TempoState(
            self._bpm, beats - whole, (beats % self._beats_per_bar), self._beats_per_bar, whole
        )


class EventTempo:
    """A tempo source fed by events (Link, MIDI clock): BPM and a beat position at a time.

    `set(t_ns, bpm, beat)` anchors it (beat = the source's beat position at t_ns; None keeps
    the phase running at the new tempo); `stop()` makes it inactive. Replayed from an event
    log it answers exactly as it did live.
    """

    def __init__(self, name: str, beats_per_bar: int = 4) -> None:
        self.name = name
        self._bpm = 0.0
        self._t0 = 0
        self._beat0 = 0.0
        self._beats_per_bar = beats_per_bar

    def set(self, t_ns: int, bpm: float | None = None, beat: float | None = None) -> None:
        if beat is None:
            beat = self.position(t_ns) if self._bpm > 0 else 0.0
        if bpm is not None:
            self._bpm = float(bpm) if bpm > 0 else 0.0
        self._t0, self._beat0 = int(t_ns), float(beat)

    def stop(self) -> None:
        self._bpm = 0.0

    def position(self, t_ns: int) -> float:
        return self._beat0 + (t_ns - self._t0) * self._bpm / 60e9

    def state(self, t_ns: int) -> TempoState | None:
        if self._bpm <= 0:
            return None
        pos = self.position(t_ns)
        whole = math.floor(pos)
        bpb = self._beats_per_bar
        return TempoState(self._bpm, pos - whole, pos % bpb, bpb, whole)


class FeatureTempo:
    """The audio beat tracker as the Show sees it: the newest AudioFeatures' tempo, extrapolated.

    `update(features)` is called with each analysed block in time order; `state(t)` runs the
    phase on from that block's capture time at its BPM, and the bar position on from the
    block's `bar_position` (the analysis's downbeat, not the beat count mod 4).

    `downbeat(t)` is the player's "this is the one": the tracker's beat nearest t starts a bar
    and the bar counts from it, the tracker's tempo and grid kept. The audio alone places beat
    1 against 3 mostly from where the music started (vj/audio/bars.py), which a live input
    joining a song mid-way does not have. The bar is carried in time, not in the tracker's
    beat count: each new beat's place is the whole number of periods since the last one (so a
    beat the tracker skips or adds while it re-locks does not shift the bar), which re-anchors
    at every one. It holds until the tracker goes quiet (a pause: the next music may start
    anywhere) or the next press.
    """

    name = "tracker"

    def __init__(self) -> None:
        self._bpm = 0.0
        self._t0 = 0
        self._beat0 = 0.0
        self._bar0 = 0.0
        self._bpb = 4
        self._count = 0
        self._one_ns: int | None = None  # time of the latest beat 1 since a press
        self._in_bar = 0  # the newest beat's place in the bar, 0-based (after a press)

    def update(self, f) -> None:
        # the tracker counts beats it fired; its phase runs from the last one (count - 1)
        self._bpm = float(f.bpm) if f.bpm > 0 and f.tempo_source == "tracker" else 0.0
        self._t0 = int(f.t_capture_ns)
        self._beat0 = float(f.beat_count) - 1.0 + float(f.beat_phase)
        self._bar0 = float(f.bar_position)
        if self._bpm <= 0:
            self._one_ns = None
        elif self._one_ns is not None and f.beat_count != self._count:
            period = 60e9 / self._bpm
            t_beat = self._t0 - float(f.beat_phase) * period  # the beat this block holds
            self._in_bar = round((t_beat - self._one_ns) / period) % self._bpb
            if self._in_bar == 0:
                self._one_ns = int(t_beat)
        self._count = f.beat_count

    def downbeat(self, t_ns: int) -> bool:
        """Mark the beat nearest t_ns as beat 1 (a press up to half a beat late or early);
        False while the tracker has no tempo."""
        if self._bpm <= 0:
            return False
        period = 60e9 / self._bpm
        last = math.floor(self._beat0)  # the newest beat's number
        k = round(self._beat0 + (t_ns - self._t0) / period)  # the beat nearest the press
        self._one_ns = int(self._t0 + (k - self._beat0) * period)
        self._in_bar = (last - k) % self._bpb
        return True

    def state(self, t_ns: int) -> TempoState | None:
        if self._bpm <= 0:
            return None
        beats = max(0, t_ns - self._t0) * self._bpm / 60e9
        pos = self._beat0 + beats
        whole = math.floor(pos)
        if self._one_ns is None:
            bar = (self._bar0 + beats) % self._bpb
        else:  # from the newest beat's place in the pressed bar
            bar = (self._in_bar + pos - math.floor(self._beat0)) % self._bpb
        return TempoState(self._bpm, pos - whole, bar, self._bpb, whole)
