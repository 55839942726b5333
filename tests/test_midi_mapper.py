"""MidiMapper decoding, curves, soft takeover, feedback and learn: pure logic, bytes in/out."""

from __future__ import annotations

import random

import pytest

from vj.control.mapping import (
    CURVES,
    Mapping,
    MidiMapper,
    apply_curve,
    invert_curve,
    load_mappings,
    save_mappings,
)
from vj.params import default_registry
from vj.preset import PresetError


def make(*maps, send=None):
    reg = default_registry()
    return reg, MidiMapper(reg, list(maps), send=send)


@pytest.mark.parametrize("curve", CURVES)
def test_curves_are_monotonic_with_exact_inverse(curve):
    xs = [i / 200 for i in range(201)]
    ys = [apply_curve(curve, x) for x in xs]
    assert ys[0] == pytest.approx(0.0, abs=1e-12) and ys[-1] == pytest.approx(1.0)
    assert all(b > a for a, b in zip(ys, ys[1:], strict=False))
    for x, y in zip(xs, ys, strict=True):
        assert invert_curve(curve, y) == pytest.approx(x, abs=1e-9)


def test_cc_range_curve_invert_and_channel():
    reg, m = make(
        Mapping("cc", 10, "zoom", range=(1.0, 2.0)),
        Mapping("cc", 11, "drift", curve="exp", invert=True),
        Mapping("cc", 12, "fx_amount", channel=2),
    )
    m.handle([0xB0, 10, 127], 0)
    assert reg.get("zoom") == 2.0
    m.handle([0xB0, 10, 0], 0)
    assert reg.get("zoom") == 1.0
    m.handle([0xB5, 11, 127], 0)  # inverted: top of the knob = bottom of the range
    assert reg.get("drift") == 0.0
    m.handle([0xB5, 11, 64], 0)
    assert reg.get("drift") == pytest.approx(apply_curve("exp", 1 - 64 / 127))
    before = reg.get("fx_amount")
    m.handle([0xB0, 12, 127], 0)  # wrong channel
    assert reg.get("fx_amount") == before
    m.handle([0xB2, 12, 127], 0)
    assert reg.get("fx_amount") == 1.0


def test_cc14_msb_then_lsb_and_msb_alone():
    reg, m = make(Mapping("cc14", 1, "brightness"))  # [-1, 1]
    m.handle([0xB0, 1, 0x7F], 0)
    m.handle([0xB0, 33, 0x7F], 0)
    assert reg.get("brightness") == 1.0
    m.handle([0xB0, 1, 0x40], 0)  # an MSB alone resets the LSB (MIDI spec)
    assert reg.get("brightness") == pytest.approx(-1 + 2 * (0x40 << 7) / 16383)
    m.handle([0xB0, 33, 1], 0)
    assert reg.get("brightness") == pytest.approx(-1 + 2 * ((0x40 << 7) | 1) / 16383)


def test_relative_encodings_clamp_at_the_ends():
    reg, m = make(Mapping("cc_rel2c", 5, "master"), Mapping("cc_rel64", 6, "fx_pulse"))
    reg.set("master", 0.5)
    m.handle([0xB0, 5, 3], 0)
    assert reg.get("master") == pytest.approx(0.5 + 3 / 127)
    m.handle([0xB0, 5, 125], 0)  # -3
    assert reg.get("master") == pytest.approx(0.5)
    for _ in range(200):
        m.handle([0xB0, 5, 1], 0)
    assert reg.get("master") == 1.0
    m.handle([0xB0, 6, 64], 0)  # zero step: nothing
    assert reg.get("fx_pulse") == 0.5
    m.handle([0xB0, 6, 0], 0)  # -64
    assert reg.get("fx_pulse") == 0.0


def test_soft_takeover_both_directions_and_after_preset():
    reg, m = make(Mapping("cc", 7, "truncation", soft_takeover=True))  # [0, 1.5], at 0.7
    x_cur = 0.7 / 1.5 * 127  # ≈ 59.3
    m.handle([0xB0, 7, 120], 0)
    m.handle([0xB0, 7, 100], 0)
    assert reg.get("truncation") == 0.7  # from above, not yet reached
    m.handle([0xB0, 7, 60], 0)  # within a step of 59.3
    assert reg.get("truncation") == pytest.approx(60 / 127 * 1.5)
    m.handle([0xB0, 7, 0], 0)
    assert reg.get("truncation") == 0.0
    reg.set("truncation", 1.2, "preset")
    m.handle([0xB0, 7, 10], 0)
    m.handle([0xB0, 7, 127], 0)  # a jump straight over the value also catches it
    assert reg.get("truncation") == 1.5
    assert x_cur > 0


def test_note_modes_and_triggers():
    reg, m = make(
        Mapping("note", 36, "next_keyframe"),
        Mapping("note", 37, "hud", note_mode="toggle"),
        Mapping("note", 38, "fx_amount", note_mode="velocity"),
        Mapping("note", 39, "master", note_mode="momentary", range=(0.2, 0.9)),
        Mapping("cc", 40, "tap"),
        Mapping("cc", 41, "saturation", note_mode="toggle"),
    )
    m.handle([0x90, 36, 100], 0)
    m.handle([0x80, 36, 0], 0)
    m.handle([0x90, 36, 1], 0)
    assert reg.get("next_keyframe") == 2.0
    m.handle([0x90, 37, 127], 0)
    m.handle([0x90, 37, 0], 0)  # velocity 0 = note off: toggles ignore releases
    assert reg.get("hud") == 0.0
    m.handle([0x90, 37, 127], 0)
    assert reg.get("hud") == 1.0
    m.handle([0x90, 38, 64], 0)
    assert reg.get("fx_amount") == pytest.approx(64 / 127)
    m.handle([0x90, 39, 10], 0)
    assert reg.get("master") == pytest.approx(0.9)
    m.handle([0x80, 39, 10], 0)
    assert reg.get("master") == pytest.approx(0.2)
    for v in (127, 127, 0, 100, 0):  # CC buttons trigger on each rising edge past 64
        m.handle([0xB0, 40, v], 0)
    assert reg.get("tap") == 2.0
    m.handle([0xB0, 41, 127], 0)
    m.handle([0xB0, 41, 0], 0)
    assert reg.get("saturation") == 0.0  # toggled from 1.0 (above half) to the bottom
    m.handle([0xB0, 41, 127], 0)
    assert reg.get("saturation") == 2.0


def test_pitchbend_program_and_realtime():
    reg, m = make(Mapping("pitchbend", 0, "zoom"), Mapping("program", 5, "next_keyframe"))
    programs, realtime = [], []
    m.on_program = programs.append
    m.on_realtime = lambda msg, t: realtime.append((msg, t))
    m.handle([0xE0, 0x7F, 0x7F], 0)
    assert reg.get("zoom") == 2.0
    m.handle([0xE0, 0x00, 0x40], 0)  # centre
    assert reg.get("zoom") == pytest.approx(0.5 + 1.5 * 8192 / 16383)
    m.handle([0xC0, 5], 0)
    m.handle([0xC3, 2], 0)
    assert programs == [5, 2] and reg.get("next_keyframe") == 1.0
    for msg in ([0xF8], [0xFA], [0xFB], [0xFC], [0xF2, 0x10, 0x01]):
        m.handle(msg, 123)
    assert [r[0][0] for r in realtime] == [0xF8, 0xFA, 0xFB, 0xFC, 0xF2]
    assert realtime[-1] == ([0xF2, 0x10, 0x01], 123)


def test_malformed_and_random_messages_never_raise():
    reg, m = make(
        Mapping("cc", 1, "zoom"), Mapping("cc14", 2, "drift"), Mapping("note", 3, "hud"),
        Mapping("cc_rel2c", 4, "master", soft_takeover=True), Mapping("pitchbend", 0, "contrast"),
    )  # fmt: skip
    m.on_realtime = lambda msg, t: None
    m.on_program = lambda n: None
    rng = random.Random(5)
    bad = [[], [0x00], [0xB0], [0xB0, 1], [0xB0, 200, 5], [0x90, -1, 3], [300, 1, 1], [0xB0, 1.5],
           ["x"], None, [0xB0, 1, 64, 99, 99]]  # fmt: skip
    for msg in bad:
        m.handle(msg, 0)
    for _ in range(10_000):
        n = rng.randint(0, 4)
        m.handle([rng.randint(-5, 300) if rng.random() < 0.05 else rng.randint(0, 255)
                  for _ in range(n)], rng.randint(0, 10**12))  # fmt: skip
    for name in reg.names():
        spec = reg.spec(name)
        if spec.kind != "trigger":
            assert spec.min <= reg.get(name) <= spec.max
    assert m.errors > 0
    m.handle([0xB0, 1, 127], 0)  # still working afterwards
    assert reg.get("zoom") == 2.0


def test_feedback_bytes_for_each_kind():
    sent: list[list[int]] = []
    reg, m = make(
        Mapping("cc", 16, "fx_amount", channel=1),
        Mapping("cc14", 3, "zoom"),
        Mapping("note", 40, "hud", note_mode="toggle"),
        Mapping("pitchbend", 0, "brightness"),
        Mapping("cc_rel64", 20, "drift"),
        Mapping("cc", 21, "contrast", feedback=False),
        send=sent.append,
    )
    reg.set("fx_amount", 1.0, "osc")
    reg.set("zoom", 2.0, "osc")
    reg.set("hud", 0.0, "osc")
    reg.set("brightness", 1.0, "osc")
    reg.set("contrast", 0.0, "osc")
    assert sent == [
        [0xB1, 16, 127],
        [0xB0, 3, 127], [0xB0, 35, 127],
        [0x90, 40, 0],
        [0xE0, 0x7F, 0x7F],
    ]  # fmt: skip
    sent.clear()
    m.handle([0xB1, 16, 10], 0)  # an absolute knob is not echoed back to itself
    assert sent == []
    m.handle([0xB0, 20, 65], 0)  # an encoder's LED ring is told where it is
    assert sent == [[0xB0, 20, round((0.1 + 1 / 127) * 127)]]
    sent.clear()
    reg.set("drift", reg.get("drift") + 1e-6, "lfo")  # same 7-bit value: not resent
    assert sent == []
    state = m.feedback_messages()
    assert [0x90, 40, 0] in state and [0xB1, 16, 10] in state
    m.close()
    reg.set("fx_amount", 0.0, "osc")
    assert sent == []


def test_learn_binds_cc_note_and_upgrades_to_cc14():
    reg, m = make(Mapping("cc", 30, "zoom"))
    learned = []
    m.on_learned = learned.append
    with pytest.raises(KeyError, match="did you mean 'saturation'"):
        m.learn("saturaton")
    m.learn("saturation")
    m.handle([0xB2, 30, 5], 10)  # replaces the zoom binding on that control
    assert learned == [Mapping("cc", 30, "saturation", channel=2)]
    assert m.mappings == learned and m.learning is None
    m.learn("hud")
    m.handle([0x80, 50, 0], 20)  # a note off does not count
    m.handle([0x91, 50, 90], 30)
    assert learned[-1] == Mapping("note", 50, "hud", channel=1, note_mode="toggle")
    m.learn("master")
    m.handle([0xB0, 7, 100], 1_000_000)
    m.handle([0xB0, 39, 3], 2_000_000)  # LSB right after: it is a 14-bit fader
    assert learned[-1] == Mapping("cc14", 7, "master", channel=0)
    assert sum(1 for x in m.mappings if x.param == "master") == 1
    m.handle([0xB0, 7, 127], 3_000_000)
    m.handle([0xB0, 39, 127], 3_000_001)
    assert reg.get("master") == 1.0
    m.learn("drift", kind="cc_rel64")
    m.handle([0xB0, 60, 65], 0)
    assert learned[-1] == Mapping("cc_rel64", 60, "drift", channel=0)


def test_mapping_file_round_trip_backup_and_broken_file(tmp_path):
    reg = default_registry()
    path = tmp_path / "sub" / "maps.yaml"
    maps = [
        Mapping("cc", 1, "zoom", channel=9, range=(0.75, 1.5), curve="scurve", invert=True),
        Mapping("cc14", 7, "master", soft_takeover=True),
        Mapping("note", 36, "hud", note_mode="toggle", feedback=False),
        Mapping("pitchbend", 0, "brightness"),
        Mapping("cc_rel2c", 20, "drift"),
    ]
    save_mappings(path, maps)
    assert load_mappings(path, reg) == maps
    assert not path.with_name("maps.yaml.bak").exists()
    save_mappings(path, maps[:2])
    assert load_mappings(path.with_name("maps.yaml.bak"), reg) == maps
    assert load_mappings(path, reg) == maps[:2]
    text = path.read_text().replace("param: master", "param: mastr")
    path.write_text(text)
    with pytest.raises(PresetError) as info:
        load_mappings(path, reg)
    line = next(i for i, t in enumerate(text.splitlines(), 1) if "mastr" in t)
    assert str(info.value).startswith(f"{path}:{line}: mappings[1].param: unknown parameter")
    assert "did you mean 'master'" in str(info.value)
    path.write_text("mappings:\n  - {cc: 1, param: zoom\n")  # broken YAML
    with pytest.raises(PresetError, match=r"maps.yaml:\d+: YAML syntax"):
        save_mappings(path, maps)  # never overwritten silently
    assert path.read_text() == "mappings:\n  - {cc: 1, param: zoom\n"
    assert list(path.parent.glob("*.tmp")) == []


def test_reversed_range_and_describe_message():
    from vj.control.mapping import describe_message

    sent: list[list[int]] = []
    reg, m = make(Mapping("cc", 9, "zoom", range=(2.0, 1.0)), send=sent.append)
    m.handle([0xB0, 9, 127], 0)
    assert reg.get("zoom") == 1.0
    m.handle([0xB0, 9, 0], 0)
    assert reg.get("zoom") == 2.0
    reg.set("zoom", 1.5, "osc")
    assert sent[-1] == [0xB0, 9, 64]  # 1.5 is the middle: 63.5 rounds to 64
    assert describe_message([0xB2, 16, 64]) == "ch 3   cc 16 = 64"
    assert describe_message([0xE0, 0, 64]) == "ch 1   pitch bend +0"
    assert describe_message([0xF8]) == "clock"
    assert describe_message([]) == "(empty)"


def test_learn_session_selection_status_and_broken_file(tmp_path):
    from vj.control.learn import LearnSession

    reg, m = make()
    path = tmp_path / "m.yaml"
    s = LearnSession(m, path)
    first = s.selected
    names = reg.names()
    assert s.select_next() == names[1] and s.select_prev() == first
    assert s.select_prev() == names[-1]
    s.select("zoom")
    assert "select a parameter (zoom)" in s.status
    s.start()
    assert s.status == "MIDI learn: move a control for zoom"
    m.handle([0xB0, 5, 1], 0)
    assert s.wait(5.0) and s.error is None
    assert load_mappings(path) == [Mapping("cc", 5, "zoom", channel=0)]
    assert "cc 5 (channel 1) → zoom (saved to" in s.status
    path.write_text("mappings: [{cc: 1, param: zoom, curve: bent}]\n")  # hand-edited, broken
    s.start("drift")
    m.handle([0x90, 60, 100], 0)
    assert s.wait(5.0)
    assert isinstance(s.error, PresetError) and "m.yaml:1:" in str(s.error)
    assert "not saved" in s.status
    assert path.read_text() == "mappings: [{cc: 1, param: zoom, curve: bent}]\n"
    assert Mapping("note", 60, "drift", channel=0) in m.mappings  # live binding still made
