"""ONNX export of the synthesis network (static shapes, noise as explicit inputs, no custom ops),
a TensorRT engine builder, and the `vj export onnx|trt` commands.

The ONNX file's inputs: `ws` [1, num_ws, w_dim] fp32, `noise_strength` [num_noise_layers] fp32,
`noise_<layer>` [1, 1, R, R] fp32 (defaulting to the network's const noise: initializers of the
same name, which onnxruntime lets a caller override), `bend_theta` [k, 2, 3] fp32 (network
bends: the inputs of the first k blocks resampled by their affine matrices; defaults to the
identity). Output: `img` [1, 3, H, W] fp32 in ~[-1, 1]. Metadata `vj.*` records the shapes so
the engines need no network object (`vj.bend_blocks` = k; files from before it have no bends).
"""

from __future__ import annotations

import copy
import json
import logging
import os
import sys
import tempfile
import warnings
from pathlib import Path

import torch

from vj.fsutil import atomic_write_bytes
from vj.gan.engine import enable_fp16

EXPORT_OPSET = 18
META_PREFIX = "vj."


def noise_input_name(layer: str) -> str:
    """`b16.conv0` → `noise_b16_conv0`."""
    return "noise_" + layer.replace(".", "_")


BEND_INPUT = "bend_theta"
# Bendable blocks in an exported graph: the first four (inputs up to 16² on a 256² network,
# where the shipped presets bend). Each costs a GridSample on every frame, bent or not:
# onnxruntime CPU on the default network 14.0 ms → 15.8 ms with 4, 32 ms with all 7.
BEND_BLOCKS = 4


class SynthesisExport(torch.nn.Module):
    """Export wrapper: (ws, noise_strength, *noise maps[, bend_theta]) → img; no RNG, no
    Python-side choices."""

    def __init__(self, G, fp16: bool, bends: bool = True) -> None:
        super().__init__()
        self.synthesis = G.synthesis
        self.layers = list(G.synthesis.noise_layer_names)
        self.fp16 = fp16
        self.bends = bends

    def forward(self, ws: torch.Tensor, noise_strength: torch.Tensor, *rest: torch.Tensor):
        noises, thetas = (rest[:-1], rest[-1]) if self.bends else (rest, None)
        noise = dict(zip(self.layers, noises, strict=True))  # [1, 1, R, R] each
        return self.synthesis(
            ws,
            noise_mode="const",
            force_fp32=not self.fp16,
            noise_strength=noise_strength,
            noise=noise,
            bend_thetas=thetas,
        )  # [1, 3, H, W] fp32


def identity_thetas(n_blocks: int) -> torch.Tensor:
    """[n_blocks, 2, 3] fp32 identity affine matrices: no block bent."""
    eye = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    return eye.expand(n_blocks, 2, 3).contiguous()


def const_noise(G) -> list[torch.Tensor]:
    """The network's const noise maps, [1, 1, R, R] fp32 each, in noise-layer order."""
    return [
        G.synthesis.get_submodule(n).noise_const.detach().float()[None, None].clone()
        for n in G.synthesis.noise_layer_names
    ]


def export_onnx(
    G,
    out: str | Path,
    fp16: bool = False,
    opset: int = EXPORT_OPSET,
    bend_blocks: int | None = None,
) -> Path:
    """Export G's synthesis to `out` (written to a temp file, then renamed). Returns the path.
    `bend_blocks`: how many blocks, from the first, take a bend (default BEND_BLOCKS)."""
    import onnx
    from onnx import numpy_helper

    out = Path(out)
    G = copy.deepcopy(G).cpu().eval().requires_grad_(False)  # the caller's network stays as is
    if fp16:
        enable_fp16(G)
    names = list(G.synthesis.noise_layer_names)
    noises = const_noise(G)
    ws = G.mapping.w_avg.detach().float()[None, None].repeat(1, G.num_ws, 1)  # [1, num_ws, w_dim]
    ns = torch.ones(len(names))
    n_blocks = len(G.synthesis.block_resolutions)
    n_bend = min(BEND_BLOCKS if bend_blocks is None else int(bend_blocks), n_blocks)
    thetas = [identity_thetas(n_bend)] if n_bend else []  # [k, 2, 3]
    noise_inputs = [noise_input_name(n) for n in names]
    inputs = ["ws", "noise_strength", *noise_inputs] + ([BEND_INPUT] if n_bend else [])
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".vj-export-") as tmp:
        raw = Path(tmp) / "raw.onnx"
        quiet = logging.getLogger("torch.onnx._internal.exporter._registration")
        level = quiet.level
        quiet.setLevel(logging.ERROR)  # "torchvision is not installed" is noise for us
        try:
            with warnings.catch_warnings(), torch.no_grad():
                warnings.simplefilter("ignore")
                torch.onnx.export(
                    SynthesisExport(G, fp16, bends=n_bend > 0).eval(),
                    (ws, ns, *noises, *thetas),
                    str(raw),
                    dynamo=True,  # the legacy exporter cannot handle the dynamic-weight conv
                    opset_version=opset,
                    input_names=inputs,
                    output_names=["img"],
                    external_data=False,
                    verbose=False,
                    optimize=True,
                )
        finally:
            quiet.setLevel(level)
        model = onnx.load(str(raw))
        graph_inputs = [i.name for i in model.graph.input]
        if graph_inputs != inputs:
            raise RuntimeError(f"export: graph inputs {graph_inputs} != expected {inputs}")
        # Const noise and unbent blocks as overridable defaults: initializers with the
        # inputs' names
        for name, arr in zip(inputs[2:], [*noises, *thetas], strict=True):
            model.graph.initializer.append(numpy_helper.from_array(arr.numpy(), name))
        meta = {
            "resolution": G.img_resolution,
            "num_ws": G.num_ws,
            "w_dim": G.w_dim,
            "noise_layers": json.dumps(names),
            "noise_inputs": json.dumps(noise_inputs),
            "precision": "fp16" if fp16 else "fp32",
            "opset": opset,
            "bends": 1,  # this format: bend_blocks says how many (0 = no bend_theta input)
            "bend_blocks": n_bend,
        }
        for k, v in meta.items():
            p = model.metadata_props.add()
            p.key, p.value = META_PREFIX + k, str(v)
        onnx.checker.check_model(model)
        part = Path(tmp) / "final.onnx"
        onnx.save(model, str(part))
        os.replace(part, out)
    return out


def read_meta(model_or_path) -> dict:
    """The `vj.*` metadata of an exported ONNX model (path or loaded ModelProto)."""
    import onnx

    model = model_or_path
    if not hasattr(model, "metadata_props"):
        model = onnx.load(str(model_or_path), load_external_data=False)
    meta = {
        p.key[len(META_PREFIX) :]: p.value
        for p in model.metadata_props
        if p.key.startswith(META_PREFIX)
    }
    if "resolution" not in meta:
        raise ValueError(f"{model_or_path}: not an ONNX file written by `vj export onnx`")
    return {
        "resolution": int(meta["resolution"]),
        "num_ws": int(meta["num_ws"]),
        "w_dim": int(meta["w_dim"]),
        "noise_layers": json.loads(meta["noise_layers"]),
        "noise_inputs": json.loads(meta["noise_inputs"]),
        "precision": meta.get("precision", "fp32"),
        "bends": meta.get("bends") == "1",  # files from before bends were in the graph: no
        "bend_blocks": int(meta.get("bend_blocks", 0)),
    }


def noise_defaults(path: str | Path) -> dict:
    """noise input name → const noise array [1, 1, R, R] stored in the ONNX file."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    wanted = set(read_meta(model)["noise_inputs"])
    return {t.name: numpy_helper.to_array(t) for t in model.graph.initializer if t.name in wanted}


# -- TensorRT ----------------------------------------------------------------------------------
def tensorrt_available() -> bool:
    try:
        import tensorrt  # noqa: F401
    except Exception:
        return False
    return True


def build_trt_engine(
    onnx_path: str | Path, out: str | Path, fp16: bool = True, workspace_gib: float = 4.0
) -> Path:
    """Build a serialized TensorRT engine from a `vj export onnx` file (needs `tensorrt`).

    The noise defaults are stripped from the initializers first, so the maps stay real engine
    inputs (random or user noise works); TrtEngine reads the defaults from the ONNX file.
    """
    try:
        import tensorrt as trt
    except Exception as exc:
        raise RuntimeError(
            f"TensorRT is not importable here ({exc}); pip install tensorrt"
        ) from exc
    import onnx

    onnx_path, out = Path(onnx_path), Path(out)
    model = onnx.load(str(onnx_path))
    wanted = set(read_meta(model)["noise_inputs"])
    keep = [t for t in model.graph.initializer if t.name not in wanted]
    del model.graph.initializer[:]
    model.graph.initializer.extend(keep)

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = 0
    if hasattr(trt.NetworkDefinitionCreationFlag, "EXPLICIT_BATCH"):  # implicit in TRT >= 10
        flags = 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(model.SerializeToString()):
        errs = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f"{onnx_path}: TensorRT could not parse it: {errs}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gib * (1 << 30)))
    if fp16:
        config.set_flag(trt.BuilderFlag.FP16)
    blob = builder.build_serialized_network(network, config)
    if blob is None:
        raise RuntimeError(f"{onnx_path}: TensorRT engine build failed (see log above)")
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out, bytes(blob))
    return out


# -- loading a network for the commands and tools ---------------------------------------------
def load_network(spec: str, size: int | None = None, seed: int = 0):
    """'default' → the embedded default (at `size` if given); otherwise a checkpoint path."""
    from vj.gan.checkpoint import load_checkpoint_or_default
    from vj.gan.stylegan2 import default_config, make_default_generator

    if spec == "default" and size is not None:
        return make_default_generator(seed, {**default_config(), "img_resolution": size})
    if spec != "default" and not Path(spec).exists():
        raise FileNotFoundError(f"{spec}: no such checkpoint (or use 'default')")
    G, _meta = load_checkpoint_or_default(spec)  # CheckpointError names file and problem
    if size is not None and size != G.img_resolution:
        raise ValueError(
            f"{spec}: network is {G.img_resolution}², --size {size} only applies to 'default'"
        )
    return G


# -- CLI ------------------------------------------------------------------------------------
def _valid_size(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        v = 0
    if v < 4 or v > 2048 or v & (v - 1):
        raise ValueError(f"--size {text!r}: expected a power of two from 4 to 2048")
    return v


def cmd_export_onnx(args) -> int:
    try:
        size = None if args.size is None else _valid_size(args.size)
        if not str(args.out).endswith(".onnx"):
            raise ValueError(f"{args.out}: output must end in .onnx")
        G = load_network(args.checkpoint, size, args.seed)
        out = export_onnx(G, args.out, fp16=args.fp16, opset=args.opset)
    except (ValueError, FileNotFoundError, RuntimeError) as exc:
        print(f"vj export onnx: {exc}", file=sys.stderr)
        return 2
    meta = read_meta(out)
    print(
        f"wrote {out} ({meta['precision']}, {meta['resolution']}², "
        f"{len(meta['noise_inputs'])} noise inputs, {out.stat().st_size / 1e6:.1f} MB)"
    )
    return 0


def cmd_export_trt(args) -> int:
    try:
        if not Path(args.onnx).exists():
            raise FileNotFoundError(f"{args.onnx}: no such file")
        if not tensorrt_available():
            raise RuntimeError("TensorRT is not installed here (pip install tensorrt, needs CUDA)")
        read_meta(args.onnx)
        out = build_trt_engine(args.onnx, args.out, fp16=not args.fp32)
    except (ValueError, FileNotFoundError, RuntimeError) as exc:
        print(f"vj export trt: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {out}")
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("export", help="export the generator to ONNX or TensorRT")
    sub = p.add_subparsers(dest="export_kind", metavar="FORMAT", required=True)
    o = sub.add_parser("onnx", help="ONNX with static shapes, noise as explicit inputs")
    o.add_argument("checkpoint", help="checkpoint file (.pkl/.pt/.safetensors) or 'default'")
    o.add_argument("out", help="output .onnx path")
    o.add_argument("--fp16", action="store_true", help="fp16 synthesis (top 4 resolutions)")
    o.add_argument("--size", default=None, help="resolution of the 'default' network")
    o.add_argument("--seed", type=int, default=0, help="seed of the 'default' network")
    o.add_argument("--opset", type=int, default=EXPORT_OPSET, help="ONNX opset (17 or 18)")
    o.set_defaults(func=cmd_export_onnx)
    t = sub.add_parser("trt", help="TensorRT engine from a `vj export onnx` file")
    t.add_argument("onnx", help="input .onnx written by `vj export onnx`")
    t.add_argument("out", help="output engine path (.plan/.engine)")
    t.add_argument("--fp32", action="store_true", help="no fp16 kernels")
    t.set_defaults(func=cmd_export_trt)
