"""OSC /vj/preset through a real OSC server: only presets from the presets folders load,
failures are reported at a bounded rate."""

import time

from pythonosc.udp_client import SimpleUDPClient

from tests.waiting import wait_for
from vj.control.osc import OscServer
from vj.control.osc_presets import PresetGate, RateLimitedReport
from vj.params import default_registry


def test_osc_presets_only_from_the_presets_folders(tmp_path):
    presets = tmp_path / "presets"
    presets.mkdir()
    (presets / "club.yaml").write_text("seed: 1\n")
    secret = tmp_path / "elsewhere" / "secret.yaml"
    secret.parent.mkdir()
    secret.write_text("seed: 2\n")
    (presets / "sneaky.yaml").symlink_to(secret)  # a link out of the folder is outside too
    loaded, reports = [], []
    report = RateLimitedReport(reports.append, interval=60.0)
    gate = PresetGate(loaded.append, [presets], report)
    srv = OscServer(default_registry(), port=0, on_preset=gate)
    srv.start()
    try:
        client = SimpleUDPClient("127.0.0.1", srv.port)
        client.send_message("/vj/preset", "club")
        client.send_message("/vj/preset", str(secret))
        client.send_message("/vj/preset", "../elsewhere/secret.yaml")
        client.send_message("/vj/preset", "sneaky.yaml")
        for i in range(200):  # a flood of failures: one line, the rest counted
            client.send_message("/vj/preset", f"nosuch{i}")
        assert wait_for(lambda: gate.refused == 203, 10.0), gate.refused
    finally:
        srv.stop()
    assert loaded == [str((presets / "club.yaml").resolve())]
    assert len(reports) == 1 and "outside the presets folders" in reports[0]
    assert report.suppressed == 202


def test_anywhere_when_configured(tmp_path):
    other = tmp_path / "mine.yaml"
    other.write_text("seed: 3\n")
    loaded = []
    gate = PresetGate(loaded.append, [tmp_path / "presets"], print, anywhere=True)
    gate(str(other))
    assert loaded == [str(other.resolve())]


def test_rate_limited_report_counts_what_it_held_back():
    out = []
    r = RateLimitedReport(out.append, interval=0.2)
    for _ in range(5):
        r("boom")
    time.sleep(0.25)
    r("boom")
    assert out == ["boom", "boom (4 more like it suppressed)"]
