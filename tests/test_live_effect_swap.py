"""`request_effect` swaps the master chain's first slot, as the Show's `effect` event does: no
frame shows the new effect alone (the rest of the chain dropped) while the Show catches up.
The real LiveApp, headless on EGL."""

from __future__ import annotations

import numpy as np

from tests.test_engine_nets import small_generator
from vj.params import default_registry

W, H = 96, 54


def _show_master(app) -> tuple:
    """The master chain of the newest Show frame the display took."""
    item = app._last[0]
    fr = item.show if item is not None else None
    return tuple(fr.compositor.chains["master"]) if fr is not None and fr.compositor else ()


def test_effect_request_keeps_the_rest_of_the_master_chain_on_every_frame():
    from vj.live import LiveApp, LiveOptions

    reg = default_registry()
    reg.set("vignette.amount", 1.0)
    seen: list = []  # (after the request, master chain on screen, corner and centre levels)
    box: list = []
    state: dict = {}

    def on_display(rgb, t):
        app = box[0]
        chain = app.compositor.chains.chains["master"].names
        after = "t" in state
        seen.append((after, chain, int(rgb[0, 0].max()), float(rgb[H // 2, W // 2].mean())))
        if not after and app.gen.count >= 3:
            state["t"] = t
            app.request_effect("pixelate")  # e.g. a preset switch on the MIDI/OSC thread
        elif after and _show_master(app)[:1] == ("pixelate",):
            state["caught_up"] = state.get("caught_up", 0) + 1
            if state["caught_up"] >= 3:
                app.stop()

    opts = LiveOptions(
        width=W, height=H, fps=20, headless=True, gen_threads=None, on_display=on_display,
        duration=60.0, chains={"master": ("none", "vignette")},
    )  # fmt: skip
    app = LiveApp(reg, None, opts, G=small_generator(seed=0))
    box.append(app)
    app.run()

    assert state.get("caught_up", 0) >= 3, "the Show never took the effect event"
    before = [s for s in seen if not s[0]]
    after = [s for s in seen if s[0]]
    assert before[-1][1] == ("none", "vignette")
    assert after and all(c == ("pixelate", "vignette") for _, c, _, _ in after), [
        c for _, c, _, _ in after
    ]
    # what is on screen: the vignette still blacks out the corners, the picture is there
    assert all(corner <= 2 for _, _, corner, _ in after)
    assert np.mean([centre for *_, centre in after]) > 10
