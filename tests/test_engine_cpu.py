"""Engine: preallocated RGBA output equals the plain reference, ring buffers, errors, GPU paths."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.test_engine_nets import small_generator
from vj.audio.features import AudioFeatures
from vj.gan.engine import (
    FP16_CLAMP,
    Engine,
    Frame,
    enable_fp16,
    to_rgba8_,
    to_rgba8_reference,
    to_rgba16f_,
)
from vj.params import default_registry
from vj.react.modulation import Modulator


@pytest.fixture(scope="module")
def G():
    return small_generator(seed=0)


def _controls(G, n=4, seed=0):
    m = Modulator(G, seed=seed)
    params = default_registry().snapshot()
    return [m.step(AudioFeatures(onset_count=k), params, 0.05 * k) for k in range(n)]


def test_conversion_matches_reference():
    g = torch.Generator().manual_seed(0)
    img = torch.randn(1, 3, 17, 17, generator=g) * 1.5  # includes out-of-range values
    img[0, 0, 0, :4] = torch.tensor([-1.0, 1.0, 0.0, 1e9])
    out = torch.zeros(17, 17, 4, dtype=torch.uint8)
    out[..., 3] = 255
    to_rgba8_(img, torch.empty(17, 17, 3), out)
    np.testing.assert_array_equal(out.numpy(), to_rgba8_reference(img))
    assert out[0, 0, 0] == 0 and out[0, 1, 0] == 255 and out[0, 2, 0] == 128


def test_cpu_engine_matches_reference(G):
    eng = Engine(G, device="cpu")
    assert eng.backend == "torch-cpu" and eng.device.type == "cpu"
    assert eng.resolution == G.img_resolution
    for c in _controls(G):
        f = eng.render(c)
        assert isinstance(f, Frame) and isinstance(f.rgba, np.ndarray)
        assert f.rgba.shape == (eng.resolution, eng.resolution, 4) and f.rgba.dtype == np.uint8
        assert f.t_end_ns >= f.t_start_ns > 0 and eng.ready(f)
        with torch.no_grad():
            img = G.synthesis(
                c.ws, noise_mode="const", force_fp32=True, noise_strength=c.noise_strength
            )
        np.testing.assert_array_equal(f.rgba, to_rgba8_reference(img))


def test_ring_buffers_rotate(G):
    eng = Engine(G, device="cpu", n_buffers=3)
    cs = _controls(G, n=4)
    frames = [eng.render(c) for c in cs]
    assert [f.index for f in frames] == [0, 1, 2, 3]
    ptr = [f.rgba.__array_interface__["data"][0] for f in frames]
    assert len(set(ptr[:3])) == 3 and ptr[3] == ptr[0]
    assert not np.array_equal(frames[1].rgba, frames[2].rgba)


def test_rgba16f_output(G):
    eng = Engine(G, device="cpu", output="rgba16f")
    f = eng.render(_controls(G, n=1)[0])
    assert f.rgba.dtype == np.float16 and f.rgba.shape[-1] == 4
    assert f.rgba.min() >= 0 and f.rgba.max() <= 1 and np.all(f.rgba[..., 3] == 1)


def test_bad_arguments(G):
    with pytest.raises(ValueError, match="device 'tpu'"):
        Engine(G, device="tpu")
    with pytest.raises(ValueError, match="dtype 'fp8'"):
        Engine(G, device="cpu", dtype="fp8")
    with pytest.raises(ValueError, match="output 'rgb'"):
        Engine(G, device="cpu", output="rgb")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="needs a CUDA device"):
            Engine(G, device="cpu", dtype="fp16")
        with pytest.raises(RuntimeError, match="no CUDA device"):
            Engine(G, device="cuda")


def test_conversion_writes_alpha_into_an_empty_buffer():
    """A CUDA graph's static output is an uninitialised buffer copied into the ring: the
    conversion itself must write alpha, or garbage reaches the screen."""
    img = torch.randn(1, 3, 9, 9, generator=torch.Generator().manual_seed(1))
    out = torch.full((9, 9, 4), 7, dtype=torch.uint8)  # what `empty` may hold
    to_rgba8_(img, torch.empty(9, 9, 3), out)
    np.testing.assert_array_equal(out.numpy(), to_rgba8_reference(img))
    half = torch.full((9, 9, 4), 0.25, dtype=torch.float16)
    to_rgba16f_(img, torch.empty(9, 9, 3), half)
    assert torch.all(half[..., 3] == 1.0)


def test_ring_slots_hold_full_frames_and_named_slots(G):
    eng = Engine(G, device="cpu", n_buffers=3)
    cs = _controls(G, n=4)
    for buf in eng._ring.bufs:  # a slot's earlier content must not leak into a later frame
        buf.fill_(3)
    f0 = eng.render(cs[0], slot=2)
    assert f0.slot == 2 and eng.next_slot == 1  # round-robin continues from the frame count
    with torch.no_grad():
        img = G.synthesis(
            cs[0].ws, noise_mode="const", force_fp32=True, noise_strength=cs[0].noise_strength
        )
    np.testing.assert_array_equal(f0.rgba, to_rgba8_reference(img))
    f1 = eng.render(cs[1])
    assert f1.slot == 1 and f1.index == 1
    assert not np.shares_memory(f0.rgba, f1.rgba)
    with pytest.raises(ValueError, match="slot 3"):
        eng.render(cs[2], slot=3)
    assert eng.gpu_ms(f1) is None  # no CUDA events on the CPU
    assert eng.description.startswith("torch cpu fp32")


def test_engine_leaves_the_callers_network_alone():
    G = small_generator(seed=0).requires_grad_(True).train()
    before = {k: v.clone() for k, v in G.state_dict().items()}
    layout = {k: v.stride() for k, v in G.state_dict().items()}
    flags = [b.use_fp16 for b in G.synthesis.blocks()]
    eng = Engine(G, device="cpu", channels_last=True)
    eng.render(_controls(G, n=1)[0])
    assert G.training and all(p.requires_grad for p in G.parameters())
    assert [b.use_fp16 for b in G.synthesis.blocks()] == flags
    for k, v in G.state_dict().items():
        assert v.device.type == "cpu" and v.dtype == before[k].dtype, k
        assert v.stride() == layout[k], k  # no NHWC conversion of the caller's weights
        torch.testing.assert_close(v, before[k], rtol=0, atol=0)
    assert eng.G is not G and not eng.G.training


def _unclamped_net_with_big_activations():
    """A net loaded without clamps (rosinality/TF conversions), with biases that push one fp16
    block's activations past fp16's 65504."""
    from tests.test_engine_nets import small_config
    from vj.gan.stylegan2 import make_default_generator

    cfg = small_config()
    cfg["conv_clamp"] = None
    G = make_default_generator(0, cfg)
    with torch.no_grad():
        G.synthesis.blocks()[-2].conv0.bias[::2] = 1e5
    return G


def test_fp16_on_unclamped_net_applies_the_256_clamp():
    G = _unclamped_net_with_big_activations()
    ws = G.mapping(torch.randn(1, G.z_dim, generator=torch.Generator().manual_seed(0)), None)
    assert enable_fp16(G) == 3
    for b in G.synthesis.blocks():
        layers = [*b.conv_layers(), b.torgb]
        assert all(x.conv_clamp == (FP16_CLAMP if b.use_fp16 else None) for x in layers)
    try:
        with torch.no_grad():
            img = G.synthesis(ws, noise_mode="const", force_fp32=False)  # CPU fp16 kernels
    except RuntimeError as exc:  # a torch build without CPU fp16 convs: the clamp logic above
        pytest.skip(f"no CPU fp16 kernels here: {exc}")
    assert torch.isfinite(img).all()
    assert img.abs().max() <= FP16_CLAMP * 2  # toRGB clamp bounds every block's contribution


@pytest.mark.gpu
def test_cuda_graph_alpha_and_all_four_channels_equal_cpu():
    G = small_generator(seed=0)
    cs = _controls(G, n=3)
    cpu = Engine(G, device="cpu")
    graph = Engine(G, device="cuda", dtype="fp32", cuda_graphs=True)
    assert graph.backend == "cuda-graph", graph.fallback_reason
    assert "CUDA graphs" in graph.description
    for c in cs:
        want = cpu.render(c).rgba.astype(np.int16)
        got = graph.render(c).rgba.cpu().numpy().astype(np.int16)
        assert np.all(got[..., 3] == 255)
        d = np.abs(got - want)[..., :3]  # cuDNN may use TF32 for fp32 convs: not bit-equal
        assert d.mean() < 0.5 and d.max() <= 4, (d.mean(), d.max())


@pytest.mark.gpu
def test_cuda_render_orders_the_caller_without_a_host_wait_and_gpu_ms_per_frame():
    G = small_generator(seed=0)
    cs = _controls(G, n=4)
    eng = Engine(G, device="cuda", dtype="fp16", n_buffers=3)
    ref = Engine(G, device="cpu")
    frames = [eng.render(c, slot=k % 2) for k, c in enumerate(cs)]  # slots 0, 1, 0, 1
    # the caller's stream waits on the event: these reads see finished frames
    got = frames[-1].rgba.cpu().numpy().astype(np.float32)
    assert np.abs(got - ref.render(cs[-1]).rgba.astype(np.float32)).mean() < 2.0
    torch.cuda.synchronize()
    assert eng.gpu_ms(frames[0]) is None  # slot 0 was re-recorded by frame 2
    assert eng.gpu_ms(frames[2]) > 0 and eng.gpu_ms(frames[3]) > 0
    # G untouched by the fp16 CUDA engine
    assert next(G.parameters()).device.type == "cpu"
    assert not any(b.use_fp16 for b in G.synthesis.blocks())


@pytest.mark.gpu
def test_cuda_graph_equals_eager_and_async():
    G = small_generator(seed=0)
    cs = _controls(G, n=5)
    eager = Engine(small_generator(seed=0), device="cuda", dtype="fp32", cuda_graphs=False)
    graph = Engine(small_generator(seed=0), device="cuda", dtype="fp32", cuda_graphs=True)
    assert eager.backend == "torch-cuda" and graph.backend == "cuda-graph", graph.fallback_reason
    for c in cs:
        a = eager.render(c)
        b = graph.render_async(c)
        while not graph.ready(b):
            pass
        assert b.rgba.is_cuda and b.rgba.shape[-1] == 4
        torch.testing.assert_close(a.rgba, b.rgba, atol=1, rtol=0)
        assert graph.gpu_ms(b) > 0


@pytest.mark.gpu
def test_cuda_fp16_close_to_cpu_fp32():
    G = small_generator(seed=0)
    c = _controls(G, n=1)[0]
    ref = Engine(small_generator(seed=0), device="cpu").render(c).rgba.astype(np.float32)
    got = Engine(small_generator(seed=0), device="cuda", dtype="fp16").render(c).rgba
    diff = np.abs(got.cpu().numpy().astype(np.float32) - ref)
    assert diff.mean() < 2.0, diff.mean()


@pytest.mark.gpu
def test_cuda_fp16_parity_full_size_64_seeds():
    """fp16 vs fp32 on a real-size (512², config-F widths) network: PSNR >= 40 dB on 64 seeds."""
    from vj.gan.engine import enable_fp16
    from vj.gan.stylegan2 import Generator, make_default_generator

    cfg = Generator(img_resolution=8).config()
    cfg.update(img_resolution=512, channel_base=32768, channel_max=512, num_fp16_res=4)
    G = make_default_generator(0, cfg).cuda()
    enable_fp16(G)
    worst = 1e9
    with torch.no_grad():
        for s in range(64):
            z = torch.from_numpy(np.random.RandomState(s).randn(1, G.z_dim)).float().cuda()
            ws = G.mapping(z, None)
            a = G.synthesis(ws, force_fp32=True)
            b = G.synthesis(ws, force_fp32=False).float()
            worst = min(worst, 10 * np.log10(4.0 / float((a - b).square().mean())))
    assert worst >= 40.0, worst


@pytest.mark.gpu
def test_cuda_controls_made_on_gpu_like_the_app():
    """A modulator on the GPU makes CUDA controls on the default stream; the engine's own
    stream must order after them. (The engine no longer moves the caller's G.)"""
    G = small_generator(seed=0)
    eng = Engine(G, device="cuda", dtype="fp16")
    m = Modulator(small_generator(seed=0).cuda(), seed=0)
    ref = Engine(small_generator(seed=0), device="cpu")
    params = default_registry().snapshot()
    for k in range(6):
        c = m.step(AudioFeatures(onset_count=k), params, 0.05 * k)
        assert c.ws.is_cuda
        got = eng.render(c).rgba.cpu().numpy().astype(np.float32)
        cpu_c = type(c)(c.ws.cpu(), c.noise_strength.cpu(), c.keyframe_index)
        want = ref.render(cpu_c).rgba.astype(np.float32)
        assert np.abs(got - want).mean() < 2.0
