"""Compatibility: the live instrument moved to `vj.live` (the Show's live driver)."""

from vj.live import (  # noqa: F401
    AudioInput,
    FpsMeter,
    GeneratorThread,
    GenFrame,
    LiveApp,
    LiveOptions,
    warn,
)
