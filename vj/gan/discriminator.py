"""StyleGAN2 discriminator (resnet architecture) with NVIDIA's parameter names.

Names and shapes match stylegan2-ada-pytorch's `D` state dict (b{res}.fromrgb/conv0/conv1/skip,
b4.mbstd/conv/fc/out), so the D inside an NVIDIA training pickle loads for fine-tuning.
Unconditional only (c_dim 0); fp16 is left to autocast.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from vj.gan.stylegan2 import ACTIVATIONS, FullyConnectedLayer, bias_act, filter_2d, setup_filter


def _blur(x: torch.Tensor, f: torch.Tensor, pad: int, down: int = 1) -> torch.Tensor:
    """Depthwise FIR (true convolution, gain 1) with symmetric padding, then keep every down-th."""
    c = x.shape[1]
    k = filter_2d(f).flip([0, 1]).to(x.dtype)[None, None].repeat(c, 1, 1, 1)  # [C, 1, k, k]
    return F.conv2d(F.pad(x, [pad] * 4), k, groups=c, stride=down)


class DConv2dLayer(torch.nn.Module):
    """Equalised-lr conv, optionally 2x down (FIR then stride 2, NVIDIA's padding), bias, act."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        bias: bool = True,
        activation: str = "linear",
        down: int = 1,
        resample_filter: Sequence[float] = (1, 3, 3, 1),
        conv_clamp: float | None = None,
    ) -> None:
        super().__init__()
        self.activation, self.down, self.conv_clamp = activation, down, conv_clamp
        self.kernel_size = kernel_size
        self.register_buffer("resample_filter", setup_filter(resample_filter))
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size**2)
        self.act_gain = ACTIVATIONS[activation]
        self.weight = torch.nn.Parameter(
            torch.randn([out_channels, in_channels, kernel_size, kernel_size])
        )
        self.bias = torch.nn.Parameter(torch.zeros([out_channels])) if bias else None

    def forward(self, x: torch.Tensor, gain: float = 1) -> torch.Tensor:
        w = (self.weight * self.weight_gain).to(x.dtype)
        if self.down == 2:
            fw = self.resample_filter.shape[-1]
            if self.kernel_size == 1:  # FIR with down-sampling, then the 1x1 conv
                x = F.conv2d(_blur(x, self.resample_filter, (fw - 1) // 2, down=2), w)
            else:  # FIR at full rate, then the conv at stride 2 (padding folded into the FIR)
                pad = self.kernel_size // 2 + (fw - 1) // 2
                x = F.conv2d(_blur(x, self.resample_filter, pad), w, stride=2)
        else:
            x = F.conv2d(x, w, padding=self.kernel_size // 2)
        clamp = None if self.conv_clamp is None else self.conv_clamp * gain
        return bias_act(x, self.bias, act=self.activation, gain=self.act_gain * gain, clamp=clamp)


class DiscriminatorBlock(torch.nn.Module):
    """One resolution: (fromrgb at the top) -> conv0 -> conv1 (down) + skip (down)."""

    def __init__(
        self,
        in_channels: int,
        tmp_channels: int,
        out_channels: int,
        img_channels: int,
        conv_clamp: float | None,
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.register_buffer("resample_filter", setup_filter([1, 3, 3, 1]))
        if in_channels == 0:
            self.fromrgb = DConv2dLayer(img_channels, tmp_channels, 1, activation="lrelu",
                                        conv_clamp=conv_clamp)  # fmt: skip
        self.conv0 = DConv2dLayer(tmp_channels, tmp_channels, 3, activation="lrelu",
                                  conv_clamp=conv_clamp)  # fmt: skip
        self.conv1 = DConv2dLayer(tmp_channels, out_channels, 3, activation="lrelu", down=2,
                                  conv_clamp=conv_clamp)  # fmt: skip
        self.skip = DConv2dLayer(tmp_channels, out_channels, 1, bias=False, down=2)

    def forward(self, x: torch.Tensor | None, img: torch.Tensor) -> torch.Tensor:
        if self.in_channels == 0:
            x = self.fromrgb(img)
        y = self.skip(x, gain=math.sqrt(0.5))
        x = self.conv1(self.conv0(x), gain=math.sqrt(0.5))
        return y + x


class MinibatchStdLayer(torch.nn.Module):
    """Append the std of features across groups of samples as extra channels."""

    def __init__(self, group_size: int = 4, num_channels: int = 1) -> None:
        super().__init__()
        self.group_size, self.num_channels = group_size, num_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [N, C, H, W] -> [N, C + F, H, W]
        n, c, h, w = x.shape
        g = min(self.group_size, n) if self.group_size else n
        if n % g:
            g = math.gcd(n, g)
        f = self.num_channels
        y = x.reshape(g, -1, f, c // f, h, w)
        y = (y - y.mean(dim=0)).square().mean(dim=0)
        y = (y + 1e-8).sqrt().mean(dim=[2, 3, 4]).reshape(-1, f, 1, 1)  # [N/G, F, 1, 1]
        y = y.repeat(g, 1, h, w)
        return torch.cat([x, y], dim=1)


class DiscriminatorEpilogue(torch.nn.Module):
    def __init__(
        self,
        in_channels: int,
        mbstd_group_size: int = 4,
        mbstd_num_channels: int = 1,
        conv_clamp: float | None = None,
    ) -> None:
        super().__init__()
        self.mbstd = MinibatchStdLayer(mbstd_group_size, mbstd_num_channels)
        self.conv = DConv2dLayer(in_channels + mbstd_num_channels, in_channels, 3,
                                 activation="lrelu", conv_clamp=conv_clamp)  # fmt: skip
        self.fc = FullyConnectedLayer(in_channels * 16, in_channels, activation="lrelu")
        self.out = FullyConnectedLayer(in_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [N, C, 4, 4] -> [N, 1]
        x = self.conv(self.mbstd(x))
        return self.out(self.fc(x.flatten(1)))


class Discriminator(torch.nn.Module):
    """img [N, C, R, R] in [-1, 1] -> logits [N, 1]; `features` gives each block's output."""

    def __init__(
        self,
        img_resolution: int,
        img_channels: int = 3,
        channel_base: int = 32768,
        channel_max: int = 512,
        conv_clamp: float | None = 256,
        mbstd_group_size: int = 4,
        mbstd_num_channels: int = 1,
    ) -> None:
        super().__init__()
        log2 = int(math.log2(img_resolution))
        if img_resolution < 8 or 2**log2 != img_resolution:
            raise ValueError(f"img_resolution must be a power of two >= 8, got {img_resolution}")
        self.img_resolution, self.img_channels = img_resolution, img_channels
        self._config = dict(
            img_resolution=img_resolution, img_channels=img_channels, channel_base=channel_base,
            channel_max=channel_max, conv_clamp=conv_clamp, mbstd_group_size=mbstd_group_size,
            mbstd_num_channels=mbstd_num_channels,
        )  # fmt: skip
        self.block_resolutions = [2**i for i in range(log2, 2, -1)]
        ch = {r: min(channel_base // r, channel_max) for r in self.block_resolutions + [4]}
        for res in self.block_resolutions:
            in_ch = ch[res] if res < img_resolution else 0
            block = DiscriminatorBlock(in_ch, ch[res], ch[res // 2], img_channels, conv_clamp)
            setattr(self, f"b{res}", block)
        self.b4 = DiscriminatorEpilogue(ch[4], mbstd_group_size, mbstd_num_channels, conv_clamp)

    def config(self) -> dict:
        return dict(self._config)

    def features(self, img: torch.Tensor) -> list[torch.Tensor]:
        """Each block's output, finest first (the projector's perceptual features)."""
        x, out = None, []
        for res in self.block_resolutions:
            x = getattr(self, f"b{res}")(x, img)
            out.append(x)
        return out

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        return self.b4(self.features(img)[-1])


def nvidia_d_config(kwargs: dict) -> dict:
    """An NVIDIA D's constructor kwargs -> our Discriminator's (refuses what we cannot build)."""
    if kwargs.get("c_dim", 0):
        raise ValueError("conditional discriminators (c_dim > 0) are not supported")
    arch = kwargs.get("architecture", "resnet")
    if arch != "resnet":
        raise ValueError(f"discriminator architecture {arch!r} is not supported (only resnet)")
    epi = dict(kwargs.get("epilogue_kwargs") or {})
    return dict(
        img_resolution=int(kwargs["img_resolution"]),
        img_channels=int(kwargs.get("img_channels", 3)),
        channel_base=int(kwargs.get("channel_base", 32768)),
        channel_max=int(kwargs.get("channel_max", 512)),
        conv_clamp=kwargs.get("conv_clamp"),
        mbstd_group_size=int(epi.get("mbstd_group_size", 4) or 0),
        mbstd_num_channels=int(epi.get("mbstd_num_channels", 1)),
    )
