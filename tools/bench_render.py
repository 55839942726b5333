"""Benchmark the compositor on a headless EGL context: upload + composite + HUD, ms p50/p95.

    python3 tools/bench_render.py [--frames 120] [--sizes 1280x720,1920x1080] [--src 256,1024]

Each measured frame uploads a new generator frame, draws all passes with the HUD on, and waits
for the GL to finish (ctx.finish), so the figure is the whole frame's cost on this renderer.
`readback` adds OffscreenTarget.read_rgb (the offline render path).
"""

from __future__ import annotations

import argparse
import threading
import time

import numpy as np

from vj.audio.features import AudioFeatures
from vj.render.compositor import Compositor
from vj.render.offscreen import OffscreenTarget, create_headless_context


def bench(ctx, size, src, frames, filt, effect, readback):
    w, h = size
    comp = Compositor(ctx, w, h, effect=effect, filter=filt)
    tgt = OffscreenTarget(ctx, w, h)
    rng = np.random.default_rng(0)
    pool = [rng.integers(0, 256, (src, src, 4), dtype=np.uint8) for _ in range(4)]
    feats = AudioFeatures(onset_count=1, bands=np.full(8, 0.5, np.float32), rms=0.5)
    params = {"fx_amount": 0.5, "hud": 1.0}
    hud = ["display 60.0 fps", "generator 20.1 fps", "latency 35.2 ms p95 41.0"]
    times = []
    gaps: list[float] = []
    stop = threading.Event()

    def ticker() -> None:
        # a stand-in for the audio thread: wakes every 1 ms; long gaps = GIL held by the render
        last = time.perf_counter()
        while not stop.is_set():
            time.sleep(0.001)
            now = time.perf_counter()
            gaps.append((now - last) * 1e3)
            last = now

    th = threading.Thread(target=ticker, daemon=True)
    th.start()
    for i in range(frames + 10):
        t0 = time.perf_counter()
        comp.submit_frame(pool[i % 4], i, i * 16_666_667)
        comp.draw(tgt.fbo, i * 16_666_667 + 8_000_000, params, feats, hud)
        if readback:
            tgt.read_rgb()
        ctx.finish()
        if i >= 10:  # warm-up: shader JIT, first allocations
            times.append((time.perf_counter() - t0) * 1e3)
    stop.set()
    th.join()
    comp.release()
    tgt.release()
    t = np.array(times)
    return np.percentile(t, 50), np.percentile(t, 95), max(gaps)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=120)
    ap.add_argument("--sizes", default="1280x720,1920x1080")
    ap.add_argument("--src", default="256,1024", help="generator frame sizes (square)")
    ap.add_argument("--effect", default="default")
    args = ap.parse_args()
    ctx = create_headless_context()
    print(f"renderer: {ctx.info['GL_RENDERER']}")
    print(
        f"{'output':>10} {'src':>5} {'filter':>9} {'readback':>8} {'p50 ms':>8} {'p95 ms':>8} "
        f"{'max 1ms-ticker gap':>18}"
    )
    for s in args.sizes.split(","):
        size = tuple(int(v) for v in s.lower().split("x"))
        for src in (int(v) for v in args.src.split(",")):
            for filt in ("bilinear", "bicubic"):
                for rb in (False, True):
                    p50, p95, gap = bench(ctx, size, src, args.frames, filt, args.effect, rb)
                    print(
                        f"{s:>10} {src:>5} {filt:>9} {'yes' if rb else 'no':>8} "
                        f"{p50:8.2f} {p95:8.2f} {gap:18.1f}"
                    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
