"""The audio benchmark's own arithmetic (tools/bench_audio.py): audio played faster or slower,
or joined mid-song, and its scaled or shifted annotations stay in step; a bad --speed or
--start is a clear error."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tools"))
bench_audio = pytest.importorskip("bench_audio")

SR = 44100


@pytest.mark.parametrize("factor", [1.5, 0.68, 1.36])
def test_sped_up_clicks_land_where_the_scaled_annotations_say(factor):
    times = np.array([0.5, 10.0, 29.0])  # the far one shows a drift of the ratio
    x = np.zeros(int(30.0 * SR), np.float32)
    x[(times * SR).astype(int)] = 1.0
    y = bench_audio._speed(x, SR, factor)
    want = times * bench_audio._stretch(factor)
    for t in want:
        i = int(round(t * SR))
        lo = max(0, i - 2000)
        got = (lo + int(np.argmax(np.abs(y[lo : i + 2000])))) / SR
        assert abs(got - t) < 0.5e-3, (factor, t, got)
    # 1 / factor is not the resampler's ratio: 8-15 ms off at 29 s
    assert abs(times[-1] / factor - want[-1]) > 5e-3


def test_scaled_annotations_scale_every_time():
    ref = np.array([1.0, 2.0])
    classes = {"low": np.array([1.0]), "mid": np.array([]), "high": np.array([2.0])}
    raw = {"KD": np.array([1.0]), "SD": np.array([])}
    out = bench_audio._scaled(0.5, ref, classes, np.array([1.0, 3.0]), None, raw)
    assert np.allclose(out[0], [0.5, 1.0])
    assert np.allclose(out[1]["high"], [1.0]) and len(out[1]["mid"]) == 0
    assert np.allclose(out[2], [0.5, 1.5]) and out[3] is None
    assert np.allclose(out[4]["KD"], [0.5])


def test_bad_speed_is_a_clear_error(tmp_path, capsys):
    assert bench_audio.main([str(tmp_path), "--speed", "3"]) == 2
    assert "--speed 3.0: must be 0.5..2" in capsys.readouterr().err


def test_joining_mid_song_shifts_and_drops_annotations():
    ref = np.array([0.5, 1.5, 3.0])
    classes = {"low": np.array([0.5, 3.0]), "mid": np.array([])}
    raw = {"KD": np.array([1.5])}
    out = bench_audio._from(1.0, ref, classes, np.array([0.9, 1.0, 2.0]), None, raw)
    assert np.allclose(out[0], [0.5, 2.0])
    assert np.allclose(out[1]["low"], [2.0]) and len(out[1]["mid"]) == 0
    assert np.allclose(out[2], [0.0, 1.0]) and out[3] is None
    assert np.allclose(out[4]["KD"], [0.5])


def test_silence_first_shifts_every_annotation_later():
    ref = np.array([0.0, 1.5])
    out = bench_audio._from(-2.0, ref, {"low": np.array([1.5])}, None, None, {})
    assert np.allclose(out[0], [2.0, 3.5]) and np.allclose(out[1]["low"], [3.5])
    assert out[2] is None


def test_bad_start_is_a_clear_error(tmp_path, capsys):
    assert bench_audio.main([str(tmp_path), "--start", "-11"]) == 2
    assert "--start -11.0: must be -10..20 seconds" in capsys.readouterr().err


def test_a_bad_file_is_skipped_with_its_name_and_the_rest_is_scored(tmp_path, capsys):
    pytest.importorskip("mir_eval")
    import soundfile as sf

    d = tmp_path / "set"
    d.mkdir()
    x = np.zeros(3 * SR, np.float32)
    hits = [0.5, 1.0, 1.5, 2.0, 2.5]
    for t in hits:  # short noise bursts: onsets any detector finds
        i = int(t * SR)
        x[i : i + 2000] = np.random.default_rng(int(t * 10)).uniform(-0.5, 0.5, 2000)
    sf.write(d / "good.wav", x, SR)
    (d / "good.drums.txt").write_text("".join(f"{t} SD\n" for t in hits))
    sf.write(d / "noann.wav", x, SR)
    sf.write(d / "badline.wav", x, SR)
    (d / "badline.drums.txt").write_text("0.5 SD\nhalf-past KD\n")
    (d / "broken.wav").write_bytes(b"not audio at all")
    sf.write(d / "badbeats.wav", x, SR)
    (d / "badbeats.onsets").write_text("0.5\n")
    (d / "badbeats.beats").write_text("nan 1\n")
    assert bench_audio.main([str(tmp_path), "--no-aubio"]) == 2
    cap = capsys.readouterr()
    assert "badline.drums.txt:2: 'half-past KD' is not 'TIME CLASS'" in cap.err
    assert "noann.wav: no noann.drums.txt or .onsets beside it" in cap.err
    assert "broken.wav: cannot decode audio" in cap.err
    assert "badbeats.beats: no finite times in it" in cap.err
    assert "4 file(s) could not be scored" in cap.err
    assert "set/ (1 files" in cap.out  # good.wav was still scored
    row = next(line for line in cap.out.splitlines() if line.startswith("| vj |"))
    assert float(row.split("|")[2]) == 1.0  # its five bursts all found
