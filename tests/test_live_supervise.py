"""vj live keeps the show going when the generator fails: the real LiveApp, headless, with a
StyleGAN2 whose synthesis raises on a few ticks — the display runs on, the HUD says so, and
new frames come after the supervisor's restart."""

from __future__ import annotations

import threading

import pytest

from tests.test_engine_nets import small_generator
from vj.params import default_registry

FAILURES = 3


class _Breaker:
    """A forward pre-hook that raises on ticks `start` .. `start + n - 1` of the synthesis."""

    def __init__(self, start: int, n: int) -> None:
        self.start, self.n, self.calls, self.raised = start, n, 0, 0

    def __deepcopy__(self, memo):  # the engine works on its own copy of G: one shared counter
        return self

    def __call__(self, module, args):
        self.calls += 1
        if self.start <= self.calls < self.start + self.n:
            self.raised += 1
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB (injected)")
        return None


def test_generator_failure_keeps_display_and_restarts(capfd):
    from vj.live import LiveApp, LiveOptions

    G = small_generator(seed=0)
    breaker = _Breaker(start=4, n=FAILURES)
    G.synthesis.register_forward_pre_hook(breaker)
    down_frames, hud_warnings, after = [], [], threading.Event()
    app_box: list = []

    def on_display(rgb, t):
        app = app_box[0]
        sup = app.gen.supervisor
        if not sup.healthy:
            down_frames.append(t)
            hud_warnings.extend(ln for ln in app._hud_lines(None) if "generator failed" in ln)
        elif sup.restarts >= 1 and breaker.raised == FAILURES and app.gen.count >= 8:
            after.set()
            app.stop()

    opts = LiveOptions(
        width=64, height=48, fps=20, headless=True, gen_threads=None, on_display=on_display,
        duration=60.0,
    )  # fmt: skip
    app = LiveApp(default_registry(), None, opts, G=G)
    app_box.append(app)
    app.gen.supervisor.backoff_s = 0.05  # the test's back-off: 0.05, 0.1, 0.2 s
    first_engine = app.engines[0]
    app.run()  # returns: no failure reaches the render loop

    sup = app.gen.supervisor
    assert after.is_set(), f"frames did not resume: {sup.status!r}, count {app.gen.count}"
    assert breaker.raised == FAILURES and sup.failures == FAILURES
    assert sup.restarts >= 1 and sup.healthy and sup.status == ""
    assert len(down_frames) >= 2, "the display stopped while the generator was down"
    assert hud_warnings and "out of memory" in hud_warnings[0]
    assert app.engines[0] is not first_engine and app.engine is app.engines[0]  # rebuilt
    assert any(ln.startswith("! generator restarted") for ln in app._hud_lines(None))
    err = capfd.readouterr().err
    assert "generator failed: out of memory" in err
    assert err.count("generator failed") <= 2  # rate-limited, not one line per tick


def test_interrupt_in_the_generator_still_ends_the_show():
    from vj.live import LiveApp, LiveOptions

    G = small_generator(seed=0)

    def interrupt(module, args):
        raise KeyboardInterrupt

    G.synthesis.register_forward_pre_hook(interrupt)
    opts = LiveOptions(width=32, height=24, fps=20, headless=True, gen_threads=None, duration=20)
    app = LiveApp(default_registry(), None, opts, G=G)
    with pytest.raises(RuntimeError, match="generator thread failed"):
        app.run()
