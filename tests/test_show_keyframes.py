"""Directions (SeFa, random, files), keyframe banks/loops, quantised jumps, expression mode."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.gan_nets import tiny_generator
from vj.audio.features import AudioFeatures
from vj.gan.latent import seeded_normal
from vj.show.directions import (
    DirectionError,
    DirectionSpec,
    build_directions,
    load_directions,
    random_directions,
    sefa,
    sefa_cached,
    w_stats,
)
from vj.show.frame import DeckControls, TempoView
from vj.show.keyframes import (
    BankLoop,
    ExpressionMode,
    KeyframeBank,
    KeyframeError,
    interpolate,
    load_ws,
    next_boundary,
)
from vj.show.layers import LayerMap
from vj.show.modulate import DeckModulation, mask_shape
from vj.show.routes import Inputs, Route, RouteMatrix

CFG = dict(z_dim=16, w_dim=16, img_resolution=64, channel_base=512, channel_max=16)


@pytest.fixture(scope="module")
def G():
    return tiny_generator(**CFG)


def test_layer_groups(G):
    lm = LayerMap.of(G)  # 64²: 4, 8 | 16, 32 | 64
    assert lm.ws_indices("coarse") == (0, 1, 2, 3)
    assert lm.ws_indices("middle") == (4, 5, 6, 7)
    assert lm.ws_indices("fine") == (8, 9)
    assert lm.noise_indices("coarse") == (0, 1, 2)
    assert lm.ws_indices([1, 9]) == (1, 9)
    with pytest.raises(ValueError, match="outside"):
        lm.ws_indices([10])


def test_sefa_orthonormal_ordered_and_meaningful(G):
    for group in ("coarse", "middle", "all"):
        d, s = sefa(G, group)
        assert d.shape == (16, 16)
        np.testing.assert_allclose(d @ d.T, np.eye(16), atol=1e-5)
        assert np.all(np.diff(s) <= 1e-6) and s[0] > s[-1]
    # the top direction moves the group's styles more than any random unit direction
    d, s = sefa(G, "middle")
    syn = G.synthesis  # W+ rows 4..7 feed these conv layers of a 64² net
    a = torch.cat([x.affine.weight for x in (syn.b16.conv1, syn.b32.conv0, syn.b32.conv1,
                                             syn.b64.conv0)])  # fmt: skip
    a = a / a.norm(dim=1, keepdim=True)
    top = (a @ torch.from_numpy(d[0])).norm()
    rnd = torch.randn(100, 16)
    rnd = rnd / rnd.norm(dim=1, keepdim=True)
    assert top >= (a @ rnd.T).norm(dim=0).max() - 1e-5


def test_sefa_cache_is_keyed_and_atomic(G, tmp_path):
    d1, s1 = sefa_cached(G, "fine", tmp_path)
    files = list(tmp_path.iterdir())
    assert len(files) == 1 and files[0].suffix == ".npz" and "fine" in files[0].name
    d2, _ = sefa_cached(G, "fine", tmp_path)
    np.testing.assert_array_equal(d1, d2)
    files[0].write_bytes(b"broken")  # a broken cache is recomputed, not fatal
    d3, _ = sefa_cached(G, "fine", tmp_path)
    np.testing.assert_array_equal(d1, d3)
    assert not [p for p in tmp_path.iterdir() if p.suffix == ".part"]


def test_random_and_file_directions(G, tmp_path):
    r = random_directions(5, 16, seed=2)
    np.testing.assert_allclose(r @ r.T, np.eye(5), atol=1e-5)
    np.testing.assert_array_equal(r, random_directions(5, 16, seed=2))
    p = tmp_path / "dirs.npy"
    np.save(p, np.arange(32, dtype=np.float32).reshape(2, 16) + 1)
    d = build_directions(DirectionSpec("file", path=p), G)
    np.testing.assert_allclose(np.linalg.norm(d, axis=1), 1.0, rtol=1e-6)
    np.save(p, np.zeros((2, 15)))
    with pytest.raises(DirectionError, match=r"dirs.npy: expected shape \[K, 16\]"):
        load_directions(p, 16)
    p.write_bytes(b"not numpy")
    with pytest.raises(DirectionError, match="cannot read"):
        load_directions(p, 16)
    np.save(p, np.array([{"a": 1}], dtype=object))
    with pytest.raises(DirectionError, match="dirs.npy"):
        load_directions(p, 16)


def test_bank_from_seeds_and_files(G, tmp_path):
    bank = KeyframeBank.from_seeds(G, [1, 2, 3])
    assert bank.ws.shape == (3, G.num_ws, 16)
    w = tmp_path / "portrait.npy"
    np.save(w, bank.ws[1].numpy())  # one W+ (a projection)
    torch.testing.assert_close(load_ws(w, G.num_ws, 16)[0], bank.ws[1])
    np.save(w, bank.ws[:, 0].numpy())  # a stack of W's
    assert load_ws(w, G.num_ws, 16).shape == (3, G.num_ws, 16)
    np.save(w, np.full((G.num_ws, 16), np.nan, np.float32))
    with pytest.raises(KeyframeError, match="NaN"):
        load_ws(w, G.num_ws, 16)


@pytest.mark.parametrize("how", ["slerp", "spline", "linear"])
def test_loops_hit_keyframes_and_are_seamless(G, how):
    bank = KeyframeBank.from_seeds(G, [4, 5, 6, 7])
    w_avg, _ = w_stats(G)
    loop = BankLoop(bank, 8.0, how, w_avg)  # 2 beats per keyframe
    for k in range(4):
        torch.testing.assert_close(loop.ws(2.0 * k), bank[k], atol=1e-5, rtol=0)
    torch.testing.assert_close(loop.ws(8.0), loop.ws(0.0), atol=0, rtol=0)
    torch.testing.assert_close(loop.ws(16.0 + 3.3), loop.ws(3.3), atol=1e-5, rtol=0)
    # no jump across the loop point: a step there is no larger than a step anywhere else
    h = 1e-3
    across = (loop.ws(8.0 - h / 2) - loop.ws(8.0 + h / 2)).norm()
    steps = [(loop.ws(b + h) - loop.ws(b)).norm() for b in np.arange(0, 8, 0.25)]
    assert across <= 1.5 * max(steps)
    if how == "spline":  # C1 at the loop point too: the velocity matches from both sides
        v_in = (loop.ws(8.0) - loop.ws(8.0 - h)) / h
        v_out = (loop.ws(8.0 + h) - loop.ws(8.0)) / h
        assert (v_in - v_out).norm() <= 0.02 * v_in.norm()


def test_interpolate_spline_passes_through_keys(G):
    bank = KeyframeBank.from_seeds(G, [1, 2, 3])
    w_avg, _ = w_stats(G)
    torch.testing.assert_close(interpolate(bank, 2.0, "spline", w_avg), bank[2], atol=1e-5, rtol=0)


def test_next_boundary():
    assert next_boundary(3.2, "beat") == 4.0
    assert next_boundary(4.0, "beat") == 4.0
    assert next_boundary(5.0, "bar", 4) == 8.0
    assert next_boundary(5.0, "bar", 3) == 6.0
    assert next_boundary(5.3, "none") == 5.3


def _deck_controls(G, seed=0):
    ws = G.mapping(torch.from_numpy(np.random.default_rng(seed).standard_normal((1, 16))).float())
    return DeckControls("A", ws, torch.ones(G.synthesis.num_noise_layers))


def test_quantised_jumps_land_on_beat_boundaries(G):
    m = RouteMatrix([Route("onset", "keyframe.jump", amount=0.5, quantize="beat")])
    mod = DeckModulation(G, m.outputs.decks["A"], None, 1.0)
    fps, bpm = 30, 128.0
    landed = []
    onset_ticks = {7, 20, 21, 55}
    count = 0
    for i in range(120):
        beat = i / fps * bpm / 60
        count += i in onset_ticks
        out = m.process(Inputs(features=_f(count), tempo=TempoView(bpm, beat)), 1 / fps)
        for frac in mod.tick(out.decks["A"], TempoView(bpm, beat), 1 / fps):
            landed.append((i, beat, frac))
    assert len(landed) == 4  # two onsets in a row both land (on the same beat)
    for i, beat, frac in landed:
        prev = (i - 1) / fps * bpm / 60
        assert frac == 0.5
        assert np.floor(beat) > np.floor(prev) or beat == np.floor(beat)  # first tick of a beat
    ticks = [i for i, _, _ in landed]
    assert ticks[0] >= 7 and ticks[1] == ticks[2] >= 21
    # with no tempo, a quantised jump fires at once
    mod2 = DeckModulation(G, m.outputs.decks["A"], None, 1.0)
    m.reset()
    m.process(Inputs(features=_f(0)), 0.03)
    out = m.process(Inputs(features=_f(1)), 0.03)
    assert mod2.tick(out.decks["A"], TempoView(), 0.03) == [0.5]


def _f(onsets: int):
    return AudioFeatures(onset_count=onsets, band_onset_counts=(onsets, 0, 0))


def test_a_beat_moves_only_the_targeted_layer_group(G):
    lm = LayerMap.of(G)
    d, _ = sefa(G, "middle")
    m = RouteMatrix(
        [
            Route("beat", "style", direction=0, layers="middle", release=0.2),
            Route("beat", "expression"),
        ]
    )
    expr = ExpressionMode(G, layers="middle", glide=0.05, seed=1)
    mod = DeckModulation(G, m.outputs.decks["A"], d, w_stats(G)[1], expression=expr)
    base = _deck_controls(G)
    before = None
    for i in range(40):
        tv = TempoView(120.0, 0.7 + i * 0.02)  # crosses beat 1 at tick 15
        out = m.process(Inputs(tempo=tv), 0.01)
        mod.tick(out.decks["A"], tv, 0.01)
        c = mod.apply(base, out.decks["A"], tv)
        if i == 14:
            before = c.ws.clone()
    moved = (c.ws - before)[0].norm(dim=1)  # per W+ row
    mid = list(lm.ws_indices("middle"))
    other = [i for i in range(G.num_ws) if i not in mid]
    assert moved[mid].min() > 1e-3
    assert moved[other].max() == 0.0


def test_masks_and_noise_and_bends_reach_deck_controls(G):
    routes = [
        Route("band.low", "noise_mask", mask="circle", layers="fine"),
        Route("band.high", "noise_mask", mask="outside", layers="fine"),
        Route("rms", "noise", layers="coarse", amount=2.0),
        Route("lfo.saw", "bend.rotate", block=2),
    ]
    m = RouteMatrix(routes)
    mod = DeckModulation(G, m.outputs.decks["A"], None, 1.0)
    base = _deck_controls(G)
    bands = np.array([1, 1, 0, 0, 0, 0.5, 0.5, 0.5], np.float32)  # low third 1, high 0.5
    tv = TempoView(120, 0.25)
    out = m.process(Inputs(AudioFeatures(bands=bands, rms=0.5), tv), 0.01)
    c = mod.apply(base, out.decks["A"], tv)
    lm = LayerMap.of(G)
    fine = lm.noise_indices("fine")
    assert all(c.noise_masks[j] is None for j in range(len(lm.noise_res)) if j not in fine)
    mk = c.noise_masks[fine[-1]]
    r = mk.shape[0]
    assert mk[r // 2, r // 2] == pytest.approx(2.0, abs=1e-3)  # lows inside the circle
    assert mk[0, 0] == pytest.approx(1.5, abs=1e-3)  # highs outside
    coarse = list(lm.noise_indices("coarse"))
    torch.testing.assert_close(c.noise_strength[coarse], torch.full((len(coarse),), 2.0))
    assert c.bends[0].block == 2 and c.bends[0].rotate == pytest.approx(0.25)
    img = G.synthesis(c.ws, noise_strength=c.noise_strength, noise_masks=c.noise_masks,
                      bends=c.bends)  # fmt: skip
    assert torch.isfinite(img).all()
    quiet = m.process(Inputs(tempo=TempoView(120, 1.0)), 0.01)
    assert mod.apply(base, quiet.decks["A"], tv) is base  # nothing routed: the fast path


def test_mask_shapes():
    c = mask_shape("circle", 32)
    assert c[16, 16] == 1.0 and c[0, 0] == 0.0
    np.testing.assert_allclose(mask_shape("outside", 32), 1 - c, atol=1e-6)
    assert mask_shape("left", 8)[:, 0].min() == 1.0 and mask_shape("left", 8)[:, -1].max() == 0.0


def test_fast_paths_equal_their_reference_twins(G):
    from vj.show.directions import StyleSteer
    from vj.show.keyframes import interpolate_reference

    bank = KeyframeBank.from_seeds(G, [1, 2, 3, 4, 5])
    w_avg, w_scale = w_stats(G)
    for pos in (0.0, 0.3, 1.5, 4.7, 4.999):
        torch.testing.assert_close(
            interpolate(bank, pos, "spline", w_avg), interpolate_reference(bank, pos, w_avg)
        )
    d, _ = sefa(G, "all")
    slots = ((0, "middle"), (3, (1, 9)), (0, "fine"))
    steer = StyleSteer(slots, d, LayerMap.of(G), w_scale)
    coefs = np.array([0.5, -1.0, 2.0])
    torch.testing.assert_close(steer.offsets(coefs), steer.offsets_reference(coefs))
    assert steer.offsets(np.zeros(3)) is None


@pytest.mark.parametrize("how", ["spline", "slerp", None])
def test_numpy_apply_equals_torch_twin(G, how):
    routes = [
        Route("rms", "style", direction=1, layers="middle", amount=0.7),
        Route("band.low", "noise_mask", mask="circle", layers="fine", amount=3.0),
        Route("band.high", "noise_mask", mask="ring", layers=[2, 3, 8], amount=-2.0),
        Route("centroid", "noise", layers="coarse", amount=2.0),
        Route("lfo.saw", "bend.zoom", block=1),
        Route("beat", "expression"),
    ]
    m = RouteMatrix(routes)
    d, _ = sefa(G, "middle")
    w_avg, w_scale = w_stats(G)
    loop = None
    if how is not None:
        loop = BankLoop(KeyframeBank.from_seeds(G, [1, 2, 3]), 6.0, how, w_avg)
    expr = ExpressionMode(G, layers=[4, 6, 7], glide=0.05, seed=3)  # not contiguous
    mod = DeckModulation(G, m.outputs.decks["A"], d, w_scale, expression=expr, loop=loop)
    base = _deck_controls(G, seed=2)
    bands = np.linspace(0, 1, 8).astype(np.float32)
    for i in range(30):
        tv = TempoView(120.0, 0.8 + 0.03 * i)
        f = AudioFeatures(rms=0.1 * (i % 7), bands=bands, centroid=0.3)
        out = m.process(Inputs(f, tv), 0.01)
        mod.tick(out.decks["A"], tv, 0.01)
        fast = mod.apply(base, out.decks["A"], tv)
        ref = mod.apply_reference(base, out.decks["A"], tv)
        torch.testing.assert_close(fast.ws, ref.ws, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(fast.noise_strength, ref.noise_strength)
        assert fast.bends == ref.bends
        for a, b in zip(fast.noise_masks, ref.noise_masks, strict=True):
            assert (a is None) == (b is None)
            if a is not None:
                torch.testing.assert_close(a, b)


def test_routing_facade_runs_a_preset_over_two_decks(G):
    from types import SimpleNamespace

    from vj.show.config import DeckConfig, ExpressionSpec
    from vj.show.modulate import Routing

    preset = SimpleNamespace(
        seed=1,
        routes=(
            Route("beat", "expression", deck="A"),
            Route("rms", "zoom", amount=0.5),
            Route("press.next_keyframe", "keyframe.jump", deck="B", quantize="beat"),
            Route("rms", "walk.speed", deck="B"),
        ),
        decks=(DeckConfig("A", expression=ExpressionSpec(glide=0.0)), DeckConfig("B", seed=4)),
    )
    r = Routing(preset, [G, G], cache_dir=None)
    assert r.active and set(r.mods) == {"A", "B"}
    base = _deck_controls(G)
    r.process(AudioFeatures(rms=0.4), TempoView(120, 0.5), {"next_keyframe": 0}, 0.01)
    r.process(AudioFeatures(rms=0.4), TempoView(120, 0.6), {"next_keyframe": 1}, 0.01)
    assert r.jumps("B") == []  # armed for beat 1
    p = {"zoom": 1.0}
    r.apply_params(p)
    assert p["zoom"] == pytest.approx(1.2) and r.walk_speed("B") == pytest.approx(0.4)
    a0 = r.apply("A", base).ws.clone()
    r.process(AudioFeatures(rms=0.4), TempoView(120, 1.0), {"next_keyframe": 1}, 0.01)
    assert r.jumps("B") == [1.0]
    a1 = r.apply("A", base).ws
    lm = LayerMap.of(G)
    moved = (a1 - a0)[0].norm(dim=1)
    assert moved[list(lm.ws_indices("middle"))].min() > 0
    assert moved[list(lm.ws_indices("coarse"))].max() == 0
    assert r.apply("B", base) is base  # nothing shaping deck B's W+ this tick


def test_expression_targets_do_not_depend_on_batching(G):
    from vj.show.keyframes import EXPRESSION_BLOCK

    e = ExpressionMode(G, layers="middle", seed=9, glide=0.0)
    rows = list(LayerMap.of(G).ws_indices("middle"))
    for i in (0, 5, EXPRESSION_BLOCK + 1):
        z = torch.from_numpy(seeded_normal(9, (1 << 25) + i, (16,)))
        want = G.mapping(z[None], None, truncation_psi=0.7)[0, rows]
        torch.testing.assert_close(e._target(i), want, atol=1e-5, rtol=1e-5)
