"""Engine choice: flags and presets → EngineSpec → build_engine, with fallbacks said out loud."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
import torch

from tests.test_engine_nets import small_generator
from vj.audio.features import AudioFeatures
from vj.gan.engine import Engine
from vj.gan.options import (
    EngineOptionError,
    EngineSpec,
    add_engine_args,
    build_engine,
    spec_from,
)
from vj.params import default_registry
from vj.preset import PresetError, load_preset
from vj.react.modulation import Modulator

no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="shows the no-CUDA fallback")


@pytest.fixture(scope="module")
def G():
    return small_generator(seed=0)


def _parse(argv):
    p = argparse.ArgumentParser(prog="vj live")
    add_engine_args(p)
    return p.parse_args(argv)


def _controls(G, n=2):
    m = Modulator(G, seed=1)
    return [m.step(AudioFeatures(onset_count=k), {}, 0.1 * k) for k in range(n)]


def test_flags_parse_and_bad_values_exit_2(capsys):
    a = _parse(["--device", "cuda:1", "--dtype", "fp16", "--backend", "trt", "--no-cuda-graphs"])
    assert (a.device, a.dtype, a.backend, a.cuda_graphs) == ("cuda:1", "fp16", "trt", False)
    a = _parse([])
    assert (a.device, a.dtype, a.backend, a.cuda_graphs) == (None, None, None, None)
    for bad in (["--device", "gpu"], ["--dtype", "fp8"], ["--backend", "tensorflow"]):
        with pytest.raises(SystemExit) as e:
            _parse(bad)
        assert e.value.code == 2
    err = capsys.readouterr().err
    assert "device 'gpu': expected auto, cpu, cuda or cuda:N" in err and "'fp8'" in err


def test_spec_validates_in_one_line():
    with pytest.raises(EngineOptionError, match="backend 'tensorrt': expected one of"):
        EngineSpec(backend="tensorrt")
    with pytest.raises(EngineOptionError, match="device 'cuda:x'"):
        EngineSpec(device="cuda:x")
    with pytest.raises(EngineOptionError, match="n_buffers 0"):
        EngineSpec(n_buffers=0)


def test_preset_generator_section_then_flags(tmp_path):
    path = tmp_path / "gpu.yaml"
    path.write_text(
        "generator:\n  device: cuda:0\n  dtype: fp16\n  backend: compile\n"
        "  cuda_graphs: false\n  resolution: 32\n"
    )
    gen = load_preset(path, default_registry()).generator
    spec = spec_from(None, gen)
    assert spec == EngineSpec("cuda:0", "fp16", "compile", False, 32)
    spec = spec_from(_parse(["--device", "cpu", "--backend", "torch"]), gen, threads=1)
    assert (spec.device, spec.dtype, spec.backend, spec.cuda_graphs) == (
        "cpu",
        "fp16",
        "torch",
        False,
    )
    assert spec.resolution == 32 and spec.threads == 1


@pytest.mark.parametrize(
    "text, want",
    [
        ("generator: {backend: onxx}\n", ":1: generator.backend: 'onxx' is not allowed "
         "(did you mean 'onnx'?)"),
        ("generator:\n  device: gpu0\n", ":2: generator.device: device 'gpu0': expected auto"),
        ("generator: {cuda_graphs: maybe}\n", ":1: generator.cuda_graphs: expected true or false"),
        ("generator: {dtype: bf16}\n", ":1: generator.dtype: 'bf16' is not allowed"),
    ],
)  # fmt: skip
def test_bad_preset_engine_keys_name_file_and_line(tmp_path, text, want):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(PresetError) as e:
        load_preset(path, default_registry())
    assert str(e.value) == f"{path}{want}" or str(e.value).startswith(f"{path}{want}")


def test_cpu_default_is_the_torch_engine_and_named(G):
    warned = []
    eng, desc = build_engine(G, EngineSpec(device="cpu", threads=1), warn=warned.append)
    assert isinstance(eng, Engine) and eng.device.type == "cpu" and eng.dtype == "fp32"
    assert desc == eng.description == "torch cpu fp32 channels-last, 1 thread" and not warned
    assert eng.G is not G  # the caller's network is not the engine's
    f = eng.render(_controls(G)[0])
    assert f.rgba.shape == (32, 32, 4) and np.all(f.rgba[..., 3] == 255)


@no_cuda
def test_cuda_asked_without_cuda_falls_back_and_says_so(G):
    warned = []
    spec = EngineSpec(device="cuda:1", dtype="fp16", cuda_graphs=True, threads=1)
    eng, desc = build_engine(G, spec, warn=warned.append)
    assert eng.device.type == "cpu" and eng.dtype == "fp32"
    assert warned == [
        "device cuda:1: torch sees no CUDA device here; the CPU is used",
        "fp16 needs a CUDA device here; fp32 is used",
        "CUDA graphs need a CUDA device; plain CPU execution is used",
    ]
    assert desc == "torch cpu fp32 channels-last, 1 thread (asked torch cuda:1 fp16 + CUDA graphs)"


@no_cuda
def test_trt_without_cuda_falls_back_to_torch(G):
    warned = []
    eng, desc = build_engine(G, EngineSpec(backend="trt", threads=1), warn=warned.append)
    assert isinstance(eng, Engine) and eng.device.type == "cpu"
    assert warned == ["backend trt needs a CUDA device; torch on the CPU is used"]
    assert desc.endswith("(asked trt auto auto)")


def test_resolution_mismatch_is_a_user_error(G):
    with pytest.raises(EngineOptionError, match="generator.resolution 256: the network makes 32²"):
        build_engine(G, EngineSpec(device="cpu", resolution=256))
    eng, _ = build_engine(G, EngineSpec(device="cpu", resolution=32))
    assert eng.resolution == 32


@pytest.mark.slow  # one ONNX export of the small net (~15-25 s on 2 cores)
def test_onnx_backend_runs_on_the_cpu(G, tmp_path):
    warned = []
    spec = EngineSpec(device="cpu", backend="onnx", threads=1)
    eng, desc = build_engine(G, spec, cache_dir=tmp_path, warn=warned.append)
    assert not warned and desc == "onnxruntime CPU fp32, 1 thread"
    ref = Engine(G, device="cpu")
    for c in _controls(G, n=3):
        a = ref.render(c).rgba.astype(np.int16)
        b = eng.render(c).rgba.astype(np.int16)
        assert np.abs(a - b).max() <= 1
    again, _ = build_engine(G, spec, cache_dir=tmp_path)  # the cached export is reused
    assert len(list(tmp_path.glob("*.onnx"))) == 1 and again.resolution == 32


@pytest.mark.gpu
def test_cuda_default_is_fp16_with_graphs(G):
    eng, desc = build_engine(G, EngineSpec(device="cuda"))
    assert eng.dtype == "fp16" and eng.backend == "cuda-graph", eng.fallback_reason
    assert desc == eng.description and desc.startswith("torch cuda:0 fp16 + CUDA graphs")
    eng, desc = build_engine(G, EngineSpec(device="cuda", dtype="fp32", cuda_graphs=False))
    assert eng.backend == "torch-cuda" and desc.startswith("torch cuda:0 fp32")


@pytest.mark.gpu
def test_cuda_onnx_backend_or_its_fallback(G, tmp_path):
    warned = []
    eng, desc = build_engine(G, EngineSpec(device="cuda", backend="onnx"), cache_dir=tmp_path,
                             warn=warned.append)  # fmt: skip
    if warned:
        assert "no CUDA provider" in warned[0] and "(asked onnx cuda auto)" in desc
    else:
        assert desc.startswith("onnxruntime CUDA")
        f = eng.render(_controls(G)[0])
        assert np.all(f.rgba[..., 3] == 255)


@no_cuda
def test_live_engine_follows_the_preset_and_falls_back(tmp_path, capsys):
    from tests.gan_nets import tiny_generator
    from vj.cli import build_parser, engine_spec, load_preset_or_default
    from vj.live import LiveApp, LiveOptions

    path = tmp_path / "cuda.yaml"
    path.write_text("generator:\n  device: cuda\n")
    registry = default_registry()
    preset = load_preset_or_default(str(path), registry)
    args = build_parser().parse_args(["live", "--preset", str(path), "--backend", "trt"])
    spec = engine_spec(args, preset)
    assert (spec.device, spec.backend) == ("cuda", "trt")  # flags over the preset
    G = tiny_generator(z_dim=16, w_dim=16, img_resolution=32, channel_base=256, channel_max=16)
    app = LiveApp(registry, None, LiveOptions(headless=True, engine=spec), G=G)
    assert str(app.engine.device) == "cpu"  # what runs here, said on stderr
    err = capsys.readouterr().err
    assert "vj: engine: device cuda: torch sees no CUDA device here; the CPU is used" in err
    assert "backend trt needs a CUDA device" in err
    assert app.engine_descriptions[0].startswith("torch cpu fp32")
    assert "(asked trt cuda auto)" in app.engine_descriptions[0]
    assert any(app.engine_descriptions[0] in line for line in app._hud_lines(None))


def test_resolve_spec_is_concrete():
    from vj.gan.options import resolve_spec

    run, notes = resolve_spec(EngineSpec(device="cpu", backend="compile"), warn=lambda m: None)
    assert (run.device, run.dtype, run.backend, run.cuda_graphs) == (
        "cpu",
        "fp32",
        "compile",
        False,
    )
    assert notes == []
