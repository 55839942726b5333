"""Causal beat tracker: tempo from the onset function's autocorrelation, beats predicted ahead
from a cumulative beat score (the online dynamic-programming scheme of Ellis / Stark et al.)."""

from __future__ import annotations

import collections
import math

import numpy as np

from vj.audio.bars import LEVEL_FLOOR, BarTracker
from vj.audio.tempo_estimate import NEVER, TempoEstimation
from vj.tempo import TempoState


class BeatTracker(TempoEstimation):
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
        phase_ratio: float = 1.10,  # a jump / early phase check moves when this much better
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
        pulse_cap: float = 2.5,
        early_phase_s: float = 4.0,
        jump_phase_beats: int = 2,
    ) -> None:
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
        self._jump_phase_beats = jump_phase_beats  # fewest beats the jump's phase check combs
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
        self._pulse_cap = pulse_cap  # 0: no cap
        self._capbuf = np.zeros(self._lag_max + 1)
        self._early_n = int(round(early_phase_s * fr))
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
        self._small_min = small_min
        self._small_votes = small_votes
        self._small_agree = small_agree
        self._s_sum = 0.0
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
        self._lvl = np.full(self._n_hist, LEVEL_FLOOR, np.float32)  # top band, dB
        self._acc_l = self._acc_m = self._acc_h = 0.0
        self._acc_v = LEVEL_FLOOR
        self._music_start = -1  # frame of the first onset after silence
        self._start_next = False  # the next frame is a music start (sound_at_start)
        # whether the current music start is where the piece began (the start prior's beat):
        # not when a live input joined sound already playing (sound_at_start(joined=True))
        self._start_known = True
        self._joined = False
        self._pending: collections.deque[tuple[float, int]] = collections.deque(maxlen=8)

    # --- per hop -----------------------------------------------------------------------------
    def process(
        self,
        value: float,
        t_ns: int,
        accent: float = 0.0,
        low: float = 0.0,
        mid: float = 0.0,
        level: float = LEVEL_FLOOR,
    ) -> bool:
        """One onset-strength value per hop; t_ns is the hop's end. True when a beat fires.

        `accent` is the high band's (hats, cymbals) onset strength: the tracker follows
        value + accent_weight × accent, which puts the grid on the beat, not between beats,
        where the kick and snare play syncopated figures. `low` / `mid` (kick / snare band
        onset strength) and `level` (the top band's level in dB under the overall level,
        floored at bars.LEVEL_FLOOR: a crash's ring) feed the bar phase only.
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
        if level > self._acc_v:
            self._acc_v = level
        h = self._hop
        self._hop = h + 1
        self._sub -= 1
        if self._sub == 0:
            self._sub = self.decim
            i = self._pos
            self._low[i] = self._acc_l
            self._mid[i] = self._acc_m
            self._high[i] = self._acc_h
            self._lvl[i] = self._acc_v
            self._acc_l = self._acc_m = self._acc_h = 0.0
            self._acc_v = LEVEL_FLOOR
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
        if ms >= 0 and self._start_known and self._last_beat - ms < 12.0 * self.fr:
            # the beat the music started on, counted back with today's period: the first beats
            # and periods are the least reliable, so this is redone on every beat for 12 s
            n = round((self._last_beat - ms) / self.period)
            self.bars.start(self.beat_count - n)
        self.last_beat_ns = t_ns
        self.beat_count += 1
        self._pending.append((self._last_beat, self.beat_count - 1))
        return True

    def sound_at_start(self, joined: bool = False) -> None:
        """The stream's first hops already hold sound: it joined the music, or the music
        starts at its first sample. The next frame is then where the music started (the start
        prior's beat). FeatureExtractor passes those hops in as silence, because the analysis
        window rising out of its zero start is no hit. That spike is 5-30x a real hit; it led
        the tempo and the grid for the 12 s it stays in the history, from wherever the stream
        joined. `joined`: a live input, which joins whatever is playing: its first hop is no
        beat 1, so this piece gets no start prior (one that starts after silence does)."""
        if self._music_start < 0:
            self._start_next = True
            self._joined = joined

    def _bar_features(self, fb: float, p: float) -> tuple[float, float, float, float, float]:
        """Kick, snare, cymbal strength around beat frame fb (-20..+50 ms), the mean onset
        value between it and the next beat (fills), and the ring in dB (bars.CRASH_RING_DB)."""
        m = self._n_hist - 1
        c = int(round(fb))
        lo, hi = c - max(1, round(0.02 * self.fr)), c + max(2, round(0.05 * self.fr))
        idx = np.arange(lo, hi + 1) & m
        k = float(self._low[idx].max())
        s = float(self._mid[idx].max())
        h = float(self._high[idx].max())
        dj = np.arange(hi + 1, max(hi + 2, int(fb + p) - 2)) & m
        d = float(self._odf[dj].mean())
        # the top band's level over the late half of this beat against the half beat before it
        half = max(1, int(round(0.5 * p)))
        late = float(self._lvl[np.arange(c + half, c + 2 * half) & m].mean())
        before = float(self._lvl[np.arange(c - half, c - 1) & m].mean()) if half > 1 else late
        return k, s, h, d, late - before

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
        if v > self._active_level or self._start_next:
            if self._since_active > self._silence_frames:
                if self._music_start < 0:  # the stream's first music: nothing before is
                    self._hist_from = t  # this music's (vj started before the music did)
                self._music_start = t  # the first onset after silence (or ever)
                self._start_known = not (self._start_next and self._joined)
            self._since_active = 0
            self._start_next = False
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
