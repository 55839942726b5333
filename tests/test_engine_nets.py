"""Small real generators for the engine/react/export tests, and the contract they rely on."""

from __future__ import annotations

import torch

from vj.gan.stylegan2 import MAPPING_DEFAULTS, Generator, default_config, make_default_generator


def small_config(resolution: int = 32) -> dict:
    cfg = default_config()
    cfg.update(
        z_dim=64,
        w_dim=64,
        img_resolution=resolution,
        mapping_kwargs=dict(MAPPING_DEFAULTS, num_layers=2),
        channel_base=256,
        channel_max=32,
    )
    return cfg


def small_generator(seed: int = 0, resolution: int = 32) -> Generator:
    """The real StyleGAN2 Generator in a configuration whose CPU forward takes a few ms."""
    return make_default_generator(seed, small_config(resolution))


def test_generator_contract():
    G = small_generator()
    assert (G.z_dim, G.w_dim, G.img_resolution) == (64, 64, 32)
    z = torch.randn(2, G.z_dim)
    ws = G.mapping(z, None, truncation_psi=0.7, truncation_cutoff=None)
    assert ws.shape == (2, G.num_ws, G.w_dim) and G.mapping.w_avg.shape == (G.w_dim,)
    ns = torch.ones(G.synthesis.num_noise_layers)
    img = G.synthesis(ws, noise_mode="const", force_fp32=True, noise_strength=ns)
    assert img.shape == (2, 3, 32, 32)
