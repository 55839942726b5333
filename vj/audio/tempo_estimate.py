"""Tempo and phase estimation of the beat tracker: the 12 s autocorrelation estimate, the
short-window hypotheses that take over after an abrupt change, and the phase moves of the
grid. A mixin of `vj.audio.tempo.BeatTracker` (split off to keep each module small): it
reads and writes the tracker's state, set up in `BeatTracker.__init__`."""

from __future__ import annotations

import math

import numpy as np

NEVER = 1 << 62  # no beat pending


class TempoEstimation:
    """Methods of BeatTracker that estimate the period and move the grid (runs a few times a
    second, never per hop)."""

    def _follow_short(self) -> bool:
        """Score short-window tempo hypotheses against the current one on the recent onsets;
        True when one took over (period set, the long history restarted at the window's start,
        the grid moved to the best phase). A jump (another tempo or metrical level) is read from
        the last `jump_s`: the comb score of its best lag there must beat the score of the
        current lag `short_ratio` times, twice in a row (`clear_ratio` times: once). A DJ-size
        change (1.5–4 %) is read from the last `short_s`, where the grid already follows:
        `small_votes` estimates in a row within `small_agree` of each other, whose mean becomes
        the period."""
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
        # in the first early_phase_s of music the grid's phase rests on a second or two of
        # scores: every check takes the best phase at once (as after a jump) where it is a
        # quarter beat or more away, instead of waiting for the evidence to add up
        early = 0 <= self._frame - self._music_start < self._early_n
        if self._last_beat >= 0 and self.period > 0:
            if changed:
                self._check_phase(x, True)
            elif early:
                self._check_phase(x, True, 4)
            elif self._phase_evidence > 0:
                self._check_phase(x, False)

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
        one = ac[self._taus]
        # the 2-beat pulse adds at most pulse_cap × the beat's own autocorrelation: a lag at
        # which nothing repeats (half the period of accents every 3 pulses, 1.5 pulses) is no
        # beat, however strongly its double repeats
        if self._pulse_cap > 0:
            cap = self._capbuf
            np.maximum(one, 0.0, out=cap)
            cap *= self._pulse_cap
            np.minimum(score, cap, out=score)
        score *= 0.5
        score += one  # the beat and the 2-beat pulse
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

    def _check_phase(self, x: np.ndarray, jumped: bool, min_move: int = 8) -> None:
        """Comb the recent (peak-widened) onset function at the beat period and move the grid,
        and the cumulative score with it, when another phase is better, so the dynamic
        programme carries on from there: right after a tempo jump to the best phase at once;
        otherwise only to the grid half a beat away, once the evidence for it has added up."""
        p = self.period
        n = len(x)
        n_beats = min(self._phase_beats, int((n - 1) / p) - 1)
        # right after a jump (and in the first seconds) `jump_phase_beats` (2) are enough: the
        # grid carried over from before is no evidence of the phase, and the 2.5 s window holds
        # only two whole beats at a slow tempo (after halving to 75 BPM the grid stayed on the
        # old tempo's phase for 1-5 s). The slow flip to the off-beat grid still wants three
        if n_beats < (self._jump_phase_beats if jumped else 3):
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
            if sc[best] > self._phase_ratio * sc[cur] and abs(d) >= max(2, P // min_move):
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
