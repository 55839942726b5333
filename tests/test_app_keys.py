"""The live window's keys: MIDI learn by keyboard, triggers, HUD toggle (no window needed)."""

import glfw

from vj.control.learn import LearnSession
from vj.control.mapping import MidiMapper, load_mappings
from vj.live import LiveApp, LiveOptions
from vj.params import default_registry


def _app(registry, learn=None):
    return LiveApp(registry, None, LiveOptions(headless=True, learn=learn))


def test_learn_from_keys_binds_and_saves(tmp_path):
    reg = default_registry()
    mapper = MidiMapper(reg, [])
    path = tmp_path / "mappings.yaml"
    session = LearnSession(mapper, path)
    app = _app(reg, session)
    first = session.selected
    app._on_key(glfw.KEY_RIGHT_BRACKET, glfw.PRESS, 0)
    chosen = session.selected
    assert chosen != first
    app._on_key(glfw.KEY_L, glfw.PRESS, 0)
    mapper.handle([0xB0, 21, 64], 0)  # the controller's knob moves
    assert session.wait(5.0)
    (m,) = load_mappings(path)
    assert (m.param, m.number) == (chosen, 21)
    assert chosen in str(session.status)


def test_trigger_and_toggle_keys():
    reg = default_registry()
    app = _app(reg)
    app._on_key(glfw.KEY_SPACE, glfw.PRESS, 0)
    app._on_key(glfw.KEY_T, glfw.PRESS, 0)
    app._on_key(glfw.KEY_1, glfw.PRESS, 0)
    app._on_key(glfw.KEY_H, glfw.RELEASE, 0)  # releases do nothing
    app._on_key(glfw.KEY_H, glfw.PRESS, 0)
    got = (reg.get("next_keyframe"), reg.get("tap"), reg.get("downbeat"), reg.get("hud"))
    assert got == (1.0, 1.0, 1.0, 0.0)


def test_effect_request_reaches_the_compositor(capsys):
    from vj.clock import now_ns
    from vj.render.compositor import Compositor
    from vj.render.offscreen import OffscreenTarget, create_headless_context

    app = _app(default_registry())
    ctx = create_headless_context()
    try:
        target = OffscreenTarget(ctx, 64, 36)
        comp = Compositor(ctx, 64, 36, effect="default")
        app.request_effect("kaleido")  # e.g. from a preset switch on the MIDI/OSC thread
        app._frame(comp, target.fbo, swap=now_ns)
        assert comp._effect_name == "kaleido"
        app.request_effect("no-such-effect")
        app._frame(comp, target.fbo, swap=now_ns)  # reported, not raised
        assert comp._effect_name == "kaleido"
        assert "no-such-effect" in capsys.readouterr().err
    finally:
        ctx.release()


def test_preset_switch_by_name_applies_and_reports(tmp_path):
    from vj.preset import PresetSwitcher, builtin_preset_path, load_preset

    reg = default_registry()
    switched, errors = [], []
    sw = PresetSwitcher(
        reg,
        load_preset(builtin_preset_path("default"), reg),
        on_switch=switched.append,
        on_error=errors.append,
    )
    new = sw.load_now("club")
    assert new.effect == "kaleido" and switched == [new]
    assert reg.get("intensity") == new.params.get("intensity", reg.spec("intensity").default)
    sw.switch_name("no-such-preset")  # queued on the worker thread: an error, not a crash
    import time

    for _ in range(100):
        if errors:
            break
        time.sleep(0.02)
    assert errors and "no-such-preset" in str(errors[0])
