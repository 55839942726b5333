"""Operator view: layout and text on EGL; the two-window share group under Xvfb (subprocess)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vj.render.offscreen import OffscreenTarget, create_headless_context
from vj.render.operator import OperatorView, operator_lines

ROOT = Path(__file__).resolve().parents[1]


def test_operator_lines_list_chains_params_and_cues():
    params = {"kaleido.segments": 8.0, "kaleido.spin": 0.2, "master": 1.0, "zoom": 1.1}
    lines = operator_lines(params, {"master": ("kaleido",), "A": ()}, ["intro", "drop"], 1, ["S"])
    text = "\n".join(lines)
    assert lines[0] == "S"
    assert "master fx: kaleido" in text and "kaleido: segments 8  spin 0.2" in text
    assert "A      fx: -" in text and ">  2 drop" in text and "zoom 1.10" in text


def test_operator_view_draws_previews_fit_into_tiles():
    ctx = create_headless_context()
    view = OperatorView(ctx)
    tgt = OffscreenTarget(ctx, 640, 400)
    red = ctx.texture((32, 18), 4, np.tile(np.array([255, 0, 0, 255], np.uint8), 32 * 18).tobytes())
    view.draw(tgt.fbo, {"A": red, "B": None, "master": red}, ["HELLO"])
    img = tgt.read_rgb()
    lay = view.layout((640, 400))
    for key in ("A", "master"):
        x, y, w, h = lay[key]
        tile = img[400 - (y + h) : 400 - y, x : x + w]
        assert (tile[h // 2, w // 2] == (255, 0, 0)).all()
    x, y, w, h = lay["B"]
    assert img[400 - y - h // 2, x + w // 2].max() < 40  # no deck B: background
    x, y, w, h = lay["text"]
    assert img[400 - (y + h) : 400 - (y + h) + 20, x : x + 40].max() == 255  # text drawn
    view.release()
    ctx.release()


@pytest.mark.skipif(shutil.which("xvfb-run") is None, reason="Xvfb not installed")
def test_operator_window_shares_textures_with_the_output_window(tmp_path):
    """Two glfw windows, one share group: the master tile shows the master texture itself."""
    r = subprocess.run(
        ["xvfb-run", "-a", "-s", "-screen 0 1920x1080x24", sys.executable,
         str(ROOT / "tools" / "operator_screenshot.py"), "--out", str(tmp_path), "--frames", "2",
         "--output-size", "320x180"],
        capture_output=True, text=True, timeout=240, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert res["ok"] and res["operator_size"] == [1280, 800] and res["master_size"] == [320, 180]
    assert abs(res["tile_mean"] - res["master_mean"]) < 4  # the same picture, fit into the tile
    assert res["a_tile_mean"] > 20  # deck A preview is the composited scene
    assert (tmp_path / "operator-window.png").stat().st_size > 1000
    assert (tmp_path / "master-output.png").exists()
