"""Sample quality without downloads: Fréchet distance and diversity in a fixed random-conv space.

Feature space ("RandConv-v1"): images [-1, 1] are resized to 128x128 and passed through five
3x3 stride-2 convolutions (3 -> 16 -> 32 -> 64 -> 128 -> 128 channels, ReLU), weights drawn
from torch.Generator seed 20261201 with He-normal scaling, no biases. The feature vector is,
per layer, the spatial mean and standard deviation of every channel (2 x 368 = 736 values):
colour, texture and layout statistics at five scales. Random conv features are a known
download-free stand-in for Inception features; figures are comparable only within this space.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

FEATURE_SEED = 20261201
WIDTHS = (3, 16, 32, 64, 128, 128)
INPUT_SIZE = 128


def feature_weights() -> list[torch.Tensor]:
    """The fixed conv weights of the feature space ([O, I, 3, 3] each)."""
    g = torch.Generator().manual_seed(FEATURE_SEED)
    out = []
    for i, o in zip(WIDTHS[:-1], WIDTHS[1:], strict=True):
        out.append(torch.randn([o, i, 3, 3], generator=g) * (2.0 / (i * 9)) ** 0.5)
    return out


def features(images: torch.Tensor, weights: list[torch.Tensor] | None = None, batch: int = 64):
    """images [N, 3, H, W] in [-1, 1] -> features [N, 736] float64 numpy."""
    weights = weights or feature_weights()
    rows = []
    with torch.no_grad():
        for i in range(0, images.shape[0], batch):
            x = images[i : i + batch].float()
            x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear",
                              antialias=x.shape[-1] > INPUT_SIZE)  # fmt: skip
            stats = []
            for w in weights:
                x = F.relu(F.conv2d(x, w, stride=2, padding=1))
                stats += [x.mean(dim=[2, 3]), x.std(dim=[2, 3])]
            rows.append(torch.cat(stats, dim=1).double())
    return torch.cat(rows).numpy()


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to feature sets a [N, D] and b [M, D]."""
    from scipy import linalg

    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean, _ = linalg.sqrtm(s1 @ s2, disp=False)
    if not np.isfinite(covmean).all():  # near-singular product: regularise as the FID code does
        eps = np.eye(s1.shape[0]) * 1e-6
        covmean = linalg.sqrtm((s1 + eps) @ (s2 + eps))
    covmean = covmean.real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def diversity(f: np.ndarray) -> float:
    """Mean pairwise Euclidean distance between the rows of f [N, D]."""
    t = torch.from_numpy(f)
    d = torch.cdist(t, t)
    n = f.shape[0]
    return float(d.sum() / (n * (n - 1)))


def pixel_diversity(images: torch.Tensor) -> float:
    """Mean pairwise RMS distance between images [N, 3, H, W] (at 64x64), in [-1, 1] units."""
    x = F.adaptive_avg_pool2d(images.float(), 64).flatten(1)
    d = torch.cdist(x, x) / x.shape[1] ** 0.5
    n = x.shape[0]
    return float(d.sum() / (n * (n - 1)))
