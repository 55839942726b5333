"""The effects library: shaders that declare their own parameters; chains of them per deck/master.

An effect is `shaders/effects/NAME.frag`. Its parameters are declared in the file itself, one
comment line each, and become registry parameters `NAME.PARAM` (so MIDI, OSC, routes and
presets reach them without code changes); the shader reads each as a `uniform float PARAM`:

    // @effect Pixelate: square blocks, each the colour at its centre.
    // @param size 8 1 64 int | block size in output pixels
    //        name default min max [float|int|bool] | doc

Besides its own, an effect may declare any of the standard uniforms in `STANDARD_UNIFORMS`.
An `EffectLibrary` (one per GL context) compiles each effect once, hot-reloads it when its
file changes (a failed build keeps the last good program and reports `file:line`), times
every pass and guards against a reload that makes it explode (`vj.render.passtime`). An
`EffectChain` runs a list of effects on a texture; a slot whose shader samples `feedback`
keeps its own ping-pong pair, so trails survive other slots and other chains.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import moderngl
import numpy as np

from vj.hints import did_you_mean
from vj.params import ParamRegistry, ParamSpec
from vj.render.offscreen import is_software_renderer
from vj.render.passtime import PassTimer, SlowShaderGuard
from vj.render.shaders import BUILTIN_PASSTHROUGH, HotProgram, default_shader_dir, list_effects

# uniforms the chain sets for any effect that declares them (parameters may not reuse them)
STANDARD_UNIFORMS = (
    "scene",  # sampler2D: this pass's input
    "feedback",  # sampler2D: this slot's own previous output
    "resolution",  # vec2: output size in pixels
    "time",  # seconds since the first frame
    "beat",  # beats since the start (fractional), from the active tempo source
    "beat_phase",  # 0..1 within the beat
    "bar_phase",  # 0..1 within the bar
    "bpm",
    "onset_env",  # 0..1 onset/beat flash envelope (the Show's `pulse`)
    "rms",
    "bands",  # float[8], 0..1 band energies, low → high
    # the built-in compositor parameters, for the effects written before the library
    "fx_amount",
    "fx_pulse",  # fx_pulse parameter × onset_env
    "brightness",
    "contrast",
    "saturation",
    "master",
)
_GLSL_WORDS = {"mix", "min", "max", "step", "clamp", "length", "dot", "pow", "exp", "sin", "cos"}
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_DECL = re.compile(r"^\s*//\s*@(effect|param)\b(.*)$")


class EffectError(ValueError):
    """A bad effect file or name; the message starts with `file:line:` where there is one."""


@dataclass(frozen=True)
class EffectSpec:
    name: str
    path: Path
    doc: str
    params: tuple[ParamSpec, ...]  # registry specs, named "{effect}.{param}"

    def local(self, spec: ParamSpec) -> str:
        """The uniform name of one of this effect's parameters."""
        return spec.name[len(self.name) + 1 :]


def parse_effect(path: Path, name: str | None = None) -> EffectSpec:
    """Read the `@effect` / `@param` declarations of one shader file."""
    name = name or path.stem
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise EffectError(f"{path}: cannot read effect: {exc}") from None
    doc, params, seen = "", [], set()
    for i, line in enumerate(text.splitlines(), 1):
        m = _DECL.match(line)
        if m is None:
            continue
        if m.group(1) == "effect":
            doc = m.group(2).strip()
            continue
        body, _, pdoc = m.group(2).partition("|")
        f = body.split()
        where = f"{path}:{i}: @param"
        if len(f) not in (4, 5):
            raise EffectError(f"{where}: expected 'NAME DEFAULT MIN MAX [float|int|bool] | doc'")
        pname, kind = f[0], (f[4] if len(f) == 5 else "float")
        if not _NAME.match(pname):
            raise EffectError(f"{where}: name {pname!r} must be lower_case letters/digits/_")
        if pname in STANDARD_UNIFORMS or pname in _GLSL_WORDS:
            raise EffectError(f"{where}: name {pname!r} is reserved (a standard uniform or GLSL)")
        if pname in seen:
            raise EffectError(f"{where}: {pname!r} declared twice")
        if kind not in ("float", "int", "bool"):
            raise EffectError(f"{where}: kind {kind!r} must be float, int or bool")
        try:
            default, lo, hi = (float(x) for x in f[1:4])
        except ValueError:
            raise EffectError(f"{where}: DEFAULT MIN MAX must be numbers, got {f[1:4]}") from None
        if not (lo <= default <= hi) or not all(np.isfinite((default, lo, hi))):
            raise EffectError(f"{where}: default {default} outside [{lo}, {hi}]")
        seen.add(pname)
        params.append(ParamSpec(f"{name}.{pname}", default, lo, hi, kind, doc=pdoc.strip()))
    return EffectSpec(name, path, doc, tuple(params))


def effect_specs(shader_dir: Path | None = None) -> tuple[list[EffectSpec], list[str]]:
    """Every effect's declarations (no GL needed); bad files go to the error list."""
    shader_dir = Path(shader_dir) if shader_dir is not None else default_shader_dir()
    specs, errors = [], []
    for name in list_effects(shader_dir):
        try:
            specs.append(parse_effect(shader_dir / "effects" / f"{name}.frag"))
        except EffectError as exc:
            errors.append(str(exc))
    return specs, errors


def check_effect_name(name: str, shader_dir: Path | None = None) -> None:
    """Raise EffectError (with a did-you-mean) unless `name` is in shaders/effects/."""
    shader_dir = Path(shader_dir) if shader_dir is not None else default_shader_dir()
    names = list_effects(shader_dir)
    if name not in names:
        hint = did_you_mean(name, names)
        raise EffectError(
            f"unknown effect {name!r}{hint}: {shader_dir / 'effects'} has "
            f"{', '.join(names) or 'none'}"
        )


def register_effect_params(registry: ParamRegistry, shader_dir: Path | None = None) -> list[str]:
    """Define every effect parameter in `registry` (once); returns declaration errors."""
    specs, errors = effect_specs(shader_dir)
    for es in specs:
        for p in es.params:
            if p.name not in registry:
                registry.define(p)
    return errors


class FxInputs(NamedTuple):
    """The per-frame values behind the standard uniforms (from the ShowFrame)."""

    time: float = 0.0
    beat: float = 0.0
    beat_phase: float = 0.0
    bar_phase: float = 0.0
    bpm: float = 0.0
    onset_env: float = 0.0
    rms: float = 0.0
    bands: tuple[float, ...] = (0.0,) * 8


NO_INPUTS = FxInputs()  # silence at time 0 (immutable)


class _Effect:
    def __init__(self, spec: EffectSpec, prog: HotProgram) -> None:
        self.spec, self.prog = spec, prog
        self.bypass: str | None = None  # why the pass is skipped (too slow), None = runs

    @property
    def uses_feedback(self) -> bool:
        return "feedback" in self.prog.program


class EffectLibrary:
    """Compiled effects for one GL context, hot-reloaded and timed; shared by every chain."""

    def __init__(
        self,
        ctx: moderngl.Context,
        shader_dir: Path | None = None,
        guard: SlowShaderGuard | None = None,
        finish=None,
    ) -> None:
        self.ctx = ctx
        self.shader_dir = Path(shader_dir) if shader_dir is not None else default_shader_dir()
        if guard is None:
            # a CPU rasteriser takes hundreds of ms per 1080p pass on a busy machine: there a
            # first build over 1 s per pass is reported, not bypassed
            soft = is_software_renderer(ctx)
            guard = SlowShaderGuard(max_ms=1000.0 if soft else 250.0, bypass=not soft)
        self.guard = guard
        self.timer = PassTimer(ctx, finish=finish)
        self._fx: dict[str, _Effect] = {}
        self.messages: list[str] = []  # first-build errors and slow-shader verdicts not yet shown
        self.last_ms: dict[str, float] = {}  # newest measured pass time per effect

    def names(self) -> list[str]:
        return list_effects(self.shader_dir)

    def path(self, name: str) -> Path:
        return self.shader_dir / "effects" / f"{name}.frag"

    def check_name(self, name: str) -> None:
        check_effect_name(name, self.shader_dir)

    def get(self, name: str) -> _Effect:
        fx = self._fx.get(name)
        if fx is None:
            self.check_name(name)
            try:
                spec = parse_effect(self.path(name))
            except EffectError as exc:  # declarations broken: run it with no parameters
                self.messages.append(str(exc))
                spec = EffectSpec(name, self.path(name), "", ())
            vert = self.shader_dir / "fullscreen.vert"
            prog = HotProgram(self.ctx, self.path(name), BUILTIN_PASSTHROUGH, vert)
            if prog.error:
                self.messages.append(prog.error)
            fx = self._fx[name] = _Effect(spec, prog)
        return fx

    def error(self, name: str) -> str | None:
        fx = self._fx.get(name)
        return None if fx is None else (fx.prog.error or fx.bypass)

    def errors(self) -> list[str]:
        return [e for e in (self.error(n) for n in self._fx) if e]

    def poll(self, registry: ParamRegistry | None = None) -> list[str]:
        """Rebuild effects whose files changed (a few stats). Returns one line per change.

        New parameters of a reloaded effect are defined in `registry` when given.
        """
        events = []
        for name, fx in self._fx.items():
            ev = fx.prog.poll()
            if ev is None:
                continue
            events.append(ev)
            if fx.prog.error is None:
                fx.bypass = None
                try:
                    fx.spec = parse_effect(fx.spec.path, name)
                except EffectError as exc:
                    events.append(str(exc))
                if registry is not None:
                    for p in fx.spec.params:
                        if p.name not in registry:
                            registry.define(p)
        return events

    def end_frame(self) -> list[str]:
        """Feed this frame's pass times to the guard; returns its verdicts (also in messages)."""
        lines = []
        for (name, generation), ms in self.timer.end_frame():
            self.last_ms[name] = ms
            fx = self._fx.get(name)
            if fx is None or generation != fx.prog.generation:
                continue  # timed before a reload: says nothing about the current build
            v = self.guard.observe(name, generation, ms)
            if v is None:
                continue
            if v.action == "revert":
                msg = (
                    f"{fx.spec.path}: reloaded shader is too slow ({v.new_ms:.1f} ms per pass, "
                    f"was {v.old_ms:.1f} ms): kept the last good version"
                )
                if not fx.prog.revert(msg):
                    fx.bypass = msg
            elif v.action == "bypass":
                msg = (
                    f"{fx.spec.path}: shader is too slow ({v.new_ms:.1f} ms per pass, limit "
                    f"{self.guard.max_ms:.0f} ms): effect bypassed until the file changes"
                )
                fx.bypass = msg
            else:
                msg = f"{fx.spec.path}: shader is very slow ({v.new_ms:.1f} ms per pass)"
            lines.append(msg)
        self.messages += lines
        return lines

    def take_messages(self) -> list[str]:
        out, self.messages = self.messages, []
        return out

    def release(self) -> None:
        for fx in self._fx.values():
            fx.prog.release()
        self._fx.clear()
        self.timer.release()


def _set(prog: moderngl.Program, name: str, value) -> None:
    if name in prog:
        prog[name].value = value


class _Slot:
    def __init__(self, name: str) -> None:
        self.name = name
        self.own: list[tuple[moderngl.Texture, moderngl.Framebuffer]] = []  # feedback pair
        self.i = 0


class EffectChain:
    """Runs a list of effects on a texture at one size; `run` returns the chain's output."""

    def __init__(
        self, library: EffectLibrary, names: Sequence[str] = (), size: tuple[int, int] = (0, 0)
    ) -> None:
        self.lib = library
        self.ctx = library.ctx
        self.size = (0, 0)
        self._shared: list[tuple[moderngl.Texture, moderngl.Framebuffer]] = []
        self._slots: list[_Slot] = []
        self._bands = np.zeros(8, np.float32)
        if size != (0, 0):
            self.resize(*size)
        self.set(names)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self._slots)

    def set(self, names: Iterable[str]) -> None:
        """Change the list of effects; a slot keeps its trails while its effect stays put."""
        names = tuple(names)
        if names == self.names:
            return
        for n in names:
            self.lib.get(n)  # unknown names raise EffectError here, before anything changes
        old = self._slots
        self._slots = []
        for i, n in enumerate(names):
            if i < len(old) and old[i].name == n:
                self._slots.append(old[i])
                old[i] = None  # type: ignore[call-overload]
            else:
                self._slots.append(_Slot(n))
        for s in old:
            if s is not None:
                self._free(s.own)

    def resize(self, width: int, height: int) -> None:
        """Reallocate for a new output size (clears the trails)."""
        if (width, height) == self.size:
            return
        if width <= 0 or height <= 0:
            raise ValueError(f"effect chain size must be positive, got {width}x{height}")
        self._free(self._shared)
        for s in self._slots:
            self._free(s.own)
        self.size = (int(width), int(height))
        self._shared = [self._target() for _ in range(2)]

    def _target(self) -> tuple[moderngl.Texture, moderngl.Framebuffer]:
        tex = self.ctx.texture(self.size, 4)  # RGBA8: half floats cost llvmpipe 2x per pass
        tex.repeat_x = tex.repeat_y = False
        tex.filter = (moderngl.LINEAR, moderngl.LINEAR)
        fbo = self.ctx.framebuffer(color_attachments=[tex])
        fbo.clear(0.0, 0.0, 0.0, 1.0)
        return tex, fbo

    @staticmethod
    def _free(pairs: list) -> None:
        for tex, fbo in pairs:
            fbo.release()
            tex.release()
        pairs.clear()

    def clear_feedback(self) -> None:
        for s in self._slots:
            for _, fbo in s.own:
                fbo.clear(0.0, 0.0, 0.0, 1.0)

    def run(
        self,
        src: moderngl.Texture,
        params: Mapping[str, float],
        inputs: FxInputs = NO_INPUTS,
        after_pass=None,
    ) -> moderngl.Texture:
        """Apply the chain to `src` (any size: sampled with uv); returns src if it is empty.

        `params` holds registry values by name; missing ones take the declared default.
        `after_pass()` is called after each pass (the compositor's GIL-free finish).
        """
        cur = src
        for slot in self._slots:
            fx = self.lib.get(slot.name)
            if fx.bypass is not None:
                continue
            prog = fx.prog.program
            if fx.uses_feedback:
                if not slot.own:
                    slot.own = [self._target() for _ in range(2)]
                fb_tex = slot.own[slot.i][0]
                slot.i ^= 1
                out_tex, out_fbo = slot.own[slot.i]
            else:
                fb_tex = None
                out_tex, out_fbo = (
                    self._shared[0] if cur is not self._shared[0][0] else self._shared[1]
                )
            out_fbo.use()
            cur.use(location=0)
            _set(prog, "scene", 0)
            if fb_tex is not None:
                fb_tex.use(location=1)
                _set(prog, "feedback", 1)
            self._uniforms(prog, fx.spec, params, inputs)
            vao = fx.prog.vao
            key = (slot.name, fx.prog.generation)  # times are judged per build
            self.lib.timer.run(key, lambda v=vao: v.render(moderngl.TRIANGLES, vertices=3))
            if after_pass is not None:
                after_pass()
            cur = out_tex
        return cur

    def _uniforms(self, prog, spec: EffectSpec, params, inputs: FxInputs) -> None:
        w, h = self.size
        _set(prog, "resolution", (float(w), float(h)))
        for name in ("time", "beat", "beat_phase", "bar_phase", "bpm", "onset_env", "rms"):
            _set(prog, name, float(getattr(inputs, name)))
        if "bands" in prog:
            n = min(8, len(inputs.bands))
            self._bands[:n] = inputs.bands[:n]
            self._bands[n:] = 0.0
            u = prog["bands"]  # the compiler may trim the array to the elements read
            u.write(self._bands[: min(8, max(1, u.array_length))].tobytes())
        g = params.get
        _set(prog, "fx_amount", float(g("fx_amount", 0.35)))
        _set(prog, "fx_pulse", float(g("fx_pulse", 0.5)) * inputs.onset_env)
        for name, d in (
            ("brightness", 0.0),
            ("contrast", 1.0),
            ("saturation", 1.0),
            ("master", 1.0),
        ):
            _set(prog, name, float(g(name, d)))
        for p in spec.params:
            _set(prog, spec.local(p), float(g(p.name, p.default)))

    def release(self) -> None:
        self._free(self._shared)
        for s in self._slots:
            self._free(s.own)
        self._slots = []


class ChainSet:
    """The deck and master chains of `CompositorControls.chains` ({"A": (...), "master": ...})."""

    def __init__(self, library: EffectLibrary, size: tuple[int, int]) -> None:
        self.lib = library
        self.size = size
        self.chains: dict[str, EffectChain] = {}

    def update(self, chains: Mapping[str, Sequence[str]]) -> None:
        """Set the named chains; every name is checked first, so a bad one changes nothing."""
        for names in chains.values():
            for n in names:
                self.lib.get(n)
        for key, names in chains.items():
            ch = self.chains.get(key)
            if ch is None:
                ch = self.chains[key] = EffectChain(self.lib, (), self.size)
            ch.set(names)

    def run(self, key: str, src, params, inputs: FxInputs = NO_INPUTS, after_pass=None):
        ch = self.chains.get(key)
        return src if ch is None else ch.run(src, params, inputs, after_pass)

    def resize(self, width: int, height: int) -> None:
        self.size = (width, height)
        for ch in self.chains.values():
            ch.resize(width, height)

    def release(self) -> None:
        for ch in self.chains.values():
            ch.release()
        self.chains.clear()
