"""Untrusted checkpoints: format sniffing and config/weight bounds checked before allocation."""

import json
import pickle
import sys
import tracemalloc
import types

import pytest
import torch
from safetensors.torch import save_file

from tests.gan_nets import tiny_generator
from vj.gan.checkpoint import CheckpointError, load_generator, save_generator

SMALL = dict(
    z_dim=16, c_dim=0, w_dim=16, img_resolution=16, img_channels=3,
    mapping_kwargs=dict(num_layers=2), channel_base=128, channel_max=16,
)  # fmt: skip


def _write_with_config(path, config, tensors=None, meta=None):
    """A safetensors file with any config claim and any tensors (a hostile file)."""
    info = {"vj_format": "1", "config": json.dumps(config)}
    info.update(meta or {})
    save_file(tensors if tensors is not None else {"x": torch.zeros(4)}, str(path), metadata=info)


def test_safetensors_whose_header_length_starts_with_0x80_loads(tmp_path):
    # The header length is a multiple of 8; 1 in 32 of our own files has 0x80 as its first
    # byte, which the pickle sniff used to claim ("unsupported pickle protocol").
    G = tiny_generator(**SMALL)
    path = tmp_path / "g.safetensors"
    for pad in range(0, 512, 8):
        save_generator(G, path, meta={"note": "x" * pad})
        if path.read_bytes()[0] == 0x80:
            break
    else:
        pytest.fail("no padding gave a 0x80 header-length byte")
    G2, meta = load_generator(path)
    assert meta["format"] == "safetensors"
    sd, sd2 = G.state_dict(), G2.state_dict()
    assert all(torch.equal(sd[k], sd2[k]) for k in sd)


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(z_dim=1 << 20), r"z_dim=1048576 is outside 1\.\.4096"),
        (dict(z_dim=0), r"z_dim=0 is outside"),
        (dict(w_dim=5000), r"w_dim=5000 is outside"),
        (dict(img_resolution=32768), r"img_resolution=32768 is outside 4\.\.4096"),
        (dict(img_resolution=48), r"img_resolution=48 is not a power of two"),
        (dict(img_resolution="16"), r"img_resolution must be an integer"),
        (dict(mapping_kwargs=dict(num_layers=1_000_000)), r"num_layers=1000000 is outside"),
        (dict(channel_max=1 << 16), r"channel_max=65536 is outside"),
        (dict(conv_clamp=float("nan")), r"conv_clamp=nan"),
        (dict(resample_filter=[1, -1]), r"positive sum"),
        # in bounds, but far more weights than this 16-value file holds
        (
            dict(z_dim=4096, w_dim=4096, img_resolution=4096, channel_base=1 << 20),
            r"needs [\d,]+ weights .* holds only 4",
        ),
    ],
)
def test_config_bombs_are_refused_before_allocation(tmp_path, change, message):
    path = tmp_path / "bomb.safetensors"
    _write_with_config(path, dict(SMALL, **change))
    tracemalloc.start()
    try:
        with pytest.raises(CheckpointError, match=r"bomb\.safetensors: refused network config: "):
            load_generator(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    with pytest.raises(CheckpointError, match=message):
        load_generator(path)
    assert peak < 50e6  # nothing network-sized was allocated (torch CPU tensors are traced)


def test_pickle_config_bomb_is_refused(tmp_path, monkeypatch):
    # An NVIDIA-style pickle whose G_ema claims 1e6 mapping layers at 32k: refused at once,
    # no MemoryError after minutes.
    mod = types.ModuleType("torch_utils.persistence")

    def _reconstruct_persistent_obj(meta):  # only named by the pickle, never called
        raise AssertionError

    _reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
    _reconstruct_persistent_obj.__qualname__ = "_reconstruct_persistent_obj"
    mod._reconstruct_persistent_obj = _reconstruct_persistent_obj
    monkeypatch.setitem(sys.modules, "torch_utils", types.ModuleType("torch_utils"))
    monkeypatch.setitem(sys.modules, "torch_utils.persistence", mod)

    class Record:
        def __reduce__(self):
            kwargs = dict(
                z_dim=512, c_dim=0, w_dim=512, img_resolution=32768, img_channels=3,
                mapping_kwargs={"num_layers": 1_000_000},
            )  # fmt: skip
            state = {"_init_kwargs": kwargs, "_parameters": {}, "_buffers": {}, "_modules": {}}
            return (_reconstruct_persistent_obj, ({"type": "class", "class_name": "Generator",
                                                   "state": state},))  # fmt: skip

    path = tmp_path / "bomb.pkl"
    path.write_bytes(pickle.dumps({"G_ema": Record()}, protocol=4))
    with pytest.raises(CheckpointError, match=r"bomb\.pkl: refused network config: "):
        load_generator(path)


@pytest.mark.parametrize("kind", ["complex", "nan", "inf", "int"])
def test_bad_weights_are_refused(tmp_path, kind):
    G = tiny_generator(**SMALL)
    tensors = {k: v.clone() for k, v in G.state_dict().items()}
    key = "synthesis.b8.conv0.weight"
    if kind == "complex":
        tensors[key] = tensors[key].to(torch.complex64)
    elif kind == "int":
        tensors[key] = tensors[key].to(torch.int32)
    else:
        tensors[key][0, 0, 0, 0] = float(kind)
    path = tmp_path / f"{kind}.safetensors"
    _write_with_config(path, G.config(), tensors)
    pattern = "holds NaN or inf" if kind in ("nan", "inf") else "has dtype torch"
    with pytest.raises(CheckpointError, match=rf"{kind}\.safetensors: refused weights: {key} "
                       rf".*{pattern}"):  # fmt: skip
        load_generator(path)


def test_full_disk_on_save_is_a_checkpoint_error(tmp_path):
    # A file-size limit makes writes fail like a full disk; run it in its own process.
    import subprocess
    import sys
    import textwrap
    from pathlib import Path

    script = textwrap.dedent(
        f"""
        import resource, signal
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (20000, 20000))
        from tests.gan_nets import tiny_generator
        from vj.gan.checkpoint import CheckpointError, save_generator
        G = tiny_generator(**{SMALL!r})
        try:
            save_generator(G, {str(tmp_path / "g.safetensors")!r})
        except CheckpointError as e:
            print("REFUSED", e)
        """
    )
    root = Path(__file__).resolve().parents[1]
    r = subprocess.run([sys.executable, "-c", script], cwd=root, capture_output=True, text=True,
                       timeout=120)  # fmt: skip
    assert "REFUSED" in r.stdout and "cannot write (disk full?)" in r.stdout, r.stderr[-2000:]
    assert list(tmp_path.iterdir()) == []  # no half-written file, no temp file
