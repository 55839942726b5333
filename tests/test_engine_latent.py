"""Latent helpers: slerp against a plain reference, edge cases, truncation, mixing, keyframes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vj.gan.latent import (
    KeyframeSequence,
    lerp,
    seeded_directions,
    slerp,
    slerp_reference,
    style_mix,
    truncate,
)


def _angle(a, b):
    return float(torch.arccos((a / a.norm()) @ (b / b.norm())).clamp(-1, 1))


@pytest.mark.parametrize("t", [0.0, 0.25, 0.5, 0.9, 1.0])
def test_slerp_matches_reference(t):
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(512, generator=g), torch.randn(512, generator=g) * 1.3
    got = slerp(a, b, t).numpy()
    ref = slerp_reference(a.numpy(), b.numpy(), t)
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4)


def test_slerp_angles_split_evenly_and_endpoints_exact():
    a, b = torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 2.0, 0.0])
    m = slerp(a, b, 0.5)
    assert abs(_angle(a, m) - _angle(m, b)) < 1e-5
    assert abs(float(m.norm()) - 1.5) < 1e-5
    torch.testing.assert_close(slerp(a, b, 0.0), a)
    torch.testing.assert_close(slerp(a, b, 1.0), b)


def test_slerp_parallel_and_antiparallel():
    a = torch.tensor([3.0, 4.0, 0.0])
    out = slerp(a, 2 * a, 0.5)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, 1.5 * a)
    anti = slerp(a, -a, 0.5)
    assert torch.isfinite(anti).all()
    assert abs(float(anti @ a)) < 1e-4  # halfway round: orthogonal to both ends
    assert abs(float(anti.norm()) - 5.0) < 1e-4
    torch.testing.assert_close(slerp(a, -a, 1.0), -a, atol=1e-5, rtol=1e-5)
    # deterministic: same inputs, same turn direction
    torch.testing.assert_close(anti, slerp(a, -a, 0.5))


def test_slerp_batched_rows_independent():
    g = torch.Generator().manual_seed(2)
    a, b = torch.randn(4, 16, generator=g), torch.randn(4, 16, generator=g)
    a[2] = b[2]  # a parallel row mixed in with ordinary rows
    out = slerp(a, b, 0.3)
    for i in range(4):
        torch.testing.assert_close(out[i], slerp(a[i], b[i], 0.3))


def test_lerp_truncate_mix():
    w_avg = torch.ones(8)
    ws = torch.full((1, 6, 8), 3.0)
    torch.testing.assert_close(truncate(ws, w_avg, 0.5), torch.full((1, 6, 8), 2.0))
    t = truncate(ws, w_avg, 0.0, cutoff=2)
    assert torch.all(t[:, :2] == 1.0) and torch.all(t[:, 2:] == 3.0)
    torch.testing.assert_close(lerp(ws, w_avg.expand(1, 6, 8), 0.5), torch.full((1, 6, 8), 2.0))
    b = torch.zeros(1, 6, 8)
    m = style_mix(ws, b, 4)
    assert torch.all(m[:, :4] == 3.0) and torch.all(m[:, 4:] == 0.0)
    with pytest.raises(ValueError, match="layer 7 outside 0..6"):
        style_mix(ws, b, 7)


def test_keyframes_deterministic_and_distinct():
    k1, k2 = KeyframeSequence(128, seed=5), KeyframeSequence(128, seed=5)
    torch.testing.assert_close(k1[3], k2[3])
    assert not torch.allclose(k1[3], k1[4])
    assert not torch.allclose(k1[3], KeyframeSequence(128, seed=6)[3])
    assert k1[0].shape == (128,) and k1[0].dtype == torch.float32
    with pytest.raises(IndexError):
        k1[-1]


def test_seeded_directions_orthonormal():
    d = seeded_directions(8, 64, seed=3)
    torch.testing.assert_close(d @ d.T, torch.eye(8), atol=1e-5, rtol=0)
    torch.testing.assert_close(d, seeded_directions(8, 64, seed=3))
