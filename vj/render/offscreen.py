"""Headless OpenGL: an EGL context (no display needed) and an RGBA8 framebuffer read back as RGB."""

from __future__ import annotations

import ctypes
from collections.abc import Callable

import moderngl
import numpy as np

MESA_EGL_HINT = (
    "install Mesa's EGL and software rasteriser "
    "(Debian/Ubuntu: apt-get install libegl1 libegl-mesa0 libgl1-mesa-dri)"
)


class HeadlessGLError(RuntimeError):
    pass


def create_headless_context(require: int = 330) -> moderngl.Context:
    """An EGL OpenGL (≥ 3.3 core) context with no window or display."""
    try:
        ctx = moderngl.create_standalone_context(backend="egl", require=require)
    except Exception as exc:  # moderngl/glcontext raise plain Exceptions for a missing libEGL
        raise HeadlessGLError(
            f"cannot create a headless EGL OpenGL {require // 100}.{require % 100 // 10} "
            f"context ({exc}); {MESA_EGL_HINT}"
        ) from exc
    return ctx


def is_software_renderer(ctx: moderngl.Context) -> bool:
    """True on Mesa's CPU rasterisers (llvmpipe, softpipe, swrast)."""
    r = str(ctx.info.get("GL_RENDERER", "")).lower()
    return any(k in r for k in ("llvmpipe", "softpipe", "swrast", "software"))


def gil_free_finish() -> Callable[[], None] | None:
    """glFinish called through ctypes, which releases the GIL while the GL works.

    moderngl keeps the GIL during its calls; on a CPU rasteriser a draw that depends on the
    previous pass waits inside moderngl for that pass, starving the audio thread. Finishing
    each pass through this first moves the wait outside the lock. None if EGL is not loadable.
    """
    for name in ("libEGL.so.1", "libEGL.so"):
        try:
            egl = ctypes.CDLL(name)
        except OSError:
            continue
        egl.eglGetProcAddress.restype = ctypes.c_void_p
        egl.eglGetProcAddress.argtypes = [ctypes.c_char_p]
        ptr = egl.eglGetProcAddress(b"glFinish")
        if ptr:
            return ctypes.CFUNCTYPE(None)(ptr)
    return None


class OffscreenTarget:
    """An RGBA8 framebuffer of a fixed size, read back top row first."""

    def __init__(self, ctx: moderngl.Context, width: int, height: int) -> None:
        if width <= 0 or height <= 0:
            raise ValueError(f"offscreen target size must be positive, got {width}x{height}")
        self.ctx = ctx
        self.size = (int(width), int(height))
        self._rb = ctx.renderbuffer(self.size, components=4)
        self.fbo = ctx.framebuffer(color_attachments=[self._rb])
        # GL order, bottom row first. Reading RGB directly beats reading RGBA and dropping
        # alpha: numpy's 4→3 channel copy is ~30x slower than the row flip.
        self._raw = np.empty((height, width, 3), np.uint8)
        self._out = np.empty((height, width, 3), np.uint8)
        self._finish = gil_free_finish() if is_software_renderer(ctx) else None

    def read_rgb(self, out: np.ndarray | None = None) -> np.ndarray:
        """[H, W, 3] uint8, top row first.

        Without `out`, returns an internal buffer that the next call overwrites.
        """
        w, h = self.size
        if out is None:
            out = self._out
        elif out.shape != (h, w, 3) or out.dtype != np.uint8:
            raise ValueError(
                f"read_rgb: out must be uint8 [{h}, {w}, 3], got {out.dtype} {out.shape}"
            )
        if self._finish is not None:
            self._finish()  # wait for the rendering without holding the GIL
        self.fbo.read_into(self._raw, components=3, alignment=1)
        np.copyto(out, self._raw[::-1])
        return out

    def release(self) -> None:
        self.fbo.release()
        self._rb.release()
