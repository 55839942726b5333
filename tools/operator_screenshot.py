"""Open the output window and the operator window (one share group) and screenshot both.

Needs a display (run under Xvfb on a headless machine). Draws a few frames through the real
compositor, effect chains and stage; writes the operator window as PNG, the master output
(at output resolution, no HUD) as PNG, and prints JSON with what was checked.

    xvfb-run -s "-screen 0 1920x1080x24" python tools/operator_screenshot.py --out docs/
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def generator_frames(n: int, use_model: bool, size: int = 256) -> list[np.ndarray]:
    """[size, size, 4] uint8 frames: the embedded default generator's, else a smooth pattern."""
    if use_model:
        import torch

        from vj.audio.features import SILENCE
        from vj.gan.checkpoint import load_checkpoint_or_default
        from vj.gan.engine import Engine
        from vj.params import default_registry
        from vj.react.modulation import Modulator

        torch.set_num_threads(1)
        G, _ = load_checkpoint_or_default("default")
        engine = Engine(G, device="cpu", dtype="fp32", n_buffers=2)
        mod = Modulator(G, seed=7)
        params = default_registry().snapshot()
        out = []
        for i in range(n):
            fr = engine.render(mod.step(SILENCE, params, i * 0.5)).rgba
            out.append(np.asarray(fr if isinstance(fr, np.ndarray) else fr.cpu().numpy()).copy())
        return out
    yy, xx = np.mgrid[0:size, 0:size] / size
    out = []
    for i in range(n):
        f = np.empty((size, size, 4), np.uint8)
        f[..., 0] = 255 * (0.5 + 0.5 * np.sin(6 * xx + i))
        f[..., 1] = 255 * (0.5 + 0.5 * np.sin(9 * yy * xx + 0.5 * i))
        f[..., 2] = 255 * (0.5 + 0.5 * np.cos(7 * yy - i))
        f[..., 3] = 255
        out.append(f)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("."))
    ap.add_argument("--output-size", default="1280x720")
    ap.add_argument("--frames", type=int, default=4)
    ap.add_argument("--model", action="store_true", help="frames from the embedded generator")
    args = ap.parse_args(argv)
    from vj.render.window import display_available

    why = display_available()
    if why:
        print(json.dumps({"ok": False, "why": why}))
        return 2
    from vj.audio.features import AudioFeatures
    from vj.params import default_registry
    from vj.render.compositor import Compositor
    from vj.render.hud import HudStatus, frame_time_graph, status_lines
    from vj.render.operator import OperatorWindow, operator_lines
    from vj.render.stage import Stage, StageOptions
    from vj.render.window import Window

    ow, oh = (int(x) for x in args.output_size.split("x"))
    args.out.mkdir(parents=True, exist_ok=True)
    main_win = Window(640, 360, title="vj output")
    op = OperatorWindow(main_win, 1280, 800)
    comp = Compositor(main_win.ctx, ow, oh, effect="none", filter="lanczos", fit="tile")
    chains = {"A": ("feedback",), "master": ("kaleido", "rgbsplit", "vignette")}
    comp.set_chains(chains)
    stage = Stage(main_win.ctx, comp, StageOptions(output=(ow, oh), screenshot_dir=args.out))
    reg = default_registry()
    reg.set("kaleido.segments", 8)
    params = {**reg.snapshot(), "fx_amount": 1.0, "hud": 1.0}
    times = list(np.random.default_rng(0).normal(16.7, 2.0, 120))
    st = HudStatus(
        display_fps=60.0, generator_fps=24.0, latency_ms=18.0, bpm=128.0, beat_phase=0.25,
        bar_phase=0.3, tempo_source="audio", midi_events=42, midi_age_s=0.1, preset="club",
        cue="2 drop",
    )  # fmt: skip
    frames = generator_frames(args.frames, args.model)
    shot = None
    for i, f in enumerate(frames):
        t = i * 41_666_666
        feats = AudioFeatures(beat_phase=(i * 0.25) % 1.0, bpm=128.0, rms=0.5, beat_count=i)
        comp.submit_frame(f, i, t)
        comp.draw(stage.fbo, t, params, feats, status_lines(st))
        main_win.fbo.use()
        stage.finish_frame(main_win.fbo)
        main_win.swap()
        lines = operator_lines(
            params, chains, ["intro", "build", "drop", "break"], 2, status_lines(st)
        )
        shot = op.draw(
            {"A": comp.scene_texture, "B": None, "master": stage.tex},
            lines,
            capture=i == len(frames) - 1,
        )
    del times, frame_time_graph
    from vj.render.png import write_png

    op_path = write_png(args.out / "operator-window.png", shot)
    master_path = stage.screenshot(args.out / "master-output.png")
    # the master preview in the operator window is the master texture itself (shared, fit)
    lay = op.view.layout(op.win.size)
    x, y, tw, th = lay["master"]
    H = shot.shape[0]
    tile = shot[H - (y + th) : H - y, x : x + tw].astype(float)
    master = np.asarray(
        np.frombuffer(stage.fbo.read(components=3), np.uint8).reshape(oh, ow, 3), float
    )
    res = {
        "ok": True,
        "operator": str(op_path),
        "master": str(master_path),
        "operator_size": list(op.win.size),
        "master_size": [ow, oh],
        "share_group": main_win.context_api,
        "tile_mean": float(tile.mean()),
        "master_mean": float(master.mean()),
        "a_tile_mean": float(
            shot[H - (lay["A"][1] + lay["A"][3]) : H - lay["A"][1], lay["A"][0] : lay["A"][0] + 20]
            .astype(float)
            .mean()
        ),
    }
    stage.release()
    comp.release()
    op.close()
    main_win.close()
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
