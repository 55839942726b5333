"""Compositor pixels on a headless EGL context: crossfade, cover, colour, master, HUD, shaders."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

from vj.audio.features import AudioFeatures
from vj.render.compositor import Compositor, cover_scale, crossfade_weight, grade_reference
from vj.render.offscreen import OffscreenTarget, create_headless_context
from vj.render.shaders import default_shader_dir, format_gl_error

MS = 1_000_000
OFF = {"fx_amount": 0.0, "fx_pulse": 0.0, "hud": 0.0}  # effect and HUD out of the way


@pytest.fixture(scope="module")
def ctx():
    c = create_headless_context()
    yield c
    c.release()


def rand_frame(h, w, seed, alpha=255):
    f = np.random.default_rng(seed).integers(0, 256, (h, w, 4), dtype=np.uint8)
    f[..., 3] = alpha
    return f


def render(ctx, comp, t_ns, params, size=None, features=None, hud=None):
    w, h = size or comp.size
    tgt = OffscreenTarget(ctx, w, h)
    comp.draw(tgt.fbo, t_ns, params, features, hud)
    out = tgt.read_rgb().copy()
    tgt.release()
    return out


@pytest.mark.parametrize("filt", ["bilinear", "bicubic", "lanczos"])
def test_known_frame_passes_through_exactly(ctx, filt):
    comp = Compositor(ctx, 40, 30, effect="none", filter=filt)
    assert comp.last_error is None
    a = rand_frame(30, 40, 1)
    comp.submit_frame(a, 0, 0)
    out = render(ctx, comp, 0, {})
    np.testing.assert_array_equal(out, a[..., :3])  # top row first, exact


@pytest.mark.parametrize("filt", ["bilinear", "bicubic", "lanczos"])
def test_cover_crops_centre_of_wider_source(ctx, filt):
    assert cover_scale(8, 4, 4, 4) == (0.5, 1.0)
    comp = Compositor(ctx, 4, 4, effect="none", filter=filt)
    a = rand_frame(4, 8, 2)
    comp.submit_frame(a, 0, 0)
    out = render(ctx, comp, 0, {})
    np.testing.assert_array_equal(out, a[:, 2:6, :3])


def test_upscale_of_flat_colour_is_flat_and_zoom_magnifies(ctx):
    comp = Compositor(ctx, 64, 64, effect="none")
    a = np.zeros((16, 16, 4), np.uint8)
    a[...] = (40, 120, 200, 255)
    comp.submit_frame(a, 0, 0)
    out = render(ctx, comp, 0, {})
    assert np.abs(out.astype(int) - (40, 120, 200)).max() <= 1
    # left half black, right half white: zoom 2 keeps the edge at the centre, widens the ramp less
    b = np.zeros((16, 16, 4), np.uint8)
    b[:, 8:] = 255
    comp.submit_frame(b, 1, 0)
    out1 = render(ctx, comp, 0, {"crossfade": 0.0})
    out2 = render(ctx, comp, 0, {"crossfade": 0.0, "zoom": 2.0})
    assert out1[32, 0, 0] == 0 and out1[32, 63, 0] == 255
    assert out2[32, 0, 0] == 0 and out2[32, 63, 0] == 255
    # zoomed: the transition covers twice as many output pixels
    ramp1 = np.count_nonzero((out1[32, :, 0] > 5) & (out1[32, :, 0] < 250))
    ramp2 = np.count_nonzero((out2[32, :, 0] > 5) & (out2[32, :, 0] < 250))
    assert ramp2 > ramp1


def test_crossfade_rises_over_measured_interval(ctx):
    assert crossfade_weight(150, 100, 100, 1.0) == 0.5
    assert crossfade_weight(150, 100, 100, 0.0) == 1.0
    comp = Compositor(ctx, 32, 24, effect="none")
    a, b, c = rand_frame(24, 32, 3), rand_frame(24, 32, 4), rand_frame(24, 32, 5)
    comp.submit_frame(a, 0, 0)
    comp.submit_frame(b, 1, 100 * MS)
    assert comp.interval_ns == 100 * MS
    # just arrived: still the previous frame
    np.testing.assert_array_equal(render(ctx, comp, 100 * MS, OFF), a[..., :3])
    # half the interval later: the average (within rounding)
    half = render(ctx, comp, 150 * MS, OFF).astype(np.float64)
    avg = (a[..., :3].astype(np.float64) + b[..., :3]) / 2
    assert np.abs(half - avg).max() <= 1.0
    # a full interval later: the current frame
    np.testing.assert_array_equal(render(ctx, comp, 200 * MS, OFF), b[..., :3])
    # crossfade 0 = hard cut at arrival
    comp.submit_frame(c, 2, 200 * MS)
    np.testing.assert_array_equal(
        render(ctx, comp, 200 * MS, {**OFF, "crossfade": 0.0}), c[..., :3]
    )
    # crossfade 0.5: the fade completes in half the interval
    q = render(ctx, comp, 225 * MS, {**OFF, "crossfade": 0.5}).astype(np.float64)
    assert np.abs(q - (b[..., :3].astype(np.float64) + c[..., :3]) / 2).max() <= 1.0


def test_early_frame_continues_fade_from_what_is_shown(ctx):
    comp = Compositor(ctx, 32, 24, effect="none")
    a, b, c = rand_frame(24, 32, 12), rand_frame(24, 32, 13), rand_frame(24, 32, 14)
    comp.submit_frame(a, 0, 0)
    comp.submit_frame(b, 1, 100 * MS)
    shown = render(ctx, comp, 150 * MS, OFF)  # half way a → b
    comp.submit_frame(c, 2, 150 * MS)  # early: the fade was not finished
    again = render(ctx, comp, 150 * MS, OFF).astype(int)
    assert np.abs(again - shown).max() <= 1  # no pop (one rounding step from the snapshot)
    assert comp.current_frame_id == 2
    late = render(ctx, comp, 400 * MS, OFF)
    np.testing.assert_array_equal(late, c[..., :3])


def test_frames_of_different_sizes_blend(ctx):
    comp = Compositor(ctx, 48, 48, effect="none")
    a = np.zeros((128, 128, 4), np.uint8)
    a[..., 0] = 255
    b = np.zeros((64, 64, 4), np.uint8)
    b[..., 2] = 255
    comp.submit_frame(a, 0, 0)
    comp.submit_frame(b, 1, 10 * MS)
    out = render(ctx, comp, 15 * MS, OFF).astype(int)
    assert np.abs(out - (128, 0, 128)).max() <= 1


def test_colour_controls_match_reference(ctx):
    comp = Compositor(ctx, 40, 30, effect="none")
    a = rand_frame(30, 40, 6)
    comp.submit_frame(a, 0, 0)
    for b, c, s in [(0.1, 1.3, 0.5), (-0.2, 0.7, 1.6), (0.0, 1.0, 0.0)]:
        out = render(ctx, comp, 0, {"brightness": b, "contrast": c, "saturation": s})
        ref = grade_reference(a[..., :3] / 255.0, b, c, s) * 255
        assert np.abs(out - ref).max() <= 1.0, (b, c, s)


def test_master_zero_is_black_and_half_is_half(ctx):
    comp = Compositor(ctx, 40, 30)  # default effect on, with an onset pulse
    a = rand_frame(30, 40, 7)
    comp.submit_frame(a, 0, 0)
    feats = AudioFeatures(onset_count=1, rms=0.8, bands=np.full(8, 0.9, np.float32))
    out = render(ctx, comp, 0, _pulsed({"master": 0.0, "fx_amount": 1.0, "hud": 0.0}, 0, 0, feats))
    assert out.max() == 0
    comp2 = Compositor(ctx, 40, 30, effect="none")
    comp2.submit_frame(a, 0, 0)
    half = render(ctx, comp2, 0, {"master": 0.5})
    assert np.abs(half - a[..., :3] * 0.5).max() <= 1.0


def test_hud_pixels_where_expected(ctx):
    comp = Compositor(ctx, 320, 180, effect="none")
    comp.submit_frame(rand_frame(180, 320, 8), 0, 0)
    lines = ["60.0 fps", "gen 18.5 fps", "lat 42 ms"]
    out = render(ctx, comp, 0, {"master": 0.0, "hud": 1.0}, hud=lines)
    s = comp.hud_scale(180)
    ox, oy = comp.hud_origin(180)
    cov = comp.hud_image(lines)
    expect = np.zeros((180, 320), np.uint8)
    big = np.repeat(np.repeat(cov, s, 0), s, 1)
    expect[oy : oy + big.shape[0], ox : ox + big.shape[1]] = big
    assert cov.max() == 255
    for ch in range(3):
        np.testing.assert_array_equal(out[..., ch], expect)
    # hud off: black again
    assert render(ctx, comp, 0, {"master": 0.0, "hud": 0.0}, hud=lines).max() == 0


def _pulsed(params, t_ns, t_onset_ns, feats):
    """The Show's compositor controls for an onset at t_onset_ns (its envelope, not ours)."""
    import math

    from vj.show.compositing import PULSE_DECAY_S
    from vj.show.frame import CompositorControls

    return CompositorControls(
        params=params,
        pulse=math.exp(-(t_ns - t_onset_ns) / (PULSE_DECAY_S * 1e9)),
        bands=tuple(float(b) for b in feats.bands),
        beat_phase=feats.beat_phase,
        rms=feats.rms,
        hud=params.get("hud", 1.0) >= 0.5,
    )


def test_effect_identity_at_zero_and_reacts_to_onsets(ctx):
    a = rand_frame(30, 40, 9)
    comp = Compositor(ctx, 40, 30, effect="default")
    comp.submit_frame(a, 0, 0)
    np.testing.assert_array_equal(render(ctx, comp, 0, OFF), a[..., :3])
    feats = AudioFeatures(onset_count=3, bands=np.full(8, 0.5, np.float32), beat_phase=0.1)
    p = {"fx_amount": 0.0, "fx_pulse": 1.0, "hud": 0.0}
    hit = render(ctx, comp, 10 * MS, _pulsed(p, 10 * MS, 0, feats))
    assert np.abs(hit.astype(int) - a[..., :3]).mean() > 5  # the onset flashes the effect
    # long after the onset the pulse has decayed away
    later = render(ctx, comp, 3000 * MS, _pulsed(p, 3000 * MS, 0, feats))
    assert np.abs(later.astype(int) - a[..., :3]).max() <= 1


def run_sequence(ctx, effect):
    comp = Compositor(ctx, 64, 36, effect=effect)
    out = []
    for k in range(6):
        comp.submit_frame(rand_frame(32, 32, 100 + k), k, k * 50 * MS)
        for j in range(3):
            t = k * 50 * MS + j * 16 * MS
            f = AudioFeatures(
                onset_count=k // 2,
                beat_phase=(t / 5e8) % 1.0,
                bands=np.linspace(0, 1, 8, dtype=np.float32),
                rms=0.5,
            )
            cc = _pulsed({"fx_amount": 0.6}, t, (k // 2) * 100 * MS, f)
            out.append(render(ctx, comp, t, cc, hud=[f"frame {k}"]))
    comp.release()
    return out


@pytest.mark.parametrize("effect", ["default", "kaleido"])
def test_deterministic(ctx, effect):
    a, b = run_sequence(ctx, effect), run_sequence(ctx, effect)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    assert any(np.any(x != a[0]) for x in a[1:])


@pytest.fixture()
def shader_copy(tmp_path):
    d = tmp_path / "shaders"
    shutil.copytree(default_shader_dir(), d)
    return d


def bump(path):
    # filesystem timestamps can be coarser than a quick test edit; make the change visible
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10_000_000))


BROKEN = (
    "#version 330 core\nuniform sampler2D scene;\nin vec2 uv;\nout vec4 frag;\n"
    "void main() {\n  frag = vec4(nope, 1.0);\n}\n"
)
RED = (
    "#version 330 core\nin vec2 uv;\nout vec4 frag;\n"
    "void main() { frag = vec4(1.0, 0.0, 0.0, 1.0); }\n"
)


def test_broken_shader_reports_file_line_and_show_goes_on(ctx, shader_copy):
    fx = shader_copy / "effects" / "broken.frag"
    fx.write_text(BROKEN)
    comp = Compositor(ctx, 40, 30, shader_dir=shader_copy, effect="broken")
    assert comp.last_error is not None
    assert f"{fx}:6:" in comp.last_error and "nope" in comp.last_error
    a = rand_frame(30, 40, 10)
    comp.submit_frame(a, 0, 0)
    np.testing.assert_array_equal(render(ctx, comp, 0, {}), a[..., :3])  # built-in passthrough


def test_hot_reload_picks_up_edits_and_keeps_last_good(ctx, shader_copy):
    fx = shader_copy / "effects" / "live.frag"
    fx.write_text((shader_copy / "effects" / "none.frag").read_text())
    comp = Compositor(ctx, 40, 30, shader_dir=shader_copy, effect="live")
    a = rand_frame(30, 40, 11)
    comp.submit_frame(a, 0, 0)
    assert comp.reload_shaders() == []  # nothing changed
    fx.write_text(RED)
    bump(fx)
    assert comp.reload_shaders() == [f"{fx}: reloaded"]
    assert comp.last_error is None
    out = render(ctx, comp, 0, {})
    assert (out == (255, 0, 0)).all()
    fx.write_text(BROKEN)
    bump(fx)
    events = comp.reload_shaders()
    assert len(events) == 1 and events[0].startswith(f"{fx}:6:")
    assert comp.last_error.startswith(f"{fx}:6:")
    assert (render(ctx, comp, 0, {}) == (255, 0, 0)).all()  # last good program kept
    # a broken composite.frag is reported too, and the frame still shows
    comp_frag = shader_copy / "composite.frag"
    comp_frag.write_text(comp_frag.read_text().replace("frag = vec4(clamp", "frag = vec4(clampp"))
    bump(comp_frag)
    events = comp.reload_shaders()
    assert any(e.startswith(f"{comp_frag}:") for e in events)


def test_format_gl_error_nvidia_and_mesa():
    mesa = "GLSL Compiler failed\n\nfragment_shader\n===============\n0:5(1): error: syntax error\n"
    assert format_gl_error(mesa, {"fragment": "a.frag"}) == "a.frag:5: error: syntax error"
    nv = "GLSL Compiler failed\n\nvertex_shader\n=============\n0(12) : error C0000: bad\n"
    assert format_gl_error(nv, {"vertex": "v.vert"}) == "v.vert:12: error C0000: bad"


def test_bad_inputs(ctx):
    with pytest.raises(ValueError, match="unknown effect 'nope'.*default"):
        Compositor(ctx, 16, 16, effect="nope")
    with pytest.raises(ValueError, match="filter"):
        Compositor(ctx, 16, 16, filter="sharpest")
    with pytest.raises(ValueError, match="fit mode"):
        Compositor(ctx, 16, 16, fit="cover")
    comp = Compositor(ctx, 16, 16)
    with pytest.raises(ValueError, match=r"uint8 .*\[h, w, 4\] image, got float64"):
        comp.submit_frame(np.zeros((16, 16, 4), np.float64), 0, 0)  # float16/32 are accepted
    with pytest.raises(ValueError, match="out must be"):
        OffscreenTarget(ctx, 8, 8).read_rgb(np.zeros((8, 8, 4), np.uint8))


def test_no_frame_yet_draws_black_and_read_into_out(ctx):
    comp = Compositor(ctx, 20, 10)
    tgt = OffscreenTarget(ctx, 20, 10)
    comp.draw(tgt.fbo, 0, {"hud": 0.0})
    out = np.full((10, 20, 3), 7, np.uint8)
    assert tgt.read_rgb(out) is out
    assert out.max() == 0


def test_shaders_command_reports_errors(shader_copy, capsys):
    import argparse

    from vj.render.commands import register

    ap = argparse.ArgumentParser()
    register(ap.add_subparsers())
    args = ap.parse_args(["shaders", "--dir", str(shader_copy)])
    assert args.func(args) == 0
    assert "default" in capsys.readouterr().out
    (shader_copy / "effects" / "bad.frag").write_text(BROKEN)
    assert args.func(args) == 1
    assert f"{shader_copy / 'effects' / 'bad.frag'}:6:" in capsys.readouterr().err


def test_cycle_effect(ctx):
    comp = Compositor(ctx, 16, 16, effect="default")
    names = comp.effects()
    assert {"default", "kaleido", "none"} <= set(names)
    seen = [comp.cycle_effect() for _ in names]
    assert sorted(seen) == sorted(names) and seen[-1] == "default"
    assert comp.cycle_effect(-1) == names[names.index("default") - 1]


def test_missing_shader_folder_runs_on_builtins(ctx, tmp_path):
    comp = Compositor(ctx, 40, 30, shader_dir=tmp_path / "nowhere")
    assert "composite.frag" in comp.last_error and "cannot read" in comp.last_error
    a = rand_frame(30, 40, 15)
    comp.submit_frame(a, 0, 0)
    np.testing.assert_array_equal(render(ctx, comp, 0, {"hud": 1.0}, hud=["x"])[20:], a[20:, :, :3])
    assert render(ctx, comp, 0, {"master": 0.0}).max() == 0


@pytest.mark.parametrize("mode", ["fit", "fill", "stretch", "tile"])
def test_fit_modes_in_the_composite_pass(ctx, mode):
    """A square frame on a 16:9 output, each fit mode, vs the NumPy twin (GL row order)."""
    from vj.render.fit import fit_reference

    comp = Compositor(ctx, 49, 27, effect="none", filter="bilinear", fit=mode)
    a = rand_frame(12, 12, 21)
    comp.submit_frame(a, 0, 0)
    out = render(ctx, comp, 0, {}).astype(int)
    want = fit_reference(a[::-1, :, :3] / 255, mode, 49, 27)[::-1]
    assert np.abs(out - np.round(want * 255)).max() <= 1
    if mode == "fit":
        assert out[:, :10].max() == 0 and out[:, -10:].max() == 0


def test_deck_and_master_chains_compose(ctx):
    from vj.render.effect_refs import REFERENCES
    from vj.render.effects import NO_INPUTS

    comp = Compositor(ctx, 24, 16, effect="none", filter="bilinear")
    comp.set_chains({"A": ("grade",), "master": ("vignette", "mirror")})
    assert comp.chains.chains["master"].names == ("vignette", "mirror")
    a = rand_frame(16, 24, 22)
    comp.submit_frame(a, 0, 0)
    params = {"grade.gamma": 1.8, "vignette.radius": 0.5, "mirror.axis": 1.0}
    out = render(ctx, comp, 0, params).astype(int)
    img = a[::-1, :, :3] / 255  # GL rows
    for name in ("grade", "vignette", "mirror"):
        spec = comp.effects_lib.get(name).spec
        loc = {spec.local(p): params.get(p.name, p.default) for p in spec.params}
        img = np.round(np.clip(REFERENCES[name](img, loc, NO_INPUTS), 0, 1) * 255) / 255
    assert np.abs(out - np.round(img[::-1] * 255)).max() <= 1
    with pytest.raises(Exception, match="unknown effect 'nosuch'"):
        comp.set_chains({"master": ("grain",), "B": ("nosuch",)})
    assert comp.chains.chains["master"].names == ("vignette", "mirror")  # nothing changed
