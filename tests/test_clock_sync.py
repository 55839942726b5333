"""MIDI clock → BPM and phase: synthetic ticks, and a real 120 BPM clock over JACK virtual MIDI."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from vj.clock import now_ns
from vj.control.clock_sync import (
    CLOCK,
    CONTINUE,
    SONG_POSITION,
    START,
    STOP,
    MidiClock,
    fit_tick_period,
    fit_tick_period_reference,
    same_period,
    unbunched,
)

T0 = 10**12


def _ticks(
    clock: MidiClock, bpm: float, n: int, t0: int, jitter_ns: float = 0.0, seed: int = 0
) -> int:
    """Feed n clock ticks at bpm starting at t0; returns the time of the last tick."""
    rng = np.random.default_rng(seed)
    period = 60e9 / (bpm * 24)
    t = t0
    for i in range(n):
        t = int(t0 + i * period + rng.uniform(0, jitter_ns))
        clock.feed([CLOCK], t)
    return t


def _stalled(times: np.ndarray, stalls: list[tuple[float, float]]) -> np.ndarray:
    """Arrival times [n] when delivery stalls: a tick due inside a stall (start ns, length ms)
    arrives at its end, the way a loaded machine's late JACK cycle bunches them."""
    out = times.astype(np.int64).copy()
    for start, ms in stalls:
        inside = (out >= start) & (out < start + ms * 1e6)
        out[inside] = int(start + ms * 1e6)
    return out


def _on_periods(due: np.ndarray, frames: int) -> np.ndarray:
    """Arrival times [n] of ticks due at `due` [n], handed over at the end of each JACK
    period of `frames` at 48 kHz."""
    cycle = frames / 48000 * 1e9
    return (np.ceil(due / cycle) * cycle).astype(np.int64)


def _feed_all(clock: MidiClock, times: np.ndarray) -> int:
    for t in times:
        clock.feed([CLOCK], int(t))
    return int(times[-1])


def test_fit_matches_reference_without_outliers():
    rng = np.random.default_rng(1)
    t = (T0 + np.arange(96) * 20.8e6 + rng.normal(0, 1e6, 96)).astype(np.int64)
    slope, _ = fit_tick_period(t)
    assert slope == pytest.approx(fit_tick_period_reference(t), rel=2e-3)


def test_fit_rejects_a_late_tick():
    t = (T0 + np.arange(48) * 20.833e6).astype(np.int64)
    t[30] += 15_000_000  # one delivery 15 ms late
    slope, _ = fit_tick_period(t)
    assert slope == pytest.approx(20.833e6, rel=1e-4)
    assert abs(fit_tick_period_reference(t) / 20.833e6 - 1) > abs(slope / 20.833e6 - 1)


@pytest.mark.parametrize("bpm", [60.0, 120.0, 174.0])
def test_bpm_within_one_percent_under_jack_period_jitter(bpm):
    c = MidiClock()
    t = _ticks(c, bpm, 120, T0, jitter_ns=5.33e6)  # arrival quantised to a JACK period
    st = c.state(t)
    assert st is not None and st.bpm == pytest.approx(bpm, rel=0.01)


def test_phase_is_continuous_between_ticks():
    c = MidiClock()
    c.feed([START], T0 - 1)
    t = _ticks(c, 120.0, 48, T0)  # ticks 0..47: the last one is 1/24 before beat 2
    phases = [c.state(t + k * 1_000_000) for k in range(0, 21)]
    beats = np.array([s.beat_count + s.beat_phase for s in phases])
    assert np.all(np.diff(beats) > 0)  # moves every millisecond, not in 1/24 steps
    assert beats[0] == pytest.approx(47 / 24, abs=1e-6)
    assert np.max(np.diff(beats)) < 0.01


def test_start_stop_continue_and_song_position():
    c = MidiClock()
    assert c.state(T0) is None
    c.feed([START], T0 - 1)
    t = _ticks(c, 120.0, 24 * 5 + 1, T0)  # five beats and the downbeat of the sixth
    st = c.state(t)
    assert st.beat_count == 5 and st.beat_phase == pytest.approx(0.0, abs=1e-6)
    assert st.bar_position == pytest.approx(1.0, abs=1e-6)  # second beat of bar two
    c.feed([STOP], t + 1000)
    assert c.state(t + 2000) is None and not c.running
    # song position 16 sixteenths = bar 2 beat 1 (= beat 4), then continue
    c.feed([SONG_POSITION, 16, 0], t + 3000)
    c.feed([CONTINUE], t + 4000)
    period = int(60e9 / (120 * 24))
    c.feed([CLOCK], t + period)
    st = c.state(t + period)
    assert st is not None and st.beat_count == 4 and st.bar_position == pytest.approx(0.0)
    # start again → back to beat 0
    c.feed([START], t + period + 10)
    c.feed([CLOCK], t + 2 * period)
    assert c.state(t + 2 * period).beat_count == 0


def test_stopped_clock_times_out():
    c = MidiClock(timeout_s=0.5)
    t = _ticks(c, 120.0, 48, T0)
    assert c.state(t + 100_000_000) is not None
    assert c.state(t + 600_000_000) is None


def test_follows_a_tempo_change_within_a_beat():
    c = MidiClock()
    t = _ticks(c, 120.0, 200, T0, jitter_ns=5.33e6)
    t = _ticks(c, 140.0, 24, t + int(60e9 / (140 * 24)), jitter_ns=5.33e6, seed=3)
    assert c.state(t).bpm == pytest.approx(140.0, rel=0.01)


def test_garbage_never_raises():
    c = MidiClock()
    rng = np.random.default_rng(7)
    for _ in range(3000):
        n = int(rng.integers(0, 5))
        msg = [int(x) for x in rng.integers(-300, 300, n)]
        c.feed(msg, int(rng.integers(-(2**62), 2**62)))
    for bad in (None, [], "x", [0xF2], [0xF2, 200, 1], [1.5e300], [float("nan")]):
        c.feed(bad, T0)  # type: ignore[arg-type]
    c.feed([START], 2**62 - 1)
    t = _ticks(c, 120.0, 100, 2**62)  # still locks onto a clean clock afterwards
    assert c.state(t).bpm == pytest.approx(120.0, rel=1e-3)


# -- real JACK virtual MIDI ----------------------------------------------------------------


def _send_clock(out, bpm: float, seconds: float, stop: threading.Event) -> None:
    """Clock from a thread, paced on absolute monotonic deadlines (like a hardware box)."""
    period = 60e9 / (bpm * 24)
    t0 = now_ns()
    i = 0
    while not stop.is_set() and i * period < seconds * 1e9:
        due = t0 + i * period
        delay = (due - now_ns()) / 1e9
        if delay > 0:
            time.sleep(delay)
        out.send_message([CLOCK])
        i += 1


@pytest.mark.jack
def test_120_bpm_clock_over_jack_virtual_midi(jack_session):
    rtmidi = pytest.importorskip("rtmidi")
    clock = MidiClock()
    mi = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, name="vjclockin")
    mo = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name="vjclockout")
    try:
        mi.ignore_types(
            sysex=True, timing=False, active_sense=True
        )  # rtmidi drops clock by default
        mi.set_callback(lambda ev, _d: clock.feed(ev[0], now_ns()))
        mi.open_virtual_port("in")
        mo.open_virtual_port("out")
        import jack

        jc = jack.Client("vjclockwire", no_start_server=True)
        try:
            jc.connect("vjclockout:out", "vjclockin:in")
        finally:
            jc.close()
        time.sleep(0.05)
        mo.send_message([START])
        stop = threading.Event()
        _send_clock(mo, 120.0, 1.6, stop)
        st = clock.state(now_ns())
        assert st is not None, "no clock state after 1.6 s of ticks"
        assert st.bpm == pytest.approx(120.0, rel=0.01)
        assert st.beat_count in (2, 3)  # 1.6 s at 120 BPM: beat index 3 (± delivery delay)
        mo.send_message([STOP])
        time.sleep(0.05)
        assert clock.state(now_ns()) is None and not clock.running
        mo.send_message([SONG_POSITION, 32, 0])  # bar 3
        mo.send_message([CONTINUE])
        _send_clock(mo, 120.0, 0.3, stop)
        time.sleep(0.03)
        st = clock.state(now_ns())
        assert st is not None and st.beat_count == 8 and st.bpm == pytest.approx(120.0, rel=0.01)
    finally:
        mi.close_port()
        mo.close_port()
        del mi, mo


@pytest.mark.parametrize("gap_s", [0.2, 3.0])
def test_resume_after_a_pause_keeps_the_established_tempo(gap_s):
    c = MidiClock()
    c.feed([START], T0 - 1)
    t = _ticks(c, 120.0, 200, T0, jitter_ns=5.33e6)
    c.feed([STOP], t + 1)
    t_resume = t + int(gap_s * 1e9)
    c.feed([CONTINUE], t_resume - 1)
    t = _ticks(c, 120.0, 14, t_resume, jitter_ns=5.33e6, seed=9)  # a short, jittery series
    assert c.state(t).bpm == pytest.approx(120.0, rel=2e-3)


def test_resume_at_a_new_tempo_follows_it():
    c = MidiClock()
    c.feed([START], T0 - 1)
    t = _ticks(c, 120.0, 200, T0)
    c.feed([STOP], t + 1)
    c.feed([CONTINUE], t + 1_000_000_000)
    t = _ticks(c, 100.0, 14, t + 1_000_000_001)
    assert c.state(t).bpm == pytest.approx(100.0, rel=1e-3)


P120 = 60e9 / (120 * 24)  # ns per tick at 120 BPM


def test_a_stalled_delivery_is_not_a_tempo_change():
    # four 35 ms stalls, each bunching two ticks: the tempo did not change, keep the series
    c = MidiClock()
    c.feed([START], T0 - 1)
    due = T0 + np.arange(300) * P120
    _feed_all(c, _stalled(due, [(T0 + s * 1e9, 35.0) for s in (1.01, 2.03, 3.52, 5.0)]))
    assert c.tempo_resets == 0
    assert c.bpm() == pytest.approx(120.0, rel=2e-3)


def test_resume_after_a_short_pause_whose_last_tick_came_late():
    # Stop 50 ms after the last tick was sent, but that tick arrived 25 ms late: the gap
    # before the next one looks like one tick period. The sender sent nothing while
    # stopped, so it was a pause all the same (CI saw 108.8 BPM here over real JACK MIDI)
    c = MidiClock()
    c.feed([START], T0 - 1)
    due = T0 + np.arange(80) * P120
    t = _feed_all(c, _stalled(due, [(due[-1] - 10e6, 35.0)]))
    c.feed([STOP], t + 1)
    t_resume = int(due[-1] + 50e6)
    c.feed([SONG_POSITION, 32, 0], t_resume)
    c.feed([CONTINUE], t_resume + 1)
    t = _feed_all(c, t_resume + 200_000 + np.arange(15) * P120)
    st = c.state(t)
    assert st.beat_count == 8 and st.bpm == pytest.approx(120.0, rel=2e-3)


def test_resume_whose_first_ticks_came_bunched():
    # after Continue the first three ticks stall 45 ms: a line fit through the short series
    # reads ~132 BPM, the established tempo must hold
    c = MidiClock()
    c.feed([START], T0 - 1)
    t = _feed_all(c, T0 + np.arange(80) * P120)
    c.feed([STOP], t + 1)
    t_resume = t + 500_000_000
    c.feed([CONTINUE], t_resume - 1)
    due = t_resume + np.arange(14) * P120
    t = _feed_all(c, _stalled(due, [(due[0], 45.0)]))
    assert c.state(t).bpm == pytest.approx(120.0, rel=2e-3)


def test_same_period_tells_jitter_from_a_new_tempo():
    rng = np.random.default_rng(3)
    jittered = T0 + np.arange(14) * P120 + rng.uniform(0, 5.33e6, 14)
    assert same_period(jittered, P120)
    assert same_period(_stalled(T0 + np.arange(14) * P120, [(T0, 30.0)]), P120)
    assert not same_period(T0 + np.arange(14) * (60e9 / (100 * 24)), P120)
    assert not same_period(T0 + np.arange(14) * (60e9 / (126 * 24)), P120)  # 5 %, clean


def test_a_long_stall_that_bunches_five_ticks_moves_neither_tempo_nor_series():
    # a 100 ms stall (a loaded machine's MIDI thread) hands five ticks over at once; their
    # arrival times carry no tempo, and the 8 % change they fake is not a tempo change
    c = MidiClock()
    c.feed([START], T0 - 1)
    due = T0 + np.arange(80) * P120
    _feed_all(c, _stalled(due, [(due[60] - 1e6, 100.0)]))
    assert c.tempo_resets == 0
    assert c.bpm() == pytest.approx(120.0, rel=2e-3)


def test_unbunched_marks_the_ticks_of_one_late_delivery():
    due = (T0 + np.arange(20) * P120).astype(np.int64)
    assert unbunched(due).all()
    late = _stalled(due, [(due[8] - 1e6, 45.0)])  # ticks 8, 9, 10 arrive together
    assert np.flatnonzero(~unbunched(late)).tolist() == [8, 9, 10]
    # two ticks to a JACK period with no gap before them are the delivery's rhythm (1024
    # frames = 21.3 ms against 17.9 ms per tick at 140 BPM), not a stall
    quantised = _on_periods(T0 + np.arange(96) * 60e9 / (140 * 24), 1024)
    assert (np.diff(quantised) == 0).any() and unbunched(quantised).all()
    # on a clean clock the fit is the plain least-squares line
    slope, _ = fit_tick_period(due)
    assert slope == pytest.approx(fit_tick_period_reference(due), rel=1e-9)


def test_a_long_jack_period_is_no_tempo_change():
    # a 2048-frame JACK period (42.7 ms) hands 127 BPM ticks over three or four at a time;
    # their 12-tick means swing past 8 %, which the delivery's own jitter explains
    c = MidiClock()
    c.feed([START], T0 - 1)
    _feed_all(c, _on_periods(T0 + np.arange(96) * 60e9 / (127 * 24), 2048))
    assert c.tempo_resets == 0
    assert c.bpm() == pytest.approx(127.0, rel=2e-3)
