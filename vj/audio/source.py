"""Audio sources: live input (sounddevice), real-time playback of an array, audio files, and the
synthetic demo track (drums + bass). All call on_block(block [frames, ch] float32, t_end_ns)."""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable

import numpy as np

from vj.clock import now_ns

OnBlock = Callable[[np.ndarray, int], None]


class AudioDeviceError(RuntimeError):
    """No such / unusable audio input; the message lists the available inputs."""


def portaudio_problem() -> str | None:
    """None when sounddevice (PortAudio) imports, else why not."""
    try:
        import sounddevice  # noqa: F401
    except OSError as exc:
        return f"PortAudio library not found ({exc}); install libportaudio2 (apt) or portaudio"
    except ImportError as exc:
        return f"sounddevice is not installed ({exc}); pip install sounddevice"
    return None


def _sd():
    problem = portaudio_problem()
    if problem:
        raise AudioDeviceError(problem)
    import sounddevice as sd

    return sd


def _input_devices() -> list[tuple[int, dict]]:
    sd = _sd()
    out = []
    for i, d in enumerate(sd.query_devices()):
        if d["max_input_channels"] > 0:
            out.append((i, d))
    return out


def list_input_devices() -> list[str]:
    """ "index: name (host api, channels, default sr)" per input device; [] without PortAudio."""
    if portaudio_problem():
        return []
    sd = _sd()
    apis = sd.query_hostapis()
    rows = []
    for i, d in _input_devices():
        api = apis[d["hostapi"]]["name"]
        rows.append(
            f"{i}: {d['name']} ({api}, {d['max_input_channels']} ch, "
            f"{int(d['default_samplerate'])} Hz)"
        )
    return rows


def _device_error(what: str) -> AudioDeviceError:
    devs = list_input_devices()
    listing = "\n  ".join(devs) if devs else "(none)"
    return AudioDeviceError(f"{what}\navailable audio inputs:\n  {listing}")


def resolve_input_device(device: str | int | None) -> tuple[int, dict]:
    """Input device by index, exact name, or name substring (case-insensitive); None = default."""
    sd = _sd()
    inputs = _input_devices()
    if device is None:
        try:
            idx = sd.default.device[0]
        except Exception:
            idx = -1
        if idx is None or idx < 0:
            if not inputs:
                raise _device_error("no audio input device found")
            return inputs[0]
        for i, d in inputs:
            if i == idx:
                return i, d
        raise _device_error(f"default input device {idx} is not an input")
    if isinstance(device, int) or (isinstance(device, str) and device.strip().isdigit()):
        idx = int(device)
        for i, d in inputs:
            if i == idx:
                return i, d
        raise _device_error(f"audio input device {idx} not found")
    needle = str(device).lower()
    exact = [(i, d) for i, d in inputs if d["name"].lower() == needle]
    if exact:
        return exact[0]
    hits = [(i, d) for i, d in inputs if needle in d["name"].lower()]
    if not hits:
        raise _device_error(f"no audio input matches {device!r}")
    return hits[0]


class LiveSource:
    """A live input calling on_block(block, t_end_ns) from its reader thread.

    The PortAudio stream runs in a child process (vj.audio.capture): losing the audio server
    or the device can then never hang us. When the input is lost, `status` says so (for the
    HUD), `on_event` is told once, blocks of silence keep the analysis (and the visuals)
    running, and a fresh child tries to re-open the input every RETRY_S seconds. `stop()`
    never waits more than STOP_S seconds, dead stream or not.

    t_end_ns is the clock time of the block's last sample, from PortAudio's ADC timestamp
    when it is valid, else the callback entry time (monotonic clock, shared by processes).
    """

    RETRY_S = 1.0  # re-open poll while the input is lost
    STOP_S = 2.0  # the longest stop() may take
    OPEN_TIMEOUT_S = 10.0  # a child's start-up (python + PortAudio) on a busy machine

    def __init__(
        self,
        on_block: OnBlock,
        device: str | int | None = None,
        sample_rate: int | None = None,
        block_size: int = 256,
        channels: int | None = None,
        on_event: Callable[[str], None] | None = None,
    ) -> None:
        if block_size <= 0:
            raise ValueError(f"block_size must be > 0, got {block_size}")
        self._on_block = on_block
        self.device_index, info = resolve_input_device(device)
        self.device_name = info["name"]
        max_ch = int(info["max_input_channels"])
        self.channels = channels or min(2, max_ch)
        if not 1 <= self.channels <= max_ch:
            raise _device_error(
                f"device {self.device_name!r} has {max_ch} input channels, asked for {channels}"
            )
        self.sample_rate = int(sample_rate or info["default_samplerate"])
        self.block_size = block_size
        self.on_event = on_event or (lambda msg: print(f"vj: {msg}", file=sys.stderr, flush=True))
        self.overruns = 0
        self.adc_time_valid = 0  # blocks whose ADC timestamp was usable
        self.callbacks = 0  # blocks received from the device
        self.silent_blocks = 0  # blocks of silence fed while the input was lost
        self.losses = 0
        self.reopens = 0
        self.status = ""  # "" while the input is fine; else a line for the HUD
        self._overruns_before = 0  # overruns counted by children that have exited
        self._proc = None
        self._reader: threading.Thread | None = None
        self._stop = threading.Event()
        self._silence = np.zeros((block_size, self.channels), np.float32)
        self._buf = bytearray(block_size * self.channels * 4)

    @property
    def lost(self) -> bool:
        return bool(self.status)

    def start(self) -> None:
        if self._reader is not None:
            return
        self._stop.clear()
        proc, problem = self._spawn()
        if proc is None:
            raise _device_error(
                f"cannot open audio input {self.device_index}: {self.device_name!r} at "
                f"{self.sample_rate} Hz, {self.channels} ch: {problem}"
            )
        self._proc = proc
        self._reader = threading.Thread(target=self._run, name="vj-audio-in", daemon=True)
        self._reader.start()

    def stop(self) -> None:
        deadline = time.monotonic() + self.STOP_S
        self._stop.set()
        proc = self._proc
        _kill(proc, deadline - 0.5, close=False)
        t = self._reader
        if t is not None:
            t.join(timeout=max(0.0, deadline - time.monotonic()))
        # Close the pipe only once the reader is out of it: closed under a reader, its fd
        # reads EBADF (or, reused by another open, someone else's bytes).
        if proc is not None and proc.stdout is not None and (t is None or not t.is_alive()):
            proc.stdout.close()
        self._reader = None
        self._proc = None

    # -- child processes -------------------------------------------------------------------
    def _spawn(self):
        """(child process with its stream running, None) or (None, why not)."""
        import subprocess

        args = [self.device_name, self.device_index, self.sample_rate, self.block_size]
        cmd = [sys.executable, "-m", "vj.audio.capture", *map(str, args + [self.channels])]
        env = dict(os.environ)
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
        try:
            proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL, env=env, bufsize=0,
            )  # fmt: skip
        except OSError as exc:
            return None, f"cannot start the capture process: {exc}"
        deadline = time.monotonic() + self.OPEN_TIMEOUT_S
        while True:
            frame = self._read_frame(proc, deadline)
            if frame is None:
                _kill(proc, time.monotonic() + 0.5)
                return None, "no answer from the audio input"
            tag, _, payload = frame
            if tag == b"HELO":
                return proc, None
            if tag == b"ERR ":
                _kill(proc, time.monotonic() + 0.5)
                return None, bytes(payload).decode(errors="replace")

    def _read_frame(self, proc, deadline: float):
        """(tag, value, payload memoryview) or None on EOF / nothing before `deadline`."""
        import select

        from vj.audio.capture import HEADER

        fd = proc.stdout.fileno()
        head = self._read_exact(fd, bytearray(HEADER.size), deadline, select)
        if head is None:
            return None
        tag, value, n = HEADER.unpack(head)
        buf = self._buf if n <= len(self._buf) else bytearray(n)
        body = self._read_exact(fd, memoryview(buf)[:n], deadline, select)
        return None if body is None else (tag, value, body)

    @staticmethod
    def _read_exact(fd: int, buf, deadline: float, select):
        view, got = memoryview(buf), 0
        while got < len(view):
            wait = deadline - time.monotonic()
            if wait <= 0 or not select.select([fd], [], [], wait)[0]:
                return None
            n = os.readv(fd, [view[got:]])
            if n == 0:
                return None  # EOF: the child exited
            got += n
        return view

    # -- the reader thread -----------------------------------------------------------------
    def _run(self) -> None:
        from vj.audio.capture import STALL_S

        while not self._stop.is_set():
            proc = self._proc
            frame = None if proc is None else self._read_frame(proc, time.monotonic() + STALL_S)
            if frame is None:
                if self._stop.is_set():
                    break
                self._lose(proc, "no audio from the input")
                continue
            tag, value, payload = frame
            if tag in (b"BLK0", b"BLK1"):
                block = np.frombuffer(payload, np.float32).reshape(-1, self.channels)
                self.callbacks += 1
                self.adc_time_valid += tag == b"BLK1"
                self._on_block(block, value)
            elif tag == b"OVR ":
                self.overruns = self._overruns_before + int(value)
            elif tag == b"ERR ":
                self._lose(proc, bytes(payload).decode(errors="replace"))

    def _lose(self, proc, why: str) -> None:
        """The input is gone: say so once, feed silence, re-open every RETRY_S seconds."""
        _kill(proc, time.monotonic() + 0.5)
        self._proc = None
        self.losses += 1
        self._overruns_before = self.overruns
        self.status = f"audio input lost ({self.device_name}): {why}; retrying"
        self.on_event(f"audio input lost: {self.device_name}: {why}; visuals continue on "
                      f"silence, re-opening every {self.RETRY_S:g} s")  # fmt: skip
        _forget_portaudio_at_exit()
        result: list = []
        opener: threading.Thread | None = None
        block_s = self.block_size / self.sample_rate
        next_try = time.monotonic()
        t0 = now_ns()
        k = 0
        while not self._stop.is_set():
            if opener is None and time.monotonic() >= next_try:
                opener = threading.Thread(
                    target=lambda: result.append(self._spawn()), name="vj-audio-reopen",
                    daemon=True,
                )  # fmt: skip
                opener.start()
            if opener is not None and not opener.is_alive():
                proc, _ = result.pop() if result else (None, None)
                opener = None
                if proc is not None:
                    self._proc = proc
                    self.reopens += 1
                    self.status = ""
                    self.on_event(f"audio input back: {self.device_name}")
                    return
                next_try = time.monotonic() + self.RETRY_S
            k += 1
            due = t0 + int(k * block_s * 1e9)
            wait = (due - now_ns()) / 1e9
            if wait > 0 and self._stop.wait(wait):
                break
            self._on_block(self._silence, due)
            self.silent_blocks += 1
        if opener is not None:  # stopping while a child starts: do not leave it behind
            opener.join(timeout=0.5)
            for proc, _ in result:
                _kill(proc, time.monotonic() + 0.5)


def _kill(proc, deadline: float, close: bool = True) -> None:
    """End a capture child by `deadline`: SIGTERM, then SIGKILL (a dead stream ignores TERM);
    `close`: close its pipe too (only from the thread that reads it)."""
    if proc is None:
        return
    try:
        proc.terminate()
        proc.wait(timeout=max(0.05, deadline - time.monotonic()))
    except Exception:
        try:
            proc.kill()
            proc.wait(timeout=0.5)
        except Exception:
            pass
    if close and proc.stdout is not None:
        proc.stdout.close()


def _forget_portaudio_at_exit() -> None:
    """After the server died, this process's own PortAudio (used to list devices) would abort
    in Pa_Terminate at exit (pa_jack.c assertion); let the OS clean it up instead."""
    sd = sys.modules.get("sounddevice")
    handler = getattr(sd, "_exit_handler", None)
    if handler is not None:
        import atexit

        atexit.unregister(handler)


class PlaybackSource:
    """Plays an array in real time from its own thread: one block every block_size / sr."""

    def __init__(
        self,
        on_block: OnBlock,
        samples: np.ndarray,
        sample_rate: int,
        block_size: int = 256,
        loop: bool = True,
    ) -> None:
        a = np.asarray(samples, np.float32)
        if a.ndim == 1:
            a = a[:, None]
        if a.ndim != 2 or len(a) == 0:
            raise ValueError(f"samples must be [n] or [n, ch] and non-empty, got {a.shape}")
        if block_size <= 0:
            raise ValueError(f"block_size must be > 0, got {block_size}")
        self._on_block = on_block
        self._samples = np.ascontiguousarray(a)
        self.sample_rate = int(sample_rate)
        self.block_size = int(block_size)
        self.loop = loop
        self.overruns = 0  # blocks delivered more than one block late (thread starved)
        self.blocks = 0
        self.finished = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._block = np.zeros((self.block_size, a.shape[1]), np.float32)

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self.finished.clear()
        self._thread = threading.Thread(target=self._run, name="vj-playback", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        t = self._thread
        if t is not None:
            t.join(timeout=2.0)
        self._thread = None

    def _run(self) -> None:
        n = len(self._samples)
        bs = self.block_size
        period_ns = bs * 1e9 / self.sample_rate
        t0 = now_ns()
        pos = 0
        k = 0
        while not self._stop.is_set():
            due = t0 + int((k + 1) * period_ns)  # the block's last sample "arrives" here
            wait = (due - now_ns()) / 1e9
            if wait > 0:
                if self._stop.wait(wait):
                    break
            elif -wait * 1e9 > period_ns:
                self.overruns += 1
            blk = self._block
            take = min(bs, n - pos)
            blk[:take] = self._samples[pos : pos + take]
            pos += take
            if take < bs:
                if self.loop:
                    rest = bs - take
                    blk[take:] = (
                        self._samples[:rest]
                        if rest <= n
                        else np.resize(self._samples, (rest, blk.shape[1]))
                    )
                    pos = rest % n
                else:
                    blk[take:] = 0.0
            self._on_block(blk, due)
            self.blocks += 1
            k += 1
            if not self.loop and pos >= n:
                break
        self.finished.set()


def read_audio(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """Audio file → ([n, ch] float32, sample rate). soundfile first, PyAV for other formats."""
    p = os.fspath(path)
    if not os.path.exists(p):
        raise FileNotFoundError(f"{p}: audio file not found")
    if os.path.isdir(p):
        raise IsADirectoryError(f"{p}: is a directory, not an audio file")
    sf_error = None
    try:
        import soundfile as sf

        data, sr = sf.read(p, dtype="float32", always_2d=True)
        if len(data) == 0:
            raise ValueError(f"{p}: audio file has no samples")
        return data, int(sr)
    except ValueError:
        raise
    except Exception as exc:  # not a libsndfile format: try FFmpeg
        sf_error = exc
    try:
        return _read_av(p)
    except Exception as exc:
        raise ValueError(f"{p}: cannot decode audio (soundfile: {sf_error}; PyAV: {exc})") from exc


def _read_av(p: str) -> tuple[np.ndarray, int]:
    import av

    with av.open(p) as container:
        if not container.streams.audio:
            raise ValueError("no audio stream")
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="flt", layout=None, rate=None)
        chunks = []
        sr = stream.rate
        for frame in container.decode(stream):
            for f in resampler.resample(frame):
                a = f.to_ndarray()  # [1, n*ch] interleaved for packed float
                ch = len(f.layout.channels)
                chunks.append(a.reshape(-1, ch))
                sr = f.sample_rate
        if not chunks:
            raise ValueError("no audio samples decoded")
        return np.ascontiguousarray(np.concatenate(chunks).astype(np.float32)), int(sr)


# --- synthetic demo track ---------------------------------------------------------------------
def _demo_pattern(bpm: float, seconds: float) -> tuple[list[float], list[float], list[float]]:
    """Kick, snare and hat times (s): four-on-the-floor kick, snare on 2 and 4, 8th hats."""
    beat = 60.0 / bpm
    kicks, snares, hats = [], [], []
    n_beats = int(seconds / beat) + 1
    for b in range(n_beats):
        t = b * beat
        if t >= seconds:
            break
        kicks.append(t)
        if b % 4 in (1, 3):
            snares.append(t)
        hats.append(t + beat / 2)
        if b % 8 == 7:  # a pickup kick on the last 16th of every second bar
            tp = t + 0.75 * beat
            if tp < seconds:
                kicks.append(tp)
    return kicks, snares, [h for h in hats if h < seconds]


def demo_onsets(sample_rate: int = 48000, seconds: float = 24.0, bpm: float = 124.0) -> np.ndarray:
    """Kick and snare hit times (s) of demo_track, sorted (snares coincide with kicks)."""
    kicks, snares, _ = _demo_pattern(bpm, seconds)
    t = np.unique(np.round(np.array(kicks + snares) * sample_rate) / sample_rate)
    return t


def demo_track(
    sample_rate: int = 48000, seconds: float = 24.0, bpm: float = 124.0, seed: int = 0
) -> np.ndarray:
    """Deterministic drums (kick/snare/hats) + bass line: [n, 2] float32, peak ≤ 0.9."""
    if seconds <= 0 or bpm <= 0 or sample_rate <= 0:
        raise ValueError("seconds, bpm and sample_rate must be > 0")
    rng = np.random.default_rng(seed)
    sr = sample_rate
    n = int(round(seconds * sr))
    left = np.zeros(n, np.float64)
    right = np.zeros(n, np.float64)
    kicks, snares, hats = _demo_pattern(bpm, seconds)
    beat = 60.0 / bpm

    def place(sig: np.ndarray, t: float, gl: float, gr: float) -> None:
        i = int(round(t * sr))
        m = min(len(sig), n - i)
        if m > 0:
            left[i : i + m] += gl * sig[:m]
            right[i : i + m] += gr * sig[:m]

    # kick: pitch-dropping sine 150 → 45 Hz with a click
    tk = np.arange(int(0.35 * sr)) / sr
    freq = 45.0 + 105.0 * np.exp(-tk / 0.03)
    kick = np.sin(2 * np.pi * np.cumsum(freq) / sr) * np.exp(-tk / 0.12)
    kick[: int(0.002 * sr)] += np.linspace(0.6, 0, int(0.002 * sr))
    # snare: 190 Hz body + bright noise
    ts = np.arange(int(0.25 * sr)) / sr
    noise = rng.standard_normal(len(ts))
    bright = np.diff(noise, prepend=0.0)
    snare = 0.5 * np.sin(2 * np.pi * 190 * ts) * np.exp(-ts / 0.05) + 0.45 * bright * np.exp(
        -ts / 0.07
    )
    # closed hat: high-passed noise, short
    th = np.arange(int(0.06 * sr)) / sr
    hn = rng.standard_normal(len(th))
    hat = np.diff(np.diff(hn, prepend=0.0), prepend=0.0) * 0.25 * np.exp(-th / 0.015)
    for t in kicks:
        place(kick, t, 0.8, 0.8)
    for t in snares:
        place(snare, t, 0.55, 0.65)
    for k, t in enumerate(hats):
        g = 0.35 if k % 2 else 0.28
        place(hat, t, g * 0.8, g)
    # bass: round notes (three harmonics, no waveform edges a detector could mistake for hits)
    # on the off 16ths, root pattern over 4 bars
    roots = [55.0, 55.0, 65.41, 49.0]
    step = beat / 4
    n_steps = int(seconds / step)
    for s in range(n_steps):
        if s % 4 == 0:  # leave the kick alone
            continue
        f0 = roots[(s // 16) % 4] * (2.0 if s % 8 == 6 else 1.0)
        dur = step * 0.9
        tb = np.arange(int(dur * sr)) / sr
        w = 2 * np.pi * f0 * tb
        tone = np.sin(w) + 0.5 * np.sin(2 * w) + 0.25 * np.sin(3 * w)
        # 4 ms attack, exponential decay, and a fade to zero so a note never ends in a click
        env = np.minimum(1.0, tb / 0.004) * np.exp(-tb / 0.09) * np.minimum(1.0, (dur - tb) / 0.02)
        place(0.3 * tone * env, s * step, 1.0, 1.0)
    # gentle [1/4, 1/2, 1/4] low-pass keeps the hats from being harsh (scipy.signal is slow
    # to import)
    out = np.stack([left, right], axis=1)
    out[1:-1] = 0.25 * out[:-2] + 0.5 * out[1:-1] + 0.25 * out[2:]
    peak = float(np.max(np.abs(out)))
    if peak > 0:
        out *= 0.9 / peak
    return out.astype(np.float32)
