"""JACK MIDI after a server restart: jackd (dummy) is killed and started again; the MIDI input
re-binds the controller and its messages move parameters again. Own process, own server."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.jack_restart import JACKD, cleanup, new_server
from tests.jackutil import jackd_available

pytestmark = pytest.mark.jack

SCENARIO = JACKD + textwrap.dedent(
    """
    import json, time
    import rtmidi
    from tests.waiting import wait_for, wait_midi_path
    from vj.control.mapping import Mapping, MidiMapper
    from vj.control.midi import MidiInput
    from vj.params import default_registry

    def controller():
        out = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name="ctl")
        out.open_virtual_port("knobs")
        return out

    server = jackd()
    reg = default_registry()
    events = []
    midi = MidiInput(MidiMapper(reg, [Mapping("cc", 16, "intensity", range=(0.0, 2.0))]),
                     "ctl", api="jack", on_event=events.append)
    ctl = controller()
    midi.start()
    r = {"first_ports": midi.ports}
    r["path_before"] = wait_midi_path(ctl.send_message, midi.mapper)
    ctl.send_message([0xB0, 16, 127])
    r["before"] = wait_for(lambda: reg.get("intensity") == 2.0, 5)
    server.kill(); server.wait()
    time.sleep(1.0)
    server = jackd()
    dead_ctl = ctl  # kept: closing a dead server's client races libjack's clean-up
    ctl = controller()  # the controller's own client died with the server too
    t0 = time.monotonic()
    r["rebound"] = wait_for(lambda: midi.server_restarts == 1 and midi.ports, 10)
    r["rebound_s"] = time.monotonic() - t0
    r["ports"] = midi.ports
    r["path_after"] = wait_midi_path(ctl.send_message, midi.mapper)
    ctl.send_message([0xB0, 16, 0])
    r["after"] = wait_for(lambda: reg.get("intensity") == 0.0, 5)
    r["events"] = events
    midi.stop()
    ctl.delete()
    server.terminate(); server.wait()
    print(json.dumps(r), flush=True)
    os._exit(0)
    """
)


def test_jack_midi_is_rebound_after_a_server_restart(tmp_path):
    if not jackd_available():
        pytest.skip("jackd not installed (apt-get install jackd2)")
    root = Path(__file__).resolve().parents[1]
    name, pids = new_server(tmp_path, "vjmidi")
    try:
        proc = subprocess.run(
            [sys.executable, "-c", SCENARIO, name, str(pids)], cwd=root, capture_output=True,
            text=True, timeout=120, env=dict(os.environ, PYTHONPATH=str(root)),
        )  # fmt: skip
    finally:
        cleanup(name, pids)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    assert lines, f"rc {proc.returncode}\n" + proc.stdout[-2000:] + proc.stderr[-3000:]
    r = json.loads(lines[-1])
    assert r["first_ports"] == ["ctl:knobs"] and r["before"], r
    assert r["rebound"] and r["ports"] == ["ctl:knobs"], r
    assert r["rebound_s"] < 2.0, r
    assert r["path_before"] and r["path_after"] and r["after"], r
    assert "JACK server restarted: re-binding MIDI" in r["events"], r["events"]
