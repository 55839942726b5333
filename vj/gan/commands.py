"""`vj generate` (one image from a checkpoint, seeded like NVIDIA's tools) and `vj convert`."""

from __future__ import annotations

import argparse
import io
import struct
import sys
import zlib
from pathlib import Path

import numpy as np
import torch

from vj.fsutil import atomic_write_bytes
from vj.gan.checkpoint import load_checkpoint_or_default
from vj.gan.stylegan2 import NOISE_MODES, Generator


class _UserError(Exception):
    pass


def register(subparsers) -> None:
    g = subparsers.add_parser(
        "generate",
        help="render one image from a checkpoint (z drawn as NVIDIA's tools draw it)",
        description="Render one image. --seed S draws z = np.random.RandomState(S).randn(1, "
        "z_dim), as NVIDIA's generate.py does, so a seed gives the same image.",
    )
    g.add_argument("checkpoint", help=".safetensors, NVIDIA .pkl, rosinality .pt, or 'default'")
    src = g.add_mutually_exclusive_group(required=True)
    src.add_argument("--seed", type=int, help="z from np.random.RandomState(seed)")
    src.add_argument("--z", type=Path, help=".npy with z as [z_dim] or [N, z_dim]")
    src.add_argument(
        "--ws", type=Path, help=".npy with ws [num_ws, w_dim] or [N, num_ws, w_dim] (vj project)"
    )
    g.add_argument("--truncation", type=float, default=1.0, help="truncation psi (default 1)")
    g.add_argument("--truncation-cutoff", type=int, default=None, help="truncate the first N ws")
    g.add_argument("--noise-mode", choices=NOISE_MODES, default="const")
    g.add_argument("--class", dest="class_idx", type=int, default=None, help="label (c_dim > 0)")
    g.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    g.add_argument(
        "--precision",
        choices=("auto", "fp32", "fp16"),
        default="auto",
        help="auto: the network's fp16 blocks on CUDA, fp32 on CPU",
    )
    g.add_argument("-o", "--output", required=True, type=Path, help="OUT.png or OUT.npy")
    g.set_defaults(func=cmd_generate)

    c = subparsers.add_parser(
        "convert",
        help="convert a checkpoint (.pkl/.pt/.safetensors) to vj's safetensors format",
        description="Read a checkpoint without executing anything in it and write safetensors "
        "with the architecture config, w_avg, source and licence note.",
    )
    c.add_argument("input", help="NVIDIA .pkl, rosinality .pt, .safetensors, or 'default'")
    c.add_argument("output", type=Path, help="OUT.safetensors")
    c.set_defaults(func=cmd_convert)


def _run(fn, args) -> int:
    from vj.gan.checkpoint import CheckpointError

    try:
        return fn(args)
    except (_UserError, CheckpointError) as e:
        print(f"vj {args.command_name}: {e}", file=sys.stderr)
        return 2


def cmd_generate(args) -> int:
    args.command_name = "generate"
    return _run(_generate, args)


def cmd_convert(args) -> int:
    args.command_name = "convert"
    return _run(_convert, args)


def _generate(args) -> int:
    out = args.output
    if out.suffix.lower() not in (".png", ".npy"):
        raise _UserError(f"{out}: output must end in .png or .npy")
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cuda" and not torch.cuda.is_available():
        raise _UserError("--device cuda: no CUDA device available")
    G, _meta = load_checkpoint_or_default(args.checkpoint, device)
    if args.ws is not None:
        return _generate_ws(args, G, device, out)
    z = seed_z(args.seed, G.z_dim) if args.seed is not None else _read_z(args.z, G.z_dim)
    c = _label(G, args.class_idx, z.shape[0])
    if args.truncation_cutoff is not None and not 0 <= args.truncation_cutoff <= G.num_ws:
        raise _UserError(f"--truncation-cutoff must be in 0..{G.num_ws}")
    fp32 = args.precision == "fp32" or (args.precision == "auto" and device.type != "cuda")
    with torch.no_grad():
        img = G(
            z.to(device),
            None if c is None else c.to(device),
            truncation_psi=args.truncation,
            truncation_cutoff=args.truncation_cutoff,
            noise_mode=args.noise_mode,
            force_fp32=fp32,
        )
    return _save_images(out, img, "z", args.checkpoint)


def _generate_ws(args, G: Generator, device: torch.device, out: Path) -> int:
    """Render ws from `vj project` (truncation/seed do not apply: ws are already final)."""
    ws = _read_ws(args.ws, G.num_ws, G.w_dim)
    fp32 = args.precision == "fp32" or (args.precision == "auto" and device.type != "cuda")
    with torch.no_grad():
        img = G.synthesis(ws.to(device), noise_mode=args.noise_mode, force_fp32=fp32)
    return _save_images(out, img, "ws", f"{args.checkpoint}, ws {args.ws}")


def _save_images(out: Path, img: torch.Tensor, rows: str, label: str) -> int:
    """img [N, C, H, W] in [-1, 1]: all of it as float32 .npy, or one image as PNG."""
    img = img.float().cpu()
    if out.suffix.lower() == ".npy":
        buf = io.BytesIO()
        np.save(buf, img.numpy().astype(np.float32))
        _write_or_explain(out, buf.getvalue())
    else:
        if img.shape[0] != 1:
            raise _UserError(
                f"{out}: PNG holds one image, {rows} has {img.shape[0]} rows (use .npy)"
            )
        write_png(out, to_uint8(img)[0])
    print(f"wrote {out} ({img.shape[2]}x{img.shape[3]}, {label})")
    return 0


def _read_ws(path: Path, num_ws: int, w_dim: int) -> torch.Tensor:
    try:
        ws = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise _UserError(f"{path}: cannot read ws: {e}") from None
    if ws.ndim == 2:
        ws = ws[None]
    if ws.ndim != 3 or ws.shape[1:] != (num_ws, w_dim) or not np.issubdtype(ws.dtype, np.number):
        raise _UserError(
            f"{path}: ws must be numeric [{num_ws}, {w_dim}] or [N, {num_ws}, {w_dim}] for this "
            f"network, got {list(ws.shape)}"
        )
    if not np.isfinite(ws).all():
        raise _UserError(f"{path}: ws holds NaN or infinite values")
    return torch.from_numpy(ws.astype(np.float32))


def _convert(args) -> int:
    from vj.gan.checkpoint import save_generator

    out = args.output
    if out.suffix.lower() != ".safetensors":
        raise _UserError(f"{out}: output must end in .safetensors")
    G, meta = load_checkpoint_or_default(args.input, "cpu")
    if Path(args.input).resolve() == out.resolve():
        raise _UserError(f"{out}: refusing to overwrite the input")
    extra = {k: v for k, v in meta.items() if k not in ("config", "format", "source")}
    extra["source"] = f"{Path(args.input).name} ({meta['format']})"
    save_generator(G, out, extra)
    n_params = sum(p.numel() for p in G.parameters())
    print(f"wrote {out}: {G.img_resolution}px StyleGAN2, {n_params} parameters, {meta['format']}")
    return 0


# ----------------------------------------------------------------------------- helpers


def seed_z(seed: int, z_dim: int) -> torch.Tensor:
    """z exactly as NVIDIA's generate.py draws it: RandomState(seed).randn(1, z_dim)."""
    if not 0 <= seed < 2**32:
        raise _UserError(f"--seed must be in 0..2**32-1, got {seed}")
    return torch.from_numpy(np.random.RandomState(seed).randn(1, z_dim)).float()


def _read_z(path: Path, z_dim: int) -> torch.Tensor:
    try:
        z = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise _UserError(f"{path}: cannot read z: {e}") from None
    if z.ndim == 1:
        z = z[None]
    if z.ndim != 2 or z.shape[1] != z_dim or not np.issubdtype(z.dtype, np.number):
        raise _UserError(f"{path}: z must be numeric [{z_dim}] or [N, {z_dim}], got {z.shape}")
    return torch.from_numpy(z.astype(np.float32))


def _label(G: Generator, idx: int | None, n: int) -> torch.Tensor | None:
    if G.c_dim == 0:
        if idx is not None:
            raise _UserError("--class: this network is unconditional")
        return None
    if idx is None or not 0 <= idx < G.c_dim:
        raise _UserError(f"this network is conditional: give --class in 0..{G.c_dim - 1}")
    c = torch.zeros([n, G.c_dim])
    c[:, idx] = 1
    return c


def to_uint8(img: torch.Tensor) -> np.ndarray:
    """[N, C, H, W] in [-1, 1] -> [N, H, W, C] uint8, with NVIDIA's rounding (x*127.5 + 128)."""
    return (img.permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8).numpy()


def encode_png(pixels: np.ndarray) -> bytes:
    """[H, W] or [H, W, 1|3|4] uint8 -> PNG bytes (8-bit, no filtering, zlib level 6)."""
    if pixels.dtype != np.uint8:
        raise ValueError("encode_png: pixels must be uint8")
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    h, w, ch = pixels.shape
    color = {1: 0, 2: 4, 3: 2, 4: 6}.get(ch)
    if color is None:
        raise ValueError(f"encode_png: {ch} channels not supported")

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    rows = np.concatenate([np.zeros((h, 1), np.uint8), pixels.reshape(h, w * ch)], axis=1)
    ihdr = struct.pack(">IIBBBBB", w, h, 8, color, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(rows.tobytes(), 6))
        + chunk(b"IEND", b"")
    )


def write_png(path: Path, pixels: np.ndarray) -> None:
    data = encode_png(pixels)
    _write_or_explain(Path(path), data)


def _write_or_explain(path: Path, data: bytes) -> None:
    try:
        atomic_write_bytes(path, data)
    except OSError as e:
        raise _UserError(f"{path}: cannot write: {e.strerror or e}") from None


if __name__ == "__main__":  # pragma: no cover - manual use
    p = argparse.ArgumentParser(prog="vj")
    register(p.add_subparsers())
    a = p.parse_args()
    sys.exit(a.func(a))
