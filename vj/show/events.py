"""Timestamped inputs waiting for the Show: a thread-safe event queue and the session event log.

Any thread puts; the Show's tick takes everything stamped up to its time, in time order (ties
keep arrival order), so two presses between two frames are two presses at their own times.
The log is JSON lines, one ControlEvent each: replaying it offline reproduces the show.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Iterable
from pathlib import Path

from vj.fsutil import atomic_write_bytes
from vj.show.frame import ControlEvent

MAX_PENDING = 65536  # a stalled Show must not grow the queue without bound
MAX_LOG_BYTES = 64 << 20  # an event log larger than this is not a session log


class EventLogError(ValueError):
    """A broken event-log file: names the file and line."""


class TimedQueue:
    """Items with a `t_ns` (events, audio features), put from any thread, taken in time order.

    `take_until(t)` returns the items with t_ns <= t sorted by time (stable), and keeps the
    rest. Items stamped before the last take are still returned (late arrivals are applied at
    the next tick rather than lost). Beyond MAX_PENDING the oldest are dropped and counted.
    """

    def __init__(self, key=lambda x: x.t_ns) -> None:
        self._items: list = []
        self._lock = threading.Lock()
        self._key = key
        self.dropped = 0

    def put(self, item) -> None:
        with self._lock:
            self._items.append(item)
            if len(self._items) > MAX_PENDING:
                del self._items[0]
                self.dropped += 1

    def take_until(self, t_ns: int) -> list:
        key = self._key
        with self._lock:
            items = self._items
            if not items:
                return []
            if key(items[-1]) <= t_ns and all(  # the common case: in order, all due
                key(items[i]) <= key(items[i + 1]) for i in range(len(items) - 1)
            ):
                self._items = []
                return items
            due = [x for x in items if key(x) <= t_ns]
            self._items = [x for x in items if key(x) > t_ns]
        due.sort(key=key)  # stable: equal times keep arrival order
        return due

    def __len__(self) -> int:
        return len(self._items)


def event_to_json(ev: ControlEvent) -> str:
    return json.dumps(
        {"t_ns": int(ev.t_ns), "source": ev.source, "name": ev.name, "value": ev.value},
        separators=(",", ":"),
    )


def write_event_log(path: str | Path, events: Iterable[ControlEvent]) -> Path:
    """Write events as JSON lines, atomically (temp + rename)."""
    path = Path(path)
    text = "".join(event_to_json(e) + "\n" for e in events)
    atomic_write_bytes(path, text.encode())
    return path


def read_event_log(path: str | Path) -> list[ControlEvent]:
    """Read a JSON-lines event log; any bad line is an EventLogError naming file:line."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise EventLogError(f"{path}: {exc.strerror or exc}") from None
    if size > MAX_LOG_BYTES:
        raise EventLogError(f"{path}: {size} bytes is larger than an event log may be")
    out: list[ControlEvent] = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            out.append(_parse(line, f"{path}:{n}"))
    out.sort(key=lambda e: e.t_ns)
    return out


def _parse(line: str, where: str) -> ControlEvent:
    try:
        d = json.loads(line)
    except json.JSONDecodeError as exc:
        raise EventLogError(f"{where}: not JSON ({exc.msg})") from None
    if not isinstance(d, dict):
        raise EventLogError(f"{where}: expected an object with t_ns, source, name, value")
    unknown = set(d) - {"t_ns", "source", "name", "value"}
    if unknown:
        raise EventLogError(f"{where}: unknown key {sorted(unknown)[0]!r}")
    t, name = d.get("t_ns"), d.get("name")
    source, value = d.get("source", "session"), d.get("value", 1.0)
    if not isinstance(t, int) or isinstance(t, bool) or t < 0:
        raise EventLogError(f"{where}: t_ns must be a non-negative integer, got {t!r}")
    if not isinstance(name, str) or not name or len(name) > 200:
        raise EventLogError(f"{where}: name must be a non-empty string")
    if not isinstance(source, str) or len(source) > 200:
        raise EventLogError(f"{where}: source must be a string")
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise EventLogError(f"{where}: value must be a number or a string, got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise EventLogError(f"{where}: value must be finite")
    if isinstance(value, str) and len(value) > 4096:
        raise EventLogError(f"{where}: value string too long")
    return ControlEvent(t, source, name, float(value) if not isinstance(value, str) else value)
