"""A small PNG encoder (zlib + CRC from the standard library) for screenshots; atomic writes."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

from vj.fsutil import atomic_write_bytes


def encode_png(img: np.ndarray, level: int = 6) -> bytes:
    """[H, W, 3] or [H, W, 4] uint8, top row first → PNG bytes (8-bit RGB / RGBA)."""
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] not in (3, 4):
        raise ValueError(f"encode_png: expected uint8 [H, W, 3|4], got {img.dtype} {img.shape}")
    h, w, c = img.shape
    raw = np.empty((h, 1 + w * c), np.uint8)
    raw[:, 0] = 0  # filter type "none" on every row
    raw[:, 1:] = img.reshape(h, w * c)

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 6 if c == 4 else 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(raw.tobytes(), level))
        + chunk(b"IEND", b"")
    )


def write_png(path: str | Path, img: np.ndarray) -> Path:
    """Write `img` as a PNG (temp file + rename: never half-written)."""
    path = Path(path)
    atomic_write_bytes(path, encode_png(img))
    return path
