"""The onnxruntime and TensorRT engines (same API as vj.gan.engine.Engine) and make_engine.

Both run a `vj export onnx` file (vj/gan/export.py), cached by the network's digest.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from vj.clock import now_ns
from vj.gan.engine import Engine, EngineBase, Frame, _Ring
from vj.gan.export import BEND_INPUT
from vj.react.modulation import Controls


class OrtEngine(EngineBase):
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
        self.precision = meta["precision"]
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.log_severity_level = 3  # the noise defaults are overridable on purpose: no warning
        self.threads = threads
        if threads is not None:
            so.intra_op_num_threads = int(threads)
            so.inter_op_num_threads = 1
        self.session = ort.InferenceSession(
            str(onnx_path), so, providers=providers or ["CPUExecutionProvider"]
        )
        self.backend = "onnxruntime"
        self.device = torch.device("cpu")  # outputs land in host buffers, whatever the provider
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
        # noise inputs bound to our own maps: the file's const noise, times a frame's noise
        # masks (spatial gains) when it has them — the static graph's way to masks
        from vj.gan.export import noise_defaults

        meta_inputs = meta["noise_inputs"]
        defaults = noise_defaults(onnx_path)
        self._noise_const = [defaults[n].astype(np.float32) for n in meta_inputs]  # [1,1,R,R]
        self._noise = [c.copy() for c in self._noise_const]
        self._noise_masked = [False] * len(self._noise)
        for name, arr in zip(meta_inputs, self._noise, strict=True):
            v = ort.OrtValue.ortvalue_from_numpy(arr)
            self._vals.append(v)
            self._binding.bind_ortvalue_input(name, v)
        # network bends: the graph's bend_theta input, identity where no block is bent
        self._bends = BendThetas(meta["bend_blocks"] if meta["bends"] else 0)
        if self._bends.count:
            v = ort.OrtValue.ortvalue_from_numpy(self._bends.array)
            self._vals.append(v)
            self._binding.bind_ortvalue_input(BEND_INPUT, v)
        self._img_t = torch.from_numpy(self._img)
        self._ring = _Ring(self.n_buffers, r, output, self.device)
        self._count = 0

    @property
    def description(self) -> str:
        provider = self.session.get_providers()[0].replace("ExecutionProvider", "")
        text = f"onnxruntime {provider} {self.precision}"
        if self.threads is not None:
            text += f", {self.threads} thread{'s' if int(self.threads) != 1 else ''}"
        return text

    def render(self, controls: Controls, slot: int | None = None) -> Frame:
        t0 = now_ns()
        i = self._count
        slot = self._slot(slot)
        self._bends.set(self._static_graph(controls, self._bends.count))
        np.copyto(self._ws, controls.ws.detach().cpu().numpy())
        np.copyto(self._ns, controls.noise_strength.detach().cpu().numpy())
        self._set_masks(getattr(controls, "noise_masks", None))
        self.session.run_with_iobinding(self._binding)
        self._ring.convert(self._img_t, self._ring.scratch, self._ring.bufs[slot])
        self._count += 1
        return Frame(i, self._ring.views[slot], t0, now_ns(), slot=slot)

    def render_async(self, controls: Controls, slot: int | None = None) -> Frame:
        return self.render(controls, slot)

    def _set_masks(self, masks) -> None:
        """Each noise input = const noise × the frame's mask for that layer (or the const
        noise alone), rewritten only where it changes."""
        for k, (const, buf) in enumerate(zip(self._noise_const, self._noise, strict=True)):
            m = None if masks is None else masks[k]
            if m is None:
                if self._noise_masked[k]:
                    np.copyto(buf, const)
                    self._noise_masked[k] = False
                continue
            np.multiply(const[0, 0], m.detach().cpu().numpy(), out=buf[0, 0])  # [R, R]
            self._noise_masked[k] = True


class TrtEngine(EngineBase):
    """Runs a TensorRT engine built by `vj export trt` on a dedicated CUDA stream.

    Needs `tensorrt` and CUDA; I/O are torch CUDA tensors bound once by address.
    Unverified in this repository's CI (no GPU); see docs/engine.md.
    """

    def __init__(
        self,
        engine_path,
        onnx_path,
        n_buffers: int = 3,
        output: str = "rgba8",
        device: str = "cuda",
        fp16: bool = True,
    ) -> None:
        import tensorrt as trt

        from vj.gan.export import noise_defaults, read_meta

        if not torch.cuda.is_available():
            raise RuntimeError("TrtEngine needs a CUDA device")
        meta = read_meta(onnx_path)
        self.resolution, self.num_ws, self.w_dim = meta["resolution"], meta["num_ws"], meta["w_dim"]
        self.n_noise = len(meta["noise_layers"])
        dev = torch.device(device)
        self.device = dev if dev.index is not None else torch.device("cuda", 0)
        self.backend = "trt"
        self.fp16 = bool(fp16)  # how the plan was built (for the description)
        self.n_buffers = int(n_buffers)
        self._logger = trt.Logger(trt.Logger.WARNING)
        with open(engine_path, "rb") as f, torch.cuda.device(self.device):
            self._engine = trt.Runtime(self._logger).deserialize_cuda_engine(f.read())
        if self._engine is None:
            raise RuntimeError(f"{engine_path}: TensorRT could not load this engine")
        dev = self.device
        with torch.cuda.device(dev):
            self._ctx = self._engine.create_execution_context()
            self.stream = torch.cuda.Stream(device=dev)
        r = self.resolution
        self._ws = torch.zeros((1, self.num_ws, self.w_dim), device=dev)
        self._ns = torch.ones((self.n_noise,), device=dev)
        self._img = torch.zeros((1, 3, r, r), device=dev)
        tensors = {"ws": self._ws, "noise_strength": self._ns, "img": self._img}
        defaults = noise_defaults(onnx_path)
        self._noise_names = list(meta["noise_inputs"])
        self._noise_const = [torch.from_numpy(defaults[n]).to(dev) for n in self._noise_names]
        for name, const in zip(self._noise_names, self._noise_const, strict=True):
            tensors[name] = const.clone()  # bound by address: masks write into it
        self._noise_masked = [False] * len(self._noise_names)
        self._bends = BendThetas(meta["bend_blocks"] if meta["bends"] else 0)
        if self._bends.count:
            tensors[BEND_INPUT] = torch.from_numpy(self._bends.array).to(dev)
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
        self._init_events()
        self._count = 0

    @property
    def description(self) -> str:
        return f"TensorRT {self.device} {'fp16' if self.fp16 else 'fp32'}"

    def render_async(self, controls: Controls, slot: int | None = None) -> Frame:
        i = self._count
        slot = self._slot(slot)
        bends = self._static_graph(controls, self._bends.count)
        self._begin_slot(slot)
        t0 = now_ns()
        ws, ns = controls.ws, controls.noise_strength
        if ws.is_cuda:
            self.stream.wait_stream(torch.cuda.current_stream(ws.device))
        with torch.cuda.device(self.device), torch.cuda.stream(self.stream):
            self._starts[slot].record(self.stream)
            self._io["ws"].copy_(ws, non_blocking=True)
            self._io["noise_strength"].copy_(ns, non_blocking=True)
            self._set_masks(getattr(controls, "noise_masks", None))
            if self._bends.set(bends):  # changed: the bound input follows (a [k, 2, 3] copy)
                dst = self._io[BEND_INPUT]
                dst.copy_(torch.from_numpy(self._bends.array).to(dst.dtype), non_blocking=True)
            if not self._ctx.execute_async_v3(self.stream.cuda_stream):
                raise RuntimeError("TensorRT execution failed")
            img = self._io["img"].float()
            self._ring.convert(img, self._ring.scratch, self._ring.bufs[slot])
            self._ends[slot].record(self.stream)
        self._used[slot] = True
        self._slot_frame[slot] = i
        self._count += 1
        start, end = self._starts[slot], self._ends[slot]
        buf = self._ring.bufs[slot]
        return Frame(i, buf, t0, 0, event=end, slot=slot, start=start, stream=self.stream)

    def render(self, controls: Controls, slot: int | None = None) -> Frame:
        return self._wait_on_caller_stream(self.render_async(controls, slot))

    def _set_masks(self, masks) -> None:
        """As OrtEngine._set_masks, on the engine's stream (the bound input tensors)."""
        for k, name in enumerate(self._noise_names):
            m = None if masks is None else masks[k]
            dst, const = self._io[name], self._noise_const[k]
            if m is None:
                if self._noise_masked[k]:
                    dst.copy_(const)
                    self._noise_masked[k] = False
                continue
            gain = m.to(self.device, non_blocking=True).to(dst.dtype)  # [R, R]
            torch.mul(const.to(dst.dtype), gain, out=dst)
            self._noise_masked[k] = True


class BendThetas:
    """A frame's bends as a static graph's `bend_theta` input: `array` [count, 2, 3] fp32, the
    identity for every block not bent (the exported graph resamples each of its first `count`
    blocks' inputs through it; `vj.gan.stylegan2.bend_theta` makes each matrix)."""

    def __init__(self, count: int) -> None:
        from vj.gan.export import identity_thetas

        self.count = int(count)
        self._eye = identity_thetas(self.count).numpy()
        self.array = self._eye.copy()
        self._key: tuple = ()

    def set(self, bends) -> bool:
        """Write `bends` (each at a block < count); True when the array changed."""
        from vj.gan.stylegan2 import bend_theta

        key = tuple((int(b.block), *map(float, b.translate), float(b.rotate), float(b.zoom))
                    for b in bends)  # fmt: skip
        if key == self._key:
            return False
        self._key = key
        np.copyto(self.array, self._eye)
        for b in bends:
            self.array[int(b.block)] = bend_theta(b.translate, b.rotate, b.zoom)[0].numpy()
        return True


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


def cache_key(G, fp16: bool) -> str:
    """The stem of G's cached ONNX / TensorRT files: digest, precision, graph format ("g2":
    with the bend_theta input; files cached before it are exported anew)."""
    return network_digest(G)[:20] + ("-fp16" if fp16 else "") + "-g2"


def default_cache_dir() -> Path:
    return Path.home() / ".cache" / "vj" / "engines"


def make_engine(G, backend: str = "torch", cache_dir=None, fp16: bool | None = None, **kwargs):
    """An engine for G by backend name. onnxruntime/trt export once into `cache_dir` (keyed by
    network_digest and precision) and reuse the file on later runs; kwargs go to the engine.

    `fp16`: precision of the ONNX/TensorRT graph (default: fp32 for onnxruntime, fp16 for
    TensorRT). The same flag builds the export and the TensorRT plan, so they always agree.
    """
    if backend not in BACKENDS:
        raise ValueError(f"engine: backend {backend!r} not one of {BACKENDS}")
    if backend == "torch":
        return Engine(G, **kwargs)
    from vj.gan.export import build_trt_engine, export_onnx

    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    fp16 = (backend == "trt") if fp16 is None else bool(fp16)
    key = cache_key(G, fp16)
    onnx_path = cache_dir / f"{key}.onnx"
    if not onnx_path.exists():
        export_onnx(G, onnx_path, fp16=fp16)
    n_buffers = kwargs.get("n_buffers", 3)
    output = kwargs.get("output", "rgba8")
    if backend == "onnxruntime":
        return OrtEngine(
            onnx_path,
            n_buffers=n_buffers,
            threads=kwargs.get("threads"),
            providers=kwargs.get("providers"),
            output=output,
        )
    plan = cache_dir / f"{key}.plan"
    if not plan.exists():
        build_trt_engine(onnx_path, plan, fp16=fp16)
    device = kwargs.get("device", "cuda")
    return TrtEngine(plan, onnx_path, n_buffers=n_buffers, output=output, device=device, fp16=fp16)
