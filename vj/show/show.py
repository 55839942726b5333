"""The Show: analysis → tempo → events → modulation → decks → one immutable ShowFrame per tick.

A deterministic function of (tick times, audio blocks, timestamped ControlEvents). Inputs are
queued from any thread and applied at their own times inside the tick that covers them, in
time order: features (onsets jump the decks, bands fill envelopes), events (parameters,
presses, taps, tempo, presets, cues) and beat boundaries of the active tempo (quantised
presses land there, beat jumps fire there). Between those instants the continuous parts —
parameter smoothing, envelopes, drift, morphs — run on analytically. Live and offline call the
same three methods; nothing downstream keeps envelopes of its own.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import replace

import numpy as np
import torch

from vj.audio.features import SILENCE, AudioFeatures
from vj.params import ParamRegistry, ParamSpec, default_registry
from vj.show.compositing import compositor_controls, effect_chains
from vj.show.cues import CUE_ACTIONS, CUE_TRIGGERS, Cue, CueList
from vj.show.decks import Deck
from vj.show.events import TimedQueue
from vj.show.frame import (
    ControlEvent,
    DeckControls,
    DisplayBasis,
    ShowFrame,
    TempoView,
)
from vj.tempo import EventTempo, FeatureTempo, TapTempo, TempoArbiter, TempoState

QUANTIZE_GRACE_BEATS = 0.125  # a press this soon after a beat lands at once (human lateness)
NO_TEMPO_BEATS_PER_S = 2.0  # morphs count beats at 120 BPM while no tempo source is active
MAX_DT_S = 0.5  # a stalled caller must not cause a huge drift leap
MAX_BEATS_PER_STEP = 8  # beat boundaries handled one by one per segment (more: skipped)
TEMPO_SOURCES = ("link", "midi_clock", "tap", "tracker")  # priority, highest first
_TEMPO_EVENT_SOURCES = {"link": "link", "clock": "midi_clock", "midi_clock": "midi_clock"}


class Show:
    """See the module docstring. `decks`: one Deck per active deck, in DECKS order."""

    def __init__(
        self,
        decks: Sequence[Deck],
        extractor=None,
        registry: ParamRegistry | None = None,
        params: Mapping[str, float] | None = None,
        effect: str = "default",
        effects: Sequence[str] = (),
        cues: Sequence[Cue] = (),
        resolve_preset: Callable[[str], object] | None = None,
        preset: str = "default",
        clock: Callable[[], int] | None = None,
        routing: tuple | None = None,
        chains: Mapping[str, Sequence[str]] | None = None,
        routing_for: Callable[..., tuple] | None = None,
        models=None,
        preset_config: object | None = None,
    ) -> None:
        if not decks:
            raise ValueError("a Show needs at least one deck")
        self.decks = list(decks)
        self.extractor = extractor  # vj.audio.stream.FeatureExtractor for show.audio()
        reg = registry if registry is not None else default_registry()
        self._specs: dict[str, ParamSpec] = {n: reg.spec(n) for n in reg.names()}
        self._float_names = tuple(n for n, s in self._specs.items() if s.kind != "trigger")
        init = dict(params) if params is not None else reg.snapshot()
        self._target = {n: self._specs[n].clamp(init.get(n, s.default)) for n, s in self._items()}
        self._value = dict(self._target)  # smoothed values, each at its time in _tp
        self._tau = {n: self._specs[n].smoothing for n in self._float_names}
        self._tp = dict.fromkeys(self._float_names, 0)
        # names whose smoothed value may still differ from its target: a tick settles these
        # (and a running morph's) only, the ~60 at rest cost nothing (see _settle)
        self._moving: set[str] = set()
        self._reference = False
        # effect chains (CHAINS): the preset's, `effect` first on the master where it has none
        self._chains = effect_chains(effect, chains)
        self._effects = list(effects)
        self.cues = CueList(cues)
        self._resolve = resolve_preset
        self._preset_cache: dict[str, tuple[object, tuple | None]] = {}  # (preset, routing)
        # (preset, generators) → (matrix, mods) for this show's decks
        self._routing_for = routing_for
        # vj.show.models.ModelBank: the models a switch can change a deck to (None: none)
        self.models = models
        self.generators = [d.G for d in self.decks]  # deck i's network, as it plays now
        self._gens_version = 0  # bumped when a deck's model changes (cached routes go stale)
        self._current = preset_config  # the preset object playing (its routes are rebuilt
        # for a new model)
        self.preset = preset
        self._clock = clock
        self.errors: deque[str] = deque(maxlen=64)  # problems with events, for the drivers
        # the routing matrix and one DeckModulation per deck (vj.show.modulate.build_routing);
        # None: no routes (the built-in modulation alone)
        self.matrix, self.mods = routing if routing is not None else (None, {})
        self._trigger_names = tuple(n for n, s in self._specs.items() if s.kind == "trigger")

        self._events = TimedQueue()
        self._feats = TimedQueue(key=lambda f: f.t_capture_ns)
        self.tap = TapTempo()
        self.link = EventTempo("link")
        self.midi_clock = EventTempo("midi_clock")
        self.tracker = FeatureTempo()
        self.arbiter = TempoArbiter([self.link, self.midi_clock, self.tap, self.tracker])
        self.log: list[ControlEvent] | None = None  # set to [] to record applied events
        # True: CompositorControls.probe carries the latency probe's marker (`vj profile`)
        self.probe = False
        self.reset()

    @property
    def reference(self) -> bool:
        """True: the straightforward paths (every parameter settled each tick, the decks' and
        routes' torch twins): the reference that tests hold the fast paths equal to."""
        return self._reference

    @reference.setter
    def reference(self, on: bool) -> None:
        self._reference = bool(on)
        for d in self.decks:
            d.reference = self._reference

    def _items(self):
        return ((n, self._specs[n]) for n in self._float_names)

    def reset(self) -> None:
        """Back to the start: tick 0, no envelopes, decks on keyframe 0 (params kept)."""
        self.index = 0
        self._t: int | None = None
        self._features: AudioFeatures = SILENCE
        self._onsets_seen: int | None = None
        self._env: np.ndarray | None = None  # [n_bands] band envelopes 0..1
        self._env_out: np.ndarray | None = None
        self._t_env = 0
        self._t_onset: int | None = None
        self._t_drift: int | None = None
        self._beat_src = "none"
        self._beat_fired = 0  # last integer beat handled
        self._beat_pos = 0.0
        self._pending: list[float] = []  # target beat positions of quantised presses
        self._morph: tuple[dict[str, float], dict[str, float], float] | None = None
        self._morph_done = 0.0  # beats into the current morph
        self._morph_name = ""
        self._glide = False
        self._presses = dict.fromkeys(self._trigger_names, 0.0)  # press counts, for routes
        self._walk = {d.name: 0.0 for d in self.decks}  # routed walk speed, per deck
        self._t_emit: int | None = None
        # a switch to another seed morphs W+ from the deck's last frame to its new walk
        self._w_from: dict[str, torch.Tensor] = {}  # deck → [1, num_ws, w_dim] morph start
        self._last_p: dict[str, float] | None = None  # the last tick's parameter table
        self._want_model: dict[str, tuple[str, int | None]] = {}  # deck → (checkpoint, seed)
        self._routing_job = None  # live: a RoutingJob building the routes of built models
        for d in self.decks:
            d.reset()
        if self.matrix is not None:
            self.matrix.reset()

    # -- inputs (any thread) --------------------------------------------------------------
    def audio(self, block: np.ndarray, t_capture_ns: int) -> AudioFeatures:
        """Analyse one block (offline, tests) and queue its features; returns them."""
        if self.extractor is None:
            raise RuntimeError("this Show was built without a FeatureExtractor")
        f = self.extractor.process(block, t_capture_ns)
        self.features(f)
        return f

    def features(self, f: AudioFeatures) -> None:
        """Queue one block's analysis (the live audio thread publishes here)."""
        self._feats.put(f)

    def event(self, ev: ControlEvent) -> None:
        """Queue a control event; it is applied at ev.t_ns by the tick that covers it."""
        self._events.put(ev)

    def add_preset(self, name: str, preset) -> None:
        """Make a loaded preset known under `name`, its routes built (any thread: a live
        switcher calls this on its worker, so the tick does no loading)."""
        routing = None
        if self._routing_for is not None:
            routing = self._routing_for(preset, list(self.generators), self._seeds_for(preset))
        self._preset_cache[name] = (preset, routing, self._gens_version)

    def _seeds_for(self, preset) -> list[int]:
        """The seed each deck will play under `preset`: the one it names, else the deck's own
        (what a switch to it does); the routes' hold directions are measured there."""
        from vj.show.models import switch_specs

        specs = switch_specs(preset, len(self.decks))
        return [d.seed if s is None else s for d, (_, s) in zip(self.decks, specs, strict=True)]

    def preload(self, names: Iterable[str]) -> None:
        """Load presets ahead (a cue list's), so a cue does no file I/O on the tick; a broken
        one is reported in `errors` and fails again, reported, when its cue fires."""
        for name in names:
            if name in self._preset_cache or self._resolve is None:
                continue
            try:
                self.add_preset(name, self._resolve(name))
            except (ValueError, OSError) as exc:
                self.errors.append(f"preset {name!r}: {exc}")

    # -- the tick -------------------------------------------------------------------------
    @torch.no_grad()
    def frame(self, t_ns: int, decks: Collection[str] | None = None) -> ShowFrame:
        """The ShowFrame at t_ns, after every input stamped up to it. `decks`: names to emit
        DeckControls for (default all; a deck skipped this tick still moves its state)."""
        t_start = self._clock() if self._clock is not None else 0
        t_ns = int(t_ns)
        if self._t is None:
            self._t = self._t_env = self._t_drift = t_ns
            self._tp = dict.fromkeys(self._float_names, t_ns)
            self._beat_reset(t_ns)
        t_ns = max(t_ns, self._t)  # time never runs backwards
        feats = self._feats.take_until(t_ns)
        evs = self._events.take_until(t_ns)
        i = j = 0
        while i < len(feats) or j < len(evs):  # merge: features first at equal times
            if j >= len(evs) or (i < len(feats) and feats[i].t_capture_ns <= evs[j].t_ns):
                f = feats[i]
                i += 1
                self._advance(max(f.t_capture_ns, self._t))
                self._on_features(f)
            else:
                ev = evs[j]
                j += 1
                self._advance(max(ev.t_ns, self._t))
                self._on_event(ev)
        self._advance(t_ns)
        if self._want_model:
            self._models_ready(t_ns)
        fr = self._emit(t_ns, decks, t_start)
        self.index += 1
        return fr

    # -- continuous parts -----------------------------------------------------------------
    def _advance(self, t1: int) -> None:
        """Run time on to t1: beat boundaries on the way fire at their own times."""
        t0 = self._t
        if t1 <= t0:
            return
        st, src = self.arbiter.current(t1)
        if src != self._beat_src or st is None:
            self._morph_step((t1 - t0) / 1e9 * NO_TEMPO_BEATS_PER_S if st is None else 0.0)
            self._t = t1
            self._beat_reset(t1, st, src)
            return
        pos1 = st.beat_count + st.beat_phase
        pos0 = self._beat_pos
        b = self._beat_fired + 1
        n = 0
        while b <= pos1 + 1e-9 and n < MAX_BEATS_PER_STEP:
            # constant tempo within a segment: the boundary's time by linear interpolation
            frac = 1.0 if pos1 <= pos0 else min(max((b - pos0) / (pos1 - pos0), 0.0), 1.0)
            tb = t0 + int(round(frac * (t1 - t0)))
            self._morph_step(max(b - self._beat_pos, 0.0))
            self._beat_pos = max(self._beat_pos, float(b))
            self._t = max(self._t, tb)
            self._on_beat(b, self._t)
            b += 1
            n += 1
        self._beat_fired = max(self._beat_fired, math.floor(pos1 + 1e-9))
        self._morph_step(max(pos1 - self._beat_pos, 0.0))
        self._beat_pos = max(self._beat_pos, pos1)
        self._t = t1

    def _beat_reset(self, t: int, st: TempoState | None = None, src: str | None = None) -> None:
        """A new tempo source (or none): count beats from its current position, no beat fired."""
        if src is None:
            st, src = self.arbiter.current(t)
        self._beat_src = src
        if st is None:
            self._beat_pos, self._beat_fired = 0.0, 0
            if self._pending:  # nothing to wait for
                n, self._pending = len(self._pending), []
                self._land(n, t)
            return
        pos = st.beat_count + st.beat_phase
        self._beat_pos, self._beat_fired = pos, math.floor(pos + 1e-9)
        self._pending = [float(self._beat_fired + 1) for _ in self._pending]

    def _p(self, name: str, t: int) -> float:
        """Parameter `name` at time t: its target (morphed), smoothed by its spec's constant."""
        dt = t - self._tp[name]
        if dt > 0:
            self._tp[name] = t
            target = self._target_of(name)
            v, k = self._value[name], self._tau[name]
            if k <= 0.0 or v == target:
                self._value[name] = target
            else:
                self._value[name] = v + (target - v) * (1.0 - math.exp(-dt / 1e9 / k))
        return self._value[name]

    def _settle(self, t: int, everything: bool = False) -> None:
        """Every parameter run on to t (before a target changes, and for the frame's table).

        A parameter at rest (value == target, outside a morph) stays put, so only the moving
        ones are run unless `everything`: the callers about to change targets ask for that,
        so every time stamp is current before a new target applies.
        """
        if everything or self.reference:
            for n in self._float_names:
                self._p(n, t)
            self._moving.clear()
            for n in self._float_names:
                if self._value[n] != self._target_of(n):
                    self._moving.add(n)
            return
        m = self._morph
        if m is not None:
            for n in m[1]:
                self._p(n, t)
        if self._moving:
            rest = []
            for n in self._moving:
                if self._p(n, t) == self._target_of(n) and (m is None or n not in m[1]):
                    rest.append(n)
            self._moving.difference_update(rest)

    def _target_of(self, name: str) -> float:
        m = self._morph
        if m is None or name not in m[1]:
            return self._target[name]
        a, b, n = m
        x = min(self._morph_done / n, 1.0) if n > 0 else 1.0
        return self._specs[name].clamp(a[name] + (b[name] - a[name]) * x)

    def _morphed(self) -> dict[str, float]:
        return {n: self._target_of(n) for n in self._float_names}

    def _morph_step(self, beats: float) -> None:
        if self._morph is None or beats <= 0.0:
            return
        self._morph_done += beats
        n = self._morph[2]
        x = self._morph_done / n if n > 0 else 1.0
        if self._glide:
            for d in self.decks:
                d.glide(min(x, 1.0))
        if x >= 1.0 - 1e-9:
            self._finish_morph()

    def _finish_morph(self) -> None:
        assert self._morph is not None
        self._w_from.clear()  # the W+ morph of a seed change ends with it
        self._target.update(self._morph[1])
        self._moving.update(self._morph[1])
        self._morph = None
        self._glide = False
        for d in self.decks:
            d.glide(1.0)

    def _drift_to(self, t: int) -> None:
        dt = min((t - self._t_drift) / 1e9, MAX_DT_S)
        self._t_drift = t
        if dt > 0:
            rate = self._p("drift", t)
            walk = self._walk
            for d in self.decks:
                mod = self.mods.get(d.name)
                if mod is not None and mod.loop is not None:
                    continue  # a bank loop replaces this deck's W+: its walk holds until it ends
                d.drift(dt, max(rate + walk[d.name], 0.0))

    def _env_at(self, t: int, out: np.ndarray) -> None:
        """Band envelopes decayed from their last update to t, into `out`."""
        dt = (t - self._t_env) / 1e9
        rel = max(self._p("release", t), 1e-3)
        np.multiply(self._env, math.exp(-dt / rel) if dt > 0 else 1.0, out=out)

    # -- discrete things at their instants ------------------------------------------------
    def _on_features(self, f: AudioFeatures) -> None:
        t = max(f.t_capture_ns, self._t)
        self._features = f
        self.tracker.update(f)
        # band envelopes: instant attack, exponential release
        bands = np.asarray(f.bands, np.float32)
        if self._env is None or self._env.shape != bands.shape:
            self._env = np.zeros_like(bands)
            self._env_out = np.zeros_like(bands)
        else:
            self._env_at(t, self._env)
        self._t_env = t
        # fmax ignores a NaN band (the envelope keeps its value); env ≥ 0 floors negatives
        np.fmax(self._env, bands, out=self._env)
        np.minimum(self._env, 1.0, out=self._env)
        # onsets: each new one moves the decks a fraction of the way to a fresh keyframe
        if self._onsets_seen is None:
            self._onsets_seen = f.onset_count  # history before we started is not news
        new = f.onset_count - self._onsets_seen
        self._onsets_seen = f.onset_count
        if new > 0:
            self._t_onset = t
            frac = self._p("onset_jump", t) * self._p("intensity", t)
            if frac > 0.0:
                self._drift_to(t)
                for d in self.decks:
                    d.jump(frac, new)

    def _on_beat(self, beat: int, t: int) -> None:
        landed = sum(1 for b in self._pending if b <= beat + 1e-9)
        if landed:
            self._pending = [b for b in self._pending if b > beat + 1e-9]
            self._land(landed, t)
        frac = self._p("beat_jump", t) * self._p("intensity", t)
        if frac > 0.0:
            self._drift_to(t)
            for d in self.decks:
                d.jump(frac)

    def _land(self, n: int, t: int) -> None:
        self._drift_to(t)
        for d in self.decks:
            d.land(n)

    def _on_event(self, ev: ControlEvent) -> None:
        if self.log is not None:
            self.log.append(ev)
        t, name, value = max(ev.t_ns, self._t), ev.name, ev.value
        spec = self._specs.get(name)
        if spec is not None and spec.kind == "trigger":
            self._presses[name] += 1.0  # `press.NAME` route sources count these
        try:
            if spec is not None and spec.kind != "trigger":
                v = float(value)
                if not math.isfinite(v):
                    return
                self._p(name, t)  # smoothing runs toward the old target up to now
                self._target[name] = spec.clamp(v)
                self._moving.add(name)
                if self._morph is not None:  # the player's move wins over the morph
                    self._morph[1].pop(name, None)
            elif name == "next_keyframe":
                self._press(t)
            elif name == "tap":
                self.tap.tap(t)
            elif name == "downbeat":  # tap and tracker both: the one they agree on
                tapped = self.tap.downbeat(t)
                if not self.tracker.downbeat(t) and not tapped:
                    self.errors.append(f"downbeat from {ev.source}: no tempo yet, ignored")
            elif name == "fx_next":
                self._cycle_effect()
            elif name == "effect":
                self._set_effect(str(value))
            elif name == "preset":
                self._start_morph(str(value), self._p("morph_beats", t), t)
            elif name in CUE_ACTIONS or name in CUE_TRIGGERS:
                cue = self.cues.act(CUE_TRIGGERS.get(name, name), value)
                if cue is not None:
                    self._start_morph(cue.preset, cue.morph_beats, t, cue.keyframe)
            elif name in ("tempo", "tempo.beat", "tempo.stop"):
                self._tempo_event(ev, t)
            elif spec is None:
                self.errors.append(f"event {name!r} from {ev.source}: unknown name, ignored")
        except (TypeError, ValueError, KeyError, OSError) as exc:  # e.g. a broken preset file
            self.errors.append(f"event {name!r} from {ev.source}: {exc}")

    def _press(self, t: int) -> None:
        st, _ = self.arbiter.current(t)
        if self._p("quantize", t) < 0.5 or st is None:
            self._land(1, t)
            return
        pos = st.beat_count + st.beat_phase
        prev = math.floor(pos + 1e-9)
        if pos - prev <= QUANTIZE_GRACE_BEATS:
            self._land(1, t)
        else:
            self._pending.append(float(prev + 1))

    def _tempo_event(self, ev: ControlEvent, t: int) -> None:
        src = self.link if _TEMPO_EVENT_SOURCES.get(ev.source) == "link" else self.midi_clock
        if ev.name == "tempo.stop":
            src.stop()
        elif ev.name == "tempo":
            src.set(t, bpm=float(ev.value))
        else:
            src.set(t, beat=float(ev.value))

    def _cycle_effect(self) -> None:
        names = self._effects
        if not names:
            return
        cur = self.effect
        i = names.index(cur) if cur in names else -1
        self._set_effect(names[(i + 1) % len(names)])

    @property
    def effect(self) -> str | None:
        """The master chain's first effect (None: an empty master chain)."""
        master = self._chains["master"]
        return master[0] if master else None

    def _set_effect(self, name: str) -> None:
        """`effect` events and fx_next change the master chain's first slot (a new dict: the
        frames already emitted keep theirs)."""
        self._chains = {**self._chains, "master": (name, *self._chains["master"][1:])}

    def _start_morph(self, name: str, beats: float, t: int, keyframe: int | None = None) -> None:
        if name not in self._preset_cache:
            if self._resolve is None:
                raise ValueError(f"preset {name!r}: this show cannot load presets")
            self.add_preset(name, self._resolve(name))
        preset, routing, version = self._preset_cache[name]
        # a seed change's W+ morph in progress goes on from where it is now
        now = {d.name: self._ws_now(d, t) for d in self.decks if d.name in self._w_from}
        if self._morph is not None:
            self._finish_morph_at(t)
        self._settle(t, everything=True)
        self._current = preset
        if self._switch_decks(preset, beats, t, now) or version != self._gens_version:
            routing = self._rebuild_routing(name)
        if routing is not None:  # the new preset's routes take over at once (a cut)
            self.matrix, self.mods = routing
            self.matrix.reset()
        params = getattr(preset, "params", {})
        to = {n: s.clamp(params.get(n, s.default)) for n, s in self._items()}
        if hasattr(preset, "effect") or hasattr(preset, "effects"):
            self._chains = effect_chains(
                getattr(preset, "effect", self.effect), getattr(preset, "effects", None)
            )
        self.preset = getattr(preset, "name", name)
        if keyframe is not None:
            self._drift_to(t)
            for d in self.decks:
                d.glide_to(keyframe)
            self._glide = True
        if beats <= 0.0:
            self._target.update(to)
            self._moving.update(to)
            self._glide = False
            for d in self.decks:
                d.glide(1.0)
            return
        self._morph = (dict(self._morphed()), to, float(beats))
        self._morph_done = 0.0

    # -- decks a switch changes --------------------------------------------------------------
    def _switch_decks(self, preset, beats: float, t: int, now: dict) -> bool:
        """Seeds and models the new preset names: a new seed morphs W+ over the switch's beats
        from the deck's W+ now; a new model is asked of `models` and swapped in when built
        (at once offline). `now`: the W+ of decks whose earlier morph was running. True when a
        deck's model changed now."""
        from vj.show.models import switch_specs

        self._w_from.clear()
        swapped = False
        for i, (ckpt, seed) in enumerate(switch_specs(preset, len(self.decks))):
            d = self.decks[i]
            if ckpt is not None and ckpt != d.model:
                self._want_model[d.name] = (ckpt, seed)
                if self.models is None:
                    self.errors.append(f"deck {d.name}: this show cannot change models")
                    del self._want_model[d.name]
                    continue
                self.models.request(d.name, ckpt)
                if not self._routes_in_background():  # live: the next ticks swap it in
                    swapped |= self._swap_model(i, t)
                continue
            self._want_model.pop(d.name, None)  # the newer switch wins over a pending model
            last = now.get(d.name)
            if seed is not None and seed != d.seed:
                last = self._ws_now(d, t) if last is None else last
                self._drift_to(t)
                self.decks[i] = d.reseeded(seed)
            if beats > 0.0 and last is not None:
                self._w_from[d.name] = last
        return swapped

    def _swap_model(self, i: int, t: int) -> bool:
        """Deck i onto its wanted model if the bank has built it (a cut: W+ of two networks do
        not blend). False while it is being built: the deck plays on."""
        d = self.decks[i]
        want = self._want_model.get(d.name)
        if want is None or self.models is None:
            return False
        ckpt, seed = want
        got = self.models.ready(d.name, ckpt)
        if got is None:
            if self.models.failed(d.name, ckpt):  # the bank reports why; the old one plays on
                del self._want_model[d.name]
            return False
        G, _engine, proto = got
        self._drift_to(t)
        seed = d.seed if seed is None else seed
        if proto is not None:
            new = proto.reseeded(seed)
        else:
            from vj.show.decks import Deck

            new = Deck(d.name, G, seed, ckpt)
        new.reference = self._reference
        self.decks[i] = new
        self.generators[i] = G
        self._gens_version += 1
        del self._want_model[d.name]
        self._w_from.pop(d.name, None)
        return True

    def _rebuild_routing(self, name: str | None = None):
        """The playing preset's routes for the decks' current models (cached under `name`)."""
        if self._routing_for is None or self._current is None:
            return None
        seeds = [d.seed for d in self.decks]  # the switch has set them
        routing = self._routing_for(self._current, list(self.generators), seeds)
        if name is not None:
            self._preset_cache[name] = (self._current, routing, self._gens_version)
        return routing

    def _routes_in_background(self) -> bool:
        """Live: models are built on workers, and so are the routes for them."""
        return self.models is not None and self.models.background and self._routing_for is not None

    def _models_ready(self, t: int) -> None:
        """Models built since the switch that asked for them take over at this tick (live)."""
        if self._routes_in_background():
            self._models_ready_background(t)
            return
        swapped = False
        for i, d in enumerate(self.decks):
            if d.name in self._want_model:
                swapped |= self._swap_model(i, t)
        if swapped:
            routing = self._rebuild_routing()
            if routing is not None:
                self.matrix, self.mods = routing
                self.matrix.reset()

    def _models_ready_background(self, t: int) -> None:
        """Live: built models start a RoutingJob; when it is done (a later tick), the decks
        swap and their routes take over in the same tick. Nothing heavy runs on the tick."""
        from vj.show.models import RoutingJob

        job = self._routing_job
        if job is not None:
            if not job.done():
                return
            self._routing_job = None
            current = job.preset is self._current and all(
                self._want_model.get(self.decks[i].name, ("",))[0] == ckpt
                for i, ckpt in job.swaps.items()
            )
            if current and job.error is not None:
                self.errors.append(job.error)
                for i in job.swaps:  # the old models play on
                    self._want_model.pop(self.decks[i].name, None)
                return
            if current:
                for i in job.swaps:
                    self._swap_model(i, t)
                routing = job.routing
                if not all(a is b for a, b in zip(self.generators, job.gens, strict=True)):
                    routing = self._rebuild_routing()  # another deck changed meanwhile (rare)
                if routing is not None:
                    self.matrix, self.mods = routing
                    self.matrix.reset()
                return
            # a newer switch asked for something else: start over for what is wanted now
        gens, swaps = list(self.generators), {}
        for i, d in enumerate(self.decks):
            want = self._want_model.get(d.name)
            if want is None:
                continue
            got = self.models.ready(d.name, want[0])
            if got is None:
                if self.models.failed(d.name, want[0]):  # the bank reports why
                    del self._want_model[d.name]
                continue
            gens[i], swaps[i] = got[0], want[0]
        if swaps and self._current is not None:
            seeds = [want[1] if (want := self._want_model.get(d.name)) and want[1] is not None
                     else d.seed for d in self.decks]  # fmt: skip
            self._routing_job = RoutingJob(self._routing_for, self._current, gens, swaps, seeds)

    def _finish_morph_at(self, t: int) -> None:
        """A new morph interrupts the running one: continue from where it is now."""
        assert self._morph is not None
        self._settle(t, everything=True)
        self._target.update(self._morphed())
        self._moving.update(self._morph[1])
        self._morph = None
        self._glide = False

    # -- output ---------------------------------------------------------------------------
    def tempo_at(self, t: int) -> TempoView:
        st, src = self.arbiter.current(t)
        if st is None:
            return TempoView(source=src)
        bpb = st.beats_per_bar
        return TempoView(
            st.bpm, st.beat_count + st.beat_phase, (st.bar_position / bpb) % 1.0, bpb, src
        )

    def _route(self, t: int, p: dict[str, float], tempo: TempoView):
        """Run the routing matrix for this tick: compositor offsets go into `p` (clamped to
        each spec), due jumps move the decks now, walk speeds join the drift."""
        if self.matrix is None:
            return None
        from vj.show.routes import Inputs

        dt = 0.0 if self._t_emit is None else (t - self._t_emit) / 1e9
        self._t_emit = t
        outs = self.matrix.process(Inputs(self._features, tempo, {**p, **self._presses}), dt)
        for name, off in outs.params.items():
            spec = self._specs.get(name)
            if spec is None:  # an effect parameter the registry does not hold: offset alone
                p[name] = p.get(name, 0.0) + off
            elif off:
                p[name] = spec.clamp(p[name] + off)
        for d in self.decks:
            o = outs.decks.get(d.name)
            if o is None:
                continue
            due = self.mods[d.name].tick(o, tempo, dt)
            if due:
                self._drift_to(t)
                for frac in due:
                    d.jump(frac)
            self._walk[d.name] = o.walk_speed
        return outs

    def _emit(self, t: int, names: Collection[str] | None, t_start: int) -> ShowFrame:
        self._settle(t)
        p = dict(self._value)  # one copy per frame: the frame's immutable parameter table
        tempo = self.tempo_at(t)
        outs = self._route(t, p, tempo)
        self._drift_to(t)
        env = None
        if self._env is not None:
            self._env_at(t, self._env_out)
            env = self._env_out
        out: list[DeckControls] = []
        for d in self.decks:
            if names is not None and d.name not in names:
                continue
            o = outs.decks.get(d.name) if outs is not None else None
            out.append(self._deck_out(d, p, env, o, tempo))
        self._last_p = p
        out = _style_mix(out, int(p.get("style_mix", 0)))
        basis = DisplayBasis(
            p["zoom"], p["fx_amount"], p["lfo_zoom"], p["lfo_fx"], p["lfo_beats"], self._t_onset
        )
        f = self._features
        probe = 0.0
        if self.probe:  # the profiler's marker: this frame's onset count as a grey level
            from vj.profile.probe import level

            probe = level(f.onset_count) / 255.0
        comp = compositor_controls(p, basis, tempo, t, self._chains, f, probe)
        stamps = {}
        if self._clock is not None:
            stamps = {
                "capture": f.t_capture_ns,
                "features": f.t_publish_ns,
                "show_start": t_start,
                "show_end": self._clock(),
            }
        return ShowFrame(
            index=self.index,
            t_ns=t,
            features=f,
            tempo=tempo,
            decks=tuple(out),
            compositor=comp,
            preset=self.preset,
            cue=self.cues.cursor if len(self.cues) else None,
            stamps=stamps,
            display=basis,
            morph=1.0 if self._morph is None else min(self._morph_done / self._morph[2], 1.0),
        )

    def _deck_out(self, d: Deck, p, env, o, tempo: TempoView) -> DeckControls:
        """One deck's DeckControls for the parameter table `p` (routes applied), its route
        outputs `o`: the walk, the routes, a seed change's W+ morph (before style mixing)."""
        psi = p["truncation"] + (o.truncation if o is not None else 0.0)
        mod = self.mods.get(d.name) if o is not None else None
        if self._reference:
            c = d.controls_reference(psi, env, p["band_push"], p["noise_push"], p["intensity"])
            if mod is not None:
                c = mod.apply_reference(c, o, tempo)
        else:
            walk = mod is None or getattr(mod, "loop", None) is None  # a loop replaces W+
            if (
                d.device.type == "cpu"
                and not d.reference
                and (mod is None or mod.device.type == "cpu")
            ):
                # numpy from the walk through the routes, one DeckControls at the end
                ws, noise = d.controls_np(
                    psi, env, p["band_push"], p["noise_push"], p["intensity"], walk
                )
                masks, bends = None, ()
                if mod is not None:
                    ws, noise, masks, bends = mod.apply_np(ws, noise, o, tempo, d.avg_rows_np)
                c = d.wrap(ws, noise, noise_masks=masks, bends=bends)
            else:
                c = d.controls(psi, env, p["band_push"], p["noise_push"], p["intensity"], walk)
                if mod is not None:
                    c = mod.apply(c, o, tempo)
        wf = self._w_from.get(d.name)
        if wf is not None and wf.shape == c.ws.shape and self._morph is not None:
            x = min(self._morph_done / self._morph[2], 1.0) if self._morph[2] > 0 else 1.0
            s = x * x * (3.0 - 2.0 * x)  # smoothstep: no kink at either end
            c = replace(c, ws=torch.lerp(wf, c.ws, s))
        return c

    def _ws_now(self, d: Deck, t: int) -> torch.Tensor | None:
        """Deck d's W+ at t as its next frame would show it (the last tick's parameters and
        route outputs): where a seed change's morph starts. None before the first tick."""
        p = self._last_p
        if p is None:
            return None
        env = None
        if self._env is not None:
            env = np.empty_like(self._env)
            self._env_at(t, env)
        o = self.matrix.outputs.decks.get(d.name) if self.matrix is not None else None
        return self._deck_out(d, p, env, o, self.tempo_at(t)).ws

    def drain_errors(self) -> list[str]:
        out = list(self.errors)
        self.errors.clear()
        if self.models is not None:  # a checkpoint a switch asked for that did not load
            out += self.models.drain_errors()
        return out


def _style_mix(decks: list[DeckControls], layer: int) -> list[DeckControls]:
    """Style mixing across decks: deck B's layers below `layer` (coarse) come from deck A."""
    if layer <= 0 or len(decks) < 2:
        return decks
    a, b = decks[0], decks[1]
    if a.ws.shape != b.ws.shape or a.ws.device != b.ws.device:
        return decks  # different architectures: nothing to mix (documented)
    k = min(layer, b.ws.shape[1])
    ws = torch.cat((a.ws[:, :k], b.ws[:, k:]), dim=1)
    mixed = replace(b, ws=ws)
    return [a, mixed, *decks[2:]]
