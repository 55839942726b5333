"""`vj midi-monitor` (see what a controller sends) and `vj midi-learn` (bind a control, save it)."""

from __future__ import annotations

import argparse
import sys
import threading
import time

from vj.clock import now_ns


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "midi-monitor", help="print what MIDI controllers send (and list MIDI ports)"
    )
    p.add_argument("--port", default=".*", help="input port regex (default: every port)")
    p.add_argument("--api", default="auto", help="auto, alsa, jack, coremidi or winmm")
    p.add_argument("--list", action="store_true", help="only list the MIDI ports")
    p.add_argument("--seconds", type=float, default=None, help="stop after this long")
    p.set_defaults(func=cmd_monitor)

    p = subparsers.add_parser(
        "midi-learn",
        help="bind the next control moved to a parameter and save it to the mapping file",
    )
    p.add_argument("param", nargs="?", help="parameter name (see --list)")
    p.add_argument("--list", action="store_true", help="list the parameters and exit")
    p.add_argument("--preset", default="default", help="preset whose first MIDI device to use")
    p.add_argument("--port", default=None, help="input port regex (default: the preset's)")
    p.add_argument(
        "--file", default=None,
        help="mapping file to add to (default: the preset's mappings_file, else "
        "~/.config/vj/mappings.yaml)",
    )  # fmt: skip
    p.add_argument(
        "--kind", default=None, choices=("cc", "cc14", "cc_rel2c", "cc_rel64"),
        help="force how a CC is read (default: cc, or cc14 when an LSB follows)",
    )  # fmt: skip
    p.add_argument("--api", default=None, help="auto, alsa, jack, coremidi or winmm")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for a control")
    p.set_defaults(func=cmd_learn)


def cmd_monitor(args: argparse.Namespace) -> int:
    from vj.control.mapping import describe_message
    from vj.control.midi import MidiError, MidiInput, list_midi_outputs, list_midi_ports

    try:
        if args.list:
            ins, outs = list_midi_ports(args.api), list_midi_outputs(args.api)
            print("MIDI inputs (controllers):")
            print("\n".join(f"  {n}" for n in ins) or "  (none)")
            print("MIDI outputs (feedback):")
            print("\n".join(f"  {n}" for n in outs) or "  (none)")
            return 0
        t0 = now_ns()
        printer = _Printer(lambda msg, t: print(f"{(t - t0) / 1e9:9.3f}  {describe_message(msg)}",
                                                flush=True))  # fmt: skip
        midi = MidiInput(printer, args.port, api=args.api, on_event=lambda e: print(f"vj: {e}"))
        midi.start()
    except MidiError as exc:
        print(f"vj: {exc}", file=sys.stderr)
        return 2
    print("vj: listening; Ctrl-C stops", flush=True)
    try:
        _sleep(args.seconds)
    except KeyboardInterrupt:
        pass
    finally:
        midi.stop()
    return 0


def cmd_learn(args: argparse.Namespace) -> int:
    from vj.control.learn import LearnSession, default_mappings_path
    from vj.control.mapping import MidiMapper
    from vj.control.midi import MidiError, MidiInput
    from vj.params import UnknownParam, default_registry
    from vj.preset import PresetError, load_preset, resolve_preset

    registry = default_registry()
    if args.list:
        for name in registry.names():
            s = registry.spec(name)
            rng = "" if s.kind == "trigger" else f" [{s.min:g}, {s.max:g}]"
            print(f"  {name:<14} {s.kind}{rng}  {s.doc}")
        return 0
    if not args.param:
        print("vj: midi-learn: name a parameter (vj midi-learn --list shows them)", file=sys.stderr)
        return 2
    try:
        registry.spec(args.param)
        preset = load_preset(resolve_preset(args.preset), registry)
    except (UnknownParam, PresetError) as exc:
        print(f"vj: {exc}", file=sys.stderr)
        return 2
    dev = preset.midi.devices[0] if preset.midi.devices else None
    port = args.port or (dev.port if dev else ".*")
    path = args.file or (dev.mappings_file if dev and dev.mappings_file else None)
    path = path or default_mappings_path()
    mapper = MidiMapper(registry, [])
    session = LearnSession(mapper, path)
    try:
        midi = MidiInput(mapper, port, api=args.api or preset.midi.api)
        midi.start()
    except MidiError as exc:
        print(f"vj: {exc}", file=sys.stderr)
        return 2
    try:
        session.start(args.param, args.kind)
        print(f"vj: move a control on {', '.join(midi.ports)} for {args.param!r}", flush=True)
        if not session.wait(args.timeout):
            print(f"vj: no control moved in {args.timeout:g} s; nothing saved", file=sys.stderr)
            return 1
        first = session.last
        if first is not None and first.kind == "cc" and first.number < 32:
            time.sleep(0.3)  # a 14-bit fader's LSB may still refine the binding to cc14
            session.settle()
        if session.error is not None:
            print(f"vj: not saved: {session.error}", file=sys.stderr)
            return 2
        print(f"vj: {session.last.describe()}; saved to {session.path}")
        return 0
    except KeyboardInterrupt:
        print("vj: interrupted; nothing saved", file=sys.stderr)
        return 130
    finally:
        midi.stop()


class _Printer:
    """Stands in for a MidiMapper in MidiInput: every message goes to `fn`."""

    def __init__(self, fn) -> None:
        self.fn = fn
        self.send = None

    def handle(self, message: list[int], t_ns: int) -> None:
        try:
            self.fn(message, t_ns)
        except Exception:
            pass

    def feedback_messages(self) -> list:
        return []


def _sleep(seconds: float | None) -> None:
    done = threading.Event()
    done.wait(seconds) if seconds is not None else done.wait()
