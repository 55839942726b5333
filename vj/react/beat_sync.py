"""Compatibility: quantised presses and beat-locked LFOs on a params snapshot, as the Show does.

The Show (`vj.show.show`) owns both now, at event and beat times; `BeatSync` keeps the old
snapshot-rewriting API with the same formulas (`lfo_value`, `lfo_params`) for tools.
"""

from __future__ import annotations

from vj.control.lfo import BeatQuantizer
from vj.show.frame import TempoView
from vj.show.show import LFO_FX_DEPTH, LFO_ZOOM_DEPTH, lfo_params, lfo_value
from vj.tempo import TempoArbiter


class BeatSync:
    """Rewrites a params snapshot: `for_generator` (quantised triggers), `for_render` (LFOs)."""

    LFO_ZOOM_DEPTH = LFO_ZOOM_DEPTH
    LFO_FX_DEPTH = LFO_FX_DEPTH

    def __init__(self, arbiter: TempoArbiter, presses: float = 0.0) -> None:
        self._arbiter = arbiter
        self._quant = BeatQuantizer("beat")
        self._seen = presses  # registry press count already handled
        self._fired = presses  # press count handed to the modulator

    def for_generator(self, params: dict[str, float], t_ns: int) -> dict[str, float]:
        presses = params.get("next_keyframe", 0.0)
        if params.get("quantize", 0.0) >= 0.5:
            st, _ = self._arbiter.current(t_ns)
            while self._seen < presses:
                self._quant.arm("next_keyframe", st)
                self._seen += 1
            self._fired += len(self._quant.poll(st))
        else:
            self._fired += presses - self._seen
            self._seen = presses
        params["next_keyframe"] = self._fired
        return params

    def for_render(self, params: dict[str, float], t_ns: int) -> dict[str, float]:
        zoom_amt, fx_amt = params.get("lfo_zoom", 0.0), params.get("lfo_fx", 0.0)
        if zoom_amt <= 0.0 and fx_amt <= 0.0:
            return params
        st, src = self._arbiter.current(t_ns)
        tv = TempoView() if st is None else TempoView(st.bpm, st.beat_count + st.beat_phase)
        v = lfo_value(tv, params.get("lfo_beats", 4.0))
        params["zoom"], params["fx_amount"] = lfo_params(
            params["zoom"], params["fx_amount"], zoom_amt, fx_amt, v
        )
        return params
