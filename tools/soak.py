"""Soak test: a bounded headless live run with MIDI and OSC traffic and shader reloads.

Runs `vj live --demo --headless` in a child process for --minutes (default 30; `--hours 8`
for an overnight run) while this script sends MIDI CCs (over a private JACK dummy server, when
jackd is installed) and OSC messages on loopback, and touches the effect shader every minute
so it hot-reloads. Every --every seconds it prints the child's memory, display and generator
fps, audio overruns and error lines; at the end a summary with the memory growth per hour.

    python tools/soak.py                 # 30 minutes
    python tools/soak.py --hours 8       # overnight
    python tools/soak.py --minutes 1     # a quick check that the soak itself works
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Runs in the child: the real CLI, plus a thread printing the app's counters as JSON lines.
BOOT = """
import json, sys, threading, time
import vj.live as app_mod
from vj.cli import main

every = float(sys.argv[1])
run = app_mod.LiveApp.run

def report(app):
    while True:
        time.sleep(every)
        a, g = app.audio, app.gen
        stats = {"display_fps": app.display_fps.fps(), "gen_fps": g.fps(),
                 "gen_frames": g.count, "gen_error": repr(g.error) if g.error else None}
        for key, attr in (("overruns", "overruns"), ("analysis_overruns", "analysis_overruns"),
                          ("late_callbacks", "late_callbacks"), ("audio_errors", "errors")):
            stats[key] = getattr(a, attr, 0)
        print("SOAK " + json.dumps(stats), flush=True)

def patched(self):
    threading.Thread(target=report, args=(self,), daemon=True).start()
    return run(self)

app_mod.LiveApp.run = patched
sys.exit(main(sys.argv[2:]))
"""


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=30.0)
    p.add_argument("--hours", type=float, default=None, help="overrides --minutes")
    p.add_argument("--every", type=float, default=10.0, help="seconds between reports")
    p.add_argument("--size", default="320x180", help="output size of the headless run")
    p.add_argument("--effect", default="default", help="effect shader to reload every minute")
    p.add_argument("--no-midi", action="store_true", help="no JACK server / MIDI traffic")
    args = p.parse_args()
    seconds = args.hours * 3600 if args.hours is not None else args.minutes * 60
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = dict(os.environ, PYTHONPATH=path)
    env.pop("DISPLAY", None)
    jackd, midi_out, midi_args = None, None, ["--no-midi"]
    if not args.no_midi:
        jackd, midi_out = _start_midi(env)
        if midi_out is not None:
            midi_args = ["--midi", "vj-soak-ctl"]
    port = _free_port()
    argv = ["live", "--demo", "--headless", "--duration", f"{seconds:g}", "--size", args.size,
            "--osc-port", str(port), "--effect", args.effect, *midi_args]  # fmt: skip
    child = subprocess.Popen(
        [sys.executable, "-c", BOOT, str(args.every), *argv], cwd=ROOT, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1,
    )  # fmt: skip
    errors: list[str] = []
    counts = {"osc": 0, "midi": 0, "reloads": 0, "reloaded": 0}
    threading.Thread(target=_collect_errors, args=(child, errors, counts), daemon=True).start()
    stop = threading.Event()
    traffic = threading.Thread(
        target=_traffic, args=(stop, port, midi_out, counts, args.effect), daemon=True
    )
    traffic.start()
    print(f"soak: {seconds / 60:g} min, pid {child.pid}, OSC {port}, "
          f"MIDI {'on' if midi_out is not None else 'off'}", flush=True)  # fmt: skip
    samples = []
    t0 = time.monotonic()
    deadline = t0 + seconds + 180  # start-up and shutdown; past this the child is killed
    interrupted = False
    # SIGTERM ends the soak like Ctrl-C: the child is stopped and the summary still printed.
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        for line in child.stdout:
            if not line.startswith("SOAK "):
                continue
            s = json.loads(line[5:])
            s["t"] = time.monotonic() - t0
            s["rss_mb"] = _rss_mb(child.pid)
            samples.append(s)
            print(f"{s['t']:7.0f} s  rss {s['rss_mb']:7.1f} MB  display {s['display_fps']:5.1f} fps"
                  f"  gen {s['gen_fps']:5.1f} fps  overruns {s['overruns']}/"
                  f"{s['analysis_overruns']}  errors {len(errors)}  osc {counts['osc']}"
                  f"  midi {counts['midi']}  reloads {counts['reloads']}", flush=True)  # fmt: skip
            if time.monotonic() > deadline:
                break
    except KeyboardInterrupt:
        interrupted = True
        for sig in (signal.SIGINT, signal.SIGTERM):  # a second Ctrl-C must not skip the cleanup
            signal.signal(sig, signal.SIG_IGN)
        print("soak: interrupted; stopping the child", flush=True)
    finally:
        stop.set()
        if interrupted and child.poll() is None:
            child.send_signal(signal.SIGINT)  # the app's own clean stop (recording finalised)
        wait_s = 10.0 if interrupted else max(1.0, deadline - time.monotonic())
        try:
            child.wait(timeout=wait_s)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        if midi_out is not None:
            midi_out.delete()
        if jackd is not None:
            jackd.terminate()
            jackd.wait(5)
    _summary(samples, errors, child.returncode, counts)
    if interrupted:
        print(f"  (interrupted after {time.monotonic() - t0:.0f} s of {seconds:g} s)")
        return 130
    return 0 if child.returncode == 0 and not errors else 1


def _raise_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def _summary(samples: list[dict], errors: list[str], rc: int | None, counts: dict) -> None:
    print("soak summary")
    print(f"  exit code {rc}; error lines {len(errors)}")
    for e in errors[:10]:
        print(f"    {e}")
    if len(samples) >= 2:
        # skip the first third of a minute: start-up allocations are not growth
        warm = [s for s in samples if s["t"] >= 20.0] or samples
        a, b = warm[0], warm[-1]
        hours = max(1e-9, (b["t"] - a["t"]) / 3600)
        print(f"  memory {a['rss_mb']:.1f} → {b['rss_mb']:.1f} MB over {b['t'] - a['t']:.0f} s "
              f"({(b['rss_mb'] - a['rss_mb']) / hours:+.1f} MB/h)")  # fmt: skip
        d = [s["display_fps"] for s in warm]
        g = [s["gen_fps"] for s in warm]
        print(f"  display fps median {statistics.median(d):.1f} (min {min(d):.1f}); "
              f"generator fps median {statistics.median(g):.1f} (min {min(g):.1f})")  # fmt: skip
        print(f"  audio overruns {b['overruns']} device, {b['analysis_overruns']} analysis, "
              f"{b['late_callbacks']} late; analysis errors {b['audio_errors']}; "
              f"generator error {b['gen_error']}")  # fmt: skip
    touches, seen = counts["reloads"], counts["reloaded"]
    print(f"  traffic: {counts['osc']} OSC, {counts['midi']} MIDI messages; "
          f"{touches} shader touches ({seen} reloads reported)")  # fmt: skip


def _collect_errors(child: subprocess.Popen, errors: list[str], counts: dict) -> None:
    for line in child.stderr:
        low = line.lower()
        if ": reloaded" in low:
            counts["reloaded"] += 1  # the app's own word that the shader was recompiled
        elif "traceback" in low or "error" in low or "failed" in low:
            errors.append(line.rstrip())


def _traffic(stop: threading.Event, port: int, midi_out, counts: dict, effect: str) -> None:
    from pythonosc.udp_client import SimpleUDPClient

    osc = SimpleUDPClient("127.0.0.1", port)
    shader = ROOT / "shaders" / "effects" / f"{effect}.frag"
    rng = random.Random(0)
    next_reload = time.monotonic() + 60.0
    k = 0
    while not stop.wait(0.02):  # 50 Hz: a performer riding two knobs
        osc.send_message("/vj/param/zoom/norm", rng.random())
        counts["osc"] += 1
        if k % 1500 == 0:
            osc.send_message("/vj/preset", "default")
            counts["osc"] += 1
        if midi_out is not None:
            midi_out.send_message([0xB0, 16 + k % 8, rng.randrange(128)])
            counts["midi"] += 1
        if time.monotonic() >= next_reload and shader.exists():
            os.utime(shader)  # same text, new mtime: the app recompiles it
            counts["reloads"] += 1
            next_reload += 60.0
        k += 1


def _start_midi(env: dict):
    """A private JACK dummy server and a virtual MIDI output on it, or (None, None)."""
    import shutil

    if shutil.which("jackd") is None:
        print("soak: jackd not installed; no MIDI traffic", flush=True)
        return None, None
    name = f"vjsoak-{uuid.uuid4().hex[:8]}"
    jackd = subprocess.Popen(
        ["jackd", "-n", name, "-d", "dummy", "-r", "48000", "-p", "256"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env=dict(env, JACK_NO_AUDIO_RESERVATION="1"),
    )  # fmt: skip
    env["JACK_DEFAULT_SERVER"] = name
    env["JACK_NO_START_SERVER"] = "1"
    os.environ.update(JACK_DEFAULT_SERVER=name, JACK_NO_START_SERVER="1")
    import rtmidi

    for _ in range(50):
        time.sleep(0.2)
        try:
            out = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name="vj-soak")
            out.open_virtual_port("vj-soak-ctl")
            return jackd, out
        except Exception:
            continue
    jackd.terminate()
    print("soak: JACK did not come up; no MIDI traffic", flush=True)
    return None, None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


if __name__ == "__main__":
    sys.exit(main())
