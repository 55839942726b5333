"""Asynchronous readback of the output framebuffer through two pixel-pack buffers (PBOs).

Frame k's `start` queues the copy into PBO k % 2 and returns at once on a GPU; `collect`
maps the other PBO (frame k − 1, long finished) into a numpy buffer. One frame of latency
for the outputs, no stall of the render loop on the GPU.
"""

from __future__ import annotations

import moderngl
import numpy as np


class AsyncReadback:
    def __init__(self, ctx: moderngl.Context, width: int, height: int, components: int = 4):
        self.size = (int(width), int(height))
        self.components = components
        n = width * height * components
        self._pbos = [ctx.buffer(reserve=n) for _ in range(2)]
        self._i = 0
        self._pending = [False, False]

    def start(self, fbo: moderngl.Framebuffer) -> None:
        """Queue a copy of `fbo`'s colour (its size must be `size`) into the next PBO."""
        self._i ^= 1
        fbo.read_into(self._pbos[self._i], components=self.components, alignment=1)
        self._pending[self._i] = True

    def collect(self, out: np.ndarray) -> bool:
        """Copy the previous frame (GL row order) into `out` [H, W, C]; False if there is none."""
        j = self._i ^ 1
        if not self._pending[j]:
            return False
        self._pbos[j].read_into(out)
        self._pending[j] = False
        return True

    def collect_latest(self, out: np.ndarray) -> bool:
        """Copy the frame just started (waits for it): for screenshots and tests."""
        if not self._pending[self._i]:
            return False
        self._pbos[self._i].read_into(out)
        self._pending[self._i] = False
        return True

    def release(self) -> None:
        for b in self._pbos:
            b.release()
