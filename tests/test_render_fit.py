"""Output fit modes and the upscaler on EGL vs NumPy twins; Lanczos-3 vs bilinear PSNR on photos."""

from __future__ import annotations

import numpy as np
import pytest

from vj.render.fit import FIT_MODES, fit_reference, fit_scale
from vj.render.offscreen import create_headless_context
from vj.render.upscale import Scaler, downscale_area, psnr, scale_reference

# bar edges between pixel centres: a centre exactly on an edge is inside or out by rounding
SIZES = {"16:9": (49, 27), "21:9": (63, 27), "portrait": (27, 49)}


@pytest.fixture(scope="module")
def ctx():
    c = create_headless_context()
    yield c
    c.release()


def source(h=16, w=16, seed=3):
    """A square generator-like frame: smooth colour plus a sharp block, uint8 [h, w, 3]."""
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([xx / (w - 1), yy / (h - 1), 0.5 + 0.5 * np.sin(xx * yy / 7.0)], -1)
    img[h // 4 : h // 2, w // 3 : w // 2] = [1.0, 1.0, 0.0]
    return np.round(img * 255).astype(np.uint8)


def run(ctx, scaler, u8, size, mode, filt, flip_y=False):
    tex = ctx.texture(
        (u8.shape[1], u8.shape[0]), 3, np.ascontiguousarray(u8).tobytes(), alignment=1
    )
    tex.repeat_x = tex.repeat_y = False
    out = ctx.texture(size, 4)
    fbo = ctx.framebuffer(color_attachments=[out])
    scaler.draw(tex, fbo, mode, filt, flip_y=flip_y)
    got = np.frombuffer(out.read(), np.uint8).reshape(size[1], size[0], 4)[..., :3].astype(int)
    for o in (fbo, out, tex):
        o.release()
    return got


def q(x):
    return np.round(np.clip(x, 0, 1) * 255).astype(int)


def test_fit_scales():
    assert fit_scale("fill", 512, 512, 1920, 1080) == (1.0, 1080 / 1920)
    assert fit_scale("fit", 512, 512, 1920, 1080) == (1920 / 1080, 1.0)
    assert fit_scale("tile", 512, 512, 1080, 1920) == (1.0, 1920 / 1080)
    assert fit_scale("stretch", 512, 512, 3840, 1600) == (1.0, 1.0)
    with pytest.raises(ValueError, match="allowed values are fit, fill, stretch, tile"):
        fit_scale("cover", 1, 1, 1, 1)


@pytest.mark.parametrize("aspect", sorted(SIZES))
@pytest.mark.parametrize("mode", FIT_MODES)
def test_fit_modes_match_reference(ctx, mode, aspect):
    scaler = Scaler(ctx)
    u8 = source()
    size = SIZES[aspect]
    got = run(ctx, scaler, u8, size, mode, "bilinear")
    want = q(fit_reference(u8 / 255, mode, *size))
    assert np.abs(got - want).max() <= 1
    if mode == "fit":  # bars are black, the image is not
        bars = got[:, :4] if aspect != "portrait" else got[:4]
        assert bars.max() == 0 and got.max() > 200
    if mode == "tile":  # mirrored copies, no black
        assert got.reshape(-1, 3).sum(1).min() > 0
    scaler.release()


@pytest.mark.parametrize("filt", ["lanczos", "bicubic"])
@pytest.mark.parametrize(
    ("mode", "size"),
    [("fill", (48, 27)), ("fit", (63, 27)), ("tile", (27, 48)), ("stretch", (10, 7))],
)
def test_separable_filters_match_reference(ctx, filt, mode, size):
    scaler = Scaler(ctx)
    u8 = source()
    got = run(ctx, scaler, u8, size, mode, filt)
    want = q(scale_reference(u8 / 255, mode, *size, filt))
    assert np.abs(got - want).max() <= 1  # half-float intermediate: ~1/2000 before rounding
    scaler.release()


def test_flip_y_reads_top_first_frames(ctx):
    scaler = Scaler(ctx)
    u8 = source()
    for filt in ("bilinear", "lanczos"):
        a = run(ctx, scaler, u8[::-1], (32, 32), "stretch", filt, flip_y=True)
        b = run(ctx, scaler, u8, (32, 32), "stretch", filt)
        assert np.abs(a - b).max() <= 1
    scaler.release()


def photos():
    data = pytest.importorskip("skimage.data", reason="scikit-image ships the test photos")
    return {n: getattr(data, n)() for n in ("astronaut", "chelsea", "coffee")}


def test_lanczos_beats_bilinear_on_downscaled_photos(ctx):
    """Photos shrunk ×4 (box filter) and scaled back up: Lanczos-3 has the higher PSNR."""
    scaler = Scaler(ctx)
    gains = []
    for img in photos().values():
        img = img[:256, :256, :3]  # small: llvmpipe is slow
        small = np.round(downscale_area(img, 4)).astype(np.uint8)[::-1]  # GL rows
        ref = img[::-1].astype(int)
        size = (img.shape[1], img.shape[0])
        bil = run(ctx, scaler, small, size, "stretch", "bilinear")
        lan = run(ctx, scaler, small, size, "stretch", "lanczos")
        gains.append(psnr(lan, ref) - psnr(bil, ref))
    assert min(gains) > 0.3, gains
    scaler.release()
