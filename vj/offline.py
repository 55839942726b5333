"""Offline driver: the Show on a virtual clock, fed an audio file and an event log, frame by frame.

Deterministic: the same audio, preset, seed and events give identical frames. A frame range
renders one shard: the Show (causal analysis, tempo, latent walk) runs from the start without
the generator up to the range, so a shard's controls equal the whole render's.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vj.params import ParamRegistry
from vj.show.frame import DECKS, ControlEvent, ShowFrame

S = 1_000_000_000
# frames rendered (not written) before a shard, so effect feedback trails have converged to the
# whole render's: the default effect keeps up to 0.9 of its last output per frame, which takes
# ~59 frames to fall below half an 8-bit step (shards joined lossless equal the whole: tested)
FEEDBACK_WARMUP = 64


@dataclass(frozen=True)
class RenderJob:
    audio: np.ndarray  # [n, ch] float32
    sample_rate: int
    out: Path
    width: int = 1280
    height: int = 720
    fps: int = 30
    seed: int | None = 0  # deck A's; None = the preset's
    checkpoint: str | None = "default"  # deck A's; None = the preset's
    effect: str = "default"
    chains: dict | None = None  # effect chains {"A": (...), "master": (...)}; None = `effect`
    fit: str = "fill"  # how the generator frame fills the output (vj/render/fit.py)
    upscale: str = "bicubic"  # bilinear | bicubic | lanczos
    hop: int = 256
    n_bands: int = 8
    hud: bool = False
    threads: int | None = None
    progress: bool = True
    events: tuple[ControlEvent, ...] = ()  # a session's event log, replayed at its times
    frames: range | None = None  # a shard: these frame indices only (None = all)
    deck_b: str | None = None  # checkpoint for a second deck (None = one deck)
    preset: object | None = None  # the vj.preset.Preset (name, path, cues); None = default
    block: int = 256  # audio block size fed to the analysis (the live default)
    decks_every: tuple[int, ...] = field(default=(1, 1))  # generate deck i every n-th frame
    crf: int = 20  # H.264 quality (0 = lossless: exactness tests, shards compared frame by frame)
    engine: object | None = None  # vj.gan.options.EngineSpec; None: auto (the GPU when present)
    probe: bool = False  # draw the latency probe's marker (as `vj profile` does live)
    live_input: bool = False  # the audio joined a song on a sound card (a live session's)


def n_frames(job: RenderJob) -> int:
    return int(np.floor(job.audio.shape[0] / job.sample_rate * job.fps))


def frame_time_ns(i: int, fps: int) -> int:
    """Frame i's presentation time on the virtual clock."""
    return (i * S) // fps


class OfflineShow:
    """The offline driver's core: ticks the Show frame by frame on the virtual clock.

    `frames()` yields (index, ShowFrame) for every frame up to the range's end; frames before
    the range come with decks skipped (the Show moves but no generator input is made).
    """

    def __init__(self, show, job: RenderJob) -> None:
        self.show = show
        self.job = job
        self._fed = 0
        for ev in job.events:
            show.event(ev)

    def _feed_to(self, t_ns: int) -> None:
        job, show = self.job, self.show
        sr, blk = job.sample_rate, job.block
        # every whole block whose last sample is heard by t_ns, stamped with that sample's time
        upto = min(job.audio.shape[0], (t_ns * sr) // S)
        while self._fed + blk <= upto:
            end = self._fed + blk
            show.audio(job.audio[self._fed : end], (end * S) // sr)
            self._fed = end

    def tick(self, i: int, decks: Sequence[str] | None = None) -> ShowFrame:
        t = frame_time_ns(i, self.job.fps)
        self._feed_to(t)
        return self.show.frame(t, decks)

    def frames(self, rng: range, warm: int = 0) -> Iterator[tuple[int, ShowFrame, bool]]:
        """(i, frame, write?) for i in 0..rng.stop-1: `warm` frames before rng are generated
        but not written; earlier ones only tick the Show."""
        every = self.job.decks_every
        names = DECKS[: len(self.show.decks)]
        for i in range(rng.stop):
            if i < rng.start - warm:
                yield i, self.tick(i, ()), False
                continue
            want = [n for k, n in enumerate(names) if i % _every(every, k) == 0]
            yield i, self.tick(i, want), i >= rng.start


def _every(every: tuple[int, ...], k: int) -> int:
    return max(int(every[k]), 1) if k < len(every) else 1


def build_offline(job: RenderJob, registry: ParamRegistry, descriptions: list | None = None):
    """(show, engines) for a job, through the one wiring function; `descriptions` (a list)
    receives each deck's engine description."""
    from vj.gan.options import EngineSpec
    from vj.show.wiring import (
        DeckSpec,
        build_engine,
        build_show,
        deck_specs,
        load_generator,
        model_bank,
    )

    if job.preset is not None:
        specs = deck_specs(job.preset, job.checkpoint, job.seed, job.deck_b)
    else:
        specs = [DeckSpec(job.checkpoint or "default", job.seed or 0)]
        if job.deck_b:
            specs.append(DeckSpec(job.deck_b, specs[0].seed + 1))
    gens, engines = [], []

    def one_engine(G):
        return build_engine(G, job.engine or EngineSpec(), threads=job.threads)

    for s in specs:
        G = load_generator(s.checkpoint)
        engine, desc = one_engine(G)
        engines.append(engine)
        gens.append(G)
        if descriptions is not None:
            descriptions.append(desc)
    preset = job.preset if job.preset is not None else _Defaults(job)
    params = registry.snapshot()
    if not job.hud:
        params["hud"] = 0.0
    # Offline generates every video frame, so there is nothing to fade between: each is shown
    # whole (the live crossfade exists because a generator is slower than the display).
    params["crossfade"] = 0.0
    show = build_show(
        preset,
        registry,
        gens,
        specs,
        sample_rate=job.sample_rate,
        effect=job.effect,
        params=params,
        chains=job.chains,
        # a switch to a preset naming another checkpoint builds its engine at once: the same
        # render every time (live builds it off the render thread instead)
        models=model_bank(specs, gens, engines, lambda G: one_engine(G)[0], background=False),
        live=job.live_input,
    )
    show.probe = job.probe
    return show, engines


@dataclass(frozen=True)
class _Audio:
    hop: int
    n_bands: int


class _Defaults:
    """Stand-in for a Preset when a job is built by hand (tests, tools)."""

    def __init__(self, job: RenderJob) -> None:
        self.name, self.path, self.seed, self.effect = "default", None, job.seed or 0, job.effect
        self.audio = _Audio(job.hop, job.n_bands)
        self.cues = ()


def render(job: RenderJob, registry: ParamRegistry) -> Path:
    """Render `job` to an MP4 (H.264 + AAC); returns the path written. Atomic: temp + rename."""
    import torch

    from vj.render.compositor import Compositor
    from vj.render.offscreen import OffscreenTarget, create_headless_context
    from vj.render.record import VideoWriter

    if job.threads:
        torch.set_num_threads(job.threads)
    total = n_frames(job)
    if total < 1:
        raise ValueError(f"audio is too short to render a frame at {job.fps} fps")
    rng = job.frames if job.frames is not None else range(total)
    if rng.step != 1 or not (0 <= rng.start < rng.stop <= total):
        raise ValueError(f"frame range {rng.start}..{rng.stop} outside 0..{total}")
    descriptions: list[str] = []
    show, engines = build_offline(job, registry, descriptions)
    if job.progress:
        print(f"vj: engine {', '.join(descriptions)}", file=sys.stderr)

    ctx = create_headless_context()
    target = OffscreenTarget(ctx, job.width, job.height)
    # the output at its own resolution: the generator frame fitted and upscaled into it
    comp = Compositor(
        ctx, job.width, job.height, effect=job.effect, filter=job.upscale, fit=job.fit
    )
    comp.set_time_origin(frame_time_ns(0, job.fps))  # a shard's effect time = the whole's
    if comp.last_error:
        print(f"vj: {comp.last_error}", file=sys.stderr)
    rgb = np.empty((job.height, job.width, 3), np.uint8)
    bar = _progress(len(rng), job.progress, job.out.name)
    t0 = frame_time_ns(rng.start, job.fps)
    a0 = (t0 * job.sample_rate) // S
    a1 = min(job.audio.shape[0], (frame_time_ns(rng.stop, job.fps) * job.sample_rate) // S)
    driver = OfflineShow(show, job)
    try:
        with VideoWriter(
            job.out,
            job.width,
            job.height,
            job.fps,
            audio=job.audio[a0:a1] if job.frames is not None else job.audio,
            sample_rate=job.sample_rate,
            crf=job.crf,
        ) as writer:
            for i, fr, write in driver.frames(rng, FEEDBACK_WARMUP):
                if not fr.decks and not write:
                    continue
                draw_show_frame(comp, engines, fr, i, show.models)
                bad = comp.follow_chains(fr.compositor.chains)  # the Show's effect chains
                if bad is not None:
                    print(f"vj: {bad}", file=sys.stderr)
                comp.draw(
                    target.fbo,
                    fr.t_ns,
                    fr.compositor,
                    None,
                    [f"vj offline  frame {i}  t {fr.t_ns / 1e9:6.2f}s"] if job.hud else None,
                )
                if write:
                    writer.write(target.read_rgb(rgb))
                    bar.update(1)
                for err in show.drain_errors():
                    print(f"vj: {err}", file=sys.stderr)
            bar.close()
    finally:
        ctx.release()
    return job.out


def draw_show_frame(comp, engines, fr: ShowFrame, i: int, models=None) -> None:
    """Generate each deck the frame carries (on its model's engine: `models`, a ModelBank)
    and hand its picture to the compositor."""
    from vj.show.wiring import engine_for

    for dc in fr.decks:
        frame = engine_for(engines, dc, models).render(dc)
        # the engine's buffer itself (CUDA tensor or array); the upload waits on its event
        comp.submit_frame(
            frame.rgba, i, fr.t_ns, stream=frame.stream, event=frame.event, deck=dc.deck
        )


def _progress(total: int, enabled: bool, label: str):
    from vj.progress import progress_bar

    return progress_bar(total=total, unit="frame", desc=f"render {label}", enabled=enabled)
