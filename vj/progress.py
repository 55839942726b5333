"""Progress bars: tqdm, redrawn ten times a second on a terminal and every 10 s in a log."""

from __future__ import annotations

import sys


def progress_bar(iterable=None, *, enabled: bool = True, file=None, **kw):
    """A tqdm bar on `file` (stderr by default); off when not `enabled`.

    Redirected to a file or a CI log, tqdm's ten carriage-return redraws a second fill it
    with thousands of copies of the bar: there it redraws every 10 s instead."""
    from tqdm import tqdm

    out = sys.stderr if file is None else file
    isatty = getattr(out, "isatty", None)
    tty = bool(isatty and isatty())
    kw.setdefault("mininterval", 0.1 if tty else 10.0)
    kw.setdefault("dynamic_ncols", tty)
    return tqdm(iterable, disable=not enabled, file=out, **kw)
