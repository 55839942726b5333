"""Does the picture move on the beat? Renders real drum stems with a preset and measures frame
change right after each annotated beat against the change mid-beat (and, for "identity held",
how much of that change survives an 8×8 blur).

    python tools/bench_beats.py                       # expressions + default, 3 stems, 15 s each
    python tools/bench_beats.py --files Punk,Rock --seconds 10 --presets expressions

Figures per preset: `beat ratio` = mean |frame change| in the 100 ms after each annotated beat
÷ the same in the 100 ms around mid-beat (targets: expressions ≥ 2.5, default ≥ 1.5);
`blur ratio` = change of the 8×8 area-averaged frames ÷ change of the full frames, in the
100 ms after beats (target for expressions ≤ 0.5: the change is in the details, the face holds).

`--path offline` (default) renders through the product's offline path — `vj.offline.render`:
the Show (analysis, tempo, routes, decks), the engine, the compositor, the H.264 writer — at
256×256 and decodes the MP4 back. `--path direct` drives the routing objects on the old
`vj.react.modulation.Modulator` walk and measures the generator's frames only (no compositor,
no codec): the figure before the Show ran routes. The audio stays in the eval folder.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

_ROOT = Path(__file__).resolve().parents[1]
# the eval audio lives beside the checkout (../shared/eval/audio), never inside it
EVAL_CANDIDATES = [_ROOT.parent / "shared/eval/audio", _ROOT.parent.parent / "shared/eval/audio"]
POST_S = 0.100  # the window after each beat
SKIP_S = 3.0  # the beat tracker's lock-in time: beats before this are not scored
BLUR = 8  # the blurred version is BLUR × BLUR area averages


def render_frames(audio, sr, preset, G, fps, seconds, registry):
    """RGB frames [N, R, R, 3] uint8 for the first `seconds` of `audio` at `fps`."""
    import torch

    from vj.audio.stream import FeatureExtractor
    from vj.gan.engine import Engine
    from vj.preset import apply_preset
    from vj.react.modulation import Modulator
    from vj.show.frame import DeckControls, TempoView
    from vj.show.modulate import Routing

    apply_preset(preset, registry)
    params = registry.snapshot()
    specs = {n: registry.spec(n) for n in registry.names()}
    ext = FeatureExtractor(sr, hop=preset.audio.hop, n_bands=preset.audio.n_bands)
    modulator = Modulator(G, seed=preset.seed)
    routing = Routing(preset, [G], params=params)
    engine = Engine(G, device="cpu", dtype="fp32", n_buffers=2)
    n = int(min(seconds, audio.shape[0] / sr) * fps)
    res = engine.resolution
    frames = np.empty((n, res, res, 3), np.uint8)
    fed, block = 0, 256
    f = ext.latest
    dt = 1.0 / fps
    with torch.no_grad():
        for i in range(n):
            t_ns = i * 1_000_000_000 // fps
            upto = min(audio.shape[0], i * sr // fps)
            while fed + block <= upto:  # whole blocks heard by this frame's time, live-sized
                f = ext.process(audio[fed : fed + block], (fed + block) * 1_000_000_000 // sr)
                fed += block
            tempo = TempoView(
                f.bpm, f.beat_count + f.beat_phase if f.bpm > 0 else 0.0,
                (f.bar_position / 4.0) % 1.0, 4, f.tempo_source,
            )  # fmt: skip
            routing.process(f, tempo, params, dt)
            p = dict(params)
            routing.apply_params(p, specs)
            p["drift"] = specs["drift"].clamp(p["drift"] + routing.walk_speed("A"))
            p["truncation"] = specs["truncation"].clamp(p["truncation"] + routing.truncation("A"))
            params["next_keyframe"] += len(routing.jumps("A"))  # jumps land as presses here
            p["next_keyframe"] = params["next_keyframe"]
            c = modulator.step(f, p, t_ns / 1e9)
            dc = routing.apply("A", DeckControls("A", c.ws, c.noise_strength, c.keyframe_index))
            frames[i] = engine.render(dc).rgba[..., :3]
    return frames


def render_frames_offline(
    audio, sr, preset, fps, seconds, registry, checkpoint, threads, tmp, crf=0
):
    """The same frames through the product's offline path (`vj render`: the Show, the
    engine, the compositor, the H.264 writer at `crf`), decoded back from the MP4. crf 0
    (lossless luma) measures the pictures; at `vj render`'s crf 20 the encoder also drops
    part of the fine detail that moves on the beat (both are printed in docs/benchmarks.md)."""
    import av

    from vj.offline import RenderJob, render
    from vj.preset import apply_preset

    apply_preset(preset, registry)
    n = int(min(seconds, audio.shape[0] / sr) * sr)
    out = Path(tmp) / "bench_beats.mp4"
    job = RenderJob(
        audio=audio[:n], sample_rate=sr, out=out, width=256, height=256, fps=fps,
        checkpoint=checkpoint, effect=preset.effect, hop=preset.audio.hop,
        n_bands=preset.audio.n_bands, threads=threads, progress=False, preset=preset, crf=crf,
        seed=None,  # the preset's decks' seeds, as `vj render --preset` plays them
    )  # fmt: skip
    render(job, registry)
    with av.open(str(out)) as f:
        frames = [fr.to_ndarray(format="rgb24") for fr in f.decode(video=0)]
    return np.stack(frames)


def beat_figures(frames: np.ndarray, fps: int, beats: np.ndarray) -> dict:
    """Beat ratio and blur ratio (see the module docstring) from frames and beat times (s)."""
    x = frames.astype(np.float32)
    d = np.abs(np.diff(x, axis=0)).mean(axis=(1, 2, 3))  # change into frame i+1
    n, h, w, c = x.shape
    b = x.reshape(n, BLUR, h // BLUR, BLUR, w // BLUR, c).mean(axis=(2, 4))
    db = np.abs(np.diff(b, axis=0)).mean(axis=(1, 2, 3))
    t = np.arange(1, n) / fps  # time of the frame each change arrives in
    post, mid = np.zeros(len(d), bool), np.zeros(len(d), bool)
    for tb, tn in zip(beats[:-1], beats[1:], strict=True):
        if tb < SKIP_S or tn > t[-1]:
            continue
        post |= (t > tb) & (t <= tb + POST_S)
        m = tb + (tn - tb) / 2
        mid |= (t > m - POST_S / 2) & (t <= m + POST_S / 2)
    mid &= ~post
    if not post.any() or not mid.any():
        return {"beat_ratio": math.nan, "blur_ratio": math.nan, "beats": 0}
    return {
        "beat_ratio": float(d[post].mean() / max(d[mid].mean(), 1e-9)),
        "blur_ratio": float(db[post].mean() / max(d[post].mean(), 1e-9)),
        "post": float(d[post].mean()),
        "mid": float(d[mid].mean()),
        "sums": (
            float(d[post].sum()),
            int(post.sum()),
            float(d[mid].sum()),
            int(mid.sum()),
            float(db[post].sum()),
        ),  # fmt: skip
        "beats": int(((beats >= SKIP_S) & (beats < t[-1])).sum()),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", default="80sRock,Britpop,Punk", help="drum stems (names)")
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--fps", type=int, default=30)
    ap.add_argument("--presets", default="expressions,default")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--checkpoint", default="default", help="'default' or a checkpoint path")
    ap.add_argument(
        "--path", choices=("offline", "direct"), default="offline",
        help="offline: through `vj render` (Show, engine, compositor, MP4); direct: routes on "
        "the old Modulator walk, generator frames only",
    )  # fmt: skip
    ap.add_argument("--eval", type=Path, default=None, help="the eval audio folder")
    ap.add_argument(
        "--crf", type=int, default=0, help="H.264 quality of the offline render (0 = lossless)"
    )
    args = ap.parse_args(argv)

    import torch

    from vj.audio.source import read_audio
    from vj.gan.checkpoint import load_checkpoint_or_default
    from vj.params import default_registry
    from vj.preset import builtin_preset_path, load_preset

    torch.set_num_threads(args.threads)
    found = [p for p in EVAL_CANDIDATES if p.is_dir()]
    env = os.environ.get("VJ_EVAL_AUDIO")
    root = args.eval or (Path(env) if env else found[0] if found else EVAL_CANDIDATES[0])
    drums = root / "drums"
    if not drums.is_dir():
        print(f"bench_beats: no eval audio at {drums} (set VJ_EVAL_AUDIO)", file=sys.stderr)
        return 2
    G, meta = load_checkpoint_or_default(args.checkpoint)
    print(
        f"network: {meta.get('source', meta.get('format'))}  threads {args.threads}  "
        f"path {args.path}"
    )
    registry = default_registry()
    summary = {}
    for pname in args.presets.split(","):
        preset = load_preset(builtin_preset_path(pname), registry)
        rows = []
        for name in args.files.split(","):
            audio, sr = read_audio(drums / f"{name}.wav")
            beats = np.loadtxt(drums / f"{name}.beats", ndmin=2)[:, 0]
            t0 = time.perf_counter()
            if args.path == "offline":
                with tempfile.TemporaryDirectory() as tmp:
                    frames = render_frames_offline(
                        audio, sr, preset, args.fps, args.seconds, registry, args.checkpoint,
                        args.threads, tmp, args.crf,
                    )  # fmt: skip
            else:
                frames = render_frames(audio, sr, preset, G, args.fps, args.seconds, registry)
            wall = time.perf_counter() - t0
            fig = beat_figures(frames, args.fps, beats)
            rows.append(fig)
            print(
                f"{pname:12s} {name:10s} beat ratio {fig['beat_ratio']:5.2f}  blur ratio "
                f"{fig['blur_ratio']:4.2f}  ({fig['beats']} beats, {len(frames)} frames, "
                f"{wall:5.1f} s)",
                flush=True,
            )
        # pooled over every scored beat of every file: mean change after beats / mid-beat
        sp, n_p, sm, n_m, sb = (sum(r["sums"][k] for r in rows if "sums" in r) for k in range(5))
        br = (sp / max(n_p, 1)) / max(sm / max(n_m, 1), 1e-9)
        bl = sb / max(sp, 1e-9)
        med = float(np.median([r["beat_ratio"] for r in rows]))
        summary[pname] = (br, bl)
        print(
            f"{pname:12s} POOLED     beat ratio {br:5.2f}  blur ratio {bl:4.2f}  "
            f"(median of files {med:.2f})"
        )
    targets = {"expressions": (2.5, 0.5), "default": (1.5, None)}
    for pname, (br, bl) in summary.items():
        tb, tl = targets.get(pname, (None, None))
        verdict = []
        if tb is not None:
            verdict.append(f"beat ratio {br:.2f} {'≥' if br >= tb else '<'} {tb}")
        if tl is not None:
            verdict.append(f"blur ratio {bl:.2f} {'≤' if bl <= tl else '>'} {tl}")
        if verdict:
            print(f"{pname}: " + ", ".join(verdict))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
