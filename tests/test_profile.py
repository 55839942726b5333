"""`vj profile`: a real headless run (JACK loopback when jackd is here, else the file source);
the pixel probe agrees with the stamps within one frame; the report files are complete."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.gan_nets import tiny_generator

REPO = Path(__file__).resolve().parents[1]
TINY = dict(
    z_dim=16, c_dim=0, w_dim=16, img_resolution=16, img_channels=3,
    mapping_kwargs=dict(num_layers=2), channel_base=128, channel_max=16,
)  # fmt: skip


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory) -> Path:
    from vj.gan.checkpoint import save_generator

    path = tmp_path_factory.mktemp("ckpt") / "tiny.safetensors"
    save_generator(tiny_generator(0, **TINY), path)
    return path


def _vj(*args, timeout=300):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    env.pop("JACK_DEFAULT_SERVER", None)
    return subprocess.run(
        [sys.executable, "-m", "vj", *args],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("audio", ["file", "auto"])
def test_probe_agrees_with_stamps_within_one_frame(tmp_path, tiny_ckpt, audio):
    out = tmp_path / "rep"
    r = _vj("profile", "--duration", "5", "--size", "96x64", "--checkpoint", str(tiny_ckpt),
            "--audio", audio, "--no-progress", "-o", str(out))  # fmt: skip
    assert r.returncode == 0, r.stderr
    doc = json.loads((out / "report.json").read_text())
    s = doc["settings"]
    if audio == "auto" and s["audio_path"] != "jack":
        assert "no JACK loopback" in r.stderr  # said why, not silently
    hits = doc["probe"]["hits"]
    assert (
        len(hits) >= 3
    )  # clicks every 0.75 s after 1 s, in 5 s: 6 hits (a slow start may miss one)
    assert all(h["stamp_ms"] is not None for h in hits)
    one = doc["probe"]["one_frame_ms"]
    for h in hits:
        assert 0 < h["probe_ms"] < 2000
        assert abs(h["probe_ms"] - h["stamp_ms"]) <= one, (h, one)
    assert doc["probe"]["agree_within_one_frame"] is True
    assert "agree within one frame" in r.stdout
    # every stamp, every stage summarised with p50/p95/p99
    for stage in ("capture->features", "gen_start->gen_end", "composite->swap", "total"):
        assert {"p50", "p95", "p99"} <= set(doc["summary"][stage])
    f = doc["frames"]
    assert f["generated"] > 10 and f["presented"] > 10 and f["display_fps"] > 1
    assert len(doc["stamps_ns"]) == f["generated"]
    assert doc["machine"]["cpu"] and doc["audio"]["blocks"] > 100
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 4 and "<script" not in page
    # self-contained: nothing fetched (the base64 of the plots may spell "http" by chance)
    text = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", page)
    assert "http" not in text.replace("http-equiv", "")


def test_compare_of_two_reports_and_bad_inputs(tmp_path):
    from vj.profile.report import compare_text

    def fake(scale):
        st = {"p50": 10.0 * scale, "p95": 20.0 * scale, "p99": 30.0 * scale, "max": 40.0, "n": 5}
        return {
            "summary": {"gen_start->gen_end": dict(st), "total": dict(st)},
            "frames": {"generator_fps": 10 / scale, "display_fps": 60.0,
                       "display_deadline_misses": 0},
            "probe": {"probe_ms": {"p50": 50.0 * scale}},
            "settings": {},
        }  # fmt: skip

    text = compare_text(fake(1), fake(2))
    assert "gen_start->gen_end" in text and " 2.00 " in text  # B/A ratio of the p50s
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    r = _vj("profile", "--from-report", str(bad), "-o", str(tmp_path / "o"), timeout=120)
    assert r.returncode == 2 and "cannot read the report" in r.stderr
    assert "Traceback" not in r.stderr
    r = _vj("profile", "--stimulus", str(tmp_path / "nosuch.wav"), "-o", str(tmp_path / "o"))
    assert r.returncode == 2 and "no such file" in r.stderr
    r = _vj("profile", "--preset", "nosuch", "-o", str(tmp_path / "o"), timeout=120)
    assert r.returncode == 2 and "no preset named" in r.stderr
