"""Saving a learned binding into a hand-kept mapping file without losing what the user wrote.

A round trip through ruamel.yaml keeps comments, order and layout; only overlapped entries
are removed and the new one appended. The file is checked with vj's own strict loader before
(an unknown parameter or a broken file: nothing is written) and after (the new text must load).
A symlinked file stays a symlink (its target is rewritten); `.bak` keeps the original's mode.
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
from pathlib import Path

from vj.control.mapping import Mapping, load_mappings, mapping_to_dict
from vj.fsutil import atomic_path, atomic_write_bytes
from vj.params import ParamRegistry

HEADER = "# vj MIDI mappings (written by vj; safe to edit, comments are kept)\n"


def save_learned(path: str | Path, mapping: Mapping, registry: ParamRegistry | None) -> Path:
    """Merge `mapping` into the file at `path` (replacing bindings of the same control).
    Returns the file actually written (a symlink's target). Raises PresetError for a file
    that does not load (unknown parameter, syntax), which is then left as it was."""
    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    target = Path(path)
    if target.is_symlink():
        target = target.resolve()  # write through: the link (e.g. into a dotfiles repo) stays
    yaml = YAML()  # round-trip mode: comments and layout survive
    yaml.width = 4096
    if target.exists():
        old = load_mappings(target, registry)  # strict: refuses to clobber a broken file
        text = target.read_text(encoding="utf-8")
        data = yaml.load(text)
    else:
        old, text, data = [], "", None
    if data is None:
        data = CommentedMap()
    seq = data if isinstance(data, list) else data.get("mappings")
    if seq is None:
        seq = CommentedSeq()
        data["mappings"] = seq
    # The strict loader and ruamel read the list in the same order: index i is the same entry.
    hits = [i for i, m in enumerate(old) if m.overlaps(mapping)]
    new = mapping_to_dict(mapping)
    for i in reversed(hits[1:]):
        _delete_keeping_comments(seq, i)
    if hits:  # rebinding a control: the entry changes in place, its comments stay with it
        entry = seq[hits[0]]
        if isinstance(entry, CommentedMap) and entry.fa.flow_style():
            for key in list(entry):
                del entry[key]
            entry.update(new)
        else:
            seq[hits[0]] = _flow(CommentedMap, new)
    else:
        seq.append(_flow(CommentedMap, new))
    out = io.StringIO()
    yaml.dump(data, out)
    new_text = out.getvalue() if text.strip() else HEADER + out.getvalue()
    target.parent.mkdir(parents=True, exist_ok=True)
    _check_loads(new_text, target.parent, registry)
    if target.exists():  # keep the previous file as .bak, with the original's mode
        bak = target.with_name(target.name + ".bak")
        mode = target.stat().st_mode & 0o777
        with atomic_path(bak) as bak_tmp:
            shutil.copy2(target, bak_tmp)
        os.chmod(bak, mode)
    atomic_write_bytes(target, new_text.encode("utf-8"))
    return target


def _flow(cls, d: dict):
    m = cls(d)
    m.fa.set_flow_style()  # one line per binding, like vj writes them
    return m


def _delete_keeping_comments(seq, i: int) -> None:
    """del seq[i], moving the comment that follows the entry (ruamel attaches the comment
    lines after an item to it) onto the entry before, so hand-written notes survive."""
    note = seq.ca.items.pop(i, None)
    del seq[i]
    if note is None or note[0] is None or i == 0:
        return
    prev = seq.ca.items.get(i - 1)
    if prev is None or prev[0] is None:
        seq.ca.items[i - 1] = note
    else:
        prev[0].value = prev[0].value.rstrip("\n") + "\n" + note[0].value.lstrip()


def _check_loads(text: str, folder: Path, registry: ParamRegistry | None) -> None:
    """`text` must load with the strict loader (relative paths resolve as in the real file)."""
    fd, tmp = tempfile.mkstemp(prefix=".vj-mappings-check.", suffix=".yaml", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        load_mappings(tmp, registry)
    finally:
        os.unlink(tmp)
