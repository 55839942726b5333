"""Training data for `vj train`: a folder of images (any size/format) or a video file.

Images and frames are decoded with PyAV (already a dependency), centre-cropped to a square
and resized with antialiasing to the training resolution, and held in memory as uint8
[N, 3, R, R]. Undecodable files are skipped with a warning and counted; a source with no
usable picture raises DataError (the CLI turns it into exit 2).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif")
VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v", ".mpg", ".mpeg")
MAX_FRAMES = 4000  # frames sampled from a video (evenly spread)


class DataError(ValueError):
    """The training data cannot be used; the message names the path and the problem."""


@dataclass(frozen=True)
class Dataset:
    images: torch.Tensor  # [N, 3, R, R] uint8
    skipped: int  # files that could not be decoded
    source: str

    def __len__(self) -> int:
        return self.images.shape[0]

    def batch(self, idx: np.ndarray) -> torch.Tensor:
        """Images at idx as float [B, 3, R, R] in [-1, 1]."""
        return self.images[torch.from_numpy(idx)].float() / 127.5 - 1


def square_resize(rgb: np.ndarray, resolution: int) -> torch.Tensor:
    """[H, W, 3] uint8 -> centre-cropped, antialiased resize -> [3, R, R] uint8."""
    h, w = rgb.shape[:2]
    s = min(h, w)
    y0, x0 = (h - s) // 2, (w - s) // 2
    x = torch.from_numpy(np.ascontiguousarray(rgb[y0 : y0 + s, x0 : x0 + s])).permute(2, 0, 1)
    x = x[None].float()
    if s != resolution:
        size = (resolution, resolution)
        x = F.interpolate(x, size=size, mode="bilinear", antialias=s > resolution)
    return x[0].round().clamp(0, 255).to(torch.uint8)


def read_image(path: Path) -> np.ndarray:
    """First frame of an image file as [H, W, 3] uint8; raises DataError if undecodable."""
    import av

    try:
        with av.open(str(path)) as c:
            for frame in c.decode(video=0):
                return frame.to_ndarray(format="rgb24")
    except (av.error.FFmpegError, OSError, ValueError, IndexError) as e:
        raise DataError(f"{path}: not a readable image: {e}") from None
    raise DataError(f"{path}: not a readable image: no picture in it")


def load_dataset(path: str | Path, resolution: int, max_frames: int = MAX_FRAMES) -> Dataset:
    """A folder of images (searched recursively) or a video file -> Dataset at `resolution`."""
    path = Path(path)
    if path.is_dir():
        return _load_folder(path, resolution)
    if path.is_file():
        return _load_video(path, resolution, max_frames)
    raise DataError(f"{path}: no such folder or video file")


def _load_folder(folder: Path, resolution: int) -> Dataset:
    files = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
    if not files:
        raise DataError(f"{folder}: the folder is empty (no image files)")
    candidates = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES]
    if not candidates:
        kinds = sorted({p.suffix.lower() or "(no suffix)" for p in files})[:6]
        raise DataError(
            f"{folder}: no images among {len(files)} files (found {', '.join(kinds)}; "
            f"expected {', '.join(IMAGE_SUFFIXES)})"
        )
    out, skipped = [], 0
    for p in candidates:
        try:
            out.append(square_resize(read_image(p), resolution))
        except DataError as e:
            skipped += 1
            print(f"warning: skipped {e}", file=sys.stderr)
    if not out:
        raise DataError(f"{folder}: none of the {len(candidates)} image files could be decoded")
    if skipped:
        print(f"warning: {skipped} of {len(candidates)} image files skipped", file=sys.stderr)
    return Dataset(torch.stack(out), skipped, str(folder))


def _load_video(path: Path, resolution: int, max_frames: int) -> Dataset:
    import av

    if path.suffix.lower() in IMAGE_SUFFIXES:
        img = square_resize(read_image(path), resolution)
        return Dataset(img[None], 0, str(path))
    frames = []
    try:
        with av.open(str(path)) as c:
            if not c.streams.video:
                raise DataError(f"{path}: no video stream in this file")
            stream = c.streams.video[0]
            total = stream.frames or 0
            stride = max(1, -(-total // max_frames)) if total else 1
            for i, frame in enumerate(c.decode(stream)):
                if i % stride == 0:
                    frames.append(square_resize(frame.to_ndarray(format="rgb24"), resolution))
                if len(frames) >= max_frames:
                    break
    except DataError:
        raise
    except (av.error.FFmpegError, OSError, ValueError) as e:
        if not frames:
            raise DataError(f"{path}: not a readable video: {e}") from None
        print(f"warning: {path}: decoding stopped early: {e}", file=sys.stderr)
    if not frames:
        raise DataError(f"{path}: not a readable video: no frames decoded")
    return Dataset(torch.stack(frames), 0, str(path))
