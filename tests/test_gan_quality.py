"""Fréchet distance and diversity in the fixed random-conv feature space (tools/quality.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import procedural  # noqa: E402
import quality  # noqa: E402


def test_features_are_fixed_and_the_distance_orders_sets():
    g = torch.Generator().manual_seed(0)
    a = procedural.sample(torch.randn([32, 256], generator=g), 64)
    b = procedural.sample(torch.randn([32, 256], generator=g), 64)
    noise = torch.rand([32, 3, 64, 64], generator=g) * 2 - 1
    fa, fb, fn = (quality.features(x) for x in (a, b, noise))
    assert fa.shape == (32, 2 * sum(quality.WIDTHS[1:]))
    np.testing.assert_array_equal(fa, quality.features(a))  # deterministic
    assert quality.frechet_distance(fa, fa) < 1e-6 * max(1.0, float(np.trace(np.cov(fa.T))))
    assert quality.frechet_distance(fa, fb) < quality.frechet_distance(fa, fn)
    assert quality.diversity(fa) > 0
    same = quality.features(a[:1].repeat(8, 1, 1, 1))
    assert quality.diversity(same) < 1e-9
