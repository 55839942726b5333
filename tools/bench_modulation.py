"""Cost of one Show step with routes: a 16-route, two-deck preset, per frame, median — beside
the old `Modulator.step` in the same run (the generator's synthesis forward is excluded).

    python tools/bench_modulation.py [--frames 400] [--rounds 5] [--threads 1]

Rows: `Modulator.step` (one deck, the pre-Show modulator: the reference); `routes` (the
routing matrix + both decks' DeckModulation tick/apply, i.e. what the routes add); `show step`
(Show.frame for two decks with the routes applied, when vj.show.show builds here; otherwise
two Modulator.steps + routes). The rows take turns for `--rounds` rounds; each prints the
median of its rounds' medians and its best round. Target: show step ≤ 0.5 ms median on this CPU.
"""

from __future__ import annotations

import argparse
import statistics
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
    ap.add_argument("--frames", type=int, default=400, help="frames per round")
    ap.add_argument("--rounds", type=int, default=5, help="rounds, the rows taking turns")
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
    from vj.show.wiring import build_show

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

    show = build_show(preset, registry, [G, G])  # the product's own wiring
    assert len(show.matrix.routes) == 16
    label = "show step: Show.frame (2 decks, its routes)"
    n = args.frames
    feats = [synthetic_features(i, args.fps) for i in range(n * args.rounds)]
    m = Modulator(G, seed=5)
    base = {name: DeckControls(name, ws0, ns) for name in mods}
    rounds: dict[str, list[tuple[float, float]]] = {}
    with torch.no_grad():
        # the three rows take turns, `rounds` times, each on the next stretch of the same
        # feature stream: a shared machine's busy minute then lands on every row alike
        for r in range(args.rounds):
            part = feats[r * n : (r + 1) * n]
            t0 = r * n
            tm = Timer()  # 1. the reference: the old one-deck modulator, as `vj render` ran it
            for i, f in enumerate(part):
                with tm:
                    m.step(f, params, (t0 + i) * dt)
            rounds.setdefault("Modulator.step (1 deck)", []).append(tm.row())
            tm = Timer()  # 2. what the routes add, two decks
            for i, f in enumerate(part):
                with tm:
                    routes_step(t0 + i, f, base)
            rounds.setdefault("routes: matrix + 2 decks", []).append(tm.row())
            tm = Timer()  # 3. the whole step: the Show's two decks + routes
            for f in part:
                with tm:
                    show.features(f)
                    show.frame(f.t_capture_ns)
            rounds.setdefault(label, []).append(tm.row())
    print(
        f"{n} frames × {args.rounds} rounds, 16 routes, 2 decks, threads {args.threads}, "
        "default network"
    )
    head = "median per frame (median of rounds, best round)"
    print(f"  {head:48s} {'CPU ms':>14s} {'wall ms':>8s}")
    rows = {}
    for k, v in rounds.items():
        cpu = statistics.median(c for c, _ in v)
        wall = statistics.median(w for _, w in v)
        rows[k] = cpu
        best = min(c for c, _ in v)
        print(f"  {k:48s} {cpu:7.3f} ({best:5.3f}) {wall:8.3f}")
    step, ref = rows[label], rows["Modulator.step (1 deck)"]
    verdict = "≤" if step <= 0.5 else ">"
    print(
        f"show step {step:.3f} ms CPU {verdict} 0.5 ms target; {step / ref:.2f}× one Modulator.step"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
