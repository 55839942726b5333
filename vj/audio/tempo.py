"""Causal beat tracker: tempo from the onset function's autocorrelation, beats predicted ahead
from a cumulative beat score (the online dynamic-programming scheme of Ellis / Stark et al.)."""

from __future__ import annotations

import collections
import math

import numpy as np

from vj.audio.bars import BarTracker
from vj.tempo import TempoState

NEVER = 1 << 62  # no beat pending


class BeatTracker:
    """Feed one onset-strength value per hop with `process(value, t_ns, accent)`; True on a beat.

    The tracker runs on frames of ~`frame_rate` per second (the max of the hops in each); beats
    are predicted about half a period ahead and fired at the hop they fall in, `lead_s` early
    (onset peaks trail the hits they mark). Also a `TempoSource` (name "tracker").
    """

    name = "tracker"

    def __init__(
        self,
        rate_hz: float,
        min_bpm: float = 70.0,
        max_bpm: float = 190.0,
        prior_bpm: float = 120.0,
        prior_octaves: float = 1.0,
        history_s: float = 12.0,
        update_s: float = 0.5,
        alpha: float = 0.8,
        tightness: float = 7.0,
        beats_per_bar: int = 4,
        active_level: float = 0.05,
        silence_s: float = 2.0,
        accent_weight: float = 4.0,
        phase_ratio: float = 1.15,
        phase_evidence: float = 0.4,
        phase_decay: float = 0.85,
        phase_beats: int = 8,
        frame_rate: float = 100.0,
        lead_s: float = 0.010,
        settle_checks: int = 8,
        short_s: float = 2.5,
        jump_s: float = 2.0,
        short_ratio: float = 4.0,
        short_votes: int = 2,
        clear_ratio: float = 10.0,
        small_min: float = 0.015,
        small_votes: int = 4,
        small_agree: float = 0.015,
    ) -> None:
        self._small_min = small_min
        self._small_votes = small_votes
        self._small_agree = small_agree
        self._s_sum = 0.0
        self.rate_hz = rate_hz
        self.decim = max(1, round(rate_hz / frame_rate))  # hops per frame
        self.fr = rate_hz / self.decim
        fr = self.fr
        self._alpha = alpha
        self._tight = tightness
        self._wacc = accent_weight
        self._n_hist = 1 << math.ceil(math.log2(history_s * fr))  # ring size
        self._n_use = min(self._n_hist, int(round(history_s * fr)))  # frames the estimate reads
        self._odf = np.zeros(self._n_hist, np.float32)  # ring of frame values
        self._pos = 0
        self._phase_ratio = phase_ratio
        self._phase_evidence = phase_evidence
        self._phase_decay = phase_decay
        self._evidence = 0.0  # log-odds, added up over checks, for the off-beat grid
        self._phase_beats = phase_beats
        self.phase_shifts = 0
        self._k_local = max(1, int(0.125 * fr))
        self._k_box = max(1, int(round(0.02 * fr)))
        self._xbuf = np.zeros(self._n_hist)  # float64 copies of the history, reused
        self._xbox = np.zeros(self._n_hist)
        self._box_local = np.full(2 * self._k_local + 1, 1.0 / (2 * self._k_local + 1))
        self._box = np.ones(2 * self._k_box + 1)
        self._lag_min = max(2, int(60.0 * fr / max_bpm))
        self._lag_max = min(self._n_use // 4, int(math.ceil(60.0 * fr / min_bpm)))
        lags = np.arange(self._lag_max + 1, dtype=np.float64)
        lags[0] = 1.0
        bpm = 60.0 * fr / lags
        self._prior = np.exp(-0.5 * (np.log2(bpm / prior_bpm) / prior_octaves) ** 2)
        self._prior[: self._lag_min] = 0.0
        self._taus = np.arange(self._lag_max + 1)
        self._taus2 = 2 * self._taus
        self._lags_f = np.arange(4 * self._lag_max + 5, dtype=np.float64)
        self._update_every = max(1, round(update_s * fr))
        # once the tempo has held for `settle_checks` estimates, estimate half as often
        self._settle_checks = settle_checks
        self._steady = 0
        self._next_update = self._update_every
        # the short-window hypothesis (see _follow_short): checked every update_s
        self._short_n = int(round(short_s * fr)) if short_s > 0 else 0
        self._jump_n = max(2 * self._lag_max, int(round(jump_s * fr)))
        self._s_kind = 0
        self._short_ratio = short_ratio
        self._short_votes = short_votes
        self._clear_ratio = clear_ratio
        self._next_short = self._update_every
        self._s_cand = 0.0
        self._s_votes = 0
        self._hist_from = 0  # the tempo estimate reads no frame before this one
        self._hold_level = False
        self.tempo_switches = 0
        self._n_cs = 3 * self._lag_max + 2
        # cumulative score, newest last: _cs is the view _csbuf[q : q + n_cs], which moves one
        # step per frame (no shift copy); the newest n_cs - 1 move to the front when it ends
        self._csbuf = np.zeros(self._n_cs - 1 + 512, np.float32)
        self._q = 0
        self._wins = self._csbuf[:, None]  # rows: the transition windows (set with the period)
        self._win0 = 0
        self._sub = self.decim  # hops left in this frame
        self._acc = 0.0
        self._frame = 0  # frames seen
        self._hop = 0  # hops seen
        self.period = 0.0  # beat period in frames, 0 = unknown
        self._cand = 0.0
        self._cand_votes = 0
        self._w = np.zeros(1, np.float32)
        self._wprod = np.zeros(1, np.float32)
        self._wlo = self._whi = 0
        self._p_kernel = 0.0  # the period the transition weights were made for
        self._proj: np.ndarray | None = None
        self._projbuf = np.zeros(1, np.float32)
        self._jj = np.zeros(1)
        self._next_beat = -1.0  # frame of the predicted next beat (fractional), -1 = none
        self._fire_hop = NEVER  # hop at which the predicted beat fires
        self._last_beat = -1.0
        self._predicted_for = -(1 << 30)
        self._lead_hops = lead_s * rate_hz
        self._beats_per_bar = beats_per_bar
        self.beat_count = 0
        self.last_beat_ns = 0
        # silence: no onset-strength value above `active_level` for `silence_s`
        self._active_level = active_level
        self._silence_frames = int(silence_s * fr)
        self._since_active = 1 << 30
        # bar phase: per-frame kick / snare / cymbal rings, read one period after each beat
        self.bars = BarTracker(beats_per_bar)
        self._low = np.zeros(self._n_hist, np.float32)
        self._mid = np.zeros(self._n_hist, np.float32)
        self._high = np.zeros(self._n_hist, np.float32)
        self._acc_l = self._acc_m = self._acc_h = 0.0
        self._music_start = -1  # frame of the first onset after silence
        self._pending: collections.deque[tuple[float, int]] = collections.deque(maxlen=8)

    # --- per hop -----------------------------------------------------------------------------
    def process(
        self, value: float, t_ns: int, accent: float = 0.0, low: float = 0.0, mid: float = 0.0
    ) -> bool:
        """One onset-strength value per hop; t_ns is the hop's end. True when a beat fires.

        `accent` is the high band's (hats, cymbals) onset strength: the tracker follows
        value + accent_weight × accent, which puts the grid on the beat, not between beats,
        where the kick and snare play syncopated figures. `low` / `mid` (kick / snare band
        onset strength) feed the bar phase only.
        """
        u = value + self._wacc * accent
        if u > self._acc:
            self._acc = u
        if low > self._acc_l:
            self._acc_l = low
        if mid > self._acc_m:
            self._acc_m = mid
        if accent > self._acc_h:
            self._acc_h = accent
        h = self._hop
        self._hop = h + 1
        self._sub -= 1
        if self._sub == 0:
            self._sub = self.decim
            i = self._pos
            self._low[i] = self._acc_l
            self._mid[i] = self._acc_m
            self._high[i] = self._acc_h
            self._acc_l = self._acc_m = self._acc_h = 0.0
            self._frame_step(self._acc)
            self._acc = 0.0
        if self._fire_hop > h:  # the common case: no beat due in this hop
            return False
        self._fire_hop = NEVER
        self._last_beat = self._next_beat
        self._next_beat = -1.0
        if self._since_active > self._silence_frames:
            return False  # the grid runs on through silence, but fires no beats
        if self.beat_count == 0 or t_ns - self.last_beat_ns > 4e9:
            self.bars.reset()  # the first beat, or after a pause: a new piece may start
            self._pending.clear()
        ms = self._music_start
        if ms >= 0 and self._last_beat - ms < 12.0 * self.fr:
            # the beat the music started on, counted back with today's period: the first beats
            # and periods are the least reliable, so this is redone on every beat for 12 s
            n = round((self._last_beat - ms) / self.period)
            self.bars.start(self.beat_count - n)
        self.last_beat_ns = t_ns
        self.beat_count += 1
        self._pending.append((self._last_beat, self.beat_count - 1))
        return True

    def _bar_features(self, fb: float, p: float) -> tuple[float, float, float, float]:
        """Kick, snare, cymbal strength around beat frame fb (-20..+50 ms) and the mean onset
        value between it and the next beat (fills)."""
        m = self._n_hist - 1
        c = int(round(fb))
        lo, hi = c - max(1, round(0.02 * self.fr)), c + max(2, round(0.05 * self.fr))
        idx = np.arange(lo, hi + 1) & m
        k = float(self._low[idx].max())
        s = float(self._mid[idx].max())
        h = float(self._high[idx].max())
        dj = np.arange(hi + 1, max(hi + 2, int(fb + p) - 2)) & m
        d = float(self._odf[dj].mean())
        return k, s, h, d

    # --- per frame ---------------------------------------------------------------------------
    @property
    def _cs(self) -> np.ndarray:
        """[n_cs] cumulative beat score, newest last (a view that moves one step per frame)."""
        return self._csbuf[self._q : self._q + self._n_cs]

    def _frame_step(self, v: float) -> None:
        """Push one frame (the largest value of its hops) and advance the beat score."""
        self._odf[self._pos] = v
        self._pos = (self._pos + 1) & (self._n_hist - 1)
        t = self._frame
        if v > self._active_level:
            if self._since_active > self._silence_frames:
                self._music_start = t  # the first onset after silence (or ever)
            self._since_active = 0
        else:
            self._since_active += 1
        self._frame = t + 1
        pend = self._pending
        if pend and self.period > 0 and t >= pend[0][0] + self.period:
            fb, idx = pend.popleft()
            self.bars.beat(idx, self._bar_features(fb, self.period))
        switched = False
        if self._frame >= self._next_short:
            self._next_short = self._frame + self._update_every
            switched = self._short_n > 0 and self.period > 0 and self._follow_short()
        if self._frame >= self._next_update:
            if not switched:
                self._estimate_period()
            slow = self._steady >= self._settle_checks > 0
            self._next_update = self._frame + self._update_every * (2 if slow else 1)
        n_cs = self._n_cs
        q = self._q + 1
        buf = self._csbuf
        if q + n_cs > len(buf):  # the view reached the end: move the newest n_cs - 1 to the front
            buf[: n_cs - 1] = buf[q : q + n_cs - 1]
            q = 0
        self._q = q
        p = self.period
        if p <= 0:
            buf[q + n_cs - 1] = v
            return
        # newest score: onset value + the best transition-weighted score p/2 .. 2p frames back
        np.multiply(self._w, self._wins[q + self._win0], out=self._wprod)
        best = float(np.maximum.reduce(self._wprod))
        buf[q + n_cs - 1] = (1.0 - self._alpha) * v + self._alpha * best
        if self._next_beat < 0:  # predict once per beat, half a period after the last one
            lb = self._last_beat
            if lb < 0:
                if t - self._predicted_for > p / 2:
                    self._predict(t, None)
            elif t - lb >= p / 2:
                self._predict(t, lb + p)

    def _predict(self, t: int, expected: float | None) -> None:
        """Project the cumulative score one period ahead; the best future frame is the beat."""
        p = self.period
        self._predicted_for = t
        j_max = int(math.ceil(p * 1.3))
        k = self._whi  # only the last whi scores can reach a future frame
        if self._proj is None:
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
            self._projbuf = np.zeros((j_max, k), np.float32)
            self._jj = np.arange(j_max, dtype=np.float64)
        proj = self._project()  # [j_max]
        if expected is not None:
            if expected < t + 1 - p / 4:  # the grid fell behind (tempo jump): catch up
                expected += p * math.ceil((t + 1 - p / 4 - expected) / p)
            jj = self._jj + (t + 1 - expected)
            proj *= np.exp(-0.5 * (jj / (p / 6.0)) ** 2)
        j = int(np.argmax(proj))
        # sub-frame position of the peak (parabola through its neighbours)
        frac = 0.0
        if 0 < j < len(proj) - 1:
            a, b, c = float(proj[j - 1]), float(proj[j]), float(proj[j + 1])
            den = a - 2.0 * b + c
            if den < 0.0:
                frac = max(-0.5, min(0.5, 0.5 * (a - c) / den))
        nb = t + 1 + j + frac
        self._next_beat = nb
        # frame f holds hops f*decim .. f*decim + decim - 1: fire at the hop of the peak
        d = self.decim
        self._fire_hop = max(self._hop, int(round(nb * d + 0.5 * (d - 1) - self._lead_hops)))

    def _project(self) -> np.ndarray:
        """[j_max] best score reachable at each of the next j_max frames from the last scores."""
        k = self._whi
        prod = np.multiply(self._proj, self._cs[None, -k:], out=self._projbuf)  # [j_max, k]
        return np.maximum.reduce(prod, axis=1)

    # --- tempo -----------------------------------------------------------------------------
    def _follow_short(self) -> bool:
        """Score short-window tempo hypotheses against the current one on the recent onsets;
        True when one took over (period set, the long history restarted at the window's start,
        the grid moved to the best phase). A jump (another tempo or metrical level) is read from
        the last `jump_s`: the comb score of its best lag there must beat the score of the
        current lag `short_ratio` times, twice in a row. A DJ-size change (1.5–4 %) is read from
        the last `short_s`, where the grid already follows: `small_votes` estimates in a row
        within 1.5 % of each other, whose mean becomes the period."""
        nj, ns = self._jump_n, self._short_n
        if self._frame - self._hist_from < 3 * ns // 2 or self._since_active > nj // 4:
            self._s_votes = 0  # too soon after the last switch, or the music stopped
            return False
        p = self.period
        got = self._acf(nj)
        jumped = clear = False
        if got is not None:
            tau, ac, x, sc = got
            if abs(tau / p - 1.0) > 0.04:  # tau is the best lag: sc[tau] is the window's best
                tc = int(round(p))
                ratio = float(sc[tau]) / max(float(sc[tc - 1 : tc + 2].max()), 1e-12)
                if ratio > self._short_ratio:
                    ps = self._refine(ac, tau)
                    jumped = abs(ps / p - 1.0) > 0.04
                    clear = jumped and ratio > self._clear_ratio  # no second look needed
        if not jumped:
            if got is not None and abs(tau - p) < 0.5:
                self._s_votes = 0  # the jump window agrees with the period: so would this one
                return False
            if nj != ns:
                got = self._acf(ns)
            if got is None:
                self._s_votes = 0
                return False
            tau, ac, x, sc = got
            # the refined period moves at most about half a frame from the best lag: skip the
            # refinement (the costly part) when that cannot reach small_min
            if abs(tau - p) < 0.5:
                self._s_votes = 0
                return False
            ps = self._refine(ac, tau)
            if not self._small_min <= abs(ps / p - 1.0) <= 0.04:
                self._s_votes = 0
                return False
        kind = 2 if jumped else 1
        agree = 0.02 if jumped else self._small_agree
        if self._s_votes > 0 and self._s_kind == kind and abs(ps / self._s_cand - 1.0) < agree:
            self._s_votes += 1
            self._s_sum += ps
        else:
            self._s_votes = 1
            self._s_sum = ps
        self._s_kind = kind
        self._s_cand = ps
        if not clear and self._s_votes < (self._short_votes if jumped else self._small_votes):
            return False
        if not jumped:
            ps = self._s_sum / self._s_votes
        self._s_votes = 0
        self._cand_votes = 0
        self._steady = 0
        self._hist_from = self._frame - len(x)
        # after a DJ-size switch the restarted (short) history must not change the metrical
        # level: in ambiguous music (a one-drop) a few seconds can read as 2/3 or 4/3 tempo;
        # the jump check stays the way to another level
        self._hold_level = not jumped
        self._set_period(ps)
        self.tempo_switches += 1
        if self._next_beat >= 0:  # predicted with the old period: predict again
            self._next_beat = -1.0
            self._fire_hop = NEVER
        if self._last_beat >= 0:
            if jumped and nj < ns:  # the phase from the longer window (the jump window is short)
                got = self._acf(ns)
                x = got[2] if got is not None else x
            self._check_phase(x, jumped)
        return True

    def _estimate_period(self) -> None:
        n_valid = min(self._frame - self._hist_from, self._n_use)
        if n_valid < 2 * self._lag_max:
            return
        got = self._acf(n_valid)
        if got is None:
            return
        tau, ac, x, _ = got
        p = self._refine(ac, tau)
        before = self.period
        if self._hold_level and n_valid >= self._n_use:
            self._hold_level = False  # the history has grown back
        changed = self._accept_period(p, not self._hold_level)
        steady = not changed and self._cand_votes == 0 and abs(p / before - 1.0) < 0.01
        self._steady = self._steady + 1 if steady else 0
        if changed and self._next_beat >= 0:  # predicted with the old period: predict again
            self._next_beat = -1.0
            self._fire_hop = NEVER
        if self._last_beat >= 0 and self.period > 0 and (changed or self._phase_evidence > 0):
            self._check_phase(x, changed)

    def _acf(self, n_valid: int) -> tuple[int, np.ndarray, np.ndarray, np.ndarray] | None:
        """Tempo of the newest n_valid frames: (best lag in frames, the autocorrelation
        [n_ac], the peak-widened onset function [n_valid], the prior-weighted comb score by lag
        [lag_max + 1]), or None when there is nothing periodic; `_refine(ac, lag)` gives the
        sub-frame period. Runs a few times a second, never per hop."""
        x = self._xbuf[:n_valid]  # float64, oldest first
        head = self._odf[self._pos :]  # ring: oldest part first
        cut = len(head) - (self._n_hist - n_valid)
        if cut > 0:
            x[:cut] = head[-cut:]
            x[cut:] = self._odf[: self._pos]
        else:
            x[:] = self._odf[self._pos - n_valid : self._pos]
        # keep the peaks: subtract a local mean (±1/8 s, zeros beyond the ends), half-wave
        # rectify
        xb = self._xbox[:n_valid]
        np.subtract(x, np.convolve(x, self._box_local, "same"), out=xb)
        np.maximum(xb, 0.0, out=xb)
        if xb.max() <= 1e-9:
            return None
        # widen the peaks (a box of ±20 ms, twice: a triangle, zeros beyond the ends after
        # each pass) so small timing jitter between hits does not wash out the autocorrelation
        x = np.convolve(np.convolve(xb, self._box, "same"), self._box, "same")
        n = n_valid
        n_ac = min(n, 4 * self._lag_max + 4)
        if n_ac == n:  # a short window: the direct sums cost less than two FFT calls
            ac = np.correlate(x, x, "full")[n - 1 :]
        else:
            nfft = self._fft_size(n + n_ac)
            spec = np.abs(np.fft.rfft(x, nfft))
            spec *= spec
            ac = np.fft.irfft(spec, nfft)[:n_ac]
        ac /= n - self._lags_f[:n_ac]  # unbiased (n > n_ac here, so never 0)
        top = n_ac - 1
        t2 = self._taus2 if top >= self._taus2[-1] else np.minimum(self._taus2, top)
        score = ac[t2]
        score *= 0.5
        score += ac[self._taus]  # the beat and the 2-beat pulse
        score *= self._prior
        tau = int(np.argmax(score))
        if score[tau] <= 0 or tau < self._lag_min:
            return None
        return tau, ac, x, score

    @staticmethod
    def _fft_size(n: int) -> int:
        """Smallest 2^a or 3 * 2^a ≥ n (both fast FFT sizes)."""
        p2 = 1 << (n - 1).bit_length()
        p3 = 3 * p2 // 4
        return p3 if p3 >= n else p2

    @staticmethod
    def _refine(ac: np.ndarray, tau: int) -> float:
        """Sub-frame period from the autocorrelation peaks near 1, 2, 3 and 4 × tau, each
        divided by its multiple and weighted by it: the far peaks pin the period down more
        finely, and a drummer's uneven kick-snare spacing evens out over two beats."""
        top = len(ac) - 2
        p = float(tau)
        num = den = 0.0
        for m in (1, 2, 3, 4):
            # look for each peak near m × the estimate so far: ±1 frame for the first, ±5 % for
            # the second (uneven spacing can move the first peak that far), ±2 % after that
            c = int(round(m * p))
            r = 1 if m == 1 else max(1, int(math.ceil((0.05 if m == 2 else 0.02) * m * p)))
            lo, hi = max(1, c - r), min(top, c + r)
            if lo >= hi:
                break
            i = lo + int(np.argmax(ac[lo : hi + 1]))
            a, b, cc = float(ac[i - 1]), float(ac[i]), float(ac[i + 1])
            if b <= 0.0:
                break
            d2 = a - 2.0 * b + cc
            frac = 0.5 * (a - cc) / d2 if d2 < 0 else 0.0
            w = m * m * b
            num += w * (i + max(-0.5, min(0.5, frac))) / m
            den += w
            p = num / den
        return p

    def _accept_period(self, p: float, may_jump: bool = True) -> bool:
        """Take the new period estimate; True when the tempo jumped (not just refined). With
        may_jump False only a refinement within 4 % is taken."""
        if self.period <= 0:
            self._set_period(p)
            return True
        if abs(p / self.period - 1.0) < 0.04:
            self._set_period(0.7 * self.period + 0.3 * p)
            self._cand_votes = 0
            return False
        if not may_jump:
            self._cand_votes = 0
            return False
        # a different tempo must win twice in a row before it replaces the current one
        if self._cand > 0 and abs(p / self._cand - 1.0) < 0.04:
            self._cand_votes += 1
        else:
            self._cand, self._cand_votes = p, 1
        if self._cand_votes >= 2:
            self._set_period(p)
            self._cand_votes = 0
            return True
        return False

    def _set_period(self, p: float) -> None:
        self.period = p
        if self._p_kernel > 0 and abs(p / self._p_kernel - 1.0) < 0.004:
            return  # the transition weights hardly change: keep them (and the projection)
        self._p_kernel = p
        self._wlo = max(1, int(round(p / 2)))
        self._whi = min(self._n_cs - 1, int(round(2 * p)))
        v = np.arange(self._whi, self._wlo - 1, -1, dtype=np.float64)  # lag of cs[-whi..-wlo]
        self._w = np.exp(-0.5 * (self._tight * np.log(v / p)) ** 2).astype(np.float32)
        self._wprod = np.zeros_like(self._w)
        # row r of _wins is _csbuf[r : r + len(w)]; for the view at q the window
        # cs[-whi - 1 : -wlo] (lags whi .. wlo before the new frame) is row q + _win0
        self._wins = np.lib.stride_tricks.sliding_window_view(self._csbuf, len(self._w))
        self._win0 = self._n_cs - self._whi - 1
        self._proj = None

    def _check_phase(self, x: np.ndarray, jumped: bool) -> None:
        """Comb the recent (peak-widened) onset function at the beat period and move the grid,
        and the cumulative score with it, when another phase is better, so the dynamic
        programme carries on from there: right after a tempo jump to the best phase at once;
        otherwise only to the grid half a beat away, once the evidence for it has added up."""
        p = self.period
        n = len(x)
        n_beats = min(self._phase_beats, int((n - 1) / p) - 1)
        if n_beats < 3:
            return
        P = int(round(p))
        # energy of the grid whose newest beat is phi frames back from the newest frame:
        # sc[phi] = sum_k x[n - 1 - phi - round(k p)], one reversed slice of P per beat
        sc = np.zeros(P)  # [P]
        for k in range(n_beats):
            end = n - int(round(k * p))
            sc += x[end - P : end][::-1]
        cur = int(round(self._frame - 1 - self._last_beat)) % P  # the grid's phase, frames back
        if jumped:
            best = int(np.argmax(sc))
            d = (cur - best) % P  # move the grid d frames later
            if d > P // 2:
                d -= P
            if sc[best] > self._phase_ratio * sc[cur] and abs(d) >= max(2, P // 8):
                self._shift(d)
            self._evidence = 0.0
            return
        r = max(1, P // 8)
        near = np.arange(cur - r, cur + r + 1) % P
        far = np.arange(cur + P // 2 - r, cur + P // 2 + r + 1) % P
        on = float(sc[near].max())
        j = int(np.argmax(sc[far]))
        off = float(sc[far[j]])
        eps = 1e-3 * float(sc.max()) + 1e-12
        gap = 2.0 if self._steady > self._settle_checks > 0 else 1.0  # checks apart, in updates
        e = self._evidence * self._phase_decay**gap + gap * math.log((off + eps) / (on + eps))
        self._evidence = max(-self._phase_evidence, e)
        if e < self._phase_evidence:
            return
        self._evidence = 0.0
        d = (cur - int(far[j])) % P
        if d > P // 2:
            d -= P
        self._shift(d)

    def _shift(self, d: int) -> None:
        """Move the beat grid d frames later (d < 0: earlier), cumulative score included; the
        pending prediction is dropped (the next frame predicts again from the moved grid)."""
        cs = self._cs
        if d > 0:
            cs[d:] = cs[:-d].copy()
        elif d < 0:
            cs[:d] = cs[-d:].copy()
            cs[d:] = 0.0
        self._last_beat += d
        self.last_beat_ns += int(d / self.fr * 1e9)
        self._next_beat = -1.0
        self._fire_hop = NEVER
        self.phase_shifts += 1

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
        bar = ((count - self.bars.offset) % bpb) + phase  # the bar phase the drums voted for
        return TempoState(60.0 * fr / p, phase, bar, bpb, count)
