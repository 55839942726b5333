"""OSC `/vj/preset`: only presets from the presets folders (unless configured), failures
reported at a bounded rate, so a local sender can neither read any YAML on disk nor flood the log.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from pathlib import Path


class RateLimitedReport:
    """Passes a message on at most once per `interval` s; the ones between are counted and
    the count is added to the next one that passes."""

    def __init__(self, emit: Callable[[str], None], interval: float = 5.0) -> None:
        self.emit = emit
        self.interval = interval
        self.suppressed = 0  # total held back
        self._held = 0  # held back since the last one passed
        self._last = -float("inf")

    def __call__(self, message: object) -> None:
        now = time.monotonic()
        if now - self._last < self.interval:
            self._held += 1
            self.suppressed += 1
            return
        self._last = now
        extra = f" ({self._held} more like it suppressed)" if self._held else ""
        self._held = 0
        self.emit(f"{message}{extra}")


class PresetGate:
    """`gate(name)` → `switch(path)` for a preset in `folders`; anything else is refused.

    `name` is a preset name ('club': `<folder>/club.yaml` in the first folder that has it)
    or a .yaml path (relative to the first folder), whose real location (symlinks followed)
    must lie inside one of the folders. `anywhere=True` (preset `osc: {presets_anywhere:
    true}`) lifts the folder rule.
    """

    def __init__(
        self,
        switch: Callable[[str], None],
        folders: Iterable[Path],
        report: Callable[[str], None],
        anywhere: bool = False,
    ) -> None:
        self.switch = switch
        self.folders = [Path(f).resolve() for f in folders]
        self.report = report
        self.anywhere = anywhere
        self.refused = 0

    def __call__(self, name: str) -> None:
        path, problem = self.resolve(name)
        if path is None:
            self.refused += 1
            self.report(f"OSC /vj/preset {name!r} refused: {problem}")
            return
        self.switch(str(path))

    def resolve(self, name: str) -> tuple[Path | None, str]:
        if re.fullmatch(r"[\w.-]+", name) and not name.endswith((".yaml", ".yml")):
            for folder in self.folders:
                p = folder / f"{name}.yaml"
                if p.is_file():
                    return p, ""
            shown = ", ".join(str(f) for f in self.folders)
            return None, f"no preset of that name in {shown}"
        p = Path(name).expanduser()
        if p.suffix not in (".yaml", ".yml"):
            return None, "not a preset name or a .yaml path"
        if not p.is_absolute() and self.folders:
            p = self.folders[0] / p
        real = p.resolve()
        if not self.anywhere and not any(real.is_relative_to(f) for f in self.folders):
            return None, (
                "outside the presets folders (set `osc: {presets_anywhere: true}` in the "
                "preset to allow any path)"
            )
        return real, ""
