"""The one place a Show, its decks and its engines are built: the live and offline drivers,
benchmarks and tests all call `build_show` / `build_engine` so they cannot drift apart.

Also the bridge that turns every registry write (MIDI mapper, OSC, keys, resets) into a
timestamped ControlEvent for the Show: the registry stays the parameter table and the source
of MIDI feedback, but the Show reads events, never polled counters.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from vj.clock import now_ns
from vj.params import ParamRegistry
from vj.show.cues import Cue
from vj.show.decks import Deck
from vj.show.frame import DECKS, ControlEvent
from vj.show.show import Show


@dataclass(frozen=True)
class DeckSpec:
    """One deck: which checkpoint, which latent seed."""

    checkpoint: str = "default"
    seed: int = 0


def deck_specs(
    preset, checkpoint: str | None = None, seed: int | None = None, deck_b: str | None = None
) -> list[DeckSpec]:
    """The decks a show plays: the preset's `decks` (else one deck from its generator and
    seed), with the command line's --checkpoint / --seed (deck A) and --deck-b on top."""
    cfgs = {d.name: d for d in getattr(preset, "decks", ()) or ()}
    gen = getattr(getattr(preset, "generator", None), "checkpoint", "default")
    a_cfg = cfgs.get("A")
    a_ckpt = a_cfg.checkpoint if a_cfg is not None and a_cfg.checkpoint != "default" else gen
    a_seed = a_cfg.seed if a_cfg is not None else int(getattr(preset, "seed", 0))
    out = [DeckSpec(checkpoint or a_ckpt, a_seed if seed is None else int(seed))]
    b_cfg = cfgs.get("B")
    if b_cfg is not None or deck_b:
        b_seed = b_cfg.seed if b_cfg is not None else out[0].seed + 1
        out.append(DeckSpec(deck_b or (b_cfg.checkpoint if b_cfg else "default"), b_seed))
    return out


def load_generator(checkpoint: str = "default"):
    """The generator network for a checkpoint name/path (the embedded default for "default")."""
    from vj.gan.checkpoint import load_checkpoint_or_default

    return load_checkpoint_or_default(checkpoint)[0]


def build_engine(G, spec=None, **fields):
    """(engine, description) for one deck: `spec` (a vj.gan.options.EngineSpec: device, dtype,
    backend, CUDA graphs — the flags over the preset's `generator:`) made into the best engine
    this machine runs (fallbacks told on stderr); `fields` override spec fields (n_buffers,
    threads). No spec: torch on the CPU. The one place engines are constructed; the
    description names the engine actually running (HUD, reports)."""
    from dataclasses import replace

    from vj.gan.options import EngineSpec
    from vj.gan.options import build_engine as choose_engine

    spec = EngineSpec(device="cpu") if spec is None else spec
    spec = replace(spec, **{k: v for k, v in fields.items() if v is not None})
    return choose_engine(G, spec)


def engine_for(engines: Sequence, dc, models=None):
    """The engine that renders DeckControls `dc`: the deck's own first engine while it plays
    its first model, else its model's in `models` (a ModelBank, after a switch changed it)."""
    first = engines[DECKS.index(dc.deck)]
    if models is None or models.initial.get(dc.deck) == dc.model:
        return first
    return models.engine(dc.deck, dc.model, first)


def model_bank(specs: Sequence[DeckSpec], gens, engines, build_one, background: bool):
    """A ModelBank holding the decks' first (G, engine)s; `build_one(G)` makes an engine."""
    from vj.show.models import ModelBank

    def build(checkpoint: str):
        G = load_generator(checkpoint)
        return G, build_one(G)

    initial = {
        (name, s.checkpoint): (G, e)
        for name, s, G, e in zip(DECKS, specs, gens, engines, strict=False)
    }
    return ModelBank(build, initial, background=background)


def preset_resolver(base: Path | None, registry: ParamRegistry) -> Callable[[str], object]:
    """name or path → loaded Preset (for `preset` events and cues), relative to `base`."""
    from vj.preset import load_preset, resolve_preset

    def resolve(name: str):
        # a bare name beside the current preset first (a user's set), then the shipped ones
        near = (base / f"{name}.yaml") if base is not None and "/" not in name else None
        path = near if near is not None and near.is_file() else resolve_preset(name, base)
        return load_preset(path, registry)

    return resolve


def build_show(
    preset,
    registry: ParamRegistry,
    generators: Sequence,
    decks: Sequence[DeckSpec] | None = None,
    sample_rate: int = 48000,
    channel: int | None = None,
    effect: str | None = None,
    cues: Sequence[Cue] | None = None,
    clock: Callable[[], int] | None = None,
    params: Mapping[str, float] | None = None,
    resolve_preset: Callable[[str], object] | None = None,
    chains: Mapping[str, Sequence[str]] | None = None,
    models=None,
    live: bool = False,
) -> Show:
    """A Show for `preset` with one deck per generator (deck A, then B).

    `registry` holds the parameter table; its current values (or `params`) are the Show's
    starting values (apply the preset to it first). `generators[i]` is deck i's network
    (already on its device: the engine is built first). `clock` stamps frames for the
    profiler (live: now_ns; offline: None, so frames hold nothing that differs between runs).
    `chains`: the effect chains ({"A": ..., "B": ..., "master": ...}; default: the preset's
    `effects:`), `effect` first on the master where they leave it out. `models`: a
    vj.show.models.ModelBank, so preset switches can change a deck's checkpoint (None: they
    cannot; seeds still change). `live`: the audio is what a sound card heard after joining a
    song (FeatureExtractor's `live`; a session recorded from one is replayed so).
    """
    from vj.audio.stream import FeatureExtractor
    from vj.render.shaders import default_shader_dir, list_effects

    if not 1 <= len(generators) <= len(DECKS):
        raise ValueError(f"a show has 1..{len(DECKS)} decks, got {len(generators)}")
    specs = list(decks) if decks is not None else []
    while len(specs) < len(generators):
        specs.append(DeckSpec(seed=int(getattr(preset, "seed", 0)) + len(specs)))
    show_decks = [
        Deck(name, G, seed=s.seed, model=s.checkpoint)
        for name, G, s in zip(DECKS, generators, specs, strict=False)
    ]
    audio = getattr(preset, "audio", None)
    extractor = FeatureExtractor(
        sample_rate,
        hop=getattr(audio, "hop", 256),
        n_bands=getattr(audio, "n_bands", 8),
        channel=channel,
        live=live,
    )  # its own arbiter holds only the beat tracker: tap / clock / Link are the Show's
    path = getattr(preset, "path", None)
    from vj.show.modulate import build_routing

    specs_table = dict(registry_specs(registry))

    def routing_for(p, gens=None, seeds=None):
        gens = generators if gens is None else gens
        return build_routing(p, gens, params=specs_table, seeds=seeds)

    routing = routing_for(preset, seeds=[s.seed for s in specs])
    show = Show(
        show_decks,
        extractor,
        registry=registry,
        params=registry.snapshot() if params is None else params,
        effect=effect or getattr(preset, "effect", "default"),
        effects=list_effects(default_shader_dir()),
        cues=cues if cues is not None else tuple(getattr(preset, "cues", ()) or ()),
        resolve_preset=resolve_preset
        or preset_resolver(path.parent if path is not None else None, registry),
        preset=getattr(preset, "name", "default"),
        clock=clock,
        routing=routing,
        chains=chains if chains is not None else getattr(preset, "effects", None),
        routing_for=routing_for,
        models=models,
        preset_config=preset,
    )
    show.preload([c.preset for c in show.cues.cues])  # now, not on the generator thread
    return show


def registry_specs(registry: ParamRegistry):
    return ((n, registry.spec(n)) for n in registry.names())


class RegistryBridge:
    """Registry listener → ControlEvents for the Show, stamped when the write happened.

    A trigger's event carries 1 (one press), a value's event the stored value. Writes from a
    preset switch (source "preset") are not forwarded one by one: the switch itself arrives as
    one `preset` event, so the Show can morph instead of cutting.
    """

    SKIP_SOURCES = ("preset",)

    def __init__(
        self, registry: ParamRegistry, sink: Callable[[ControlEvent], None], clock=now_ns
    ) -> None:
        self.registry = registry
        self._sink = sink
        self._clock = clock
        self._kinds = {n: registry.spec(n).kind for n in registry.names()}
        registry.add_listener(self)

    def __call__(self, name: str, value: float, source: str) -> None:
        if source in self.SKIP_SOURCES:
            return
        trig = self._kinds.get(name) == "trigger"
        self._sink(ControlEvent(self._clock(), source or "registry", name, 1.0 if trig else value))

    def close(self) -> None:
        self.registry.remove_listener(self)
