"""Beat tracker on synthetic music with known tempo: BPM within 2 % in 4 s, beats on time,
arbiter priority (tap tempo overrides the tracker), silence stops it."""

from __future__ import annotations

import numpy as np
import pytest

from tests.audio_helpers import kick_snare
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


# --- the tracker alone, on synthetic onset-strength sequences ---------------------------------


def _train(events: list[tuple[float, float]], n_hops: int, rate: float) -> np.ndarray:
    """[n_hops] onset strength per hop: each (t s, strength) event a peak that decays in 12 ms,
    seen first in the hop that ends at or after t (hop k ends at (k + 1) / rate)."""
    out = np.zeros(n_hops)
    t_end = (np.arange(n_hops) + 1) / rate
    for t, s in events:
        k0 = max(0, int(np.ceil(t * rate - 1e-9)) - 1)
        k1 = min(n_hops, k0 + int(0.08 * rate) + 2)
        dt = t_end[k0:k1] - t
        np.maximum(
            out[k0:k1], np.where(dt >= 0, s * np.exp(-np.abs(dt) / 0.012), 0.0), out=out[k0:k1]
        )
    return out


def _syncopated(bpm: float, seconds: float, rate: float) -> tuple[np.ndarray, np.ndarray]:
    """A bar whose loudest hits (kick on 2.5, snare on 3.5 and 4.5) fall between the beats,
    with the cymbal on the beats: (all-band onset strength, high-band onset strength)."""
    beat = 60.0 / bpm
    bar = [
        (0, 0.6, 0.4),
        (1, 0.6, 0.4),
        (1.5, 1.0, 0.1),
        (2, 0.5, 0.4),
        (2.5, 1.0, 0.1),
        (3, 0.4, 0.4),
        (3.5, 0.8, 0.1),
    ]  # (beat in bar, all-band, high band)
    starts = np.arange(0.0, seconds, 4 * beat)
    hits = [(t0 + pos * beat, a, h) for t0 in starts for pos, a, h in bar]
    hits = [e for e in hits if e[0] < seconds]
    n = int(seconds * rate)
    return _train([(t, a) for t, a, _ in hits], n, rate), _train(
        [(t, h) for t, _, h in hits], n, rate
    )


def _feed(tr, value: np.ndarray, accent: np.ndarray, rate: float) -> np.ndarray:
    beats = []
    for k, (v, a) in enumerate(zip(value.tolist(), accent.tolist(), strict=True)):
        t = int(round((k + 1) / rate * 1e9))
        if tr.process(v, t, a):
            beats.append(t / 1e9)
    return np.array(beats)


def _feed_bpm(tr, value: np.ndarray, rate: float) -> tuple[np.ndarray, list[float]]:
    """`_feed` without an accent, also returning the tracker's BPM after every hop."""
    beats, bpms = [], []
    for k, v in enumerate(value.tolist()):
        t = int(round((k + 1) / rate * 1e9))
        if tr.process(v, t, 0.0):
            beats.append(t / 1e9)
        bpms.append(tr.bpm)
    return np.array(beats), bpms


def _beat_error(times: np.ndarray, bpm: float) -> np.ndarray:
    """Signed distance (s) of each time to the nearest beat of a grid starting at 0."""
    beat = 60.0 / bpm
    return (times + beat / 2) % beat - beat / 2


@pytest.mark.parametrize("sr,hop", [(44100, 256), (96000, 64), (48000, 1024)])
def test_syncopated_pattern_follows_the_accent_onto_the_beat(sr, hop):
    """The loudest hits are off the beat; the high-band accent puts the grid on it. Without the
    accent the same tracker sits between the beats (so the accent is what decides)."""
    from vj.audio.tempo import BeatTracker

    rate, bpm = sr / hop, 110.0
    value, accent = _syncopated(bpm, 14.0, rate)
    for weight, on_beat in ((4.0, True), (0.0, False)):
        tr = BeatTracker(rate, accent_weight=weight)
        beats = _feed(tr, value, accent, rate)
        assert abs(tr.bpm / bpm - 1) <= 0.02, (weight, tr.bpm)
        err = _beat_error(beats[beats > 5.0], bpm)
        assert len(err) >= 15
        frac_on = np.mean(np.abs(err) < 0.07)
        assert (frac_on == 1.0) if on_beat else (frac_on == 0.0), (weight, err)


@pytest.mark.parametrize("sr,hop", [(44100, 256), (48000, 1024)])
def test_phase_flip_moves_the_grid_and_stays(sr, hop):
    """Locked between the beats (no accent for 6 s), then the accent comes: the grid moves half
    a beat once, within ~3 s, and stays on the beat."""
    from vj.audio.tempo import BeatTracker

    rate, bpm = sr / hop, 110.0
    value, accent = _syncopated(bpm, 24.0, rate)
    accent[: int(6.0 * rate)] = 0.0
    tr = BeatTracker(rate)
    beats = _feed(tr, value, accent, rate)
    err = _beat_error(beats, bpm)
    before = np.abs(err[(beats > 3.0) & (beats < 6.0)])
    after = np.abs(err[beats > 9.5])
    assert len(before) >= 4 and np.all(before > 0.2), before  # off the beat at first
    assert len(after) >= 25 and np.all(after < 0.07), after  # on it from then on
    assert tr.phase_shifts == 1


def test_beats_fire_in_their_hop_not_at_frame_ends():
    """At 96 kHz / 64 a frame is 15 hops: beats still land within half a frame of the clicks,
    in many different hops of the frame (a countdown per hop, not a frame-quantised grid)."""
    from vj.audio.tempo import BeatTracker

    sr, hop, bpm = 96000, 64, 123.0
    rate = sr / hop
    clicks = [(t, 1.0) for t in np.arange(0.0, 14.0, 60.0 / bpm)]
    value = _train(clicks, int(14.0 * rate), rate)
    tr = BeatTracker(rate, lead_s=0.0)
    assert tr.decim >= 3
    beats = _feed(tr, value, np.zeros_like(value), rate)
    late = beats[beats > 4.0]
    assert len(late) >= 18
    frame_s = tr.decim / rate
    assert np.max(np.abs(_beat_error(late, bpm))) <= 0.5 * frame_s, _beat_error(late, bpm)
    residues = {int(round(t * rate)) % tr.decim for t in late}
    assert len(residues) >= 3, residues


@pytest.mark.parametrize("bpm", [84.0, 110.0, 132.0, 150.0])
def test_tempo_locks_within_4s_with_eighth_note_hats(bpm):
    """Kick and snare on the beats, quieter hats on the eighths: BPM within 2 % from 4 s on."""
    from vj.audio.tempo import BeatTracker

    sr, hop = 44100, 256
    rate = sr / hop
    beat = 60.0 / bpm
    hits = [(t, 1.0) for t in np.arange(0.0, 10.0, beat)]
    hits += [(t + beat / 2, 0.35) for t in np.arange(0.0, 10.0 - beat / 2, beat)]
    value = _train(hits, int(10.0 * rate), rate)
    tr = BeatTracker(rate)
    k4 = int(4.0 * rate)
    bpms = []
    for k, v in enumerate(value.tolist()):
        tr.process(v, int(round((k + 1) / rate * 1e9)), 0.0)
        if k >= k4:
            bpms.append(tr.bpm)
    assert np.all(np.abs(np.array(bpms) / bpm - 1) <= 0.02), (bpm, min(bpms), max(bpms))


@pytest.mark.parametrize("bpm", [143.0, 150.0, 167.0])
@pytest.mark.parametrize("pulse_cap", [2.5, 0.0])
def test_no_beat_where_nothing_plays_under_accents_every_three_pulses(bpm, pulse_cap):
    """A soft, slightly uneven pulse with a loud accent on every third one: the beat is the
    pulse. Without the cap on the 2-beat term (pulse_cap=0) the tracker read 1.5 pulses (2/3
    tempo), a lag at which nothing plays, carried by the accents' period at twice it."""
    from vj.audio.tempo import BeatTracker

    sr, hop = 44100, 256
    rate = sr / hop
    rng = np.random.default_rng(0)
    pulse = 60.0 / bpm
    hits = [
        (t, 1.0) if i % 3 == 0 else (t + rng.normal(0.0, 0.012), 0.1)
        for i, t in enumerate(np.arange(0.0, 16.0, pulse))
    ]
    value = _train(hits, int(16.0 * rate), rate)
    tr = BeatTracker(rate, pulse_cap=pulse_cap)
    bpms = []
    for k, v in enumerate(value.tolist()):
        tr.process(v, int(round((k + 1) / rate * 1e9)), 0.0)
        bpms.append(tr.bpm)
    after = np.array(bpms[int(4.0 * rate) :])
    ok = bool(np.all(np.abs(after / bpm - 1.0) <= 0.02))
    assert ok == (pulse_cap > 0), (after.min(), after.max())


@pytest.mark.parametrize("early_phase_s", [4.0, 0.0])
def test_first_grid_takes_the_best_phase_after_a_syncopated_start(early_phase_s):
    """Kick and hats on the beats at 120 BPM, two loud pushes 0.7 beat after beats 3 and 4
    just before the first tempo estimate: the dynamic programme's first grid leans on them.
    In the first early_phase_s each check takes the best phase at once: on the beat from
    2.5 s; without (early_phase_s=0) the grid was off until 4.4 s."""
    from vj.audio.tempo import BeatTracker

    sr, hop, bpm = 44100, 256, 120.0
    rate, beat = sr / hop, 60.0 / bpm
    on = np.arange(0.0, 12.0, beat)
    hits = [(t, 0.5) for t in on] + [(t + beat / 2, 0.2) for t in on]
    hits += [(2.7 * beat, 1.5), (3.7 * beat, 1.5)]
    n = int(12.0 * rate)
    value = _train(hits, n, rate)
    accent = _train([(t, 0.3) for t in on], n, rate)
    beats = _feed(BeatTracker(rate, early_phase_s=early_phase_s), value, accent, rate)
    err = np.abs(_beat_error(beats[beats > 2.5], bpm))
    assert np.all(err < 0.07) == (early_phase_s > 0), err


def test_same_beats_at_minus_24_db():
    """Level independence: the demo track at -24 dB gives the same beats (within 2 hops)."""
    from vj.audio.source import demo_track

    sr, hop = 44100, 256
    x = demo_track(sr, seconds=12.0, bpm=128.0)[:, 0]
    _, _, loud, _ = run(x, sr, hop)
    _, _, quiet, _ = run(x * np.float32(10 ** (-24 / 20)), sr, hop)
    loud, quiet = loud[loud > 4.0], quiet[quiet > 4.0]
    assert len(loud) >= 16 and abs(len(loud) - len(quiet)) <= 1
    assert max(np.min(np.abs(quiet - t)) for t in loud) <= 2 * hop / sr + 1e-6


def test_fast_dp_step_and_projection_match_plain_loops():
    """The vectorised score update and the strided one-period projection against plain loops
    over the transition weights w(lag) = exp(-(tightness * ln(lag / p))² / 2), p/2 ≤ lag ≤ 2p."""
    import math

    from vj.audio.tempo import BeatTracker

    rng = np.random.default_rng(3)
    tr = BeatTracker(44100 / 256)
    tr._update_every = 1 << 30  # keep the period fixed
    p = 47.3
    tr._set_period(p)
    lo, hi = tr._wlo, tr._whi

    def w(lag: int) -> float:
        return math.exp(-0.5 * (tr._tight * math.log(lag / p)) ** 2) if lo <= lag <= hi else 0.0

    for v in rng.random(400).tolist():
        before = tr._cs.copy()
        tr._frame_step(v)
        # newest score = 0.2 v + 0.8 max over lags of w(lag) * score lag frames back
        best = max(w(lag) * before[len(before) - lag] for lag in range(lo, hi + 1))
        assert tr._cs[-1] == pytest.approx(0.2 * v + 0.8 * best, rel=1e-5)
        assert np.array_equal(tr._cs[:-1], before[1:])
    tr._cs[:] = rng.random(len(tr._cs))
    tr._predict(tr._frame, None)  # builds the projection for this period
    proj = tr._project()
    cs, k = tr._cs, hi
    for j in range(len(proj)):  # future frame t + 1 + j is j + 1 + (k - 1 - i) after cs[-k + i]
        ref = max(w(j + k - i) * float(cs[len(cs) - k + i]) for i in range(k))
        assert proj[j] == pytest.approx(ref, rel=1e-5, abs=1e-12)


@pytest.mark.parametrize("sr,hop", [(44100, 256), (48000, 512)])
def test_tempo_change_moves_tempo_and_grid(sr, hop):
    """100 BPM, then at 8 s 132 BPM on a new phase: within 8 s the tracker has the new tempo
    and its beats sit on the new grid (the old grid's phase is dropped, not carried over)."""
    from vj.audio.tempo import BeatTracker

    rate = sr / hop
    t0, bpm = 8.23, 132.0
    hits = [(t, 1.0) for t in np.arange(0.0, 8.0, 0.6)]
    hits += [(t, 1.0) for t in np.arange(t0, 24.0, 60.0 / bpm)]
    hits += [(t + 30.0 / bpm, 0.3) for t in np.arange(t0, 24.0, 60.0 / bpm)]  # off-beat hats
    value = _train(hits, int(24.0 * rate), rate)
    tr = BeatTracker(rate)
    beats = _feed(tr, value, np.zeros_like(value), rate)
    assert abs(tr.bpm / bpm - 1) <= 0.02
    late = beats[beats > 16.0]
    assert len(late) >= 15
    assert np.all(np.abs(_beat_error(late - t0, bpm)) < 0.07), _beat_error(late - t0, bpm)


@pytest.mark.parametrize("first_beat", [0, 1])
def test_bar_position_puts_beat_one_on_a_kick_also_after_a_pickup(first_beat):
    """bar_position counts from a downbeat the drums vote for: starting on the one it stays
    there; starting on the snare of beat 2 (a pickup the start prior gets wrong), the
    kick/snare parity moves beat 1 onto a kick."""
    sr, bpm, seconds = 44100, 120.0, 20.0
    x, first_down = kick_snare(sr, bpm, seconds, first_beat)
    fx, _, beats, feats = run(x, sr)
    downs = []
    for f, nxt in zip(feats, feats[1:], strict=False):
        if nxt.beat_count > f.beat_count and nxt.bar_position < 1.0:
            downs.append(nxt.t_capture_ns / 1e9)
    downs = np.array(downs)
    late = downs[downs > 10.0]
    assert len(late) >= 3
    p = 60.0 / bpm
    # every late downbeat is on a kick (an even beat of the pattern), one bar apart
    pos = (late - 0.3 + first_beat * p) / p  # beats since the pattern's (virtual) beat 1
    assert np.all(np.abs(pos - np.round(pos)) < 0.15), pos
    assert np.all(np.round(pos) % 2 == 0), pos
    assert np.allclose(np.diff(late), 4 * p, atol=0.08)
    if first_beat == 0:  # started on the one: the bar starts there
        assert np.all(np.round(pos) % 4 == 0), pos


def _clicks_with_hats(segments: list[tuple[float, float, float]], rate: float) -> np.ndarray:
    """Kick on every beat and a hat at 0.35 on every eighth, for each (start s, end s, BPM)."""
    hits = []
    for t0, t1, bpm in segments:
        beat = 60.0 / bpm
        hits += [(t, 1.0) for t in np.arange(t0, t1 - 1e-9, beat)]
        hits += [(t + beat / 2, 0.35) for t in np.arange(t0, t1 - beat / 2, beat)]
    return _train(hits, int(segments[-1][1] * rate), rate)


@pytest.mark.parametrize("sr,hop", [(44100, 256), (96000, 64), (48000, 512)])
@pytest.mark.parametrize(
    "bpm_a,bpm_b,grid_s,tempo_s",
    [(120.0, 150.0, 3.0, 4.0), (150.0, 109.0, 3.0, 4.0), (124.0, 128.0, 2.0, 5.0)],
)
def test_abrupt_tempo_change_is_followed_within_seconds(
    sr, hop, bpm_a, bpm_b, grid_s, tempo_s, short_s=2.5
):
    """A cut mid-beat from one tempo to another (a jump, or a DJ's +3.2 %): from grid_s after
    the cut every beat is on the new grid (±70 ms, one per period) and the BPM is within 2 % of
    the new tempo from tempo_s on. With the 12 s estimate alone (short_s=0) the jumps took
    5–7 s and the BPM of the DJ change 8 s; the short-window hypotheses
    (BeatTracker._follow_short) are what take over."""
    from vj.audio.tempo import BeatTracker

    rate = sr / hop
    t0 = 12.0 + 0.37 * 60.0 / bpm_a  # off the old grid
    value = _clicks_with_hats([(0.0, t0, bpm_a), (t0, t0 + 12.0, bpm_b)], rate)
    tr = BeatTracker(rate, short_s=short_s)
    beats, bpms = _feed_bpm(tr, value, rate)
    late = beats[(beats > t0 + grid_s) & (beats < t0 + 11.0)]
    err = _beat_error(late - t0, bpm_b)
    assert np.all(np.abs(err) < 0.07), err
    assert np.allclose(np.diff(late), 60.0 / bpm_b, atol=0.07), np.diff(late)  # none extra
    after = np.array(bpms[int((t0 + tempo_s) * rate) :])
    assert np.all(np.abs(after / bpm_b - 1.0) <= 0.02), (after.min(), after.max())
    assert tr.tempo_switches == 1


@pytest.mark.parametrize("sr,hop", [(44100, 256), (96000, 64), (48000, 512)])
@pytest.mark.parametrize("bpm_a", [150.0, 160.0])
@pytest.mark.parametrize("jump_phase_beats", [2, 3])
def test_halving_tempo_moves_the_grid_onto_the_new_beats(sr, hop, bpm_a, jump_phase_beats):
    """Kicks at bpm_a, then from a cut off the old grid at half the tempo: from 2.5 s after the
    cut every beat is on the new grid (one per period) and the BPM within 2 %. The jump's
    phase check combs the 2.5 s window, two beats at the new tempo; when it wanted three
    (jump_phase_beats=3) it did not run, and the grid kept the old tempo's phase for 3-7 s."""
    from vj.audio.tempo import BeatTracker

    rate = sr / hop
    bpm_b = bpm_a / 2
    t0 = 12.0 + 0.37 * 60.0 / bpm_a  # off the old grid
    hits = [(t, 1.0) for t in np.arange(0.0, t0, 60.0 / bpm_a)]
    hits += [(t, 1.0) for t in np.arange(t0, t0 + 12.0, 60.0 / bpm_b)]
    value = _train(hits, int((t0 + 12.0) * rate), rate)
    tr = BeatTracker(rate, jump_phase_beats=jump_phase_beats)
    beats, bpms = _feed_bpm(tr, value, rate)
    late = beats[(beats > t0 + 2.5) & (beats < t0 + 11.0)]
    err = _beat_error(late - t0, bpm_b)
    # on the new grid (±50 ms: it lands within 15 ms), and one beat per period (none extra)
    ok = bool(np.all(np.abs(err) < 0.05) and np.allclose(np.diff(late), 60.0 / bpm_b, atol=0.07))
    assert ok == (jump_phase_beats == 2), (err, np.diff(late))
    after = np.array(bpms[int((t0 + 2.5) * rate) :])
    assert np.all(np.abs(after / bpm_b - 1.0) <= 0.02), (after.min(), after.max())


@pytest.mark.parametrize("bpm", [72.0, 80.0])
def test_sparse_groove_with_fills_never_switches_tempo(bpm):
    """Quarter-note kick and snare, nothing between the beats, and every fourth bar a fill of
    eighths: the tempo stays put. The first 2 s of such a fill are the onsets of a cut to twice
    the tempo, which is why a double is not taken from the 2 s window (docs/audio.md, third
    pass: a check that did followed a real double in 1.7 s but doubled on every fill here)."""
    from vj.audio.tempo import BeatTracker

    rate = 44100 / 256
    beat, seconds = 60.0 / bpm, 40.0
    hits = []
    for i, t in enumerate(np.arange(0.0, seconds, beat)):
        if (i // 4) % 4 == 3:
            hits += [(t, 0.8), (t + beat / 2, 0.8)]
        else:
            hits.append((t, 1.0 if i % 2 == 0 else 0.9))
    value = _train(hits, int(seconds * rate), rate)
    tr = BeatTracker(rate)
    bpms = []
    for k, v in enumerate(value.tolist()):
        tr.process(v, int(round((k + 1) / rate * 1e9)), 0.0)
        bpms.append(tr.bpm)
    assert tr.tempo_switches == 0
    after = np.array(bpms[int(4.0 * rate) :])
    assert np.all(np.abs(after / bpm - 1.0) <= 0.02), (after.min(), after.max())


def test_steady_syncopated_music_never_switches_tempo():
    """Guard against false switches: 40 s of the syncopated bar (loud hits between the beats)
    at a steady tempo: the short-window hypothesis never takes over, the BPM stays put."""
    from vj.audio.tempo import BeatTracker

    sr, hop = 44100, 256
    rate = sr / hop
    value, accent = _syncopated(104.0, 40.0, rate)
    tr = BeatTracker(rate)
    bpms = []
    for k, (v, a) in enumerate(zip(value.tolist(), accent.tolist(), strict=True)):
        tr.process(v, int(round((k + 1) / rate * 1e9)), a)
        bpms.append(tr.bpm)
    assert tr.tempo_switches == 0
    after = np.array(bpms[int(4.0 * rate) :])
    assert np.all(np.abs(after / 104.0 - 1.0) <= 0.02), (after.min(), after.max())


def test_show_tracker_tempo_keeps_the_analysis_bar_not_the_beat_count():
    """FeatureTempo (the tracker as the Show sees it) runs the bar on from each block's
    bar_position: after a pickup the drums move beat 1, and the Show's bar moves with it
    (beat_count mod 4 would keep the pickup's bar). The piece starts on beat 3, where the
    analysis bar and the beat count part (from a start on beat 2 they now agree after 10 s:
    the bar's kick cue reads kick events only)."""
    from vj.tempo import FeatureTempo

    sr, bpm = 44100, 120.0
    x, _ = kick_snare(sr, bpm, 20.0, 2)
    _, _, _, feats = run(x, sr)
    ft = FeatureTempo()
    moved = 0
    for f, nxt in zip(feats, feats[1:], strict=False):
        ft.update(f)
        if f.t_capture_ns < 10e9 or f.tempo_source != "tracker" or nxt.beat_count != f.beat_count:
            continue
        st = ft.state(nxt.t_capture_ns)  # extrapolated one block on, within the same beat
        d = (st.bar_position - nxt.bar_position + 2.0) % 4.0 - 2.0
        assert abs(d) < 0.02, (st.bar_position, nxt.bar_position)
        moved += int(f.bar_position // 1) != (f.beat_count - 1) % 4
    assert moved > 0  # the bar is not the beat count's: this checks something
