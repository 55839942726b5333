"""MIDI through real JACK virtual ports: a test 'controller' client talks to vj's MidiInput."""

from __future__ import annotations

import time

import pytest

rtmidi = pytest.importorskip("rtmidi")

from tests.waiting import wait_for, wait_midi_path  # noqa: E402
from vj.control.learn import LearnSession  # noqa: E402
from vj.control.mapping import Mapping, MidiMapper, load_mappings, save_mappings  # noqa: E402
from vj.control.midi import (  # noqa: E402
    MidiError,
    MidiInput,
    list_midi_outputs,
    list_midi_ports,
    open_devices,
)
from vj.params import default_registry  # noqa: E402
from vj.preset import PresetSwitcher, apply_preset, load_preset  # noqa: E402

pytestmark = pytest.mark.jack


class Controller:
    """A fake hardware controller: one JACK client with an output ('knobs') and input ('leds')."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.out = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name=name)
        self.out.open_virtual_port("knobs")
        self.inp = None
        self.received: list[list[int]] = []

    def open_leds(self) -> None:
        self.inp = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, name=self.name + "-leds")
        self.inp.set_callback(lambda ev, _d: self.received.append(ev[0]))
        self.inp.open_virtual_port("leds")

    def send(self, *msg: int) -> None:
        self.out.send_message(list(msg))

    def sync(self, mapper) -> None:
        """Wait until what this controller sends reaches `mapper` (see wait_midi_path)."""
        assert wait_midi_path(self.out.send_message, mapper), "no JACK MIDI path to vj"

    def unplug(self) -> None:
        self.out.close_port()
        self.out.delete()
        self.out = None

    def replug(self) -> None:
        self.out = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name=self.name)
        self.out.open_virtual_port("knobs")

    def close(self) -> None:
        for m in (self.out, self.inp):
            if m is not None:
                m.close_port()
                m.delete()


@pytest.fixture
def controller(jack_session, request):
    c = Controller(f"ctl{abs(hash(request.node.name)) % 10000}")
    yield c
    c.close()


def test_cc_moves_mapped_parameter(controller):
    reg = default_registry()
    mapper = MidiMapper(reg, [Mapping("cc", 16, "intensity", range=(0.0, 2.0))])
    with MidiInput(mapper, controller.name, api="jack") as midi:
        midi.start()
        controller.sync(mapper)
        assert midi.ports == [f"{controller.name}:knobs"]
        controller.send(0xB0, 16, 127)
        assert wait_for(lambda: reg.get("intensity") == 2.0)
        controller.send(0xB0, 16, 0)
        assert wait_for(lambda: reg.get("intensity") == 0.0)
        controller.send(0xB1, 16, 127)  # another channel: the mapping is omni
        assert wait_for(lambda: reg.get("intensity") == 2.0)


def test_unknown_port_lists_available(controller):
    mapper = MidiMapper(default_registry(), [])
    midi = MidiInput(mapper, "no-such-controller-xyz", api="jack")
    with pytest.raises(MidiError) as info:
        midi.start()
    text = str(info.value)
    assert "no-such-controller-xyz" in text and f"{controller.name}:knobs" in text
    assert f"{controller.name}:knobs" in list_midi_ports("jack")
    again = MidiInput(mapper, controller.name, api="jack")
    for _ in range(2):  # stop() then start() again binds again
        again.start()
        assert again.ports == [f"{controller.name}:knobs"]
        again.stop()
        assert again.ports == []
    with pytest.raises(MidiError, match="bad MIDI port pattern"):
        MidiInput(mapper, "([", api="jack")


def test_relative_and_14bit_decoding(controller):
    reg = default_registry()
    maps = [
        Mapping("cc_rel2c", 20, "fx_amount"),
        Mapping("cc_rel64", 21, "fx_pulse"),
        Mapping("cc14", 7, "zoom"),
    ]
    reg.set("fx_amount", 0.5)
    reg.set("fx_pulse", 0.5)
    mapper = MidiMapper(reg, maps)
    with MidiInput(mapper, controller.name, api="jack") as midi:
        midi.start()
        controller.sync(mapper)
        for _ in range(10):
            controller.send(0xB0, 20, 1)  # +1 each
        controller.send(0xB0, 20, 127)  # -1
        assert wait_for(lambda: abs(reg.get("fx_amount") - (0.5 + 9 / 127)) < 1e-9)
        controller.send(0xB0, 21, 64 + 12)
        controller.send(0xB0, 21, 64 - 2)
        assert wait_for(lambda: abs(reg.get("fx_pulse") - (0.5 + 10 / 127)) < 1e-9)
        value = 12345  # 14-bit: MSB on cc 7, LSB on cc 39
        controller.send(0xB0, 7, value >> 7)
        controller.send(0xB0, 39, value & 0x7F)
        expect = 0.5 + value / 16383 * 1.5
        assert wait_for(lambda: abs(reg.get("zoom") - expect) < 1e-9)


def test_soft_takeover(controller):
    reg = default_registry()
    reg.set("master", 0.5)
    mapper = MidiMapper(reg, [Mapping("cc", 7, "master", soft_takeover=True)])
    with MidiInput(mapper, controller.name, api="jack") as midi:
        midi.start()
        controller.sync(mapper)
        controller.send(0xB0, 7, 10)  # knob far below the value: ignored
        controller.send(0xB0, 7, 30)
        time.sleep(0.15)
        assert reg.get("master") == 0.5
        controller.send(0xB0, 7, 70)  # passes 0.5 (63.5): caught
        assert wait_for(lambda: reg.get("master") == pytest.approx(70 / 127))
        controller.send(0xB0, 7, 20)  # now it follows freely
        assert wait_for(lambda: reg.get("master") == pytest.approx(20 / 127))
        reg.set("master", 0.9, "osc")  # someone else moves it: the knob lets go again
        controller.send(0xB0, 7, 25)
        time.sleep(0.15)
        assert reg.get("master") == 0.9


def test_feedback_arrives_at_controller(controller):
    controller.open_leds()
    reg = default_registry()
    maps = [Mapping("cc", 16, "fx_amount"), Mapping("note", 40, "hud", note_mode="toggle")]
    mapper = MidiMapper(reg, maps)
    with MidiInput(
        mapper, controller.name, api="jack", feedback_pattern=controller.name, poll_interval=0.1
    ) as midi:
        assert f"{controller.name}-leds:leds" in list_midi_outputs("jack")
        midi.start()
        assert midi.feedback_ports == [f"{controller.name}-leds:leds"]
        controller.sync(mapper)
        # binding sends the whole state: fx_amount 0.35 → 44, hud on → note 40 velocity 127
        assert wait_for(lambda: [0x90, 40, 127] in controller.received)
        assert controller.received == [[0xB0, 16, 44], [0x90, 40, 127]]
        controller.received.clear()
        reg.set("fx_amount", 1.0, "osc")
        assert wait_for(lambda: [0xB0, 16, 127] in controller.received)
        controller.send(0x90, 40, 100)  # the button toggles hud off; its light follows
        assert wait_for(lambda: [0x90, 40, 0] in controller.received)
        assert reg.get("hud") == 0.0


def test_port_closed_and_reopened_is_rebound(controller):
    reg = default_registry()
    mapper = MidiMapper(reg, [Mapping("cc", 1, "drift")])
    with MidiInput(mapper, controller.name, api="jack", poll_interval=0.1) as midi:
        midi.start()
        controller.sync(mapper)
        controller.send(0xB0, 1, 127)
        assert wait_for(lambda: reg.get("drift") == 1.0)
        controller.unplug()
        assert wait_for(lambda: midi.ports == [], timeout=2.0)
        t0 = time.monotonic()
        controller.replug()
        assert wait_for(lambda: midi.ports == [f"{controller.name}:knobs"], timeout=2.0)
        print(f"re-bound after {time.monotonic() - t0:.2f} s")
        controller.sync(mapper)
        controller.send(0xB0, 1, 0)
        assert wait_for(lambda: reg.get("drift") == 0.0)


def test_learn_round_trip(controller, tmp_path):
    reg = default_registry()
    path = tmp_path / "mappings.yaml"
    save_mappings(path, [Mapping("cc", 16, "zoom"), Mapping("cc", 22, "drift", channel=3)])
    mapper = MidiMapper(reg, load_mappings(path, reg))
    session = LearnSession(mapper, path)
    with MidiInput(mapper, controller.name, api="jack") as midi:
        midi.start()
        controller.sync(mapper)
        session.start("saturation")
        controller.send(0xB3, 22, 64)  # the control the user moves (channel 4)
        assert session.wait(3.0) and session.error is None
        assert session.last == Mapping("cc", 22, "saturation", channel=3)
        controller.send(0xB3, 22, 127)
        assert wait_for(lambda: reg.get("saturation") == 2.0)
    saved = load_mappings(path, reg)
    assert Mapping("cc", 22, "saturation", channel=3) in saved
    assert Mapping("cc", 16, "zoom") in saved  # kept
    assert all(m.param != "drift" for m in saved)  # the old binding of that control replaced
    assert path.with_name("mappings.yaml.bak").exists()


def test_preset_devices_and_program_change_switch_preset(controller, tmp_path):
    (tmp_path / "a.yaml").write_text(
        "params: {zoom: 1.5}\n"
        "midi:\n"
        "  programs: {0: a.yaml, 1: club}\n"
        f"  devices:\n    - port: {controller.name}\n"
        "      mappings: [{cc: 3, param: drift}]\n"
    )
    reg = default_registry()
    preset = load_preset(tmp_path / "a.yaml", reg, effects=["default", "kaleido"])
    apply_preset(preset, reg)
    switched = []
    switcher = PresetSwitcher(reg, preset, on_switch=switched.append)
    events: list[str] = []
    inputs = open_devices(preset.midi, reg, on_program=switcher.switch, api="jack",
                          on_event=events.append)  # fmt: skip
    try:
        assert [m.ports for m in inputs] == [[f"{controller.name}:knobs"]]
        controller.sync(inputs[0].mapper)
        controller.send(0xB0, 3, 127)
        assert wait_for(lambda: reg.get("drift") == 1.0)
        controller.send(0xC0, 1)  # program 1 → the shipped club preset
        assert wait_for(lambda: bool(switched))
        assert switched[0].name == "club" and reg.get("intensity") == 1.4
        assert reg.get("zoom") == 1.0  # club leaves zoom out: back to the default
        controller.send(0xC0, 0)  # club has its own program map: 0 is 'default' there
        assert wait_for(lambda: len(switched) == 2)
        assert switched[1].name == "default"
        controller.send(0xC0, 99)  # unbound: ignored
        time.sleep(0.1)
        assert len(switched) == 2
    finally:
        for m in inputs:
            m.stop()
    assert any("MIDI in" in e for e in events)
