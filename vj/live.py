"""Live driver: the Show on the wall clock — audio thread → Show → generator thread → render loop.

Audio blocks are analysed in the audio callback and handed to the Show; every controller write
(MIDI, OSC, keys) reaches it as a timestamped event through the registry bridge; Link and MIDI
clock are sampled into tempo events. The generator thread ticks the Show and renders each
deck; the render loop (main thread, GL context) composites the newest frames with the Show's
compositor controls, run on to display time. No thread waits on another's slow work.
"""

from __future__ import annotations

import gc
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from vj.audio.features import SILENCE, AudioFeatures
from vj.clock import StampLog, now_ns, stage_latencies_ms
from vj.control.activity import MidiActivity
from vj.live_generator import ExternalTempo, GeneratorThread, GenFrame, warn
from vj.params import ParamRegistry
from vj.render.hud import HudStatus, frame_time_graph, status_lines
from vj.show.compositing import compositor_at
from vj.show.frame import DECKS, CompositorControls, ControlEvent
from vj.show.models import engine_label
from vj.slot import LatestSlot
from vj.tempo import TapTempo, TempoArbiter

WARN_HOLD_NS = 10_000_000_000  # a HUD warning (overruns, a restart) stays this long after


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
    on_audio: Callable[[np.ndarray, int], None] | None = None  # audio-thread block hook
    probe: bool = False  # draw the profiler's latency marker (the shown frame's onset count)
    backend: str = "torch"  # generator engine: vj.gan.options.BACKENDS
    extra_hud: list[Callable[[], str]] = field(default_factory=list)
    learn: object | None = None  # vj.control.learn.LearnSession: MIDI learn from the keyboard
    # stage (vj/render/stage.py): output size independent of the window, outputs, operator view
    stage: object | None = None  # vj.render.stage.StageOptions, None = draw to the window
    operator: bool = False  # open the operator window (needs `stage`)
    chains: dict | None = None  # effect chains {"A": (...), "master": (...)}; None: preset's
    fit: str = "fill"  # how a generator frame fills the output (vj/render/fit.py)
    upscale: str = "bicubic"  # bilinear | bicubic | lanczos
    # a preset switch to another checkpoint builds its engine on a worker (the old model plays
    # on meanwhile); False: in the tick that asks, as offline (tests on a virtual clock)
    models_background: bool = True


class _ShowSlot:
    """The audio thread's output: each block's features go to the Show, the newest to the HUD."""

    def __init__(self, show, latest: LatestSlot) -> None:
        self._show, self._latest = show, latest

    def publish(self, f: AudioFeatures) -> None:
        self._show.features(f)
        self._latest.publish(f)


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
            model_bank,
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
            if options.backend != "torch":  # vj profile --backend
                spec = replace(spec, backend=options.backend)
        self._engine_spec = spec  # the supervisor's restart rebuilds the same engines
        built = [build_engine(g, spec, threads=options.gen_threads) for g in gens]
        self.engines = [e for e, _ in built]
        self.engine_descriptions = [d for _, d in built]  # the engines actually running
        self.engine = self.engines[0]
        # a preset switch that names another checkpoint for a deck: its engine is built on a
        # worker thread and the deck plays its old model until the new one is ready
        self.models = model_bank(
            specs,
            gens,
            self.engines,
            lambda g: build_engine(g, spec, threads=options.gen_threads)[0],
            background=options.models_background,
        )
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
            chains=options.chains,
            models=self.models,
        )
        if extractor is not None:
            self.show.extractor = extractor  # the caller's analysis settings (channel, hop)
        self.show.probe = options.probe  # the profiler's marker rides in CompositorControls
        # every ControlEvent the Show receives also reaches these (a session recorder's log)
        self.event_taps: list[Callable[[ControlEvent], None]] = []
        self.bridge = RegistryBridge(registry, self.send_event, clock)
        # (block, t_end_ns) listeners on the audio thread: the recorder, the profiler, a session
        self.audio_taps: list[Callable[[np.ndarray, int], None]] = []
        if options.on_audio is not None:
            self.audio_taps.append(options.on_audio)
        self.audio = (
            None
            if audio_input is None
            else AudioInputThread(
                _tapped(audio_input.source_factory, self.audio_taps),
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
            ExternalTempo(tempo_sources, self.send_event) if tempo_sources else None,
            restart=self._restart_generator,
            pacer=self.pacer,
        )
        self._upload = "upload none"  # how frames reach the GL textures (the compositor says)
        self.display_fps = FpsMeter()
        self.frame_ms: deque[float] = deque(maxlen=120)  # display frame times: the HUD graph
        self._t_swap_last: int | None = None
        self._next_reload_ns = 0
        self._want_effect: str | None = None  # set from controller threads, applied by render
        self._want_chains: dict | None = None  # likewise (request_chains)
        self._bad_effects: set[str] = set()
        self._stage = self._operator = None  # vj.render.stage.Stage / OperatorWindow, if open
        self._recording = None  # vj.render.record_supervisor.SupervisedRecording, headless
        self._last: tuple[GenFrame | None, CompositorControls | None] = (None, None)
        self._shown = -1
        from vj.profile.probe import level

        # the latency probe's grey for the picture on screen (its tick's onset count)
        self._probe = level(0) / 255.0
        self._last_latency_ms = float("nan")
        self.midi = MidiActivity()  # MIDI activity for the HUD (attach_midi, send_event)
        self.hud_lines: list[str] | None = None  # the HUD text of the newest frame (None: off)
        self.compositor = None  # the render loop's, once it runs
        self._overruns = _Growth()
        self._t_restart_ns = 0
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

    def _restart_generator(self) -> None:
        """The supervisor's restart (generator thread): free what the failed tick held, then
        rebuild each deck's engine on its own G (fresh buffers, a fresh CUDA graph)."""
        from vj.show.wiring import build_engine

        self._t_restart_ns = now_ns()  # the HUD warns for WARN_HOLD_NS
        gc.collect()
        on_cuda = any(str(getattr(e, "device", "cpu")).startswith("cuda") for e in self.engines)
        if on_cuda:
            import torch

            torch.cuda.empty_cache()  # after an OOM: hand the failed tick's blocks back
        for i, e in enumerate(self.engines):
            if getattr(e, "G", None) is not None:  # a TensorRT engine has none: kept as is
                self.engines[i] = build_engine(
                    e.G, self._engine_spec, threads=self.options.gen_threads
                )[0]
        self.engine = self.engines[0]
        # and the engines of models a preset switch brought in
        self.models.rebuild_engines(
            lambda g: build_engine(g, self._engine_spec, threads=self.options.gen_threads)[0]
        )

    def attach_midi(self, mapper) -> None:
        """Show a MIDI input's every message on the HUD (a vj.control.mapping.MidiMapper)."""
        mapper.on_message = self.midi.message

    def request_effect(self, name: str) -> None:
        """Switch the master effect (any thread): shown at the next display frame, and an
        `effect` event for the Show so the session log has it."""
        self._want_effect = name
        self.send_event(ControlEvent(self.clock(), "app", "effect", name))

    def send_event(self, ev: ControlEvent) -> None:
        """Give the Show one control event (any thread), and every event tap a copy."""
        self.show.event(ev)
        self.midi.event(ev)  # MIDI activity on the HUD (events from a MIDI mapper only)
        for tap in self.event_taps:
            tap(ev)

    def request_chains(self, chains: dict | None) -> None:
        """Set effect chains ({"A": (...), "master": (...)}) at the next display frame (any
        thread); they hold until the Show's own chains next change (a preset switch, an
        `effect` event, fx_next)."""
        if chains:
            self._want_chains = dict(chains)

    def latency_report(self) -> dict[str, np.ndarray]:
        return stage_latencies_ms(self.stamps.rows())

    # -- render loops ---------------------------------------------------------------------
    def _run_window(self) -> None:
        from vj.render.window import Window

        o = self.options
        win = Window(o.width, o.height, fullscreen=o.fullscreen, monitor=o.monitor, vsync=o.vsync)
        win.on_key = self._on_key
        w, h = win.size
        comp = self._compositor(win.ctx, w, h)
        t_end = None if o.duration is None else now_ns() + int(o.duration * 1e9)
        try:
            staged = self._open_stage(win, comp)  # None, or (target fbo, swap) of the stage
            while not win.should_close() and not self._stop.is_set():
                win.poll()
                if staged is None and (w, h) != tuple(win.size):  # resized / went fullscreen
                    w, h = win.size
                    comp.resize(w, h)
                fbo, swap = staged or (win.fbo, win.swap)
                self._frame(comp, fbo, swap=swap)
                if t_end is not None and now_ns() >= t_end:
                    break
        finally:
            self._close_stage()
            win.close()

    def _compositor(self, ctx, w: int, h: int):
        from vj.render.compositor import Compositor

        o = self.options
        comp = Compositor(ctx, w, h, effect=o.effect, filter=o.upscale, fit=o.fit)
        comp.param_registry = self.registry  # a hot-reloaded effect's new params: MIDI/OSC
        self.compositor = comp  # the render loop's (inspected by tests and tools)
        return comp

    def _open_stage(self, win, comp):
        """Stage hook: output at its own size, outputs, operator window, screenshot key (P)."""
        self._stage = self._operator = None
        if self.options.stage is None:
            return None
        from vj.render.operator import OperatorWindow, operator_lines
        from vj.render.stage import Stage

        stage = self._stage = Stage(win.ctx, comp, self.options.stage)
        if stage.senders or stage.warnings:  # outputs' state and failures on the HUD
            self.options.extra_hud.append(lambda: "  ".join(stage.status_lines()))
        op = self._operator = OperatorWindow(win) if self.options.operator else None
        cues = [c.preset for c in self.show.cues.cues]

        def swap() -> int:
            stage.finish_frame(win.fbo)  # window view + HUD, outputs, pending screenshot
            t = win.swap()
            if op is not None and not op.should_close():
                item, cc = self._last
                chains = {k: c.names for k, c in comp.chains.chains.items()}
                params = dict(cc.params) if cc is not None else self.registry.snapshot()
                status = (self.hud_lines or self._hud_lines(item))[:10]  # outputs: extra_hud
                cue = item.show.cue if item is not None and item.show is not None else None
                lines = operator_lines(params, chains, cues, cue, status=status)
                op.draw(comp.deck_textures() | {"master": stage.tex}, lines)
            return t

        return stage.fbo, swap

    def _close_stage(self) -> None:
        if self._operator is not None:
            self._operator.close()
            self._operator = None
        if self._stage is not None:
            self._stage.release()
            self._stage = None

    def _run_headless(self) -> None:
        from vj.render.offscreen import OffscreenTarget, create_headless_context

        o = self.options
        ctx = create_headless_context()
        target = OffscreenTarget(ctx, o.width, o.height)
        comp = self._compositor(ctx, o.width, o.height)
        comp.defer_hud = o.record is not None  # the HUD never lands in a recording
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
            # Ctrl-C, a failed frame, the end: the recording is finalised, never thrown away
            if writer is not None:  # --duration: the file is exactly that long
                ended = t_end is not None and now_ns() >= t_end
                self._finish_recorder(writer, t_end if ended else None)
            ctx.release()

    def _start_recorder(self):
        """The headless recording: CFR at the display rate, input audio muxed by capture time.
        Supervised: a file that fails mid-show is kept, said once, and a new one started."""
        from vj.render.live_record import LiveRecorder
        from vj.render.record_supervisor import SupervisedRecording

        o = self.options
        sr = self.audio.sample_rate if self.audio is not None else None

        def open_recorder(path):
            rec = LiveRecorder(path, o.width, o.height, o.fps, sample_rate=sr)
            rec.start()
            if path != Path(o.record):
                warn(f"recording into {path}")
            return rec

        rec = self._recording = SupervisedRecording(o.record, open_recorder, warn=warn)
        self.audio_taps.append(rec.push_audio)
        return rec

    def _finish_recorder(self, rec, t_stop_ns: int | None = None) -> None:
        self.audio_taps.remove(rec.push_audio)
        self.gen.stop()  # its frames are no longer shown: give the encoder the CPU
        fps, sr = rec.rec.fps, max(rec.rec.sample_rate, 1)
        last = rec.close(t_stop_ns=t_stop_ns)  # None: it failed and was reported already
        if last is not None:
            path, s, failed = last
            if failed is not None and path is None:
                warn(f"recording failed: {failed}; nothing could be kept")
            elif failed is not None:
                warn(f"recording failed: {failed}; kept {path} up to its last full second")
            else:
                warn(
                    f"recorded {path} ({s['frames_written']} frames at {fps:g} fps CFR: "
                    f"{s['repeated']} repeated, {s['dropped'] + s['queue_full']} dropped; "
                    f"{s['audio_samples'] / sr:.1f} s audio)"
                )
        if len(rec.files) > 1:
            kept = [str(p) for p, _, _ in rec.files if p is not None]
            warn(f"recordings of this show: {', '.join(kept) or 'none kept'}")

    def _frame(self, comp, fbo, swap) -> None:
        if self.gen.error is not None:
            raise RuntimeError(f"generator thread failed: {self.gen.error!r}") from self.gen.error
        item = self.frames.take()
        fr = item.show if item is not None else None
        if fr is not None and fr.compositor is not None:
            bad = comp.follow_chains(fr.compositor.chains)  # cheap while they stay the same
            if bad is not None:  # an unknown effect: reported once, the show goes on
                warn(bad)
        want, self._want_effect = self._want_effect, None
        if want is not None and want not in self._bad_effects and want != comp.effect:
            try:
                # the first slot only, as the Show's `effect` event will: replacing the whole
                # chain showed the effect alone until the Show's next frame put it back
                comp.swap_effect(want)
            except ValueError as exc:  # an unknown effect is reported once; the show goes on
                self._bad_effects.add(want)
                warn(str(exc))
        chains, self._want_chains = self._want_chains, None
        if chains is not None:
            try:
                comp.set_chains(chains)
            except ValueError as exc:  # EffectError: an unknown effect; the show goes on
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
        self._last = (item if item is not None else self._last[0], cc)
        if self.options.probe:
            cc = self._probe_on_shown(cc, item)
        # the HUD describes the frame on screen (the newest tick's), not only fresh ones
        self.hud_lines = self._hud_lines(self._last[0]) if cc.hud else None
        # a Stage draws the deferred HUD on the window only, with its own graph; over this
        # output the HUD carries the display's frame times
        graph = None if comp.defer_hud or not self.hud_lines else frame_time_graph(self.frame_ms)
        comp.draw(fbo, t, cc, None, self.hud_lines, hud_graph=graph)
        if item is not None:
            self.stamps.stamp(item.index, "composite")
        t_swap = swap()
        if item is not None:
            self.stamps.stamp(item.index, "swap", t_swap)
            cap = self.stamps.get(item.index, "capture")
            if cap and self.stamps.get(item.index, "swap") == t_swap:  # its first display
                self._last_latency_ms = (t_swap - cap) / 1e6
        if self._t_swap_last is not None:
            self.frame_ms.append((t_swap - self._t_swap_last) / 1e6)
        self._t_swap_last = t_swap
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

    def _probe_on_shown(self, cc: CompositorControls, item: GenFrame | None):
        """The profiler's marker, drawn by the compositor from `cc.probe`: the Show's value
        for the picture on screen (a tick's frame holds it only once its picture is shown)."""
        if item is not None and item.index == self._shown and item.show is not None:
            self._probe = item.show.compositor.probe
        return replace(cc, probe=self._probe)

    def _reload_due(self) -> bool:
        t = now_ns()
        if t < self._next_reload_ns:
            return False
        self._next_reload_ns = t + 500_000_000  # two mtime checks a second is plenty
        return True

    def hud_status(self, item: GenFrame | None) -> HudStatus:
        """What the HUD and the operator window report for the frame `item` is showing."""
        t = now_ns()
        fr = item.show if item is not None else None
        feats = item.features if item is not None else SILENCE
        tempo = fr.tempo if fr is not None else None
        cue = ""
        if fr is not None and fr.cue is not None:
            cues = self.show.cues.cues
            name = cues[fr.cue].preset if 0 <= fr.cue < len(cues) else ""
            cue = f"{fr.cue + 1}/{len(cues)} {name}".rstrip()
        return HudStatus(
            display_fps=self.display_fps.fps(),
            generator_fps=self.gen.fps(),
            latency_ms=self._latest_latency_ms(),
            bpm=tempo.bpm if tempo is not None else 0.0,
            beat_phase=tempo.beat % 1 if tempo is not None else feats.beat_phase,
            bar_phase=tempo.bar_phase if tempo is not None else 0.0,
            beats_per_bar=tempo.beats_per_bar if tempo is not None else 4,
            tempo_source=tempo.source if tempo is not None else "none",
            midi_events=self.midi.count,
            midi_age_s=self.midi.age_s(t),
            midi_last=self.midi.last(),
            preset=fr.preset if fr is not None else "",
            cue=cue,
            morph=fr.morph if fr is not None else 1.0,
            warnings=tuple(self._warnings(t)),
        )

    def _warnings(self, t: int) -> list[str]:
        """Audio overruns (while they are growing) and generator failures and restarts."""
        out = []
        if self.audio is not None:
            over = int(getattr(self.audio, "overruns", 0))
            late = int(getattr(self.audio, "analysis_overruns", 0))
            if self._overruns.grew(over + late, t):
                out.append(f"audio overruns {over}  analysis late {late}")
        sup = self.gen.supervisor
        if sup.status:
            out.append(sup.status)
        elif sup.restarts and t - self._t_restart_ns < WARN_HOLD_NS:
            ago = (t - self._t_restart_ns) / 1e9
            out.append(f"generator restarted {sup.restarts}x ({ago:.0f} s ago; {sup.last_error})")
        if self._recording is not None and self._recording.status:
            out.append(self._recording.status)  # a failed recording, until it records again
        return out

    def _hud_lines(self, item: GenFrame | None) -> list[str]:
        st = self.hud_status(item)
        lines = status_lines(st)
        n = len(lines) - len(st.warnings)  # the warnings stay last but for the extras
        show = self.show
        deck = show.decks[0] if show is not None and show.decks else None
        engine = engine_label(self.engine_descriptions[0], deck, getattr(show, "models", None))
        lines[n:n] = [f"engine {engine}   decks {len(self.engines)}   {self._upload}"]
        lines += [text for f in self.options.extra_hud if (text := f())]
        if self.options.learn is not None:
            lines.append(str(self.options.learn.status))
        return lines

    def _latest_latency_ms(self) -> float:
        # the newest frame that reached the screen; the one being drawn has no swap yet, and
        # the one before it may never have been shown (that gave "--" most of the time)
        return self._last_latency_ms

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
        elif key == glfw.KEY_1:
            r.trigger("downbeat", "key")  # "this is the one" (the tracker's bar)
        elif key == glfw.KEY_H:
            r.set("hud", 1.0 - r.get("hud"), "key")
        elif key == glfw.KEY_E:
            r.trigger("fx_next", "key")
        elif key == glfw.KEY_0:
            r.reset(source="key")
        elif key == glfw.KEY_P and self._stage is not None:
            self._stage.request_screenshot()  # PNG of the master at output resolution
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


class _Growth:
    """Whether a counter grew within the last WARN_HOLD_NS (a warning that fades out)."""

    def __init__(self) -> None:
        self._n, self._t = 0, None

    def grew(self, n: int, t_ns: int) -> bool:
        if n > self._n:
            self._n, self._t = n, t_ns
        return self._t is not None and t_ns - self._t < WARN_HOLD_NS


def _tapped(factory: Callable, taps: list) -> Callable:
    """A source factory whose blocks also reach every tap in `taps` (read at each block)."""

    def make(on_block):
        def both(block, t_end_ns):
            on_block(block, t_end_ns)
            for tap in taps:
                tap(block, t_end_ns)

        return factory(both)

    return make
