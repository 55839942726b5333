"""Preset loading: shipped presets are valid; every mistake is reported as file:line: problem."""

from __future__ import annotations

import textwrap

import pytest

from vj.control.mapping import Mapping
from vj.params import default_registry
from vj.preset import (
    PresetError,
    apply_preset,
    builtin_preset_path,
    list_effects,
    list_presets,
    load_preset,
    presets_dir,
)

EFFECTS = ["default", "kaleido", "none"]


def write(tmp_path, text: str, name: str = "p.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def error(tmp_path, text: str) -> str:
    with pytest.raises(PresetError) as info:
        load_preset(write(tmp_path, text), default_registry(), effects=EFFECTS)
    return str(info.value)


@pytest.mark.parametrize("name", ["default", "club", "ambient"])
def test_shipped_presets_load(name):
    assert name in list_presets()
    path = builtin_preset_path(name)
    assert path.parent == presets_dir()
    reg = default_registry()
    preset = load_preset(path, reg)
    assert preset.name == name and preset.midi.devices
    assert preset.effect in list_effects()
    for dev in preset.midi.devices:
        assert dev.mappings
        for m in dev.mappings:
            assert m.param in reg


def test_default_preset_contents():
    reg = default_registry()
    p = load_preset(builtin_preset_path(), reg)
    assert p.render.width == 1280 and p.render.height == 720 and p.render.fps == 60
    assert p.audio.block_size == 256 and p.audio.hop == 256 and p.audio.n_bands == 8
    assert p.generator.checkpoint == "default"
    assert p.osc == {"host": "127.0.0.1", "port": 9000, "enabled": True}
    assert Mapping("cc", 0, "intensity", soft_takeover=True) in p.midi.devices[0].mappings
    assert p.midi.programs[1] == "club"
    reg.set("zoom", 1.7)
    apply_preset(p, reg)
    assert reg.get("zoom") == 1.0 and reg.get("truncation") == 0.7


def test_apply_preset_sets_listed_and_resets_the_rest(tmp_path):
    reg = default_registry()
    reg.set("contrast", 1.9)
    p = load_preset(write(tmp_path, "params: {drift: 0.9, hud: false}\n"), reg, effects=EFFECTS)
    apply_preset(p, reg)
    assert reg.get("drift") == 0.9 and reg.get("hud") == 0.0 and reg.get("contrast") == 1.0


def test_unknown_parameter_suggests(tmp_path):
    msg = error(
        tmp_path,
        """
        seed: 3
        params:
          intensity: 1.0
          fx_amout: 0.5
    """,
    )
    assert msg == (
        f"{tmp_path / 'p.yaml'}:4: params.fx_amout: unknown parameter 'fx_amout' "
        "(did you mean 'fx_amount'?)"
    )


def test_out_of_range_names_the_range(tmp_path):
    msg = error(tmp_path, "params:\n  zoom: 3.5\n")
    assert msg.endswith("p.yaml:2: params.zoom: 3.5 out of range [0.5, 2.0]")


@pytest.mark.parametrize(
    ("text", "expect"),
    [
        ("seed: seven\n", ":1: seed: expected an integer, got 'seven'"),
        ("effect: blur\n", ":1: effect: 'blur' is not allowed; allowed: default, kaleido, none"),
        ("render:\n  width: 1280\n  hight: 720\n", ":3: render.hight: unknown key (did you mean"),
        ("render:\n  width: 1279\n", ":2: render.width: 1279 must be even"),
        ("audio:\n  hop: 300\n", ":2: audio.hop: 300 is not a power of two"),
        ("generator: {resolution: 96}\n", ":1: generator.resolution: 96 is not a power of two"),
        ("render: {fullscreen: 1}\n", ":1: render.fullscreen: expected true or false, got 1"),
        ("bogus: 1\n", ":1: bogus: unknown key; allowed: name, description"),
        ("params:\n  tap: 1\n", ":2: params.tap: 'tap' is a trigger"),
        ("seed: 1\nseed: 2\n", ":2: seed: duplicate key (first on line 1)"),
        ("params: [1, 2]\n", ":1: params: expected a mapping"),
        ("params:\n  zoom: [1\n", ": YAML syntax"),
        ("osc: {port: 70000}\n", ":1: osc.port: 70000 out of range [1, 65535]"),
        ("midi: {api: pulse}\n", ":1: midi.api: 'pulse' is not allowed; allowed: auto, alsa"),
        ("midi: {programs: {3: nosuch}}\n", ":1: midi.programs.3: no preset named 'nosuch'"),
        ("seed: !!python/object:os.system x\n", ":1: value: cannot read this value"),
    ],
)
def test_bad_values_name_file_line_and_allowed(tmp_path, text, expect):
    msg = error(tmp_path, text)
    assert msg.startswith(str(tmp_path / "p.yaml") + ":")
    assert expect in msg, msg


MIDI_HEAD = """
    midi:
      devices:
        - port: "nano"
          mappings:
"""


@pytest.mark.parametrize(
    ("mappings", "expect"),
    [
        (
            "    - {cc: 1, param: zoom}\n    - {cc: 1, param: drift}\n",
            ":6: midi.devices[0].mappings[1]: cc 1 (any channel) → drift clashes with "
            "midi.devices[0].mappings[0] (line 5): cc 1 (any channel) → zoom",
        ),
        (
            "    - {cc14: 3, param: zoom}\n    - {cc: 35, param: drift, channel: 2}\n",
            ":6: midi.devices[0].mappings[1]: cc 35 (channel 2) → drift clashes",
        ),
        (
            "    - {cc: 1, param: zoom, range: [0, 3]}\n",
            ":5: midi.devices[0].mappings[0].range: 0.0 outside zoom's range [0.5, 2.0]",
        ),
        ("    - {cc: 1, param: zom}\n", "mappings[0].param: unknown parameter 'zom' (did you mean"),
        ("    - {cc: 200, param: zoom}\n", "mappings[0].cc: 200 out of range [0, 127]"),
        ("    - {cc14: 40, param: zoom}\n", "mappings[0].cc14: 40 out of range [0, 31]"),
        ("    - {cc: 1, note: 2, param: zoom}\n", "give exactly one control type"),
        ("    - {cc: 1}\n", "mappings[0]: missing 'param'"),
        ("    - {cc: 1, param: zoom, curve: cubic}\n", "'cubic' is not allowed; allowed: linear"),
        ("    - {note: 1, param: hud, mode: latch}\n", "mode: 'latch' is not allowed"),
        ("    - {cc: 1, param: zoom, channel: 17}\n", "channel: 17 out of range [1, 16]"),
        ("    - {pitchbend: 3, param: zoom}\n", "write 'pitchbend: true'"),
    ],
)
def test_bad_mappings(tmp_path, mappings, expect):
    text = textwrap.dedent(MIDI_HEAD) + textwrap.indent(mappings, "      ")
    msg = error(tmp_path, text)
    assert expect in msg, msg


def test_bad_port_regex_and_missing_port(tmp_path):
    msg = error(tmp_path, "midi:\n  devices:\n    - port: 'nano(['\n")
    assert ":3: midi.devices[0].port: bad regular expression 'nano(['" in msg
    msg = error(tmp_path, "midi:\n  devices:\n    - feedback: true\n")
    assert ":3: midi.devices[0]: missing 'port'" in msg


def test_mappings_file_merged_and_its_errors_name_it(tmp_path):
    write(tmp_path, "mappings:\n  - {cc: 1, param: drift, channel: 3}\n", "learned.yaml")
    text = """
        midi:
          devices:
            - port: x
              mappings:
                - {cc: 1, param: zoom}
                - {cc: 2, param: master}
              mappings_file: learned.yaml
    """
    p = load_preset(write(tmp_path, text), default_registry(), effects=EFFECTS)
    dev = p.midi.devices[0]
    assert dev.mappings_file == tmp_path / "learned.yaml"
    # the learned binding overrides the preset's one on the same control
    assert list(dev.mappings) == [Mapping("cc", 2, "master"), Mapping("cc", 1, "drift", channel=2)]
    assert p.warnings == ()
    write(tmp_path, "mappings:\n  - {cc: 1, param: drift, curve: wobbly}\n", "learned.yaml")
    p = load_preset(tmp_path / "p.yaml", default_registry(), effects=EFFECTS)
    # a broken learned file does not stop the show: a warning naming it, inline mappings used
    assert list(p.midi.devices[0].mappings) == [
        Mapping("cc", 1, "zoom"),
        Mapping("cc", 2, "master"),
    ]
    (warning,) = p.warnings
    assert warning.startswith(str(tmp_path / "learned.yaml") + ":2: mappings[0].curve:")


def test_missing_and_unknown_builtin(tmp_path):
    with pytest.raises(PresetError, match="cannot read"):
        load_preset(tmp_path / "nope.yaml", default_registry())
    with pytest.raises(PresetError, match="no preset named 'nope'; available: .*default"):
        builtin_preset_path("nope")
    empty = load_preset(write(tmp_path, ""), default_registry())
    assert empty.name == "p" and empty.render.width == 1280


def test_yaml_anchors_and_merge_keys(tmp_path):
    text = """
        midi:
          devices:
            - port: x
              mappings:
                - &knob {cc: 1, param: zoom, soft_takeover: true, curve: exp}
                - {<<: *knob, cc: 2, param: drift}
    """
    p = load_preset(write(tmp_path, text), default_registry(), effects=EFFECTS)
    assert p.midi.devices[0].mappings[1] == Mapping(
        "cc", 2, "drift", soft_takeover=True, curve="exp"
    )
    msg = error(tmp_path, text.replace("param: drift}", "param: drift, cc: 3}"))
    assert ":6: midi.devices[0].mappings[1].cc: duplicate key (first on line 6)" in msg
