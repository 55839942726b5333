"""Generator engine: Controls → RGBA frames in preallocated buffers, on CPU or a CUDA stream.

Backends share one API through `EngineBase` (`render`, `render_async`, `ready`, `gpu_ms`,
`resolution`, `device`, `backend`, `n_buffers`): torch on CPU, torch on a dedicated CUDA stream
(eager or CUDA-graph replay) here; onnxruntime and TensorRT in vj/gan/backends.py. A frame's
buffer is rewritten only when a later frame is rendered into the same slot: round-robin by
default, or the slot the caller names (vj/gan/pacing.FrameExchange keeps displayed ones safe).
"""

from __future__ import annotations

import copy
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
    slot: int = 0  # which ring buffer holds it
    start: Any = None  # torch.cuda.Event recorded before its first kernel (GPU only)
    stream: Any = None  # the torch.cuda.Stream it was rendered on (GPU only)


# -- output conversion: fast path and its reference twin ----------------------------------
def to_rgba8_(img: torch.Tensor, scratch: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """img [1, 3, H, W] in [-1, 1] → out [H, W, 4] uint8, alpha 255, via scratch [H, W, 3] fp32.

    Same arithmetic as NVIDIA's tools: (x * 127.5 + 128).clamp(0, 255) truncated to uint8.
    No allocation: every op writes into scratch or out. Alpha is written every time (one byte
    per pixel), so an `empty` buffer — a CUDA graph's static output — never carries garbage.
    """
    torch.mul(img[0].permute(1, 2, 0), 127.5, out=scratch)  # [H, W, 3]
    scratch.add_(128.0).clamp_(0.0, 255.0)
    out[..., :3].copy_(scratch)  # float → uint8 truncates, like .to(torch.uint8)
    out[..., 3].fill_(255)
    return out


def to_rgba16f_(img: torch.Tensor, scratch: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """img [1, 3, H, W] in [-1, 1] → out [H, W, 4] float16 in [0, 1], alpha 1."""
    torch.mul(img[0].permute(1, 2, 0), 0.5, out=scratch)
    scratch.add_(0.5).clamp_(0.0, 1.0)
    out[..., :3].copy_(scratch)
    out[..., 3].fill_(1.0)
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
    dev = torch.device(device)
    if dev.type == "cuda":
        index = torch.cuda.current_device() if dev.index is None else dev.index
        if index >= torch.cuda.device_count():
            n = torch.cuda.device_count()
            raise RuntimeError(f"engine: device {device!r} asked for, but torch sees {n} GPU(s)")
        dev = torch.device("cuda", index)
    return dev


def resolve_dtype(dtype: str, device: torch.device) -> str:
    if dtype not in DTYPES:
        raise ValueError(f"engine: dtype {dtype!r} not one of {DTYPES}")
    if dtype == "auto":
        return "fp16" if device.type == "cuda" else "fp32"
    if dtype == "fp16" and device.type != "cuda":
        raise ValueError("engine: dtype 'fp16' needs a CUDA device (CPU runs fp32)")
    return dtype


FP16_CLAMP = 256.0  # NVIDIA trains and runs fp16 layers only with this activation clamp


def enable_fp16(G, num_fp16_res: int = 4, clamp: float = FP16_CLAMP) -> int:
    """Mark the top `num_fp16_res` resolutions fp16 if the network has none (as NVIDIA's training
    default does) and give every fp16 layer without a clamp (rosinality/TF-converted nets have
    conv_clamp=None) the clamp of `clamp`, without which fp16 activations overflow to inf/NaN.
    Changes G in place (callers pass their own copy); returns how many blocks run fp16."""
    blocks = G.synthesis.blocks()
    if not any(b.use_fp16 for b in blocks):
        res = [b.resolution for b in blocks]
        floor = max(2 ** (max(res).bit_length() - num_fp16_res), 8)
        for b in blocks:
            b.use_fp16 = b.resolution >= floor
    for b in blocks:
        if not b.use_fp16:
            continue
        layers = [*b.conv_layers(), *([b.torgb] if b.num_torgb else [])]
        for layer in layers:
            if layer.conv_clamp is None:
                layer.conv_clamp = clamp
    return sum(b.use_fp16 for b in blocks)


class _Ring:
    """n preallocated output buffers [H, W, 4] with alpha preset, plus a conversion scratch."""

    def __init__(self, n: int, res: int, output: str, device: torch.device) -> None:
        if output not in OUTPUTS:
            raise ValueError(f"engine: output {output!r} not one of {OUTPUTS}")
        if n < 1:
            raise ValueError(f"engine: n_buffers must be >= 1, got {n}")
        self.dtype = torch.uint8 if output == "rgba8" else torch.float16
        self.one = 255 if output == "rgba8" else 1.0
        dt, one = self.dtype, self.one
        pin = device.type == "cpu" and torch.cuda.is_available()
        self.bufs = [torch.full((res, res, 4), one, dtype=dt, device=device) for _ in range(n)]
        if pin:
            self.bufs = [b.pin_memory() for b in self.bufs]
        self.views = [b.numpy() if device.type == "cpu" else b for b in self.bufs]
        self.scratch = torch.empty((res, res, 3), dtype=torch.float32, device=device)
        self.convert = to_rgba8_ if output == "rgba8" else to_rgba16f_


class EngineBase:
    """What every backend shares: identity, the slot choice, readiness and GPU timing of frames.

    Subclasses set `resolution`, `device`, `backend`, `n_buffers`, `_count` and, on CUDA, call
    `_init_events()`; `description` is the one line the HUD and reports name.
    """

    resolution: int
    device: torch.device
    backend: str
    n_buffers: int
    fallback_reason: str = ""
    _told_static: bool = False  # static-graph notice given (per engine)
    _count: int = 0
    _starts: list | None = None
    _ends: list | None = None

    @property
    def description(self) -> str:
        return self.backend

    @property
    def next_slot(self) -> int:
        """The slot `render(controls)` writes when no slot is named (round-robin)."""
        return self._count % self.n_buffers

    def _slot(self, slot: int | None) -> int:
        if slot is None:
            return self.next_slot
        if not 0 <= int(slot) < self.n_buffers:
            raise ValueError(f"engine: slot {slot} not in 0..{self.n_buffers - 1}")
        return int(slot)

    def _init_events(self) -> None:
        n = self.n_buffers
        self._starts = [torch.cuda.Event(enable_timing=True) for _ in range(n)]
        self._ends = [torch.cuda.Event(enable_timing=True) for _ in range(n)]
        self._used = [False] * n
        self._slot_frame = [-1] * n  # index of the frame whose events a slot holds now

    def _begin_slot(self, slot: int) -> None:
        if self._used[slot]:
            self._ends[slot].synchronize()  # the slot's previous frame must have finished

    def ready(self, frame: Frame) -> bool:
        """True once the frame's buffer holds the finished image (stamps t_end_ns once)."""
        if frame.t_end_ns:
            return True
        if frame.event is not None and not frame.event.query():
            return False
        frame.t_end_ns = now_ns()
        return True

    def gpu_ms(self, frame: Frame) -> float | None:
        """GPU time of a finished CUDA frame from its own start/end events, else None (CPU, not
        finished, or its slot already re-recorded by a later frame)."""
        if frame.event is None or frame.start is None or self._ends is None:
            return None
        if self._slot_frame[frame.slot] != frame.index or not self.ready(frame):
            return None
        return float(frame.start.elapsed_time(frame.event))

    def _static_graph(self, controls, bendable: int = 0) -> tuple:
        """The frame's bends an ONNX / TensorRT graph can apply: those at its first `bendable`
        blocks (its `bend_theta` input; files from before that input have none). Any other
        bend renders without it, said once (stderr) and kept in `fallback_reason`."""
        bends = tuple(getattr(controls, "bends", ()) or ())
        if not bends:
            return ()
        ok = tuple(b for b in bends if 0 <= int(b.block) < bendable)
        if len(ok) < len(bends) and not self._told_static:
            self._told_static = True
            lost = sorted({int(b.block) for b in bends} - {int(b.block) for b in ok})
            where = f"blocks 0..{bendable - 1} only" if bendable else "no bend input (re-export)"
            self.fallback_reason = (
                f"{self.backend}: static graph bends {where}; bend at block "
                f"{', '.join(map(str, lost))} ignored (use --backend torch)"
            )
            print(f"vj engine: {self.fallback_reason}", file=sys.stderr)
        return ok

    def _wait_on_caller_stream(self, frame: Frame) -> Frame:
        # render(): work the caller queues on its current stream (a .cpu(), an upload) runs
        # after the frame, without the host waiting for the GPU here.
        torch.cuda.current_stream(self.device).wait_event(frame.event)
        return frame


class Engine(EngineBase):
    """Runs G.synthesis for Controls into n preallocated RGBA buffers (torch backends).

    Works on its own copy of G: the caller's network keeps its device, dtype, flags and layout.
    """

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
        self.threads = threads
        if threads is not None:
            torch.set_num_threads(int(threads))  # explicit request: process-wide by torch's design
        is_cuda = self.device.type == "cuda"
        if channels_last == "auto":
            # CPU: NHWC weights save oneDNN a weight reorder per conv (default model 56 → 47 ms,
            # docs/engine.md). CUDA: off until measured there (bench row graphs_cl).
            channels_last = not is_cuda
        self.channels_last = bool(channels_last)
        # Our own copy: moving, fp16 flags, clamps and NHWC weights must not reach the caller's
        # G (the modulator and other engines share it). Copied where it lives, then moved.
        self.G = copy.deepcopy(G).to(self.device).eval().requires_grad_(False)
        if self.dtype == "fp16":
            enable_fp16(self.G)
        if channels_last:
            self.G.synthesis.to(memory_format=torch.channels_last)
        self._synth = self.G.synthesis
        self._compile_pending = bool(compile)
        self.compiled = False
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

    @property
    def description(self) -> str:
        """e.g. `torch cuda:0 fp16 + CUDA graphs`, `torch cpu fp32 channels-last, 1 thread`."""
        dev = str(self.device)
        parts = [f"torch{' compile' if self.compiled else ''} {dev} {self.dtype}"]
        if self.backend == "cuda-graph":
            parts.append("+ CUDA graphs")
        if self.channels_last:
            parts.append("channels-last")
        text = " ".join(parts)
        if self.device.type == "cpu":
            n = torch.get_num_threads() if self.threads is None else int(self.threads)
            text += f", {n} thread{'s' if n != 1 else ''}"
        return text

    # -- the forward ----------------------------------------------------------------------
    def _forward_into(self, out: torch.Tensor, extra: dict | None = None) -> None:
        # bends / masks change the traced graph: eager, so a compiled forward never recompiles
        synth = self._synth if not extra else self.G.synthesis
        img = synth(
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
            self.compiled = True
        except Exception as exc:  # no compiler, unsupported op: eager still works
            self._synth = self.G.synthesis
            self.fallback_reason = f"torch.compile failed, eager instead: {exc}".splitlines()[0]
            print(f"vj engine: {self.fallback_reason}", file=sys.stderr)

    # -- rendering ------------------------------------------------------------------------
    def render(self, controls: Controls, slot: int | None = None) -> Frame:
        """Render one frame into `slot` (default: round-robin).

        CPU: finished when this returns. CUDA: submitted on the engine's stream, and the
        caller's current stream waits on the frame's event (no host wait), so anything the
        caller queues next — `.cpu()`, an upload — sees the finished image.
        """
        if self.device.type == "cuda":
            return self._wait_on_caller_stream(self._submit_cuda(controls, self._slot(slot)))
        t0 = now_ns()
        i = self._count
        slot = self._slot(slot)
        with torch.inference_mode():
            self._ws.copy_(controls.ws)
            self._ns.copy_(controls.noise_strength)
            self._forward_into(self._ring.bufs[slot], _extras(controls))
        self._count += 1
        return Frame(i, self._ring.views[slot], t0, now_ns(), slot=slot)

    def render_async(self, controls: Controls, slot: int | None = None) -> Frame:
        """Submit a frame; on CUDA returns at once (poll `ready`, or wait on `frame.event`),
        on CPU renders synchronously."""
        if self.device.type != "cuda":
            return self.render(controls, slot)
        return self._submit_cuda(controls, self._slot(slot))

    # -- CUDA -----------------------------------------------------------------------------
    def _init_cuda(self, cuda_graphs: bool) -> None:
        dev = self.device
        self.stream = torch.cuda.Stream(device=dev)
        n = self.n_buffers
        # Pinned host staging per slot: a slot is rewritten only after its last frame finished.
        self._stage_ws = [torch.zeros_like(self._ws, device="cpu").pin_memory() for _ in range(n)]
        self._stage_ns = [torch.ones_like(self._ns, device="cpu").pin_memory() for _ in range(n)]
        self._init_events()
        # alpha preset too, although to_rgba8_ writes it: the graph's output never holds garbage
        self._static_out = torch.full_like(self._ring.bufs[0], self._ring.one)
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

    def _submit_cuda(self, controls: Controls, slot: int) -> Frame:
        i = self._count
        self._begin_slot(slot)
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
        self._slot_frame[slot] = i
        self._count += 1
        start, end = self._starts[slot], self._ends[slot]
        return Frame(i, out, t0, 0, event=end, slot=slot, start=start, stream=self.stream)


def _extras(controls) -> dict | None:
    """A DeckControls' bends / noise masks as synthesis kwargs; None when it has neither (or is
    an old-style Controls), which keeps the fast paths (CUDA graph, compiled forward)."""
    bends = getattr(controls, "bends", ())
    masks = getattr(controls, "noise_masks", None)
    if not bends and masks is None:
        return None
    return {"bends": bends or None, "noise_masks": masks}
