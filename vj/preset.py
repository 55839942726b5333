"""Presets: YAML in, frozen typed objects inside; every error names file:line and what is allowed.

The YAML is composed to nodes (each carries its line), then walked by a strict validator, so
a typo in a parameter name or an out-of-range value is reported where it is, never guessed.
"""

from __future__ import annotations

import queue
import re
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

import vj
from vj.control.mapping import CURVES, KINDS, NOTE_MODES, Mapping
from vj.hints import did_you_mean
from vj.params import ParamRegistry
from vj.resources import data_dir
from vj.yaml_limits import YamlLimitError, check_depth, read_bounded_text
from vj.yamldoc import PresetError, _Doc, _join, _kind  # noqa: F401 (re-exported)

MIDI_APIS = ("auto", "alsa", "jack", "coremidi", "winmm")


@dataclass(frozen=True)
class GeneratorConfig:
    checkpoint: str = "default"  # a path, or 'default' for the embedded model
    resolution: int | None = None  # None = the checkpoint's own; else it must match
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    # engine choice (vj/gan/options.py); None = the engine's default
    dtype: str | None = None  # auto | fp32 | fp16
    backend: str | None = None  # torch | compile | onnx | trt
    cuda_graphs: bool | None = None


@dataclass(frozen=True)
class AudioConfig:
    device: str | int | None = None  # name substring or index; None = the default input
    sample_rate: int | None = None  # None = the device's
    block_size: int = 256
    channel: int | None = None  # 0-based input channel; None = mix all
    hop: int = 256
    n_bands: int = 8


@dataclass(frozen=True)
class RenderConfig:
    width: int = 1280
    height: int = 720
    fps: int = 60
    fullscreen: bool = False
    monitor: int | str | None = None
    vsync: bool = True


@dataclass(frozen=True)
class StageConfig:
    """The `stage:` section: how the output is made, independent of the window (vj/render)."""

    fit: str = "fill"  # fit | fill | stretch | tile: a square frame on any output aspect
    upscale: str = "bicubic"  # bilinear | bicubic | lanczos: generator → output resolution
    output: tuple[int, int] | None = None  # output resolution (None = the render size)
    outputs: tuple[str, ...] = ()  # sent to other software: ndi, vcam, spout, syphon
    name: str = "vj"  # the NDI / Spout / Syphon source name


@dataclass(frozen=True)
class MidiDevice:
    port: str  # regex searched (case-insensitive) in MIDI input port names
    mappings: tuple[Mapping, ...] | list[Mapping] = ()
    feedback: bool = False
    feedback_port: str | None = None  # output port regex; None = same as `port`
    mappings_file: Path | None = None  # learned mappings live here (merged after `mappings`)


@dataclass(frozen=True)
class MidiConfig:
    devices: tuple[MidiDevice, ...] = ()
    api: str = "auto"
    programs: dict[int, str] = field(default_factory=dict)  # program change → preset name/path


@dataclass(frozen=True)
class Preset:
    name: str
    path: Path | None
    seed: int = 0
    params: dict[str, float] = field(default_factory=dict)
    effect: str = "default"  # a shader in shaders/effects/
    # effect chains {"A": (...), "B": (...), "master": (...)}; None = just `effect` on master
    effects: dict[str, tuple[str, ...]] | None = None
    stage: StageConfig = StageConfig()
    generator: GeneratorConfig = GeneratorConfig()
    audio: AudioConfig = AudioConfig()
    render: RenderConfig = RenderConfig()
    midi: MidiConfig = MidiConfig()
    osc: dict = field(default_factory=lambda: {"host": "127.0.0.1", "port": 9000, "enabled": True})
    description: str = ""
    # the show (vj/show/config.py): decks (DeckConfig), routes (Route), cues (Cue)
    decks: tuple = ()  # empty = one deck from `seed` and `generator`
    routes: tuple = ()
    cues: tuple = ()
    warnings: tuple[str, ...] = ()  # e.g. a broken mappings_file that was skipped: show them
    named: frozenset[str] = frozenset()  # the top-level keys the file gives (e.g. "seed")


# -- where things live ---------------------------------------------------------------------
def presets_dir() -> Path:
    """The shipped `presets/` folder (beside the package in a checkout, share/vj/ in a wheel)."""
    return _data_dir("presets")


def effects_dir() -> Path:
    return _data_dir("shaders") / "effects"


def _data_dir(name: str) -> Path:
    try:
        return data_dir(name)
    except FileNotFoundError:
        return Path(vj.__file__).resolve().parent.parent / name


def list_presets() -> list[str]:
    d = presets_dir()
    return sorted(p.stem for p in d.glob("*.yaml")) if d.is_dir() else []


def list_effects() -> list[str]:
    """Effect names: the `*.frag` file stems in shaders/effects/."""
    d = effects_dir()
    return sorted(p.stem for p in d.glob("*.frag")) if d.is_dir() else []


def builtin_preset_path(name: str = "default") -> Path:
    path = presets_dir() / f"{name}.yaml"
    if not path.is_file():
        known = list_presets()
        hint = did_you_mean(name, known)
        raise PresetError(
            path, None, "", f"no preset named {name!r}{hint}; available: {', '.join(known)}"
        )
    return path


def resolve_preset(name: str, relative_to: Path | None = None) -> Path:
    """A preset given as a shipped name ('club') or a YAML path (relative to `relative_to`)."""
    p = Path(name).expanduser()
    if p.suffix in (".yaml", ".yml"):
        if not p.is_absolute() and relative_to is not None:
            p = relative_to / p
        return p
    return builtin_preset_path(name)


def _compose(path: Path) -> tuple[_Doc, yaml.Node | None]:
    doc = _Doc(path)
    try:
        text = read_bounded_text(path)
    except YamlLimitError as exc:
        raise PresetError(path, None, "", f"cannot read: {exc.problem}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PresetError(path, None, "", f"cannot read: {exc}") from None
    try:
        check_depth(text)
        return doc, yaml.compose(text, Loader=yaml.SafeLoader)
    except YamlLimitError as exc:
        raise PresetError(path, exc.line, "", exc.problem) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        raise PresetError(path, line, "", f"YAML syntax: {exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise PresetError(path, None, "", f"YAML syntax: {exc}") from None


# -- presets -------------------------------------------------------------------------------
_TOP = (
    "name", "description", "seed", "effect", "params", "generator", "audio", "render", "midi",
    "osc", "decks", "routes", "cues", "effects", "stage",
)  # fmt: skip


def load_preset(
    path: str | Path, registry: ParamRegistry, effects: list[str] | None = None
) -> Preset:
    """Parse and validate a preset. `effects` overrides the names found in shaders/effects/."""
    path = Path(path)
    doc, root = _compose(path)
    if root is None:
        note = f"{path}: the preset file is empty: every parameter at its default"
        return Preset(name=path.stem, path=path, warnings=(note,))
    top = doc.items(root, "")
    doc.check_keys(top, _TOP, "")
    kw: dict[str, Any] = {"name": path.stem, "path": path, "named": frozenset(top)}
    if "name" in top:
        kw["name"] = doc.string(top["name"][1], "name")
    if "description" in top:
        kw["description"] = doc.string(top["description"][1], "description")
    if "seed" in top:
        kw["seed"] = doc.number(top["seed"][1], "seed", 0, 2**32 - 1, integer=True)
    if "effect" in top:
        allowed = list_effects() if effects is None else sorted(effects)
        if not allowed:
            kw["effect"] = doc.string(top["effect"][1], "effect")  # no shaders to check against
        else:
            kw["effect"] = doc.choice(top["effect"][1], "effect", allowed)
    if "params" in top:
        kw["params"] = _params(doc, top["params"][1], registry)
    if "generator" in top:
        kw["generator"] = _generator(doc, top["generator"][1])
    if "audio" in top:
        kw["audio"] = _audio(doc, top["audio"][1])
    if "render" in top:
        kw["render"] = _render(doc, top["render"][1])
    if "midi" in top:
        kw["midi"] = _midi(doc, top["midi"][1], registry, path.parent)
    if "osc" in top:
        kw["osc"] = _osc(doc, top["osc"][1])
    if any(k in top for k in ("decks", "routes", "cues")):
        from vj.show.config import parse_show  # lazy: the show schema imports torch

        fx = list_effects() if effects is None else sorted(effects)
        sc = parse_show(doc, top, set(registry.names()), path.parent, fx, kw.get("seed", 0))
        kw.update(decks=sc.decks, routes=sc.routes, cues=sc.cues)
    if "effects" in top:
        kw["effects"] = _effects(doc, top["effects"][1], effects)
    if "stage" in top:
        kw["stage"] = _stage(doc, top["stage"][1])
    return Preset(**kw, warnings=tuple(doc.warnings))


def _effects(doc: _Doc, node, effects: list[str] | None) -> dict[str, tuple[str, ...]]:
    """`effects: {master: [kaleido, rgbsplit], A: [feedback], B: []}` (shaders/effects names)."""
    allowed = list_effects() if effects is None else sorted(effects)
    it = doc.items(node, "effects")
    doc.check_keys(it, ("A", "B", "master"), "effects")
    out = {}
    for key, (_, val) in it.items():
        names = []
        for i, n in enumerate(doc.seq(val, f"effects.{key}")):
            where = f"effects.{key}[{i}]"
            names.append(doc.choice(n, where, allowed) if allowed else doc.string(n, where))
        out[key] = tuple(names)
    return out


def _stage(doc: _Doc, node) -> StageConfig:
    it = doc.items(node, "stage")
    doc.check_keys(it, ("fit", "upscale", "output", "outputs", "name"), "stage")
    kw: dict[str, Any] = {}
    if "fit" in it:
        kw["fit"] = doc.choice(it["fit"][1], "stage.fit", ("fit", "fill", "stretch", "tile"))
    if "upscale" in it:
        kw["upscale"] = doc.choice(
            it["upscale"][1], "stage.upscale", ("bilinear", "bicubic", "lanczos")
        )
    if "output" in it:
        n = it["output"][1]
        text = doc.string(n, "stage.output")
        m = re.fullmatch(r"(\d+)x(\d+)", text or "")
        if m is None:
            raise doc.err(n, "stage.output", f"{text!r} must be WIDTHxHEIGHT, e.g. 3840x2160")
        w, h = int(m.group(1)), int(m.group(2))
        if not (16 <= w <= 8192 and 16 <= h <= 8192) or w % 2 or h % 2:
            raise doc.err(n, "stage.output", f"{text}: each side even, 16..8192")
        kw["output"] = (w, h)
    if "outputs" in it:
        kinds = ("ndi", "vcam", "spout", "syphon")
        seq = doc.seq(it["outputs"][1], "stage.outputs")
        kw["outputs"] = tuple(
            doc.choice(n, f"stage.outputs[{i}]", kinds) for i, n in enumerate(seq)
        )
    if "name" in it:
        kw["name"] = doc.string(it["name"][1], "stage.name")
    return StageConfig(**kw)


def apply_preset(preset: Preset, registry: ParamRegistry, source: str = "preset") -> None:
    """Set every parameter: the preset's value, or the default for those it leaves out."""
    for name in registry.names():
        spec = registry.spec(name)
        if spec.kind == "trigger":
            continue
        registry.set(name, preset.params.get(name, spec.default), source)


class PresetSwitcher:
    """Program change → preset: `switch(n)` loads and applies on a worker thread, never in the
    MIDI callback; `on_switch(preset)` then lets the app change what params cannot (effect,
    seed). A broken preset is reported through `on_error` and the current one stays.
    Plug in with `mapper.on_program = switcher.switch`.
    """

    def __init__(
        self,
        registry: ParamRegistry,
        current: Preset,
        on_switch: Callable[[Preset], None] | None = None,
        on_error: Callable[[Exception], None] | None = None,
    ) -> None:
        self.registry = registry
        self.current = current
        self.on_switch = on_switch
        self.on_error = on_error
        self._queue: queue.SimpleQueue[int | str] = queue.SimpleQueue()
        self._worker: threading.Thread | None = None
        self._lock = threading.Lock()

    def switch(self, program: int) -> None:
        """Queue a switch to the preset bound to `program` (unbound programs are ignored)."""
        if program not in self.current.midi.programs:
            return
        self._enqueue(program)

    def switch_name(self, name: str) -> None:
        """Queue a switch to a preset by name or path (OSC `/vj/preset`)."""
        self._enqueue(str(name))

    def _enqueue(self, item: int | str) -> None:
        self._queue.put(item)
        with self._lock:
            if self._worker is None:
                self._worker = threading.Thread(target=self._run, name="vj-preset", daemon=True)
                self._worker.start()

    def switch_now(self, program: int) -> Preset | None:
        """Load and apply in this thread; returns the new preset (None if unbound)."""
        name = self.current.midi.programs.get(program)
        return None if name is None else self.load_now(name)

    def load_now(self, name: str) -> Preset:
        """Load and apply the preset `name` (a shipped name, or a path) in this thread."""
        base = self.current.path.parent if self.current.path is not None else presets_dir()
        new = load_preset(resolve_preset(name, base), self.registry)
        apply_preset(new, self.registry)
        if not new.midi.programs:  # keep the program map when the new preset has none
            new = replace(new, midi=replace(new.midi, programs=self.current.midi.programs))
        self.current = new
        if self.on_switch is not None:
            self.on_switch(new)
        return new

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if isinstance(item, str):
                    self.load_now(item)
                else:
                    self.switch_now(item)
            except Exception as exc:  # a broken preset must not end program changes
                if self.on_error is not None:
                    self.on_error(exc)
                else:
                    print(f"vj: preset switch failed: {exc}", file=sys.stderr)


def _params(doc: _Doc, node, registry: ParamRegistry) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, (knode, vnode) in doc.items(node, "params").items():
        where = f"params.{name}"
        if name not in registry:
            hint = did_you_mean(name, registry.names())
            raise doc.err(knode, where, f"unknown parameter {name!r}{hint}")
        spec = registry.spec(name)
        if spec.kind == "trigger":
            raise doc.err(knode, where, f"{name!r} is a trigger; presets cannot set it")
        if spec.kind == "bool":
            v = doc.scalar(vnode, where, (bool, int), "true or false")
            if v not in (0, 1):
                raise doc.err(vnode, where, f"expected true or false, got {v!r}")
            out[name] = float(v)
        else:
            out[name] = doc.number(vnode, where, spec.min, spec.max, integer=spec.kind == "int")
            out[name] = float(out[name])
    return out


def _generator(doc: _Doc, node) -> GeneratorConfig:
    it = doc.items(node, "generator")
    keys = ("checkpoint", "resolution", "device", "dtype", "backend", "cuda_graphs")
    doc.check_keys(it, keys, "generator")
    kw: dict[str, Any] = {}
    if "checkpoint" in it:
        kw["checkpoint"] = doc.string(it["checkpoint"][1], "generator.checkpoint")
    if "resolution" in it:
        kw["resolution"] = doc.power_of_two(
            it["resolution"][1], "generator.resolution", 4, 1024, none=True
        )
    if "device" in it:
        kw["device"] = _engine_device(doc, it["device"][1])
    if "dtype" in it:
        kw["dtype"] = doc.choice(it["dtype"][1], "generator.dtype", ("auto", "fp32", "fp16"))
    if "backend" in it:
        allowed = ("torch", "compile", "onnx", "trt")
        kw["backend"] = doc.choice(it["backend"][1], "generator.backend", allowed)
    if "cuda_graphs" in it:
        kw["cuda_graphs"] = doc.boolean(it["cuda_graphs"][1], "generator.cuda_graphs")
    return GeneratorConfig(**kw)


def _engine_device(doc: _Doc, node) -> str:
    from vj.gan.options import EngineOptionError, check_device

    v = doc.string(node, "generator.device")
    try:
        return check_device(v)
    except EngineOptionError as exc:
        raise doc.err(node, "generator.device", str(exc)) from None


def _audio(doc: _Doc, node) -> AudioConfig:
    it = doc.items(node, "audio")
    keys = ("device", "sample_rate", "block_size", "channel", "hop", "n_bands")
    doc.check_keys(it, keys, "audio")
    kw: dict[str, Any] = {}
    if "device" in it:
        kw["device"] = doc.scalar(
            it["device"][1], "audio.device", (str, int, type(None)), "a name, an index or null"
        )
    if "sample_rate" in it:
        kw["sample_rate"] = doc.number(
            it["sample_rate"][1], "audio.sample_rate", 8000, 192000, integer=True, none=True
        )
    if "block_size" in it:
        kw["block_size"] = doc.number(it["block_size"][1], "audio.block_size", 16, 8192, True)
    if "channel" in it:
        kw["channel"] = doc.number(it["channel"][1], "audio.channel", 0, 63, True, none=True)
    if "hop" in it:
        kw["hop"] = doc.power_of_two(it["hop"][1], "audio.hop", 32, 4096)
    if "n_bands" in it:
        kw["n_bands"] = doc.number(it["n_bands"][1], "audio.n_bands", 1, 64, integer=True)
    return AudioConfig(**kw)


def _render(doc: _Doc, node) -> RenderConfig:
    it = doc.items(node, "render")
    keys = ("width", "height", "fps", "fullscreen", "monitor", "vsync")
    doc.check_keys(it, keys, "render")
    kw: dict[str, Any] = {}
    for key in ("width", "height"):
        if key in it:
            n = it[key][1]
            v = doc.number(n, f"render.{key}", 16, 8192, integer=True)
            if v % 2:
                raise doc.err(n, f"render.{key}", f"{v} must be even (video encoders need it)")
            kw[key] = v
    if "fps" in it:
        kw["fps"] = doc.number(it["fps"][1], "render.fps", 1, 480, integer=True)
    for key in ("fullscreen", "vsync"):
        if key in it:
            kw[key] = doc.boolean(it[key][1], f"render.{key}")
    if "monitor" in it:
        kw["monitor"] = doc.scalar(
            it["monitor"][1], "render.monitor", (str, int, type(None)), "a name, an index or null"
        )
    return RenderConfig(**kw)


def _osc(doc: _Doc, node) -> dict:
    it = doc.items(node, "osc")
    out = {"host": "127.0.0.1", "port": 9000, "enabled": True}
    for key, (_, vnode) in it.items():  # other keys belong to the OSC module; passed through
        if key == "host":
            out[key] = doc.string(vnode, "osc.host")
        elif key == "port":
            out[key] = doc.number(vnode, "osc.port", 1, 65535, integer=True)
        elif key == "enabled":
            out[key] = doc.boolean(vnode, "osc.enabled")
        else:
            out[key] = doc.value(vnode)
    return out


def _midi(doc: _Doc, node, registry: ParamRegistry, base: Path) -> MidiConfig:
    it = doc.items(node, "midi")
    doc.check_keys(it, ("devices", "api", "programs"), "midi")
    kw: dict[str, Any] = {}
    if "api" in it:
        kw["api"] = doc.choice(it["api"][1], "midi.api", MIDI_APIS)
    if "devices" in it:
        devs = doc.seq(it["devices"][1], "midi.devices")
        kw["devices"] = tuple(
            _device(doc, d, f"midi.devices[{i}]", registry, base) for i, d in enumerate(devs)
        )
    if "programs" in it:
        progs: dict[int, str] = {}
        for key, (knode, vnode) in doc.items(it["programs"][1], "midi.programs").items():
            where = f"midi.programs.{key}"
            if not key.isdigit() or not 0 <= int(key) <= 127:
                raise doc.err(knode, where, "program numbers are 0..127")
            name = doc.string(vnode, where)
            try:
                p = resolve_preset(name, base)
            except PresetError as exc:
                raise doc.err(vnode, where, exc.problem) from None
            if not p.is_file():
                raise doc.err(vnode, where, f"no preset file {str(p)!r}")
            progs[int(key)] = name
        kw["programs"] = progs
    return MidiConfig(**kw)


def _device(doc: _Doc, node, where: str, registry: ParamRegistry, base: Path) -> MidiDevice:
    it = doc.items(node, where)
    doc.check_keys(it, ("port", "feedback", "feedback_port", "mappings", "mappings_file"), where)
    if "port" not in it:
        raise doc.err(node, where, "missing 'port' (a regex matched against MIDI port names)")
    kw: dict[str, Any] = {"port": doc.regex(it["port"][1], f"{where}.port")}
    if "feedback" in it:
        kw["feedback"] = doc.boolean(it["feedback"][1], f"{where}.feedback")
    if "feedback_port" in it:
        n = it["feedback_port"][1]
        kw["feedback_port"] = (
            None if doc.value(n) is None else doc.regex(n, f"{where}.feedback_port")
        )
    maps: list[Mapping] = []
    if "mappings" in it:
        maps = _mapping_list(doc, it["mappings"][1], f"{where}.mappings", registry)
    if "mappings_file" in it:
        n = it["mappings_file"][1]
        p = Path(doc.string(n, f"{where}.mappings_file")).expanduser()
        p = p if p.is_absolute() else base / p
        kw["mappings_file"] = p
        if p.exists():  # a file not there yet is fine: MIDI learn creates it
            try:
                extra = parse_mappings_file(p, registry)
            except PresetError as exc:
                # learned bindings gone bad must not stop the show: warn, use the inline ones
                doc.warnings.append(f"{exc} (mappings from this file not used)")
                extra = []
            maps = [m for m in maps if not any(m.overlaps(x) for x in extra)] + extra
    kw["mappings"] = tuple(maps)
    return MidiDevice(**kw)


_MAP_KEYS = (*KINDS, "param", "channel", "range", "curve", "invert", "mode", "soft_takeover",
             "feedback")  # fmt: skip


def _mapping_list(doc: _Doc, node, where: str, registry: ParamRegistry | None) -> list[Mapping]:
    maps: list[Mapping] = []
    lines: list[int] = []
    for i, n in enumerate(doc.seq(node, where)):
        w = f"{where}[{i}]"
        m = _mapping(doc, n, w, registry)
        for j, other in enumerate(maps):
            if m.overlaps(other):
                raise doc.err(
                    n,
                    w,
                    f"{m.describe()} clashes with {where}[{j}] (line {lines[j]}): "
                    f"{other.describe()}",
                )
        maps.append(m)
        lines.append(n.start_mark.line + 1)
    return maps


def _mapping(doc: _Doc, node, where: str, registry: ParamRegistry | None) -> Mapping:
    it = doc.items(node, where)
    doc.check_keys(it, _MAP_KEYS, where)
    kinds = [k for k in KINDS if k in it]
    if len(kinds) != 1:
        raise doc.err(
            node,
            where,
            f"give exactly one control type ({', '.join(KINDS)}), got {kinds or 'none'}",
        )
    kind = kinds[0]
    kn = it[kind][1]
    if kind == "pitchbend":
        number = 0
        if doc.value(kn) is not True:
            raise doc.err(kn, f"{where}.pitchbend", "write 'pitchbend: true'")
    else:
        number = doc.number(kn, f"{where}.{kind}", 0, 31 if kind == "cc14" else 127, integer=True)
    if "param" not in it:
        raise doc.err(node, where, "missing 'param' (the parameter this control moves)")
    pn = it["param"][1]
    param = doc.string(pn, f"{where}.param")
    spec = None
    if registry is not None:
        if param not in registry:
            hint = did_you_mean(param, registry.names())
            raise doc.err(pn, f"{where}.param", f"unknown parameter {param!r}{hint}")
        spec = registry.spec(param)
    kw: dict[str, Any] = {"kind": kind, "number": number, "param": param}
    if "channel" in it:
        cn = it["channel"][1]
        v = doc.value(cn)
        if v in (None, "any", "omni"):
            kw["channel"] = None
        else:
            kw["channel"] = doc.number(cn, f"{where}.channel", 1, 16, integer=True) - 1
    if "range" in it:
        rn = it["range"][1]
        items = doc.seq(rn, f"{where}.range")
        if len(items) != 2:
            raise doc.err(rn, f"{where}.range", "expected [low, high]")
        lo_hi = [doc.number(x, f"{where}.range") for x in items]
        if spec is not None:
            for x, v in zip(items, lo_hi, strict=True):
                if not spec.min <= v <= spec.max:
                    raise doc.err(
                        x, f"{where}.range", f"{v} outside {param}'s range [{spec.min}, {spec.max}]"
                    )
        kw["range"] = (lo_hi[0], lo_hi[1])
    if "curve" in it:
        kw["curve"] = doc.choice(it["curve"][1], f"{where}.curve", CURVES)
    if "mode" in it:
        kw["note_mode"] = doc.choice(it["mode"][1], f"{where}.mode", NOTE_MODES)
    for key in ("invert", "soft_takeover", "feedback"):
        if key in it:
            kw[key] = doc.boolean(it[key][1], f"{where}.{key}")
    return Mapping(**kw)


def parse_mappings_file(path: Path, registry: ParamRegistry | None = None) -> list[Mapping]:
    """A mapping file: `mappings: [...]` (or a bare list). Errors name file:line."""
    doc, root = _compose(path)
    if root is None:
        return []
    if isinstance(root, yaml.SequenceNode):
        return _mapping_list(doc, root, "mappings", registry)
    it = doc.items(root, "")
    doc.check_keys(it, ("mappings",), "")
    if "mappings" not in it or doc.value(it["mappings"][1]) is None:
        return []
    return _mapping_list(doc, it["mappings"][1], "mappings", registry)
