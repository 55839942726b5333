"""VideoWriter: MP4 with H.264 + AAC of the right duration; aborted/crashed writes leave nothing."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import av
import numpy as np
import pytest

from vj.render.record import VideoWriter

SR = 48000


def tone(seconds, channels=2):
    t = np.arange(int(seconds * SR)) / SR
    a = 0.3 * np.sin(2 * np.pi * 440 * t)
    return np.repeat(a[:, None], channels, 1).astype(np.float32)


def frames(n, w=64, h=48):
    for i in range(n):
        f = np.zeros((h, w, 3), np.uint8)
        f[:, : (i * 3) % w] = (255, 128, 0)
        yield f


def probe(path):
    with av.open(str(path)) as c:
        out = {}
        for s in c.streams:
            dur = float(s.duration * s.time_base) if s.duration else None
            out[s.type] = (s.codec_context.name, dur, s)
        vs = c.streams.video[0]
        n = sum(1 for _ in c.decode(vs))
        return out, n, (vs.codec_context.width, vs.codec_context.height)


def test_mp4_has_h264_and_aac_of_right_duration(tmp_path):
    path = tmp_path / "out.mp4"
    with VideoWriter(path, 64, 48, 25, audio=tone(2.0)) as w:
        for f in frames(50):
            w.write(f)
    assert path.is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["out.mp4"]  # no temp file left
    streams, n, size = probe(path)
    assert streams["video"][0] == "h264" and streams["audio"][0] == "aac"
    assert n == 50 and size == (64, 48)
    assert abs(streams["video"][1] - 2.0) < 0.05
    assert abs(streams["audio"][1] - 2.0) < 0.05


def test_decoded_video_matches_input_colours(tmp_path):
    path = tmp_path / "c.mp4"
    with VideoWriter(path, 32, 32, 10, crf=0, preset="ultrafast") as w:
        for v in (0, 128, 255):
            w.write(np.full((32, 32, 3), v, np.uint8))
    with av.open(str(path)) as c:
        got = [fr.to_ndarray(format="rgb24").mean() for fr in c.decode(video=0)]
    assert len(got) == 3
    assert np.allclose(got, [0, 128, 255], atol=4)  # yuv420p round trip


def test_held_frames_keep_wall_clock_time_to_the_end(tmp_path):
    # a live loop slower than the nominal fps writes each picture once with a hold; the last
    # picture's hold must still reach the end of the file
    path = tmp_path / "held.mp4"
    with VideoWriter(path, 32, 32, 30) as w:
        w.write(np.full((32, 32, 3), 0, np.uint8), hold=3)
        w.write(np.full((32, 32, 3), 128, np.uint8), hold=10)
        w.write(np.full((32, 32, 3), 255, np.uint8), hold=17)  # 30 periods in all
    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        got = [
            (float(f.pts * vs.time_base), f.to_ndarray(format="rgb24").mean()) for f in c.decode(vs)
        ]
    starts = [t for t, _ in got]
    assert starts[:3] == pytest.approx([0.0, 3 / 30, 13 / 30], abs=1e-3)  # each at its time
    assert starts[-1] == pytest.approx(29 / 30, abs=1e-3)  # the last picture lasts to 1.0 s
    assert got[-1][1] == pytest.approx(255, abs=4)


def test_mono_audio_longer_than_video_is_muxed_whole(tmp_path):
    path = tmp_path / "m.mp4"
    w = VideoWriter(path, 32, 32, 30, audio=tone(1.5, channels=1)[:, 0])
    for f in frames(15, 32, 32):
        w.write(f)
    assert w.close() == path
    streams, n, _ = probe(path)
    assert n == 15
    assert abs(streams["audio"][1] - 1.5) < 0.05
    assert streams["audio"][2].codec_context.channels == 1


def test_exception_in_with_block_leaves_no_file(tmp_path):
    path = tmp_path / "x.mp4"
    with pytest.raises(RuntimeError, match="boom"):
        with VideoWriter(path, 32, 32, 30, audio=tone(1.0)) as w:
            for f in frames(5, 32, 32):
                w.write(f)
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_existing_file_untouched_until_complete(tmp_path):
    path = tmp_path / "keep.mp4"
    path.write_bytes(b"old")
    w = VideoWriter(path, 32, 32, 30)
    w.write(np.zeros((32, 32, 3), np.uint8))
    assert path.read_bytes() == b"old"
    w.abort()
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.mp4"]


def test_killed_process_leaves_no_file_at_path(tmp_path):
    path = tmp_path / "crash.mp4"
    script = textwrap.dedent(
        f"""
        import os, signal, numpy as np
        from vj.render.record import VideoWriter
        w = VideoWriter({str(path)!r}, 64, 48, 30)
        for i in range(20):
            w.write(np.full((48, 64, 3), i, np.uint8))
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60)
    assert r.returncode == -9, r.stderr.decode()
    assert not path.exists()


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="even"):
        VideoWriter(tmp_path / "a.mp4", 33, 32, 30)
    with pytest.raises(ValueError, match="crf"):
        VideoWriter(tmp_path / "a.mp4", 32, 32, 30, crf=99)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        VideoWriter(tmp_path / "nope" / "a.mp4", 32, 32, 30)
    with pytest.raises(ValueError, match="channels"):
        VideoWriter(tmp_path / "a.mp4", 32, 32, 30, audio=np.zeros((10, 5), np.float32))
    w = VideoWriter(tmp_path / "a.mp4", 32, 32, 30)
    with pytest.raises(ValueError, match=r"uint8 \[32, 32, 3\]"):
        w.write(np.zeros((32, 32, 4), np.uint8))
    w.abort()
    assert list(tmp_path.iterdir()) == []


def test_compositor_frames_recorded(tmp_path):
    from vj.render.compositor import Compositor
    from vj.render.offscreen import OffscreenTarget, create_headless_context

    ctx = create_headless_context()
    comp = Compositor(ctx, 64, 48, effect="none")
    tgt = OffscreenTarget(ctx, 64, 48)
    path = tmp_path / "comp.mp4"
    with VideoWriter(path, 64, 48, 30, audio=tone(10 / 30), crf=0, preset="ultrafast") as w:
        for i in range(10):
            f = np.zeros((32, 32, 4), np.uint8)
            f[..., 1] = 25 * i
            comp.submit_frame(f, i, i * 33_333_333)
            comp.draw(tgt.fbo, i * 33_333_333, {"crossfade": 0.0, "hud": 0.0})
            w.write(tgt.read_rgb())
    ctx.release()
    with av.open(str(path)) as c:
        greens = [fr.to_ndarray(format="rgb24")[..., 1].mean() for fr in c.decode(video=0)]
    assert np.allclose(greens, [25 * i for i in range(10)], atol=4)
