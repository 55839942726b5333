"""MIDI activity for the HUD: how many messages came in, the newest one decoded, and when.

Written from the MIDI threads (one per bound port) and the Show's event path, read once per
frame by the render thread. Each update replaces small immutable values under a lock, so a
reader sees one whole message, never half of one.
"""

from __future__ import annotations

import threading

from vj.clock import now_ns

_NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


def describe(message) -> str | None:
    """A short text for one channel message ("cc 7=100 ch1", "note C3 on 96 ch10");
    None for system messages (clock, start/stop, SysEx) and malformed ones."""
    if not message:
        return None
    status = int(message[0])
    if not 0x80 <= status < 0xF0:
        return None
    data = [int(b) for b in message[1:3]]
    kind, ch = status & 0xF0, (status & 0x0F) + 1
    need = 1 if kind in (0xC0, 0xD0) else 2
    if len(data) < need or any(not 0 <= b <= 127 for b in data):
        return None
    if kind in (0x80, 0x90):
        name = f"{_NOTE_NAMES[data[0] % 12]}{data[0] // 12 - 1}"
        on = kind == 0x90 and data[1] > 0
        return f"note {name} {'on ' + str(data[1]) if on else 'off'} ch{ch}"
    if kind == 0xB0:
        return f"cc {data[0]}={data[1]} ch{ch}"
    if kind == 0xC0:
        return f"program {data[0]} ch{ch}"
    if kind == 0xE0:
        return f"bend {(data[0] | (data[1] << 7)) - 8192:+d} ch{ch}"
    if kind == 0xD0:
        return f"pressure {data[0]} ch{ch}"
    return f"poly pressure {data[0]}={data[1]} ch{ch}"  # 0xA0


class MidiActivity:
    """`message(msg, t_ns)` for every raw channel message (a MidiMapper's `on_message`);
    `event(ev)` for every ControlEvent that came from MIDI (the parameter it moved).

    MIDI clock and other system messages are left out: they arrive 24 times a beat and would
    keep the activity light on; the tempo line shows the clock.
    """

    def __init__(self, clock=now_ns) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self.messages = 0  # raw channel messages
        self.events = 0  # parameter writes / triggers from MIDI reaching the Show
        self._t_ns: int | None = None  # newest message or event
        self._last = ""  # decoded newest raw message
        self._param = ""  # newest parameter moved, "zoom 0.79"

    def message(self, message, t_ns: int | None = None) -> None:
        text = describe(message)
        if text is None:
            return
        t = self._clock() if t_ns is None else int(t_ns)
        with self._lock:
            self.messages += 1
            self._t_ns, self._last, self._param = t, text, ""  # its parameter follows

    def event(self, ev) -> None:
        """A ControlEvent; only those whose source is a MIDI mapper's count."""
        if not str(ev.source).startswith("midi"):
            return
        v = ev.value
        val = f"{v:.2f}" if isinstance(v, float | int) else str(v)
        with self._lock:
            self.events += 1
            self._t_ns, self._param = int(ev.t_ns), f"{ev.name} {val}"

    @property
    def count(self) -> int:
        """Messages seen (raw ones if a mapper reports them, else the events from MIDI)."""
        return self.messages or self.events

    def age_s(self, t_ns: int | None = None) -> float:
        """Seconds since the newest message or MIDI event; inf before the first."""
        with self._lock:
            t0 = self._t_ns
        if t0 is None:
            return float("inf")
        t = self._clock() if t_ns is None else t_ns
        return max(0.0, (t - t0) / 1e9)

    def last(self) -> str:
        """The newest raw message and the parameter it (or the newest event) moved."""
        with self._lock:
            parts = [p for p in (self._last, self._param) if p]
        return " > ".join(parts)
