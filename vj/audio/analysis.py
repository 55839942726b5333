"""Streaming spectral analysis per hop: log-filtered spectral flux (overall and low/mid/high),
band energies, RMS, centroid, flatness, causal peak picking and attack/release envelopes."""

from __future__ import annotations

import math

import numpy as np

# Onset-strength channels: 0 = all bands, then the three drum classes (kick / snare / hats).
N_ODF = 4
ODF_NAMES = ("all", "low", "mid", "high")
LOW_MAX_HZ = 150.0  # kick body
MID_RANGE_HZ = (150.0, 2500.0)  # snare body and crack
HIGH_MIN_HZ = 5000.0  # hats and cymbals

# An onset is the onset channel's pick or the high band's (hats, cymbals), whichever comes
# first, at most one per ONSET_MERGE_S: the all-filter channel averages the few filters a soft
# hat or a ride stroke over its own wash moves with all the others, and misses them (synthetic
# ride/soft-hat set: HH recall 0.64 -> 0.81, CY 0.81 -> 0.88; mixes 0.764 -> 0.797 F1)
ONSET_MERGE_S = 0.05
RING = 32  # hops per sample / history ring before one wrap-around copy
AGC_FLOOR = 1e-4  # -80 dBFS: below this the input is treated as silence, never amplified further
# The low band's kick flux is measured against the loudest of the frames of the last LOW_HOLD_S
# (from LOW_LAG_FRAMES back), not one frame: a bass note's partials inside one ~43 Hz FFT bin beat
# against each other at their spacing (40-100 Hz, a 10-25 ms period), so its low band swells
# and falls every few hops and each swell is a "rise"; a kick rises above everything before it.
# 25 ms is one period of the lowest bass note (E1, 41 Hz), not a value fitted to any file.
LOW_HOLD_S = 0.025
# ... and the frames it is held against start LOW_LAG_FRAMES of an FFT frame back (not flux_lag,
# ~6 ms): the 23 ms window takes its whole length to let a kick's body in, so one hop's rise is
# a quarter of it, under a bass note whose hold it must clear; half a window back (madmom's
# diff_ratio 0.5) sees half the rise in one difference (mixes' kicks found 27 -> 35 of 43).
LOW_LAG_FRAMES = 0.5


def default_n_fft(sample_rate: int, hop: int) -> int:
    """About 21 ms of audio rounded up to a power of two (1024 at 44.1/48 kHz), never below hop."""
    n = 1 << max(6, math.ceil(math.log2(0.0213 * sample_rate)))
    while n < hop:
        n *= 2
    return n


def _bin_freqs(sample_rate: int, n_fft: int) -> np.ndarray:
    return np.fft.rfftfreq(n_fft, 1.0 / sample_rate)  # [n_bins]


def log_filterbank(
    sample_rate: int,
    n_fft: int,
    bands_per_octave: int = 12,
    fmin: float = 30.0,
    fmax: float = 17000.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Triangular filters on log-spaced centres snapped to FFT bins (duplicates merged).

    Returns (filters [n_filt, n_bins] float32 with unit area, centre frequencies [n_filt]).
    """
    freqs = _bin_freqs(sample_rate, n_fft)
    fmax = min(fmax, 0.95 * sample_rate / 2)
    n_oct = math.log2(fmax / fmin)
    centres = fmin * 2.0 ** (np.arange(int(n_oct * bands_per_octave) + 1) / bands_per_octave)
    bins = np.unique(np.searchsorted(freqs, centres))
    bins = bins[(bins > 0) & (bins < len(freqs) - 1)]
    fb = np.zeros((len(bins) - 2, len(freqs)), np.float32)
    for i in range(len(bins) - 2):
        lo, c, hi = bins[i], bins[i + 1], bins[i + 2]
        fb[i, lo : c + 1] = np.linspace(0, 1, c - lo + 1, endpoint=True)
        fb[i, c : hi + 1] = np.linspace(1, 0, hi - c + 1, endpoint=True)
        fb[i, c] = 1.0
        fb[i] /= fb[i].sum()
    return fb, freqs[bins[1:-1]]


def band_matrix(
    sample_rate: int, n_fft: int, n_bands: int = 8, fmin: float = 40.0, fmax: float = 16000.0
) -> np.ndarray:
    """Rectangular log-spaced bands summing power: [n_bands, n_bins] float32 (each band ≥ 1 bin)."""
    freqs = _bin_freqs(sample_rate, n_fft)
    fmax = min(fmax, 0.95 * sample_rate / 2)
    edges = fmin * (fmax / fmin) ** (np.arange(n_bands + 1) / n_bands)
    m = np.zeros((n_bands, len(freqs)), np.float32)
    for b in range(n_bands):
        sel = (freqs >= edges[b]) & (freqs < edges[b + 1])
        if not sel.any():  # narrower than one bin at low frequencies: take the nearest bin
            sel[np.argmin(np.abs(freqs - math.sqrt(edges[b] * edges[b + 1])))] = True
        m[b, sel] = 1.0
    return m


def group_matrix(centres: np.ndarray, tilt: float = 0.0) -> np.ndarray:
    """[N_ODF, n_filt] float32: row 0 weights all filters by (f / 1 kHz)^tilt (tilt > 0 favours
    percussion over tonal low end, like aubio's HFC), rows 1..3 the low / mid / high groups."""
    g = np.zeros((N_ODF, len(centres)), np.float32)
    g[0] = (np.asarray(centres) / 1000.0) ** tilt
    g[1] = centres < LOW_MAX_HZ
    g[2] = (centres >= MID_RANGE_HZ[0]) & (centres < MID_RANGE_HZ[1])
    g[3] = centres >= HIGH_MIN_HZ
    g /= np.maximum(g.sum(axis=1, keepdims=True), 1.0)  # mean flux per filter: rate-independent
    return g


def time_constant_coef(seconds: float, rate_hz: float) -> float:
    """One-pole smoothing coefficient reaching 1 - 1/e after `seconds` at `rate_hz` updates."""
    if seconds <= 0:
        return 1.0
    return 1.0 - math.exp(-1.0 / (seconds * rate_hz))


class Envelope:
    """Attack/release follower over a vector, in place: fast up, slow down."""

    def __init__(
        self, size: int, rate_hz: float, attack_s: float = 0.005, release_s: float = 0.15
    ) -> None:
        self.value = np.zeros(size, np.float32)
        a = time_constant_coef(attack_s, rate_hz)
        r = time_constant_coef(release_s, rate_hz)
        self._r = np.float32(r)
        self._extra = np.float32(a - r)  # added on the rising part only
        self._d = np.zeros(size, np.float32)
        self._up = np.zeros(size, np.float32)
        self._instant = attack_s <= 0
        self._decay = np.float32(math.exp(-1.0 / (release_s * rate_hz)) if release_s > 0 else 0)

    def process(self, x: np.ndarray) -> np.ndarray:
        if self._instant:  # peak hold with exponential release: two ufunc calls
            np.multiply(self.value, self._decay, out=self.value)
            np.maximum(self.value, x, out=self.value)
            return self.value
        # v += r * d + (a - r) * max(d, 0): one branch-free update, no temporaries
        d, up, v = self._d, self._up, self.value
        np.subtract(x, v, out=d)
        np.maximum(d, 0.0, out=up)
        np.multiply(d, self._r, out=d)
        np.add(v, d, out=v)
        np.multiply(up, self._extra, out=up)
        np.add(v, up, out=v)
        return v


class PeakPicker:
    """Causal onset picking on one detection function, firing on the rising edge.

    Fires when the value exceeds an adaptive threshold (a running mean times `ratio` plus
    `delta`), is rising, at least `min_gap_s` after the previous onset, and the function has
    fallen back to `rearm` times its last peak since then (so one hit fires once). With
    `peak_rel` > 0 the added term is max(delta, peak_rel × the median peak of the last 8
    hits, decaying with `peak_release_s` since the last one): a band's hits are then judged
    against its own recent hits, which keeps kick and snare detectable inside a dense mix,
    and one outlier (the first hop after silence) does not raise the bar. A caller that
    drops a hit the picker fired (a gate after the picker) sets `counted = False` before the
    hit ends: its peak then stays out of the median.
    """

    __slots__ = (
        "_mean_a",
        "_ratio",
        "_delta",
        "_gap",
        "_rearm",
        "_mean",
        "_prev",
        "_since",
        "_peak",
        "_armed",
        "threshold",
        "_peak_rel",
        "_level",
        "_level_decay",
        "_hits",
        "_hit_i",
        "counted",
    )

    def __init__(
        self,
        rate_hz: float,
        delta: float,
        ratio: float = 1.5,
        mean_s: float = 0.1,
        min_gap_s: float = 0.03,
        rearm: float = 0.6,
        peak_rel: float = 0.0,
        peak_release_s: float = 3.0,
    ) -> None:
        self._peak_rel = peak_rel
        self._level = 0.0  # decaying median hit peak (used when peak_rel > 0)
        self._level_decay = math.exp(-1.0 / (peak_release_s * rate_hz))
        self._hits = [0.0] * 8  # peaks of the last 8 hits, a ring
        self._hit_i = 0
        self.counted = True  # whether the current hit's peak joins the median
        self._mean_a = time_constant_coef(mean_s, rate_hz)
        self._ratio = ratio
        self._delta = delta
        self._gap = max(1, round(min_gap_s * rate_hz))
        self._rearm = rearm
        self._mean = 0.0
        self._prev = 0.0
        self._since = 1 << 30
        self._peak = 0.0
        self._armed = True
        self.threshold = delta

    @property
    def mean(self) -> float:
        """The running mean of the detection function (the threshold's base)."""
        return self._mean

    def process(self, v: float) -> bool:
        delta = self._delta
        if self._peak_rel:
            self._level *= self._level_decay
            rel = self._peak_rel * self._level
            if rel > delta:
                delta = rel
        thr = self._mean * self._ratio + delta
        self.threshold = thr
        fire = False
        self._since += 1
        if self._armed:
            if v > thr and v > self._prev and self._since >= self._gap:
                fire = True
                self._armed = False
                self._since = 0
                self._peak = v
                self.counted = True
        else:
            if v > self._peak:
                self._peak = v
            elif v < self._peak * self._rearm or v < thr:
                self._armed = True
                if self._peak_rel and self.counted:  # the hit is over: its peak joins the median
                    hits = self._hits
                    hits[self._hit_i] = self._peak
                    self._hit_i = (self._hit_i + 1) & 7
                    self._level = sorted(hits)[4]
        self._mean += self._mean_a * (v - self._mean)
        self._prev = v
        return fire


class HopAnalyzer:
    """Per-hop spectral features over a sliding n_fft frame; results land in preallocated arrays.

    `process(hop_samples)` takes exactly `hop` mono float32 samples (finite, any level) and
    updates `odf` [N_ODF] and `rms_norm`; `bands` [n_bands] (band magnitude sums,
    gain-normalised), `centroid` and `flatness` are properties of the latest hop, computed when
    read. Level independence: a peak follower of the hop RMS (instant attack, slow release)
    scales the spectrum before log compression, so -30 dBFS and -6 dBFS input give the same
    onset function once the first hit has been heard. One fused matrix product turns the
    magnitude spectrum into log-filterbank inputs, band sums, the filter sum, the centroid
    numerator and the total; rings with fixed views replace per-hop shifts and copies, which
    keeps the hop near 21–25 µs in Python.
    """

    def __init__(
        self,
        sample_rate: int,
        hop: int,
        n_bands: int = 8,
        n_fft: int | None = None,
        flux_lag: int | None = None,
        agc_release_s: float = 4.0,
        compression: float = 100.0,
        bands_per_octave: int = 12,
        onset_width: int = 2,
        tilt: float = 0.0,
        low_hold_s: float = LOW_HOLD_S,
        low_lag_frames: float = LOW_LAG_FRAMES,
    ) -> None:
        self.sample_rate = sample_rate
        if not 1 <= int(onset_width) <= 4:
            raise ValueError(f"onset_width {onset_width} must be 1..4 filters each side")
        w = self.onset_width = int(onset_width)
        self.hop = hop
        self.n_fft = n_fft or default_n_fft(sample_rate, hop)
        if self.n_fft < hop:
            raise ValueError(f"n_fft {self.n_fft} must be ≥ hop {hop}")
        self.rate_hz = sample_rate / hop
        # compare with the frame ~ 5.8 ms back at least: at small hops consecutive frames
        # overlap so much that the flux would vanish
        self.flux_lag = flux_lag or max(1, round(256 / 44100 * sample_rate / hop))
        # the held low band's frames start this many hops back (see LOW_LAG_FRAMES)
        self.low_lag = max(self.flux_lag, round(low_lag_frames * self.n_fft / hop))
        self._window = np.hanning(self.n_fft + 2)[1:-1].astype(np.float32)
        # sliding analysis frame without a shift per hop: a ring of samples where frame k is
        # the view _ring[k*hop : k*hop + n_fft]; the tail is copied to the front every RING hops
        n_keep = self.n_fft - hop
        self._ring = np.zeros(n_keep + RING * hop, np.float32)
        self._frames = [self._ring[k * hop : k * hop + self.n_fft] for k in range(RING)]
        self._news = [self._ring[n_keep + k * hop : n_keep + (k + 1) * hop] for k in range(RING)]
        self._ring_tail = self._ring[RING * hop :]  # [n_keep], moves to _ring[:n_keep]
        self._ring_head = self._ring[:n_keep]
        self._k = 0  # hop index within the sample ring
        self._ones = np.ones(hop, np.float32)
        self._wframe = np.zeros(self.n_fft, np.float32)
        fb, self.centres = log_filterbank(sample_rate, self.n_fft, bands_per_octave)
        self._fb = fb
        n_filt = fb.shape[0]
        self.n_filt = n_filt
        freqs = _bin_freqs(sample_rate, self.n_fft)
        # fused [n_bins, n_filt + n_bands + 3]:
        # filters | bands | filter sum | centroid numerator | total
        m = np.zeros((len(freqs), n_filt + n_bands + 3), np.float32)
        m[:, :n_filt] = fb.T
        m[:, n_filt : n_filt + n_bands] = band_matrix(sample_rate, self.n_fft, n_bands).T
        m[:, -3] = fb.sum(axis=0)
        m[:, -2] = freqs / (sample_rate / 2)
        m[:, -1] = 1.0
        m[:2] = 0.0  # DC and the lowest bin never count: DC offsets must not move features
        # spectrum scale folded in: a full-scale sine gives ~1 in its bin
        m *= np.float32(2.0 / self._window.sum())
        self._fused = m
        n_out = m.shape[1]
        # history of fused outputs (before gain), one row per hop: the product lands in row
        # hl + j, row hl + j - flux_lag holds the frame flux_lag hops back and row
        # hl + j - low_lag the held low band's newest old frame
        lag = self.flux_lag
        hl = max(lag, self.low_lag)
        self._hist = np.zeros((RING + hl, n_out), np.float32)
        self._rows = [self._hist[hl + j] for j in range(RING)]
        self._olds = [self._hist[hl + j - lag, :n_filt] for j in range(RING)]
        self._bands_raw = [r[n_filt : n_filt + n_bands] for r in self._rows]
        self._filts_raw = [r[:n_filt] for r in self._rows]
        self._hist_tail = self._hist[RING:]  # [hl, n_out], moves to _hist[:hl]
        self._hist_head = self._hist[:hl]
        self._j = 0  # hop index within the history
        self._row = self._rows[RING - 1]  # the latest product (zeros before the first hop)
        self._filt_raw = self._filts_raw[RING - 1]
        self.bands_raw = self._bands_raw[RING - 1]  # [n_bands] band sums before the gain
        self._bands = np.zeros(n_bands, np.float32)
        self._mag = np.zeros(len(freqs), np.float32)
        self._spec = np.zeros(len(freqs), np.complex64)
        self._rfft = self._pick_rfft()
        # log-compressed pair, zero-padded for the max filters: [0]*w | old | [0]*w | new;
        # both halves are scaled into it (contiguous 1-D ufuncs: a strided [2, n_filt] view
        # costs three times as much) and one log1p covers all of it (log1p(0) = 0 keeps the pads)
        self._lp = np.zeros(2 * n_filt + 2 * w, np.float32)
        p = self._lp[: n_filt + 2 * w]  # the old row with w zeros each side
        self._old_log = self._lp[w : n_filt + w]
        self._new_log = self._lp[n_filt + 2 * w :]
        self._scale = np.zeros((), np.float32)  # 0-d operands cost less than Python floats
        self._zero = np.zeros((), np.float32)
        self._eps = np.zeros((), np.float32)  # flatness' floor, per read
        # SuperFlux max filters over the old row as (a, b, out) steps on fixed views (a slice
        # costs as much as a small ufunc call): m1 over ±1 filters, then widened in place to
        # ±w; the zero pads stand in for missing neighbours (exact: log values are ≥ 0)
        n = n_filt
        u = np.zeros(n + 1, np.float32)
        m1, mw = np.zeros(n, np.float32), np.zeros(n, np.float32)
        steps = [(p[w - 1 : w + n], p[w : w + n + 1], u), (u[:n], p[w + 1 : w + 1 + n], m1)]
        steps.append((m1, p[w - 1 : w - 1 + n], mw))  # mw = m1 (a max with a subset of m1)
        for k in range(2, w + 1):
            steps += [(mw, p[w - k : w - k + n], mw), (mw, p[w + k : w + k + n], mw)]
        self._mf_steps = tuple(steps)
        self._m1, self._mw = m1, mw
        # flux rows: [0] against ±1 (bands and beats), [1] against ±w (the onset channel)
        self._flux = np.zeros((2, n), np.float32)
        self.odfs = np.zeros((2, N_ODF), np.float32)  # rows as _flux, through the groups
        self.odf = self.odfs[0]  # [all, low, mid, high] over ±1
        self._tmp = np.zeros(n_filt, np.float32)
        self._ones_f = np.ones(n_filt, np.float32)
        self._groups = np.ascontiguousarray(group_matrix(self.centres, tilt).T)  # [n_filt, 4]
        self._compression = compression
        # the held low band (see LOW_HOLD_S): per low filter, a ring of the ±1 max of the raw
        # old frames low_lag .. low_lag + n_hold - 1 hops back, in Python floats (2-3 filters:
        # cheaper than numpy calls)
        n_low = self.n_low = max(1, int(np.count_nonzero(self.centres < LOW_MAX_HZ)))
        self.n_under = max(n_low, int(np.count_nonzero(self.centres < MID_RANGE_HZ[1])))
        self.n_hold = max(1, round(low_hold_s * self.rate_hz))
        n_lw = min(n_low + 1, n_filt)
        # the old frame's low filters + 1
        self._hold_olds = [self._hist[hl + j - self.low_lag, :n_lw] for j in range(RING)]
        self._low_news = [f[:n_low] for f in self._filts_raw]
        self._hold = [[0.0] * self.n_hold for _ in range(n_low)]  # [n_low][n_hold]
        self._hold_span = [(max(f - 1, 0), f + 2) for f in range(n_low)]  # ±1 neighbours
        self._hold_p = 0
        self.low_held = 0.0  # low-band flux against the held frames (kick picking)
        self._agc = AGC_FLOOR
        self._agc_rel = math.exp(-1.0 / (agc_release_s * self.rate_hz))
        self.rms = 0.0  # raw hop RMS (dBFS-able)
        self.rms_norm = 0.0  # hop RMS / level follower
        self.gain = 1.0 / AGC_FLOOR

    def _pick_rfft(self):
        """The cheapest real FFT that writes into our buffer and matches np.fft.rfft.

        pocketfft's own entry point (what scipy.fft wraps) costs half of numpy's Python-level
        wrapper per call at this size; it is private API, so it is used only after it proves
        itself here (and only when scipy is installed), with numpy as the fallback.
        """
        spec = self._spec
        probe = np.random.default_rng(0).standard_normal(self.n_fft).astype(np.float32)
        want = np.fft.rfft(probe)
        try:
            from scipy.fft._pocketfft import pypocketfft

            r2c = pypocketfft.r2c
            got = r2c(probe, (0,), True, 0, spec, 1)
            if got is spec and np.allclose(spec, want, rtol=1e-4, atol=1e-3):
                return lambda a: r2c(a, (0,), True, 0, spec, 1)
        except Exception:
            pass
        try:
            np.fft.rfft(probe, out=spec)
            return lambda a: np.fft.rfft(a, out=spec)
        except TypeError:  # numpy < 2: no `out`
            return np.fft.rfft

    def process(self, x: np.ndarray, energy: float | None = None) -> None:
        """Analyse one hop of `hop` samples; `energy` is float(np.dot(x, x)) when the caller
        has it already (it is not computed twice)."""
        h = self.hop
        k = self._k
        if k == RING:  # the last frame reached the ring's end: its tail becomes the head
            self._ring_head[:] = self._ring_tail
            k = 0
        self._news[k][:] = x
        fr = self._frames[k]
        self._k = k + 1
        mean = float(np.dot(x, self._ones)) / h  # a BLAS dot costs less than add.reduce
        if energy is None:
            energy = float(np.dot(x, x))
        rms = math.sqrt(max(0.0, energy / h - mean * mean))  # AC only: DC ignored
        self.rms = rms
        gain = 1.0 / self._agc  # previous level: a louder hit raises the flux before AGC adapts
        # level follower: instant attack, slow release, floored at -80 dBFS
        self._agc = max(rms, self._agc * self._agc_rel, AGC_FLOOR)
        g = self.gain = 1.0 / self._agc  # levels (RMS, bands) are relative to the updated level
        self.rms_norm = rms * g
        np.multiply(fr, self._window, out=self._wframe)
        np.abs(self._rfft(self._wframe), out=self._mag)
        j = self._j
        self._row = row = self._rows[j]
        self._filt_raw = self._filts_raw[j]
        self.bands_raw = self._bands_raw[j]
        np.dot(self._mag, self._fused, out=row)  # np.dot: less call overhead than matmul
        # spectral flux against the frame flux_lag hops back, half-wave rectified; both frames
        # are compressed with the same (current) gain so a level-follower jump adds no flux
        sc = self._scale
        sc[...] = self._compression * gain
        np.multiply(self._olds[j], sc, out=self._old_log)
        np.multiply(self._filts_raw[j], sc, out=self._new_log)
        np.log1p(self._lp, out=self._lp)
        # held low band: the old frame's ±1 maxima join the rings, each low filter rises
        # against the largest in its ring (log1p is monotonic: max of raw values, one log)
        old = self._hold_olds[j].tolist()
        p = self._hold_p
        self._hold_p = p + 1 if p + 1 < self.n_hold else 0
        s = self._compression * gain
        log1p = math.log1p
        acc = 0.0
        f = 0
        for v in self._low_news[j].tolist():
            a, b = self._hold_span[f]
            ring = self._hold[f]
            ring[p] = max(old[a:b])
            o = max(ring)
            if v > o:
                acc += log1p(s * v) - log1p(s * o)
            f += 1
        self.low_held = acc / self.n_low
        j += 1
        if j == RING:
            self._hist_head[:] = self._hist_tail
            j = 0
        self._j = j
        for a, b, out in self._mf_steps:  # energy moving to a neighbouring band is no onset
            np.maximum(a, b, out=out)
        fl = self._flux
        np.subtract(self._new_log, self._m1, out=fl[0])
        np.subtract(self._new_log, self._mw, out=fl[1])
        np.maximum(fl, self._zero, out=fl)
        np.dot(fl, self._groups, out=self.odfs)

    @property
    def onset_odf(self) -> float:
        """The onset channel: all filters against the wider ±onset_width max filter, which
        lets fewer tonal note changes (bass, guitar, vocals) through than the ±1 channels."""
        return float(self.odfs[1, 0])

    def low_share(self) -> float:
        """Mean of the low (< LOW_MAX_HZ) filters over the mean of the filters under
        MID_RANGE_HZ's top, latest hop: 1 for white noise, and a cymbal's wash (> 2 kHz) does
        not lower it (computed when asked: read at a kick pick, not every hop)."""
        fr = self._filt_raw
        am = float(fr[: self.n_under].sum()) / self.n_under
        if am <= 1e-12:
            return 0.0
        return float(fr[: self.n_low].sum()) / self.n_low / am

    @property
    def centroid(self) -> float:
        """Spectral centroid of the latest hop, 0..1 of Nyquist (computed when read)."""
        row, g = self._row, self.gain
        total = float(row[-1] * g) + 1e-12
        return float(row[-2] * g) / total

    @property
    def bands(self) -> np.ndarray:
        """[n_bands] band magnitude sums of the latest hop, gain-normalised (computed when
        read, into one reused array)."""
        return np.multiply(self.bands_raw, self.gain, out=self._bands)  # a float keeps float32

    @property
    def flatness(self) -> float:
        """Spectral flatness of the latest hop over the log filterbank: geometric / arithmetic
        mean, 0..1 (computed when read: the live path reads it once per block)."""
        g = self.gain
        n_f = self.n_filt
        am = float(self._row[-3]) / n_f  # before the gain, which cancels in the ratio
        if am * g <= 1e-9:
            return 0.0
        f, eps = self._tmp, self._eps
        eps[...] = 1e-12 / g
        np.add(self._filt_raw, eps, out=f)  # log(g * f + 1e-12) = log(g) + log(f + ..)
        np.log(f, out=f)
        return min(1.0, math.exp(float(np.dot(f, self._ones_f)) / n_f) / am)


def reference_odf(
    x: np.ndarray,
    sample_rate: int,
    hop: int,
    n_fft: int | None = None,
    flux_lag: int | None = None,
    agc_release_s: float = 4.0,
    compression: float = 100.0,
    onset_width: int = 2,
    low_hold_s: float = LOW_HOLD_S,
    low_lag_frames: float = LOW_LAG_FRAMES,
) -> np.ndarray:
    """Offline twin of HopAnalyzer's onset functions: whole-signal STFT, plain loops.

    x [n] mono; returns [n // hop, N_ODF + 2]: HopAnalyzer.odf, its onset_odf, its low_held.
    Slow; for tests only.
    """
    an = HopAnalyzer(
        sample_rate,
        hop,
        n_fft=n_fft,
        flux_lag=flux_lag,
        agc_release_s=agc_release_s,
        compression=compression,
        onset_width=onset_width,
        low_hold_s=low_hold_s,
        low_lag_frames=low_lag_frames,
    )
    n_fft, lag, low_lag = an.n_fft, an.flux_lag, an.low_lag
    low = np.asarray(an.centres) < LOW_MAX_HZ  # the low filters
    n_hops = len(x) // hop
    padded = np.concatenate([np.zeros(n_fft - hop, np.float64), x.astype(np.float64)])
    window = np.hanning(n_fft + 2)[1:-1]
    fb = an._fb.astype(np.float64)
    groups = group_matrix(an.centres).astype(np.float64)
    rel = math.exp(-1.0 / (agc_release_s * sample_rate / hop))
    level = AGC_FLOOR
    logs = []
    out = np.zeros((n_hops, N_ODF + 2))
    for i in range(n_hops):
        frame = padded[i * hop : i * hop + n_fft]
        new = x[i * hop : (i + 1) * hop].astype(np.float64)
        rms = float(np.std(new))
        mag = np.abs(np.fft.rfft(frame * window)) * 2.0 / window.sum()
        mag[:2] = 0.0
        raw = fb @ mag
        prev = logs[i - lag] if i >= lag else np.zeros_like(raw)
        new_log = np.log1p(compression * raw / level)
        prev_log = np.log1p(compression * prev / level)
        for dst, w, src in ((slice(0, N_ODF), 1, slice(0, N_ODF)), (N_ODF, onset_width, 0)):
            # each filter against the largest of its ±w neighbours in the older frame
            pad = np.r_[np.zeros(w), prev_log, np.zeros(w)]
            peak = np.array([pad[f : f + 2 * w + 1].max() for f in range(len(prev_log))])
            out[i, dst] = (groups @ np.maximum(new_log - peak, 0.0))[src]
        # held low band: each low filter against its ±1 neighbours in every frame from low_lag
        # to low_lag + n_hold - 1 back (frames before the start are zeros)
        held = [logs[i - low_lag - k] for k in range(an.n_hold) if i - low_lag - k >= 0]
        top = np.max(held, axis=0) if held else np.zeros_like(raw)
        top_log = np.log1p(compression * top / level)
        pad = np.r_[0.0, top_log, 0.0]
        rises = [new_log[f] - pad[f : f + 3].max() for f in np.nonzero(low)[0]]
        out[i, N_ODF + 1] = np.maximum(rises, 0.0).mean()
        logs.append(raw)
        level = max(rms, level * rel, AGC_FLOOR)
    return out
