"""The embedded default generator: trained weights shipped in vj/gan/assets/, else random init.

The weights were trained by tools/train_default.py on vj's own procedural imagery
(tools/procedural.py) only, so they carry vj's MIT licence and nothing of FFHQ or NVIDIA.
"""

from __future__ import annotations

from pathlib import Path

import torch

ASSET = Path(__file__).resolve().parent / "assets" / "default.safetensors"


def load_default(device: str | torch.device = "cpu"):
    """(G, meta) of the embedded default: the shipped trained weights when present."""
    from vj.gan.checkpoint import load_generator

    if ASSET.is_file():
        G, meta = load_generator(ASSET, device=device)
        meta["format"] = "embedded default"
        meta.setdefault("licence", "MIT (vj)")
        return G, meta
    from vj.gan.stylegan2 import make_default_generator

    G = make_default_generator(seed=0)
    meta = {
        "format": "embedded default",
        "source": "vj embedded default (seeded random init, seed 0: trained weights missing)",
        "config": G.config(),
        "licence": "MIT (vj)",
    }
    return G.to(device), meta
