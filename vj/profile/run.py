"""`vj profile`'s run: a stimulus through the real audio path into the full live pipeline
(headless), with every stage stamped, the presented pixels probed, and the figures collected."""

from __future__ import annotations

import os
import platform
import sys
import threading
import time
from dataclasses import asdict, dataclass

import numpy as np

from vj.clock import STAGES, now_ns
from vj.profile import probe
from vj.profile.latency import summarise

CLICK_EVERY_S = 0.75  # longer than any latency we expect on a CPU, so hits never overlap
LEAD_IN_S = 1.0  # quiet before the first click: the analysis settles, threads warm up


@dataclass(frozen=True)
class ProfileOptions:
    stimulus: str = "clicks"  # "clicks" or an audio file path
    duration: float = 10.0
    preset: str = "default"
    checkpoint: str | None = None
    engine_args: object | None = None  # argparse namespace with the engine flags (or None)
    size: tuple[int, int] | None = None
    fps: float | None = None
    audio: str = "auto"  # "auto" (JACK loopback if possible), "jack", "file"
    gen_threads: int | None = 1


def click_stimulus(sr: int, seconds: float) -> tuple[np.ndarray, np.ndarray]:
    """Noise bursts every CLICK_EVERY_S after a lead-in: samples [n], click sample indices."""
    n = int(sr * seconds)
    x = np.zeros(n, np.float32)
    burst = int(0.01 * sr)
    env = np.exp(-np.arange(burst) / (0.002 * sr)).astype(np.float32)
    rng = np.random.default_rng(0)
    starts = np.arange(LEAD_IN_S, seconds - 0.3, CLICK_EVERY_S)
    idx = (starts * sr).astype(np.int64)
    for s in idx:
        x[s : s + burst] = 0.8 * env * rng.uniform(-1, 1, burst).astype(np.float32)
    return x, idx


class _Recorder:
    """Hooks on the live app's threads; each appends to its own preallocated arrays."""

    def __init__(self, sr: int, block: int, seconds: float, clicks: np.ndarray) -> None:
        nb = int(seconds * sr / block) + 64
        self.sr, self.block = sr, block
        self.block_t = np.zeros(nb, np.int64)  # audio thread: block end times
        self.nb = 0
        self.clicks = clicks
        self.click_times: list[int] = []  # file source: clock time of each click sample
        nd = int(seconds * 240) + 64
        self.present_t = np.zeros(nd, np.int64)  # render thread: present (readback) times
        self.present_probe = np.zeros(nd, np.int8)  # probe value read from those pixels
        self.present_frame = np.full(nd, -1, np.int64)  # generator frame id shown
        self.nd = 0
        self.gen: list[tuple[int, int, int, int]] = []  # (id, t_ready, onset_count, t_capture)
        self.shown = None  # callable → id of the generator frame on screen

    def on_audio_file(self, block: np.ndarray, t_end_ns: int) -> None:
        """PlaybackSource: block k holds samples [k*b, (k+1)*b) of the (unlooped) stimulus."""
        k = self.nb
        if k < len(self.block_t):
            self.block_t[k] = t_end_ns
            self.nb = k + 1
        a = k * self.block
        c = self.clicks
        for s in c[(c >= a) & (c < a + len(block))]:
            self.click_times.append(t_end_ns - int((a + len(block) - 1 - s) * 1e9 / self.sr))

    def on_audio_live(self, block: np.ndarray, t_end_ns: int) -> None:
        k = self.nb
        if k < len(self.block_t):
            self.block_t[k] = t_end_ns
            self.nb = k + 1

    def on_display(self, rgb: np.ndarray, t_ns: int) -> None:
        i = self.nd
        if i < len(self.present_t):
            self.present_t[i] = t_ns
            self.present_probe[i] = probe.read(rgb)
            self.present_frame[i] = self.shown()
            self.nd = i + 1

    def on_frame(self, f) -> None:
        self.gen.append((f.index, f.t_ready_ns, f.features.onset_count, f.features.t_capture_ns))


def run_profile(opts: ProfileOptions, progress: bool = True) -> dict:
    """Run the live pipeline on the stimulus for `opts.duration` s; returns the report dict."""
    from vj.audio import source as src
    from vj.audio.stream import FeatureExtractor
    from vj.cli import UserError
    from vj.live import AudioInput, LiveApp, LiveOptions

    registry, preset = load_preset_strict(opts.preset)
    w, h = opts.size or (preset.render.width, preset.render.height)
    fps = float(opts.fps or preset.render.fps)
    block = preset.audio.block_size
    sr = 48000
    seconds = opts.duration
    if opts.stimulus == "clicks":
        samples, clicks = click_stimulus(sr, seconds)
        stim_desc = f"clicks every {CLICK_EVERY_S} s after {LEAD_IN_S} s"
    else:
        try:
            audio, sr = src.read_audio(opts.stimulus)
        except (OSError, ValueError, RuntimeError) as exc:
            raise UserError(str(exc)) from exc
        samples, clicks = audio.mean(axis=1).astype(np.float32), np.zeros(0, np.int64)
        samples = samples[: int(seconds * sr)]
        stim_desc = f"file {os.path.basename(opts.stimulus)}"
    rec = _Recorder(sr, block, seconds + 2.0, clicks)

    loop = None
    audio_path = "file"
    if opts.audio in ("auto", "jack"):
        from vj.profile.jackloop import JackLoopback, JackUnavailable

        try:
            loop = JackLoopback(sr, period=block)
            loop.start()
            audio_path = "jack"
        except JackUnavailable as exc:
            loop = None
            if opts.audio == "jack":
                raise UserError(f"--audio jack: {exc}") from exc
            print(f"vj: no JACK loopback ({exc}); using the file source", file=sys.stderr)
    try:
        if loop is not None:
            dev = loop.input_device()
            factory = lambda cb: src.LiveSource(cb, device=dev, sample_rate=sr, block_size=block)  # noqa: E731
            tap = rec.on_audio_live
        else:
            factory = lambda cb: src.PlaybackSource(cb, samples, sr, block_size=block, loop=False)  # noqa: E731
            tap = rec.on_audio_file
        # the Show analyses with this one (its onset times are the report's detections)
        extractor = FeatureExtractor(sr, hop=preset.audio.hop, n_bands=preset.audio.n_bands)
        lopts = LiveOptions(
            width=w,
            height=h,
            fps=fps,
            headless=True,
            duration=None,
            effect=preset.effect,
            seed=None,  # the preset's (its decks' when it has them)
            checkpoint=opts.checkpoint,  # None: the preset's
            engine=_engine_spec(opts, preset),
            gen_threads=opts.gen_threads,
            on_frame=rec.on_frame,
            on_display=rec.on_display,
            on_audio=tap,
            probe=True,
        )
        try:
            app = LiveApp(registry, AudioInput(factory, extractor), lopts, preset=preset)
        except _checkpoint_errors() as exc:
            raise UserError(str(exc)) from exc
        rec.shown = lambda: getattr(app, "_shown", -1)
        runner = threading.Thread(target=_run_app, args=(app,), name="vj-profile-app")
        runner.error = None
        runner.start()
        t_start = now_ns()
        if loop is not None:
            loop.connect()
            time.sleep(0.2)
            loop.play(samples, clicks)
        _wait(runner, seconds, progress)
        app.stop()
        runner.join(60)
        t_stop = now_ns()
        if runner.error is not None:
            raise runner.error
        click_times = loop.click_times if loop is not None else rec.click_times
        overruns = {
            "device": int(app.audio.overruns),
            "analysis": int(app.audio.analysis_overruns),
            "late_callbacks": int(app.audio.late_callbacks),
            "callback": app.audio.stats.summary(),
        }
    finally:
        if loop is not None:
            loop.close()
    onset_times = [t for k, t in extractor.drain_events() if k == "onset"]
    settings = {
        "stimulus": stim_desc,
        "audio_path": audio_path,
        "duration_s": seconds,
        "preset": preset.name,
        "size": [w, h],
        "display_fps": fps,
        "sample_rate": sr,
        "block": block,
        "hop": preset.audio.hop,
        "checkpoint": opts.checkpoint or preset.generator.checkpoint,
        "engine": list(app.engine_descriptions),  # what actually ran (fallbacks applied)
        "backend": getattr(app.engine, "backend", "torch"),
        "device": str(getattr(app.engine, "device", "cpu")),
        "gen_threads": opts.gen_threads,
        "options": {k: v for k, v in asdict(opts).items() if k != "engine_args"},
    }
    return build_report(app, rec, click_times, onset_times, overruns, settings, t_start, t_stop)


def load_preset_strict(name: str):
    """(registry, preset) with the preset applied; a broken or unknown preset is exit 2 here
    (a profile of the wrong settings is worse than none)."""
    from pathlib import Path

    from vj.cli import UserError
    from vj.params import default_registry
    from vj.preset import PresetError, apply_preset, builtin_preset_path, load_preset

    registry = default_registry()
    path = Path(name)
    try:
        if not (path.suffix in (".yaml", ".yml") or path.exists()):
            path = builtin_preset_path(name)
        preset = load_preset(path, registry)
    except (PresetError, OSError) as exc:
        raise UserError(f"--preset {name}: {exc}") from exc
    apply_preset(preset, registry)
    return registry, preset


def _checkpoint_errors() -> tuple[type[BaseException], ...]:
    from vj.gan.checkpoint import CheckpointError

    return (CheckpointError,)


def _run_app(app) -> None:
    try:
        app.run()
    except BaseException as exc:  # surfaced by run_profile on the main thread
        threading.current_thread().error = exc


def _wait(runner: threading.Thread, seconds: float, progress: bool) -> None:
    from vj.progress import progress_bar

    with progress_bar(total=round(seconds, 1), unit="s", desc="profile", enabled=progress) as bar:
        t0 = time.monotonic()
        done = 0.0
        while runner.is_alive() and done < seconds:
            time.sleep(0.1)
            now = min(seconds, time.monotonic() - t0)
            bar.update(round(now - done, 1))
            done = now


def build_report(app, rec, click_times, onset_times, overruns, settings, t0, t1) -> dict:
    """Every stamp, the summaries, the probe figures and the machine, as one JSON-able dict."""
    n_gen = app.gen.count
    ids = np.arange(n_gen)
    stamps = np.array([[app.stamps.get(int(k), s) for s in STAGES] for k in ids], np.int64)
    stamps = stamps.reshape(-1, len(STAGES))  # [n_gen, n_stages], 0 = never happened
    complete = stamps[np.all(stamps > 0, axis=1)]
    presents = rec.present_t[: rec.nd]
    frames_shown = rec.present_frame[: rec.nd]
    dt = np.diff(presents) / 1e6  # display frame times, ms
    period_ms = 1e3 / settings["display_fps"]
    span = (t1 - t0) / 1e9
    shown_ids = set(int(k) for k in frames_shown if k >= 0)
    repeated = int(np.sum(frames_shown[1:] == frames_shown[:-1])) if len(frames_shown) else 0
    probe_rows = probe_latencies(rec, click_times, stamps)
    one_frame = float(np.median(dt)) if len(dt) else period_ms
    diffs = [abs(r["probe_ms"] - r["stamp_ms"]) for r in probe_rows if r["stamp_ms"] is not None]
    agree = bool(diffs) and max(diffs) <= one_frame
    return {
        "version": 1,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine_info(),
        "settings": settings,
        "stages": list(STAGES),
        "stamps_ns": stamps.tolist(),
        "summary": _with_p99(summarise(complete), complete),
        "frames": {
            "generated": int(n_gen),
            "presented": int(rec.nd),
            "generator_frames_never_shown": int(n_gen - len(shown_ids)),
            "display_repeats": repeated,  # presents that showed no new generator frame
            "display_deadline_misses": int(np.sum(dt > 1.5 * period_ms)),
            "generator_fps": n_gen / span if span > 0 else 0.0,
            "display_fps": rec.nd / span if span > 0 else 0.0,
        },
        "frame_times_ms": dt.tolist(),
        "audio": {"overruns": overruns, "blocks": int(rec.nb)},
        "timeline": {
            "t0_ns": int(t0),
            "audio_blocks_ns": rec.block_t[: rec.nb].tolist(),
            "hits_ns": [int(t) for t in click_times],
            "onsets_ns": [int(t) for t in onset_times],
            "presents_ns": presents.tolist(),
            "present_frame": frames_shown.tolist(),
            "gen": [list(g) for g in rec.gen],
        },
        "probe": {
            "hits": probe_rows,
            "one_frame_ms": one_frame,
            "agree_within_one_frame": agree,
            "max_disagreement_ms": max(diffs) if diffs else None,
            "probe_ms": _pcts([r["probe_ms"] for r in probe_rows]),
            "stamp_ms": _pcts([r["stamp_ms"] for r in probe_rows if r["stamp_ms"] is not None]),
        },
    }


def probe_latencies(rec, click_times, stamps: np.ndarray) -> list[dict]:
    """Per audio hit: the first present whose pixels show a changed probe (pixels only), and
    the stamps' own answer (the swap stamp of the first shown frame carrying a new onset)."""
    presents = rec.present_t[: rec.nd]
    values = rec.present_probe[: rec.nd]
    gen = np.array(rec.gen, np.int64).reshape(-1, 4)  # [n, (id, t_ready, onsets, t_capture)]
    swap = stamps[:, list(STAGES).index("swap")] if len(stamps) else np.zeros(0, np.int64)
    hits = sorted(int(t) for t in click_times)
    out = []
    for t_hit in hits:
        # the onset count the analysis had before this hit: the hit's onset makes it c0 + 1
        prior = gen[gen[:, 3] < t_hit]
        c0 = int(prior[-1, 2]) if len(prior) else 0
        # pixels: the first present at or after the hit whose marker has passed c0 (counts
        # may skip when two onsets land between displayed frames; mod LEVELS, so a latency
        # of more than LEVELS / 2 hits would alias and is not measured)
        ahead = (values.astype(np.int64) - c0) % probe.LEVELS
        after = np.nonzero((presents >= t_hit) & (ahead >= 1) & (ahead <= probe.LEVELS // 2))[0]
        if len(after) == 0:
            continue
        t_probe = int(presents[after[0]])
        stamp_ms = None
        carrying = gen[(gen[:, 2] > c0) & (gen[:, 3] >= t_hit)]
        for k in carrying[:, 0]:
            if k < len(swap) and swap[k] > 0:
                stamp_ms = (int(swap[k]) - t_hit) / 1e6
                break
        out.append({"t_hit_ns": t_hit, "probe_ms": (t_probe - t_hit) / 1e6, "stamp_ms": stamp_ms})
    return out


def _pcts(v: list[float]) -> dict[str, float] | None:
    if not v:
        return None
    a = np.asarray(v)
    return {f"p{q}": float(np.percentile(a, q)) for q in (50, 95, 99)} | {"n": len(a)}


def _with_p99(summary: dict, rows: np.ndarray) -> dict:
    from vj.clock import stage_latencies_ms

    for name, ms in stage_latencies_ms(rows).items():
        if name in summary and len(ms):
            summary[name]["p99"] = float(np.percentile(ms, 99))
    return summary


def machine_info() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    gpu = None
    try:
        import torch

        if torch.cuda.is_available():
            gpu = torch.cuda.get_device_name(0)
        torch_v = torch.__version__
    except Exception:
        torch_v = None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "gpu": gpu,
        "python": platform.python_version(),
        "torch": torch_v,
        "platform": platform.platform(),
    }


def _engine_spec(opts: ProfileOptions, preset):
    """The engine the profile runs: its flags over the preset's `generator:` (as `vj live`)."""
    from vj.cli import UserError
    from vj.gan.options import EngineOptionError, spec_from

    try:
        return spec_from(opts.engine_args, getattr(preset, "generator", None))
    except EngineOptionError as exc:
        raise UserError(str(exc)) from exc
