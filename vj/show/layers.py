"""Layer groups of a synthesis network: which W+ rows and noise layers are coarse, middle, fine.

StyleGAN's convention (Karras et al.): coarse = 4²–8² (pose, identity, face shape), middle =
16²–32² (features, expression, hair), fine = 64² and up (colour, texture). Networks below 64²
have no 64² block, so their blocks are split into thirds instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

GROUPS = ("coarse", "middle", "fine", "all")


class LayerError(ValueError):
    """A layer group or index that this network does not have."""


@dataclass(frozen=True)
class LayerMap:
    """Per W+ row and per noise layer: the resolution and synthesis block it feeds."""

    num_ws: int
    ws_res: tuple[int, ...]  # [num_ws] resolution of the first layer that reads each W+ row
    noise_res: tuple[int, ...]  # [num_noise_layers]
    block_res: tuple[int, ...]  # [num_blocks] 4, 8, 16, ...

    @classmethod
    def of(cls, G) -> LayerMap:
        """From a Generator (or its synthesis network)."""
        syn = getattr(G, "synthesis", G)
        ws_res: list[int | None] = [None] * int(syn.num_ws)
        w_idx = 0
        for block in syn.blocks():
            for j in range(block.num_conv + block.num_torgb):
                if ws_res[w_idx + j] is None:
                    ws_res[w_idx + j] = block.resolution
            w_idx += block.num_conv
        return cls(
            num_ws=int(syn.num_ws),
            ws_res=tuple(int(r) for r in ws_res),
            noise_res=tuple(int(h) for h, _ in syn.noise_shapes),
            block_res=tuple(int(b.resolution) for b in syn.blocks()),
        )

    def _group_of_res(self, res: int) -> str:
        if max(self.block_res) >= 64:
            return "coarse" if res <= 8 else "middle" if res <= 32 else "fine"
        k = self.block_res.index(res)  # small net: thirds of its blocks
        n = len(self.block_res)
        return ("coarse", "middle", "fine")[min(3 * k // n, 2)]

    def ws_indices(self, layers: str | Sequence[int]) -> tuple[int, ...]:
        """W+ rows of a group name or an explicit index list (checked)."""
        return self._indices(layers, self.ws_res, "W+ row")

    def noise_indices(self, layers: str | Sequence[int]) -> tuple[int, ...]:
        """Noise layers of a group name or an explicit index list (checked)."""
        return self._indices(layers, self.noise_res, "noise layer")

    def _indices(self, layers, res: tuple[int, ...], what: str) -> tuple[int, ...]:
        if isinstance(layers, str):
            if layers not in GROUPS:
                raise LayerError(f"layer group {layers!r} not one of {', '.join(GROUPS)}")
            if layers == "all":
                return tuple(range(len(res)))
            return tuple(i for i, r in enumerate(res) if self._group_of_res(r) == layers)
        out = tuple(int(i) for i in layers)
        bad = [i for i in out if not 0 <= i < len(res)]
        if bad:
            raise LayerError(f"{what} {bad[0]} outside 0..{len(res) - 1} for this network")
        return out
