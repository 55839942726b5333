"""Bounded reading of user YAML: size, file type and nesting depth are checked before parsing.

PyYAML's composer recurses once per nesting level (a 50 000-deep file ends in RecursionError)
and `read_text` on a symlink to /dev/zero never ends; both are refused here with a message.
"""

from __future__ import annotations

import stat
from pathlib import Path

import yaml

MAX_YAML_BYTES = 1 << 20  # presets and mapping files are a few kB
MAX_YAML_DEPTH = 64  # the deepest real preset nests about 6 levels


class YamlLimitError(ValueError):
    """A YAML file is too big, too deep or not a regular file; `line` is 1-based or None."""

    def __init__(self, problem: str, line: int | None = None) -> None:
        super().__init__(problem)
        self.problem, self.line = problem, line


def read_bounded_text(path: Path, max_bytes: int = MAX_YAML_BYTES) -> str:
    """The file's text (UTF-8); refuses devices, FIFOs and files over `max_bytes`.
    Raises OSError / UnicodeDecodeError as reading does, YamlLimitError for the limits."""
    st = path.stat()  # follows symlinks: a link to /dev/zero is a character device
    if not stat.S_ISREG(st.st_mode):
        raise YamlLimitError("not a regular file (a device, FIFO or directory?)")
    with open(path, "rb") as fh:
        data = fh.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise YamlLimitError(f"file is larger than {max_bytes // 1024} kB; is it really YAML?")
    return data.decode("utf-8")


def check_depth(text: str, max_depth: int = MAX_YAML_DEPTH) -> None:
    """Refuse nesting deeper than `max_depth`; the event parser does not recurse, so this runs
    before the (recursive) composer. YAML syntax errors propagate as yaml.YAMLError."""
    depth = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            if depth > max_depth:
                line = event.start_mark.line + 1 if event.start_mark is not None else None
                raise YamlLimitError(f"nested more than {max_depth} levels deep", line)
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1
