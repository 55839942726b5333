"""Offline render: the live pipeline's stages driven by a virtual clock from an audio file.

Frame by frame and deterministic: the same audio, preset and seed give identical frames.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vj.params import ParamRegistry


@dataclass(frozen=True)
class RenderJob:
    audio: np.ndarray  # [n, ch] float32
    sample_rate: int
    out: Path
    width: int = 1280
    height: int = 720
    fps: int = 30
    seed: int = 0
    checkpoint: str = "default"
    effect: str = "default"
    hop: int = 256
    n_bands: int = 8
    hud: bool = False
    threads: int | None = None
    progress: bool = True
    replay: object | None = None  # vj.show.session.SessionReplay: events applied at their times
    # A shard of a split render (vj.render.cluster): only frames [a, b) are written, video
    # only. Frames before a - warmup_frames are analysed and modulated but not drawn; the
    # warm-up frames are drawn (not written) so effect feedback trails have converged at a.
    frames: tuple[int, int] | None = None
    warmup_frames: int = 64
    crf: int = 20


def render(job: RenderJob, registry: ParamRegistry) -> Path:
    """Render `job` to an MP4 (H.264 + AAC); returns the path written. Atomic: temp + rename."""
    import torch

    from vj.audio.stream import FeatureExtractor
    from vj.gan.checkpoint import load_checkpoint_or_default
    from vj.gan.engine import Engine
    from vj.react.modulation import Modulator
    from vj.render.compositor import Compositor
    from vj.render.offscreen import OffscreenTarget, create_headless_context
    from vj.render.record import VideoWriter
    from vj.tempo import TempoArbiter

    if job.threads:
        torch.set_num_threads(job.threads)
    G, _meta = load_checkpoint_or_default(job.checkpoint)
    engine = Engine(G, device="cpu", dtype="fp32", n_buffers=2)
    modulator = Modulator(G, seed=job.seed)
    extractor = FeatureExtractor(
        job.sample_rate, hop=job.hop, n_bands=job.n_bands, arbiter=TempoArbiter()
    )

    ctx = create_headless_context()
    target = OffscreenTarget(ctx, job.width, job.height)
    comp = Compositor(ctx, job.width, job.height, effect=job.effect)
    if comp.last_error:
        print(f"vj: {comp.last_error}", file=sys.stderr)

    n_samples = job.audio.shape[0]
    n_frames = int(np.floor(n_samples / job.sample_rate * job.fps))
    if n_frames < 1:
        raise ValueError(f"audio is too short to render a frame at {job.fps} fps")
    rgb = np.empty((job.height, job.width, 3), np.uint8)
    params = _frame_params(registry, job)
    lo, hi = job.frames or (0, n_frames)
    if not 0 <= lo < hi <= n_frames:
        raise ValueError(f"frame range {lo}..{hi} outside the render's 0..{n_frames}")
    draw_from = max(0, lo - job.warmup_frames)
    bar = _progress(hi - draw_from, job.progress, job.out.name)
    fed = 0
    with VideoWriter(
        job.out,
        job.width,
        job.height,
        job.fps,
        audio=None if job.frames else job.audio,
        sample_rate=job.sample_rate,
        crf=job.crf,
    ) as writer:
        features = None
        for i in range(hi):
            t_ns = (i * 1_000_000_000) // job.fps  # virtual clock: this frame's presentation time
            upto = min(n_samples, (i * job.sample_rate) // job.fps)
            if upto > fed:  # analyse the audio heard up to this frame's time
                features = extractor.process(job.audio[fed:upto], t_ns)
                fed = upto
            if features is None:
                features = extractor.process(job.audio[:0], t_ns)
            if job.replay is not None and job.replay.advance(t_ns / 1e9):
                params = _frame_params(registry, job)  # a recorded session's control events
            controls = modulator.step(features, params, t_ns / 1e9)
            if i < draw_from:  # a shard's causal warm-up: state only, no pixels
                comp.advance(t_ns, features)
                continue
            frame = engine.render(controls)
            comp.submit_frame(_host_rgba(frame.rgba), i, t_ns)
            comp.draw(
                target.fbo,
                t_ns,
                params,
                features,
                [f"vj offline  frame {i}  t {t_ns / 1e9:6.2f}s"] if job.hud else None,
            )
            target.read_rgb(rgb)
            if i >= lo:
                writer.write(rgb)
            bar.update(1)
        bar.close()
    ctx.release()
    return job.out


def _frame_params(registry: ParamRegistry, job: RenderJob) -> dict[str, float]:
    params = registry.snapshot()
    if not job.hud:
        params["hud"] = 0.0
    # Offline generates every video frame, so there is nothing to fade between: each is shown
    # whole (the live crossfade exists because a generator is slower than the display).
    params["crossfade"] = 0.0
    return params


def _host_rgba(rgba) -> np.ndarray:
    if isinstance(rgba, np.ndarray):
        return rgba
    return rgba.detach().cpu().numpy()  # a CUDA tensor when interop is not in use


def _progress(total: int, enabled: bool, label: str):
    from tqdm import tqdm

    return tqdm(
        total=total,
        unit="frame",
        desc=f"render {label}",
        disable=not enabled,
        file=sys.stderr,
        dynamic_ncols=True,
    )
