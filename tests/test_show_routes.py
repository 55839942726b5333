"""The routing matrix on synthetic feature streams: sources, curves, envelopes, gates, targets."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vj.audio.features import AudioFeatures
from vj.params import default_registry
from vj.show.frame import TempoView
from vj.show.routes import Inputs, Route, RouteError, RouteMatrix, check_route, lfo_value

DT = 1 / 100  # 100 ticks per second


def feats(**kw) -> AudioFeatures:
    return AudioFeatures(**kw)


def run(m: RouteMatrix, inputs: list[Inputs], pick) -> list:
    return [pick(m.process(x, DT)) for x in inputs]


def test_level_route_range_curve_amount_offset():
    m = RouteMatrix([Route("rms", "zoom", amount=2.0, range=(0.2, 0.6), curve="exp")])
    out = [m.process(Inputs(feats(rms=r)), DT).params["zoom"] for r in (0.0, 0.2, 0.4, 0.6, 0.9)]
    k = (2**2 - 1) / (2**4 - 1)  # exp curve at 0.5
    assert out == pytest.approx([0.0, 0.0, 2 * k, 2.0, 2.0])
    m = RouteMatrix([Route("lfo.square", "fx_amount", offset=-0.5, period=2.0)])
    vals = [m.process(Inputs(tempo=TempoView(120, b)), DT).params["fx_amount"] for b in (0, 1.5)]
    assert vals == [0.5, -0.5]


def test_attack_and_release_time_constants():
    m = RouteMatrix([Route("rms", "zoom", attack=0.1, release=0.5)])
    up = run(m, [Inputs(feats(rms=1.0))] * 10, lambda o: o.params["zoom"])  # 0.1 s
    assert up[-1] == pytest.approx(1 - math.exp(-1.0), rel=1e-6)  # one time constant
    assert all(b > a for a, b in zip(up, up[1:], strict=False))
    peak = up[-1]
    down = run(m, [Inputs(feats(rms=0.0))] * 50, lambda o: o.params["zoom"])  # 0.5 s
    assert down[-1] == pytest.approx(peak * math.exp(-1.0), rel=1e-6)


def test_onset_counters_become_envelopes_per_band():
    routes = [
        Route("onset.low", "bend.zoom", release=0.1, block=2),
        Route("onset.high", "noise", release=0.0, layers="fine"),
    ]
    m = RouteMatrix(routes)
    seq = [(0, 0), (0, 0), (1, 0), (1, 0), (1, 0), (1, 3), (1, 3)]  # (low count, high count)
    zs, ns = [], []
    for low, high in seq:
        o = m.process(Inputs(feats(band_onset_counts=(low, 0, high))), DT).decks["A"]
        zs.append(o.bends[2][3])
        ns.append(o.noise[0])
    assert zs[:2] == [0.0, 0.0] and zs[2] == 1.0  # instant attack on the new low onset
    assert zs[3] == pytest.approx(math.exp(-0.1)) and zs[4] == pytest.approx(math.exp(-0.2))
    assert ns == [0, 0, 0, 0, 0, 1.0, 0]  # release 0: a one-tick pulse, mid onsets ignored


def test_trigger_attack_rises_then_releases():
    m = RouteMatrix([Route("beat", "zoom", attack=0.05, release=0.1)])
    beats = [0.0, 0.5, 1.0] + [1.0 + 0.01 * i for i in range(1, 12)]
    out = [m.process(Inputs(tempo=TempoView(120, b)), DT).params["zoom"] for b in beats]
    assert out[:2] == [0.0, 0.0]
    assert out[2] == pytest.approx(0.2)  # beat 1 fired: rising 0.01/0.05 per tick
    assert out[6] == pytest.approx(1.0)  # 5 ticks = the 50 ms attack
    assert out[7] == pytest.approx(math.exp(-0.1))  # then exponential release


def test_gate_only_while_pad_held():
    m = RouteMatrix([Route("rms", "zoom", gate="param.pad")], params={"pad": 0, "zoom": 1})
    held = [0, 1, 1, 0]
    out = [m.process(Inputs(feats(rms=0.8), params={"pad": h}), DT).params["zoom"] for h in held]
    assert out == [0.0, 0.8, 0.8, 0.0]
    m = RouteMatrix([Route("rms", "zoom", gate="param.pad", release=0.1)])
    out = [m.process(Inputs(feats(rms=0.8), params={"pad": h}), DT).params["zoom"] for h in held]
    assert out[3] == pytest.approx(0.8 * math.exp(-0.1))  # the envelope releases after the gate


def test_presses_and_quantised_jump_outputs():
    m = RouteMatrix([Route("press.next_keyframe", "keyframe.jump", quantize="beat")])
    counts = [0, 0, 1, 1, 3]
    jumps = [
        list(m.process(Inputs(params={"next_keyframe": c}), DT).decks["A"].jumps) for c in counts
    ]
    assert [len(j) for j in jumps] == [0, 0, 1, 0, 2]
    assert jumps[2][0].quantize == "beat" and jumps[2][0].fraction == 1.0


def test_bar_and_beat_edges_and_deck_separation():
    m = RouteMatrix([Route("bar", "expression", deck="B"), Route("beat", "walk.speed")])
    steps, speeds = [], []
    for b in np.arange(0.0, 9.0, 0.25):
        o = m.process(Inputs(tempo=TempoView(120, float(b), (b % 4) / 4)), DT)
        steps.append(o.decks["B"].expression)
        speeds.append(o.decks["A"].walk_speed)
    assert sum(steps) == 2 and sum(speeds) == 8  # bars at 4 and 8, beats 1..8
    assert steps[16] == 1 and steps[32] == 1  # on the bar line itself


def test_routes_sum_on_one_target_and_style_slots_shared():
    routes = [
        Route("rms", "style", direction=2, layers="middle", amount=0.5),
        Route("centroid", "style", direction=2, layers="middle", amount=1.0),
        Route("flatness", "style", direction=0, layers=(0, 1)),
    ]
    o = RouteMatrix(routes).process(Inputs(feats(rms=1, centroid=0.5, flatness=0.25)), DT)
    d = o.decks["A"]
    assert d.style_slots == ((2, "middle"), (0, (0, 1)))
    np.testing.assert_allclose(d.style, [1.0, 0.25])


def test_lfo_shapes_are_beat_locked():
    assert lfo_value("sine", 0.0) == 0.0 and lfo_value("sine", 0.5) == 1.0
    assert lfo_value("saw", 2.25) == 0.25 and lfo_value("square", 0.75) == 0.0
    r = [lfo_value("random", x, seed=3) for x in (0.1, 0.9, 1.1)]
    assert r[0] == r[1] != r[2]


def test_bad_routes_name_the_problem():
    reg = {n: 0 for n in default_registry().names()}
    with pytest.raises(RouteError, match="did you mean 'onset.low'"):
        check_route(Route("onset.lo", "zoom"), reg)
    with pytest.raises(RouteError, match="did you mean 'zoom'"):
        check_route(Route("rms", "zooom"), reg)
    with pytest.raises(RouteError, match="unknown LFO shape"):
        check_route(Route("lfo.sin", "zoom"), reg)
    with pytest.raises(RouteError, match="did you mean 'scurve'"):
        check_route(Route("rms", "zoom", curve="scurv"), reg)


def test_deterministic_and_reset():
    routes = [Route("onset", "zoom", release=0.2), Route("lfo.random", "fx_amount", period=0.5)]
    seq = [Inputs(feats(onset_count=i // 7), TempoView(120, i * 0.02)) for i in range(100)]
    m = RouteMatrix(routes, seed=5)
    a = run(m, seq, lambda o: dict(o.params))
    m.reset()
    assert run(m, seq, lambda o: dict(o.params)) == a
    assert run(RouteMatrix(routes, seed=5), seq, lambda o: dict(o.params)) == a


def test_a_jump_of_the_beat_position_is_one_beat_not_a_burst():
    m = RouteMatrix([Route("beat", "expression")])
    steps = [
        m.process(Inputs(tempo=TempoView(120, b)), DT).decks["A"].expression
        for b in (0.5, 1.2, 2.1, 900.3, 900.4, 3.0, 4.0)
    ]
    assert steps == [0, 1, 1, 1, 0, 0, 1]  # a Link session joined at beat 900; back to 3


def test_compiled_level_readers_equal_the_reference_level():
    """Each route's pre-resolved reader (the fast path) returns what `_level` (the reference)
    parses from the source name, for every level source kind, gates included."""
    sources = ["rms", "centroid", "flatness", "onset_strength", "bpm", "beat_phase",
               "bar_phase", "band.0", "band.5", "band.11", "band.low", "band.mid", "band.high",
               "lfo.sine", "lfo.triangle", "lfo.saw", "lfo.ramp", "lfo.square", "lfo.random",
               "param.zoom"]  # fmt: skip
    routes = [Route(s, "fx_amount", period=1.5, phase=0.25) for s in sources]
    routes.append(Route("rms", "zoom", gate="param.zoom"))
    m = RouteMatrix(routes)
    rng = np.random.default_rng(3)
    for k in range(40):
        f = feats(rms=float(rng.random()), centroid=float(rng.random()),
                  flatness=float(rng.random()), onset_strength=float(rng.random()),
                  bands=rng.random(8 if k % 2 else 3).astype(np.float32))  # fmt: skip
        tv = TempoView(float(rng.uniform(60, 180)), float(rng.uniform(0, 64)), float(rng.random()))
        inp = Inputs(f, tv, {"zoom": float(rng.random())})
        m._bands = None
        for c in m._compiled:
            assert c.get(inp) == m._level(c.src, inp, c), c.src
        gated = m._compiled[-1]
        assert gated.gate_get(inp) == m._level(gated.gate, inp, None)


def test_decayed_envelopes_land_exactly_on_zero():
    """A released envelope becomes exactly 0 (not an endless tail of subnormal floats), so an
    idle target is skipped by the decks' `any()` checks."""
    m = RouteMatrix([Route("onset", "noise", release=0.05), Route("rms", "zoom", release=0.05)])
    m.process(Inputs(feats(onset_count=0, rms=1.0)), DT)
    m.process(Inputs(feats(onset_count=1, rms=1.0)), DT)
    for _ in range(300):  # 3 s = 60 time constants
        o = m.process(Inputs(feats(onset_count=1, rms=0.0)), DT)
    assert o.decks["A"].noise[0] == 0.0 and o.params["zoom"] == 0.0
