"""Tempo-driven controls: keyframe presses quantised to the beat, and beat-locked LFOs.

Whichever tempo source the arbiter picks (Link > MIDI clock > tap > audio tracker) drives both.
"""

from __future__ import annotations

from vj.control.lfo import BeatQuantizer, Lfo
from vj.tempo import TempoArbiter


class BeatSync:
    """Rewrites a params snapshot: `for_generator` (quantised triggers), `for_render` (LFOs).

    Each method is called from one thread only (generator / render), so they share no state.
    """

    LFO_ZOOM_DEPTH = 0.15  # ±15 % zoom at lfo_zoom = 1
    LFO_FX_DEPTH = 0.5  # ±0.5 fx_amount at lfo_fx = 1

    def __init__(self, arbiter: TempoArbiter, presses: float = 0.0) -> None:
        self._arbiter = arbiter
        self._quant = BeatQuantizer("beat")
        self._seen = presses  # registry press count already handled
        self._fired = presses  # press count handed to the modulator
        self._lfo = Lfo("sine", 4.0)

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
        st, _ = self._arbiter.current(t_ns)
        self._lfo.rate_beats = max(params.get("lfo_beats", 4.0), 0.25)
        v = 2.0 * self._lfo.value(st) - 1.0  # [-1, 1]; 0 with no tempo (rest = 0.5)
        params["zoom"] = min(
            max(params["zoom"] * (1.0 + self.LFO_ZOOM_DEPTH * zoom_amt * v), 0.5), 2.0
        )
        params["fx_amount"] = min(
            max(params["fx_amount"] + self.LFO_FX_DEPTH * fx_amt * v, 0.0), 1.0
        )
        return params
