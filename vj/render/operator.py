"""The operator window: previews of decks A/B and the master, parameter values, cue list, status.

It is a second glfw window in the output window's context share group, so the previews are
the very textures the compositor drew (no copies), drawn with the output scaler. The text
panel uses the HUD font. Draw it after the output window's swap; it swaps without vsync, so
it never halves the output's frame rate.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import moderngl
import numpy as np

from vj.render.hud import CELL_H, HudText
from vj.render.shaders import BUILTIN_VERTEX
from vj.render.upscale import Scaler

_TEXT = """#version 330 core
uniform sampler2D cov;
in vec2 uv;
out vec4 frag;
void main() { frag = vec4(vec3(texture(cov, vec2(uv.x, 1.0 - uv.y)).r), 1.0); }
"""

TILES = ("A", "B", "master")


def operator_lines(
    params: Mapping[str, float],
    chains: Mapping[str, Sequence[str]],
    cues: Sequence[str] = (),
    cue_index: int | None = None,
    status: Sequence[str] = (),
    max_params: int = 24,
) -> list[str]:
    """The text panel: status, each chain with its effects' parameter values, the cue list."""
    lines = list(status)
    shown = 0
    for key in TILES:
        fx = tuple(chains.get(key, ()))
        lines.append(f"{key:6s} fx: {' > '.join(fx) if fx else '-'}")
        for name in fx:
            vals = [(k, v) for k, v in params.items() if k.startswith(name + ".")]
            if vals and shown < max_params:
                body = "  ".join(f"{k.split('.', 1)[1]} {v:.3g}" for k, v in vals)
                lines.append(f"   {name}: {body}")
                shown += len(vals)
    core = ("master", "fx_amount", "zoom", "brightness", "contrast", "saturation", "crossfade")
    lines.append("  ".join(f"{k} {params[k]:.2f}" for k in core if k in params))
    if cues:
        lines.append("cues:")
        for i, c in enumerate(cues):
            lines.append(f"{'>' if i == cue_index else ' '} {i + 1:2d} {c}")
    return lines


class OperatorView:
    """Draws the operator layout into a framebuffer of this context."""

    def __init__(self, ctx: moderngl.Context, shader_dir=None) -> None:
        self.ctx = ctx
        self.scaler = Scaler(ctx, shader_dir)
        self._text = HudText()
        self._prog = ctx.program(vertex_shader=BUILTIN_VERTEX, fragment_shader=_TEXT)
        self._vao = ctx.vertex_array(self._prog, [])
        self._cov = ctx.texture((1, 1), 1, data=b"\x00")
        self._cov.filter = (moderngl.NEAREST, moderngl.NEAREST)

    def layout(self, size: tuple[int, int]) -> dict[str, tuple[int, int, int, int]]:
        """Viewports (GL: x, y from the bottom) of the three previews and the text panel."""
        w, h = size
        m = 8
        tw = (w - 4 * m) // 3
        th = tw * 9 // 16
        y = h - m - th - 2 * CELL_H  # room above for a label
        out = {k: (m + i * (tw + m), y, tw, th) for i, k in enumerate(TILES)}
        out["text"] = (m, m, w - 2 * m, max(1, y - 2 * m))
        return out

    def draw(
        self,
        fbo: moderngl.Framebuffer,
        previews: Mapping[str, moderngl.Texture | None],
        lines: Sequence[str],
        scale: int = 2,
        size: tuple[int, int] | None = None,
    ) -> None:
        """`size`: the framebuffer's real size (a shared window's default framebuffer object
        is moderngl's cached one, whose `size` is the first window's)."""
        size = size or fbo.size
        saved = fbo.viewport
        fbo.viewport = (0, 0, *size)
        fbo.use()
        fbo.clear(0.08, 0.08, 0.09, 1.0, viewport=(0, 0, *size))
        lay = self.layout(size)
        for key in TILES:
            x, y, tw, th = lay[key]
            tex = previews.get(key)
            if tex is not None:
                self.scaler.draw(tex, fbo, "fit", "bilinear", viewport=(x, y, tw, th))
            label = f"{key}" + ("" if tex is not None else " (no deck)")
            self._draw_text(fbo, [label], x, y + th + 2, scale=1)
        x, y, tw, th = lay["text"]
        rows = max(1, th // (CELL_H * scale))
        self._draw_text(fbo, list(lines)[:rows], x, y + th, scale, top=True)
        fbo.viewport = saved  # the same Python object may be the output window's framebuffer

    def _draw_text(self, fbo, lines, x, y, scale=1, top=False) -> None:
        img, _ = self._text.render(lines)
        if img.size == 0:
            return
        h, w = img.shape
        if self._cov.size != (w, h):
            self._cov.release()
            self._cov = self.ctx.texture((w, h), 1, alignment=1)
            self._cov.filter = (moderngl.NEAREST, moderngl.NEAREST)
        self._cov.write(np.ascontiguousarray(img))
        saved = fbo.viewport
        y0 = y - h * scale if top else y
        fbo.viewport = (x, y0, w * scale, h * scale)
        self._cov.use(location=0)
        self._prog["cov"].value = 0
        self._vao.render(moderngl.TRIANGLES, vertices=3)
        fbo.viewport = saved

    def release(self) -> None:
        self.scaler.release()
        self._vao.release()
        self._prog.release()
        self._cov.release()


class OperatorWindow:
    """A second window sharing the output window's GL objects; `draw()` once per output frame."""

    def __init__(self, main, width: int = 1280, height: int = 800, monitor=None) -> None:
        from vj.render.window import Window

        self.main = main
        self.win = Window(
            width, height, monitor=monitor, vsync=False, title="vj operator", share=main
        )
        self.view = OperatorView(self.win.ctx, None)  # its VAOs belong to this window's context
        main.make_current()

    def draw(
        self,
        previews: Mapping[str, moderngl.Texture | None],
        lines: Sequence[str],
        capture: bool = False,
    ) -> np.ndarray | None:
        """Draw and swap; with `capture`, also return the pixels [H, W, 3], top row first."""
        self.main.ctx.finish()  # the previews are complete before another context samples them
        self.win.make_current()
        try:
            self.win.poll()
            w, h = self.win.size
            self.view.draw(self.win.fbo, previews, lines, size=(w, h))  # shared textures as-is
            shot = None
            if capture:
                raw = self.win.fbo.read(viewport=(0, 0, w, h), components=3, alignment=1)
                shot = np.frombuffer(raw, np.uint8).reshape(h, w, 3)[::-1].copy()
            self.win.swap()
            return shot
        finally:
            self.main.make_current()

    def should_close(self) -> bool:
        return self.win.should_close()

    def close(self) -> None:
        self.win.make_current()
        self.view.release()
        self.win.close(terminate=False)
        self.main.make_current()
