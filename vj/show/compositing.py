"""A frame's compositor side: beat LFOs on zoom and fx, the onset pulse, blend mode and
effect chains — built by the Show each tick and re-evaluated at display time between ticks."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from vj.audio.features import AudioFeatures
from vj.show.frame import BLEND_MODES, CompositorControls, DisplayBasis, ShowFrame, TempoView

# Beat-locked LFOs on the compositor (once vj/react/beat_sync.py, on the render thread).
LFO_ZOOM_DEPTH = 0.15  # ±15 % zoom at lfo_zoom = 1
LFO_FX_DEPTH = 0.5  # ±0.5 fx_amount at lfo_fx = 1
PULSE_DECAY_S = 0.18  # the onset flash's decay (was the compositor's own envelope)


def lfo_value(tempo: TempoView, lfo_beats: float) -> float:
    """The beat-locked sine LFO in [-1, 1]: -1 on the cycle's first beat; 0 with no tempo."""
    if tempo.bpm <= 0.0:
        return 0.0
    cycles = tempo.beat / max(lfo_beats, 0.25)
    return -math.cos(2.0 * math.pi * (cycles - math.floor(cycles)))


def lfo_params(zoom: float, fx: float, lfo_zoom: float, lfo_fx: float, v: float):
    """(zoom, fx_amount) with the LFO at value v applied (BeatSync's formula)."""
    if lfo_zoom > 0.0:
        zoom = min(max(zoom * (1.0 + LFO_ZOOM_DEPTH * lfo_zoom * v), 0.5), 2.0)
    if lfo_fx > 0.0:
        fx = min(max(fx + LFO_FX_DEPTH * lfo_fx * v, 0.0), 1.0)
    return zoom, fx


def compositor_controls(
    p: dict[str, float],
    basis: DisplayBasis,
    tempo: TempoView,
    t: int,
    chains: Mapping[str, tuple[str, ...]],
    f: AudioFeatures,
    probe: float = 0.0,
) -> CompositorControls:
    """A frame's CompositorControls at time t: the smoothed parameters `p` (zoom and fx_amount
    rewritten by the beat LFO), the onset pulse, blend mode, chains, bands and tempo."""
    v = lfo_value(tempo, basis.lfo_beats) if (basis.lfo_zoom > 0 or basis.lfo_fx > 0) else 0.0
    p["zoom"], p["fx_amount"] = lfo_params(
        basis.zoom, basis.fx_amount, basis.lfo_zoom, basis.lfo_fx, v
    )
    pulse = 0.0
    if basis.t_onset_ns is not None:
        pulse = math.exp(-(t - basis.t_onset_ns) / (PULSE_DECAY_S * 1e9))
    blend = BLEND_MODES[min(max(int(p.get("blend_mode", 0)), 0), len(BLEND_MODES) - 1)]
    return CompositorControls(
        params=p,
        crossfader=p.get("crossfader", 0.0),
        blend=blend,
        chains=chains,
        pulse=pulse,
        hud=p.get("hud", 0.0) >= 0.5,
        bands=tuple(np.asarray(f.bands[:8], np.float64).tolist()),
        rms=float(f.rms),
        beat_phase=tempo.beat % 1.0 if tempo.bpm > 0 else 0.0,
        beat=tempo.beat if tempo.bpm > 0 else 0.0,
        bar_phase=tempo.bar_phase if tempo.bpm > 0 else 0.0,
        bpm=tempo.bpm,
        probe=probe,
    )


def compositor_at(frame: ShowFrame, t_ns: int) -> CompositorControls:
    """The frame's CompositorControls re-evaluated at display time t_ns ≥ frame.t_ns: LFOs and
    the pulse run on at the frame's tempo (pure: the render loop calls this between ticks)."""
    cc, basis = frame.compositor, frame.display
    if cc is None or basis is None or t_ns <= frame.t_ns:
        return cc
    tv = frame.tempo
    if tv.bpm > 0:
        db = (t_ns - frame.t_ns) * tv.bpm / 60e9
        bar = (tv.bar_phase + db / max(tv.beats_per_bar, 1)) % 1.0
        tv = tv._replace(beat=tv.beat + db, bar_phase=bar)
    return compositor_controls(
        dict(cc.params), basis, tv, t_ns, cc.chains, frame.features, cc.probe
    )


def effect_chains(
    effect: str | None, chains: Mapping[str, Sequence[str]] | None = None
) -> dict[str, tuple[str, ...]]:
    """The effect chains of a frame (every key of CHAINS): `chains` as given (a preset's
    `effects:`), the master chain `(effect,)` where it leaves that out."""
    out: dict[str, tuple[str, ...]] = {"A": (), "B": (), "master": (effect,) if effect else ()}
    for key, names in (chains or {}).items():
        out[key] = tuple(names)
    return out
