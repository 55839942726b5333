"""The live driver's generator → display wiring, end to end in one process, on this machine.

build_engine (the live flags) → FramePacer + FrameExchange → Compositor.submit_frame (interop or
host copy, chosen by the compositor) → EGL readback, with a generator thread and the display
loop on the main thread, as `vj live` runs them. Checks that what was shown is the engine's
frame (against a CPU fp32 render of the same controls) and prints the engine's description,
the upload path, generator/display rates and the frames the pacer saved.

    python tools/engine_smoke.py [--device cuda] [--dtype fp16] [--backend torch] [--seconds 3]
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv: list[str] | None = None) -> int:
    from vj.gan.options import add_engine_args

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--size", type=int, default=None, help="full-size network at this resolution")
    ap.add_argument("--display-fps", type=float, default=60.0)
    ap.add_argument("--threads", type=int, default=1)
    add_engine_args(ap)
    args = ap.parse_args(argv)

    import torch

    from vj.audio.features import AudioFeatures
    from vj.gan.engine import Engine
    from vj.gan.options import build_engine, spec_from
    from vj.gan.pacing import FrameExchange, FramePacer
    from vj.gan.stylegan2 import make_default_generator
    from vj.react.modulation import Modulator
    from vj.render.compositor import Compositor
    from vj.render.offscreen import OffscreenTarget, create_headless_context
    from vj.slot import LatestSlot

    if args.size is None:
        G = make_default_generator(0)
    else:
        from tools.bench_generator import full_config

        dev = "cuda" if torch.cuda.is_available() else "cpu"  # its statistics: fast there
        G = make_default_generator(0, full_config(args.size), device=dev)
    engine, description = build_engine(G, spec_from(args, threads=args.threads))
    print(f"engine: {description}")
    r = engine.resolution
    ctx = create_headless_context()
    comp = Compositor(ctx, r, r, effect="none")
    target = OffscreenTarget(ctx, r, r)
    mod = Modulator(G, seed=0)
    features: LatestSlot[AudioFeatures] = LatestSlot(AudioFeatures())
    exchange = FrameExchange(engine.n_buffers)
    pacer = FramePacer(args.display_fps, news=lambda: features.version)
    params = {"crossfade": 0.0}
    errors: list[BaseException] = []

    def audio() -> None:  # analysis results at 48 kHz / 256 hop, an onset every 0.5 s
        k = 0
        while not stop.is_set():
            features.publish(AudioFeatures(onset_count=k // 94))
            k += 1
            time.sleep(256 / 48000)

    def generator() -> None:
        try:
            t0 = time.perf_counter()
            while pacer.wait():
                feats = features.take()
                pacer.started()
                controls = mod.step(feats, params, time.perf_counter() - t0)
                slot = exchange.acquire()
                frame = engine.render_async(controls, slot=slot)
                exchange.publish(slot, (frame, controls))
        except BaseException as exc:
            errors.append(exc)

    stop = threading.Event()
    threads = [threading.Thread(target=audio), threading.Thread(target=generator)]
    for t in threads:
        t.start()
    shown, checked, worst = 0, 0, 0.0
    reference = Engine(G, device="cpu", threads=args.threads)
    t_end = time.perf_counter() + args.seconds
    try:
        while time.perf_counter() < t_end and not errors:
            got = exchange.take()
            if got is not None:
                slot, (frame, controls) = got
                comp.submit_frame(
                    frame.rgba, frame.index, time.perf_counter_ns(),
                    stream=frame.stream, event=frame.event,
                )  # fmt: skip
                exchange.release(slot)  # the upload is queued (on the engine's stream)
                shown += 1
            comp.draw(target.fbo, time.perf_counter_ns(), params)
            if got is not None and checked < 3:  # what is on screen is that frame
                out = target.read_rgb().astype(np.float32)
                want = reference.render(controls).rgba[:, :, :3].astype(np.float32)
                worst = max(worst, float(np.abs(out - want).mean()))
                checked += 1
            pacer.display_swapped()
            time.sleep(max(0.0, 1 / args.display_fps - 0.001))  # a vsync'd swap
    finally:
        stop.set()
        pacer.close()
        for t in threads:
            t.join()
    if errors:
        raise errors[0]
    s = args.seconds
    print(f"{comp.upload_description}")
    print(
        f"generated {exchange.published} frames ({exchange.published / s:.1f}/s, paced to the "
        f"display's {pacer.display_fps:.1f}), shown {shown}, replaced unshown {exchange.dropped}, "
        f"idle frames {pacer.idle_frames}"
    )
    print(f"shown vs CPU fp32 reference: mean |diff| {worst:.2f} levels over {checked} frames")
    ok = checked > 0 and worst < (3.0 if "fp16" in description else 1.0)
    if torch.cuda.is_available() and engine.device.type == "cuda":
        ok = ok and ("interop" in comp.upload_description or bool(comp.interop_reason))
    print("engine smoke:", "ok" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
