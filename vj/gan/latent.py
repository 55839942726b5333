"""Latent-space helpers: slerp/lerp, truncation, style mixing, seeded keyframes and W directions.

Everything here is deterministic and allocation-light; tensors keep the caller's device/dtype.
"""

from __future__ import annotations

import numpy as np
import torch

_EPS = 1e-6


def lerp(a: torch.Tensor, b: torch.Tensor, t: float | torch.Tensor) -> torch.Tensor:
    """Linear interpolation; the right interpolation in W (which is roughly flat)."""
    return a + (b - a) * t


def _orthogonal_to(u: torch.Tensor) -> torch.Tensor:
    """A deterministic unit vector orthogonal to each unit row of u [..., D]."""
    # Gram-Schmidt against the basis vector where |u| is smallest: never (anti)parallel to u.
    idx = u.abs().argmin(dim=-1, keepdim=True)  # [..., 1]
    e = torch.zeros_like(u).scatter_(-1, idx, 1.0)
    p = e - (e * u).sum(-1, keepdim=True) * u
    return p / p.norm(dim=-1, keepdim=True).clamp_min(_EPS)


def slerp(a: torch.Tensor, b: torch.Tensor, t: float | torch.Tensor) -> torch.Tensor:
    """Spherical interpolation in Z over the last dim; rows of a, b are [..., D].

    Direction moves along the great circle, length is interpolated linearly (so two Gaussian
    z's keep a typical norm). Parallel inputs fall back to lerp; antiparallel inputs (no unique
    great circle) turn through a deterministic orthogonal direction.
    """
    t = torch.as_tensor(t, dtype=a.dtype, device=a.device)
    if t.dim() > 0:
        t = t.unsqueeze(-1)
    na = a.norm(dim=-1, keepdim=True)
    nb = b.norm(dim=-1, keepdim=True)
    ua = a / na.clamp_min(_EPS)
    ub = b / nb.clamp_min(_EPS)
    cos = (ua * ub).sum(-1, keepdim=True).clamp(-1.0, 1.0)
    omega = torch.arccos(cos)  # [..., 1]
    sin = torch.sin(omega)
    near = sin < 1e-4  # parallel or antiparallel
    safe_sin = torch.where(near, torch.ones_like(sin), sin)
    wa = torch.sin((1 - t) * omega) / safe_sin
    wb = torch.sin(t * omega) / safe_sin
    u = wa * ua + wb * ub
    # Parallel: lerp of unit vectors (renormalised below). Antiparallel: rotate via p.
    u_par = ua + (ub - ua) * t
    p = _orthogonal_to(ua)
    ang = t * torch.pi
    u_anti = torch.cos(ang) * ua + torch.sin(ang) * p
    u = torch.where(near & (cos > 0), u_par, u)
    u = torch.where(near & (cos <= 0), u_anti, u)
    u = u / u.norm(dim=-1, keepdim=True).clamp_min(_EPS)
    return u * (na + (nb - na) * t)


def slerp_reference(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """Plain one-vector slerp (numpy float64) for tests; not for (anti)parallel inputs."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    ua, ub = a / na, b / nb
    omega = np.arccos(np.clip(ua @ ub, -1.0, 1.0))
    u = (np.sin((1 - t) * omega) * ua + np.sin(t * omega) * ub) / np.sin(omega)
    return u / np.linalg.norm(u) * (na + (nb - na) * t)


def truncate(
    ws: torch.Tensor, w_avg: torch.Tensor, psi: float, cutoff: int | None = None
) -> torch.Tensor:
    """Truncation trick on W+ ws [N, L, D] toward w_avg [D]; only layers < cutoff if given."""
    out = w_avg + (ws - w_avg) * psi
    if cutoff is None or cutoff >= ws.shape[1]:
        return out
    out = out.clone()
    out[:, cutoff:] = ws[:, cutoff:]
    return out


def style_mix(ws_a: torch.Tensor, ws_b: torch.Tensor, layer: int) -> torch.Tensor:
    """W+ [N, L, D] with layers < layer from ws_a (coarse) and layers >= layer from ws_b."""
    if ws_a.shape != ws_b.shape:
        raise ValueError(f"style_mix: shapes differ: {tuple(ws_a.shape)} vs {tuple(ws_b.shape)}")
    if not 0 <= layer <= ws_a.shape[1]:
        raise ValueError(f"style_mix: layer {layer} outside 0..{ws_a.shape[1]}")
    out = ws_a.clone()
    out[:, layer:] = ws_b[:, layer:]
    return out


def seeded_normal(seed: int, stream: int, shape: tuple[int, ...]) -> np.ndarray:
    """Standard normals (float32) that depend only on (seed, stream, shape): random access."""
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, int(stream) & 0xFFFFFFFF, 0x766A])
    return rng.standard_normal(shape).astype(np.float32)


class KeyframeSequence:
    """Deterministic, random-access stream of keyframe z's [z_dim] for one seed.

    `seq[i]` is the same tensor for the same (z_dim, seed, i) on every run and machine.
    """

    def __init__(self, z_dim: int, seed: int = 0, device: str | torch.device = "cpu") -> None:
        if z_dim <= 0:
            raise ValueError(f"KeyframeSequence: z_dim must be positive, got {z_dim}")
        self.z_dim = int(z_dim)
        self.seed = int(seed)
        self.device = torch.device(device)

    def __getitem__(self, i: int) -> torch.Tensor:
        if i < 0:
            raise IndexError(f"keyframe index {i} < 0")
        z = seeded_normal(self.seed, i, (self.z_dim,))
        return torch.from_numpy(z).to(self.device)


def seeded_directions(
    n: int, dim: int, seed: int, stream: int = 1 << 20, device: str | torch.device = "cpu"
) -> torch.Tensor:
    """n fixed random unit directions [n, dim], orthonormalised when n <= dim."""
    d = torch.from_numpy(seeded_normal(seed, stream, (n, dim))).double()
    if n <= dim:
        q, r = torch.linalg.qr(d.T)  # [dim, n]
        d = (q * torch.sign(torch.diagonal(r))).T  # sign fix keeps it deterministic
    d = d / d.norm(dim=-1, keepdim=True)
    return d.float().to(device)
