"""Split an offline render into shards on a Ray cluster and join them without re-encoding.

Frames are a deterministic function of (audio, preset, seed, model, event log), so each shard
renders its own frame range independently through the Show's offline driver (`RenderJob.frames`):
the Show runs from the start without the generator up to the range (cheap: no synthesis), a
short warm-up before it is drawn so effect feedback fills in, and the segment starts on a
keyframe. Only the segments' video is joined, by stream copy (packets re-timed, never
re-encoded); the whole audio track is encoded once.
Needs `pip install -e ".[cluster]"`.
"""

from __future__ import annotations

import tempfile
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import numpy as np

from vj.fsutil import atomic_path


class ClusterUnavailable(RuntimeError):
    """Ray is missing or the cluster cannot be reached."""


def shard_ranges(n_frames: int, n_shards: int) -> list[tuple[int, int]]:
    """[a, b) frame ranges, as equal as possible, covering 0..n_frames."""
    n = max(1, min(int(n_shards), n_frames))
    edges = np.linspace(0, n_frames, n + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:], strict=True) if b > a]


def n_frames_of(job) -> int:
    from vj.offline import n_frames

    return n_frames(job)


def render_shard(job, params: dict[str, float], frames: tuple[int, int]) -> bytes:
    """Render frames [a, b) of `job` to an MP4 segment; returns its bytes (so a worker on
    another machine needs no shared filesystem). Only its video is used by the join."""
    from vj.offline import render
    from vj.params import default_registry

    registry = default_registry()
    for name, v in params.items():
        if name in registry and registry.spec(name).kind != "trigger":
            registry.set(name, v, "shard")
    with tempfile.TemporaryDirectory(prefix="vj-shard-") as d:
        seg = Path(d) / f"seg-{frames[0]:08d}.mp4"
        a, b = frames
        render(replace(job, out=seg, frames=range(a, b), progress=False), registry)
        return seg.read_bytes()


def concat_segments(segments: list[Path], out: Path, fps: int, audio, sample_rate: int) -> Path:
    """Join H.264 segments by stream copy and mux `audio` [n, ch] as AAC; atomic."""
    import av

    with atomic_path(out) as tmp:
        with av.open(str(tmp), mode="w", format="mp4") as dst:
            first = av.open(str(segments[0]))
            src_stream = first.streams.video[0]
            v = dst.add_stream_from_template(src_stream)
            first.close()
            a = None
            if audio is not None:
                layout = "mono" if audio.shape[1] == 1 else "stereo"
                a = dst.add_stream("aac", rate=sample_rate)
                a.layout = layout
            offset = Fraction(0)  # seconds of video already written
            for seg in segments:
                with av.open(str(seg)) as src:
                    s = src.streams.video[0]
                    n = 0
                    for pkt in src.demux(s):
                        if pkt.dts is None:
                            continue  # the demuxer's flush packet
                        shift = int(offset / s.time_base)
                        pkt.pts += shift
                        pkt.dts += shift
                        pkt.stream = v
                        dst.mux(pkt)
                        n += 1
                    offset += Fraction(n, fps)
            if a is not None:
                planar = np.ascontiguousarray(audio.T, np.float32)  # [ch, n]
                chunk = 1024
                for i in range(0, planar.shape[1], chunk):
                    fr = av.AudioFrame.from_ndarray(
                        np.ascontiguousarray(planar[:, i : i + chunk]), format="fltp", layout=layout
                    )
                    fr.sample_rate = sample_rate
                    fr.pts = i
                    for p in a.encode(fr):
                        dst.mux(p)
                for p in a.encode(None):
                    dst.mux(p)
    return out


def render_ray(job, registry, address: str | None = None, shards: int | None = None) -> Path:
    """Render `job` on Ray (`address`: None/"local" = start a local cluster, "auto" = the
    running one, or host:port); returns the output path."""
    try:
        import ray
    except ImportError as exc:
        raise ClusterUnavailable(f'--ray needs Ray ({exc}); pip install -e ".[cluster]"') from exc
    from vj.progress import progress_bar

    n_frames = n_frames_of(job)
    if n_frames < 1:
        raise ValueError(f"audio is too short to render a frame at {job.fps} fps")
    started = False
    if not ray.is_initialized():
        try:
            if address in (None, "local"):
                ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False)
            else:
                ray.init(address=address, log_to_driver=False, configure_logging=False)
        except Exception as exc:  # Ray raises ConnectionError, RuntimeError, ValueError ...
            raise ClusterUnavailable(f"--ray {address or 'local'}: {exc}") from exc
        started = True
    try:
        if shards is None:
            res = ray.cluster_resources()
            shards = int(res.get("GPU", 0)) or int(res.get("CPU", 1))
        ranges = shard_ranges(n_frames, shards)
        params = registry.snapshot()
        worker = ray.remote(num_cpus=1)(render_shard)
        job_ref = ray.put(replace(job, progress=False))
        pending = {worker.remote(job_ref, params, r): r for r in ranges}
        done: dict[tuple[int, int], bytes] = {}
        with progress_bar(
            total=n_frames,
            unit="frame",
            desc=f"render {job.out.name} on {len(ranges)} Ray shards",
            enabled=job.progress,
        ) as bar:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                r = pending.pop(ready[0])
                done[r] = ray.get(ready[0])
                bar.update(r[1] - r[0])
        with tempfile.TemporaryDirectory(prefix="vj-ray-", dir=job.out.parent) as d:
            segs = []
            for r in ranges:
                p = Path(d) / f"seg-{r[0]:08d}.mp4"
                p.write_bytes(done[r])
                segs.append(p)
            concat_segments(segs, job.out, job.fps, job.audio, job.sample_rate)
    finally:
        if started:
            ray.shutdown()
    return job.out
