"""Train the embedded default generator on the project's own procedural imagery.

Default `--mode gan` (what ships): vj train's StyleGAN2 loop (vj.gan.train) on a seeded set of
`--images` procedural pictures (tools/procedural.py, rendered at 2x and box-filtered) at
`--train-res`, resumable from RUN_DIR/state.pt and stopped by `--hours` of the run's own clock
or `--kimg`; the EMA generator is then grafted into the 256x256 default (the blocks above
--train-res with zero toRGB) and written to RUN_DIR/default.safetensors.

    python tools/train_default.py -o RUN_DIR --hours 2 --threads 2    # again to continue

`--mode imle` / `--mode paired` are the supervised warm starts tried first (regressing G onto
procedural pictures, multi-scale L1 + image-gradient loss; state.pt of their own format, an
eval-loss-gated default.safetensors, grid.png); neither beat the random init. --init starts
them from a generator checkpoint with a fresh optimiser.
"""

from __future__ import annotations

import argparse
import copy
import io
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import procedural  # noqa: E402 - tools/procedural.py, beside this script

from vj.fsutil import atomic_write_bytes  # noqa: E402
from vj.gan.checkpoint import load_generator, save_generator  # noqa: E402
from vj.gan.commands import to_uint8, write_png  # noqa: E402
from vj.gan.stylegan2 import make_default_generator  # noqa: E402
from vj.gan.train import refresh_w_avg  # noqa: E402


def multiscale_loss(out: torch.Tensor, target: torch.Tensor, scales: int = 5) -> torch.Tensor:
    """Sum over scales of L1 on pixels + L1 on finite differences (edges): [N, 3, R, R] pair."""
    loss = out.new_zeros([])
    for s in range(scales):
        dx_o, dx_t = out[..., :, 1:] - out[..., :, :-1], target[..., :, 1:] - target[..., :, :-1]
        dy_o, dy_t = out[..., 1:, :] - out[..., :-1, :], target[..., 1:, :] - target[..., :-1, :]
        loss = loss + (out - target).abs().mean()
        loss = loss + 2.0 * ((dx_o - dx_t).abs().mean() + (dy_o - dy_t).abs().mean())
        if s + 1 < scales:
            out, target = F.avg_pool2d(out, 2), F.avg_pool2d(target, 2)
    return loss / scales


def synth_upto(G, ws: torch.Tensor, res: int) -> torch.Tensor:
    """The skip-architecture image after block `res` ([N, 3, res, res]), const noise: the
    cheap low-resolution phase trains the coarse blocks only."""
    x = img = None
    w_idx = 0
    n = ws.shape[0]
    ws_list = ws.unbind(1)
    for block in G.synthesis.blocks():
        if block.resolution > res:
            break
        cur = ws_list[w_idx : w_idx + block.num_conv + block.num_torgb]
        w_idx += block.num_conv
        noises = [layer.make_noise(n, "const", None, 1.0, None) for layer in block.conv_layers()]
        x, img = block(x, img, cur, noises)
    return img


def nearest(G, pool: torch.Tensor, target: torch.Tensor, res: int) -> torch.Tensor:
    """Index into pool [M, z_dim] of each target's nearest sample, compared at 16x16."""
    cand = synth_upto(G, G.mapping(pool), res)  # [M, 3, res, res]
    a = F.adaptive_avg_pool2d(target, 16).flatten(1)
    b = F.adaptive_avg_pool2d(cand, 16).flatten(1)
    return torch.cdist(a, b).argmin(dim=1)  # [N]


def batch_z(seed: int, step: int, n: int, z_dim: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed * 1_000_003 + step)
    return torch.randn([n, z_dim], generator=g)


def grid_png(imgs: torch.Tensor, cols: int) -> np.ndarray:
    u = to_uint8(imgs.clamp(-1, 1))  # [N, H, W, 3]
    n, h, w, c = u.shape
    rows = math.ceil(n / cols)
    pad = np.zeros([rows * cols - n, h, w, c], np.uint8)
    u = np.concatenate([u, pad]).reshape(rows, cols, h, w, c)
    return np.ascontiguousarray(u.transpose(0, 2, 1, 3, 4).reshape(rows * h, cols * w, c))


def save_state(path: Path, state: dict) -> None:
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write_bytes(path, buf.getvalue())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--run-dir", type=Path, required=True)
    ap.add_argument("--steps", type=int, default=100_000, help="stop after this many steps")
    ap.add_argument("--hours", type=float, default=None, help="stop after this wall time")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=0.002)
    ap.add_argument("--ema-beta", type=float, default=0.995)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--save-every", type=int, default=200)
    ap.add_argument("--init", type=Path, default=None, help="start from this generator")
    ap.add_argument(
        "--mode",
        choices=("gan", "imle", "paired"),
        default="gan",
        help="gan: StyleGAN2 training (vj.gan.train) at --train-res on --images procedural "
        "pictures, then grafted into the 256x256 default; imle: regress the nearest of --pool "
        "candidate samples onto each procedural picture; paired: regress G(z) onto the picture "
        "made from z",
    )
    ap.add_argument("--images", type=int, default=12000, help="gan: procedural training set")
    ap.add_argument("--kimg", type=float, default=1000.0, help="gan: stop after this many kimg")
    ap.add_argument("--snap-kimg", type=float, default=2.0, help="gan: snapshot interval")
    ap.add_argument("--pool", type=int, default=48, help="imle candidates per step")
    ap.add_argument(
        "--train-res", type=int, default=64, help="train the blocks up to this resolution"
    )
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.mode == "gan":
        return main_gan(args)
    run = args.run_dir
    run.mkdir(parents=True, exist_ok=True)
    state_path = run / "state.pt"

    G = make_default_generator(seed=args.seed)
    if args.init is not None:
        G0, _ = load_generator(args.init)
        G.load_state_dict(G0.state_dict())
    else:
        # Blocks above --train-res start silent (zero toRGB): the output is the trained
        # low-resolution picture, smoothly upsampled, until a later phase trains them.
        with torch.no_grad():
            for block in G.synthesis.blocks():
                if block.resolution > args.train_res:
                    block.torgb.weight.zero_()
                    block.torgb.bias.zero_()
    G.train().requires_grad_(True)
    G_ema = copy.deepcopy(G).eval().requires_grad_(False)
    opt = torch.optim.Adam(G.parameters(), lr=args.lr, betas=(0.9, 0.99), eps=1e-8)
    step, wall, best = 0, 0.0, float("inf")
    if state_path.exists():
        st = torch.load(state_path, map_location="cpu", weights_only=True)
        G.load_state_dict(st["G"])
        G_ema.load_state_dict(st["G_ema"])
        opt.load_state_dict(st["opt"])
        step, wall, best = int(st["step"]), float(st["wall_s"]), float(st["best"])
        print(f"resumed {state_path} at step {step} ({wall / 3600:.2f} h)", flush=True)
    proj = procedural.projection(G.z_dim)
    z_eval = batch_z(args.seed + 999, 0, 16, G.z_dim)
    z_pool = batch_z(args.seed + 998, 0, 128, G.z_dim)
    z_show = batch_z(args.seed + 997, 0, 16, G.z_dim)
    with torch.no_grad():
        t_eval = procedural.sample(z_eval, args.train_res, proj)
    info = {
        "recipe": "tools/train_default.py (supervised warm start on tools/procedural.py)",
        "seed": args.seed,
        "batch": args.batch,
        "train_res": args.train_res,
        "mode": args.mode,
        "lr": args.lr,
        "machine": f"{platform.machine()} {os.cpu_count()} cpus, torch threads {args.threads}",
    }
    t0 = time.perf_counter()
    wall0 = wall
    log = open(run / "log.txt", "a")  # noqa: SIM115 - kept open for the run
    while step < args.steps:
        if args.hours is not None and wall >= args.hours * 3600:
            break
        z = batch_z(args.seed, step, args.batch, G.z_dim)
        with torch.no_grad():
            target = procedural.sample(z, args.train_res, proj)
            if args.mode == "imle":
                pool = batch_z(args.seed + 1, step, args.pool, G.z_dim)
                z = pool[nearest(G, pool, target, args.train_res)]
        out = synth_upto(G, G.mapping(z), args.train_res)
        loss = multiscale_loss(out, target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            beta = min(args.ema_beta, (1 + step) / (10 + step))
            for pe, p in zip(G_ema.parameters(), G.parameters(), strict=True):
                pe.lerp_(p, 1 - beta)
            for be, b in zip(G_ema.buffers(), G.buffers(), strict=True):
                be.copy_(b)
        step += 1
        wall = wall0 + time.perf_counter() - t0
        if step % 20 == 0:
            line = f"step {step} loss {loss.item():.4f} wall {wall / 60:.1f} min"
            print(line, flush=True)
            log.write(line + "\n")
            log.flush()
        if step % args.save_every == 0 or step == args.steps:
            with torch.no_grad():
                if args.mode == "imle":  # nearest of a fixed pool, as in training
                    z_near = z_pool[nearest(G_ema, z_pool, t_eval, args.train_res)]
                    ev = synth_upto(G_ema, G_ema.mapping(z_near), args.train_res)
                else:
                    ev = synth_upto(G_ema, G_ema.mapping(z_eval), args.train_res)
                eval_loss = multiscale_loss(ev, t_eval).item()
                free = synth_upto(G_ema, G_ema.mapping(z_show), args.train_res)
            improved = eval_loss < best
            best = min(best, eval_loss)
            meta = dict(info, steps=step, wall_s=round(wall), eval_loss=round(eval_loss, 4))
            refresh_w_avg(G_ema)
            if improved:
                save_generator(
                    G_ema,
                    run / "default.safetensors",
                    {
                        "source": "vj embedded default: " + json.dumps(meta),
                        "licence": "MIT (vj); trained only on vj's own procedural imagery",
                    },
                )
            save_state(
                state_path,
                {
                    "G": G.state_dict(),
                    "G_ema": G_ema.state_dict(),
                    "opt": opt.state_dict(),
                    "step": step,
                    "wall_s": wall,
                    "best": best,
                },
            )
            rows = torch.cat([ev[:8], t_eval[:8], free])  # matched, targets, free samples
            write_png(run / "grid.png", grid_png(rows, 8))
            line = f"saved step {step} eval {eval_loss:.4f} best {best:.4f} improved {improved}"
            print(line, flush=True)
            log.write(line + "\n")
            log.flush()
    log.close()
    return 0


def procedural_dataset(n: int, res: int, seed: int, batch: int = 64):
    """n procedural pictures at res x res (rendered at 2x and box-filtered: no aliasing), as a
    vj.gan.data.Dataset of uint8 [n, 3, res, res]; z of picture i is fixed by (seed, i // batch)."""
    from vj.gan.data import Dataset

    proj = procedural.projection(256)
    out = torch.empty([n, 3, res, res], dtype=torch.uint8)
    with torch.no_grad():
        for i in range(0, n, batch):
            z = batch_z(seed + 5000, i // batch, min(batch, n - i), 256)
            x = F.avg_pool2d(procedural.sample(z, 2 * res, proj), 2)  # [B, 3, res, res]
            out[i : i + len(z)] = ((x + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
    return Dataset(out, 0, f"tools/procedural.py, {n} pictures, seed {seed}")


def graft_default(G_low, seed: int = 0):
    """A G trained at a lower resolution -> the 256x256 default_config() generator: the blocks
    up to G_low's resolution take its weights, the ones above get zero toRGB, so the output is
    G_low's picture upsampled by the network's own FIR until a later phase trains them."""
    G = make_default_generator(seed=seed)
    mine, theirs = G.state_dict(), G_low.state_dict()
    with torch.no_grad():
        for k, v in theirs.items():
            if k in mine and mine[k].shape == v.shape:
                mine[k].copy_(v)
        G.load_state_dict(mine)
        for block in G.synthesis.blocks():
            if block.resolution > G_low.img_resolution:
                block.torgb.weight.zero_()
                block.torgb.bias.zero_()
    refresh_w_avg(G)
    return G.eval().requires_grad_(False)


def main_gan(args) -> int:
    """--mode gan: vj train's StyleGAN2 loop on procedural pictures, resumable, then graft."""
    from vj.gan.train import TrainConfig, run

    out = args.run_dir
    state_path = out / "state.pt"
    cfg = TrainConfig(resolution=args.train_res, kimg=args.kimg, batch=args.batch,
                      seed=args.seed, augment="off", snap_kimg=args.snap_kimg)  # fmt: skip
    t0 = time.perf_counter()
    data = procedural_dataset(args.images, args.train_res, args.seed)
    print(f"{len(data)} procedural pictures at {args.train_res}^2 in "
          f"{time.perf_counter() - t0:.0f} s", flush=True)  # fmt: skip
    budget = None if args.hours is None else args.hours * 3600
    st = run(cfg, data, out, resume=state_path if state_path.exists() else None,
             max_wall_s=budget)  # fmt: skip
    G = graft_default(st.G_ema, seed=args.seed)
    meta = {
        "recipe": "tools/train_default.py --mode gan",
        "seed": args.seed,
        "batch": args.batch,
        "train_res": args.train_res,
        "images": args.images,
        "kimg": round(st.nimg / 1000, 2),
        "wall_s": round(st.wall_s),
        "machine": f"{platform.machine()} {os.cpu_count()} cpus, torch threads {args.threads}",
    }
    save_generator(G, out / "default.safetensors", {
        "source": "vj embedded default: " + json.dumps(meta),
        "licence": "MIT (vj); trained only on vj's own procedural imagery",
    })  # fmt: skip
    print(f"wrote {out / 'default.safetensors'} ({meta['kimg']} kimg)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
