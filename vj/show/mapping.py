"""A numpy twin of the mapping network for one z at a time on the CPU (the Show's per-frame map).

torch costs ~10 µs of dispatch per op on a [1, 512] tensor and the mapping network is ~30 ops,
so a deck whose z moves every frame (drift) paid ~1 ms per frame for what is eight small
matrix-vector products. `NumpyMapping` holds the layers' effective weights (equalised-lr gains
folded in, transposed once) and runs them into preallocated buffers. `MappingNetwork.forward`
is its reference twin; tests hold them equal.
"""

from __future__ import annotations

import math

import numpy as np
import torch

_ACT_SLOPE = {"linear": 1.0, "relu": 0.0, "lrelu": 0.2}  # negative-side slope, per activation


class NumpyMapping:
    """z [z_dim] → w [w_dim] (no truncation, no labels), the same function as `G.mapping`.

    Per layer one augmented matrix [in + 1, out]: the weight's transpose over the bias row
    (the input carries a constant 1), the equalised-lr gains and the activation's gain folded
    in (a leaky ReLU is positively homogeneous: g·lrelu(x) = lrelu(g·x)). A layer is then one
    matmul and, for lrelu, two element-wise ops. `of(G)` returns None where the twin does not
    apply (a conditional network, one not on the CPU, an unknown layer kind): keep torch there.
    """

    def __init__(self, layers: list[tuple[np.ndarray, str]]) -> None:
        self._acts = [act for _, act in layers]
        self._mats = [m for m, _ in layers]  # [in + 1, out] float32
        # buffers [out + 1] ending in the constant 1 the next layer's bias row multiplies
        self._bufs = []
        for m in self._mats:
            b = np.empty(m.shape[1] + 1, np.float32)
            b[-1] = 1.0
            self._bufs.append(b)
        self._views = [b[:-1] for b in self._bufs]
        self._tmp = [np.empty(m.shape[1], np.float32) for m in self._mats]
        self._x = np.empty(self._mats[0].shape[0], np.float32)
        self._x[-1] = 1.0
        self._xz = self._x[:-1]

    @classmethod
    def of(cls, G) -> NumpyMapping | None:
        m = getattr(G, "mapping", None)
        if m is None or getattr(m, "c_dim", 1) != 0 or getattr(m, "z_dim", 0) <= 0:
            return None
        try:
            if any(p.device.type != "cpu" for p in m.parameters()):
                return None
            layers = []
            with torch.no_grad():
                for i in range(int(m.num_layers)):
                    fc = getattr(m, f"fc{i}")
                    if fc.activation not in _ACT_SLOPE:
                        return None
                    gain = 1.0 if fc.activation == "linear" else math.sqrt(2.0)
                    w = fc.weight.double() * (fc.weight_gain * gain)  # [out, in]
                    b = torch.zeros(w.shape[0], dtype=torch.float64)
                    if fc.bias is not None:
                        b = fc.bias.double() * (fc.bias_gain * gain)
                    mat = torch.cat((w.t(), b[None]), 0).float().contiguous()  # [in + 1, out]
                    layers.append((mat.numpy().copy(), fc.activation))
        except (AttributeError, TypeError, ValueError):
            return None
        if not layers or layers[0][0].shape[0] != int(m.z_dim) + 1:
            return None
        return cls(layers)

    def __call__(self, z: np.ndarray) -> np.ndarray:
        """w [w_dim] float32 for z [z_dim] (a buffer reused by the next call: copy to keep)."""
        # normalize_2nd_moment, as the torch forward (eps inside the root)
        scale = 1.0 / math.sqrt(float(np.dot(z, z)) / z.size + 1e-8)
        np.multiply(z, np.float32(scale), out=self._xz, casting="unsafe")
        x = self._x
        for mat, act, buf, out, tmp in zip(
            self._mats, self._acts, self._bufs, self._views, self._tmp, strict=True
        ):
            np.matmul(x, mat, out=out)  # W x + b (gains folded in)
            if act == "lrelu":  # max(x, 0.2 x)
                np.multiply(out, np.float32(0.2), out=tmp)
                np.maximum(out, tmp, out=out)
            elif act == "relu":
                np.maximum(out, np.float32(0.0), out=out)
            x = buf
        return self._views[-1]
