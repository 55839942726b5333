"""The stage output: its own resolution, window view, HUD off the feed, screenshots, outputs."""

from __future__ import annotations

import struct
import time
import zlib
from dataclasses import replace

import numpy as np
import pytest

from vj.render.compositor import Compositor
from vj.render.hud import MIDI_BLINK_S, HudStatus, HudText, frame_time_graph, status_lines
from vj.render.offscreen import OffscreenTarget, create_headless_context
from vj.render.outputs import available
from vj.render.png import encode_png
from vj.render.stage import Stage, StageOptions


@pytest.fixture(scope="module")
def ctx():
    c = create_headless_context()
    yield c
    c.release()


def decode_png(data: bytes) -> np.ndarray:
    """Enough of a PNG reader for our own files (8-bit RGB/RGBA, filter 0)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, hdr = 8, b"", None
    while pos < len(data):
        n = struct.unpack(">I", data[pos : pos + 4])[0]
        tag, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + n]
        assert struct.unpack(">I", data[pos + 8 + n : pos + 12 + n])[0] == zlib.crc32(tag + body)
        if tag == b"IHDR":
            hdr = struct.unpack(">IIBBBBB", body)
        elif tag == b"IDAT":
            idat += body
        pos += 12 + n
    w, h, _, ct, *_ = hdr
    c = 4 if ct == 6 else 3
    raw = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(h, 1 + w * c)
    assert (raw[:, 0] == 0).all()
    return raw[:, 1:].reshape(h, w, c)


def test_png_round_trip():
    img = np.random.default_rng(1).integers(0, 256, (7, 5, 3), dtype=np.uint8)
    assert np.array_equal(decode_png(encode_png(img)), img)
    with pytest.raises(ValueError, match="uint8"):
        encode_png(img.astype(np.float32))


def frame(h, w, seed):
    f = np.random.default_rng(seed).integers(0, 256, (h, w, 4), dtype=np.uint8)
    f[..., 3] = 255
    return f


def test_output_size_independent_of_window_and_hud_stays_off_the_feed(ctx, tmp_path):
    comp = Compositor(ctx, 20, 20, effect="none", filter="bilinear", fit="stretch")
    stage = Stage(ctx, comp, StageOptions(output=(64, 36), screenshot_dir=tmp_path))
    assert comp.size == (64, 36)  # the compositor works at output resolution
    win = OffscreenTarget(ctx, 40, 40)  # a square "window"
    a = frame(36, 64, 3)
    comp.submit_frame(a, 0, 0)
    comp.draw(stage.fbo, 0, {"hud": 1.0}, None, ["HUD"])
    assert comp.pending_hud == ["HUD"]
    stage.request_screenshot()
    stage.finish_frame(win.fbo)
    shot = decode_png(stage.last_screenshot.read_bytes())
    assert shot.shape == (36, 64, 3)
    assert np.array_equal(shot, a[..., :3])  # the output exactly, no HUD on it
    view = win.read_rgb().astype(int)
    # window: letterboxed (40x22.5 picture in the middle), HUD box drawn top-left
    assert view[-5:].max() == 0  # bottom bar black
    hud_box = view[:15, :15]
    assert np.abs(hud_box - np.zeros_like(hud_box)).max() > 0
    no_hud = Compositor(ctx, 64, 36, effect="none", filter="bilinear", fit="stretch")
    no_hud.submit_frame(a, 0, 0)
    tgt = OffscreenTarget(ctx, 64, 36)
    no_hud.draw(tgt.fbo, 0, {"hud": 1.0}, None, ["HUD"])  # a plain target: HUD burned in
    assert not np.array_equal(tgt.read_rgb(), a[..., :3])
    stage.release()


def test_hud_on_feed_when_asked(ctx, tmp_path):
    comp = Compositor(ctx, 64, 36, effect="none", filter="bilinear", fit="stretch")
    stage = Stage(ctx, comp, StageOptions(output=(64, 36), hud_on_feed=True))
    a = frame(36, 64, 4)
    comp.submit_frame(a, 0, 0)
    comp.draw(stage.fbo, 0, {"hud": 1.0}, None, ["HUD"])
    shot = decode_png(stage.screenshot(tmp_path / "s.png").read_bytes())
    assert not np.array_equal(shot, a[..., :3])
    stage.release()


def test_unavailable_output_is_a_warning_and_ndi_sends(ctx):
    comp = Compositor(ctx, 32, 18, effect="none", filter="bilinear")
    kinds = ("vcam", "spout") + (("ndi",) if available("ndi") is None else ())
    stage = Stage(ctx, comp, StageOptions(output=(32, 18), outputs=kinds, name="vj-test"))
    assert any("spout" in w for w in stage.warnings)
    if available("vcam") is not None:
        assert any("virtual camera" in w for w in stage.warnings)
    for i in range(5):
        comp.submit_frame(frame(18, 32, i), i, i * 10_000_000)
        comp.draw(stage.fbo, i * 10_000_000, {"hud": 0.0})
        stage.finish_frame(None)
    if "ndi" in kinds:
        time.sleep(0.3)
        ndi = stage.senders[0]
        assert ndi.kind == "ndi" and ndi.sent >= 1 and ndi.error is None
    assert any(line.startswith("! ") for line in stage.status_lines())
    stage.release()


class RefusingNdi:
    """cyndilib's sender as a wedged NDI runtime shows it: each frame hangs, then is refused."""

    def __init__(self, real, hang_s: float):
        self.real, self.hang_s = real, hang_s

    def write_video(self, data) -> bool:
        time.sleep(self.hang_s)
        return False

    def __getattr__(self, name):
        return getattr(self.real, name)


def test_a_failing_ndi_output_is_said_once_and_reopened_while_the_stage_renders(ctx, capfd):
    """A real NDI output inside a Stage render loop; its NDI sender hangs and refuses frames,
    and the first reopen fails too. The loop never waits on it, the failure is said once
    (stderr) and shown on the HUD, and the output is reopened and sends again."""
    if available("ndi") is not None:
        pytest.skip(available("ndi"))
    comp = Compositor(ctx, 32, 18, effect="none", filter="bilinear")
    stage = Stage(ctx, comp, StageOptions(output=(32, 18), outputs=("ndi",), name="vj-fail"))
    ndi = stage.senders[0]
    sink = ndi.sink
    sink._sender = RefusingNdi(sink._sender, hang_s=1.0)  # the NDI library boundary
    real_open, opens = sink._open, []

    def flaky_open():  # the runtime is not back at the first reopen
        opens.append(time.monotonic())
        if len(opens) == 1:
            raise OSError("NDI runtime not ready")
        real_open()

    sink._open = flaky_open
    frame_s, down_lines, k = [], [], 0
    t_end = time.monotonic() + 6.0
    while time.monotonic() < t_end and not (len(opens) >= 2 and ndi.sent >= 3):
        comp.submit_frame(frame(18, 32, k), k, k * 16_000_000)
        comp.draw(stage.fbo, k * 16_000_000, {"hud": 0.0})
        t = time.perf_counter()
        stage.finish_frame(None)
        frame_s.append(time.perf_counter() - t)
        down_lines += [x for x in stage.status_lines() if "!" in x]
        k += 1
        time.sleep(0.016)
    err = capfd.readouterr().err
    stage.release()
    assert len(opens) == 2 and ndi.sent >= 3 and ndi.error is None  # reopened; sending again
    assert ndi.errors == 2  # the refused frame and the failed reopen
    assert max(frame_s) < 0.5 and k > 30  # the render loop never waited on the 1 s hang
    said = "vj: output ndi failed: RuntimeError: NDI sender refused the frame; restarting in"
    assert err.count("output ndi failed") == 1 and said in err, err  # the second is held back
    assert any("output ndi failed (RuntimeError: NDI sender refused the frame)" in x
               for x in down_lines)  # fmt: skip
    assert any("restart: OSError: NDI runtime not ready" in x for x in down_lines)


def test_status_lines_and_frame_time_graph(ctx):
    st = HudStatus(
        display_fps=59.9, generator_fps=24.0, latency_ms=18.5, bpm=128.0, beat_phase=0.3,
        bar_phase=0.6, tempo_source="link", midi_events=12, midi_age_s=0.1, preset="club",
        cue="drop", warnings=("audio input lost",), midi_last="cc 7=100 ch1 > zoom 1.29",
    )  # fmt: skip
    text = "\n".join(status_lines(st))
    assert "MIDI ●     12  cc 7=100 ch1 > zoom 1.29" in text  # lit for MIDI_BLINK_S
    dark = "\n".join(status_lines(replace(st, midi_age_s=MIDI_BLINK_S)))
    assert "MIDI       12  cc 7=100" in dark and "●" not in dark
    assert (HudText().glyph("●") != HudText().glyph("?")).any()  # a glyph of its own
    assert "MIDI --" in status_lines(HudStatus())
    for fact in ("59.9", "24.0", "18.5 MS", "128.0 (link)", "beat 3/4", "MIDI", "club", "drop"):
        assert fact in text
    assert "! audio input lost" in text
    g = frame_time_graph([10, 16, 40, 100], width=8, height=10, full_ms=50)
    assert g.shape == (10, 8) and g[:, :4].max() == 255  # budget line only where no bars
    assert (g[:, 7] > 0).sum() == 10 and (g[:, 4] == 160).sum() == 2  # clipped 100 ms, 10 ms
    comp = Compositor(ctx, 64, 36, effect="none")
    tgt = OffscreenTarget(ctx, 64, 36)
    comp.draw_hud(tgt.fbo, ["X"], g)
    assert tgt.read_rgb().max() > 0


def test_screenshot_key_in_the_live_app(ctx, tmp_path):
    import glfw

    from vj.live import LiveApp, LiveOptions
    from vj.params import default_registry

    app = LiveApp(default_registry(), None, LiveOptions(headless=True))
    comp = Compositor(ctx, 32, 18, effect="none", filter="bilinear")
    app._stage = Stage(ctx, comp, StageOptions(output=(48, 28), screenshot_dir=tmp_path))
    app._on_key(glfw.KEY_P, glfw.PRESS, 0)
    comp.draw(app._stage.fbo, 0, {"hud": 0.0})
    app._stage.finish_frame(None)
    (png,) = tmp_path.glob("vj-*.png")
    assert decode_png(png.read_bytes()).shape == (28, 48, 3)
    app._stage.release()
