"""Figures of the embedded default for docs/training.md: sample grid, interpolation strip,
style-mixing grid (coarse / middle / fine layer groups).

    python tools/docs_figures.py [--out docs] [--checkpoint default] [--thumb 96]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from vj.gan.checkpoint import load_checkpoint_or_default  # noqa: E402
from vj.gan.commands import write_png  # noqa: E402
from vj.gan.train import image_grid  # noqa: E402

# Layer groups of the routing matrix for a 14-ws (256 px) network: 4-8 px, 16-32 px, 64 px up.
GROUPS = {"coarse": (0, 4), "middle": (4, 8), "fine": (8, 14)}


def synth(G, ws: torch.Tensor, thumb: int) -> torch.Tensor:
    with torch.no_grad():
        img = G.synthesis(ws, noise_mode="const", force_fp32=True).clamp(-1, 1)
    return F.interpolate(img, size=(thumb, thumb), mode="bilinear", antialias=True)


def ws_for(G, seeds: list[int]) -> torch.Tensor:
    z = torch.cat([torch.randn([1, G.z_dim], generator=torch.Generator().manual_seed(s))
                   for s in seeds])  # fmt: skip
    with torch.no_grad():
        return G.mapping(z)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("docs"))
    ap.add_argument("--checkpoint", default="default")
    ap.add_argument("--thumb", type=int, default=96)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    G, _ = load_checkpoint_or_default(args.checkpoint)
    t = args.thumb
    # 4 x 4 samples, seeds 0..15.
    write_png(
        args.out / "default_samples.png", image_grid(synth(G, ws_for(G, list(range(16))), t), 8)
    )
    # Interpolation in W between seeds 1 -> 2 -> 3, 8 frames per leg.
    keys = ws_for(G, [1, 2, 3])
    frames = []
    for a, b in ((0, 1), (1, 2)):
        for i in range(8):
            frames.append(torch.lerp(keys[a], keys[b], i / 8))
    frames.append(keys[2])
    write_png(args.out / "default_interpolation.png",
              image_grid(synth(G, torch.stack(frames[::2] + [keys[2]])[:9], t), 9))  # fmt: skip
    # Style mixing: rows = destination seeds, columns = the source's coarse/middle/fine layers.
    dst = ws_for(G, [10, 11, 12])
    src = ws_for(G, [20])[0]
    rows = []
    for d in dst:
        row = [d]
        for lo, hi in GROUPS.values():
            m = d.clone()
            m[lo:hi] = src[lo:hi]
            row.append(m)
        row.append(src)
        rows += row
    write_png(args.out / "default_mixing.png", image_grid(synth(G, torch.stack(rows), t), 5))
    print(f"wrote {args.out}/default_samples.png, default_interpolation.png, default_mixing.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
