"""MIDI learn round trip: pick a parameter, move a control, the binding is made and saved.

`LearnSession` arms a `MidiMapper`, and when it reports a new binding, merges it into the
mapping file (atomic write, comments kept, previous file kept as .bak) on a worker thread,
never in the MIDI callback. A broken mapping file is reported, never overwritten.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path

from vj.control.mapping import Mapping, MidiMapper
from vj.control.mapping_file import save_learned


def default_mappings_path() -> Path:
    """Where learned mappings go unless a preset names a file: $XDG_CONFIG_HOME/vj/mappings.yaml."""
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "vj" / "mappings.yaml"


class LearnSession:
    """Learn mode for one mapper, saving into one mapping file.

    For a key-driven UI: `select_next()` / `select_prev()` walk the parameter names,
    `start()` arms learn for the selected one, `status` is a line for the HUD.
    """

    def __init__(
        self,
        mapper: MidiMapper,
        path: str | Path,
        on_done: Callable[[Mapping | None, Exception | None], None] | None = None,
    ) -> None:
        self.mapper = mapper
        self.path = Path(path)
        self.on_done = on_done
        self.last: Mapping | None = None  # the last binding saved
        self.error: Exception | None = None  # the last save problem (e.g. a broken file)
        self._names = mapper.registry.names()
        self._sel = 0
        self._done = threading.Event()
        self._save_lock = threading.Lock()
        self._queue: queue.SimpleQueue[Mapping] = queue.SimpleQueue()
        self._worker: threading.Thread | None = None
        self._pending = 0  # bindings reported but not yet saved
        self._count_lock = threading.Lock()
        mapper.on_learned = self._learned

    # -- selection -----------------------------------------------------------------------
    @property
    def selected(self) -> str:
        return self._names[self._sel]

    def select(self, name: str) -> None:
        self.mapper.registry.spec(name)  # unknown → UnknownParam with a suggestion
        self._sel = self._names.index(name)

    def select_next(self, step: int = 1) -> str:
        self._sel = (self._sel + step) % len(self._names)
        return self.selected

    def select_prev(self) -> str:
        return self.select_next(-1)

    # -- learn ---------------------------------------------------------------------------
    def start(self, param: str | None = None, kind: str | None = None) -> None:
        """Arm learn for `param` (default: the selected one); the next control moved binds."""
        if param is not None:
            self.select(param)
        self._done.clear()
        self.error = None
        self.mapper.learn(self.selected, kind)

    def cancel(self) -> None:
        self.mapper.cancel_learn()

    def wait(self, timeout: float | None = None) -> bool:
        """Until the binding is saved (or failed to save). False on timeout."""
        return self._done.wait(timeout)

    def settle(self, timeout: float = 2.0) -> None:
        """Until every binding reported so far is saved (e.g. a cc14 refinement)."""
        deadline = time.monotonic() + timeout
        while self._pending > 0 and time.monotonic() < deadline:
            time.sleep(0.01)

    @property
    def status(self) -> str:
        if self.mapper.learning:
            return f"MIDI learn: move a control for {self.mapper.learning}"
        if self.error is not None:
            return f"MIDI learn: not saved: {self.error}"
        if self.last is not None:
            return f"MIDI learn: {self.last.describe()} (saved to {self.path})"
        return f"MIDI learn: select a parameter ({self.selected})"

    def _learned(self, mapping: Mapping) -> None:
        # called in the MIDI callback thread: file I/O goes to one worker, in order
        with self._count_lock:
            self._pending += 1
        self._queue.put(mapping)
        if self._worker is None:
            self._worker = threading.Thread(target=self._run, name="vj-learn-save", daemon=True)
            self._worker.start()

    def _run(self) -> None:
        while True:
            self._save(self._queue.get())

    def _save(self, mapping: Mapping) -> None:
        try:
            with self._save_lock:  # strict: a file with an unknown parameter is refused
                save_learned(self.path, mapping, self.mapper.registry)
            self.last, self.error = mapping, None
        except Exception as exc:  # reported through status/on_done; the file stays as it was
            self.error = exc
        finally:
            with self._count_lock:
                self._pending -= 1
            self._done.set()
        if self.on_done is not None:
            self.on_done(self.last if self.error is None else None, self.error)
