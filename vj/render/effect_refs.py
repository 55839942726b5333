"""NumPy twins of the shaders in shaders/effects/: slow, plain; tests hold the two equal.

Images are float [H, W, 3] in 0..1 in GL order (row 0 = bottom, v = 0), as a texture stores
them; `p` maps each effect's own parameter names (no `effect.` prefix) to values.
"""

from __future__ import annotations

import numpy as np

LUMA = np.array([0.2126, 0.7152, 0.0722])
TAU = 6.28318531


def pixel_uv(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """u, v [H, W] at pixel centres."""
    v, u = np.meshgrid((np.arange(h) + 0.5) / h, (np.arange(w) + 0.5) / w, indexing="ij")
    return u, v


def sample(img: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """GL `texture()` with LINEAR filtering and CLAMP_TO_EDGE: [H, W, 3] at (u, v)."""
    h, w = img.shape[:2]
    x = np.asarray(u, np.float64) * w - 0.5
    y = np.asarray(v, np.float64) * h - 0.5
    x0, y0 = np.floor(x), np.floor(y)
    fx, fy = (x - x0)[..., None], (y - y0)[..., None]
    x0, y0 = x0.astype(np.int64), y0.astype(np.int64)
    xs0, xs1 = np.clip(x0, 0, w - 1), np.clip(x0 + 1, 0, w - 1)
    ys0, ys1 = np.clip(y0, 0, h - 1), np.clip(y0 + 1, 0, h - 1)
    top = img[ys0, xs0] * (1 - fx) + img[ys0, xs1] * fx
    bot = img[ys1, xs0] * (1 - fx) + img[ys1, xs1] * fx
    return top * (1 - fy) + bot * fy


def _asp(h: int, w: int) -> np.ndarray:
    return np.array([w / h, 1.0])


def feedback(img, p, inp, prev):
    h, w = img.shape[:2]
    u, v = pixel_uv(h, w)
    a = _asp(h, w)
    px, py = (u - 0.5) * a[0] / p["zoom"], (v - 0.5) * a[1] / p["zoom"]
    cs, sn = np.cos(p["rotate"]), np.sin(p["rotate"])
    qx, qy = cs * px - sn * py, sn * px + cs * py
    fb = sample(prev, qx / a[0] + 0.5, qy / a[1] + 0.5)
    return np.maximum(img, fb * p["decay"] - 1 / 255)


def kaleido(img, p, inp, prev=None):
    h, w = img.shape[:2]
    u, v = pixel_uv(h, w)
    a = _asp(h, w)
    amt = np.clip(p["fx_amount"] + p["fx_pulse"], 0, 1)
    px, py = (u - 0.5) * a[0], (v - 0.5) * a[1]
    r = np.hypot(px, py) * (1 - p["beat_zoom"] * (1 - inp.beat_phase) ** 3)
    seg = TAU / max(p["segments"], 1.0)
    ang = np.arctan2(py, px) + inp.time * p["spin"]
    ang = np.abs(np.mod(ang, seg) - 0.5 * seg)  # GLSL mod: x - y*floor(x/y), like np.mod
    qx = np.clip(np.cos(ang) * r / a[0] + 0.5, 0, 1)
    qy = np.clip(np.sin(ang) * r / a[1] + 0.5, 0, 1)
    return img * (1 - amt) + sample(img, qx, qy) * amt


def mirror(img, p, inp, prev=None):
    h, w = img.shape[:2]
    u, v = pixel_uv(h, w)
    du, dv = np.abs(u - 0.5), np.abs(v - 0.5)
    mu, mv = (0.5 + du, 0.5 + dv) if p["flip"] > 0.5 else (0.5 - du, 0.5 - dv)
    if p["axis"] != 1:
        u = mu
    if p["axis"] != 0:
        v = mv
    return sample(img, u, v)


def rgbsplit(img, p, inp, prev=None):
    h, w = img.shape[:2]
    u, v = pixel_uv(h, w)
    s = p["offset"] * (1 + p["kick"] * inp.onset_env)
    dx, dy = np.cos(p["angle"]) * s * h / w, np.sin(p["angle"]) * s
    out = img.copy()
    out[..., 0] = sample(img, u + dx, v + dy)[..., 0]
    out[..., 2] = sample(img, u - dx, v - dy)[..., 2]
    return out


def grade(img, p, inp, prev=None):
    c = img * p["gain"] + p["lift"] * (1 - img)
    c = np.clip(c, 0, 1) ** (1 / p["gamma"])
    c = c * np.array([1 + 0.2 * p["warmth"], 1.0, 1 - 0.2 * p["warmth"]])
    return np.clip(c, 0, 1)


def palette(img, p, inp, prev=None):
    lum = img @ LUMA
    pal = 0.5 + 0.5 * np.cos(
        TAU * (p["spread"] * lum[..., None] + p["hue"] + np.array([0, 0.33, 0.67]))
    )
    return img * (1 - p["amount"]) + pal * p["amount"]


def strobe(img, p, inp, prev=None):
    ph = inp.beat / p["rate"]
    on = 1.0 if ph - np.floor(ph) < p["duty"] else 0.0
    flash = 1 - img if p["invert"] > 0.5 else np.ones_like(img)
    k = on * p["amount"]
    return img * (1 - k) + flash * k


def zoomblur(img, p, inp, prev=None):
    h, w = img.shape[:2]
    u, v = pixel_uv(h, w)
    cx, cy = p["center_x"], p["center_y"]
    s = p["strength"] * (1 + p["kick"] * inp.onset_env)
    acc = np.zeros_like(img)
    for i in range(8):
        k = 1 - s * i / 7
        acc += sample(img, cx + (u - cx) * k, cy + (v - cy) * k)
    return acc / 8


def pixelate(img, p, inp, prev=None):
    h, w = img.shape[:2]
    u, v = pixel_uv(h, w)
    s = max(p["size"], 1.0)
    cu = (np.floor(u * w / s) + 0.5) * s / w
    cv = (np.floor(v * h / s) + 0.5) * s / h
    return sample(img, cu, cv)


def edgeglow(img, p, inp, prev=None):
    lum = np.pad(img @ LUMA, 1, mode="edge")  # clamped texelFetch
    h, w = img.shape[:2]

    def at(dx, dy):  # dy up (GL rows)
        return lum[1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]

    gx = (at(1, 1) + 2 * at(1, 0) + at(1, -1)) - (at(-1, 1) + 2 * at(-1, 0) + at(-1, -1))
    gy = (at(-1, 1) + 2 * at(0, 1) + at(1, 1)) - (at(-1, -1) + 2 * at(0, -1) + at(1, -1))
    e = np.maximum(np.hypot(gx, gy) - p["threshold"], 0) * p["strength"]
    col = 0.5 + 0.5 * np.cos(TAU * (p["hue"] + np.array([0, 0.33, 0.67])))
    return np.clip(img * (1 - p["dim"]) + e[..., None] * col, 0, 1)


def vignette(img, p, inp, prev=None):
    h, w = img.shape[:2]
    u, v = pixel_uv(h, w)
    a = _asp(h, w)
    r = np.hypot((u - 0.5) * a[0], (v - 0.5) * a[1]) / np.hypot(0.5 * a[0], 0.5 * a[1])
    e0, e1 = p["radius"] - p["softness"], p["radius"]
    t = np.clip((r - e0) / (e1 - e0), 0, 1)
    vig = 1 - t * t * (3 - 2 * t)
    return img * (1 + (vig - 1) * p["amount"])[..., None]


def _hash(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.uint32)
    x ^= x >> np.uint32(16)
    x *= np.uint32(0x7FEB352D)
    x ^= x >> np.uint32(15)
    x *= np.uint32(0x846CA68B)
    x ^= x >> np.uint32(16)
    return x


def grain(img, p, inp, prev=None):
    h, w = img.shape[:2]
    s = np.uint32(max(p["size"], 1.0))
    gy, gx = np.meshgrid(
        np.arange(h, dtype=np.uint32), np.arange(w, dtype=np.uint32), indexing="ij"
    )
    seed = np.uint32(int(np.float32(inp.time) * np.float32(24.0)))
    with np.errstate(over="ignore"):
        hh = _hash(gx // s + _hash(gy // s + _hash(np.array(seed))))
        unit = [
            ((x & np.uint32(0xFFFF)).astype(np.float64) / 65535 - 0.5)
            for x in (hh, _hash(hh + np.uint32(1)), _hash(hh + np.uint32(2)))
        ]
    n = np.stack([unit[0]] * 3 if p["mono"] > 0.5 else unit, -1)
    return np.clip(img + p["amount"] * n, 0, 1)


def displace(img, p, inp, prev=None):
    h, w = img.shape[:2]
    u, v = pixel_uv(h, w)
    lum = sample(img, u, v) @ LUMA
    s = (lum - 0.5) * p["amount"] * (1 + p["kick"] * inp.onset_env)
    return sample(img, u + np.cos(p["angle"]) * s * h / w, v + np.sin(p["angle"]) * s)


def none(img, p, inp, prev=None):
    return img


REFERENCES = {
    f.__name__: f
    for f in (
        feedback,
        kaleido,
        mirror,
        rgbsplit,
        grade,
        palette,
        strobe,
        zoomblur,
        pixelate,
        edgeglow,
        vignette,
        grain,
        displace,
        none,
    )
}
