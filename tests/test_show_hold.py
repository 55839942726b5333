"""Hold directions (vj.show.hold) and the hold expression mode: detail moves, the thumbnail of
the frame holds, around the identity a deck really shows."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.gan_nets import tiny_generator
from vj.show.directions import sefa
from vj.show.hold import THUMB, hold_cached, hold_directions
from vj.show.keyframes import HoldExpression
from vj.show.layers import LayerMap

CFG = dict(z_dim=16, w_dim=16, img_resolution=32, channel_base=256, channel_max=16)


@pytest.fixture(scope="module")
def G():
    return tiny_generator(3, **CFG)


def _ws(G, seed=1):
    z = torch.randn(1, 16, generator=torch.Generator().manual_seed(seed))
    return G.mapping(z, None, truncation_psi=0.7)


def _thumb_ratio(G, ws, offsets, step):
    """Mean |Δ| of the THUMB×THUMB thumbnail ÷ mean |Δ| of the frame, pooled over offsets."""
    syn = G.synthesis
    x0 = syn(ws, noise_mode="const")
    full = thumb = 0.0
    for off in offsets:
        x = syn(ws + step * torch.as_tensor(off)[None], noise_mode="const")
        d = x - x0
        n, c, h, w = d.shape
        t = d.reshape(n, c, THUMB, h // THUMB, THUMB, w // THUMB).mean((3, 5))
        full += float(d.abs().mean())
        thumb += float(t.abs().mean())
    return thumb / full


def test_hold_directions_hold_the_thumbnail_better_than_sefa():
    """On the embedded default (its middle layers move layout and colour: SeFa's changes keep
    ~0.86 of their size in the 8×8 thumbnail), the hold directions of one identity move the
    frame while the thumbnail keeps half as much."""
    from vj.gan.checkpoint import load_checkpoint_or_default
    from vj.show.decks import start_ws
    from vj.show.directions import w_stats

    G = load_checkpoint_or_default("default")[0]
    ws = start_ws(G, 21, 0.7, w_stats(G, 21)[0])
    rows = LayerMap.of(G).ws_indices("middle")
    h = hold_directions(G, ws, "middle", count=4, candidates=8)
    assert h.shape == (4, G.num_ws, G.w_dim) and h.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(h.reshape(4, -1), axis=1), 1.0, rtol=1e-5)
    outside = [r for r in range(G.num_ws) if r not in rows]
    assert np.abs(h[:, outside]).max() == 0.0  # only the group's rows move
    # the same group's SeFa directions, on the same rows, as W+ offsets of the same length
    d, _ = sefa(G, "middle")
    s = np.zeros((4, G.num_ws, G.w_dim), np.float32)
    s[:, list(rows)] = d[:4, None, :] / np.sqrt(len(rows))
    held, plain = _thumb_ratio(G, ws, h, 3.0), _thumb_ratio(G, ws, s, 3.0)
    assert held < 0.7 * plain, (held, plain)  # measured: 0.48 against 0.86


def test_hold_directions_are_deterministic(G):
    ws = _ws(G)
    a = hold_directions(G, ws, "middle", count=3, candidates=8)
    np.testing.assert_array_equal(a, hold_directions(G, ws, "middle", count=3, candidates=8))
    with pytest.raises(ValueError, match="not a multiple"):
        hold_directions(G, ws, "middle", count=3, candidates=8, thumb=7)


def test_hold_directions_are_cached_per_identity(G, tmp_path, monkeypatch):
    import vj.show.hold as hold

    calls = []
    real = hold.hold_directions
    monkeypatch.setattr(hold, "CANDIDATES", 8)
    monkeypatch.setattr(
        hold, "hold_directions", lambda *a, **k: calls.append(1) or real(*a, candidates=8)
    )
    said = []
    a = hold_cached(G, _ws(G, 1), "middle", 3, tmp_path, say=said.append)
    b = hold_cached(G, _ws(G, 1), "middle", 3, tmp_path, say=said.append)
    np.testing.assert_array_equal(a, b)
    assert len(calls) == 1 and len(said) == 1  # computed (and said) once
    hold_cached(G, _ws(G, 2), "middle", 3, tmp_path)  # another identity: its own entry
    assert len(calls) == 2 and len(list(tmp_path.glob("hold-*.npz"))) == 2
    for broken in tmp_path.glob("hold-*.npz"):
        broken.write_bytes(b"not an array")
    hold_cached(G, _ws(G, 1), "middle", 3, tmp_path)  # unreadable: recomputed, not fatal
    assert len(calls) == 3


def test_hold_expression_offsets_only_its_rows_and_starts_at_the_identity(G):
    ws = _ws(G)
    h = hold_directions(G, ws, "middle", count=3, candidates=8)
    e = HoldExpression(G, h, amount=2.0, layers="middle", glide=0.0, seed=4)
    rows = list(e.rows)
    base = ws.numpy()[0].copy()
    out = base.copy()
    e.apply_np(out)
    np.testing.assert_array_equal(out, base)  # target 0: the identity itself
    e.step()
    out = base.copy()
    e.apply_np(out)
    moved = np.abs(out - base).max(axis=1)
    assert moved[rows].min() > 0 and np.delete(moved, rows).max() == 0.0
    np.testing.assert_allclose(np.linalg.norm(out - base), 2.0, rtol=1e-4)  # amount long
    torch.testing.assert_close(e.apply(ws)[0], torch.from_numpy(out))  # the torch twin


def test_hold_directions_are_measured_for_the_seed_the_deck_plays(G, tmp_path):
    """A --seed (or a seed a deck keeps) is the identity the hold is measured around: the
    routes are built for the deck's own start W+, which is what its first frame shows."""
    from types import SimpleNamespace

    from vj.params import default_registry
    from vj.show.config import DeckConfig, ExpressionSpec
    from vj.show.decks import start_ws
    from vj.show.directions import w_stats
    from vj.show.wiring import DeckSpec, build_show

    class Hold:
        name, path, seed, effect, cues, routes = "hold", None, 3, "default", (), ()
        params = {"truncation": 0.7, "drift": 0.0, "onset_jump": 0.0, "beat_jump": 0.0}
        decks = (DeckConfig("A", seed=3, expression=ExpressionSpec(hold=True, count=3)),)
        audio = SimpleNamespace(hop=256, n_bands=8)

    reg = default_registry()
    for k, v in Hold.params.items():
        reg.set(k, v)
    show = build_show(Hold, reg, [G], decks=[DeckSpec("default", 9)])  # --seed 9
    ident = start_ws(G, 9, 0.7, w_stats(G, 9)[0])
    first = show.frame(0).decks[0].ws
    torch.testing.assert_close(first, ident, rtol=1e-5, atol=1e-5)  # what the deck shows
    got = show.mods["A"].expression._dirs
    want = hold_directions(G, ident, "middle", count=3)  # (float rounding differs by threads)
    np.testing.assert_allclose(got, want, atol=1e-3)
    other = hold_directions(G, start_ws(G, 3, 0.7, w_stats(G, 3)[0]), "middle", count=3)
    assert np.abs(got - other).max() > 10 * np.abs(got - want).max()  # not the preset's seed
