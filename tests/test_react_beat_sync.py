"""Beat sync: keyframe presses land on the next beat of the active tempo source; LFOs follow it."""

import pytest

from vj.params import default_registry
from vj.react.beat_sync import BeatSync
from vj.tempo import TapTempo, TempoArbiter

S = 1_000_000_000


def _tapped_120():
    tap = TapTempo()
    for i in range(4):
        tap.tap(10 * S + i * S // 2)  # 120 BPM, beats at 10.0, 10.5, 11.0, 11.5 s ...
    return tap


def test_press_waits_for_the_next_beat():
    arb = TempoArbiter([_tapped_120()])
    sync = BeatSync(arb)
    p = default_registry().snapshot()  # quantize on by default
    p["next_keyframe"] = 1.0
    assert sync.for_generator(dict(p), 12 * S + S // 4)["next_keyframe"] == 0  # mid-beat: held
    assert sync.for_generator(dict(p), 12 * S + 2 * S // 5)["next_keyframe"] == 0
    assert sync.for_generator(dict(p), 12 * S + S // 2 + 1000)["next_keyframe"] == 1  # on the beat


def test_without_quantize_or_tempo_presses_pass_at_once():
    p = default_registry().snapshot()
    p["next_keyframe"], p["quantize"] = 2.0, 0.0
    assert (
        BeatSync(TempoArbiter([_tapped_120()])).for_generator(dict(p), 12 * S + S // 4)[
            "next_keyframe"
        ]
        == 2
    )
    p["quantize"] = 1.0
    assert BeatSync(TempoArbiter([])).for_generator(dict(p), 0)["next_keyframe"] == 2


def test_lfo_moves_zoom_with_the_beat_and_rests_without_tempo():
    arb = TempoArbiter([_tapped_120()])
    sync = BeatSync(arb)
    p = default_registry().snapshot()
    p["lfo_zoom"], p["lfo_beats"] = 1.0, 1.0
    on_beat = sync.for_render(dict(p), 12 * S)["zoom"]  # sine LFO starts at 0 on the beat
    mid_beat = sync.for_render(dict(p), 12 * S + S // 4)["zoom"]  # top of the cycle
    assert on_beat == pytest.approx(p["zoom"] * (1 - BeatSync.LFO_ZOOM_DEPTH))
    assert mid_beat == pytest.approx(p["zoom"] * (1 + BeatSync.LFO_ZOOM_DEPTH))
    assert BeatSync(TempoArbiter([])).for_render(dict(p), 12 * S)["zoom"] == p["zoom"]
