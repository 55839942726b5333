"""PSNR of the output upscaler's filters against the original on downscaled real photos.

Each scikit-image photo is shrunk by an integer factor (box filter, as a camera or generator
would produce a low-resolution image), scaled back up on the GL scaler with each filter and
compared with the original; bilinear is the reference the others are measured against.

    python tools/bench_upscale.py [--factors 2 4] [--crop 512]
"""

from __future__ import annotations

import argparse
import sys

import numpy as np


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--factors", type=int, nargs="+", default=[2, 4])
    ap.add_argument("--crop", type=int, default=512, help="square crop of each photo (pixels)")
    args = ap.parse_args(argv)
    try:
        from skimage import data
    except ImportError:
        print("bench_upscale: needs scikit-image for its photos (pip install scikit-image)")
        return 2
    from vj.render.offscreen import create_headless_context
    from vj.render.upscale import FILTERS, Scaler, downscale_area, psnr

    ctx = create_headless_context()
    scaler = Scaler(ctx)
    names = ("astronaut", "chelsea", "coffee", "rocket")
    print(
        f"{'photo':10s} {'factor':>6s} "
        + " ".join(f"{f:>9s}" for f in FILTERS)
        + "  lanczos-bilinear"
    )
    gains: dict[int, list[float]] = {f: [] for f in args.factors}
    for name in names:
        img = getattr(data, name)()[: args.crop, : args.crop, :3]
        for f in args.factors:
            h, w = (img.shape[0] // f) * f, (img.shape[1] // f) * f
            ref = img[:h, :w][::-1].astype(int)  # GL row order
            small = np.round(downscale_area(img[:h, :w], f)).astype(np.uint8)[::-1]
            tex = ctx.texture((small.shape[1], small.shape[0]), 3, small.tobytes(), alignment=1)
            out = ctx.texture((w, h), 4)
            fbo = ctx.framebuffer(color_attachments=[out])
            row = {}
            for filt in FILTERS:
                scaler.draw(tex, fbo, "stretch", filt)
                got = np.frombuffer(out.read(), np.uint8).reshape(h, w, 4)[..., :3]
                row[filt] = psnr(got, ref)
            gains[f].append(row["lanczos"] - row["bilinear"])
            print(
                f"{name:10s} {f:>6d} "
                + " ".join(f"{row[k]:9.2f}" for k in FILTERS)
                + f"  {row['lanczos'] - row['bilinear']:+.2f} dB"
            )
            for o in (fbo, out, tex):
                o.release()
    for f, g in gains.items():
        print(f"median gain of lanczos over bilinear at x{f}: {np.median(g):+.2f} dB")
    scaler.release()
    ctx.release()
    return 0


if __name__ == "__main__":
    sys.exit(main())
