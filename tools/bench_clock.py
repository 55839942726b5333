"""Benchmark: MIDI clock BPM after Stop / Continue when delivery stalls (a loaded machine).

    python tools/bench_clock.py [--runs 300] [--resume-ticks 15] [--seed 0]

Each run: Start, 77 ticks at 120 BPM, Stop, 50 ms of silence, Song Position, Continue, then
`--resume-ticks` ticks at 120 BPM (or at a new tempo), read 30 ms after the last one is due.
Deliveries are rounded up to a 5.33 ms JACK period and stall at random (Poisson, given rate;
exponential length, at most 35 ms): a tick due inside a stall arrives at its end. Prints, per
load, how many runs miss the true BPM by more than 1 % with `vj.control.clock_sync.MidiClock`
and with the reference in the same run: a plain least-squares fit over the resumed ticks.
The "steady" rows read the clock after the 77 ticks, with no Stop (the reference then fits
all 77). Last, with no stalls: 96 ticks delivered on JACK periods of 256 / 1024 / 2048
frames at 48 kHz, 90-180 BPM and 7 phases each, the worst BPM error (a period longer than
a tick hands over two ticks at once, in a rhythm that beats against the tempo).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vj.control.clock_sync import (  # noqa: E402
    CLOCK,
    CONTINUE,
    PPQN,
    SONG_POSITION,
    START,
    STOP,
    MidiClock,
    fit_tick_period_reference,
)

T0 = 10**12
CYCLE_NS = 256 / 48000 * 1e9  # JACK hands MIDI over once per period
LOADS = [(0.0, 0.0), (5.0, 10.0), (10.0, 12.0), (20.0, 12.0), (30.0, 15.0)]  # stalls/s, ms


def delivered(due: np.ndarray, rng: np.random.Generator, rate: float, mean_ms: float):
    """Arrival times [n] of ticks due at `due` [n]: period-rounded, stalled, in order."""
    out = np.ceil(due / CYCLE_NS) * CYCLE_NS
    t = float(due[0])
    while rate > 0:
        t += rng.exponential(1e9 / rate)
        if t > due[-1] + 40e6:
            break
        end = t + min(rng.exponential(mean_ms * 1e6), 35e6)
        out[(out >= t) & (out < end)] = end
    return np.maximum.accumulate(out).astype(np.int64)


def one_run(rng, rate: float, mean_ms: float, bpm2: float, n2: int) -> tuple[float, float]:
    """(MidiClock's BPM, reference BPM) after a resume at bpm2."""
    p1, p2 = 60e9 / (120.0 * PPQN), 60e9 / (bpm2 * PPQN)
    clock = MidiClock()
    clock.feed([START], T0 - 1)
    due = T0 + np.arange(77) * p1
    for t in delivered(due, rng, rate, mean_ms):
        clock.feed([CLOCK], int(t))
    clock.feed([STOP], int(due[-1]) + 1000)  # sent right after the last tick
    t_resume = int(due[-1] + 50e6)
    clock.feed([SONG_POSITION, 32, 0], t_resume)
    clock.feed([CONTINUE], t_resume + 1)
    due = t_resume + 200_000 + np.arange(n2) * p2
    read_at = int(due[-1] + 30e6)
    arrived = [int(t) for t in delivered(due, rng, rate, mean_ms) if t <= read_at]
    for t in arrived:
        clock.feed([CLOCK], t)
    st = clock.state(read_at)
    ref = 60e9 / (fit_tick_period_reference(np.array(arrived)) * PPQN) if len(arrived) > 2 else 0
    return (st.bpm if st is not None else 0.0), ref


def steady_run(rng, rate: float, mean_ms: float) -> tuple[float, float]:
    """(MidiClock's BPM, reference BPM) after 77 ticks at 120 BPM, no transport change."""
    clock = MidiClock()
    clock.feed([START], T0 - 1)
    arrived = delivered(T0 + np.arange(77) * 60e9 / (120.0 * PPQN), rng, rate, mean_ms)
    for t in arrived:
        clock.feed([CLOCK], int(t))
    return clock.bpm(), 60e9 / (fit_tick_period_reference(arrived) * PPQN)


def worst_on_periods(frames: int) -> tuple[float, float, int]:
    """(MidiClock's worst BPM error, reference's, MidiClock's tempo resets) over tempos and
    phases, ticks delivered at the end of each JACK period of `frames` at 48 kHz."""
    cycle = frames / 48000 * 1e9
    worst = np.zeros(2)
    resets = 0
    for bpm in np.arange(90.0, 181.0, 3.7):
        period = 60e9 / (bpm * PPQN)
        for phase in np.linspace(0.0, cycle, 7, endpoint=False):
            due = T0 + phase + np.arange(96) * period
            arrived = (np.ceil(due / cycle) * cycle).astype(np.int64)
            clock = MidiClock()
            clock.feed([START], T0 - 1)
            for t in arrived:
                clock.feed([CLOCK], int(t))
            resets += clock.tempo_resets
            ref = 60e9 / (fit_tick_period_reference(arrived) * PPQN)
            worst = np.maximum(worst, [abs(clock.bpm() / bpm - 1), abs(ref / bpm - 1)])
    return float(worst[0]), float(worst[1]), resets


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=300, help="runs per load")
    ap.add_argument("--resume-ticks", type=int, default=15, help="ticks sent after Continue")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if args.runs < 1 or args.resume_ticks < 3:
        print("bench_clock: need --runs >= 1 and --resume-ticks >= 3", file=sys.stderr)
        return 2
    rng = np.random.default_rng(args.seed)
    print(f"runs missing the BPM by > 1 % (of {args.runs}), {args.resume_ticks} ticks resumed")
    print("resume at   stalls/s  mean ms   MidiClock  least-squares reference")
    for bpm2 in (0.0, 120.0, 100.0, 126.0):  # 0: steady
        for rate, mean_ms in LOADS:
            miss = np.zeros(2, int)
            for _ in range(args.runs):
                if bpm2:
                    got = one_run(rng, rate, mean_ms, bpm2, args.resume_ticks)
                else:
                    got = steady_run(rng, rate, mean_ms)
                miss += [abs(b / (bpm2 or 120.0) - 1.0) > 0.01 for b in got]
            what = f"{bpm2:5.0f} BPM" if bpm2 else "steady   "
            print(f"{what}   {rate:8.0f}  {mean_ms:7.0f}   {miss[0]:9d}  {miss[1]:9d}")
    print("\nno stalls, 96 ticks, 90-180 BPM: worst BPM error")
    print("JACK period   MidiClock  (tempo resets)  least-squares reference")
    for frames in (256, 1024, 2048):
        mine, ref, resets = worst_on_periods(frames)
        print(f"{frames:5d} frames  {mine * 100:7.2f} %  {resets:14d}  {ref * 100:9.2f} %")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
