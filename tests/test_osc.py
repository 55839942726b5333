"""OSC server round trips over 127.0.0.1 (ephemeral port) and OSC feature output."""

from __future__ import annotations

import socket
import time

import numpy as np
import pytest
from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.udp_client import SimpleUDPClient

from tests.waiting import wait_for
from vj.audio.features import AudioFeatures
from vj.control.osc import OscFeatureSender, OscServer
from vj.params import default_registry


@pytest.fixture()
def server():
    reg = default_registry()
    presets: list[str] = []
    cues: list[int] = []
    srv = OscServer(reg, port=0, on_preset=presets.append, on_cue=cues.append)
    srv.start()
    srv.presets, srv.cues, srv.reg = presets, cues, reg  # test handles
    try:
        yield srv
    finally:
        srv.stop()


def _processed(srv: OscServer) -> int:
    # counted once a message has been acted on ("messages" is counted on arrival, before)
    return sum(srv.stats[k] for k in ("handled", "unknown", "bad_args", "errors"))


def send(srv: OscServer, address: str, *args) -> None:
    n = _processed(srv)
    SimpleUDPClient("127.0.0.1", srv.port).send_message(address, list(args) if args else [])
    assert wait_for(lambda: _processed(srv) > n), f"server never handled {address}"


def test_ephemeral_port_and_localhost_default(server):
    assert server.port > 0 and server.host == "127.0.0.1"
    assert server.address == f"osc.udp://127.0.0.1:{server.port}/"


def test_every_param_is_addressable(server):
    reg = server.reg
    for name in reg.names():
        spec = reg.spec(name)
        if spec.kind == "trigger":
            before = reg.get(name)
            send(server, f"/vj/param/{name}", 1.0)
            assert reg.get(name) == before + 1, name
            send(server, f"/vj/trigger/{name}")
            assert reg.get(name) == before + 2, name
            send(server, f"/vj/trigger/{name}", 0.0)  # button release: no press
            assert reg.get(name) == before + 2, name
            continue
        target = spec.min + 0.75 * (spec.max - spec.min)
        send(server, f"/vj/param/{name}", target)
        assert reg.get(name) == pytest.approx(spec.clamp(target), rel=1e-6), name
        send(server, f"/vj/param/{name}/norm", 0.25)
        assert reg.get(name) == pytest.approx(spec.from_normalized(0.25), rel=1e-6), name
    assert server.stats["unknown"] == 0 and server.stats["bad_args"] == 0


def test_int_and_bool_args_clamping_and_sources(server):
    seen = []
    server.reg.add_listener(lambda n, v, s: seen.append((n, v, s)))
    send(server, "/vj/param/zoom", 2)  # int argument
    assert server.reg.get("zoom") == 2.0
    send(server, "/vj/param/zoom", 99.0)  # clamped to max
    assert server.reg.get("zoom") == 2.0
    send(server, "/vj/param/hud", False)
    assert server.reg.get("hud") == 0.0
    assert any(n == "zoom" and v == 2.0 and src.startswith("osc@127.0.0.1:") for n, v, src in seen)


def test_preset_cue_tap(server):
    send(server, "/vj/preset", "club")
    send(server, "/vj/cue", 3)
    send(server, "/vj/cue", 4.0)
    send(server, "/vj/tap")
    send(server, "/vj/tap", 1)
    assert server.presets == ["club"] and server.cues == [3, 4]
    assert server.reg.get("tap") == 2.0


def test_unknown_and_wrong_types_are_counted_not_fatal(server):
    send(server, "/vj/param/bloom_amout", 0.3)
    send(server, "/nothing", 1)
    send(server, "/vj/param/zoom", "big")
    send(server, "/vj/param/zoom")
    send(server, "/vj/param/zoom", float("nan"))
    send(server, "/vj/trigger/zoom")  # not a trigger
    send(server, "/vj/cue", "x")
    send(server, "/vj/preset", 5)
    assert server.stats["unknown"] == 3
    assert server.stats["bad_args"] == 5
    assert server.reg.get("zoom") == 1.0
    send(server, "/vj/param/zoom", 1.5)  # still answers
    assert server.reg.get("zoom") == 1.5


def test_callback_errors_are_contained():
    reg = default_registry()

    def boom(name: str) -> None:
        raise RuntimeError("no such preset")

    with OscServer(reg, port=0, on_preset=boom) as srv:
        send(srv, "/vj/preset", "missing")
        assert srv.stats["errors"] == 1 and "no such preset" in srv.last_error
        send(srv, "/vj/param/master", 0.5)
        assert reg.get("master") == 0.5


def test_bundle_with_future_timetag_is_applied_now(server):
    from pythonosc.osc_bundle_builder import OscBundleBuilder

    b = OscBundleBuilder(time.time() + 3600)  # an hour ahead: must not block the server
    m = OscMessageBuilder("/vj/param/contrast")
    m.add_arg(0.5)
    b.add_content(m.build())
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(b.build().dgram, ("127.0.0.1", server.port))
    assert wait_for(lambda: server.reg.get("contrast") == 0.5)


def test_port_in_use_is_a_clear_error(server):
    with pytest.raises(OSError, match=f"127.0.0.1:{server.port}"):
        OscServer(default_registry(), port=server.port)


def test_feature_sender_round_trip():
    got: dict[str, list] = {}
    from pythonosc.dispatcher import Dispatcher
    from pythonosc.osc_server import BlockingOSCUDPServer

    d = Dispatcher()
    d.set_default_handler(lambda addr, *args: got.setdefault(addr, []).append(args))
    rx = BlockingOSCUDPServer(("127.0.0.1", 0), d)
    rx.timeout = 0.1
    tx = OscFeatureSender("127.0.0.1", rx.server_address[1])
    try:
        bands = np.linspace(0, 1, 8, dtype=np.float32)
        f = AudioFeatures(rms=0.5, bands=bands, onset_count=1, beat_count=2, bpm=128.0)
        tx.send(f)
        tx.send(f)  # same counts: no new onset/beat messages
        for _ in range(50):
            rx.handle_request()
            if len(got.get("/vj/audio/rms", [])) == 2:
                break
        assert got["/vj/audio/rms"][0] == pytest.approx((0.5,))
        assert np.allclose(got["/vj/audio/bands"][0], bands)
        assert got["/vj/audio/onset"] == [(1,)]
        assert got["/vj/audio/beat"] == [(2, pytest.approx(128.0))]
    finally:
        tx.close()
        rx.server_close()


def test_feature_sender_survives_nobody_listening():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    tx = OscFeatureSender("127.0.0.1", port)  # closed port: ICMP refusals
    try:
        for _ in range(20):
            tx.send(AudioFeatures())
        assert tx.sent + tx.errors == 60
    finally:
        tx.close()


def test_deeply_nested_bundle_is_dropped_and_server_lives(server):
    import struct

    m = OscMessageBuilder("/vj/param/zoom")
    m.add_arg(1.5)
    pkt = m.build().dgram
    for _ in range(380):  # fits one datagram; deeper than the parser's recursion allows
        pkt = b"#bundle\0" + struct.pack(">Q", 1) + struct.pack(">i", len(pkt)) + pkt
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(pkt, ("127.0.0.1", server.port))
    assert wait_for(lambda: server.stats["malformed"] == 1)
    send(server, "/vj/param/zoom", 1.25)
    assert server.reg.get("zoom") == 1.25


def _client() -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.settimeout(2.0)
    return s


def _recv(s: socket.socket) -> tuple[str, list]:
    from pythonosc.osc_message import OscMessage

    msg = OscMessage(s.recv(8192))
    return msg.address, list(msg.params)


def test_feedback_echoes_changes_to_other_clients():
    reg = default_registry()
    with OscServer(reg, port=0, feedback=True) as srv, _client() as a, _client() as b:
        for c in (a, b):  # both clients make themselves known
            c.sendto(_osc("/vj/param/hud", 1.0), ("127.0.0.1", srv.port))
        assert wait_for(lambda: len(srv.clients) == 2)
        a.sendto(_osc("/vj/param/zoom", 1.5), ("127.0.0.1", srv.port))
        assert _recv(b) == ("/vj/param/zoom", [1.5])  # b follows a's fader
        reg.set("contrast", 0.5, "midi")  # a knob elsewhere: both follow
        assert _recv(a) == ("/vj/param/contrast", [0.5])
        assert _recv(b) == ("/vj/param/contrast", [0.5])
        a.settimeout(0.2)
        with pytest.raises(TimeoutError):
            a.recv(8192)  # a was not sent its own zoom back
    assert srv.stats["feedback_errors"] == 0
    n = srv.stats["feedback_sent"]
    reg.set("zoom", 0.7, "midi")  # stopped: no more feedback
    assert srv.stats["feedback_sent"] == n


def test_feedback_to_a_fixed_port_and_off_by_default():
    reg = default_registry()
    with _client() as listener:
        fb_port = listener.getsockname()[1]
        with (
            OscServer(reg, port=0, feedback=True, feedback_port=fb_port) as srv,
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx,
        ):
            tx.sendto(_osc("/vj/param/hud", 0.0), ("127.0.0.1", srv.port))
            assert wait_for(lambda: len(srv.clients) == 1)
            reg.set("saturation", 1.5, "preset")
            assert _recv(listener) == ("/vj/param/saturation", [1.5])
    with OscServer(reg, port=0) as srv, _client() as c:
        c.sendto(_osc("/vj/param/hud", 1.0), ("127.0.0.1", srv.port))
        assert wait_for(lambda: srv.stats["handled"] == 1)
        reg.set("saturation", 0.5, "preset")
        assert srv.clients == [] and srv.stats["feedback_sent"] == 0


def _osc(address: str, value: float) -> bytes:
    m = OscMessageBuilder(address)
    m.add_arg(float(value))
    return m.build().dgram
