"""Small generators for tests, with the zero-initialised parts made non-trivial."""

from __future__ import annotations

import torch

from vj.gan.stylegan2 import Generator


def tiny_generator(
    seed: int = 0, noise_strength: float = 0.3, random_biases: bool = True, **config
) -> Generator:
    """Generator(**config), seeded, eval, no grad; a fresh init has zero noise strengths, biases
    and w_avg, which would hide bugs in those paths, so they get values here."""
    torch.manual_seed(seed)
    G = Generator(**config).eval().requires_grad_(False)
    for name, p in G.named_parameters():
        if name.endswith("noise_strength"):
            p.fill_(noise_strength)
        elif random_biases and name.endswith("bias"):
            p.normal_()
    G.mapping.w_avg.normal_()
    return G
