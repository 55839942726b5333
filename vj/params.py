"""The parameter registry: every controllable value's name, range and default (one control plane).

Controllers (MIDI, OSC, keys, presets, tempo sources) only write here; the generator and
render threads only read here. Values are plain floats held in a dict whose entries are
replaced atomically (GIL), so readers never block writers.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from vj.hints import did_you_mean

KINDS = ("float", "int", "bool", "trigger")


@dataclass(frozen=True, slots=True)
class ParamSpec:
    name: str
    default: float
    min: float = 0.0
    max: float = 1.0
    kind: str = "float"  # one of KINDS; a trigger counts presses (value = press count)
    smoothing: float = 0.0  # seconds; readers that smooth use this time constant
    doc: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"param {self.name!r}: kind {self.kind!r} not in {KINDS}")
        if self.kind != "trigger" and not (self.min <= self.default <= self.max):
            raise ValueError(
                f"param {self.name!r}: default {self.default} outside [{self.min}, {self.max}]"
            )

    def clamp(self, value: float) -> float:
        if self.kind == "trigger":
            return float(value)
        v = min(max(float(value), self.min), self.max)
        if self.kind == "int":
            v = float(round(v))
        elif self.kind == "bool":
            v = 1.0 if v >= 0.5 else 0.0
        return v

    def to_normalized(self, value: float) -> float:
        span = self.max - self.min
        return 0.0 if span == 0 else (value - self.min) / span

    def from_normalized(self, x: float) -> float:
        return self.clamp(self.min + min(max(x, 0.0), 1.0) * (self.max - self.min))


Listener = Callable[[str, float, str], None]  # (name, new value, source)


class UnknownParam(KeyError):
    def __init__(self, name: str, known: Iterable[str]) -> None:
        hint = did_you_mean(name, list(known))
        super().__init__(f"unknown parameter {name!r}{hint}")
        self.name = name

    def __str__(self) -> str:
        return str(self.args[0])


class ParamRegistry:
    """Name → spec and current value. Thread-safe for many writers and readers."""

    def __init__(self, specs: Iterable[ParamSpec] = ()) -> None:
        self._specs: dict[str, ParamSpec] = {}
        self._values: dict[str, float] = {}
        self._listeners: list[Listener] = []
        self._version = 0
        self._define_lock = threading.Lock()
        for s in specs:
            self.define(s)

    # -- schema -------------------------------------------------------------------------
    def define(self, spec: ParamSpec) -> None:
        with self._define_lock:
            if spec.name in self._specs:
                raise ValueError(f"param {spec.name!r} defined twice")
            self._specs[spec.name] = spec
            self._values[spec.name] = 0.0 if spec.kind == "trigger" else spec.default

    def spec(self, name: str) -> ParamSpec:
        try:
            return self._specs[name]
        except KeyError:
            raise UnknownParam(name, self._specs) from None

    def names(self) -> list[str]:
        return list(self._specs)

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    # -- values -------------------------------------------------------------------------
    def get(self, name: str) -> float:
        try:
            return self._values[name]
        except KeyError:
            raise UnknownParam(name, self._specs) from None

    def normalized(self, name: str) -> float:
        return self.spec(name).to_normalized(self.get(name))

    def set(self, name: str, value: float, source: str = "") -> float:
        """Set a value (clamped to the spec). Returns the stored value. NaN/inf are ignored."""
        spec = self.spec(name)
        value = float(value)
        if not math.isfinite(value):
            return self._values[name]
        if spec.kind == "trigger":
            return self.trigger(name, source)
        v = spec.clamp(value)
        if self._values[name] != v:
            self._values[name] = v
            self._version += 1
            self._notify(name, v, source)
        return v

    def set_normalized(self, name: str, x: float, source: str = "") -> float:
        spec = self.spec(name)
        if not math.isfinite(x):
            return self._values[name]
        if spec.kind == "trigger":
            return self.trigger(name, source) if x >= 0.5 else self._values[name]
        return self.set(name, spec.from_normalized(x), source)

    def trigger(self, name: str, source: str = "") -> float:
        """Count one press of a trigger parameter; readers compare counts to see new presses."""
        spec = self.spec(name)
        if spec.kind != "trigger":
            raise TypeError(f"param {name!r} is a {spec.kind}, not a trigger")
        v = self._values[name] + 1.0
        self._values[name] = v
        self._version += 1
        self._notify(name, v, source)
        return v

    def reset(self, name: str | None = None, source: str = "reset") -> None:
        for n in [name] if name else self.names():
            spec = self._specs[n]
            if spec.kind != "trigger":
                self.set(n, spec.default, source)

    def snapshot(self) -> dict[str, float]:
        """A copy of all current values (consistent enough: each entry is atomic)."""
        return dict(self._values)

    @property
    def version(self) -> int:
        """Changes so far; lets a reader skip work when nothing moved."""
        return self._version

    # -- feedback -----------------------------------------------------------------------
    def add_listener(self, fn: Listener) -> None:
        """`fn(name, value, source)` is called in the writer's thread after each change."""
        self._listeners = [*self._listeners, fn]

    def remove_listener(self, fn: Listener) -> None:
        self._listeners = [f for f in self._listeners if f != fn]  # bound methods compare equal

    def _notify(self, name: str, value: float, source: str) -> None:
        for fn in self._listeners:
            try:
                fn(name, value, source)
            except Exception as exc:  # a broken listener must not break the writer
                import sys

                print(f"vj: param listener {fn!r} failed on {name}: {exc}", file=sys.stderr)


def _p(
    name: str,
    default: float,
    lo: float = 0.0,
    hi: float = 1.0,
    kind: str = "float",
    smoothing: float = 0.0,
    doc: str = "",
) -> ParamSpec:
    return ParamSpec(name, default, lo, hi, kind, smoothing, doc)


# The built-in parameters. Presets set values, controllers map onto these names, the
# modulation layer and compositor read them. Add new ones here, nowhere else.
DEFAULT_PARAMS: tuple[ParamSpec, ...] = (
    # modulation (vj/react)
    _p("intensity", 1.0, 0.0, 2.0, smoothing=0.05, doc="scales every audio-driven movement"),
    _p("onset_jump", 0.5, 0.0, 1.0, doc="fraction of the way to a new keyframe per onset"),
    _p("beat_jump", 0.0, 0.0, 1.0, doc="fraction of the way to a new keyframe per beat (0 = off)"),
    _p("drift", 0.1, 0.0, 1.0, smoothing=0.2, doc="slow wander of the latent between onsets"),
    _p("band_push", 1.0, 0.0, 2.0, smoothing=0.05, doc="band energies → style offsets"),
    _p("noise_push", 1.0, 0.0, 2.0, smoothing=0.05, doc="band energies → noise strength"),
    _p("truncation", 0.7, 0.0, 1.5, smoothing=0.1, doc="truncation psi toward w_avg"),
    _p("release", 0.25, 0.01, 2.0, doc="seconds for audio pushes to decay"),
    _p("quantize", 1.0, kind="bool", doc="land next_keyframe presses on the next beat"),
    # beat-locked LFOs (the Show, vj/show/show.py), driven by the active tempo source
    _p("lfo_beats", 4.0, 0.25, 16.0, doc="LFO cycle length in beats"),
    _p("lfo_zoom", 0.0, 0.0, 1.0, doc="LFO depth on zoom"),
    _p("lfo_fx", 0.0, 0.0, 1.0, doc="LFO depth on the effect amount"),
    # compositor (vj/render)
    _p("crossfade", 1.0, 0.0, 1.0, doc="blend consecutive generator frames (0 = hard cut)"),
    _p("fx_amount", 0.35, 0.0, 1.0, smoothing=0.05, doc="shader effect mix"),
    _p("fx_pulse", 0.5, 0.0, 1.0, doc="how much onsets flash the effect"),
    _p("zoom", 1.0, 0.5, 2.0, smoothing=0.1, doc="zoom into the generated image"),
    _p("brightness", 0.0, -1.0, 1.0, smoothing=0.05),
    _p("contrast", 1.0, 0.0, 2.0, smoothing=0.05),
    _p("saturation", 1.0, 0.0, 2.0, smoothing=0.05),
    _p("master", 1.0, 0.0, 1.0, smoothing=0.05, doc="master fader (0 = black)"),
    _p("hud", 1.0, kind="bool", doc="show the heads-up display"),
    # decks and the show (vj/show): two decks blended in the compositor, preset morphs
    _p("crossfader", 0.0, 0.0, 1.0, smoothing=0.05, doc="deck A (0) to deck B (1)"),
    _p("blend_mode", 0.0, 0.0, 4.0, kind="int", doc="deck blend: normal add multiply screen diff"),
    _p("style_mix", 0.0, 0.0, 32.0, kind="int", doc="deck B takes layers below this from A"),
    _p("morph_beats", 4.0, 0.0, 64.0, doc="preset switches morph over this many beats (0 = cut)"),
    # triggers
    _p("next_keyframe", 0.0, kind="trigger", doc="jump to a new keyframe now"),
    _p("tap", 0.0, kind="trigger", doc="tap tempo"),
    _p("downbeat", 0.0, kind="trigger", doc="the beat nearest now is beat 1 of the bar (tracker)"),
    _p("fx_next", 0.0, kind="trigger", doc="switch to the next effect shader"),
    _p("cue_go", 0.0, kind="trigger", doc="fire the selected cue"),
    _p("cue_next", 0.0, kind="trigger", doc="fire the next cue"),
    _p("cue_prev", 0.0, kind="trigger", doc="fire the previous cue"),
)


def default_registry(effects: bool = True) -> ParamRegistry:
    """The built-in parameters plus, with `effects`, every `effect.param` declared in
    shaders/effects/ (bad declarations are skipped here; `vj shaders` reports them)."""
    reg = ParamRegistry(DEFAULT_PARAMS)
    if effects:
        from vj.render.effects import register_effect_params  # no GL: reads the files only

        register_effect_params(reg)
    return reg
