"""Seeded synthetic drum performances with hit and beat annotations, for bench_audio: the
playing styles the annotated stems hardly hold (ride- and crash-led time with a sustained wash,
hats 20 dB under kick and snare, ghost notes, brushes, tom fills).

    python tools/synth_drums.py OUT_DIR [--seed 0] [--seconds 20]

writes OUT_DIR/STYLE.wav, STYLE.drums.txt (time s, class KD/SD/HH/CY/TT) and STYLE.beats
(time s, beat in bar), the layout of the eval folders. Everything is synthesised here (no
samples): a pitch-swept sine kick, a snare of two modes, shell and wire noise shaped on real
snares (SNARE_SHAPE), metallic cymbals from ~60 inharmonic partials and shaped noise whose
decays pile up into a wash (the ride's fitted on real rides, RIDE_TAU), a small room added to
everything.
"""

from __future__ import annotations

import argparse
import math
import os
import sys

import numpy as np
from scipy.signal import butter, fftconvolve, lfilter, sosfilt

SR = 44100
# A ride's wash is noise-like too, not only its ~64 partials: with partials alone, the frame-to-
# frame flicker of its high filters (|median log rise| p90 between strokes) was 0.038, against
# 0.052 on the crash-led Punk stem and 0.062 for the synthetic crash; with this much shaped
# noise (then decaying over 3 s) it is 0.049. A smooth wash made soft strokes on it too easy to
# find. With RIDE_TAU's decays the same statistic on log filter energies reads 0.082 for this
# ride, 0.089-0.094 for the real rides of RIDE_TAU overlaid in its pattern, 0.128 on Punk.
RIDE_NOISE = 0.15
# RIDE_TAU: (s, exponent, noise s). A partial at f Hz decays with the time constant
# 0.6 s * (2200 / f) ** 0.8 (0.6 s at 2.2 kHz, 0.16 s at 11 kHz), the shaped noise over 0.3 s.
# Fitted to two ride-cymbal one-shots of public sample sets, measured here and not kept in the
# repo: the mean level in 1-2.5 / 2.5-5 / 5-8 / 8-16 kHz (rows) over 0-30 / 30-80 / 100-150 /
# 200-250 / 500-550 / 1000-1050 ms after the stroke (columns), in dB against the whole
# signal's power over 0-30 ms (REAL_RIDE_DB; the two differ from each other by 5.6 dB RMS).
# One stroke of this ride sits 1.9 dB RMS from them. Until 2026-12-04 the partials decayed over
# 4.5 s * (2200 / f) ** 0.5 and the noise over 3 s: 8 dB too loud at 200 ms above 8 kHz, 34 dB
# at 1 s (11.9 dB RMS), so each stroke lifted the pile-up of the last few seconds by ~2 dB
# above 8 kHz, where a real ride's strokes, overlaid in the same pattern, rise 12-15 dB.
RIDE_TAU = (0.6, 0.8, 0.3)
REAL_RIDE_DB = (
    (-17.5, -20.8, -21.1, -23.2, -28.2, -32.9),
    (-9.9, -11.7, -15.0, -18.5, -25.9, -34.9),
    (-7.4, -12.0, -15.7, -18.8, -28.3, -41.6),
    (-2.5, -6.8, -12.2, -18.2, -32.7, -47.8),
)
# SNARE_SHAPE: the snare is fitted to the isolated snares (no other hit 150 ms before or 210 ms
# after) of six of the eval drum stems: per-file medians, then the median over files, of the
# level in 100-400 Hz / 0.4-1.2 / 1.2-5 / 7-17 kHz (rows) over 0-30 / 50-100 / 100-150 /
# 150-200 ms after the hit (columns), in dB against the whole signal's RMS over 0-30 ms
# (STEMS_SNARE_DB; this snare and the old one side by side in docs/audio.md, "Soft hats").
# The old snare (until 2026-12-04, Kit(snare="burst")) was a noise burst (1.2-9 kHz, 120 ms) over
# two modes: 17 dB too bright at the attack and 20 dB too loud above 7 kHz at 100-150 ms, where it
# buried the soft 16th hat after each backbeat. SNARE_GAIN keeps the level over the first 30 ms.
STEMS_SNARE_DB = (
    (-4.8, -14.2, -21.8, -26.2),
    (-5.9, -16.7, -23.3, -29.2),
    (-11.0, -17.9, -24.9, -30.1),
    (-22.7, -25.1, -33.9, -39.1),
)
SNARE_GAIN = 2.14
SNARES = ("stems", "burst")  # Kit(snare=...): fitted as above (the set's), or the old burst
STYLES = ("rock", "ride", "crash", "softhats", "brushes", "toms")
# Gain of each hat voice on its velocity. A rock kit's 8th hats (-5..-8 dB) measure ~14 dB under
# its snare; the pedal hat is quieter still. The soft 16th hats get no extra gain, so that
# their -18/-20 dB velocities are their level: 18-21 dB under the snare and 15-19 dB under the
# kick (RMS of each hit's first 30 ms; test_soft_hats_sit_about_20_db_under_kick_and_snare).
# Until 2026-12-04 they had the rock hats' x 0.5 too and sat 24-27 dB under, 6 dB softer than
# the set says.
HAT_GAIN = {"hat": 0.5, "pedal": 0.4, "softhat": 1.0}


def _db(x: float) -> float:
    return 10.0 ** (x / 20.0)


class Kit:
    """One drum kit: fixed cymbal partials and filters, per-hit variation from the rng."""

    def __init__(self, rng: np.random.Generator, sr: int = SR, snare: str = "stems") -> None:
        if snare not in SNARES:
            raise ValueError(f"snare {snare!r}: one of {', '.join(SNARES)}")
        self.rng = rng
        self.sr = sr
        self.snare_shape = snare
        self.hp_hat = butter(4, 7000, "highpass", fs=sr, output="sos")
        self.bp_shell = butter(2, (400, 1200), "bandpass", fs=sr, output="sos")
        self.bp_snare = butter(2, (1000, 8000), "bandpass", fs=sr, output="sos")
        self.bp_burst = butter(2, (1200, 9000), "bandpass", fs=sr, output="sos")
        self.bp_brush = butter(2, (900, 7000), "bandpass", fs=sr, output="sos")
        self.bp_stick = butter(2, (2500, 12000), "bandpass", fs=sr, output="sos")
        self.hp_click = butter(2, 1500, "highpass", fs=sr, output="sos")
        # cymbals: inharmonic partials, high ones decaying faster (the wash darkens)
        self.ride_f = np.sort(rng.uniform(2200, 13000, 64))
        self.ride_a = rng.uniform(0.3, 1.0, 64) / np.sqrt(64)
        ride_spread = rng.uniform(0.7, 1.3, 64)
        self.ride_tau = RIDE_TAU[0] * (2200 / self.ride_f) ** RIDE_TAU[1] * ride_spread
        self.crash_f = np.sort(rng.uniform(1800, 15000, 96))
        self.crash_a = rng.uniform(0.3, 1.0, 96) / np.sqrt(96)
        self.crash_tau = 2.2 * (1800 / self.crash_f) ** 0.5 * rng.uniform(0.7, 1.3, 96)

    def _t(self, seconds: float) -> np.ndarray:
        return np.arange(int(seconds * self.sr)) / self.sr

    def _noise(self, n: int) -> np.ndarray:
        return self.rng.standard_normal(n)

    def kick(self, v: float) -> np.ndarray:
        t = self._t(0.45)
        f = 48 + 110 * np.exp(-t / 0.025) * self.rng.uniform(0.9, 1.1)
        ph = 2 * np.pi * np.cumsum(f) / self.sr
        body = np.sin(ph) * np.exp(-t / 0.22)
        click = sosfilt(self.hp_click, self._noise(len(t))) * np.exp(-t / 0.002) * 0.5
        return v * (body + click)

    def snare(self, v: float) -> np.ndarray:
        # modes, shell and wires in the proportions of real snares (see SNARE_SHAPE)
        t = self._t(0.4)
        tone = (np.sin(2 * np.pi * 185 * t) + 0.6 * np.sin(2 * np.pi * 330 * t)) * np.exp(-t / 0.06)
        if self.snare_shape == "burst":  # the old snare: a bright noise burst over the modes
            wires = sosfilt(self.bp_burst, self._noise(len(t))) * np.exp(-t / 0.12) * 2.2
            return v * (0.5 * tone + wires)
        shell = sosfilt(self.bp_shell, self._noise(len(t))) * np.exp(-t / 0.06)
        wires = sosfilt(self.bp_snare, self._noise(len(t))) * np.exp(-t / 0.08)
        return v * SNARE_GAIN * (0.7 * tone + 2.0 * shell + 0.2 * wires)

    def hat(self, v: float, open_: bool = False) -> np.ndarray:
        t = self._t(0.5 if open_ else 0.15)
        tau = 0.18 if open_ else self.rng.uniform(0.025, 0.045)
        sq = np.sign(np.sin(2 * np.pi * np.outer(t, (2.9e3, 4.3e3, 5.6e3, 7.9e3)))).sum(axis=1)
        x = sosfilt(self.hp_hat, self._noise(len(t)) * 1.5 + 0.3 * sq)
        return v * x * np.exp(-t / tau)

    def tom(self, v: float, pitch: float) -> np.ndarray:
        t = self._t(0.6)
        f = pitch * (1 + 0.5 * np.exp(-t / 0.03))
        body = np.sin(2 * np.pi * np.cumsum(f) / self.sr) * np.exp(-t / 0.25)
        stick = sosfilt(self.bp_stick, self._noise(len(t))) * np.exp(-t / 0.004) * 0.4
        return v * (body + stick)

    def brush(self, v: float) -> np.ndarray:
        t = self._t(0.25)
        env = (1 - np.exp(-t / 0.003)) * np.exp(-t / 0.05)
        return v * sosfilt(self.bp_brush, self._noise(len(t))) * env * 2.0

    def cymbal_track(self, times: np.ndarray, vels: np.ndarray, n: int, kind: str) -> np.ndarray:
        """All strokes of one cymbal into [n] samples: each stroke re-excites the partials, whose
        envelopes add up over seconds (the wash), plus a short stick transient."""
        f, a, tau = (
            (self.ride_f, self.ride_a, self.ride_tau)
            if kind == "ride"
            else (self.crash_f, self.crash_a, self.crash_tau)
        )
        imp = np.zeros(n)
        idx = np.minimum((times * self.sr).astype(int), n - 1)
        np.add.at(imp, idx, vels)
        t = np.arange(n) / self.sr
        # the first few tens of ms are brighter than the ring (a stick excites the highs)
        fast = lfilter([1.0], [1.0, -math.exp(-1.0 / (0.04 * self.sr))], imp)
        out = np.zeros(n)
        # partials in 8 groups of similar decay share one envelope (8 filters, not 96)
        order = np.argsort(tau)
        for grp in np.array_split(order, 8):
            ti = float(np.mean(tau[grp]))
            env = lfilter([1.0], [1.0, -math.exp(-1.0 / (ti * self.sr))], imp)
            ring = np.zeros(n)
            bright = np.zeros(n)
            for k in grp:
                s = a[k] * np.sin(2 * np.pi * f[k] * t + self.rng.uniform(0, 2 * np.pi))
                ring += s
                bright += s * (f[k] / 8000.0)
            out += env * ring + 1.5 * fast * bright
        stick = np.zeros(n)
        for ti, vi in zip(idx, vels, strict=True):
            m = min(n - ti, int(0.03 * self.sr))
            tt = np.arange(m) / self.sr
            stick[ti : ti + m] += vi * self._noise(m) * np.exp(-tt / 0.004) * 0.6
        out += sosfilt(self.bp_stick, stick)
        # the modes above a few kHz are too dense to resolve: shaped noise with the wash's
        # envelope stands in for them (a crash is noisier than a ride, see RIDE_NOISE)
        gain, tau_n = (0.5, 1.2) if kind == "crash" else (RIDE_NOISE, RIDE_TAU[2])
        env = lfilter([1.0], [1.0, -math.exp(-1.0 / (tau_n * self.sr))], imp)
        out += gain * sosfilt(self.hp_hat, self._noise(n)) * env
        return out


def hit(kit: Kit, inst: str, v: float) -> np.ndarray:
    """One hit of a (non-cymbal) instrument of the kit at linear velocity v."""
    if inst == "kick":
        return kit.kick(v)
    if inst in ("snare", "ghost"):
        return kit.snare(v)
    if inst in HAT_GAIN:
        return kit.hat(v * HAT_GAIN[inst])
    if inst == "brush":
        return kit.brush(v)
    return kit.tom(v, (180.0, 130.0, 95.0)[int(inst[-1])])


def _fade_out(x: np.ndarray, sr: int, seconds: float = 0.03) -> np.ndarray:
    """The sample's last 30 ms ramped to 0 (half a cosine): a kick cut off at 0.45 s still
    rings at -18 dB, and the step is a click that a detector rightly calls an onset."""
    m = min(len(x), int(seconds * sr))
    x = x.copy()
    x[len(x) - m :] *= 0.5 + 0.5 * np.cos(np.linspace(0.0, np.pi, m))
    return x


def _pattern(style: str, rng: np.random.Generator, bars: int):
    """Hits as (bar, position in 16ths (float for swing), class, instrument, velocity dB)."""
    hits = []
    for b in range(bars):
        phrase_start = b % 4 == 0
        fill = b % 4 == 3 and style in ("rock", "toms", "crash", "softhats")
        if phrase_start and style != "brushes":
            hits.append((b, 0, "CY", "crash", -2.0))
        if style == "rock":
            for p in range(0, 16, 2):
                hits.append((b, p, "HH", "hat", -8.0 if p % 4 else -5.0))
            kicks = [0, 8, 10] if rng.random() < 0.5 else [0, 6, 8]
        elif style == "toms":
            for p in range(0, 16, 2):
                if not (fill and p >= 8):
                    hits.append((b, p, "HH", "hat", -8.0))
            kicks = [0, 8]
        elif style == "ride":
            for p in (0, 4, 6.67, 8, 12, 14.67):  # ding, ding-a ding, ding-a (swung)
                hits.append((b, p, "CY", "ride", -4.0 if p in (4, 12) else -6.0))
            hits += [(b, 4, "HH", "pedal", -20.0), (b, 12, "HH", "pedal", -20.0)]
            kicks = [0, 8] if rng.random() < 0.7 else [0, 7, 8]
        elif style == "crash":
            for p in (0, 4, 8, 12):
                if p or not phrase_start:
                    hits.append((b, p, "CY", "crash", -5.0))
            kicks = [0, 2, 8, 10]
        elif style == "softhats":
            for p in range(16):
                hits.append((b, p, "HH", "softhat", -20.0 if p % 2 else -18.0))
            for p in (3, 7, 9, 14, 15):
                if rng.random() < 0.6:
                    hits.append((b, p, "SD", "ghost", -22.0))
            kicks = [0, 3, 10] if rng.random() < 0.5 else [0, 8, 11]
        else:  # brushes: taps on the swung eighths, slaps on 2 and 4, feathered kick
            for p in (0, 2.67, 4, 6.67, 8, 10.67, 12, 14.67):
                hits.append((b, p, "SD", "brush", -12.0 if p in (4, 12) else -18.0))
            hits += [(b, 4, "HH", "pedal", -18.0), (b, 12, "HH", "pedal", -18.0)]
            kicks = [0, 8]
        kv = -14.0 if style == "brushes" else 0.0
        for p in kicks:
            hits.append((b, p, "KD", "kick", kv if p in (0, 8) else kv - 4.0))
        if style not in ("brushes",):
            for p in (4, 12):
                if not (fill and p == 12):
                    hits.append((b, p, "SD", "snare", -1.0))
        if fill:
            for i, p in enumerate(range(8 if style == "toms" else 12, 16)):
                hits.append((b, p, "TT", f"tom{i % 3}", -3.0))
    return hits


def synth(style: str, seed: int = 0, seconds: float = 20.0, sr: int = SR):
    """One performance: (audio [n] float32 peaking at 0.9, hits [(t, class)],
    beats [(t, beat in bar)])."""
    if style not in STYLES:
        raise ValueError(f"style {style!r}: one of {', '.join(STYLES)}")
    rng = np.random.default_rng([seed, STYLES.index(style)])
    lo, hi = {"ride": (96, 180), "brushes": (80, 150), "crash": (140, 180)}.get(style, (90, 140))
    bpm = float(rng.uniform(lo, hi))
    beat = 60.0 / bpm
    bars = int(seconds / (4 * beat)) + 1
    n = int((bars * 4 * beat + 2.0) * sr)
    # half the pieces start with a pickup (on beat 2, 3 or 4): not every recording starts on one
    skip = int(rng.integers(1, 4)) if rng.random() < 0.5 else 0
    kit = Kit(rng, sr)
    out = np.zeros(n)
    ann: list[tuple[float, str]] = []
    cym: dict[str, tuple[list[float], list[float]]] = {"ride": ([], []), "crash": ([], [])}
    t0 = 0.3
    for b, p, cls, inst, vdb in _pattern(style, rng, bars):
        if b * 4 + p / 4.0 < skip - 0.01:
            continue
        t = t0 + (b * 4 + p / 4.0) * beat + rng.normal(0, 0.004)
        t = max(0.0, t)
        v = _db(vdb + rng.normal(0, 1.5))
        ann.append((t, cls))
        if inst in cym:
            cym[inst][0].append(t)
            cym[inst][1].append(v * (0.5 if inst == "ride" else 0.7))
            continue
        x = _fade_out(hit(kit, inst, v), sr)
        i = int(t * sr)
        m = min(len(x), n - i)
        out[i : i + m] += x[:m]
    for kind, (ts, vs) in cym.items():
        if ts:
            out += kit.cymbal_track(np.array(ts), np.array(vs), n, kind)
    if style == "brushes":  # the sweep: a continuous swish, circling (no onsets of its own)
        tt = np.arange(n) / sr
        env = 0.5 + 0.5 * np.sin(2 * np.pi * tt / (2 * beat) - np.pi / 2)
        out += 0.04 * sosfilt(kit.bp_brush, rng.standard_normal(n)) * (0.3 + 0.7 * env)
    # a small room: exponentially decaying noise, RT60 ~0.4 s, ~-16 dB wet
    m = int(0.5 * sr)
    ir = rng.standard_normal(m) * np.exp(-np.arange(m) / sr * 6.9 / 0.4)
    ir *= _db(-16.0) / np.sqrt(np.sum(ir**2))
    out = out + fftconvolve(out, ir)[:n]
    out *= 0.9 / (np.max(np.abs(out)) + 1e-12)
    shift = skip * beat  # the first kept beat lands at t0
    out = out[int(round(shift * sr)) :]
    ann = [(t - shift, c) for t, c in ann]
    beats = [(t0 + k * beat - shift, k % 4 + 1) for k in range(skip, bars * 4)]
    return out.astype(np.float32), sorted(ann), beats


def write_set(out_dir: str, seed: int = 0, seconds: float = 20.0) -> list[str]:
    """Write every style into out_dir in the eval folders' layout; returns the WAV paths."""
    import soundfile as sf

    os.makedirs(out_dir, exist_ok=True)
    paths = []
    for style in STYLES:
        x, hits, beats = synth(style, seed, seconds)
        base = os.path.join(out_dir, style)
        sf.write(base + ".wav", x, SR, subtype="FLOAT")
        with open(base + ".drums.txt", "w") as f:
            f.writelines(f"{t:.5f}\t{c}\n" for t, c in hits)
        with open(base + ".beats", "w") as f:
            f.writelines(f"{t:.5f}\t{k}\n" for t, k in beats)
        paths.append(base + ".wav")
    return paths


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out_dir")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--seconds", type=float, default=20.0)
    args = ap.parse_args(argv)
    for p in write_set(args.out_dir, args.seed, args.seconds):
        print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
