"""Engine choice: device, dtype, backend and CUDA graphs from the CLI and presets → an engine.

`EngineSpec` is what was asked; `build_engine(G, spec)` makes the best engine this machine can
run for it, falling back (with one line saying what was asked, why not, and what runs instead)
when CUDA, onnxruntime or TensorRT is missing. `add_engine_args` gives a subcommand the four
flags; `spec_from(args, preset.generator)` merges flags over the preset's `generator:` section.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass

BACKENDS = ("torch", "compile", "onnx", "trt")
DTYPES = ("auto", "fp32", "fp16")
OUTPUTS = ("rgba8", "rgba16f")
_DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")
EXPORT_EXTRA = 'pip install -e ".[export]"'


class EngineOptionError(ValueError):
    """A bad engine choice (unknown value, or a network that does not fit): one line, exit 2."""


def check_device(text: str) -> str:
    """'auto', 'cpu', 'cuda' or 'cuda:N' (argparse type and preset validator)."""
    if not isinstance(text, str) or not _DEVICE.match(text):
        raise EngineOptionError(f"device {text!r}: expected auto, cpu, cuda or cuda:N")
    return text


@dataclass(frozen=True)
class EngineSpec:
    """What the user asked for; `None` in `cuda_graphs` means "on where it can run"."""

    device: str = "auto"  # auto | cpu | cuda | cuda:N
    dtype: str = "auto"  # auto (fp16 on CUDA, fp32 on CPU) | fp32 | fp16
    backend: str = "torch"  # torch (eager) | compile (torch.compile) | onnx | trt
    cuda_graphs: bool | None = None
    resolution: int | None = None  # the network must have this resolution (None: any)
    n_buffers: int = 3
    threads: int | None = None  # CPU threads for torch / onnxruntime
    output: str = "rgba8"

    def __post_init__(self) -> None:
        check_device(self.device)
        for name, value, allowed in (
            ("dtype", self.dtype, DTYPES),
            ("backend", self.backend, BACKENDS),
            ("output", self.output, OUTPUTS),
        ):
            if value not in allowed:
                raise EngineOptionError(f"{name} {value!r}: expected one of {', '.join(allowed)}")
        if self.n_buffers < 1:
            raise EngineOptionError(f"n_buffers {self.n_buffers}: must be at least 1")

    def summary(self) -> str:
        graphs = {None: "", True: " + CUDA graphs", False: " no CUDA graphs"}[self.cuda_graphs]
        return f"{self.backend} {self.device} {self.dtype}{graphs}"


def add_engine_args(p: argparse.ArgumentParser) -> None:
    """--device, --dtype, --backend, --cuda-graphs/--no-cuda-graphs (default: the preset's)."""
    g = p.add_argument_group("generator engine (default: the preset's generator: section)")
    g.add_argument(
        "--device", type=_device_arg, default=None, help="auto (default), cpu, cuda or cuda:N"
    )
    g.add_argument("--dtype", choices=DTYPES, default=None, help="auto: fp16 on CUDA, fp32 on CPU")
    g.add_argument(
        "--backend",
        choices=BACKENDS,
        default=None,
        help="torch (default), compile (torch.compile), onnx (onnxruntime), trt (TensorRT)",
    )
    g.add_argument(
        "--cuda-graphs",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="replay the frame as one CUDA graph (default: on with CUDA)",
    )


def _device_arg(text: str) -> str:
    try:
        return check_device(text)
    except EngineOptionError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def spec_from(args=None, generator=None, **fields) -> EngineSpec:
    """The preset's `generator:` values (device, dtype, backend, cuda_graphs, resolution), with
    the command line's engine flags over them and `fields` (n_buffers, threads, ...) last."""
    kw: dict = {}
    for name in ("device", "dtype", "backend", "cuda_graphs", "resolution"):
        v = getattr(generator, name, None)
        if v is not None:
            kw[name] = v
    for name in ("device", "dtype", "backend", "cuda_graphs"):
        v = getattr(args, name, None)
        if v is not None:
            kw[name] = v
    kw.update({k: v for k, v in fields.items() if v is not None})
    return EngineSpec(**kw)


def _warn(msg: str) -> None:
    print(f"vj: engine: {msg}", file=sys.stderr, flush=True)


def build_engine(
    G, spec: EngineSpec, cache_dir=None, warn: Callable[[str], None] = _warn
) -> tuple[object, str]:
    """The engine `spec` asks for, or the closest this machine runs, and its description.

    Every fallback is told through `warn` (stderr by default): what was asked, why it cannot
    run here, what runs instead. The description names the engine actually running (for the
    HUD and reports), followed by `(asked ...)` when it is not what was asked.
    """
    from vj.gan.backends import make_engine

    if spec.resolution is not None and spec.resolution != int(G.img_resolution):
        raise EngineOptionError(
            f"generator.resolution {spec.resolution}: the network makes "
            f"{G.img_resolution}² images (remove the key to use the network's own size)"
        )
    run, notes = resolve_spec(spec, warn)
    device, dtype, backend, graphs = run.device, run.dtype, run.backend, run.cuda_graphs
    cuda = device.startswith("cuda")
    common = dict(n_buffers=spec.n_buffers, output=spec.output)
    if backend == "onnx":
        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if cuda else None
        engine = make_engine(
            G,
            "onnxruntime",
            cache_dir=cache_dir,
            fp16=dtype == "fp16",
            threads=spec.threads,
            providers=providers,
            **common,
        )
    elif backend == "trt":
        engine = make_engine(
            G, "trt", cache_dir=cache_dir, fp16=dtype == "fp16", device=device, **common
        )
    else:
        engine = make_engine(
            G,
            "torch",
            device=device,
            dtype=dtype,
            cuda_graphs=bool(graphs),
            compile=backend == "compile",
            threads=spec.threads,
            **common,
        )
        if engine.fallback_reason:  # capture or compile failed inside the engine
            notes.append(engine.fallback_reason)
            warn(engine.fallback_reason)
    description = engine.description
    if notes:
        description += f" (asked {spec.summary()})"
    return engine, description


def resolve_spec(spec: EngineSpec, warn: Callable[[str], None] = _warn):
    """(the spec this machine runs, the fallback notes): device, dtype, backend and CUDA graphs
    made concrete (no `auto`), each step down told through `warn`. Builds nothing."""
    notes: list[str] = []

    def fallback(msg: str) -> None:
        notes.append(msg)
        warn(msg)

    device = _choose_device(spec.device, fallback)
    cuda = device.startswith("cuda")
    dtype = spec.dtype
    if dtype == "auto":
        dtype = "fp16" if cuda else "fp32"
    elif dtype == "fp16" and not cuda:
        fallback("fp16 needs a CUDA device here; fp32 is used")
        dtype = "fp32"
    graphs = spec.cuda_graphs
    if graphs and not cuda:
        fallback("CUDA graphs need a CUDA device; plain CPU execution is used")
    backend = _choose_backend(spec.backend, cuda, fallback)
    if graphs and backend in ("onnx", "trt"):
        fallback(f"--cuda-graphs applies to the torch backends; {backend} runs as it is")
    graphs = cuda and backend in ("torch", "compile") and graphs is not False
    run = EngineSpec(
        device=device,
        dtype=dtype,
        backend=backend,
        cuda_graphs=graphs,
        resolution=spec.resolution,
        n_buffers=spec.n_buffers,
        threads=spec.threads,
        output=spec.output,
    )
    return run, notes


def _choose_device(device: str, fallback) -> str:
    import torch  # here, not at the top: the CLI and presets import this module cheaply

    have = torch.cuda.is_available()
    if device == "auto":
        return "cuda" if have else "cpu"
    if device.startswith("cuda"):
        if not have:
            fallback(f"device {device}: torch sees no CUDA device here; the CPU is used")
            return "cpu"
        index = int(device.split(":")[1]) if ":" in device else None
        if index is not None and index >= torch.cuda.device_count():
            n = torch.cuda.device_count()
            fallback(f"device {device}: torch sees {n} GPU(s); cuda:0 is used")
            return "cuda:0"
    return device


def _choose_backend(backend: str, cuda: bool, fallback) -> str:
    if backend == "onnx":
        missing = _missing("onnxruntime", "onnx", "onnxscript")
        if missing:
            fallback(f"backend onnx needs {', '.join(missing)} ({EXPORT_EXTRA}); torch is used")
            return "torch"
        if cuda:
            import onnxruntime as ort

            if "CUDAExecutionProvider" not in ort.get_available_providers():
                fallback(
                    "backend onnx: this onnxruntime has no CUDA provider (pip install "
                    "onnxruntime-gpu); torch on CUDA is used"
                )
                return "torch"
    elif backend == "trt":
        if not cuda:
            fallback("backend trt needs a CUDA device; torch on the CPU is used")
            return "torch"
        missing = _missing("tensorrt", "onnx", "onnxscript")
        if missing:
            fallback(
                f"backend trt needs {', '.join(missing)} (pip install tensorrt, and "
                f"{EXPORT_EXTRA}); torch on CUDA is used"
            )
            return "torch"
    return backend


def _missing(*modules: str) -> list[str]:
    import importlib.util

    return [m for m in modules if importlib.util.find_spec(m) is None]
