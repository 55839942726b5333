"""The Show's fast paths (numpy mapping, at-rest parameters skipped, numpy decks and routes)
equal the straightforward computation: frame by frame, with routes, morphs and jumps."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.test_engine_nets import small_generator
from vj.audio.features import AudioFeatures
from vj.params import default_registry
from vj.show.frame import ControlEvent
from vj.show.mapping import NumpyMapping

S = 1_000_000_000
FPS = 30

# two decks, routes onto every kind of deck target, a loop and an expression mode
ROUTED = """\
name: routed
seed: 5
params: {drift: 0.4, onset_jump: 0.3}
decks:
  A:
    directions: {kind: random, count: 4}
    expression: {layers: middle, glide: 0.08}
  B:
    seed: 6
    directions: {kind: random, count: 4}
    keyframes: {seeds: [1, 2, 3]}
    loop: {bars: 1}
routes:
  - {source: beat, target: expression, deck: A}
  - {source: onset.mid, target: style, direction: 0, layers: middle, amount: 0.5, release: 0.15}
  - {source: beat_phase, target: style, direction: 1, layers: fine, amount: 0.3}
  - {source: onset.high, target: noise, layers: fine, amount: 1.5, release: 0.08}
  - {source: band.low, target: noise_mask, mask: circle, layers: fine, amount: 3}
  - {source: onset.low, target: bend.zoom, block: 1, amount: 0.4, release: 0.25, deck: B}
  - {source: band.mid, target: style, direction: 2, layers: coarse, deck: B}
  - {source: press.next_keyframe, target: keyframe.jump, quantize: beat, deck: A}
  - {source: rms, target: truncation, amount: 0.2, release: 0.3}
  - {source: centroid, target: walk.speed, amount: 0.3}
  - {source: rms, target: brightness, amount: 0.1}
"""
OTHER = """\
name: other
seed: 5
params: {drift: 0.1, zoom: 1.3, band_push: 0.8}
routes:
  - {source: band.high, target: style, direction: 1, layers: all, amount: 0.6}
"""


def _features(i: int) -> AudioFeatures:
    """A 128 BPM pattern: kicks on beats, hats on eighths, moving bands."""
    t = i / FPS
    beat = t * 128 / 60
    eighths = int(beat * 2)
    bands = np.clip(0.5 + 0.5 * np.sin(np.arange(8) + t * 3), 0, 1).astype(np.float32)
    return AudioFeatures(
        t_capture_ns=i * S // FPS, rms=0.5 + 0.3 * np.sin(t), bands=bands, centroid=0.4,
        flatness=0.2, onset_count=eighths, band_onset_counts=(int(beat), int(beat / 2), eighths),
        beat_count=int(beat), bpm=128.0, beat_phase=beat % 1, bar_position=beat % 4,
        tempo_source="tracker",
    )  # fmt: skip


def test_numpy_mapping_equals_the_network():
    G = small_generator(seed=1)
    m = NumpyMapping.of(G)
    assert m is not None
    z = torch.from_numpy(np.random.default_rng(0).standard_normal((6, G.z_dim)).astype("f4"))
    with torch.no_grad():
        want = G.mapping(z, None)[:, 0]
    for i in range(len(z)):
        got = m(z[i].numpy())
        np.testing.assert_allclose(got, want[i].numpy(), rtol=1e-4, atol=1e-5)


def test_numpy_mapping_declines_what_it_cannot_twin():
    class Conditional:
        class mapping:  # noqa: N801 - stands in for a conditional network's mapping
            c_dim, z_dim = 3, 8

    assert NumpyMapping.of(Conditional) is None


def _show(G, tmp_path, reference: bool):
    from vj.preset import load_preset
    from vj.show.wiring import build_show, deck_specs, preset_resolver

    tmp_path.mkdir()
    (tmp_path / "routed.yaml").write_text(ROUTED)
    (tmp_path / "other.yaml").write_text(OTHER)
    reg = default_registry()
    preset = load_preset(tmp_path / "routed.yaml", reg)
    from vj.preset import apply_preset

    apply_preset(preset, reg)
    show = build_show(
        preset, reg, [G, G], decks=deck_specs(preset),
        resolve_preset=preset_resolver(tmp_path, reg),
    )  # fmt: skip
    show.reference = reference
    return show


def _events():
    ev = []
    for k in (40, 41, 130, 200):  # presses: quantised keyframe jumps (two inside one frame)
        ev.append(ControlEvent(k * S // FPS + 7, "key", "next_keyframe"))
    ev.append(ControlEvent(90 * S // FPS + 3, "midi", "fx_amount", 0.7))
    ev.append(ControlEvent(100 * S // FPS + 5, "osc", "preset", "other"))  # a 4-beat morph
    ev.append(ControlEvent(170 * S // FPS + 5, "osc", "preset", "routed"))  # and back
    ev.append(ControlEvent(230 * S // FPS + 5, "midi", "drift", 0.9))
    return sorted(ev)


@pytest.mark.parametrize("frames", [300])
def test_fast_show_frames_equal_the_reference_computation(tmp_path, frames):
    G = small_generator(seed=0)
    fast, ref = _show(G, tmp_path / "f", False), _show(G, tmp_path / "r", True)
    for show in (fast, ref):
        show.reset()
        for e in _events():
            show.event(e)
    moved, prev = 0, None
    for i in range(frames):
        f = _features(i)
        fast.features(f)
        ref.features(f)
        a, b = fast.frame(f.t_capture_ns), ref.frame(f.t_capture_ns)
        assert (a.index, a.t_ns, a.tempo, a.preset, a.morph) == (
            b.index, b.t_ns, b.tempo, b.preset, b.morph
        )  # fmt: skip
        assert a.compositor.params.keys() == b.compositor.params.keys()
        for k, v in a.compositor.params.items():
            assert v == pytest.approx(b.compositor.params[k], rel=1e-9, abs=1e-12), (i, k)
        for da, db in zip(a.decks, b.decks, strict=True):
            assert da.keyframe_index == db.keyframe_index, i
            torch.testing.assert_close(da.ws, db.ws, rtol=1e-4, atol=2e-4, msg=f"frame {i}")
            torch.testing.assert_close(da.noise_strength, db.noise_strength, rtol=1e-5, atol=1e-5)
            assert (da.noise_masks is None) == (db.noise_masks is None)
            if da.noise_masks is not None:
                for ma, mb in zip(da.noise_masks, db.noise_masks, strict=True):
                    assert (ma is None) == (mb is None)
                    if ma is not None:
                        torch.testing.assert_close(ma, mb, rtol=1e-5, atol=1e-5)
            assert len(da.bends) == len(db.bends)
            for ba, bb in zip(da.bends, db.bends, strict=True):
                assert ba.block == bb.block
                np.testing.assert_allclose(
                    [*ba.translate, ba.rotate, ba.zoom], [*bb.translate, bb.rotate, bb.zoom]
                )
        if prev is not None and not torch.equal(a.decks[0].ws, prev):
            moved += 1
        prev = a.decks[0].ws
    assert moved > frames * 0.9  # the walk really moved: this compared something
    assert a.decks[0].keyframe_index > 4 and a.preset == "routed"  # jumps, both switches
    assert not fast.drain_errors() and not ref.drain_errors()


def test_numpy_slerp_equals_the_torch_one():
    from vj.gan.latent import slerp
    from vj.show.decks import slerp_np

    rng = np.random.default_rng(3)
    a = rng.standard_normal(64).astype(np.float32)
    b = rng.standard_normal(64).astype(np.float32) * 1.3
    c = -a + 0.3 * rng.standard_normal(64).astype(np.float32)
    # general, parallel, nearly opposite (exactly opposite is degenerate in float32 for both)
    for x, y in ((a, b), (a, a * 2.0), (a, c)):
        for t in (0.0, 0.3, 0.5, 1.0):
            want = slerp(torch.from_numpy(x), torch.from_numpy(y), t).numpy()
            np.testing.assert_allclose(slerp_np(x, y, t), want, rtol=1e-5, atol=1e-5)
