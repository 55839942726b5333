"""Composite time of the stage at 1080p and 4K: two decks, each upscaled and run through a
three-effect chain, crossfaded, then a master chain; against one full-screen copy pass.

Per frame: deck A and deck B (generator frames at --src², Lanczos-3 to the output size, fit
"fill"), each through its chain (default: feedback > rgbsplit > vignette), a crossfade pass,
the master chain (default: grade), present. GPU time from GL timer queries per pass, wall
time around a glFinish; "copy" is one trivial full-screen pass at the same size, measured in
the same run, so the ratio survives a noisy shared machine.

    python tools/bench_stage.py [--sizes 1920x1080 3840x2160] [--frames 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import moderngl
import numpy as np

_MIX = """#version 330 core
uniform sampler2D a;
uniform sampler2D b;
uniform float w;
in vec2 uv;
out vec4 frag;
void main() { frag = vec4(mix(texture(a, uv).rgb, texture(b, uv).rgb, w), 1.0); }
"""
_COPY = """#version 330 core
uniform sampler2D a;
in vec2 uv;
out vec4 frag;
void main() { frag = vec4(texture(a, uv).rgb, 1.0); }
"""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", nargs="+", default=["1920x1080", "3840x2160"])
    ap.add_argument("--frames", type=int, default=3)
    ap.add_argument("--src", type=int, default=512, help="generator frame size (square)")
    ap.add_argument("--chain", default="feedback,rgbsplit,vignette")
    ap.add_argument("--master", default="grade")
    ap.add_argument("--upscale", default="lanczos", choices=("bilinear", "bicubic", "lanczos"))
    args = ap.parse_args(argv)
    from vj.render.effects import ChainSet, EffectLibrary, FxInputs
    from vj.render.offscreen import create_headless_context, gil_free_finish, is_software_renderer
    from vj.render.shaders import BUILTIN_VERTEX
    from vj.render.upscale import Scaler

    ctx = create_headless_context()
    print(f"renderer: {ctx.info['GL_RENDERER']}")
    chain = tuple(args.chain.split(","))
    master = tuple(x for x in args.master.split(",") if x)
    rng = np.random.default_rng(0)
    srcs = []
    for _ in range(2):
        t = ctx.texture(
            (args.src, args.src),
            4,
            rng.integers(0, 256, (args.src, args.src, 4), np.uint8).tobytes(),
        )
        t.filter = (moderngl.LINEAR, moderngl.LINEAR)
        srcs.append(t)
    mix = ctx.program(vertex_shader=BUILTIN_VERTEX, fragment_shader=_MIX)
    copy = ctx.program(vertex_shader=BUILTIN_VERTEX, fragment_shader=_COPY)
    mix_vao, copy_vao = ctx.vertex_array(mix, []), ctx.vertex_array(copy, [])
    # as the compositor does on a CPU rasteriser: finish each pass (outside the GIL), which
    # also makes each effect's timer query hold that pass alone
    fin = gil_free_finish() if is_software_renderer(ctx) else None
    lib = EffectLibrary(ctx, finish=fin)
    q = ctx.query(time=True)
    print(
        f"{'output':>10s} {'passes':>6s} {'wall p50 ms':>11s} {'copy gpu':>10s} "
        f"{'copy ms':>8s} {'ratio':>6s}  (decks: {args.src}² {args.upscale} > {' > '.join(chain)}; "
        f"master: {' > '.join(master) or '-'})"
    )
    for size in args.sizes:
        w, h = (int(v) for v in size.split("x"))
        scaler = Scaler(ctx)
        decks = [ctx.texture((w, h), 4) for _ in range(2)]
        deck_fbos = [ctx.framebuffer(color_attachments=[t]) for t in decks]
        mixed = ctx.texture((w, h), 4)
        mixed_fbo = ctx.framebuffer(color_attachments=[mixed])
        out = ctx.renderbuffer((w, h), 4)
        out_fbo = ctx.framebuffer(color_attachments=[out])
        chains = ChainSet(lib, (w, h))
        chains.update({"A": chain, "B": chain, "master": master})
        params = {"fx_amount": 1.0}
        wall, gpu, copy_ms = [], [], []
        for i in range(args.frames + 1):  # frame 0 compiles shaders (llvmpipe JITs): not timed
            inp = FxInputs(time=i / 60, beat=i / 30, beat_phase=(i / 30) % 1, onset_env=0.5)
            ctx.finish()
            t0 = time.perf_counter()
            if True:  # (chain passes time themselves with GL queries: none around them)
                outs = []
                for k in range(2):
                    scaler.draw(srcs[k], deck_fbos[k], "fill", args.upscale, True, after_pass=fin)
                    outs.append(chains.run("AB"[k], decks[k], params, inp, fin))
                mixed_fbo.use()
                outs[0].use(location=0)
                outs[1].use(location=1)
                mix["a"].value, mix["b"].value, mix["w"].value = 0, 1, 0.5
                mix_vao.render(moderngl.TRIANGLES, vertices=3)
                master_tex = chains.run("master", mixed, params, inp, fin)
                out_fbo.use()
                master_tex.use(location=0)
                copy["a"].value = 0
                copy_vao.render(moderngl.TRIANGLES, vertices=3)
            ctx.finish()
            t1 = time.perf_counter()
            with q:
                out_fbo.use()
                mixed.use(location=0)
                copy_vao.render(moderngl.TRIANGLES, vertices=3)
            ctx.finish()
            t2 = time.perf_counter()
            lib.end_frame()
            if i == 0:
                continue
            wall.append((t1 - t0) * 1e3)
            copy_ms.append((t2 - t1) * 1e3)
            gpu.append(q.elapsed / 1e6)  # GPU time of the copy pass
        n_pass = 2 * ((1 if args.upscale == "bilinear" else 2) + len(chain)) + 1 + len(master) + 1
        p50, c50 = statistics.median(wall), statistics.median(copy_ms)
        fx = "  ".join(f"{k} {v:.1f}" for k, v in sorted(lib.last_ms.items()))
        print(
            f"{size:>10s} {n_pass:6d} {p50:11.1f} {statistics.median(gpu):10.2f} {c50:8.2f} "
            f"{p50 / c50:6.1f}   effect passes (GPU ms, last frame): {fx}"
        )
        chains.release()
        scaler.release()
        for o in (*deck_fbos, *decks, mixed_fbo, mixed, out_fbo, out):
            o.release()
    return 0


if __name__ == "__main__":
    sys.exit(main())
