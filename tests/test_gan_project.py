"""`vj project`: a picture made from a known latent of the embedded default is recovered."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vj.cli import main
from vj.gan.data import read_image
from vj.gan.default import load_default
from vj.gan.project import ms_ssim, noise_regularisation, psnr


def run(*args) -> int:
    return main([str(a) for a in args])


def test_projection_recovers_a_known_latent(tmp_path):
    G, _ = load_default()
    z = torch.from_numpy(np.random.RandomState(7).randn(1, G.z_dim)).float()
    with torch.no_grad():
        ws = G.mapping(z)  # a W-space latent: reachable in both W and W+
    np.save(tmp_path / "known.npy", ws.numpy())
    assert run("generate", "default", "--ws", tmp_path / "known.npy", "-o", tmp_path / "t.png") == 0
    out = tmp_path / "found.npy"
    assert run("project", tmp_path / "t.png", "-o", out, "--space", "w+", "--steps", 80,
               "--no-progress") == 0  # fmt: skip
    found = np.load(out)
    assert found.shape == (1, G.num_ws, G.w_dim)
    assert run("generate", "default", "--ws", out, "-o", tmp_path / "r.png") == 0
    a = torch.from_numpy(read_image(tmp_path / "t.png")).permute(2, 0, 1)[None].float() / 127.5 - 1
    b = torch.from_numpy(read_image(tmp_path / "r.png")).permute(2, 0, 1)[None].float() / 127.5 - 1
    assert psnr(a, b).item() >= 25.0


def test_bad_inputs(tmp_path, capsys):
    assert run("project", tmp_path / "nope.png", "-o", tmp_path / "l.npy") == 2
    assert "no such image file" in capsys.readouterr().err
    (tmp_path / "x.png").write_bytes(b"junk")
    assert run("project", tmp_path / "x.png", "-o", tmp_path / "l.npy") == 2
    assert "not a readable image" in capsys.readouterr().err
    assert run("project", tmp_path / "x.png", "-o", tmp_path / "l.txt") == 2
    assert not (tmp_path / "l.npy").exists()
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros([3, 5], np.float32))
    assert run("generate", "default", "--ws", bad, "-o", tmp_path / "o.png") == 2
    assert "ws must be numeric" in capsys.readouterr().err


def test_ms_ssim_and_noise_reg():
    g = torch.Generator().manual_seed(0)
    x = torch.rand([2, 3, 64, 64], generator=g) * 2 - 1
    assert ms_ssim(x, x).tolist() == pytest.approx([1.0, 1.0], abs=1e-5)
    y = torch.rand([2, 3, 64, 64], generator=g) * 2 - 1
    assert (ms_ssim(x, y) < 0.5).all()
    white = torch.randn([32, 32], generator=g)
    smooth = torch.ones([32, 32])
    assert noise_regularisation([white]) < noise_regularisation([smooth])
