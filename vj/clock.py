"""The process's one monotonic clock (ns) and the per-frame stage stamps the profiler reads."""

from __future__ import annotations

import threading
import time

import numpy as np

# The only time source in vj. Everything that stamps uses this.
now_ns = time.monotonic_ns

# Stages of one generator frame's life, in pipeline order.
#   capture   : end of the audio block whose features drove the frame (stream timing)
#   features  : the AudioFeatures snapshot was published
#   gen_start : generator thread began modulation + forward for the frame
#   gen_end   : output buffer finished (CUDA event on a GPU)
#   upload    : render thread uploaded it to a texture (first time shown)
#   composite : compositor finished drawing the first display frame that used it
#   swap      : buffer swap (or readback, offscreen) of that display frame
STAGES: tuple[str, ...] = (
    "capture",
    "features",
    "gen_start",
    "gen_end",
    "upload",
    "composite",
    "swap",
)
STAGE_INDEX = {name: i for i, name in enumerate(STAGES)}


class StampLog:
    """Preallocated ring of stage stamps keyed by generator frame id.

    Writers from several threads each write their own column of a row, so no lock is needed
    for stamping; `rows()` copies the completed rows for analysis.
    """

    def __init__(self, capacity: int = 4096) -> None:
        self._cap = capacity
        self._t = np.zeros((capacity, len(STAGES)), np.int64)  # [capacity, n_stages], 0 = unset
        self._ids = np.full(capacity, -1, np.int64)  # frame id held by each row
        self._lock = threading.Lock()  # only for row (re)assignment, not per stamp

    def stamp(self, frame_id: int, stage: str, t_ns: int | None = None) -> None:
        row = frame_id % self._cap
        if self._ids[row] != frame_id:
            with self._lock:
                if self._ids[row] != frame_id:
                    self._t[row] = 0
                    self._ids[row] = frame_id
        col = STAGE_INDEX[stage]
        if self._t[row, col] == 0:  # first display of a frame counts; later re-shows don't
            self._t[row, col] = now_ns() if t_ns is None else t_ns

    def get(self, frame_id: int, stage: str) -> int:
        row = frame_id % self._cap
        if self._ids[row] != frame_id:
            return 0
        return int(self._t[row, STAGE_INDEX[stage]])

    def rows(self, complete_only: bool = True) -> np.ndarray:
        """Copy of the stamps [n, n_stages] (ns), ordered by frame id."""
        with self._lock:
            ids = self._ids.copy()
            t = self._t.copy()
        keep = ids >= 0
        if complete_only:
            keep &= np.all(t > 0, axis=1)
        order = np.argsort(ids[keep])
        return t[keep][order]


def stage_latencies_ms(rows: np.ndarray) -> dict[str, np.ndarray]:
    """Per-stage durations (ms) between consecutive stages, plus `total` = swap − capture."""
    out: dict[str, np.ndarray] = {}
    for a, b in zip(STAGES[:-1], STAGES[1:], strict=True):
        out[f"{a}->{b}"] = (rows[:, STAGE_INDEX[b]] - rows[:, STAGE_INDEX[a]]) / 1e6
    out["total"] = (rows[:, STAGE_INDEX["swap"]] - rows[:, STAGE_INDEX["capture"]]) / 1e6
    return out
