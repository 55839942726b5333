"""Polling helper for tests that wait on another thread or process."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


def wait_for(cond: Callable[[], object], timeout: float = 10.0, step: float = 0.002) -> bool:
    """Poll until cond() holds; the timeout only bounds a hang, it is not a speed check."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(step)
    return bool(cond())


def wait_midi_path(send: Callable[[list[int]], None], mapper, timeout: float = 10.0) -> bool:
    """Send a tune request (0xF6) every 20 ms until `mapper` sees one: the JACK connection
    from the sender to vj's input is then in the graph. Events sent while JACK changes its
    graph can be dropped, so a test that sends right after binding first waits here.

    0xF6 is a system message: the mapper ignores it and the HUD does not count it."""
    seen = threading.Event()
    prev = mapper.on_message

    def spy(message, t_ns):
        if message and message[0] == 0xF6:
            seen.set()
        elif prev is not None:
            prev(message, t_ns)

    mapper.on_message = spy
    try:
        deadline = time.monotonic() + timeout
        while not seen.is_set() and time.monotonic() < deadline:
            send([0xF6])
            seen.wait(0.02)
    finally:
        mapper.on_message = prev
    return seen.is_set()
