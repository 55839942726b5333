"""Checkpoints: safetensors round trip, NVIDIA-format pickles, rosinality .pt, refusals."""

import argparse
import pickle
import sys
import types
from collections import OrderedDict

import numpy as np
import pytest
import torch

from tests.gan_nets import tiny_generator
from vj.gan.checkpoint import CheckpointError, load_generator, save_generator

SMALL = dict(
    z_dim=16, c_dim=0, w_dim=16, img_resolution=16, img_channels=3,
    mapping_kwargs=dict(num_layers=2), channel_base=128, channel_max=16,
)  # fmt: skip


def small_generator(seed=0, **kw):
    return tiny_generator(seed, noise_strength=0.25, **dict(SMALL, **kw))


def render(G, seed=1, n=2):
    z = torch.from_numpy(np.random.RandomState(seed).randn(n, G.z_dim)).float()
    with torch.no_grad():
        return G(z, truncation_psi=0.7)


# ----------------------------------------------------------------------------- NVIDIA pickles
# A tiny writer of NVIDIA's persistence format, written from its documented structure: every
# network module pickles as `torch_utils.persistence._reconstruct_persistent_obj(meta)` with
# meta = {type: 'class', version: 6, module_src: <python source>, class_name, state}, where
# state is the module's __dict__ (parameters, buffers, submodules, init args/kwargs).

MARKER_SRC = "open({marker!r}, 'w').write('the embedded source was executed')\n"


@pytest.fixture
def nvidia_pickler(monkeypatch):
    """Fake `torch_utils.persistence` and `dnnlib.util` modules, so pickle can name them."""
    persistence = types.ModuleType("torch_utils.persistence")
    dnnlib_util = types.ModuleType("dnnlib.util")

    def _reconstruct_persistent_obj(meta):  # never called: the loader must not import this
        raise AssertionError("fake reconstruct called")

    _reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
    _reconstruct_persistent_obj.__qualname__ = "_reconstruct_persistent_obj"
    persistence._reconstruct_persistent_obj = _reconstruct_persistent_obj

    class EasyDict(dict):
        pass

    EasyDict.__module__ = "dnnlib.util"
    EasyDict.__qualname__ = "EasyDict"
    dnnlib_util.EasyDict = EasyDict
    for name, mod in [
        ("torch_utils", types.ModuleType("torch_utils")),
        ("torch_utils.persistence", persistence),
        ("dnnlib", types.ModuleType("dnnlib")),
        ("dnnlib.util", dnnlib_util),
    ]:
        monkeypatch.setitem(sys.modules, name, mod)

    class Persistent:
        def __init__(self, class_name, state, src):
            self.meta = dict(
                type="class", version=6, module_src=src, class_name=class_name, state=state
            )

        def __reduce__(self):
            return (_reconstruct_persistent_obj, (self.meta,))

    def record(module, src, init_kwargs=None, init_args=()):
        state = {
            "training": False,
            "_parameters": OrderedDict(module._parameters),
            "_buffers": OrderedDict(module._buffers),
            "_non_persistent_buffers_set": set(),
            "_backward_hooks": OrderedDict(),
            "_forward_hooks": OrderedDict(),
            "_modules": OrderedDict(
                (k, record(m, src)) for k, m in module._modules.items() if m is not None
            ),
            "_init_args": init_args,
            "_init_kwargs": init_kwargs if init_kwargs is not None else {},
        }
        for attr in ("weight_gain", "act_gain", "bias_gain"):
            if hasattr(module, attr):  # NVIDIA stores these as numpy float64 scalars
                state[attr] = np.float64(getattr(module, attr))
        return Persistent(type(module).__name__, state, src)

    def write(path, G, synthesis_kwargs, *, flat=False, src="", extra=None):
        cfg = G.config()
        top = {k: cfg[k] for k in ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels")}
        top["mapping_kwargs"] = EasyDict(num_layers=cfg["mapping_kwargs"]["num_layers"])
        if flat:  # stylegan3's networks_stylegan2.Generator(**synthesis_kwargs)
            kwargs = EasyDict(top, **synthesis_kwargs)
        else:  # stylegan2-ada-pytorch's Generator(..., synthesis_kwargs={...})
            kwargs = EasyDict(top, synthesis_kwargs=EasyDict(synthesis_kwargs))
        data = {
            "G": record(G, src, kwargs),
            "D": None,
            "G_ema": record(G, src, kwargs),
            "training_set_kwargs": EasyDict(path="ffhq.zip", resolution=16),
            "augment_pipe": None,
        }
        data.update(extra or {})
        with open(path, "wb") as fh:
            pickle.dump(data, fh, protocol=4)

    return write


def test_nvidia_pickle_loads_without_running_its_source(nvidia_pickler, tmp_path):
    G = small_generator(num_fp16_res=2, conv_clamp=256)
    marker = tmp_path / "executed.txt"
    path = tmp_path / "network-snapshot.pkl"
    nvidia_pickler(
        path,
        G,
        dict(channel_base=128, channel_max=16, num_fp16_res=2, conv_clamp=256),
        src=MARKER_SRC.format(marker=str(marker)),
    )
    G2, meta = load_generator(path)
    assert not marker.exists()
    assert meta["format"] == "nvidia-pkl" and "non-commercial" in meta["licence"]
    assert meta["config"] == G.config()
    sd, sd2 = G.state_dict(), G2.state_dict()
    assert sd.keys() == sd2.keys() and all(torch.equal(sd[k], sd2[k]) for k in sd)
    assert torch.equal(render(G), render(G2))


def test_nvidia_defaults_differ_between_ada_and_stylegan3(nvidia_pickler, tmp_path):
    # Kwargs left out take the defaults of the code that wrote the pickle.
    G = small_generator(num_fp16_res=0, conv_clamp=None)
    nvidia_pickler(tmp_path / "ada.pkl", G, dict(channel_base=128, channel_max=16))
    cfg = load_generator(tmp_path / "ada.pkl")[1]["config"]
    assert cfg["num_fp16_res"] == 0 and cfg["conv_clamp"] is None
    G3 = small_generator(num_fp16_res=4, conv_clamp=256)
    kw = dict(channel_base=128, channel_max=16, fused_modconv_default="inference_only")
    nvidia_pickler(tmp_path / "sg3.pkl", G3, kw, flat=True)
    G4, meta = load_generator(tmp_path / "sg3.pkl")
    assert meta["config"]["num_fp16_res"] == 4 and meta["config"]["conv_clamp"] == 256
    assert torch.equal(render(G3), render(G4))


def test_malicious_pickles_are_refused(tmp_path):
    marker = tmp_path / "pwned"
    crafted = tmp_path / "evil.pkl"
    # protocol-2 header + GLOBAL os.system + call with a shell command
    crafted.write_bytes(b"\x80\x02cos\nsystem\n(V touch " + str(marker).encode() + b"\ntR.")
    with pytest.raises(CheckpointError, match=r"refused: .*global os\.system") as e:
        load_generator(crafted)
    assert str(crafted) in str(e.value)

    class Evil:
        def __reduce__(self):
            return (eval, (f"open({str(marker)!r}, 'w')",))

    reduced = tmp_path / "evil2.pkl"
    reduced.write_bytes(pickle.dumps({"G_ema": Evil()}, protocol=4))
    with pytest.raises(CheckpointError, match=r"refused: .*builtins\.eval"):
        load_generator(reduced)
    assert not marker.exists()


def test_truncated_and_mismatched_files(nvidia_pickler, tmp_path):
    G = small_generator()
    good = tmp_path / "good.pkl"
    nvidia_pickler(good, G, dict(channel_base=128, channel_max=16, num_fp16_res=4, conv_clamp=256))
    data = good.read_bytes()
    cut = tmp_path / "cut.pkl"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"cut\.pkl: .*(truncated|corrupt)"):
        load_generator(cut)
    # Wrong channel count in the kwargs: weights no longer fit the architecture.
    wrong = tmp_path / "wrong.pkl"
    nvidia_pickler(wrong, G, dict(channel_base=256, channel_max=16))
    with pytest.raises(CheckpointError, match=r"wrong\.pkl: tensor shapes do not match"):
        load_generator(wrong)
    st = tmp_path / "g.safetensors"
    save_generator(G, st)
    st_data = st.read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(st_data[: len(st_data) - 100])
    with pytest.raises(CheckpointError, match=r"cut\.safetensors: "):
        load_generator(tmp_path / "cut.safetensors")
    (tmp_path / "empty.pkl").write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty or truncated"):
        load_generator(tmp_path / "empty.pkl")
    (tmp_path / "text.txt").write_text("hello world, not a checkpoint\n")
    with pytest.raises(CheckpointError, match="unknown checkpoint format"):
        load_generator(tmp_path / "text.txt")
    with pytest.raises(CheckpointError, match="cannot read"):
        load_generator(tmp_path / "missing.pkl")


def test_safetensors_round_trip_with_metadata(tmp_path):
    G = small_generator(architecture="resnet", num_fp16_res=1)
    path = tmp_path / "g.safetensors"
    save_generator(G, path, meta={"source": "unit test", "licence": "CC0", "seed": 7})
    assert [p.name for p in tmp_path.iterdir()] == ["g.safetensors"]  # no temp files left
    G2, meta = load_generator(path)
    assert meta["format"] == "safetensors" and meta["source"] == "unit test"
    assert meta["licence"] == "CC0" and meta["seed"] == "7"
    assert meta["config"] == G.config()
    assert torch.equal(G2.mapping.w_avg, G.mapping.w_avg)
    assert torch.equal(render(G), render(G2))


def test_rosinality_checkpoint_converts(tmp_path):
    G = small_generator(num_fp16_res=0, conv_clamp=None)
    sd = G.state_dict()
    ros = OrderedDict()
    ros["style.1.weight"], ros["style.1.bias"] = sd["mapping.fc0.weight"], sd["mapping.fc0.bias"]
    ros["style.2.weight"], ros["style.2.bias"] = sd["mapping.fc1.weight"], sd["mapping.fc1.bias"]
    ros["input.input"] = sd["synthesis.b4.const"][None]

    def conv(dst, src, noise=None):
        ros[f"{dst}.conv.weight"] = sd[f"{src}.weight"][None]
        ros[f"{dst}.conv.modulation.weight"] = sd[f"{src}.affine.weight"]
        ros[f"{dst}.conv.modulation.bias"] = sd[f"{src}.affine.bias"]
        if noise is None:
            ros[f"{dst}.bias"] = sd[f"{src}.bias"].reshape(1, -1, 1, 1)
        else:
            ros[f"{dst}.noise.weight"] = sd[f"{src}.noise_strength"].reshape(1)
            ros[f"{dst}.activate.bias"] = sd[f"{src}.bias"]
            r = sd[f"{src}.noise_const"].shape[0]
            ros[f"noises.noise_{noise}"] = sd[f"{src}.noise_const"].reshape(1, 1, r, r)

    conv("conv1", "synthesis.b4.conv1", 0)
    conv("to_rgb1", "synthesis.b4.torgb")
    kernel = torch.outer(torch.tensor([1.0, 3, 3, 1]), torch.tensor([1.0, 3, 3, 1]))
    for i, r in enumerate((8, 16)):
        conv(f"convs.{2 * i}", f"synthesis.b{r}.conv0", 2 * i + 1)
        conv(f"convs.{2 * i + 1}", f"synthesis.b{r}.conv1", 2 * i + 2)
        conv(f"to_rgbs.{i}", f"synthesis.b{r}.torgb")
        ros[f"convs.{2 * i}.conv.blur.kernel"] = kernel / kernel.sum() * 4
        ros[f"to_rgbs.{i}.upsample.kernel"] = kernel / kernel.sum() * 4
    path = tmp_path / "550000.pt"
    torch.save(
        {"g_ema": ros, "latent_avg": sd["mapping.w_avg"], "args": argparse.Namespace(size=16)},
        path,
    )
    G2, meta = load_generator(path)
    assert meta["format"] == "rosinality-pt" and meta["w_avg"] == "latent_avg from checkpoint"
    assert G2.config()["channel_base"] == 128 and G2.config()["channel_max"] == 16
    assert torch.equal(render(G), render(G2))
    # the pre-1.6 torch.save format (a raw pickle stream) is recognised and read the same way
    legacy = tmp_path / "legacy.pt"
    torch.save({"g_ema": ros, "latent_avg": sd["mapping.w_avg"]}, legacy,
               _use_new_zipfile_serialization=False)  # fmt: skip
    assert torch.equal(render(G), render(load_generator(legacy)[0]))
    # a training checkpoint without latent_avg still loads; w_avg is estimated
    torch.save({"g_ema": ros, "d": {}}, tmp_path / "train.pt")
    G3, meta3 = load_generator(tmp_path / "train.pt")
    assert meta3["w_avg"].startswith("estimated")
    assert G3.mapping.w_avg.abs().sum() > 0


def test_torch_file_with_code_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("boo",))

    path = tmp_path / "evil.pt"
    torch.save({"g_ema": Evil()}, path)
    with pytest.raises(CheckpointError, match=r"evil\.pt: refused or corrupt"):
        load_generator(path)


def test_tensorflow_pickle_gets_a_hint(tmp_path):
    path = tmp_path / "stylegan2-ffhq-config-f.pkl"
    path.write_bytes(b"\x80\x02cdnnlib.tflib.network\nNetwork\n)\x81}b.")
    with pytest.raises(CheckpointError, match="TensorFlow StyleGAN pickle"):
        load_generator(path)


def test_conditional_network_pickle(nvidia_pickler, tmp_path):
    G = small_generator(c_dim=3, num_fp16_res=0)
    path = tmp_path / "cond.pkl"
    nvidia_pickler(path, G, dict(channel_base=128, channel_max=16, num_fp16_res=0))
    G2, meta = load_generator(path)
    assert meta["config"]["c_dim"] == 3 and "mapping.embed.weight" in G2.state_dict()
    z, c = torch.randn(2, 16), torch.eye(3)[:2]
    with torch.no_grad():
        assert torch.equal(G(z, c), G2(z, c))


def test_malformed_structures_are_checkpoint_errors(tmp_path):
    # Allowed globals only, but not a network: clear errors naming the file, never a traceback.
    (tmp_path / "dict.pkl").write_bytes(pickle.dumps({"G_ema": [1, 2, 3]}, protocol=4))
    with pytest.raises(CheckpointError, match=r"dict\.pkl: 'G_ema' is not an NVIDIA"):
        load_generator(tmp_path / "dict.pkl")
    torch.save({"g_ema": {"style.1.weight": torch.zeros(3)}}, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match=r"bad\.pt: "):
        load_generator(tmp_path / "bad.pt")
