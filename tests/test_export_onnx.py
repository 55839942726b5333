"""ONNX export (via the `vj export onnx` command) checked with onnxruntime against torch."""

from __future__ import annotations

import argparse

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from tests.test_engine_nets import small_generator
from vj.audio.features import AudioFeatures
from vj.gan.backends import OrtEngine
from vj.gan.engine import Engine
from vj.gan.export import (
    export_onnx,
    noise_defaults,
    noise_input_name,
    read_meta,
    register,
    tensorrt_available,
)
from vj.react.modulation import Modulator

pytestmark = pytest.mark.slow  # each export traces the network (~15-25 s on 2 cores)


def _run_cli(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="vj")
    register(p.add_subparsers(dest="command"))
    args = p.parse_args(argv)
    return args.func(args)


def _session(path):
    so = ort.SessionOptions()
    so.log_severity_level = 3
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def _controls(G, n=3):
    m = Modulator(G, seed=2)
    bands = np.linspace(0, 1, 8).astype(np.float32)
    return [m.step(AudioFeatures(onset_count=k, bands=bands), {}, 0.1 * k) for k in range(n)]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from vj.gan.checkpoint import save_generator

    path = tmp_path_factory.mktemp("ckpt") / "small.safetensors"
    save_generator(small_generator(0), path)
    return path


@pytest.fixture(scope="module")
def exported(tmp_path_factory, checkpoint):
    """The fp32 export of a small safetensors checkpoint, made through the command line."""
    out = tmp_path_factory.mktemp("onnx") / "small.onnx"
    assert _run_cli(["export", "onnx", str(checkpoint), str(out)]) == 0
    return out


def test_static_shapes_explicit_noise_no_custom_ops(exported):
    G = small_generator(0)
    model = onnx.load(str(exported))
    names = [noise_input_name(n) for n in G.synthesis.noise_layer_names]
    assert [i.name for i in model.graph.input] == ["ws", "noise_strength", *names, "bend_theta"]
    for i in model.graph.input:  # every dim static
        assert all(d.dim_value > 0 for d in i.type.tensor_type.shape.dim), i.name
    assert {n.domain for n in model.graph.node} <= {"", "ai.onnx"}
    assert not {"RandomNormal", "RandomNormalLike", "RandomUniform"} & {
        n.op_type for n in model.graph.node
    }
    meta = read_meta(exported)
    assert meta["resolution"] == 32 and meta["num_ws"] == G.num_ws and meta["precision"] == "fp32"
    assert meta["bends"] and meta["bend_blocks"] == min(4, len(G.synthesis.block_resolutions))
    defaults = noise_defaults(exported)
    for layer, name in zip(G.synthesis.noise_layer_names, names, strict=True):
        want = G.synthesis.get_submodule(layer).noise_const.numpy()
        np.testing.assert_array_equal(defaults[name][0, 0], want)


def test_onnxruntime_matches_torch_fp32(exported):
    G = small_generator(0)
    s = _session(exported)
    for c in _controls(G):
        got = s.run(None, {"ws": c.ws.numpy(), "noise_strength": c.noise_strength.numpy()})[0]
        with torch.no_grad():
            ref = G.synthesis(
                c.ws, noise_mode="const", force_fp32=True, noise_strength=c.noise_strength
            )
        np.testing.assert_allclose(got, ref.numpy(), atol=1e-4, rtol=0)


def test_user_noise_inputs_override_defaults(exported):
    G = small_generator(0)
    c = _controls(G, n=1)[0]
    g = torch.Generator().manual_seed(5)
    user = {
        n: torch.randn(1, 1, *G.synthesis.noise_shapes[k], generator=g)
        for k, n in enumerate(G.synthesis.noise_layer_names)
    }
    feed = {"ws": c.ws.numpy(), "noise_strength": c.noise_strength.numpy()}
    feed.update({noise_input_name(n): t.numpy() for n, t in user.items()})
    got = _session(exported).run(None, feed)[0]
    with torch.no_grad():
        ref = G.synthesis(c.ws, force_fp32=True, noise_strength=c.noise_strength, noise=user)
        const = G.synthesis(c.ws, force_fp32=True, noise_strength=c.noise_strength)
    np.testing.assert_allclose(got, ref.numpy(), atol=1e-4, rtol=0)
    assert np.abs(got - const.numpy()).max() > 1e-3  # the user noise really was used


def test_ort_engine_equals_torch_engine(exported):
    G = small_generator(0)
    eng, ort_eng = Engine(small_generator(0), device="cpu"), OrtEngine(exported, threads=1)
    assert ort_eng.backend == "onnxruntime" and ort_eng.resolution == eng.resolution
    for c in _controls(G):
        a = eng.render(c).rgba.astype(np.int16)
        b = ort_eng.render(c).rgba.astype(np.int16)
        assert np.abs(a - b).max() <= 1  # 1e-4 float error may flip a rounding


def test_fp16_export_close_to_fp32(tmp_path):
    G = small_generator(0)
    out = export_onnx(small_generator(0), tmp_path / "h.onnx", fp16=True)
    assert read_meta(out)["precision"] == "fp16"
    assert "Cast" in {n.op_type for n in onnx.load(str(out)).graph.node}
    s = _session(out)
    c = _controls(G, n=1)[0]
    got = s.run(None, {"ws": c.ws.numpy(), "noise_strength": c.noise_strength.numpy()})[0]
    with torch.no_grad():
        ref = G.synthesis(c.ws, force_fp32=True, noise_strength=c.noise_strength).numpy()
    psnr = 10 * np.log10(4.0 / np.mean((np.clip(got, -1, 1) - np.clip(ref, -1, 1)) ** 2))
    assert psnr > 40, psnr


def test_cli_errors(tmp_path, capsys, checkpoint):
    assert _run_cli(["export", "onnx", str(tmp_path / "nope.pkl"), str(tmp_path / "o.onnx")]) == 2
    assert "no such checkpoint" in capsys.readouterr().err
    assert _run_cli(["export", "onnx", "default", str(tmp_path / "o.onnx"), "--size", "33"]) == 2
    assert "power of two" in capsys.readouterr().err
    assert _run_cli(["export", "onnx", "default", str(tmp_path / "o.txt")]) == 2
    assert "must end in .onnx" in capsys.readouterr().err
    assert _run_cli(["export", "onnx", str(checkpoint), str(tmp_path / "o.onnx"), "--size", "64"])
    assert "--size 64 only applies to 'default'" in capsys.readouterr().err
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a checkpoint at all")
    assert _run_cli(["export", "onnx", str(bad), str(tmp_path / "o.onnx")]) == 2
    assert "bad.safetensors" in capsys.readouterr().err
    bad.unlink()
    assert _run_cli(["export", "trt", str(tmp_path / "x.onnx"), str(tmp_path / "x.plan")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())  # nothing half-written


@pytest.mark.skipif(not tensorrt_available(), reason="tensorrt not importable")
@pytest.mark.gpu
@pytest.mark.parametrize("fp16", [True, False], ids=["fp16-as-live", "fp32"])
def test_trt_engine_matches_torch(checkpoint, tmp_path, fp16):
    """The plan the product builds (make_engine: fp16 export + FP16 flag) and an fp32 one."""
    from vj.gan.backends import TrtEngine, make_engine

    G = small_generator(0)
    trt_eng = make_engine(G, "trt", cache_dir=tmp_path, fp16=fp16)
    assert isinstance(trt_eng, TrtEngine) and trt_eng.fp16 == fp16
    assert read_meta(next(tmp_path.glob("*.onnx")))["precision"] == ("fp16" if fp16 else "fp32")
    eng = Engine(small_generator(0), device="cpu")
    for c in _controls(G):
        a = eng.render(c).rgba.astype(np.int16)
        b = trt_eng.render(c).rgba.cpu().numpy().astype(np.int16)
        assert np.all(b[..., 3] == 255)
        if fp16:
            assert np.abs(a - b).mean() < 2.0
        else:
            assert np.abs(a - b).max() <= 2
        f = trt_eng.render_async(c)
        f.event.synchronize()
        assert trt_eng.ready(f) and trt_eng.gpu_ms(f) > 0
    from vj.show.frame import Bend, DeckControls

    c = _controls(G, 1)[0]
    plain = trt_eng.render(c).rgba.cpu().numpy().astype(np.int16)
    bent = DeckControls("A", c.ws, c.noise_strength, bends=(Bend(1, rotate=0.5, zoom=1.3),))
    a = eng.render(bent).rgba.astype(np.int16)
    b = trt_eng.render(bent).rgba.cpu().numpy().astype(np.int16)  # on the bend_theta input
    assert np.abs(a - b).mean() < (2.0 if fp16 else 0.5) and np.abs(b - plain).mean() > 2.0
    assert not trt_eng.fallback_reason


def test_make_engine_reuses_cached_export(exported, tmp_path):
    import shutil

    from vj.gan.backends import cache_key, make_engine, network_digest

    G = small_generator(0)
    key = cache_key(G, fp16=False)
    assert key.startswith(network_digest(G)[:20]) and key != cache_key(G, fp16=True)
    assert key == cache_key(small_generator(0), False) != cache_key(small_generator(1), False)
    shutil.copy(exported, tmp_path / f"{key}.onnx")
    eng = make_engine(G, "onnxruntime", cache_dir=tmp_path, threads=1)  # no export: cached
    assert eng.backend == "onnxruntime" and len(list(tmp_path.iterdir())) == 1
    assert eng.description.startswith("onnxruntime CPU fp32")
    assert make_engine(G, "torch", device="cpu").backend == "torch-cpu"
    with pytest.raises(ValueError, match="backend 'tpu'"):
        make_engine(G, "tpu")


def test_ort_engine_renders_noise_masks_like_torch(exported, capsys):
    """Noise masks ride on the noise inputs: onnxruntime renders a masked frame as the torch
    engine does, an unmasked one after it as before, and with a bend as well."""
    from vj.show.frame import Bend, DeckControls

    G = small_generator(0)
    eng, ort_eng = Engine(small_generator(0), device="cpu"), OrtEngine(exported, threads=1)
    c = _controls(G, 1)[0]
    shapes = G.synthesis.noise_shapes
    gen = torch.Generator().manual_seed(7)
    masks = tuple(None if k % 2 else 4.0 * torch.rand(s, generator=gen)
                  for k, s in enumerate(shapes))  # fmt: skip
    strong = torch.full_like(c.noise_strength, 8.0)  # loud noise: masks show clearly
    masked = DeckControls("A", c.ws, strong, noise_masks=masks)
    plain = DeckControls("A", c.ws, strong)
    a = eng.render(masked).rgba.astype(np.int16)
    b = ort_eng.render(masked).rgba.astype(np.int16)
    assert np.abs(a - b).max() <= 1
    p_ort = ort_eng.render(plain).rgba.astype(np.int16)
    assert np.abs(eng.render(plain).rgba.astype(np.int16) - p_ort).max() <= 1  # restored
    assert np.abs(p_ort - b).max() > 8  # the masks changed the picture
    assert ort_eng.fallback_reason == ""
    bent = DeckControls("A", c.ws, strong, noise_masks=masks, bends=(Bend(1, rotate=0.3),))
    a = eng.render(bent).rgba.astype(np.int16)  # bends and masks together
    assert np.abs(a - ort_eng.render(bent).rgba.astype(np.int16)).max() <= 1
    assert ort_eng.fallback_reason == "" and "ignored" not in capsys.readouterr().err
