"""Live recording: presented frames and input audio → MP4 at a constant frame rate, encoded on
its own thread so the render loop never waits on the encoder.

Time is the one clock. Output frame n covers `t0 + n / fps`; each presented picture goes to the
slot nearest its present time, gaps are filled by repeating the picture that was on screen
(counted as `repeated`), and of two pictures landing in one slot the later wins (`dropped`).
Audio blocks arrive with their capture times (`t_end_ns` of the block's last sample) and are
placed at their position on the same timeline, so picture and sound stay in sync; a jump in the
audio clock (a dropout, device drift) is re-aligned with silence or a cut, never a slow drift.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from pathlib import Path

import numpy as np

from vj.clock import now_ns
from vj.render.record import RecordingError, VideoWriter

_AUDIO_CHUNK = 1024  # samples per AAC frame
_RESYNC_S = 0.04  # audio clock off by more than this → re-aligned (smaller: treated as jitter)


class LiveRecorder:
    """Record frames pushed by the render thread and audio pushed by the audio thread.

    `push_frame` copies into one of a few preallocated buffers and never blocks: with every
    buffer queued (the encoder is behind) the frame is dropped and counted in `queue_full`.
    `close()` drains the queue and finalises the file (playable after Ctrl-C); `abort()` drops it.
    The file is fragmented MP4: when the encoder fails (disk full, an encoder error) the
    complete fragments are kept at `path` (`salvaged`, all but the last second at most) and
    `error` says why; the render thread sees `error` and may start a new recording.
    """

    def __init__(
        self,
        path: str | Path,
        width: int,
        height: int,
        fps: float,
        sample_rate: int | None = 48000,
        channels: int = 2,
        queue_frames: int = 6,
        crf: int = 23,
        preset: str = "ultrafast",
        audio_seconds: float = 8.0,
    ) -> None:
        self.path = Path(path)
        self.fps = float(fps)
        self.sample_rate = int(sample_rate) if sample_rate else 0
        self.channels = channels if self.sample_rate else 0
        self._writer = VideoWriter(
            path,
            width,
            height,
            fps,
            sample_rate=self.sample_rate or 48000,
            crf=crf,
            preset=preset,
            audio_channels=self.channels,
            fragmented=True,
        )
        self._pool = np.zeros((queue_frames + 1, height, width, 3), np.uint8)  # [k, H, W, 3]
        self._free: queue.SimpleQueue[int] = queue.SimpleQueue()
        for i in range(len(self._pool)):
            self._free.put(i)
        self._q: queue.Queue = queue.Queue()
        # audio ring on the file's sample timeline: position p lives at p % cap
        cap = int(max(1.0, audio_seconds) * max(self.sample_rate, 1))
        self._ring = np.zeros((cap, max(self.channels, 1)), np.float32)  # [cap, ch]
        self._aw = 0  # file position after the newest audio written (audio thread)
        self._ar = 0  # file position after the newest audio encoded (encoder thread)
        self._audio_started = False
        self._t0: int | None = None
        self._t_stop: int | None = None
        self._last_t: int | None = None  # newest present pushed
        self._closing = False
        self._aborting = False
        self.error: BaseException | None = None  # set once the failed file was dealt with
        self.salvaged: Path | None = None  # where the failed recording's fragments were kept
        self.frames_in = 0
        self.dropped = 0  # two pictures in one output slot: the earlier is not in the file
        self.repeated = 0  # output slots filled by repeating the picture still on screen
        self.queue_full = 0  # pictures not recorded because the encoder was behind
        self.audio_resyncs = 0
        self.audio_lost = 0  # samples overwritten before the encoder got to them
        self._thread = threading.Thread(target=self._run, name="vj-recorder", daemon=True)

    # -- producers --------------------------------------------------------------------------
    def start(self, t0_ns: int | None = None) -> None:
        """Time zero of the recording (the one clock); frames and audio before it are ignored."""
        self._t0 = now_ns() if t0_ns is None else int(t0_ns)
        self._thread.start()

    def push_frame(self, rgb: np.ndarray, t_ns: int) -> bool:
        """Render thread: queue a presented picture [H, W, 3] uint8; False when it was dropped."""
        if self._t0 is None or self._closing or self.error is not None:
            return False
        try:
            i = self._free.get_nowait()
        except queue.Empty:
            self.queue_full += 1
            return False
        np.copyto(self._pool[i], rgb)
        self._q.put((i, int(t_ns)))
        self._last_t = int(t_ns)
        self.frames_in += 1
        return True

    def push_audio(self, block: np.ndarray, t_end_ns: int) -> None:
        """Audio thread: a captured block [n] or [n, ch] whose last sample is at t_end_ns."""
        if not self.channels or self._t0 is None or self._closing:
            return
        x = block if block.ndim == 2 else block[:, None]
        n = len(x)
        if n == 0:
            return
        sr = self.sample_rate
        pos = (int(t_end_ns) - self._t0) * sr // 1_000_000_000 - n + 1  # first sample's slot
        w = self._aw
        if self._audio_started:
            if abs(pos - w) <= _RESYNC_S * sr:
                pos = w  # contiguous: timestamp jitter is not a gap
            else:
                self.audio_resyncs += 1
        if pos + n <= w or pos + n <= 0:
            return  # wholly before what is written (or before time zero)
        skip = max(w - pos, -pos, 0)
        x, pos = x[skip:], pos + skip
        cap = len(self._ring)
        if pos > w:  # a gap: silence up to this block
            gap = min(pos - w, cap)
            self._ring_put(pos - gap, np.zeros((gap, self._ring.shape[1]), np.float32))
        self._ring_put(pos, x)
        self._audio_started = True
        self._aw = pos + len(x)  # published after the samples are in place

    def _ring_put(self, pos: int, x: np.ndarray) -> None:
        cap, ch = self._ring.shape
        if len(x) > cap:
            x, pos = x[-cap:], pos + len(x) - cap
        i = pos % cap
        k = min(len(x), cap - i)
        src = x if x.shape[1] == ch else (x[:, :ch] if x.shape[1] > ch else np.repeat(x, ch, 1))
        self._ring[i : i + k] = src[:k]
        if k < len(x):
            self._ring[: len(x) - k] = src[k:]

    # -- encoder thread ---------------------------------------------------------------------
    def _slot(self, t_ns: int) -> int:
        return int(round((t_ns - self._t0) * self.fps / 1e9))

    def _run(self) -> None:
        w = self._writer
        pending: tuple[np.ndarray, int] | None = None  # (picture, its output slot)
        next_check = time.monotonic() + 1.0
        try:
            while True:
                if time.monotonic() >= next_check:  # writes to a deleted file go nowhere
                    next_check += 1.0
                    if not os.path.exists(w.tmp_path):
                        raise RecordingError(
                            f"{self.path}: its file was deleted while recording",
                            reason="its file was deleted (was the folder removed?)",
                        )
                try:
                    item = self._q.get(timeout=0.05)
                except queue.Empty:
                    item = None
                if item == "stop":
                    break
                if item is not None:
                    i, t = item
                    rgb = self._pool[i].copy()
                    self._free.put(i)
                    s = self._slot(t)
                    if pending is not None and s <= pending[1]:
                        self.dropped += 1
                        pending = (rgb, pending[1])
                    else:
                        if pending is not None:
                            self._emit(pending, s)
                        pending = (rgb, s)
                self._drain_audio(final=False)
            if self._aborting:
                w.abort()
                return
            end = self._slot(self._t_stop or now_ns())
            if pending is not None:
                self._emit(pending, max(end, pending[1] + 1))
            self._drain_audio(final=True)
            w.close()
        except BaseException as exc:
            self.salvaged = w.salvage()  # complete fragments kept at `path`; never raises
            self.error = exc  # published last: a reader of `error` sees the file dealt with

    def _emit(self, pending: tuple[np.ndarray, int], next_slot: int) -> None:
        """Write a picture and hold it (repeats) until `next_slot`; the first picture also
        stands in for the slots before it, so the file starts at time zero."""
        w = self._writer
        w.write(pending[0])
        n = next_slot - w.frames_written
        if n > 0:
            w.repeat(n)
            self.repeated += n

    def _drain_audio(self, final: bool) -> None:
        if not self.channels:
            return
        cap = len(self._ring)
        aw = self._aw
        if aw - self._ar > cap:
            self.audio_lost += aw - self._ar - cap
            self._ar = aw - cap
        while aw - self._ar >= _AUDIO_CHUNK or (final and aw > self._ar):
            n = min(_AUDIO_CHUNK, aw - self._ar)
            i = self._ar % cap
            idx = (np.arange(n) + i) % cap if i + n > cap else slice(i, i + n)
            self._writer.write_audio(self._ring[idx].T)  # [ch, n]
            self._ar += n

    # -- finish -----------------------------------------------------------------------------
    def close(self, timeout: float = 60.0, t_stop_ns: int | None = None) -> Path | None:
        """Finish encoding what was pushed and finalise the file, which ends at `t_stop_ns`
        (default: one frame after the last picture pushed — the loop that pushed it has
        stopped — or now if none was); returns its path, or None when the encoder failed
        (`error` says why; `salvaged` names where its complete fragments were kept)."""
        if self._t0 is None:
            self._writer.close()
            return self.path
        if not self._closing:
            self._closing = True
            if t_stop_ns is not None:
                self._t_stop = int(t_stop_ns)
            elif self._last_t is not None:
                self._t_stop = self._last_t + int(1e9 / self.fps)
            else:
                self._t_stop = now_ns()
            self._q.put("stop")
        self._thread.join(timeout)
        if self._thread.is_alive():
            self.error = TimeoutError(f"recording {self.path}: encoder did not finish")
            return None
        return None if self.error is not None else self.path

    def abort(self) -> None:
        self._closing = self._aborting = True
        if self._thread.is_alive():
            self._q.put("stop")
            self._thread.join(5.0)
        self._writer.abort()

    def stats(self) -> dict[str, int]:
        return {
            "frames_in": self.frames_in,
            "frames_written": self._writer.frames_written,
            "dropped": self.dropped,
            "repeated": self.repeated,
            "queue_full": self.queue_full,
            "audio_samples": self._ar,
            "audio_resyncs": self.audio_resyncs,
            "audio_lost": self.audio_lost,
        }
