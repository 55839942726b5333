"""MIDI input (and feedback output) through python-rtmidi: ports chosen by regex, hot-plugged.

A poll thread lists ports every `poll_interval` s and (re)binds every port whose name matches;
the rtmidi callbacks only hand bytes to `MidiMapper.handle`, which writes the registry.
"""

from __future__ import annotations

import os
import re
import sys
import threading
from collections import deque
from collections.abc import Callable

import rtmidi

from vj.clock import now_ns
from vj.control.mapping import MidiMapper
from vj.params import ParamRegistry
from vj.preset import MidiConfig

# Our own ports carry this in their names, so a scan never binds vj to itself (under JACK our
# feedback output shows up in the input list, and our input in the output list).
OWN_TAG = "vj-midi-"

APIS = {
    "alsa": rtmidi.API_LINUX_ALSA,
    "jack": rtmidi.API_UNIX_JACK,
    "coremidi": rtmidi.API_MACOSX_CORE,
    "winmm": rtmidi.API_WINDOWS_MM,
}


class MidiError(RuntimeError):
    """A MIDI problem the user can fix (no such port, no MIDI system); says what is there."""


def resolve_api(api: str = "auto") -> int:
    """'auto': ALSA on Linux when /dev/snd/seq exists, else JACK; the OS default elsewhere."""
    if api == "auto":
        compiled = rtmidi.get_compiled_api()
        if sys.platform.startswith("linux"):
            if rtmidi.API_LINUX_ALSA in compiled and os.path.exists("/dev/snd/seq"):
                return rtmidi.API_LINUX_ALSA
            if rtmidi.API_UNIX_JACK in compiled:
                return rtmidi.API_UNIX_JACK
        return rtmidi.API_UNSPECIFIED
    try:
        return APIS[api]
    except KeyError:
        raise MidiError(f"unknown MIDI API {api!r}; allowed: auto, {', '.join(APIS)}") from None


def _api_name(api: int) -> str:
    return rtmidi.get_api_display_name(api) if api != rtmidi.API_UNSPECIFIED else "default"


def _open(cls, api: int, client: str):
    try:
        return cls(api, name=client)
    except rtmidi.SystemError as exc:
        hint = {
            rtmidi.API_UNIX_JACK: " (start one, or name it with JACK_DEFAULT_SERVER)",
            rtmidi.API_LINUX_ALSA: " (is the ALSA sequencer there? sudo modprobe snd-seq)",
        }.get(api, "")
        raise MidiError(f"MIDI ({_api_name(api)}) unavailable: {exc}{hint}") from None


def _ports(obj) -> list[str]:
    return [p for p in obj.get_ports() if OWN_TAG not in p]


def _sync_ports(bound: dict, present: list[str], pattern, drop, bind) -> None:
    """Drop the bound ports that are gone, bind the present ones `pattern` matches (sorted)."""
    names = set(present)
    for name in [n for n in bound if n not in names]:
        drop(name)
    for name in sorted(names):
        if name not in bound and pattern.search(name):
            bind(name)


def list_midi_ports(api: str = "auto") -> list[str]:
    """Names of the MIDI input ports (controllers) there are now, vj's own left out."""
    return _list(rtmidi.MidiIn, api)


def list_midi_outputs(api: str = "auto") -> list[str]:
    """Names of the MIDI output ports (where feedback can go), vj's own left out."""
    return _list(rtmidi.MidiOut, api)


def _list(cls, api: str) -> list[str]:
    m = _open(cls, resolve_api(api), "vj-list")
    try:
        return _ports(m)
    finally:
        m.delete()


def _jack_server_stamp() -> tuple[int, int] | None:
    """(inode, mtime) of the JACK server's socket, or None if there is none to see. jackd
    (JACK 2 on Linux) creates /dev/shm/jack_<server>_<uid>_0 anew each time it starts."""
    server = os.environ.get("JACK_DEFAULT_SERVER") or "default"
    uid = os.getuid() if hasattr(os, "getuid") else 0
    try:
        st = os.stat(f"/dev/shm/jack_{server}_{uid}_0")
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns)


def _compile(pattern: str, what: str) -> re.Pattern:
    try:
        return re.compile(pattern, re.IGNORECASE)
    except re.error as exc:
        raise MidiError(f"bad {what} pattern {pattern!r}: {exc}") from None


class MidiInput:
    """Every input port whose name matches `pattern` (regex, searched, case-insensitive) → mapper.

    With `feedback_pattern`, output ports matching it receive the mapper's feedback messages
    (and the full state whenever one is bound). Ports that vanish are dropped; ports that
    (re)appear are bound at the next poll, so a replugged device is back within
    `poll_interval` s. A replug quicker than one poll can go unnoticed.
    """

    def __init__(
        self,
        mapper: MidiMapper,
        pattern: str,
        api: str = "auto",
        feedback_pattern: str | None = None,
        poll_interval: float = 0.5,
        client_name: str = "vj",
        on_event: Callable[[str], None] | None = None,
        own_mapper: bool = False,
    ) -> None:
        self.mapper = mapper
        self._own_mapper = own_mapper  # stop() also closes the mapper (unhooks its listener)
        self.pattern = pattern
        self._re = _compile(pattern, "MIDI port")
        self._fb_re = _compile(feedback_pattern, "MIDI feedback port") if feedback_pattern else None
        self._api = resolve_api(api)
        self._client = client_name
        self._poll = poll_interval
        self.on_event = on_event
        self.events: deque[str] = deque(maxlen=64)  # bind/unbind history for the HUD or logs
        self.scan_errors = 0
        self._ins: dict[str, rtmidi.MidiIn] = {}
        self._outs: dict[str, rtmidi.MidiOut] = {}
        self._fresh: list[rtmidi.MidiOut] = []  # feedback outputs not yet sent the state
        self._state_lock = threading.Lock()  # bind/unbind vs stop
        self._send_lock = threading.Lock()  # rtmidi output is not safe from several threads
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._scan_in = None
        self._scan_out = None
        self._jack_stamp = None  # identity of the JACK server our clients belong to
        self._dead: list = []  # rtmidi clients of a dead JACK server (see _check_jack_server)
        self.server_restarts = 0

    @classmethod
    def from_device(cls, device, mapper: MidiMapper, api: str = "auto", **kw) -> MidiInput:
        """From a preset's `MidiDevice` (feedback to `feedback_port`, or `port`, if enabled)."""
        fb = (device.feedback_port or device.port) if device.feedback else None
        return cls(mapper, device.port, api=api, feedback_pattern=fb, **kw)

    @property
    def ports(self) -> list[str]:
        return list(self._ins)

    @property
    def feedback_ports(self) -> list[str]:
        return list(self._outs)

    @property
    def summary(self) -> str:
        """One line for the HUD: what is bound."""
        if not self._ins:
            return f"MIDI: waiting for {self.pattern!r}"
        fb = f" → {len(self._outs)} feedback" if self._outs else ""
        return f"MIDI: {', '.join(self._ins)}{fb}"

    def start(self, require: bool = True) -> None:
        """Bind what matches now, then keep polling. `require`: no match → MidiError."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._jack_stamp = _jack_server_stamp() if self._api == rtmidi.API_UNIX_JACK else None
        self._open_scanners()
        if self._fb_re is not None and self.mapper.send is None:
            self.mapper.send = self._send
        self._scan()
        if require and not self._ins:
            available = _ports(self._scan_in)
            self.stop()
            listed = "\n  ".join(available) if available else "(none)"
            raise MidiError(
                f"no MIDI input port matches {self.pattern!r} ({_api_name(self._api)}); "
                f"available:\n  {listed}"
            )
        self._thread = threading.Thread(target=self._run, name="vj-midi-poll", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        self._thread = None
        with self._state_lock:
            if self.mapper.send == self._send:
                self.mapper.send = None
            for name in list(self._ins):
                self._drop_in(name, quiet=True)
            self._fresh.clear()
            for name in list(self._outs):
                self._drop_out(name, quiet=True)
            for obj in (self._scan_in, self._scan_out):
                if obj is not None:
                    obj.delete()
            self._scan_in = self._scan_out = None
        if self._own_mapper:
            self.mapper.close()

    def __enter__(self) -> MidiInput:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- polling -------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.wait(self._poll):
            try:
                self._scan()
            except Exception as exc:  # keep polling: a flaky MIDI system must not end hot-plug
                self.scan_errors += 1
                self._event(f"MIDI scan failed: {exc}")

    def _open_scanners(self) -> None:
        self._scan_in = _open(rtmidi.MidiIn, self._api, f"{self._client}-scan")
        if self._fb_re is not None:
            self._scan_out = _open(rtmidi.MidiOut, self._api, f"{self._client}-scan")

    def _check_jack_server(self) -> None:
        """A restarted JACK server leaves our clients dead (their port lists go stale, no
        events arrive): when the server's socket is a new one, drop and re-create them all."""
        if self._api != rtmidi.API_UNIX_JACK or self._jack_stamp is None:
            return
        stamp = _jack_server_stamp()
        if stamp is None or stamp == self._jack_stamp:
            return
        self._jack_stamp = stamp
        self.server_restarts += 1
        self._event("JACK server restarted: re-binding MIDI")
        # Clients of a dead server are kept, never closed: closing them races libjack's own
        # clean-up of the dead connection (seen to segfault). A few kB per restart.
        with self._send_lock:
            dead = [*self._ins.values(), *self._outs.values(), self._scan_in, self._scan_out]
            self._dead.extend(m for m in dead if m is not None)
            gone = list(self._ins)
            self._ins.clear()
            self._outs.clear()
        self._fresh.clear()
        for name in gone:
            self._event(f"MIDI in gone: {name}")
        self._scan_in = self._scan_out = None
        self._open_scanners()

    def _scan(self) -> None:
        with self._state_lock:
            if self._stop.is_set():
                return
            self._check_jack_server()
            if self._scan_in is None:
                self._open_scanners()  # after a JACK restart; MidiError: the next poll retries
            _sync_ports(self._ins, _ports(self._scan_in), self._re, self._drop_in, self._bind_in)
            if self._fresh:
                # Show the current state on devices bound one poll ago: by now the connection
                # is in the graph (JACK can drop or repeat events sent during a graph change).
                with self._send_lock:
                    for m in self._fresh:
                        if m in self._outs.values():
                            for msg in self.mapper.feedback_messages():
                                m.send_message(msg)
                self._fresh.clear()
            if self._scan_out is not None and self._fb_re is not None:
                _sync_ports(
                    self._outs, _ports(self._scan_out), self._fb_re, self._drop_out, self._bind_out
                )

    def _bind_in(self, name: str) -> None:
        m = rtmidi.MidiIn(self._api, name=self._client)
        try:
            m.ignore_types(sysex=True, timing=False, active_sense=True)  # clock must come through
            # The callback first: an event arriving between open and set_callback would sit
            # in rtmidi's queue, which nothing reads.
            m.set_callback(self._callback)
            m.open_port(m.get_ports().index(name), f"{OWN_TAG}in")
        except (ValueError, rtmidi.RtMidiError) as exc:  # gone again between list and open
            m.delete()
            self._event(f"MIDI in {name!r} could not be opened: {exc}")
            return
        self._ins[name] = m
        self._event(f"MIDI in: {name}")

    def _bind_out(self, name: str) -> None:
        m = rtmidi.MidiOut(self._api, name=self._client)
        try:
            m.open_port(m.get_ports().index(name), f"{OWN_TAG}feedback")
        except (ValueError, rtmidi.RtMidiError) as exc:
            m.delete()
            self._event(f"MIDI feedback {name!r} could not be opened: {exc}")
            return
        self._outs[name] = m
        self._fresh.append(m)  # gets the full state at the next poll (see _scan)
        self._event(f"MIDI feedback: {name}")

    def _drop_in(self, name: str, quiet: bool = False) -> None:
        m = self._ins.pop(name)
        m.cancel_callback()
        m.close_port()
        m.delete()
        if not quiet:
            self._event(f"MIDI in gone: {name}")

    def _drop_out(self, name: str, quiet: bool = False) -> None:
        with self._send_lock:
            m = self._outs.pop(name)
            m.close_port()
            m.delete()
        if not quiet:
            self._event(f"MIDI feedback gone: {name}")

    def _event(self, text: str) -> None:
        self.events.append(text)
        if self.on_event is not None:
            self.on_event(text)

    # -- hot paths -----------------------------------------------------------------------
    def _callback(self, event, _data=None) -> None:
        self.mapper.handle(event[0], now_ns())  # handle() never raises

    def _send(self, msg: list[int]) -> None:
        with self._send_lock:
            for m in list(self._outs.values()):
                m.send_message(msg)


def open_devices(
    midi: MidiConfig,
    registry: ParamRegistry,
    on_program: Callable[[int], None] | None = None,
    on_realtime: Callable[[list[int], int], None] | None = None,
    api: str | None = None,
    on_event: Callable[[str], None] | None = None,
) -> list[MidiInput]:
    """Start one MidiInput per preset device (mappings, feedback, hot-plug).

    A device that is not plugged in yet is waited for (hot-plug), with a notice through
    `on_event` naming the ports there are; a MIDI system that is missing raises MidiError.
    """
    started: list[MidiInput] = []
    try:
        for dev in midi.devices:
            mapper = MidiMapper(registry, list(dev.mappings))
            mapper.on_program, mapper.on_realtime = on_program, on_realtime
            m = MidiInput.from_device(
                dev, mapper, api=api or midi.api, on_event=on_event, own_mapper=True
            )
            m.start(require=False)
            if not m.ports and on_event is not None:
                there = ", ".join(list_midi_ports(api or midi.api)) or "none"
                on_event(f"MIDI: nothing matches {dev.port!r} yet (ports: {there}); waiting")
            started.append(m)
    except MidiError:
        for m in started:
            m.stop()
        raise
    return started
