"""A preset switch changes the decks' seeds (a W+ morph over the switch's beats) and models
(a new engine: built at once offline, off the render thread live) — the same in both drivers."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from tests.test_engine_nets import small_generator
from tests.test_show_core import assert_frames_equal
from vj.audio.source import demo_track
from vj.params import default_registry
from vj.show.frame import ControlEvent

S = 1_000_000_000
SR = 48000
FPS = 15
# still decks: nothing moves W+ but the switch itself
STILL = "params: {drift: 0.0, onset_jump: 0.0, beat_jump: 0.0, band_push: 0.0}\n"


@pytest.fixture(scope="module")
def G():
    return small_generator(seed=0)


def _write(tmp_path, name, body):
    (tmp_path / f"{name}.yaml").write_text(f"name: {name}\n{body}")
    return tmp_path / f"{name}.yaml"


def _still_show(G, tmp_path, seed: int, morph_beats: float):
    from vj.preset import apply_preset, load_preset
    from vj.show.wiring import build_show, deck_specs, preset_resolver

    reg = default_registry()
    start = load_preset(_write(tmp_path, f"start{seed}", f"seed: {seed}\n{STILL}"), reg)
    apply_preset(start, reg)
    reg.set("morph_beats", morph_beats)
    _write(tmp_path, "nine", f"seed: 9\n{STILL}")
    return build_show(
        start, reg, [G], deck_specs(start), resolve_preset=preset_resolver(tmp_path, reg)
    )


def test_a_seed_switch_morphs_w_over_its_beats(G, tmp_path):
    show = _still_show(G, tmp_path, 3, morph_beats=4.0)  # no tempo: 4 beats = 2 s
    target = _still_show(G, tmp_path, 9, morph_beats=4.0)  # where the morph must arrive
    w9 = target.frame(0).decks[0].ws
    frames = [show.frame(0)]
    w3 = frames[0].decks[0].ws
    show.event(ControlEvent(S, "osc", "preset", "nine"))
    for i in range(1, 4 * FPS):
        frames.append(show.frame(i * S // FPS))
    ws = [f.decks[0].ws for f in frames]
    span = (w9 - w3).norm()
    assert span > 1.0  # two seeds really are far apart in W
    before = [w for f, w in zip(frames, ws, strict=True) if f.t_ns <= S]
    assert all(torch.equal(w, w3) for w in before)
    t_end = S + 2 * S  # the morph's 4 beats at the no-tempo 120 BPM
    during = [w for f, w in zip(frames, ws, strict=True) if S < f.t_ns < t_end]
    after = [w for f, w in zip(frames, ws, strict=True) if f.t_ns >= t_end]
    assert len(during) >= 25 and after
    for w in after:
        torch.testing.assert_close(w, w9, atol=1e-5, rtol=1e-5)
    # smooth: from W(seed 3) toward W(seed 9), no step more than a small part of the way
    path = [w3, *during, w9]
    dist = [float((w - w3).norm()) for w in path]
    assert all(b >= a - 1e-6 for a, b in zip(dist, dist[1:], strict=False))
    steps = [float((b - a).norm()) for a, b in zip(path, path[1:], strict=False)]
    assert max(steps) < 0.1 * float(span)
    assert show.decks[0].seed == 9 and frames[-1].morph == 1.0


def test_a_seed_switch_with_no_morph_is_a_cut(G, tmp_path):
    show = _still_show(G, tmp_path, 3, morph_beats=0.0)
    w9 = _still_show(G, tmp_path, 9, morph_beats=0.0).frame(0).decks[0].ws
    show.frame(0)
    show.event(ControlEvent(S // 2, "osc", "preset", "nine"))
    torch.testing.assert_close(show.frame(S).decks[0].ws, w9, atol=1e-5, rtol=1e-5)


def test_a_preset_without_a_seed_keeps_the_decks(G, tmp_path):
    show = _still_show(G, tmp_path, 3, morph_beats=0.0)
    _write(tmp_path, "plain", STILL)
    w3 = show.frame(0).decks[0].ws
    show.event(ControlEvent(S // 2, "osc", "preset", "plain"))
    assert torch.equal(show.frame(S).decks[0].ws, w3) and show.decks[0].seed == 3


# -- a checkpoint change -----------------------------------------------------------------
@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    from vj.gan.checkpoint import save_generator

    d = tmp_path_factory.mktemp("ckpt")
    save_generator(small_generator(0), d / "a.safetensors")
    save_generator(small_generator(5, resolution=16), d / "b.safetensors")  # another geometry
    return d


def _switch_presets(tmp_path, ckpt):
    start = _write(
        tmp_path, "start", f"seed: 3\ngenerator: {{checkpoint: {ckpt / 'a.safetensors'}}}\n"
    )
    _write(tmp_path, "other", f"decks:\n  A: {{checkpoint: {ckpt / 'b.safetensors'}, seed: 4}}\n")
    _write(tmp_path, "back", f"decks:\n  A: {{checkpoint: {ckpt / 'a.safetensors'}, seed: 7}}\n")
    return start


def _switch_events():
    return [
        ControlEvent(int(0.7 * S), "osc", "preset", "other"),
        ControlEvent(int(1.9 * S), "osc", "preset", "back"),
    ]


def test_a_checkpoint_switch_is_the_same_offline_and_live(checkpoints, tmp_path):
    from vj.live import AudioInput, LiveApp, LiveOptions
    from vj.offline import OfflineShow, RenderJob, build_offline
    from vj.preset import apply_preset, load_preset
    from vj.show.wiring import engine_for

    start = _switch_presets(tmp_path, checkpoints)
    audio = demo_track(SR, seconds=2.5, bpm=124.0)
    events = _switch_events()
    n = int(2.5 * FPS)

    reg = default_registry()
    preset = load_preset(start, reg)
    apply_preset(preset, reg)
    reg.set("morph_beats", 2.0)
    job = RenderJob(
        audio=audio, sample_rate=SR, out=tmp_path / "x.mp4", fps=FPS, events=tuple(events),
        preset=preset, seed=None, checkpoint=None,
    )  # fmt: skip
    show, engines = build_offline(job, reg)
    off = OfflineShow(show, job)
    offline = [off.tick(i) for i in range(n)]
    models = [f.decks[0].model for f in offline]
    a, b = str(checkpoints / "a.safetensors"), str(checkpoints / "b.safetensors")
    assert models[0] == a and b in models and models[-1] == a
    switched = next(f for f in offline if f.decks[0].model == b)
    assert (
        switched.t_ns >= int(0.7 * S)
        and switched.decks[0].ws.shape[1] != offline[0].decks[0].ws.shape[1]
    )
    # the frame renders on the new model's engine, at its resolution
    pic = engine_for(engines, switched.decks[0], show.models).render(switched.decks[0])
    assert pic.rgba.shape[:2] == (16, 16)
    assert show.decks[0].seed == 7 and not show.drain_errors()

    now = [0]
    reg2 = default_registry()
    preset2 = load_preset(start, reg2)
    apply_preset(preset2, reg2)
    reg2.set("morph_beats", 2.0)
    reg2.set("hud", 0.0)  # what the offline job sets (no HUD, no crossfade)
    reg2.set("crossfade", 0.0)
    app = LiveApp(
        reg2, AudioInput(lambda on_block: None, None),
        LiveOptions(headless=True, gen_threads=None, decks_every=(1,), seed=None,
                    checkpoint=None, models_background=False),
        preset=preset2, clock=lambda: now[0],
    )  # fmt: skip
    blk, fed, pending = 256, 0, list(events)
    live = []
    for i in range(n):
        t = (i * S) // FPS
        while fed + blk <= (t * SR) // S:
            end = fed + blk
            now[0] = (end * S) // SR
            app.audio._on_block(audio[fed:end], now[0])
            fed = end
        while pending and pending[0].t_ns <= t:
            ev = pending.pop(0)
            now[0] = ev.t_ns
            app.show.event(ev)  # what the CLI's preset switcher sends
        now[0] = t
        live.append(app.gen.tick().show)
    app.bridge.close()
    for x, y in zip(offline, live, strict=True):
        assert_frames_equal(x, y)
        assert x.decks[0].model == y.decks[0].model


def test_live_keeps_the_old_model_until_the_new_one_is_built(G, tmp_path):
    from vj.show.models import ModelBank
    from vj.show.wiring import build_show, preset_resolver

    G2 = small_generator(5, resolution=16)
    gate = threading.Event()

    def build(ckpt):
        assert gate.wait(30)
        return G2, "engine-b"

    bank = ModelBank(build, {("A", "default"): (G, "engine-a")}, background=True)
    reg = default_registry()
    reg.set("morph_beats", 0.0)
    _write(tmp_path, "other", "decks:\n  A: {checkpoint: b.safetensors}\n")

    class Start:
        name, path, seed, effect, cues = "start", None, 3, "default", ()

    show = build_show(Start, reg, [G], resolve_preset=preset_resolver(tmp_path, reg), models=bank)
    show.frame(0)
    show.event(ControlEvent(S // 10, "osc", "preset", "other"))
    for i in range(1, 6):
        fr = show.frame(i * S // 10)
        assert fr.decks[0].model == "default" and fr.preset == "other"  # params switched
    # the routes for the new model are built on a worker too: record where they are built
    tick_thread = threading.current_thread()
    built_on, real = [], show._routing_for

    def routing_for(p, gens=None, seeds=None):
        built_on.append(threading.current_thread())
        return real(p, gens, seeds)

    show._routing_for = routing_for
    gate.set()
    want = str(tmp_path / "b.safetensors")
    for i in range(600):  # tick on until the deck has swapped (the model, then its routes)
        fr = show.frame(S + i * S // 100)
        if fr.decks[0].model == want:
            break
        threading.Event().wait(0.05)
    assert fr.decks[0].model == want and fr.decks[0].ws.shape[1] == G2.num_ws
    assert bank.engine("A", want) == "engine-b"
    assert built_on and all(t is not tick_thread for t in built_on)  # never on the tick
    assert show.mods["A"].layers.num_ws == G2.num_ws  # the routes are the new model's


def test_a_checkpoint_that_does_not_load_is_reported_and_the_deck_plays_on(G, tmp_path):
    from vj.show.models import ModelBank
    from vj.show.wiring import build_show, load_generator, preset_resolver

    bank = ModelBank(lambda c: (load_generator(c), None), {("A", "default"): (G, None)})
    reg = default_registry()
    reg.set("morph_beats", 0.0)
    _write(tmp_path, "broken", "decks:\n  A: {checkpoint: missing.safetensors}\n")

    class Start:
        name, path, seed, effect, cues = "start", None, 3, "default", ()

    show = build_show(Start, reg, [G], resolve_preset=preset_resolver(tmp_path, reg), models=bank)
    w = show.frame(0).decks[0].ws
    show.event(ControlEvent(S // 10, "osc", "preset", "broken"))
    fr = show.frame(S // 5)
    errs = show.drain_errors()
    assert fr.decks[0].model == "default" and fr.decks[0].ws.shape == w.shape
    assert len(errs) == 1 and "missing.safetensors" in errs[0] and "deck A" in errs[0]
    assert np.isfinite(fr.decks[0].ws.numpy()).all()


def test_engine_for_keeps_the_drivers_first_engines_and_restarts_rebuild_the_others():
    from vj.show.frame import DeckControls
    from vj.show.models import ModelBank
    from vj.show.wiring import engine_for

    G2 = small_generator(5, resolution=16)
    bank = ModelBank(lambda c: (G2, f"engine-{c}"), {("A", "a.pt"): (None, "bank-a")})
    bank.request("A", "b.pt")
    first = ["driver-a"]  # the driver's own engine (its supervisor rebuilds it)
    ws, ns = torch.zeros(1, 2, 2), torch.ones(1)
    assert engine_for(first, DeckControls("A", ws, ns, model="a.pt"), bank) == "driver-a"
    assert engine_for(first, DeckControls("A", ws, ns, model="b.pt"), bank) == "engine-b.pt"
    assert engine_for(first, DeckControls("A", ws, ns, model="b.pt"), None) == "driver-a"
    bank.rebuild_engines(lambda g: f"fresh-{g.num_ws}")
    assert bank.engine("A", "b.pt") == f"fresh-{G2.num_ws}" and bank.engine("A", "a.pt") == "bank-a"
    assert not bank.drain_errors()


def test_the_hud_names_the_engine_a_swapped_deck_renders_on(G):
    from vj.gan.engine import Engine
    from vj.show.decks import Deck
    from vj.show.models import ModelBank, engine_label

    G2 = small_generator(5, resolution=16)
    bank = ModelBank(lambda c: (G2, Engine(G2, device="cpu", dtype="fp32")),
                     {("A", "default"): (G, "first")})  # fmt: skip
    first = Deck("A", G, 0, "default")
    assert engine_label("torch cpu fp32", first, bank) == "torch cpu fp32"
    assert engine_label("torch cpu fp32", first, None) == "torch cpu fp32"
    bank.request("A", "/sets/night/b.safetensors")  # offline bank: built at once
    swapped = Deck("A", G2, 0, "/sets/night/b.safetensors")
    label = engine_label("torch cpu fp32", swapped, bank)
    assert label.endswith("(b.safetensors)") and label.startswith("torch cpu")
    missing = Deck("A", G2, 0, "never-built.pt")
    assert engine_label("torch cpu fp32", missing, bank) == "torch cpu fp32"
