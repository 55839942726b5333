"""Sane bounds for untrusted checkpoint configs and weights, checked before anything is allocated.

A checkpoint's config decides how big a network gets built; without bounds a 200-byte file
could claim a network of many gigabytes. `check_config` bounds every constructor argument,
`meta_shapes` builds the network on torch's "meta" device (shapes only, no memory) and
`check_size` compares its parameter count with the tensors the file really holds, and
`check_tensors` refuses dtypes and values no trained network has (complex, integer, NaN, inf).
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

MAX_RESOLUTION = 4096
MAX_DIM = 4096  # z_dim, w_dim, c_dim, embed/layer features
MAX_CHANNELS = 4096  # channel_max
MAX_CHANNEL_BASE = 1 << 20
MAX_MAPPING_LAYERS = 32
MAX_IMG_CHANNELS = 4
MAX_FILTER_TAPS = 16
FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


class CheckpointLimitError(ValueError):
    """A checkpoint's config or weights fall outside what vj accepts (message names the file)."""


def check_config(path: Path, config: dict) -> None:
    """Refuse configs outside sane bounds: cheap checks on plain values, nothing allocated."""

    def fail(msg: str):
        raise CheckpointLimitError(f"{path}: refused network config: {msg}")

    def integer(where: dict, key: str, lo: int, hi: int, optional: bool = False) -> None:
        value = where.get(key)
        if value is None and optional:
            return
        if isinstance(value, bool) or not isinstance(value, int):
            fail(f"{key} must be an integer, got {value!r}")
        if not lo <= value <= hi:
            fail(f"{key}={value} is outside {lo}..{hi}")

    def number(where: dict, key: str, lo: float, hi: float, optional: bool = False) -> None:
        value = where.get(key)
        if value is None and optional:
            return
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            fail(f"{key} must be a number, got {value!r}")
        if not (math.isfinite(value) and lo <= value <= hi):
            fail(f"{key}={value} is outside {lo}..{hi}")

    if not isinstance(config, dict):
        fail("not a mapping")
    integer(config, "z_dim", 1, MAX_DIM)
    integer(config, "w_dim", 1, MAX_DIM)
    integer(config, "c_dim", 0, MAX_DIM)
    integer(config, "img_channels", 1, MAX_IMG_CHANNELS)
    integer(config, "img_resolution", 4, MAX_RESOLUTION)
    res = config["img_resolution"]
    if res & (res - 1):
        fail(f"img_resolution={res} is not a power of two")
    for key in ("channel_base", "channel_max", "num_fp16_res"):
        if key not in config:
            continue  # the constructor's default applies
        hi = {"channel_base": MAX_CHANNEL_BASE, "channel_max": MAX_CHANNELS, "num_fp16_res": 11}
        integer(config, key, 0 if key == "num_fp16_res" else 1, hi[key])
    number(config, "conv_clamp", 1e-3, 1e6, optional=True)
    taps = config.get("resample_filter")
    if taps is not None:
        if not isinstance(taps, (list, tuple)) or not 1 <= len(taps) <= MAX_FILTER_TAPS:
            fail(f"resample_filter must be a list of 1..{MAX_FILTER_TAPS} numbers")
        if not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            for v in taps
        ):
            fail("resample_filter holds a value that is not a finite number")
        if sum(taps) <= 0:
            fail("resample_filter taps must have a positive sum")
    mapping = config.get("mapping_kwargs") or {}
    if not isinstance(mapping, dict):
        fail("mapping_kwargs must be a mapping")
    integer(mapping, "num_layers", 1, MAX_MAPPING_LAYERS, optional="num_layers" not in mapping)
    integer(mapping, "embed_features", 1, MAX_DIM, optional=True)
    integer(mapping, "layer_features", 1, MAX_DIM, optional=True)
    number(mapping, "lr_multiplier", 1e-6, 1e3, optional="lr_multiplier" not in mapping)
    number(mapping, "w_avg_beta", 0.0, 1.0, optional=True)


def meta_shapes(config: dict) -> tuple[dict[str, torch.Size], int]:
    """({state-dict key: shape}, parameter count) of the network `config` builds, built on the
    meta device (shapes only, no memory). Call check_config first: it bounds the build time."""
    from vj.gan.stylegan2 import Generator

    with torch.device("meta"):
        G = Generator(**config)
    shapes = {k: v.shape for k, v in G.state_dict().items()}
    return shapes, sum(p.numel() for p in G.parameters())


def check_size(path: Path, need: int, file_numel: int) -> None:
    """Refuse a config whose `need` parameters are more values than the file holds."""
    if need > file_numel:
        raise CheckpointLimitError(
            f"{path}: refused network config: it needs {need:,} weights "
            f"({need * 4 / 1e6:.1f} MB as float32) but the file holds only {file_numel:,}"
        )


def check_tensors(path: Path, tensors: dict) -> None:
    """Refuse weights no trained network has: non-float dtypes and NaN/inf values."""
    for name, t in tensors.items():
        if t.dtype not in FLOAT_DTYPES:
            raise CheckpointLimitError(
                f"{path}: refused weights: {name} has dtype {t.dtype} (expected a float type)"
            )
        if not bool(torch.isfinite(t).all()):
            raise CheckpointLimitError(f"{path}: refused weights: {name} holds NaN or inf values")
