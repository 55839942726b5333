"""Cost of one Show step with routes: a 16-route, two-deck preset, per frame, median — beside
the old `Modulator.step` in the same run (the generator's synthesis forward is excluded).

    python tools/bench_modulation.py [--frames 600] [--threads 1]

Rows: `Modulator.step` (one deck, the pre-Show modulator: the reference); `routes` (the
routing matrix + both decks' DeckModulation tick/apply, i.e. what the routes add); `show step`
(Show.frame for two decks with the routes applied, when vj.show.show builds here; otherwise
two Modulator.steps + routes). Target: show step ≤ 0.5 ms median on this CPU.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

PRESET = """\
# 16 routes over two decks: every kind of source and target the matrix has
seed: 5
decks:
  A:
    directions: {kind: sefa, layers: middle, count: 8}
    expression: {layers: middle, glide: 0.08}
  B:
    seed: 6
    directions: {kind: random, count: 8}
    keyframes: {seeds: [1, 2, 3, 4]}
    loop: {bars: 4}
routes:
  - {source: beat, target: expression, deck: A}
  - {source: onset.mid, target: style, direction: 0, layers: middle, amount: 0.5, release: 0.15}
  - {source: beat_phase, target: style, direction: 1, layers: middle, amount: 0.3, curve: scurve}
  - {source: onset.high, target: noise, layers: fine, amount: 1.5, release: 0.08}
  - {source: band.low, target: noise_mask, mask: circle, layers: fine, amount: 3, release: 0.2}
  - {source: band.high, target: noise_mask, mask: outside, layers: fine, amount: 4}
  - {source: onset.low, target: bend.zoom, block: 2, amount: 0.4, release: 0.25, deck: B}
  - {source: lfo.sine, period: 16, target: bend.x, block: 1, amount: 0.2, offset: -0.5, deck: B}
  - {source: band.mid, target: style, direction: 2, layers: fine, deck: B, attack: 0.05}
  - {source: press.next_keyframe, target: keyframe.jump, quantize: bar, deck: B}
  - {source: rms, target: truncation, amount: 0.2, release: 0.3}
  - {source: centroid, target: walk.speed, amount: 0.3}
  - {source: rms, target: brightness, amount: 0.1, attack: 0.05, release: 0.3}
  - {source: lfo.square, period: 2, target: fx_amount, amount: 0.2}
  - {source: lfo.sine, period: 32, target: crossfader}
  - {source: param.intensity, target: zoom, gate: param.hud, amount: 0.1, range: [1, 2]}
"""


def synthetic_features(i: int, fps: int):
    """A 128 BPM drum pattern as AudioFeatures snapshots: kicks on beats, hats on eighths."""
    from vj.audio.features import AudioFeatures

    t = i / fps
    beat = t * 128 / 60
    eighths = int(beat * 2)
    bands = np.clip(0.5 + 0.5 * np.sin(np.arange(8) + t * 3), 0, 1).astype(np.float32)
    return AudioFeatures(
        t_capture_ns=i * 1_000_000_000 // fps, rms=0.5 + 0.3 * np.sin(t), bands=bands,
        centroid=0.4, flatness=0.2, onset_count=eighths, band_onset_counts=(int(beat),
        int(beat / 2), eighths), beat_count=int(beat), bpm=128.0, beat_phase=beat % 1,
        bar_position=beat % 4, tempo_source="tracker",
    )  # fmt: skip


def median_ms(samples: list[int]) -> float:
    return statistics.median(samples) / 1e6


class Timer:
    """Per-frame wall time and this thread's CPU time (the machine is shared: CPU time is the
    cost; wall time includes waiting for a core)."""

    def __init__(self) -> None:
        self.wall: list[int] = []
        self.cpu: list[int] = []

    def __enter__(self):
        self._w, self._c = time.perf_counter_ns(), time.thread_time_ns()
        return self

    def __exit__(self, *exc) -> None:
        self.wall.append(time.perf_counter_ns() - self._w)
        self.cpu.append(time.thread_time_ns() - self._c)

    def row(self) -> tuple[float, float]:
        return median_ms(self.cpu[10:]), median_ms(self.wall[10:])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=600)
    ap.add_argument("--fps", type=int, default=30)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)

    import torch

    from vj.gan.checkpoint import load_checkpoint_or_default
    from vj.params import default_registry
    from vj.preset import apply_preset, load_preset
    from vj.react.modulation import Modulator
    from vj.show.frame import DeckControls, TempoView
    from vj.show.modulate import build_routing
    from vj.show.routes import Inputs

    torch.set_num_threads(args.threads)
    G, _ = load_checkpoint_or_default("default")
    registry = default_registry()
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "bench16.yaml"
        p.write_text(PRESET)
        preset = load_preset(p, registry)
        apply_preset(preset, registry)
        cache = Path(d) / "cache"
        matrix, mods = build_routing(preset, [G, G], params=registry.snapshot(), cache_dir=cache)
    assert len(preset.routes) == 16 and len(mods) == 2
    params = registry.snapshot()
    dt = 1.0 / args.fps
    ns = torch.ones(G.synthesis.num_noise_layers)
    ws0 = G.mapping(torch.zeros(1, G.z_dim), None)

    def routes_step(i, f, base):
        tv = TempoView(f.bpm, f.beat_count + f.beat_phase, (f.bar_position / 4) % 1, 4)
        out = matrix.process(Inputs(f, tv, params), dt)
        res = []
        for name, mod in mods.items():
            dk = out.decks[name]
            mod.tick(dk, tv, dt)
            res.append(mod.apply(base[name], dk, tv))
        return res

    feats = [synthetic_features(i, args.fps) for i in range(args.frames)]
    rows = {}
    with torch.no_grad():
        # 1. the reference: the old one-deck modulator, as `vj render` ran it
        m = Modulator(G, seed=5)
        tm = Timer()
        for i, f in enumerate(feats):
            with tm:
                m.step(f, params, i * dt)
        rows["Modulator.step (1 deck)"] = tm.row()
        # 2. what the routes add, two decks
        base = {n: DeckControls(n, ws0, ns) for n in mods}
        tm = Timer()
        for i, f in enumerate(feats):
            with tm:
                routes_step(i, f, base)
        rows["routes: matrix + 2 decks"] = tm.row()
        # 3. the whole step: the Show's two decks + routes
        show = _try_show(preset, registry, G)
        tm = Timer()
        if show is not None and getattr(show, "matrix", None) is not None:
            label = "show step: Show.frame (2 decks, its routes)"
            assert len(show.matrix.routes) == 16
            for f in feats:
                with tm:
                    show.features(f)
                    show.frame(f.t_capture_ns)
        elif show is not None:  # a Show that does not run routes yet: add them by hand
            label = "show step: Show.frame(2 decks) + routes"
            for i, f in enumerate(feats):
                with tm:
                    show.features(f)
                    fr = show.frame(f.t_capture_ns)
                    routes_step(i, f, {c.deck: c for c in fr.decks})
        else:
            label = "show step: 2 × Modulator.step + routes"
            ma, mb = Modulator(G, seed=5), Modulator(G, seed=6)
            for i, f in enumerate(feats):
                with tm:
                    ca, cb = ma.step(f, params, i * dt), mb.step(f, params, i * dt)
                    da = DeckControls("A", ca.ws, ca.noise_strength)
                    routes_step(i, f, {"A": da, "B": DeckControls("B", cb.ws, cb.noise_strength)})
        rows[label] = tm.row()
    print(f"{args.frames} frames, 16 routes, 2 decks, threads {args.threads}, default network")
    print(f"  {'median per frame':42s} {'CPU ms':>8s} {'wall ms':>8s}")
    for k, (cpu, wall) in rows.items():
        print(f"  {k:42s} {cpu:8.3f} {wall:8.3f}")
    step, ref = rows[label][0], rows["Modulator.step (1 deck)"][0]
    verdict = "≤" if step <= 0.5 else ">"
    print(
        f"show step {step:.3f} ms CPU {verdict} 0.5 ms target; {step / ref:.2f}× one Modulator.step"
    )
    return 0


def _try_show(preset, registry, G):
    """show-core's Show for two decks, or None where it does not build (being written)."""
    try:
        from vj.show.wiring import build_show

        return build_show(preset, registry, [G, G])
    except Exception as exc:  # noqa: BLE001 - the fallback row says what was measured
        print(
            f"(Show not available here: {exc}; measuring the Modulator stand-in)", file=sys.stderr
        )
        return None


if __name__ == "__main__":
    raise SystemExit(main())
