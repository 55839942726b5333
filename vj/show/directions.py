"""Directions in W for style offsets: SeFa (from the checkpoint), seeded random, user `.npy`.

SeFa (Shen & Zhou, "Closed-Form Factorization of Latent Semantics in GANs", 2021): the style
affine weights A of a layer group map w to per-channel styles, so the unit w-directions that
move the styles most are the top right-singular vectors of A (with each layer's rows
normalised so wide layers do not dominate). No sampling, no training: an SVD per group,
cached on disk under the network's digest.

`StyleSteer` then turns the routing matrix's style coefficients into W+ offsets each tick.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vj.fsutil import atomic_write_bytes
from vj.gan.latent import seeded_directions, seeded_normal
from vj.show.layers import LayerMap

KINDS = ("sefa", "random", "file")
MAX_FILE_BYTES = 64 << 20  # a direction file larger than this is refused (not a vector set)


class DirectionError(ValueError):
    """A direction set that cannot be built or read; the message names the file."""


@dataclass(frozen=True)
class DirectionSpec:
    """How to get a deck's direction set (config.py builds these from the preset)."""

    kind: str = "sefa"  # one of KINDS
    layers: str | tuple[int, ...] = "all"  # sefa: the layer group whose affines are factorised
    count: int = 16  # how many directions (sefa: the top `count`)
    seed: int = 0  # random
    path: Path | None = None  # file


def sefa(G, layers: str | tuple[int, ...] = "all") -> tuple[np.ndarray, np.ndarray]:
    """(directions [K, w_dim] float32 orthonormal rows, singular values [K] descending) for the
    style affines of the synthesis layers reading W+ rows in `layers`. K = min(rows, w_dim)."""
    lm = LayerMap.of(G)
    rows = set(lm.ws_indices(layers))
    mats = []
    w_idx = 0
    for block in G.synthesis.blocks():
        # conv layers only, as in SeFa: the toRGB affines set colour, not semantics
        for j, mod in enumerate(block.conv_layers()):
            if w_idx + j in rows:
                a = mod.affine.weight.detach().double().cpu()  # [C, w_dim]
                mats.append(a / a.norm(dim=1, keepdim=True).clamp_min(1e-12))
        w_idx += block.num_conv
    if not mats:
        raise DirectionError(f"sefa: no style layers in group {layers!r}")
    a = torch.cat(mats, 0)  # [sum C, w_dim]
    _, s, vh = torch.linalg.svd(a, full_matrices=False)  # s descending
    # Sign fix (largest |component| positive) so a direction means the same on every machine.
    idx = vh.abs().argmax(dim=1, keepdim=True)
    vh = vh * torch.sign(vh.gather(1, idx))
    return vh.float().numpy(), s.float().numpy()


def cached_arrays(path: Path | None, compute, valid) -> dict[str, np.ndarray]:
    """Named arrays from the `.npz` at `path` when it reads and `valid(arrays)` holds, else
    `compute()` (a dict of arrays), written there atomically. path None computes every time;
    a broken file is recomputed and overwritten; a read-only cache is not fatal."""
    if path is not None and path.is_file():
        try:
            with np.load(path, allow_pickle=False) as z:
                got = {k: z[k] for k in z.files}
            if valid(got):
                return got
        except (OSError, ValueError, KeyError):
            pass  # unreadable: compute and overwrite
    got = compute()
    if path is not None:
        buf = io.BytesIO()
        np.savez(buf, **got)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(path, buf.getvalue())
        except OSError:
            pass  # the arrays are still right
    return got


def layers_tag(layers: str | tuple[int, ...]) -> str:
    """A layer group as a cache-file name part."""
    return layers if isinstance(layers, str) else "-".join(str(i) for i in layers)


def sefa_cached(
    G, layers: str | tuple[int, ...], cache_dir: Path | None, digest: str | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """sefa(G, layers), read from / written to `cache_dir` (atomically) under the network's
    digest; cache_dir None computes every time. A broken cache file is recomputed."""
    path = None
    if cache_dir is not None:
        if digest is None:
            from vj.gan.backends import network_digest  # moved there by #13

            digest = network_digest(G)
        path = Path(cache_dir) / f"sefa-{digest[:20]}-{layers_tag(layers)}.npz"

    def compute():
        d, s = sefa(G, layers)
        return {"directions": d, "singular": s}

    def valid(z):
        d, s = z["directions"], z["singular"]
        return d.ndim == 2 and d.shape[1] == G.w_dim and s.shape == (d.shape[0],)

    got = cached_arrays(path, compute, valid)
    return got["directions"].astype(np.float32), got["singular"].astype(np.float32)


def random_directions(count: int, w_dim: int, seed: int) -> np.ndarray:
    """`count` seeded orthonormal directions [count, w_dim] (count ≤ w_dim)."""
    if not 1 <= count <= w_dim:
        raise DirectionError(f"random: count {count} must be 1..{w_dim} (the W size)")
    return seeded_directions(count, w_dim, seed, stream=1 << 24).numpy()


def load_directions(path: Path, w_dim: int) -> np.ndarray:
    """A user `.npy` of directions, [K, w_dim] or [w_dim]; rows normalised to unit length."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise DirectionError(f"{path}: larger than {MAX_FILE_BYTES >> 20} MiB")
        a = np.load(path, allow_pickle=False)
    except DirectionError:
        raise
    except (OSError, ValueError, EOFError) as exc:
        raise DirectionError(f"{path}: cannot read as a .npy array: {exc}") from None
    if not isinstance(a, np.ndarray) or a.dtype.kind not in "fiu":
        raise DirectionError(f"{path}: expected a numeric array")
    if a.ndim == 1:
        a = a[None]
    if a.ndim != 2 or a.shape[1] != w_dim or a.shape[0] < 1:
        got = list(a.shape)
        raise DirectionError(f"{path}: expected shape [K, {w_dim}] or [{w_dim}], got {got}")
    a = a.astype(np.float64)
    if not np.isfinite(a).all():
        raise DirectionError(f"{path}: contains NaN or infinity")
    n = np.linalg.norm(a, axis=1, keepdims=True)
    if (n < 1e-12).any():
        raise DirectionError(f"{path}: a direction has zero length")
    return (a / n).astype(np.float32)


def build_directions(spec: DirectionSpec, G, cache_dir: Path | None = None) -> np.ndarray:
    """The direction set a spec names, [K, w_dim] float32."""
    w_dim = int(G.w_dim)
    if spec.kind == "sefa":
        d, _ = sefa_cached(G, spec.layers, cache_dir)
        return d[: spec.count]
    if spec.kind == "random":
        return random_directions(spec.count, w_dim, spec.seed)
    if spec.kind == "file":
        if spec.path is None:
            raise DirectionError("file directions need a path")
        return load_directions(spec.path, w_dim)
    raise DirectionError(f"direction kind {spec.kind!r} not one of {', '.join(KINDS)}")


def w_stats(G, seed: int = 0, n: int = 256) -> tuple[torch.Tensor, float]:
    """(w_avg [w_dim], typical |w - w_avg|) so offsets scale with the model. Deterministic."""
    dev = next(G.mapping.parameters()).device
    with torch.no_grad():
        z = torch.from_numpy(seeded_normal(seed, 1 << 21, (n, G.z_dim))).to(dev)
        w = G.mapping(z, None)[:, 0].float()
        w_avg = getattr(G.mapping, "w_avg", None)
        w_avg = w.mean(0) if w_avg is None else w_avg.detach().float()
        return w_avg.clone(), float((w - w_avg).norm(dim=-1).mean().clamp_min(1e-6))


class StyleSteer:
    """Style coefficients (one per routing-matrix style slot) → W+ offsets [num_ws, w_dim].

    Slot i adds coef[i] × w_scale × directions[direction_i] on the W+ rows of layers_i, so a
    coefficient of 1 moves those rows by about one typical W spread.
    """

    def __init__(
        self,
        slots: tuple,
        directions: np.ndarray,
        layer_map: LayerMap,
        w_scale: float,
        device: str | torch.device = "cpu",
    ) -> None:
        k = directions.shape[0]
        masks = np.zeros((len(slots), layer_map.num_ws), np.float32)  # [S, num_ws]
        dirs = np.zeros((len(slots), directions.shape[1]), np.float32)  # [S, w_dim]
        for i, (direction, layers) in enumerate(slots):
            if not 0 <= direction < k:
                raise DirectionError(f"direction {direction} outside 0..{k - 1} (the set has {k})")
            masks[i, list(layer_map.ws_indices(layers))] = 1.0
            dirs[i] = directions[direction]
        # slot s's whole offset at coefficient 1, flattened: offsets are one [S] @ [S, L*D]
        basis = masks[:, :, None] * (dirs * np.float32(w_scale))[:, None, :]  # [S, L, D]
        self._basis = torch.from_numpy(basis.reshape(len(slots), -1 if slots else 0)).to(device)
        self._shape = (layer_map.num_ws, directions.shape[1])
        self._coef = torch.zeros(len(slots), dtype=torch.float32, device=device)
        self.n = len(slots)

    def offsets(self, coefs: np.ndarray) -> torch.Tensor | None:
        """[num_ws, w_dim] offsets for this tick, or None when every coefficient is 0."""
        if self.n == 0 or not coefs.any():
            return None
        self._coef.copy_(torch.from_numpy(coefs.astype(np.float32, copy=False)))
        return (self._coef @ self._basis).view(self._shape)  # [num_ws, w_dim]

    def offsets_reference(self, coefs: np.ndarray) -> torch.Tensor:
        """Plain twin of `offsets`: slot by slot, row by row (tests)."""
        out = torch.zeros(self._shape)
        basis = self._basis.view(self.n, *self._shape).cpu()
        for s, c in enumerate(coefs.tolist()):
            for row in range(self._shape[0]):
                out[row] += c * basis[s, row]
        return out
