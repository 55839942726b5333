"""Safe checkpoint loading and saving: safetensors (native), NVIDIA .pkl, rosinality .pt.

Nothing from a checkpoint is ever executed: NVIDIA pickles go through a restricted unpickler
that rebuilds only containers and tensors (never the Python source they embed), torch files
through `torch.load(weights_only=True)`.
"""

from __future__ import annotations

import argparse
import io
import json
import pickle
import re
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch

from vj.fsutil import atomic_path
from vj.gan.checkpoint_limits import (
    CheckpointLimitError,
    check_config,
    check_size,
    check_tensors,
    meta_shapes,
)
from vj.gan.stylegan2 import (
    MAPPING_DEFAULTS,
    NVIDIA_SYNTHESIS_DEFAULTS,
    SYNTHESIS_DEFAULTS,
    Generator,
    setup_filter,
)

FORMAT_VERSION = "1"
NVIDIA_LICENCE_NOTE = (
    "converted from an NVIDIA StyleGAN pickle: NVIDIA's own pretrained networks are licensed "
    "for non-commercial use only (NVIDIA Source Code License-NC / CC BY-NC-SA 4.0); "
    "networks you trained yourself carry the licence of your data and code"
)
ROSINALITY_LICENCE_NOTE = (
    "converted from a rosinality stylegan2-pytorch checkpoint: the licence of the weights is "
    "that of whoever trained them (and their data); check it before public use"
)
_TORCH_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


class CheckpointError(ValueError):
    """A checkpoint could not be loaded or saved; the message names the file and the problem."""


# ----------------------------------------------------------------------------- public API


def load_generator(path: str | Path, device: str | torch.device = "cpu") -> tuple[Generator, dict]:
    """Load a generator from .safetensors, NVIDIA .pkl or rosinality .pt (detected by content).

    Returns (G in eval mode with requires_grad False, metadata dict with at least 'format',
    'source', 'config', 'licence').
    """
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            head = fh.read(16)
        size = path.stat().st_size
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read: {e.strerror or e}") from None
    if size < 16:
        raise CheckpointError(f"{path}: file is empty or truncated ({size} bytes)")
    # safetensors first: its 8-byte little-endian header length (a multiple of 8) starts with
    # 0x80 for 1 in 32 files, which a pickle sniff would claim. A pickle's first 8 bytes never
    # read as a length that fits in the file with "{" right after it.
    if _looks_like_safetensors(head, size):
        load = _load_safetensors
    elif head[:4] == b"PK\x03\x04":
        load = _load_torch_file
    elif head[:1] == b"\x80":
        load = _load_pickle_file
    elif head[8:9] == b"{":
        load = _load_safetensors  # a safetensors header longer than the file: says "truncated"
    else:
        raise CheckpointError(
            f"{path}: unknown checkpoint format (expected .safetensors, an NVIDIA .pkl or a "
            f"torch .pt file; first bytes {head[:8]!r})"
        )
    try:
        G, meta = load(path)
    except CheckpointError:
        raise
    except (AttributeError, TypeError, KeyError, IndexError, RuntimeError, ValueError) as e:
        # Structure other than a network checkpoint's, caught at the edge with the file named.
        raise CheckpointError(f"{path}: malformed checkpoint: {type(e).__name__}: {e}") from None
    G.eval().requires_grad_(False)
    return G.to(device), meta


def load_checkpoint_or_default(spec: str, device: str | torch.device = "cpu"):
    """'default' -> the embedded default generator; else load_generator(spec). (G, meta)."""
    if spec == "default":
        from vj.gan.default import load_default  # trained weights shipped in vj/gan/assets/

        return load_default(device)
    return load_generator(spec, device=device)


def save_generator(G: Generator, path: str | Path, meta: dict | None = None) -> None:
    """Write G as safetensors (state dict + config/source/licence metadata), atomically."""
    from safetensors.torch import save_file

    path = Path(path)
    info = {
        "vj_format": FORMAT_VERSION,
        "architecture": "stylegan2",
        "config": json.dumps(G.config()),
    }
    for key, value in (meta or {}).items():
        if key in ("config", "vj_format", "architecture"):
            continue
        info[str(key)] = value if isinstance(value, str) else json.dumps(value)
    info.setdefault("source", "vj")
    info.setdefault(
        "licence", "unknown: the licence of the weights is that of whoever trained them"
    )
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in G.state_dict().items()}
    try:
        with atomic_path(path) as tmp:
            save_file(tensors, str(tmp), metadata=info)
    except OSError as e:
        raise CheckpointError(f"{path}: cannot write: {e.strerror or e}") from None
    except Exception as e:  # safetensors' own SafetensorError wraps I/O errors (disk full ...)
        if type(e).__name__ != "SafetensorError":
            raise
        raise CheckpointError(
            f"{path}: cannot write (disk full?): {e}; nothing was written"
        ) from None


# ----------------------------------------------------------------------------- safetensors


def _looks_like_safetensors(head: bytes, size: int) -> bool:
    n = int.from_bytes(head[:8], "little")
    return head[8:9] == b"{" and 0 < n <= size - 8


def _load_safetensors(path: Path) -> tuple[Generator, dict]:
    from safetensors import safe_open

    n = int.from_bytes(_head(path), "little")
    if 8 + n > path.stat().st_size:
        raise CheckpointError(f"{path}: truncated safetensors file (header says {n} bytes)")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            meta = dict(f.metadata() or {})
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:  # safetensors raises its own error types
        raise CheckpointError(f"{path}: not a readable safetensors file: {e}") from None
    if "config" not in meta:
        raise CheckpointError(f"{path}: safetensors file has no 'config' metadata (not a vj file)")
    try:
        config = json.loads(meta["config"])
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path}: metadata 'config' is not valid JSON: {e}") from None
    if not isinstance(config, dict):
        raise CheckpointError(f"{path}: metadata 'config' must be a JSON object")
    G = _build(path, config, tensors)
    _load_state(path, G, tensors)
    meta["config"] = G.config()
    meta["format"] = "safetensors"
    meta.setdefault("source", str(path))
    meta.setdefault("licence", "unknown")
    return G, meta


def _head(path: Path) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(8)


# ----------------------------------------------------------------------------- NVIDIA pickles


class _EasyDict(dict):
    """Stand-in for dnnlib.EasyDict: a plain dict (attribute access is not needed here)."""


class _Persistent:
    """What an NVIDIA persistent object unpickles to here: class name + its saved state."""

    def __init__(self, class_name: str, state: dict, module_src: str) -> None:
        self.class_name = class_name
        self.state = state
        self.module_src = module_src  # kept as text for inspection; never executed


def _reconstruct_persistent_obj(meta):
    if not isinstance(meta, dict) or meta.get("type") != "class":
        raise pickle.UnpicklingError("persistent object record is not a class record")
    state = meta.get("state")
    name = meta.get("class_name")
    if not isinstance(name, str) or not isinstance(state, dict):
        raise pickle.UnpicklingError("persistent object record lacks class_name/state")
    src = meta.get("module_src")
    return _Persistent(name, state, src if isinstance(src, str) else "")


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, *state):
    if not isinstance(data, torch.Tensor):
        raise pickle.UnpicklingError("parameter data is not a tensor")
    return data


def _rebuild_tensor_v2(storage, offset, size, stride, requires_grad=False, hooks=None, *rest):
    if not isinstance(storage, (torch.TypedStorage, torch.UntypedStorage)):
        raise pickle.UnpicklingError("tensor storage is not a torch storage")
    return torch._utils._rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())


def _load_storage_bytes(data):
    if not isinstance(data, (bytes, bytearray)):
        raise pickle.UnpicklingError("storage payload is not bytes")
    # torch's own safe loader: it only ever builds storages.
    return torch.load(io.BytesIO(bytes(data)), weights_only=True, map_location="cpu")


def _np_dtype(name, align=False, copy=False):
    dt = np.dtype(name, align=bool(align), copy=bool(copy))
    if dt.hasobject or dt.kind == "V":
        raise pickle.UnpicklingError(f"refused numpy dtype {dt}")
    return dt


def _np_scalar(dtype, data=None):
    if not isinstance(dtype, np.dtype) or dtype.hasobject or not isinstance(data, bytes):
        raise pickle.UnpicklingError("refused numpy scalar")
    return np.frombuffer(data, dtype=dtype, count=1)[0]


def _np_reconstruct(subtype, shape, dtype_code):
    if subtype is not np.ndarray:
        raise pickle.UnpicklingError("refused numpy array subclass")
    return np.ndarray.__new__(np.ndarray, shape, np.uint8)


_TORCH_DTYPES = {name for name in dir(torch) if isinstance(getattr(torch, name), torch.dtype)}

_ALLOWED = {
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _reconstruct_persistent_obj,
    ("collections", "OrderedDict"): OrderedDict,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("dnnlib.util", "EasyDict"): _EasyDict,
    ("dnnlib", "EasyDict"): _EasyDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch.storage", "_load_from_bytes"): _load_storage_bytes,
    ("torch", "device"): torch.device,
    ("numpy", "dtype"): _np_dtype,
    ("numpy.core.multiarray", "scalar"): _np_scalar,
    ("numpy._core.multiarray", "scalar"): _np_scalar,
    ("numpy.core.multiarray", "_reconstruct"): _np_reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _np_reconstruct,
    ("numpy", "ndarray"): np.ndarray,
}


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves only the globals an NVIDIA network pickle needs, each to a harmless stand-in."""

    def find_class(self, module: str, name: str):
        fn = _ALLOWED.get((module, name))
        if fn is not None:
            return fn
        if module == "torch" and name in _TORCH_DTYPES:
            return getattr(torch, name)
        raise _Refused(f"{module}.{name}")

    def persistent_load(self, pid):
        raise pickle.UnpicklingError("persistent ids are not used by network pickles")


class _Refused(pickle.UnpicklingError):
    pass


def _unpickle(path: Path):
    try:
        with open(path, "rb") as fh:
            return _RestrictedUnpickler(fh).load()
    except _Refused as e:
        if str(e).startswith("dnnlib.tflib"):
            raise CheckpointError(
                f"{path}: this is a TensorFlow StyleGAN pickle; convert it to PyTorch first "
                f"(NVIDIA's stylegan2-ada-pytorch legacy.py), then `vj convert` the result"
            ) from None
        raise CheckpointError(
            f"{path}: refused: the pickle asks for global {e}, which a network checkpoint never "
            f"needs (it may try to run code); nothing was executed"
        ) from None
    except CheckpointError:
        raise
    except (EOFError, pickle.UnpicklingError) as e:
        raise CheckpointError(
            f"{path}: truncated or corrupt pickle: {e or 'unexpected end'}"
        ) from None
    except Exception as e:  # malformed opcode arguments surface as assorted errors
        raise CheckpointError(f"{path}: corrupt pickle: {type(e).__name__}: {e}") from None


def _load_pickle_file(path: Path) -> tuple[Generator, dict]:
    data = _unpickle(path)
    if isinstance(data, int) and data == _TORCH_LEGACY_MAGIC:
        return _load_torch_file(path)  # legacy (pre-1.6) torch.save file
    if isinstance(data, _Persistent):
        data = {"G_ema": data}
    if not isinstance(data, dict) or "G_ema" not in data:
        keys = sorted(map(str, data)) if isinstance(data, dict) else type(data).__name__
        raise CheckpointError(f"{path}: no 'G_ema' network in this pickle (found {keys})")
    rec = data["G_ema"]
    if not isinstance(rec, _Persistent) or rec.class_name != "Generator":
        raise CheckpointError(f"{path}: 'G_ema' is not an NVIDIA persistent Generator")
    config = _nvidia_config(path, rec)
    tensors: dict[str, torch.Tensor] = {}
    _collect_state(path, rec, "", tensors)
    if any(k.startswith("synthesis.input.") for k in tensors):
        raise CheckpointError(
            f"{path}: this is a StyleGAN3 (alias-free) network; only StyleGAN2 networks "
            f"(stylegan2-ada-pytorch, or stylegan3's --cfg=stylegan2) are supported"
        )
    G = _build(path, config, tensors)
    _load_state(path, G, tensors)
    meta = {
        "format": "nvidia-pkl",
        "source": str(path),
        "config": G.config(),
        "licence": NVIDIA_LICENCE_NOTE,
    }
    return G, meta


def _nvidia_config(path: Path, rec: _Persistent) -> dict:
    args = rec.state.get("_init_args", ())
    kwargs = rec.state.get("_init_kwargs", {})
    if not isinstance(kwargs, dict) or not isinstance(args, (tuple, list)):
        raise CheckpointError(f"{path}: G_ema has no readable constructor arguments")
    names = ["z_dim", "c_dim", "w_dim", "img_resolution", "img_channels", "mapping_kwargs"]
    kwargs = dict(kwargs)
    for name, value in zip(names + ["synthesis_kwargs"], args, strict=False):
        kwargs[name] = value
    missing = [n for n in names[:5] if n not in kwargs]
    if missing:
        raise CheckpointError(f"{path}: G_ema constructor arguments lack {missing}")
    config = {n: kwargs.pop(n) for n in names[:5]}
    mapping = dict(kwargs.pop("mapping_kwargs", None) or {})
    if "synthesis_kwargs" in kwargs:  # stylegan2-ada-pytorch: nested, NVIDIA's defaults apply
        synthesis = dict(NVIDIA_SYNTHESIS_DEFAULTS, **dict(kwargs.pop("synthesis_kwargs") or {}))
    else:  # stylegan3's networks_stylegan2: flat kwargs, defaults fp16 x4 and clamp 256
        synthesis = dict(SYNTHESIS_DEFAULTS)
    synthesis.update(kwargs)
    config["mapping_kwargs"] = dict(MAPPING_DEFAULTS, **mapping)
    config.update(synthesis)
    return _plain(config)


def _plain(x):
    """Containers and numpy scalars -> JSON-able Python values."""
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, np.generic):
        return x.item()
    return x


def _collect_state(path: Path, rec: _Persistent, prefix: str, out: dict) -> None:
    st = rec.state
    skip = st.get("_non_persistent_buffers_set") or set()
    for group in ("_parameters", "_buffers"):
        for name, t in (st.get(group) or {}).items():
            if t is None or (group == "_buffers" and name in skip):
                continue
            if not isinstance(t, torch.Tensor):
                raise CheckpointError(f"{path}: {prefix}{name} is not a tensor")
            out[prefix + name] = t
    for name, sub in (st.get("_modules") or {}).items():
        if sub is None:
            continue
        if not isinstance(sub, _Persistent):
            raise CheckpointError(f"{path}: submodule {prefix}{name} is not a persistent module")
        _collect_state(path, sub, f"{prefix}{name}.", out)


# ----------------------------------------------------------------------------- torch files


def _load_torch_file(path: Path) -> tuple[Generator, dict]:
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        msg = str(e).splitlines()[0] if str(e) else "unpickling failed"
        raise CheckpointError(f"{path}: refused or corrupt torch file: {msg}") from None
    except Exception as e:
        raise CheckpointError(f"{path}: truncated or corrupt torch file: {e}") from None
    if isinstance(data, dict) and "g_ema" in data:
        sd, latent_avg = data["g_ema"], data.get("latent_avg")
    elif isinstance(data, dict) and any(str(k).startswith("style.") for k in data):
        sd, latent_avg = data, None
    elif isinstance(data, dict) and "mapping.fc0.weight" in data:
        raise CheckpointError(
            f"{path}: a bare NVIDIA-named state dict has no architecture config; "
            f"save it with vj (safetensors) or load it into a Generator yourself"
        )
    else:
        keys = sorted(map(str, data))[:8] if isinstance(data, dict) else type(data).__name__
        raise CheckpointError(f"{path}: no 'g_ema' generator in this torch file (found {keys})")
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise CheckpointError(f"{path}: 'g_ema' is not a state dict of tensors")
    try:
        return _from_rosinality(path, sd, latent_avg)
    except (IndexError, RuntimeError, KeyError, AttributeError) as e:
        raise CheckpointError(f"{path}: malformed rosinality generator: {e}") from None


def _from_rosinality(path: Path, sd: dict, latent_avg) -> tuple[Generator, dict]:
    """rosinality stylegan2-pytorch `Generator` state dict -> our Generator."""

    def get(key):
        if key not in sd:
            raise CheckpointError(f"{path}: rosinality checkpoint lacks '{key}'")
        return sd[key]

    n_mlp = len({m.group(1) for k in sd if (m := re.match(r"style\.(\d+)\.weight$", k))})
    n_rgbs = len({m.group(1) for k in sd if (m := re.match(r"to_rgbs\.(\d+)\.", k))})
    if n_mlp == 0:
        raise CheckpointError(f"{path}: no mapping layers ('style.N.weight') found")
    res = 2 ** (n_rgbs + 2)
    style_dim = get("style.1.weight").shape[1]
    const = get("input.input")  # [1, C, 4, 4]
    chans = {4: const.shape[1]}
    for i in range(n_rgbs):
        chans[2 ** (i + 3)] = get(f"convs.{2 * i}.conv.weight").shape[1]
    channel_max = chans[4]
    channel_base = chans[res] * res
    if any(min(channel_base // r, channel_max) != c for r, c in chans.items()):
        raise CheckpointError(
            f"{path}: channel counts {chans} do not follow min(base // res, max); unsupported"
        )
    blur = sd.get("convs.0.conv.blur.kernel")
    taps = [1.0, 3.0, 3.0, 1.0]
    if blur is not None and blur.ndim == 2:
        row = blur.sum(dim=0)
        taps = (row / row[0] if row[0] > 0 else row / row.sum()).tolist()  # [1, 3, 3, 1]
        if not torch.allclose(torch.outer(row, row) / row.sum() ** 2, blur / blur.sum(), atol=1e-6):
            raise CheckpointError(f"{path}: non-separable blur kernel is not supported")
    config = dict(
        z_dim=style_dim, c_dim=0, w_dim=style_dim, img_resolution=res,
        img_channels=get("to_rgb1.conv.weight").shape[1],
        mapping_kwargs=dict(MAPPING_DEFAULTS, num_layers=n_mlp),
        channel_base=channel_base, channel_max=channel_max, num_fp16_res=0, conv_clamp=None,
        architecture="skip", resample_filter=taps, use_noise=True, activation="lrelu",
    )  # fmt: skip
    G = _build(path, config, sd, same_names=False)
    out = {}
    for i in range(n_mlp):
        out[f"mapping.fc{i}.weight"] = get(f"style.{i + 1}.weight")
        out[f"mapping.fc{i}.bias"] = get(f"style.{i + 1}.bias")
    # Both sides scale weight and bias by lr_mul = 0.01 at run time: tensors carry over as they are.

    def modconv(src, dst, noise_key=None):
        w = get(f"{src}.conv.weight")[0]  # [1, O, I, k, k] -> [O, I, k, k]
        out[f"{dst}.weight"] = w
        out[f"{dst}.affine.weight"] = get(f"{src}.conv.modulation.weight")
        out[f"{dst}.affine.bias"] = get(f"{src}.conv.modulation.bias")
        if noise_key is not None:
            out[f"{dst}.bias"] = get(f"{src}.activate.bias")
            out[f"{dst}.noise_strength"] = get(f"{src}.noise.weight").reshape([])
            nz = sd.get(noise_key)
            r = int(dst.split(".")[1][1:])
            out[f"{dst}.noise_const"] = (
                nz.reshape(r, r) if nz is not None else G.state_dict()[f"{dst}.noise_const"]
            )
        else:
            out[f"{dst}.bias"] = get(f"{src}.bias").reshape(-1)

    out["synthesis.b4.const"] = const[0]
    modconv("conv1", "synthesis.b4.conv1", "noises.noise_0")
    modconv("to_rgb1", "synthesis.b4.torgb")
    for i in range(n_rgbs):
        r = 2 ** (i + 3)
        modconv(f"convs.{2 * i}", f"synthesis.b{r}.conv0", f"noises.noise_{2 * i + 1}")
        modconv(f"convs.{2 * i + 1}", f"synthesis.b{r}.conv1", f"noises.noise_{2 * i + 2}")
        modconv(f"to_rgbs.{i}", f"synthesis.b{r}.torgb")
    f = setup_filter(taps)
    for k in G.state_dict():
        if k.endswith("resample_filter"):
            out[k] = f
    estimated = latent_avg is None
    if not estimated:
        out["mapping.w_avg"] = latent_avg.reshape(-1)
    else:
        out["mapping.w_avg"] = G.state_dict()["mapping.w_avg"]
    _load_state(path, G, out)
    if estimated:
        # Training checkpoints carry no average w: estimate it from 4096 seeded z, as
        # rosinality's own mean_latent does.
        with torch.no_grad():
            z = torch.randn([4096, G.z_dim], generator=torch.Generator().manual_seed(0))
            G.mapping.w_avg.copy_(G.mapping(z)[:, 0].mean(0))
    meta = {
        "format": "rosinality-pt",
        "source": str(path),
        "config": G.config(),
        "licence": ROSINALITY_LICENCE_NOTE,
        "w_avg": "estimated from 4096 seeded z" if estimated else "latent_avg from checkpoint",
    }
    return G, meta


# ----------------------------------------------------------------------------- shared


def _build(path: Path, config: dict, tensors: dict, same_names: bool = True) -> Generator:
    """Generator(**config), after the config is bounded and shown to fit the file's tensors
    (on the meta device), so an untrusted file cannot make us allocate more than it holds.
    same_names: the tensors use our state-dict names, so their shapes are checked here too."""
    try:
        check_config(path, config)
        shapes, need = meta_shapes(config)
        if same_names and set(shapes) == set(tensors):
            _check_shapes(path, shapes, tensors)  # the precise message when only shapes differ
        check_size(path, need, sum(t.numel() for t in tensors.values()))
        if same_names:
            _check_shapes(path, shapes, tensors)
        return Generator(**config)
    except CheckpointLimitError as e:
        raise CheckpointError(str(e)) from None
    except (TypeError, ValueError, ZeroDivisionError, OverflowError) as e:
        raise CheckpointError(f"{path}: unsupported network configuration: {e}") from None


def _load_state(path: Path, G: Generator, tensors: dict) -> None:
    _check_shapes(path, {k: v.shape for k, v in G.state_dict().items()}, tensors)
    try:
        check_tensors(path, tensors)
    except CheckpointLimitError as e:
        raise CheckpointError(str(e)) from None
    with torch.no_grad():
        G.load_state_dict({k: t.to(torch.float32) for k, t in tensors.items()}, strict=True)


def _check_shapes(path: Path, own: dict, tensors: dict) -> None:
    """The file's tensors have exactly the keys and shapes of `own` ({key: shape})."""
    missing = sorted(set(own) - set(tensors))
    extra = sorted(set(tensors) - set(own))
    if missing or extra:
        raise CheckpointError(
            f"{path}: weights do not match the network config: "
            f"missing {missing[:5]}{'...' if len(missing) > 5 else ''}, "
            f"unexpected {extra[:5]}{'...' if len(extra) > 5 else ''}"
        )
    bad = [
        f"{k} {list(tensors[k].shape)} (expected {list(v)})"
        for k, v in own.items()
        if tuple(tensors[k].shape) != tuple(v)
    ]
    if bad:
        raise CheckpointError(f"{path}: tensor shapes do not match: {', '.join(bad[:5])}")
