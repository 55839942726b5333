"""Where the shipped `shaders/` and `presets/` folders are: the source tree or an installed copy."""

from __future__ import annotations

import sys
import sysconfig
from pathlib import Path


def data_dir(name: str) -> Path:
    """The top-level folder `name` ("shaders" or "presets") shipped with vj.

    A checkout or editable install has it beside the package; a wheel install puts it under
    `<prefix>/share/vj/` (pyproject's data-files).
    """
    here = Path(__file__).resolve().parent.parent / name
    if here.is_dir():
        return here
    for prefix in (sysconfig.get_path("data"), sys.prefix):
        p = Path(prefix) / "share" / "vj" / name
        if p.is_dir():
            return p
    raise FileNotFoundError(
        f"vj's {name}/ folder is missing (looked beside the package and "
        f"in {sys.prefix}/share/vj); reinstall vj"
    )
