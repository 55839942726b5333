"""The master output at its own resolution: what the club, NDI, virtual cameras and screenshots see.

The compositor draws into `Stage.fbo` at the output resolution (e.g. 3840×2160 from the
preset), whatever the window size. `Stage.finish_frame(window_fbo)` then shows it fit into the
window (letterboxed, cheap bilinear), draws the HUD over the *window only*, feeds the outputs
(async readback → each sender's own thread) and takes a pending screenshot. With
`hud_on_feed` the HUD is burned into the output itself (everything downstream sees it).
"""

from __future__ import annotations

import sys
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import moderngl
import numpy as np

from vj.render.hud import frame_time_graph
from vj.render.outputs import FrameSender, OutputUnavailable, open_output
from vj.render.outputs.readback import AsyncReadback
from vj.render.png import write_png
from vj.render.upscale import Scaler


@dataclass(frozen=True)
class StageOptions:
    output: tuple[int, int] = (1920, 1080)  # output resolution
    window_fit: str = "fit"  # how the output is shown in the window (fit keeps its aspect)
    outputs: tuple[str, ...] = ()  # ndi, vcam, spout, syphon
    name: str = "vj"  # NDI / Spout / Syphon source name
    fps: float = 60.0
    hud_on_feed: bool = False  # burn the HUD into the output (and so into NDI/recordings)
    screenshot_dir: Path = Path(".")


class Stage:
    def __init__(self, ctx: moderngl.Context, comp, options: StageOptions | None = None):
        options = options or StageOptions()
        self.ctx, self.comp, self.options = ctx, comp, options
        w, h = options.output
        self.size = (int(w), int(h))
        self.tex = ctx.texture(self.size, 4)
        self.tex.filter = (moderngl.LINEAR, moderngl.LINEAR)
        self.fbo = ctx.framebuffer(color_attachments=[self.tex])
        comp.resize(*self.size)
        comp.defer_hud = not options.hud_on_feed
        self._scaler = Scaler(ctx, comp.shader_dir)
        self.warnings: list[str] = []  # outputs that could not open (shown on the HUD)
        self.senders: list[FrameSender] = []
        for kind in options.outputs:
            try:
                self.senders.append(open_output(kind, options.name, w, h, options.fps))
            except OutputUnavailable as exc:  # live: the show goes on without it, said once
                self.warnings.append(str(exc))
                print(f"vj: {exc}", file=sys.stderr)
        self._readback = AsyncReadback(ctx, w, h, 4) if self.senders else None
        self._rgba = np.empty((h, w, 4), np.uint8) if self.senders else None
        self._shot_requested = False
        self.last_screenshot: Path | None = None
        self.frame_ms: deque[float] = deque(maxlen=120)  # display frame times, for the graph
        self._t_last: float | None = None

    # -- per frame -----------------------------------------------------------------------
    def finish_frame(self, window_fbo: moderngl.Framebuffer | None) -> None:
        """After `comp.draw(stage.fbo, ...)`: window view + HUD, outputs, screenshot."""
        t = time.perf_counter()
        if self._t_last is not None:
            self.frame_ms.append((t - self._t_last) * 1e3)
        self._t_last = t
        if window_fbo is not None:
            window_fbo.use()
            window_fbo.clear(0.0, 0.0, 0.0, 1.0)
            self._scaler.draw(self.tex, window_fbo, self.options.window_fit, "bilinear")
            if self.comp.pending_hud:
                graph = frame_time_graph(self.frame_ms)
                self.comp.draw_hud(window_fbo, self.comp.pending_hud, graph)
        if self._readback is not None:
            self._readback.start(self.fbo)
            if self._readback.collect(self._rgba):
                for s in self.senders:
                    s.submit(self._rgba)
        if self._shot_requested:
            self._shot_requested = False
            self.screenshot()

    def request_screenshot(self) -> None:
        """Take a screenshot at the end of this frame (safe from a key callback)."""
        self._shot_requested = True

    def screenshot(self, path: str | Path | None = None) -> Path:
        """PNG of the master output at output resolution (no HUD unless it is on the feed)."""
        w, h = self.size
        rgb = np.frombuffer(self.fbo.read(components=3, alignment=1), np.uint8).reshape(h, w, 3)
        if path is None:
            stamp = time.strftime("%Y%m%d-%H%M%S")
            ms = int(time.time() * 1e3) % 1000
            path = Path(self.options.screenshot_dir) / f"vj-{stamp}-{ms:03d}.png"
        self.last_screenshot = write_png(path, np.ascontiguousarray(rgb[::-1]))
        print(f"vj: screenshot {self.last_screenshot} ({w}x{h})", file=sys.stderr)
        return self.last_screenshot

    def status_lines(self) -> list[str]:
        return [s.status() for s in self.senders] + [f"! {w}" for w in self.warnings]

    def release(self) -> None:
        for s in self.senders:
            s.close()
        if self._readback is not None:
            self._readback.release()
        self._scaler.release()
        self.fbo.release()
        self.tex.release()
