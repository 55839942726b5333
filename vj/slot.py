"""Latest-value hand-off between threads: the writer never blocks, the reader takes the newest."""

from __future__ import annotations

from typing import Generic, TypeVar

T = TypeVar("T")


class LatestSlot(Generic[T]):
    """Single-writer latest-value slot.

    `publish` replaces the reference in one attribute store (atomic under the GIL), so the
    writer never waits and the reader never sees a half-written value, provided published
    values are immutable. `version` counts publishes, so a reader can tell "nothing new".
    """

    __slots__ = ("_item",)

    def __init__(self, initial: T | None = None) -> None:
        self._item: tuple[int, T | None] = (0, initial)

    def publish(self, value: T) -> None:
        self._item = (self._item[0] + 1, value)

    def take(self) -> T | None:
        return self._item[1]

    def take_versioned(self) -> tuple[int, T | None]:
        return self._item

    @property
    def version(self) -> int:
        return self._item[0]
