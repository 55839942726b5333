"""Keyframes in W+: banks (seeds, W/W+ `.npy` files), beat-length loops, quantised jumps, and the
expression-on-every-beat mode (one layer group steers to a new target, coarse layers hold).

Everything is a pure function of its inputs (beat position, calls in order): offline renders
repeat exactly. Tensors are W+ rows [num_ws, w_dim] fp32 on the bank's device.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vj.gan.latent import seeded_normal, slerp
from vj.show.layers import LayerMap

INTERPOLATIONS = ("slerp", "spline", "linear")
MAX_FILE_BYTES = 256 << 20
_EXPRESSION_STREAM = 1 << 25  # seeded-z stream for expression targets (apart from keyframes)
EXPRESSION_BLOCK = 32  # expression targets mapped per mapping-network call


class KeyframeError(ValueError):
    """A keyframe file or bank that cannot be used; the message names the file."""


@dataclass(frozen=True)
class BankSpec:
    """A keyframe bank: seeds (mapped through the network) and/or `.npy` W or W+ files."""

    seeds: tuple[int, ...] = ()
    files: tuple[Path, ...] = ()
    truncation: float = 0.7  # ψ applied to the seeds' W (files are used as given)


class KeyframeBank:
    """An ordered set of W+ keyframes [K, num_ws, w_dim]."""

    def __init__(self, ws: torch.Tensor) -> None:
        if ws.ndim != 3 or ws.shape[0] < 1:
            raise KeyframeError(f"a keyframe bank needs [K, num_ws, w_dim], got {list(ws.shape)}")
        self.ws = ws.float().contiguous()
        self.flat = self.ws.view(ws.shape[0], -1)  # [K, L*D]: splines are one small matmul
        self.flat_np = self.flat.cpu().numpy()  # the same for numpy callers
        # wrapped copy [K + 3, L*D], row j = keyframe (j - 1) mod K: the four rows a spline
        # segment i reads, (i - 1 .. i + 2) mod K, are the contiguous view pad[i : i + 4]
        k = self.flat_np.shape[0]
        self.pad_np = self.flat_np[(np.arange(k + 3) - 1) % k].copy()

    def __len__(self) -> int:
        return int(self.ws.shape[0])

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.ws[i % len(self)]

    @classmethod
    def from_seeds(cls, G, seeds, truncation: float = 0.7) -> KeyframeBank:
        """W+ of seeded z's (seeded_normal(seed, 0, ...): the same z as keyframe 0 of that seed)."""
        dev = next(G.mapping.parameters()).device
        z = np.stack([seeded_normal(s, 0, (G.z_dim,)) for s in seeds])
        with torch.no_grad():
            ws = G.mapping(torch.from_numpy(z).to(dev), None, truncation_psi=truncation)
        return cls(ws.float())

    @classmethod
    def from_spec(cls, spec: BankSpec, G) -> KeyframeBank:
        parts = []
        if spec.seeds:
            parts.append(cls.from_seeds(G, spec.seeds, spec.truncation).ws)
        dev = next(G.mapping.parameters()).device
        for p in spec.files:
            parts.append(load_ws(p, int(G.num_ws), int(G.w_dim)).to(dev))
        if not parts:
            raise KeyframeError("a keyframe bank needs seeds or files")
        return cls(torch.cat(parts, 0))


def load_ws(path: Path, num_ws: int, w_dim: int) -> torch.Tensor:
    """A `.npy` of W [w_dim], W+ [num_ws, w_dim], or a stack [K, w_dim] / [K, num_ws, w_dim]
    (what a projector writes) → [K, num_ws, w_dim] float32."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise KeyframeError(f"{path}: larger than {MAX_FILE_BYTES >> 20} MiB")
        a = np.load(path, allow_pickle=False)
    except KeyframeError:
        raise
    except (OSError, ValueError, EOFError) as exc:
        raise KeyframeError(f"{path}: cannot read as a .npy array: {exc}") from None
    if not isinstance(a, np.ndarray) or a.dtype.kind not in "fiu":
        raise KeyframeError(f"{path}: expected a numeric array")
    if a.ndim == 1:
        a = a[None]
    if a.ndim == 2 and a.shape == (num_ws, w_dim) and num_ws != 1:
        a = a[None]  # one W+
    elif a.ndim == 2:
        a = np.repeat(a[:, None], num_ws, axis=1)  # W's broadcast to every row
    if a.ndim != 3 or a.shape[1:] != (num_ws, w_dim):
        raise KeyframeError(
            f"{path}: expected W [{w_dim}] or W+ [{num_ws}, {w_dim}] (or a stack), "
            f"got {list(np.shape(a))}"
        )
    a = a.astype(np.float32)
    if not np.isfinite(a).all():
        raise KeyframeError(f"{path}: contains NaN or infinity")
    return torch.from_numpy(a)


def interpolate(bank: KeyframeBank, pos: float, how: str, w_avg: torch.Tensor) -> torch.Tensor:
    """W+ at fractional, cyclic bank position `pos` (k = keyframe k exactly) [num_ws, w_dim].

    slerp: spherical between neighbours around w_avg (constant "distance from average");
    spline: cyclic Catmull-Rom through all keyframes (C1: no kink at any keyframe, the loop
    point included); linear: straight lines.
    """
    k = len(bank)
    pos = pos % k
    i = math.floor(pos)
    t = pos - i
    a, b = bank[i], bank[i + 1]
    if how == "linear" or k == 1:
        return a + (b - a) * t
    if how == "slerp":
        return w_avg + slerp(a - w_avg, b - w_avg, t)
    # Catmull-Rom through p0 a b p3 as one weighted sum of the four keyframes
    t2, t3 = t * t, t * t * t
    wts = torch.tensor(
        [-t3 + 2 * t2 - t, 3 * t3 - 5 * t2 + 2, -3 * t3 + 4 * t2 + t, t3 - t2],
        dtype=bank.flat.dtype,
    ).to(bank.flat.device)
    idx = [(i - 1) % k, i % k, (i + 1) % k, (i + 2) % k]
    return (0.5 * wts @ bank.flat[idx]).view(a.shape)


def interpolate_reference(bank: KeyframeBank, pos: float, w_avg: torch.Tensor) -> torch.Tensor:
    """The textbook Catmull-Rom form of interpolate(..., "spline") (tests hold them equal)."""
    k = len(bank)
    pos = pos % k
    i = math.floor(pos)
    t = pos - i
    p0, a, b, p3 = bank[i - 1], bank[i], bank[i + 1], bank[i + 2]
    return 0.5 * (
        2 * a
        + (b - p0) * t
        + (2 * p0 - 5 * a + 4 * b - p3) * t**2
        + (3 * a - 3 * b + p3 - p0) * t**3
    )


class BankLoop:
    """Loops through a bank once every `length_beats` beats: keyframe k at beat k·length/K.

    `ws(beat)` is a pure function of the beat position, so the loop point is seamless
    (ws(length) == ws(0)) and the loop follows tempo changes without jumps in phase.
    """

    def __init__(
        self, bank: KeyframeBank, length_beats: float, how: str, w_avg: torch.Tensor
    ) -> None:
        if how not in INTERPOLATIONS:
            raise KeyframeError(f"interpolation {how!r} not one of {', '.join(INTERPOLATIONS)}")
        if not (math.isfinite(length_beats) and length_beats > 0):
            raise KeyframeError(f"loop length {length_beats} must be a positive number of beats")
        self.bank, self.length, self.how, self.w_avg = bank, float(length_beats), how, w_avg

    def position(self, beat: float) -> float:
        return (beat / self.length % 1.0) * len(self.bank)

    def ws(self, beat: float) -> torch.Tensor:
        return interpolate(self.bank, self.position(beat), self.how, self.w_avg)

    def ws_np(self, beat: float) -> np.ndarray:
        """ws(beat) as a fresh float32 numpy [num_ws, w_dim] (spline/linear without torch)."""
        bank = self.bank
        if self.how == "slerp":
            return self.ws(beat).cpu().numpy().copy()
        k = len(bank)
        pos = self.position(beat) % k
        i = math.floor(pos)
        t = pos - i
        shape = bank.ws.shape[1:]
        i %= k
        if self.how == "linear" or k == 1:
            w = np.array([1.0 - t, t], np.float32)
            return (w @ bank.pad_np[i + 1 : i + 3]).reshape(shape)  # keyframes i, i + 1
        t2, t3 = t * t, t * t * t
        w = 0.5 * np.array(
            [-t3 + 2 * t2 - t, 3 * t3 - 5 * t2 + 2, -3 * t3 + 4 * t2 + t, t3 - t2], np.float32
        )
        return (w @ bank.pad_np[i : i + 4]).reshape(shape)  # keyframes i - 1 .. i + 2


def next_boundary(beat: float, quantize: str, beats_per_bar: int = 4) -> float:
    """The beat position a jump armed at `beat` lands on: the next beat / bar line (a jump armed
    exactly on a line lands on it), or `beat` itself for "none"."""
    if quantize == "none":
        return beat
    div = 1.0 if quantize == "beat" else float(max(int(beats_per_bar), 1))
    return math.ceil(beat / div - 1e-9) * div


class JumpQueue:
    """Jumps waiting for their beat / bar line. `arm` at the beat it was asked for; `due(beat)`
    returns (in arming order) the fractions whose line has been reached."""

    def __init__(self) -> None:
        self._pending: list[tuple[float, float]] = []  # (target beat, fraction)
        self._due: list[float] = []

    def arm(self, fraction: float, quantize: str, beat: float, beats_per_bar: int = 4) -> None:
        self._pending.append((next_boundary(beat, quantize, beats_per_bar), float(fraction)))

    def due(self, beat: float) -> list[float]:
        """Fractions of the jumps due at this beat position (the list is reused: copy to keep)."""
        self._due.clear()
        if self._pending:
            keep = []
            for target, frac in self._pending:
                if beat >= target - 1e-9:
                    self._due.append(frac)
                elif target - beat > 64.0:  # the beat position jumped back (transport restart)
                    self._due.append(frac)
                else:
                    keep.append((target, frac))
            self._pending = keep
        return self._due

    def __len__(self) -> int:
        return len(self._pending)


class ExpressionMode:
    """On each step (a beat, an onset: whatever the route sends) the W+ rows of `layers` glide
    to a new target over `glide` seconds while every other row (identity, pose) is untouched.

    Targets are seeded W's (their own stream, truncated by `truncation`) or a bank's keyframes,
    taken in order. `apply(ws, dt)` blends the rows toward the current expression by
    `strength` (1 = the rows are the expression's; 0.5 halfway).
    """

    def __init__(
        self,
        G,
        layers: str | tuple[int, ...] = "middle",
        glide: float = 0.08,
        strength: float = 1.0,
        seed: int = 0,
        truncation: float = 0.7,
        bank: KeyframeBank | None = None,
        w_avg: torch.Tensor | None = None,
    ) -> None:
        self.rows = LayerMap.of(G).ws_indices(layers)
        if not self.rows:
            raise KeyframeError(f"layer group {layers!r} is empty for this network")
        self._sl = slice(self.rows[0], self.rows[-1] + 1)
        self._contiguous = list(self.rows) == list(range(self.rows[0], self.rows[-1] + 1))
        self._idx = torch.tensor(self.rows)
        self.G, self.seed, self.truncation, self.bank = G, int(seed), float(truncation), bank
        self.glide, self.strength = max(float(glide), 0.0), float(strength)
        self._device = next(G.mapping.parameters()).device
        self._blocks: dict[int, torch.Tensor] = {}
        self.w_avg = w_avg
        self.reset()

    def reset(self) -> None:
        self.step_index = 0
        self._from = self._target(0)
        self._to = self._from
        self._t = 1.0  # glide progress 0..1
        self._cur_np: np.ndarray | None = None  # current() as numpy, cached per progress
        self._cur_t = -1.0

    def _target(self, i: int) -> torch.Tensor:
        """Rows [len(rows), w_dim] of expression target i."""
        if self.bank is not None:
            return self.bank[i][self._idx.to(self.bank.ws.device)].clone()
        # Targets are mapped EXPRESSION_BLOCK at a time, ahead of need: the beat's own tick
        # then costs an index, not a mapping-network forward (each z is still seed-addressed).
        blk = i // EXPRESSION_BLOCK
        if blk not in self._blocks:
            ids = range(blk * EXPRESSION_BLOCK, (blk + 1) * EXPRESSION_BLOCK)
            z = np.stack([seeded_normal(self.seed, _EXPRESSION_STREAM + j, (self.G.z_dim,))
                          for j in ids])  # fmt: skip
            with torch.no_grad():
                w = self.G.mapping(
                    torch.from_numpy(z).to(self._device), None, truncation_psi=self.truncation
                )
            self._blocks = {blk: w[:, self._idx.to(w.device)].float()}  # keep one block
        return self._blocks[blk][i % EXPRESSION_BLOCK].clone()

    def current(self) -> torch.Tensor:
        """The expression rows now (mid-glide: a smoothstep blend of the last two targets)."""
        t = self._t
        if t >= 1.0:
            return self._to
        s = t * t * (3.0 - 2.0 * t)
        return self._from + (self._to - self._from) * s

    def apply_np(self, ws: np.ndarray) -> None:
        """In place on a float32 numpy [num_ws, w_dim]: the same blend as `apply`."""
        if self._cur_np is None or self._cur_t != self._t:
            t = self._t
            to = self._to.cpu().numpy()  # (a view on the CPU)
            if t >= 1.0:
                self._cur_np = to
            else:  # current()'s smoothstep blend, in numpy
                fr = self._from.cpu().numpy()
                self._cur_np = fr + (to - fr) * np.float32(t * t * (3.0 - 2.0 * t))
            self._cur_t = t
        rows = ws[self._sl] if self._contiguous else ws[list(self.rows)]
        rows += self.strength * (self._cur_np - rows)
        if not self._contiguous:
            ws[list(self.rows)] = rows

    def step(self, n: int = 1) -> None:
        """`n` new expressions: glide from where it is to the n-th next target."""
        if n <= 0:
            return
        self._from = self.current()
        self._cur_np = None
        self.step_index += n
        self._to = self._target(self.step_index)
        self._t = 0.0 if self.glide > 0 else 1.0

    def advance(self, dt: float) -> None:
        if self._t < 1.0:
            self._t = min(self._t + max(dt, 0.0) / self.glide, 1.0)

    def apply(self, ws: torch.Tensor) -> torch.Tensor:
        """ws [1, num_ws, w_dim], the group's rows blended toward the expression (a copy)."""
        out = ws.clone()
        cur = self.current().to(ws.device)
        if self._contiguous:
            rows = out[0, self._sl]
            rows.lerp_(cur, self.strength)
        else:
            idx = self._idx.to(ws.device)
            out[0, idx] = out[0, idx].lerp(cur, self.strength)
        return out


class HoldExpression(ExpressionMode):
    """ExpressionMode whose targets are offsets along a deck's hold directions (vj.show.hold:
    detail moves, the thumbnail of the frame holds), added to the deck's own rows instead of
    replacing them. Target 0 is no offset (the identity itself); target i > 0 is a seeded unit
    mix of the directions [K, num_ws, w_dim], `amount` W units long (strength × w_scale)."""

    def __init__(
        self,
        G,
        directions: np.ndarray,
        amount: float,
        layers: str | tuple[int, ...] = "middle",
        glide: float = 0.08,
        seed: int = 0,
    ) -> None:
        self._dirs = np.ascontiguousarray(directions, np.float32)  # [K, num_ws, w_dim]
        self._amount = float(amount)
        super().__init__(G, layers, glide, 1.0, seed)

    def _target(self, i: int) -> torch.Tensor:
        """Offset rows [len(rows), w_dim] of target i (0: none)."""
        rows = list(self.rows)
        if i <= 0 or self._amount == 0.0:
            return torch.zeros(len(rows), self._dirs.shape[2])
        c = seeded_normal(self.seed, _EXPRESSION_STREAM + i, (self._dirs.shape[0],))
        c = c / max(float(np.linalg.norm(c)), 1e-12)
        off = np.tensordot(c.astype(np.float32), self._dirs, axes=1)  # [num_ws, w_dim]
        return torch.from_numpy(off[rows] * np.float32(self._amount))

    def apply_np(self, ws: np.ndarray) -> None:
        """In place on float32 numpy [num_ws, w_dim]: the current offset added to the rows."""
        if self._cur_np is None or self._cur_t != self._t:
            self._cur_np = self.current().cpu().numpy()
            self._cur_t = self._t
        ws[list(self.rows)] += self._cur_np

    def apply(self, ws: torch.Tensor) -> torch.Tensor:
        """ws [1, num_ws, w_dim] with the current offset added to the group's rows (a copy)."""
        out = ws.clone()
        idx = self._idx.to(ws.device)
        out[0, idx] = out[0, idx] + self.current().to(ws.device)
        return out
