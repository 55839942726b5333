"""Causal beat tracker: tempo from the onset function's autocorrelation, beats predicted ahead
from a cumulative beat score (the online dynamic-programming scheme of Ellis / Stark et al.)."""

from __future__ import annotations

import math

import numpy as np

from vj.tempo import TempoState


class BeatTracker:
    """Feed one onset-strength value per hop with `process(value, t_ns)`; True on a beat.

    Beats are predicted half a period ahead and fired in the hop they fall in, so they are
    not late. Also a `TempoSource` (name "tracker") for the arbiter.
    """

    name = "tracker"

    def __init__(
        self,
        rate_hz: float,
        min_bpm: float = 70.0,
        max_bpm: float = 190.0,
        prior_bpm: float = 120.0,
        prior_octaves: float = 1.0,
        history_s: float = 6.0,
        update_s: float = 0.5,
        alpha: float = 0.8,
        tightness: float = 5.0,
        beats_per_bar: int = 4,
        active_level: float = 0.05,
        silence_s: float = 2.0,
        phase_ratio: float = 1.5,
        flip_checks: int = 1,
        frame_rate: float = 190.0,
    ) -> None:
        self.decim = max(1, round(rate_hz / frame_rate))  # ~frame_rate frames/s whatever the hop
        self.fr = rate_hz / self.decim
        fr = self.fr
        self._alpha = alpha
        self._tight = tightness
        self._n_hist = 1 << math.ceil(math.log2(history_s * fr))
        self._odf = np.zeros(self._n_hist, np.float32)  # ring of onset values
        self._accent = np.zeros(self._n_hist, np.float32)  # ring of accent values
        self._acc_accent = 0.0
        self._phase_ratio = phase_ratio
        self.phase_flips = 0
        self._flip_votes = 0
        self._flip_needed = flip_checks
        self._pos = 0
        self._k_local = max(1, int(0.125 * fr))
        self._k_box = max(1, int(0.02 * fr))
        self._pad_local = np.zeros(self._n_hist + 2 * self._k_local + 1)  # float64
        self._pad_box = np.zeros(self._n_hist + 2 * self._k_box + 1)
        self._lag_min = max(2, int(60.0 * fr / max_bpm))
        self._lag_max = min(self._n_hist // 4, int(math.ceil(60.0 * fr / min_bpm)))
        lags = np.arange(self._lag_max + 1, dtype=np.float64)
        lags[0] = 1.0
        bpm = 60.0 * fr / lags
        self._prior = np.exp(-0.5 * (np.log2(bpm / prior_bpm) / prior_octaves) ** 2)
        self._prior[: self._lag_min] = 0.0
        self._update_every = max(1, round(update_s * fr))
        self._n_cs = 3 * self._lag_max + 2
        # cumulative score, newest last: _cs is the view _csbuf[q : q + n_cs], which moves one
        # step per frame (no shift copy); the newest n_cs - 1 move to the front when it ends
        self._csbuf = np.zeros(self._n_cs - 1 + 512, np.float32)
        self._q = 0
        self._cs = self._csbuf[: self._n_cs]
        self._sub = 0
        self._acc = 0.0
        self._frame = 0  # frames seen
        self.period = 0.0  # beat period in frames, 0 = unknown
        self._cand = 0.0
        self._cand_votes = 0
        self._w = np.zeros(1, np.float32)
        self._wlo = self._whi = 0
        self._proj: np.ndarray | None = None
        self._next_beat = -1  # frame of the predicted next beat
        self._last_beat = -1
        self._predicted_for = -2
        self._beats_per_bar = beats_per_bar
        self.beat_count = 0
        self.last_beat_ns = 0
        self._t_ns = 0
        # silence: no onset-strength value above `active_level` for `silence_s`
        self._active_level = active_level
        self._silence_frames = int(silence_s * fr)
        self._since_active = 1 << 30

    # --- tempo -----------------------------------------------------------------------------
    def _estimate_period(self) -> None:
        n_valid = min(self._frame, self._n_hist)
        if n_valid < 2 * self._lag_max:
            return
        # box sums as differences of a cumulative sum over a zero-padded copy; the padded
        # buffers are reused (this runs twice a second, a few hundred µs each time)
        k, b = self._k_local, self._k_box
        pad = self._pad_local  # [k + 1 zeros | oldest-first history | k zeros]
        x = pad[k + 1 : k + 1 + n_valid]
        head = self._odf[self._pos :]  # ring: oldest part first
        cut = len(head) - (self._n_hist - n_valid)
        if cut > 0:
            x[:cut] = head[-cut:]
            x[cut:] = self._odf[: self._pos]
        else:
            x[:] = self._odf[self._pos - n_valid : self._pos]
        pad[k + 1 + n_valid :] = 0.0
        # keep the peaks: subtract a local mean (about 1/4 s), half-wave rectify
        c = np.cumsum(pad[: n_valid + 2 * k + 1])
        local = (c[2 * k + 1 :] - c[: -2 * k - 1]) / (2 * k + 1)
        pb = self._pad_box
        xb = pb[b + 1 : b + 1 + n_valid]
        np.subtract(x, local[:n_valid], out=xb)
        np.maximum(xb, 0.0, out=xb)
        if xb.max() <= 1e-9:
            return
        # widen the one-frame peaks (box of ±20 ms, twice: a triangle) so small timing
        # jitter between hits does not wash out the autocorrelation
        pb[b + 1 + n_valid :] = 0.0
        for _ in range(2):
            c = np.cumsum(pb[: n_valid + 2 * b + 1])
            np.subtract(c[2 * b + 1 : 2 * b + 1 + n_valid], c[:n_valid], out=xb)
        x = xb
        n = n_valid
        spec = np.fft.rfft(x, 2 * n)
        n_ac = min(n, 4 * self._lag_max + 4)
        ac = np.fft.irfft(spec.real**2 + spec.imag**2)[:n_ac]
        ac /= n - np.arange(n_ac)  # unbiased (n > n_ac here, so never 0)
        lm = self._lag_max
        comb = np.zeros(lm + 1)
        taus = np.arange(lm + 1)
        for m in (1, 2):  # the beat and the 2-beat pulse; more multiples favour odd lags
            comb += ac[np.minimum(taus * m, len(ac) - 1)] / m
        score = comb * self._prior
        tau = int(np.argmax(score))
        if score[tau] <= 0 or tau < self._lag_min:
            return
        # sub-frame refinement with a parabola through the autocorrelation peak
        if 1 <= tau < len(ac) - 1:
            a, b, cc = ac[tau - 1], ac[tau], ac[tau + 1]
            den = a - 2 * b + cc
            frac = 0.5 * (a - cc) / den if den < 0 else 0.0
            p = tau + max(-0.5, min(0.5, frac))
        else:
            p = float(tau)
        self._accept_period(p)

    def _accept_period(self, p: float) -> None:
        if self.period <= 0:
            self._set_period(p)
            return
        if abs(p / self.period - 1.0) < 0.04:
            self._set_period(0.7 * self.period + 0.3 * p)
            self._cand_votes = 0
            return
        # a different tempo must win twice in a row before it replaces the current one
        if self._cand > 0 and abs(p / self._cand - 1.0) < 0.04:
            self._cand_votes += 1
        else:
            self._cand, self._cand_votes = p, 1
        if self._cand_votes >= 2:
            self._set_period(p)
            self._cand_votes = 0

    def _set_period(self, p: float) -> None:
        self.period = p
        self._wlo = max(1, int(round(p / 2)))
        self._whi = min(self._n_cs - 1, int(round(2 * p)))
        v = np.arange(self._whi, self._wlo - 1, -1, dtype=np.float64)  # lag of cs[-whi..-wlo]
        self._w = np.exp(-0.5 * (self._tight * np.log(v / p)) ** 2).astype(np.float32)
        self._wprod = np.zeros_like(self._w)
        self._proj = None

    # --- per frame ---------------------------------------------------------------------------
    def process(self, value: float, t_ns: int, accent: float = 0.0) -> bool:
        """One onset-strength value per hop; t_ns is the hop's end. True when a beat fires.

        `accent` (kick + snare strength) decides between a beat grid and the one half a beat
        away: drums put them on the beat, hats fill the off-beats.
        """
        self._t_ns = t_ns
        if value > self._acc:
            self._acc = value
        if accent > self._acc_accent:
            self._acc_accent = accent
        self._sub += 1
        if self._sub < self.decim:
            return False
        self._sub = 0
        v = self._acc
        self._acc = 0.0
        self._accent[self._pos] = self._acc_accent
        self._acc_accent = 0.0
        return self._frame_step(v, t_ns)

    def _check_phase(self, t: int) -> None:
        """Move the grid by half a period when the accents sit between the beats."""
        p = self.period
        mask = self._n_hist - 1
        on = off = 0.0
        w = max(1, int(0.015 * self.fr))
        for k in range(8):
            b = self._last_beat - k * p
            if b - p / 2 - w < t - self._n_hist + 1:
                break
            i = int(round(b))
            j = int(round(b - p / 2))
            on += max(self._accent[(i + d) & mask] for d in range(-w, w + 2))
            off += max(self._accent[(j + d) & mask] for d in range(-w, w + 2))
        if not (off > self._phase_ratio * on and off > self._active_level * 4):
            self._flip_votes = 0
            return
        self._flip_votes += 1
        if self._flip_votes >= self._flip_needed:  # the off-grid must win checks in a row
            self._flip_votes = 0
            shift = int(round(p / 2))
            self._last_beat -= shift
            self.last_beat_ns -= int(shift / self.fr * 1e9)
            if self._next_beat >= 0:
                self._next_beat -= shift
                if self._next_beat <= t:
                    self._next_beat += int(round(p))
            self.phase_flips += 1

    def _frame_step(self, v: float, t_ns: int) -> bool:
        self._odf[self._pos] = v
        self._pos = (self._pos + 1) & (self._n_hist - 1)
        self._since_active = 0 if v > self._active_level else self._since_active + 1
        t = self._frame
        self._frame += 1
        if self._frame % self._update_every == 0:
            self._estimate_period()
            if self._last_beat >= 0 and self.period > 0:
                self._check_phase(t)
        n_cs = self._n_cs
        q = self._q + 1
        buf = self._csbuf
        if q + n_cs > len(buf):
            buf[: n_cs - 1] = buf[q : q + n_cs - 1]
            q = 0
        self._q = q
        self._cs = cs = buf[q : q + n_cs]  # cs[:-1] is the previous frame's cs[1:]
        if self.period > 0:
            end = q + n_cs  # the window cs[-whi - 1 : -wlo]
            np.multiply(self._w, buf[end - self._whi - 1 : end - self._wlo], out=self._wprod)
            best = float(np.maximum.reduce(self._wprod))
            cs[-1] = (1.0 - self._alpha) * v + self._alpha * best
        else:
            cs[-1] = v
            return False
        p = self.period
        if self._last_beat < 0 and self._next_beat < 0 and t - self._predicted_for > p / 2:
            self._predict(t, None)
        elif self._last_beat >= 0 and self._next_beat < 0 and t - self._last_beat >= p / 2:
            self._predict(t, self._last_beat + p)
        if self._next_beat >= 0 and t >= self._next_beat:
            self._next_beat = -1
            self._last_beat = t  # the grid runs on through silence (one prediction per beat)
            if self.silent:  # keep the tempo and the grid but fire no beats
                return False
            self.last_beat_ns = t_ns
            self.beat_count += 1
            return True
        return False

    def _predict(self, t: int, expected: float | None) -> None:
        """Project the cumulative score one period ahead; the best future frame is the beat."""
        p = self.period
        self._predicted_for = t
        j_max = int(math.ceil(p * 1.3))
        k = self._whi  # only the last whi scores can reach a future frame
        if self._proj is None or self._proj.shape[0] != j_max:
            # M[j, i]: weight of past score cs[-k + i] for future frame t + 1 + j, gathered
            # from a 1-D table of transition weights by lag (cheap: runs on tempo changes)
            lags = np.arange(self._whi + j_max + 1, dtype=np.float64)
            table = np.exp(-0.5 * (self._tight * np.log(np.maximum(lags, 1.0) / p)) ** 2)
            table[: self._wlo] = 0.0
            table[self._whi + 1 :] = 0.0
            # M[j, i] = table[j + k - i]: rows are windows of the reversed table, so M is a
            # strided view of it (no [j_max, k] gather): row j = rev[j_max - j : j_max - j + k]
            rev = np.ascontiguousarray(table[::-1], dtype=np.float32)
            win = np.lib.stride_tricks.sliding_window_view(rev, k)  # [j_max + 2, k]
            self._proj = win[j_max:0:-1]
        proj = np.maximum.reduce(self._proj * self._cs[None, -k:], axis=1)  # [j_max]
        if expected is not None:
            jj = t + 1 + np.arange(j_max) - expected
            proj = proj * np.exp(-0.5 * (jj / (p / 6.0)) ** 2)
        self._next_beat = t + 1 + int(np.argmax(proj))

    # --- TempoSource -------------------------------------------------------------------------
    @property
    def silent(self) -> bool:
        return self._since_active > self._silence_frames

    @property
    def bpm(self) -> float:
        return 60.0 * self.fr / self.period if self.period > 0 else 0.0

    def state(self, t_ns: int) -> TempoState | None:
        p = self.period
        # (asked once per published block: the properties are inlined)
        if p <= 0 or self.beat_count == 0 or self._since_active > self._silence_frames:
            return None
        fr = self.fr
        beats = max(0.0, (t_ns - self.last_beat_ns) / (p / fr * 1e9))
        whole = int(beats)
        count = self.beat_count - 1 + whole
        phase = beats - whole
        bpb = self._beats_per_bar
        return TempoState(60.0 * fr / p, phase, (count % bpb) + phase, bpb, count)
