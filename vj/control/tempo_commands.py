"""`vj tempo-monitor` (check MIDI clock / Link / tap at soundcheck) and `vj osc-send`."""

from __future__ import annotations

import argparse
import sys
import threading
import time


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "tempo-monitor",
        help="show the tempo from MIDI clock and Ableton Link, in priority order, as the HUD does",
    )
    p.add_argument(
        "--midi",
        default=None,
        metavar="REGEX",
        help="MIDI input port(s) carrying clock (regex; default: no MIDI clock)",
    )
    p.add_argument("--api", default="auto", help="MIDI API: auto, alsa, jack, coremidi or winmm")
    p.add_argument("--link", action="store_true", help="join the Ableton Link session")
    p.add_argument("--interval", type=float, default=0.5, help="seconds between lines")
    p.add_argument("--seconds", type=float, default=None, help="stop after this long")
    p.set_defaults(func=cmd_tempo_monitor)

    p = subparsers.add_parser("osc-send", help="send one OSC message (to test a running vj)")
    p.add_argument("address", help="e.g. /vj/param/zoom")
    p.add_argument(
        "args",
        nargs="*",
        help="arguments: numbers become floats (ints with --int), anything else a string",
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=9000)
    p.add_argument("--int", action="store_true", help="send whole numbers as OSC ints")
    p.set_defaults(func=cmd_osc_send)


def cmd_tempo_monitor(args: argparse.Namespace) -> int:
    from vj.clock import now_ns
    from vj.control.clock_sync import MidiClock
    from vj.control.link import LinkTempo, LinkUnavailable
    from vj.control.tempo_sources import build_tempo_arbiter, tempo_hud_text
    from vj.params import default_registry

    if args.interval <= 0:
        print("vj tempo-monitor: --interval must be > 0", file=sys.stderr)
        return 2
    if args.midi is None and not args.link:
        print(
            "vj tempo-monitor: nothing to watch; give --midi REGEX and/or --link", file=sys.stderr
        )
        return 2
    clock = MidiClock() if args.midi is not None else None
    link = LinkTempo() if args.link else None
    midi = None
    try:
        if clock is not None:
            from vj.control.mapping import MidiMapper
            from vj.control.midi import MidiError, MidiInput

            mapper = MidiMapper(default_registry(), [])
            mapper.on_realtime = clock.feed
            try:
                midi = MidiInput(
                    mapper,
                    args.midi,
                    api=args.api,
                    on_event=lambda e: print(f"vj: {e}", flush=True),
                )
                midi.start()
            except MidiError as exc:
                print(f"vj tempo-monitor: {exc}", file=sys.stderr)
                return 1
        if link is not None:
            try:
                link.start()
            except LinkUnavailable as exc:
                print(f"vj tempo-monitor: {exc}", file=sys.stderr)
                return 1
        arb = build_tempo_arbiter(None, None, clock, link)
        stop = threading.Event()
        t_end = None if args.seconds is None else time.monotonic() + args.seconds
        try:
            while not stop.wait(args.interval):
                t = now_ns()
                st, _ = arb.current(t)
                where = (
                    ""
                    if st is None
                    # the HUD line has the beat of the bar
                    else (
                        f"  bar {st.beat_count // st.beats_per_bar + 1} phase {st.beat_phase:.2f}"
                    )
                )
                print(tempo_hud_text(arb, t) + where, flush=True)
                if t_end is not None and time.monotonic() >= t_end:
                    break
        except KeyboardInterrupt:
            pass
        return 0
    finally:
        if midi is not None:
            midi.stop()
        if link is not None:
            link.stop()


def _osc_arg(text: str, as_int: bool):
    try:
        v = float(text)
    except ValueError:
        return text
    return int(v) if as_int and v.is_integer() else v


def cmd_osc_send(args: argparse.Namespace) -> int:
    from pythonosc.udp_client import SimpleUDPClient

    if not args.address.startswith("/"):
        print(f"vj osc-send: address {args.address!r} must start with '/'", file=sys.stderr)
        return 2
    if not 0 < args.port < 65536:
        print(f"vj osc-send: port {args.port} outside 1..65535", file=sys.stderr)
        return 2
    try:
        SimpleUDPClient(args.host, args.port).send_message(
            args.address, [_osc_arg(a, args.int) for a in args.args]
        )
    except OSError as exc:
        print(f"vj osc-send: cannot send to {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    return 0
