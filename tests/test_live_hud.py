"""The live HUD shows MIDI activity, the current preset and cue, and warnings: the real LiveApp,
headless on EGL, with a MidiMapper attached the way `vj live` attaches its MIDI inputs."""

from __future__ import annotations

import numpy as np
import pytest

from tests.test_engine_nets import small_generator
from vj.clock import now_ns
from vj.control.activity import MidiActivity, describe
from vj.control.mapping import Mapping, MidiMapper
from vj.params import default_registry
from vj.render.hud import MIDI_BLINK_S, PAD, HudText, frame_time_graph
from vj.show.frame import ControlEvent

W, H = 320, 180  # HUD scale 1 at this height: font pixels are screen pixels


def test_describe_channel_messages_only():
    assert describe([0xB0, 7, 100]) == "cc 7=100 ch1"
    assert describe([0x99, 36, 96]) == "note C2 on 96 ch10"
    assert describe([0x90, 60, 0]) == "note C4 off ch1"
    assert describe([0xC2, 5]) == "program 5 ch3"
    assert describe([0xE0, 0, 64]) == "bend +0 ch1"
    for sysmsg in ([0xF8], [0xFA], [0xF0, 1, 2, 0xF7], [], [0xB0, 7], [0xB0, 7, 200], [0x40]):
        assert describe(sysmsg) is None


def test_activity_counts_messages_and_midi_events():
    t = [1_000_000_000]
    act = MidiActivity(clock=lambda: t[0])
    assert act.count == 0 and act.age_s() == float("inf") and act.last() == ""
    act.event(ControlEvent(t[0], "osc", "zoom", 1.2))  # not MIDI: ignored
    act.message([0xF8], t[0])  # clock: ignored
    assert act.count == 0
    act.event(ControlEvent(t[0], "midi@1#0", "zoom", 1.25))  # an event alone still counts
    assert act.count == 1 and act.last() == "zoom 1.25"
    act.message([0xB0, 1, 5], t[0])  # an unmapped control: the older parameter is not its
    assert act.last() == "cc 1=5 ch1" and act.count == 1  # raw messages take over the count
    t[0] += 500_000_000
    assert abs(act.age_s() - 0.5) < 1e-9


def _hud_pixels_match(rgb: np.ndarray, lines: list[str]) -> bool:
    """The frame shows exactly these HUD lines: ink white, the box around it dimmed."""
    cov, _ = HudText().render(lines)
    ox = oy = 4  # Compositor.hud_origin at scale 1
    h, w = min(cov.shape[0], H - oy), min(cov.shape[1], W - ox)
    box = rgb[oy : oy + h, ox : ox + w].max(axis=2)  # [h, w]
    ink = cov[:h, :w] == 255
    return bool((box[ink] == 255).all() and (box[~ink] <= 168).all())


def _budget_line_drawn(rgb: np.ndarray, lines: list[str]) -> bool:
    """The frame-time graph below the text: its dotted 60 Hz budget line is white."""
    cov, _ = HudText().render(lines)
    g = frame_time_graph([])  # only the budget line: its row does not depend on the times
    gy = int(np.nonzero(g[:, 0] == 255)[0][0])
    y = 4 + cov.shape[0] + 2 + gy  # hud_origin + text + stack's gap
    row = rgb[y, 4 + PAD : 4 + PAD + g.shape[1]].max(axis=1)  # [120]
    return bool((row[::2] == 255).all() and (row[1::2] < 255).all())  # dotted, in a dim box


def test_midi_message_lights_the_live_hud_with_preset_and_cue(tmp_path):
    from vj.live import LiveApp, LiveOptions
    from vj.preset import apply_preset, load_preset

    (tmp_path / "a.yaml").write_text("name: a\nparams:\n  zoom: 1.2\n")
    (tmp_path / "set.yaml").write_text(
        "name: set\ncues:\n  - {preset: a.yaml, beats: 0}\n  - {preset: a.yaml, beats: 0}\n"
    )
    reg = default_registry()
    preset = load_preset(tmp_path / "set.yaml", reg)
    apply_preset(preset, reg)
    # note 36 fires the first cue: one MIDI message moves the show and lights the HUD
    mapper = MidiMapper(reg, [Mapping("note", 36, "cue_go")])
    seen: list = []  # (t_ns, HUD lines, frame) for each displayed frame
    box: list = []
    sent: dict = {}

    def on_display(rgb, t):
        app = box[0]
        seen.append((t, app.hud_lines, rgb.copy()))
        if "t" not in sent and app.gen.count >= 2 and len(seen) >= 3:
            sent["t"] = now_ns()
            mapper.handle([0x90, 36, 100], sent["t"])  # what MidiInput's callback does
        elif "t" in sent and "off" not in sent and t - sent["t"] > (MIDI_BLINK_S + 1.2) * 1e9:
            sent["off"] = t
            reg.set("hud", 0.0, "key")  # the H key: the HUD goes away (at the Show's next tick)
        elif "off" in sent:
            dark_run = sent.get("dark_run", 0) + 1 if app.hud_lines is None else 0
            sent["dark_run"] = dark_run
            if dark_run >= 3 or t - sent["off"] > 20e9:
                app.stop()

    opts = LiveOptions(
        width=W, height=H, fps=20, headless=True, gen_threads=None, on_display=on_display,
        duration=60.0, seed=0,
    )  # fmt: skip
    app = LiveApp(reg, None, opts, G=small_generator(seed=0), preset=preset)
    box.append(app)
    app.attach_midi(mapper)
    try:
        app.run()
    finally:
        mapper.close()
    assert "off" in sent, f"the show did not get that far: {len(seen)} frames"

    before = [ln for t, ln, _ in seen if ln and t < sent["t"]]
    assert before and all("MIDI --" in ln for ln in before)
    assert all(any(x.startswith("preset set") for x in ln) for ln in before)
    lit = [(t, ln, rgb) for t, ln, rgb in seen if ln and 0 <= t - sent["t"] < MIDI_BLINK_S * 1e9]
    assert lit, "no frame was shown while the MIDI light was on"
    t, lines, rgb = lit[-1]
    midi = next(x for x in lines if x.startswith("MIDI"))
    assert midi.startswith("MIDI ●      1  note C2 on 100 ch1 > cue_go 1.00"), midi
    assert _hud_pixels_match(rgb, lines), "the frame does not show the HUD lines"
    assert _budget_line_drawn(rgb, lines), "no frame-time graph below the text"
    # the cue fired from that note shows on a later frame with its number and name
    cued = [ln for t, ln, _ in seen if ln and any("cue 1/2 a.yaml" in x for x in ln)]
    assert cued, "the cue the note fired never reached the HUD"
    # (a margin: the lines were made a little before the frame's swap time `t`)
    dark = [ln for t, ln, _ in seen if ln and sent["t"] + MIDI_BLINK_S * 1e9 + 1e9 < t]
    assert dark and all(
        next(x for x in ln if x.startswith("MIDI")).startswith("MIDI        1  note C2")
        for ln in dark
    )
    after = [(ln, rgb) for t, ln, rgb in seen if t > sent["off"]]
    first_off = next((i for i, (ln, _) in enumerate(after) if ln is None), None)
    assert first_off is not None, "the HUD did not go away"
    off = after[first_off:]
    assert len(off) >= 3 and all(ln is None for ln, _ in off)  # off stays off: no HUD text
    assert not _hud_pixels_match(off[-1][1], lines)


def test_hud_warns_of_audio_overruns_while_they_grow():
    from vj.live import WARN_HOLD_NS, AudioInput, LiveApp, LiveOptions

    class _Source:  # a device source reporting its overflow count, as LiveSource does
        overruns = 0

        def start(self) -> None: ...

        def stop(self) -> None: ...

    src = _Source()
    opts = LiveOptions(headless=True, gen_threads=None)
    app = LiveApp(default_registry(), AudioInput(lambda on_block: src), opts)
    app.audio.start()  # the real AudioInputThread around it
    try:
        assert not [x for x in app._hud_lines(None) if x.startswith("! ")]
        src.overruns = 3
        assert "! audio overruns 3  analysis late 0" in app._hud_lines(None)
        t = now_ns()
        assert app._warnings(t + WARN_HOLD_NS + 1) == []  # no new ones: the warning fades
    finally:
        app.audio.stop()


@pytest.mark.jack
def test_jack_midi_reaches_the_live_hud(jack_session):
    """A controller on a real JACK MIDI port → vj's MidiInput → the LiveApp's HUD line."""
    pytest.importorskip("rtmidi")
    from tests.test_midi_jack import Controller
    from tests.waiting import wait_for
    from vj.control.midi import MidiInput
    from vj.live import LiveApp, LiveOptions

    reg = default_registry()
    app = LiveApp(reg, None, LiveOptions(headless=True, gen_threads=None))
    ctl = Controller("hudctl")
    mapper = MidiMapper(reg, [Mapping("cc", 16, "intensity", range=(0.0, 2.0))])
    app.attach_midi(mapper)  # what `vj live` does for each MIDI input
    try:
        with MidiInput(mapper, ctl.name, api="jack") as midi:
            midi.start()
            ctl.sync(mapper)
            ctl.send(0xF8)  # MIDI clock: not activity
            ctl.send(0xB0, 99, 5)  # an unmapped control: activity all the same
            ctl.send(0xB0, 16, 127)
            assert wait_for(lambda: reg.get("intensity") == 2.0)
            st = app.hud_status(None)
            assert st.midi_events == 2 and st.midi_age_s < 5
            assert st.midi_last == "cc 16=127 ch1 > intensity 2.00"
    finally:
        ctl.close()
        mapper.close()
