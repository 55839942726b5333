"""Benchmark: MIDI CC in (a JACK virtual port) → value in the parameter registry → first
composited frame that shows it (EGL offscreen compositor paced at the display rate); p50/p95.

    python tools/bench_control.py [--n 300] [--fps 60] [--size 320x180] [--no-frame]
                                  [--server NAME] [--period 256]

Without --server a private `jackd -d dummy` is started (and stopped) for the run. The MIDI path
is the real one: python-rtmidi (JACK) → vj.control.midi.MidiInput → MidiMapper → registry.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid

import numpy as np

CC_NUMBER = 1
PARAM = "brightness"  # visible in every composited pixel


def start_jackd(rate: int, period: int) -> tuple[subprocess.Popen, str]:
    if shutil.which("jackd") is None:
        sys.exit("bench_control: jackd not found (apt-get install jackd2), or pass --server")
    name = f"vjbench-{uuid.uuid4().hex[:8]}"
    proc = subprocess.Popen(
        ["jackd", "-n", name, "-d", "dummy", "-r", str(rate), "-p", str(period)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=dict(os.environ, JACK_NO_AUDIO_RESERVATION="1"),
    )
    import jack

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            jack.Client("vjbench-probe", servername=name, no_start_server=True).close()
            return proc, name
        except jack.JackError:
            time.sleep(0.1)
    proc.terminate()
    sys.exit(f"bench_control: jackd {name} did not start")


def pct(a: list[float]) -> str:
    if not a:
        return "no samples"
    x = np.asarray(a)
    return (
        f"p50 {np.percentile(x, 50):6.2f} ms  p95 {np.percentile(x, 95):6.2f} ms  "
        f"max {x.max():6.2f} ms  (n={len(x)})"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=300, help="CC messages to send")
    ap.add_argument("--fps", type=float, default=60.0, help="display rate of the frame loop")
    ap.add_argument("--size", default="320x180", help="composited frame size WxH")
    ap.add_argument("--no-frame", action="store_true", help="registry latency only (no GL)")
    ap.add_argument("--server", help="use this running JACK server instead of a private one")
    ap.add_argument("--period", type=int, default=256, help="private jackd period (frames)")
    ap.add_argument("--rate", type=int, default=48000, help="private jackd sample rate")
    args = ap.parse_args(argv)
    w, h = (int(v) for v in args.size.lower().split("x"))

    proc = None
    server = args.server
    if server is None:
        proc, server = start_jackd(args.rate, args.period)
    os.environ["JACK_DEFAULT_SERVER"] = server  # a script's own process: fine to set here
    os.environ["JACK_NO_START_SERVER"] = "1"
    try:
        return run(args, server, w, h)
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(5)


def run(args, server: str, w: int, h: int) -> int:
    import rtmidi

    from vj.clock import now_ns
    from vj.control.mapping import Mapping, MidiMapper
    from vj.control.midi import MidiInput
    from vj.params import default_registry

    reg = default_registry()
    changes: list[tuple[int, float]] = []  # (t_ns, value) seen by a registry listener
    reg.add_listener(lambda n, v, s: changes.append((now_ns(), v)) if n == PARAM else None)
    mapper = MidiMapper(reg, [Mapping("cc", CC_NUMBER, PARAM)])
    out = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name="vjbench-src")
    out.open_virtual_port("out")
    sends: list[tuple[int, int]] = []  # (t_ns, cc value)
    frames: list[tuple[int, float, float]] = []  # (t_done_ns, param value drawn, mean pixel)
    draw_ms: list[float] = []  # render work per display frame
    done = threading.Event()

    def sender() -> None:
        rng = np.random.default_rng(1)
        time.sleep(0.3)
        for i in range(args.n):
            val = 20 + (i % 2) * 80 + int(rng.integers(0, 8))  # always a change
            t = now_ns()
            out.send_message([0xB0, CC_NUMBER, val])
            sends.append((t, val))
            time.sleep(float(rng.uniform(0.045, 0.075)))  # unrelated to the frame clock
        time.sleep(0.2)
        done.set()

    with MidiInput(mapper, "vjbench-src", api="jack", poll_interval=0.2) as mi:
        mi.start()
        th = threading.Thread(target=sender, daemon=True)
        if args.no_frame:
            th.start()
            done.wait()
        else:
            frame_loop(reg, w, h, args.fps, th, done, frames, draw_ms)
        th.join()
    out.close_port()
    out.delete()

    # registry: the k-th change belongs to the k-th send (every send changes the value)
    spec = reg.spec(PARAM)
    reg_ms = []
    for (ts, val), (tc, v) in zip(sends, changes, strict=False):
        if abs(v - spec.from_normalized(val / 127.0)) < 1e-6:
            reg_ms.append((tc - ts) / 1e6)
    print(f"JACK server {server}; {len(sends)} CC sent, {len(changes)} registry changes")
    print(f"MIDI in → registry:         {pct(reg_ms)}")
    if not args.no_frame:
        frame_ms = []
        mismatched = 0
        last = prev_mean = None
        for t_done, v, mean in frames:
            if last is not None and v != last:
                # the newest send whose value this frame drew
                cands = [
                    ts
                    for ts, val in sends
                    if abs(spec.from_normalized(val / 127.0) - v) < 1e-6 and ts <= t_done
                ]
                if cands:
                    frame_ms.append((t_done - cands[-1]) / 1e6)
                # a low↔high swing must move the pixels the same way (small steps may clip)
                if abs(v - last) > 0.5 and (v > last) != (mean > prev_mean):
                    mismatched += 1  # the pixels did not move the way the value did
            last, prev_mean = v, mean
        print(f"frame draw + readback:      {pct(draw_ms)}")
        print(
            f"MIDI in → composited frame: {pct(frame_ms)}  "
            f"[{args.fps:g} Hz loop, {w}x{h}, pixel check failures: {mismatched}]"
        )
    osc_ms = bench_osc(args.n)
    print(f"OSC in → registry:          {pct(osc_ms)}")
    return 0


def bench_osc(n: int) -> list[float]:
    """UDP OSC /vj/param/NAME on 127.0.0.1 → value in the registry (listener time)."""
    import socket

    from pythonosc.osc_message_builder import OscMessageBuilder

    from vj.clock import now_ns
    from vj.control.osc import OscServer
    from vj.params import default_registry

    reg = default_registry()
    seen: list[int] = []
    reg.add_listener(lambda name, v, s: seen.append(now_ns()) if name == PARAM else None)
    out: list[float] = []
    with OscServer(reg, port=0) as srv, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
        for i in range(n):
            m = OscMessageBuilder(f"/vj/param/{PARAM}")
            m.add_arg(-0.5 if i % 2 else 0.5)
            dgram = m.build().dgram
            k = len(seen)
            t = now_ns()
            tx.sendto(dgram, ("127.0.0.1", srv.port))
            deadline = time.monotonic() + 1.0
            while len(seen) == k and time.monotonic() < deadline:
                time.sleep(0.0002)
            if len(seen) > k:
                out.append((seen[k] - t) / 1e6)
            time.sleep(0.01)
    return out


def frame_loop(
    reg,
    w: int,
    h: int,
    fps: float,
    th: threading.Thread,
    done: threading.Event,
    frames: list,
    draw_ms: list,
) -> None:
    """A display-paced render loop: snapshot params, composite, read back ('swap')."""
    from vj.clock import now_ns
    from vj.render.compositor import Compositor
    from vj.render.offscreen import OffscreenTarget, create_headless_context

    ctx = create_headless_context()
    target = OffscreenTarget(ctx, w, h)
    comp = Compositor(ctx, w, h, effect="none")
    grey = np.full((h // 2, w // 2, 4), 128, np.uint8)
    comp.submit_frame(grey, 0, now_ns())
    period = 1e9 / fps
    th.start()
    t0 = now_ns()
    k = 0
    while not done.is_set():
        t_start = now_ns()
        params = reg.snapshot()
        comp.draw(target.fbo, t_start, params)
        rgb = target.read_rgb()  # waits for the GPU: the frame is complete here
        t_done = now_ns()
        frames.append((t_done, params[PARAM], float(rgb[::8, ::8].mean())))
        draw_ms.append((t_done - t_start) / 1e6)
        k += 1
        delay = (t0 + k * period - now_ns()) / 1e9
        if delay > 0:
            time.sleep(delay)
        else:
            t0, k = now_ns(), 0  # fell behind: re-anchor instead of bursting
    comp.release()
    target.release()
    ctx.release()


if __name__ == "__main__":
    sys.exit(main())
