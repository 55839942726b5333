"""The immutable, timestamped snapshot of audio analysis that the audio thread publishes."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

_EMPTY_BANDS = np.zeros(8, np.float32)
_EMPTY_BANDS.flags.writeable = False  # read-only, so one shared default is safe


class AudioFeatures(NamedTuple):
    """One analysis result; published into a LatestSlot, never mutated after publishing.

    A NamedTuple, not a frozen dataclass: the audio callback builds one per block and a tuple
    costs ~1 µs where a frozen dataclass's per-field setattr costs ~6.

    Counters are cumulative so a reader polling at 20 Hz still sees every onset/beat that
    happened at 190 Hz block rate since its last look.
    """

    t_capture_ns: int = 0  # clock time the block's last sample was captured
    t_publish_ns: int = 0  # clock time this snapshot was published
    block_index: int = 0  # blocks analysed so far
    sample_rate: int = 48000
    rms: float = 0.0  # normalised level, 0..1 (adaptive gain applied)
    bands: np.ndarray = _EMPTY_BANDS  # [n_bands] float32, 0..1, low→high
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
