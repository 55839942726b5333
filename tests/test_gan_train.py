"""`vj train`: a CPU smoke run, exact resume, NVIDIA-named D, and every bad-input path."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.test_gan_checkpoint import nvidia_pickler  # noqa: F401 - fixture
from vj.cli import main
from vj.gan.checkpoint import load_generator
from vj.gan.commands import to_uint8, write_png
from vj.gan.discriminator import Discriminator

TINY = ["--resolution", "16", "--batch", "4", "--channel-base", "64", "--channel-max", "16",
        "--no-progress"]  # fmt: skip

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import procedural  # noqa: E402 - tools/procedural.py: the default's training pictures


def run(*args) -> int:
    return main([str(a) for a in args])


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("imgs")
    z = torch.randn(10, 256, generator=torch.Generator().manual_seed(3))
    for i in range(10):  # mixed sizes: 20, 24, 28 px
        im = to_uint8(procedural.sample(z[i : i + 1], 20 + 4 * (i % 3)))[0]
        write_png(folder / f"{i}.png", im)
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    (folder / "notes.txt").write_text("not an image")
    return folder


def losses(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "losses.jsonl").read_text().splitlines()]


def test_smoke_run_trains_snapshots_and_generates(images, tmp_path, capsys):
    out = tmp_path / "run"
    assert run("train", images, "-o", out, "--kimg", 0.048, "--snap", 0.024, *TINY) == 0
    err = capsys.readouterr().err
    assert "broken.jpg" in err and "1 of 11 image files skipped" in err
    rows = losses(out)
    assert len(rows) == 12
    assert all(np.isfinite([r["loss_G"], r["loss_D"]]).all() for r in rows)
    assert any("r1" in r for r in rows)  # lazy R1 ran (step 0, 16, ...)
    assert len(list(out.glob("grid-*.png"))) >= 1
    G, meta = load_generator(out / "network.safetensors")
    assert G.img_resolution == 16 and "vj train" in meta["source"]
    assert run("generate", out / "network.safetensors", "--seed", 1, "-o", tmp_path / "g.png") == 0
    assert (tmp_path / "g.png").stat().st_size > 0


def test_resume_continues_exactly(images, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    assert run("train", images, "-o", a, "--kimg", 0.032, "--snap", 1, *TINY) == 0
    assert run("train", images, "-o", b, "--kimg", 0.016, "--snap", 1, *TINY) == 0
    assert len(losses(b)) == 4
    assert run("train", images, "-o", b, "--kimg", 0.032, "--resume", b / "state.pt", *TINY) == 0
    la, lb = losses(a), losses(b)
    assert [r["step"] for r in lb] == list(range(1, 9))
    for ra, rb in zip(la[4:], lb[4:], strict=True):
        assert ra["loss_G"] == pytest.approx(rb["loss_G"], rel=1e-5, abs=1e-6)
        assert ra["loss_D"] == pytest.approx(rb["loss_D"], rel=1e-5, abs=1e-6)


def test_bad_inputs_exit_2_and_overwrite_nothing(images, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert run("train", empty, "-o", tmp_path / "r1", *TINY) == 2
    assert "empty" in capsys.readouterr().err
    texts = tmp_path / "texts"
    texts.mkdir()
    (texts / "a.txt").write_text("x")
    (texts / "b.csv").write_text("y")
    assert run("train", texts, "-o", tmp_path / "r2", *TINY) == 2
    assert "no images among 2 files" in capsys.readouterr().err
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 100)
    assert run("train", video, "-o", tmp_path / "r3", *TINY) == 2
    assert "not a readable video" in capsys.readouterr().err
    assert run("train", tmp_path / "missing", "-o", tmp_path / "r4", *TINY) == 2
    assert not any((tmp_path / f"r{i}").exists() for i in range(1, 5))

    # A run of another resolution as --resume: refused before anything is written.
    r16 = tmp_path / "r16"
    assert run("train", images, "-o", r16, "--kimg", 0.008, *TINY) == 0
    before = (r16 / "state.pt").read_bytes()
    capsys.readouterr()
    args = [a if a != "16" else "32" for a in TINY]
    assert run("train", images, "-o", r16, "--resume", r16 / "state.pt", *args) == 2
    assert "is 16x16, training is at 32x32" in capsys.readouterr().err
    assert (r16 / "state.pt").read_bytes() == before
    # The same run dir again without --resume: refused, untouched.
    assert run("train", images, "-o", r16, "--kimg", 0.008, *TINY) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert (r16 / "state.pt").read_bytes() == before
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"PK\x03\x04" + b"\x00" * 64)
    assert run("train", images, "-o", tmp_path / "r5", "--resume", junk, *TINY) == 2
    assert not (tmp_path / "r5").exists()


def test_discriminator_has_nvidia_names_and_shapes():
    D = Discriminator(64, 3, channel_base=512, channel_max=64)
    sd = D.state_dict()
    for key in ("b64.fromrgb.weight", "b64.conv0.weight", "b64.conv1.weight", "b64.skip.weight",
                "b8.conv1.bias", "b4.conv.weight", "b4.fc.weight", "b4.out.weight",
                "b64.resample_filter", "b64.conv1.resample_filter"):  # fmt: skip
        assert key in sd, key
    assert "b32.fromrgb.weight" not in sd  # resnet: fromrgb only at the top
    assert sd["b4.conv.weight"].shape == (64, 65, 3, 3)  # + 1 minibatch-std channel
    assert sd["b4.fc.weight"].shape == (64, 64 * 16)
    assert sd["b64.skip.weight"].shape == (16, 8, 1, 1)
    out = D(torch.zeros(4, 3, 64, 64))
    assert out.shape == (4, 1) and torch.isfinite(out).all()
    feats = D.features(torch.zeros(2, 3, 64, 64))
    assert [f.shape[-1] for f in feats] == [32, 16, 8, 4]


@pytest.mark.usefixtures("nvidia_pickler")
def test_resume_from_an_nvidia_pickle_takes_its_d(images, tmp_path):
    import pickle
    import sys
    from collections import OrderedDict

    from vj.gan.stylegan2 import make_default_generator
    from vj.gan.train import TrainConfig, generator_config, load_resume

    cfg = TrainConfig(resolution=16, batch=4, channel_base=64, channel_max=16)
    gk = generator_config(cfg)
    G = make_default_generator(seed=5, config=gk)
    D = Discriminator(16, 3, channel_base=64, channel_max=16)
    reconstruct = sys.modules["torch_utils.persistence"]._reconstruct_persistent_obj

    class Persistent:
        def __init__(self, module, kwargs=None):
            state = {
                "_parameters": OrderedDict(module._parameters),
                "_buffers": OrderedDict(module._buffers),
                "_non_persistent_buffers_set": set(),
                "_modules": OrderedDict((k, Persistent(m)) for k, m in module._modules.items()),
                "_init_args": (),
                "_init_kwargs": kwargs or {},
            }
            name = type(module).__name__
            self.meta = dict(type="class", version=6, module_src="", class_name=name, state=state)

        def __reduce__(self):
            return (reconstruct, (self.meta,))

    top = {k: gk[k] for k in ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels")}
    skw = {k: v for k, v in gk.items() if k not in top and k != "mapping_kwargs"}
    g_kwargs = dict(top, mapping_kwargs={"num_layers": 4}, synthesis_kwargs=skw)
    d_kwargs = dict(c_dim=0, img_resolution=16, img_channels=3, architecture="resnet",
                    channel_base=64, channel_max=16, conv_clamp=256,
                    epilogue_kwargs={"mbstd_group_size": 4})  # fmt: skip
    path = tmp_path / "net.pkl"
    data = {"G": Persistent(G, g_kwargs), "G_ema": Persistent(G, g_kwargs),
            "D": Persistent(D, d_kwargs)}  # fmt: skip
    with open(path, "wb") as fh:
        pickle.dump(data, fh, protocol=4)
    st, exact = load_resume(path, cfg, torch.device("cpu"))
    assert not exact
    for k, v in D.state_dict().items():
        assert torch.equal(st.D.state_dict()[k], v), k
    assert torch.equal(st.G.synthesis.b16.conv1.weight, G.synthesis.b16.conv1.weight)
    out = tmp_path / "ft"
    assert run("train", images, "-o", out, "--resume", path, "--kimg", 0.008, *TINY) == 0
    assert (out / "network.safetensors").exists()


def test_video_frames_are_sampled(tmp_path):
    import av

    from vj.gan.data import load_dataset

    path = tmp_path / "clip.mp4"
    with av.open(str(path), "w") as c:
        s = c.add_stream("mpeg4", rate=10)
        s.width, s.height, s.pix_fmt = 48, 32, "yuv420p"
        for i in range(12):
            rgb = np.full([32, 48, 3], i * 20, np.uint8)
            for pkt in s.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)
    data = load_dataset(path, 16, max_frames=6)
    assert data.images.shape[1:] == (3, 16, 16) and 1 <= len(data) <= 6
    assert data.images.float().mean() > 0
