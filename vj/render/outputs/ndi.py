"""NDI output through cyndilib (it bundles the NDI runtime): RGBA frames, named source."""

from __future__ import annotations

from fractions import Fraction

import numpy as np

INSTALL = 'pip install -e ".[ndi]"'


class NdiSink:
    kind = "ndi"
    components = 4

    @staticmethod
    def unavailable() -> str | None:
        try:
            import cyndilib.sender  # noqa: F401
        except ImportError as exc:
            return f"NDI output needs cyndilib ({exc}): {INSTALL}"
        except OSError as exc:  # the bundled NDI runtime failed to load
            return f"NDI runtime failed to load ({exc}): reinstall cyndilib ({INSTALL})"
        return None

    def __init__(self, name: str, width: int, height: int, fps: float) -> None:
        self.name, self.size, self.fps = name, (width, height), fps
        self._open()

    def _open(self) -> None:
        from cyndilib.sender import Sender
        from cyndilib.video_frame import VideoSendFrame
        from cyndilib.wrapper.ndi_structs import FourCC

        w, h = self.size
        vf = VideoSendFrame()
        vf.set_resolution(w, h)
        vf.set_frame_rate(Fraction(self.fps).limit_denominator(1001))
        vf.set_fourcc(FourCC.RGBA)
        self._sender = Sender(self.name)
        self._sender.set_video_frame(vf)
        self._sender.open()

    def connections(self, timeout: float = 0.0) -> int:
        return int(self._sender.get_num_connections(timeout))

    def send(self, rgba: np.ndarray) -> None:
        if not self._sender.write_video(rgba.reshape(-1)):
            raise RuntimeError("NDI sender refused the frame")

    def reopen(self) -> None:
        self.close()
        self._open()

    def close(self) -> None:
        self._sender.close()
