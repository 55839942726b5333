"""The preset's `effects:` chains and `stage:` section (fit, upscale, output size, outputs)."""

from __future__ import annotations

import pytest

from vj.params import default_registry
from vj.preset import PresetError, StageConfig, load_preset


def load(tmp_path, text):
    p = tmp_path / "p.yaml"
    p.write_text(text)
    return load_preset(p, default_registry())


def test_effect_chains_stage_and_effect_params(tmp_path):
    pre = load(
        tmp_path,
        "effects:\n  master: [kaleido, rgbsplit, vignette]\n  A: [feedback]\n  B: []\n"
        "stage: {fit: tile, upscale: lanczos, output: 3840x2160, outputs: [ndi, vcam],"
        " name: club}\n"
        "params:\n  kaleido.segments: 8\n  feedback.decay: 0.95\n",
    )
    assert pre.effects == {
        "master": ("kaleido", "rgbsplit", "vignette"),
        "A": ("feedback",),
        "B": (),
    }
    assert pre.stage == StageConfig("tile", "lanczos", (3840, 2160), ("ndi", "vcam"), "club")
    assert pre.params["kaleido.segments"] == 8 and pre.params["feedback.decay"] == 0.95


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "effects:\n  master: [kaleidp]\n",
            "p.yaml:2: effects.master[0]: 'kaleidp' is not allowed (did you mean 'kaleido'?)",
        ),
        ("effects:\n  C: [none]\n", "p.yaml:2: effects"),
        ("stage:\n  fit: cover\n", "p.yaml:2: stage.fit: 'cover' is not allowed"),
        ("stage:\n  output: 4k\n", "p.yaml:2: stage.output: '4k' must be WIDTHxHEIGHT"),
        ("stage:\n  output: 3841x2160\n", "each side even"),
        ("stage:\n  outputs: [spout, rtmp]\n", "p.yaml:2: stage.outputs[1]: 'rtmp' is not allowed"),
        ("params:\n  kaleido.segmnts: 3\n", "did you mean 'kaleido.segments'"),
    ],
)
def test_bad_sections_name_file_and_line(tmp_path, text, message):
    with pytest.raises(PresetError) as e:
        load(tmp_path, text)
    assert message in str(e.value)


def test_cli_effect_typo_and_shader_params_listing():
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    env = {**__import__("os").environ, "PYTHONPATH": str(root)}
    r = subprocess.run(
        [sys.executable, "-m", "vj", "demo", "--effect", "kaleidp", "-o", "x.mp4"],
        capture_output=True, text=True, timeout=120, cwd=root, env=env,
    )  # fmt: skip
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "kaleidp" in r.stderr and "(did you mean 'kaleido'?)" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1  # one line, not a driver log
    r = subprocess.run(
        [sys.executable, "-m", "vj", "shaders", "--params"],
        capture_output=True, text=True, timeout=120, cwd=root, env=env,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "effects: default, displace" in r.stdout
    assert "  pixelate.size = 8 [1..64] int  block size in output pixels" in r.stdout
