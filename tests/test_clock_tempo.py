"""Tempo priority (Link > MIDI clock > tap > tracker), the HUD line, LFOs and beat quantisation."""

from __future__ import annotations

import numpy as np
import pytest

from vj.control.clock_sync import CLOCK, START, STOP, MidiClock
from vj.control.lfo import SHAPES, BeatQuantizer, Lfo
from vj.control.link import LinkTempo
from vj.control.tempo_sources import build_tempo_arbiter, tempo_hud_text
from vj.tempo import TapTempo, TempoState

T0 = 10**12


class FixedTracker:
    """Stand-in audio beat tracker with a settable answer (real object, no mocking library)."""

    name = "tracker"

    def __init__(self, bpm: float | None) -> None:
        self.bpm = bpm

    def state(self, t_ns: int) -> TempoState | None:
        if self.bpm is None:
            return None
        beats = (t_ns - T0) * self.bpm / 60e9
        return TempoState(self.bpm, beats % 1, beats % 4, 4, int(beats))


def _clock_ticks(c: MidiClock, bpm: float, n: int, t0: int) -> int:
    p = 60e9 / (bpm * 24)
    for i in range(n):
        c.feed([CLOCK], int(t0 + i * p))
    return int(t0 + (n - 1) * p)


def test_priority_order_and_fall_through():
    tracker, tap, clock, link = FixedTracker(119.0), TapTempo(), MidiClock(), LinkTempo()
    arb = build_tempo_arbiter(tracker, tap, clock, link)
    assert arb.names == ["link", "midi_clock", "tap", "tracker"]
    st, name = arb.current(T0)
    assert name == "tracker" and st.bpm == 119.0
    tap.tap(T0)
    tap.tap(T0 + 500_000_000)  # 120 BPM
    assert arb.current(T0 + 600_000_000)[1] == "tap"
    t = _clock_ticks(clock, 126.0, 48, T0 + 700_000_000)
    st, name = arb.current(t)
    assert name == "midi_clock" and st.bpm == pytest.approx(126.0, rel=1e-3)
    hud = tempo_hud_text(arb, t)  # 47 ticks after the first: the clock's second beat
    assert hud == "tempo: midi_clock 126.0 BPM, beat 2/4 (link off, tap 120.0, tracker 119.0)"
    clock.feed([STOP], t + 1)
    assert arb.current(t + 2)[1] == "tap"
    assert "midi_clock stopped" in tempo_hud_text(arb, t + 2)
    clock.feed([START], t + 3)
    t2 = _clock_ticks(clock, 126.0, 2, t + 20_000_000)
    assert arb.current(t2)[1] == "midi_clock"
    assert arb.current(t2 + 2_000_000_000)[1] == "tap"  # clock gone quiet: times out


def test_optional_sources_left_out_and_none_active():
    arb = build_tempo_arbiter(FixedTracker(None), None)
    assert arb.names == ["tracker"]
    assert tempo_hud_text(arb, T0) == "tempo: none (tracker idle)"
    assert tempo_hud_text(build_tempo_arbiter(None, None), T0) == "tempo: none"


@pytest.mark.parametrize("shape", SHAPES)
def test_lfo_shapes_stay_in_range_and_repeat_per_cycle(shape):
    lfo = Lfo(shape, rate_beats=2.0, seed=3)
    vals = []
    for k in range(64):
        beats = k / 8.0  # 8 samples per beat over 8 beats = 4 cycles
        st = TempoState(120.0, beats % 1, beats % 4, 4, int(beats))
        vals.append(lfo.value(st))
    v = np.array(vals)
    assert np.all((v >= 0.0) & (v <= 1.0))
    if shape != "random":
        assert np.allclose(v[:16], v[16:32])  # one cycle = 2 beats = 16 samples
    else:
        assert len(set(np.round(v, 6))) == 4 and np.all(v[:16] == v[0])  # held per cycle


def test_lfo_reference_points_and_rest():
    st = TempoState(120.0, 0.5, 0.5, 4, 0)  # half a beat in
    assert Lfo("sine", 1.0).value(st) == pytest.approx(1.0)
    assert Lfo("sine", 1.0).value(TempoState(120.0, 0.0, 0.0, 4, 0)) == pytest.approx(0.0)
    assert Lfo("triangle", 1.0).value(st) == pytest.approx(1.0)
    assert Lfo("saw", 2.0).value(st) == pytest.approx(0.25)
    assert Lfo("ramp", 2.0).value(st) == pytest.approx(0.75)
    assert Lfo("square", 1.0, phase=0.5).value(st) == 1.0
    assert Lfo("sine", rest=0.2).value(None) == 0.2
    with pytest.raises(ValueError, match="shape"):
        Lfo("wobble")
    with pytest.raises(ValueError, match="rate_beats"):
        Lfo("sine", 0.0)


def _st(pos: float, bpb: int = 4) -> TempoState:
    whole = int(np.floor(pos))
    return TempoState(120.0, pos - whole, pos % bpb, bpb, whole)


def test_quantiser_waits_for_the_next_beat_and_bar():
    q = BeatQuantizer("beat")
    q.arm("next_keyframe", _st(4.4))
    assert q.poll(_st(4.9)) == [] and q.pending == ["next_keyframe"]
    assert q.poll(_st(5.01)) == ["next_keyframe"] and q.pending == []
    bar = BeatQuantizer("bar")
    bar.arm("cut", _st(5.5))  # bar 2 started at beat 4; next bar at beat 8
    assert bar.poll(_st(7.9)) == []
    assert bar.poll(_st(8.0)) == ["cut"]
    two = BeatQuantizer(2.0)
    two.arm("x", _st(2.5))
    assert two.poll(_st(3.99)) == [] and two.poll(_st(4.0)) == ["x"]


def test_quantiser_grace_no_tempo_and_jumps():
    q = BeatQuantizer("beat", grace_beats=0.125)
    q.arm("late", _st(6.05))  # pressed just after the beat: fires now
    assert q.poll(_st(6.06)) == ["late"]
    q.arm("a", None)  # no tempo: immediately
    assert q.poll(None) == ["a"]
    q.arm("b", _st(10.5))
    assert q.poll(None) == ["b"]  # tempo lost while waiting
    q.arm("c", _st(100.5))
    assert q.poll(_st(3.2)) == []  # source switched: position far behind, retarget beat 4
    assert q.poll(_st(4.0)) == ["c"]
    with pytest.raises(ValueError, match="division"):
        BeatQuantizer("phrase")
