"""A private JACK dummy server for tests: real audio/MIDI timing without a sound card."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator

import numpy as np

from vj.clock import now_ns


def jackd_available() -> bool:
    return shutil.which("jackd") is not None


@contextlib.contextmanager
def jack_server(rate: int = 48000, period: int = 256) -> Iterator[str]:
    """Start `jackd -d dummy` under a private name; yields the server name.

    The caller points clients at it with JACK_DEFAULT_SERVER=<name> (the fixture in
    conftest.py does this through monkeypatch) and must close its clients before exit.
    """
    name = f"vjtest-{uuid.uuid4().hex[:8]}"
    env = dict(os.environ, JACK_NO_AUDIO_RESERVATION="1")
    proc = subprocess.Popen(
        [
            "jackd",
            "-n",
            name,
            "-d",
            "dummy",
            "-r",
            str(rate),
            "-p",
            str(period),
            "-C",
            "2",
            "-P",
            "2",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        text=True,
    )
    try:
        _wait_ready(name, proc)
        yield name
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_ready(name: str, proc: subprocess.Popen, timeout: float = 10.0) -> None:
    import jack  # JACK-Client

    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = proc.stdout.read() if proc.stdout else ""
            raise RuntimeError(f"jackd exited with {proc.returncode}:\n{out}")
        try:
            c = jack.Client("vjtest-probe", servername=name, no_start_server=True)
            c.close()
            return
        except jack.JackError as exc:
            last = exc
            time.sleep(0.1)
    raise RuntimeError(f"jackd {name} did not come up in {timeout}s: {last}")


class JackPlayer:
    """A JACK client that plays an array from its process callback into the app's inputs.

    Records, per started click, the clock time of the click's sample: the JACK cycle's block
    covers the period that ends when the cycle starts, like the capture side does.
    """

    def __init__(
        self, samples: np.ndarray, click_samples: np.ndarray | None = None, sample_rate: int = 48000
    ) -> None:
        import jack

        self.client = jack.Client("vjtest-player", no_start_server=True)
        self.port = self.client.outports.register("out")
        self.samples = samples.astype(np.float32)
        self.sample_rate = sample_rate
        self.pos = -1  # not playing
        self.clicks = np.asarray(click_samples if click_samples is not None else [], np.int64)
        self.click_times: list[int] = []
        self.done = threading.Event()
        self.client.set_process_callback(self._process)
        self.client.activate()

    def _process(self, frames: int) -> None:
        t_cycle = now_ns()
        buf = self.port.get_array()
        if self.pos < 0:
            buf[:] = 0.0
            return
        a, b = self.pos, min(self.pos + frames, len(self.samples))
        buf[: b - a] = self.samples[a:b]
        buf[b - a :] = 0.0
        for c in self.clicks[(self.clicks >= a) & (self.clicks < a + frames)]:
            self.click_times.append(t_cycle - int((a + frames - c) * 1e9 / self.sample_rate))
        self.pos = b
        if b >= len(self.samples):
            self.pos = -1
            self.done.set()

    def connect_to_app(self) -> list[str]:
        """Connect our output to every capture port of other (PortAudio) clients."""
        targets = [
            p.name
            for p in self.client.get_ports(is_audio=True, is_input=True)
            if not p.name.startswith(("system:", "vjtest-player:"))
        ]
        for t in targets:
            self.client.connect(self.port, t)
        return targets

    def play(self) -> None:
        self.pos = 0

    def close(self) -> None:
        self.client.deactivate()
        self.client.close()
