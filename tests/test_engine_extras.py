"""Bends and noise masks reach the synthesis on every backend: the torch engine as kwargs, static
graphs (onnxruntime, TensorRT) through their noise and bend_theta inputs; a bend a graph cannot
apply is said once and the plain frame rendered."""

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


def test_static_graph_backend_takes_masks_and_bends(tmp_path, capsys):
    """onnxruntime runs the exported graph: masks ride on its noise inputs, bends on its
    bend_theta input; both match the torch engine."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from vj.gan.backends import make_engine

    G = tiny_generator(**CFG)
    ort_eng = make_engine(G, "onnxruntime", cache_dir=tmp_path, threads=1)
    eng = Engine(tiny_generator(**CFG), device="cpu", dtype="fp32", n_buffers=2)
    plain, bent, masked = _controls(G)
    p = ort_eng.render(plain).rgba.copy()
    for c in (masked, bent, plain, bent):  # bends set, cleared, set again
        got = ort_eng.render(c).rgba.astype(int)
        want = eng.render(c).rgba.astype(int)
        assert np.abs(got - want).max() <= 1  # 1e-4 float error may flip a rounding
    assert np.abs(ort_eng.render_async(bent).rgba.astype(int) - p).max() > 2  # really bent
    np.testing.assert_array_equal(ort_eng.render(plain).rgba, p)  # and back
    assert not ort_eng.fallback_reason  # neither is a fallback
    assert "static graph" not in capsys.readouterr().err


def test_static_graph_without_a_blocks_bend_input_ignores_it_and_says_once(tmp_path, capsys):
    """A graph exported with fewer bendable blocks (or none, as files from before bends were
    exported) renders a bend it cannot apply as the plain frame, says so once."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from vj.gan.backends import OrtEngine
    from vj.gan.export import export_onnx, read_meta

    G = tiny_generator(**CFG)
    plain, bent, _ = _controls(G)  # bent: block 1
    for k in (1, 0):
        path = export_onnx(G, tmp_path / f"k{k}.onnx", bend_blocks=k)
        assert read_meta(path)["bend_blocks"] == k
        ort_eng = OrtEngine(path, threads=1)
        p = ort_eng.render(plain).rgba.copy()
        np.testing.assert_array_equal(ort_eng.render_async(bent).rgba, p)  # not half-applied
        np.testing.assert_array_equal(ort_eng.render(bent).rgba, p)
        err = capsys.readouterr().err
        assert err.count("bend at block 1 ignored") == 1, err  # said once
        assert "onnxruntime" in ort_eng.fallback_reason
