"""`vj train` (StyleGAN2 on your images or footage) and `vj project` (pictures -> latents)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers) -> None:
    t = subparsers.add_parser(
        "train",
        help="train a StyleGAN2 on a folder of images or a video file",
        description="StyleGAN2 training (non-saturating logistic loss, lazy R1, EMA generator, "
        "DiffAugment for small sets, bf16 autocast on CUDA). Writes RUN_DIR/state.pt "
        "(resumable), RUN_DIR/network.safetensors (the EMA generator: use it with --checkpoint, "
        "`vj generate` and presets) and sample grids. Deterministic with --seed on the CPU.",
    )
    t.add_argument("data", type=Path, help="folder of images (any size/format) or a video file")
    t.add_argument("-o", "--output", dest="run_dir", type=Path, required=True, help="RUN_DIR")
    t.add_argument("--resolution", type=int, default=256, help="power of two (default 256)")
    t.add_argument("--kimg", type=float, default=100.0, help="train until this many kimg")
    t.add_argument("--batch", type=int, default=8)
    t.add_argument("--resume", type=Path, default=None,
                   help="RUN_DIR/state.pt (exact continuation), an NVIDIA .pkl with its D, "
                   "or a generator checkpoint (fine-tune with a fresh D)")  # fmt: skip
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--lr", type=float, default=0.0025)
    t.add_argument("--gamma", type=float, default=None, help="R1 weight (default 2e-4 R^2/B)")
    t.add_argument("--pl-weight", type=float, default=0.0, help="path-length reg (0: off)")
    t.add_argument("--augment", choices=("auto", "on", "off"), default="auto")
    t.add_argument("--snap", type=float, default=10.0, help="snapshot every N kimg")
    t.add_argument("--channel-base", type=int, default=None)
    t.add_argument("--channel-max", type=int, default=None)
    t.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    t.add_argument("--no-progress", action="store_true")
    t.set_defaults(func=cmd_train)

    p = subparsers.add_parser(
        "project",
        help="find the latent of a picture (W or W+), for --ws and preset keyframes",
        description="Invert one or more pictures into the generator's latent space by "
        "optimisation. Several pictures share one latent plus small per-image offsets.",
    )
    p.add_argument("images", nargs="+", type=Path, help="IMAGE [IMAGE ...]")
    p.add_argument("-o", "--output", type=Path, required=True, help="LATENT.npy ([N, num_ws, w])")
    p.add_argument("--checkpoint", default="default", help="checkpoint (default: embedded)")
    p.add_argument("--space", choices=("w", "w+"), default="w+")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--noise", action="store_true",
                   help="also optimise the noise maps (written to LATENT.noise.npz)")  # fmt: skip
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_project)


def _fail(cmd: str, msg: str) -> int:
    print(f"vj {cmd}: {msg}", file=sys.stderr)
    return 2


def cmd_train(args) -> int:
    import torch

    from vj.gan.data import DataError, load_dataset
    from vj.gan.train import TrainConfig, TrainError, run

    res = args.resolution
    if res < 8 or res & (res - 1):
        return _fail("train", f"--resolution must be a power of two >= 8, got {res}")
    if args.batch < 1 or args.kimg <= 0 or args.snap <= 0:
        return _fail("train", "--batch, --kimg and --snap must be positive")
    if args.run_dir.exists() and not args.run_dir.is_dir():
        return _fail("train", f"{args.run_dir}: exists and is not a folder")
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cuda" and not torch.cuda.is_available():
        return _fail("train", "--device cuda: no CUDA device available")
    cfg = TrainConfig(
        resolution=res, kimg=args.kimg, batch=args.batch, seed=args.seed, lr=args.lr,
        r1_gamma=args.gamma, pl_weight=args.pl_weight, augment=args.augment,
        snap_kimg=args.snap, channel_base=args.channel_base, channel_max=args.channel_max,
    )  # fmt: skip
    try:
        if args.resume is None and (args.run_dir / "state.pt").exists():
            raise TrainError(
                f"{args.run_dir}: already holds a run; continue it with --resume "
                f"{args.run_dir / 'state.pt'} or pick another -o (nothing was overwritten)"
            )
        if args.resume is not None:  # check it before the (slow) data load
            from vj.gan.train import load_resume

            load_resume(args.resume, cfg, torch.device("cpu"))
        data = load_dataset(args.data, res)
        print(f"vj train: {len(data)} images from {data.source} at {res}x{res}"
              + (f" ({data.skipped} skipped)" if data.skipped else ""))  # fmt: skip
        st = run(cfg, data, args.run_dir, args.resume, device, progress=not args.no_progress)
    except (DataError, TrainError) as e:
        return _fail("train", str(e))
    print(f"vj train: {st.nimg / 1000:.2f} kimg, wrote {args.run_dir / 'network.safetensors'}")
    return 0


def cmd_project(args) -> int:
    from vj.gan.checkpoint import CheckpointError
    from vj.gan.data import DataError
    from vj.gan.project import ProjectError, project_files

    if args.output.suffix.lower() != ".npy":
        return _fail("project", f"{args.output}: output must end in .npy")
    if args.steps < 1:
        return _fail("project", "--steps must be >= 1")
    try:
        res = project_files(args.images, args.output, args.checkpoint, args.space, args.steps,
                            lr=args.lr, seed=args.seed, progress=not args.no_progress,
                            optimize_noise=args.noise)  # fmt: skip
    except (DataError, ProjectError, CheckpointError) as e:
        return _fail("project", str(e))
    print(f"vj project: wrote {args.output} {list(res.ws.shape)} ({args.space}, "
          f"{res.seconds:.1f} s, loss {res.loss:.4f})")  # fmt: skip
    return 0


if __name__ == "__main__":  # pragma: no cover - manual use
    ap = argparse.ArgumentParser(prog="vj")
    register(ap.add_subparsers())
    a = ap.parse_args()
    sys.exit(a.func(a))
