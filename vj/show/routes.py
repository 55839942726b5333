"""The routing matrix: sources (audio, tempo, LFOs, parameters) → curve/envelope/gate → targets.

One `RouteMatrix` per show, built once from frozen `Route`s; each tick the Show calls
`matrix.process(inputs, dt)` and reads the returned `RouteOutputs` (reused between calls:
copy what you keep). Pure and deterministic: the same inputs in the same order give the same
outputs. Counters in `AudioFeatures` (onsets per band, beats) become edges here, once.

Sources (strings, validated by `check_source`):
  levels    rms, centroid, flatness, onset_strength, bpm (0..1 over 60..200 BPM), beat_phase,
            bar_phase, band.low / band.mid / band.high (mean of that third of the bands),
            band.N (one band), lfo.SHAPE (sine/triangle/saw/ramp/square/random; the route's
            `period` in beats and `phase`), param.NAME (any registry parameter's value, so a
            MIDI knob is a source)
  triggers  onset, onset.low, onset.mid, onset.high (new onsets in that band), beat, bar
            (the Show's tempo crossing a beat / bar line), press.NAME (new presses of a
            trigger parameter such as next_keyframe)
Targets (strings, validated by `check_target`), per deck unless a compositor parameter:
  walk.speed, truncation, style (route's `direction` index and `layers`), noise (`layers`),
  noise_mask (`mask` shape and `layers`), bend.x / bend.y / bend.rotate / bend.zoom (`block`),
  keyframe.jump (trigger: `amount` = fraction of the way, `quantize` none/beat/bar),
  expression (trigger: the expression layer group steers to its next target),
  and any compositor/effect parameter by registry name (`zoom`, `kaleido.segments`, ...).

Per route: value → `range` to 0..1 → `curve` → attack/release envelope (levels: a one-pole
follower with separate rise/fall time constants; triggers: rise over `attack`, exponential
fall over `release`) → gate (the route passes only while the `gate` source is ≥ 0.5; the
envelope still releases after the gate closes) → + `offset` → × `amount`; routes onto one
target add up.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from vj.audio.features import SILENCE, AudioFeatures
from vj.control.lfo import SHAPES as LFO_SHAPES
from vj.control.lfo import _hash01
from vj.control.mapping import CURVES, apply_curve
from vj.hints import did_you_mean
from vj.show.frame import TempoView

LEVEL_SOURCES = (
    "rms", "centroid", "flatness", "onset_strength", "bpm", "beat_phase", "bar_phase",
    "band.low", "band.mid", "band.high",
)  # fmt: skip
TRIGGER_SOURCES = ("onset", "onset.low", "onset.mid", "onset.high", "beat", "bar")
SOURCE_PREFIXES = ("band.", "lfo.", "param.", "press.")
ENV_SNAP = 1e-9  # an envelope this close to its target lands on it (invisible: < 1e-9 of range)
DECK_TARGETS = (
    "walk.speed", "truncation", "style", "noise", "noise_mask",
    "bend.x", "bend.y", "bend.rotate", "bend.zoom", "keyframe.jump", "expression",
)  # fmt: skip
TRIGGER_TARGETS = ("keyframe.jump", "expression")
QUANTIZE = ("none", "beat", "bar")
MASK_SHAPES = ("circle", "outside", "top", "bottom", "left", "right", "ring")
BPM_RANGE = (60.0, 200.0)  # the bpm source maps this span to 0..1
_BENDS = {"bend.x": 0, "bend.y": 1, "bend.rotate": 2, "bend.zoom": 3}
MAX_LINES_PER_TICK = 4  # more beat lines than this in one tick: the position jumped


class RouteError(ValueError):
    """A route that cannot be built (unknown source/target, bad field); config.py adds file:line."""


@dataclass(frozen=True)
class Route:
    """One connection source → target. Time constants in seconds, `period` in beats."""

    source: str
    target: str
    amount: float = 1.0
    curve: str = "linear"  # one of vj.control.mapping.CURVES
    range: tuple[float, float] = (0.0, 1.0)  # source values mapped to 0..1 (clipped)
    attack: float = 0.0
    release: float = 0.0
    gate: str | None = None  # a source; the route passes only while it is ≥ 0.5
    offset: float = 0.0  # added after the envelope, before amount (-0.5 makes a 0..1 LFO ±)
    deck: str = "A"  # the deck a deck target belongs to (ignored for compositor params)
    layers: str | tuple[int, ...] = "all"  # style/noise/noise_mask: a group or W+/noise indices
    direction: int = 0  # style: index into the deck's direction set
    mask: str = "circle"  # noise_mask: one of MASK_SHAPES
    block: int = 0  # bend.*: synthesis block index (0 = the 4×4 block)
    quantize: str = "none"  # keyframe.jump: land on the next beat / bar
    period: float = 1.0  # lfo.*: beats per cycle
    phase: float = 0.0  # lfo.*: fraction of a cycle


def is_trigger_source(name: str) -> bool:
    return name in TRIGGER_SOURCES or name.startswith("press.")


def check_source(name: str, params: Mapping | None = None, n_bands: int = 64) -> None:
    """Raise RouteError (with a suggestion) unless `name` is a valid source."""
    if name in LEVEL_SOURCES or name in TRIGGER_SOURCES:
        return
    head, _, tail = name.partition(".")
    if head == "band" and tail.isdigit() and int(tail) < n_bands:
        return
    if head == "lfo" and tail in LFO_SHAPES:
        return
    if head in ("param", "press") and tail and (params is None or tail in params):
        return
    if head == "lfo":
        raise RouteError(f"unknown LFO shape {tail!r}; shapes: {', '.join(LFO_SHAPES)}")
    if head in ("param", "press"):
        raise RouteError(f"unknown parameter {tail!r}" + did_you_mean(tail, list(params or ())))
    allowed = [*LEVEL_SOURCES, *TRIGGER_SOURCES, "band.N", "lfo.SHAPE", "param.NAME", "press.NAME"]
    hint = did_you_mean(name, allowed)
    raise RouteError(f"unknown source {name!r}{hint}; sources: {', '.join(allowed)}")


def check_target(name: str, params: Mapping | None = None) -> None:
    """Raise RouteError unless `name` is a deck target or (when `params` is given) a parameter."""
    if name in DECK_TARGETS or params is None or name in params:
        return
    allowed = [*DECK_TARGETS, *sorted(params)]
    raise RouteError(f"unknown target {name!r}{did_you_mean(name, allowed)}")


def check_route(r: Route, params: Mapping | None = None, n_bands: int = 64) -> None:
    """Every field of one route, with the reason it is wrong (RouteError)."""
    check_source(r.source, params, n_bands)
    check_target(r.target, params)
    if r.gate is not None:
        check_source(r.gate, params, n_bands)
    if r.curve not in CURVES:
        hint = did_you_mean(r.curve, CURVES)
        raise RouteError(f"curve {r.curve!r} not one of {', '.join(CURVES)}{hint}")
    if r.mask not in MASK_SHAPES:
        raise RouteError(f"mask {r.mask!r} not one of {', '.join(MASK_SHAPES)}")
    if r.quantize not in QUANTIZE:
        raise RouteError(f"quantize {r.quantize!r} not one of {', '.join(QUANTIZE)}")
    for what, v in (("attack", r.attack), ("release", r.release)):
        if not (math.isfinite(v) and 0.0 <= v <= 60.0):
            raise RouteError(f"{what} {v} must be 0..60 seconds")
    if not (math.isfinite(r.period) and r.period > 0):
        raise RouteError(f"period {r.period} must be a positive number of beats")
    if r.range[0] == r.range[1]:
        raise RouteError(f"range {list(r.range)} is empty")
    if not all(math.isfinite(x) for x in (r.amount, r.offset, *r.range)):
        raise RouteError("amount, offset and range must be finite numbers")


class Inputs(NamedTuple):
    """What the matrix reads each tick: the newest analysis, the Show's tempo, parameter values."""

    features: AudioFeatures = SILENCE
    tempo: TempoView = TempoView()
    params: Mapping[str, float] = {}


class Jump(NamedTuple):
    fraction: float  # 0..1 of the way to the next keyframe (1 = land on it)
    quantize: str  # "none" | "beat" | "bar"


@dataclass
class DeckOutputs:
    """One deck's modulation for this tick (arrays reused between ticks; copy to keep).

    `style[i]` belongs to `style_slots[i]` = (direction, layers); `noise[i]` to
    `noise_slots[i]` = layers; `masks[i]` to `mask_slots[i]` = (shape, layers); `bends` maps a
    block index to [dx, dy, rotate, zoom] offsets (zoom 0 = none; the Bend is 2**zoom).
    """

    walk_speed: float
    truncation: float
    style: np.ndarray  # [n_style_slots] float64
    noise: np.ndarray  # [n_noise_slots]
    masks: np.ndarray  # [n_mask_slots]
    bends: dict[int, np.ndarray]  # block → [4]
    jumps: list[Jump]
    expression: int  # expression steps fired this tick
    style_slots: tuple[tuple[int, str | tuple[int, ...]], ...]
    noise_slots: tuple[str | tuple[int, ...], ...]
    mask_slots: tuple[tuple[str, str | tuple[int, ...]], ...]


@dataclass
class RouteOutputs:
    """Everything the routes drive this tick. `params`: additive offsets to compositor/effect
    parameters (the Show adds them to the smoothed base values and clamps to each spec)."""

    params: dict[str, float]
    decks: dict[str, DeckOutputs]


# -- per-route kinds (ints, so the tick loop compares small ints, not strings) -----------------
_K_WALK, _K_PSI, _K_STYLE, _K_NOISE, _K_MASK, _K_BEND, _K_JUMP, _K_EXPR, _K_PARAM = range(9)


class _Compiled:
    """One route's static plan plus its envelope state (the matrix owns it)."""

    __slots__ = (
        "route", "src", "src_trig", "gate", "kind", "slot", "lo", "inv_span", "curve",
        "attack", "release", "amount", "offset", "env", "rising", "deck", "get", "gate_get",
    )  # fmt: skip


class RouteMatrix:
    """Routes compiled once; `process(inputs, dt)` per tick → the same RouteOutputs object.

    `params` (name → anything) lists the parameters routes may read and write; None accepts
    any name (tests). `seed` makes the random LFO differ between shows. `decks`: deck names
    that get a DeckOutputs even with no route to them (routes add their own decks).
    """

    def __init__(
        self,
        routes: tuple[Route, ...] | list[Route],
        params: Mapping | None = None,
        seed: int = 0,
        decks: tuple[str, ...] = (),
    ) -> None:
        self.routes = tuple(routes)
        self.seed = int(seed)
        self._compiled: list[_Compiled] = []
        decks_: dict[str, dict] = {}
        for name in decks:  # these decks get outputs even with nothing routed to them
            decks_[name] = {"style": [], "noise": [], "masks": [], "bends": {}}
        decks = decks_
        param_out: dict[str, float] = {}
        for r in self.routes:
            check_route(r, params)
            c = _Compiled()
            c.route, c.src, c.src_trig, c.gate = r, r.source, is_trigger_source(r.source), r.gate
            c.lo = float(r.range[0])
            c.inv_span = 1.0 / (float(r.range[1]) - c.lo)
            c.curve, c.attack, c.release = r.curve, float(r.attack), float(r.release)
            c.amount, c.offset = float(r.amount), float(r.offset)
            c.env, c.rising, c.deck = 0.0, False, r.deck
            d = decks.setdefault(r.deck, {"style": [], "noise": [], "masks": [], "bends": {}})
            t = r.target
            if t == "walk.speed":
                c.kind, c.slot = _K_WALK, 0
            elif t == "truncation":
                c.kind, c.slot = _K_PSI, 0
            elif t == "style":
                c.kind, c.slot = _K_STYLE, _slot(d["style"], (r.direction, r.layers))
            elif t == "noise":
                c.kind, c.slot = _K_NOISE, _slot(d["noise"], r.layers)
            elif t == "noise_mask":
                c.kind, c.slot = _K_MASK, _slot(d["masks"], (r.mask, r.layers))
            elif t in _BENDS:
                c.kind, c.slot = _K_BEND, (r.block, _BENDS[t])
                d["bends"].setdefault(r.block, None)
            elif t == "keyframe.jump":
                c.kind, c.slot = _K_JUMP, 0
            elif t == "expression":
                c.kind, c.slot = _K_EXPR, 0
            else:
                c.kind, c.slot = _K_PARAM, t
                c.deck = ""
                param_out[t] = 0.0
            self._compiled.append(c)
        self.outputs = RouteOutputs(
            params=param_out,
            decks={
                name: DeckOutputs(
                    walk_speed=0.0,
                    truncation=0.0,
                    style=np.zeros(len(d["style"])),
                    noise=np.zeros(len(d["noise"])),
                    masks=np.zeros(len(d["masks"])),
                    bends={b: np.zeros(4) for b in d["bends"]},
                    jumps=[],
                    expression=0,
                    style_slots=tuple(d["style"]),
                    noise_slots=tuple(d["noise"]),
                    mask_slots=tuple(d["masks"]),
                )
                for name, d in decks.items()
            },
        )
        self._decks = tuple(self.outputs.decks.values())
        # per route its level readers, resolved once (`_level` is their reference twin)
        for c in self._compiled:
            c.get = None if c.src_trig else self._getter(c.src, c)
            c.gate_get = None
            if c.gate is not None and not is_trigger_source(c.gate):
                c.gate_get = self._getter(c.gate, None)
        names = [n for c in self._compiled for n in (c.src, c.gate) if n is not None]
        self._press_names = tuple(dict.fromkeys(n for n in names if n.startswith("press.")))
        self.reset()

    def reset(self) -> None:
        """Envelopes to zero; the next tick takes the current counters as already seen."""
        for c in self._compiled:
            c.env, c.rising = 0.0, False
        self._seen: tuple | None = None  # (onsets, low, mid, high, beat index, bar index, presses)
        self._presses: dict[str, float] = {}
        self._pending: dict[str, int] = {}
        self._bands: list[float] | None = None
        self._clear()

    def _clear(self) -> None:
        o = self.outputs
        for k in o.params:
            o.params[k] = 0.0
        for d in self._decks:
            d.walk_speed = d.truncation = 0.0
            d.style.fill(0.0)
            d.noise.fill(0.0)
            d.masks.fill(0.0)
            for b in d.bends.values():
                b.fill(0.0)
            d.jumps.clear()
            d.expression = 0

    # -- sources ----------------------------------------------------------------------------
    def _edges(self, inp: Inputs) -> dict[str, int]:
        """New trigger events since the last tick, per trigger source."""
        f, tp = inp.features, inp.tempo
        low, mid, high = f.band_onset_counts
        beat_i = math.floor(tp.beat + 1e-9) if tp.bpm > 0 else None
        bpb = max(int(tp.beats_per_bar), 1)
        bar_i = math.floor((tp.beat + 1e-9) / bpb) if tp.bpm > 0 else None
        now = (f.onset_count, low, mid, high, beat_i, bar_i)
        prev = self._seen if self._seen is not None else now
        self._seen = now

        def new(a, b) -> int:
            return 0 if a is None or b is None else max(int(b) - int(a), 0)

        def line(a, b) -> int:  # a jump of the beat position (new source, transport) is one
            n = new(a, b)
            return 1 if n > MAX_LINES_PER_TICK else n

        return {
            "onset": new(prev[0], now[0]),
            "onset.low": new(prev[1], now[1]),
            "onset.mid": new(prev[2], now[2]),
            "onset.high": new(prev[3], now[3]),
            "beat": line(prev[4], now[4]),
            "bar": line(prev[5], now[5]),
        }

    def _level(self, name: str, inp: Inputs, c: _Compiled | None) -> float:
        f, tp = inp.features, inp.tempo
        if name == "rms":
            return f.rms
        if name == "centroid":
            return f.centroid
        if name == "flatness":
            return f.flatness
        if name == "onset_strength":
            return f.onset_strength
        if name == "bpm":
            lo, hi = BPM_RANGE
            return 0.0 if tp.bpm <= 0 else (tp.bpm - lo) / (hi - lo)
        if name == "beat_phase":
            return tp.beat - math.floor(tp.beat)
        if name == "bar_phase":
            return tp.bar_phase
        head, _, tail = name.partition(".")
        if head == "band":
            if self._bands is None:  # once per tick: 8 Python floats beat ufunc calls
                self._bands = f.bands.tolist()
            b = self._bands
            n = len(b)
            if n == 0:
                return 0.0
            if tail.isdigit():
                i = int(tail)
                return b[i] if i < n else 0.0
            third = {"low": 0, "mid": 1, "high": 2}[tail]
            i0, i1 = (third * n) // 3, max(((third + 1) * n) // 3, (third * n) // 3 + 1)
            return sum(b[i0:i1]) / (i1 - i0)
        if head == "lfo":
            period, phase = (c.route.period, c.route.phase) if c is not None else (1.0, 0.0)
            return lfo_value(tail, tp.beat / period + phase, self.seed)
        if head == "param":
            return float(inp.params.get(tail, 0.0))
        return 0.0

    def _press_edges(self, inp: Inputs) -> None:
        for name in self._press_names:
            if name not in self._pending:
                v = float(inp.params.get(name[6:], 0.0))
                prev = self._presses.get(name, v)
                self._presses[name] = v
                self._pending[name] = max(int(v - prev), 0)

    def _getter(self, name: str, c: _Compiled | None):
        """`_level(name, inp, c)` as a function of inp alone, its name parsed once (the route
        loop's fast path; tests hold the two equal for every source kind)."""
        if name in ("rms", "centroid", "flatness", "onset_strength"):
            attr = operator.attrgetter(name)
            return lambda inp: attr(inp.features)
        if name == "bpm":
            lo, hi = BPM_RANGE
            return lambda inp: 0.0 if inp.tempo.bpm <= 0 else (inp.tempo.bpm - lo) / (hi - lo)
        if name == "beat_phase":
            return lambda inp: inp.tempo.beat - math.floor(inp.tempo.beat)
        if name == "bar_phase":
            return lambda inp: inp.tempo.bar_phase
        head, _, tail = name.partition(".")
        if head == "band":
            if tail.isdigit():
                i = int(tail)
                return lambda inp: self._band_index(inp, i)
            third = {"low": 0, "mid": 1, "high": 2}[tail]
            return lambda inp: self._band_third(inp, third)
        if head == "lfo":
            period, phase = (c.route.period, c.route.phase) if c is not None else (1.0, 0.0)
            seed = self.seed
            return lambda inp: lfo_value(tail, inp.tempo.beat / period + phase, seed)
        if head == "param":
            return lambda inp: float(inp.params.get(tail, 0.0))
        return lambda inp: 0.0

    def _band_list(self, inp: Inputs) -> list[float]:
        if self._bands is None:  # once per tick: 8 Python floats beat ufunc calls
            self._bands = inp.features.bands.tolist()
        return self._bands

    def _band_index(self, inp: Inputs, i: int) -> float:
        b = self._band_list(inp)
        return b[i] if i < len(b) else 0.0

    def _band_third(self, inp: Inputs, third: int) -> float:
        b = self._band_list(inp)
        n = len(b)
        if n == 0:
            return 0.0
        i0, i1 = (third * n) // 3, max(((third + 1) * n) // 3, (third * n) // 3 + 1)
        return sum(b[i0:i1]) / (i1 - i0)

    # -- the tick ---------------------------------------------------------------------------
    def process(self, inp: Inputs, dt: float) -> RouteOutputs:
        """Advance every route by dt seconds (≥ 0) and return the (reused) outputs."""
        dt = max(float(dt), 0.0)
        self._clear()
        self._pending = self._edges(inp)
        self._press_edges(inp)
        self._bands = None
        decks = self.outputs.decks
        for c in self._compiled:
            r = c.route
            gate_open = True
            if c.gate is not None:
                if c.gate_get is None:  # a trigger gate
                    gate_open = self._pending.get(c.gate, 0) > 0
                else:
                    gate_open = c.gate_get(inp) >= 0.5
            if c.src_trig:
                n = self._pending.get(c.src, 0) if gate_open else 0
                y = self._trigger_env(c, n, dt)
            else:
                x = (c.get(inp) - c.lo) * c.inv_span
                x = apply_curve(c.curve, x) if math.isfinite(x) else 0.0
                n = 0
                if c.kind in (_K_JUMP, _K_EXPR):  # a level into a trigger target: rising edge
                    up = gate_open and x >= 0.5
                    n = 1 if up and not c.rising else 0
                    c.rising = up
                y = self._level_env(c, x if gate_open else 0.0, dt)
            v = (y + c.offset) * c.amount
            if c.kind == _K_PARAM:
                self.outputs.params[c.slot] += v
                continue
            d = decks[c.deck]
            if c.kind == _K_STYLE:
                d.style[c.slot] += v
            elif c.kind == _K_NOISE:
                d.noise[c.slot] += v
            elif c.kind == _K_MASK:
                d.masks[c.slot] += v
            elif c.kind == _K_BEND:
                d.bends[c.slot[0]][c.slot[1]] += v
            elif c.kind == _K_WALK:
                d.walk_speed += v
            elif c.kind == _K_PSI:
                d.truncation += v
            elif c.kind == _K_JUMP:
                for _ in range(min(n, 8)):  # a burst is capped: 8 jumps in one tick is plenty
                    d.jumps.append(Jump(min(max(c.amount, 0.0), 1.0), r.quantize))
            elif c.kind == _K_EXPR:
                d.expression += min(n, 8)
        return self.outputs

    @staticmethod
    def _level_env(c: _Compiled, x: float, dt: float) -> float:
        """One-pole follower: rises with time constant `attack`, falls with `release`."""
        tau = c.attack if x > c.env else c.release
        if tau <= 0.0:
            c.env = x
        else:
            c.env += (x - c.env) * (1.0 - math.exp(-dt / tau))
            if abs(c.env - x) < ENV_SNAP:  # landed: no endless decay into subnormal floats
                c.env = x
        return c.env

    @staticmethod
    def _trigger_env(c: _Compiled, n: int, dt: float) -> float:
        """AR envelope: a trigger (re)starts the rise from where it is to 1 over `attack`, then
        it falls with time constant `release` (0 = a one-tick pulse). Curve shapes the output."""
        if n > 0 and c.attack <= 0.0:
            c.env, c.rising = 1.0, False  # full on the tick it fired; decays from the next
        elif n > 0 or c.rising:
            c.rising = True
            c.env = min(c.env + dt / c.attack, 1.0)
            if c.env >= 1.0 - 1e-9:  # (tolerance: n steps of 1/n add up to 0.999…)
                c.env, c.rising = 1.0, False
        elif c.release <= 0.0:
            c.env = 0.0
        else:
            c.env *= math.exp(-dt / c.release)
            if c.env < ENV_SNAP:  # decayed: exactly 0, so idle targets cost nothing
                c.env = 0.0
        return apply_curve(c.curve, c.env)


def lfo_value(shape: str, cycles: float, seed: int = 0) -> float:
    """A beat-synced LFO in [0, 1] at `cycles` (beat position / period + phase); sine starts at
    0 on the cycle's first beat, square is 1 in the first half, random holds per cycle."""
    n = math.floor(cycles)
    x = cycles - n
    if shape == "sine":
        return 0.5 - 0.5 * math.cos(2.0 * math.pi * x)
    if shape == "triangle":
        return 2.0 * x if x < 0.5 else 2.0 - 2.0 * x
    if shape == "saw":
        return x
    if shape == "ramp":
        return 1.0 - x
    if shape == "square":
        return 1.0 if x < 0.5 else 0.0
    return _hash01(n, seed)


def _slot(slots: list, key) -> int:
    """Index of `key` in `slots` (routes onto the same target share one accumulator)."""
    key = (key[0], _freeze(key[1])) if isinstance(key, tuple) and len(key) == 2 else _freeze(key)
    if key not in slots:
        slots.append(key)
    return slots.index(key)


def _freeze(layers):
    return tuple(layers) if isinstance(layers, list) else layers
