"""Preset and mapping files: size/depth/file-type limits, finite numbers, empty files said so."""

import pytest

from vj.params import default_registry
from vj.preset import PresetError, load_preset, parse_mappings_file


def test_deep_mappings_file_is_refused(tmp_path):
    path = tmp_path / "mappings.yaml"
    path.write_text("mappings:\n" + "  - " + "[" * 50_000 + "]" * 50_000 + "\n")
    with pytest.raises(PresetError, match=r"mappings\.yaml:2: nested more than 64 levels"):
        parse_mappings_file(path, default_registry())


def test_huge_and_device_files_are_refused(tmp_path):
    big = tmp_path / "big.yaml"
    big.write_text("# padding\n" * 200_000)
    with pytest.raises(PresetError, match=r"big\.yaml: cannot read: file is larger than"):
        load_preset(big, default_registry())
    link = tmp_path / "zero.yaml"
    link.symlink_to("/dev/zero")
    with pytest.raises(PresetError, match=r"zero\.yaml: cannot read: not a regular file"):
        parse_mappings_file(link)


@pytest.mark.parametrize("text", [".nan", ".inf", "-.inf"])
def test_non_finite_parameters_are_refused(tmp_path, text):
    path = tmp_path / "p.yaml"
    path.write_text(f"params:\n  zoom: {text}\n")
    with pytest.raises(PresetError, match=r"p\.yaml:2: params\.zoom: expected a finite number"):
        load_preset(path, default_registry())


def test_exponent_without_sign_is_a_number(tmp_path):
    # YAML 1.1 reads `1.0e9` as a string: the message must be about the range, not the type
    path = tmp_path / "p.yaml"
    path.write_text("params:\n  zoom: 1.0e9\n")
    with pytest.raises(PresetError, match=r"p\.yaml:2: params\.zoom: 1000000000\.0 out of range"):
        load_preset(path, default_registry())
    path.write_text("params:\n  zoom: 1.5e0\n")
    assert load_preset(path, default_registry()).params["zoom"] == 1.5


@pytest.mark.parametrize(
    "text,match",
    [
        ("routes:\n  - {source: rms, target: zoom, amount: .nan}\n",
         r"p\.yaml:2: routes\[0\]\.amount: expected a finite number"),
        ("routes:\n  - {source: rms, target: zoom, amount: 1.0e9}\n",
         r"p\.yaml:2: routes\[0\]\.amount: 1000000000\.0 out of range"),
        ("decks:\n  A:\n    expression: {layers: middle, glide: .inf}\n",
         r"p\.yaml:3: decks\.A\.expression\.glide: expected a finite number"),
        ("cues:\n  - {preset: default, beats: 1.0e9}\n",
         r"p\.yaml:2: cues\[0\]\.beats: 1000000000\.0 out of range"),
    ],
)  # fmt: skip
def test_show_schema_numbers_are_finite_and_read_exponents(tmp_path, text, match):
    # routes / decks / cues go through the same node walker (vj/yamldoc.py) as params
    path = tmp_path / "p.yaml"
    path.write_text(text)
    with pytest.raises(PresetError, match=match):
        load_preset(path, default_registry())
    path.write_text("routes:\n  - {source: rms, target: zoom, amount: 2.5e-1}\n")
    assert load_preset(path, default_registry()).routes[0].amount == 0.25


def test_empty_preset_says_so(tmp_path):
    path = tmp_path / "empty.yaml"
    path.write_text("# nothing here yet\n")
    preset = load_preset(path, default_registry())
    assert preset.params == {}
    assert any("empty" in w and "default" in w for w in preset.warnings)
