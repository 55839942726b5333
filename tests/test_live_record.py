"""Live recording: constant frame rate, audio in sync, finalised on SIGINT; `vj render` leaves no
temp file on SIGTERM; stale temp files are cleaned; a full disk is a one-line error."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import av
import numpy as np
import pytest

from tests.gan_nets import tiny_generator
from vj.render.live_record import LiveRecorder
from vj.render.record import VideoWriter

SR = 48000
REPO = Path(__file__).resolve().parents[1]
TINY = dict(
    z_dim=16, c_dim=0, w_dim=16, img_resolution=16, img_channels=3,
    mapping_kwargs=dict(num_layers=2), channel_base=128, channel_max=16,
)  # fmt: skip


def _decode(path):
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        info = {"rate": v.average_rate, "audio": len(c.streams.audio)}
        pics = [(float(f.pts * f.time_base), f.to_ndarray(format="rgb24")) for f in c.decode(v)]
    audio = None
    if info["audio"]:
        with av.open(str(path)) as c:
            audio = np.concatenate(
                [f.to_ndarray()[0] for f in c.decode(c.streams.audio[0])]
            )  # [n] first channel
    return info, pics, audio


def test_cfr_with_repeats_drops_and_audio_in_sync(tmp_path):
    """Irregular presents → a 30 fps file; a white picture and a click at the same clock time
    come out within one frame of each other."""
    fps, w, h = 30, 32, 32
    rec = LiveRecorder(tmp_path / "r.mp4", w, h, fps, sample_rate=SR, channels=1, queue_frames=64)
    t0 = 1_000_000_000_000
    rec.start(t0)
    t_flash = t0 + 1_200_000_000  # the hit, on the one clock
    # presents: fast at first (two per slot → drops), then slow (gaps → repeats)
    times = [t0 + int(i * 1e9 / 60) for i in range(40)] + [
        t0 + int(0.7e9 + i * 0.1e9) for i in range(1, 14)
    ]
    for t in times:
        white = abs(t - t_flash) < 0.05e9
        rec.push_frame(np.full((h, w, 3), 255 if white else 20, np.uint8), t)
    # audio: 256-sample blocks stamped with their last sample's time, a click at t_flash
    block = 256
    n_blocks = int(2.1 * SR / block)
    click_at = (t_flash - t0) * SR // 1_000_000_000
    for k in range(n_blocks):
        x = np.zeros(block, np.float32)
        lo = k * block
        if lo <= click_at < lo + block:
            x[click_at - lo :] = 0.9
        rec.push_audio(x, t0 + int((lo + block - 1) * 1e9 / SR))
    assert rec.close(t_stop_ns=t0 + int(2.0e9)) == tmp_path / "r.mp4", rec.error
    info, pics, audio = _decode(tmp_path / "r.mp4")
    assert info["rate"] == fps and info["audio"] == 1
    assert abs(len(pics) - 2.0 * fps) <= 1  # CFR to the stop time
    assert rec.dropped > 5 and rec.repeated > 10  # both paths exercised
    assert rec.stats()["frames_written"] == len(pics)
    pts = np.array([t for t, _ in pics])
    assert np.allclose(np.diff(pts), 1 / fps, atol=1e-3)  # constant frame rate
    t_pic = next(t for t, p in pics if p.mean() > 128)
    t_snd = np.argmax(np.abs(audio) > 0.3) / SR
    # the AAC encoder's priming delay is trimmed by the decoder; allow one frame
    assert abs(t_pic - t_snd) <= 1 / fps + 1e-3, (t_pic, t_snd)
    assert not list(tmp_path.glob(".*.part"))


def test_push_frame_never_blocks_when_encoder_is_behind(tmp_path):
    rec = LiveRecorder(tmp_path / "q.mp4", 64, 64, 30, sample_rate=None, queue_frames=2)
    rec.start()
    img = np.zeros((64, 64, 3), np.uint8)
    t = time.monotonic_ns()
    t0 = time.perf_counter()
    for i in range(200):
        rec.push_frame(img, t + i)
    assert time.perf_counter() - t0 < 2.0  # 200 copies of 12 KB; no encode on this thread
    assert rec.queue_full > 0
    assert rec.close() is not None
    assert rec.stats()["frames_in"] + rec.queue_full == 200


def _tiny_checkpoint(tmp_path) -> Path:
    from vj.gan.checkpoint import save_generator

    path = tmp_path / "tiny.safetensors"
    save_generator(tiny_generator(0, **TINY), path)
    return path


def _vj(args, **kw) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(REPO), JACK_NO_START_SERVER="1")
    return subprocess.Popen(
        [sys.executable, "-m", "vj", *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        **kw,
    )


def _wait_for(pattern_dir: Path, glob: str, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if list(pattern_dir.glob(glob)):
            return
        if proc.poll() is not None:
            pytest.fail(f"vj exited early ({proc.returncode}):\n{proc.stdout.read()}")
        time.sleep(0.2)
    proc.kill()
    pytest.fail(f"no {glob} in {pattern_dir} after {timeout}s")


@pytest.mark.slow
def test_sigint_leaves_a_playable_recording_with_audio(tmp_path):
    out = tmp_path / "rec.mp4"
    ckpt = _tiny_checkpoint(tmp_path)
    proc = _vj(
        ["live", "--demo", "--headless", "--record", str(out), "--size", "64x64",
         "--checkpoint", str(ckpt), "--no-midi", "--osc-port", "0"]
    )  # fmt: skip
    _wait_for(tmp_path, ".rec.mp4.*.part", proc, 120)
    time.sleep(3.0)
    proc.send_signal(signal.SIGINT)
    log, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, log
    assert out.is_file(), log
    assert not list(tmp_path.glob(".*.part"))
    info, pics, audio = _decode(out)
    assert info["audio"] == 1 and audio is not None and len(audio) > SR, log
    assert len(pics) > 30 and info["rate"] == 60  # the preset's display rate, CFR
    assert np.abs(audio).max() > 0.01  # the demo track, not silence
    dur_v, dur_a = len(pics) / 60, len(audio) / SR
    assert abs(dur_v - dur_a) < 0.3, (dur_v, dur_a)


@pytest.mark.slow
def test_sigterm_of_render_leaves_no_temp_file(tmp_path):
    out = tmp_path / "out.mp4"
    ckpt = _tiny_checkpoint(tmp_path)
    proc = _vj(
        ["demo", "--seconds", "60", "--size", "64x64", "--checkpoint", str(ckpt),
         "--no-progress", "-o", str(out)]
    )  # fmt: skip
    _wait_for(tmp_path, ".out.mp4.*.part", proc, 120)
    proc.send_signal(signal.SIGTERM)
    log, _ = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, log
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.safetensors"], log


def test_stale_part_of_a_dead_process_is_removed(tmp_path, capfd):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".out.mp4.{dead.pid}.part"
    stale.write_bytes(b"half a recording")
    alive = tmp_path / f".out.mp4.{os.getppid()}.part"  # a live process's: left alone
    alive.write_bytes(b"still writing")
    w = VideoWriter(tmp_path / "out.mp4", 16, 16, 10)
    w.abort()
    assert not stale.exists() and alive.exists()
    assert w.stale_removed == [stale]
    assert f"removed {stale}" in capfd.readouterr().err


def test_full_disk_is_a_one_line_error(tmp_path):
    """A file size limit (EFBIG, like ENOSPC a 'no room' error) during `vj demo`: exit 2, one
    line naming the file, no traceback, nothing left behind."""
    out = tmp_path / "full.mp4"
    ckpt = _tiny_checkpoint(tmp_path)
    limit = textwrap.dedent(
        """
        import resource, signal, sys
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (20000, 20000))
        from vj.cli import main
        sys.exit(main(sys.argv[1:]))
        """
    )
    env = dict(os.environ, PYTHONPATH=str(REPO))
    r = subprocess.run(
        [sys.executable, "-c", limit, "demo", "--seconds", "20", "--size", "128x128",
         "--checkpoint", str(ckpt), "--no-progress", "-o", str(out)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    assert f"{out}: file size limit reached while recording" in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.safetensors"]
