"""Procedural abstract imagery (domain-warped fields, marbling, rings, veins, cosine palettes).

The embedded default generator is trained on these pictures: the project makes its own data,
so the weights carry no one else's licence. Every picture is a smooth function of a parameter
vector p in (-1, 1)^P, and `params_from_z` derives p from a latent z through a fixed seeded
projection, so nearby z give nearby pictures (what the supervised warm start regresses).
Pure torch, batched, deterministic; no RNG inside `render`.
"""

from __future__ import annotations

import math

import torch

N_WAVES = 5  # sine waves per warp octave
N_OCTAVES = 3  # warp octaves (coarse -> fine)
PROJECTION_SEED = 20261201
# Layout of p: named slices, each a block of parameters in (-1, 1).
_LAYOUT = (
    ("view", 4),  # rotation, zoom, centre x, centre y
    ("warp_dir", N_OCTAVES * N_WAVES),  # direction of each warp wave
    ("warp_push", N_OCTAVES * N_WAVES),  # direction each wave pushes
    ("warp_phase", N_OCTAVES * N_WAVES),
    ("warp_amp", N_OCTAVES),  # strength per octave
    ("warp_freq", N_OCTAVES),  # frequency per octave
    ("field_dir", 4),  # the marbling field's waves
    ("field_phase", 4),
    ("field_freq", 4),
    ("ring", 4),  # ring weight, ring frequency, ring phase, ring centre offset
    ("vein", 3),  # vein weight, vein sharpness, vein offset
    ("glow", 3),  # vignette strength, glow radius, glow weight
    ("pal_a", 3),  # cosine palette a + b cos(2 pi (c t + d))
    ("pal_b", 3),
    ("pal_c", 3),
    ("pal_d", 3),
    ("pal2_d", 3),  # second palette phase, for the veins
    ("contrast", 2),  # field gain, gamma
)
N_PARAMS = sum(n for _, n in _LAYOUT)


def _slices() -> dict[str, slice]:
    out, i = {}, 0
    for name, n in _LAYOUT:
        out[name] = slice(i, i + n)
        i += n
    return out


def projection(z_dim: int, device: str | torch.device = "cpu") -> torch.Tensor:
    """The fixed seeded map z -> pre-activation of p: [z_dim, N_PARAMS], columns unit-norm."""
    g = torch.Generator().manual_seed(PROJECTION_SEED)
    a = torch.randn([z_dim, N_PARAMS], generator=g)
    return (a / a.norm(dim=0, keepdim=True)).to(device)


def params_from_z(z: torch.Tensor, proj: torch.Tensor) -> torch.Tensor:
    """z [N, z_dim] -> p [N, N_PARAMS] in (-1, 1): smooth in z (normalised like the mapping)."""
    z = z * (z.square().mean(dim=1, keepdim=True) + 1e-8).rsqrt()
    return torch.tanh(0.9 * (z @ proj))  # each column ~ N(0, 1) before the tanh


def render(p: torch.Tensor, resolution: int) -> torch.Tensor:
    """p [N, N_PARAMS] -> images [N, 3, R, R] in [-1, 1] (the generator's range)."""
    s = {k: p[:, v] for k, v in _slices().items()}
    n, r = p.shape[0], resolution
    lin = (torch.arange(r, dtype=p.dtype, device=p.device) + 0.5) / r * 2 - 1
    yy, xx = torch.meshgrid(lin, lin, indexing="ij")
    xy = torch.stack([xx, yy])[None].expand(n, 2, r, r)  # [N, 2, R, R]

    def col(t):  # [N] -> [N, 1, 1]
        return t[:, None, None]

    v = s["view"]
    ang, zoom = v[:, 0] * math.pi, 2.0 ** (v[:, 1] * 0.6)
    ca, sa = torch.cos(ang) * zoom, torch.sin(ang) * zoom
    x0 = xy[:, 0] - col(v[:, 2] * 0.4)
    y0 = xy[:, 1] - col(v[:, 3] * 0.4)
    qx = col(ca) * x0 - col(sa) * y0  # [N, R, R]
    qy = col(sa) * x0 + col(ca) * y0

    # Domain warp: octave o adds sum_k amp * e_k sin(f (d_k . q) + phase_k), coarse first.
    for o in range(N_OCTAVES):
        freq = 1.6 * 2.2**o * 2.0 ** (s["warp_freq"][:, o] * 0.5)
        amp = 0.55 / 1.9**o * (0.6 + 0.4 * s["warp_amp"][:, o]) / math.sqrt(N_WAVES)
        for k in range(N_WAVES):
            i = o * N_WAVES + k
            a = s["warp_dir"][:, i] * math.pi + k * 2.4  # spread directions per wave
            b = s["warp_push"][:, i] * math.pi + k * 1.3
            ph = s["warp_phase"][:, i] * math.pi
            arg = col(freq * torch.cos(a)) * qx + col(freq * torch.sin(a)) * qy + col(ph)
            sw = torch.sin(arg) * col(amp)
            qx = qx + col(torch.cos(b)) * sw
            qy = qy + col(torch.sin(b)) * sw

    # Marbling field on the warped coordinates.
    t = torch.zeros_like(qx)
    for k in range(4):
        a = s["field_dir"][:, k] * math.pi + k * 1.7
        f = 2.0 * 1.7**k * 2.0 ** (s["field_freq"][:, k] * 0.5)
        arg = col(f * torch.cos(a)) * qx + col(f * torch.sin(a)) * qy
        t = t + torch.sin(arg + col(s["field_phase"][:, k] * math.pi)) / (1.0 + 0.6 * k)
    # Rings (nebula shells / ripples) around an offset centre, in warped space.
    rg = s["ring"]
    cx, cy = col(rg[:, 3] * 0.5), col(-rg[:, 3] * 0.3)
    rad = torch.sqrt((qx - cx).square() + (qy - cy).square() + 1e-6)
    ring_w = col(0.5 + 0.5 * rg[:, 0])
    t = t + ring_w * torch.sin(rad * col(4.0 + 3.0 * rg[:, 1]) * math.pi + col(rg[:, 2] * math.pi))
    gain = col(0.35 + 0.12 * s["contrast"][:, 0])
    t = t * gain  # roughly [-1, 1] spread

    pal = {k: s[k][:, :, None, None] for k in ("pal_a", "pal_b", "pal_c", "pal_d", "pal2_d")}
    a_ = 0.5 + 0.12 * pal["pal_a"]
    b_ = 0.42 + 0.12 * pal["pal_b"]
    c_ = 1.0 + 0.45 * pal["pal_c"]
    tt = t[:, None]  # [N, 1, R, R]
    rgb = a_ + b_ * torch.cos(2 * math.pi * (c_ * tt + 0.5 * pal["pal_d"]))  # [N, 3, R, R]

    # Veins: thin bright filaments where a second field crosses zero (flow-field lines).
    vn = s["vein"]
    t2 = torch.sin(3.0 * (qx * 1.3 - qy * 0.7) + col(vn[:, 2] * math.pi) + 2.5 * t)
    sharp = col(6.0 + 4.0 * vn[:, 1])
    vein = torch.exp(-(t2 * sharp).square())[:, None] * (0.5 + 0.5 * vn[:, 0])[:, None, None, None]
    vcol = 0.55 + 0.45 * torch.cos(2 * math.pi * (tt * 0.5 + 0.5 * pal["pal2_d"]))
    rgb = rgb * (1 - vein) + vcol * vein

    # Glow / vignette: depth, so the pictures are not flat wallpaper.
    gl = s["glow"]
    r0 = torch.sqrt(xx.square() + yy.square())[None]  # [1, R, R]
    glow = torch.exp(-(r0 / col(0.55 + 0.25 * gl[:, 1])).square())
    light = 1.0 - col(0.25 + 0.2 * gl[:, 0]) * r0.square() + col(0.25 + 0.2 * gl[:, 2]) * glow
    rgb = rgb * light[:, None]
    gamma = (1.0 + 0.35 * s["contrast"][:, 1])[:, None, None, None]
    rgb = rgb.clamp(0, 1) ** gamma
    return rgb * 2 - 1


def sample(z: torch.Tensor, resolution: int, proj: torch.Tensor | None = None) -> torch.Tensor:
    """z [N, z_dim] -> procedural pictures [N, 3, R, R] in [-1, 1]."""
    if proj is None:
        proj = projection(z.shape[1], z.device)
    return render(params_from_z(z, proj), resolution)
