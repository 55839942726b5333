"""Ableton Link tempo and beat/bar phase through the optional `aalink` package (TempoSource "link").

aalink needs a running asyncio loop, so `LinkTempo.start()` runs one on a daemon thread; `state`
reads the session from any thread. Without aalink, `start()` raises `LinkUnavailable` with the
install hint, and the arbiter just never sees "link" active.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import math
import threading
from typing import Any

from vj.clock import now_ns
from vj.tempo import TempoState

INSTALL_HINT = "Ableton Link needs the optional package aalink: pip install aalink"


class LinkUnavailable(RuntimeError):
    """Link cannot run here (package missing or failed to start); the message says why."""


def link_available() -> bool:
    """True when the aalink package can be imported (checked without importing it)."""
    return importlib.util.find_spec("aalink") is not None


class LinkTempo:
    """A Link session peer; a TempoSource named "link".

    Active only while `started` and, with `require_peers` (the default), while at least one
    other Link app is in the session: alone, Link would just echo its own start tempo and
    override every lower-priority source. The Link quantum is `beats_per_bar`, so
    `bar_position` agrees with the other peers' bars.
    """

    name = "link"

    def __init__(
        self, bpm: float = 120.0, beats_per_bar: int = 4, require_peers: bool = True
    ) -> None:
        if not (20.0 <= bpm <= 999.0):
            raise ValueError(f"LinkTempo: bpm {bpm} outside 20..999 (Link's range)")
        if beats_per_bar < 1:
            raise ValueError(f"LinkTempo: beats_per_bar {beats_per_bar} must be >= 1")
        self._bpm0 = float(bpm)
        self._bpb = int(beats_per_bar)
        self.require_peers = require_peers
        self._link: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------
    @property
    def started(self) -> bool:
        return self._link is not None

    def start(self, timeout_s: float = 5.0) -> None:
        """Join (or open) the Link session on the local network."""
        if self._link is not None:
            return
        try:
            aalink = importlib.import_module("aalink")
        except ImportError as exc:
            raise LinkUnavailable(f"{INSTALL_HINT} ({exc})") from None
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        box: dict[str, Any] = {}

        def run() -> None:
            asyncio.set_event_loop(loop)

            async def make() -> Any:  # aalink wants to be built inside a running loop
                link = aalink.Link(self._bpm0)
                link.quantum = self._bpb
                link.enabled = True
                return link

            try:
                box["link"] = loop.run_until_complete(make())
            except Exception as exc:  # a broken install or no network stack
                box["error"] = exc
                ready.set()
                return
            ready.set()
            loop.run_forever()

        thread = threading.Thread(target=run, name="vj-link", daemon=True)
        thread.start()
        if not ready.wait(timeout_s) or "error" in box:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(1.0)
            raise LinkUnavailable(f"Ableton Link failed to start: {box.get('error', 'timeout')}")
        self._loop, self._thread, self._link = loop, thread, box["link"]

    def stop(self) -> None:
        link, loop, thread = self._link, self._loop, self._thread
        self._link = self._loop = self._thread = None
        if link is not None:
            link.enabled = False
        if loop is not None:
            loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join(2.0)
        if loop is not None and not loop.is_running():
            loop.close()

    def __enter__(self) -> LinkTempo:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- session -----------------------------------------------------------------------
    @property
    def num_peers(self) -> int:
        link = self._link
        return 0 if link is None else int(link.num_peers)

    @property
    def tempo(self) -> float:
        link = self._link
        return 0.0 if link is None else float(link.tempo)

    def set_tempo(self, bpm: float) -> None:
        """Propose a tempo to the whole session (e.g. from tap tempo); ignored when stopped."""
        link = self._link
        if link is not None and math.isfinite(bpm) and 20.0 <= bpm <= 999.0:
            link.tempo = float(bpm)

    def status(self) -> str:
        """Short text for the HUD: 'off', 'alone' or 'N peers'."""
        if self._link is None:
            return "off"
        n = self.num_peers
        return "alone" if n == 0 else f"{n} peer{'s' if n != 1 else ''}"

    def state(self, t_ns: int) -> TempoState | None:
        link = self._link
        if link is None:
            return None
        try:
            if self.require_peers and link.num_peers == 0:
                return None
            beat = float(link.beat)  # session beat at Link's "now"
            t_read = now_ns()
            bpm = float(link.tempo)
        except Exception:  # stopped under us from another thread
            return None
        if not (bpm > 0 and math.isfinite(beat)):
            return None
        beats = beat + (t_ns - t_read) * bpm / 60e9  # move to the caller's time
        whole = math.floor(beats)
        phase = beats - whole
        return TempoState(bpm, phase, (whole % self._bpb) + phase, self._bpb, int(whole))
