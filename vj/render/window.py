"""The live output window (glfw): windowed or fullscreen on a chosen monitor, vsync, key hook.

On Linux the GL context is created through EGL (not GLX) so that it can live in the same
process as the headless EGL path; mixing GLX and EGL contexts kills the process.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

import glfw
import moderngl

from vj.clock import now_ns


class WindowError(RuntimeError):
    pass


def _glfw_error() -> str:
    code, desc = glfw.get_error()
    if not code:
        return "unknown glfw error"
    return desc.decode(errors="replace") if isinstance(desc, bytes) else str(desc)


def _init_glfw() -> str | None:
    """glfw.init(); returns the failure reason or None. pyglfw may raise or return False."""
    try:
        ok = glfw.init()
    except Exception as exc:  # glfw.GLFWError when ERROR_REPORTING is 'raise'
        return str(exc)
    return None if ok else _glfw_error()


def display_available() -> str | None:
    """None if a window can be opened here, else the reason why not."""
    if sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    ):
        return "no display: neither DISPLAY nor WAYLAND_DISPLAY is set"
    reason = _init_glfw()
    if reason is not None:
        return f"glfw cannot initialise: {reason}"
    try:
        if not glfw.get_monitors():
            return "glfw found no monitor"
    finally:
        glfw.terminate()
    return None


def monitor_names() -> list[str]:
    """Names of the connected monitors (glfw must be initialised)."""
    return [_name(m) for m in glfw.get_monitors()]


def _name(monitor) -> str:
    n = glfw.get_monitor_name(monitor)
    return n.decode(errors="replace") if isinstance(n, bytes) else str(n)


def _pick_monitor(monitor: int | str | None):
    monitors = glfw.get_monitors()
    if not monitors:
        raise WindowError("glfw found no monitor")
    if monitor is None:
        return glfw.get_primary_monitor() or monitors[0]
    listing = ", ".join(f"{i}: {_name(m)}" for i, m in enumerate(monitors))
    if isinstance(monitor, int) or (isinstance(monitor, str) and monitor.isdigit()):
        i = int(monitor)
        if not 0 <= i < len(monitors):
            raise WindowError(f"monitor index {i} out of range; monitors are {listing}")
        return monitors[i]
    matches = [m for m in monitors if monitor.lower() in _name(m).lower()]
    if not matches:
        raise WindowError(f"no monitor matches {monitor!r}; monitors are {listing}")
    return matches[0]


class Window:
    """A glfw window with a moderngl context; `fbo` is its default framebuffer."""

    def __init__(
        self,
        width: int = 1280,
        height: int = 720,
        fullscreen: bool = False,
        monitor: int | str | None = None,
        vsync: bool = True,
        title: str = "vj",
        context_api: str = "egl" if sys.platform.startswith("linux") else "native",
        share: Window | None = None,
    ) -> None:
        """`share`: another Window whose GL objects (textures, programs, buffers) this one
        uses — one context share group, e.g. the operator window beside the output."""
        self._share = share
        if context_api not in ("egl", "native"):
            raise ValueError(f"context_api {context_api!r}: allowed values are 'egl', 'native'")
        reason = _init_glfw()
        if reason is not None:
            raise WindowError(f"cannot open a window: glfw cannot initialise: {reason}")
        self._win = None
        try:
            self._open(width, height, fullscreen, monitor, vsync, title, context_api)
        except BaseException:
            self.close()
            raise

    def _open(self, width, height, fullscreen, monitor, vsync, title, context_api) -> None:
        mon = _pick_monitor(monitor)
        glfw.default_window_hints()
        glfw.window_hint(glfw.CONTEXT_VERSION_MAJOR, 3)
        glfw.window_hint(glfw.CONTEXT_VERSION_MINOR, 3)
        glfw.window_hint(glfw.OPENGL_PROFILE, glfw.OPENGL_CORE_PROFILE)
        glfw.window_hint(glfw.OPENGL_FORWARD_COMPAT, True)
        glfw.window_hint(glfw.DOUBLEBUFFER, True)
        self._windowed_size = (int(width), int(height))
        if fullscreen:
            mode = glfw.get_video_mode(mon)
            glfw.window_hint(glfw.REFRESH_RATE, mode.refresh_rate)
            args = (mode.size.width, mode.size.height, title, mon, self._share_handle())
        else:
            args = (int(width), int(height), title, None, self._share_handle())
        errors = []
        win = None
        # EGL first where asked (safe beside headless EGL contexts), then the native API
        apis = ("egl", "native") if context_api == "egl" else ("native",)
        if self._share is not None:  # a shared context must use the same API as its partner
            apis = (self._share.context_api,)
        for api in apis:
            glfw.window_hint(
                glfw.CONTEXT_CREATION_API,
                glfw.EGL_CONTEXT_API if api == "egl" else glfw.NATIVE_CONTEXT_API,
            )
            try:
                win = glfw.create_window(*args)
            except Exception as exc:  # pyglfw raises GLFWError when ERROR_REPORTING='raise'
                win, reason = None, str(exc)
            else:
                reason = "" if win else _glfw_error()
            if win:
                self.context_api = api  # "native" = GLX on X11: do not open EGL contexts too
                break
            errors.append(f"{api}: {reason}")
        if not win:
            raise WindowError(f"cannot create an OpenGL 3.3 core window ({'; '.join(errors)})")
        self._win = win
        self.monitor_name = _name(mon)
        if not fullscreen and monitor is not None:
            mx, my = glfw.get_monitor_pos(mon)
            glfw.set_window_pos(win, mx + 32, my + 32)
        glfw.make_context_current(win)
        glfw.swap_interval(1 if vsync else 0)
        self.vsync = bool(vsync)
        self.fullscreen = bool(fullscreen)
        if self._share is not None:
            # The partner's moderngl context object drives this GL context too: textures and
            # programs are shared; VAOs and framebuffers made while this one is current are its
            # own. (glcontext cannot detect a second EGL context through GLX.)
            self.ctx = self._share.ctx
            fw, fh = glfw.get_framebuffer_size(win)
            self.ctx.viewport = (0, 0, fw, fh)  # detect_framebuffer takes its size from here
        else:
            self.ctx = moderngl.create_context(require=330)
        self.fbo = self.ctx.detect_framebuffer()
        self.size = tuple(glfw.get_framebuffer_size(win))
        self.on_key: Callable[[int, int, int], None] | None = None
        self.on_resize: Callable[[int, int], None] | None = None
        glfw.set_key_callback(win, self._key)

    def _share_handle(self):
        return None if self._share is None else self._share._win

    def make_current(self) -> None:
        """Make this window's GL context current (before drawing into it after another)."""
        glfw.make_context_current(self._win)

    def _key(self, _win, key: int, _scancode: int, action: int, mods: int) -> None:
        if self.on_key is not None:
            self.on_key(key, action, mods)

    def _resized(self, size) -> None:
        self.size = size
        self.fbo = self.ctx.detect_framebuffer()
        if self.on_resize is not None:
            self.on_resize(*size)

    def should_close(self) -> bool:
        return self._win is None or bool(glfw.window_should_close(self._win))

    def request_close(self) -> None:
        glfw.set_window_should_close(self._win, True)

    def poll(self) -> None:
        """Handle window events (keys, resize); call once per frame."""
        glfw.poll_events()
        size = tuple(glfw.get_framebuffer_size(self._win))
        if size != self.size and size[0] > 0 and size[1] > 0:
            self._resized(size)

    def swap(self) -> int:
        """Present the frame; returns the clock time (ns) right after the swap."""
        glfw.swap_buffers(self._win)
        return now_ns()

    def set_fullscreen(self, on: bool, monitor: int | str | None = None) -> None:
        """Switch between fullscreen (on `monitor`, default the current one) and windowed."""
        if on == self.fullscreen:
            return
        if on:
            mon = _pick_monitor(monitor)
            mode = glfw.get_video_mode(mon)
            glfw.set_window_monitor(
                self._win, mon, 0, 0, mode.size.width, mode.size.height, mode.refresh_rate
            )
            self.monitor_name = _name(mon)
        else:
            w, h = self._windowed_size
            glfw.set_window_monitor(self._win, None, 32, 32, w, h, 0)
        self.fullscreen = on
        glfw.swap_interval(1 if self.vsync else 0)

    def close(self, terminate: bool = True) -> None:
        """Close the window; `terminate=False` keeps glfw up for the other windows."""
        if self._win is not None:
            ctx = getattr(self, "ctx", None)
            if ctx is not None and self._share is None:  # a shared one is its partner's
                ctx.release()
            glfw.destroy_window(self._win)
            self._win = None
        if terminate:
            glfw.terminate()

    def __enter__(self) -> Window:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
