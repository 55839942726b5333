"""A sink's own thread fed through a latest-value hand-off of preallocated frame buffers.

The render thread fills a free buffer (a readback lands there) and publishes it; the sender
thread takes the newest, flips it to top-row-first and sends it. A frame the sink was too slow
for is overwritten, never queued (counted in `dropped`). A failing sink (an exception in its
`send` or `reopen`) is caught on the sender thread by the shared `Supervisor` policy
(vj/supervise.py): said on stderr at most once per 5 s as "output ndi failed: ...", shown in
`status()` for the HUD, and reopened after a back-off (`retry_s` doubling to 10 s) while the
show goes on; the render thread never waits on it. A sink whose library is tied to one
thread (`close_on_sender_thread`: Spout's GL context) is also closed on the sender thread.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable

import numpy as np

from vj.supervise import Supervisor


class OutputUnavailable(RuntimeError):
    """An output cannot be opened here; the message says what is missing and how to fix it."""


class FrameSender:
    def __init__(
        self,
        sink,
        width: int,
        height: int,
        retry_s: float = 0.5,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        self.sink = sink
        self.kind = getattr(sink, "kind", type(sink).__name__)
        self.size = (int(width), int(height))
        comps = getattr(sink, "components", 4)
        # three buffers: one being sent, one newest, one being filled; GL row order
        self._bufs = [np.zeros((height, width, comps), np.uint8) for _ in range(3)]
        self._lock = threading.Lock()  # guards the three indices only, never held while sending
        self._newest = -1
        self._busy = -1
        self._filling = -1
        self._wake = threading.Event()
        self._stop = False
        self.sent = 0
        self.dropped = 0
        self.last_send_ms = 0.0
        self._close_here = bool(getattr(sink, "close_on_sender_thread", False))
        self.supervisor = Supervisor(
            f"output {self.kind}",
            self._send,
            restart=sink.reopen,
            warn=warn or _warn,
            backoff_s=retry_s,
            max_backoff_s=10.0,
        )
        self._thread = threading.Thread(target=self._run, name=f"vj-out-{self.kind}", daemon=True)
        self._thread.start()

    @property
    def components(self) -> int:
        return self._bufs[0].shape[2]

    def buffer(self) -> np.ndarray:
        """A free [H, W, C] uint8 buffer to fill (GL row order, bottom first); then `publish()`."""
        with self._lock:
            i = next(k for k in range(3) if k not in (self._newest, self._busy))
            self._filling = i
        return self._bufs[i]

    def publish(self) -> None:
        """Hand the buffer from `buffer()` to the sender thread (never blocks)."""
        with self._lock:
            if self._newest >= 0:
                self.dropped += 1  # the sink never saw the previous one
            self._newest, self._filling = self._filling, -1
        self._wake.set()

    def submit(self, frame: np.ndarray) -> None:
        """Copy a GL-order [H, W, C] frame in and publish it (one memcpy on the caller's thread)."""
        np.copyto(self.buffer(), frame[..., : self.components])
        self.publish()

    @property
    def error(self) -> str | None:
        """What failed while the sink is down, else None."""
        sup = self.supervisor
        return None if sup.healthy else f"output {self.kind} failed: {sup.last_error}"

    @property
    def errors(self) -> int:
        return self.supervisor.failures

    def _run(self) -> None:
        try:
            self._loop()
        finally:
            if self._close_here:
                self._close_sink()

    def _close_sink(self) -> None:
        try:
            self.sink.close()
        except Exception:  # closing a broken sink must not stop the others from closing
            pass

    def _loop(self) -> None:
        while not self._stop:
            self._wake.wait(0.5)
            self._wake.clear()
            with self._lock:
                i, self._newest = self._newest, -1
                self._busy = i
            if i < 0:
                continue
            try:  # a failed sink must not end the show: caught, said, reopened after a while
                self.supervisor.step(i)
            finally:
                with self._lock:
                    self._busy = -1

    def _send(self, i: int) -> None:
        t0 = time.perf_counter()
        self.sink.send(np.ascontiguousarray(self._bufs[i][::-1]))  # top row first
        self.last_send_ms = (time.perf_counter() - t0) * 1e3
        self.sent += 1

    def status(self) -> str:
        """One HUD line."""
        s = f"{self.kind}: {self.sent} sent, {self.dropped} dropped, {self.last_send_ms:.1f} ms"
        return s + (f"  ! {self.supervisor.status}" if not self.supervisor.healthy else "")

    def close(self) -> None:
        self._stop = True
        self._wake.set()
        self._thread.join(timeout=2.0)
        if not self._close_here:
            self._close_sink()


def _warn(msg: str) -> None:
    print(f"vj: {msg}", file=sys.stderr, flush=True)
