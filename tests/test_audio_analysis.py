"""Streaming analysis on synthetic signals with known onsets: twin equality, timing at several
rates and hops, silence / noise / DC / clipping / NaN, level independence, channels."""

from __future__ import annotations

import numpy as np
import pytest

from tests.audio_helpers import clicks, onset_times, stream
from vj.audio.analysis import Envelope, HopAnalyzer, PeakPicker, reference_odf
from vj.audio.stream import FeatureExtractor

TIMES = [0.25, 0.55, 0.70, 1.10, 1.32, 1.80, 2.05]


@pytest.mark.parametrize("width", [1, 2, 3])
def test_streaming_odf_equals_offline_reference(width):
    sr, hop = 44100, 256
    rng = np.random.default_rng(3)
    x = (0.05 * rng.standard_normal(sr)).astype(np.float32) + clicks(sr, [0.2, 0.5, 0.8], 1.0)
    an = HopAnalyzer(sr, hop, onset_width=width)
    got = []
    for k in range(len(x) // hop):
        an.process(x[k * hop : (k + 1) * hop])
        got.append([*an.odf, an.onset_odf, an.low_held])
    ref = reference_odf(x, sr, hop, onset_width=width)
    np.testing.assert_allclose(np.array(got), ref, rtol=1e-3, atol=1e-4)
    assert ref[:, 0].max() > 1.0  # the clicks are there, so the comparison means something


@pytest.mark.parametrize("sr,hop", [(44100, 64), (48000, 256), (88200, 512), (96000, 1024)])
def test_click_onsets_on_time_any_rate_and_hop(sr, hop):
    x = clicks(sr, TIMES, 2.4)
    _, events, _ = stream(x, sr, hop)
    on = onset_times(events)
    assert len(on) == len(TIMES), on
    delay = on - np.array(TIMES)
    hop_s = hop / sr
    # available at the end of the block the click is in, or at most one hop later
    assert np.all(delay >= 0), delay
    assert np.all(delay <= 2 * hop_s + 0.003), delay


def test_block_size_does_not_change_what_is_detected():
    sr, hop = 48000, 256
    x = clicks(sr, TIMES, 2.4)
    fx1, ev1, _ = stream(x, sr, hop, block=hop)
    fx2, ev2, _ = stream(x, sr, hop, block=1000)
    fx3, ev3, _ = stream(x, sr, hop, block=77)
    assert fx1.onset_count == fx2.onset_count == fx3.onset_count == len(TIMES)
    # availability is the end of the block it fired in: never earlier than with small blocks
    assert np.all(onset_times(ev2) >= onset_times(ev1) - 1e-9)
    assert np.all(onset_times(ev2) - onset_times(ev1) < 1000 / sr + 1e-9)
    np.testing.assert_allclose(fx1.latest.bands, fx3.latest.bands, atol=1e-6)


def test_silence_gives_nothing():
    sr = 48000
    fx, events, feats = stream(np.zeros(2 * sr, np.float32), sr, 256)
    assert fx.onset_count == 0 and not events
    f = feats[-1]
    assert f.rms == 0.0 and np.all(f.bands == 0.0)
    assert f.bpm == 0.0 and f.tempo_source == "none"


def test_stationary_noise_gives_few_onsets_and_clicks_still_fire_in_it():
    sr = 48000
    rng = np.random.default_rng(0)
    noise = (0.1 * rng.standard_normal(3 * sr)).astype(np.float32)
    fx, _, feats = stream(noise, sr, 256)
    assert fx.onset_count <= 4  # the start of the noise counts once; a rare fluke or two
    assert feats[-1].flatness > 0.5  # white noise is flat
    x = noise + clicks(sr, [t + 0.5 for t in TIMES], 3.0, amp=1.0)
    fx, events, _ = stream(x, sr, 256)
    on = onset_times(events)
    hits = sum(np.any(np.abs(on - (t + 0.5) - 0.005) < 0.012) for t in TIMES)
    assert hits == len(TIMES), on


def test_dc_offset_is_ignored():
    sr = 48000
    x = clicks(sr, TIMES, 2.4)
    _, ev0, f0 = stream(x, sr, 256)
    _, ev1, f1 = stream(x + 0.3, sr, 256)
    on1 = onset_times(ev1)
    np.testing.assert_allclose(on1[on1 > 0.1], onset_times(ev0))  # the DC step may add one
    assert abs(f1[-1].rms - f0[-1].rms) < 0.01
    assert abs(f1[-1].centroid - f0[-1].centroid) < 0.02


def test_clipped_input_still_detected():
    sr = 48000
    x = np.clip(clicks(sr, TIMES, 2.4) * 30.0, -1.0, 1.0)
    fx, events, feats = stream(x, sr, 256)
    assert fx.onset_count == len(TIMES)
    assert all(np.isfinite(f.rms) for f in feats)


@pytest.mark.filterwarnings("ignore:overflow encountered")
def test_nan_and_inf_are_never_propagated():
    sr = 48000
    x = clicks(sr, TIMES, 2.4)
    x[1000:1100] = np.nan
    x[30000] = np.inf
    x[40000] = -np.inf
    x[45000] = 1e30
    fx, events, feats = stream(x, sr, 256)
    assert fx.nonfinite_blocks >= 2
    for f in feats:
        vals = [f.rms, f.centroid, f.flatness, f.onset_strength, f.bpm, f.beat_phase]
        assert np.all(np.isfinite(vals)) and np.all(np.isfinite(f.bands))
    on = onset_times(events)
    assert all(np.any(np.abs(on - t - 0.005) < 0.012) for t in TIMES[1:]), on


@pytest.mark.parametrize("gain_db", [-30.0, -18.0])
def test_gain_sweep_features_and_onsets_level_independent(gain_db):
    from vj.audio.source import demo_track

    sr = 48000
    x = demo_track(sr, seconds=6.0, bpm=124.0)  # peak 0.9 ≈ -1 dBFS
    ref_fx, ref_ev, ref_f = stream(x[:, 0] * 10 ** (-6 / 20), sr, 256)
    fx, ev, f = stream(x[:, 0] * 10 ** (gain_db / 20), sr, 256)
    a, b = onset_times(ref_ev), onset_times(ev)
    assert len(a) > 20
    assert abs(len(a) - len(b)) <= 1
    matched = sum(np.any(np.abs(b - t) < 1e-6) for t in a)
    assert matched >= len(a) - 1
    # after the level follower has heard the first bar, features agree closely
    start = int(2.0 * sr / 256)
    bands_ref = np.array([g.bands for g in ref_f[start:]])
    bands = np.array([g.bands for g in f[start:]])
    assert np.abs(bands - bands_ref).mean() < 0.02
    rms_ref = np.array([g.rms for g in ref_f[start:]])
    rms = np.array([g.rms for g in f[start:]])
    assert np.abs(rms - rms_ref).mean() < 0.02
    assert np.mean(rms_ref) > 0.3  # the features are alive, not floored


def test_channel_pick_and_downmix():
    sr = 48000
    c = clicks(sr, TIMES, 2.4)
    stereo = np.stack([np.zeros_like(c), c], axis=1)
    assert stream(stereo, sr, 256, channel=1)[0].onset_count == len(TIMES)
    assert stream(stereo, sr, 256, channel=0)[0].onset_count == 0
    assert stream(stereo, sr, 256)[0].onset_count == len(TIMES)  # downmix
    with pytest.raises(ValueError, match="channel 3"):
        stream(stereo, sr, 256, channel=3)


def test_band_onsets_split_kick_snare_hats():
    from vj.audio.source import demo_track

    sr = 48000
    x = demo_track(sr, seconds=8.0, bpm=120.0)[:, 0]
    fx, events, _ = stream(x, sr, 256)
    low, mid, high = fx.band_onset_counts
    beats = 8.0 * 120 / 60  # 16 beats: 16 kicks + 2 pickups, 8 snares, 16 hats, 48 bass notes
    assert 0.8 * beats <= low <= 1.2 * (beats + 2 + 48)  # the bass lives in the low band too
    assert 0.8 * beats <= high <= 1.5 * (beats + beats / 2)  # hats + the snares' sizzle
    assert 0.8 * beats / 2 <= mid


@pytest.mark.parametrize("sr,hop", [(96000, 128), (44100, 64)])
def test_held_low_band_equals_offline_reference_when_flux_lag_is_several_hops(sr, hop):
    rng = np.random.default_rng(4)
    t = np.arange(sr) / sr
    x = 0.05 * rng.standard_normal(sr) + 0.2 * np.sin(2 * np.pi * 55 * t) * (t > 0.4)
    x = (x + clicks(sr, [0.2, 0.5, 0.8], 1.0)).astype(np.float32)
    an = HopAnalyzer(sr, hop)
    assert an.flux_lag > 1 and an.n_hold > an.flux_lag  # the ring spans several lags
    got = []
    for k in range(len(x) // hop):
        an.process(x[k * hop : (k + 1) * hop])
        got.append(an.low_held)
    ref = reference_odf(x, sr, hop)[:, -1]
    np.testing.assert_allclose(got, ref, rtol=1e-3, atol=1e-4)
    assert ref.max() > 1.0


def test_bad_config_is_refused():
    with pytest.raises(ValueError, match="hop"):
        FeatureExtractor(48000, hop=8)
    with pytest.raises(ValueError, match="sample_rate"):
        FeatureExtractor(1000)
    fx = FeatureExtractor(48000)
    with pytest.raises(ValueError, match="frames"):
        fx.process(np.zeros((2, 2, 2), np.float32), 0)


def test_envelope_attack_release_and_peak_picker_fires_once():
    env = Envelope(1, 100.0, attack_s=0.01, release_s=0.5)
    env.process(np.ones(1, np.float32))
    up = float(env.value[0])
    assert 0.5 < up < 1.0
    for _ in range(5):
        env.process(np.zeros(1, np.float32))
    assert 0.5 * up < env.value[0] < up  # slow release
    inst = Envelope(1, 100.0, attack_s=0.0, release_s=0.5)
    inst.process(np.ones(1, np.float32))
    assert inst.value[0] == 1.0
    pp = PeakPicker(100.0, delta=0.1)
    fired = [pp.process(v) for v in [0, 0, 1.0, 2.0, 1.5, 1.8, 0.2, 0, 0, 0, 1.0, 0]]
    assert fired.count(True) == 2 and fired[2] and fired[10]


def test_fast_fft_path_matches_numpy_fallback():
    sr, hop = 48000, 256
    x = clicks(sr, [0.1, 0.3], 0.5) + 0.01
    fast, plain = HopAnalyzer(sr, hop), HopAnalyzer(sr, hop)
    plain._rfft = np.fft.rfft  # the fallback used without scipy
    for k in range(len(x) // hop):
        fast.process(x[k * hop : (k + 1) * hop])
        plain.process(x[k * hop : (k + 1) * hop])
        # float32 FFTs from different code paths: equal to rounding, relative to the scale
        np.testing.assert_allclose(fast.odf, plain.odf, rtol=1e-3, atol=1e-4)
        np.testing.assert_allclose(
            fast.bands, plain.bands, rtol=1e-3, atol=1e-3 * float(plain.bands.max()) + 1e-12
        )


def legato(sr: int, semitones: list[int], note_s: float = 0.25) -> np.ndarray:
    """A tone stepping between notes without attacks (continuous phase): [n] float32."""
    seg = int(note_s * sr)
    f = np.concatenate([np.full(seg, 220.0 * 2 ** (n / 12)) for n in semitones])
    ph = 2 * np.pi * np.cumsum(f) / sr
    return (0.3 * np.sin(ph) + 0.15 * np.sin(2 * ph) + 0.1 * np.sin(3 * ph)).astype(np.float32)


@pytest.mark.parametrize("width,most", [(2, 3), (1, None)])
def test_legato_steps_of_a_tone_are_not_onsets_but_hits_are(width, most):
    # The onset channel compares each filter with the largest of its ±2 neighbours a moment
    # before, so a note moving by up to a whole tone without an attack adds no flux; the ±1
    # filter of the other channels lets most of those steps through.
    sr, hop = 44100, 256
    x = legato(sr, [0, 2, 4, 2, 0, 2, 4, 5, 4, 2] * 2)  # 19 note changes in 5 s
    an = HopAnalyzer(sr, hop, onset_width=width)
    pp = PeakPicker(sr / hop, 0.03, 1.75, 0.3, 0.05)
    fired = 0
    for k in range(len(x) // hop):
        an.process(x[k * hop : (k + 1) * hop])
        fired += pp.process(an.onset_odf) and k * hop > 0.1 * sr  # (the tone's start counts)
    if most is not None:
        assert fired <= most
    else:
        assert fired >= 8  # what the wider filter removes
    if width == 2:  # drum hits on top of the line still come through, on time
        times = [0.6, 1.4, 2.2, 3.1, 4.3]
        _, events, _ = stream(x + clicks(sr, times, len(x) / sr), sr, hop)
        got = onset_times(events)
        got = got[got > 0.1]
        near = np.abs(got[:, None] - np.array(times)[None, :]) < 0.02  # [detections, hits]
        assert near.any(axis=0).all(), got  # every hit found within 20 ms
        assert (~near.any(axis=1)).sum() <= most, got  # few extras from the 19 note changes


@pytest.mark.parametrize("peak_rel", [0.0, 0.7])
def test_peak_relative_picker_skips_weaker_bumps_and_ignores_an_outlier(peak_rel):
    # a band function: one huge value (the first hop after silence), then hits of 2.0 every
    # 20 hops with bumps of 0.9 between them (bass notes in the kick band, say)
    v = np.zeros(800)
    v[0] = 50.0
    hits = np.arange(40, 800, 20)
    v[hits] = 2.0
    v[hits[:-1] + 10] = 0.9
    pp = PeakPicker(187.5, delta=0.5, ratio=1.5, mean_s=0.1, peak_rel=peak_rel)
    fired = np.nonzero([pp.process(float(x)) for x in v])[0]
    fired = fired[fired > 0]
    if peak_rel:  # the bumps are judged against the hits' median peak: only hits fire
        late = fired[fired > 200]  # (after the first 8 hits have set the median)
        assert set(late) == set(hits[hits > 200])
        assert set(hits) <= set(fired)  # the outlier did not hide the first hits
    else:  # a fixed delta lets the bumps through
        assert len(fired) > 1.8 * len(hits)


@pytest.mark.parametrize(
    "sr,hop", [(44100, 64), (44100, 256), (48000, 128), (88200, 256), (96000, 64), (96000, 256)]
)
def test_flux_compares_with_a_frame_about_6ms_back_at_any_rate(sr, hop):
    # the flux must span about one 256-sample hop at 44.1 kHz (5.8 ms) whatever the rate and
    # hop: at 96 kHz a one-hop lag of 2.7 ms between 21 ms frames left half the flux
    an = HopAnalyzer(sr, hop)
    span_ms = 1000.0 * an.flux_lag * hop / sr
    assert max(4.0, 1000.0 * hop / sr) <= span_ms <= max(8.0, 1000.0 * hop / sr), span_ms


def test_no_mid_event_while_the_first_frame_fills():
    """A stream that starts inside the music (noise and a chord from its first sample): the
    analysis frame rises out of its zero start over n_fft / hop hops, which is no hit; it
    fired the mid band on the first hop of every eval file."""
    sr, hop = 44100, 256
    rng = np.random.default_rng(0)
    t = np.arange(sr) / sr
    x = 0.1 * rng.standard_normal(sr) + 0.3 * np.sin(2 * np.pi * 261.6 * t)
    fx, events, _ = stream(x.astype(np.float32), sr, hop)
    assert not [k for k, _ in events if k == "mid"]
    assert fx.hops > fx._fill_hops


def test_published_features_are_in_field_order():
    """_publish builds AudioFeatures positionally (cheaper): each value is its named field."""
    from vj.audio.source import demo_track

    sr, hop = 44100, 256
    fx = FeatureExtractor(sr, hop=hop)
    x = demo_track(sr, seconds=6.0)[:, 0].copy()
    t = 0
    for k in range(len(x) // hop):
        t = (k + 1) * 5_804_988
        f = fx.process(x[k * hop : (k + 1) * hop], t)
    st, src = fx.arbiter.current(t)
    assert st is not None and f.beat_count > 0 and f.onset_count > 0  # every field is live
    want = dict(
        t_capture_ns=t, block_index=fx.hops, sample_rate=sr, rms=fx._rms,
        centroid=fx.analyzer.centroid, flatness=fx.analyzer.flatness,
        onset_strength=fx.onset_strength, onset_count=fx.onset_count,
        band_onset_counts=tuple(fx.band_onset_counts), beat_count=fx.beat_count,
        bpm=st.bpm, beat_phase=st.beat_phase, bar_position=st.bar_position, tempo_source=src,
    )  # fmt: skip
    got = f._asdict()
    assert {k: got[k] for k in want} == want
    assert np.array_equal(got["bands"], fx._frozen_bands()) and got["t_publish_ns"] > 0
