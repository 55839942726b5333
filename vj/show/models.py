"""The models a show's decks can switch to: one (generator, engine) per (deck, checkpoint).

A preset switch that names another checkpoint for a deck asks the bank for it. Live builds it
on a worker thread (`background=True`: loading a checkpoint and building an engine take
seconds; the deck keeps playing its old model until `ready` says the new one is there);
offline builds it at once in the caller, so a render is the same every time. Each deck has its
own engine even where two decks play one checkpoint (an engine owns its ring of buffers).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from pathlib import Path

Key = tuple[str, str]  # (deck name, checkpoint)


class ModelBank:
    """`build(checkpoint) -> (G, engine)` makes one; `initial` holds the models built first."""

    def __init__(
        self,
        build: Callable[[str], tuple[object, object]],
        initial: dict[Key, tuple[object, object]] | None = None,
        background: bool = False,
    ) -> None:
        self._build = build
        self._ready: dict[Key, tuple] = {k: (*v, None) for k, v in (initial or {}).items()}
        # each deck's first model: its engine is the driver's own (rebuilt by its supervisor)
        self.initial: dict[str, str] = {deck: ckpt for deck, ckpt in (initial or {})}
        self._building: set[Key] = set()
        self._failed: dict[Key, str] = {}
        self.background = background
        self._lock = threading.Lock()
        self.errors: deque[str] = deque(maxlen=16)  # failed builds, for the drivers to report

    def request(self, deck: str, checkpoint: str) -> None:
        """Start building (deck, checkpoint) unless it is built, building, or failed before."""
        key = (deck, checkpoint)
        with self._lock:
            if key in self._ready or key in self._building or key in self._failed:
                return
            self._building.add(key)
        if self.background:
            threading.Thread(
                target=self._make, args=(key,), name=f"vj-model-{deck}", daemon=True
            ).start()
        else:
            self._make(key)

    def _make(self, key: Key) -> None:
        try:
            G, engine = self._build(key[1])
            from vj.show.decks import Deck

            got = (G, engine, Deck(key[0], G, 0, key[1]))  # model statistics, off the tick
        except Exception as exc:  # noqa: BLE001 - any failure: the deck keeps its old model
            msg = f"deck {key[0]}: checkpoint {key[1]!r} not loaded: {exc}"
            with self._lock:
                self._building.discard(key)
                self._failed[key] = msg
            self.errors.append(msg)
            return
        with self._lock:
            self._building.discard(key)
            self._ready[key] = got

    def ready(self, deck: str, checkpoint: str) -> tuple | None:
        """(G, engine, prototype Deck) once built; None while building (or after a failure:
        see `failed`). The initial models have no prototype (None)."""
        with self._lock:
            return self._ready.get((deck, checkpoint))

    def failed(self, deck: str, checkpoint: str) -> bool:
        with self._lock:
            return (deck, checkpoint) in self._failed

    def engine(self, deck: str, checkpoint: str, fallback=None):
        """The engine a DeckControls of (deck, model) renders on; `fallback` if not built."""
        got = self.ready(deck, checkpoint)
        return fallback if got is None else got[1]

    def rebuild_engines(self, make: Callable[[object], object]) -> None:
        """A fresh engine for every model a switch built (`make(G)`), after a generator
        failure: the drivers rebuild their first engines themselves."""
        with self._lock:
            keys = [k for k in self._ready if self.initial.get(k[0]) != k[1]]
        for k in keys:
            G, _old, proto = self._ready[k]
            engine = make(G)
            with self._lock:
                self._ready[k] = (G, engine, proto)

    def add(self, deck: str, checkpoint: str, G, engine) -> None:
        """Register a model built elsewhere (the drivers' first engines)."""
        with self._lock:
            self._ready[(deck, checkpoint)] = (G, engine, None)

    def drain_errors(self) -> list[str]:
        out = list(self.errors)
        self.errors.clear()
        return out


def engine_label(first: str, deck, models: ModelBank | None) -> str:
    """What the HUD says a deck renders on: its first engine's description (`first`), or,
    once a switch moved the deck to another checkpoint, that model's engine and file name."""
    if models is None or deck is None or models.initial.get(deck.name) == deck.model:
        return first
    engine = models.engine(deck.name, deck.model)
    if engine is None:
        return first
    text = getattr(engine, "description", None) or type(engine).__name__
    return f"{text} ({Path(deck.model).name})"


class RoutingJob:
    """The routes of the playing preset for a new set of generators, built on a worker thread
    (live): SeFa, direction caches and keyframe banks of a new model take tenths of a second,
    so the tick only starts the job and, once it is done, swaps the decks and installs their
    routes together. `swaps`: deck index → the checkpoint it moves to."""

    def __init__(
        self, build: Callable, preset, gens: list, swaps: dict[int, str], seeds: list[int]
    ) -> None:
        self.preset, self.gens, self.swaps = preset, tuple(gens), dict(swaps)
        self.seeds = list(seeds)
        self.routing = None
        self.error: str | None = None
        self._done = threading.Event()
        threading.Thread(
            target=self._run, args=(build,), name="vj-model-routes", daemon=True
        ).start()

    def _run(self, build: Callable) -> None:
        try:
            self.routing = build(self.preset, list(self.gens), self.seeds)
        except Exception as exc:  # noqa: BLE001 - reported; the decks keep their old models
            self.error = f"routes for the new model(s) not built: {exc}"
        finally:
            self._done.set()

    def done(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)


def switch_specs(preset, n_decks: int) -> list[tuple[str | None, int | None]]:
    """What a switch to `preset` sets on each of the first `n_decks` decks: (checkpoint, seed),
    None where the preset does not name it (the deck keeps its own).

    A deck's seed: `decks.X.seed`, else the top-level `seed` (+ the deck's index, as at start).
    Its checkpoint: `decks.X.checkpoint`, else for deck A a `generator.checkpoint` other than
    "default". Presets built in code (no `named`) change nothing.
    """
    from vj.show.frame import DECKS

    named = getattr(preset, "named", frozenset())
    cfgs = {d.name: d for d in getattr(preset, "decks", ()) or ()}
    gen = getattr(getattr(preset, "generator", None), "checkpoint", "default")
    out: list[tuple[str | None, int | None]] = []
    for i, name in enumerate(DECKS[:n_decks]):
        cfg = cfgs.get(name)
        own = getattr(cfg, "named", frozenset()) if cfg is not None else frozenset()
        seed = None
        if "seed" in own:
            seed = int(cfg.seed)
        elif "seed" in named:
            seed = int(getattr(preset, "seed", 0)) + i
        ckpt = None
        if "checkpoint" in own:
            ckpt = str(cfg.checkpoint)
        elif name == "A" and "generator" in named and gen != "default":
            ckpt = str(gen)
        out.append((ckpt, seed))
    return out
