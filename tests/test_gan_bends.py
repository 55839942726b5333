"""Network bending (affine transforms of feature maps) and spatial noise masks in the synthesis."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tests.gan_nets import tiny_generator
from vj.gan.engine import Engine
from vj.gan.stylegan2 import bend_features
from vj.show.frame import Bend, DeckControls

CFG = dict(z_dim=16, w_dim=16, img_resolution=32, channel_base=256, channel_max=16)


def bend_reference(x: np.ndarray, translate, rotate: float, zoom: float) -> np.ndarray:
    """Plain per-pixel twin of bend_features: inverse-map each output pixel, reflect at the
    edges, bilinear. x [N, C, H, W] float64."""
    n, c, h, w = x.shape
    out = np.zeros_like(x)
    cs, sn = math.cos(rotate), math.sin(rotate)
    tx, ty = 2 * translate[0], 2 * translate[1]

    def reflect(p: float, size: int) -> float:  # pixel coordinate, edges at -0.5 and size-0.5
        q = abs(p + 0.5) % (2 * size)
        q = 2 * size - q if q > size else q
        return min(max(q - 0.5, 0.0), size - 1.0)

    for i in range(h):
        for j in range(w):
            px, py = (2 * j + 1) / w - 1, (2 * i + 1) / h - 1  # normalised, align_corners=False
            qx = (cs * (px - tx) - sn * (py - ty)) / zoom
            qy = (sn * (px - tx) + cs * (py - ty)) / zoom
            sx, sy = reflect(((qx + 1) * w - 1) / 2, w), reflect(((qy + 1) * h - 1) / 2, h)
            x0, y0 = int(math.floor(sx)), int(math.floor(sy))
            x1, y1 = min(x0 + 1, w - 1), min(y0 + 1, h - 1)
            fx, fy = sx - x0, sy - y0
            out[:, :, i, j] = (
                x[:, :, y0, x0] * (1 - fx) * (1 - fy)
                + x[:, :, y0, x1] * fx * (1 - fy)
                + x[:, :, y1, x0] * (1 - fx) * fy
                + x[:, :, y1, x1] * fx * fy
            )
    return out


@pytest.mark.parametrize(
    "translate,rotate,zoom",
    [
        ((0.0, 0.0), 0.0, 1.0),
        ((0.2, -0.1), 0.0, 1.0),
        ((0.0, 0.0), 0.7, 1.0),
        ((0.1, 0.05), -0.4, 1.6),
        ((0.0, 0.3), 1.2, 0.7),
    ],
)
def test_bend_matches_reference(translate, rotate, zoom):
    x = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    got = bend_features(x, Bend(0, translate, rotate, zoom + 1e-9 * (zoom == 1.0))).numpy()
    want = bend_reference(x.double().numpy(), translate, rotate, zoom)
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_identity_bend_is_identity_and_translate_moves_content():
    x = torch.randn(1, 2, 16, 16)
    assert bend_features(x, Bend(0)) is x  # the identity fast path
    y = bend_features(x, Bend(0, translate=(0.25, 0.0)))  # content moves right by 4 pixels
    torch.testing.assert_close(y[..., 4:], x[..., :-4], atol=1e-5, rtol=0)


def test_synthesis_bends_and_masks():
    G = tiny_generator(**CFG)
    syn = G.synthesis
    ws = G.mapping(torch.randn(1, 16, generator=torch.Generator().manual_seed(3)), None)
    plain = syn(ws)
    torch.testing.assert_close(syn(ws, bends=(), noise_masks=None), plain, atol=0, rtol=0)
    for block in range(len(syn.block_resolutions)):  # every block, the const one included
        bent = syn(ws, bends=(Bend(block, (0.25, 0.0)),))
        assert (bent - plain).abs().max() > 1e-3, block
    ident = syn(ws, bends=(Bend(2),))
    torch.testing.assert_close(ident, plain, atol=0, rtol=0)
    ones = tuple(torch.ones(s) for s in syn.noise_shapes)
    torch.testing.assert_close(syn(ws, noise_masks=ones), plain, atol=1e-6, rtol=0)
    zeros = tuple(torch.zeros(s) for s in syn.noise_shapes)
    torch.testing.assert_close(
        syn(ws, noise_masks=zeros), syn(ws, noise_strength=0.0), atol=1e-6, rtol=0
    )
    half = [None] * syn.num_noise_layers
    half[-1] = torch.zeros(syn.noise_shapes[-1])
    half[-1][:, : half[-1].shape[1] // 2] = 1.0  # noise on the left half only
    masked = syn(ws, noise_masks=tuple(half))
    assert (masked - plain).abs().max() > 1e-4
    with pytest.raises(ValueError, match="noise_masks"):
        syn(ws, noise_masks=ones[:-1])
    with pytest.raises(ValueError, match="bend block"):
        syn(ws, bends=(Bend(99),))


def test_engine_reads_bends_and_masks_from_deck_controls():
    G = tiny_generator(**CFG)
    eng = Engine(G, device="cpu", dtype="fp32", n_buffers=3)
    ws = G.mapping(torch.randn(1, 16, generator=torch.Generator().manual_seed(4)), None)
    ns = torch.ones(G.synthesis.num_noise_layers)
    plain = eng.render(DeckControls("A", ws, ns)).rgba.copy()
    bent = eng.render(DeckControls("A", ws, ns, bends=(Bend(1, rotate=0.5),))).rgba.copy()
    assert np.abs(plain.astype(int) - bent.astype(int)).max() > 2
    with torch.no_grad():
        want = G.synthesis(ws, bends=(Bend(1, rotate=0.5),), noise_strength=ns)
    want8 = ((want[0].permute(1, 2, 0) * 127.5 + 128).clamp(0, 255)).to(torch.uint8).numpy()
    # the engine runs channels-last: the same values up to float rounding
    assert np.abs(bent[..., :3].astype(int) - want8.astype(int)).max() <= 3
    again = eng.render(DeckControls("A", ws, ns)).rgba
    np.testing.assert_array_equal(again, plain)


def test_lazy_noise_masks_render_as_their_maps():
    """NoiseMasks (the Show's fast path: S coefficients, maps made when read) renders exactly
    as the explicit tuple of maps it stands for, through the engine; a coefficient below -1
    floors the map at 0."""
    from vj.show.frame import NoiseMasks
    from vj.show.modulate import mask_shape

    G = tiny_generator(**CFG)
    syn = G.synthesis
    shapes = syn.noise_shapes
    last = shapes[-1][0]
    groups = ((last, np.stack([mask_shape("circle", last).ravel(),
                               mask_shape("left", last).ravel()])),)  # fmt: skip
    of_layer = tuple(0 if s[0] == last else None for s in shapes)
    coef = np.array([2.5, -3.0], np.float32)
    lazy = NoiseMasks(coef, groups, of_layer)
    want = 1.0 + 2.5 * mask_shape("circle", last) - 3.0 * mask_shape("left", last)
    want = np.maximum(want, 0.0)
    explicit = tuple(None if g is None else torch.from_numpy(want) for g in of_layer)
    assert len(lazy) == len(shapes)
    assert all((lazy[k] is None) == (g is None) for k, g in enumerate(of_layer))
    torch.testing.assert_close(lazy[-1], explicit[-1], atol=1e-6, rtol=0)
    assert float(lazy[-1].min()) == 0.0  # floored: -3 dips below zero on the left
    ws = G.mapping(torch.randn(1, 16, generator=torch.Generator().manual_seed(5)), None)
    ns = torch.ones(syn.num_noise_layers)
    eng = Engine(G, device="cpu", dtype="fp32", n_buffers=2)
    a = eng.render(DeckControls("A", ws, ns, noise_masks=lazy)).rgba.copy()
    b = eng.render(DeckControls("A", ws, ns, noise_masks=explicit)).rgba.copy()
    plain = eng.render(DeckControls("A", ws, ns)).rgba.copy()
    np.testing.assert_array_equal(a, b)
    assert np.abs(a.astype(int) - plain.astype(int)).max() > 0  # the masks did something
