"""The live instrument: audio thread → generator thread → render loop (main thread, GL context).

No thread waits on another's slow work: features and frames pass through latest-value slots,
controllers only write to the parameter registry, and every stage stamps the one clock.
"""

from __future__ import annotations

import gc
import math
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from vj.audio.features import SILENCE, AudioFeatures
from vj.clock import StampLog, now_ns, stage_latencies_ms
from vj.params import ParamRegistry
from vj.react.beat_sync import BeatSync
from vj.slot import LatestSlot
from vj.tempo import TapTempo, TempoArbiter


@dataclass(frozen=True)
class GenFrame:
    """A finished generator frame, handed to the render thread."""

    index: int
    rgba: object  # [H, W, 4] uint8 numpy (CPU) or CUDA tensor
    t_ready_ns: int
    features: AudioFeatures


@dataclass(frozen=True)
class AudioInput:
    """What the audio thread is built from: `source_factory(on_block)` gives a source with
    start()/stop() (LiveSource, PlaybackSource); `extractor` analyses its blocks."""

    source_factory: Callable
    extractor: object  # vj.audio.stream.FeatureExtractor


@dataclass
class LiveOptions:
    width: int = 1280
    height: int = 720
    fps: float = 60.0  # pacing for headless runs; a window is paced by vsync
    headless: bool = False
    fullscreen: bool = False
    monitor: int | str | None = None
    vsync: bool = True
    duration: float | None = None  # seconds, None = until the window closes / Ctrl-C
    effect: str = "default"
    seed: int = 0
    checkpoint: str = "default"
    device: str = "auto"
    gen_threads: int | None = 1  # torch threads on CPU; 1 leaves a core to audio + render
    record: str | None = None  # headless: write the composited output to this MP4
    on_frame: Callable[[GenFrame], None] | None = None  # test/profiling hook (generator thread)
    on_display: Callable[[np.ndarray, int], None] | None = None  # headless readback hook
    on_audio: Callable[[np.ndarray, int], None] | None = None  # audio-thread block hook
    probe: bool = False  # draw the profiler's latency marker (the shown frame's onset count)
    backend: str = "torch"  # generator engine: vj.gan.engine.BACKENDS
    extra_hud: list[Callable[[], str]] = field(default_factory=list)
    learn: object | None = None  # vj.control.learn.LearnSession: MIDI learn from the keyboard


class GeneratorThread(threading.Thread):
    """newest features + params → modulation → generator → publish the frame."""

    def __init__(
        self,
        engine,
        modulator,
        features: LatestSlot,
        registry: ParamRegistry,
        frames: LatestSlot,
        stamps: StampLog,
        on_frame=None,
        beat_sync=None,
    ) -> None:
        super().__init__(name="vj-generator", daemon=True)
        self._engine, self._mod = engine, modulator
        self._beat_sync = beat_sync
        self._features, self._registry, self._frames = features, registry, frames
        self._stamps, self._on_frame = stamps, on_frame
        self._halt = threading.Event()
        self.error: BaseException | None = None
        self.frame_times = np.zeros(64, np.int64)  # ring of finish times, for the HUD's gen fps
        self.count = 0

    def run(self) -> None:
        t0 = now_ns()
        try:
            while not self._halt.is_set():
                k = self.count
                feats = self._features.take() or SILENCE
                t_start = now_ns()
                self._stamps.stamp(k, "capture", feats.t_capture_ns or t_start)
                self._stamps.stamp(k, "features", feats.t_publish_ns or t_start)
                self._stamps.stamp(k, "gen_start", t_start)
                params = self._registry.snapshot()
                if self._beat_sync is not None:
                    params = self._beat_sync.for_generator(params, t_start)
                controls = self._mod.step(feats, params, (t_start - t0) / 1e9)
                frame = self._engine.render(controls)
                # The engine reuses its n output buffers; a slow display (software GL takes
                # 30-100 ms a frame) can still be uploading this one when the ring wraps, so the
                # published frame is a copy (256 KB at 256², far below a frame's other costs).
                rgba = (
                    frame.rgba.copy() if isinstance(frame.rgba, np.ndarray) else frame.rgba.clone()
                )
                t_end = now_ns()
                self._stamps.stamp(k, "gen_end", t_end)
                item = GenFrame(k, rgba, t_end, feats)
                self._frames.publish(item)
                self.frame_times[k % len(self.frame_times)] = t_end
                self.count = k + 1
                if self._on_frame is not None:
                    self._on_frame(item)
        except BaseException as exc:  # surfaced by the render loop, which owns the process
            self.error = exc

    def stop(self) -> None:
        self._halt.set()

    def fps(self) -> float:
        n = min(self.count, len(self.frame_times))
        if n < 2:
            return 0.0
        t = np.sort(self.frame_times[:n]) if self.count > n else self.frame_times[:n]
        span = t[-1] - t[0]
        return 0.0 if span <= 0 else (n - 1) * 1e9 / span


class FpsMeter:
    """Display fps over the last frames (ring of swap times, no allocation per frame)."""

    def __init__(self, n: int = 120) -> None:
        self._t = np.zeros(n, np.int64)
        self._i = 0

    def tick(self, t_ns: int) -> None:
        self._t[self._i % len(self._t)] = t_ns
        self._i += 1

    def fps(self) -> float:
        n = min(self._i, len(self._t))
        if n < 2:
            return 0.0
        newest = self._t[(self._i - 1) % len(self._t)]
        oldest = self._t[(self._i - n) % len(self._t)]
        return 0.0 if newest <= oldest else (n - 1) * 1e9 / (newest - oldest)


class LiveApp:
    """Owns the three threads. `run()` blocks on the render loop until closed or timed out."""

    def __init__(
        self,
        registry: ParamRegistry,
        audio_input: AudioInput | None,
        options: LiveOptions,
        G=None,
        tap: TapTempo | None = None,
        arbiter: TempoArbiter | None = None,
    ) -> None:
        from vj.audio.stream import AudioInputThread
        from vj.gan.checkpoint import load_checkpoint_or_default
        from vj.gan.engine import Engine
        from vj.react.modulation import Modulator

        self.registry = registry
        self.options = options
        self.stamps = StampLog()
        self.features: LatestSlot[AudioFeatures] = LatestSlot(SILENCE)
        self.frames: LatestSlot[GenFrame] = LatestSlot()
        self.tap = tap or TapTempo()
        self.arbiter = arbiter if arbiter is not None else TempoArbiter([self.tap])
        # (block, t_end_ns) listeners on the audio thread: the recorder, the profiler
        self.audio_taps: list[Callable[[np.ndarray, int], None]] = []
        if options.on_audio is not None:
            self.audio_taps.append(options.on_audio)
        self.audio = (
            None
            if audio_input is None
            else AudioInputThread(
                _tapped(audio_input.source_factory, self.audio_taps),
                audio_input.extractor,
                self.features,
                self.stamps,
            )
        )
        if options.gen_threads:
            import torch

            torch.set_num_threads(options.gen_threads)
        G = G if G is not None else load_checkpoint_or_default(options.checkpoint)[0]
        if options.backend == "torch":
            self.engine = Engine(G, device=options.device)
        else:
            from vj.gan.engine import make_engine

            self.engine = make_engine(G, options.backend)
        self.beat_sync = BeatSync(self.arbiter, registry.get("next_keyframe"))
        self.gen = GeneratorThread(
            self.engine,
            Modulator(G, seed=options.seed),
            self.features,
            registry,
            self.frames,
            self.stamps,
            options.on_frame,
            self.beat_sync,
        )
        self.display_fps = FpsMeter()
        self._last_tap = registry.get("tap")
        self._last_fx = registry.get("fx_next")
        self._next_reload_ns = 0
        self._want_effect: str | None = None  # set from controller threads, applied by render
        self._stop = threading.Event()

    # -- lifecycle ------------------------------------------------------------------------
    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        # The audio callback needs the GIL every 5 ms: switch threads more often than the 5 ms
        # default, and keep start-up garbage out of the collector so a full pass cannot land
        # in the callback. Both are process-wide; the live app owns the process.
        sys.setswitchinterval(0.0005)
        gc.collect()
        gc.freeze()
        if self.audio is not None:
            self.audio.start()
        self.gen.start()
        try:
            if self.options.headless:
                self._run_headless()
            else:
                self._run_window()
        finally:
            self.gen.stop()
            self.gen.join(timeout=5)
            if self.audio is not None:
                self.audio.stop()
        if self.gen.error is not None:
            raise RuntimeError(f"generator thread failed: {self.gen.error!r}") from self.gen.error

    def request_effect(self, name: str) -> None:
        """Switch the effect shader at the next display frame (any thread may ask)."""
        self._want_effect = name

    def latency_report(self) -> dict[str, np.ndarray]:
        return stage_latencies_ms(self.stamps.rows())

    # -- render loops ---------------------------------------------------------------------
    def _run_window(self) -> None:
        from vj.render.compositor import Compositor
        from vj.render.window import Window

        o = self.options
        win = Window(o.width, o.height, fullscreen=o.fullscreen, monitor=o.monitor, vsync=o.vsync)
        win.on_key = self._on_key
        w, h = win.size
        comp = Compositor(win.ctx, w, h, effect=o.effect)
        t_end = None if o.duration is None else now_ns() + int(o.duration * 1e9)
        try:
            while not win.should_close() and not self._stop.is_set():
                win.poll()
                if (w, h) != tuple(win.size):  # window resized or went fullscreen
                    w, h = win.size
                    comp.resize(w, h)
                self._frame(comp, win.fbo, swap=win.swap)
                if t_end is not None and now_ns() >= t_end:
                    break
        finally:
            win.close()

    def _run_headless(self) -> None:
        from vj.render.compositor import Compositor
        from vj.render.offscreen import OffscreenTarget, create_headless_context

        o = self.options
        ctx = create_headless_context()
        target = OffscreenTarget(ctx, o.width, o.height)
        comp = Compositor(ctx, o.width, o.height, effect=o.effect)
        rgb = np.empty((o.height, o.width, 3), np.uint8)
        writer = self._start_recorder() if o.record else None
        period = int(1e9 / o.fps)
        t_next = now_ns()
        t_end = None if o.duration is None else t_next + int(o.duration * 1e9)

        def swap() -> int:
            target.read_rgb(rgb)  # the readback is the offscreen "swap": pixels exist now
            t = now_ns()
            if writer is not None and (t_end is None or t < t_end):
                writer.push_frame(rgb, t)  # a copy into the encoder's queue; never blocks
            if o.on_display is not None:
                o.on_display(rgb, t)
            return t

        try:
            while not self._stop.is_set() and (t_end is None or now_ns() < t_end):
                self._frame(comp, target.fbo, swap=swap)
                t_next += period
                delay = t_next - now_ns()
                if delay > 0:
                    time.sleep(delay / 1e9)
                else:
                    t_next = now_ns()  # late: do not try to catch up with a burst
        finally:
            # Ctrl-C, a failed stage or the end: the recording is finalised, never thrown away
            if writer is not None:  # --duration: the file is exactly that long
                ended = t_end is not None and now_ns() >= t_end
                self._finish_recorder(writer, t_end if ended else None)
            ctx.release()

    def _start_recorder(self):
        from vj.render.live_record import LiveRecorder

        o = self.options
        sr = self.audio.sample_rate if self.audio is not None else None
        rec = LiveRecorder(o.record, o.width, o.height, o.fps, sample_rate=sr)
        rec.start()
        self.audio_taps.append(rec.push_audio)
        return rec

    def _finish_recorder(self, rec, t_stop_ns: int | None = None) -> None:
        self.audio_taps.remove(rec.push_audio)
        self.gen.stop()  # its frames are no longer shown: give the encoder the CPU
        path = rec.close(t_stop_ns=t_stop_ns)
        s = rec.stats()
        if path is None:
            warn(f"recording {rec.path} failed: {rec.error}")
        else:
            warn(
                f"recorded {path} ({s['frames_written']} frames at {rec.fps:g} fps CFR: "
                f"{s['repeated']} repeated, {s['dropped'] + s['queue_full']} dropped; "
                f"{s['audio_samples'] / max(rec.sample_rate, 1):.1f} s audio)"
            )

    def _frame(self, comp, fbo, swap) -> None:
        if self.gen.error is not None:
            raise RuntimeError(f"generator thread failed: {self.gen.error!r}") from self.gen.error
        tap = self.registry.get("tap")
        if tap != self._last_tap:  # taps from MIDI/OSC/keys arrive through the registry
            self._last_tap = tap
            self.tap.tap()
        want, self._want_effect = self._want_effect, None
        if want is not None:
            try:
                comp.set_effect(want)
            except ValueError as exc:  # an unknown effect is reported; the show goes on
                warn(str(exc))
        fx = self.registry.get("fx_next")
        if fx != self._last_fx:
            self._last_fx = fx
            comp.cycle_effect()
        if self._reload_due():  # hot reload: edits in shaders/ show up while playing
            for line in comp.reload_shaders():
                warn(line)
        item = self.frames.take()
        t = now_ns()
        if item is not None and item.index != getattr(self, "_shown", -1):
            self._shown = item.index
            comp.submit_frame(_host_rgba(item.rgba), item.index, t)
            self.stamps.stamp(item.index, "upload")
        params = self.beat_sync.for_render(self.registry.snapshot(), t)
        feats = self.features.take()
        comp.draw(fbo, t, params, feats, self._hud_lines(feats) if params.get("hud", 0) else None)
        if self.options.probe:
            self._draw_probe(comp, fbo, item)
        if item is not None:
            self.stamps.stamp(item.index, "composite")
        t_swap = swap()
        if item is not None:
            self.stamps.stamp(item.index, "swap", t_swap)
            cap = self.stamps.get(item.index, "capture")
            if cap and self.stamps.get(item.index, "swap") == t_swap:  # its first display
                self._last_latency_ms = (t_swap - cap) / 1e6
        self.display_fps.tick(t_swap)

    def _draw_probe(self, comp, fbo, item) -> None:
        from vj.profile.probe import level

        if item is not None and item.index == self._shown:
            self._probe_count = item.features.onset_count  # the count the picture carries
        comp.draw_probe(fbo, level(getattr(self, "_probe_count", 0)))

    def _reload_due(self) -> bool:
        t = now_ns()
        if t < self._next_reload_ns:
            return False
        self._next_reload_ns = t + 500_000_000  # two mtime checks a second is plenty
        return True

    def _hud_lines(self, feats: AudioFeatures | None) -> list[str]:
        lat = self._latest_latency_ms()
        feats = feats or SILENCE
        lines = [
            f"display {self.display_fps.fps():5.1f} fps   generator {self.gen.fps():5.1f} fps",
            f"latency {lat:6.1f} ms (audio -> screen)" if math.isfinite(lat) else "latency   --",
            f"beat phase {feats.beat_phase:4.2f}  bar {feats.bar_position:4.2f}",
            f"backend {getattr(self.engine, 'backend', '?')}",
        ]
        if self.audio is not None:
            lines.append(
                f"audio overruns {getattr(self.audio, 'overruns', 0)}"
                f"  analysis late {getattr(self.audio, 'analysis_overruns', 0)}"
            )
        lines += [f() for f in self.options.extra_hud]
        if self.options.learn is not None:
            lines.append(str(self.options.learn.status))
        return lines

    def _latest_latency_ms(self) -> float:
        # the newest frame that reached the screen; the one being drawn has no swap yet, and
        # the one before it may never have been shown (that gave "--" most of the time)
        return getattr(self, "_last_latency_ms", float("nan"))

    # -- keyboard -------------------------------------------------------------------------
    def _on_key(self, key: int, action: int, mods: int) -> None:
        import glfw

        if action != glfw.PRESS:
            return
        r = self.registry
        if key == glfw.KEY_ESCAPE:
            self.stop()
        elif key == glfw.KEY_SPACE:
            r.trigger("next_keyframe", "key")
        elif key == glfw.KEY_T:
            r.trigger("tap", "key")
        elif key == glfw.KEY_H:
            r.set("hud", 1.0 - r.get("hud"), "key")
        elif key == glfw.KEY_E:
            r.trigger("fx_next", "key")
        elif key == glfw.KEY_0:
            r.reset(source="key")
        elif self.options.learn is not None and key in (
            glfw.KEY_LEFT_BRACKET,
            glfw.KEY_RIGHT_BRACKET,
            glfw.KEY_L,
        ):
            learn = self.options.learn  # [ ] pick a parameter, L: the next control moved binds
            if key == glfw.KEY_LEFT_BRACKET:
                learn.select_prev()
            elif key == glfw.KEY_RIGHT_BRACKET:
                learn.select_next()
            else:
                learn.start()


def _tapped(factory: Callable, taps: list) -> Callable:
    """A source factory whose blocks also reach every tap in `taps` (read at each block)."""

    def make(on_block):
        def both(block, t_end_ns):
            on_block(block, t_end_ns)
            for tap in taps:
                tap(block, t_end_ns)

        return factory(both)

    return make


def _host_rgba(rgba) -> np.ndarray:
    if isinstance(rgba, np.ndarray):
        return rgba
    return rgba.detach().cpu().numpy()


def warn(msg: str) -> None:
    print(f"vj: {msg}", file=sys.stderr, flush=True)
