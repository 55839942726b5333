"""OSC control in (every parameter at /vj/param/NAME, triggers, presets, cues, tap) and OSC
feature out (/vj/audio/...), on python-osc; bad packets are counted and dropped, never raised.

Addresses (exact match, no wildcards):
    /vj/param/NAME f         set NAME (clamped to its range)
    /vj/param/NAME/norm f    set NAME from 0..1 across its range
    /vj/trigger/NAME [f]     press trigger NAME (no argument, or argument >= 0.5: button down)
    /vj/preset s             load preset by name (on_preset callback)
    /vj/cue i                fire cue number (on_cue callback)
    /vj/tap [f]              tap tempo (the "tap" trigger parameter)
"""

from __future__ import annotations

import logging
import math
import os
import socket
import threading
from collections.abc import Callable
from typing import Any

import pythonosc
from pythonosc import osc_packet
from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.osc_server import BlockingOSCUDPServer

from vj.audio.features import AudioFeatures
from vj.params import ParamRegistry

SOURCE = "osc"
_PYTHONOSC_DIR = os.path.dirname(pythonosc.__file__)


class _QuietPythonOsc(logging.Filter):
    """Drops python-osc's root-logger warnings about malformed packets (we count them instead):
    a hostile sender must not be able to flood stderr."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.pathname.startswith(_PYTHONOSC_DIR)


def _number(args: list[Any]) -> float | None:
    """The first argument as a finite float (int, float or bool), else None."""
    if len(args) < 1:
        return None
    a = args[0]
    if isinstance(a, bool):
        return 1.0 if a else 0.0
    if isinstance(a, int | float):
        v = float(a)
        return v if math.isfinite(v) else None
    return None


def _pressed(args: list[Any]) -> bool | None:
    """Button semantics: no argument = press; a number >= 0.5 = press; below = release."""
    if not args:
        return True
    v = _number(args)
    return None if v is None else v >= 0.5


class _VjDispatcher(Dispatcher):
    """Exact-address dispatch into the server; ignores bundle timetags (no sleeping)."""

    def __init__(self, server: OscServer) -> None:
        super().__init__(strict_timing=False)
        self._srv = server

    def call_handlers_for_packet(self, data: bytes, client_address: Any) -> list:
        srv = self._srv
        srv._count("packets")
        try:
            packet = osc_packet.OscPacket(data)
        except Exception:  # ParseError and anything a hostile packet provokes in the parser
            srv._count("malformed")
            return []
        for timed in packet.messages:
            try:
                srv._handle(timed.message.address, list(timed.message.params), client_address)
            except Exception as exc:  # a callback failed; the server keeps serving
                srv._count("errors")
                srv.last_error = f"{type(exc).__name__}: {exc}"
        return []


class OscServer:
    """UDP OSC server on its own thread, writing into a ParamRegistry.

    Binds 127.0.0.1 by default (a club network is not a trusted one); port 0 picks a free
    port, readable as `port` after construction. Counters in `stats`.

    With `feedback`, every parameter change (from MIDI, presets, other OSC clients) is echoed
    as `/vj/param/NAME f` to the last `max_clients` clients that sent a valid message (at
    their source address, or at `feedback_port` on their host — TouchOSC-style layouts
    listen on a fixed port), so faders and buttons on a tablet follow the show. A client's
    own writes are not echoed back to it. Writes carry the source `osc@HOST:PORT`.
    """

    def __init__(
        self,
        registry: ParamRegistry,
        host: str = "127.0.0.1",
        port: int = 9000,
        on_preset: Callable[[str], None] | None = None,
        on_cue: Callable[[int], None] | None = None,
        feedback: bool = False,
        feedback_port: int | None = None,
        max_clients: int = 8,
    ) -> None:
        self._registry = registry
        self._feedback = feedback
        self._feedback_port = feedback_port
        self._max_clients = max_clients
        self._clients: dict[tuple, str] = {}  # address → its source tag; insertion-ordered
        self._on_preset = on_preset
        self._on_cue = on_cue
        self.stats: dict[str, int] = dict.fromkeys(
            ("packets", "messages", "handled", "unknown", "bad_args", "malformed", "errors",
             "feedback_sent", "feedback_errors"), 0
        )  # fmt: skip
        self.last_error = ""
        self.host = host
        try:
            self._server = BlockingOSCUDPServer((host, port), _VjDispatcher(self))
        except (OSError, OverflowError) as exc:
            raise OSError(f"OSC server: cannot listen on {host}:{port}: {exc}") from exc
        self.port: int = int(self._server.server_address[1])
        self._thread: threading.Thread | None = None
        self._log_filter = _QuietPythonOsc()

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            return
        # python-osc logs bad packets with logging.warning() on the root logger; filter those
        # while we serve (removed again in stop)
        logging.getLogger().addFilter(self._log_filter)
        if self._feedback:
            self._registry.add_listener(self._on_param)
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name=f"vj-osc:{self.port}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(2.0)
            self._thread = None
        logging.getLogger().removeFilter(self._log_filter)
        self._registry.remove_listener(self._on_param)
        self._server.server_close()

    def __enter__(self) -> OscServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def address(self) -> str:
        return f"osc.udp://{self.host}:{self.port}/"

    # -- dispatch (server thread) ------------------------------------------------------
    def _count(self, key: str) -> None:
        self.stats[key] += 1

    @property
    def clients(self) -> list[tuple]:
        """Addresses that feedback goes to (most recent last)."""
        return list(self._clients)

    def _source(self, client: Any) -> str:
        if not isinstance(client, tuple) or len(client) < 2:
            return SOURCE
        return f"{SOURCE}@{client[0]}:{client[1]}"

    def _remember(self, client: Any, tag: str) -> None:
        if not self._feedback or not isinstance(client, tuple) or len(client) < 2:
            return
        clients = dict(self._clients)  # replace, never mutate: the listener iterates it
        clients.pop(client, None)
        clients[client] = tag
        while len(clients) > self._max_clients:
            clients.pop(next(iter(clients)))
        self._clients = clients

    def _on_param(self, name: str, value: float, source: str) -> None:
        """Registry listener (writer's thread): echo the change to the known clients."""
        clients = self._clients
        if not clients:
            return
        try:
            dgram = _msg(f"/vj/param/{name}", [float(value)])
        except Exception:
            self._count("feedback_errors")
            return
        for addr, tag in clients.items():
            if tag == source:
                continue  # that client just sent it; its fader is already there
            dest = addr if self._feedback_port is None else (addr[0], self._feedback_port)
            try:
                self._server.socket.sendto(dgram, dest)
                self._count("feedback_sent")
            except OSError:
                self._count("feedback_errors")

    def _handle(self, address: str, args: list[Any], client: Any = None) -> None:
        self._count("messages")
        reg = self._registry
        src = self._source(client)
        ok: bool | None = None  # None: unknown address, False: known address, bad arguments
        if address.startswith("/vj/param/"):
            name = address[len("/vj/param/") :]
            norm = name.endswith("/norm")
            if norm:
                name = name[: -len("/norm")]
            if name in reg:
                v = _number(args)
                ok = v is not None
                if ok:
                    if norm:
                        reg.set_normalized(name, v, src)
                    elif reg.spec(name).kind == "trigger":
                        if v >= 0.5:
                            reg.trigger(name, src)
                    else:
                        reg.set(name, v, src)
        elif address.startswith("/vj/trigger/"):
            name = address[len("/vj/trigger/") :]
            if name in reg and reg.spec(name).kind == "trigger":
                p = _pressed(args)
                ok = p is not None
                if p:
                    reg.trigger(name, src)
        elif address == "/vj/tap":
            if "tap" in reg:
                p = _pressed(args)
                ok = p is not None
                if p:
                    reg.trigger("tap", src)
        elif address == "/vj/preset":
            ok = len(args) >= 1 and isinstance(args[0], str) and 0 < len(args[0]) <= 256
            if ok and self._on_preset is not None:
                self._on_preset(args[0])
        elif address == "/vj/cue":
            a = args[0] if args else None
            if isinstance(a, float) and a.is_integer():
                a = int(a)
            ok = isinstance(a, int) and not isinstance(a, bool) and 0 <= a < 1_000_000
            if ok and self._on_cue is not None:
                self._on_cue(a)
        if ok is None:
            self._count("unknown")
        elif ok:
            self._count("handled")
            self._remember(client, src)
        else:
            self._count("bad_args")


class OscFeatureSender:
    """Sends audio features as OSC to host:port for other tools (Resolume, TouchDesigner...).

    Per `send`: /vj/audio/rms f, /vj/audio/bands f×n, /vj/audio/centroid f, and, only when new
    onsets/beats happened since the last call, /vj/audio/onset i (count) and
    /vj/audio/beat i f (count, bpm). All in one bundle-free burst; send errors are counted.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 9001) -> None:
        self.host, self.port = host, port
        self._addr = (host, port)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._sock = socket.socket(family, socket.SOCK_DGRAM)
        self._sock.setblocking(False)  # never stall the caller on a full buffer
        self._last_onset = 0
        self._last_beat = 0
        self.sent = 0
        self.errors = 0

    def send(self, features: AudioFeatures) -> None:
        f = features
        msgs = [
            _msg("/vj/audio/rms", [float(f.rms)]),
            _msg("/vj/audio/bands", [float(b) for b in f.bands]),
            _msg("/vj/audio/centroid", [float(f.centroid)]),
        ]
        if f.onset_count != self._last_onset:
            self._last_onset = f.onset_count
            msgs.append(_msg("/vj/audio/onset", [int(f.onset_count)]))
        if f.beat_count != self._last_beat:
            self._last_beat = f.beat_count
            msgs.append(_msg("/vj/audio/beat", [int(f.beat_count), float(f.bpm)]))
        for m in msgs:
            try:
                self._sock.sendto(m, self._addr)
                self.sent += 1
            except OSError:  # nobody listening (ICMP refused), buffer full, network down
                self.errors += 1

    def close(self) -> None:
        self._sock.close()


def _msg(address: str, args: list[Any]) -> bytes:
    b = OscMessageBuilder(address)
    for a in args:
        b.add_arg(
            a,
            OscMessageBuilder.ARG_TYPE_INT
            if isinstance(a, int)
            else OscMessageBuilder.ARG_TYPE_FLOAT,
        )
    return b.build().dgram
