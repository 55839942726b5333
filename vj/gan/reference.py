"""Slow, plainly-written reference twin of the StyleGAN2 forward pass, for tests only.

Reads a `Generator`'s weights but shares none of its math: per-sample modulated weights, one
conv per sample (the "fused" formulation), explicit zero-insertion upsampling with the FIR filter.
fp32 only.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from vj.gan.stylegan2 import Generator


def _act(x: torch.Tensor, name: str) -> torch.Tensor:
    if name == "lrelu":
        return torch.where(x >= 0, x, 0.2 * x) * math.sqrt(2)
    if name == "relu":
        return torch.clamp(x, min=0) * math.sqrt(2)
    return x


def _fc(layer, x: torch.Tensor) -> torch.Tensor:
    """Equalised linear layer, written out."""
    in_features = layer.weight.shape[1]
    lr = layer.bias_gain  # lr_multiplier
    y = x @ (layer.weight * (lr / math.sqrt(in_features))).T
    if layer.bias is not None:
        y = y + layer.bias * lr
    return _act(y, layer.activation)


def _filter2d(f: torch.Tensor) -> torch.Tensor:
    return torch.outer(f, f) if f.ndim == 1 else f


def _fir(x: torch.Tensor, f: torch.Tensor, up: int, pad0: int, pad1: int, gain: float):
    """upfirdn: zero-insert by `up`, pad, true-convolve each channel with f * gain."""
    n, c, h, w = x.shape
    if up > 1:
        u = torch.zeros([n, c, h * up, w * up], dtype=x.dtype)
        u[:, :, ::up, ::up] = x
        x = u
    x = F.pad(x, [pad0, pad1, pad0, pad1])
    k = (_filter2d(f) * gain).flip([0, 1])
    out = torch.zeros(
        [n, c, x.shape[2] - k.shape[0] + 1, x.shape[3] - k.shape[1] + 1], dtype=x.dtype
    )
    for dy in range(k.shape[0]):
        for dx in range(k.shape[1]):
            out = out + k[dy, dx] * x[:, :, dy : dy + out.shape[2], dx : dx + out.shape[3]]
    return out


def modulated_conv_reference(
    x: torch.Tensor,
    weight: torch.Tensor,
    styles: torch.Tensor,
    demodulate: bool = True,
    up: int = 1,
    resample_filter: torch.Tensor | None = None,
) -> torch.Tensor:
    """Per-sample weights, one conv per sample. x [N,I,H,W], weight [O,I,k,k], styles [N,I]."""
    outs = []
    k = weight.shape[-1]
    for n in range(x.shape[0]):
        w = weight * styles[n].reshape(1, -1, 1, 1)  # [O, I, k, k]
        if demodulate:
            w = w / torch.sqrt((w**2).sum(dim=[1, 2, 3], keepdim=True) + 1e-8)
        xn = x[n : n + 1]
        if up == 2:
            fw = _filter2d(resample_filter).shape[0]
            p = k // 2
            xn = _fir(xn, resample_filter, 2, p + (fw + 1) // 2, p + (fw - 2) // 2, gain=4.0)
            outs.append(F.conv2d(xn, w.flip([2, 3])))  # true convolution after upsampling
        else:
            outs.append(F.conv2d(xn, w, padding=k // 2))
    return torch.cat(outs)


def _upsample_img(img: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    fw = _filter2d(f).shape[0]
    return _fir(img, f, 2, (fw + 1) // 2, (fw - 2) // 2, gain=4.0)


def reference_mapping(
    G: Generator,
    z: torch.Tensor,
    c: torch.Tensor | None = None,
    truncation_psi: float = 1.0,
    truncation_cutoff: int | None = None,
) -> torch.Tensor:
    m = G.mapping
    parts = []
    if m.z_dim:
        parts.append(z / torch.sqrt((z**2).mean(dim=1, keepdim=True) + 1e-8))
    if m.c_dim:
        e = _fc(m.embed, c)
        parts.append(e / torch.sqrt((e**2).mean(dim=1, keepdim=True) + 1e-8))
    x = torch.cat(parts, dim=1)
    for i in range(m.num_layers):
        x = _fc(getattr(m, f"fc{i}"), x)
    ws = torch.stack([x] * G.num_ws, dim=1)
    if truncation_psi != 1:
        cut = G.num_ws if truncation_cutoff is None else truncation_cutoff
        trunc = m.w_avg + truncation_psi * (ws - m.w_avg)
        ws = torch.cat([trunc[:, :cut], ws[:, cut:]], dim=1)
    return ws


def _layer(layer, x, w, noise_map, mult, gain=1.0):
    styles = _fc(layer.affine, w)
    x = modulated_conv_reference(x, layer.weight, styles, True, layer.up, layer.resample_filter)
    if noise_map is not None:
        x = x + noise_map * layer.noise_strength * mult
    x = x + layer.bias.reshape(1, -1, 1, 1)
    x = _act(x, layer.activation) * gain
    if layer.conv_clamp is not None:
        x = torch.clamp(x, -layer.conv_clamp * gain, layer.conv_clamp * gain)
    return x


def _torgb(layer, x, w):
    styles = _fc(layer.affine, w) / math.sqrt(layer.weight.shape[1] * layer.weight.shape[2] ** 2)
    x = modulated_conv_reference(x, layer.weight, styles, demodulate=False)
    x = x + layer.bias.reshape(1, -1, 1, 1)
    if layer.conv_clamp is not None:
        x = torch.clamp(x, -layer.conv_clamp, layer.conv_clamp)
    return x


def reference_synthesis(
    G: Generator,
    ws: torch.Tensor,
    noise_mode: str = "const",
    noise_strength: float | torch.Tensor = 1.0,
    noise: dict[str, torch.Tensor] | None = None,
) -> torch.Tensor:
    """fp32 forward of G.synthesis. 'random' mode is not reproducible here: pass `noise` maps."""
    s = G.synthesis
    ws = ws.float()
    x = img = None
    w_idx = 0
    k = 0
    for res in s.block_resolutions:
        b = getattr(s, f"b{res}")
        names = ["conv1"] if b.in_channels == 0 else ["conv0", "conv1"]
        maps = []
        for name in names:
            layer = getattr(b, name)
            if not layer.use_noise or noise_mode == "none":
                maps.append((None, 1.0))
                continue
            mult = noise_strength
            if isinstance(mult, torch.Tensor) and mult.ndim > 0:
                mult = mult[k]
            user = (noise or {}).get(f"b{res}.{name}")
            if user is None and noise_mode == "random":
                raise ValueError("reference_synthesis: random mode needs explicit noise maps")
            maps.append((layer.noise_const if user is None else user, mult))
            k += 1
        wsb = [ws[:, w_idx + j] for j in range(len(names) + b.num_torgb)]
        w_idx += len(names)
        if b.in_channels == 0:
            x = b.const.unsqueeze(0).repeat(ws.shape[0], 1, 1, 1)
            x = _layer(b.conv1, x, wsb[0], *maps[0])
        elif b.architecture == "resnet":
            fw = _filter2d(b.skip.resample_filter).shape[0]
            up = _fir(x, b.skip.resample_filter, 2, (fw + 1) // 2, (fw - 2) // 2, gain=4.0)
            sk = b.skip.weight / math.sqrt(b.skip.weight.shape[1])
            y = F.conv2d(up, sk) * math.sqrt(0.5)
            x = _layer(b.conv0, x, wsb[0], *maps[0])
            x = y + _layer(b.conv1, x, wsb[1], *maps[1], gain=math.sqrt(0.5))
        else:
            x = _layer(b.conv0, x, wsb[0], *maps[0])
            x = _layer(b.conv1, x, wsb[1], *maps[1])
        if img is not None:
            img = _upsample_img(img, b.resample_filter)
        if b.num_torgb:
            y = _torgb(b.torgb, x, wsb[len(names)])
            img = y if img is None else img + y
    return img


def reference_generator(G: Generator, z, c=None, truncation_psi=1.0, truncation_cutoff=None, **kw):
    ws = reference_mapping(G, z, c, truncation_psi, truncation_cutoff)
    return reference_synthesis(G, ws, **kw)
