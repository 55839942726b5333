"""Polling helper for tests that wait on another thread or process."""

from __future__ import annotations

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
