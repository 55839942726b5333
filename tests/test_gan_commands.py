"""`vj generate` and `vj convert`: seeds like NVIDIA's tools, PNG/NPY output, clear errors."""

import argparse
import pickle

import av
import numpy as np
import pytest
import torch

from tests.gan_nets import tiny_generator
from vj.gan.checkpoint import save_generator
from vj.gan.commands import encode_png, register, seed_z, to_uint8


def run(*argv):
    p = argparse.ArgumentParser(prog="vj")
    register(p.add_subparsers())
    args = p.parse_args([str(a) for a in argv])
    return args.func(args)


def read_png(path):
    with av.open(str(path)) as c:
        return next(c.decode(video=0)).to_ndarray(format="rgb24")


@pytest.fixture(scope="module")
def small_ckpt(tmp_path_factory):
    """A small network saved as safetensors (the embedded default is slow to build 4 times)."""
    G = tiny_generator(
        0,
        random_biases=False,
        z_dim=16,
        w_dim=16,
        img_resolution=32,
        channel_base=256,
        channel_max=16,
        num_fp16_res=0,
    )
    path = tmp_path_factory.mktemp("ckpt") / "small.safetensors"
    save_generator(G, path)
    return path, G


def test_generate_seed_png_and_npy(tmp_path, small_ckpt, capsys):
    ckpt, G = small_ckpt
    assert run("generate", ckpt, "--seed", 42, "-o", tmp_path / "a.png") == 0
    assert "wrote" in capsys.readouterr().out
    z = torch.from_numpy(np.random.RandomState(42).randn(1, G.z_dim)).float()
    assert torch.equal(seed_z(42, G.z_dim), z)
    with torch.no_grad():
        img = G(z, truncation_psi=0.6, truncation_cutoff=2, noise_mode="none")
    out = tmp_path / "a.npy"
    assert run("generate", ckpt, "--seed", 42, "--truncation", 0.6, "--truncation-cutoff", 2,
               "--noise-mode", "none", "-o", out) == 0  # fmt: skip
    arr = np.load(out)
    assert arr.dtype == np.float32 and arr.shape == tuple(img.shape)
    assert np.allclose(arr, img.numpy(), atol=1e-5)
    png = read_png(tmp_path / "a.png")
    with torch.no_grad():
        expect = to_uint8(G(z))[0]
    assert png.shape == expect.shape and np.abs(png.astype(int) - expect).max() <= 1
    assert png.std() > 5  # an image, not a flat field


def test_generate_default_and_convert_round_trip(tmp_path, small_ckpt):
    assert run("generate", "default", "--seed", 1, "-o", tmp_path / "d.png") == 0
    png = read_png(tmp_path / "d.png")
    assert png.shape[0] >= 128 and png.std() > 5
    ckpt, G = small_ckpt
    z = np.random.RandomState(0).randn(2, G.z_dim).astype(np.float32)
    np.save(tmp_path / "z.npy", z)
    assert run("convert", ckpt, tmp_path / "c.safetensors") == 0
    assert run("generate", tmp_path / "c.safetensors", "--z", tmp_path / "z.npy",
               "-o", tmp_path / "b.npy") == 0  # fmt: skip
    with torch.no_grad():
        expect = G(torch.from_numpy(z)).numpy()
    assert np.array_equal(np.load(tmp_path / "b.npy"), expect)


def test_png_encoder_roundtrip(tmp_path):
    rng = np.random.RandomState(1)
    pix = rng.randint(0, 256, size=(7, 5, 3), dtype=np.uint8)
    (tmp_path / "p.png").write_bytes(encode_png(pix))
    assert np.array_equal(read_png(tmp_path / "p.png"), pix)


def test_command_errors_exit_2_with_message(tmp_path, small_ckpt, capsys):
    assert run("generate", "default", "--seed", 1, "-o", tmp_path / "x.jpg") == 2
    assert "must end in .png or .npy" in capsys.readouterr().err
    np.save(tmp_path / "z.npy", np.zeros((1, 7), np.float32))
    assert run("generate", small_ckpt[0], "--z", tmp_path / "z.npy", "-o", tmp_path / "x.png") == 2
    assert "z must be numeric" in capsys.readouterr().err
    evil = tmp_path / "evil.pkl"

    class Evil:
        def __reduce__(self):
            return (exec, ("import os",))

    evil.write_bytes(pickle.dumps(Evil()))
    assert run("convert", evil, tmp_path / "out.safetensors") == 2
    err = capsys.readouterr().err
    assert "refused" in err and "builtins.exec" in err and str(evil) in err
    assert not (tmp_path / "out.safetensors").exists()
    assert run("convert", "default", tmp_path / "out.pt") == 2
    assert "must end in .safetensors" in capsys.readouterr().err
    assert run("generate", tmp_path / "missing.pkl", "--seed", 1, "-o", tmp_path / "m.png") == 2
    assert "cannot read" in capsys.readouterr().err
