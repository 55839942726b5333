"""NDI round trip on this machine: vj's NDI output → an NDI receiver on loopback; prints JSON.

Renders real compositor frames (EGL), reads them back with the async PBO readback, sends them
through `open_output("ndi", ...)` (the sender thread) and receives them with cyndilib's
Receiver. Discovery is pointed at 127.0.0.1 through a private NDI config (NDI_CONFIG_DIR), so
no mDNS is needed. NDI compresses (SpeedHQ), so frames match closely, not bit-exactly.

    python tools/ndi_loopback.py [--frames 30] [--size 320x180]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=30)
    ap.add_argument("--size", default="320x180")
    ap.add_argument("--timeout", type=float, default=15.0)
    args = ap.parse_args(argv)
    w, h = (int(x) for x in args.size.split("x"))
    cfg = Path(tempfile.mkdtemp(prefix="vj-ndi-"))
    (cfg / "ndi-config.v1.json").write_text(json.dumps({"ndi": {"networks": {"ips": "127.0.0.1"}}}))
    os.environ["NDI_CONFIG_DIR"] = str(cfg)  # before the NDI runtime initialises

    from vj.render.outputs import available, open_output

    why = available("ndi")
    if why:
        print(json.dumps({"ok": False, "why": why}))
        return 2
    from cyndilib.finder import Finder
    from cyndilib.receiver import ReceiveFrameType, Receiver
    from cyndilib.video_frame import VideoRecvFrame
    from cyndilib.wrapper import RecvBandwidth, RecvColorFormat

    from vj.render.compositor import Compositor
    from vj.render.offscreen import OffscreenTarget, create_headless_context
    from vj.render.outputs.readback import AsyncReadback
    from vj.render.upscale import psnr

    ctx = create_headless_context()
    comp = Compositor(ctx, w, h, effect="none", filter="bilinear")
    tgt = OffscreenTarget(ctx, w, h)
    rb = AsyncReadback(ctx, w, h, 4)
    name = f"vj-loopback-{os.getpid()}"
    out = open_output("ndi", name, w, h, 30.0)
    finder = Finder()
    finder.open()
    t0 = time.monotonic()
    src = None
    while src is None and time.monotonic() - t0 < args.timeout:
        finder.wait_for_sources(0.2)
        hits = [n for n in finder.get_source_names() if name in n]
        src = finder.get_source(hits[0]) if hits else None
    result: dict = {"source": src.name if src else None, "found_s": time.monotonic() - t0}
    if src is None:
        print(json.dumps({"ok": False, "why": "source not discovered", **result}))
        return 1
    recv = Receiver(color_format=RecvColorFormat.RGBX_RGBA, bandwidth=RecvBandwidth.highest)
    vf = VideoRecvFrame()
    recv.set_video_frame(vf)
    recv.set_source(src)
    sent_frames: dict[int, np.ndarray] = {}
    errs, psnrs, submit_ms, got_frames = [], [], [], []
    stop = threading.Event()

    def receive() -> None:  # the receiving application, on its own thread
        while not stop.is_set():
            r = recv.receive(ReceiveFrameType.recv_video, 50)
            if r & ReceiveFrameType.recv_video:
                got_frames.append(np.asarray(vf).reshape(h, w, 4)[..., :3].copy())

    rx = threading.Thread(target=receive, daemon=True)
    rx.start()
    yy, xx = np.mgrid[0:h, 0:w]
    detail = (127.5 + 127.5 * np.sin(xx / 3.0) * np.cos(yy / 4.0))[h // 2 :, : w // 2].astype(
        np.uint8
    )
    t_end = time.monotonic() + args.timeout
    i = 0
    while len(got_frames) < args.frames and time.monotonic() < t_end:
        # gradients in red and green; blue, flat, identifies the frame (values 37 apart)
        f = np.zeros((h, w, 4), np.uint8)
        f[..., 0] = (xx * 255 // max(1, w - 1)).astype(np.uint8)
        f[..., 1] = (yy * 255 // max(1, h - 1)).astype(np.uint8)
        f[..., 2] = (i * 37) % 256
        f[h // 2 :, : w // 2, 1] = detail  # a finer pattern, like generator texture
        f[..., 3] = 255
        comp.submit_frame(f, i, i * 33_000_000)
        comp.draw(tgt.fbo, i * 33_000_000, {"hud": 0.0, "crossfade": 0.0})
        t = time.perf_counter()
        rb.start(tgt.fbo)
        if rb.collect(out.buffer()):
            out.publish()
        submit_ms.append((time.perf_counter() - t) * 1e3)
        sent_frames[(i * 37) % 256] = f[..., :3]
        i += 1
        time.sleep(1 / 30)
    stop.set()
    rx.join(2.0)
    for got in got_frames:
        key = int(np.median(got[: h // 2, :, 2]))
        ref = min(sent_frames, key=lambda k: abs(k - key))
        errs.append(np.abs(got.astype(int) - sent_frames[ref].astype(int)))
        psnrs.append(psnr(got, sent_frames[ref]))
        if os.environ.get("VJ_DEBUG"):
            print(key, ref, errs[-1].max(), errs[-1].reshape(-1, 3).max(0), file=sys.stderr)
    received = len(got_frames)
    out.close()
    finder.close()
    if not errs:
        print(json.dumps({"ok": False, "why": "no frames received", **result}))
        return 1
    e = np.stack(errs)
    result.update(
        ok=True,
        sent=out.sent,
        dropped=out.dropped,
        received=received,
        resolution=list(vf.get_resolution()),
        mean_abs_error=float(e.mean()),
        p99_abs_error=float(np.percentile(e, 99)),
        max_abs_error=int(e.max()),
        psnr_db_median=float(np.median(psnrs)),
        render_thread_ms_median=float(np.median(submit_ms)),
    )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
