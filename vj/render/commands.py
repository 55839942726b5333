"""`vj shaders`: compile every shader in a shader folder headlessly and report file:line errors."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "shaders",
        help="check the GLSL shaders compile (headless) and list the effects",
        description="Compile composite, present, HUD and every effect shader on a headless EGL "
        "context; errors name file:line. Exit 1 if any shader fails.",
    )
    p.add_argument("--dir", type=Path, default=None, help="shader folder (default: shaders/)")
    p.add_argument(
        "--params", action="store_true", help="also list each effect's declared parameters"
    )
    p.set_defaults(func=run_shaders)


def check_shaders(ctx, shader_dir: Path) -> list[tuple[str, str | None]]:
    """(file, error or None) for every shader the compositor would load from `shader_dir`."""
    from vj.render.effects import EffectError, parse_effect
    from vj.render.shaders import BUILTIN_PASSTHROUGH, HotProgram, list_effects

    vert = shader_dir / "fullscreen.vert"
    comp, scale = shader_dir / "composite.frag", shader_dir / "scale.frag"
    jobs: list[tuple[Path, dict[str, str]]] = [
        (comp, {}),
        (comp, {"BICUBIC": "1"}),
        (comp, {"LANCZOS": "1", "OUTSIDE_BLACK": "1"}),
        (shader_dir / "present.frag", {}),
        (shader_dir / "hud.frag", {}),
    ]
    if scale.is_file():  # the output scaler: one pass, and both separable passes
        jobs += [(scale, {"OUTSIDE_MIRROR": "1"})]
        jobs += [
            (scale, {f: "1", p: "1"}) for f in ("LANCZOS", "BICUBIC") for p in ("PASS_X", "PASS_Y")
        ]
    jobs += [(shader_dir / "effects" / f"{e}.frag", {}) for e in list_effects(shader_dir)]
    out = []
    for path, defines in jobs:
        hp = HotProgram(ctx, path, BUILTIN_PASSTHROUGH, vert, defines)
        label = str(path) + (f" ({', '.join(d.lower() for d in defines)})" if defines else "")
        err = hp.error_detail
        if err is None and path.parent.name == "effects":
            try:
                spec = parse_effect(path)
                missing = [spec.local(p) for p in spec.params if spec.local(p) not in hp.program]
                if missing:  # declared but never read: the control would do nothing
                    err = f"{path}: @param {', '.join(missing)} declared but not used by the shader"
            except EffectError as exc:
                err = str(exc)
        out.append((label, err))
        hp.release()
    return out


def run_shaders(args: argparse.Namespace) -> int:
    from vj.render.offscreen import HeadlessGLError, create_headless_context
    from vj.render.shaders import default_shader_dir, list_effects

    shader_dir = args.dir if args.dir is not None else default_shader_dir()
    if not shader_dir.is_dir():
        print(f"vj shaders: {shader_dir} is not a folder", file=sys.stderr)
        return 2
    try:
        ctx = create_headless_context()
    except HeadlessGLError as exc:
        print(f"vj shaders: {exc}", file=sys.stderr)
        return 2
    failed = 0
    for label, err in check_shaders(ctx, shader_dir):
        if err is None:
            print(f"ok     {label}")
        else:
            failed += 1
            print(f"FAILED {label}\n{err}", file=sys.stderr)
    print(f"effects: {', '.join(list_effects(shader_dir)) or 'none'}")
    if getattr(args, "params", False):
        from vj.render.effects import effect_specs

        for spec in effect_specs(shader_dir)[0]:
            print(f"{spec.name}: {spec.doc}")
            for p in spec.params:
                kind = "" if p.kind == "float" else f" {p.kind}"
                print(f"  {p.name} = {p.default:g} [{p.min:g}..{p.max:g}]{kind}  {p.doc}")
    ctx.release()
    return 1 if failed else 0
