"""Validation for the `vj` command line: argparse types and checks that turn bad input into a
one-line message (exit 2) before anything heavy is loaded."""

from __future__ import annotations

import argparse
from pathlib import Path

from vj.hints import did_you_mean


def int_in(lo: int, hi: int):
    """argparse type: an integer in lo..hi."""

    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, not {text!r}") from None
        if not lo <= v <= hi:
            raise argparse.ArgumentTypeError(f"{v} is out of range: allowed {lo}..{hi}")
        return v

    return parse


def positive_float(hi: float | None = None):
    """argparse type: a finite number > 0 (and <= hi)."""

    def parse(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, not {text!r}") from None
        if not (v > 0 and v < float("inf")) or (hi is not None and v > hi):
            limit = f"0 < value <= {hi:g}" if hi is not None else "a finite number > 0"
            raise argparse.ArgumentTypeError(f"{text} is out of range: allowed {limit}")
        return v

    return parse


# Optional packages -> the extra that installs them (named when an import fails).
_EXTRAS = {"onnx": "export", "onnxscript": "export", "onnxruntime": "export", "aalink": "link"}


def missing_extra(exc: ImportError) -> str | None:
    """'onnxscript is not installed: pip install -e ".[export]"', or None if not an extra's."""
    name = (exc.name or "").split(".")[0]
    if name not in _EXTRAS:
        text = str(exc)
        name = next((m for m in _EXTRAS if f"'{m}'" in text or f" {m} " in text), "")
    if name not in _EXTRAS:
        return None
    return f'{name} is not installed; install its extra: pip install -e ".[{_EXTRAS[name]}]"'


def check_effect(name: str | None) -> None:
    """An unknown --effect is a user error (the compositor would raise deep inside)."""
    from vj.preset import list_effects

    known = list_effects()
    if name is not None and known and name not in known:
        hint = did_you_mean(name, known)
        raise _user_error(f"--effect {name}: no such effect{hint}; available: {', '.join(known)}")


def check_output(path: str, flag: str) -> Path:
    out = Path(path)
    if not out.parent.is_dir():
        raise _user_error(f"{flag} {out}: no such directory {out.parent}")
    _check_writable(out, flag)
    return out


def _check_writable(out: Path, flag: str) -> None:
    """Create and remove a probe file beside `out`: a read-only or virtual folder (/proc, a
    full disk's quota) is told before the render or the show starts, not at its first frame."""
    import tempfile

    try:
        with tempfile.NamedTemporaryFile(dir=out.parent, prefix=f".{out.name}.probe-"):
            pass
    except OSError as exc:
        why = exc.strerror or str(exc)
        raise _user_error(f"{flag} {out}: cannot write in {out.parent} ({why})") from None


def _user_error(message: str) -> Exception:
    from vj.cli import UserError  # the CLI prints it without a traceback, exit 2

    return UserError(message)
