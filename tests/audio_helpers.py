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


def kick_snare(sr: int, bpm: float, seconds: float, first_beat: int) -> tuple[np.ndarray, float]:
    """Kick on 1 and 3, snare on 2 and 4, hats on every beat, starting at beat `first_beat`
    (0-based) of a bar, after 0.3 s of silence; returns (audio, time of the first downbeat)."""
    rng = np.random.default_rng(1)
    p = 60.0 / bpm
    x = np.zeros(int(seconds * sr))
    t = np.arange(int(0.3 * sr)) / sr
    kick = np.sin(2 * np.pi * (50 * t + 60 * 0.03 * (1 - np.exp(-t / 0.03)))) * np.exp(-t / 0.15)
    snare = rng.standard_normal(len(t)) * np.exp(-t / 0.08) * 0.5
    hat = np.diff(rng.standard_normal(len(t) + 1)) * np.exp(-t / 0.02) * 0.1
    k, t0 = first_beat, 0.3
    while True:
        i = int((t0 + (k - first_beat) * p) * sr)
        if i + len(t) > len(x):
            break
        x[i : i + len(t)] += (kick if k % 2 == 0 else snare) + hat
        k += 1
    first_down = t0 + ((4 - first_beat) % 4) * p
    return (0.5 * x).astype(np.float32), first_down
