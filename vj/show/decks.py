"""One deck's latent state: keyframes, onset/beat jumps, drift, band and noise pushes → controls.

A deck owns one generator's model geometry (z/w dims, W's mean and spread, noise layers) and
its walk through Z. The Show decides *when* things happen (onsets, beats, presses at their
times) and calls the deck's small verbs in time order; the deck only moves its state. Every
verb is deterministic: the same calls in the same order give the same DeckControls.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from vj.gan.latent import KeyframeSequence, seeded_directions, seeded_normal, slerp, truncate
from vj.show.frame import DeckControls
from vj.show.mapping import NumpyMapping

# Tuning constants (why these values: see docs/engine.md, "Modulation").
DRIFT_RATE = 1.0  # radians of z-sphere travel per second at drift = 1
BAND_GAIN = 0.6  # band push at full envelope, as a fraction of W's typical spread
NOISE_GAIN = 2.0  # extra noise strength at full envelope (1 + NOISE_GAIN × push)
LAYER_WIDTH = 0.3  # width of each band's bump over the layer axis (0..1)
MAX_JUMPS_PER_STEP = 8  # onsets beyond this in one instant are counted but not re-slerped
N_DRIFT = 4  # components of the smooth drift velocity field


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


def start_ws(G, seed: int, psi: float, w_avg: torch.Tensor) -> torch.Tensor:
    """[1, num_ws, w_dim] CPU: the W+ a Deck with `seed` shows at keyframe 0 under truncation ψ
    with no pushes (its start identity: what hold directions are measured around). The same
    steps as Deck.reset + controls; a test holds them equal."""
    z = KeyframeSequence(int(G.z_dim), int(seed))[0].float()
    z = z * (math.sqrt(int(G.z_dim)) / max(float(z.norm()), 1e-6))  # Deck._on_sphere
    dev = next(G.mapping.parameters()).device
    with torch.no_grad():
        w = G.mapping(z[None].to(dev), None, truncation_psi=1.0).float().cpu()
    return truncate(w, w_avg.float().cpu(), psi).contiguous()


class Deck:
    """One generator's latent walk. `name` is "A" or "B"; `G` gives the model's geometry;
    `model` names its checkpoint (carried into DeckControls, so drivers pick the engine);
    `share`: a deck on the same G whose model statistics (w_avg, w_scale) and numpy mapping
    this one reuses instead of estimating and building them (`reseeded`)."""

    def __init__(
        self, name: str, G, seed: int = 0, model: str = "default", share: Deck | None = None
    ) -> None:
        self.name = name
        self.G = G
        self.model = str(model)
        self.seed = int(seed)
        self.z_dim = int(G.z_dim)
        self.w_dim = int(G.w_dim)
        self.num_ws = int(G.num_ws)
        self.n_noise = num_noise_layers(G)
        self.device = next(G.mapping.parameters()).device
        self.keys = KeyframeSequence(self.z_dim, self.seed, self.device)
        self._radius = math.sqrt(self.z_dim)  # z's live on (near) this sphere
        if share is not None and share.G is G:
            self.w_avg, self.w_scale, self._map_np = share.w_avg, share.w_scale, share._map_np
        else:
            self.w_avg, self.w_scale = self._estimate_stats(G)
            # the per-frame map of one z (drift moves z every frame): numpy, not torch, on a CPU
            self._map_np = NumpyMapping.of(G) if self.device.type == "cpu" else None
        self._init_seeded()

    def reseeded(self, seed: int) -> Deck:
        """A fresh deck on the same model, walking `seed` from its keyframe 0 (a preset switch
        that names another seed). Model statistics are this deck's, so pushes keep their scale."""
        d = Deck(self.name, self.G, seed, self.model, share=self)
        d.reference = self.reference
        return d

    def _estimate_stats(self, G) -> tuple[torch.Tensor, float]:
        with torch.no_grad():
            zs = torch.from_numpy(seeded_normal(self.seed, 1 << 21, (256, self.z_dim)))
            w = self._map(zs.to(self.device))[:, 0]  # [256, w_dim]
            w_avg = getattr(G.mapping, "w_avg", None)  # a network without one: estimate it
            w_avg = (w.mean(0) if w_avg is None else w_avg.detach().float()).clone()
            # Typical spread of W around w_avg, so pushes are scaled to the model.
            return w_avg, float((w - w_avg).norm(dim=-1).mean().clamp_min(1e-6))

    def _init_seeded(self) -> None:
        """Everything that follows the seed and the model: drift field, band plans, buffers."""
        # Drift velocity field: v(θ) = Σ_j b_j cos(f_j θ + φ_j), smooth and seeded.
        self._drift_b = torch.from_numpy(
            seeded_normal(self.seed, 1 << 22, (N_DRIFT, self.z_dim)) / math.sqrt(N_DRIFT)
        ).to(self.device)  # [N_DRIFT, z_dim]
        rng = np.random.default_rng([self.seed & 0xFFFFFFFF, 1 << 23])
        self._drift_f = rng.uniform(0.3, 1.3, N_DRIFT)
        self._drift_phi = rng.uniform(0.0, 2 * math.pi, N_DRIFT)
        self._band_cache: dict[int, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}
        self._ones = torch.ones(self.n_noise, device=self.device)
        self._drift_b_np = self._drift_b.cpu().numpy()
        self._drift_c = np.empty(N_DRIFT, np.float32)
        self._drift_fphi = tuple(zip(self._drift_f.tolist(), self._drift_phi.tolist(), strict=True))
        self._w_avg_np = self.w_avg.cpu().numpy()
        self._band_np: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self.reference = False  # True: torch twins only (drift, controls), for tests
        self._avg_ws = self.w_avg.expand(1, self.num_ws, self.w_dim).contiguous()  # walk=False
        self.avg_rows_np = self._avg_ws.cpu().numpy()[0]  # [num_ws, w_dim], read-only
        self.reset()

    # -- state ----------------------------------------------------------------------------
    def reset(self) -> None:
        """Back to keyframe 0, no glide, no drift travelled."""
        self.keyframe_index = 0
        self.z = self._on_sphere(self.keys[0])  # [z_dim]
        self._theta = 0.0
        self._glide: tuple[torch.Tensor, torch.Tensor] | None = None  # (from, to) z's
        self._zv = 0  # bumped on every change of z: the mapped W is reused until then
        self._w_cache: tuple[int, np.ndarray] | None = None

    # z [z_dim] lives as a torch tensor, a numpy array, or both (views of one buffer on the
    # CPU): the numpy paths hand arrays along without a torch round trip per frame
    @property
    def z(self) -> torch.Tensor:
        t = self._z
        if t is None:
            t = self._z = torch.from_numpy(self._z_np)
        return t

    @z.setter
    def z(self, v: torch.Tensor) -> None:
        self._z, self._z_np = v, None

    def _z_numpy(self) -> np.ndarray:
        """z as float32 numpy (a view on a CPU deck: read-only by convention)."""
        a = self._z_np
        if a is None:
            a = self._z_np = self._z.numpy()
        return a

    def _set_z_np(self, v: np.ndarray) -> None:
        self._z, self._z_np = None, v

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

    # -- verbs (the Show calls these in time order) ---------------------------------------
    @torch.no_grad()
    def jump(self, frac: float, count: int = 1) -> None:
        """`count` onsets/beats: each moves `frac` of the way toward the next keyframe."""
        frac = min(max(frac, 0.0), 1.0)
        if count <= 0 or frac <= 0.0:
            return
        self._glide = None
        if self.device.type == "cpu" and not self.reference:  # numpy: torch's slerp is ~30 ops
            z = self._z_numpy()
            for _ in range(min(count, MAX_JUMPS_PER_STEP)):
                self.keyframe_index += 1
                k = self.keys[self.keyframe_index].numpy()
                z = slerp_np(z, k * np.float32(self._radius / max(_norm(k), 1e-6)), frac)
            self._set_z_np(z)
        else:
            for _ in range(min(count, MAX_JUMPS_PER_STEP)):
                self.keyframe_index += 1
                self.z = slerp(self.z, self._on_sphere(self.keys[self.keyframe_index]), frac)
        self._zv += 1

    @torch.no_grad()
    def land(self, count: int = 1) -> None:
        """A manual press (`next_keyframe`): `count` keyframes on, landing fully on the last."""
        if count <= 0:
            return
        self._glide = None
        self.keyframe_index += count
        self.z = self._on_sphere(self.keys[self.keyframe_index])
        self._zv += 1

    def glide_to(self, index: int) -> None:
        """Start a glide toward keyframe `index` (a cue); `glide(progress)` moves along it."""
        self.keyframe_index = max(int(index), 0)
        self._glide = (self.z.clone(), self._on_sphere(self.keys[self.keyframe_index]))

    @torch.no_grad()
    def glide(self, progress: float) -> None:
        """Position on the current glide, 0..1 (1 = there, and the glide ends)."""
        if self._glide is None:
            return
        a, b = self._glide
        if progress >= 1.0:
            self.z, self._glide = b, None
        else:
            self.z = slerp(a, b, max(progress, 0.0))
        self._zv += 1

    def drift(self, dt: float, rate: float) -> None:
        """Integrate the seeded velocity field for `dt` seconds at drift `rate` (0..1)."""
        if rate <= 0.0 or dt <= 0.0 or self._glide is not None:
            return
        dtheta = dt * rate * DRIFT_RATE
        self._theta += dtheta
        if self.device.type == "cpu" and not self.reference:  # numpy: ~10x cheaper than torch
            th = self._theta
            c = self._drift_c  # [N_DRIFT] float32, reused
            for j, (f, ph) in enumerate(self._drift_fphi):
                c[j] = math.cos(f * th + ph)
            z = self._z_numpy()
            v = c @ self._drift_b_np  # [z_dim]
            # tangent to the sphere: v - (v·u) u with u = z / r
            v -= np.float32(float(v @ z) / (self._radius * self._radius)) * z
            v *= np.float32(dtheta)
            v += z  # z + dθ·v, in the fresh array
            v *= np.float32(self._radius / max(math.sqrt(float(v @ v)), 1e-6))
            self._set_z_np(v)
        else:
            c = np.cos(self._drift_f * self._theta + self._drift_phi).astype(np.float32)
            v = torch.from_numpy(c).to(self.device) @ self._drift_b  # [z_dim]
            u = self.z / self._radius
            v = v - (v @ u) * u
            self.z = self._on_sphere(self.z + dtheta * v)
        self._zv += 1

    def controls(
        self,
        psi: float,
        env: np.ndarray | None,
        band_push: float,
        noise_push: float,
        intensity: float,
        walk: bool = True,
    ) -> DeckControls:
        """The frame's DeckControls: map, truncate, push W along band directions, noise.

        A CPU deck takes a numpy path after the mapping network (torch costs ~10 µs per op
        on these tiny tensors); `controls_reference` is the torch twin, held equal by a test.
        The mapped W is reused while z has not moved. `walk=False`: something else (a
        keyframe loop) replaces W+, so neither the walk nor the band push is computed (ws is
        w_avg in every row, shared between frames: read-only); noise is as usual.
        """
        if self.device.type != "cpu" or self.reference:
            return self.controls_reference(psi, env, band_push, noise_push, intensity)
        ws, noise = self.controls_np(psi, env, band_push, noise_push, intensity, walk)
        return self.wrap(ws, noise)

    def wrap(self, ws: np.ndarray | None, noise: np.ndarray | None, **kw) -> DeckControls:
        """DeckControls over numpy results (None: w_avg in every row / strength 1)."""
        return DeckControls(
            deck=self.name,
            ws=self._avg_ws if ws is None else torch.from_numpy(ws[None]),
            noise_strength=self._ones if noise is None else torch.from_numpy(noise),
            keyframe_index=self.keyframe_index,
            model=self.model,
            **kw,
        )

    def controls_np(
        self,
        psi: float,
        env: np.ndarray | None,
        band_push: float,
        noise_push: float,
        intensity: float,
        walk: bool = True,
    ) -> tuple[np.ndarray | None, np.ndarray | None]:
        """`controls` on a CPU deck as numpy: (ws [num_ws, w_dim] float32, a fresh array the
        caller may change, or None for w_avg in every row; noise [n_noise] or None for 1)."""
        if not walk:
            w = None
        elif self._w_cache is not None and self._w_cache[0] == self._zv:
            w = self._w_cache[1]
        else:
            if self._map_np is not None:
                w = self._map_np(self._z_numpy()).copy()  # [w_dim]
            else:
                with torch.no_grad():  # [w_dim]: the rows of W+ are equal
                    w = self._map(self.z[None])[0, 0].numpy()
            self._w_cache = (self._zv, w)
        avg = self._w_avg_np
        ws = None
        noise = None
        if env is not None and env.size:
            dirs, w_layers, w_noise = self._bands_np(env.size)
            gain = self.w_scale * BAND_GAIN * band_push * intensity
            if gain != 0.0 and w is not None:
                ws = (w_layers * (env * np.float32(gain))) @ dirs  # [num_ws, w_dim]
                ws += avg + (w - avg) * np.float32(psi)  # the truncated W
            ngain = NOISE_GAIN * noise_push * intensity
            if ngain != 0.0:
                noise = w_noise @ (env * np.float32(ngain))  # [n_noise]
                noise += 1.0
        if w is not None and ws is None:
            base = avg + (w - avg) * np.float32(psi)  # [w_dim], truncated
            ws = np.broadcast_to(base, (self.num_ws, self.w_dim)).copy()
        return ws, noise

    def _bands_np(self, n_bands: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        hit = self._band_np.get(n_bands)
        if hit is None:
            hit = tuple(t.cpu().numpy() for t in self._bands_setup(n_bands))
            self._band_np[n_bands] = hit
        return hit

    @torch.no_grad()
    def controls_reference(
        self,
        psi: float,
        env: np.ndarray | None,
        band_push: float,
        noise_push: float,
        intensity: float,
    ) -> DeckControls:
        """The torch twin of `controls` (any device)."""
        ws = truncate(self._map(self.z[None]), self.w_avg, psi)  # [1, num_ws, w_dim]
        noise = self._ones
        if env is not None and env.size:
            dirs, w_layers, w_noise = self._bands_setup(env.size)
            e = torch.from_numpy(env).to(self.device)  # [n_bands]
            gain = self.w_scale * BAND_GAIN * band_push * intensity
            if gain != 0.0:
                ws = ws + gain * ((w_layers * e) @ dirs)[None]  # [1, num_ws, w_dim]
            ngain = NOISE_GAIN * noise_push * intensity
            if ngain != 0.0:
                noise = noise + ngain * (w_noise @ e)
        return DeckControls(
            deck=self.name,
            ws=ws.contiguous(),
            noise_strength=noise,
            keyframe_index=self.keyframe_index,
            model=self.model,
        )


def _norm(v: np.ndarray) -> float:
    return math.sqrt(float(v @ v))


def slerp_np(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """`vj.gan.latent.slerp` for two float32 vectors [D] in numpy (a fresh array): the same
    great-circle path, length lerped, the same (anti)parallel fallbacks. Tests hold them equal."""
    na, nb = _norm(a), _norm(b)
    ua = a / np.float32(max(na, 1e-6))
    ub = b / np.float32(max(nb, 1e-6))
    cos = min(max(float(ua @ ub), -1.0), 1.0)
    omega = math.acos(cos)
    sin = math.sin(omega)
    if sin >= 1e-4:
        u = ua * np.float32(math.sin((1.0 - t) * omega) / sin)
        u += ub * np.float32(math.sin(t * omega) / sin)
    elif cos > 0:  # parallel: lerp of the unit vectors
        u = ua + (ub - ua) * np.float32(t)
    else:  # antiparallel: turn through the deterministic orthogonal direction
        p = _orthogonal_np(ua)
        u = ua * np.float32(math.cos(t * math.pi)) + p * np.float32(math.sin(t * math.pi))
    u *= np.float32((na + (nb - na) * t) / max(_norm(u), 1e-6))
    return u


def _orthogonal_np(u: np.ndarray) -> np.ndarray:
    e = np.zeros_like(u)
    e[int(np.argmin(np.abs(u)))] = 1.0
    p = e - np.float32(float(e @ u)) * u
    return p / np.float32(max(_norm(p), 1e-6))
