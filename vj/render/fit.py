"""How a frame of one aspect fills an output of another: fit, fill (crop), stretch, mirror-tile.

Every mode is a per-axis scale of the output's uv around the centre (source uv = 0.5 +
(uv − 0.5) × scale) plus a rule for what lies outside the source: black (fit), mirrored
copies (tile), or nothing (fill and stretch never leave it). The scaler shader
(shaders/scale.frag) and `fit_reference` both follow it.
"""

from __future__ import annotations

import numpy as np

FIT_MODES = ("fit", "fill", "stretch", "tile")


def check_mode(mode: str) -> str:
    if mode not in FIT_MODES:
        raise ValueError(f"fit mode {mode!r}: allowed values are {', '.join(FIT_MODES)}")
    return mode


def fit_scale(mode: str, src_w: int, src_h: int, dst_w: int, dst_h: int) -> tuple[float, float]:
    """Per-axis share of the source spanned by the output (< 1 crops, > 1 shows outside)."""
    check_mode(mode)
    a_src, a_dst = src_w / src_h, dst_w / dst_h
    if mode == "stretch":
        return (1.0, 1.0)
    if mode == "fill":  # cover: the narrower axis is cropped
        return (min(1.0, a_dst / a_src), min(1.0, a_src / a_dst))
    # fit and tile: the whole source visible, aspect kept; the rest is bars or mirrored copies
    return (max(1.0, a_dst / a_src), max(1.0, a_src / a_dst))


def outside_rule(mode: str) -> str:
    """'black' (fit), 'mirror' (tile) or 'none'."""
    return {"fit": "black", "tile": "mirror"}.get(check_mode(mode), "none")


def fit_reference(img: np.ndarray, mode: str, dst_w: int, dst_h: int) -> np.ndarray:
    """Bilinear twin of scale.frag (one pass). img [h, w, 3] float, GL row order → [H, W, 3]."""
    from vj.render.effect_refs import pixel_uv, sample

    h, w = img.shape[:2]
    sx, sy = fit_scale(mode, w, h, dst_w, dst_h)
    u, v = pixel_uv(dst_h, dst_w)
    su, sv = 0.5 + (u - 0.5) * sx, 0.5 + (v - 0.5) * sy
    rule = outside_rule(mode)
    if rule == "mirror":
        su, sv = 1 - np.abs(np.mod(su, 2) - 1), 1 - np.abs(np.mod(sv, 2) - 1)
    out = sample(img, su, sv)
    if rule == "black":
        out = out * ((su >= 0) & (su <= 1) & (sv >= 0) & (sv <= 1))[..., None]
    return out
