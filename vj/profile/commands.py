"""`vj profile`: where the time goes from a kick in the audio to a changed picture."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub) -> None:
    from vj.cli import _size

    p = sub.add_parser(
        "profile",
        help="latency profile: a stimulus through the real audio path and the live pipeline",
        description="Plays the stimulus through a JACK loopback (a private dummy server) when "
        "jackd is installed, else the file source; runs the live pipeline headless; writes "
        "report.json and report.html to REPORT_DIR.",
    )
    p.add_argument("--stimulus", default="clicks", help="'clicks' (default) or an audio file")
    p.add_argument("--duration", type=_positive, default=10.0, help="seconds (default 10)")
    p.add_argument("--preset", default="default", help="preset name or YAML path")
    p.add_argument("--checkpoint", default=None, help="generator checkpoint (default: preset's)")
    p.add_argument("--size", type=_size, default=None, help="WxH output size")
    p.add_argument("--fps", type=_positive, default=None, help="display rate (default: preset's)")
    p.add_argument(
        "--audio", choices=("auto", "jack", "file"), default="auto", help="audio path (see above)"
    )
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    p.add_argument("--compare", default=None, metavar="A.json", help="compare with this report")
    p.add_argument(
        "--from-report",
        default=None,
        metavar="B.json",
        help="do not run: re-render this report (e.g. with --compare)",
    )
    p.add_argument("-o", "--output", required=True, metavar="REPORT_DIR")
    p.add_argument("--no-progress", action="store_true")
    from vj.gan.options import add_engine_args  # --device --dtype --backend --cuda-graphs

    add_engine_args(p)
    p.set_defaults(func=cmd_profile)


def _positive(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < v < 1e6:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return v


def cmd_profile(args) -> int:
    from vj.cli import UserError

    try:
        from vj.profile import report

        report._plt()
    except ImportError as exc:
        raise UserError(str(exc)) from exc
    out = Path(args.output)
    if out.exists() and not out.is_dir():
        raise UserError(f"-o {out}: exists and is not a directory")
    if not out.parent.is_dir():
        raise UserError(f"-o {out}: no such directory {out.parent}")
    try:
        base = report.load_report(args.compare) if args.compare else None
        if args.from_report:
            doc = report.load_report(args.from_report)
    except report.ReportError as exc:
        raise UserError(str(exc)) from exc
    if not args.from_report:
        if args.stimulus != "clicks" and not Path(args.stimulus).is_file():
            raise UserError(f"--stimulus {args.stimulus}: not 'clicks' and no such file")
        from vj.profile.run import ProfileOptions, run_profile

        opts = ProfileOptions(
            stimulus=args.stimulus,
            duration=args.duration,
            preset=args.preset,
            checkpoint=args.checkpoint,
            engine_args=args,  # the engine flags; the preset's generator: section under them
            size=args.size,
            fps=args.fps,
            audio=args.audio,
            gen_threads=args.threads,
        )
        doc = run_profile(opts, progress=not args.no_progress)
    js, page = report.write_report(doc, out, compare=base)
    print(report.summary_text(doc))
    if base is not None:
        print(f"\ncompared with {args.compare}:")
        print(report.compare_text(base, doc, "A", "B"))
    print(f"vj: wrote {js} and {page}")
    return 0
