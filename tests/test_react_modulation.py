"""Modulator: deterministic, onsets move the image clearly, little movement between onsets."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.test_engine_nets import small_generator
from vj.audio.features import AudioFeatures
from vj.params import default_registry
from vj.react.modulation import Controls, Modulator, num_noise_layers


@pytest.fixture(scope="module")
def G():
    return small_generator(seed=0)


def _feat(onsets=0, bands=None, n_bands=8):
    b = np.zeros(n_bands, np.float32) if bands is None else np.asarray(bands, np.float32)
    return AudioFeatures(onset_count=onsets, bands=b)


def _click_track(fps=20.0, seconds=4.0, period=0.5):
    """(features, t) per generator frame: a click (onset + broadband burst) every `period` s."""
    out = []
    onsets = 0
    for i in range(int(seconds * fps)):
        t = i / fps
        hit = i > 0 and int(t / period) > int((t - 1 / fps) / period)
        onsets += hit
        bands = np.full(8, 0.9 if hit else 0.0, np.float32)
        out.append((_feat(onsets, bands), t, hit))
    return out


def test_controls_shapes(G):
    m = Modulator(G, seed=1)
    c = m.step(_feat(), default_registry().snapshot(), 0.0)
    assert isinstance(c, Controls)
    assert c.ws.shape == (1, G.num_ws, G.w_dim) and c.ws.dtype == torch.float32
    assert c.noise_strength.shape == (num_noise_layers(G),)
    assert c.keyframe_index == 0


def test_deterministic(G):
    params = default_registry().snapshot()
    runs = []
    for _ in range(2):
        m = Modulator(G, seed=7)
        runs.append([m.step(f, params, t) for f, t, _ in _click_track(seconds=2.0)])
    for a, b in zip(*runs, strict=True):
        assert torch.equal(a.ws, b.ws) and torch.equal(a.noise_strength, b.noise_strength)
        assert a.keyframe_index == b.keyframe_index
    other = Modulator(G, seed=8).step(_feat(), params, 0.0)
    assert not torch.equal(other.ws, runs[0][0].ws)


def test_history_before_start_is_not_news(G):
    m = Modulator(G, seed=0)
    params = default_registry().snapshot()
    m.step(_feat(onsets=41), params, 0.0)
    assert m.step(_feat(onsets=41), params, 0.05).keyframe_index == 0
    assert m.step(_feat(onsets=43), params, 0.10).keyframe_index == 2


def test_onsets_change_frames_clearly_between_onsets_little(G):
    """The visual contract, on the engine's RGBA8 frames: a big change on the frame right after
    each click, a small one in between."""
    from vj.gan.engine import Engine

    params = default_registry().snapshot()
    m = Modulator(G, seed=3)
    eng = Engine(G, device="cpu")
    prev = None
    at_onset, between = [], []
    for f, t, hit in _click_track():
        rgb = eng.render(m.step(f, params, t)).rgba[..., :3].astype(np.float32)
        if prev is not None:
            d = float(np.abs(rgb - prev).mean())
            (at_onset if hit else between).append(d)
        prev = rgb
    assert len(at_onset) >= 6
    assert np.median(at_onset) > 4 * np.median(between), (at_onset, between)
    assert min(at_onset) > np.percentile(between, 90)


def test_next_keyframe_trigger_jumps(G):
    reg = default_registry()
    m = Modulator(G, seed=0)
    reg.set("drift", 0.0)
    c0 = m.step(_feat(), reg.snapshot(), 0.0)
    c1 = m.step(_feat(), reg.snapshot(), 0.05)
    torch.testing.assert_close(c0.ws, c1.ws)
    reg.trigger("next_keyframe")
    c2 = m.step(_feat(), reg.snapshot(), 0.10)
    assert c2.keyframe_index == 1
    assert float((c2.ws - c1.ws).norm()) > 0.1 * float(c1.ws.norm())


def test_intensity_zero_freezes_audio_movement(G):
    reg = default_registry()
    reg.set("intensity", 0.0)
    reg.set("drift", 0.0)
    m = Modulator(G, seed=0)
    cs = [m.step(f, reg.snapshot(), t) for f, t, _ in _click_track(seconds=1.5)]
    for c in cs[1:]:
        torch.testing.assert_close(c.ws, cs[0].ws)
        torch.testing.assert_close(c.noise_strength, torch.ones_like(c.noise_strength))


def test_low_bands_push_coarse_layers_high_bands_fine(G):
    reg = default_registry()
    reg.set("drift", 0.0)
    params = reg.snapshot()
    base = Modulator(G, seed=0).step(_feat(), params, 0.0).ws
    low = Modulator(G, seed=0).step(_feat(bands=[1, 1, 0, 0, 0, 0, 0, 0]), params, 0.0)
    high = Modulator(G, seed=0).step(_feat(bands=[0, 0, 0, 0, 0, 0, 1, 1]), params, 0.0)
    dl = (low.ws - base).norm(dim=-1)[0]  # [num_ws]
    dh = (high.ws - base).norm(dim=-1)[0]
    n = G.num_ws
    assert dl[: n // 3].mean() > 3 * dl[-(n // 3) :].mean()
    assert dh[-(n // 3) :].mean() > 3 * dh[: n // 3].mean()
    nl, nh = low.noise_strength, high.noise_strength
    assert nl[0] > nl[-1] and nh[-1] > nh[0] and float(nh.min()) >= 1.0


def test_release_decays_pushes(G):
    reg = default_registry()
    reg.set("drift", 0.0)
    reg.set("release", 0.1)
    m = Modulator(G, seed=0)
    params = reg.snapshot()
    base = Modulator(G, seed=0).step(_feat(), params, 0.0).ws
    pushed = m.step(_feat(bands=np.ones(8)), params, 0.0).ws
    later = m.step(_feat(), params, 0.5).ws  # 5 time constants later
    assert float((later - base).norm()) < 0.02 * float((pushed - base).norm())


def test_bad_band_values_do_not_poison_state(G):
    m = Modulator(G, seed=0)
    params = default_registry().snapshot()
    bad = np.full(8, np.nan, np.float32)
    bad[0] = np.inf
    c = m.step(_feat(bands=bad), params, 0.0)
    assert torch.isfinite(c.ws).all() and torch.isfinite(c.noise_strength).all()
    c = m.step(_feat(bands=np.full(8, 5.0)), params, 0.1)  # out of range: clipped to 1
    assert torch.isfinite(c.ws).all()
    c = m.step(_feat(n_bands=3), params, 0.2)  # band count changed mid-stream
    assert torch.isfinite(c.ws).all()


def test_beat_jump_param(G):
    reg = default_registry()
    reg.set("drift", 0.0)
    params = reg.snapshot()
    m = Modulator(G, seed=0)
    c0 = m.step(AudioFeatures(beat_count=3), params, 0.0)
    c1 = m.step(AudioFeatures(beat_count=4), params, 0.05)  # beat_jump absent: beats ignored
    assert c1.keyframe_index == c0.keyframe_index
    torch.testing.assert_close(c0.ws, c1.ws)
    c2 = m.step(AudioFeatures(beat_count=5), {**params, "beat_jump": 0.5}, 0.10)
    assert c2.keyframe_index == 1 and float((c2.ws - c1.ws).norm()) > 0
