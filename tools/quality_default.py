"""Quality table for the embedded default: Fréchet distance (random-conv features, see
tools/quality.py) to a fresh sample of the procedural training distribution, and diversity.

    python tools/quality_default.py [-n 256] [--checkpoint PATH ...]

Rows: the dataset against an independent sample of itself (lower bound), the shipped trained
default, the seeded random-init network (today's old default), uniform noise (upper bound),
and any --checkpoint given. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import procedural  # noqa: E402 - tools/procedural.py and tools/quality.py
import quality  # noqa: E402

from vj.gan.checkpoint import load_generator  # noqa: E402
from vj.gan.default import ASSET, load_default  # noqa: E402
from vj.gan.stylegan2 import make_default_generator  # noqa: E402


def samples(G, n: int, seed: int, batch: int = 16) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    out = []
    with torch.no_grad():
        for i in range(0, n, batch):
            z = torch.randn([min(batch, n - i), G.z_dim], generator=g)
            out.append(G(z, noise_mode="const", force_fp32=True).clamp(-1, 1))
    return torch.cat(out)


def procedural_samples(n: int, seed: int, res: int = 256, batch: int = 32) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(0, n, batch):
        z = torch.randn([min(batch, n - i), 256], generator=g)
        out.append(procedural.sample(z, res))
    return torch.cat(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=256, help="samples per set")
    ap.add_argument("--checkpoint", type=Path, action="append", default=[])
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    w = quality.feature_weights()
    ref = quality.features(procedural_samples(args.n, seed=1), w)
    sets = {"procedural data, fresh sample (lower bound)": procedural_samples(args.n, seed=2)}
    if ASSET.is_file():
        sets["trained embedded default"] = samples(load_default()[0], args.n, seed=3)
    sets["random-init default (seed 0)"] = samples(make_default_generator(0), args.n, seed=3)
    sets["uniform noise (upper bound)"] = (
        torch.rand([args.n, 3, 256, 256], generator=torch.Generator().manual_seed(4)) * 2 - 1
    )
    for ck in args.checkpoint:
        sets[str(ck)] = samples(load_generator(ck)[0], args.n, seed=3)
    print(f"n = {args.n} per set; reference: procedural data, seed 1; feature space RandConv-v1")
    print("| set | Fréchet distance | feature diversity | pixel diversity |")
    print("|---|---|---|---|")
    print(f"| procedural data (reference) | 0 | {quality.diversity(ref):.2f} | – |")
    for name, imgs in sets.items():
        f = quality.features(imgs, w)
        fd = quality.frechet_distance(f, ref)
        print(f"| {name} | {fd:.2f} | {quality.diversity(f):.2f} | "
              f"{quality.pixel_diversity(imgs):.3f} |")  # fmt: skip
    print(f"({time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
