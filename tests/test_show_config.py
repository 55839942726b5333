"""The show schema in presets: routes, decks, directions, keyframes, loops, cues; errors name
file:line with a suggestion."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest

from vj.params import default_registry
from vj.preset import PresetError, list_presets, load_preset, presets_dir
from vj.show.routes import Route

GOOD = """\
seed: 3
decks:
  A:
    seed: 11
    directions: {kind: sefa, layers: middle, count: 8}
    keyframes: {seeds: [1, 2, 3, 4]}
    loop: {bars: 2, interpolation: slerp}
    expression: {layers: middle, glide: 0.1}
  B:
    checkpoint: default
    directions: {kind: random, seed: 5, count: 4}
routes:
  # comments are fine
  - {source: onset.low, target: bend.zoom, block: 3, amount: 0.3, release: 0.2}
  - {source: beat, target: expression, deck: A}
  - {source: lfo.sine, period: 8, target: style, direction: 1, layers: [4, 5], deck: B}
  - {source: band.high, target: noise_mask, mask: outside, layers: fine}
  - {source: rms, target: fx_amount, curve: scurve, range: [0.1, 0.8], attack: 0.05}
  - {source: press.next_keyframe, target: keyframe.jump, quantize: bar}
  - {source: param.crossfader, target: zoom, gate: param.hud, offset: -0.5}
  - {source: centroid, target: kaleido.segments, amount: 4}
cues:
  - {preset: club, keyframe: 3, beats: 8}
  - {preset: default}
"""


def write(tmp_path, text: str, name: str = "p.yaml"):
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


def load(path):
    return load_preset(path, default_registry(), effects=["default", "kaleido"])


def test_good_show_preset(tmp_path):
    pr = load(write(tmp_path, GOOD))
    a, b = pr.decks
    assert (a.name, a.seed, b.name, b.seed) == ("A", 11, "B", 4)  # B: preset seed + 1
    assert a.directions.layers == "middle" and a.directions.count == 8
    assert a.keyframes.seeds == (1, 2, 3, 4) and a.loop.beats == 8.0
    assert a.loop.interpolation == "slerp" and a.expression.glide == 0.1
    assert b.directions.kind == "random"
    assert len(pr.routes) == 8 and isinstance(pr.routes[0], Route)
    r = pr.routes[2]
    assert (r.deck, r.layers, r.direction, r.period) == ("B", (4, 5), 1, 8.0)
    assert pr.routes[4].range == (0.1, 0.8) and pr.routes[5].quantize == "bar"
    assert [c.preset for c in pr.cues] == ["club", "default"] and pr.cues[0].morph_beats == 8.0


@pytest.mark.parametrize(
    "line,text,match",
    [
        (3, "routes:\n  - source: rms\n    target: zooom\n", "did you mean 'zoom'"),
        (2, "routes:\n  - {source: onset.hgh, target: zoom}\n", "did you mean 'onset.high'"),
        (2, "routes:\n  - {source: rms, target: zoom, curv: exp}\n", "did you mean 'curve'"),
        (2, "routes:\n  - {source: rms, target: zoom, curve: lin}\n", "did you mean 'linear'"),
        (2, "routes:\n  - {source: rms, target: style, layers: midle}\n", "did you mean 'middle'"),
        (2, "routes:\n  - {source: rms, target: zoom, deck: B}\n", "not allowed"),
        (2, "routes:\n  - {source: rms, target: zoom, layers: fine}\n", "not used here"),
        (2, "routes:\n  - {source: param.intensty, target: zoom}\n", "did you mean 'intensity'"),
        (2, "routes:\n  - {source: rms, target: blur.amount}\n", "unknown target"),
        (3, "decks:\n  A:\n    directons: {kind: sefa}\n", "did you mean 'directions'"),
        (3, "decks:\n  A:\n    loop: {beats: 4}\n", "needs `keyframes`"),
        (2, "decks:\n  C: {}\n", "unknown key"),
        (3, "decks:\n  A:\n    keyframes: {files: [nope.npy]}\n", "no file"),
        (2, "cues:\n  - {preset: clubb}\n", "no preset named 'clubb' \\(did you mean 'club'\\?\\)"),
    ],
)
def test_errors_name_file_line_and_suggest(tmp_path, line, text, match):
    p = write(tmp_path, text)
    with pytest.raises(PresetError, match=match) as ei:
        load(p)
    assert str(ei.value).startswith(f"{p}:{line}: "), str(ei.value)


def test_keyframe_files_relative_to_the_preset(tmp_path):
    np.save(tmp_path / "portrait.npy", np.zeros(256, np.float32))
    pr = load(write(tmp_path, "decks:\n  A:\n    keyframes: {files: [portrait.npy]}\n"))
    assert pr.decks[0].keyframes.files == (tmp_path / "portrait.npy",)


def test_shipped_presets_load_and_build():
    import torch

    from vj.gan.checkpoint import load_checkpoint_or_default
    from vj.show.modulate import build_routing

    torch.set_num_threads(1)
    names = list_presets()
    show_presets = []
    for name in names:
        pr = load_preset(presets_dir() / f"{name}.yaml", default_registry())
        if pr.routes:
            show_presets.append(pr)
            text = (presets_dir() / f"{name}.yaml").read_text()
            routes_part = text[text.index("routes:") :]
            # a comment on every route: each "- " item line follows a comment line
            lines = routes_part.splitlines()
            for i, ln in enumerate(lines):
                if ln.strip().startswith("- ") and "source" in ln:
                    assert "#" in ln or lines[i - 1].strip().startswith("#"), (name, ln)
    assert len(show_presets) >= 5
    assert any(len(p.decks) == 2 for p in show_presets)
    assert "expressions" in names
    G, _ = load_checkpoint_or_default("default")
    for pr in show_presets:
        build_routing(pr, [G] * max(len(pr.decks), 1), cache_dir=None)
