"""Spout (Windows, SpoutGL) and Syphon (macOS, syphon-python) outputs: frames from the readback.

Like NDI, each runs on its FrameSender's own thread and gets the master output as an RGBA
[H, W, 4] uint8 array, top row first: the render thread only copies the readback into the
hand-off. Both libraries are opened lazily on that thread (Spout's hidden GL context is
current only there) and closed there too (`close_on_sender_thread`).

Written against the packages' public APIs (SpoutGL 0.1.1, syphon-python 0.1.1) and tested here
with fake modules only: neither has been run on real Windows / macOS (docs/render.md).
"""

from __future__ import annotations

import sys

import numpy as np

from vj.supervise import StageError

_INFO = {  # kind: (sys.platform, OS, import name, pip name, extra)
    "spout": ("win32", "Windows", "SpoutGL", "SpoutGL", 'pip install -e ".[spout]"'),
    "syphon": ("darwin", "macOS", "syphon", "syphon-python", 'pip install -e ".[syphon]"'),
}


def _platform() -> str:
    return sys.platform  # one place to ask (tests stand in another OS here)


def _unavailable(kind: str) -> str | None:
    platform, os_name, module, pip_name, install = _INFO[kind]
    if _platform() != platform:
        return f"{kind} output exists only on {os_name} (this is {_platform()}); use ndi"
    try:
        __import__(module)
    except ImportError as exc:
        return f"{kind} output needs {pip_name} ({exc}): {install}"
    except Exception as exc:  # a native part failed to load (DLL, Metal / PyObjC bundle)
        return f"{kind} output: {pip_name} failed to load ({type(exc).__name__}: {exc}): {install}"
    return None


class SpoutSink:
    """A Spout sender named `name`: `sendImage` of each RGBA frame (Spout copies it to its
    shared DirectX texture, GPU or CPU share as the machine allows)."""

    kind = "spout"
    components = 4
    close_on_sender_thread = True  # the hidden GL context belongs to the sender thread

    @staticmethod
    def unavailable() -> str | None:
        return _unavailable("spout")

    def __init__(self, name: str, width: int, height: int, fps: float) -> None:
        self.name, self.size, self.fps = name, (int(width), int(height)), fps
        self._sender = None  # opened on the first send, on the sender thread

    def _open(self) -> None:
        import SpoutGL
        from SpoutGL.enums import GL_RGBA

        sender = SpoutGL.SpoutSender()
        # no GL context is current on the sender thread: Spout makes a hidden one here
        # (it returns at once when one is current)
        if not sender.createOpenGL():
            raise StageError("Spout could not create its OpenGL context")
        sender.setSenderName(self.name)
        self._sender, self._format = sender, GL_RGBA

    def send(self, rgba: np.ndarray) -> None:  # [H, W, 4] uint8, top row first, contiguous
        if self._sender is None:
            self._open()
        h, w = rgba.shape[:2]
        if not self._sender.sendImage(rgba, w, h, self._format, False, 0):  # no flip, fbo 0
            raise StageError("Spout sender refused the frame")
        self._sender.setFrameSync(self.name)  # receivers waiting on a new frame wake now

    def reopen(self) -> None:
        self.close()  # the next send opens it again

    def close(self) -> None:
        sender, self._sender = self._sender, None
        if sender is not None:
            sender.releaseSender()
            sender.closeOpenGL()


class SyphonSink:
    """A Syphon Metal server named `name`: each frame is copied into one Metal texture and
    published."""

    kind = "syphon"
    components = 4
    close_on_sender_thread = True

    @staticmethod
    def unavailable() -> str | None:
        return _unavailable("syphon")

    def __init__(self, name: str, width: int, height: int, fps: float) -> None:
        self.name, self.size, self.fps = name, (int(width), int(height)), fps
        self._server = None

    def _open(self) -> None:
        import syphon
        from syphon.utils.numpy import copy_image_to_mtl_texture
        from syphon.utils.raw import create_mtl_texture

        server = syphon.SyphonMetalServer(self.name)
        w, h = self.size
        self._texture = create_mtl_texture(server.device, w, h)  # RGBA8Unorm
        self._copy = copy_image_to_mtl_texture
        self._server = server

    def send(self, rgba: np.ndarray) -> None:  # [H, W, 4] uint8, top row first
        if self._server is None:
            self._open()
        self._copy(rgba, self._texture)  # Metal's origin is the top-left: no flip
        self._server.publish_frame_texture(self._texture, is_flipped=False)

    def reopen(self) -> None:
        self.close()

    def close(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.stop()


def texture_share_sink(kind: str):
    """The sink class for "spout" or "syphon"."""
    return {"spout": SpoutSink, "syphon": SyphonSink}[kind]
