"""A session recorded from the live driver and re-rendered offline through the Show decides the
same: keyframe jumps, cues and the preset switch land on the same frames and beats."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

from tests.gan_nets import tiny_generator
from vj.audio.source import demo_track
from vj.params import default_registry
from vj.show.frame import ControlEvent

S = 1_000_000_000
SR = 48000
FPS = 15
BLOCK = 256
T0 = 3_700_123_456_789  # the live clock at the session's start: anything but 0
TINY = dict(
    z_dim=16, c_dim=0, w_dim=16, img_resolution=16, img_channels=3,
    mapping_kwargs=dict(num_layers=2), channel_base=128, channel_max=16,
)  # fmt: skip


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    from vj.gan.checkpoint import save_generator

    p = tmp_path_factory.mktemp("sess") / "tiny.safetensors"
    save_generator(tiny_generator(0, **TINY), p)
    return str(p)


class _Source:
    def start(self) -> None: ...

    def stop(self) -> None: ...


def _controls(app, reg, t_rel: float) -> list:
    """What a performer does, as (time s, action): taps for 120 BPM, quantised jumps, two
    cues (a MIDI-mapped trigger), a fader, a preset switch from the switcher."""
    tap = [(0.21 + 0.5 * i, lambda: reg.trigger("tap", "key")) for i in range(4)]
    return sorted(
        tap
        + [
            (1.3104, lambda: reg.trigger("next_keyframe", "key")),
            (1.3207, lambda: reg.trigger("next_keyframe", "midi")),
            (1.4501, lambda: reg.set("fx_amount", 0.8, "midi")),
            (1.9003, lambda: reg.trigger("cue_go", "midi")),
            (2.6102, lambda: reg.trigger("next_keyframe", "key")),
            (3.0507, lambda: reg.trigger("cue_next", "key")),
            (3.8101, lambda: app.send_event(ControlEvent(app.clock(), "preset", "preset", "c"))),
            (4.2203, lambda: reg.trigger("next_keyframe", "osc")),
        ],
        key=lambda x: x[0],
    )


def test_recorded_session_rerenders_the_same_decisions(tmp_path, ckpt):
    from vj.cli import _finish_session, _session_preset, _start_session
    from vj.live import AudioInput, LiveApp, LiveOptions
    from vj.offline import OfflineShow, RenderJob, build_offline
    from vj.preset import apply_preset, load_preset
    from vj.show.session import read_session

    for name, zoom in (("a", 1.2), ("b", 1.5), ("c", 1.8)):
        (tmp_path / f"{name}.yaml").write_text(f"name: {name}\nparams:\n  zoom: {zoom}\n")
    (tmp_path / "set.yaml").write_text(
        "name: set\ncues:\n  - {preset: a.yaml, keyframe: 5, beats: 0}\n"
        "  - {preset: b.yaml, keyframe: 9, beats: 2}\n"
    )
    audio = demo_track(SR, seconds=5.0, bpm=124.0)
    n = 5 * FPS - 1

    # -- live: the real audio tap path, registry bridge and generator tick on a virtual clock
    reg = default_registry()
    preset = load_preset(tmp_path / "set.yaml", reg)
    apply_preset(preset, reg)
    now = [T0]
    blocks: list = []
    opts = LiveOptions(headless=True, gen_threads=None, decks_every=(1,), seed=3, checkpoint=ckpt)
    app = LiveApp(
        reg,
        AudioInput(lambda on_block: blocks.append(on_block) or _Source(), None),
        opts,
        preset=preset,
        clock=lambda: now[0],
    )
    args = argparse.Namespace(record_session=str(tmp_path / "sess"))
    writer = _start_session(args, app, reg, preset, opts)  # what `vj live --record-session` does
    app.audio.start()  # the source's callback is the tapped one: analysis + the session's tap
    on_block = blocks[0]
    todo = _controls(app, reg, 0.0)
    fed, live = 0, []
    for i in range(n):
        t = (i * S) // FPS
        while fed + BLOCK <= (t * SR) // S:
            end = fed + BLOCK
            while todo and int(todo[0][0] * S) <= (end * S) // SR:  # controls between blocks
                now[0] = T0 + int(todo[0][0] * S)
                todo.pop(0)[1]()
            now[0] = T0 + (end * S) // SR
            on_block(audio[fed:end], now[0])
            fed = end
        now[0] = T0 + t
        live.append(app.gen.tick().show)
    app.audio.stop()
    app.bridge.close()
    _finish_session(writer, app, reg)

    # -- offline: `vj render --session` (preset, seed, model from meta; the event log re-timed)
    sess = read_session(tmp_path / "sess")
    assert len(sess.audio) == fed and sess.meta["seed"] == 3
    events = sess.offline_events()
    assert {"tap", "next_keyframe", "fx_amount", "cue_go", "cue_next", "preset"} <= {
        e.name for e in events
    }
    reg2 = default_registry()
    preset2 = load_preset(_session_preset(sess), reg2)
    apply_preset(preset2, reg2)
    for name, v in sess.meta["params_at_start"].items():
        if reg2.spec(name).kind != "trigger":
            reg2.set(name, float(v), "session")
    job = RenderJob(
        audio=sess.audio,
        sample_rate=sess.sample_rate,
        out=tmp_path / "x.mp4",
        fps=FPS,
        seed=sess.meta["seed"],
        checkpoint=sess.meta["checkpoint"],
        events=events,
        preset=preset2,
        hop=preset2.audio.hop,
        n_bands=preset2.audio.n_bands,
    )
    show, _ = build_offline(job, reg2)
    off = OfflineShow(show, job)
    offline = [off.tick(i) for i in range(n)]

    def decisions(frames):
        return [
            (f.decks[0].keyframe_index, f.cue, f.preset, f.tempo.source, int(f.tempo.beat))
            for f in frames
        ]

    d_live, d_off = decisions(live), decisions(offline)
    assert d_off == d_live
    beats = np.array([f.tempo.beat for f in live]) - np.array([f.tempo.beat for f in offline])
    assert np.abs(beats).max() < 1e-6  # the same beat grid, not only the same beat numbers
    # the show really made those decisions: jumps on beats, both cues, the switch
    kf = [d[0] for d in d_live]
    assert len(set(kf)) >= 4 and 5 in kf and 9 in kf
    assert {d[1] for d in d_live} >= {0, 1} and d_live[-1][2] == "c"
    assert d_live[-1][3] == "tap"
    assert not show.drain_errors()


@pytest.mark.parametrize("live_input", [True, False])
def test_a_session_from_a_sound_card_is_replayed_as_live_input(
    tmp_path, ckpt, monkeypatch, live_input
):
    # a sound card joins a song (FeatureExtractor(live=True): no start prior for the sound it
    # joined); `vj render --session` must analyse that audio the same way, or the replayed
    # bar can differ from the one the show played
    import vj.offline
    from vj.audio.stream import FeatureExtractor
    from vj.cli import _finish_session, _start_session, main
    from vj.live import AudioInput, LiveApp, LiveOptions
    from vj.preset import apply_preset, builtin_preset_path, load_preset

    reg = default_registry()
    preset = load_preset(builtin_preset_path("default"), reg)
    apply_preset(preset, reg)
    blocks: list = []
    fx = FeatureExtractor(SR, live=live_input)
    opts = LiveOptions(headless=True, gen_threads=None, decks_every=(1,), seed=3, checkpoint=ckpt)
    app = LiveApp(
        reg, AudioInput(lambda cb: blocks.append(cb) or _Source(), fx), opts, preset=preset
    )
    writer = _start_session(
        argparse.Namespace(record_session=str(tmp_path / "s")), app, reg, preset, opts
    )
    app.audio.start()
    audio = demo_track(SR, seconds=1.0, bpm=124.0)
    for k in range(0, len(audio) - BLOCK, BLOCK):
        blocks[0](audio[k : k + BLOCK], T0 + (k + BLOCK) * S // SR)
    app.audio.stop()
    app.bridge.close()
    _finish_session(writer, app, reg)

    jobs = []
    monkeypatch.setattr(vj.offline, "render", lambda job, registry: jobs.append(job) or job.out)
    main(
        ["render", "--session", str(tmp_path / "s"), "-o", str(tmp_path / "r.mp4"), "--no-progress"]
    )
    assert len(jobs) == 1 and jobs[0].live_input is live_input
    show, _ = vj.offline.build_offline(jobs[0], default_registry())
    assert show.extractor.live is live_input
