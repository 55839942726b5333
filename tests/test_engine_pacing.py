"""Generator pacing on a virtual clock, and zero-copy frame hand-off through FrameExchange."""

from __future__ import annotations

import heapq
import itertools
import math
import threading

import numpy as np
import pytest

from tests.test_engine_nets import small_generator
from vj.audio.features import AudioFeatures
from vj.gan.engine import Engine
from vj.gan.pacing import FrameExchange, FramePacer
from vj.react.modulation import Modulator

MS = 1_000_000


class VirtualClock:
    """Virtual time with scheduled events (audio publishes, display swaps). `sleep` advances
    to the deadline or to the first event that wakes the sleeper, whichever comes first."""

    def __init__(self) -> None:
        self.t = 0
        self._q: list = []
        self._n = itertools.count()

    def now(self) -> int:
        return self.t

    def at(self, t_ns: int, fn, wakes: bool = True) -> None:
        heapq.heappush(self._q, (int(t_ns), next(self._n), fn, wakes))

    def every(self, start_ns: int, period_ns: float, stop_ns: int, fn, wakes=True) -> None:
        t = float(start_ns)
        while t < stop_ns:
            self.at(t, fn, wakes)
            t += period_ns

    def advance(self, seconds: float, wakeable: bool = False) -> None:
        end = self.t + max(1, math.ceil(seconds * 1e9))
        while self._q and self._q[0][0] <= end:
            t, _, fn, wakes = heapq.heappop(self._q)
            self.t = max(self.t, t)
            fn()
            if wakeable and wakes:
                return
        self.t = max(self.t, end)

    def sleep(self, seconds: float) -> None:
        self.advance(seconds, wakeable=True)


class Audio:
    """Counts analysis results, like LatestSlot.version."""

    def __init__(self) -> None:
        self.version = 0

    def publish(self) -> None:
        self.version += 1


def run_generator(clock, pacer, until_ns, cost_s=0.002):
    starts = []
    while clock.now() < until_ns and pacer.wait():
        pacer.started()
        starts.append(clock.now())
        clock.advance(cost_s)  # rendering: events still happen, nothing wakes it
    return np.array(starts)


def test_paced_to_the_display_not_the_audio_rate():
    clock, audio = VirtualClock(), Audio()
    pacer = FramePacer(60.0, idle_fps=10, news=lambda: audio.version, clock=clock.now,
                       sleep=clock.sleep)  # fmt: skip
    clock.every(0, 256 / 48000 * 1e9, 2000 * MS, audio.publish)  # news every 5.3 ms
    clock.every(0, 1e9 / 60, 2000 * MS, pacer.display_swapped, wakes=False)
    starts = run_generator(clock, pacer, 2000 * MS, cost_s=0.002)  # a 2 ms GPU frame
    # free-running, 2 ms frames would be 1000 frames in 2 s; paced, about the display's 120
    assert 115 <= len(starts) <= 128, len(starts)
    assert np.diff(starts).min() >= 0.95 * 1e9 / 60 - 1  # never faster than the display
    assert pacer.idle_frames == 0 and abs(pacer.display_fps - 60) < 0.5


def test_no_audio_news_idles_then_news_starts_a_frame_at_once():
    clock, audio = VirtualClock(), Audio()
    pacer = FramePacer(60.0, idle_fps=10, news=lambda: audio.version, clock=clock.now,
                       sleep=clock.sleep)  # fmt: skip
    clock.every(0, 1e9 / 60, 3000 * MS, pacer.display_swapped, wakes=False)
    clock.every(0, 5 * MS, 500 * MS, audio.publish)  # audio for 0.5 s, then it stops
    clock.at(1550 * MS, audio.publish)  # one late analysis result, between idle frames
    starts = run_generator(clock, pacer, 2000 * MS)
    quiet = starts[(starts > 600 * MS) & (starts < 1500 * MS)]
    assert 8 <= len(quiet) <= 10, len(quiet)  # idle_fps 10, not 60 and not hundreds
    assert np.allclose(np.diff(quiet), 100 * MS, atol=1 * MS)
    after = starts[starts >= 1550 * MS][0]
    assert after - 1550 * MS <= 2 * MS  # polled every 2 ms: the news is not held back
    assert pacer.idle_frames >= 8


def test_follows_a_slow_display():
    clock, audio = VirtualClock(), Audio()
    pacer = FramePacer(60.0, news=lambda: audio.version, clock=clock.now, sleep=clock.sleep)
    clock.every(0, 3 * MS, 3000 * MS, audio.publish)
    clock.every(0, 50 * MS, 3000 * MS, pacer.display_swapped, wakes=False)  # software GL, 20 fps
    starts = run_generator(clock, pacer, 3000 * MS)
    late = starts[starts > 1500 * MS]  # once the EMA has settled
    fps = (len(late) - 1) * 1e9 / (late[-1] - late[0])
    assert 19 <= fps <= 22, fps


def test_notify_wakes_a_real_wait_and_close_ends_it():
    pacer = FramePacer(1000.0, idle_fps=0.1)  # idle deadline 10 s away
    pacer.started()
    t = threading.Timer(0.05, pacer.notify)
    t.start()
    assert pacer.wait()  # returns on the notify, long before the 10 s idle deadline
    pacer.started()
    threading.Timer(0.05, pacer.close).start()
    assert not pacer.wait()
    t.join()


def test_pacer_rejects_bad_rates():
    with pytest.raises(ValueError, match="fps must be positive"):
        FramePacer(0)
    with pytest.raises(ValueError, match="headroom"):
        FramePacer(60, headroom=0.1)


def test_exchange_never_hands_out_a_held_or_published_slot():
    ex = FrameExchange(3)
    rng = np.random.default_rng(0)
    held: set[int] = set()
    for _ in range(2000):
        op = rng.integers(0, 3)
        if op == 0:  # generator: one frame
            s = ex.acquire()
            assert s not in held
            ex.publish(s, object())
        elif op == 1 and len(held) < ex.n_slots - 2:  # the display holds n - 2 frames at most
            got = ex.take()
            if got is not None:
                held.add(got[0])
        elif held:
            s = held.pop()
            ex.release(s)
    assert ex.published == ex.taken + ex.dropped + (1 if ex._published else 0)
    with pytest.raises(ValueError, match=">= 3 slots"):
        FrameExchange(2)
    with pytest.raises(RuntimeError, match="not held"):
        FrameExchange(3).release(0)
    greedy = FrameExchange(3)
    for _ in range(2):  # a display that keeps two frames leaves no slot to write
        greedy.publish(greedy.acquire(), None)
        greedy.take()
    greedy.publish(greedy.acquire(), None)
    with pytest.raises(RuntimeError, match="all 3 slots"):
        greedy.acquire()


def test_engine_frames_reach_the_display_uncopied_and_intact():
    """Generator and display threads over the real CPU engine: each frame the display reads is
    the engine's own buffer (no copy), and it does not change while the display holds it."""
    G = small_generator(seed=0)
    eng = Engine(G, device="cpu", n_buffers=3, threads=1)
    m = Modulator(G, seed=0)
    ex = FrameExchange(eng.n_buffers)
    stop = threading.Event()
    errors: list[str] = []
    ring = [b.numpy() for b in eng._ring.bufs]

    def generator():
        k = 0
        while not stop.is_set():
            c = m.step(AudioFeatures(onset_count=k), {}, 0.05 * k)
            slot = ex.acquire()
            f = eng.render(c, slot=slot)
            ex.publish(slot, f)
            k += 1

    th = threading.Thread(target=generator)
    th.start()
    shown = 0
    try:
        while shown < 25:
            got = ex.take()
            if got is None:
                continue
            slot, f = got
            if not any(np.shares_memory(f.rgba, r) for r in ring):
                errors.append("published frame is a copy")
            snap = f.rgba.copy()
            threading.Event().wait(0.01)  # a slow upload: the generator keeps going meanwhile
            if not np.array_equal(snap, f.rgba):
                errors.append(f"frame {f.index} changed while held")
            ex.release(slot)
            shown += 1
    finally:
        stop.set()
        th.join()
    assert not errors, errors[:3]
    assert ex.published > shown  # the generator ran ahead; its extra frames cost no copies


def test_exchange_abandon_frees_the_slot_being_written():
    from vj.gan.pacing import FrameExchange

    ex = FrameExchange(3)
    slot = ex.acquire()
    ex.abandon(slot)  # the render into it failed
    assert ex.take() is None  # nothing was published
    assert ex.acquire() in range(3)  # and the next frame finds a slot
