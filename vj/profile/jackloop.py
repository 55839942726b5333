"""A JACK loopback for the profiler: a private dummy server and a client that plays the stimulus
into vj's own PortAudio input, so the profile runs the real capture path (device callback, ADC
timestamps) without a sound card. Needs `jackd` (Debian `jackd2`) and JACK-Client."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
import uuid

import numpy as np

from vj.clock import now_ns


class JackUnavailable(RuntimeError):
    """No JACK loopback here (no jackd, no JACK-Client, or the server would not start)."""


def jack_problem() -> str | None:
    if shutil.which("jackd") is None:
        return "jackd not installed (Debian: apt-get install jackd2)"
    try:
        import jack  # noqa: F401  (JACK-Client)
    except (ImportError, OSError) as exc:
        return f'JACK-Client missing ({exc}); pip install -e ".[profile]"'
    return None


class JackLoopback:
    """Start `jackd -d dummy` under a private name, point PortAudio at it, play into vj's input.

    Must be started before PortAudio is first used in the process (sounddevice enumerates host
    APIs once); `start()` re-initialises PortAudio when it was. `close()` lets PortAudio go
    before the server stops (the other order aborts inside PortAudio).
    """

    def __init__(self, sample_rate: int = 48000, period: int = 256) -> None:
        why = jack_problem()
        if why:
            raise JackUnavailable(why)
        self.sample_rate, self.period = sample_rate, period
        self.name = f"vjprofile-{uuid.uuid4().hex[:8]}"
        self._proc: subprocess.Popen | None = None
        self._old_env: dict[str, str | None] = {}
        self._client = None
        self._port = None
        self._samples = np.zeros(0, np.float32)
        self._pos = -1  # -1: not playing
        self._clicks = np.zeros(0, np.int64)
        self.click_times: list[int] = []  # clock time of each click's sample as played
        self.done = threading.Event()

    def start(self) -> None:
        import jack

        env = dict(os.environ, JACK_NO_AUDIO_RESERVATION="1")
        cmd = ["jackd", "-n", self.name, "-d", "dummy", "-r", str(self.sample_rate)]
        cmd += ["-p", str(self.period), "-C", "2", "-P", "2"]
        self._proc = subprocess.Popen(
            cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env
        )
        for k, v in (("JACK_DEFAULT_SERVER", self.name), ("JACK_NO_START_SERVER", "1")):
            self._old_env[k] = os.environ.get(k)
            os.environ[k] = v
        # libjack prints a paragraph per failed connection attempt while the server starts
        jack.set_error_function(lambda msg: None)
        jack.set_info_function(lambda msg: None)
        deadline = time.monotonic() + 10.0
        time.sleep(0.3)
        while True:
            try:
                self._client = jack.Client("vj-profile-player", servername=self.name)
                break
            except jack.JackError as exc:
                if self._proc.poll() is not None or time.monotonic() > deadline:
                    self.close()
                    raise JackUnavailable(f"jackd dummy server did not start: {exc}") from exc
                time.sleep(0.1)
        self._port = self._client.outports.register("out")
        self._client.set_process_callback(self._process)
        self._client.activate()
        _reinit_portaudio()

    def input_device(self) -> int:
        """PortAudio's index of the JACK input device."""
        import sounddevice as sd

        for i, d in enumerate(sd.query_devices()):
            api = sd.query_hostapis(d["hostapi"])["name"]
            if "JACK" in api and d["max_input_channels"] > 0:
                return i
        raise JackUnavailable("PortAudio has no JACK input device (built without JACK?)")

    def _process(self, frames: int) -> None:
        t_cycle = now_ns()
        buf = self._port.get_array()
        if self._pos < 0:
            buf[:] = 0.0
            return
        a = self._pos
        b = min(a + frames, len(self._samples))
        buf[: b - a] = self._samples[a:b]
        buf[b - a :] = 0.0
        c = self._clicks
        for s in c[(c >= a) & (c < a + frames)]:
            # the cycle's buffer is the period that ends at the cycle's start, as on capture
            self.click_times.append(t_cycle - int((a + frames - s) * 1e9 / self.sample_rate))
        self._pos = b
        if b >= len(self._samples):
            self._pos = -1
            self.done.set()

    def connect(self, timeout: float = 10.0) -> list[str]:
        """Connect the player to every other client's audio input (vj's PortAudio ports)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            targets = [
                p.name
                for p in self._client.get_ports(is_audio=True, is_input=True)
                if not p.name.startswith(("system:", "vj-profile-player:"))
            ]
            if targets:
                for t in targets:
                    self._client.connect(self._port, t)
                return targets
            time.sleep(0.1)
        raise JackUnavailable("vj's JACK input ports never appeared")

    def play(self, samples: np.ndarray, clicks: np.ndarray | None = None) -> None:
        self._samples = np.ascontiguousarray(samples, np.float32)
        self._clicks = np.asarray(clicks if clicks is not None else [], np.int64)
        self.done.clear()
        self._pos = 0

    def close(self) -> None:
        _terminate_portaudio()
        if self._client is not None:
            try:
                self._client.deactivate()
                self._client.close()
            except Exception:
                pass
            self._client = None
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None
        for k, v in self._old_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        self._old_env = {}


def _reinit_portaudio() -> None:
    try:
        import sounddevice as sd
    except OSError:
        return
    sd._terminate()
    sd._initialize()


def _terminate_portaudio() -> None:
    try:
        import sounddevice as sd
    except OSError:
        return
    sd._terminate()
