"""`vj midi-monitor` and `vj midi-learn` end to end through a JACK virtual controller."""

from __future__ import annotations

import argparse
import threading
import time

import pytest

rtmidi = pytest.importorskip("rtmidi")

from vj.control import commands  # noqa: E402
from vj.control.mapping import Mapping, load_mappings  # noqa: E402

pytestmark = pytest.mark.jack


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="vj")
    commands.register(parser.add_subparsers())
    args = parser.parse_args(list(argv))
    return args.func(args)


@pytest.fixture
def knobs(jack_session):
    out = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name="cmdctl")
    out.open_virtual_port("knobs")
    yield out
    out.close_port()
    out.delete()


def test_monitor_lists_and_prints(knobs, capsys):
    assert run("midi-monitor", "--list", "--api", "jack") == 0
    assert "cmdctl:knobs" in capsys.readouterr().out

    def play():
        time.sleep(0.3)
        knobs.send_message([0xB2, 16, 64])
        knobs.send_message([0x90, 36, 100])

    t = threading.Thread(target=play)
    t.start()
    assert run("midi-monitor", "--port", "cmdctl", "--api", "jack", "--seconds", "0.8") == 0
    t.join()
    out = capsys.readouterr().out
    assert "ch 3   cc 16 = 64" in out and "note 36 on, velocity 100" in out


def test_learn_command_saves_binding(knobs, tmp_path, capsys):
    path = tmp_path / "learned.yaml"
    rc: list[int] = []
    t = threading.Thread(
        target=lambda: rc.append(
            run(
                "midi-learn",
                "fx_amount",
                "--port",
                "cmdctl",
                "--api",
                "jack",
                "--file",
                str(path),
                "--timeout",
                "5",
            )
        )  # fmt: skip
    )
    t.start()
    while t.is_alive():  # keep turning the knob until vj has bound the port and learned it
        knobs.send_message([0xB0, 74, 80])
        time.sleep(0.05)
    t.join()
    assert rc == [0], capsys.readouterr().err
    assert load_mappings(path) == [Mapping("cc", 74, "fx_amount", channel=0)]
    assert "cc 74 (channel 1) → fx_amount" in capsys.readouterr().out


def test_learn_command_user_errors(knobs, tmp_path, capsys):
    assert run("midi-learn", "fx_amout", "--api", "jack", "--file", str(tmp_path / "m.yaml")) == 2
    assert "did you mean 'fx_amount'" in capsys.readouterr().err
    rc = run("midi-learn", "zoom", "--port", "nothing-like-this", "--api", "jack",
             "--file", str(tmp_path / "m.yaml"))  # fmt: skip
    assert rc == 2
    err = capsys.readouterr().err
    assert "no MIDI input port matches 'nothing-like-this'" in err and "cmdctl:knobs" in err
    assert run("midi-learn", "--list") == 0
    assert "fx_amount" in capsys.readouterr().out
    assert not (tmp_path / "m.yaml").exists()
