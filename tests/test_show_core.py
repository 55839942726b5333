"""The Show: live and offline drivers give identical frames; events at their own times; taps,
quantised presses and preset morphs on the beat; renders repeat exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.test_engine_nets import small_generator
from vj.audio.source import demo_track
from vj.params import default_registry
from vj.show.frame import ControlEvent, ShowFrame
from vj.show.wiring import build_show, preset_resolver

S = 1_000_000_000
MS = 1_000_000
SR = 48000
FPS = 15


@pytest.fixture(scope="module")
def G():
    return small_generator(seed=0)


class _Preset:
    name, path, seed, effect, cues = "default", None, 3, "default", ()


def _show(G, registry=None, **kw):
    return build_show(_Preset, registry or default_registry(), [G], **kw)


def assert_frames_equal(a: ShowFrame, b: ShowFrame) -> None:
    """Field by field; stamps (wall-clock, profiler only) and t_publish_ns are not the show."""
    assert (a.index, a.t_ns, a.tempo, a.preset, a.cue, a.morph) == (
        b.index,
        b.t_ns,
        b.tempo,
        b.preset,
        b.cue,
        b.morph,
    )
    fa, fb = a.features._replace(t_publish_ns=0), b.features._replace(t_publish_ns=0)
    assert np.array_equal(fa.bands, fb.bands)
    assert fa._replace(bands=None) == fb._replace(bands=None)
    assert len(a.decks) == len(b.decks)
    for da, db in zip(a.decks, b.decks, strict=True):
        assert da.deck == db.deck and da.keyframe_index == db.keyframe_index
        assert torch.equal(da.ws, db.ws) and torch.equal(da.noise_strength, db.noise_strength)
    assert a.compositor == b.compositor
    assert a.display == b.display


def _taps(t0_s: float, n: int = 4, period_s: float = 0.5, source: str = "key"):
    return [ControlEvent(int((t0_s + i * period_s) * S), source, "tap") for i in range(n)]


# -- live and offline are the same code ------------------------------------------------------
def _session_events(tmp_path):
    (tmp_path / "other.yaml").write_text("name: other\nparams:\n  onset_jump: 1.0\n  zoom: 1.5\n")
    evs = _taps(0.2)  # 120 BPM from the taps
    evs += [
        ControlEvent(int(1.31 * S), "key", "next_keyframe"),  # quantised: lands on a beat
        ControlEvent(int(1.32 * S), "key", "next_keyframe"),  # two in one frame: both count
        ControlEvent(int(1.45 * S), "midi", "fx_amount", 0.8),
        ControlEvent(int(1.52 * S), "preset", "preset", "other"),
        ControlEvent(int(2.10 * S), "osc", "lfo_zoom", 1.0),
    ]
    return sorted(evs, key=lambda e: e.t_ns)


def test_live_driver_on_a_virtual_clock_equals_offline(G, tmp_path):
    from vj.live import AudioInput, LiveApp, LiveOptions
    from vj.offline import OfflineShow, RenderJob

    audio = demo_track(SR, seconds=3.0, bpm=124.0)
    events = _session_events(tmp_path)
    n = 3 * FPS

    # offline: virtual clock + the event log
    reg = default_registry()
    job = RenderJob(
        audio=audio, sample_rate=SR, out=tmp_path / "x.mp4", fps=FPS, events=tuple(events)
    )
    off = OfflineShow(
        build_show(_Preset, reg, [G], resolve_preset=preset_resolver(tmp_path, reg)), job
    )
    offline = [off.tick(i) for i in range(n)]

    # live: the real audio callback path, the registry bridge and the generator thread's tick,
    # on a virtual clock that the test moves
    now = [0]
    reg2 = default_registry()
    app = LiveApp(
        reg2,
        AudioInput(lambda on_block: None, None),
        LiveOptions(headless=True, gen_threads=None, decks_every=(1,), seed=3),
        G=G,
        preset=_Preset,
        clock=lambda: now[0],
    )
    app.show._resolve = preset_resolver(tmp_path, reg2)
    blk, fed, pending = 256, 0, list(events)
    live = []
    for i in range(n):
        t = (i * S) // FPS
        while fed + blk <= (t * SR) // S:  # blocks the audio thread would have delivered
            end = fed + blk
            now[0] = (end * S) // SR
            app.audio._on_block(audio[fed:end], now[0])
            fed = end
        while pending and pending[0].t_ns <= t:  # controllers write the registry at their time
            ev = pending.pop(0)
            now[0] = ev.t_ns
            if ev.name == "preset":
                app.show.event(ev)  # what the CLI's preset switcher sends
            elif reg2.spec(ev.name).kind == "trigger":
                reg2.trigger(ev.name, ev.source)
            else:
                reg2.set(ev.name, ev.value, ev.source)
        now[0] = t
        live.append(app.gen.tick().show)
    app.bridge.close()

    assert offline[-1].preset == "other" and offline[-1].tempo.source == "tap"
    assert offline[-1].features.onset_count > 3
    for a, b in zip(offline, live, strict=True):
        assert_frames_equal(a, b)
    assert live[-1].stamps["show_start"] == (n - 1) * S // FPS  # the virtual clock stamps


# -- events at their own times -------------------------------------------------------------
def test_taps_with_one_stamp_are_one_tap(G):
    show = _show(G)
    show.frame(0)
    for t in (S, S, 1_500 * MS):  # two controllers sent the first tap at the same instant
        show.event(ControlEvent(t, "key", "tap"))
    assert show.frame(1_600 * MS).tempo.bpm == pytest.approx(120.0)


def test_two_taps_inside_one_frame_both_count(G):
    show = _show(G)
    show.frame(0)
    # 10 fps display: both taps fall between the frames at 1.0 s and 1.1 s
    show.event(ControlEvent(1_010 * MS, "key", "tap"))
    show.event(ControlEvent(1_090 * MS, "key", "tap"))
    show.frame(S)
    fr = show.frame(1_100 * MS)
    assert fr.tempo.source == "tap"
    assert fr.tempo.bpm == pytest.approx(60 / 0.08)  # the interval between the two taps
    # the second tap is beat one: at 1.1 s the beat has run on 10 ms / 80 ms
    assert fr.tempo.beat % 1.0 == pytest.approx(0.125, abs=1e-6)


def test_two_presses_inside_one_frame_both_count(G):
    reg = default_registry()
    reg.set("quantize", 0.0)
    show = _show(G, reg)
    show.frame(0)
    show.event(ControlEvent(20 * MS, "midi", "next_keyframe"))
    show.event(ControlEvent(30 * MS, "key", "next_keyframe"))
    assert show.frame(66 * MS).decks[0].keyframe_index == 2


def test_param_event_applies_at_its_time_with_smoothing(G):
    reg = default_registry()
    show = _show(G, reg)
    tau = reg.spec("fx_amount").smoothing
    show.frame(0)
    show.event(ControlEvent(50 * MS, "midi", "fx_amount", 1.0))
    fr = show.frame(100 * MS)  # 50 ms after the move, smoothed with the spec's time constant
    start = reg.get("fx_amount")
    want = 1.0 + (start - 1.0) * np.exp(-0.05 / tau)
    assert fr.compositor.params["fx_amount"] == pytest.approx(want, rel=1e-9)


def test_quantised_jumps_land_on_beat_boundaries(G):
    show = _show(G)  # quantize is on by default
    for ev in _taps(0.0):  # beats every 0.5 s: ..., 2.5, 3.0 s
        show.event(ev)
    show.frame(0)
    show.event(ControlEvent(2_200 * MS, "key", "next_keyframe"))  # mid-beat: waits
    show.event(ControlEvent(2_730 * MS, "key", "next_keyframe"))  # mid-beat: waits for 3.0
    ks = {}
    for t_ms in (2_210, 2_499, 2_500, 2_740, 2_999, 3_000, 3_040):
        ks[t_ms] = show.frame(t_ms * MS).decks[0].keyframe_index
    assert ks == {2_210: 0, 2_499: 0, 2_500: 1, 2_740: 1, 2_999: 1, 3_000: 2, 3_040: 2}
    # a press just after a beat (within the grace) lands at once
    show.event(ControlEvent(3_050 * MS, "key", "next_keyframe"))
    assert show.frame(3_051 * MS).decks[0].keyframe_index == 3


def test_jump_lands_at_the_beat_not_at_the_frame(G):
    """A coarse frame grid must not move the landing: the state at a later frame is the same
    whether or not a frame fell on the beat."""
    reg = default_registry()
    reg.set("drift", 0.5)
    frames = []
    for grid in ((0, 2_100, 2_500, 2_700), (0, 2_100, 2_700)):
        show = _show(G, reg)
        for ev in _taps(0.0):
            show.event(ev)
        for t_ms in grid:
            if t_ms == 2_100:
                show.event(ControlEvent(2_200 * MS, "key", "next_keyframe"))
            fr = show.frame(t_ms * MS)
        frames.append(fr)
    a, b = frames
    assert a.decks[0].keyframe_index == b.decks[0].keyframe_index == 1
    torch.testing.assert_close(a.decks[0].ws, b.decks[0].ws, rtol=0, atol=1e-3)


def test_morph_completes_in_exactly_n_beats(G, tmp_path):
    (tmp_path / "other.yaml").write_text("name: other\nparams:\n  onset_jump: 1.0\n")
    reg = default_registry()
    reg.set("morph_beats", 4.0)
    show = _show(G, reg, resolve_preset=preset_resolver(tmp_path, reg))
    for ev in _taps(0.0):  # 120 BPM: 4 beats = 2 s
        show.event(ev)
    show.frame(0)
    t0 = 2_250 * MS  # mid-beat
    show.event(ControlEvent(t0, "osc", "preset", "other"))
    start = reg.get("onset_jump")
    half = show.frame(t0 + S)  # two beats in: half way (onset_jump has no smoothing)
    assert half.compositor.params["onset_jump"] == pytest.approx((start + 1.0) / 2, abs=1e-6)
    assert half.morph == pytest.approx(0.5, abs=1e-6)
    assert half.preset == "other"
    almost = show.frame(t0 + 2 * S - MS)
    assert almost.morph < 1.0 and almost.compositor.params["onset_jump"] < 1.0
    done = show.frame(t0 + 2 * S)
    assert done.morph == 1.0 and done.compositor.params["onset_jump"] == 1.0


def test_morph_zero_beats_cuts_and_unknown_preset_is_reported(G, tmp_path):
    (tmp_path / "other.yaml").write_text("name: other\nparams:\n  onset_jump: 1.0\n")
    reg = default_registry()
    reg.set("morph_beats", 0.0)
    show = _show(G, reg, resolve_preset=preset_resolver(tmp_path, reg))
    show.frame(0)
    show.event(ControlEvent(MS, "osc", "preset", "other"))
    show.event(ControlEvent(2 * MS, "osc", "preset", "no-such-preset"))
    fr = show.frame(3 * MS)
    assert fr.compositor.params["onset_jump"] == 1.0 and fr.preset == "other"
    errs = show.drain_errors()
    assert len(errs) == 1 and "no-such-preset" in errs[0]


def test_cues_go_next_prev_morph_and_glide(G, tmp_path):
    from vj.show.cues import Cue

    (tmp_path / "a.yaml").write_text("name: a\nparams:\n  zoom: 1.2\n  drift: 0.0\n")
    (tmp_path / "b.yaml").write_text("name: b\nparams:\n  zoom: 1.8\n  drift: 0.0\n")
    reg = default_registry()
    reg.set("drift", 0.0)  # (and the cues') so the deck rests exactly on the cue's keyframe
    cues = (Cue("a", keyframe=5, morph_beats=0.0), Cue("b", keyframe=9, morph_beats=2.0))
    show = _show(G, reg, cues=cues, resolve_preset=preset_resolver(tmp_path, reg))
    show.frame(0)
    show.event(ControlEvent(MS, "key", "cue_go"))  # the registry trigger's name
    fr = show.frame(2 * MS)
    assert (fr.cue, fr.preset, fr.decks[0].keyframe_index) == (0, "a", 5)
    show.event(ControlEvent(3 * MS, "midi", "cue.next"))
    fr = show.frame(4 * MS)
    assert (fr.cue, fr.preset, fr.morph < 1.0) == (1, "b", True)
    done = show.frame(4 * MS + S)  # no tempo: morphs count 120 BPM, 2 beats = 1 s
    assert done.morph == 1.0 and done.decks[0].keyframe_index == 9
    target = show.decks[0]._on_sphere(show.decks[0].keys[9])
    assert torch.equal(show.decks[0].z, target)  # the glide arrived on the cue's keyframe
    show.event(ControlEvent(2 * S, "key", "cue_prev"))
    assert show.frame(2 * S).cue == 0


def test_tempo_events_outrank_tap(G):
    show = _show(G)
    show.frame(0)
    for ev in _taps(0.0):
        show.event(ev)
    show.event(ControlEvent(2 * S, "link", "tempo", 100.0))
    show.event(ControlEvent(2 * S, "link", "tempo.beat", 8.0))
    fr = show.frame(2 * S + 600 * MS)
    assert fr.tempo.source == "link" and fr.tempo.bpm == 100.0
    assert fr.tempo.beat == pytest.approx(9.0)
    show.event(ControlEvent(3 * S, "link", "tempo.stop", 0.0))
    assert show.frame(3 * S).tempo.source == "tap"


def test_a_downbeat_press_moves_the_bar_and_keeps_the_tempo(G):
    show = _show(G)
    show.frame(0)
    show.event(ControlEvent(1 * S, "key", "downbeat"))  # no tempo yet: said, not raised
    show.frame(1 * S)
    assert any("downbeat" in e and "no tempo" in e for e in show.drain_errors())
    for ev in _taps(2.0):  # 120 BPM from 2 s: the first tap is beat 1
        show.event(ev)
    assert show.frame(4 * S).tempo.bar_phase == pytest.approx(0.0)  # beat 5 = 1
    show.event(ControlEvent(5 * S + 40 * MS, "midi", "downbeat"))  # beat 7, pressed late
    fr = show.frame(5 * S + 500 * MS)
    assert fr.tempo.bpm == pytest.approx(120.0) and fr.tempo.source == "tap"
    assert fr.tempo.bar_phase == pytest.approx(0.25)  # one beat after the new one


def test_pulse_and_lfo_are_the_shows(G):
    from vj.audio.features import AudioFeatures
    from vj.show.compositing import PULSE_DECAY_S, compositor_at

    reg = default_registry()
    reg.set("lfo_zoom", 1.0)
    reg.set("lfo_beats", 1.0)
    show = _show(G, reg)
    for ev in _taps(0.0):
        show.event(ev)
    show.frame(0)
    show.features(AudioFeatures(t_capture_ns=2 * S, onset_count=0))
    show.features(AudioFeatures(t_capture_ns=2 * S + 10 * MS, onset_count=1))
    fr = show.frame(2 * S + 100 * MS)
    assert fr.compositor.pulse == pytest.approx(np.exp(-0.09 / PULSE_DECAY_S))
    zoom = reg.get("zoom")
    on_beat = show.frame(2_500 * MS).compositor.params["zoom"]
    assert on_beat == pytest.approx(zoom * (1 - 0.15))
    # between ticks the display runs the LFO on: a quarter beat later it is at the centre
    mid = compositor_at(show.frame(2_500 * MS), 2_625 * MS)
    assert mid.params["zoom"] == pytest.approx(zoom, abs=1e-9)


# -- determinism ---------------------------------------------------------------------------
def _offline_frames(G, tmp_path, frames=None, seed=3):
    from vj.offline import OfflineShow, RenderJob

    audio = demo_track(SR, seconds=2.0, bpm=124.0)
    job = RenderJob(
        audio=audio, sample_rate=SR, out=tmp_path / "x.mp4", fps=FPS, events=tuple(_taps(0.3))
    )
    off = OfflineShow(build_show(_Preset, default_registry(), [G]), job)
    return [fr for i, fr, write in off.frames(frames or range(2 * FPS)) if write]


def test_same_offline_render_twice_is_identical(G, tmp_path):
    a, b = _offline_frames(G, tmp_path), _offline_frames(G, tmp_path)
    assert len(a) == 2 * FPS
    for x, y in zip(a, b, strict=True):
        assert_frames_equal(x, y)
    assert a[-1].decks[0].keyframe_index > 0  # the music moved it


def test_a_shard_equals_the_same_frames_of_the_whole(G, tmp_path):
    whole = _offline_frames(G, tmp_path)
    shard = _offline_frames(G, tmp_path, range(17, 25))
    assert [f.index for f in shard] == list(range(17, 25))
    for x, y in zip(whole[17:25], shard, strict=True):
        assert_frames_equal(x, y)


def test_event_log_round_trip_and_errors(tmp_path):
    from vj.show.events import EventLogError, read_event_log, write_event_log

    evs = [ControlEvent(5, "key", "tap", 1.0), ControlEvent(9, "osc", "preset", "club")]
    path = write_event_log(tmp_path / "log.jsonl", evs)
    assert read_event_log(path) == evs
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"t_ns": 1, "name": "tap"}\n{"t_ns": -4, "name": "tap"}\n')
    with pytest.raises(EventLogError, match=r"bad.jsonl:2: t_ns"):
        read_event_log(bad)
    bad.write_text('{"t_ns": 1, "nme": "tap"}\n')
    with pytest.raises(EventLogError, match=r"bad.jsonl:1: unknown key 'nme'"):
        read_event_log(bad)


def test_external_tempo_becomes_few_events_that_replay_the_beats(G):
    """Link / MIDI clock are sampled into tempo events: one anchor, then only on change."""
    from vj.live_generator import ExternalTempo
    from vj.tempo import TapTempo

    src = TapTempo(hold=True)  # stands in for a Link session: any TempoSource
    for i in range(4):
        src.tap(i * S // 2)
    sent: list[ControlEvent] = []
    ext = ExternalTempo({"link": src}, sent.append)
    for k in range(10):
        ext.poll(2 * S + k * 100 * MS)
    assert [e.name for e in sent] == ["tempo", "tempo.beat"]  # steady: nothing more
    show = _show(G)
    show.frame(0)
    for e in sent:
        show.event(e)
    fr = show.frame(3 * S)
    st = src.state(3 * S)
    assert fr.tempo.source == "link" and fr.tempo.bpm == pytest.approx(st.bpm)
    assert fr.tempo.beat == pytest.approx(st.beat_count + st.beat_phase, abs=1e-9)
    for i in range(3):  # the session changes tempo: one new anchor
        src.tap(4 * S + i * S // 3)
    ext.poll(5 * S)
    assert [e.name for e in sent[2:]] == ["tempo", "tempo.beat"]
    assert sent[2].value == pytest.approx(180.0)


def test_cli_render_bad_event_log_and_frame_range_are_clear_errors(tmp_path):
    import subprocess
    import sys

    import soundfile as sf

    wav = tmp_path / "in.wav"
    sf.write(wav, demo_track(SR, seconds=1.0), SR)
    log = tmp_path / "log.jsonl"
    log.write_text('{"t_ns": 0, "name": "tap"}\nnot json\n')

    def vj(*args):
        return subprocess.run(
            [sys.executable, "-m", "vj", "render", str(wav), "-o", str(tmp_path / "o.mp4"),
             "--size", "64x48", "--no-progress", *args],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip

    r = vj("--events", str(log))
    assert r.returncode == 2 and f"{log}:2: not JSON" in r.stderr and "Traceback" not in r.stderr
    r = vj("--frames", "10:5")
    assert r.returncode == 2 and "frames 10:5" in r.stderr
    r = vj("--frames", "20:900")
    assert r.returncode == 2 and "frame range 20..900 outside 0..30" in r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "o.mp4").exists()


def test_a_preset_switch_brings_its_routes(G, tmp_path):
    (tmp_path / "routed.yaml").write_text(
        "name: routed\nparams:\n  brightness: 0.0\n"
        "routes:\n  - {source: param.fx_pulse, target: brightness, amount: 0.5}\n"
    )
    reg = default_registry()
    reg.set("morph_beats", 0.0)
    show = _show(G, reg, resolve_preset=preset_resolver(tmp_path, reg))
    assert len(show.matrix.routes) == 0
    show.frame(0)
    show.event(ControlEvent(MS, "osc", "preset", "routed"))
    fr = show.frame(2 * MS)
    assert len(show.matrix.routes) == 1 and fr.preset == "routed"
    # the route adds 0.5 × fx_pulse (a level source, no envelope times) to brightness
    want = 0.5 * fr.compositor.params["fx_pulse"]
    assert fr.compositor.params["brightness"] == pytest.approx(want, abs=1e-6)
