"""The live driver's generator is paced (display rate, idle rate without audio news) and hands
the engine's own buffers to the display: no per-frame copy, through the real LiveApp."""

from __future__ import annotations

import threading
import time

from tests.gan_nets import tiny_generator
from vj.audio.features import SILENCE
from vj.clock import now_ns
from vj.live import LiveApp, LiveOptions
from vj.params import default_registry

CFG = dict(z_dim=16, w_dim=16, img_resolution=32, channel_base=256, channel_max=16)


def _app(**kw) -> LiveApp:
    opts = LiveOptions(headless=True, width=64, height=64, gen_threads=1, **kw)
    return LiveApp(default_registry(), None, opts, G=tiny_generator(**CFG))


def _run_generator(app: LiveApp, seconds: float, display_hz: float, news_hz: float | None):
    """The app's generator thread for `seconds` against a fake display swapping at
    `display_hz` (and audio features published at `news_hz`); returns its tick count."""
    stop = threading.Event()

    def display() -> None:
        while not stop.wait(1.0 / display_hz):
            app.pacer.display_swapped(now_ns())

    def audio() -> None:
        while not stop.wait(1.0 / news_hz):
            app.features.publish(SILENCE)

    helpers = [threading.Thread(target=display, daemon=True)]
    if news_hz:
        helpers.append(threading.Thread(target=audio, daemon=True))
    for t in helpers:
        t.start()
    app.gen.start()
    time.sleep(seconds)
    stop.set()
    app.gen.stop()  # closes the pacer: wait() returns False, the thread ends
    app.gen.join(timeout=10)
    for t in helpers:
        t.join(timeout=2)
    assert not app.gen.is_alive() and app.gen.error is None
    return app.gen.count


def test_generator_without_audio_news_runs_at_the_idle_rate_not_flat_out():
    app = _app(fps=20.0)
    n = _run_generator(app, 1.5, display_hz=20.0, news_hz=None)
    # idle rate 10 fps: ~15 ticks in 1.5 s; a free-running loop makes hundreds of a 32² net
    assert 2 <= n <= 25, n
    assert app.pacer.idle_frames >= n - 2


def test_generator_with_news_follows_the_display_rate():
    app = _app(fps=20.0)
    n = _run_generator(app, 1.5, display_hz=20.0, news_hz=200.0)
    assert 2 <= n <= 40, n  # ~20 fps (display) at most, never the 200 Hz of the news


def test_published_frames_are_the_engine_buffers_not_copies():
    from vj.render.compositor import Compositor
    from vj.render.offscreen import OffscreenTarget, create_headless_context

    seen = []
    app = _app(on_frame=seen.append)
    engine, ex = app.engine, app.gen.exchanges[0]
    bufs = engine._ring.views  # the engine's preallocated ring [H, W, 4] uint8
    for _ in range(2):
        item = app.gen.tick()
    assert [g.index for g in seen] == [0, 1]
    assert any(item.rgba is b for b in bufs)
    assert ex.published == 2 and ex.dropped == 1  # an unread frame is dropped, not copied

    ctx = create_headless_context()
    try:
        target = OffscreenTarget(ctx, 64, 64)
        comp = Compositor(ctx, 64, 64)
        submitted = []
        real = comp.submit_frame

        def submit(rgba, *a, **kw):  # the real upload, with the array it was handed noted
            submitted.append(rgba)
            return real(rgba, *a, **kw)

        comp.submit_frame = submit
        app._frame(comp, target.fbo, swap=now_ns)
        assert len(submitted) == 1 and submitted[0] is item.rgba  # the buffer itself
        assert ex.held() == set()  # released once the upload was queued
        # the slot the display read is not handed out again while a frame waits in another
        app.gen.tick()
        app.gen.tick()
        assert seen[2].rgba is not seen[3].rgba
        assert all(any(g.rgba is b for b in bufs) for g in seen)  # four frames, three buffers
    finally:
        ctx.release()
