"""Generator pacing and zero-copy frame hand-off between the generator and the display.

`FramePacer` tells the generator loop when to start its next frame: no sooner than the display
can show one (its measured swap interval), and, while the audio has no news, only at a slow
idle rate — instead of free-running hundreds of iterations a second against the audio thread
for the GIL. `FrameExchange` hands the engine's own ring buffers to the display: the generator
renders into a slot nobody reads, publishes it, the display takes the newest and releases it
once its upload is queued — no per-frame copy, and a frame being shown is never overwritten.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from vj.clock import now_ns


class FramePacer:
    """When to start the next generator frame (one pacer per generator loop).

    The display thread calls `display_swapped(t_ns)` after each swap; the generator calls
    `wait()` before a frame and `started()` as it reads the frame's inputs. Audio news is seen
    through `news` (a callable returning a counter that grows with each analysis result, e.g.
    `LatestSlot.version`) or pushed with `notify()`.
    """

    def __init__(
        self,
        display_fps: float = 60.0,
        idle_fps: float = 10.0,
        headroom: float = 0.95,
        news: Callable[[], int] | None = None,
        poll_s: float = 0.002,
        clock: Callable[[], int] = now_ns,
        sleep: Callable[[float], Any] | None = None,
        alpha: float = 0.1,
    ) -> None:
        if display_fps <= 0 or idle_fps <= 0:
            raise ValueError(f"pacer: fps must be positive, got {display_fps}, {idle_fps}")
        if not 0.5 <= headroom <= 1.0:
            raise ValueError(f"pacer: headroom {headroom} outside [0.5, 1]")
        self._display_ns = 1e9 / display_fps  # EMA of the display's swap interval
        self._idle_ns = 1e9 / idle_fps
        self._headroom = headroom  # start a little early: display jitter must not skip a frame
        self._news = news
        self._poll_s = poll_s
        self._clock = clock
        self._wake = threading.Event()
        self._sleep = sleep if sleep is not None else self._wait_event
        self._alpha = alpha
        self._last_swap: int | None = None
        self._last_start: int | None = None
        self._seen = news() if news is not None else 0
        self._pushed = False
        self._closed = False
        self.frames = 0
        self.idle_frames = 0  # frames started without news (timed by idle_fps)

    # -- inputs ---------------------------------------------------------------------------
    def display_swapped(self, t_ns: int | None = None) -> None:
        """The display presented a frame; its interval sets the generator's rate."""
        t = self._clock() if t_ns is None else t_ns
        if self._last_swap is not None and t > self._last_swap:
            dt = min(max(t - self._last_swap, 1e6), 1e9)  # 1 ms .. 1 s: a stall is not a rate
            self._display_ns += self._alpha * (dt - self._display_ns)
        self._last_swap = t

    def notify(self) -> None:
        """Push audio news (from the audio thread): wakes a waiting generator."""
        self._pushed = True
        self._wake.set()

    def close(self) -> None:
        """Make `wait` return False now and from now on (the show is stopping)."""
        self._closed = True
        self._wake.set()

    # -- state ----------------------------------------------------------------------------
    @property
    def display_fps(self) -> float:
        return 1e9 / self._display_ns

    def min_gap_ns(self) -> float:
        return self._display_ns * self._headroom

    def has_news(self) -> bool:
        if self._pushed:
            return True
        return self._news is not None and self._news() != self._seen

    def due_ns(self) -> int:
        """Earliest start of the next frame given what is known now (news may bring it in)."""
        if self._last_start is None:
            return self._clock()
        gap = self.min_gap_ns() if self.has_news() else max(self.min_gap_ns(), self._idle_ns)
        return int(self._last_start + gap)

    # -- the generator's side -------------------------------------------------------------
    def wait(self) -> bool:
        """Block until the next frame is due; False once `close()` was called."""
        while not self._closed:
            if self._last_start is None:
                return True
            now = self._clock()
            gap_end = self._last_start + int(self.min_gap_ns())
            if now < gap_end:  # never faster than the display
                self._sleep((gap_end - now) / 1e9)
                continue
            idle_end = self._last_start + int(max(self.min_gap_ns(), self._idle_ns))
            if self.has_news() or now >= idle_end:
                return True
            # no news yet: doze in short steps (or until notify) up to the idle deadline
            self._sleep(min(self._poll_s, (idle_end - now) / 1e9))
        return False

    def started(self, t_ns: int | None = None) -> None:
        """The generator is starting a frame now (call after reading its inputs)."""
        t = self._clock() if t_ns is None else t_ns
        if not self.has_news() and self._last_start is not None:
            self.idle_frames += 1
        self._last_start = t
        self._seen = self._news() if self._news is not None else 0
        self._pushed = False
        self.frames += 1

    def _wait_event(self, seconds: float) -> None:
        if seconds > 0 and self._wake.wait(seconds):
            self._wake.clear()


class FrameExchange:
    """The engine's ring slots shared by one generator and one display, without copies.

    Generator: `slot = acquire()`, `engine.render(controls, slot=slot)`, `publish(slot, item)`.
    Display: `got = take()` → (slot, item) of the newest unread frame or None; upload it;
    `release(slot)` once the upload is queued (a CUDA upload queued on the engine's stream is
    ordered before any later render into that slot). A slot is never handed out while it is
    published or held, so with n slots and a display holding at most n - 2 frames (n = 3: one
    written, one published, one shown; release before the next take) `acquire` always finds one.
    Published frames replaced before the display took them are counted in `dropped`: their slot
    is simply reused, nothing was copied for them.
    """

    def __init__(self, n_slots: int = 3) -> None:
        if n_slots < 3:
            raise ValueError(
                f"FrameExchange needs >= 3 slots (write, publish, show), got {n_slots}"
            )
        self.n_slots = int(n_slots)
        self._lock = threading.Lock()
        self._writing: int | None = None
        self._published: tuple[int, Any] | None = None
        self._held: set[int] = set()
        self._next = 0  # round-robin start, so every slot gets used (and tested)
        self.published = 0
        self.taken = 0
        self.dropped = 0

    def acquire(self) -> int:
        """A slot nobody reads (not published, not held) for the next frame."""
        with self._lock:
            if self._writing is not None:
                raise RuntimeError(f"FrameExchange: slot {self._writing} acquired, not published")
            busy = set(self._held)
            if self._published is not None:
                busy.add(self._published[0])
            for k in range(self.n_slots):
                slot = (self._next + k) % self.n_slots
                if slot not in busy:
                    self._writing, self._next = slot, slot + 1
                    return slot
        raise RuntimeError(f"FrameExchange: all {self.n_slots} slots held by the display")

    def publish(self, slot: int, item: Any) -> None:
        """Make the frame in `slot` the newest; an unread older one is dropped (slot reused)."""
        with self._lock:
            if slot != self._writing:
                raise RuntimeError(
                    f"FrameExchange: publish of slot {slot}, acquired {self._writing}"
                )
            if self._published is not None:
                self.dropped += 1
            self._published, self._writing = (slot, item), None
            self.published += 1

    def abandon(self, slot: int) -> None:
        """The frame being written into `slot` failed (a generator error): the slot is free
        again and nothing is published, so the display keeps what it has."""
        with self._lock:
            if slot == self._writing:
                self._writing = None

    def take(self) -> tuple[int, Any] | None:
        """The newest unread frame as (slot, item), now held by the caller; None if none."""
        with self._lock:
            got, self._published = self._published, None
            if got is not None:
                self._held.add(got[0])
                self.taken += 1
            return got

    def release(self, slot: int) -> None:
        """The display is done reading `slot` (its upload is queued): it may be rewritten."""
        with self._lock:
            if slot not in self._held:
                raise RuntimeError(f"FrameExchange: release of slot {slot}, which is not held")
            self._held.discard(slot)

    def held(self) -> set[int]:
        with self._lock:
            return set(self._held)
