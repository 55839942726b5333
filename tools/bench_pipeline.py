#!/usr/bin/env python3
"""Per-stage latency (p50/p95) of the live pipeline, from the clock's stamps.

Runs the real live app headless (EGL offscreen, demo track played in real time as the input)
for a while and prints the stage table. In the same run it times the generator alone, so the
pipeline's overhead reads as a ratio on this machine, and compares against the budget.

    python tools/bench_pipeline.py [--seconds 20] [--size 1280x720] [--fps 60] [--json out.json]
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from datetime import date

import numpy as np


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--size", default="1280x720")
    ap.add_argument("--fps", type=float, default=60.0)
    ap.add_argument("--preset", default="default")
    ap.add_argument("--checkpoint", default="default")
    ap.add_argument("--gen-threads", type=int, default=1)
    ap.add_argument("--json", default=None, help="also write raw stamps + summary here")
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.split("x"))

    import torch

    from vj.audio.features import SILENCE
    from vj.cli import build_audio, load_preset_or_default
    from vj.gan.checkpoint import load_checkpoint_or_default
    from vj.gan.engine import Engine
    from vj.live import LiveApp, LiveOptions
    from vj.params import default_registry
    from vj.profile.latency import format_table, save_json, summarise
    from vj.react.modulation import Modulator
    from vj.tempo import TapTempo, TempoArbiter

    torch.set_num_threads(args.gen_threads)
    registry = default_registry()
    preset = load_preset_or_default(args.preset, registry)

    # Reference in the same run: the generator alone, nothing else running.
    G, _meta = load_checkpoint_or_default(args.checkpoint)
    eng = Engine(G, device="auto")
    mod = Modulator(G, seed=0)
    params = registry.snapshot()
    for _ in range(5):
        eng.render(mod.step(SILENCE, params, 0.0))
    solo = []
    for i in range(60):
        t = time.perf_counter()
        f = eng.render(mod.step(SILENCE, params, i / 30))
        if f.event is not None:  # CUDA render() does not wait on the host: wait here
            f.event.synchronize()
        solo.append((time.perf_counter() - t) * 1e3)
    solo_ms = float(np.median(solo))

    ns = argparse.Namespace(
        file=None, demo=True, input_device=None, block_size=None, sample_rate=None, channel=None
    )
    tap = TapTempo()
    arbiter = TempoArbiter([tap])
    audio_in = build_audio(ns, preset, arbiter)
    opts = LiveOptions(
        width=w,
        height=h,
        fps=args.fps,
        headless=True,
        duration=args.seconds,
        effect=preset.effect,
        checkpoint=args.checkpoint,
        gen_threads=args.gen_threads,
    )
    app = LiveApp(registry, audio_in, opts, G=G, tap=tap, arbiter=arbiter)
    app.run()

    rows = app.stamps.rows()
    summ = summarise(rows)
    print(
        f"vj pipeline benchmark — {date.today()} — {platform.node()} "
        f"({platform.machine()}, {torch.get_num_threads()} torch threads, "
        f"backend {app.engine.backend}, {w}x{h}, gen {G.img_resolution}²)"
    )
    print(format_table(summ))
    gen = summ.get("gen_start->gen_end", {}).get("p50", float("nan"))
    print(f"\ngenerator alone (same run, nothing else busy): {solo_ms:.1f} ms/frame median")
    print(
        f"generator inside the pipeline: {gen:.1f} ms/frame p50 "
        f"(ratio {gen / solo_ms:.2f}× of alone)"
    )
    print(
        f"generator fps {app.gen.fps():.1f}, display fps {app.display_fps.fps():.1f} "
        f"(target {args.fps:.0f})"
    )
    audio = getattr(app.audio, "stats", None)
    if callable(audio):
        print(f"audio: {audio()}")
    print(
        f"audio overruns {getattr(app.audio, 'overruns', '?')}, "
        f"analysis late {getattr(app.audio, 'analysis_overruns', '?')}"
    )
    total = summ.get("total", {})
    if total:
        print(
            f"\naudio→screen p95 {total['p95']:.1f} ms (budget on a GPU at 512²: 20 ms; "
            f"{'within' if total['p95'] <= 20 else 'over'} budget on this machine)"
        )
    if args.json:
        save_json(args.json, rows, {"generator_alone_ms": solo_ms})
    return 0


if __name__ == "__main__":
    sys.exit(main())
