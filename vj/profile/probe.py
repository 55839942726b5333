"""The latency probe's marker: the onset count of the frame on screen, drawn as a grey corner
patch and read back from presented pixels, so audio hit → picture is measured without stamps."""

from __future__ import annotations

import numpy as np

LEVELS = 16  # the patch shows the onset count mod 16: one grey step (16) per onset
_STEP = 256 // LEVELS
_BASE = _STEP // 2


def patch_size(height: int) -> int:
    return max(4, height // 40)


def level(onset_count: int) -> int:
    """Grey value (0..255) the patch shows for an onset count."""
    return _BASE + _STEP * (int(onset_count) % LEVELS)


def read(rgb: np.ndarray) -> int:
    """The count mod LEVELS shown in a presented frame [H, W, 3] (top row first; the patch is
    the bottom-right corner). A corner away from the HUD, which starts top-left."""
    s = patch_size(rgb.shape[0])
    v = int(rgb[-s // 2, -s // 2, 1])  # the patch's centre: no filtering reaches it
    return int(round((v - _BASE) / _STEP)) % LEVELS
