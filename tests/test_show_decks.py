"""Two decks: two different checkpoints at once, the crossfader and blend modes in the
compositor (held equal to a numpy twin), style mixing across decks, deck B at a lower rate."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.test_engine_nets import small_generator
from vj.audio.source import demo_track
from vj.params import default_registry
from vj.show.frame import BLEND_MODES, CompositorControls, ControlEvent
from vj.show.wiring import build_engine, build_show

S = 1_000_000_000
MS = 1_000_000


class _Preset:
    name, path, seed, effect, cues = "default", None, 5, "default", ()


@pytest.fixture(scope="module")
def ctx():
    from vj.render.offscreen import create_headless_context

    c = create_headless_context()
    yield c
    c.release()


def _frame(h, w, seed):
    f = np.random.default_rng(seed).integers(0, 256, (h, w, 4), dtype=np.uint8)
    f[..., 3] = 255
    return f


@pytest.mark.parametrize("mode", BLEND_MODES)
@pytest.mark.parametrize("x", [0.0, 0.3, 0.5, 0.8, 1.0])
def test_blend_modes_match_the_reference(ctx, mode, x):
    from vj.render.compositor import Compositor, blend_reference
    from vj.render.offscreen import OffscreenTarget

    comp = Compositor(ctx, 24, 16, effect="none")
    a, b = _frame(16, 24, 1), _frame(16, 24, 2)
    comp.submit_frame(a, 0, 0)
    comp.submit_frame(b, 0, 0, deck="B")
    tgt = OffscreenTarget(ctx, 24, 16)
    cc = CompositorControls(params={"crossfade": 0.0}, crossfader=x, blend=mode)
    comp.draw(tgt.fbo, 0, cc)
    out = tgt.read_rgb().astype(np.float64)
    ref = blend_reference(a[..., :3] / 255.0, b[..., :3] / 255.0, x, mode) * 255.0
    assert np.abs(out - ref).max() <= 1.0, (mode, x)
    if x == 0.0:
        np.testing.assert_array_equal(out, a[..., :3])  # 0 is deck A alone
    if x == 1.0:
        np.testing.assert_array_equal(out, b[..., :3])  # 1 is deck B alone
    tgt.release()
    comp.release()


def test_two_different_checkpoints_at_once(tmp_path, ctx):
    """Deck A and B with different architectures (32² and 16²), saved and loaded as the
    product loads them, rendered in one show and blended."""
    from tests.test_engine_nets import small_config
    from vj.gan.checkpoint import save_generator
    from vj.gan.stylegan2 import make_default_generator
    from vj.offline import OfflineShow, RenderJob, draw_show_frame
    from vj.render.compositor import Compositor
    from vj.render.offscreen import OffscreenTarget
    from vj.show.wiring import DeckSpec, load_generator

    pa, pb = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    save_generator(small_generator(seed=0, resolution=32), pa)
    cfg_b = dict(small_config(16), z_dim=32, w_dim=32)  # another architecture altogether
    save_generator(make_default_generator(4, cfg_b), pb)
    specs = [DeckSpec(str(pa), 1), DeckSpec(str(pb), 2)]
    gens = [load_generator(s.checkpoint) for s in specs]
    engines = [build_engine(g)[0] for g in gens]
    reg = default_registry()
    reg.set("crossfader", 0.5)
    show = build_show(_Preset, reg, gens, specs)
    audio = demo_track(48000, seconds=1.0)
    off = OfflineShow(show, RenderJob(audio=audio, sample_rate=48000, out=tmp_path / "o.mp4"))
    comp = Compositor(ctx, 32, 32, effect="none")
    tgt = OffscreenTarget(ctx, 32, 32)
    outs = []
    for i in range(6):
        fr = off.tick(i)
        assert [d.deck for d in fr.decks] == ["A", "B"]
        assert fr.decks[1].ws.shape[-1] == 32 and fr.decks[0].ws.shape != fr.decks[1].ws.shape
        draw_show_frame(comp, engines, fr, i)
        comp.draw(tgt.fbo, fr.t_ns, fr.compositor)
        outs.append(tgt.read_rgb().copy())
    # the output is neither deck alone: both pictures are in it
    a_only = engines[0].render(fr.decks[0]).rgba[..., :3]
    assert np.abs(outs[-1].astype(int) - np.asarray(a_only)).mean() > 2
    assert fr.compositor.crossfader == pytest.approx(0.5)
    comp.release()


def test_style_mix_takes_coarse_layers_from_deck_a():
    Ga, Gb = small_generator(seed=0), small_generator(seed=1)
    reg = default_registry()
    show = build_show(_Preset, reg, [Ga, Gb])
    plain = show.frame(0)
    show.event(ControlEvent(MS, "midi", "style_mix", 3.0))
    mixed = show.frame(2 * MS)
    a, b0, b1 = mixed.decks[0].ws, plain.decks[1].ws, mixed.decks[1].ws
    torch.testing.assert_close(b1[:, :3], a[:, :3])  # coarse rows: deck A's
    torch.testing.assert_close(b1[:, 3:], b0[:, 3:], atol=1e-3, rtol=0)  # fine rows: B's own
    assert not torch.allclose(b0[:, :3], a[:, :3])


def test_deck_b_at_a_lower_rate_keeps_moving():
    from vj.offline import OfflineShow, RenderJob

    Ga, Gb = small_generator(seed=0), small_generator(seed=1)
    audio = demo_track(48000, seconds=1.0)
    job = RenderJob(audio=audio, sample_rate=48000, out=None, fps=10, decks_every=(1, 2))
    off = OfflineShow(build_show(_Preset, default_registry(), [Ga, Gb]), job)
    got = [[d.deck for d in fr.decks] for _, fr, _ in off.frames(range(6))]
    assert got == [["A", "B"], ["A"], ["A", "B"], ["A"], ["A", "B"], ["A"]]


def test_headless_recording_is_finalised_on_ctrl_c(tmp_path):
    """Ctrl-C (KeyboardInterrupt in the render loop) keeps the recording: a playable file."""
    import av

    from vj.live import LiveApp, LiveOptions

    out = tmp_path / "rec.mp4"
    shown = []

    def on_display(rgb, t):
        shown.append(t)
        if len(shown) == 8:
            raise KeyboardInterrupt

    opts = LiveOptions(
        width=64, height=48, fps=20, headless=True, gen_threads=None, record=str(out),
        on_display=on_display,
    )  # fmt: skip
    app = LiveApp(default_registry(), None, opts, G=small_generator(seed=0))
    with pytest.raises(KeyboardInterrupt):
        app.run()
    with av.open(str(out)) as c:
        frames = list(c.decode(c.streams.video[0]))
    assert len(frames) >= 7
    assert [p.name for p in tmp_path.iterdir()] == ["rec.mp4"]  # no temp file left behind


@pytest.mark.parametrize(
    "env", [None, np.zeros(8, np.float32), np.linspace(0, 1, 8, dtype=np.float32)]
)
def test_deck_numpy_controls_equal_the_torch_twin(env):
    from vj.show.decks import Deck

    d = Deck("A", small_generator(seed=2), seed=4)
    d.jump(0.6, 2)
    d.drift(0.3, 0.5)
    for psi, band, noise, inten in (
        (0.7, 1.0, 1.0, 1.0),
        (1.2, 0.3, 2.0, 0.5),
        (0.5, 0.0, 0.0, 1.0),
    ):
        fast = d.controls(psi, env, band, noise, inten)
        ref = d.controls_reference(psi, env, band, noise, inten)
        assert fast.ws.shape == ref.ws.shape and fast.ws.dtype == ref.ws.dtype
        torch.testing.assert_close(fast.ws, ref.ws, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(fast.noise_strength, ref.noise_strength, rtol=1e-6, atol=1e-6)
        assert fast.keyframe_index == ref.keyframe_index == 2
