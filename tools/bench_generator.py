"""Generator benchmark: ms/frame p50/p95 and peak memory per backend and size, plus fp16 parity.

    python tools/bench_generator.py                      # CPU: default model; GPU: 256/512/1024
    python tools/bench_generator.py --checkpoint G.pkl   # one given network
    python tools/bench_generator.py --sizes 512 --rows fp16,graphs --frames 200

Rows: fp32 eager, fp16 eager, fp16 + CUDA graphs, torch.compile, onnxruntime (+ TensorRT when
importable), and `chosen`: what `build_engine` makes of --device/--dtype/--backend/--cuda-graphs
(the same flags as `vj live`). Rows that need CUDA print "n/a (no CUDA)". The note column names
each engine (its description). Then fp16 parity, and frame upload into GL at 1080p: host copy
vs CUDA-GL interop. Prints Markdown tables (and --json).
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import platform
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vj.audio.features import AudioFeatures  # noqa: E402
from vj.gan.backends import OrtEngine, TrtEngine  # noqa: E402
from vj.gan.engine import Engine  # noqa: E402
from vj.gan.export import build_trt_engine, export_onnx, tensorrt_available  # noqa: E402
from vj.gan.options import add_engine_args, build_engine, spec_from  # noqa: E402
from vj.gan.stylegan2 import Generator, make_default_generator  # noqa: E402
from vj.react.modulation import Modulator  # noqa: E402

ROWS = ("fp32", "fp32_cl", "fp16", "graphs", "graphs_cl", "compile", "ort", "trt", "chosen")
ROW_NAMES = {
    "fp32": "fp32 eager",
    "fp32_cl": "fp32 eager channels-last",
    "fp16": "fp16 eager",
    "graphs": "fp16 + CUDA graphs",
    "graphs_cl": "fp16 + graphs + channels-last",
    "compile": "torch.compile",
    "ort": "onnxruntime",
    "trt": "TensorRT fp16",
    "chosen": "build_engine choice",
}


def full_config(res: int) -> dict:
    """A full-size StyleGAN2 (config-F widths, NVIDIA's fp16/clamp training defaults)."""
    cfg = Generator(img_resolution=8).config()  # all defaults, explicit
    cfg.update(img_resolution=res, channel_base=32768, channel_max=512, num_fp16_res=4)
    return cfg


def make_network(args, size: int | None, cache: dict | None = None):
    """The network for `size` (made once per run when `cache` is given: engines copy it)."""
    if cache is None:
        return _make_network(args, size)
    key = (args.checkpoint, size, args.seed)
    if key not in cache:
        cache[key] = _make_network(args, size)
    return cache[key]


def _make_network(args, size: int | None):
    if args.checkpoint:
        from vj.gan.checkpoint import load_generator

        G, _meta = load_generator(Path(args.checkpoint))
    elif size is None:
        G = make_default_generator(args.seed)
    else:  # its statistics (w_avg over 4096 z, a forward) on the GPU when there is one
        dev = "cuda" if torch.cuda.is_available() and args.device != "cpu" else "cpu"
        G = make_default_generator(args.seed, full_config(size), device=dev).cpu()
    return G, network_label(args, size)


def network_label(args, size: int | None) -> str:
    if args.checkpoint:
        return Path(args.checkpoint).name
    return "default" if size is None else f"full {size}²"


def controls_stream(G, n: int, seed: int):
    """n realistic Controls (onsets + band pushes) so the timing includes real inputs."""
    m = Modulator(G, seed=seed)
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        bands = rng.uniform(0, 1, 8).astype(np.float32)
        out.append(m.step(AudioFeatures(onset_count=k // 4, bands=bands), {}, k / 30))
    return out


def peak_mem_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # process peak RSS


def time_frame(engine, c) -> tuple[float, float | None]:
    """Wall ms of one synchronous render (and GPU ms from its events when there are any)."""
    t0 = time.perf_counter_ns()
    f = engine.render(c)
    if f.event is not None:  # CUDA render() only orders the caller's stream: wait here
        f.event.synchronize()
    ms = (time.perf_counter_ns() - t0) / 1e6
    gpu = engine.gpu_ms(f) if hasattr(engine, "gpu_ms") and f.event is not None else None
    return ms, gpu


def fp16_parity(G, device: torch.device, seeds: int) -> dict:
    """PSNR (peak-to-peak 2, i.e. [-1, 1]) of fp16 vs fp32 synthesis over `seeds` z's."""
    from vj.gan.engine import enable_fp16

    G = copy.deepcopy(G).to(device)  # the shared network stays as it is
    enable_fp16(G)
    psnrs, maxerr = [], 0.0
    with torch.no_grad():
        for s in range(seeds):
            z = torch.from_numpy(np.random.RandomState(s).randn(1, G.z_dim)).float().to(device)
            ws = G.mapping(z, None, truncation_psi=1.0)
            a = G.synthesis(ws, noise_mode="const", force_fp32=True).float()
            b = G.synthesis(ws, noise_mode="const", force_fp32=False).float()
            mse = float((a - b).square().mean())
            psnrs.append(10 * math.log10(4.0 / max(mse, 1e-20)))
            maxerr = max(maxerr, float((a - b).abs().max()))
    return {
        "seeds": seeds,
        "psnr_min": min(psnrs),
        "psnr_mean": float(np.mean(psnrs)),
        "max_abs_err": maxerr,
    }


def build_row(row: str, args, size, device: torch.device, tmp: Path, nets=None) -> dict:
    """Build one row's engine; returns {"status": "ok", "engine": ...} or a status to print."""
    cuda = device.type == "cuda"
    if row in ("fp16", "graphs", "graphs_cl", "trt") and not cuda:
        return {"status": "n/a (no CUDA)"}
    if row == "trt" and not tensorrt_available():
        return {"status": "n/a (tensorrt not importable)"}
    G, _ = make_network(args, size, nets)
    if cuda:
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    t_build = time.perf_counter()
    if row == "chosen":
        warned: list[str] = []
        spec = spec_from(args, threads=args.threads)
        eng, note = build_engine(G, spec, cache_dir=tmp, warn=warned.append)
        note += "".join(f"; {w}" for w in warned)
    elif row in ("fp32", "fp32_cl", "fp16", "graphs", "graphs_cl", "compile"):
        dtype = "fp32" if row.startswith("fp32") or (row == "compile" and not cuda) else "fp16"
        eng = Engine(
            G,
            device=str(device),
            dtype=dtype,
            cuda_graphs=row in ("graphs", "graphs_cl"),
            channels_last=row.endswith("_cl"),
            compile=row == "compile",
            threads=args.threads,
        )
        note = eng.description + (f" ({eng.fallback_reason})" if eng.fallback_reason else "")
        if row == "compile" and eng.fallback_reason:
            return {"status": f"n/a ({eng.fallback_reason[:60]})"}
    elif row == "ort":
        path = export_onnx(G, tmp / f"{row}-{size}.onnx", fp16=False)
        providers = ["CPUExecutionProvider"]
        if cuda:
            import onnxruntime as ort

            if "CUDAExecutionProvider" in ort.get_available_providers():
                providers.insert(0, "CUDAExecutionProvider")
        eng = OrtEngine(path, threads=args.threads, providers=providers)
        note = eng.description
    else:  # trt
        onnx_path = export_onnx(G, tmp / f"{row}-{size}.onnx", fp16=True)
        plan = build_trt_engine(onnx_path, tmp / f"{row}-{size}.plan", fp16=True)
        eng = TrtEngine(plan, onnx_path)
        note = eng.description
    build_s = time.perf_counter() - t_build
    controls = controls_stream(G, args.warmup + args.frames, args.seed)
    for c in controls[: args.warmup]:
        eng.render(c)
    return {"status": "ok", "engine": eng, "controls": controls, "note": note,
            "build_s": build_s, "peak_mb": peak_mem_mb(device)}  # fmt: skip


def time_rows(built: list[dict], args, interleave: bool) -> None:
    """Time the built rows; interleaved (frame k of every row, then k+1) so that a shared,
    busy CPU loads every row alike, or one row after the other (a dedicated GPU)."""
    live = [b for b in built if b["status"] == "ok"]
    for b in live:
        b["ms"], b["gpu"] = [], []
    order = (
        [(k, b) for k in range(args.frames) for b in live]
        if interleave
        else [(k, b) for b in live for k in range(args.frames)]
    )
    for k, b in order:
        ms, gpu = time_frame(b["engine"], b["controls"][args.warmup + k])
        b["ms"].append(ms)
        if gpu is not None:
            b["gpu"].append(gpu)
    for b in live:
        ms = np.array(b.pop("ms"))
        gpu = b.pop("gpu")
        b.pop("engine"), b.pop("controls")
        b.update(p50_ms=float(np.percentile(ms, 50)), p95_ms=float(np.percentile(ms, 95)),
                 fps=float(1000 / np.median(ms)))  # fmt: skip
        if gpu:
            b["gpu_p50_ms"] = float(np.percentile(gpu, 50))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--checkpoint", help="benchmark this network instead of built-in configs")
    p.add_argument("--sizes", help="comma list of full-size resolutions (default: GPU 256,512,"
                   "1024; CPU: the default model only)")  # fmt: skip
    p.add_argument("--rows", default=",".join(ROWS), help=f"subset of {','.join(ROWS)}")
    p.add_argument("--frames", type=int, default=None, help="timed frames per row")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--threads", type=int, default=None, help="torch/ORT CPU threads")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--parity-seeds", type=int, default=None, help="fp16 parity seeds")
    p.add_argument("--upload", default="1920x1080", help="frame upload bench size WxH ('' = off)")
    add_engine_args(p)  # --device (every row) and --dtype/--backend/--cuda-graphs (row chosen)
    p.add_argument("--json", help="also write the results as JSON here")
    p.add_argument("--interleave", action=argparse.BooleanOptionalAction, default=None,
                   help="alternate rows frame by frame (default on CPU, off on CUDA)")  # fmt: skip
    args = p.parse_args(argv)
    rows = [r.strip() for r in args.rows.split(",") if r.strip()]
    bad = [r for r in rows if r not in ROWS]
    if bad:
        print(f"bench_generator: unknown rows {bad}; allowed: {', '.join(ROWS)}", file=sys.stderr)
        return 2
    want = args.device or "auto"
    if want.startswith("cuda") and not torch.cuda.is_available():
        print(f"bench_generator: --device {want}: torch sees no CUDA device", file=sys.stderr)
        return 2
    device = torch.device("cuda" if want == "auto" and torch.cuda.is_available()
                          else ("cpu" if want == "auto" else want))  # fmt: skip
    cuda = device.type == "cuda"
    if args.frames is None:
        args.frames = 200 if cuda else 30
    if args.parity_seeds is None:
        args.parity_seeds = 64 if cuda else 8
    if args.checkpoint:
        sizes: list[int | None] = [None]
    elif args.sizes:
        sizes = [int(s) for s in args.sizes.split(",")]
    else:
        sizes = [256, 512, 1024] if cuda else [None]
    if cuda:
        torch.backends.cudnn.benchmark = True
        dev_name = torch.cuda.get_device_name(device)
    else:
        n_threads = args.threads or torch.get_num_threads()
        dev_name = f"CPU {platform.processor() or platform.machine()}, {n_threads} threads"
    print(f"# bench_generator  {datetime.now(UTC):%Y-%m-%d %H:%M} UTC  device: {dev_name}  "
          f"torch {torch.__version__}  frames {args.frames} (+{args.warmup} warm-up)")  # fmt: skip
    print("\n| network | row | p50 ms | p95 ms | fps | GPU p50 ms | peak MB | build s | note |")
    print("|---|---|---|---|---|---|---|---|---|")
    results = []
    interleave = not cuda if args.interleave is None else args.interleave
    nets: dict = {}
    for size in sizes:
        label = network_label(args, size)
        with tempfile.TemporaryDirectory() as tmp:
            built = []
            for row in rows:
                try:
                    b = build_row(row, args, size, device, Path(tmp), nets)
                except Exception as exc:  # a failing backend is a result, not the end of the run
                    b = {"status": f"failed: {type(exc).__name__}: {str(exc).splitlines()[0][:80]}"}
                b.update(network=label, row=row)
                built.append(b)
            time_rows(built, args, interleave)
        for r in built:
            results.append(r)
            if r["status"] == "ok":
                gpu = f"{r['gpu_p50_ms']:.2f}" if "gpu_p50_ms" in r else "–"
                name = ROW_NAMES[r["row"]]
                print(
                    f"| {label} | {name} | {r['p50_ms']:.2f} | {r['p95_ms']:.2f} | "
                    f"{r['fps']:.1f} | {gpu} | {r['peak_mb']:.0f} | {r['build_s']:.1f} | "
                    f"{r['note']} |",
                    flush=True,
                )
            else:
                print(
                    f"| {label} | {ROW_NAMES[r['row']]} | {r['status']} | | | | | | |", flush=True
                )
    print("\nfp16 parity (fp16 vs fp32 synthesis, PSNR over [-1, 1]):")
    parity = []
    for size in sizes:
        G, label = make_network(args, size, nets)
        r = fp16_parity(G, device, args.parity_seeds)
        r["network"] = label
        parity.append(r)
        print(
            f"  {label}: {r['seeds']} seeds, PSNR min {r['psnr_min']:.1f} dB, mean "
            f"{r['psnr_mean']:.1f} dB, max |err| {r['max_abs_err']:.4f} ({device.type})"
        )
    upload = bench_upload(args.upload, device) if args.upload else []
    if args.json:
        Path(args.json).write_text(json.dumps({"device": dev_name, "rows": results,
                                               "parity": parity, "upload": upload},
                                              indent=1))  # fmt: skip
    return 0


def bench_upload(size: str, device: torch.device, frames: int = 30) -> list[dict]:
    """ms per frame upload into a GL texture (EGL context): host copy, and CUDA-GL interop
    when the device and the GL driver allow it (else the reason)."""
    from vj.render.interop import FrameUploader, interop_unavailable
    from vj.render.offscreen import create_headless_context

    w, h = (int(v) for v in size.lower().split("x"))
    try:
        ctx = create_headless_context()
    except Exception as exc:  # no EGL here: a result, not a crash
        print(f"\nupload {w}x{h}: n/a (no GL context: {str(exc).splitlines()[0]})")
        return []
    print(f"\nframe upload {w}x{h} RGBA8 into a GL texture (ms per frame, {frames} frames):")
    print("\n| path | p50 ms | p95 ms | note |\n|---|---|---|---|")
    tex = ctx.texture((w, h), 4)
    rows = []
    src = torch.randint(0, 256, (h, w, 4), dtype=torch.uint8)
    cases = [("host copy (CPU frame)", src, None)]
    if device.type == "cuda":
        cases.append(("host copy (CUDA frame)", src.to(device), "host"))
        cases.append(("CUDA-GL interop", src.to(device), "interop"))
    for name, frame, force in cases:
        up = FrameUploader(ctx)
        why = interop_unavailable(ctx) if force == "interop" else None
        if why is not None:
            print(f"| {name} | n/a | | {why} |")
            rows.append({"path": name, "status": f"n/a ({why})"})
            continue
        if force == "host":
            up._broken = up.reason = "forced host path (bench)"
        ms = []
        for _ in range(frames + 3):
            t0 = time.perf_counter_ns()
            used = up.upload(frame, tex)
            ctx.finish()  # the texture is written when this returns
            ms.append((time.perf_counter_ns() - t0) / 1e6)
        ms = np.array(ms[3:])
        p50, p95 = float(np.percentile(ms, 50)), float(np.percentile(ms, 95))
        r = {"path": name, "status": "ok", "used": used, "p50_ms": p50, "p95_ms": p95}
        rows.append(r)
        print(f"| {name} | {r['p50_ms']:.2f} | {r['p95_ms']:.2f} | {up.describe()} |")
        up.release()
    tex.release()
    ctx.release()
    return rows


if __name__ == "__main__":
    sys.exit(main())
