"""`vj tempo-monitor` over a JACK virtual MIDI clock, and `vj osc-send` into a live OscServer."""

from __future__ import annotations

import argparse
import threading
import time

import pytest

from vj.clock import now_ns
from vj.control import tempo_commands
from vj.control.osc import OscServer
from vj.params import default_registry


def parse(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="vj")
    tempo_commands.register(ap.add_subparsers(dest="cmd", required=True))
    return ap.parse_args(argv)


def test_osc_send_reaches_a_server():
    reg = default_registry()
    with OscServer(reg, port=0) as srv:
        args = parse(["osc-send", "/vj/param/zoom", "1.25", "--port", str(srv.port)])
        assert args.func(args) == 0
        deadline = time.monotonic() + 5
        while reg.get("zoom") != 1.25 and time.monotonic() < deadline:
            time.sleep(0.005)
        assert reg.get("zoom") == 1.25
        args = parse(["osc-send", "/vj/cue", "3", "--int", "--port", str(srv.port)])
        assert args.func(args) == 0


def test_osc_send_and_monitor_user_errors(capsys):
    args = parse(["osc-send", "vj/param/zoom", "1"])
    assert args.func(args) == 2
    assert "must start with '/'" in capsys.readouterr().err
    args = parse(["tempo-monitor"])
    assert args.func(args) == 2
    assert "nothing to watch" in capsys.readouterr().err


@pytest.mark.jack
def test_tempo_monitor_reads_a_jack_midi_clock(jack_session, capsys):
    rtmidi = pytest.importorskip("rtmidi")
    out = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name="clksrc")
    out.open_virtual_port("out")
    stop = threading.Event()

    def send() -> None:
        period = 60e9 / (120 * 24)
        out.send_message([0xFA])
        t0 = now_ns()
        i = 0
        while not stop.is_set():
            time.sleep(max(0.0, (t0 + i * period - now_ns()) / 1e9))
            out.send_message([0xF8])
            i += 1

    th = threading.Thread(target=send, daemon=True)
    try:
        args = parse(
            [
                "tempo-monitor",
                "--midi",
                "clksrc",
                "--api",
                "jack",
                "--seconds",
                "1.6",
                "--interval",
                "0.4",
            ]
        )
        th.start()
        assert args.func(args) == 0
    finally:
        stop.set()
        th.join()
        out.close_port()
        out.delete()
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("tempo:")]
    assert lines, "no tempo lines printed"
    assert lines[-1].startswith("tempo: midi_clock 1")
    bpm = float(lines[-1].split()[2])
    assert bpm == pytest.approx(120.0, rel=0.01)


@pytest.mark.jack
def test_tempo_monitor_unknown_port(jack_session, capsys):
    args = parse(
        ["tempo-monitor", "--midi", "no-such-port-xyz", "--api", "jack", "--seconds", "0.1"]
    )
    assert args.func(args) == 1
    assert "no-such-port-xyz" in capsys.readouterr().err
