"""Live driver: the Show on the wall clock — audio thread → Show → generator thread → render loop.

Audio blocks are analysed in the audio callback and handed to the Show; every controller write
(MIDI, OSC, keys) reaches it as a timestamped event through the registry bridge; Link and MIDI
clock are sampled into tempo events. The generator thread ticks the Show and renders each
deck; the render loop (main thread, GL context) composites the newest frames with the Show's
compositor controls, run on to display time. No thread waits on another's slow work.
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
from vj.show.frame import DECKS, CompositorControls, ControlEvent, ShowFrame
from vj.show.show import compositor_at
from vj.slot import LatestSlot
from vj.tempo import TapTempo, TempoArbiter

TEMPO_RESYNC_BEATS = 0.02  # an external source further than this from the Show's view: re-anchor


@dataclass(frozen=True)
class GenFrame:
    """A finished generator tick, handed to the render thread."""

    index: int
    rgba: object  # deck A's picture: [H, W, 4] uint8 numpy (CPU) or CUDA tensor
    t_ready_ns: int
    features: AudioFeatures
    show: ShowFrame | None = None
    pictures: tuple[tuple[str, object], ...] = ()  # (deck, rgba) for each deck made this tick
    # The pictures are the engines' own ring buffers (no copy): valid until their slot is
    # reused; the display reads them through the decks' FrameExchanges, a hook copies them.


@dataclass(frozen=True)
class AudioInput:
    """What the audio thread is built from: `source_factory(on_block)` gives a source with
    start()/stop() (LiveSource, PlaybackSource); `extractor` analyses its blocks (the Show's:
    pass None to use the one the wiring builds)."""

    source_factory: Callable
    extractor: object | None = None  # vj.audio.stream.FeatureExtractor


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
    seed: int | None = 0  # deck A's; None = the preset's
    checkpoint: str | None = "default"  # deck A's; None = the preset's
    deck_b: str | None = None  # checkpoint for deck B (None = one deck)
    decks_every: tuple[int, ...] | None = None  # deck i generated every n-th tick; None: auto
    device: str = "auto"  # used when `engine` is None
    engine: object | None = None  # vj.gan.options.EngineSpec (flags over preset); None: device
    gen_threads: int | None = 1  # torch threads on CPU; 1 leaves a core to audio + render
    record: str | None = None  # headless: write the composited output to this MP4
    # test/profiling hook on the generator thread; GenFrame's pictures are engine buffers: copy
    on_frame: Callable[[GenFrame], None] | None = None
    on_display: Callable[[np.ndarray, int], None] | None = None  # headless readback hook
    extra_hud: list[Callable[[], str]] = field(default_factory=list)
    learn: object | None = None  # vj.control.learn.LearnSession: MIDI learn from the keyboard


class _ShowSlot:
    """The audio thread's output: each block's features go to the Show, the newest to the HUD."""

    def __init__(self, show, latest: LatestSlot) -> None:
        self._show, self._latest = show, latest

    def publish(self, f: AudioFeatures) -> None:
        self._show.features(f)
        self._latest.publish(f)


class ExternalTempo:
    """Samples Link / MIDI clock and turns what they say into `tempo` events for the Show.

    An event goes out only when the source starts, stops, changes BPM or drifts more than
    TEMPO_RESYNC_BEATS from where the Show's copy has it, so a recorded log stays small and
    replays the same beats.
    """

    def __init__(self, sources: dict[str, object], sink: Callable[[ControlEvent], None]) -> None:
        self._sources = sources  # event source name ("link", "clock") → TempoSource
        self._sink = sink
        self._seen: dict[str, tuple[float, int, float] | None] = dict.fromkeys(sources)

    def poll(self, t_ns: int) -> None:
        for name, src in self._sources.items():
            st = src.state(t_ns)
            seen = self._seen[name]
            if st is None:
                if seen is not None:
                    self._sink(ControlEvent(t_ns, name, "tempo.stop", 0.0))
                    self._seen[name] = None
                continue
            pos = st.beat_count + st.beat_phase
            if seen is not None:
                bpm, t0, pos0 = seen
                predicted = pos0 + (t_ns - t0) * bpm / 60e9
                if abs(bpm - st.bpm) < 1e-3 and abs(predicted - pos) < TEMPO_RESYNC_BEATS:
                    continue
            self._sink(ControlEvent(t_ns, name, "tempo", float(st.bpm)))
            self._sink(ControlEvent(t_ns, name, "tempo.beat", float(pos)))
            self._seen[name] = (float(st.bpm), t_ns, pos)


class GeneratorThread(threading.Thread):
    """Tick the Show, render each deck due this tick, publish the pictures.

    Paced by `pacer` (vj.gan.pacing.FramePacer: no faster than the display, an idle rate while
    the audio has no news) instead of free-running; without one it runs flat out (benchmarks).
    Each deck renders into a slot of its FrameExchange and publishes that slot: no copy.
    """

    def __init__(
        self,
        show,
        engines: list,
        frames: LatestSlot,
        stamps: StampLog,
        on_frame=None,
        clock: Callable[[], int] = now_ns,
        decks_every: tuple[int, ...] = (1, 1),
        tempo: ExternalTempo | None = None,
        pacer=None,
        exchanges: list | None = None,
    ) -> None:
        from vj.gan.pacing import FrameExchange

        super().__init__(name="vj-generator", daemon=True)
        self.show, self._engines, self._frames = show, engines, frames
        self._stamps, self._on_frame = stamps, on_frame
        self._clock = clock
        self._every = decks_every
        self._tempo = tempo
        self._names = DECKS[: len(engines)]
        self.pacer = pacer
        # one exchange per deck, over its engine's ring (deck B may run every n-th tick)
        self.exchanges = exchanges or [FrameExchange(e.n_buffers) for e in engines]
        self._halt = threading.Event()
        self.error: BaseException | None = None
        self.frame_times = np.zeros(64, np.int64)  # ring of finish times, for the HUD's gen fps
        self.count = 0

    def run(self) -> None:
        try:
            while not self._halt.is_set() and (self.pacer is None or self.pacer.wait()):
                self.tick()
        except BaseException as exc:  # surfaced by the render loop, which owns the process
            self.error = exc

    def tick(self) -> GenFrame:
        """One tick at the clock's now (tests call this directly with a virtual clock)."""
        k = self.count
        t_start = self._clock()
        if self._tempo is not None:
            self._tempo.poll(t_start)
        want = [
            n
            for i, n in enumerate(self._names)
            if k % max(self._every[i] if i < len(self._every) else 1, 1) == 0
        ]
        fr = self.show.frame(t_start, want)
        if self.pacer is not None:
            self.pacer.started()  # after reading the inputs: news from now on is for the next
        feats = fr.features
        self._stamps.stamp(k, "capture", feats.t_capture_ns or t_start)
        self._stamps.stamp(k, "features", feats.t_publish_ns or t_start)
        self._stamps.stamp(k, "gen_start", t_start)
        made = []  # (deck index, slot, engine Frame)
        for dc in fr.decks:
            d = DECKS.index(dc.deck)
            # a slot the display neither holds nor has waiting: nothing shown is rewritten
            slot = self.exchanges[d].acquire()
            made.append((d, slot, self._engines[d].render_async(dc, slot=slot)))
        t_end = self._clock()
        self._stamps.stamp(k, "gen_end", t_end)
        pics = tuple((DECKS[d], f.rgba) for d, _, f in made)
        rgba_a = next((r for d, r in pics if d == "A"), None)
        item = GenFrame(k, rgba_a, t_end, feats, fr, pics)
        for d, slot, f in made:
            self.exchanges[d].publish(slot, (f, item))
        self._frames.publish(item)
        self.frame_times[k % len(self.frame_times)] = t_end
        self.count = k + 1
        if self._on_frame is not None:
            self._on_frame(item)
        return item

    def stop(self) -> None:
        self._halt.set()
        if self.pacer is not None:
            self.pacer.close()

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
    """Owns the threads around one Show. `run()` blocks on the render loop until closed.

    `tap` / `arbiter` are accepted for compatibility and ignored: taps reach the Show as
    events and the Show holds the tempo arbiter (`app.show.arbiter`). `tempo_sources` maps an
    event source name ("link", "clock") to an external TempoSource sampled into events.
    """

    def __init__(
        self,
        registry: ParamRegistry,
        audio_input: AudioInput | None,
        options: LiveOptions,
        G=None,
        tap: TapTempo | None = None,
        arbiter: TempoArbiter | None = None,
        preset=None,
        tempo_sources: dict[str, object] | None = None,
        clock: Callable[[], int] = now_ns,
    ) -> None:
        from vj.audio.stream import AudioInputThread
        from vj.show.wiring import (
            DeckSpec,
            RegistryBridge,
            build_engine,
            build_show,
            deck_specs,
            load_generator,
        )

        del tap, arbiter  # the Show's own (see the class docstring)
        self.registry = registry
        self.options = options
        self.clock = clock
        self.stamps = StampLog()
        self.features: LatestSlot[AudioFeatures] = LatestSlot(SILENCE)
        self.frames: LatestSlot[GenFrame] = LatestSlot()
        if options.gen_threads:
            import torch

            torch.set_num_threads(options.gen_threads)
        if preset is not None:
            specs = deck_specs(preset, options.checkpoint, options.seed, options.deck_b)
        else:
            specs = [DeckSpec(options.checkpoint or "default", options.seed or 0)]
            if options.deck_b:
                specs.append(DeckSpec(options.deck_b, specs[0].seed + 1))
        gens = [
            G if (G is not None and i == 0) else load_generator(s.checkpoint)
            for i, s in enumerate(specs)
        ]
        # one engine per deck, as the flags / preset ask (fallbacks told); each copies its G
        spec = options.engine
        if spec is None:
            from vj.gan.options import spec_from

            dev = None if options.device == "auto" else options.device
            spec = spec_from(None, getattr(preset, "generator", None), device=dev)
        built = [build_engine(g, spec, threads=options.gen_threads) for g in gens]
        self.engines = [e for e, _ in built]
        self.engine_descriptions = [d for _, d in built]  # the engines actually running
        self.engine = self.engines[0]
        extractor = getattr(audio_input, "extractor", None)
        sr = extractor.sample_rate if extractor is not None else 48000
        self.show = build_show(
            preset if preset is not None else _LivePreset(options, extractor),
            registry,
            gens,
            specs,
            sample_rate=sr,
            effect=options.effect,
            clock=clock,
        )
        if extractor is not None:
            self.show.extractor = extractor  # the caller's analysis settings (channel, hop)
        self.bridge = RegistryBridge(registry, self.show.event, clock)
        self.audio = (
            None
            if audio_input is None
            else AudioInputThread(
                audio_input.source_factory,
                self.show.extractor,
                _ShowSlot(self.show, self.features),
                self.stamps,
            )
        )
        every = options.decks_every
        if every is None:  # a CPU runs the second deck at half rate (docs/benchmarks.md)
            on_cpu = str(getattr(self.engine, "device", "cpu")).startswith("cpu")
            every = (1, 2) if on_cpu else (1, 1)
        from vj.gan.pacing import FramePacer

        # the generator runs at the display's measured rate, at an idle rate without audio news
        self.pacer = FramePacer(options.fps, news=lambda: self.features.version)  # wall clock
        self.gen = GeneratorThread(
            self.show,
            self.engines,
            self.frames,
            self.stamps,
            options.on_frame,
            clock,
            tuple(every),
            ExternalTempo(tempo_sources, self.show.event) if tempo_sources else None,
            pacer=self.pacer,
        )
        self._upload = "upload none"  # how frames reach the GL textures (the compositor says)
        self.display_fps = FpsMeter()
        self._next_reload_ns = 0
        self._want_effect: str | None = None  # set from controller threads, applied by render
        self._chain_seen: str | None = None  # the master effect the last ShowFrame asked for
        self._bad_effects: set[str] = set()
        self._shown = -1
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
            self.bridge.close()
        if self.gen.error is not None:
            raise RuntimeError(f"generator thread failed: {self.gen.error!r}") from self.gen.error

    def request_effect(self, name: str) -> None:
        """Switch the master effect (any thread): shown at the next display frame, and an
        `effect` event for the Show so the session log has it."""
        self._want_effect = name
        self.show.event(ControlEvent(self.clock(), "app", "effect", name))

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
        from vj.render.record import VideoWriter

        o = self.options
        ctx = create_headless_context()
        target = OffscreenTarget(ctx, o.width, o.height)
        comp = Compositor(ctx, o.width, o.height, effect=o.effect)
        rgb = np.empty((o.height, o.width, 3), np.uint8)
        writer = VideoWriter(o.record, o.width, o.height, int(round(o.fps))) if o.record else None
        period = int(1e9 / o.fps)
        t_next = now_ns()
        t_end = None if o.duration is None else t_next + int(o.duration * 1e9)

        t_rec0 = now_ns()
        written = 0
        max_frames = None if o.duration is None else int(round(o.duration * o.fps))

        def swap() -> int:
            nonlocal written
            target.read_rgb(rgb)  # the readback is the offscreen "swap": pixels exist now
            t = now_ns()
            if writer is not None:
                # The recording keeps wall-clock time: when the loop runs slower than the
                # nominal fps, this picture stays on screen for several output frames.
                due = int(np.ceil((t - t_rec0) * o.fps / 1e9))
                if max_frames is not None:  # a late last frame must not run past --duration
                    due = min(due, max_frames)
                if due > written:
                    writer.write(rgb, hold=due - written)
                    written = due
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
            # Ctrl-C, a failed frame, the end: the recording so far is finalised, not dropped
            if writer is not None:
                try:
                    writer.close()
                except Exception:
                    writer.abort()
                    raise
            ctx.release()

    def _frame(self, comp, fbo, swap) -> None:
        if self.gen.error is not None:
            raise RuntimeError(f"generator thread failed: {self.gen.error!r}") from self.gen.error
        item = self.frames.take()
        fr = item.show if item is not None else None
        want, self._want_effect = self._want_effect, None
        chain = fr.compositor.chains["master"][0] if fr is not None and fr.compositor else None
        if chain is not None and chain != self._chain_seen:
            self._chain_seen = chain
            want = want or (chain if chain != comp.effect else None)
        if want is not None and want not in self._bad_effects:
            try:
                comp.set_effect(want)
            except ValueError as exc:  # an unknown effect is reported once; the show goes on
                self._bad_effects.add(want)
                warn(str(exc))
        if self._reload_due():  # hot reload: edits in shaders/ show up while playing
            for line in comp.reload_shaders():
                warn(line)
        for err in self.show.drain_errors():
            warn(err)
        t = now_ns()
        self._submit_decks(comp, t)
        if fr is not None and fr.compositor is not None:
            # the display runs on between generator ticks: LFOs and pulse at display time
            # (on the Show's own clock; a virtual one in tests shows the tick's time)
            cc = compositor_at(fr, t if self.clock is now_ns else fr.t_ns)
        else:
            cc = CompositorControls(params=self.registry.snapshot())
        comp.draw(fbo, t, cc, None, self._hud_lines(item) if cc.hud else None)
        if item is not None:
            self.stamps.stamp(item.index, "composite")
        t_swap = swap()
        if item is not None:
            self.stamps.stamp(item.index, "swap", t_swap)
        self.display_fps.tick(t_swap)
        self.pacer.display_swapped(t_swap)  # the generator's pace follows the display's

    def _submit_decks(self, comp, t: int) -> None:
        """Each deck's newest frame, straight from its engine buffer (tensor or array) into
        the compositor, ordered after the engine's event on its stream; the slot is released
        once the upload is queued (a later render into it waits for that on the stream)."""
        for d, ex in enumerate(self.gen.exchanges):
            got = ex.take()
            if got is None:
                continue
            slot, (frame, gi) = got
            try:
                comp.submit_frame(
                    frame.rgba, gi.index, t, stream=frame.stream, event=frame.event, deck=DECKS[d]
                )
            finally:
                ex.release(slot)
            if d == 0:
                self._shown = gi.index
                self.stamps.stamp(gi.index, "upload")
        self._upload = comp.upload_description

    def _reload_due(self) -> bool:
        t = now_ns()
        if t < self._next_reload_ns:
            return False
        self._next_reload_ns = t + 500_000_000  # two mtime checks a second is plenty
        return True

    def _hud_lines(self, item: GenFrame | None) -> list[str]:
        lat = self._latest_latency_ms()
        fr = item.show if item is not None else None
        feats = item.features if item is not None else SILENCE
        tempo = fr.tempo if fr is not None else None
        lines = [
            f"display {self.display_fps.fps():5.1f} fps   generator {self.gen.fps():5.1f} fps",
            f"latency {lat:6.1f} ms (audio -> screen)" if math.isfinite(lat) else "latency   --",
            f"tempo {tempo.source} {tempo.bpm:5.1f} BPM  beat {tempo.beat % 1:4.2f}"
            if tempo is not None
            else f"beat phase {feats.beat_phase:4.2f}",
            f"engine {self.engine_descriptions[0]}   decks {len(self.engines)}   {self._upload}",
        ]
        if fr is not None:
            cue = "" if fr.cue is None else f"  cue {fr.cue + 1}/{len(self.show.cues)}"
            morph = "" if fr.morph >= 1.0 else f"  morph {fr.morph:4.0%}"
            lines.append(f"preset {fr.preset}{cue}{morph}")
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
        k = self._shown
        for idx in (k, k - 1):
            if idx >= 0:
                cap, sw = self.stamps.get(idx, "capture"), self.stamps.get(idx, "swap")
                if cap and sw:
                    return (sw - cap) / 1e6
        return float("nan")

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
        elif key == glfw.KEY_ENTER:
            r.trigger("cue_go", "key")
        elif key == glfw.KEY_RIGHT:
            r.trigger("cue_next", "key")
        elif key == glfw.KEY_LEFT:
            r.trigger("cue_prev", "key")
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


@dataclass(frozen=True)
class _LiveAudio:
    hop: int = 256
    n_bands: int = 8


class _LivePreset:
    """Stand-in for a Preset when LiveApp is built without one (tests, tools)."""

    def __init__(self, options: LiveOptions, extractor) -> None:
        self.name, self.path, self.effect = "default", None, options.effect
        self.seed = options.seed or 0
        self.audio = _LiveAudio(getattr(extractor, "hop", 256), getattr(extractor, "n_bands", 8))
        self.cues = ()


def warn(msg: str) -> None:
    print(f"vj: {msg}", file=sys.stderr, flush=True)
