"""Bends and noise masks reach the synthesis on every backend that can run them; static graphs
(onnxruntime, TensorRT) say once that they ignore them and render the plain frame."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.gan_nets import tiny_generator
from vj.gan.engine import Engine
from vj.show.frame import Bend, DeckControls

CFG = dict(z_dim=16, w_dim=16, img_resolution=32, channel_base=256, channel_max=16)


def _controls(G):
    ws = G.mapping(torch.randn(1, 16, generator=torch.Generator().manual_seed(7)), None)
    ns = torch.ones(G.synthesis.num_noise_layers)
    masks = tuple(torch.zeros(s[-2:]) for s in G.synthesis.noise_shapes)
    return (
        DeckControls("A", ws, ns),
        DeckControls("A", ws, ns, bends=(Bend(1, rotate=0.7),)),
        DeckControls("A", ws, ns, noise_masks=masks),
    )


def test_render_and_render_async_forward_bends_and_masks():
    G = tiny_generator(**CFG)
    eng = Engine(G, device="cpu", dtype="fp32", n_buffers=3)
    plain, bent, masked = _controls(G)
    for call in (eng.render, eng.render_async):
        p = call(plain, slot=0).rgba.astype(int)
        b = call(bent, slot=1).rgba.astype(int)
        m = call(masked, slot=2).rgba.astype(int)
        assert np.abs(p - b).max() > 2  # the bend changed the picture
        assert np.abs(p - m).max() > 0  # zero masks removed the noise
        with torch.no_grad():
            want = G.synthesis(
                bent.ws, bends=bent.bends, noise_strength=bent.noise_strength, force_fp32=True
            )
        want8 = (want[0].permute(1, 2, 0) * 127.5 + 128).clamp(0, 255).to(torch.uint8).numpy()
        assert np.abs(b[..., :3] - want8.astype(int)).max() <= 3


def test_static_graph_backend_takes_masks_ignores_bends_says_once(tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from vj.gan.backends import make_engine

    G = tiny_generator(**CFG)
    ort_eng = make_engine(G, "onnxruntime", cache_dir=tmp_path, threads=1)
    eng = Engine(tiny_generator(**CFG), device="cpu", dtype="fp32", n_buffers=2)
    plain, bent, masked = _controls(G)
    p = ort_eng.render(plain).rgba.copy()
    assert not ort_eng.fallback_reason
    m = ort_eng.render(masked).rgba.copy()  # masks ride on the noise inputs
    want = eng.render(masked).rgba.astype(int)
    assert np.abs(m.astype(int) - want).max() <= 1 and np.abs(m.astype(int) - p).max() > 0
    assert not ort_eng.fallback_reason  # masks are no fallback
    b = ort_eng.render_async(bent).rgba.copy()
    b2 = ort_eng.render(bent).rgba.copy()
    np.testing.assert_array_equal(b, p)  # bends ignored, not half-applied
    np.testing.assert_array_equal(b2, p)
    err = capsys.readouterr().err
    assert err.count("network bends ignored") == 1  # said once
    assert "onnxruntime" in ort_eng.fallback_reason
