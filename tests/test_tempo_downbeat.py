"""The player's downbeat press ("this is the one"): it moves the tracker's and the tap's bar
to the beat nearest the press, keeps their tempo and beat grid, and is forgotten in a pause."""

from __future__ import annotations

import pytest

from tests.audio_helpers import kick_snare, stream
from vj.audio.features import AudioFeatures
from vj.tempo import FeatureTempo, TapTempo

S = 1_000_000_000


def _analysed(seconds: float = 14.0, bpm: float = 120.0):
    """Kick/snare bars through the real analysis: [AudioFeatures] per 256-sample block."""
    sr = 44100
    x, _ = kick_snare(sr, bpm, seconds, 0)
    return stream(x, sr, 256)[2]


def _wrap(d: float) -> float:
    return (d + 2.0) % 4.0 - 2.0


@pytest.mark.parametrize("late_beats", [0.15, -0.4])
def test_a_press_on_beat_three_makes_it_the_one_and_keeps_the_beat(late_beats):
    feats = _analysed()
    ft, plain = FeatureTempo(), FeatureTempo()
    pressed_at = None
    for f in feats:
        ft.update(f)
        plain.update(f)
        if pressed_at is None and f.t_capture_ns > 8 * S and f.tempo_source == "tracker":
            if 2.0 <= f.bar_position < 2.1:  # the analysis says: beat 3 has just begun
                period = 60e9 / f.bpm
                t = f.t_capture_ns + int(late_beats * period)  # a press a little off the beat
                assert ft.downbeat(t)
                pressed_at = f.t_capture_ns
        if pressed_at is None or f.t_capture_ns <= pressed_at:
            continue
        st, ref = ft.state(f.t_capture_ns), plain.state(f.t_capture_ns)
        # the bar moved by two beats; tempo, beat count and phase are the tracker's
        assert abs(_wrap(st.bar_position - ref.bar_position + 2.0)) < 0.02
        assert (st.bpm, st.beat_count) == (ref.bpm, ref.beat_count)
        assert st.beat_phase == pytest.approx(ref.beat_phase)
    assert pressed_at is not None


def test_the_press_is_forgotten_when_the_tracker_goes_quiet():
    feats = _analysed(10.0)
    ft = FeatureTempo()
    for f in feats:
        ft.update(f)
    last = feats[-1]
    t = last.t_capture_ns
    assert ft.downbeat(t)
    assert abs(_wrap(ft.state(t).bar_position)) <= 0.5  # t is within half a beat of the one
    ft.update(AudioFeatures(t_capture_ns=t + 3 * S))  # a pause: no tempo
    assert ft.state(t + 3 * S) is None
    assert not ft.downbeat(t + 3 * S)  # nothing to mark
    ft.update(last._replace(t_capture_ns=t + 4 * S))  # the music is back
    assert ft.state(t + 4 * S).bar_position == pytest.approx(last.bar_position)


def test_a_press_moves_the_tapped_bar_and_keeps_the_tapped_tempo():
    tap = TapTempo()
    assert not tap.downbeat(0)  # before two taps: no grid
    t0 = 10 * S
    for i in range(4):
        tap.tap(t0 + i * 600_000_000)  # 100 BPM, the first tap is beat 1
    t_third = t0 + 2 * 600_000_000  # the third tap: beat 3
    assert tap.state(t_third).bar_position == pytest.approx(2.0)
    assert tap.downbeat(t_third + 50_000_000)  # pressed 50 ms late
    st = tap.state(t_third)
    assert st.bar_position == pytest.approx(0.0, abs=1e-6) and st.bpm == pytest.approx(100.0)
    assert tap.state(t_third + 300_000_000).beat_phase == pytest.approx(0.5)  # grid kept


def test_the_bar_is_carried_in_time_when_the_trackers_count_slips():
    """A tracker re-locking may count a beat twice; the pressed bar stays on the beats that
    are a whole number of bars after the press, not on the count."""
    ft = FeatureTempo()
    period = S // 2  # 120 BPM
    ones = []
    for k in range(1, 2000):  # a block every 10 ms for 20 s
        t = k * 10_000_000
        beat = t // period  # beats 0, 1, 2 ... at 0, 0.5 s, ...
        count = beat + 1 + (1 if t >= 9 * S else 0)  # at 9 s the count gains a beat
        phase = (t - beat * period) / period
        ft.update(
            AudioFeatures(
                t_capture_ns=t,
                beat_count=int(count),
                bpm=120.0,
                beat_phase=phase,
                tempo_source="tracker",
            )
        )
        if t == 4 * S + 30_000_000:
            assert ft.downbeat(t)  # on the beat at 4 s, 30 ms late
        st = ft.state(t)
        if t > 4 * S and phase == 0.0 and st.bar_position < 1.0:
            ones.append(t / S)
    assert ones == [6.0, 8.0, 10.0, 12.0, 14.0, 16.0, 18.0]
