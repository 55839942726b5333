"""Training and projection speed: `vj train` img/s and `vj project` seconds per image.

    python tools/bench_train.py [--res 64 256] [--steps 6] [--project-steps 20]

Training: median time of --steps adversarial steps (G step + D step, lazy R1 included at its
1/16 rate by averaging) of the embedded default's architecture at each resolution, batch 8,
on the CPU (and on CUDA when present). Projection: median seconds per optimisation step of the
embedded default (W+), times the default step count of `vj project`.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from vj.gan.data import Dataset  # noqa: E402
from vj.gan.default import load_default  # noqa: E402
from vj.gan.project import project, psnr  # noqa: E402
from vj.gan.train import TrainConfig, new_state, train_step  # noqa: E402

PROJECT_DEFAULT_STEPS = 200


def bench_train(res: int, steps: int, batch: int, device: torch.device) -> tuple[float, float]:
    cfg = TrainConfig(resolution=res, batch=batch, r1_interval=16)
    st = new_state(cfg, device)
    data = Dataset(torch.randint(0, 255, (64, 3, res, res), dtype=torch.uint8), 0, "random")
    train_step(st, cfg, data, True, device)  # warm-up (includes R1 at step 0)
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        train_step(st, cfg, data, True, device)
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    med = statistics.median(times)
    return batch / med, med


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--res", type=int, nargs="+", default=[64, 256])
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--project-steps", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    print(f"torch threads {args.threads}; batch {args.batch}; median of {args.steps} steps")
    for dev in devices:
        for res in args.res:
            ips, med = bench_train(res, args.steps, args.batch, dev)
            print(f"train {dev.type} {res}x{res}: {ips:.2f} img/s ({med:.2f} s/step)")
    G, _ = load_default()
    z = torch.randn([1, G.z_dim], generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        target = G(z, noise_mode="const", force_fp32=True)
    for space in ("w", "w+"):
        r = project(G, target, space, args.project_steps)
        per = r.seconds / args.project_steps
        with torch.no_grad():
            found = G.synthesis(r.ws, noise_mode="const", force_fp32=True)
        db = psnr(found, target).item()
        print(f"project cpu {space}: {args.project_steps} steps {db:.1f} dB PSNR, {per:.2f} s/step"
              f" -> {per * PROJECT_DEFAULT_STEPS:.0f} s per image at the default "
              f"{PROJECT_DEFAULT_STEPS} steps")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
