"""The compositor: uploads generator frames, crossfades them, applies effect and colour, draws HUD.

Full-screen passes, all from `shaders/`: composite (crossfade, fit-mode upscale, zoom,
brightness/contrast/saturation) into a texture; the effect chains (vj/render/effects.py: the
deck's, then the master's; feedback slots keep their own buffers); present (master fader and
HUD) into the caller's framebuffer. Works the same on an
EGL offscreen target and on a window's default framebuffer.
"""

from __future__ import annotations

from pathlib import Path

import moderngl
import numpy as np

from vj.audio.features import AudioFeatures
from vj.clock import StampLog
from vj.render.effects import ChainSet, EffectError, EffectLibrary, FxInputs
from vj.render.fit import check_mode, fit_scale
from vj.render.hud import HudText
from vj.render.offscreen import gil_free_finish, is_software_renderer
from vj.render.shaders import (
    BUILTIN_VERTEX,
    HotProgram,
    default_shader_dir,
    list_effects,
)
from vj.show.frame import BLEND_MODES, CompositorControls

_BUILTIN_COMPOSITE = """#version 330 core
uniform sampler2D prev_tex;
uniform sampler2D cur_tex;
uniform float mix_w;
uniform vec2 prev_cover;
uniform vec2 cur_cover;
uniform float zoom;
in vec2 uv;
out vec4 frag;
vec2 sc(vec2 cover) {
    vec2 s = clamp(0.5 + (uv - 0.5) * cover / zoom, 0.0, 1.0);
    return vec2(s.x, 1.0 - s.y);
}
void main() {
    vec3 c = mix(texture(prev_tex, sc(prev_cover)).rgb, texture(cur_tex, sc(cur_cover)).rgb, mix_w);
    frag = vec4(c, 1.0);
}
"""

_BUILTIN_HUD = """#version 330 core
uniform sampler2D hud_tex;
in vec2 uv;
out vec4 frag;
void main() {
    float cov = texture(hud_tex, vec2(uv.x, 1.0 - uv.y)).r;
    frag = vec4(vec3(cov), 1.0 - 0.65 * (1.0 - cov));
}
"""

_BUILTIN_PRESENT = """#version 330 core
uniform sampler2D image;
uniform float master;
in vec2 uv;
out vec4 frag;
void main() { frag = vec4(texture(image, uv).rgb * master, 1.0); }
"""

# the fade's current state, frozen when a new frame arrives early (same size: exact per texel)
_BLEND = """#version 330 core
uniform sampler2D a;
uniform sampler2D b;
uniform float w;
in vec2 uv;
out vec4 frag;
void main() { frag = vec4(mix(texture(a, uv).rgb, texture(b, uv).rgb, w), 1.0); }
"""

# deck A + deck B → one scene (see blend_reference for the formula; the same in numpy)
_DECK_BLEND = """#version 330 core
uniform sampler2D deck_a;
uniform sampler2D deck_b;
uniform float x;
uniform int mode;
in vec2 uv;
out vec4 frag;
void main() {
    vec3 a = texture(deck_a, uv).rgb;
    vec3 b = texture(deck_b, uv).rgb;
    vec3 c;
    if (mode == 0) {
        c = mix(a, b, x);
    } else {
        vec3 f;
        if (mode == 1) f = min(a + b, 1.0);
        else if (mode == 2) f = a * b;
        else if (mode == 3) f = 1.0 - (1.0 - a) * (1.0 - b);
        else f = abs(a - b);
        c = mix(mix(a, f, min(2.0 * x, 1.0)), b, max(2.0 * x - 1.0, 0.0));
    }
    frag = vec4(c, 1.0);
}
"""

FILTERS = ("bilinear", "bicubic", "lanczos")


def blend_reference(a: np.ndarray, b: np.ndarray, x: float, mode: str) -> np.ndarray:
    """Plain twin of the deck blend: [..., 3] floats 0..1, crossfader x (0 = A, 1 = B).

    normal crossfades A → B; the other modes go A → f(A, B) over the first half of the
    crossfader and f(A, B) → B over the second, so 0 is always A alone and 1 B alone.
    """
    a, b = a.astype(np.float64), b.astype(np.float64)
    if mode == "normal":
        return a + (b - a) * x
    f = {
        "add": lambda: np.minimum(a + b, 1.0),
        "multiply": lambda: a * b,
        "screen": lambda: 1.0 - (1.0 - a) * (1.0 - b),
        "difference": lambda: np.abs(a - b),
    }[mode]()
    c = a + (f - a) * min(2.0 * x, 1.0)
    return c + (b - c) * max(2.0 * x - 1.0, 0.0)


def _warn_upload(msg: str) -> None:
    import sys

    print(f"vj: {msg}", file=sys.stderr, flush=True)


def cover_scale(src_w: int, src_h: int, dst_w: int, dst_h: int) -> tuple[float, float]:
    """Per-axis fraction of the source visible when it covers the target with its aspect kept."""
    a_src, a_dst = src_w / src_h, dst_w / dst_h
    return (min(1.0, a_dst / a_src), min(1.0, a_src / a_dst))


def crossfade_weight(t_ns: int, t_cur_ns: int, interval_ns: float, crossfade: float) -> float:
    """Weight of the current frame: 0 → 1 over `crossfade` × the frame interval after arrival."""
    if crossfade <= 0.0 or interval_ns <= 0.0:
        return 1.0
    return min(max((t_ns - t_cur_ns) / (crossfade * interval_ns), 0.0), 1.0)


def grade_reference(
    rgb: np.ndarray, brightness: float, contrast: float, saturation: float, master: float = 1.0
) -> np.ndarray:
    """Plain twin of the colour controls in composite.frag + present.frag.

    rgb: [..., 3] float in 0..1 → [..., 3] float in 0..1.
    """
    c = (rgb.astype(np.float64) + brightness - 0.5) * contrast + 0.5
    luma = c @ np.array([0.2126, 0.7152, 0.0722])
    c = luma[..., None] + (c - luma[..., None]) * saturation
    return np.clip(c, 0.0, 1.0) * master


def as_controls(
    params: CompositorControls | dict[str, float], features: AudioFeatures | None = None
) -> CompositorControls:
    """A CompositorControls as given, or one made from a plain parameter dict (no pulse; raw
    band / rms / beat / bar uniforms from `features` when given)."""
    if isinstance(params, CompositorControls):
        return params
    if features is None:
        return CompositorControls(params=params)
    return CompositorControls(
        params=params,
        bands=tuple(float(b) for b in features.bands[:8]),
        rms=float(features.rms),
        beat_phase=float(features.beat_phase),
        beat=float(features.beat_count) + float(features.beat_phase),
        bar_phase=(float(features.bar_position) / 4.0) % 1.0,
        bpm=float(features.bpm),
    )


def fx_inputs(seconds: float, cc: CompositorControls) -> FxInputs:
    """The effects' standard uniforms for one frame: the Show's pulse, tempo and levels."""
    return FxInputs(
        time=float(seconds),
        beat=float(cc.beat),
        beat_phase=float(cc.beat_phase),
        bar_phase=float(cc.bar_phase),
        bpm=float(cc.bpm),
        onset_env=float(cc.pulse),
        rms=float(cc.rms),
        bands=tuple(float(b) for b in cc.bands[:8]),
    )


class Compositor:
    """Draws the newest generator frames to a framebuffer; one per GL context."""

    def __init__(
        self,
        ctx: moderngl.Context,
        width: int,
        height: int,
        shader_dir: Path | None = None,
        effect: str | None = "default",
        filter: str = "bicubic",
        interval_alpha: float = 0.25,
        stamps: StampLog | None = None,
        fit: str = "fill",
    ) -> None:
        if filter not in FILTERS:
            raise ValueError(f"compositor filter {filter!r}: allowed values are {FILTERS}")
        self.fit = check_mode(fit)  # how the generator frame fills the output (vj/render/fit.py)
        self.ctx = ctx
        self.shader_dir = Path(shader_dir) if shader_dir is not None else default_shader_dir()
        self._alpha = float(interval_alpha)
        self._filter = filter
        self._stamps = stamps
        # on a CPU rasteriser, finish each pass outside the GIL (see gil_free_finish)
        self._finish = gil_free_finish() if is_software_renderer(ctx) else None
        self.last_error: str | None = None
        self.defer_hud = False  # True: draw() leaves the HUD lines in pending_hud
        self.param_registry = None  # a ParamRegistry: reloaded effects define new params there
        self.pending_hud: list[str] | None = None

        vert = self.shader_dir / "fullscreen.vert"
        defines = {"bicubic": {"BICUBIC": "1"}, "lanczos": {"LANCZOS": "1"}}.get(filter, {})
        if fit == "fit":
            defines["OUTSIDE_BLACK"] = "1"  # bars; the other modes mirror (zoom < 1 too)
        sd = self.shader_dir
        self._composite = HotProgram(ctx, sd / "composite.frag", _BUILTIN_COMPOSITE, vert, defines)
        self._present = HotProgram(ctx, sd / "present.frag", _BUILTIN_PRESENT, vert)
        self._hud_prog = HotProgram(ctx, sd / "hud.frag", _BUILTIN_HUD, vert)
        self.effects_lib = EffectLibrary(ctx, self.shader_dir, finish=self._finish)
        self.chains = ChainSet(self.effects_lib, (width, height))
        self._effect_name = ""
        self._chains_seen: tuple | None = None  # the chains follow_chains took last
        if effect is not None:  # None: no master chain (deck B's composite-only layer)
            self.set_effect(effect)

        # generator frames [previous, current, spare]; textures are reused while the size holds
        self._frames: list[moderngl.Texture | None] = [None, None, None]
        self._frame_ids = [-1, -1]
        self._fbos: dict[int, moderngl.Framebuffer] = {}  # texture glo → fbo, for snapshots
        self._blend = ctx.program(vertex_shader=BUILTIN_VERTEX, fragment_shader=_BLEND)
        self._blend_vao = ctx.vertex_array(self._blend, [])
        self._t_cur = 0
        self._t_last_submit: int | None = None
        self.interval_ns = 0.0  # EMA of the time between submitted frames
        self.frames_submitted = 0
        self._uploader = None  # CudaGLUploader, made on the first CUDA frame
        self._interop_checked = False
        self.interop_reason: str | None = None  # why CUDA frames go through the host, if they do

        self._t0: int | None = None  # first draw time: the `time` uniform counts from here
        self._deck_b: Compositor | None = None  # deck B's frames, made on its first frame
        self._mix: tuple[moderngl.Texture, moderngl.Framebuffer] | None = None
        self._deck_blend: moderngl.Program | None = None
        self.last_mix = 1.0

        self._hud = HudText()
        self._hud_graph = False
        self._hud_tex = ctx.texture((1, 1), 1, data=b"\x00")
        self._hud_tex.filter = (moderngl.NEAREST, moderngl.NEAREST)

        self.size = (0, 0)
        self._scene: moderngl.Texture | None = None
        self._scene_fbo: moderngl.Framebuffer | None = None
        self.resize(width, height)
        self._update_error()

    # -- setup ---------------------------------------------------------------------------
    def resize(self, width: int, height: int) -> None:
        """Reallocate the intermediate targets for a new output size (clears the feedback)."""
        if width <= 0 or height <= 0:
            raise ValueError(f"compositor size must be positive, got {width}x{height}")
        if (width, height) == self.size:
            return
        if self._scene is not None:
            self._scene_fbo.release()
            self._scene.release()
        self.size = (int(width), int(height))
        # RGBA8 intermediates: half-float ones cost llvmpipe twice as much per pass
        self._scene = self.ctx.texture(self.size, 4)
        self._scene_fbo = self.ctx.framebuffer(color_attachments=[self._scene])
        self._scene.repeat_x = self._scene.repeat_y = False
        self.chains.resize(*self.size)

    def effects(self) -> list[str]:
        """Names of the effects in `shader_dir/effects/`."""
        return list_effects(self.shader_dir)

    def set_effect(self, name: str) -> None:
        """Make `name` the master chain's only effect (the one-slot control of `vj --effect`)."""
        available = self.effects()
        if not available:  # no effects at all: nothing applied, said in last_error
            self._effect_name = name
            self._update_error()
            return
        if name == self._effect_name:
            return
        try:
            self.set_chains({"master": (name,)})
        except EffectError as exc:
            raise ValueError(str(exc)) from None
        self._effect_name = name

    def swap_effect(self, name: str) -> None:
        """Put `name` in the master chain's first slot and keep the rest of the chain, as the
        Show's `effect` event does (`set_effect` replaces the whole chain). Raises ValueError
        for an unknown effect (nothing changes then)."""
        master = self.chains.chains.get("master")
        rest = master.names[1:] if master is not None else ()
        if master is not None and master.names[:1] == (name,):
            return
        try:
            self.set_chains({"master": (name, *rest)})
        except EffectError as exc:
            raise ValueError(str(exc)) from None

    def set_chains(self, chains) -> None:
        """Effect chains by name, as in `CompositorControls.chains` ({"A": (...), "master": ...}).

        Raises EffectError for an unknown effect (nothing changes then); keys left out keep
        their chain. Chain "A" runs on deck A's composited frame, "B" on deck B's (before the
        decks are blended), then "master" on the blend.
        """
        self.chains.update(chains)
        master = tuple(chains.get("master", ()))
        if master:
            self._effect_name = master[0]
        self._update_error()

    def follow_chains(self, chains) -> str | None:
        """Take a ShowFrame's `compositor.chains` (cheap when they are the ones taken last).

        An unknown effect changes nothing; its message is returned once for those chains.
        """
        key = tuple(sorted((k, tuple(v)) for k, v in chains.items()))
        if key == self._chains_seen:
            return None
        self._chains_seen = key
        try:
            self.set_chains(chains)
        except EffectError as exc:
            return str(exc)
        return None

    def cycle_effect(self, step: int = 1) -> str:
        """Switch to the next (or previous, step=-1) effect in name order; returns its name."""
        names = self.effects()
        if not names:
            return self._effect_name
        i = names.index(self._effect_name) if self._effect_name in names else -1
        self.set_effect(names[(i + step) % len(names)])
        return self._effect_name

    @property
    def effect(self) -> str:
        return self._effect_name

    def _programs(self) -> tuple[HotProgram, ...]:
        return (self._composite, self._present, self._hud_prog)

    def _update_error(self) -> None:
        errs = [p.error for p in self._programs() if p.error] + self.effects_lib.errors()
        if not self.effects():
            errs.append(f"{self.shader_dir / 'effects'}: no effects found; none applied")
        self.last_error = "\n".join(errs) if errs else None

    def reload_shaders(self) -> list[str]:
        """Rebuild programs whose files changed (cheap when nothing did: a few stats).

        Returns one line per changed file: `file: reloaded` or the `file:line: error`, and one
        per effect the slow-shader guard reverted or bypassed. A failed build keeps the
        previous program.
        """
        events = [e for e in (p.poll() for p in self._programs()) if e is not None]
        events += self.effects_lib.poll(self.param_registry)
        events += self.effects_lib.take_messages()  # slow-shader verdicts since the last call
        if events:
            self._update_error()
        return events

    # -- frames --------------------------------------------------------------------------
    def submit_frame(
        self, rgba, frame_id: int, t_ns: int, stream=None, event=None, deck: str = "A"
    ) -> None:
        """Upload a generator frame [h, w, 4] (or [h, w, 3]), top row first; it fades in.

        `rgba`: a numpy array or torch tensor (CPU or CUDA), uint8 0..255 or float16/float32
        0..1. A CUDA tensor is copied on the GPU (CUDA–GL interop) where the GL driver allows,
        after `event` (the engine frame's end event) on `stream` (the engine's stream, so its
        later writes into that buffer wait for this copy); otherwise — or if interop fails
        mid-show — through the host, reported once (`interop_reason`, `upload_description`).
        `deck` "B" goes to the second deck (blended in by the crossfader and blend mode).
        """
        if deck != "A":
            self._deck_b_layer().submit_frame(rgba, frame_id, t_ns, stream=stream, event=event)
            return
        from vj.render.interop import TEXTURE_DTYPES, frame_dtype

        kind = frame_dtype(rgba) if hasattr(rgba, "dtype") else type(rgba).__name__
        shape = tuple(getattr(rgba, "shape", ()))
        if len(shape) != 3 or shape[2] not in (3, 4) or kind not in TEXTURE_DTYPES:
            raise ValueError(
                f"submit_frame: expected a uint8 (0..255) or float16/float32 (0..1) "
                f"[h, w, 4] image, got {kind} {shape}"
            )
        h, w, comps = shape
        prev, cur, spare = self._frames
        if prev is not None and cur is not None and self.last_mix < 1.0:
            # arrived before the fade finished: what is on screen becomes the new "previous",
            # so the fade continues from there instead of popping
            spare = self._snapshot(prev, cur, self.last_mix, spare)
            prev, free, spare = spare, prev, cur
        else:
            prev, free = cur, prev
        self._frame_ids = [self._frame_ids[1], -1]
        tex = self._texture(free, w, h, comps, TEXTURE_DTYPES[kind])
        self._frames = [prev, tex, spare]
        self._frame_uploader().upload(rgba, tex, stream=stream, event=event)
        self.interop_reason = self._uploader.reason or None
        self._frame_ids[1] = frame_id
        if self._stamps is not None:
            self._stamps.stamp(frame_id, "upload")

        if self._t_last_submit is not None:
            dt = float(t_ns - self._t_last_submit)
            if dt > 0:
                self.interval_ns = (
                    dt
                    if self.interval_ns <= 0
                    else (self.interval_ns + self._alpha * (dt - self.interval_ns))
                )
        self._t_last_submit = t_ns
        self._t_cur = t_ns
        self.frames_submitted += 1

    def _frame_uploader(self):
        """The FrameUploader (interop or host path, chosen per frame), made on first use."""
        from vj.render.interop import FrameUploader

        if self._uploader is None:
            self._uploader = FrameUploader(self.ctx, warn=_warn_upload)
        return self._uploader

    @property
    def upload_description(self) -> str:
        """How generator frames reach the GPU: `upload interop`, `upload host copy (why)`."""
        return "upload none" if self._uploader is None else self._uploader.describe()

    def _texture(self, tex: moderngl.Texture | None, w: int, h: int, comps: int, dtype="f1"):
        """`tex` if it has this size and format, else a new one (the old one released)."""
        if tex is not None and tex.size == (w, h) and tex.components == comps:
            if tex.dtype == dtype:
                return tex
        if tex is not None:
            fbo = self._fbos.pop(tex.glo, None)
            if fbo is not None:
                fbo.release()
            tex.release()
        tex = self.ctx.texture((w, h), comps, alignment=1, dtype=dtype)
        tex.filter = (moderngl.LINEAR, moderngl.LINEAR)
        tex.repeat_x = tex.repeat_y = False
        return tex

    def _snapshot(self, a, b, weight: float, into) -> moderngl.Texture:
        """mix(a, b, weight) at b's size into `into` (reused when it fits)."""
        tex = self._texture(into, *b.size, 4)
        fbo = self._fbos.get(tex.glo)
        if fbo is None:
            fbo = self._fbos[tex.glo] = self.ctx.framebuffer(color_attachments=[tex])
        fbo.use()
        a.use(location=0)
        b.use(location=1)
        self._blend["a"].value = 0
        self._blend["b"].value = 1
        self._blend["w"].value = weight
        self._blend_vao.render(moderngl.TRIANGLES, vertices=3)
        self._pass_done()
        return tex

    @property
    def scene_texture(self) -> moderngl.Texture:
        """The composited frame before the effect chains (the deck preview of the operator view)."""
        return self._scene

    def deck_textures(self) -> dict[str, moderngl.Texture | None]:
        """Each deck's composited frame before the effect chains (the operator's previews);
        "B" is None until deck B's first frame."""
        b = self._deck_b
        return {"A": self._scene, "B": b._scene if b is not None else None}

    @property
    def current_frame_id(self) -> int:
        """Id of the newest submitted frame (-1 before the first)."""
        return self._frame_ids[1]

    # -- drawing -------------------------------------------------------------------------
    def _composite_frames(self, t_ns: int, p) -> None:
        """This deck's newest frames, crossfaded, cover-fit, zoomed and graded → self._scene."""
        w, h = self.size
        self._scene_fbo.use()
        cur = self._frames[1]
        if cur is None:
            self._scene_fbo.clear(0.0, 0.0, 0.0, 1.0)
            self.last_mix = 1.0
            return
        prev = self._frames[0]
        mix_w = (
            1.0
            if prev is None
            else crossfade_weight(t_ns, self._t_cur, self.interval_ns, float(p("crossfade", 1.0)))
        )
        self.last_mix = mix_w
        prog = self._composite.program
        cur.use(location=1)
        (prev or cur).use(location=0)
        self._set(prog, "prev_tex", 0)
        self._set(prog, "cur_tex", 1)
        self._set(prog, "mix_w", mix_w)
        self._set(prog, "prev_cover", fit_scale(self.fit, *(prev or cur).size, w, h))
        self._set(prog, "cur_cover", fit_scale(self.fit, *cur.size, w, h))
        self._set(prog, "zoom", float(p("zoom", 1.0)))
        self._set(prog, "brightness", float(p("brightness", 0.0)))
        self._set(prog, "contrast", float(p("contrast", 1.0)))
        self._set(prog, "saturation", float(p("saturation", 1.0)))
        self._composite.vao.render(moderngl.TRIANGLES, vertices=3)
        self._pass_done()

    @staticmethod
    def _set(prog: moderngl.Program, name: str, value) -> None:
        if name in prog:
            prog[name].value = value

    def draw(
        self,
        fbo: moderngl.Framebuffer,
        t_ns: int,
        params: CompositorControls | dict[str, float],
        features: AudioFeatures | None = None,
        hud_lines: list[str] | None = None,
        hud_graph=None,
    ) -> None:
        """Render one display frame into `fbo` for time `t_ns` (deterministic in its inputs).

        `hud_graph`: an optional frame-time coverage image drawn below the HUD text (draw_hud).

        `params` is the Show's CompositorControls (everything already smoothed and modulated,
        the onset pulse included), or a plain parameter dict (tests, tools): then there is no
        pulse and `features` only supplies the raw band / rms / beat-phase uniforms.
        """
        cc = as_controls(params, features)
        ctx = self.ctx
        p = cc.params.get
        if self._t0 is None:
            self._t0 = t_ns
        seconds = (t_ns - self._t0) / 1e9
        ctx.disable(moderngl.BLEND | moderngl.DEPTH_TEST | moderngl.CULL_FACE)
        w, h = self.size

        # 1. composite: crossfade + fit + zoom + colour → scene; deck chains; decks blended
        fin = self._pass_done if self._finish is not None else None
        inputs = fx_inputs(seconds, cc)
        self._composite_frames(t_ns, p)
        scene = self._decks_scene(t_ns, cc, inputs, fin)

        # 2. the master chain (each slot's trails in its own buffers)
        out_tex = self.chains.run("master", scene, cc.params, inputs, fin)
        self.effects_lib.end_frame()  # slow-shader verdicts: reported by reload_shaders()

        # 3. present: master → caller's framebuffer
        fbo.use()
        prog = self._present.program
        out_tex.use(location=0)
        self._set(prog, "image", 0)
        self._set(prog, "master", float(p("master", 1.0)))
        self._present.vao.render(moderngl.TRIANGLES, vertices=3)
        self._pass_done()

        # 4. HUD over the output; deferred (to the window only, see vj/render/stage.py) when
        # the output also feeds NDI / recording / virtual cameras
        show_hud = bool(hud_lines) and (
            cc.hud if isinstance(params, CompositorControls) else p("hud", 1.0) >= 0.5
        )
        self.pending_hud = list(hud_lines) if show_hud and self.defer_hud else None
        if show_hud and not self.defer_hud:
            self.draw_hud(fbo, hud_lines, hud_graph)
        # 5. the latency probe's marker, last: nothing drawn after it may touch it
        if cc.probe > 0.0:
            self.draw_probe(fbo, int(round(min(cc.probe, 1.0) * 255)))
        if self._stamps is not None and self._frame_ids[1] >= 0:
            self._stamps.stamp(self._frame_ids[1], "composite")

    def draw_hud(self, fbo: moderngl.Framebuffer, hud_lines: list[str], graph=None) -> None:
        """The HUD box (its viewport only), blended over what `fbo` holds, not faded by master.

        `graph`: an optional coverage image [h, w] uint8 drawn below the text (frame times).
        """
        ctx = self.ctx
        out_h = fbo.size[1]
        self._update_hud(hud_lines, graph)
        s = self.hud_scale(out_h)
        ox, oy = self.hud_origin(out_h)
        tw, th = self._hud_tex.size
        saved = fbo.viewport
        fbo.viewport = (ox, out_h - oy - th * s, tw * s, th * s)  # GL origin: bottom-left
        self._hud_tex.use(location=0)
        self._set(self._hud_prog.program, "hud_tex", 0)
        ctx.enable(moderngl.BLEND)
        ctx.blend_func = moderngl.ONE, moderngl.ONE_MINUS_SRC_ALPHA
        self._hud_prog.vao.render(moderngl.TRIANGLES, vertices=3)
        ctx.disable(moderngl.BLEND)
        fbo.viewport = saved

    def set_time_origin(self, t_ns: int) -> None:
        """Count the `time` uniform from t_ns instead of the first draw: an offline shard
        starts drawing mid-render but must show the whole render's effect time."""
        self._t0 = int(t_ns)

    def draw_probe(self, fbo: moderngl.Framebuffer, grey: int) -> None:
        """Latency probe (profiler): a small bottom-right patch of one grey level, drawn after
        everything else so effects never touch it. `draw` calls it for a CompositorControls
        whose `probe` is on (the Show's `probe`)."""
        s = max(4, self.size[1] // 40)  # = vj.profile.probe.patch_size
        v = grey / 255.0
        fbo.use()
        fbo.clear(v, v, v, 1.0, viewport=(self.size[0] - s, 0, s, s))

    def _pass_done(self) -> None:
        if self._finish is not None:
            self._finish()

    # -- decks ---------------------------------------------------------------------------
    def _deck_b_layer(self) -> Compositor:
        """Deck B's frames live in a second compositor on this context (its composite pass
        only: its chain runs from this one's ChainSet); made on deck B's first frame, so a
        one-deck show pays nothing."""
        if self._deck_b is None:
            self._deck_b = Compositor(
                self.ctx,
                *self.size,
                self.shader_dir,
                effect=None,
                filter=self._filter,
                interval_alpha=self._alpha,
                fit=self.fit,
            )
        return self._deck_b

    def _decks_scene(
        self, t_ns: int, cc: CompositorControls, inputs: FxInputs, fin
    ) -> moderngl.Texture:
        """Deck A's scene through chain "A", or that blended with deck B's scene through chain
        "B" by the crossfader and blend mode."""
        a = self.chains.run("A", self._scene, cc.params, inputs, fin)
        b = self._deck_b
        x = min(max(float(cc.crossfader), 0.0), 1.0)
        if b is None or b._frames[1] is None or (x <= 0.0 and cc.blend == "normal"):
            return a
        if b.size != self.size:
            b.resize(*self.size)
        b._composite_frames(t_ns, cc.params.get)
        b_tex = self.chains.run("B", b._scene, cc.params, inputs, fin)
        if self._mix is None or self._mix[0].size != self.size:
            if self._mix is not None:
                self._mix[1].release()
                self._mix[0].release()
            tex = self.ctx.texture(self.size, 4)
            tex.repeat_x = tex.repeat_y = False
            self._mix = (tex, self.ctx.framebuffer(color_attachments=[tex]))
        if self._deck_blend is None:
            self._deck_blend = self.ctx.program(
                vertex_shader=BUILTIN_VERTEX, fragment_shader=_DECK_BLEND
            )
            self._deck_blend_vao = self.ctx.vertex_array(self._deck_blend, [])
        tex, fbo = self._mix
        fbo.use()
        a.use(location=0)
        b_tex.use(location=1)
        prog = self._deck_blend
        prog["deck_a"].value = 0
        prog["deck_b"].value = 1
        prog["x"].value = x
        prog["mode"].value = BLEND_MODES.index(cc.blend) if cc.blend in BLEND_MODES else 0
        self._deck_blend_vao.render(moderngl.TRIANGLES, vertices=3)
        self._pass_done()
        return tex

    def _release_decks(self) -> None:
        if self._deck_b is not None:
            self._deck_b.release()
            self._deck_b = None
        if self._mix is not None:
            self._mix[1].release()
            self._mix[0].release()
            self._mix = None
        if self._deck_blend is not None:
            self._deck_blend_vao.release()
            self._deck_blend.release()
            self._deck_blend = None

    # -- HUD -----------------------------------------------------------------------------
    @staticmethod
    def hud_scale(out_height: int) -> int:
        """Integer font scale: 2 at 720p, 3 at 1080p."""
        return max(1, round(out_height / 360))

    @classmethod
    def hud_origin(cls, out_height: int) -> tuple[int, int]:
        """Top-left of the HUD box in pixels from the output's top-left."""
        m = 4 * cls.hud_scale(out_height)
        return (m, m)

    def hud_image(self, lines: list[str]) -> np.ndarray:
        """The HUD coverage [h, w] uint8 (font pixels) for `lines`: the reference for tests."""
        return self._hud.render(lines)[0].copy()

    def _update_hud(self, lines: list[str], graph=None) -> None:
        img, changed = self._hud.render(lines)
        if graph is not None:
            from vj.render.hud import stack

            img, changed = stack(img, graph), True
        elif self._hud_graph:
            changed = True  # the texture still holds last frame's graph
        self._hud_graph = graph is not None
        if not changed:
            return
        h, w = img.shape
        if self._hud_tex.size != (w, h):
            self._hud_tex.release()
            self._hud_tex = self.ctx.texture((w, h), 1, alignment=1)
            self._hud_tex.filter = (moderngl.NEAREST, moderngl.NEAREST)
        self._hud_tex.write(img)

    def release(self) -> None:
        for hp in self._programs():
            hp.release()
        self.chains.release()
        self.effects_lib.release()
        for tex in self._frames:
            if tex is not None:
                tex.release()
        for fbo in self._fbos.values():
            fbo.release()
        self._blend_vao.release()
        self._blend.release()
        self._scene_fbo.release()
        self._scene.release()
        self._hud_tex.release()
        if self._uploader is not None:
            self._uploader.release()
        self._release_decks()
