"""The live recording keeps going: a failed file is kept, said once, and a new one is started.

When a `LiveRecorder`'s encoder fails mid-show (the disk fills, the folder vanishes, the
encoder raises), the recorder has already kept the file's complete fragments at its path.
`SupervisedRecording` notices on the next frame, reports it once through the shared
`Supervisor` policy (vj/supervise.py) and, after a back-off, starts a new file beside the old
one (`rec.mp4` → `rec-2.mp4`, never overwriting), a bounded number of times. The render loop
only ever calls `push_frame`, which never blocks and never raises.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from vj.render.record import next_free_path
from vj.supervise import StageError, Supervisor

__all__ = ["RecordingFailed", "SupervisedRecording", "next_free_path"]


class RecordingFailed(StageError):
    """A recording's file failed; the message says why and what was kept."""


class SupervisedRecording:
    """The render thread's recording: `push_frame` / `push_audio` like a `LiveRecorder`.

    `open_recorder(path)` makes and starts a LiveRecorder; the first one is opened here (its
    error is the caller's: a bad path is the user's mistake). `files` lists every file
    finished so far as (path or None, stats, reason or None).
    """

    def __init__(
        self,
        path: str | Path,
        open_recorder: Callable[[Path], object],
        warn: Callable[[str], None] | None = None,
        max_restarts: int = 10,  # 1 + 2 + 4 + 8 + 16 + 30 × 5 s: a drive re-plugged in 3 min
        backoff_s: float = 1.0,
        max_backoff_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.first_path = Path(path)
        self._open = open_recorder
        self.rec = open_recorder(self.first_path)
        self._retired = False  # the current recorder failed and was reported
        self.files: list[tuple[Path | None, dict, str | None]] = []
        # one warning per failed file (frames while down are silent): no rate limit needed
        self.supervisor = Supervisor(
            "recording",
            self._push,
            self._restart,
            warn,
            backoff_s=backoff_s,
            max_backoff_s=max_backoff_s,
            warn_interval_s=0.0,
            max_restarts=max_restarts,
            clock=clock,
        )

    @property
    def status(self) -> str:
        """A HUD line, "" while recording."""
        return self.supervisor.status

    def push_frame(self, rgb, t_ns: int) -> bool:
        """Render thread: queue a picture; False when it was not recorded. Never raises."""
        return bool(self.supervisor.step(rgb, t_ns, fallback=False))

    def push_audio(self, block, t_end_ns: int) -> None:
        """Audio thread: to the current recorder (a failed one ignores it)."""
        self.rec.push_audio(block, t_end_ns)

    def _push(self, rgb, t_ns: int) -> bool:
        rec = self.rec
        if rec.error is not None and not self._retired:
            raise self._retire(rec)
        return rec.push_frame(rgb, t_ns)

    def _retire(self, rec) -> RecordingFailed:
        """The encoder thread has ended (and kept what it could): say what happened."""
        self._retired = True
        rec.close(timeout=5.0)  # joins the finished encoder thread; the file is dealt with
        reason = _reason(rec.error)
        stats = rec.stats()
        self.files.append((rec.salvaged, stats, reason))
        if rec.salvaged is not None:
            kept = f"kept {rec.salvaged} up to its last full second"
        elif stats["frames_written"] <= rec.fps:
            kept = "nothing could be kept (it failed within its first second)"
        else:
            kept = "nothing could be kept"
        return RecordingFailed(f"{reason} in {rec.path.name}; {kept}")

    def _restart(self) -> None:
        path = next_free_path(self.first_path)
        self.rec = self._open(path)  # a failure here is counted and retried by the supervisor
        self._retired = False

    def close(self, t_stop_ns: int | None = None) -> tuple[Path | None, dict, str | None] | None:
        """Finalise the current file (playable after Ctrl-C): its (path or None, stats, failure
        reason or None), or None when it had failed and was reported already."""
        rec = self.rec
        if self._retired:
            return None
        self._retired = True
        path = rec.close(t_stop_ns=t_stop_ns)
        if path is None:  # failed at the end, or unnoticed: its fragments were kept
            self.files.append((rec.salvaged, rec.stats(), _reason(rec.error)))
        else:
            self.files.append((path, rec.stats(), None))
        return self.files[-1]


def _reason(exc: BaseException | None) -> str:
    """Why a file failed, without its path (RecordingError has it in words already)."""
    if exc is None:
        return "unknown error"
    words = getattr(exc, "reason", None)
    if words:
        return str(words)
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__
