"""The latency probe rides in CompositorControls: the Show sets it from the frame's onset
count, the compositor draws it, so an offline render carries the same marker live shows."""

from __future__ import annotations

import numpy as np
import pytest

from tests.test_engine_nets import small_generator
from vj.audio.source import demo_track
from vj.params import default_registry
from vj.profile import probe


@pytest.fixture(scope="module")
def ctx():
    from vj.render.offscreen import create_headless_context

    c = create_headless_context()
    yield c
    c.release()


def test_offline_frames_carry_the_probe_and_the_compositor_draws_it(tmp_path, ctx):
    from vj.gan.checkpoint import save_generator
    from vj.offline import OfflineShow, RenderJob, build_offline, draw_show_frame
    from vj.render.compositor import Compositor
    from vj.render.offscreen import OffscreenTarget

    ckpt = tmp_path / "small.safetensors"
    save_generator(small_generator(0), ckpt)
    audio = demo_track(48000, seconds=2.0, bpm=124.0)
    kw = dict(audio=audio, sample_rate=48000, fps=15, checkpoint=str(ckpt))
    job = RenderJob(out=tmp_path / "o.mp4", probe=True, **kw)
    show, engines = build_offline(job, default_registry())
    off = OfflineShow(show, job)
    comp = Compositor(ctx, 64, 64, effect="none")
    tgt = OffscreenTarget(ctx, 64, 64)
    counts = set()
    for i in range(30):
        fr = off.tick(i)
        n = fr.features.onset_count
        assert fr.compositor.probe == pytest.approx(probe.level(n) / 255.0)
        draw_show_frame(comp, engines, fr, i, show.models)
        comp.draw(tgt.fbo, fr.t_ns, fr.compositor)
        assert probe.read(tgt.read_rgb()) == n % probe.LEVELS  # the pixels say the count
        counts.add(n)
    assert len(counts) > 3  # onsets happened: the marker changed
    comp.release()

    plain = RenderJob(out=tmp_path / "p.mp4", **kw)
    show2, _ = build_offline(plain, default_registry())
    assert OfflineShow(show2, plain).tick(0).compositor.probe == 0.0  # off: nothing drawn
    assert np.isfinite(fr.decks[0].ws.numpy()).all()
