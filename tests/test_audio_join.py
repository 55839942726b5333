"""A stream that starts inside the music (vj started while a set plays, or a file cut on the
one): the analysis window filling at the start is no hit for the beat tracker; the music start
for the bar is the first sample of a file, but not of a live input that joined the song."""

from __future__ import annotations

import numpy as np
import pytest

from tests.audio_helpers import kick_snare, stream
from vj.audio.source import demo_track
from vj.audio.stream import FeatureExtractor

SR = 44100


def _beats(x: np.ndarray, live: bool = False) -> tuple[np.ndarray, list]:
    """(beat times s, [AudioFeatures]) of x through the product's analysis, hop 256."""
    _, events, feats = stream(x, SR, 256, live=live)
    return np.array([t / 1e9 for kind, t in events if kind == "beat"]), feats


@pytest.mark.parametrize("bpm,offset", [(124.0, 0.13), (124.0, 1.13), (96.0, 0.13), (96.0, 1.13)])
def test_joining_mid_song_the_grid_is_on_the_beat_from_2s(bpm, offset):
    """The window rising out of zeros gave the tracker a spike 5-30x a real hit, at whatever
    phase the stream joined, and it led the grid: before, 0.53-0.82 of these beats after 2 s
    were on the beat; now all."""
    x = demo_track(SR, seconds=12.0 + offset, bpm=bpm)[:, 0]
    beats, _ = _beats(x[int(offset * SR) :].astype(np.float32))
    late = beats[beats > 2.0]
    assert len(late) >= 0.9 * (10.0 * bpm / 60.0)
    err = ((late + offset) * bpm / 60.0 + 0.5) % 1.0 - 0.5  # phase error, in beats
    assert np.mean(np.abs(err) < 0.1) >= 0.95, np.round(err, 2)


def test_music_from_the_first_sample_still_starts_the_bar_there():
    """A file cut on the one (every eval recording): its first hop is sound, so the bar's start
    prior takes the stream's start as beat 1 although the tracker skips the filling window."""
    bpm = 120.0
    x, _ = kick_snare(SR, bpm, 20.3, 0)
    y = x[int(0.3 * SR) :]  # the pattern's first kick at sample 0
    _, feats = _beats(y)
    downs = [
        nxt.t_capture_ns / 1e9
        for f, nxt in zip(feats, feats[1:], strict=False)
        if nxt.beat_count > f.beat_count and nxt.bar_position < 1.0
    ]
    late = np.array([t for t in downs if t > 10.0])
    assert len(late) >= 3
    pos = late * bpm / 60.0  # beats since the first kick
    assert np.all(np.abs(pos - np.round(pos)) < 0.15), pos
    assert np.all(np.round(pos) % 4 == 0), pos


def test_silence_before_the_first_music_is_not_tempo_history():
    """vj listening before the music starts: the tempo estimate reads nothing before the first
    onset (with those seconds of zeros in its window, the first estimates rested on less music
    than they seemed to: real stems after 2 s of silence, beat F 0.961 -> 0.980, downbeat
    0.769 -> 0.815; mixes 0.981 -> 1.000 and 0.710 -> 0.921). A later pause keeps the history:
    a breakdown rarely changes the tempo."""
    x = demo_track(SR, seconds=8.0, bpm=124.0)[:, 0].astype(np.float32)
    silence = np.zeros(3 * SR, np.float32)
    fx = FeatureExtractor(SR, hop=256)
    tr = fx.tracker
    y = np.concatenate([silence, x, silence, x])
    first = None
    for k in range(len(y) // 256):
        fx.process(y[k * 256 : (k + 1) * 256], int(round((k + 1) * 256 * 1e9 / SR)))
        if first is None and tr._music_start >= 0:
            first = tr._music_start
            assert tr._hist_from == first  # frames before the music are not read
            assert first >= 2.9 * tr.fr  # and it started after the 3 s of silence
    assert tr._music_start > first  # the second piece was a new start...
    assert tr._hist_from < tr._music_start  # ...whose history was kept
    assert abs(tr.bpm / 124.0 - 1.0) <= 0.02


def _with_cymbal(x: np.ndarray, times: list[float], seconds: float, gain: float) -> np.ndarray:
    """x with a cymbal-like ring (noise above 6 kHz, decaying over `seconds`) at each time."""
    from scipy.signal import butter, sosfilt

    rng = np.random.default_rng(7)
    t = np.arange(int(2.5 * SR)) / SR
    ring = sosfilt(butter(4, 6000, "highpass", fs=SR, output="sos"), rng.standard_normal(len(t)))
    ring *= gain * np.exp(-t / seconds) * (1 - np.exp(-t / 0.001))
    y = x.astype(np.float64).copy()
    for s in times:
        i = int(s * SR)
        m = max(0, min(len(t), len(y) - i))
        y[i : i + m] += ring[:m]
    return y.astype(np.float32)


def _downbeats(x: np.ndarray, live: bool = False) -> np.ndarray:
    """Times (s) of the beats after which the published bar is in beat 1."""
    _, feats = _beats(x, live)
    return np.array(
        [
            nxt.t_capture_ns / 1e9
            for f, nxt in zip(feats, feats[1:], strict=False)
            if nxt.beat_count > f.beat_count and nxt.bar_position < 1.0
        ]
    )


def _downbeat_positions(
    x: np.ndarray, first_down: float, bpm: float, after: float, live: bool = False
) -> np.ndarray:
    """Published downbeats after `after` s, in beats from the pattern's first true one, mod 4."""
    _, feats = _beats(x, live)
    downs = np.array(
        [
            nxt.t_capture_ns / 1e9
            for f, nxt in zip(feats, feats[1:], strict=False)
            if nxt.beat_count > f.beat_count and nxt.bar_position < 1.0
        ]
    )
    pos = (downs[downs > after] - first_down) * bpm / 60.0
    assert len(pos) >= 3 and np.all(np.abs(pos - np.round(pos)) < 0.2), pos
    return np.round(pos) % 4


def test_a_crash_on_the_one_settles_one_against_three():
    """Music that starts on beat 3 (or a stream that joins there) puts the bar's start prior on
    3, and kick-on-1-and-3 / snare-on-2-and-4 cannot say which of the two is the one. A crash
    ringing over the beat on the one of every fourth bar (bars.CRASH_RING_DB) can: without the
    crashes the bar stays on 3, with them it moves to 1. A shorter ring on the one of every bar
    (an open hat in the groove) is that slot's usual ring (bars.CRASH_NEW_DB) and moves
    nothing."""
    bpm = 120.0
    p = 60.0 / bpm
    x, first_down = kick_snare(SR, bpm, 40.0, 2)  # starts on beat 3
    assert set(_downbeat_positions(x, first_down, bpm, 25.0)) == {2.0}  # the prior: beat 3
    crashes = [first_down + 16 * p * k for k in range(1, 9)]  # the one, every 4 bars
    y = _with_cymbal(x, crashes, 1.5, 0.4)
    assert set(_downbeat_positions(y, first_down, bpm, 25.0)) == {0.0}
    hats = [first_down + 4 * p * k for k in range(19)]  # the one of every bar
    z = _with_cymbal(x, hats, 0.4, 0.4)
    assert set(_downbeat_positions(z, first_down, bpm, 25.0)) == {2.0}


def test_a_live_input_that_joins_mid_song_takes_no_start_prior():
    """A sound card joins whatever is playing (FeatureExtractor(live=True)): the beat it joined
    on is no beat 1, so the bar waits for the drums and crashes. Joined at four points of a
    groove with a crash on the one every 4 bars, the live bar is on the one from 0-14 s (mean
    4.6); read as a file cut there (the start prior on the joined beat), from 6-16 s (mean
    12.8). Music that starts after silence still gets the prior on a live input."""
    bpm = 120.0
    p = 60.0 / bpm
    x, first_down = kick_snare(SR, bpm, 40.0, 0)
    y = _with_cymbal(x, [first_down + 16 * p * k for k in range(10)], 1.5, 0.4)
    settled = {False: [], True: []}
    for beats_in in (2, 3, 6, 7):
        j = first_down + beats_in * p + 0.13  # mid-beat: sound is playing
        z = y[int(j * SR) :]
        for live in (False, True):
            downs = _downbeats(z, live)
            wrong = downs[np.round((downs + j - first_down) / p) % 4 != 0]
            settled[live].append(wrong[-1] if len(wrong) else 0.0)  # on the one after this
    assert all(a <= b for a, b in zip(settled[True], settled[False], strict=True)), settled
    assert np.mean(settled[True]) < np.mean(settled[False]) - 4.0, settled
    # starting after silence on beat 3, a live input keeps the prior there, as a file does
    x3, first3 = kick_snare(SR, bpm, 40.0, 2)
    assert set(_downbeat_positions(x3, first3, bpm, 25.0, live=True)) == {2.0}
