"""A live recording that fails mid-show: the show goes on, the failure is said once, what was
recorded is kept playable, and a new file is started beside it (vj/render/record_supervisor.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import av
import numpy as np
import pytest

from tests.test_live_record import REPO, _decode, _tiny_checkpoint
from vj.render.mp4_fragments import playable_prefix
from vj.render.record import VideoWriter
from vj.render.record_supervisor import next_free_path


def _fragmented(path, seconds: float, fps: int = 30) -> None:
    w = VideoWriter(path, 32, 32, fps, crf=23, preset="ultrafast", audio_channels=1,
                    fragmented=True)  # fmt: skip
    rng = np.random.default_rng(0)
    for _ in range(int(seconds * fps)):
        w.write(rng.integers(0, 255, (32, 32, 3), np.uint8))
        w.write_audio(rng.standard_normal((1, 1600)).astype(np.float32) * 0.1)
    w.close()


def _frames(path) -> int:
    with av.open(str(path)) as c:
        return sum(1 for _ in c.decode(c.streams.video[0]))


def test_a_cut_fragmented_file_keeps_its_complete_seconds(tmp_path):
    full = tmp_path / "full.mp4"
    _fragmented(full, 4.0)
    data = full.read_bytes()
    assert playable_prefix(full) == len(data) and _frames(full) == 120
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) * 3 // 5])  # the disk filled part way through second 3
    keep = playable_prefix(cut)
    assert 0 < keep < len(data) * 3 // 5
    cut.write_bytes(data[:keep])
    assert _frames(cut) in (30, 60)  # whole seconds only
    head = tmp_path / "head.mp4"
    head.write_bytes(data[:2000])  # before the first fragment ended: nothing playable
    assert playable_prefix(head) == 0


def test_next_file_never_overwrites(tmp_path):
    rec = tmp_path / "rec.mp4"
    assert next_free_path(rec) == tmp_path / "rec-2.mp4"
    (tmp_path / "rec-2.mp4").write_bytes(b"kept")
    (tmp_path / f".rec-3.mp4.{os.getpid()}.part").write_bytes(b"being written")
    assert next_free_path(rec) == tmp_path / "rec-4.mp4"


_FULL_DISK = textwrap.dedent(
    """
    import resource, signal, sys
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (150_000, 150_000))
    from vj.cli import main
    sys.exit(main(sys.argv[1:]))
    """
)


@pytest.mark.slow
def test_live_recording_that_fills_the_disk_keeps_going_into_a_new_file(tmp_path):
    """`vj live --headless --record` under a real file size limit (the kernel refuses writes
    past 150 kB, like a full disk): the run goes on, says so once, keeps rec.mp4 playable
    and records on into rec-2.mp4; Ctrl-C finalises that one."""
    out = tmp_path / "rec.mp4"
    ckpt = _tiny_checkpoint(tmp_path)
    env = dict(os.environ, PYTHONPATH=str(REPO), JACK_NO_START_SERVER="1")
    proc = subprocess.Popen(
        [sys.executable, "-c", _FULL_DISK, "live", "--demo", "--headless", "--record", str(out),
         "--size", "64x64", "--checkpoint", str(ckpt), "--no-midi", "--osc-port", "0"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 240
        while not (out.is_file() and list(tmp_path.glob(".rec-2.mp4.*.part"))):
            if proc.poll() is not None:
                pytest.fail(f"vj exited early ({proc.returncode}):\n{proc.stdout.read()}")
            assert time.monotonic() < deadline, "no second recording started"
            time.sleep(0.2)
        time.sleep(2.0)
        assert proc.poll() is None  # the show went on
        proc.send_signal(signal.SIGINT)
        log, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, log
    assert "Traceback" not in log
    said = "recording failed: file size limit reached in rec.mp4"
    assert log.count(said) == 1, log  # once, not once per frame
    assert f"kept {out} up to its last full second" in log
    info, pics, audio = _decode(out)
    assert info["rate"] == 60 and len(pics) >= 60, log  # whole seconds of the show
    assert audio is not None and abs(len(audio) / 48000 - len(pics) / 60) < 1.1
    second = tmp_path / "rec-2.mp4"
    assert second.is_file(), log  # finalised on Ctrl-C (or kept when it filled up too)
    info2, pics2, _ = _decode(second)
    assert info2["rate"] == 60 and len(pics2) > 0
    assert not list(tmp_path.glob(".*.part"))
