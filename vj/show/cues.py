"""The cue list: (preset, keyframe, morph length in beats) steps walked by go / next / prev.

Stateless apart from the cursor; the Show turns the chosen cue into a preset morph and a
keyframe glide at the event's time. `cue.go` fires the selected cue, `cue.next` / `cue.prev`
move the cursor and fire, `cue.goto` (value: index) jumps and fires.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

CUE_ACTIONS = ("cue.go", "cue.next", "cue.prev", "cue.goto")
# the same actions as registry triggers (MIDI-mappable names, no dots) → the action
CUE_TRIGGERS = {"cue_go": "cue.go", "cue_next": "cue.next", "cue_prev": "cue.prev"}


class Cue(NamedTuple):
    preset: str  # preset name or path
    keyframe: int | None = None  # glide to this keyframe over the morph; None = keep walking
    morph_beats: float = 4.0  # 0 = cut


class CueList:
    """An ordered cue list with a cursor; `cursor` is None until the first cue fires."""

    def __init__(self, cues: Sequence[Cue] = ()) -> None:
        self.cues = tuple(cues)
        self.cursor: int | None = None

    def __len__(self) -> int:
        return len(self.cues)

    def act(self, action: str, value: float | str = 0.0) -> Cue | None:
        """The cue to fire for `action` (one of CUE_ACTIONS), or None (empty list, bad index)."""
        if not self.cues:
            return None
        n = len(self.cues)
        cur = self.cursor
        if action == "cue.go":
            i = 0 if cur is None else cur
        elif action == "cue.next":
            i = 0 if cur is None else min(cur + 1, n - 1)
        elif action == "cue.prev":
            i = 0 if cur is None else max(cur - 1, 0)
        elif action == "cue.goto":
            try:
                i = int(float(value))
            except (TypeError, ValueError):
                return None
            if not 0 <= i < n:
                return None
        else:
            return None
        self.cursor = i
        return self.cues[i]
