"""Compatibility: the one-call modulator (features + params snapshot → Controls) over a Show deck.

The Show (`vj.show.show`) owns modulation now: onsets, beats and presses at their own times,
smoothing of every parameter. `Modulator` keeps the old polled-counter API for tools and
tests that drive one generator without a Show; its latent walk is the deck's (`vj.show.decks`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from vj.audio.features import AudioFeatures
from vj.params import DEFAULT_PARAMS
from vj.show.decks import (  # noqa: F401  (re-exported: the constants' old home)
    BAND_GAIN,
    DRIFT_RATE,
    LAYER_WIDTH,
    MAX_JUMPS_PER_STEP,
    N_DRIFT,
    NOISE_GAIN,
    Deck,
    layer_band_weights,
    num_noise_layers,
)

MAX_DT = 0.5  # s; a stalled caller must not cause a huge drift leap

_DEFAULTS = {p.name: p.default for p in DEFAULT_PARAMS if p.kind != "trigger"}
_SMOOTHING = {p.name: p.smoothing for p in DEFAULT_PARAMS if p.smoothing > 0}


@dataclass(frozen=True)
class Controls:
    """What the generator needs for one frame; immutable once published."""

    ws: torch.Tensor  # [1, num_ws, w_dim] fp32
    noise_strength: torch.Tensor  # [num_noise_layers] fp32 multipliers (1 = as trained)
    keyframe_index: int


class Modulator:
    """features + params → generator controls. Deterministic: same inputs in the same order →
    same outputs. New onsets / beats / presses are the differences of cumulative counters."""

    def __init__(self, G, seed: int = 0) -> None:
        self.deck = Deck("A", G, seed)
        self.G, self.seed = G, int(seed)
        self.z_dim, self.w_dim, self.num_ws = self.deck.z_dim, self.deck.w_dim, self.deck.num_ws
        self.n_noise, self.device = self.deck.n_noise, self.deck.device
        self.w_avg, self.w_scale = self.deck.w_avg, self.deck.w_scale
        self.reset()

    @property
    def keyframe_index(self) -> int:
        return self.deck.keyframe_index

    def reset(self) -> None:
        """Back to keyframe 0, no envelopes, no history."""
        self.deck.reset()
        self._t_last: float | None = None
        self._onsets_seen: int | None = None
        self._beats_seen: int | None = None
        self._presses_seen: float | None = None
        self._env: np.ndarray | None = None  # [n_bands] band envelopes 0..1
        self._smoothed: dict[str, float] = {}

    def _param(self, params: dict[str, float], name: str, dt: float) -> float:
        target = float(params.get(name, _DEFAULTS[name]))
        tau = _SMOOTHING.get(name, 0.0)
        prev = self._smoothed.get(name)
        if prev is None or tau <= 0.0:
            v = target
        else:
            v = prev + (target - prev) * (1.0 - math.exp(-dt / tau))
        self._smoothed[name] = v
        return v

    @torch.no_grad()
    def step(self, features: AudioFeatures, params: dict[str, float], t_s: float) -> Controls:
        d = self.deck
        dt = 0.0 if self._t_last is None else min(max(t_s - self._t_last, 0.0), MAX_DT)
        self._t_last = t_s
        intensity = self._param(params, "intensity", dt)
        drift = self._param(params, "drift", dt)
        band_push = self._param(params, "band_push", dt)
        noise_push = self._param(params, "noise_push", dt)
        psi = self._param(params, "truncation", dt)
        onset_jump = float(params.get("onset_jump", _DEFAULTS["onset_jump"]))
        release = max(float(params.get("release", _DEFAULTS["release"])), 1e-3)

        presses = float(params.get("next_keyframe", 0.0))
        if self._presses_seen is None:
            self._presses_seen = presses
        if presses > self._presses_seen:  # several presses in one step land on the last one
            d.land(int(presses - self._presses_seen))
        self._presses_seen = presses

        if self._onsets_seen is None:
            self._onsets_seen = features.onset_count  # history before we started is not news
        new = features.onset_count - self._onsets_seen
        self._onsets_seen = features.onset_count
        d.jump(onset_jump * intensity, new)

        if self._beats_seen is None:
            self._beats_seen = features.beat_count
        new_beats = features.beat_count - self._beats_seen
        self._beats_seen = features.beat_count
        if new_beats > 0:
            d.jump(float(params.get("beat_jump", 0.0)) * intensity)

        d.drift(dt, drift)

        # Band envelopes: instant attack, exponential release.
        bands = np.nan_to_num(np.asarray(features.bands, np.float32), nan=0.0, posinf=1.0)
        if self._env is None or self._env.shape != bands.shape:
            self._env = np.zeros_like(bands)
        decay = math.exp(-dt / release) if dt > 0 else 1.0
        np.maximum(np.clip(bands, 0.0, 1.0), self._env * decay, out=self._env)
        c = d.controls(psi, self._env.copy(), band_push, noise_push, intensity)
        return Controls(ws=c.ws, noise_strength=c.noise_strength, keyframe_index=c.keyframe_index)
