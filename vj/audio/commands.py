"""`vj analyze`: run the live streaming analysis over a file and write onset / beat / downbeat
availability times (s, one per line) and per-hop band energies, atomically."""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

from vj.fsutil import atomic_path, atomic_write_bytes


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "analyze",
        help="onsets, beats and bands of an audio file (the live analysis, streamed)",
        description="Stream AUDIO through the live analysis block by block and write when each "
        "onset / beat / downbeat became available (end of its block, seconds from the file start).",
    )
    p.add_argument(
        "audio", metavar="AUDIO", help="audio file (WAV/FLAC/OGG, or anything FFmpeg decodes)"
    )
    p.add_argument("--hop", type=int, default=256, help="analysis hop in samples (64..1024)")
    p.add_argument(
        "--block", type=int, default=None, help="block size fed to the analysis (default: the hop)"
    )
    p.add_argument(
        "--channel",
        type=int,
        default=None,
        help="analyse this channel (0-based) instead of the downmix",
    )
    p.add_argument(
        "--onsets", metavar="OUT.txt", help="onset times, one a line (at least one output is given)"
    )
    p.add_argument("--beats", metavar="OUT.txt", help="beat times, one a line")
    p.add_argument(
        "--downbeats",
        metavar="OUT.txt",
        help="downbeat times (beats that start a bar, from the audio alone), one a line",
    )
    p.add_argument(
        "--band-onsets",
        metavar="PREFIX",
        help="also write PREFIX.low.txt / .mid.txt / .high.txt (kick/snare/hats)",
    )
    p.add_argument(
        "--bands",
        metavar="OUT.npy",
        help="[n_hops, n_bands] float32 band energies 0..1; row k ends at (k + 1) * hop / sr",
    )
    p.set_defaults(func=run_analyze)


def _write_times(path: str, times_ns: list[int]) -> None:
    text = "".join(f"{t / 1e9:.6f}\n" for t in times_ns)
    atomic_write_bytes(path, text.encode())


def analyze_array(
    x: np.ndarray,
    sample_rate: int,
    hop: int = 256,
    block: int | None = None,
    channel: int | None = None,
) -> dict[str, object]:
    """Stream x ([n] or [n, ch]) through FeatureExtractor; event times in ns from the start."""
    from vj.audio.stream import FeatureExtractor

    fx = FeatureExtractor(sample_rate, hop=hop, channel=channel)
    block = block or hop
    kinds = ("onset", "low", "mid", "high", "beat", "downbeat")
    events: dict[str, list[int]] = {k: [] for k in kinds}
    n = len(x)
    rows = []
    last_hops = 0
    for start in range(0, n, block):
        end = min(start + block, n)
        t_end = int(round(end * 1e9 / sample_rate))
        feats = fx.process(x[start:end], t_end)
        if fx.hops != last_hops:  # one row per analysed hop; a block may hold several
            rows.extend([feats.bands] * (fx.hops - last_hops))
            last_hops = fx.hops
        if fx.events:
            for kind, t in fx.drain_events():
                events[kind].append(t)
                # a downbeat is a beat after which the published bar position is in beat 1:
                # exactly what live consumers of AudioFeatures.bar_position see
                if kind == "beat" and feats.bar_position < 1.0:
                    events["downbeat"].append(t)
    bands = np.array(rows, np.float32).reshape(-1, fx.n_bands)
    return {"events": events, "bands": bands, "extractor": fx}


def run_analyze(args: argparse.Namespace) -> int:
    from vj.audio.source import read_audio

    if not 64 <= args.hop <= 1024:
        print(f"vj analyze: --hop {args.hop} outside 64..1024", file=sys.stderr)
        return 2
    if args.block is not None and args.block <= 0:
        print(f"vj analyze: --block {args.block} must be > 0", file=sys.stderr)
        return 2
    outs = (args.onsets, args.beats, args.downbeats, args.band_onsets, args.bands)
    if not any(outs):
        print(
            "vj analyze: nothing to write: give one or more of --onsets, --beats, --downbeats, "
            "--band-onsets, --bands",
            file=sys.stderr,
        )
        return 2
    for out in outs:
        if out and not os.path.isdir(os.path.dirname(os.path.abspath(out))):
            print(f"vj analyze: {out}: folder does not exist", file=sys.stderr)
            return 2
    try:
        x, sr = read_audio(args.audio)
    except (OSError, ValueError) as exc:
        print(f"vj analyze: {exc}", file=sys.stderr)
        return 2
    if args.channel is not None and not 0 <= args.channel < x.shape[1]:
        print(
            f"vj analyze: --channel {args.channel}: {args.audio} has channels 0..{x.shape[1] - 1}",
            file=sys.stderr,
        )
        return 2
    try:
        res = analyze_array(x, sr, args.hop, args.block, args.channel)
    except ValueError as exc:
        print(f"vj analyze: {args.audio}: {exc}", file=sys.stderr)
        return 2
    ev = res["events"]
    if args.onsets:
        _write_times(args.onsets, ev["onset"])
    if args.beats:
        _write_times(args.beats, ev["beat"])
    if args.downbeats:
        _write_times(args.downbeats, ev["downbeat"])
    if args.band_onsets:
        for k in ("low", "mid", "high"):
            _write_times(f"{args.band_onsets}.{k}.txt", ev[k])
    if args.bands:
        with atomic_path(args.bands) as tmp, open(tmp, "wb") as f:
            np.save(f, res["bands"])
    fx = res["extractor"]
    print(
        f"{args.audio}: {len(x) / sr:.1f} s at {sr} Hz, hop {args.hop}: "
        f"{len(ev['onset'])} onsets, {len(ev['beat'])} beats, {len(ev['downbeat'])} downbeats, "
        f"tempo {fx.tracker.bpm:.1f} BPM"
    )
    return 0
