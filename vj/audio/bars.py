"""Downbeat (bar phase) from the drums alone: each tracked beat's kick, snare and cymbal
strength and the fill density after it, voted against a 4/4 drum template."""

from __future__ import annotations

import math

# Template per feature over the bar positions 1..4 (zero mean: a feature that is equal on every
# beat votes for nothing). Drum-kit conventions, not fitted to any recording. The kick on 1 and
# 3 against the snare's backbeat on 2 and 4 settles which half-bar parity is right; telling 1
# from 3 rests on weaker cues (crash accents on 1, fills in beat 4, a kick on 1 more often than
# on 3) plus the start prior, so their weights are small.
TEMPLATE = (
    (0.9, -0.8, 0.7, -0.8),  # kick (low band) at the beat
    (-0.7, 0.7, -0.7, 0.7),  # snare (mid band) at the beat
    (0.3, -0.1, -0.1, -0.1),  # cymbal (high band) at the beat
    (-0.1, -0.1, -0.1, 0.3),  # onset density between this beat and the next
)
N_FEAT = len(TEMPLATE)
# dB under the overall level: the top band's level is floored here (BeatTracker.process's
# level), so digital silence between synthetic hits is no -180 dB hole for a ring to rise from
LEVEL_FLOOR = -60.0
# A crash on the one: the top band (8-16 kHz) rings over the late half of the beat at least
# CRASH_RING_DB over the half beat before it, and CRASH_NEW_DB more than that slot of the bar
# usually rings (an open hat on the same beat of every bar is the groove, not a phrase start).
# Each such beat adds CRASH_VOTE bars' worth of evidence that it starts a bar (decaying with the
# profile). In the annotated stems and mixes these beats fall on 1 ten times, on 3 never, on 2
# or 4 six times (pushed crashes), where the kick/snare parity outvotes them.
CRASH_RING_DB = 24.0
CRASH_NEW_DB = 12.0
CRASH_VOTE = 3.0


class BarTracker:
    """Feed the features of each completed beat with `beat(index, feats)`; `offset` is the
    beat index (mod beats_per_bar) that starts a bar.

    Each feature is divided by its running mean over recent beats, added into a decaying
    per-slot profile (slot = beat index mod beats_per_bar, memory ~`memory_bars` bars) and the
    profile is correlated with every rotation of TEMPLATE. The current rotation must
    lose `switch_beats` beats in a row before the bar moves, so one fill does not flip it. A start
    prior says the first onset after silence is a downbeat (songs and sets start on the one,
    pickups aside): `start(index)` adds `start_prior` bars' worth of evidence to that slot;
    the kick/snare parity outvotes it within a couple of bars when it is wrong and the drums
    make it clear (a kick on every beat does not), the weak 1-vs-3 cues only when they hold up
    for many bars. A crash on a slot of the drums' parity (CRASH_RING_DB) adds `crash_vote`
    bars' worth to that slot, decaying like the profile: it settles 1 against 3 where a crash
    marks the phrase, which a stream joined mid-song cannot take from the start prior.
    """

    def __init__(
        self,
        beats_per_bar: int = 4,
        memory_bars: float = 8.0,
        switch_beats: int = 4,
        start_prior: float = 2.0,
        crash_ring_db: float = CRASH_RING_DB,
        crash_new_db: float = CRASH_NEW_DB,
        crash_vote: float = CRASH_VOTE,
    ) -> None:
        self.bpb = beats_per_bar
        self._decay = math.exp(-1.0 / memory_bars)  # per visit of a slot, i.e. per bar
        self._norm_a = 1.0 / (2.0 * beats_per_bar)  # running mean over ~2 bars of beats
        self._means = [0.0] * N_FEAT
        self._prof = [[0.0] * N_FEAT for _ in range(beats_per_bar)]
        self._switch = switch_beats
        self._start_prior = start_prior
        self._seen = 0
        self._prior = [0.0] * beats_per_bar
        self._crash = [0.0] * beats_per_bar  # crash votes per slot, decaying
        self._ring = [0.0] * beats_per_bar  # each slot's usual ring (dB), a running mean
        self._ring_n = [0] * beats_per_bar  # ... and how many bars it has heard
        self._beat_decay = self._decay ** (1.0 / beats_per_bar)
        self._crash_ring_db, self._crash_new_db = crash_ring_db, crash_new_db
        self._crash_vote = crash_vote  # bars' worth; in template units below
        self._drum_parity = 0  # the slot parity (mod 2) the drums alone favour
        self.offset = 0
        self._cand_n = 0
        self.scores = [0.0] * beats_per_bar
        self.changes = 0
        if beats_per_bar == 4:
            self._tpl = TEMPLATE
        else:  # other meters: only "kick on 1, snare after it" is assumed
            z = [1.0] + [-1.0 / (beats_per_bar - 1)] * (beats_per_bar - 1)
            self._tpl = (
                tuple(z),
                tuple(-v for v in z),
                tuple(0.3 * v for v in z),
                (0.0,) * beats_per_bar,
            )
        self._crash_vote *= self._unit() / 4.0

    def reset(self) -> None:
        """Forget the profile (after silence: the next music may start anywhere)."""
        self._means = [0.0] * N_FEAT
        self._prof = [[0.0] * N_FEAT for _ in range(self.bpb)]
        self._seen = 0
        self._prior = [0.0] * self.bpb
        self._crash = [0.0] * self.bpb
        self._ring = [0.0] * self.bpb
        self._ring_n = [0] * self.bpb
        self._cand_n = 0

    def _unit(self) -> float:
        """Template units: the bar-1 weights of one bar's profile, times the memory."""
        return sum(abs(row[0]) for row in self._tpl) / (1.0 - self._decay)

    def start(self, index: int) -> None:
        """Beat `index` (the tracker's count, maybe before its first beat) is where the music
        started: favour it as a downbeat."""
        self._prior = [0.0] * self.bpb
        self._prior[index % self.bpb] = self._start_prior * self._unit() / 4.0
        if self._seen < self.bpb:
            self.offset = index % self.bpb

    def beat(self, index: int, feats: tuple[float, ...]) -> None:
        """The features (kick, snare, cymbal, density[, ring dB]) of beat `index` (the
        tracker's count); the ring is CRASH_RING_DB's, read one period after the beat."""
        bpb = self.bpb
        self._seen += 1
        a = self._norm_a if self._seen > bpb else 1.0 / self._seen
        si = index % bpb
        slot = self._prof[si]
        d = self._decay
        for f in range(N_FEAT):
            v = feats[f]
            m = self._means[f] + a * (v - self._means[f])
            self._means[f] = m
            slot[f] = slot[f] * d + (v / m if m > 1e-9 else 0.0)
        cr = self._crash
        bd = self._beat_decay
        for r in range(bpb):
            cr[r] *= bd
        if len(feats) > N_FEAT:
            ring, usual, heard = feats[N_FEAT], self._ring[si], self._ring_n[si]
            # the crash settles 1 against 3, never the kick/snare parity: it votes only for a
            # slot of the parity the drums alone favour (not the prior's: a stream that joins
            # on beat 2 starts with the wrong one), once its usual ring is known (three bars)
            if (
                heard >= 3
                and bpb % 2 == 0
                and si % 2 == self._drum_parity
                and ring >= self._crash_ring_db
                and ring - usual >= self._crash_new_db
            ):
                cr[si] += self._crash_vote
            self._ring[si] = usual + 0.5 * (ring - usual) if heard else ring
            self._ring_n[si] = heard + 1
        # score of "slot r is beat 1": sum over slots and features of template × profile
        tpl, prof = self._tpl, self._prof
        sc = self.scores
        even = 0.0  # the drums' own evidence for bars starting on an even / odd slot
        for r in range(bpb):
            s = 0.0
            for p in range(bpb):
                row = prof[(r + p) % bpb]
                for f in range(N_FEAT):
                    s += tpl[f][p] * row[f]
            even += s if r % 2 == 0 else -s
            sc[r] = s + self._prior[r] + cr[r]
        self._drum_parity = 0 if even >= 0.0 else 1
        if self._seen < bpb:
            return
        best = max(range(bpb), key=sc.__getitem__)
        if best == self.offset:
            self._cand_n = 0
            return
        # the current bar must lose several beats in a row (to any rival: two near-equal
        # rivals would otherwise reset each other's count)
        self._cand_n += 1
        if self._cand_n >= self._switch:
            self.offset = best
            self.changes += 1
            self._cand_n = 0
