"""Linux virtual camera through pyvirtualcam + the v4l2loopback kernel module (RGB frames)."""

from __future__ import annotations

import glob
import sys

import numpy as np

INSTALL = 'pip install -e ".[vcam]"'
MODULE_HINT = (
    "sudo apt-get install v4l2loopback-dkms && "
    'sudo modprobe v4l2loopback devices=1 exclusive_caps=1 card_label="vj"'
)


def _loopback_devices() -> list[str]:
    out = []
    for dev in sorted(glob.glob("/dev/video*")):
        name = f"/sys/class/video4linux/{dev.rsplit('/', 1)[1]}/name"
        try:
            with open(name, encoding="utf-8") as f:
                label = f.read().strip()
        except OSError:
            label = ""
        if "loopback" in label.lower() or label.lower().startswith("vj"):
            out.append(dev)
    return out


class VcamSink:
    kind = "vcam"
    components = 3

    @staticmethod
    def unavailable() -> str | None:
        try:
            import pyvirtualcam  # noqa: F401
        except ImportError as exc:
            return f"virtual camera needs pyvirtualcam ({exc}): {INSTALL}"
        if sys.platform.startswith("linux") and not _loopback_devices():
            return f"virtual camera: no v4l2loopback device in /dev/video*: {MODULE_HINT}"
        return None

    def __init__(self, name: str, width: int, height: int, fps: float) -> None:
        self.size, self.fps = (width, height), fps
        self._open()

    def _open(self) -> None:
        import pyvirtualcam

        w, h = self.size
        try:
            self._cam = pyvirtualcam.Camera(w, h, self.fps, fmt=pyvirtualcam.PixelFormat.RGB)
        except RuntimeError as exc:
            from vj.render.outputs.sender import OutputUnavailable

            raise OutputUnavailable(f"virtual camera: {exc}; {MODULE_HINT}") from None
        self.device = self._cam.device

    def send(self, rgb: np.ndarray) -> None:
        self._cam.send(rgb)

    def reopen(self) -> None:
        self.close()
        self._open()

    def close(self) -> None:
        self._cam.close()
