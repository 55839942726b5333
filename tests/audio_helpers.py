"""Audio test signals and a block-by-block run of the product's FeatureExtractor."""

from __future__ import annotations

import numpy as np

from vj.audio.stream import FeatureExtractor


def clicks(
    sr: int, times: list[float], seconds: float, amp: float = 0.5, seed: int = 0
) -> np.ndarray:
    """Short decaying noise bursts at `times` (s): [n] float32."""
    x = np.zeros(int(seconds * sr), np.float32)
    n = int(0.004 * sr)
    rng = np.random.default_rng(seed)
    for t in times:
        i = int(t * sr)
        burst = rng.standard_normal(n) * np.exp(-np.arange(n) / (0.001 * sr))
        x[i : i + n] += (amp * burst).astype(np.float32)
    return x


def stream(x: np.ndarray, sr: int, hop: int, block: int | None = None, **kw):
    fx = FeatureExtractor(sr, hop=hop, **kw)
    block = block or hop
    events = []
    feats = []
    for s in range(0, len(x), block):
        e = min(s + block, len(x))
        feats.append(fx.process(x[s:e], int(round(e * 1e9 / sr))))
        events += fx.drain_events()
    return fx, events, feats


def onset_times(events) -> np.ndarray:
    return np.array([t / 1e9 for k, t in events if k == "onset"])
