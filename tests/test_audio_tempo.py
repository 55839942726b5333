"""Beat tracker on synthetic music with known tempo: BPM within 2 % in 4 s, beats on time,
arbiter priority (tap tempo overrides the tracker), silence stops it."""

from __future__ import annotations

import numpy as np
import pytest

from vj.audio.stream import FeatureExtractor
from vj.tempo import TapTempo, TempoArbiter


def run(x: np.ndarray, sr: int, hop: int = 256, arbiter: TempoArbiter | None = None):
    fx = FeatureExtractor(sr, hop=hop, arbiter=arbiter)
    bpm = np.zeros(len(x) // hop)
    feats = []
    beats = []
    for k in range(len(x) // hop):
        t = int(round((k + 1) * hop * 1e9 / sr))
        feats.append(fx.process(x[k * hop : (k + 1) * hop], t))
        bpm[k] = fx.tracker.bpm
        beats += [tt / 1e9 for kind, tt in fx.drain_events() if kind == "beat"]
    return fx, bpm, np.array(beats), feats


@pytest.mark.parametrize("bpm", [96.0, 124.0, 140.0])
def test_tempo_locks_within_4s_and_beats_land_on_the_kicks(bpm):
    from vj.audio.source import demo_track

    sr, hop = 44100, 256
    seconds = 10.0
    x = demo_track(sr, seconds=seconds, bpm=bpm)[:, 0]
    fx, track, beats, feats = run(x, sr, hop)
    k4 = int(4.0 * sr / hop)
    assert np.all(np.abs(track[k4:] / bpm - 1) <= 0.02), track[k4::50]
    truth = np.arange(0, seconds, 60.0 / bpm)
    late = beats[beats > 4.0]
    assert len(late) >= 0.9 * np.sum(truth > 4.0)
    err = np.array([np.min(np.abs(truth - b)) for b in late])
    assert np.mean(err < 0.07) >= 0.9, err
    f = feats[-1]
    assert f.tempo_source == "tracker" and abs(f.bpm / bpm - 1) <= 0.02
    assert 0.0 <= f.beat_phase < 1.0 and 0.0 <= f.bar_position < 4.0


def test_tracker_is_lowest_priority_and_tap_overrides_it():
    from vj.audio.source import demo_track

    sr = 44100
    tap = TapTempo()
    arb = TempoArbiter([tap])
    fx = FeatureExtractor(sr, arbiter=arb)
    assert arb.names == ["tap", "tracker"]
    x = demo_track(sr, seconds=6.0, bpm=120.0)[:, 0]
    for k in range(len(x) // 256):
        f = fx.process(x[k * 256 : (k + 1) * 256], int((k + 1) * 256 * 1e9 / sr))
    assert f.tempo_source == "tracker"
    t = f.t_capture_ns
    for i in range(4):
        tap.tap(t - int((3 - i) * 0.6e9))  # 100 BPM
    f = fx.process(x[:256], t + 5_000_000)
    assert f.tempo_source == "tap" and abs(f.bpm - 100.0) < 0.5


def test_silence_stops_the_beat():
    from vj.audio.source import demo_track

    sr = 44100
    x = np.concatenate([demo_track(sr, seconds=6.0, bpm=120.0)[:, 0], np.zeros(4 * sr, np.float32)])
    fx, track, beats, feats = run(x, sr)
    assert len(beats[beats < 6.0]) >= 6
    assert len(beats[beats > 8.5]) == 0
    assert feats[-1].tempo_source == "none" and feats[-1].bpm == 0.0


def test_tracker_runs_at_any_hop():
    from vj.audio.source import demo_track

    for sr, hop in [(96000, 128), (44100, 1024)]:
        x = demo_track(sr, seconds=8.0, bpm=120.0)[:, 0]
        fx, track, beats, _ = run(x, sr, hop)
        assert abs(track[-1] / 120.0 - 1) <= 0.03, (sr, hop, track[-1])
        assert len(beats) >= 8


def test_beat_count_follows_the_active_tempo_source():
    """With tap tempo active, beats come from the taps (120 BPM), not from the audio tracker."""
    import numpy as np

    from vj.audio.stream import FeatureExtractor
    from vj.tempo import TapTempo, TempoArbiter

    sr, hop = 48000, 256
    tap = TapTempo()
    x = FeatureExtractor(sr, hop, arbiter=TempoArbiter([tap]))
    t0 = 1_000_000_000
    for i in range(4):
        tap.tap(t0 + i * 500_000_000)
    # 3.1 s of silence after the last tap: 6 tap beats, no audio beats at all
    block = np.zeros(hop, np.float32)
    start = x.beat_count
    t_last = t0 + 3 * 500_000_000
    n = int(3.1 * sr / hop)
    for k in range(1, n + 1):
        f = x.process(block, t_last + k * hop * 1_000_000_000 // sr)
    assert f.tempo_source == "tap"
    assert f.bpm == pytest.approx(120.0)
    assert f.beat_count - start == 6
