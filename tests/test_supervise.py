"""Supervisor: a failing stage is caught, warned about at a bounded rate, restarted after a
growing back-off, and healthy again after a success."""

import pytest

from vj.supervise import StageError, Supervisor


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


class FlakyGenerator:
    """Fails with an out-of-memory error until restarted `heal_after` times."""

    def __init__(self, heal_after: int) -> None:
        self.heal_after = heal_after
        self.restarts = 0
        self.frames = 0

    def step(self, k):
        if self.restarts < self.heal_after:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        self.frames += 1
        return f"frame {k}"

    def restart(self):
        self.restarts += 1


def test_failure_backoff_restart_and_recovery():
    clock, warnings = Clock(), []
    gen = FlakyGenerator(heal_after=2)
    sup = Supervisor(
        "generator", gen.step, gen.restart, warnings.append,
        backoff_s=0.5, max_backoff_s=4.0, warn_interval_s=5.0, clock=clock,
    )  # fmt: skip
    last = "frame -1"
    shown = []
    for k in range(400):  # 4 s at 100 Hz: the caller keeps its last frame while down
        clock.t = k * 0.01
        last = sup.step(k, fallback=last)
        shown.append(last)
    assert gen.restarts == 2 and sup.restarts == 2 and sup.failures == 2
    assert sup.healthy and sup.status == ""
    assert shown[0] == "frame -1" and shown[-1] == "frame 399"
    # first failure at t=0, restart at 0.5 s fails again, next back-off 1.0 s → back at ~1.5 s
    first_good = next(i for i, f in enumerate(shown) if f != "frame -1")
    assert 1.5 <= first_good * 0.01 <= 1.52
    assert len(warnings) == 1 and "out of memory" in warnings[0]  # the second is held back


def test_status_line_and_warning_counts():
    clock, warnings = Clock(), []

    def broken():
        raise ValueError("NDI sender went away")

    sup = Supervisor("NDI output", broken, warn=warnings.append, backoff_s=1.0,
                     max_backoff_s=1.0, warn_interval_s=5.0, clock=clock)  # fmt: skip
    for k in range(100):
        clock.t = k * 0.1
        sup.step()
    assert "NDI output failed (ValueError: NDI sender went away)" in sup.status
    assert sup.failures == 10 and not sup.healthy
    assert len(warnings) == 2 and "more since the last warning" in warnings[1]


def test_restart_failure_counts_and_interrupts_pass_through():
    clock = Clock()

    def bad_restart():
        raise OSError("disk full")

    def step():
        raise RuntimeError("boom")

    sup = Supervisor("recorder", step, bad_restart, backoff_s=0.1, clock=clock)
    sup.step()
    clock.t = 1.0
    sup.step()
    assert sup.failures == 2 and sup.last_error.startswith("restart: OSError: disk full")

    def interrupted():
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        Supervisor("x", interrupted).step()


def test_bounded_restarts_give_up_once_and_worded_errors_keep_their_words():
    clock, warnings, restarts = Clock(), [], []

    def step():
        raise StageError("recording rec.mp4 failed: disk full; kept rec.mp4 (120 frames)")

    sup = Supervisor("recording", step, lambda: restarts.append(1), warnings.append,
                     backoff_s=1.0, max_backoff_s=1.0, warn_interval_s=0.0,
                     max_restarts=2, clock=clock)  # fmt: skip
    for k in range(100):  # 10 s: fail, restart, fail, restart, fail → gave up
        clock.t = k * 0.1
        sup.step()
    assert len(restarts) == 2 and sup.attempts == 2 and sup.failures == 3 and sup.gave_up
    assert sup.last_error == "recording rec.mp4 failed: disk full; kept rec.mp4 (120 frames)"
    assert "gave up after 2 restart(s)" in sup.status and not sup.healthy
    assert len(warnings) == 3 and warnings[-1].endswith("gave up after 2 restart(s)")
    assert "StageError" not in warnings[0]
