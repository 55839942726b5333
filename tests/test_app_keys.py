"""The live window's keys: MIDI learn by keyboard, triggers, HUD toggle (no window needed)."""

import glfw

from vj.app import LiveApp, LiveOptions
from vj.control.learn import LearnSession
from vj.control.mapping import MidiMapper, load_mappings
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
    app._on_key(glfw.KEY_H, glfw.RELEASE, 0)  # releases do nothing
    app._on_key(glfw.KEY_H, glfw.PRESS, 0)
    assert (reg.get("next_keyframe"), reg.get("tap"), reg.get("hud")) == (1.0, 1.0, 0.0)
