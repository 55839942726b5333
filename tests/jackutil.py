"""A private JACK dummy server for tests: real audio/MIDI timing without a sound card."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator


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
