"""Generator engine: Controls → RGBA frames in preallocated buffers, on CPU or a CUDA stream.

Backends share one API (`render`, `render_async`, `ready`, `resolution`, `device`, `backend`):
torch on CPU, torch on a dedicated CUDA stream (eager or CUDA-graph replay), onnxruntime and
TensorRT (vj/gan/export.py builds the files). A frame's buffer stays valid until `n_buffers`
further frames have been rendered; the caller copies or uploads it before then.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from vj.clock import now_ns
from vj.react.modulation import Controls, num_noise_layers

DEVICES = ("auto", "cpu", "cuda")
DTYPES = ("auto", "fp32", "fp16")
OUTPUTS = ("rgba8", "rgba16f")


@dataclass
class Frame:
    """One finished (or, from render_async, submitted) generator frame."""

    index: int
    rgba: (
        np.ndarray | torch.Tensor
    )  # [H, W, 4] uint8 (or float16 0..1); numpy on CPU, CUDA tensor on GPU
    t_start_ns: int  # clock time the render was submitted
    t_end_ns: int  # clock time it was seen finished (0 while a GPU frame is in flight)
    event: Any = None  # torch.cuda.Event recorded after the frame's last kernel (GPU only)


# -- output conversion: fast path and its reference twin ----------------------------------
def to_rgba8_(img: torch.Tensor, scratch: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """img [1, 3, H, W] in [-1, 1] → out [H, W, 4] uint8 (alpha preset), via scratch [H, W, 3] fp32.

    Same arithmetic as NVIDIA's tools: (x * 127.5 + 128).clamp(0, 255) truncated to uint8.
    No allocation: every op writes into scratch or out.
    """
    torch.mul(img[0].permute(1, 2, 0), 127.5, out=scratch)  # [H, W, 3]
    scratch.add_(128.0).clamp_(0.0, 255.0)
    out[..., :3].copy_(scratch)  # float → uint8 truncates, like .to(torch.uint8)
    return out


def to_rgba16f_(img: torch.Tensor, scratch: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """img [1, 3, H, W] in [-1, 1] → out [H, W, 4] float16 in [0, 1] (alpha preset)."""
    torch.mul(img[0].permute(1, 2, 0), 0.5, out=scratch)
    scratch.add_(0.5).clamp_(0.0, 1.0)
    out[..., :3].copy_(scratch)
    return out


def to_rgba8_reference(img: torch.Tensor | np.ndarray) -> np.ndarray:
    """Plain numpy twin of to_rgba8_: [1, 3, H, W] → [H, W, 4] uint8."""
    x = np.asarray(img.detach().float().cpu() if isinstance(img, torch.Tensor) else img)
    x = x[0].astype(np.float32).transpose(1, 2, 0)
    rgb = np.clip(x * np.float32(127.5) + np.float32(128.0), 0, 255).astype(np.uint8)
    alpha = np.full(rgb.shape[:2] + (1,), 255, np.uint8)
    return np.concatenate([rgb, alpha], axis=-1)


def resolve_device(device: str) -> torch.device:
    if device not in DEVICES and not device.startswith("cuda:"):
        raise ValueError(f"engine: device {device!r} not one of {DEVICES} or 'cuda:N'")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"engine: device {device!r} asked for, but torch sees no CUDA device")
    return torch.device(device)


def resolve_dtype(dtype: str, device: torch.device) -> str:
    if dtype not in DTYPES:
        raise ValueError(f"engine: dtype {dtype!r} not one of {DTYPES}")
    if dtype == "auto":
        return "fp16" if device.type == "cuda" else "fp32"
    if dtype == "fp16" and device.type != "cuda":
        raise ValueError("engine: dtype 'fp16' needs a CUDA device (CPU runs fp32)")
    return dtype


def enable_fp16(G, num_fp16_res: int = 4) -> int:
    """Mark the top `num_fp16_res` resolutions fp16 if the network has none (as NVIDIA's training
    default does); returns how many blocks run fp16. Values stay the same network's."""
    blocks = G.synthesis.blocks()
    if not any(b.use_fp16 for b in blocks):
        res = [b.resolution for b in blocks]
        floor = max(2 ** (max(res).bit_length() - num_fp16_res), 8)
        for b in blocks:
            b.use_fp16 = b.resolution >= floor
    return sum(b.use_fp16 for b in blocks)


class _Ring:
    """n preallocated output buffers [H, W, 4] with alpha preset, plus a conversion scratch."""

    def __init__(self, n: int, res: int, output: str, device: torch.device) -> None:
        if output not in OUTPUTS:
            raise ValueError(f"engine: output {output!r} not one of {OUTPUTS}")
        if n < 1:
            raise ValueError(f"engine: n_buffers must be >= 1, got {n}")
        dt = torch.uint8 if output == "rgba8" else torch.float16
        one = 255 if output == "rgba8" else 1.0
        pin = device.type == "cpu" and torch.cuda.is_available()
        self.bufs = [torch.full((res, res, 4), one, dtype=dt, device=device) for _ in range(n)]
        if pin:
            self.bufs = [b.pin_memory() for b in self.bufs]
        self.views = [b.numpy() if device.type == "cpu" else b for b in self.bufs]
        self.scratch = torch.empty((res, res, 3), dtype=torch.float32, device=device)
        self.convert = to_rgba8_ if output == "rgba8" else to_rgba16f_


class Engine:
    """Runs G.synthesis for Controls into n preallocated RGBA buffers (torch backends)."""

    def __init__(
        self,
        G,
        device: str = "auto",
        dtype: str = "auto",
        n_buffers: int = 3,
        cuda_graphs: bool = True,
        compile: bool = False,
        channels_last: bool | str = "auto",
        threads: int | None = None,
        output: str = "rgba8",
        noise_mode: str = "const",
    ) -> None:
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self.resolution = int(G.img_resolution)
        self.num_ws, self.w_dim = int(G.num_ws), int(G.w_dim)
        self.n_noise = num_noise_layers(G)
        self.noise_mode = noise_mode
        self.n_buffers = int(n_buffers)
        if threads is not None:
            torch.set_num_threads(int(threads))  # explicit request: process-wide by torch's design
        is_cuda = self.device.type == "cuda"
        if channels_last == "auto":
            # CPU: NHWC weights save oneDNN a weight reorder per conv (default model 56 → 47 ms,
            # docs/engine.md). CUDA: off until measured there (bench row graphs_cl).
            channels_last = not is_cuda
        self.G = G.to(self.device).eval().requires_grad_(False)
        if self.dtype == "fp16":
            enable_fp16(self.G)
        if channels_last:
            self.G.synthesis.to(memory_format=torch.channels_last)
        self._synth = self.G.synthesis
        self._compile_pending = bool(compile)
        self._ring = _Ring(self.n_buffers, self.resolution, output, self.device)
        self._ws = torch.zeros(
            (1, self.num_ws, self.w_dim), dtype=torch.float32, device=self.device
        )
        self._ns = torch.ones((self.n_noise,), dtype=torch.float32, device=self.device)
        self._count = 0
        self.backend = "torch-cuda" if is_cuda else "torch-cpu"
        self.fallback_reason = ""  # why a faster path was not used, if it was not
        if is_cuda:
            self._init_cuda(cuda_graphs)
        else:
            self._maybe_compile()  # compile at construction, not on the first live frame

    # -- the forward ----------------------------------------------------------------------
    def _forward_into(self, out: torch.Tensor, extra: dict | None = None) -> None:
        img = self._synth(
            self._ws,
            noise_mode=self.noise_mode,
            force_fp32=self.dtype == "fp32",
            noise_strength=self._ns,
            **(extra or {}),  # DeckControls' bends / noise_masks (eager only: see _extras)
        )  # [1, 3, H, W]
        self._ring.convert(img, self._ring.scratch, out)

    def _maybe_compile(self) -> None:
        if not self._compile_pending:
            return
        self._compile_pending = False
        try:
            compiled = torch.compile(self.G.synthesis, dynamic=False)
            with torch.inference_mode():
                self._synth = compiled
                self._forward_into(self._ring.bufs[0])  # compiles now, not mid-show
        except Exception as exc:  # no compiler, unsupported op: eager still works
            self._synth = self.G.synthesis
            self.fallback_reason = f"torch.compile failed, eager instead: {exc}".splitlines()[0]
            print(f"vj engine: {self.fallback_reason}", file=sys.stderr)

    # -- CPU ------------------------------------------------------------------------------
    def render(self, controls: Controls) -> Frame:
        """Render one frame and wait for it; on CUDA the buffer is ready when this returns."""
        if self.device.type == "cuda":
            frame = self.render_async(controls)
            frame.event.synchronize()
            frame.t_end_ns = now_ns()
            return frame
        t0 = now_ns()
        i = self._count
        slot = i % self.n_buffers
        with torch.inference_mode():
            self._ws.copy_(controls.ws)
            self._ns.copy_(controls.noise_strength)
            self._forward_into(self._ring.bufs[slot], _extras(controls))
        self._count += 1
        return Frame(i, self._ring.views[slot], t0, now_ns())

    def render_async(self, controls: Controls) -> Frame:
        """Submit a frame; on CUDA returns at once (poll `ready`), on CPU renders synchronously."""
        if self.device.type != "cuda":
            return self.render(controls)
        return self._submit_cuda(controls)

    def ready(self, frame: Frame) -> bool:
        """True once the frame's buffer holds the finished image (stamps t_end_ns once)."""
        if frame.t_end_ns:
            return True
        if frame.event is not None and not frame.event.query():
            return False
        frame.t_end_ns = now_ns()
        return True

    def gpu_ms(self, frame: Frame) -> float | None:
        """GPU time of a finished CUDA frame (from its events), else None."""
        if frame.event is None or not self.ready(frame):
            return None
        start = self._starts[frame.index % self.n_buffers]
        return float(start.elapsed_time(frame.event))

    # -- CUDA -----------------------------------------------------------------------------
    def _init_cuda(self, cuda_graphs: bool) -> None:
        dev = self.device
        self.stream = torch.cuda.Stream(device=dev)
        n = self.n_buffers
        # Pinned host staging per slot: a slot is rewritten only after its last frame finished.
        self._stage_ws = [torch.zeros_like(self._ws, device="cpu").pin_memory() for _ in range(n)]
        self._stage_ns = [torch.ones_like(self._ns, device="cpu").pin_memory() for _ in range(n)]
        self._starts = [torch.cuda.Event(enable_timing=True) for _ in range(n)]
        self._ends = [torch.cuda.Event(enable_timing=True) for _ in range(n)]
        self._used = [False] * n
        self._static_out = torch.empty_like(self._ring.bufs[0])
        self._graph = None
        with torch.cuda.device(dev), torch.inference_mode():
            self._maybe_compile()
            # Weights, buffers (and the compile run) used the default stream: order after them.
            self.stream.wait_stream(torch.cuda.current_stream(dev))
            # Warm up on the side stream (cuDNN autotune, lazy init) before any capture.
            with torch.cuda.stream(self.stream):
                for _ in range(3):
                    self._forward_into(self._static_out)
            self.stream.synchronize()
            if cuda_graphs:
                try:
                    graph = torch.cuda.CUDAGraph()
                    with torch.cuda.graph(graph, stream=self.stream):
                        self._forward_into(self._static_out)
                    with torch.cuda.stream(self.stream):
                        graph.replay()  # a first replay surfaces launch errors here, not live
                    self.stream.synchronize()
                    self._graph = graph
                    self.backend = "cuda-graph"
                except Exception as exc:  # capture-unsafe op somewhere: stay eager
                    self._graph = None
                    torch.cuda.synchronize(dev)
                    msg = f"CUDA graph capture failed, eager: {exc}"
                    self.fallback_reason = msg.splitlines()[0]
                    print(f"vj engine: {self.fallback_reason}", file=sys.stderr)

    def _submit_cuda(self, controls: Controls) -> Frame:
        i = self._count
        slot = i % self.n_buffers
        if self._used[slot]:
            self._ends[slot].synchronize()  # n frames deep: the oldest must have finished
        t0 = now_ns()
        ws, ns = controls.ws, controls.noise_strength
        on_gpu = ws.is_cuda
        if on_gpu:  # made on the GPU (modulator on the device): order after its stream
            self.stream.wait_stream(torch.cuda.current_stream(self.device))
            ws.record_stream(self.stream)
            ns.record_stream(self.stream)
        else:
            self._stage_ws[slot].copy_(ws)
            self._stage_ns[slot].copy_(ns)
            ws, ns = self._stage_ws[slot], self._stage_ns[slot]
        out = self._ring.bufs[slot]
        with torch.cuda.device(self.device), torch.cuda.stream(self.stream), torch.inference_mode():
            self._starts[slot].record(self.stream)
            self._ws.copy_(ws, non_blocking=True)
            self._ns.copy_(ns, non_blocking=True)
            extra = _extras(controls)
            if extra:  # bends / masks are not in the captured graph: this frame runs eager
                self._forward_into(out, extra)
            elif self._graph is not None:
                self._graph.replay()
                out.copy_(self._static_out)
            else:
                self._forward_into(out)
            self._ends[slot].record(self.stream)
        self._used[slot] = True
        self._count += 1
        return Frame(i, out, t0, 0, event=self._ends[slot])


def _extras(controls) -> dict | None:
    """A DeckControls' bends / noise masks as synthesis kwargs; None when it has neither (or is
    an old-style Controls), which keeps the fast paths (CUDA graph, compiled forward)."""
    bends = getattr(controls, "bends", ())
    masks = getattr(controls, "noise_masks", None)
    if not bends and masks is None:
        return None
    return {"bends": bends or None, "noise_masks": masks}


# -- onnxruntime and TensorRT backends -----------------------------------------------------
class OrtEngine:
    """Runs a `vj export onnx` file with onnxruntime (CPU by default) into preallocated buffers.

    Inputs and output are bound once to preallocated arrays (io binding), so a frame allocates
    nothing on our side; the const noise comes from the file's overridable defaults.
    """

    def __init__(
        self,
        onnx_path,
        n_buffers: int = 3,
        threads: int | None = None,
        providers: list[str] | None = None,
        output: str = "rgba8",
    ) -> None:
        import onnxruntime as ort

        from vj.gan.export import read_meta

        meta = read_meta(onnx_path)
        self.resolution, self.num_ws, self.w_dim = meta["resolution"], meta["num_ws"], meta["w_dim"]
        self.n_noise = len(meta["noise_layers"])
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.log_severity_level = 3  # the noise defaults are overridable on purpose: no warning
        if threads is not None:
            so.intra_op_num_threads = int(threads)
            so.inter_op_num_threads = 1
        self.session = ort.InferenceSession(
            str(onnx_path), so, providers=providers or ["CPUExecutionProvider"]
        )
        self.backend = "onnxruntime"
        self.device = torch.device("cpu")
        self.n_buffers = int(n_buffers)
        r = self.resolution
        self._ws = np.zeros((1, self.num_ws, self.w_dim), np.float32)
        self._ns = np.ones((self.n_noise,), np.float32)
        self._img = np.zeros((1, 3, r, r), np.float32)
        self._binding = self.session.io_binding()
        # OrtValues over our arrays share their memory: update the arrays, run, read _img.
        self._vals = [ort.OrtValue.ortvalue_from_numpy(a) for a in (self._ws, self._ns, self._img)]
        self._binding.bind_ortvalue_input("ws", self._vals[0])
        self._binding.bind_ortvalue_input("noise_strength", self._vals[1])
        self._binding.bind_ortvalue_output("img", self._vals[2])
        self._img_t = torch.from_numpy(self._img)
        self._ring = _Ring(self.n_buffers, r, output, self.device)
        self._count = 0

    def render(self, controls: Controls) -> Frame:
        t0 = now_ns()
        i = self._count
        slot = i % self.n_buffers
        np.copyto(self._ws, controls.ws.detach().cpu().numpy())
        np.copyto(self._ns, controls.noise_strength.detach().cpu().numpy())
        self.session.run_with_iobinding(self._binding)
        self._ring.convert(self._img_t, self._ring.scratch, self._ring.bufs[slot])
        self._count += 1
        return Frame(i, self._ring.views[slot], t0, now_ns())

    render_async = render

    def ready(self, frame: Frame) -> bool:
        return True


class TrtEngine:
    """Runs a TensorRT engine built by `vj export trt` on a dedicated CUDA stream.

    Needs `tensorrt` and CUDA; I/O are torch CUDA tensors bound once by address.
    Unverified in this repository's CI (no GPU); see docs/engine.md.
    """

    def __init__(self, engine_path, onnx_path, n_buffers: int = 3, output: str = "rgba8") -> None:
        import tensorrt as trt

        from vj.gan.export import noise_defaults, read_meta

        if not torch.cuda.is_available():
            raise RuntimeError("TrtEngine needs a CUDA device")
        meta = read_meta(onnx_path)
        self.resolution, self.num_ws, self.w_dim = meta["resolution"], meta["num_ws"], meta["w_dim"]
        self.n_noise = len(meta["noise_layers"])
        self.device = torch.device("cuda")
        self.backend = "trt"
        self.n_buffers = int(n_buffers)
        self._logger = trt.Logger(trt.Logger.WARNING)
        with open(engine_path, "rb") as f:
            self._engine = trt.Runtime(self._logger).deserialize_cuda_engine(f.read())
        if self._engine is None:
            raise RuntimeError(f"{engine_path}: TensorRT could not load this engine")
        self._ctx = self._engine.create_execution_context()
        self.stream = torch.cuda.Stream()
        r = self.resolution
        dev = self.device
        self._ws = torch.zeros((1, self.num_ws, self.w_dim), device=dev)
        self._ns = torch.ones((self.n_noise,), device=dev)
        self._img = torch.zeros((1, 3, r, r), device=dev)
        tensors = {"ws": self._ws, "noise_strength": self._ns, "img": self._img}
        for name, arr in noise_defaults(onnx_path).items():
            tensors[name] = torch.from_numpy(arr).to(dev)
        self._io = tensors
        for k in range(self._engine.num_io_tensors):
            name = self._engine.get_tensor_name(k)
            if name not in tensors:
                raise RuntimeError(f"{engine_path}: unexpected engine tensor {name!r}")
            t = tensors[name]
            want = trt.nptype(self._engine.get_tensor_dtype(name))
            if np.dtype(want) != np.float32:  # inputs were exported fp32; convert if TRT chose
                t = tensors[name] = t.to(getattr(torch, np.dtype(want).name))
            self._ctx.set_tensor_address(name, t.data_ptr())
        self._ring = _Ring(self.n_buffers, r, output, dev)
        self._starts = [torch.cuda.Event(enable_timing=True) for _ in range(self.n_buffers)]
        self._ends = [torch.cuda.Event(enable_timing=True) for _ in range(self.n_buffers)]
        self._used = [False] * self.n_buffers
        self._count = 0

    def render_async(self, controls: Controls) -> Frame:
        i = self._count
        slot = i % self.n_buffers
        if self._used[slot]:
            self._ends[slot].synchronize()
        t0 = now_ns()
        ws, ns = controls.ws, controls.noise_strength
        if ws.is_cuda:
            self.stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(self.stream):
            self._starts[slot].record(self.stream)
            self._io["ws"].copy_(ws, non_blocking=True)
            self._io["noise_strength"].copy_(ns, non_blocking=True)
            if not self._ctx.execute_async_v3(self.stream.cuda_stream):
                raise RuntimeError("TensorRT execution failed")
            img = self._io["img"].float()
            self._ring.convert(img, self._ring.scratch, self._ring.bufs[slot])
            self._ends[slot].record(self.stream)
        self._used[slot] = True
        self._count += 1
        return Frame(i, self._ring.bufs[slot], t0, 0, event=self._ends[slot])

    def render(self, controls: Controls) -> Frame:
        frame = self.render_async(controls)
        frame.event.synchronize()
        frame.t_end_ns = now_ns()
        return frame

    def ready(self, frame: Frame) -> bool:
        return Engine.ready(self, frame)  # same event logic


# -- choosing a backend ---------------------------------------------------------------------
BACKENDS = ("torch", "onnxruntime", "trt")


def network_digest(G) -> str:
    """sha256 of a network's config and weights: names its cached ONNX/TensorRT files."""
    import hashlib
    import json

    h = hashlib.sha256()
    cfg = G.config() if hasattr(G, "config") else {}
    h.update(json.dumps(cfg, sort_keys=True, default=str).encode())
    for name, t in sorted(G.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().float().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def make_engine(G, backend: str = "torch", cache_dir=None, **kwargs):
    """An engine for G by backend name. onnxruntime/trt export once into `cache_dir` (keyed by
    network_digest) and reuse the file on later runs; kwargs go to the engine's constructor."""
    from pathlib import Path

    if backend not in BACKENDS:
        raise ValueError(f"engine: backend {backend!r} not one of {BACKENDS}")
    if backend == "torch":
        return Engine(G, **kwargs)
    from vj.gan.export import build_trt_engine, export_onnx

    if cache_dir is None:
        cache_dir = Path.home() / ".cache" / "vj" / "engines"
    cache_dir = Path(cache_dir)
    key = network_digest(G)[:20]
    fp16 = backend == "trt"
    onnx_path = cache_dir / f"{key}{'-fp16' if fp16 else ''}.onnx"
    if not onnx_path.exists():
        export_onnx(G, onnx_path, fp16=fp16)
    n_buffers = kwargs.get("n_buffers", 3)
    output = kwargs.get("output", "rgba8")
    if backend == "onnxruntime":
        return OrtEngine(onnx_path, n_buffers=n_buffers, threads=kwargs.get("threads"),
                         output=output)  # fmt: skip
    plan = cache_dir / f"{key}.plan"
    if not plan.exists():
        build_trt_engine(onnx_path, plan, fp16=True)
    return TrtEngine(plan, onnx_path, n_buffers=n_buffers, output=output)
