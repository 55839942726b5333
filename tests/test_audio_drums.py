"""Band and onset picking on drum-kit signals (tools/synth_drums.py's kit): kicks under bass
lines and crashes, snares under chord stabs, kick + snare on one instant."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

from tests.audio_helpers import onset_times, stream
from vj.audio.analysis import HopAnalyzer, PeakPicker

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tools"))


class _KitTrack:
    """A silent track at tools/synth_drums.py's rate, its seeded kit, and `add(sig, t)`."""

    def __init__(self, seed: int, seconds: float, snare: str = "stems") -> None:
        synth_drums = pytest.importorskip("synth_drums")
        self.sr = synth_drums.SR
        self.rng = np.random.default_rng(seed)
        self.kit = synth_drums.Kit(self.rng, snare=snare)
        self.x = np.zeros(int(seconds * self.sr))

    def add(self, sig: np.ndarray, t: float) -> None:
        i = int(t * self.sr)
        m = min(len(sig), len(self.x) - i)
        self.x[i : i + m] += sig[:m]

    def audio(self) -> np.ndarray:
        """[n] float32 peaking at 0.8."""
        return (0.8 * self.x / np.abs(self.x).max()).astype(np.float32)


def bass_under_kicks(seed: int, bass: float, seconds: float = 10.0, bpm: float = 112.0):
    """Kicks on every beat (tools/synth_drums.py's kit) and a sustained bass line of 4-partial
    notes (41-73 Hz) on every eighth: (x [n] float32, kick times)."""
    c = _KitTrack(seed, seconds)
    rng, sr = c.rng, c.sr
    beat = 60.0 / bpm
    kicks = np.arange(0.0, seconds - 0.5, beat)
    for t in kicks:
        c.add(c.kit.kick(rng.uniform(0.5, 0.7)), t)
    tt = np.arange(int(beat / 2 * sr)) / sr
    env = (1 - np.exp(-tt / 0.004)) * np.exp(-tt / 0.6)
    for t in np.arange(beat / 2, seconds - 0.5, beat / 2):
        f0 = rng.choice([41.2, 55.0, 49.0, 61.7, 46.2, 73.4])
        note = sum(np.sin(2 * np.pi * f0 * h * tt + rng.uniform(0, 6.3)) / h for h in (1, 2, 3, 4))
        c.add(bass * (note * env), t)
    return c.audio(), kicks


def test_low_band_fires_on_kicks_not_on_bass_notes():
    """A bass line's partials beat inside the low FFT bins, so its low band swells every few
    hops; the kick picker reads the flux against the loudest of the last 25 ms of frames
    (analysis.LOW_HOLD_S), over which only a kick rises. Against one frame back (before):
    precision 0.45, recall 0.50; held: 1.00 and 0.70; held from half a window back
    (analysis.LOW_LAG_FRAMES): 1.00 and 0.96."""
    synth_drums = pytest.importorskip("synth_drums")
    found = fired = kicks = 0
    for seed in (1, 2, 3):
        x, kd = bass_under_kicks(seed, bass=0.15)
        _, events, _ = stream(x, synth_drums.SR, 256)
        low = np.array([t / 1e9 for k, t in events if k == "low"])
        fired += len(low)
        kicks += len(kd)
        found += sum(np.min(np.abs(kd - t)) <= 0.05 for t in low)
    assert found / fired >= 0.85
    assert found / kicks >= 0.6


def held_kick_picks(x: np.ndarray, sr: int, hop: int, **kw) -> np.ndarray:
    """Times (s) the stream's kick picker fires on HopAnalyzer(**kw).low_held."""
    from vj.audio import stream as st

    an = HopAnalyzer(sr, hop, **kw)
    i = 1  # the low channel's picker settings
    pick = PeakPicker(
        sr / hop,
        st.ODF_DELTA[i],
        st.ODF_RATIO[i],
        st.ODF_MEAN_S[i],
        st.ODF_GAP_S[i],
        peak_rel=st.ODF_PEAK_REL[i],
    )
    out = []
    for k in range(len(x) // hop):
        an.process(x[k * hop : (k + 1) * hop])
        if pick.process(an.low_held):
            out.append((k + 1) * hop / sr)
    return np.array(out)


def test_kicks_under_a_loud_bass_line_rise_over_half_a_window():
    """With the bass twice as loud, each hop lets in a quarter of a kick's body (the 23 ms
    window fills over 4 hops) and one hop's rise stays under the bass's hold: held from
    flux_lag back the picker finds 0.31 of the kicks; held from half a window back
    (LOW_LAG_FRAMES) 0.85, precision 0.94 -> 0.96."""
    synth_drums = pytest.importorskip("synth_drums")
    sr = synth_drums.SR
    got = {}
    for frames in (0.0, 0.5):
        found = fired = kicks = 0
        for seed in (1, 2, 3):
            x, kd = bass_under_kicks(seed, bass=0.3)
            low = held_kick_picks(x, sr, 256, low_lag_frames=frames)
            fired += len(low)
            kicks += len(kd)
            found += sum(np.min(np.abs(kd - t)) <= 0.05 for t in low)
        got[frames] = (found / max(fired, 1), found / kicks)
    assert HopAnalyzer(sr, 256).low_lag == 2 and HopAnalyzer(sr, 512).low_lag == 1
    assert got[0.5][0] >= 0.9 and got[0.5][1] >= 0.75
    assert got[0.0][1] <= 0.5  # what the lag buys


def test_a_kick_under_a_snare_still_fires_the_low_band():
    """A kick and a snare on the same instant (drum and bass, punk, the demo track) are two
    drums: the low band fires for the kick even though the mid band fires for the snare (a
    'one hit, one band' gate once dropped these: the demo's kicks in the low band 0.89 → 0.53)."""
    from vj.audio.source import _demo_pattern, demo_track

    sr, hop = 44100, 256
    x = demo_track(sr, seconds=8.0, bpm=124.0)
    kicks, snares, _ = _demo_pattern(124.0, 8.0)
    _, events, _ = stream(x[:, 0].astype(np.float32), sr, hop)
    low = np.array([t / 1e9 for k, t in events if k == "low"])
    both = [t for t in kicks if np.min(np.abs(np.asarray(snares) - t)) < 1e-3]
    assert len(both) >= 6  # the pattern has kick+snare hits
    found = [np.any((low - t >= 0) & (low - t < 0.025)) for t in both]
    assert np.mean(found) >= 0.8


def crash_and_kicks(seed: int, kick: float, crash: float, seconds: float = 8.0):
    """Punk time on a crash (tools/synth_drums.py's kit): a loud crash + snare every 0.6 s and
    a softer crash stroke + kick 200 ms after each, the wash ringing through all of it.
    (x [n] float32, every hit's time, kick times). The snare is the kit's old bright burst
    (`Kit(snare="burst")`), as when the figures below were taken; with the stems-shaped snare
    72 of the 78 kicks are found (13 without the rule)."""
    c = _KitTrack(seed, seconds, snare="burst")
    loud = np.arange(0.25, seconds - 0.5, 0.6)
    kicks = loud + 0.2
    hits = np.sort(np.r_[loud, kicks])
    vel = np.where(np.isin(hits, loud), 1.0, crash)
    c.add(c.kit.cymbal_track(hits, vel, len(c.x), "crash"), 0.0)
    for t in loud:
        c.add(c.kit.snare(1.0), t)
    for t in kicks:
        c.add(c.kit.kick(kick), t)
    return c.audio(), hits, kicks


def test_a_kick_after_a_loud_crash_is_an_onset(monkeypatch):
    """The loud crash + snare keeps the onset channel's running mean up, and the kick 200 ms
    on is missed there; the kick picker finds it, and counts as an onset where the low band
    stands over the spectrum under 2.5 kHz (stream.LOW_ONSET_SHARE). 6 tracks, 78 kicks:
    74 found with it, 67 without; no hit counted twice."""
    from vj.audio import stream as st

    synth_drums = pytest.importorskip("synth_drums")
    sr = synth_drums.SR
    got, on_share = {}, st.LOW_ONSET_SHARE
    for share in (on_share, float("inf")):
        monkeypatch.setattr(st, "LOW_ONSET_SHARE", share)
        found = n_kicks = n_onsets = n_hits = 0
        for kick, crash in ((0.4, 0.3), (0.5, 0.2)):
            for seed in (0, 1, 2):
                x, hits, kicks = crash_and_kicks(seed, kick, crash)
                _, events, _ = stream(x, sr, 256)
                on = onset_times(events)
                found += sum(np.any(np.abs(on - t - 0.005) < 0.03) for t in kicks)
                n_kicks += len(kicks)
                n_onsets += len(on)
                n_hits += len(hits)
        got[share] = (found / n_kicks, n_onsets - n_hits)
    assert got[on_share][0] >= 0.92
    assert got[on_share][1] <= 2  # the kick's onset is not a second one
    assert got[float("inf")][0] <= 0.88  # what counting the kick picks buys


def chords_under_snares(seed: int, chord: float, seconds: float = 12.0, bpm: float = 100.0):
    """Snares on the backbeat and closed hats on every beat (tools/synth_drums.py's kit), and
    keyboard-like chord stabs on the off-beats: three notes of four harmonics falling as 1/h²
    (196-440 Hz roots, nothing above ~3 kHz), 2 ms attack. (x [n] float32, snare times, stab
    times)."""
    c = _KitTrack(seed, seconds)
    rng, sr, kit, add = c.rng, c.sr, c.kit, c.add
    beat = 60.0 / bpm
    beats = np.arange(0.25, seconds - 0.5, beat)
    snares = beats[1::2]
    for t in beats:
        add(kit.hat(rng.uniform(0.15, 0.2)), t)
    for t in snares:
        add(kit.snare(rng.uniform(0.5, 0.6)), t)
    tt = np.arange(int(0.5 * sr)) / sr
    env = (1 - np.exp(-tt / 0.002)) * np.exp(-tt / 0.25)
    stabs = beats[:-1] + beat / 2
    for t in stabs:
        root = rng.choice([196.0, 220.0, 246.9, 261.6, 293.7])
        sig = sum(
            np.sin(2 * np.pi * root * r * h * tt + rng.uniform(0, 6.3)) / h**2
            for r in (1.0, 1.26, 1.5)
            for h in (1, 2, 3, 4)
        )
        add(chord * sig * env, t)
    return c.audio(), snares, stabs


@pytest.mark.parametrize("chord", [0.3, 1.0])
def test_mid_band_fires_on_snares_not_on_chord_stabs(chord):
    """A chord's attack moves the 150-2500 Hz band as much as a snare, but only the snare's
    wires rise above 5 kHz (stream.MID_NOISE_RATIO). With the gate: (nearly) every snare
    found, no stab (3 seeds, the snare shaped on real ones: 27 and 26 of 27 snares, 0 of 54
    stabs, 30 and 29 mid events); without it (mid_noise_ratio = 0) 38-52 stabs fire and, louder,
    they lift the picker's median hit over the snares (27 and 5 of 27 found). With the old
    bright snare: 27 of 27, 0 stabs; without the gate 49-54 stabs, 4-23 found."""
    synth_drums = pytest.importorskip("synth_drums")
    sr = synth_drums.SR
    got = {}
    for ratio in (None, 0.0):
        fired = found = on_stab = n_snares = 0
        for seed in (1, 2, 3):
            x, snares, stabs = chords_under_snares(seed, chord)
            kw = {} if ratio is None else {"mid_noise_ratio": ratio}
            fx, events, _ = stream(x, sr, 256, **kw)
            mid = np.array([t / 1e9 for k, t in events if k == "mid"])
            fired += len(mid)
            n_snares += len(snares)
            found += sum(np.min(np.abs(snares - t)) <= 0.05 for t in mid)
            on_stab += sum(np.min(np.abs(stabs - t)) <= 0.05 for t in mid)
        got[ratio] = (found / n_snares, on_stab, found / max(fired, 1))
    assert got[None][0] >= 0.85 and got[None][1] == 0 and got[None][2] >= 0.85
    assert got[0.0][1] >= 30  # what the gate buys


def snares_and_kicks(seed: int, seconds: float = 10.0, bpm: float = 110.0):
    """A groove of the kit (snare shaped on real ones): a kick alone on 1, snares alone on 2
    and 4, kick + snare together on 3, closed hats on the eighths.
    (x [n] float32, {"alone": kick times, "with": kick + snare times, "snare": snares alone})."""
    c = _KitTrack(seed, seconds)
    rng, kit, add = c.rng, c.kit, c.add
    beat = 60.0 / bpm
    hits: dict[str, list[float]] = {"alone": [], "with": [], "snare": []}
    for b0 in np.arange(0.3, seconds - 4 * beat, 4 * beat):
        for k in range(8):
            add(kit.hat(rng.uniform(0.1, 0.15)), b0 + k * beat / 2)
        for t in (b0, b0 + 2 * beat):
            add(kit.kick(rng.uniform(0.8, 1.0)), t)
        for t in (b0 + beat, b0 + 2 * beat, b0 + 3 * beat):
            add(kit.snare(rng.uniform(0.7, 0.9)), t)
        hits["alone"].append(b0)
        hits["with"].append(b0 + 2 * beat)
        hits["snare"] += [b0 + beat, b0 + 3 * beat]
    return c.audio(), {k: np.array(v) for k, v in hits.items()}


def test_a_snares_body_fires_no_kick_event(monkeypatch):
    """A snare's body reaches the low filters and fires the kick picker; a kick pick near a
    snare pick counts only where the low filters stand over the spectrum under 2.5 kHz
    (stream.KICK_SHARE). 3 seeds, 12 bars: kicks alone 12 of 12 found, snares alone 5 of 24
    give a low event (24 of 24 without the rule). Kick + snare on 3: 6 of 12 (12 without): the
    kit's kick puts most of its 48 Hz under the low band's lowest bin, and under a snare of
    its level its low share reads 3.4-4.6; on the drum stems kicks shared with a snare pick
    read 6.1 or more (5th percentile), and the demo track's kick + snare hits all stay
    (test_a_kick_under_a_snare_still_fires_the_low_band)."""
    from vj.audio import stream as st

    synth_drums = pytest.importorskip("synth_drums")
    sr = synth_drums.SR
    got, rule = {}, st.KICK_SHARE
    for share in (rule, 0.0):
        monkeypatch.setattr(st, "KICK_SHARE", share)
        n = {"alone": [0, 0], "with": [0, 0], "snare": [0, 0]}
        for seed in (0, 1, 2):
            x, hits = snares_and_kicks(seed)
            _, events, _ = stream(x, sr, 256)
            low = np.array([t / 1e9 for k, t in events if k == "low"])
            for key, ts in hits.items():
                n[key][0] += sum(np.any(np.abs(low - t - 0.01) <= 0.025) for t in ts)
                n[key][1] += len(ts)
        got[share] = {k: a / b for k, (a, b) in n.items()}
    on, off = got[rule], got[0.0]
    assert on["alone"] == 1.0 and on["snare"] <= 0.3, got
    assert on["with"] >= 0.4, got  # see above: the kit's kick under an equal snare
    assert off["snare"] >= 0.9 and off["alone"] == 1.0, got  # what the rule buys
