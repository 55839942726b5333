"""MIDI clock in (24 ppqn, start/stop/continue, song position) → BPM and a continuous phase.

`MidiClock` is a `vj.tempo.TempoSource` named "midi_clock": feed it every realtime message
with its arrival time; ask `state(t_ns)` from any thread.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from vj.tempo import TempoState

PPQN = 24  # MIDI clock ticks per quarter note
CLOCK, START, CONTINUE, STOP, SONG_POSITION = 0xF8, 0xFA, 0xFB, 0xFC, 0xF2
TICKS_PER_SPP_UNIT = 6  # a song-position "MIDI beat" is a sixteenth note
REFIT_EVERY = 4  # full robust refit every this many ticks; in between, follow the line
CONFIRM_TICKS = 4  # ticks in a row that must show a tempo change before the old ones go
CHANGE_MIN = 0.08  # smallest relative change of the 12-tick mean taken for a tempo change
# ... and at least this many times the delivery's jitter (1.4826 MAD of a long fit's
# residuals) over the period: arrivals late by up to one delivery period c move a 12-tick
# mean by up to c / 12 ticks, and uniform lateness over c has a spread of 0.37 c
CHANGE_JITTER = 0.3
BUNCH_FRACTION = 0.25  # two ticks closer than this many periods came in one late delivery


@dataclass(frozen=True, slots=True)
class _Fit:
    """One published estimate: tick position p lands at time t0 + (p - p0) * period."""

    t0_ns: float  # fitted time of the newest tick
    p0: int  # song position (ticks) of the newest tick
    period_ns: float  # fitted ns per tick
    last_tick_ns: int  # arrival time of the newest tick, for the timeout
    running: bool  # transport running (or free-running clock with no transport seen)
    pending: bool  # a transport message came and no tick since: hold the position


def _spread(x: np.ndarray) -> float:
    """Robust standard deviation: 1.4826 × the median absolute deviation."""
    return 1.4826 * float(np.median(np.abs(x - np.median(x))))


def unbunched(times_ns: np.ndarray) -> np.ndarray:
    """[n] bool: ticks that did not arrive in a bunch (all of them when fewer than half did:
    then the bunching is the delivery itself). A sender never spaces two ticks a quarter
    period apart (300 BPM is still 8.3 ms per tick), so two that close were held up and
    handed over together (a stalled MIDI thread or JACK cycle on a loaded machine): both came
    late, by an unknown amount, and their times say nothing of the tempo."""
    n = len(times_ns)
    ok = np.ones(n, bool)
    if n < 3:
        return ok
    d = np.diff(times_ns.astype(np.float64))  # [n - 1]: d[i] = t[i + 1] - t[i]
    med = float(np.median(d))
    close = d < BUNCH_FRACTION * med
    # a held-up bunch starts after a gap: its first tick came over a period late. Without
    # one, ticks two to a delivery are the delivery's own rhythm (a JACK period longer than
    # a tick: 21.3 ms at 1024 frames against 17.9 ms per tick at 140 BPM), not a stall
    for i in np.flatnonzero(close & ~np.r_[False, close[:-1]]):  # first pair of each run
        if i == 0 or d[i - 1] > 1.5 * med:
            j = i
            while j < len(d) and close[j]:
                ok[j] = ok[j + 1] = False
                j += 1
    if ok.sum() < max(3, n // 2):
        ok[:] = True
    return ok


def fit_tick_period(times_ns: np.ndarray) -> tuple[float, float]:
    """Robust line fit of tick times [n] against tick index → (ns per tick, fitted last time)."""
    slope, t_last, _ = fit_tick_line(times_ns)
    return slope, t_last


def fit_tick_line(times_ns: np.ndarray) -> tuple[float, float, float]:
    """`fit_tick_period` and the robust spread (ns) of the ticks about the fitted line.

    Least squares over the ticks that did not arrive in a bunch (`unbunched`), then once more
    without ticks whose residual exceeds 3 × MAD (late or bunched deliveries); jitter-tolerant
    because every tick in the window contributes.
    """
    n = len(times_ns)
    t = times_ns.astype(np.float64) - float(times_ns[-1])  # [n], relative for precision
    i = np.arange(n, dtype=np.float64) - (n - 1)  # [n], newest tick at index 0
    first = unbunched(times_ns)
    keep = first.copy()
    slope = intercept = spread = 0.0
    for _ in range(2):
        ii, tt = i[keep], t[keep]
        im, tm = ii.mean(), tt.mean()
        var = float(((ii - im) ** 2).sum())
        if var == 0:
            break
        slope = float(((ii - im) * (tt - tm)).sum() / var)
        intercept = float(tm - slope * im)
        resid = t - (intercept + slope * i)  # [n], about the line just fitted
        spread = _spread(resid)
        new_keep = first & (np.abs(resid) <= max(3.0 * spread, 1e-3 * abs(slope)))
        if new_keep.sum() < max(3, n // 2) or np.array_equal(new_keep, keep):
            break
        keep = new_keep
    return slope, float(times_ns[-1]) + intercept, spread


def same_period(times_ns: np.ndarray, ref_ns: float) -> bool:
    """Do these tick times [k] fit the period ref_ns (ns per tick) within their own noise?

    Theil–Sen slope (median of pairwise slopes): a stalled delivery that bunches a few ticks
    moves it much less than a least-squares line. The tolerance is 3 % or three standard
    errors of a slope fitted through ticks this scattered, whichever is wider, so a short,
    jittery series (a loaded machine) is not taken for a new tempo.
    """
    idx = np.flatnonzero(unbunched(times_ns))  # tick numbers of the on-time ones
    k = len(idx)
    t = times_ns[idx].astype(np.float64) - float(times_ns[0])  # [k]
    i, j = np.triu_indices(k, 1)
    slope = float(np.median((t[j] - t[i]) / (idx[j] - idx[i])))
    # standard error of a k-point slope through ticks this scattered
    se = _spread(t - slope * idx) * math.sqrt(12.0 / (k * (k * k - 1)))
    return abs(slope - ref_ns) < max(0.03 * ref_ns, 3.0 * se)


def fit_tick_period_reference(times_ns: np.ndarray) -> float:
    """Plain least-squares slope (ns per tick) with numpy.polyfit; the reference twin for tests."""
    return float(
        np.polyfit(
            np.arange(len(times_ns), dtype=np.float64),
            times_ns.astype(np.float64) - float(times_ns[0]),
            1,
        )[0]
    )


class MidiClock:
    """Tempo and phase from MIDI clock; a TempoSource named "midi_clock".

    Positions follow the MIDI spec: after Start the next clock is song position 0 (beat one
    of bar one); Song Position Pointer sets where the next clock after Continue lands; Stop
    freezes the position. A clock with no transport messages at all (DJ mixers) free-runs
    from its first tick. While stopped, `state` answers None so the next source takes over,
    unless `active_when_stopped`.
    """

    name = "midi_clock"

    def __init__(
        self,
        window_ticks: int = 96,
        timeout_s: float = 0.5,
        beats_per_bar: int = 4,
        min_ticks: int = 12,
        active_when_stopped: bool = False,
    ) -> None:
        if window_ticks < 4 or min_ticks < 3 or min_ticks > window_ticks:
            raise ValueError("MidiClock: need 3 <= min_ticks <= window_ticks and window_ticks >= 4")
        self._times = np.zeros(window_ticks, np.int64)  # ring of tick arrival times (ns)
        self._n = 0  # ticks in the series since the last reset (may exceed capacity)
        self._scratch = np.zeros(window_ticks, np.int64)  # ordered copy for the fit
        self._timeout_ns = int(timeout_s * 1e9)
        self._beats_per_bar = beats_per_bar
        self._min_ticks = min_ticks
        self._active_when_stopped = active_when_stopped
        self._next_pos = 0  # song position (ticks) the next clock lands on
        self._pos = -1  # song position of the newest tick
        self._running = True  # free-running until a transport message says otherwise
        self._pending = False  # transport message seen, no tick since
        self._ref_period: float | None = None  # period before a pause, to resume from
        self._quiet_stop = False  # stopped and no tick since: the sender went quiet
        self._change_streak = 0  # ticks in a row that looked like a tempo change
        self._change_tol = CHANGE_MIN  # relative change taken for a tempo change
        self._fit: _Fit | None = None  # replaced whole, so readers need no lock
        self.tempo_resets = 0  # counters, for the HUD and tests
        self.messages = 0
        self.ignored = 0

    # -- writer side (MIDI input thread) -------------------------------------------------
    def feed(self, message: list[int], t_ns: int) -> None:
        """One MIDI message with its arrival time (clock ns). Never raises."""
        try:
            self.messages += 1
            status = int(message[0]) if len(message) else -1
            if status == CLOCK:
                self._tick(int(t_ns))
            elif status in (START, CONTINUE, STOP):
                if status == STOP and self._running:
                    self._quiet_stop = True
                self._running = status != STOP
                if status == START:
                    self._next_pos = 0
                self._transport_changed()
            elif status == SONG_POSITION and len(message) >= 3:
                lsb, msb = int(message[1]), int(message[2])
                if not (0 <= lsb < 128 and 0 <= msb < 128):
                    self.ignored += 1
                    return
                self._next_pos = ((msb << 7) | lsb) * TICKS_PER_SPP_UNIT
                self._transport_changed()
            else:
                self.ignored += 1
        except Exception:  # malformed input of any kind is dropped, never raised
            self.ignored += 1

    def _transport_changed(self) -> None:
        self._pos = self._next_pos - 1  # the virtual tick just before the next one
        self._pending = True
        self._republish()

    def _tick(self, t_ns: int) -> None:
        cap = len(self._times)
        if self._n:
            prev = int(self._times[(self._n - 1) % cap])
            if t_ns < prev:
                self.ignored += 1  # out-of-order timestamp; keep the series monotonic
                return
            gap = t_ns - prev
            f = self._fit
            paused = self._pending and f is not None
            if gap > self._timeout_ns or (
                paused and (gap > 1.5 * f.period_ns or (self._running and self._quiet_stop))
            ):
                # the clock paused (senders that go quiet while stopped): the interval
                # across the pause is not a tick period, so start a new series. A sender
                # that sent no tick while stopped paused whatever the gap looks like: a
                # late delivery of the last tick before Stop can make a short pause look
                # like one tick period
                self._n = 0
                self._change_streak = 0
                self._ref_period = None if f is None else f.period_ns
                if self._running and gap > self._timeout_ns and not self._pending:
                    self._fit = None  # died while running: the old tempo is stale
                    self._ref_period = None
        self._pending = False
        self._quiet_stop = False
        self._times[self._n % cap] = t_ns
        self._n += 1
        if self._running:
            self._pos = self._next_pos
            self._next_pos += 1
        self._maybe_forget_old_tempo()
        self._republish(tick=True)

    def _ordered(self, k: int) -> np.ndarray:
        """The newest k tick times [k], oldest first, in the scratch buffer."""
        cap = len(self._times)
        start = (self._n - k) % cap
        times = self._scratch[:k]
        np.take(self._times, np.arange(start, start + k) % cap, out=times)
        return times

    def _maybe_forget_old_tempo(self) -> None:
        """After a tempo change, drop ticks of the old tempo so the fit follows within a beat.

        Compares the mean interval of the newest 12 ticks with that of the older ones; 8 %
        (CHANGE_MIN; more on a coarser delivery, `_change_tol`) is well above what one JACK
        period (5.3 ms) of delivery jitter can fake at 180 BPM.
        One late tick (a stalled delivery on a loaded machine) can fake it, as the newest
        tick and again 12 ticks later as the middle one, so the change must hold for
        CONFIRM_TICKS ticks in a row; the series then restarts at the first of them.
        """
        cap = len(self._times)
        k = min(self._n, cap)
        recent = 12
        if k < 3 * recent:
            return
        t_new = self._times[(self._n - 1) % cap]
        t_mid = self._times[(self._n - 1 - recent) % cap]
        t_old = self._times[(self._n - k) % cap]
        mean_recent = (t_new - t_mid) / recent
        mean_old = (t_mid - t_old) / (k - 1 - recent)
        if not (mean_old > 0 and abs(mean_recent / mean_old - 1.0) > self._change_tol):
            self._change_streak = 0
            return
        self._change_streak += 1
        if self._change_streak >= CONFIRM_TICKS:
            # a run of stalls can still hold the mean off for 4 ticks: the robust line fits
            # of both parts (late, bunched ticks left out) must agree that it changed
            times = self._ordered(k)
            p_new, _ = fit_tick_period(times[k - 1 - recent :])
            p_old, _ = fit_tick_period(times[: k - recent])
            if not (p_old > 0 and abs(p_new / p_old - 1.0) > self._change_tol):
                self._change_streak = 0
                return
            # the first tick of the streak was already past the change point; keep the
            # tick before it too, the interval between them is of the new tempo
            keep = self._change_streak + 1
            self._change_streak = 0
            tail = [int(self._times[(self._n - keep + j) % cap]) for j in range(keep)]
            self._times[:keep] = tail
            self._n = keep
            self.tempo_resets += 1
            self._ref_period = None  # the tempo did change: no going back

    def _republish(self, tick: bool = False) -> None:
        """Fit the series and publish; with too few ticks keep the previous period.

        On most ticks of a long series the fitted line is only followed (the anchor moves to
        the new tick's position on the same line); a full refit runs every REFIT_EVERY ticks.
        """
        cap = len(self._times)
        k = min(self._n, cap)
        old = self._fit
        if (
            tick
            and old is not None
            and k >= 2 * self._min_ticks
            and self._ref_period is None
            and self._n % REFIT_EVERY
            and self._running
            and not old.pending
            and old.running
            and self._pos > old.p0
        ):
            t_last = old.t0_ns + (self._pos - old.p0) * old.period_ns
            last = int(self._times[(self._n - 1) % cap])
            self._fit = _Fit(t_last, self._pos, old.period_ns, last, True, False)
            return
        if k >= self._min_ticks:
            times = self._ordered(k)
            period, t_last, spread = fit_tick_line(times)
            if not (period > 0 and math.isfinite(period)):
                return
            if k >= 2 * self._min_ticks and not self._change_streak:
                # the delivery's jitter, from a long steady series (one JACK period of
                # lateness at 1024 frames fakes an 8.5 % change of a 12-tick mean at 120 BPM)
                self._change_tol = max(CHANGE_MIN, CHANGE_JITTER * spread / period)
            ref = self._ref_period
            if ref is not None and k >= len(self._times) // 2:
                self._ref_period = None  # long enough to trust its own fit
            elif ref is not None and same_period(times, ref):
                # resumed after a pause at what looks like the same tempo: a short new
                # series is noisier than the long one before the pause, so keep its period
                # and only re-anchor the phase (median: robust to late deliveries). Asked
                # again on every tick until the series is long: one noisy early fit does
                # not throw the old tempo away
                back = np.arange(k - 1, -1, -1, dtype=np.float64) * ref  # [k]
                period, t_last = ref, float(np.median(times + back))
            last = int(times[-1])
        elif old is not None:
            period = old.period_ns
            last = int(self._times[(self._n - 1) % cap]) if k else old.last_tick_ns
            t_last = float(last) if k else old.t0_ns
        else:
            return
        self._fit = _Fit(t_last, self._pos, period, last, self._running, self._pending)

    # -- reader side (any thread) --------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._running

    def bpm(self) -> float:
        f = self._fit
        return 0.0 if f is None else 60e9 / (f.period_ns * PPQN)

    def state(self, t_ns: int) -> TempoState | None:
        f = self._fit
        if f is None or t_ns - f.last_tick_ns > self._timeout_ns:
            return None
        if not f.running and not self._active_when_stopped:
            return None
        bpm = 60e9 / (f.period_ns * PPQN)
        if f.running and not f.pending:
            # extrapolate from the fitted line, at most two ticks past the newest one so a
            # late tick never makes the phase run ahead of the music
            ahead = min(max((t_ns - f.t0_ns) / f.period_ns, -PPQN), 2.0)
            pos = f.p0 + ahead
        else:
            pos = float(f.p0)
        beats = max(pos, 0.0) / PPQN
        whole = math.floor(beats + 1e-9)  # a tick exactly on the beat counts as that beat
        phase = max(beats - whole, 0.0)
        bar = (whole % self._beats_per_bar) + phase
        return TempoState(bpm, phase, bar, self._beats_per_bar, int(whole))
