"""Clean-room, export-friendly StyleGAN2 generator (mapping + synthesis) in pure PyTorch.

Parameter and buffer names match NVIDIA's stylegan2-ada-pytorch `G_ema` state dict, so official
checkpoints load directly. No custom ops, no RNG inside the graph unless asked for, static shapes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from types import MappingProxyType

import torch
import torch.nn.functional as F

ACTIVATIONS = {"linear": 1.0, "relu": math.sqrt(2.0), "lrelu": math.sqrt(2.0)}  # name -> def gain
ARCHITECTURES = ("orig", "skip", "resnet")
NOISE_MODES = ("const", "random", "none")
# Up-convs with at most this many O*I weight planes use the polyphase form (see conv2d_up2).
POLYPHASE_MAX_WEIGHTS = 256

# NVIDIA's own constructor defaults (used when a checkpoint's kwargs leave a value out).
NVIDIA_SYNTHESIS_DEFAULTS = MappingProxyType(
    {
        "channel_base": 32768,
        "channel_max": 512,
        "num_fp16_res": 0,
        "conv_clamp": None,
        "architecture": "skip",
        "resample_filter": (1, 3, 3, 1),
        "use_noise": True,
        "activation": "lrelu",
    }
)
MAPPING_DEFAULTS = MappingProxyType(
    {
        "num_layers": 8,
        "embed_features": None,
        "layer_features": None,
        "activation": "lrelu",
        "lr_multiplier": 0.01,
        "w_avg_beta": 0.995,
    }
)
# Our Generator's defaults: the settings NVIDIA's training script uses for real networks.
SYNTHESIS_DEFAULTS = MappingProxyType(
    dict(NVIDIA_SYNTHESIS_DEFAULTS, num_fp16_res=4, conv_clamp=256)
)
# Accepted for checkpoint compatibility; they change memory layout or training only, not values.
IGNORED_SYNTHESIS_KWARGS = ("fp16_channels_last", "fused_modconv_default", "channels_last")


# ----------------------------------------------------------------------------- small ops


def setup_filter(taps: Sequence[float]) -> torch.Tensor:
    """FIR taps -> normalised filter, stored like NVIDIA's buffer (2-D unless >= 8 taps, 1-D)."""
    f = torch.as_tensor(taps, dtype=torch.float32)
    if f.ndim == 0:
        f = f[None]
    if f.ndim == 1 and f.numel() < 8:
        f = torch.outer(f, f)
    return f / f.sum()


def filter_2d(f: torch.Tensor) -> torch.Tensor:
    """Filter buffer ([k] separable or [k, k]) -> [k, k]."""
    return torch.outer(f, f) if f.ndim == 1 else f


def bias_act(
    x: torch.Tensor,
    b: torch.Tensor | None,
    act: str = "linear",
    gain: float = 1.0,
    clamp: float | None = None,
) -> torch.Tensor:
    """Add bias (per channel, dim 1), activate, scale by gain, clamp to +-clamp."""
    if b is not None:
        x = x + b.to(x.dtype).reshape((1, -1) + (1,) * (x.ndim - 2))
    if act == "lrelu":
        x = F.leaky_relu(x, 0.2)
    elif act == "relu":
        x = F.relu(x)
    if gain != 1:
        x = x * gain
    if clamp is not None:
        x = x.clamp(-clamp, clamp)
    return x


def normalize_2nd_moment(x: torch.Tensor, dim: int = 1, eps: float = 1e-8) -> torch.Tensor:
    return x * (x.square().mean(dim=dim, keepdim=True) + eps).rsqrt()


def _depthwise_blur(x: torch.Tensor, f: torch.Tensor, pad: tuple[int, int], gain: float):
    """True convolution of every channel with 2-D filter f after padding (negative pad = crop)."""
    c = x.shape[1]
    k = (filter_2d(f) * gain).flip([0, 1]).to(x.dtype)  # [kh, kw]
    k = k[None, None].repeat(c, 1, 1, 1)  # contiguous [C, 1, kh, kw]: much faster than expand
    if pad[0] == pad[1] and pad[0] >= 0:
        return F.conv2d(x, k, padding=pad[0], groups=c)
    return F.conv2d(F.pad(x, [pad[0], pad[1], pad[0], pad[1]]), k, groups=c)


def _up2_phase_kernels(f: torch.Tensor, crop: int) -> tuple[torch.Tensor, int]:
    """Polyphase form of "transposed conv with 2-D kernel(s) f [..., k, k] at stride 2, then crop
    `crop`": returns [..., 4, T, T] correlation kernels (phase (sy, sx) at 2*sy + sx), padding.

    Built from slices, flips and pads only (no index tensors): device-agnostic, safe inside
    CUDA-graph capture, constant-folded in an export.
    """
    k = f.shape[-1]
    # 1-D: out[2q + s] = sum_j x[q + (s + crop) // 2 - j] * f[2j + r], r = (s + crop) % 2, so
    # phase s correlates with f[r::2] reversed, whose first tap sits at offset (s+crop)//2 - m + 1.
    spans = []  # per phase: (r, lowest offset d0, number of taps m)
    for s in (0, 1):
        r = (s + crop) % 2
        m = (k - r + 1) // 2
        spans.append((r, (s + crop) // 2 - m + 1, m))
    pad = max(max(-d0, d0 + m - 1) for _, d0, m in spans)
    t = 2 * pad + 1
    phases = []
    for ry, dy, my in spans:
        for rx, dx, mx in spans:
            taps = f[..., ry::2, rx::2].flip([-2, -1])  # [..., my, mx]
            lx, ly = dx + pad, dy + pad
            phases.append(F.pad(taps, [lx, t - lx - mx, ly, t - ly - my]))
    return torch.stack(phases, dim=-3), pad


def upsample2d(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """2x FIR upsampling (zero insertion + filter, gain 4), as one polyphase depthwise conv and a
    pixel shuffle: no work on inserted zeros, plain Conv + DepthToSpace in an export."""
    c = x.shape[1]
    f2 = filter_2d(f) * 4
    fw = f2.shape[-1]
    # NVIDIA's upfirdn2d(up=2, padding=[(fw+1)//2, (fw-2)//2]) = full transposed conv cropped:
    ph, pad = _up2_phase_kernels(f2.to(x.dtype), crop=(fw - 1) - (fw + 1) // 2)
    k = ph[:, None].repeat(c, 1, 1, 1)  # [4C, 1, T, T], channel c*4 + phase
    return F.pixel_shuffle(F.conv2d(x, k, padding=pad, groups=c), 2)


def conv2d_up2(x: torch.Tensor, w: torch.Tensor, f: torch.Tensor, padding: int) -> torch.Tensor:
    """Upsample 2x (zero insertion + FIR f) then true-convolve with w [O, I, k, k]: transposed
    conv at stride 2 followed by the FIR filter, which skips the multiplications by zeros.
    w may be fp32 with fp16 x: kernels are prepared in w's precision, then cast to x.dtype."""
    o, i, kw, _ = w.shape
    f2 = filter_2d(f)
    fw = f2.shape[-1]
    p0 = padding + (fw + 1) // 2  # padding w.r.t. the upsampled image, as in the original
    p1 = padding + (fw - 2) // 2
    if o * i <= POLYPHASE_MAX_WEIGHTS:
        # Thin layers: fold the FIR into the weights (true conv w * f, [O, I, L, L]) and run the
        # stride-2 transposed conv as 4 phase convs + pixel shuffle. 4x the conv MACs, but no
        # full-resolution depthwise pass, which dominates when channels are few.
        f4 = (f2 * 4).to(w.dtype)
        k = F.pad(w.reshape(o * i, 1, kw, kw), [fw - 1] * 4)
        k = F.conv2d(k, f4.flip([0, 1])[None, None])
        k = k.reshape(o, i, kw + fw - 1, kw + fw - 1)
        ph, pad = _up2_phase_kernels(k, crop=fw + kw - 2 - p0)  # [O, I, 4, T, T]
        ph = ph.transpose(1, 2).reshape(o * 4, i, ph.shape[-2], ph.shape[-1]).to(x.dtype)
        return F.pixel_shuffle(F.conv2d(x, ph, padding=pad), 2)
    x = F.conv_transpose2d(x, w.transpose(0, 1).to(x.dtype), stride=2)
    return _depthwise_blur(x, f, (p0 - (kw - 1), p1 - (kw - 2)), gain=4.0)


def _modconv_core(
    x: torch.Tensor,
    weight: torch.Tensor,
    styles: torch.Tensor,
    demodulate: bool,
    up: bool,
    resample_filter: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Modulate input and convolve; returns (conv output in x.dtype, dcoefs [N, O] fp32 or None)."""
    o, i, kh, kw = weight.shape
    if x.dtype == torch.float16 and demodulate:
        # L-inf pre-normalisation keeps fp16 activations in range (demodulation undoes the scale).
        weight = weight * (
            1.0 / math.sqrt(i * kh * kw) / weight.abs().amax(dim=[1, 2, 3], keepdim=True)
        )
        styles = styles / styles.abs().amax(dim=1, keepdim=True)
    x = x * styles.to(x.dtype)[:, :, None, None]
    w = weight.to(x.dtype)
    if up:
        x = conv2d_up2(x, weight, resample_filter, padding=kw // 2)  # casts after folding
    else:
        x = F.conv2d(x, w, padding=kw // 2)
    dcoefs = None
    if demodulate:
        # sum_{i,k} (w_oik s_ni)^2 = sum_i s_ni^2 sum_k w_oik^2: no per-sample weights needed.
        dcoefs = (styles.square() @ weight.square().sum(dim=[2, 3]).t() + 1e-8).rsqrt()  # [N, O]
    return x, dcoefs


def modulated_conv(
    x: torch.Tensor,
    weight: torch.Tensor,
    styles: torch.Tensor,
    demodulate: bool = True,
    up: bool = False,
    resample_filter: torch.Tensor | None = None,
    noise: torch.Tensor | None = None,
) -> torch.Tensor:
    """Export-friendly modulated conv: scale input, shared-weight conv, demodulate, add noise.

    x [N, I, H, W] (fp32 or fp16), weight [O, I, k, k] fp32, styles [N, I] fp32.
    Returns [N, O, H', W'] in x.dtype. Non-up convs are correlations, up convs true convolutions
    (NVIDIA's flip_weight convention, so their weights load unchanged).
    """
    x, dcoefs = _modconv_core(x, weight, styles, demodulate, up, resample_filter)
    if dcoefs is not None:
        x = x * dcoefs.to(x.dtype)[:, :, None, None]
    if noise is not None:
        x = x + noise.to(x.dtype)
    return x


# ----------------------------------------------------------------------------- layers


class FullyConnectedLayer(torch.nn.Module):
    """Equalised-learning-rate linear layer (weight [out, in], bias [out])."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        activation: str = "linear",
        lr_multiplier: float = 1.0,
        bias_init: float = 0.0,
    ) -> None:
        super().__init__()
        _check_activation(activation)
        self.activation = activation
        self.weight = torch.nn.Parameter(torch.randn([out_features, in_features]) / lr_multiplier)
        self.bias = (
            torch.nn.Parameter(torch.full([out_features], float(bias_init))) if bias else None
        )
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [N, in] -> [N, out]
        w = self.weight.to(x.dtype) * self.weight_gain
        b = None if self.bias is None else self.bias.to(x.dtype) * self.bias_gain
        x = x.matmul(w.t())
        return bias_act(x, b, act=self.activation, gain=ACTIVATIONS[self.activation])


class MappingNetwork(torch.nn.Module):
    """z (+ label c) -> w, broadcast to num_ws copies, with truncation toward w_avg."""

    def __init__(
        self,
        z_dim: int,
        c_dim: int,
        w_dim: int,
        num_ws: int | None,
        num_layers: int = 8,
        embed_features: int | None = None,
        layer_features: int | None = None,
        activation: str = "lrelu",
        lr_multiplier: float = 0.01,
        w_avg_beta: float | None = 0.995,
    ) -> None:
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.num_ws = z_dim, c_dim, w_dim, num_ws
        self.num_layers = num_layers
        self.w_avg_beta = w_avg_beta
        if embed_features is None:
            embed_features = w_dim
        if c_dim == 0:
            embed_features = 0
        if layer_features is None:
            layer_features = w_dim
        feats = [z_dim + embed_features] + [layer_features] * (num_layers - 1) + [w_dim]
        if c_dim > 0:
            self.embed = FullyConnectedLayer(c_dim, embed_features)
        for idx in range(num_layers):
            layer = FullyConnectedLayer(
                feats[idx], feats[idx + 1], activation=activation, lr_multiplier=lr_multiplier
            )
            setattr(self, f"fc{idx}", layer)
        if num_ws is not None and w_avg_beta is not None:
            self.register_buffer("w_avg", torch.zeros([w_dim]))

    def forward(
        self,
        z: torch.Tensor | None,
        c: torch.Tensor | None = None,
        truncation_psi: float = 1,
        truncation_cutoff: int | None = None,
    ) -> torch.Tensor:  # z [N, z_dim], c [N, c_dim] -> ws [N, num_ws, w_dim] (or [N, w_dim])
        parts = []
        if self.z_dim > 0:
            _check_shape(z, [None, self.z_dim], "z")
            parts.append(normalize_2nd_moment(z.to(torch.float32)))
        if self.c_dim > 0:
            _check_shape(c, [None, self.c_dim], "c")
            parts.append(normalize_2nd_moment(self.embed(c.to(torch.float32))))
        x = parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)
        for idx in range(self.num_layers):
            x = getattr(self, f"fc{idx}")(x)
        if self.num_ws is not None:
            x = x.unsqueeze(1).repeat([1, self.num_ws, 1])
        if truncation_psi != 1:
            if not hasattr(self, "w_avg"):
                raise ValueError("truncation needs w_avg, but this network tracks none")
            if self.num_ws is None or truncation_cutoff is None:
                x = self.w_avg.lerp(x, truncation_psi)
            else:
                head = self.w_avg.lerp(x[:, :truncation_cutoff], truncation_psi)
                x = torch.cat([head, x[:, truncation_cutoff:]], dim=1)
        return x


class SynthesisLayer(torch.nn.Module):
    """Modulated 3x3 conv (optionally 2x up), noise, bias, activation, clamp."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        resolution: int,
        kernel_size: int = 3,
        up: int = 1,
        use_noise: bool = True,
        activation: str = "lrelu",
        resample_filter: Sequence[float] = (1, 3, 3, 1),
        conv_clamp: float | None = None,
    ) -> None:
        super().__init__()
        if up not in (1, 2):
            raise ValueError(f"SynthesisLayer: up must be 1 or 2, got {up}")
        _check_activation(activation)
        self.resolution, self.up, self.use_noise = resolution, up, use_noise
        self.activation, self.conv_clamp = activation, conv_clamp
        self.register_buffer("resample_filter", setup_filter(resample_filter))
        self.act_gain = ACTIVATIONS[activation]
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = torch.nn.Parameter(
            torch.randn([out_channels, in_channels, kernel_size, kernel_size])
        )
        if use_noise:
            self.register_buffer("noise_const", torch.randn([resolution, resolution]))
            self.noise_strength = torch.nn.Parameter(torch.zeros([]))
        self.bias = torch.nn.Parameter(torch.zeros([out_channels]))

    def forward(
        self, x: torch.Tensor, w: torch.Tensor, noise: torch.Tensor | None = None, gain: float = 1
    ) -> torch.Tensor:  # x [N, I, R/up, R/up], w [N, w_dim] -> [N, O, R, R]
        styles = self.affine(w)
        x, dcoefs = _modconv_core(x, self.weight, styles, True, self.up == 2, self.resample_filter)
        # Fused epilogue, fewer passes than bias_act: gain > 0 commutes with leaky ReLU,
        # so lrelu(x*d + noise + b) * g = lrelu(x*(d*g) + b*g + noise*g).
        g = self.act_gain * gain
        b = (self.bias * g).to(x.dtype)[None, :, None, None]
        x = torch.addcmul(b, x, (dcoefs * g).to(x.dtype)[:, :, None, None])
        if noise is not None:
            x = x + (noise * g).to(x.dtype)  # broadcast operands last: x's memory layout is kept
        if self.activation == "lrelu":
            x = F.leaky_relu(x, 0.2)
        elif self.activation == "relu":
            x = F.relu(x)
        if self.conv_clamp is not None:
            x = x.clamp(-self.conv_clamp * gain, self.conv_clamp * gain)
        return x

    def make_noise(
        self,
        batch: int,
        mode: str,
        user: torch.Tensor | None,
        multiplier: float | torch.Tensor,
        generator: torch.Generator | None,
    ) -> torch.Tensor | None:
        """The noise this layer adds ([R, R] or [N, 1, R, R]), already scaled, or None."""
        if not self.use_noise or mode == "none":
            return None
        if user is not None:
            base = user
        elif mode == "const":
            base = self.noise_const
        else:
            r = self.resolution
            dev = self.noise_const.device
            base = torch.randn([batch, 1, r, r], device=dev, generator=generator)
        return base * (self.noise_strength * multiplier)


class ToRGBLayer(torch.nn.Module):
    """Modulated 1x1 conv to image channels, no demodulation."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        kernel_size: int = 1,
        conv_clamp: float | None = None,
    ) -> None:
        super().__init__()
        self.conv_clamp = conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = torch.nn.Parameter(
            torch.randn([out_channels, in_channels, kernel_size, kernel_size])
        )
        self.bias = torch.nn.Parameter(torch.zeros([out_channels]))
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size**2)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        styles = self.affine(w) * self.weight_gain
        x = modulated_conv(x, self.weight, styles, demodulate=False)
        return bias_act(x, self.bias, clamp=self.conv_clamp)


class Conv2dLayer(torch.nn.Module):
    """Plain conv used as the resnet skip path (1x1, 2x up, no bias in the generator)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        bias: bool = True,
        activation: str = "linear",
        up: int = 1,
        resample_filter: Sequence[float] = (1, 3, 3, 1),
        conv_clamp: float | None = None,
    ) -> None:
        super().__init__()
        _check_activation(activation)
        self.activation, self.up, self.conv_clamp = activation, up, conv_clamp
        self.register_buffer("resample_filter", setup_filter(resample_filter))
        self.padding = kernel_size // 2
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size**2)
        self.act_gain = ACTIVATIONS[activation]
        self.weight = torch.nn.Parameter(
            torch.randn([out_channels, in_channels, kernel_size, kernel_size])
        )
        self.bias = torch.nn.Parameter(torch.zeros([out_channels])) if bias else None

    def forward(self, x: torch.Tensor, gain: float = 1) -> torch.Tensor:
        w = self.weight * self.weight_gain
        if self.up == 2:
            x = conv2d_up2(x, w, self.resample_filter, self.padding)
        else:
            x = F.conv2d(x, w.to(x.dtype), padding=self.padding)
        clamp = None if self.conv_clamp is None else self.conv_clamp * gain
        return bias_act(x, self.bias, act=self.activation, gain=self.act_gain * gain, clamp=clamp)


class SynthesisBlock(torch.nn.Module):
    """One resolution: (const | up-conv0) -> conv1 -> toRGB, fp16 when use_fp16."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        resolution: int,
        img_channels: int,
        is_last: bool,
        architecture: str = "skip",
        resample_filter: Sequence[float] = (1, 3, 3, 1),
        conv_clamp: float | None = None,
        use_fp16: bool = False,
        **layer_kwargs,
    ) -> None:
        super().__init__()
        self.in_channels, self.w_dim, self.resolution = in_channels, w_dim, resolution
        self.img_channels, self.is_last, self.architecture = img_channels, is_last, architecture
        self.use_fp16 = use_fp16
        self.channels_last = False  # memory layout only; see SynthesisNetwork.set_channels_last
        self.register_buffer("resample_filter", setup_filter(resample_filter))
        self.num_conv = 0
        self.num_torgb = 0
        if in_channels == 0:
            self.const = torch.nn.Parameter(torch.randn([out_channels, resolution, resolution]))
        else:
            self.conv0 = SynthesisLayer(
                in_channels, out_channels, w_dim=w_dim, resolution=resolution, up=2,
                resample_filter=resample_filter, conv_clamp=conv_clamp, **layer_kwargs,
            )  # fmt: skip
            self.num_conv += 1
        self.conv1 = SynthesisLayer(
            out_channels, out_channels, w_dim=w_dim, resolution=resolution,
            resample_filter=resample_filter, conv_clamp=conv_clamp, **layer_kwargs,
        )  # fmt: skip
        self.num_conv += 1
        if is_last or architecture == "skip":
            self.torgb = ToRGBLayer(out_channels, img_channels, w_dim=w_dim, conv_clamp=conv_clamp)
            self.num_torgb += 1
        if in_channels != 0 and architecture == "resnet":
            self.skip = Conv2dLayer(
                in_channels, out_channels, kernel_size=1, bias=False, up=2,
                resample_filter=resample_filter,
            )  # fmt: skip

    def conv_layers(self) -> list[SynthesisLayer]:
        return [self.conv1] if self.in_channels == 0 else [self.conv0, self.conv1]

    def forward(
        self,
        x: torch.Tensor | None,
        img: torch.Tensor | None,
        ws: Sequence[torch.Tensor],
        noises: Sequence[torch.Tensor | None],
        force_fp32: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        # ws: num_conv + num_torgb tensors [N, w_dim]; noises: one per conv layer.
        dtype = torch.float16 if self.use_fp16 and not force_fp32 else torch.float32
        if self.in_channels == 0:
            n = ws[0].shape[0]
            if x is None:  # a given x is the const already transformed (a network bend)
                x = self.const.unsqueeze(0).expand(n, -1, -1, -1)  # [N, C, 4, 4]
            x = x.to(dtype)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            x = self.conv1(x, ws[0], noises[0])
        else:
            x = x.to(dtype)
            if self.architecture == "resnet":
                y = self.skip(x, gain=math.sqrt(0.5))
                x = self.conv0(x, ws[0], noises[0])
                x = y + self.conv1(x, ws[1], noises[1], gain=math.sqrt(0.5))
            else:
                x = self.conv0(x, ws[0], noises[0])
                x = self.conv1(x, ws[1], noises[1])
        if img is not None:
            img = upsample2d(img, self.resample_filter)
        if self.num_torgb:
            y = self.torgb(x, ws[self.num_conv]).to(torch.float32)  # skip sum stays fp32
            img = y if img is None else img + y
        return x, img


class SynthesisNetwork(torch.nn.Module):
    """ws [N, num_ws, w_dim] -> image [N, img_channels, R, R] (float32, roughly [-1, 1])."""

    def __init__(
        self,
        w_dim: int,
        img_resolution: int,
        img_channels: int,
        channel_base: int = 32768,
        channel_max: int = 512,
        num_fp16_res: int = 0,
        **block_kwargs,
    ) -> None:
        super().__init__()
        if img_resolution < 4 or img_resolution & (img_resolution - 1):
            raise ValueError(f"img_resolution must be a power of two >= 4, got {img_resolution}")
        arch = block_kwargs.get("architecture", "skip")
        if arch not in ARCHITECTURES:
            raise ValueError(f"architecture must be one of {ARCHITECTURES}, got {arch!r}")
        self.w_dim, self.img_resolution, self.img_channels = w_dim, img_resolution, img_channels
        log2 = int(math.log2(img_resolution))
        self.block_resolutions = [2**i for i in range(2, log2 + 1)]
        channels = {r: min(channel_base // r, channel_max) for r in self.block_resolutions}
        if min(channels.values()) < 1:
            raise ValueError(
                f"channel_base={channel_base} gives no channels at {img_resolution}px; "
                f"it must be >= img_resolution"
            )
        fp16_resolution = max(2 ** (log2 + 1 - num_fp16_res), 8)
        self.num_ws = 0
        self.noise_layer_names: list[str] = []  # "b{res}.conv{0,1}", in forward order
        self.noise_shapes: list[tuple[int, int]] = []
        for res in self.block_resolutions:
            block = SynthesisBlock(
                channels[res // 2] if res > 4 else 0, channels[res], w_dim=w_dim, resolution=res,
                img_channels=img_channels, is_last=res == img_resolution,
                use_fp16=res >= fp16_resolution, **block_kwargs,
            )  # fmt: skip
            self.num_ws += block.num_conv + (block.num_torgb if res == img_resolution else 0)
            setattr(self, f"b{res}", block)
            for name, layer in zip(
                ("conv0", "conv1")[-block.num_conv :], block.conv_layers(), strict=True
            ):
                if layer.use_noise:
                    self.noise_layer_names.append(f"b{res}.{name}")
                    self.noise_shapes.append((res, res))
        self.num_noise_layers = len(self.noise_layer_names)

    def set_channels_last(self, enabled: bool = True) -> SynthesisNetwork:
        """Run activations in NHWC layout (same values; much faster depthwise convs on CPU)."""
        for block in self.blocks():
            block.channels_last = enabled
        return self

    def blocks(self) -> list[SynthesisBlock]:
        return [getattr(self, f"b{r}") for r in self.block_resolutions]

    def forward(
        self,
        ws: torch.Tensor,
        noise_mode: str = "const",
        force_fp32: bool = False,
        noise_strength: float | torch.Tensor = 1.0,
        noise: dict[str, torch.Tensor] | None = None,
        noise_generator: torch.Generator | None = None,
        bends: Sequence | None = None,
        noise_masks: Sequence[torch.Tensor | None] | None = None,
        bend_thetas: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """noise_strength multiplies each layer's learned strength (scalar or [num_noise_layers]);
        noise maps user maps ([R, R] or [N, 1, R, R]) by layer name, used in place of the
        const/random source unless noise_mode is 'none'. bends: network-bending transforms
        (vj.show.frame.Bend: block, translate, rotate, zoom) of the feature maps entering a
        block; noise_masks: per noise layer a spatial multiplier [R, R] or None. Both empty or
        None cost nothing (the plain forward). bend_thetas [k, 2, 3]: the static-graph
        form of bends (an exported graph has no Python branches): the input of each of the
        first k blocks is resampled by its `bend_theta` matrix, the identity where a block is
        not bent (k ≤ n_blocks)."""
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")
        _check_shape(ws, [None, self.num_ws, self.w_dim], "ws")
        if noise:
            unknown = sorted(set(noise) - set(self.noise_layer_names))
            if unknown:
                raise ValueError(
                    f"unknown noise layer(s) {unknown}; known: {self.noise_layer_names}"
                )
        if isinstance(noise_strength, torch.Tensor) and noise_strength.ndim > 0:
            _check_shape(noise_strength, [self.num_noise_layers], "noise_strength")
        bend_at = _bends_by_block(bends, len(self.block_resolutions)) if bends else None
        if bend_thetas is not None:
            if bend_at is not None:
                raise ValueError("pass bends or bend_thetas, not both")
            _check_shape(bend_thetas, [None, 2, 3], "bend_thetas")
            if bend_thetas.shape[0] > len(self.block_resolutions):
                raise ValueError(
                    f"bend_thetas: {bend_thetas.shape[0]} matrices for "
                    f"{len(self.block_resolutions)} blocks"
                )
        if noise_masks is not None:
            _check_masks(noise_masks, self.noise_shapes)
        ws = ws.to(torch.float32)
        n = ws.shape[0]
        ws_list = ws.unbind(1)
        x = img = None
        w_idx = 0
        k = 0  # noise layer index
        for b_idx, block in enumerate(self.blocks()):
            if bend_at is not None and b_idx in bend_at:
                if x is None:  # block 0: bend the const input
                    x = block.const.unsqueeze(0).expand(n, -1, -1, -1)
                x = bend_features(x, bend_at[b_idx])
            elif bend_thetas is not None and b_idx < bend_thetas.shape[0]:
                if x is None:
                    x = block.const.unsqueeze(0).expand(n, -1, -1, -1)
                x = warp_features(x, bend_thetas[b_idx])
            cur = ws_list[w_idx : w_idx + block.num_conv + block.num_torgb]
            w_idx += block.num_conv
            noises = []
            for name, layer in zip(
                ("conv0", "conv1")[-block.num_conv :], block.conv_layers(), strict=True
            ):
                if not layer.use_noise:
                    noises.append(None)
                    continue
                mult = noise_strength
                if isinstance(mult, torch.Tensor) and mult.ndim > 0:
                    mult = mult[k]
                user = None if noise is None else noise.get(f"b{block.resolution}.{name}")
                nz = layer.make_noise(n, noise_mode, user, mult, noise_generator)
                if nz is not None and noise_masks is not None and noise_masks[k] is not None:
                    nz = nz * noise_masks[k].to(nz.device, torch.float32)  # [R, R] spatial gain
                noises.append(nz)
                k += 1
            x, img = block(x, img, cur, noises, force_fp32=force_fp32)
        return img


def bend_theta(translate, rotate: float, zoom: float) -> torch.Tensor:
    """[1, 2, 3] affine_grid matrix: output pixel p samples the input at R(θ)(p - 2t) / zoom in
    normalised coordinates (so content moves by t × size, turns counter-clockwise, zooms in)."""
    c, s = math.cos(rotate), math.sin(rotate)
    tx, ty = 2.0 * float(translate[0]), 2.0 * float(translate[1])
    z = max(float(zoom), 1e-3)
    return torch.tensor(
        [[[c / z, -s / z, -(c * tx - s * ty) / z], [s / z, c / z, -(s * tx + c * ty) / z]]],
        dtype=torch.float32,
    )


def bend_features(x: torch.Tensor, bend) -> torch.Tensor:
    """Translate/rotate/zoom feature maps x [N, C, H, W] by one Bend (bilinear, reflected
    edges): one affine_grid + grid_sample, which export to ONNX (GridSample, opset >= 16)."""
    if tuple(bend.translate) == (0.0, 0.0) and bend.rotate == 0.0 and bend.zoom == 1.0:
        return x  # the identity: skip the resampling (it would blur by float rounding only)
    return warp_features(x, bend_theta(bend.translate, bend.rotate, bend.zoom)[0].to(x.device))


def warp_features(x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """x [N, C, H, W] resampled through the affine_grid matrix theta [2, 3] (`bend_theta`)."""
    theta = theta.to(torch.float32).expand(x.shape[0], 2, 3)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)  # [N, H, W, 2]
    y = F.grid_sample(
        x.float(), grid, mode="bilinear", padding_mode="reflection", align_corners=False
    )
    return y.to(x.dtype)


def _bends_by_block(bends: Sequence, n_blocks: int) -> dict:
    out = {}
    for b in bends:
        if not 0 <= int(b.block) < n_blocks:
            raise ValueError(f"bend block {b.block} outside 0..{n_blocks - 1}")
        if int(b.block) in out:
            raise ValueError(f"two bends at block {b.block}; combine them into one")
        out[int(b.block)] = b
    return out


def _check_masks(masks: Sequence, shapes: list[tuple[int, int]]) -> None:
    if len(masks) != len(shapes):
        raise ValueError(f"noise_masks: expected {len(shapes)} entries, got {len(masks)}")
    for i, (m, shape) in enumerate(zip(masks, shapes, strict=True)):
        if m is not None and tuple(m.shape) != tuple(shape):
            raise ValueError(f"noise_masks[{i}]: expected shape {list(shape)}, got {list(m.shape)}")


class Generator(torch.nn.Module):
    """Mapping + synthesis, constructed from the same kwargs as NVIDIA's G_ema."""

    def __init__(
        self,
        z_dim: int = 512,
        c_dim: int = 0,
        w_dim: int = 512,
        img_resolution: int = 1024,
        img_channels: int = 3,
        mapping_kwargs: dict | None = None,
        **synthesis_kwargs,
    ) -> None:
        super().__init__()
        mk = dict(MAPPING_DEFAULTS)
        for key, value in (mapping_kwargs or {}).items():
            if key not in MAPPING_DEFAULTS:
                raise TypeError(
                    f"unknown mapping kwarg {key!r}; allowed: {sorted(MAPPING_DEFAULTS)}"
                )
            mk[key] = value
        sk = dict(SYNTHESIS_DEFAULTS)
        for key, value in synthesis_kwargs.items():
            if key in IGNORED_SYNTHESIS_KWARGS:
                continue
            if key not in SYNTHESIS_DEFAULTS:
                allowed = sorted(SYNTHESIS_DEFAULTS) + list(IGNORED_SYNTHESIS_KWARGS)
                raise TypeError(f"unknown synthesis kwarg {key!r}; allowed: {allowed}")
            sk[key] = value
        sk["resample_filter"] = [float(v) for v in sk["resample_filter"]]
        self.z_dim, self.c_dim, self.w_dim = z_dim, c_dim, w_dim
        self.img_resolution, self.img_channels = img_resolution, img_channels
        self._config = dict(
            z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, img_resolution=img_resolution,
            img_channels=img_channels, mapping_kwargs=mk, **sk,
        )  # fmt: skip
        self.synthesis = SynthesisNetwork(
            w_dim=w_dim, img_resolution=img_resolution, img_channels=img_channels, **sk
        )
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(
            z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, num_ws=self.num_ws, **mk
        )

    def forward(
        self,
        z: torch.Tensor,
        c: torch.Tensor | None = None,
        truncation_psi: float = 1,
        truncation_cutoff: int | None = None,
        **synthesis_kwargs,
    ) -> torch.Tensor:  # z [N, z_dim] -> img [N, img_channels, R, R]
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
        return self.synthesis(ws, **synthesis_kwargs)

    def config(self) -> dict:
        """Constructor kwargs (all values explicit), JSON-serialisable."""
        cfg = dict(self._config)
        cfg["mapping_kwargs"] = dict(cfg["mapping_kwargs"])
        cfg["resample_filter"] = list(cfg["resample_filter"])
        return cfg


# ----------------------------------------------------------------------------- default model


def default_config() -> dict:
    """The embedded default: small enough for >= 15 fps on a 2-core CPU, fp32 on CPU."""
    return dict(
        z_dim=256,
        c_dim=0,
        w_dim=256,
        img_resolution=256,
        img_channels=3,
        mapping_kwargs=dict(MAPPING_DEFAULTS, num_layers=4),
        channel_base=2048,
        channel_max=128,
        num_fp16_res=0,
        conv_clamp=256,
        architecture="skip",
        resample_filter=[1.0, 3.0, 3.0, 1.0],
        use_noise=True,
        activation="lrelu",
    )


def make_default_generator(
    seed: int = 0, config: dict | None = None, device: str | torch.device = "cpu"
) -> Generator:
    """Seeded random initialisation of the default config (or `config`); eval(), no grad.

    Random init leaves every noise strength at zero and w_avg at zero; here noise strengths get a
    small value (so noise modulation is visible), w_avg is the mean w of 4096 seeded z, and the
    toRGB weights are scaled so images have std ~0.5 instead of clipping (the image is linear in
    them). Weights are drawn on the CPU (device-independent); the statistics run on `device`.
    """
    gen = torch.Generator().manual_seed(seed)
    cfg = config or default_config()
    with torch.random.fork_rng(devices=[]):  # leave the global RNG stream as it was
        G = Generator(**cfg)
    G.eval().requires_grad_(False)
    with torch.no_grad():
        # Redraw the random tensors (as NVIDIA initialises them) from our own generator, so
        # the result never depends on the global RNG or on other threads using it.
        for module in G.modules():
            w = getattr(module, "weight", None)
            if isinstance(module, FullyConnectedLayer):
                w.copy_(torch.randn(w.shape, generator=gen) / module.bias_gain)
            elif w is not None:
                w.copy_(torch.randn(w.shape, generator=gen))
            for name in ("const", "noise_const"):
                t = getattr(module, name, None)
                if t is not None:
                    t.copy_(torch.randn(t.shape, generator=gen))
            if isinstance(getattr(module, "noise_strength", None), torch.Tensor):
                module.noise_strength.fill_(0.1)
    G.to(device)
    with torch.no_grad():
        if hasattr(G.mapping, "w_avg") and G.z_dim > 0:
            z = torch.randn([4096, G.z_dim], generator=gen).to(device)
            c = torch.zeros([4096, G.c_dim], device=device) if G.c_dim else None
            G.mapping.w_avg.copy_(G.mapping(z, c)[:, 0].mean(0))
        z = torch.randn([2, G.z_dim], generator=gen).to(device)
        c = torch.zeros([2, G.c_dim], device=device) if G.c_dim else None
        std = G(z, c, noise_mode="const", force_fp32=True).std().item()
        for block in G.synthesis.blocks():
            if block.num_torgb:
                block.torgb.weight.mul_(0.5 / max(std, 1e-8))
    return G


# ----------------------------------------------------------------------------- checks


def _check_activation(act: str) -> None:
    if act not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {act!r}")


def _check_shape(t: torch.Tensor | None, shape: list[int | None], what: str) -> None:
    if t is None:
        raise ValueError(f"{what}: a tensor is required")
    if t.ndim != len(shape) or any(
        s is not None and s != d for s, d in zip(shape, t.shape, strict=True)
    ):
        want = "[" + ", ".join("N" if s is None else str(s) for s in shape) + "]"
        raise ValueError(f"{what}: expected shape {want}, got {list(t.shape)}")
