"""MP4 recording with PyAV: H.264 (libx264, yuv420p) video plus AAC audio, written atomically.

Frames go to a temporary file beside the target; only a completed `close()` renames it into
place, so an aborted or crashed recording never leaves a half-written file at `path`. A temp
file left by a killed process (SIGKILL, power loss) is removed by the next writer of that path.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import itertools
import os
import re
import signal
import sys
import threading
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from vj.render.mp4_fragments import FRAGMENTED, keep_playable_prefix

_AUDIO_CHUNK = 1024  # samples per AAC frame
_NO_ROOM = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)


class RecordingError(OSError):
    """The recording could not be written (disk full, file too large, I/O error).

    `reason` is the cause in words, without the path and without what became of the file.
    """

    def __init__(self, *args, reason: str = "") -> None:
        super().__init__(*args)
        self.reason = reason


def x264_cpu_cap(cpuinfo: str = "/proc/cpuinfo") -> str | None:
    """x264's CPU flags capped at AVX2 where the CPU has AVX-512 (None: leave x264's own).

    libx264's AVX-512 code gives different bitstreams for the same frames from run to run
    (measured: 2-4 distinct outputs in 8 encodes of one 160x96 clip, with one thread too;
    asm=AVX2, SSE4.2 or no asm: one), which would break the offline render's promise of the
    same file for the same input. AVX2 costs x264 little at these sizes. Every AVX-512 CPU
    has AVX2, so the cap never asks for an instruction set the CPU lacks.
    """
    try:
        with open(cpuinfo, encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return "AVX2" if " avx512f" in line else None
    except OSError:
        pass
    return None


def _recording_error(path: Path, exc: OSError) -> RecordingError:
    if exc.errno in _NO_ROOM:
        what = "disk full" if exc.errno != errno.EFBIG else "file size limit reached"
        err = RecordingError(
            f"{path}: {what} while recording; nothing was written there", reason=what
        )
    else:
        what = f"cannot write the recording: {exc}"
        err = RecordingError(f"{path}: {what}", reason=what)
    err.errno = exc.errno
    return err


def remove_stale_parts(path: Path, recovered: list[Path] | None = None) -> list[Path]:
    """Deal with `.{name}.{pid}.part` temp files beside `path` whose process no longer exists:
    the playable part of a fragmented one (a killed live recording) is kept beside `path`
    under a new name (appended to `recovered`); the rest are removed (returned)."""
    removed = []
    pat = re.compile(rf"^\.{re.escape(path.name)}\.(\d+)\.part$")
    try:
        names = os.listdir(path.parent)
    except OSError:
        return removed
    for name in names:
        m = pat.match(name)
        if m is None or _pid_alive(int(m.group(1))):
            continue
        p = path.parent / name
        try:
            kept = keep_playable_prefix(p, next_free_path(path))  # None: removed
        except OSError:
            continue
        if kept is not None:
            if recovered is not None:
                recovered.append(kept)
            print(
                f"vj: recovered {kept}, the playable part of a recording left by a killed "
                f"process {m.group(1)}",
                file=sys.stderr,
            )
            continue
        removed.append(p)
        print(
            f"vj: removed {p}, a partial recording left by a killed process {m.group(1)}",
            file=sys.stderr,
        )
    return removed


def next_free_path(path: Path) -> Path:
    """`rec.mp4` → `rec-2.mp4`, `rec-3.mp4`, …: the first that neither exists nor is being
    written (no `.rec-2.mp4.<pid>.part` beside it)."""
    for k in itertools.count(2):
        cand = path.with_name(f"{path.stem}-{k}{path.suffix}")
        parts = glob.glob(glob.escape(str(path.parent / f".{cand.name}.")) + "*.part")
        if not cand.exists() and not parts:
            return cand
    raise AssertionError("unreachable")


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # a reused pid: ours has no open writer for this path yet
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True


class VideoWriter:
    """Write RGB frames (and optionally a whole audio track) to an MP4 file."""

    def __init__(
        self,
        path: str | os.PathLike,
        width: int,
        height: int,
        fps: float,
        audio: np.ndarray | None = None,
        sample_rate: int = 48000,
        crf: int = 20,
        preset: str = "veryfast",
        audio_channels: int = 0,
        fragmented: bool = False,
    ) -> None:
        """`audio`: the whole track [n, ch], muxed as frames are written. `audio_channels` > 0
        instead opens an audio stream fed piece by piece with `write_audio` (live recording).
        `fragmented`: a fragment per second, so `salvage()` can keep what was written when the
        recording fails (vj/render/mp4_fragments.py)."""
        self.path = Path(path)
        if width <= 0 or height <= 0 or width % 2 or height % 2:
            raise ValueError(
                f"video size {width}x{height}: width and height must be positive and even "
                "(H.264 yuv420p)"
            )
        if not fps > 0:
            raise ValueError(f"video fps must be positive, got {fps}")
        if not 0 <= crf <= 51:
            raise ValueError(f"crf {crf}: allowed range is 0..51")
        if not self.path.parent.is_dir():
            raise FileNotFoundError(f"output folder {self.path.parent} does not exist")
        self.size = (int(width), int(height))
        self.fps = Fraction(fps).limit_denominator(1001)
        self.frames_written = 0
        self._last: av.VideoFrame | None = None  # the last frame, when it was held
        self._prev: av.VideoFrame | None = None  # the last frame written, for repeat()
        self._audio = self._check_audio(audio)
        self._audio_pos = 0
        self.sample_rate = int(sample_rate)
        self.tmp_path = self.path.with_name(f".{self.path.name}.{os.getpid()}.part")
        self._closed = False
        self.fragmented = fragmented
        self.salvaged: Path | None = None  # where salvage() kept the written fragments
        self.stale_recovered: list[Path] = []  # killed live recordings kept beside `path`
        self.stale_removed = remove_stale_parts(self.path, self.stale_recovered)
        n_ch = self._audio.shape[0] if self._audio is not None else int(audio_channels)
        if n_ch not in (0, 1, 2):
            raise ValueError(f"audio_channels must be 0, 1 or 2, got {audio_channels}")

        try:
            self._container = av.open(
                str(self.tmp_path), mode="w", format="mp4", options=FRAGMENTED if fragmented else {}
            )
        except OSError as exc:
            raise _recording_error(self.path, exc) from exc
        try:
            v = self._container.add_stream("libx264", rate=self.fps)
            v.width, v.height = self.size
            v.pix_fmt = "yuv420p"
            v.time_base = 1 / self.fps
            v.options = {"crf": str(int(crf)), "preset": preset}
            cap = x264_cpu_cap()
            if cap is not None:
                v.options = {**v.options, "x264-params": f"asm={cap}"}
            self._video = v
            self._astream = None
            if n_ch:
                layout = "mono" if n_ch == 1 else "stereo"
                a = self._container.add_stream("aac", rate=self.sample_rate)
                a.layout = layout
                self._astream = a
                self._layout = layout
        except Exception:
            self.abort()
            raise

    @staticmethod
    def _check_audio(audio: np.ndarray | None) -> np.ndarray | None:
        if audio is None:
            return None
        a = np.asarray(audio)
        if a.ndim == 1:
            a = a[:, None]
        if a.ndim != 2 or a.shape[1] not in (1, 2):
            raise ValueError(
                f"audio must be [n, channels] with 1 or 2 channels, got shape {a.shape}"
            )
        # planar float for the AAC encoder: [channels, n]
        return np.ascontiguousarray(a.T, dtype=np.float32)

    def write(self, rgb: np.ndarray, hold: int = 1) -> None:
        """Append one frame [H, W, 3] uint8, top row first, shown for `hold` frame periods.

        A hold > 1 is encoded once with a longer duration (variable frame rate), so a live
        recording that fell behind keeps wall-clock time without re-encoding repeats.
        """
        if self._closed:
            raise RuntimeError(f"VideoWriter for {self.path} is already closed")
        w, h = self.size
        if rgb.shape != (h, w, 3) or rgb.dtype != np.uint8:
            raise ValueError(f"frame must be uint8 [{h}, {w}, 3], got {rgb.dtype} {rgb.shape}")
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        frame.pts = self.frames_written
        try:
            for packet in self._video.encode(frame):
                self._container.mux(packet)
        except OSError as exc:
            raise _recording_error(self.path, exc) from exc
        self.frames_written += max(1, int(hold))
        self._last = frame if hold > 1 else None  # a held last frame is repeated on close
        self._prev = frame
        # keep audio interleaved with video: encode audio up to this frame's end time
        if self._audio is not None:
            self._write_audio(int(self.frames_written / self.fps * self.sample_rate))

    def repeat(self, n: int = 1) -> None:
        """Encode the previous frame `n` more times (a constant-frame-rate repeat)."""
        if self._prev is None:
            return
        try:
            for _ in range(n):
                self._prev.pts = self.frames_written
                for packet in self._video.encode(self._prev):
                    self._container.mux(packet)
                self.frames_written += 1
        except OSError as exc:
            raise _recording_error(self.path, exc) from exc

    def write_audio(self, planar: np.ndarray) -> None:
        """Append audio [channels, n] float32 to a stream opened with `audio_channels`."""
        if self._astream is None or self._audio is not None:
            raise RuntimeError("write_audio needs a writer opened with audio_channels > 0")
        try:
            for packet in self._astream.encode(self._audio_frame(planar, self._audio_pos)):
                self._container.mux(packet)
        except OSError as exc:
            raise _recording_error(self.path, exc) from exc
        self._audio_pos += planar.shape[1]

    def _audio_frame(self, planar: np.ndarray, pts: int) -> av.AudioFrame:
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(planar, np.float32), format="fltp", layout=self._layout
        )
        frame.sample_rate = self.sample_rate
        frame.pts = pts
        return frame

    def _write_audio(self, until: int) -> None:
        a = self._audio
        until = min(until, a.shape[1])
        while self._audio_pos < until:
            n = min(_AUDIO_CHUNK, until - self._audio_pos)
            if n < _AUDIO_CHUNK and until < a.shape[1]:
                break  # wait for a full chunk unless this is the end of the track
            chunk = a[:, self._audio_pos : self._audio_pos + n]
            try:
                for packet in self._astream.encode(self._audio_frame(chunk, self._audio_pos)):
                    self._container.mux(packet)
            except OSError as exc:
                raise _recording_error(self.path, exc) from exc
            self._audio_pos += n

    def close(self) -> Path:
        """Flush encoders, finalise the MP4 and move it to `path`. Returns `path`."""
        if self._closed:
            return self.path
        try:
            if self._last is not None:
                # a frame's hold shows only through the next frame's pts: without a closing
                # repeat the last picture would last one period and the file end early
                self._last.pts = self.frames_written - 1
                for packet in self._video.encode(self._last):
                    self._container.mux(packet)
                self._last = None
            for packet in self._video.encode(None):
                self._container.mux(packet)
            if self._audio is not None:
                self._write_audio(self._audio.shape[1])  # the rest of the track, muxed whole
            if self._astream is not None:
                for packet in self._astream.encode(None):
                    self._container.mux(packet)
            self._container.close()
        except OSError as exc:
            self._drop()
            raise _recording_error(self.path, exc) from exc
        except BaseException:
            self._drop()
            raise
        self._closed = True
        os.replace(self.tmp_path, self.path)
        return self.path

    def salvage(self) -> Path | None:
        """After a failure: keep what was written (a fragmented writer's complete fragments)
        at `path` and return it, or drop the file and return None (nothing playable, or not
        fragmented). Never raises."""
        if self._closed:
            return self.salvaged
        self._closed = True
        for _ in range(2):  # a failed trailer still closes the file; a failed flush first
            try:
                self._container.close()
                break
            except Exception:
                pass
        try:
            if self.fragmented:
                self.salvaged = keep_playable_prefix(self.tmp_path, self.path)
            else:
                os.unlink(self.tmp_path)
        except OSError:
            pass
        return self.salvaged

    def _drop(self) -> None:
        """A failed close: a fragmented file keeps its complete fragments, others go."""
        if self.fragmented:
            self.salvage()
        else:
            self.abort()

    def abort(self) -> None:
        """Drop the recording: close the container and remove the temporary file."""
        if self._closed:
            return
        self._closed = True
        try:
            self._container.close()
        except Exception:
            pass  # the file is being thrown away; a broken container must not mask the cause
        try:
            os.unlink(self.tmp_path)
        except FileNotFoundError:
            pass

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


class Terminated(KeyboardInterrupt):
    """SIGTERM / SIGHUP as an exception, so `finally` blocks finalise or remove recordings."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"signal {signum}")
        self.signum = signum


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """While inside: SIGTERM and SIGHUP raise `Terminated` in the main thread (like Ctrl-C).

    Without this Python dies on them without unwinding: an offline render's temp file stays
    behind and a live recording is never finalised.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def raise_terminated(signum, frame):
        raise Terminated(signum)

    old = {}
    for sig in (signal.SIGTERM, signal.SIGHUP):
        try:
            old[sig] = signal.signal(sig, raise_terminated)
        except (ValueError, OSError):
            pass
    try:
        yield
    finally:
        for sig, h in old.items():
            signal.signal(sig, h)
