"""What a second deck costs the generator thread: Show tick + engine forward per tick, one deck
vs two decks every tick vs deck B every second tick (the CPU default), in the same run.

    python tools/bench_decks.py [--ticks 40] [--threads 1] [--checkpoint default]

Runs the live driver's GeneratorThread.tick on a virtual clock (no GL, no audio thread), so the
figures are the generator thread's own work. Prints the CPU ms per tick and the frame rate each
deck gets (mean over the ticks after four warm-up ticks).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def run(G, G_b, every: tuple[int, ...] | None, ticks: int, fps: float) -> tuple[float, float]:
    """(mean ms per tick, CPU-bound ticks per second) for one configuration."""
    import numpy as np

    from vj.audio.features import AudioFeatures
    from vj.clock import StampLog
    from vj.live_generator import GeneratorThread
    from vj.params import default_registry
    from vj.show.wiring import build_engine, build_show
    from vj.slot import LatestSlot

    class _Preset:
        name, path, seed, effect, cues = "default", None, 1, "default", ()

    gens = [G] if G_b is None else [G, G_b]
    engines = [build_engine(g)[0] for g in gens]
    show = build_show(_Preset, default_registry(), gens)
    now = [0]
    gen = GeneratorThread(
        show, engines, LatestSlot(), StampLog(), clock=lambda: now[0], decks_every=every or (1,)
    )
    period = int(1e9 / fps)
    times = []
    for i in range(ticks):
        now[0] = i * period
        bands = np.full(8, 0.5 if i % 8 == 0 else 0.1, np.float32)
        show.features(AudioFeatures(t_capture_ns=now[0], onset_count=i // 8, bands=bands))
        t0 = time.thread_time_ns()
        gen.tick()
        times.append((time.thread_time_ns() - t0) / 1e6)
    # the mean, not the median: with B every 2nd tick the ticks alternate between two costs
    mean = statistics.fmean(times[4:])
    return mean, 1000.0 / mean


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ticks", type=int, default=40)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--checkpoint", default="default")
    args = ap.parse_args(argv)

    import torch

    from vj.show.wiring import load_generator

    torch.set_num_threads(args.threads)
    G = load_generator(args.checkpoint)
    G_b = load_generator(args.checkpoint)
    print(f"{args.ticks} ticks, torch threads {args.threads}, {G.img_resolution}² generator")
    print(f"  {'configuration':34s} {'CPU ms/tick':>11s} {'A fps':>7s} {'B fps':>7s}")
    rows = [
        ("one deck", None, None),
        ("two decks, both every tick", G_b, (1, 1)),
        ("two decks, B every 2nd tick", G_b, (1, 2)),
    ]
    base = None
    for label, gb, every in rows:
        ms, tps = run(G, gb, every, args.ticks, 30.0)
        base = base or ms
        b_fps = 0.0 if gb is None else tps / every[1]
        print(f"  {label:34s} {ms:11.1f} {tps:7.1f} {b_fps:7.1f}   ({ms / base:.2f}x one deck)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
