"""Tempo priority (Link > MIDI clock > tap > audio beat tracker) and the HUD line that shows it."""

from __future__ import annotations

from vj.clock import now_ns
from vj.tempo import TempoArbiter, TempoSource

PRIORITY = ("link", "midi_clock", "tap", "tracker")  # highest first, as documented


def build_tempo_arbiter(
    tracker: TempoSource | None,
    tap: TempoSource | None,
    midi_clock: TempoSource | None = None,
    link: TempoSource | None = None,
) -> TempoArbiter:
    """The app's arbiter: Link, then MIDI clock, then tap, then the audio beat tracker.

    A source that is None is left out; an inactive one (state None) is skipped per call, so
    unplugging the clock or leaving the Link session falls through to the next source.
    """
    return TempoArbiter([s for s in (link, midi_clock, tap, tracker) if s is not None])


def _inactive_word(src: TempoSource) -> str:
    status = getattr(src, "status", None)
    if callable(status):  # LinkTempo: off / alone / N peers
        try:
            return str(status())
        except Exception:
            return "?"
    if getattr(src, "running", True) is False:  # a MIDI clock whose transport is stopped
        return "stopped"
    return "idle"


def tempo_hud_text(arbiter: TempoArbiter, t_ns: int | None = None) -> str:
    """One HUD line, e.g. 'tempo: midi_clock 120.0 BPM, beat 3/4 (link off, tap idle, tracker
    119.8)'.

    The active source (the first with a state) comes first with its BPM and the beat of the
    bar it is on (what the `downbeat` key corrects); the others follow in priority order with
    their BPM when they would also have an answer, else why not.
    """
    t = now_ns() if t_ns is None else t_ns
    active = "none"
    bpm = 0.0
    beat = ""
    others: list[str] = []
    # TempoArbiter has no public list of its sources yet; its list is replaced, never mutated
    sources = getattr(arbiter, "sources", None) or arbiter._sources
    for src in list(sources):
        st = src.state(t)
        if st is not None and active == "none":
            active, bpm = src.name, st.bpm
            beat = f", beat {int(st.bar_position) % st.beats_per_bar + 1}/{st.beats_per_bar}"
        elif st is not None:
            others.append(f"{src.name} {st.bpm:.1f}")
        else:
            others.append(f"{src.name} {_inactive_word(src)}")
    head = "tempo: none" if active == "none" else f"tempo: {active} {bpm:.1f} BPM{beat}"
    return f"{head} ({', '.join(others)})" if others else head
