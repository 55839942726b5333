"""A live recording that fails mid-show: the show goes on, the failure is said once, what was
recorded is kept playable, and a new file is started beside it (vj/render/record_supervisor.py)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
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


def _live_recording(tmp_path, out, *launch, capture: bool = True) -> subprocess.Popen:
    """`vj live --demo --headless --record OUT` on a tiny checkpoint; `launch` is what runs
    the CLI (default `-m vj`); stdout+stderr piped as text unless `capture` is False."""
    ckpt = _tiny_checkpoint(tmp_path)
    env = dict(os.environ, PYTHONPATH=str(REPO), JACK_NO_START_SERVER="1")
    pipe = (
        {"stdout": subprocess.PIPE, "stderr": subprocess.STDOUT, "text": True}
        if capture
        else {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    )
    return subprocess.Popen(
        [sys.executable, *(launch or ("-m", "vj")), "live", "--demo", "--headless", "--record",
         str(out), "--size", "64x64", "--checkpoint", str(ckpt), "--no-midi", "--osc-port", "0"],
        cwd=REPO, env=env, **pipe,
    )  # fmt: skip


@pytest.mark.slow
def test_live_recording_that_fills_the_disk_keeps_going_into_a_new_file(tmp_path):
    """`vj live --headless --record` under a real file size limit (the kernel refuses writes
    past 150 kB, like a full disk): the run goes on, says so once, keeps rec.mp4 playable
    and records on into rec-2.mp4; Ctrl-C finalises that one."""
    out = tmp_path / "rec.mp4"
    proc = _live_recording(tmp_path, out, "-c", _FULL_DISK)
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
    info, pics, audio = _decode(out)  # its complete fragments (a starved encoder: few frames)
    assert info["rate"] == 60 and len(pics) >= 30 and audio is not None and len(audio), log
    second = tmp_path / "rec-2.mp4"
    assert second.is_file(), log  # finalised on Ctrl-C (or kept when it filled up too)
    assert _frames(second) > 0  # playable (a loaded machine may not have encoded audio yet)
    assert not list(tmp_path.glob(".*.part"))


def _reader(proc) -> list[str]:
    lines: list[str] = []

    def read():
        for line in proc.stdout:
            lines.append(line)

    threading.Thread(target=read, daemon=True).start()
    return lines


def _until(cond, proc, lines, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if proc.poll() is not None:
            pytest.fail(f"vj exited early ({proc.returncode}):\n{''.join(lines)}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"{what} after {timeout} s:\n{''.join(lines)}")
        time.sleep(0.2)


@pytest.mark.slow
def test_live_recording_whose_folder_vanishes_records_on_when_it_is_back(tmp_path):
    """The recording's folder is removed mid-show (a drive pulled, a wrong `rm -r`): the run
    goes on and says so once; the restarts fail while the folder is missing and succeed into
    a new file once it is back; Ctrl-C finalises that one."""
    folder = tmp_path / "takes"
    folder.mkdir()
    out = folder / "rec.mp4"
    proc = _live_recording(tmp_path, out)
    lines = _reader(proc)
    try:
        _until(lambda: list(folder.glob(".rec.mp4.*.part")), proc, lines, 180, "no recording")
        time.sleep(2.0)
        shutil.rmtree(folder)
        said = (
            "recording failed: its file was deleted (was the folder removed?) in rec.mp4; "
            "nothing could be kept"
        )
        _until(lambda: any(said in x for x in lines), proc, lines, 30, "no failure said")
        time.sleep(2.0)  # a restart or two fails: no folder
        folder.mkdir()
        _until(lambda: list(folder.glob(".rec-2.mp4.*.part")), proc, lines, 60, "no restart")
        time.sleep(2.0)
        assert proc.poll() is None  # the show went on
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    time.sleep(0.5)  # the reader thread takes the last lines
    log = "".join(lines)
    assert proc.returncode == 130, log
    assert "Traceback" not in log
    assert sum(said in x for x in lines) == 1, log  # once, not once per frame
    assert "restart: FileNotFoundError: output folder" in log  # the folder was still missing
    info, pics, _ = _decode(folder / "rec-2.mp4")
    assert info["rate"] == 60 and len(pics) > 30, log
    assert sorted(p.name for p in folder.iterdir()) == ["rec-2.mp4"]


@pytest.mark.slow
def test_a_killed_live_recording_is_recovered_by_the_next_writer(tmp_path, capfd):
    """SIGKILL (or a power cut) leaves `vj live --record`'s temp file: the next recording of
    that path keeps its complete seconds as rec-2.mp4 instead of deleting them."""
    out = tmp_path / "rec.mp4"
    proc = _live_recording(tmp_path, out, capture=False)
    lines: list[str] = []

    def a_second_on_disk() -> bool:  # the run has warmed up and recorded a fragment
        parts = list(tmp_path.glob(".rec.mp4.*.part"))
        return bool(parts) and playable_prefix(parts[0]) > 0

    _until(a_second_on_disk, proc, lines, 180, "nothing recorded")
    time.sleep(2.0)
    proc.kill()
    proc.wait(timeout=30)
    assert not out.exists() and list(tmp_path.glob(".rec.mp4.*.part"))
    w = VideoWriter(out, 16, 16, 10)
    w.abort()
    assert w.stale_recovered == [tmp_path / "rec-2.mp4"] and w.stale_removed == []
    assert "recovered" in capfd.readouterr().err
    info, pics, audio = _decode(tmp_path / "rec-2.mp4")
    assert info["rate"] == 60 and len(pics) >= 50 and audio is not None  # its first second+
    assert not list(tmp_path.glob(".*.part"))
