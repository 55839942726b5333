"""Effect chains through the Show: the preset's `effects:` ride on every ShowFrame, events and
preset switches change them, the compositor follows them (deck B's chain on deck B), and the
effects' beat / bar / pulse inputs are the Show's."""

from __future__ import annotations

import numpy as np
import pytest

from tests.test_engine_nets import small_generator
from vj.params import default_registry
from vj.show.compositing import compositor_at, effect_chains
from vj.show.frame import CompositorControls, ControlEvent
from vj.show.wiring import build_show

S = 1_000_000_000
MS = 1_000_000


class _Preset:
    name, path, seed, effect, cues = "chains", None, 5, "default", ()
    effects = {"A": ("mirror",), "master": ("kaleido", "rgbsplit")}


class _Other:
    name, path, seed, effect, cues = "other", None, 1, "grade", ()
    effects = None
    params: dict = {}


@pytest.fixture(scope="module")
def ctx():
    from vj.render.offscreen import create_headless_context

    c = create_headless_context()
    yield c
    c.release()


def test_effect_chains_fill_every_key():
    assert effect_chains("default") == {"A": (), "B": (), "master": ("default",)}
    assert effect_chains("x", {"master": ()}) == {"A": (), "B": (), "master": ()}
    assert effect_chains(None, {"B": ["grain"]})["B"] == ("grain",)


def test_show_frames_carry_the_preset_chains_and_events_change_them():
    reg = default_registry()
    show = build_show(_Preset, reg, [small_generator(seed=0)], resolve_preset=lambda name: _Other)
    fr = show.frame(0)
    assert fr.compositor.chains == {"A": ("mirror",), "B": (), "master": ("kaleido", "rgbsplit")}
    show.event(ControlEvent(10 * MS, "key", "effect", "grain"))  # the master's first slot
    fr2 = show.frame(20 * MS)
    assert fr2.compositor.chains["master"] == ("grain", "rgbsplit")
    assert fr.compositor.chains["master"] == ("kaleido", "rgbsplit")  # emitted frames keep theirs
    show.event(ControlEvent(30 * MS, "preset", "preset", "other"))
    assert show.frame(40 * MS).compositor.chains == {"A": (), "B": (), "master": ("grade",)}


def test_tempo_reaches_the_compositor_controls_and_runs_on():
    reg = default_registry()
    show = build_show(_Preset, reg, [small_generator(seed=0)])
    show.frame(0)
    for k in range(4):  # 120 BPM from taps
        show.event(ControlEvent(100 * MS + k * S // 2, "key", "tap", 1.0))
    fr = show.frame(1_700 * MS)
    cc = fr.compositor
    assert cc.bpm == pytest.approx(120.0, abs=0.5)
    assert cc.beat == pytest.approx(fr.tempo.beat)
    assert cc.bar_phase == pytest.approx(fr.tempo.bar_phase)
    later = compositor_at(fr, fr.t_ns + 250 * MS)  # half a beat on
    assert later.beat == pytest.approx(cc.beat + 0.5, abs=0.02)
    assert later.bar_phase == pytest.approx((cc.bar_phase + 0.125) % 1.0, abs=0.01)
    assert later.chains == cc.chains


def _frame(h, w, seed):
    f = np.random.default_rng(seed).integers(0, 256, (h, w, 4), dtype=np.uint8)
    f[..., 3] = 255
    return f


def _draw(ctx, chains, crossfader):
    from vj.render.compositor import Compositor
    from vj.render.offscreen import OffscreenTarget

    comp = Compositor(ctx, 24, 16, effect="none")
    comp.submit_frame(_frame(16, 24, 1), 0, 0)
    comp.submit_frame(_frame(16, 24, 2), 0, 0, deck="B")
    assert comp.follow_chains(chains) is None
    assert comp.follow_chains(chains) is None  # unchanged: nothing to do
    tgt = OffscreenTarget(ctx, 24, 16)
    p = {"crossfade": 0.0, "fx_amount": 1.0, "fx_pulse": 0.0}
    comp.draw(tgt.fbo, 0, CompositorControls(params=p, crossfader=crossfader))
    out = tgt.read_rgb().astype(int)
    tgt.release()
    comp.release()
    return out


def test_compositor_runs_deck_b_chain_on_deck_b(ctx):
    plain = effect_chains(None)
    b_fx = effect_chains(None, {"B": ("pixelate",)})
    a_fx = effect_chains(None, {"A": ("pixelate",)})
    at_b = _draw(ctx, plain, 1.0)
    assert np.abs(_draw(ctx, b_fx, 1.0) - at_b).mean() > 5  # B's chain shows on deck B
    np.testing.assert_array_equal(_draw(ctx, a_fx, 1.0), at_b)  # A's chain: not on deck B
    at_a = _draw(ctx, plain, 0.0)
    np.testing.assert_array_equal(_draw(ctx, b_fx, 0.0), at_a)  # and B's not on deck A
    assert np.abs(_draw(ctx, a_fx, 0.0) - at_a).mean() > 5


def test_follow_chains_reports_an_unknown_effect_once(ctx):
    from vj.render.compositor import Compositor

    comp = Compositor(ctx, 16, 16, effect="none")
    bad = effect_chains("no-such-effect")
    msg = comp.follow_chains(bad)
    assert msg is not None and "no-such-effect" in msg
    assert comp.follow_chains(bad) is None and comp.effect == "none"  # nothing changed
    comp.release()
