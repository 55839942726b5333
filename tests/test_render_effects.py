"""Effects library on EGL: each effect vs its NumPy twin, chains, feedback, reload, slow shaders."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

from vj.params import ParamRegistry, default_registry
from vj.render.effect_refs import REFERENCES
from vj.render.effects import (
    ChainSet,
    EffectChain,
    EffectError,
    EffectLibrary,
    FxInputs,
    effect_specs,
    parse_effect,
    register_effect_params,
)
from vj.render.offscreen import create_headless_context
from vj.render.passtime import SlowShaderGuard
from vj.render.shaders import default_shader_dir, list_effects

H, W = 32, 48  # non-square, so aspect handling is exercised
INPUTS = FxInputs(time=1.3, beat=2.05, beat_phase=0.05, onset_env=0.6, rms=0.3)
# non-default values, so each test also proves the parameters reach the shader
OVERRIDES = {
    "feedback": {"decay": 0.9, "zoom": 1.05, "rotate": 0.05},
    "kaleido": {"segments": 5, "spin": 0.7},
    "mirror": {"axis": 2, "flip": 1},
    "rgbsplit": {"offset": 0.03, "angle": 1.0},
    "grade": {"lift": 0.1, "gamma": 1.6, "gain": 0.8, "warmth": 0.5},
    "palette": {"hue": 0.3, "spread": 2.0, "amount": 0.7},
    "strobe": {"rate": 2.0, "duty": 0.5, "invert": 1},
    "zoomblur": {"strength": 0.3, "center_x": 0.3},
    "pixelate": {"size": 5},
    "edgeglow": {"strength": 2.5, "threshold": 0.05, "dim": 0.5},
    "vignette": {"radius": 0.6, "softness": 0.3},
    "grain": {"amount": 0.2, "size": 2, "mono": 0},
    "displace": {"amount": 0.1, "kick": 1.0},
    "none": {},
}


@pytest.fixture(scope="module")
def ctx():
    c = create_headless_context()
    yield c
    c.release()


def test_image() -> np.ndarray:
    """[H, W, 3] uint8 with smooth gradients and one hard-edged block (GL row order)."""
    yy, xx = np.mgrid[0:H, 0:W]
    img = np.stack(
        [
            0.5 + 0.5 * np.sin(xx / 5.0),
            0.5 + 0.5 * np.cos(yy / 4.0 + xx / 9.0),
            (xx * yy % 17) / 16,
        ],
        -1,
    )
    img[8:20, 10:22] = [0.9, 0.2, 0.1]
    return np.round(img * 255).astype(np.uint8)


test_image.__test__ = False  # a helper, not a test


def upload(ctx, u8):
    tex = ctx.texture(
        (u8.shape[1], u8.shape[0]), 3, np.ascontiguousarray(u8).tobytes(), alignment=1
    )
    tex.repeat_x = tex.repeat_y = False
    return tex


def read(tex) -> np.ndarray:
    w, h = tex.size
    return np.frombuffer(tex.read(), np.uint8).reshape(h, w, 4)[..., :3].astype(int)


def q(x) -> np.ndarray:
    """What an RGBA8 target stores for float x."""
    return np.round(np.clip(x, 0, 1) * 255).astype(int)


def local_params(lib, name, **over):
    spec = lib.get(name).spec
    loc = {spec.local(p): p.default for p in spec.params}
    loc.update(fx_amount=1.0, fx_pulse=0.0, **over)
    reg = {"fx_amount": 1.0, "fx_pulse": 0.0}
    reg.update({f"{name}.{k}": v for k, v in loc.items() if f"{name}.{k}" in spec_names(spec)})
    return loc, reg


def spec_names(spec):
    return {p.name for p in spec.params}


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_effect_matches_numpy_reference(ctx, name):
    """Each effect within 1/255 of its NumPy twin (after the RGBA8 store), non-default params."""
    lib = EffectLibrary(ctx)
    assert lib.error(name) is None or lib.get(name) and lib.error(name) is None
    u8 = test_image()
    src = upload(ctx, u8)
    loc, reg = local_params(lib, name, **OVERRIDES[name])
    chain = EffectChain(lib, [name], (W, H))
    ref = REFERENCES[name]
    if name == "feedback":  # two frames: trails from black, then trails from frame 1
        first = read(chain.run(src, reg, INPUTS))
        want = q(
            ref(u8 / 255, loc, INPUTS, q(ref(u8 / 255, loc, INPUTS, np.zeros((H, W, 3)))) / 255)
        )
        assert np.abs(first - q(ref(u8 / 255, loc, INPUTS, np.zeros((H, W, 3))))).max() <= 1
    else:
        want = q(ref(u8 / 255, loc, INPUTS))
    got = read(chain.run(src, reg, INPUTS))
    assert np.abs(got - want).max() <= 1, name
    if name != "none":
        assert np.abs(got - u8).max() > 8, f"{name} did not change the image"
    chain.release()
    lib.release()
    src.release()


def test_library_has_twelve_declared_effects_each_with_a_twin():
    specs, errors = effect_specs()
    assert errors == []
    declared = [s for s in specs if s.params]
    assert len(declared) >= 12
    for s in declared:
        assert s.doc, s.name
        assert s.name in REFERENCES or s.name == "default", s.name
        for p in s.params:
            assert p.name.startswith(s.name + ".") and p.min <= p.default <= p.max


def test_effect_params_are_in_the_default_registry_and_drive_the_shader(ctx):
    reg = default_registry()
    for n in ("kaleido.segments", "pixelate.size", "strobe.rate", "feedback.decay", "grade.gamma"):
        assert n in reg
    assert reg.spec("pixelate.size").kind == "int"
    lib = EffectLibrary(ctx)
    src = upload(ctx, test_image())
    chain = EffectChain(lib, ["pixelate"], (W, H))
    a = read(chain.run(src, reg.snapshot(), INPUTS))
    reg.set_normalized("pixelate.size", 0.5, "midi")  # what a MIDI CC does
    b = read(chain.run(src, reg.snapshot(), INPUTS))
    assert np.abs(a - b).max() > 8
    chain.release()
    lib.release()


def test_bad_declarations_name_file_and_line(tmp_path):
    p = tmp_path / "x.frag"
    cases = {
        "// @param size 8 1\n": "expected",
        "// @param Size 8 1 64\n": "lower_case",
        "// @param time 0 0 1\n": "reserved",
        "// @param a 5 0 1\n": "outside",
        "// @param a 0 0 1 string\n": "kind",
        "// @param a 0 0 x\n": "numbers",
        "// @param a 0 0 1\n// @param a 0 0 1\n": "twice",
    }
    for text, word in cases.items():
        p.write_text("#version 330 core\n" + text)
        with pytest.raises(EffectError) as e:
            parse_effect(p)
        assert f"{p}:2: @param" in str(e.value) or f"{p}:3: @param" in str(e.value)
        assert word in str(e.value)
    reg = ParamRegistry()
    shaders = tmp_path / "sh"
    (shaders / "effects").mkdir(parents=True)
    (shaders / "effects" / "bad.frag").write_text("// @param a 5 0 1\n")
    (shaders / "effects" / "good.frag").write_text("// @param b 0.5 0 1 | doc\n")
    errors = register_effect_params(reg, shaders)
    assert "good.b" in reg and "bad.a" not in reg and "bad.frag:1:" in errors[0]


def test_unknown_effect_says_what_exists(ctx):
    lib = EffectLibrary(ctx)
    with pytest.raises(EffectError, match="did you mean 'kaleido'"):
        EffectChain(lib, ["kaleidp"], (W, H))


def test_chain_of_three_equals_composed_references(ctx):
    lib = EffectLibrary(ctx)
    u8 = test_image()
    src = upload(ctx, u8)
    names = ["grade", "rgbsplit", "vignette"]
    chain = EffectChain(lib, names, (W, H))
    reg, img = {}, u8 / 255
    for n in names:
        loc, r = local_params(lib, n, **OVERRIDES[n])
        reg.update(r)
        img = q(REFERENCES[n](img, loc, INPUTS)) / 255  # each pass stores RGBA8
    got = read(chain.run(src, reg, INPUTS))
    assert np.abs(got - q(img)).max() <= 1
    chain.release()
    lib.release()


def test_feedback_slots_keep_their_own_buffers(ctx):
    """Trails of a feedback slot do not depend on later slots or on another chain's feedback."""
    lib = EffectLibrary(ctx)
    u8 = test_image()
    black = upload(ctx, np.zeros_like(u8))
    src = upload(ctx, u8)
    reg = {"feedback.decay": 0.9}
    alone = EffectChain(lib, ["feedback"], (W, H))
    then_grade = EffectChain(lib, ["feedback", "grade"], (W, H))
    chains = ChainSet(lib, (W, H))
    chains.update({"A": ["feedback"], "master": ["feedback", "grade"]})
    outs = []
    for frame in (src, black, black):  # a bright frame, then its trails over black
        a = read(alone.run(frame, reg, INPUTS))
        b = read(then_grade.run(frame, {**reg, "grade.gain": 0.5}, INPUTS))
        c = read(chains.run("A", frame, reg, INPUTS))
        chains.run("master", black, reg, INPUTS)  # master's trails stay black
        outs.append((a, b, c))
    a, b, c = outs[-1]
    assert a.max() > 50  # trails survive two black frames
    assert np.array_equal(a, c)  # the other chain's feedback did not disturb it
    assert np.abs(b - q(a / 255 * 0.5)).max() <= 1  # grade after feedback saw the same trails
    m = read(chains.run("master", black, reg, INPUTS))
    assert m.max() == 0
    for ch in (alone, then_grade):
        ch.release()
    chains.release()
    lib.release()


GOOD = """#version 330 core
// @param gain 1 0 2
uniform sampler2D scene;
uniform float gain;
in vec2 uv;
out vec4 frag;
void main() { frag = vec4(texture(scene, uv).rgb * gain * 0.5, 1.0); }
"""
BROKEN = GOOD.replace("* 0.5, 1.0);", "* 0.5, 1.0)\n    frag = frag * nope;")
FIXED = GOOD.replace("0.5", "0.25")
SLOW = GOOD.replace(
    "void main() {",
    "void main() {\n    vec3 a = vec3(0.0);\n    for (int i = 0; i < 3000; i++) "
    "a += texture(scene, uv + float(i) * 1e-5).rgb;\n",
).replace("* gain * 0.5, 1.0);", "* gain * 0.5 + a * 1e-9, 1.0);")


@pytest.fixture()
def shader_dir(tmp_path):
    d = tmp_path / "shaders"
    (d / "effects").mkdir(parents=True)
    shutil.copy(default_shader_dir() / "fullscreen.vert", d / "fullscreen.vert")
    return d


def write(path, text):
    """Write and move the mtime forward (two writes within one tick must still differ)."""
    old = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text)
    t = max(old + 10_000_000, path.stat().st_mtime_ns)
    os.utime(path, ns=(t, t))


def test_hot_reload_good_broken_fixed(ctx, shader_dir):
    fx = shader_dir / "effects" / "x.frag"
    write(fx, GOOD)
    lib = EffectLibrary(ctx, shader_dir)
    src = upload(ctx, np.full((H, W, 3), 200, np.uint8))
    chain = EffectChain(lib, ["x"], (W, H))
    assert read(chain.run(src, {}, INPUTS)).max() == 100  # gain default 1 × 0.5
    assert lib.poll() == []
    write(fx, BROKEN)
    events = lib.poll()
    assert len(events) == 1 and "\n" not in events[0]  # one concise line, not the driver log
    assert events[0].startswith(f"{fx}:8:")
    assert read(chain.run(src, {}, INPUTS)).max() == 100  # last good stays on screen
    assert lib.error("x") == events[0]
    write(fx, FIXED.replace("// @param gain 1 0 2", "// @param gain 1 0 2\n// @param extra 0 0 1"))
    reg = ParamRegistry()
    assert lib.poll(reg) == [f"{fx}: reloaded"]
    assert "x.extra" in reg  # a reload's new parameter reaches the registry (MIDI, OSC)
    assert lib.error("x") is None
    assert read(chain.run(src, {"x.gain": 2.0}, INPUTS)).max() == 100  # 200 × 2 × 0.25
    chain.release()
    lib.release()


def test_slow_reload_falls_back_to_last_good(ctx, shader_dir):
    fx = shader_dir / "effects" / "x.frag"
    write(fx, GOOD)
    guard = SlowShaderGuard(probe=3, factor=4.0, min_extra_ms=1.0)
    lib = EffectLibrary(ctx, shader_dir, guard=guard)
    src = upload(ctx, np.full((H, W, 3), 200, np.uint8))
    chain = EffectChain(lib, ["x"], (W, H))

    def frames(n):
        out = []
        for _ in range(n):
            chain.run(src, {}, INPUTS)
            out += lib.end_frame()
        return out

    assert frames(8) == [] and guard.baseline("x") is not None
    write(fx, SLOW)
    assert lib.poll() == [f"{fx}: reloaded"]
    verdicts = frames(10)
    assert len(verdicts) == 1 and "too slow" in verdicts[0] and "kept the last good" in verdicts[0]
    assert str(fx) in verdicts[0]
    assert read(chain.run(src, {}, INPUTS)).max() == 100  # the good version is back
    assert frames(8) == []  # and stays: no flapping


def test_hopelessly_slow_first_build_is_bypassed(ctx, shader_dir):
    fx = shader_dir / "effects" / "x.frag"
    write(fx, SLOW)
    lib = EffectLibrary(ctx, shader_dir, guard=SlowShaderGuard(probe=2, max_ms=0.01))
    src = upload(ctx, np.full((H, W, 3), 200, np.uint8))
    chain = EffectChain(lib, ["x"], (W, H))
    msgs = []
    for _ in range(6):
        chain.run(src, {}, INPUTS)
        msgs += lib.end_frame()
    assert len(msgs) == 1 and "bypassed" in msgs[0]
    assert chain.run(src, {}, INPUTS) is src  # skipped: the input goes through
    write(fx, GOOD)
    lib.poll()
    assert lib.error("x") is None and chain.run(src, {}, INPUTS) is not src


def test_slow_first_build_is_reported_on_a_cpu_rasteriser(ctx, shader_dir):
    fx = shader_dir / "effects" / "x.frag"
    write(fx, SLOW)
    guard = SlowShaderGuard(probe=2, max_ms=0.01, bypass=False)
    lib = EffectLibrary(ctx, shader_dir, guard=guard)
    src = upload(ctx, np.full((H, W, 3), 200, np.uint8))
    chain = EffectChain(lib, ["x"], (W, H))
    msgs = []
    for _ in range(6):
        chain.run(src, {}, INPUTS)
        msgs += lib.end_frame()
    assert len(msgs) == 1 and "very slow" in msgs[0] and str(fx) in msgs[0]
    assert chain.run(src, {}, INPUTS) is not src  # still drawn
    assert EffectLibrary(ctx).guard.bypass is False  # llvmpipe: report, do not bypass


def test_pass_timer_uses_gl_timer_queries_here(ctx):
    lib = EffectLibrary(ctx)
    assert lib.timer.method == "GL timer query"
    src = upload(ctx, test_image())
    chain = EffectChain(lib, ["zoomblur", "grain"], (W, H))
    chain.run(src, {}, INPUTS)
    got = {k[0]: ms for k, ms in lib.timer.flush()}
    assert set(got) == {"zoomblur", "grain"} and all(v > 0 for v in got.values())


def test_shipped_effects_are_all_listed():
    names = list_effects(default_shader_dir())
    assert {"feedback", "kaleido", "mirror", "rgbsplit", "grade", "palette", "strobe"} <= set(names)
    assert {"zoomblur", "pixelate", "edgeglow", "vignette", "grain", "displace"} <= set(names)


def test_every_effect_runs_as_the_compositor_effect(ctx):
    """What `vj render --effect NAME` does for each shipped effect: no error, a changed frame."""
    from vj.render.compositor import Compositor
    from vj.render.offscreen import OffscreenTarget

    frame = np.zeros((18, 18, 4), np.uint8)
    frame[..., :3] = test_image()[:18, :18]
    tgt = OffscreenTarget(ctx, 32, 18)
    for name in list_effects(default_shader_dir()):
        comp = Compositor(ctx, 32, 18, effect=name, filter="bilinear")
        comp.submit_frame(frame, 0, 0)
        comp.draw(tgt.fbo, 0, {"hud": 0.0}, None, None)
        assert comp.last_error is None, (name, comp.last_error)
        assert comp.effect == name and tgt.read_rgb().max() > 0
        comp.release()
    tgt.release()
