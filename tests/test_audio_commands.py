"""`vj analyze` end to end through its argparse registration: outputs, atomicity, errors."""

from __future__ import annotations

import argparse

import numpy as np
import soundfile as sf

from vj.audio import commands


def run(argv: list[str]) -> int:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers()
    commands.register(sub)
    args = ap.parse_args(argv)
    return args.func(args)


def test_analyze_writes_onsets_beats_bands(tmp_path, capsys):
    from vj.audio.source import demo_onsets, demo_track

    sr = 44100
    sf.write(tmp_path / "demo.wav", demo_track(sr, seconds=8.0, bpm=120.0), sr)
    out = tmp_path / "on.txt"
    rc = run(
        [
            "analyze",
            str(tmp_path / "demo.wav"),
            "--onsets",
            str(out),
            "--beats",
            str(tmp_path / "beats.txt"),
            "--bands",
            str(tmp_path / "bands.npy"),
            "--band-onsets",
            str(tmp_path / "b"),
        ]
    )
    assert rc == 0
    onsets = np.loadtxt(out, ndmin=1)
    ref = demo_onsets(sr, 8.0, 120.0)
    assert np.all(np.diff(onsets) > 0)
    hit = [np.any((onsets - t >= 0) & (onsets - t < 0.03)) for t in ref]
    assert np.mean(hit) >= 0.95
    beats = np.loadtxt(tmp_path / "beats.txt", ndmin=1)
    assert len(beats) >= 8
    bands = np.load(tmp_path / "bands.npy")
    assert bands.shape == (8 * sr // 256, 8) and bands.dtype == np.float32
    assert 0.0 <= bands.min() and bands.max() <= 1.0 and bands.max() > 0.5
    assert (tmp_path / "b.low.txt").exists() and (tmp_path / "b.high.txt").exists()
    assert not list(tmp_path.glob(".vj-*"))  # no temp files left
    assert "onsets" in capsys.readouterr().out


def test_analyze_same_result_for_any_block_size(tmp_path):
    from vj.audio.source import demo_track

    sr = 48000
    sf.write(tmp_path / "d.wav", demo_track(sr, seconds=3.0), sr)
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    assert run(["analyze", str(tmp_path / "d.wav"), "--onsets", str(a)]) == 0
    assert run(["analyze", str(tmp_path / "d.wav"), "--onsets", str(b), "--block", "4096"]) == 0
    ta, tb = np.loadtxt(a), np.loadtxt(b)
    assert len(ta) == len(tb) and np.all(tb >= ta - 1e-9) and np.all(tb - ta < 4096 / sr)


def test_analyze_errors_leave_nothing_behind(tmp_path, capsys):
    out = tmp_path / "on.txt"
    assert run(["analyze", str(tmp_path / "missing.wav"), "--onsets", str(out)]) == 2
    err = capsys.readouterr().err
    assert "missing.wav" in err and "not found" in err
    assert not out.exists()
    (tmp_path / "bad.wav").write_bytes(b"not audio at all" * 20)
    assert run(["analyze", str(tmp_path / "bad.wav"), "--onsets", str(out)]) == 2
    assert "bad.wav" in capsys.readouterr().err
    assert not out.exists()
    sf.write(tmp_path / "ok.wav", np.zeros(4800, np.float32), 48000)
    assert run(["analyze", str(tmp_path / "ok.wav"), "--onsets", str(out), "--hop", "7"]) == 2
    assert "--hop" in capsys.readouterr().err
    assert run(["analyze", str(tmp_path / "ok.wav"), "--onsets", str(out), "--channel", "1"]) == 2
    assert "--channel" in capsys.readouterr().err
    assert (
        run(["analyze", str(tmp_path / "ok.wav"), "--onsets", str(tmp_path / "nodir" / "x.txt")])
        == 2
    )
    assert not list(tmp_path.glob(".vj-*"))


def test_analyze_writes_downbeats_a_bar_apart(tmp_path):
    from vj.audio.source import demo_track

    sr = 44100
    sf.write(tmp_path / "demo.wav", demo_track(sr, seconds=10.0, bpm=120.0), sr)
    rc = run(
        [
            "analyze",
            str(tmp_path / "demo.wav"),
            "--onsets",
            str(tmp_path / "on.txt"),
            "--beats",
            str(tmp_path / "beats.txt"),
            "--downbeats",
            str(tmp_path / "down.txt"),
        ]
    )
    assert rc == 0
    beats = np.loadtxt(tmp_path / "beats.txt", ndmin=1)
    downs = np.loadtxt(tmp_path / "down.txt", ndmin=1)
    assert np.all(np.isin(downs, beats))  # a downbeat is one of the beats
    late = downs[downs > 4.0]  # once the bar has settled
    assert len(late) >= 2
    assert np.allclose(np.diff(late), 2.0, atol=0.05)  # 4 beats at 120 BPM
    assert not list(tmp_path.glob(".vj-*"))


def test_analyze_downbeats_folder_missing(tmp_path, capsys):
    from vj.audio.source import demo_track

    sr = 44100
    sf.write(tmp_path / "demo.wav", demo_track(sr, seconds=2.0, bpm=120.0), sr)
    rc = run(
        [
            "analyze",
            str(tmp_path / "demo.wav"),
            "--onsets",
            str(tmp_path / "on.txt"),
            "--downbeats",
            str(tmp_path / "nope" / "down.txt"),
        ]
    )
    assert rc == 2
    assert "folder does not exist" in capsys.readouterr().err


def test_analyze_any_one_output_is_enough(tmp_path, capsys):
    from vj.audio.source import demo_track

    sr = 44100
    sf.write(tmp_path / "demo.wav", demo_track(sr, seconds=6.0, bpm=120.0), sr)
    wav = str(tmp_path / "demo.wav")
    assert run(["analyze", wav, "--downbeats", str(tmp_path / "down.txt")]) == 0
    assert len(np.loadtxt(tmp_path / "down.txt", ndmin=1)) >= 1
    assert run(["analyze", wav, "--band-onsets", str(tmp_path / "b")]) == 0
    assert (tmp_path / "b.low.txt").is_file() and not (tmp_path / "on.txt").exists()
    capsys.readouterr()
    assert run(["analyze", wav]) == 2
    assert "nothing to write" in capsys.readouterr().err
    assert run(["analyze", wav, "--band-onsets", str(tmp_path / "nope" / "b")]) == 2
    assert "folder does not exist" in capsys.readouterr().err
