"""Audio features + params → generator controls (W+ latents and per-layer noise strength).

Onsets jump toward new keyframes (slerp in Z), drift wanders slowly, band energies push
style offsets (low bands → coarse layers, high bands → fine layers) and noise strength.
Deterministic: the same (features, params, t_s) sequence gives the same Controls.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from vj.audio.features import AudioFeatures
from vj.gan.latent import KeyframeSequence, seeded_directions, seeded_normal, slerp, truncate
from vj.params import DEFAULT_PARAMS

# Tuning constants (why these values: see docs/engine.md, "Modulation").
DRIFT_RATE = 1.0  # radians of z-sphere travel per second at drift = 1
BAND_GAIN = 0.6  # band push at full envelope, as a fraction of W's typical spread
NOISE_GAIN = 2.0  # extra noise strength at full envelope (1 + NOISE_GAIN × push)
LAYER_WIDTH = 0.3  # width of each band's bump over the layer axis (0..1)
MAX_JUMPS_PER_STEP = 8  # onsets beyond this in one step are counted but not re-slerped
MAX_DT = 0.5  # s; a stalled caller must not cause a huge drift leap
N_DRIFT = 4  # components of the smooth drift velocity field

_DEFAULTS = {p.name: p.default for p in DEFAULT_PARAMS if p.kind != "trigger"}
_SMOOTHING = {p.name: p.smoothing for p in DEFAULT_PARAMS if p.smoothing > 0}


@dataclass(frozen=True)
class Controls:
    """What the generator needs for one frame; immutable once published."""

    ws: torch.Tensor  # [1, num_ws, w_dim] fp32
    noise_strength: torch.Tensor  # [num_noise_layers] fp32 multipliers (1 = as trained)
    keyframe_index: int


def num_noise_layers(G) -> int:
    """Noise inputs of the synthesis network (every conv layer; num_ws - 1 in skip StyleGAN2)."""
    n = getattr(G.synthesis, "num_noise_layers", None)
    if n is None:
        n = getattr(G, "num_noise_layers", None)
    return int(n) if n is not None else int(G.num_ws) - 1


def layer_band_weights(n_layers: int, n_bands: int) -> torch.Tensor:
    """[n_layers, n_bands] Gaussian bumps: band b (low→high) drives layers near position b."""
    pl = (torch.arange(n_layers, dtype=torch.float64) + 0.5) / n_layers
    pb = (torch.arange(n_bands, dtype=torch.float64) + 0.5) / n_bands
    w = torch.exp(-(((pl[:, None] - pb[None, :]) / LAYER_WIDTH) ** 2))
    w = w / w.sum(dim=1, keepdim=True)  # each layer's push is a weighted mean of bands
    return w.float()


class Modulator:
    """features + params → generator controls. Deterministic: same inputs in the same order →
    same outputs."""

    def __init__(self, G, seed: int = 0) -> None:
        self.G = G
        self.seed = int(seed)
        self.z_dim = int(G.z_dim)
        self.w_dim = int(G.w_dim)
        self.num_ws = int(G.num_ws)
        self.n_noise = num_noise_layers(G)
        self.device = next(G.mapping.parameters()).device
        self.keys = KeyframeSequence(self.z_dim, self.seed, self.device)
        self._radius = math.sqrt(self.z_dim)  # z's live on (near) this sphere
        with torch.no_grad():
            zs = torch.from_numpy(seeded_normal(self.seed, 1 << 21, (256, self.z_dim)))
            w = self._map(zs.to(self.device))[:, 0]  # [256, w_dim]
            w_avg = getattr(G.mapping, "w_avg", None)  # a network without one: estimate it
            self.w_avg = (w.mean(0) if w_avg is None else w_avg.detach().float()).clone()
            # Typical spread of W around w_avg, so pushes are scaled to the model.
            self.w_scale = float((w - self.w_avg).norm(dim=-1).mean().clamp_min(1e-6))
        # Drift velocity field: v(θ) = Σ_j b_j cos(f_j θ + φ_j), smooth and seeded.
        self._drift_b = torch.from_numpy(
            seeded_normal(self.seed, 1 << 22, (N_DRIFT, self.z_dim)) / math.sqrt(N_DRIFT)
        ).to(self.device)  # [N_DRIFT, z_dim]
        rng = np.random.default_rng([self.seed & 0xFFFFFFFF, 1 << 23])
        self._drift_f = rng.uniform(0.3, 1.3, N_DRIFT)
        self._drift_phi = rng.uniform(0.0, 2 * math.pi, N_DRIFT)
        self._band_cache: dict[int, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}
        self.reset()

    # -- state ----------------------------------------------------------------------------
    def reset(self) -> None:
        """Back to keyframe 0, no envelopes, no history."""
        self.keyframe_index = 0
        self.z = self._on_sphere(self.keys[0])  # [z_dim]
        self._theta = 0.0
        self._t_last: float | None = None
        self._onsets_seen: int | None = None
        self._beats_seen: int | None = None
        self._presses_seen: float | None = None
        self._env: np.ndarray | None = None  # [n_bands] band envelopes 0..1
        self._smoothed: dict[str, float] = {}

    def _on_sphere(self, z: torch.Tensor) -> torch.Tensor:
        return z * (self._radius / z.norm().clamp_min(1e-6))

    def _map(self, z: torch.Tensor) -> torch.Tensor:
        return self.G.mapping(z, None, truncation_psi=1.0).float()  # [N, num_ws, w_dim]

    def _bands_setup(self, n_bands: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if n_bands not in self._band_cache:
            dirs = seeded_directions(n_bands, self.w_dim, self.seed, device=self.device)
            self._band_cache[n_bands] = (
                dirs,  # [n_bands, w_dim] unit directions in W
                layer_band_weights(self.num_ws, n_bands).to(self.device),  # [num_ws, n_bands]
                layer_band_weights(self.n_noise, n_bands).to(self.device),  # [n_noise, n_bands]
            )
        return self._band_cache[n_bands]

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

    # -- the per-frame call ----------------------------------------------------------------
    @torch.no_grad()
    def step(self, features: AudioFeatures, params: dict[str, float], t_s: float) -> Controls:
        dt = 0.0 if self._t_last is None else min(max(t_s - self._t_last, 0.0), MAX_DT)
        self._t_last = t_s
        intensity = self._param(params, "intensity", dt)
        drift = self._param(params, "drift", dt)
        band_push = self._param(params, "band_push", dt)
        noise_push = self._param(params, "noise_push", dt)
        psi = self._param(params, "truncation", dt)
        onset_jump = float(params.get("onset_jump", _DEFAULTS["onset_jump"]))
        release = max(float(params.get("release", _DEFAULTS["release"])), 1e-3)

        # Manual jump: each new press of next_keyframe lands fully on a new keyframe.
        presses = float(params.get("next_keyframe", 0.0))
        if self._presses_seen is None:
            self._presses_seen = presses
        if presses > self._presses_seen:  # several presses in one step land on the last one
            self.keyframe_index += int(presses - self._presses_seen)
            self.z = self._on_sphere(self.keys[self.keyframe_index])
        self._presses_seen = presses

        # Onsets: each new one moves a fraction of the way toward a fresh keyframe.
        if self._onsets_seen is None:
            self._onsets_seen = features.onset_count  # history before we started is not news
        new = features.onset_count - self._onsets_seen
        self._onsets_seen = features.onset_count
        frac = min(max(onset_jump * intensity, 0.0), 1.0)
        if new > 0 and frac > 0.0:
            for _ in range(min(new, MAX_JUMPS_PER_STEP)):
                self.keyframe_index += 1
                target = self._on_sphere(self.keys[self.keyframe_index])
                self.z = slerp(self.z, target, frac)

        # Beats (tempo tracker / Link / tap): optional jumps on the beat, off unless beat_jump > 0.
        if self._beats_seen is None:
            self._beats_seen = features.beat_count
        new_beats = features.beat_count - self._beats_seen
        self._beats_seen = features.beat_count
        bfrac = min(max(float(params.get("beat_jump", 0.0)) * intensity, 0.0), 1.0)
        if new_beats > 0 and bfrac > 0.0:
            self.keyframe_index += 1
            self.z = slerp(self.z, self._on_sphere(self.keys[self.keyframe_index]), bfrac)

        # Drift: integrate a smooth seeded velocity field along the sphere.
        if drift > 0.0 and dt > 0.0:
            dtheta = dt * drift * DRIFT_RATE
            self._theta += dtheta
            c = np.cos(self._drift_f * self._theta + self._drift_phi).astype(np.float32)
            v = torch.from_numpy(c).to(self.device) @ self._drift_b  # [z_dim]
            u = self.z / self._radius
            v = v - (v @ u) * u  # tangent to the sphere
            self.z = self._on_sphere(self.z + dtheta * v)

        ws = truncate(self._map(self.z[None]), self.w_avg, psi)  # [1, num_ws, w_dim]

        # Band envelopes: instant attack, exponential release.
        bands = np.nan_to_num(np.asarray(features.bands, np.float32), nan=0.0, posinf=1.0)
        if self._env is None or self._env.shape != bands.shape:
            self._env = np.zeros_like(bands)
        decay = math.exp(-dt / release) if dt > 0 else 1.0
        np.maximum(np.clip(bands, 0.0, 1.0), self._env * decay, out=self._env)
        noise = torch.ones(self.n_noise, device=self.device)
        if bands.size:
            dirs, w_layers, w_noise = self._bands_setup(bands.size)
            env = torch.from_numpy(self._env.copy()).to(self.device)  # [n_bands]
            gain = self.w_scale * BAND_GAIN * band_push * intensity
            if gain != 0.0:
                offs = (w_layers * env) @ dirs  # [num_ws, w_dim]
                ws = ws + gain * offs[None]
            ngain = NOISE_GAIN * noise_push * intensity
            if ngain != 0.0:
                noise = noise + ngain * (w_noise @ env)
        return Controls(
            ws=ws.contiguous(), noise_strength=noise, keyframe_index=self.keyframe_index
        )
