"""The synthetic benchmark material (tools/synth_drums.py) is seeded, annotated consistently
and puts its cymbal wash where the issue asks: sustained under the kick and snare."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tools"))
synth_drums = pytest.importorskip("synth_drums")


def test_same_seed_same_performance_other_seed_other():
    a, hits_a, beats_a = synth_drums.synth("ride", seed=3, seconds=4.0)
    b, hits_b, _ = synth_drums.synth("ride", seed=3, seconds=4.0)
    c, _, _ = synth_drums.synth("ride", seed=4, seconds=4.0)
    assert np.array_equal(a, b) and hits_a == hits_b
    assert len(a) != len(c) or not np.allclose(a, c)
    assert {cls for _, cls in hits_a} <= {"KD", "SD", "HH", "CY", "TT"}
    assert all(1 <= k <= 4 for _, k in beats_a)
    assert np.max(np.abs(a)) == pytest.approx(0.9, abs=1e-3)


def test_ride_wash_sustains_between_strokes():
    from scipy.signal import butter, sosfilt

    sr = synth_drums.SR
    x, hits, _ = synth_drums.synth("ride", seed=0, seconds=4.0)
    hi = sosfilt(butter(4, 5000, "highpass", fs=sr, output="sos"), x)
    cy = np.array([t for t, c in hits if c == "CY"])
    gaps = [(a, b) for a, b in zip(cy, cy[1:], strict=False) if b - a > 0.2]
    assert gaps
    # just before the next stroke the high band is still within 20 dB of its level after one
    ratios = []
    for a, b in gaps:
        after = np.sqrt(np.mean(hi[int((a + 0.01) * sr) : int((a + 0.05) * sr)] ** 2))
        before = np.sqrt(np.mean(hi[int((b - 0.04) * sr) : int(b * sr)] ** 2))
        ratios.append(before / after)
    assert np.median(ratios) > 0.1, ratios


def test_unknown_style_is_a_clear_error():
    with pytest.raises(ValueError, match="one of"):
        synth_drums.synth("polka")


def test_soft_hats_sit_about_20_db_under_kick_and_snare():
    # the set says "hats 20 dB under kick and snare" (the material): measured, not
    # read off the velocities, since each voice has its own loudness per unit of velocity
    sr = synth_drums.SR
    kit = synth_drums.Kit(np.random.default_rng(0))
    n = int(0.03 * sr)

    def level_db(inst: str, vdb: float) -> float:
        hits = [synth_drums.hit(kit, inst, synth_drums._db(vdb)) for _ in range(24)]
        return float(np.median([10 * np.log10(np.mean(h[:n] ** 2)) for h in hits]))

    hat = level_db("softhat", -19.0)  # the 16ths' velocities are -18 and -20 dB
    snare, kick = level_db("snare", -1.0), level_db("kick", 0.0)
    assert 18.0 <= snare - hat <= 22.0, (snare, hat)
    assert 14.0 <= kick - hat <= 20.0, (kick, hat)
    # a rock kit's hats are louder, well over the soft ones
    assert level_db("hat", -6.5) - hat > 3.0


def _shape_db(x: np.ndarray, sr: int, bands, wins) -> np.ndarray:
    """[band, window] level of one hit in dB against the whole signal's power over 0-30 ms
    (how synth_drums.STEMS_SNARE_DB and REAL_RIDE_DB were measured)."""
    from scipy.signal import butter, sosfilt

    ref = 10 * np.log10(np.mean(x[: int(0.03 * sr)] ** 2))
    row = []
    for b in bands:
        y = sosfilt(butter(4, b, "bandpass", fs=sr, output="sos"), x)
        row.append([10 * np.log10(np.mean(y[int(a * sr) : int(c * sr)] ** 2)) for a, c in wins])
    return np.array(row) - ref


def _snare_shape_db(kit, sr: int) -> np.ndarray:
    """The kit's dry snare measured as synth_drums.STEMS_SNARE_DB is: [band, window] dB."""
    bands = [(100, 400), (400, 1200), (1200, 5000), (7000, 17000)]
    wins = [(0.0, 0.03), (0.05, 0.1), (0.1, 0.15), (0.15, 0.2)]
    return np.median([_shape_db(kit.snare(1.0), sr, bands, wins) for _ in range(8)], axis=0)


def test_the_snare_is_shaped_like_the_stems_snares_and_the_old_burst_was_not():
    sr = synth_drums.SR
    real = np.array(synth_drums.STEMS_SNARE_DB)
    d = _snare_shape_db(synth_drums.Kit(np.random.default_rng(0)), sr) - real
    assert np.sqrt(np.mean(d**2)) < 3.0 and np.max(np.abs(d)) < 5.0, np.round(d, 1)
    old = _snare_shape_db(synth_drums.Kit(np.random.default_rng(0), snare="burst"), sr) - real
    assert old[3, 2] > 15.0  # its wires 15+ dB too loud above 7 kHz at 100-150 ms
    with pytest.raises(ValueError, match="one of"):
        synth_drums.Kit(np.random.default_rng(0), snare="tin")


def test_a_ride_stroke_decays_like_real_rides():
    # one dry stroke against synth_drums.REAL_RIDE_DB (two real one-shots, measured the same way):
    # the old ride (4.5 s partials, 3 s noise) was 11.9 dB RMS off, 34 dB too loud at 1 s
    sr = synth_drums.SR
    bands = [(1000, 2500), (2500, 5000), (5000, 8000), (8000, 16000)]
    wins = [(0.0, 0.03), (0.03, 0.08), (0.1, 0.15), (0.2, 0.25), (0.5, 0.55), (1.0, 1.05)]
    out = []
    for seed in range(4):
        kit = synth_drums.Kit(np.random.default_rng(seed))
        x = kit.cymbal_track(np.array([0.0]), np.array([0.5]), int(1.1 * sr), "ride")
        out.append(_shape_db(x, sr, bands, wins))
    d = np.median(out, axis=0) - np.array(synth_drums.REAL_RIDE_DB)
    assert np.sqrt(np.mean(d**2)) < 3.0 and np.max(np.abs(d)) < 8.0, np.round(d, 1)
