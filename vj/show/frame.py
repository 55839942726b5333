"""The Show's contract: timestamped control events in, one immutable ShowFrame per tick out.

Everything downstream of the Show (generator engines, the compositor, outputs, the profiler)
reads these types and nothing else; nothing downstream keeps its own envelopes or re-derives
edges from counters. Fields may be added; renaming one is a contract change (say so in the
commit and in docs/architecture.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import torch

from vj.audio.features import SILENCE, AudioFeatures

DECKS = ("A", "B")  # deck names; a one-deck show has only "A"
BLEND_MODES = ("normal", "add", "multiply", "screen", "difference")
CHAINS = ("A", "B", "master")  # effect chains: one per deck, one on the master


class ControlEvent(NamedTuple):
    """One control input, stamped with the one clock (`vj.clock.now_ns`) when it happened.

    `name` is a registry parameter (`fx_amount`, `kaleido.segments`, a trigger such as `tap` or
    `next_keyframe`) or an action: `preset` (value: name or path), `cue.go` / `cue.next` /
    `cue.prev` (value ignored), `cue.goto` (value: cue index), `tempo` (value: BPM from a
    Link/MIDI-clock source), `effect` (value: effect name for the master chain's first slot).
    `value` is in the parameter's own units; a trigger's value is its press count increment (1).
    A session log is a list of these, in time order; replaying it reproduces the show.
    """

    t_ns: int
    source: str  # "midi", "osc", "key", "link", "clock", "tap", "preset", "cue", "session", ...
    name: str
    value: float | str = 1.0


class Bend(NamedTuple):
    """A network-bending transform of the feature maps entering one synthesis block."""

    block: int  # synthesis block index, 0 = the 4×4 block
    translate: tuple[float, float] = (0.0, 0.0)  # fraction of the map's width / height
    rotate: float = 0.0  # radians, counter-clockwise
    zoom: float = 1.0  # > 1 zooms in


class NoiseMasks(Sequence):
    """Per noise layer a spatial gain map [R, R] (or None), made from the tick's few shape
    coefficients when first read: `1 + Σ_s coef_s · shape_s`, floored at 0 when a coefficient
    dips below -1. The Show hands over S numbers; the R² work (up to 256² per layer group)
    runs where the maps are used, on the generator's thread, once per group. Read-only:
    a map, once made, is shared by every layer of its group and by every later read."""

    __slots__ = ("_coef", "_groups", "_of_layer", "_maps", "_floor")

    def __init__(
        self,
        coef: np.ndarray,  # [S] float32, this tick's (a private copy)
        groups: tuple[tuple[int, np.ndarray], ...],  # per group (R, shapes [S, R*R] float32)
        of_layer: tuple[int | None, ...],  # [num_noise_layers] group index, None = uniform
    ) -> None:
        self._coef = coef
        self._groups = groups
        self._of_layer = of_layer
        self._maps: list[torch.Tensor | None] = [None] * len(groups)
        self._floor = bool((coef < -1.0).any())  # shapes are 0..1: only then can it dip

    def __len__(self) -> int:
        return len(self._of_layer)

    def __getitem__(self, k: int) -> torch.Tensor | None:  # [R, R] float32
        g = self._of_layer[k]
        if g is None:
            return None
        m = self._maps[g]
        if m is None:
            r, shapes = self._groups[g]
            a = (self._coef @ shapes).reshape(r, r)  # [R, R] = Σ_s c_s shape_s
            a += 1.0
            if self._floor:
                np.maximum(a, 0.0, out=a)
            m = self._maps[g] = torch.from_numpy(a)
        return m


@dataclass(frozen=True)
class DeckControls:
    """What one deck's generator needs for one frame. A superset of the engine's old `Controls`
    (ws, noise_strength, keyframe_index), so engines read it unchanged."""

    deck: str  # "A" or "B"
    ws: torch.Tensor  # [1, num_ws, w_dim] fp32 W+ (truncation, directions, mixing applied)
    noise_strength: torch.Tensor  # [num_noise_layers] fp32 multipliers (1 = as trained)
    keyframe_index: int = 0
    # Per noise layer a spatial multiplier map [H, W] fp32 at that layer's resolution, or None
    # for "uniform" (a tuple, or NoiseMasks: made from shape coefficients when first read).
    # None as a whole = no masks (the fast path).
    noise_masks: Sequence[torch.Tensor | None] | None = None
    bends: tuple[Bend, ...] = ()  # empty = no bending (the fast path)
    # the checkpoint this deck plays ("default" = the embedded model): a preset switch can
    # change it, and the drivers render each frame on that model's engine
    model: str = "default"


@dataclass(frozen=True)
class CompositorControls:
    """What the compositor needs for one display frame, already smoothed and modulated.

    `params` holds every compositor and effect parameter by registry name: the built-in ones
    (`zoom`, `fx_amount`, `brightness`, `contrast`, `saturation`, `master`, `crossfade`, ...)
    and each effect's declared ones as `"{effect}.{param}"` (e.g. `kaleido.segments`).
    """

    params: Mapping[str, float]
    crossfader: float = 0.0  # 0 = deck A only, 1 = deck B only
    blend: str = "normal"  # one of BLEND_MODES
    chains: Mapping[str, tuple[str, ...]] = field(
        default_factory=lambda: {"A": (), "B": (), "master": ("default",)}
    )
    pulse: float = 0.0  # 0..1 onset/beat flash envelope (the Show's, not the compositor's)
    bands: tuple[float, ...] = ()  # newest band energies 0..1, low → high (effect uniforms)
    rms: float = 0.0  # newest normalised level 0..1
    beat_phase: float = 0.0  # 0..1 within the beat of the active tempo (0 without one)
    beat: float = 0.0  # beats since the start of the active tempo (effect `beat` uniform)
    bar_phase: float = 0.0  # 0..1 within the bar of the active tempo
    bpm: float = 0.0  # the active tempo, 0 = none
    # the latency probe's marker grey 0..1 (`vj.profile.probe.level` of the frame's onset
    # count / 255; Show.probe turns it on); 0 = not drawn
    probe: float = 0.0
    hud: bool = False


class DisplayBasis(NamedTuple):
    """What `vj.show.compositing.compositor_at` needs to run a frame's compositor parts (LFOs,
    pulse) on to a later display time without touching the Show."""

    zoom: float  # smoothed zoom before the LFO
    fx_amount: float  # smoothed fx_amount before the LFO
    lfo_zoom: float
    lfo_fx: float
    lfo_beats: float
    t_onset_ns: int | None  # newest onset's time, for the pulse decay


class TempoView(NamedTuple):
    """The tempo as the Show sees it at the frame's time (active source already chosen)."""

    bpm: float = 0.0  # 0 = unknown
    beat: float = 0.0  # beats since the start (fractional); beat phase = beat % 1
    bar_phase: float = 0.0  # 0..1 within the bar
    beats_per_bar: int = 4
    source: str = "none"


@dataclass(frozen=True)
class ShowFrame:
    """One tick of the Show: a pure function of (time, audio so far, events so far)."""

    index: int  # tick number
    t_ns: int  # the tick's time on the one clock (virtual offline)
    features: AudioFeatures = SILENCE  # newest analysis at t_ns
    tempo: TempoView = TempoView()
    decks: tuple[DeckControls, ...] = ()  # one per active deck, in DECKS order
    compositor: CompositorControls | None = None
    preset: str = "default"
    cue: int | None = None  # index in the cue list, None = no cue list
    # Stamps the profiler reads (ns on the one clock): capture, features, show_start, show_end.
    # Empty when the Show runs without a clock (offline): they are not part of the show.
    stamps: Mapping[str, int] = field(default_factory=dict)
    display: DisplayBasis | None = None  # for compositor_at between ticks (live display)
    morph: float = 1.0  # progress of the running preset morph, 1 = none running
