"""Generator resolution → output resolution: bilinear, Catmull-Rom or Lanczos-3, with any fit mode.

Lanczos-3 and Catmull-Rom are separable: one pass along x at the source height into a
half-float texture (the negative lobes must survive), then one along y. That is 12 (or 8)
texel reads per output pixel instead of 36 (or 16). When shrinking, the kernel widens by the
reduction ratio, so it stays an anti-aliasing filter. Selected per deck by the caller.
"""

from __future__ import annotations

from pathlib import Path

import moderngl
import numpy as np

from vj.render.fit import fit_scale, outside_rule
from vj.render.shaders import BUILTIN_PASSTHROUGH, HotProgram, default_shader_dir

FILTERS = ("bilinear", "bicubic", "lanczos")


def check_filter(name: str) -> str:
    if name not in FILTERS:
        raise ValueError(f"upscale filter {name!r}: allowed values are {', '.join(FILTERS)}")
    return name


class Scaler:
    """Draws a source texture into a framebuffer (or its viewport) with a fit mode and filter."""

    def __init__(self, ctx: moderngl.Context, shader_dir: Path | None = None) -> None:
        self.ctx = ctx
        self.shader_dir = Path(shader_dir) if shader_dir is not None else default_shader_dir()
        self._progs: dict[tuple[str, str, str], HotProgram] = {}
        self._mid: tuple[moderngl.Texture, moderngl.Framebuffer] | None = None

    def _prog(self, filt: str, stage: str, rule: str) -> HotProgram:
        key = (filt, stage, rule)
        hp = self._progs.get(key)
        if hp is None:
            d = {}
            if filt == "lanczos":
                d["LANCZOS"] = "1"
            elif filt == "bicubic":
                d["BICUBIC"] = "1"
            if stage:
                d[stage] = "1"
            if rule != "none":
                d["OUTSIDE_" + rule.upper()] = "1"
            sd = self.shader_dir
            hp = HotProgram(
                self.ctx, sd / "scale.frag", BUILTIN_PASSTHROUGH, sd / "fullscreen.vert", d
            )
            if hp.error:
                raise RuntimeError(hp.error)
            self._progs[key] = hp
        return hp

    def poll(self) -> list[str]:
        """Hot reload of scale.frag; returns event lines."""
        return [e for e in (hp.poll() for hp in self._progs.values()) if e]

    def _intermediate(self, w: int, h: int) -> tuple[moderngl.Texture, moderngl.Framebuffer]:
        if self._mid is not None and self._mid[0].size == (w, h):
            return self._mid
        if self._mid is not None:
            self._mid[1].release()
            self._mid[0].release()
        tex = self.ctx.texture((w, h), 4, dtype="f2")
        tex.filter = (moderngl.NEAREST, moderngl.NEAREST)
        self._mid = (tex, self.ctx.framebuffer(color_attachments=[tex]))
        return self._mid

    def draw(
        self,
        src: moderngl.Texture,
        fbo: moderngl.Framebuffer,
        mode: str = "fill",
        filter: str = "lanczos",
        flip_y: bool = False,
        viewport: tuple[int, int, int, int] | None = None,
        after_pass=None,
    ) -> None:
        """Scale `src` into `fbo` (its whole size, or `viewport` = (x, y, w, h) in GL pixels).

        `flip_y`: the source's row 0 is the image's top row (generator frames).
        """
        check_filter(filter)
        rule = outside_rule(mode)
        vx, vy, dw, dh = viewport if viewport is not None else (0, 0, *fbo.size)
        sw, sh = src.size
        scale = fit_scale(mode, sw, sh, dw, dh)
        ratio = (max(1.0, sw * scale[0] / dw), max(1.0, sh * scale[1] / dh))
        src.use(location=0)
        if filter == "bilinear":
            self._pass(
                self._prog("bilinear", "", rule), fbo, (vx, vy, dw, dh), scale, ratio, flip_y
            )
        else:
            mid_tex, mid_fbo = self._intermediate(dw, sh)
            self._pass(self._prog(filter, "PASS_X", rule), mid_fbo, (0, 0, dw, sh), scale, ratio, 0)
            if after_pass is not None:
                after_pass()
            mid_tex.use(location=0)
            self._pass(
                self._prog(filter, "PASS_Y", rule), fbo, (vx, vy, dw, dh), scale, ratio, flip_y
            )
        if after_pass is not None:
            after_pass()

    def _pass(self, hp: HotProgram, fbo, vp, scale, ratio, flip_y) -> None:
        fbo.use()
        saved = fbo.viewport
        fbo.viewport = vp
        prog = hp.program
        for name, value in (
            ("src", 0),
            ("scale", scale),
            ("ratio", ratio),
            ("origin", (float(vp[0]), float(vp[1]))),
            ("flip_y", 1.0 if flip_y else 0.0),
        ):
            if name in prog:
                prog[name].value = value
        hp.vao.render(moderngl.TRIANGLES, vertices=3)
        fbo.viewport = saved

    def release(self) -> None:
        for hp in self._progs.values():
            hp.release()
        self._progs.clear()
        if self._mid is not None:
            self._mid[1].release()
            self._mid[0].release()
            self._mid = None


def _kernel(x: np.ndarray, filt: str) -> np.ndarray:
    x = np.abs(x)
    if filt == "lanczos":
        with np.errstate(invalid="ignore", divide="ignore"):
            px = np.pi * x
            k = 3 * np.sin(px) * np.sin(px / 3) / (px * px)
        return np.where(x < 1e-5, 1.0, np.where(x >= 3, 0.0, k))
    return np.where(
        x < 1,
        1.5 * x**3 - 2.5 * x**2 + 1,
        np.where(x < 2, -0.5 * x**3 + 2.5 * x**2 - 4 * x + 2, 0.0),
    )


def _axis_matrix(n_src: int, s: np.ndarray, ratio: float, filt: str) -> np.ndarray:
    """[len(s), n_src] weights of one separable axis (clamped edges, normalised rows)."""
    support = 3.0 if filt == "lanczos" else 2.0
    reach = int(np.ceil(support * ratio))
    p = s * n_src - 0.5
    c = np.floor(p).astype(int)
    m = np.zeros((len(s), n_src))
    for off in range(-reach + 1, reach + 1):
        i = c + off
        w = _kernel((i - p) / ratio, filt)
        np.add.at(m, (np.arange(len(s)), np.clip(i, 0, n_src - 1)), w)
    return m / m.sum(1, keepdims=True)


def scale_reference(img: np.ndarray, mode: str, dst_w: int, dst_h: int, filt: str) -> np.ndarray:
    """Separable twin of scale.frag (bicubic, lanczos). img [h, w, 3] float, GL rows → [H, W, 3]."""
    h, w = img.shape[:2]
    sx, sy = fit_scale(mode, w, h, dst_w, dst_h)
    rx, ry = max(1.0, w * sx / dst_w), max(1.0, h * sy / dst_h)
    su = 0.5 + ((np.arange(dst_w) + 0.5) / dst_w - 0.5) * sx
    sv = 0.5 + ((np.arange(dst_h) + 0.5) / dst_h - 0.5) * sy
    rule = outside_rule(mode)
    if rule == "mirror":
        su, sv = 1 - np.abs(np.mod(su, 2) - 1), 1 - np.abs(np.mod(sv, 2) - 1)
    mid = np.einsum("xw,hwc->hxc", _axis_matrix(w, su, rx, filt), img)
    out = np.einsum("yh,hxc->yxc", _axis_matrix(h, sv, ry, filt), mid)
    if rule == "black":
        inside = ((sv >= 0) & (sv <= 1))[:, None] & ((su >= 0) & (su <= 1))[None, :]
        out = out * inside[..., None]
    return np.clip(out, 0, 1)


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    """Peak signal-to-noise ratio in dB between two images of the same shape."""
    mse = np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(peak * peak / mse))


def downscale_area(img: np.ndarray, f: int) -> np.ndarray:
    """Box-average downscale by an integer factor (crops to a multiple of f). [h, w, c] → float."""
    h, w = (img.shape[0] // f) * f, (img.shape[1] // f) * f
    x = np.asarray(img[:h, :w], np.float64)
    return x.reshape(h // f, f, w // f, f, -1).mean((1, 3))
