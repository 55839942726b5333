"""The show part of a preset: `routes`, `decks` (model, directions, keyframe banks, loops,
expression mode) and `cues`; YAML nodes → frozen typed objects, file:line errors with
"did you mean".

    decks:
      A:
        checkpoint: default          # or a .safetensors / .pkl / .pt path
        seed: 7
        directions: {kind: sefa, layers: middle, count: 8}     # or random (seed) / file (path)
        keyframes: {seeds: [1, 2, 3], files: [portrait.npy], truncation: 0.7}
        loop: {bars: 4, interpolation: spline}                  # or beats: 16; slerp / linear
        expression: {layers: middle, glide: 0.08, strength: 1.0, seed: 3}   # hold: true, count: 8
    routes:
      - {source: onset.low, target: bend.zoom, block: 3, amount: 0.3, release: 0.2}
    cues:
      - {preset: club, keyframe: 3, beats: 8}

Network-dependent checks (a direction index beyond the set, a bend block beyond the network)
happen when the decks are built (`vj.show.modulate.build_deck_modulation`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from vj.show.cues import Cue
from vj.show.directions import KINDS as DIRECTION_KINDS
from vj.show.directions import DirectionSpec
from vj.show.frame import DECKS
from vj.show.keyframes import INTERPOLATIONS, BankSpec
from vj.show.layers import GROUPS
from vj.show.routes import (
    DECK_TARGETS,
    MASK_SHAPES,
    QUANTIZE,
    Route,
    RouteError,
    check_source,
    check_target,
)
from vj.yamldoc import PresetError, _Doc

SHOW_KEYS = ("decks", "routes", "cues")
MAX_ROUTES = 256
MAX_BLOCK = 10  # 4² … 4096²


@dataclass(frozen=True)
class LoopSpec:
    beats: float  # loop length in beats (bars are converted with the deck's beats per bar: 4)
    interpolation: str = "spline"


@dataclass(frozen=True)
class ExpressionSpec:
    layers: str | tuple[int, ...] = "middle"
    glide: float = 0.08  # seconds to reach each new expression
    strength: float = 1.0
    seed: int = 0
    truncation: float = 0.7
    # hold: targets are offsets along this identity's hold directions (vj.show.hold: detail
    # moves, the frame's thumbnail holds), strength × the model's W spread long
    hold: bool = False
    count: int = 8  # hold directions mixed per target


@dataclass(frozen=True)
class DeckConfig:
    """One deck. `checkpoint` and `seed` are what vj.show.wiring.DeckSpec holds too."""

    name: str = "A"
    checkpoint: str = "default"
    seed: int = 0
    directions: DirectionSpec = DirectionSpec()
    keyframes: BankSpec | None = None
    loop: LoopSpec | None = None
    expression: ExpressionSpec | None = None
    named: frozenset[str] = frozenset()  # the keys the preset gives (a switch applies those)


@dataclass(frozen=True)
class ShowConfig:
    decks: tuple[DeckConfig, ...] = ()
    routes: tuple[Route, ...] = ()
    cues: tuple[Cue, ...] = ()


def effect_param_names(effects: list[str] | None) -> set[str] | None:
    """`{effect}.{param}` names the effect shaders declare (vj.render.effects, the stage
    engineer's `@param` declarations), or None where that module is not here yet — then
    `{known effect}.{anything}` is accepted (see `_param_target`)."""
    try:
        from vj.render.effects import effect_specs
    except ImportError:
        return None
    try:
        specs, _errors = effect_specs()
    except Exception:  # a broken shader folder must not break preset loading
        return None
    return {p.name for s in specs if not effects or s.name in effects for p in s.params}


def parse_show(
    doc: _Doc,
    top: dict,
    params: set[str],
    base: Path,
    effects: list[str] | None = None,
    seed: int = 0,
) -> ShowConfig:
    """The show keys of a preset's top-level mapping `top` (key → (key node, value node)).

    `params`: registry names routes may read and write; `effects`: effect names, so
    `{effect}.{param}` targets are accepted; `base`: the preset's folder for relative paths.
    """
    decks: tuple[DeckConfig, ...] = ()
    routes: tuple[Route, ...] = ()
    cues: tuple[Cue, ...] = ()
    if "decks" in top:
        decks = _decks(doc, top["decks"][1], base, seed)
    names = {d.name for d in decks} or {"A"}
    if "routes" in top:
        routes = _routes(doc, top["routes"][1], params, names, effects)
    if "cues" in top:
        cues = _cues(doc, top["cues"][1], base)
    return ShowConfig(decks=decks, routes=routes, cues=cues)


# -- decks ----------------------------------------------------------------------------------
def _decks(doc: _Doc, node, base: Path, seed: int) -> tuple[DeckConfig, ...]:
    it = doc.items(node, "decks")
    doc.check_keys(it, DECKS, "decks")
    out = []
    for i, name in enumerate(n for n in DECKS if n in it):
        out.append(_deck(doc, it[name][1], f"decks.{name}", name, base, seed + i))
    if out and out[0].name != "A":
        raise doc.err(node, "decks", "deck B needs a deck A")
    return tuple(out)


def _deck(doc: _Doc, node, where: str, name: str, base: Path, seed: int) -> DeckConfig:
    if isinstance(node, yaml.ScalarNode) and doc.value(node) is None:
        return DeckConfig(name=name, seed=seed)
    it = doc.items(node, where)
    keys = ("checkpoint", "seed", "directions", "keyframes", "loop", "expression")
    doc.check_keys(it, keys, where)
    kw: dict[str, Any] = {"name": name, "seed": seed, "named": frozenset(it)}
    if "checkpoint" in it:
        kw["checkpoint"] = doc.string(it["checkpoint"][1], f"{where}.checkpoint")
        if kw["checkpoint"] != "default":
            p = Path(kw["checkpoint"]).expanduser()
            kw["checkpoint"] = str(p if p.is_absolute() else base / p)
    if "seed" in it:
        kw["seed"] = doc.number(it["seed"][1], f"{where}.seed", 0, 2**32 - 1, integer=True)
    if "directions" in it:
        kw["directions"] = _directions(doc, it["directions"][1], f"{where}.directions", base)
    if "keyframes" in it:
        kw["keyframes"] = _bank(doc, it["keyframes"][1], f"{where}.keyframes", base)
    if "loop" in it:
        kw["loop"] = _loop(doc, it["loop"][1], f"{where}.loop")
        if "keyframes" not in it:
            raise doc.err(
                it["loop"][0], f"{where}.loop", "a loop needs `keyframes` to loop through"
            )
    if "expression" in it:
        kw["expression"] = _expression(doc, it["expression"][1], f"{where}.expression")
    return DeckConfig(**kw)


def _layers(doc: _Doc, node, where: str) -> str | tuple[int, ...]:
    if isinstance(node, yaml.SequenceNode):
        items = doc.seq(node, where)
        if not items:
            raise doc.err(node, where, "an empty layer list")
        return tuple(doc.number(x, where, 0, 63, integer=True) for x in items)
    return doc.choice(node, where, GROUPS)


def _path(doc: _Doc, node, where: str, base: Path) -> Path:
    p = Path(doc.string(node, where)).expanduser()
    p = p if p.is_absolute() else base / p
    if not p.is_file():
        raise doc.err(node, where, f"no file {str(p)!r}")
    return p


def _directions(doc: _Doc, node, where: str, base: Path) -> DirectionSpec:
    it = doc.items(node, where)
    doc.check_keys(it, ("kind", "layers", "count", "seed", "path"), where)
    kind = doc.choice(it["kind"][1], f"{where}.kind", DIRECTION_KINDS) if "kind" in it else None
    if kind is None:
        kind = "file" if "path" in it else "sefa"
    kw: dict[str, Any] = {"kind": kind}
    if "layers" in it:
        kw["layers"] = _layers(doc, it["layers"][1], f"{where}.layers")
    if "count" in it:
        kw["count"] = doc.number(it["count"][1], f"{where}.count", 1, 4096, integer=True)
    if "seed" in it:
        kw["seed"] = doc.number(it["seed"][1], f"{where}.seed", 0, 2**32 - 1, integer=True)
    if kind == "file":
        if "path" not in it:
            raise doc.err(node, where, "file directions need `path: your_vectors.npy`")
        kw["path"] = _path(doc, it["path"][1], f"{where}.path", base)
    elif "path" in it:
        raise doc.err(it["path"][0], f"{where}.path", f"`path` is for kind: file, not {kind}")
    return DirectionSpec(**kw)


def _bank(doc: _Doc, node, where: str, base: Path) -> BankSpec:
    it = doc.items(node, where)
    doc.check_keys(it, ("seeds", "files", "truncation"), where)
    kw: dict[str, Any] = {}
    if "seeds" in it:
        sn = it["seeds"][1]
        kw["seeds"] = tuple(
            doc.number(x, f"{where}.seeds", 0, 2**32 - 1, integer=True)
            for x in doc.seq(sn, f"{where}.seeds")
        )
    if "files" in it:
        kw["files"] = tuple(
            _path(doc, x, f"{where}.files", base) for x in doc.seq(it["files"][1], f"{where}.files")
        )
    if "truncation" in it:
        kw["truncation"] = doc.number(it["truncation"][1], f"{where}.truncation", 0.0, 1.5)
    if not kw.get("seeds") and not kw.get("files"):
        raise doc.err(node, where, "a keyframe bank needs `seeds: [...]` or `files: [...]`")
    if len(kw.get("seeds", ())) + len(kw.get("files", ())) > 1024:
        raise doc.err(node, where, "more than 1024 keyframes")
    return BankSpec(**kw)


def _loop(doc: _Doc, node, where: str) -> LoopSpec:
    it = doc.items(node, where)
    doc.check_keys(it, ("beats", "bars", "interpolation"), where)
    if ("beats" in it) == ("bars" in it):
        raise doc.err(node, where, "give the loop's length as `beats: N` or `bars: N`")
    if "beats" in it:
        beats = doc.number(it["beats"][1], f"{where}.beats", 0.25, 4096)
    else:
        beats = 4.0 * doc.number(it["bars"][1], f"{where}.bars", 0.25, 1024)
    how = "spline"
    if "interpolation" in it:
        how = doc.choice(it["interpolation"][1], f"{where}.interpolation", INTERPOLATIONS)
    return LoopSpec(beats=float(beats), interpolation=how)


def _expression(doc: _Doc, node, where: str) -> ExpressionSpec:
    it = doc.items(node, where)
    doc.check_keys(
        it, ("layers", "glide", "strength", "seed", "truncation", "hold", "count"), where
    )
    kw: dict[str, Any] = {}
    if "layers" in it:
        kw["layers"] = _layers(doc, it["layers"][1], f"{where}.layers")
    if "glide" in it:
        kw["glide"] = doc.number(it["glide"][1], f"{where}.glide", 0.0, 10.0)
    if "strength" in it:
        kw["strength"] = doc.number(it["strength"][1], f"{where}.strength", 0.0, 1.0)
    if "seed" in it:
        kw["seed"] = doc.number(it["seed"][1], f"{where}.seed", 0, 2**32 - 1, integer=True)
    if "truncation" in it:
        kw["truncation"] = doc.number(it["truncation"][1], f"{where}.truncation", 0.0, 1.5)
    if "hold" in it:
        kw["hold"] = doc.boolean(it["hold"][1], f"{where}.hold")
    if "count" in it:
        kw["count"] = doc.number(it["count"][1], f"{where}.count", 1, 64, integer=True)
    return ExpressionSpec(**kw)


# -- routes ---------------------------------------------------------------------------------
_ROUTE_KEYS = (
    "source", "target", "amount", "curve", "range", "attack", "release", "gate", "offset",
    "deck", "layers", "direction", "mask", "block", "quantize", "period", "phase",
)  # fmt: skip
_NEEDS = {  # target → the fields only it may use
    "style": ("direction", "layers"),
    "noise": ("layers",),
    "noise_mask": ("mask", "layers"),
    "keyframe.jump": ("quantize",),
}


def _routes(doc: _Doc, node, params: set[str], decks: set[str], effects) -> tuple[Route, ...]:
    items = doc.seq(node, "routes")
    if len(items) > MAX_ROUTES:
        raise doc.err(node, "routes", f"more than {MAX_ROUTES} routes")
    fx_params = effect_param_names(effects)
    return tuple(
        _route(doc, n, f"routes[{i}]", params, decks, effects, fx_params)
        for i, n in enumerate(items)
    )


def _route(doc: _Doc, node, where: str, params, decks, effects, fx_params) -> Route:
    it = doc.items(node, where)
    doc.check_keys(it, _ROUTE_KEYS, where)
    for key in ("source", "target"):
        if key not in it:
            raise doc.err(node, where, f"missing '{key}'")
    kw: dict[str, Any] = {}
    for key in ("source", "gate"):
        if key in it:
            vn = it[key][1]
            name = doc.string(vn, f"{where}.{key}")
            try:
                check_source(name, params)
            except RouteError as exc:
                raise doc.err(vn, f"{where}.{key}", str(exc)) from None
            kw[key] = name
    tn = it["target"][1]
    target = doc.string(tn, f"{where}.target")
    if not _param_target(target, params, effects, fx_params):
        try:
            check_target(target, params | (fx_params or set()))
        except RouteError as exc:
            raise doc.err(tn, f"{where}.target", str(exc)) from None
    kw["target"] = target
    used = {k for k in ("direction", "layers", "mask", "quantize") if k in it}
    allowed = set(_NEEDS.get(target, ()))
    stray = sorted(used - allowed)  # a field another target takes is a mistake: say so
    if stray:
        what = f"target {target!r} takes " + (", ".join(sorted(allowed)) or "none of these")
        raise doc.err(it[stray[0]][0], f"{where}.{stray[0]}", f"not used here ({what})")
    if "block" in it and not target.startswith("bend."):
        raise doc.err(it["block"][0], f"{where}.block", "only bend.* targets take a block")
    num = {"amount": (-100, 100), "offset": (-100, 100), "attack": (0, 60), "release": (0, 60),
           "period": (1 / 64, 1024), "phase": (-1, 1)}  # fmt: skip
    for key, (lo, hi) in num.items():
        if key in it:
            kw[key] = doc.number(it[key][1], f"{where}.{key}", lo, hi)
    if "curve" in it:
        from vj.control.mapping import CURVES

        kw["curve"] = doc.choice(it["curve"][1], f"{where}.curve", CURVES)
    if "range" in it:
        rn = it["range"][1]
        xs = doc.seq(rn, f"{where}.range")
        if len(xs) != 2:
            raise doc.err(rn, f"{where}.range", "expected [low, high]")
        lo, hi = (doc.number(x, f"{where}.range") for x in xs)
        if lo == hi:
            raise doc.err(rn, f"{where}.range", "low and high are equal")
        kw["range"] = (lo, hi)
    if "deck" in it:
        dn = it["deck"][1]
        kw["deck"] = doc.choice(dn, f"{where}.deck", sorted(decks))
    if "layers" in it:
        kw["layers"] = _layers(doc, it["layers"][1], f"{where}.layers")
    if "direction" in it:
        kw["direction"] = doc.number(it["direction"][1], f"{where}.direction", 0, 4095, True)
    if "mask" in it:
        kw["mask"] = doc.choice(it["mask"][1], f"{where}.mask", MASK_SHAPES)
    if "block" in it:
        kw["block"] = doc.number(it["block"][1], f"{where}.block", 0, MAX_BLOCK, integer=True)
    if "quantize" in it:
        kw["quantize"] = doc.choice(it["quantize"][1], f"{where}.quantize", QUANTIZE)
    return Route(**kw)


def _param_target(target: str, params: set[str], effects, fx_params: set[str] | None) -> bool:
    """A compositor/effect parameter target: a registry name, a declared `{effect}.{param}`,
    or (while effects cannot list their parameters) any `{known effect}.{param}`."""
    if target in DECK_TARGETS or target in params or (fx_params and target in fx_params):
        return True
    head, dot, tail = target.partition(".")
    return bool(fx_params is None and dot and tail and effects and head in effects)


# -- cues -----------------------------------------------------------------------------------
def _cues(doc: _Doc, node, base: Path) -> tuple[Cue, ...]:
    from vj.preset import resolve_preset

    out = []
    for i, n in enumerate(doc.seq(node, "cues")):
        where = f"cues[{i}]"
        it = doc.items(n, where)
        doc.check_keys(it, ("preset", "keyframe", "beats"), where)
        if "preset" not in it:
            raise doc.err(n, where, "missing 'preset' (the preset this cue switches to)")
        pn = it["preset"][1]
        name = doc.string(pn, f"{where}.preset")
        try:
            p = resolve_preset(name, base)
        except PresetError as exc:
            raise doc.err(pn, f"{where}.preset", exc.problem) from None
        if not p.is_file():
            raise doc.err(pn, f"{where}.preset", f"no preset file {str(p)!r}")
        kf = None
        if "keyframe" in it:
            kf = doc.number(it["keyframe"][1], f"{where}.keyframe", 0, 2**31 - 1, True, none=True)
        beats = 4.0
        if "beats" in it:
            beats = doc.number(it["beats"][1], f"{where}.beats", 0, 1024)
        out.append(Cue(name, kf, float(beats)))
    return tuple(out)
