"""The "did you mean" hint that every unknown-name message carries."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def did_you_mean(word: str, allowed: Iterable[str]) -> str:
    """' (did you mean 'x'?)' for the closest allowed name, or '' when none is close."""
    close = difflib.get_close_matches(str(word), list(allowed), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
