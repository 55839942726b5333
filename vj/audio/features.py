"""The immutable, timestamped snapshot of audio analysis that the audio thread publishes."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


def _empty_bands() -> np.ndarray:
    a = np.zeros(8, np.float32)
    a.flags.writeable = False
    return a


@dataclass(frozen=True, slots=True)
class AudioFeatures:
    """One analysis result; published into a LatestSlot, never mutated after publishing.

    Counters are cumulative so a reader polling at 20 Hz still sees every onset/beat that
    happened at 190 Hz block rate since its last look.
    """

    t_capture_ns: int = 0  # clock time the block's last sample was captured
    t_publish_ns: int = 0  # clock time this snapshot was published
    block_index: int = 0  # blocks analysed so far
    sample_rate: int = 48000
    rms: float = 0.0  # normalised level, 0..1 (adaptive gain applied)
    bands: np.ndarray = field(default_factory=_empty_bands)  # [n_bands] float32, 0..1, low→high
    centroid: float = 0.0  # spectral centroid, normalised 0..1 of Nyquist
    flatness: float = 0.0  # spectral flatness 0..1
    onset_strength: float = 0.0  # current onset detection function value, ≥ 0
    onset_count: int = 0  # onsets so far (all bands)
    band_onset_counts: tuple[int, int, int] = (0, 0, 0)  # onsets so far in low / mid / high
    beat_count: int = 0  # beats so far
    bpm: float = 0.0  # current tempo, 0 = unknown
    beat_phase: float = 0.0  # 0..1 within the current beat
    bar_position: float = 0.0  # 0..beats_per_bar, position within the bar
    tempo_source: str = "none"  # which tempo source drives bpm/phase


SILENCE = AudioFeatures()
