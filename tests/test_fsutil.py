"""Atomic writes: complete or absent, with ordinary permissions."""

import os
import stat

import pytest

from vj.fsutil import atomic_path, atomic_write_bytes


def _mode(p):
    return stat.S_IMODE(os.stat(p).st_mode)


def test_new_file_gets_umask_mode_not_private(tmp_path):
    old = os.umask(0o022)  # tests may set the umask; library code only reads it
    try:
        atomic_write_bytes(tmp_path / "a.txt", b"hi")
    finally:
        os.umask(old)
    assert (tmp_path / "a.txt").read_bytes() == b"hi"
    assert _mode(tmp_path / "a.txt") == 0o644


def test_existing_file_keeps_its_mode(tmp_path):
    p = tmp_path / "m.yaml"
    p.write_text("old")
    os.chmod(p, 0o600)
    atomic_write_bytes(p, b"new")
    assert p.read_text() == "new" and _mode(p) == 0o600


def test_failure_leaves_target_untouched_and_no_temp(tmp_path):
    p = tmp_path / "keep.txt"
    p.write_text("precious")
    with pytest.raises(RuntimeError):
        with atomic_path(p) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash mid-write")
    assert p.read_text() == "precious"
    assert [x.name for x in tmp_path.iterdir()] == ["keep.txt"]
