"""A recorded session: the input audio, the timestamped control events, and what the show was
made of (preset, seeds, models), in a directory a crash cannot corrupt; and its reader.

Layout (version 1):
    meta.json     settings, preset/checkpoint identity (sha256), t0_ns; rewritten atomically
    preset.yaml   a copy of the preset file as it was when the session started
    audio.wav     float32 WAV appended as it arrives; header sizes rewritten every second
    timing.jsonl  {"sample": n, "t_ns": t} anchors (about one a second): audio sample ↔ clock
    events.jsonl  one ControlEvent per line ({"t_ns","source","name","value"}), fsync'd each
                  second

Nothing here runs on the audio or controller threads except a copy into a queue/ring: a writer
thread does all file I/O. After a crash the reader recovers everything up to the last second:
audio by the file's size (not the lagging header), events up to the last complete line.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import struct
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vj.clock import now_ns
from vj.fsutil import atomic_write_bytes
from vj.show.frame import ControlEvent

VERSION = 1
SYNC_S = 1.0  # fsync (and rewrite the WAV header) this often
MAX_EVENTS_BYTES = 256 * 1024 * 1024
_WAV_HEADER = 44


class SessionError(ValueError):
    """A session directory that cannot be read (missing, not a session, broken file:line)."""


def file_sha256(path: str | Path) -> str | None:
    try:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        return h.hexdigest()
    except OSError:
        return None


def _wav_header(n_frames: int, sr: int, ch: int) -> bytes:
    data = n_frames * ch * 4
    return b"".join(
        [
            b"RIFF",
            struct.pack("<I", 36 + data),
            b"WAVEfmt ",
            struct.pack("<IHHIIHH", 16, 3, ch, sr, sr * ch * 4, ch * 4, 32),  # 3 = IEEE float
            b"data",
            struct.pack("<I", data),
        ]
    )


class SessionWriter:
    """Record a live session into `folder` (created; must be empty or absent).

    Wire it with `push_audio` as an audio tap and `event` as the live app's event tap
    (`LiveApp.event_taps`: every ControlEvent the Show receives); `on_param` is a registry
    listener for a pipeline without a Show. `close()` flushes everything, finalises meta.json.
    """

    def __init__(
        self,
        folder: str | Path,
        sample_rate: int,
        channels: int = 1,
        meta: dict | None = None,
        preset_path: str | Path | None = None,
        trigger_names: set[str] | frozenset[str] = frozenset(),
        audio_seconds: float = 8.0,
    ) -> None:
        self.folder = Path(folder)
        if self.folder.exists() and (not self.folder.is_dir() or any(self.folder.iterdir())):
            raise SessionError(f"{self.folder}: exists and is not an empty directory")
        if not self.folder.parent.is_dir():
            raise SessionError(f"{self.folder}: no such directory {self.folder.parent}")
        self.folder.mkdir(exist_ok=True)
        self.sample_rate, self.channels = int(sample_rate), int(channels)
        self._triggers = frozenset(trigger_names)
        self.meta = {
            "version": VERSION,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "sample_rate": self.sample_rate,
            "channels": self.channels,
            "t0_ns": None,  # clock time of audio sample 0 (set by the first block)
            **(meta or {}),
        }
        if preset_path is not None and Path(preset_path).is_file():
            shutil.copyfile(preset_path, self.folder / "preset.yaml")
            self.meta["preset_sha256"] = file_sha256(preset_path)
        ckpt = self.meta.get("checkpoint")
        if ckpt and Path(str(ckpt)).is_file():
            self.meta["checkpoint_sha256"] = file_sha256(ckpt)
        self._write_meta()
        self._wav = open(self.folder / "audio.wav", "wb")
        self._wav.write(_wav_header(0, self.sample_rate, self.channels))
        self._events = open(self.folder / "events.jsonl", "w", encoding="utf-8")
        self._timing = open(self.folder / "timing.jsonl", "w", encoding="utf-8")
        cap = int(audio_seconds * self.sample_rate)
        self._ring = np.zeros((cap, self.channels), np.float32)  # [cap, ch]
        self._aw = 0  # samples written into the ring (audio thread)
        self._ar = 0  # samples written to the file (writer thread)
        self._anchors: deque[tuple[int, int]] = deque(maxlen=4096)
        self._next_anchor = 0
        self._queue: deque[ControlEvent] = deque()
        self.n_events = 0
        self.audio_lost = 0
        self._stop = threading.Event()
        self._closed = False
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="vj-session", daemon=True)
        self._thread.start()

    # -- producers (any thread; no I/O) -----------------------------------------------------
    def push_audio(self, block: np.ndarray, t_end_ns: int) -> None:
        if self._stop.is_set():
            return
        x = block if block.ndim == 2 else block[:, None]
        n = len(x)
        if self.meta["t0_ns"] is None:
            self.meta["t0_ns"] = int(t_end_ns - (n - 1) * 1e9 / self.sample_rate)
        if self._aw >= self._next_anchor:
            self._anchors.append((self._aw + n - 1, int(t_end_ns)))
            self._next_anchor = self._aw + self.sample_rate
        cap, ch = self._ring.shape
        src = x[:, :ch] if x.shape[1] >= ch else np.repeat(x[:, :1], ch, 1)
        i = self._aw % cap
        k = min(n, cap - i)
        self._ring[i : i + k] = src[:k]
        if k < n:
            self._ring[: n - k] = src[k:]
        self._aw += n

    def event(self, ev: ControlEvent) -> None:
        if not self._stop.is_set():
            self._queue.append(ev)

    def on_param(self, name: str, value: float, source: str) -> None:
        """A ParamRegistry listener: every write becomes an event (a trigger's value is 1)."""
        v = 1.0 if name in self._triggers else float(value)
        self.event(ControlEvent(now_ns(), source or "registry", name, v))

    # -- writer thread ------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            while not self._stop.wait(SYNC_S):
                self._flush()
            self._flush()
        except BaseException as exc:
            self.error = exc

    def _flush(self) -> None:
        cap = len(self._ring)
        aw = self._aw
        if aw - self._ar > cap:
            self.audio_lost += aw - self._ar - cap
            self._ar = aw - cap
        while self._ar < aw:
            i = self._ar % cap
            n = min(aw - self._ar, cap - i)
            self._wav.write(self._ring[i : i + n].tobytes())
            self._ar += n
        self._wav.flush()
        os.fsync(self._wav.fileno())
        pos = self._wav.tell()
        self._wav.seek(0)
        self._wav.write(_wav_header(self._ar, self.sample_rate, self.channels))
        self._wav.seek(pos)
        self._wav.flush()
        lines = []
        while self._queue:
            ev = self._queue.popleft()
            lines.append(json.dumps(ev._asdict(), separators=(",", ":")) + "\n")
        if lines:
            self._events.write("".join(lines))
            self.n_events += len(lines)
        self._events.flush()
        os.fsync(self._events.fileno())
        anchors = []
        while self._anchors:
            s, t = self._anchors.popleft()
            anchors.append(json.dumps({"sample": s, "t_ns": t}) + "\n")
        self._timing.write("".join(anchors))
        self._timing.flush()

    def _write_meta(self) -> None:
        atomic_write_bytes(self.folder / "meta.json", json.dumps(self.meta, indent=1).encode())

    def close(self) -> Path:
        if self._closed:
            return self.folder
        self._closed = True
        self._stop.set()
        self._thread.join(30)
        for f in (self._wav, self._events, self._timing):
            with contextlib.suppress(OSError):
                f.close()
        self.meta["samples"] = self._ar
        self.meta["events"] = self.n_events
        self.meta["audio_lost"] = self.audio_lost
        self.meta["closed"] = True
        self._write_meta()
        if self.error is not None:
            raise SessionError(f"{self.folder}: session recording failed: {self.error}")
        return self.folder


@dataclass(frozen=True)
class Session:
    """A session read back: audio [n, ch] float32, events in time order, meta, clock map."""

    folder: Path
    meta: dict
    audio: np.ndarray
    sample_rate: int
    events: tuple[ControlEvent, ...]
    anchors: np.ndarray  # [k, 2] (sample, t_ns)
    preset_path: Path | None

    def sample_of(self, t_ns: int) -> float:
        """The audio position (samples) heard at clock time t_ns."""
        a = self.anchors
        if len(a) == 0:
            t0 = self.meta.get("t0_ns") or 0
            return (t_ns - t0) * self.sample_rate / 1e9
        if len(a) >= 2 and a[0, 1] <= t_ns <= a[-1, 1]:
            return float(np.interp(t_ns, a[:, 1], a[:, 0]))
        s, t = a[0] if t_ns < a[0, 1] else a[-1]  # outside: the nearest anchor, nominal rate
        return float(s + (t_ns - t) * self.sample_rate / 1e9)

    def offline_events(self) -> tuple[ControlEvent, ...]:
        """The events re-timed to the offline virtual clock (ns from the first audio sample,
        as `vj.offline` counts), in order; events before the audio start land at 0. This is
        what the Show's offline driver replays (`RenderJob.events`).

        An anchor stamps a block's last sample (index k) with the block's arrival; offline, a
        block is stamped at the time its sample *count* k + 1 is reached. So a live time maps
        to sample_of + 1 samples: an event just after a block then comes after that block's
        features offline too, as it did live."""
        sr = self.sample_rate
        out = [
            e._replace(t_ns=max(0, int(round((self.sample_of(e.t_ns) + 1) * 1e9 / sr))))
            for e in self.events
        ]
        return tuple(sorted(out, key=lambda e: e.t_ns))

    def event_times_s(self) -> list[tuple[float, ControlEvent]]:
        """Each event at its time in the audio (seconds from the recording's first sample)."""
        return [(self.sample_of(e.t_ns) / self.sample_rate, e) for e in self.events]


def read_session(folder: str | Path) -> Session:
    folder = Path(folder)
    mp = folder / "meta.json"
    try:
        meta = json.loads(mp.read_text())
    except FileNotFoundError:
        raise SessionError(f"{folder}: not a vj session (no meta.json)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SessionError(f"{mp}: cannot read: {exc}") from None
    if not isinstance(meta, dict) or meta.get("version") != VERSION:
        raise SessionError(f"{mp}: not a version {VERSION} vj session")
    try:
        sr, ch = int(meta["sample_rate"]), int(meta["channels"])
    except (KeyError, TypeError, ValueError):
        raise SessionError(f"{mp}: sample_rate/channels missing or not integers") from None
    if not (8000 <= sr <= 192000 and 1 <= ch <= 2):
        raise SessionError(f"{mp}: sample_rate {sr} / channels {ch} out of range")
    audio = _read_wav(folder / "audio.wav", ch)
    events = _read_events(folder / "events.jsonl")
    anchors = _read_anchors(folder / "timing.jsonl")
    preset = folder / "preset.yaml"
    return Session(folder, meta, audio, sr, events, anchors, preset if preset.is_file() else None)


def _read_wav(path: Path, ch: int) -> np.ndarray:
    """The samples the file holds, by its size: a crash leaves the header up to 1 s behind."""
    try:
        with open(path, "rb") as f:
            head = f.read(_WAV_HEADER)
            if len(head) < _WAV_HEADER or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
                raise SessionError(f"{path}: not a vj session WAV")
            fmt, n_ch, _sr, _br, _al, bits = struct.unpack("<HHIIHH", head[20:36])
            if fmt != 3 or bits != 32 or n_ch != ch:
                raise SessionError(f"{path}: expected float32 WAV with {ch} channels")
            raw = f.read()
    except FileNotFoundError:
        raise SessionError(f"{path}: missing") from None
    n = len(raw) // (4 * ch)
    return np.frombuffer(raw[: n * 4 * ch], "<f4").reshape(n, ch).copy()


def _read_events(path: Path) -> tuple[ControlEvent, ...]:
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise SessionError(f"{path}: missing") from None
    if size > MAX_EVENTS_BYTES:
        raise SessionError(f"{path}: {size} bytes is larger than a session's event log may be")
    out = []
    with open(path, encoding="utf-8", errors="replace") as f:
        lines = f.read().split("\n")
    last = len(lines) - 1  # the text after the final newline: a line cut by a crash, or ""
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
            ev = _event(d)
        except (json.JSONDecodeError, TypeError, ValueError, KeyError) as exc:
            if n - 1 == last:
                break  # the crash cut this one; everything before it stands
            raise SessionError(f"{path}:{n}: bad event ({exc})") from None
        out.append(ev)
    out.sort(key=lambda e: e.t_ns)
    return tuple(out)


def _event(d) -> ControlEvent:
    if not isinstance(d, dict) or set(d) - {"t_ns", "source", "name", "value"}:
        raise ValueError("expected an object with t_ns, source, name, value")
    t, name, source, value = d["t_ns"], d["name"], d.get("source", "session"), d.get("value", 1.0)
    if not isinstance(t, int) or isinstance(t, bool) or t < 0:
        raise ValueError(f"t_ns must be a non-negative integer, got {t!r}")
    if not isinstance(name, str) or not 0 < len(name) <= 200 or not isinstance(source, str):
        raise ValueError("name must be a non-empty string, source a string")
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"value must be a number or a string, got {value!r}")
    if isinstance(value, float) and not np.isfinite(value):
        raise ValueError("value must be finite")
    return ControlEvent(t, source[:200], name, value if isinstance(value, str) else float(value))


def _read_anchors(path: Path) -> np.ndarray:
    rows = []
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                try:
                    d = json.loads(line)
                    rows.append((int(d["sample"]), int(d["t_ns"])))
                except (json.JSONDecodeError, KeyError, TypeError, ValueError):
                    break  # a cut last line
    except FileNotFoundError:
        pass
    return np.asarray(rows, np.int64).reshape(-1, 2)
