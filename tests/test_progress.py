"""Progress bars redraw ten times a second on a terminal, every 10 s in a log."""

from __future__ import annotations

import io
import time

from vj.progress import progress_bar


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def _draws(out) -> int:
    with progress_bar(total=40, enabled=True, file=out, desc="x") as bar:
        for _ in range(40):
            time.sleep(0.01)
            bar.update(1)
    return out.getvalue().count("\r")


def test_a_log_gets_few_redraws_a_terminal_many():
    log, tty = _draws(io.StringIO()), _draws(_Tty())
    assert log <= 3 < tty  # log: first draw and the close; terminal: ~4 in 0.4 s and more


def test_disabled_writes_nothing():
    out = io.StringIO()
    with progress_bar(total=3, enabled=False, file=out) as bar:
        bar.update(3)
    assert out.getvalue() == ""
