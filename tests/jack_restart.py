"""For tests that kill and restart a JACK server in a scenario process: the scenario records
each jackd it starts, and the test ends any still running and removes their /dev/shm files,
whatever happened to the scenario (a killed server never unregisters itself: the test starts
one under the same name and ends it cleanly, which frees the name's entry in JACK's server
table — eight entries for the whole machine, so leaked ones soon stop every JACK test)."""

from __future__ import annotations

import glob
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

# Pasted at the top of a scenario script (argv[1] = server name, argv[2] = pid file).
JACKD = """
import os, subprocess, sys
name, pidfile = sys.argv[1], sys.argv[2]
os.environ.update(JACK_DEFAULT_SERVER=name, JACK_NO_START_SERVER="1")
from tests.jackutil import _wait_ready

def jackd():
    p = subprocess.Popen(
        ["jackd", "-n", name, "-d", "dummy", "-r", "48000", "-p", "256"],
        # never a pipe nobody reads: a chatty restarted jackd would block on it, and its
        # clients with it
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env=dict(os.environ, JACK_NO_AUDIO_RESERVATION="1"),
    )
    with open(pidfile, "a") as f:
        f.write(f"{p.pid}\\n")
    _wait_ready(name, p)
    return p
"""


def new_server(tmp_path: Path, prefix: str) -> tuple[str, Path]:
    return f"{prefix}-{uuid.uuid4().hex[:8]}", tmp_path / "jackd.pids"


def cleanup(name: str, pidfile: Path) -> None:
    """SIGKILL the scenario's servers still running (checked by name: no reused pid is hit)."""
    pids = pidfile.read_text().split() if pidfile.exists() else []
    for pid in map(int, pids):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if name.encode() not in f.read():
                    continue
            os.kill(pid, signal.SIGKILL)
        except (OSError, ProcessLookupError):
            continue
    if pids:
        _unregister(name)
    for f in glob.glob(f"/dev/shm/jack*{name}*"):
        os.unlink(f)


_UNREGISTER = """
import os, subprocess, sys
sys.path.insert(0, os.getcwd())
from tests.jackutil import _wait_ready
name = sys.argv[1]
p = subprocess.Popen(
    ["jackd", "-n", name, "-d", "dummy", "-r", "48000", "-p", "256"],
    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    env=dict(os.environ, JACK_NO_AUDIO_RESERVATION="1"),
)
try:
    _wait_ready(name, p)
except RuntimeError:
    pass  # it could not start: nothing of ours to unregister
finally:
    p.terminate()
    try:
        p.wait(5)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
"""


def _unregister(name: str) -> None:
    """A jackd under a dead server's name reclaims its table entry; SIGTERM unregisters it.

    Done from a child process: the readiness probe is a JACK client, and a client left in the
    test process by a server that then goes away can take the whole pytest process down."""
    root = Path(__file__).resolve().parents[1]
    try:
        subprocess.run(
            [sys.executable, "-c", _UNREGISTER, name], cwd=root, timeout=30,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        pass
