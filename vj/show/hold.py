"""Hold directions: W+ offsets for one identity that change the picture's detail while its
composition (a coarse thumbnail of the frame) holds — "expression, identity held" on any model.

Why: on a face model the middle layers carry expression and the coarse ones identity, so
steering the middle layers holds the face. On other models (abstract textures, the embedded
default) every layer's W also moves low-frequency colour and layout: measured on the default,
an 8×8 blur keeps 0.78–0.89 of any single row's change. So the directions are measured from
the picture itself instead, for the identity a deck shows:

  1. candidates: for each W+ row of the layer group, the group's top SeFa directions
     (`candidates` per row, each on one row only) — c = R × candidates of them;
  2. finite differences at the identity ws: X_j = img(ws + step·u_j) − img(ws)  [c, 3·H·W],
     and the same through the thumbnail (THUMB × THUMB area means): T_j;
  3. Gram matrices A = X Xᵀ / (3HW) (how much each combination changes the frame) and
     B = T Tᵀ / (3·THUMB²) (how much it changes the thumbnail), both [c, c];
  4. the top eigenvectors of A − weight·B: combinations that change the frame most for a
     given change of the thumbnail (`weight` prices thumbnail change; 8 by default);
  5. each eigenvector mapped back to W+ (Σ_j v_j u_j on its rows) and normalised.

Linear around the identity: the hold weakens as offsets grow (on the default, mean |Δ| of the
8×8 thumbnail ÷ of the frame: ~0.33 at offsets of 0.25·13 W units, ~0.42 at 0.5, ~0.58 at 1).
Cost: c forward passes of the synthesis (R = 4 rows × 32 candidates = 128 on the default,
~15–30 s on 2 CPU cores), done once per (network, identity, group) and cached on disk.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch

from vj.show.directions import cached_arrays, layers_tag, sefa
from vj.show.layers import LayerMap

THUMB = 8  # the thumbnail is THUMB × THUMB area means of the frame
WEIGHT = 8.0  # price of thumbnail change against frame change in the eigenproblem
CANDIDATES = 32  # SeFa directions tried per W+ row
STEP = 0.5  # finite-difference step along a unit candidate (W units)
BATCH = 16  # synthesis forwards per batch


def _thumb(x: torch.Tensor, b: int) -> torch.Tensor:
    """[N, C, H, W] → [N, C, b, b] area means (H, W multiples of b)."""
    n, c, h, w = x.shape
    return x.reshape(n, c, b, h // b, b, w // b).mean((3, 5))


@torch.no_grad()
def hold_directions(
    G,
    ws: torch.Tensor,
    layers: str | tuple[int, ...] = "middle",
    count: int = 8,
    candidates: int = CANDIDATES,
    weight: float = WEIGHT,
    thumb: int = THUMB,
) -> np.ndarray:
    """[count, num_ws, w_dim] float32 unit-norm W+ offsets (zero outside `layers`' rows) for the
    identity `ws` [1, num_ws, w_dim], best first (see the module docstring)."""
    syn = G.synthesis
    rows = LayerMap.of(G).ws_indices(layers)
    if not rows:
        raise ValueError(f"hold directions: layer group {layers!r} is empty for this network")
    res = int(G.img_resolution)
    if res % thumb:
        raise ValueError(f"hold directions: resolution {res} not a multiple of {thumb}")
    d, _ = sefa(G, layers)
    k = min(int(candidates), d.shape[0])
    u = torch.from_numpy(d[:k]).float()  # [k, w_dim] unit, orthonormal
    ws = ws.detach().float().cpu().reshape(1, syn.num_ws, syn.w_dim)
    cands = [(r, j) for r in rows for j in range(k)]  # c candidates: one row each
    c = len(cands)
    x0 = syn(ws, noise_mode="const").clamp(-1, 1)  # [1, 3, H, W]
    t0 = _thumb(x0, thumb)
    X = torch.empty(c, x0[0].numel())  # [c, 3·H·W] frame differences
    T = torch.empty(c, t0[0].numel())  # [c, 3·thumb²] thumbnail differences
    for a in range(0, c, BATCH):
        part = cands[a : a + BATCH]
        batch = ws.repeat(len(part), 1, 1)
        for i, (r, j) in enumerate(part):
            batch[i, r] += STEP * u[j]
        x = syn(batch, noise_mode="const").clamp(-1, 1) - x0  # [n, 3, H, W]
        X[a : a + len(part)] = x.flatten(1)
        T[a : a + len(part)] = (_thumb(x + x0, thumb) - t0).flatten(1)
    A = (X @ X.T).double() / X.shape[1]  # [c, c]
    B = (T @ T.T).double() / T.shape[1]
    _, vec = torch.linalg.eigh(A - float(weight) * B)  # ascending
    vec = vec.flip(1)[:, : min(int(count), c)]  # [c, count] best first
    out = np.zeros((vec.shape[1], syn.num_ws, syn.w_dim), np.float64)
    v = vec.numpy()
    for i, (r, j) in enumerate(cands):
        out[:, r] += v[i][:, None] * d[j][None].astype(np.float64)
    out /= np.linalg.norm(out.reshape(out.shape[0], -1), axis=1)[:, None, None]
    # sign: largest |component| positive, so a direction means the same on every machine
    flat = out.reshape(out.shape[0], -1)
    idx = np.abs(flat).argmax(axis=1)
    out *= np.sign(flat[np.arange(len(idx)), idx])[:, None, None]
    return out.astype(np.float32)


def hold_cached(
    G,
    ws: torch.Tensor,
    layers: str | tuple[int, ...],
    count: int,
    cache_dir: Path | None,
    digest: str | None = None,
    say=None,
) -> np.ndarray:
    """hold_directions(G, ws, layers, count), read from / written to `cache_dir` (atomically)
    under the network's digest and the identity's bytes; None computes every time. `say`
    (a print-like callable) is told before a computation (it takes seconds)."""
    path = None
    if cache_dir is not None:
        if digest is None:
            from vj.gan.backends import network_digest

            digest = network_digest(G)
        h = hashlib.sha256(ws.detach().float().cpu().contiguous().numpy().tobytes())
        tag = f"{layers_tag(layers)}-{count}-{CANDIDATES}-{THUMB}"
        path = Path(cache_dir) / f"hold-{digest[:16]}-{h.hexdigest()[:16]}-{tag}.npz"

    def compute():
        if say is not None:
            say(f"computing hold directions ({layers_tag(layers)} layers; once per model and "
                "identity, cached)")  # fmt: skip
        return {"directions": hold_directions(G, ws, layers, count)}

    def valid(z):
        d = z["directions"]
        return d.shape == (count, G.num_ws, G.w_dim) and bool(np.isfinite(d).all())

    return cached_arrays(path, compute, valid)["directions"].astype(np.float32)
