"""Keep the show going when one stage fails: a supervisor around a stage's step function.

A generator exception (CUDA out of memory included), or a failed NDI/recording output, must
not end the show: the caller keeps showing its last good result while the supervisor counts
the failure, warns at a bounded rate, and restarts the stage after a growing back-off.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


class StageError(RuntimeError):
    """A failure the stage has already put in words: reported without its type name."""


class Supervisor:
    """`sup.step(*args)` calls `step(*args)`; an exception there (or in `restart`) is caught.

    After a failure the stage is *down*: `step` returns `fallback` at once (the caller keeps
    its last frame) until the back-off has passed, then `restart()` runs (rebuild the engine,
    reopen the output) and the next step tries again. The back-off doubles with each failure
    in a row (`backoff_s` .. `max_backoff_s`) and resets after a success. `status` is a HUD
    line ("" while healthy); `warn(message)` is called at most once per `warn_interval_s`, with
    the count of failures since the last warning. With `max_restarts` the stage gives up after
    that many restart attempts (it stays down, `gave_up` is set and said once). KeyboardInterrupt
    and SystemExit pass through.
    """

    def __init__(
        self,
        name: str,
        step: Callable[..., Any],
        restart: Callable[[], None] | None = None,
        warn: Callable[[str], None] | None = None,
        backoff_s: float = 0.5,
        max_backoff_s: float = 10.0,
        warn_interval_s: float = 5.0,
        max_restarts: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self._step = step
        self._restart = restart
        self._warn = warn
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.warn_interval_s = warn_interval_s
        self.max_restarts = max_restarts
        self._clock = clock
        self.failures = 0  # every exception caught, in step or restart
        self.restarts = 0  # restarts that succeeded
        self.attempts = 0  # restarts tried
        self.gave_up = False
        self.last_error: str | None = None
        self._in_a_row = 0
        self._retry_at: float | None = None  # None while healthy
        self._last_warn = -float("inf")
        self._unwarned = 0

    @property
    def healthy(self) -> bool:
        return self._retry_at is None

    @property
    def status(self) -> str:
        if self._retry_at is None:
            return ""
        if self.gave_up:
            return (
                f"{self.name} failed ({self.last_error}); {self.failures} failure(s), "
                f"gave up after {self.attempts} restart(s)"
            )
        wait = max(0.0, self._retry_at - self._clock())
        return (
            f"{self.name} failed ({self.last_error}); {self.failures} failure(s), "
            f"restart in {wait:.1f} s"
        )

    def step(self, *args, fallback: Any = None, **kwargs) -> Any:
        if self._retry_at is not None:
            if self._clock() < self._retry_at:
                return fallback
            if self._restart is not None:
                self.attempts += 1
                if not self._try(self._restart):
                    return fallback
                self.restarts += 1
            self._retry_at = None
        try:
            result = self._step(*args, **kwargs)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # noqa: B036 - the show goes on; the failure is reported
            self._failed(exc)
            return fallback
        self._in_a_row = 0
        return result

    def _try(self, fn: Callable[[], None]) -> bool:
        try:
            fn()
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # noqa: B036
            self._failed(exc, during="restart")
            return False
        return True

    def _failed(self, exc: BaseException, during: str = "") -> None:
        self.failures += 1
        self._in_a_row += 1
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        if isinstance(exc, StageError):
            self.last_error = first[:160] or type(exc).__name__
        else:
            kind = "out of memory" if "out of memory" in first.lower() else type(exc).__name__
            self.last_error = f"{kind}: {first}"[:120] if first else kind
        if during:
            self.last_error = f"{during}: {self.last_error}"
        wait = min(self.max_backoff_s, self.backoff_s * 2 ** (self._in_a_row - 1))
        now = self._clock()
        self._retry_at = now + wait
        self._unwarned += 1
        if self.max_restarts is not None and self.attempts >= self.max_restarts:
            self.gave_up = True
            self._retry_at = float("inf")
            if self._warn is not None:  # said once, whatever the rate limit
                self._warn(
                    f"{self.name} failed: {self.last_error}; "
                    f"gave up after {self.attempts} restart(s)"
                )
            return
        if self._warn is not None and now - self._last_warn >= self.warn_interval_s:
            more = (
                f" ({self._unwarned - 1} more since the last warning)" if self._unwarned > 1 else ""
            )
            self._last_warn = now
            self._unwarned = 0
            self._warn(f"{self.name} failed: {self.last_error}; restarting in {wait:.1f} s{more}")
