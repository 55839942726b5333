"""Torch tensors into the compositor: CPU tensors, CUDA–GL interop (GPU only), host fallback."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vj.render.compositor import Compositor
from vj.render.interop import interop_unavailable
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


def shown(ctx, rgba):
    comp = Compositor(ctx, 32, 24, effect="none")
    comp.submit_frame(rgba, 0, 0)
    tgt = OffscreenTarget(ctx, 32, 24)
    comp.draw(tgt.fbo, 0, {})
    out = tgt.read_rgb().copy()
    return out, comp


def test_cpu_tensor_equals_numpy(ctx):
    f = frame()
    a, _ = shown(ctx, f)
    b, _ = shown(ctx, torch.from_numpy(f))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, f[..., :3])


def test_interop_reason_on_mesa(ctx):
    reason = interop_unavailable(ctx)
    if "nvidia" in ctx.info["GL_VENDOR"].lower():
        pytest.skip("NVIDIA GL driver present")
    assert reason is not None and "not NVIDIA" in reason


@pytest.mark.gpu
def test_cuda_tensor_matches_host_upload(ctx):
    f = frame(seed=3)
    ref, _ = shown(ctx, f)
    out, comp = shown(ctx, torch.from_numpy(f).cuda())
    np.testing.assert_array_equal(out, ref)
    # either a zero-copy upload or a host fallback with its reason, never silent garbage
    assert comp._uploader is not None or comp.interop_reason
