"""GPU time per shader pass (GL timer queries, else wall time around a finish); slow-shader guard.

A valid shader can still be far too slow (a loop of 10⁶ texture reads drops the show to a frame
a second). The effect library times every pass; when a reload makes a pass explode against the
previous version's time, the previous version comes back; a shader that is hopelessly slow from
its first build is bypassed. Both are reported once, naming the file and the times.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from statistics import median

import moderngl


class PassTimer:
    """Times passes by name; results arrive `lag` frames later so reading never stalls the GPU.

    Uses `GL_TIME_ELAPSED` queries where the context has them; otherwise wall time around the
    pass plus a finish (exact on a CPU rasteriser, an upper bound elsewhere).
    """

    def __init__(self, ctx: moderngl.Context, lag: int = 2, finish: Callable | None = None):
        self.ctx = ctx
        self.lag = max(1, lag)
        self._free: list[moderngl.Query] = []
        self._pending: deque[tuple[int, object, moderngl.Query]] = deque()
        self._frame = 0
        self._wall: list[tuple[object, int]] = []  # (name, ns) of this frame's wall-timed passes
        self._finish = finish or ctx.finish
        try:
            q = ctx.query(time=True)
            with q:
                pass
            _ = q.elapsed
            self._free.append(q)
            self.method = "GL timer query"
        except Exception:  # no ARB_timer_query / GL 3.3 timer support: time the CPU side
            self.method = "wall time around glFinish"

    def run(self, name, draw: Callable[[], None]) -> None:
        """Run `draw()` (one pass) and time it under `name` (any hashable key)."""
        if self.method == "GL timer query":
            q = self._free.pop() if self._free else self.ctx.query(time=True)
            with q:
                draw()
            self._pending.append((self._frame, name, q))
        else:
            t0 = time.perf_counter_ns()
            draw()
            self._finish()
            self._wall.append((name, time.perf_counter_ns() - t0))

    def end_frame(self) -> list[tuple[object, float]]:
        """Close a frame; returns (name, ms) for every pass whose result is now known."""
        out: list[tuple[object, float]] = []
        if self.method != "GL timer query":
            out = [(n, ns / 1e6) for n, ns in self._wall]
            self._wall = []
        while self._pending and self._pending[0][0] <= self._frame - self.lag:
            _, name, q = self._pending.popleft()
            out.append((name, q.elapsed / 1e6))
            self._free.append(q)
        self._frame += 1
        return out

    def flush(self) -> list[tuple[object, float]]:
        """Every outstanding result now (waits for the GPU; for tests and shutdown)."""
        self._frame += self.lag + 1
        out = self.end_frame()
        self._frame -= 1
        return out

    def release(self) -> None:
        self._pending.clear()  # moderngl queries are freed with their Python objects
        self._free.clear()


@dataclass
class _Track:
    generation: int = -1
    baseline_ms: float | None = None  # median pass time of the last accepted version
    samples: list[float] = field(default_factory=list)
    settled: bool = False


@dataclass(frozen=True)
class GuardVerdict:
    name: str
    action: str  # "revert" (reload too slow: previous back), "bypass" or "warn" (always too slow)
    new_ms: float
    old_ms: float | None


class SlowShaderGuard:
    """Decides from pass times whether a (re)built shader is acceptable.

    After each build it takes `probe` samples; their median is compared with the previous
    version's: `factor` times slower *and* `min_extra_ms` more → revert. A first build (no
    previous) slower than `max_ms` per pass → bypass. Accepted versions become the baseline.
    """

    def __init__(
        self,
        probe: int = 5,
        factor: float = 4.0,
        min_extra_ms: float = 2.0,
        max_ms: float = 250.0,
        bypass: bool = True,
    ) -> None:
        self.probe, self.factor, self.min_extra_ms = probe, factor, min_extra_ms
        self.max_ms = max_ms
        self.bypass = bypass  # False: a first build over max_ms is only reported
        self._tracks: dict[str, _Track] = {}

    def baseline(self, name: str) -> float | None:
        t = self._tracks.get(name)
        return None if t is None else t.baseline_ms

    def observe(self, name: str, generation: int, ms: float) -> GuardVerdict | None:
        """One pass time of `name` built as `generation`; a verdict when it must go."""
        t = self._tracks.setdefault(name, _Track())
        if generation != t.generation:
            t.generation, t.samples, t.settled = generation, [], False
        if t.settled:
            # a running EMA keeps the baseline current as the output size or load changes
            t.baseline_ms = (
                ms if t.baseline_ms is None else t.baseline_ms + 0.05 * (ms - t.baseline_ms)
            )
            return None
        t.samples.append(ms)
        if len(t.samples) < self.probe:
            return None
        new = median(t.samples)
        old = t.baseline_ms
        t.settled = True
        if old is not None and new > self.factor * old and new - old > self.min_extra_ms:
            t.settled = False  # the reverted version is probed again under its own generation
            return GuardVerdict(name, "revert", new, old)
        if old is None and new > self.max_ms:
            t.baseline_ms = None if self.bypass else new
            return GuardVerdict(name, "bypass" if self.bypass else "warn", new, None)
        t.baseline_ms = new
        return None

    def forget(self, name: str) -> None:
        self._tracks.pop(name, None)
