"""One deck's route outputs → its DeckControls: style offsets, noise, spatial masks, bends, ψ,
quantised jumps and the expression mode, on top of the deck's own latent walk.

The Show calls, per tick and deck, in this order:

    jumps = mod.tick(outs, tempo, dt)        # due keyframe jumps (fractions); steps expressions
    for frac in jumps: deck.jump(frac)       # the deck's walk moves
    deck.drift(dt, drift + outs.walk_speed)  # walk speed is added to the drift rate
    c = deck.controls(psi + outs.truncation, ...)
    c = mod.apply(c, outs)                   # directions, noise, masks, bends, expression

Nothing here keeps a reference to the DeckControls it returns; each tick's tensors are new.
"""

from __future__ import annotations

import math
import sys
from dataclasses import replace

import numpy as np
import torch

from vj.show.decks import start_ws
from vj.show.directions import StyleSteer
from vj.show.frame import Bend, DeckControls, NoiseMasks, TempoView
from vj.show.hold import hold_cached
from vj.show.keyframes import BankLoop, ExpressionMode, HoldExpression, JumpQueue
from vj.show.layers import LayerMap
from vj.show.routes import MASK_SHAPES, DeckOutputs

MASK_EDGE = 0.08  # soft edge width of a mask shape, as a fraction of the image size


def mask_shape(shape: str, res: int) -> np.ndarray:
    """A [res, res] float32 map in 0..1 of a named region (soft-edged, resolution-free)."""
    if shape not in MASK_SHAPES:
        raise ValueError(f"mask {shape!r} not one of {', '.join(MASK_SHAPES)}")
    c = (np.arange(res, dtype=np.float64) + 0.5) / res - 0.5  # pixel centres, -0.5..0.5
    y, x = np.meshgrid(c, c, indexing="ij")
    r = np.hypot(x, y)

    def step(d):  # 1 where d < 0, soft over MASK_EDGE
        return np.clip(0.5 - d / MASK_EDGE, 0.0, 1.0)

    m = {
        "circle": lambda: step(r - 0.3),
        "outside": lambda: 1.0 - step(r - 0.3),
        "ring": lambda: step(np.abs(r - 0.3) - 0.08),
        "top": lambda: step(y),
        "bottom": lambda: step(-y),
        "left": lambda: step(x),
        "right": lambda: step(-x),
    }[shape]()
    return m.astype(np.float32)


class DeckModulation:
    """Per-deck application of the routing matrix's DeckOutputs (see the module docstring).

    `directions` [K, w_dim] feed the style slots; `expression`, `loop` are optional. With a
    loop the deck's walk is replaced by the bank loop's W+ at the tempo's beat position.
    """

    def __init__(
        self,
        G,
        outputs: DeckOutputs,
        directions: np.ndarray | None,
        w_scale: float,
        expression: ExpressionMode | None = None,
        loop: BankLoop | None = None,
        loop_truncation: bool = False,
    ) -> None:
        self.layers = LayerMap.of(G)
        self.device = next(G.mapping.parameters()).device
        dirs = directions if directions is not None else np.zeros((1, int(G.w_dim)), np.float32)
        self.steer = StyleSteer(outputs.style_slots, dirs, self.layers, w_scale, self.device)
        n_noise = len(self.layers.noise_res)
        nm = np.zeros((len(outputs.noise_slots), n_noise), np.float32)  # [S, n_noise]
        for i, layers in enumerate(outputs.noise_slots):
            nm[i, list(self.layers.noise_indices(layers))] = 1.0
        self._noise_map = torch.from_numpy(nm).to(self.device)
        self._noise_coef = torch.zeros(len(outputs.noise_slots), device=self.device)
        # masks: noise layers grouped by (resolution, slots touching them); per group the
        # slots' shapes stacked [S, r*r] (zero rows for slots not touching it), so a tick
        # costs one small matmul per group
        n_slots = len(outputs.mask_slots)
        slot_layers = [set(self.layers.noise_indices(ly)) for _, ly in outputs.mask_slots]
        groups: dict[tuple, list[int]] = {}
        for j in range(n_noise):
            key = tuple(s for s in range(n_slots) if j in slot_layers[s])
            if key:
                groups.setdefault((self.layers.noise_res[j], key), []).append(j)
        self._mask_groups: list[tuple[tuple[int, ...], int, torch.Tensor, torch.Tensor]] = []
        for (res, slots), layers in groups.items():
            stack = np.zeros((n_slots, res * res), np.float32)
            for k in slots:
                stack[k] = mask_shape(outputs.mask_slots[k][0], res).ravel()
            self._mask_groups.append(
                (tuple(layers), res, torch.from_numpy(stack).to(self.device),
                 torch.zeros(n_slots, device=self.device))
            )  # fmt: skip
        n_blocks = len(self.layers.block_res)
        for b in outputs.bends:
            if not 0 <= b < n_blocks:
                raise ValueError(f"bend block {b} outside 0..{n_blocks - 1} for this network")
        # numpy copies of the same plans for the CPU fast path
        self._basis_np = self.steer._basis.cpu().numpy()  # [S, L*D]
        self._ws_shape = (self.layers.num_ws, int(G.w_dim))
        self._noise_np = nm  # [S, n_noise]
        self._mask_np = tuple((r, st.cpu().numpy()) for _, r, st, _ in self._mask_groups)
        of_layer: list[int | None] = [None] * n_noise
        for g, (layers, _, _, _) in enumerate(self._mask_groups):
            for j in layers:
                of_layer[j] = g
        self._mask_of_layer = tuple(of_layer)
        self.expression, self.loop = expression, loop
        self.loop_truncation = loop_truncation
        self.jumps = JumpQueue()

    def tick(self, out: DeckOutputs, tempo: TempoView, dt: float) -> list[float]:
        """Arm this tick's jumps, return the fractions due now (reused list); step expressions."""
        for j in out.jumps:
            self.jumps.arm(j.fraction, j.quantize if tempo.bpm > 0 else "none", tempo.beat,
                           tempo.beats_per_bar)  # fmt: skip
        if self.expression is not None:
            self.expression.advance(dt)
            self.expression.step(out.expression)
        return self.jumps.due(tempo.beat if tempo.bpm > 0 else math.inf)

    def apply(
        self, c: DeckControls, out: DeckOutputs, tempo: TempoView | None = None
    ) -> DeckControls:
        """c with this tick's modulation applied (c itself when nothing is routed or moving).

        CPU decks take a numpy path (a few µs per op where torch costs ~10 on tiny tensors);
        `apply_reference` is the plain torch twin, held equal by a test, used on GPU decks.
        """
        if not c.ws.is_cpu:
            return self.apply_reference(c, out, tempo)
        ws0 = c.ws.detach().numpy()[0]  # [L, D] (read-only here: apply_np gets a copy)
        ns0 = c.noise_strength.detach().numpy()
        ws, noise, masks, bends = self.apply_np(None, None, out, tempo, ws0, ns0)
        if ws is None and noise is None and masks is None and not bends:
            return c
        return DeckControls(  # (not dataclasses.replace: that costs ~10 µs of introspection)
            deck=c.deck,
            ws=c.ws if ws is None else torch.from_numpy(ws[None]),
            noise_strength=c.noise_strength if noise is None else torch.from_numpy(noise),
            keyframe_index=c.keyframe_index,
            noise_masks=masks,
            bends=bends,
            model=c.model,
        )

    def apply_np(
        self,
        ws: np.ndarray | None,
        noise: np.ndarray | None,
        out: DeckOutputs,
        tempo: TempoView | None = None,
        ws_base: np.ndarray | None = None,
        noise_base: np.ndarray | None = None,
    ) -> tuple[np.ndarray | None, np.ndarray | None, NoiseMasks | None, tuple[Bend, ...]]:
        """`apply` in numpy: (ws [L, D], noise [n_noise], masks, bends). `ws` / `noise` are the
        deck's own fresh arrays (changed in place) or None; then `ws_base` [L, D] / `noise_base`
        (read-only; noise None = 1) are what is copied when something changes them. Returns
        None for an array nothing changed."""
        f32 = np.float32
        if self.loop is not None and tempo is not None:
            ws = self.loop.ws_np(tempo.beat)  # [L, D], fresh
        nz = np.count_nonzero  # (ndarray.any() goes through a Python wrapper: ~3× slower)
        if nz(out.style):
            offs = (out.style.astype(f32) @ self._basis_np).reshape(self._ws_shape)
            if ws is None:
                ws = ws_base + offs
            else:
                ws += offs
        if self.expression is not None:
            if ws is None:
                ws = ws_base.copy()
            self.expression.apply_np(ws)
        if nz(out.noise):
            push = out.noise.astype(f32) @ self._noise_np  # [n_noise]
            if noise is None:
                noise = push + (f32(1.0) if noise_base is None else noise_base)
            else:
                noise += push
            np.maximum(noise, 0.0, out=noise)
        masks = None
        if nz(out.masks):  # S coefficients: NoiseMasks makes the maps
            masks = NoiseMasks(out.masks.astype(f32), self._mask_np, self._mask_of_layer)
        return ws, noise, masks, self._bends(out)

    @staticmethod
    def _bends(out: DeckOutputs) -> tuple[Bend, ...]:
        if not out.bends:
            return ()
        bl = []
        for block, v in out.bends.items():
            dx, dy, rot, zoom = v.tolist()
            if dx or dy or rot or zoom:
                bl.append(Bend(block, (dx, dy), rot, 2.0**zoom))
        return tuple(bl)

    @torch.no_grad()
    def apply_reference(
        self, c: DeckControls, out: DeckOutputs, tempo: TempoView | None = None
    ) -> DeckControls:
        """The torch twin of `apply` (any device; slower on tiny CPU tensors)."""
        ws = c.ws
        if self.loop is not None and tempo is not None:
            ws = self.loop.ws(tempo.beat)[None].to(ws.device)  # [1, num_ws, w_dim]
        offs = self.steer.offsets(out.style)
        if offs is not None:
            ws = ws + offs[None]
        if self.expression is not None:
            ws = self.expression.apply(ws)
        noise = c.noise_strength
        if out.noise.size and out.noise.any():
            self._noise_coef.copy_(torch.from_numpy(out.noise.astype(np.float32)))
            noise = (noise + self._noise_coef @ self._noise_map).clamp_min(0.0)
        masks = None
        if out.masks.size and out.masks.any():
            acc: list[torch.Tensor | None] = [None] * len(self.layers.noise_res)
            coef = torch.from_numpy(out.masks.astype(np.float32))
            negative = bool((out.masks < -1.0).any())  # shapes are 0..1: only then can it dip
            for layers, r, stack, cbuf in self._mask_groups:
                cbuf.copy_(coef)
                m = (cbuf @ stack).view(r, r).add_(1.0)  # [r, r] = 1 + Σ_s c_s shape_s
                if negative:
                    m.clamp_min_(0.0)
                for j in layers:  # layers at one resolution share the (immutable) map
                    acc[j] = m
            masks = tuple(acc)
        bends = self._bends(out)
        if ws is c.ws and noise is c.noise_strength and masks is None and not bends:
            return c
        return replace(c, ws=ws.contiguous(), noise_strength=noise, noise_masks=masks, bends=bends)


def default_cache_dir():
    """Where SeFa directions are cached (`~/.cache/vj/directions`)."""
    from pathlib import Path

    return Path.home() / ".cache" / "vj" / "directions"


def build_routing(
    preset, generators, params=None, cache_dir="default", beats_per_bar: int = 4, seeds=None
):
    """The preset's routing matrix and one DeckModulation per deck: (matrix, {name: mod}).

    `generators[i]` is deck i's network (A, then B); `preset.decks` (vj.show.config.DeckConfig)
    says each deck's directions, keyframe bank, loop and expression mode (absent: SeFa over all
    layers, no bank). `seeds[i]`: the seed deck i plays (a --seed, a kept seed), where hold
    directions are measured (default: the preset's). Raises ValueError with what is wrong
    (e.g. a direction index beyond the set, a bend block the network does not have).
    """
    from vj.show.config import DeckConfig
    from vj.show.directions import build_directions, w_stats
    from vj.show.frame import DECKS
    from vj.show.keyframes import KeyframeBank
    from vj.show.routes import RouteMatrix

    if cache_dir == "default":
        cache_dir = default_cache_dir()
    routes = tuple(getattr(preset, "routes", ()) or ())
    seed = int(getattr(preset, "seed", 0))
    names = DECKS[: len(generators)]
    matrix = RouteMatrix(routes, params=params, seed=seed, decks=names)
    cfgs = {d.name: d for d in getattr(preset, "decks", ()) or ()}
    mods = {}
    for i, (name, G) in enumerate(zip(names, generators, strict=True)):
        cfg = cfgs.get(name, DeckConfig(name=name, seed=seed + i))
        out = matrix.outputs.decks[name]
        w_avg, w_scale = w_stats(G, cfg.seed)
        dirs = build_directions(cfg.directions, G, cache_dir) if out.style_slots else None
        bank = KeyframeBank.from_spec(cfg.keyframes, G) if cfg.keyframes is not None else None
        expr = loop = None
        if cfg.expression is not None and cfg.expression.hold:
            e = cfg.expression
            psi = float((getattr(preset, "params", None) or {}).get("truncation", 0.7))
            deck_seed = cfg.seed if seeds is None or i >= len(seeds) else int(seeds[i])
            ident = start_ws(G, deck_seed, psi, w_avg)  # what the deck will show
            hold = hold_cached(G, ident, e.layers, e.count, cache_dir, say=_say)
            expr = HoldExpression(G, hold, e.strength * w_scale, e.layers, e.glide, e.seed)
        elif cfg.expression is not None:
            e = cfg.expression
            expr = ExpressionMode(G, e.layers, e.glide, e.strength, e.seed, e.truncation)
        if cfg.loop is not None and bank is not None:
            loop = BankLoop(bank, cfg.loop.beats * beats_per_bar / 4, cfg.loop.interpolation, w_avg)
        try:
            mods[name] = DeckModulation(G, out, dirs, w_scale, expression=expr, loop=loop)
        except ValueError as exc:
            where = getattr(preset, "path", None) or getattr(preset, "name", "preset")
            raise ValueError(f"{where}: deck {name}: {exc}") from None
    return matrix, mods


def _say(text: str) -> None:
    print(f"vj: {text}", file=sys.stderr, flush=True)


class Routing:
    """What a Show holds for its routes: the matrix and each deck's DeckModulation, behind
    four calls per tick (see the module docstring for where they go):

        routing = Routing(preset, generators, params=registry_values)
        routing.process(features, tempo, params, dt)     # once per tick, first
        routing.apply_params(p, specs)                   # route offsets into the frame's table
        for frac in routing.jumps(name): deck.jump(frac) # due (quantised) keyframe jumps
        controls = routing.apply(name, controls)         # W+, noise, masks, bends, expression

    `walk_speed(name)` / `truncation(name)` are the offsets to add to drift and ψ.
    A preset without routes, loops or expressions gives `active == False` (skip it all).
    """

    def __init__(self, preset, generators, params=None, cache_dir="default") -> None:
        from vj.show.routes import Inputs

        self._inputs = Inputs
        self.matrix, self.mods = build_routing(preset, generators, params, cache_dir)
        self.active = bool(self.matrix.routes) or any(
            m.expression is not None or m.loop is not None for m in self.mods.values()
        )
        self._tempo = TempoView()
        self._due: dict[str, list[float]] = {n: [] for n in self.mods}

    def process(self, features, tempo: TempoView, params, dt: float) -> None:
        self._tempo = tempo
        out = self.matrix.process(self._inputs(features, tempo, params), dt)
        for name, mod in self.mods.items():
            self._due[name] = list(mod.tick(out.decks[name], tempo, dt))

    def apply_params(self, p: dict, specs=None) -> None:
        """Add the route offsets to the parameter table `p` in place (clamped by `specs`)."""
        for k, v in self.matrix.outputs.params.items():
            if v == 0.0 or k not in p:
                continue
            x = p[k] + v
            p[k] = specs[k].clamp(x) if specs is not None and k in specs else x

    def jumps(self, name: str) -> list[float]:
        return self._due.get(name, [])

    def walk_speed(self, name: str) -> float:
        d = self.matrix.outputs.decks.get(name)
        return 0.0 if d is None else d.walk_speed

    def truncation(self, name: str) -> float:
        d = self.matrix.outputs.decks.get(name)
        return 0.0 if d is None else d.truncation

    def apply(self, name: str, controls: DeckControls) -> DeckControls:
        mod = self.mods.get(name)
        if mod is None:
            return controls
        return mod.apply(controls, self.matrix.outputs.decks[name], self._tempo)
