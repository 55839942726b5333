"""MIDI learn saves: comments survive, unknown parameters are refused, .bak keeps the mode,
a symlinked file stays a symlink."""

import os
import stat

import pytest

from vj.control.mapping import Mapping, load_mappings
from vj.control.mapping_file import save_learned
from vj.params import default_registry
from vj.preset import PresetError

HAND = """\
# my controller: top row zooms, bottom row drifts
mappings:
  - {cc: 16, param: zoom}   # the big knob
  # faders
  - cc: 22
    param: drift
    channel: 3
"""


def test_comments_survive_repeated_saves(tmp_path):
    reg = default_registry()
    path = tmp_path / "m.yaml"
    path.write_text(HAND)
    save_learned(path, Mapping("cc", 30, "zoom"), reg)
    save_learned(path, Mapping("cc", 31, "drift"), reg)
    save_learned(path, Mapping("cc", 16, "drift"), reg)  # rebinds the big knob
    text = path.read_text()
    assert "# my controller: top row zooms, bottom row drifts" in text
    assert "# faders" in text
    got = {(m.number, m.param) for m in load_mappings(path, reg)}
    assert got == {(22, "drift"), (30, "zoom"), (31, "drift"), (16, "drift")}


def test_unknown_parameter_is_never_written(tmp_path):
    reg = default_registry()
    path = tmp_path / "m.yaml"
    path.write_text("mappings:\n  - {cc: 1, param: zooom}\n")
    before = path.read_bytes()
    with pytest.raises(PresetError, match=r"m\.yaml:2: .*unknown parameter 'zooom'"):
        save_learned(path, Mapping("cc", 2, "zoom"), reg)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.yaml"]  # no temp files left


def test_bak_keeps_mode_and_symlink_stays(tmp_path):
    reg = default_registry()
    real = tmp_path / "dotfiles" / "m.yaml"
    real.parent.mkdir()
    real.write_text(HAND)
    os.chmod(real, 0o640)
    link = tmp_path / "m.yaml"
    link.symlink_to(real)
    save_learned(link, Mapping("cc", 40, "zoom"), reg)
    assert link.is_symlink() and link.resolve() == real.resolve()
    assert any(m.number == 40 for m in load_mappings(link, reg))
    bak = real.with_name("m.yaml.bak")
    assert bak.read_text() == HAND
    assert stat.S_IMODE(bak.stat().st_mode) == 0o640
    assert stat.S_IMODE(real.stat().st_mode) == 0o640


def test_new_file_is_created(tmp_path):
    reg = default_registry()
    path = tmp_path / "sub" / "m.yaml"
    save_learned(path, Mapping("cc", 7, "zoom"), reg)
    assert [(m.number, m.param) for m in load_mappings(path, reg)] == [(7, "zoom")]
    assert not (tmp_path / "sub" / "m.yaml.bak").exists()
