"""Frames into the compositor: numpy/torch, uint8/float, CUDA–GL interop and its host fallback."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vj.render.compositor import Compositor
from vj.render.interop import FrameUploader, interop_unavailable
from vj.render.offscreen import OffscreenTarget, create_headless_context


@pytest.fixture(scope="module")
def ctx():
    c = create_headless_context()
    yield c
    c.release()


def frame(h=24, w=32, seed=0):
    f = np.random.default_rng(seed).integers(0, 256, (h, w, 4), dtype=np.uint8)
    f[..., 3] = 255
    return f


def shown(ctx, rgba, **kw):
    comp = Compositor(ctx, 32, 24, effect="none")
    comp.submit_frame(rgba, 0, 0, **kw)
    tgt = OffscreenTarget(ctx, 32, 24)
    comp.draw(tgt.fbo, 0, {})
    out = tgt.read_rgb().copy()
    return out, comp


def test_cpu_tensor_equals_numpy(ctx):
    f = frame()
    a, comp = shown(ctx, f)
    b, _ = shown(ctx, torch.from_numpy(f))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, f[..., :3])
    assert comp.upload_description == "upload host"


def test_float_frames_show_like_uint8(ctx):
    f = frame(seed=1)
    ref, _ = shown(ctx, f)
    x = f.astype(np.float32) / 255.0
    for rgba in (x, x.astype(np.float16), torch.from_numpy(x).half()):
        out, _ = shown(ctx, rgba)
        assert np.abs(out.astype(int) - ref.astype(int)).max() <= 1


def test_bad_frames_are_refused_in_one_line(ctx):
    comp = Compositor(ctx, 32, 24, effect="none")
    with pytest.raises(ValueError, match="got int64 \\(24, 32, 4\\)"):
        comp.submit_frame(np.zeros((24, 32, 4), np.int64), 0, 0)
    with pytest.raises(ValueError, match="got float32 \\(24, 32\\)"):
        comp.submit_frame(torch.zeros(24, 32), 0, 0)


def test_interop_reason_on_mesa(ctx):
    reason = interop_unavailable(ctx)
    if "nvidia" in ctx.info["GL_VENDOR"].lower():
        pytest.skip("NVIDIA GL driver present")
    assert reason is not None and "not NVIDIA" in reason


def test_cuda_frames_fall_back_to_the_host_and_say_why(ctx):
    """Through the real EGL context: where interop cannot run (here: Mesa's llvmpipe), a CUDA
    frame is routed to the host path, the reason is kept for the HUD and told once."""
    if interop_unavailable(ctx) is None:
        pytest.skip("interop available here")
    warned: list[str] = []
    up = FrameUploader(ctx, warn=warned.append)
    cuda0 = torch.device("cuda", 0)
    assert up.route_for(cuda0) == "host" and up.route_for(cuda0) == "host"
    assert len(warned) == 1 and warned[0].startswith("CUDA-GL interop unavailable: ")
    assert up.reason == warned[0]
    assert up.route_for(torch.device("cpu")) == "host"
    tex = ctx.texture((32, 24), 4)
    f = frame(seed=2)
    assert up.upload(torch.from_numpy(f), tex) == "host"
    np.testing.assert_array_equal(np.frombuffer(tex.read(), np.uint8).reshape(24, 32, 4), f)
    assert up.describe().startswith("upload host copy (CUDA-GL interop unavailable")
    tex.release()


@pytest.mark.gpu
def test_cuda_tensor_matches_host_upload(ctx):
    f = frame(seed=3)
    ref, _ = shown(ctx, f)
    out, comp = shown(ctx, torch.from_numpy(f).cuda())
    np.testing.assert_array_equal(out, ref)
    # either a zero-copy upload or a host fallback with its reason, never silent garbage
    assert comp.upload_description == "upload interop" or comp.interop_reason
    half = torch.from_numpy(f.astype(np.float32) / 255).half().cuda()
    out, _ = shown(ctx, half)
    assert np.abs(out.astype(int) - ref.astype(int)).max() <= 1


@pytest.mark.gpu
def test_engine_frame_ordered_by_its_event_on_its_stream(ctx):
    from tests.test_engine_nets import small_generator
    from vj.audio.features import AudioFeatures
    from vj.gan.engine import Engine
    from vj.react.modulation import Modulator

    G = small_generator(0)
    c = Modulator(G, seed=0).step(AudioFeatures(onset_count=1), {}, 0.1)
    ref, _ = shown(ctx, Engine(G, device="cpu").render(c).rgba)
    eng = Engine(G, device="cuda", dtype="fp32", cuda_graphs=True)
    f = eng.render_async(c)  # not waited for: the upload must wait for it on the GPU
    out, comp = shown(ctx, f.rgba, stream=f.stream, event=f.event)
    d = np.abs(out.astype(int) - ref.astype(int))  # an unordered copy would show garbage
    assert d.mean() < 0.5 and d.max() <= 4, (d.mean(), d.max())


@pytest.mark.gpu
def test_interop_failure_mid_show_falls_back_to_host(ctx):
    if interop_unavailable(ctx) is not None:
        pytest.skip(f"no interop here: {interop_unavailable(ctx)}")
    warned: list[str] = []
    up = FrameUploader(ctx, warn=warned.append)
    tex = ctx.texture((32, 24), 4)
    f = torch.from_numpy(frame(seed=4)).cuda()
    assert up.upload(f, tex) == "interop"
    gpu = up._gpu
    gpu._cu.cuGraphicsUnregisterResource(gpu._res)  # the registration is gone: map fails
    assert up.upload(f, tex) == "host"
    assert warned and "CUDA-GL interop failed, host copies from now on" in warned[0]
    np.testing.assert_array_equal(np.frombuffer(tex.read(), np.uint8).reshape(24, 32, 4),
                                  f.cpu().numpy())  # fmt: skip
    assert up.upload(f, tex) == "host" and len(warned) == 1
    tex.release()
