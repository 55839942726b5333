"""`vj project`: invert pictures into a generator's W or W+ space by optimisation.

Loss: multi-scale L1 on pixels + (1 - MS-SSIM), plus the distance between the checkpoint's own
discriminator features when the checkpoint has a D (an NVIDIA training pickle or a `vj train`
state.pt). Several pictures share one latent plus small per-image offsets (L2-penalised), so
photos of one subject pull the shared part toward what they have in common. Optionally the
per-layer noise maps are optimised too, under NVIDIA's autocorrelation regulariser.
"""

from __future__ import annotations

import io
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from vj.fsutil import atomic_write_bytes
from vj.gan.stylegan2 import Generator

MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


class ProjectError(ValueError):
    """Bad projection input; the message names the file and the problem."""


@dataclass(frozen=True)
class Projection:
    ws: torch.Tensor  # [N, num_ws, w_dim]
    noise: dict[str, torch.Tensor] | None  # layer name -> [R, R] (shared), when optimised
    loss: float
    seconds: float


# ----------------------------------------------------------------------------- losses


def _gauss_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def _ssim_parts(x: torch.Tensor, y: torch.Tensor, win: torch.Tensor):
    """Mean SSIM and contrast-structure terms per image of x, y [N, C, H, W] in [0, 1]."""
    c = x.shape[1]
    k = win.to(x)
    kx = k[None, None, None, :].repeat(c, 1, 1, 1)  # [C, 1, 1, k]
    ky = k[None, None, :, None].repeat(c, 1, 1, 1)

    def blur(t):
        return F.conv2d(F.conv2d(t, kx, groups=c), ky, groups=c)

    c1, c2 = 0.01**2, 0.03**2
    mx, my = blur(x), blur(y)
    sxx = blur(x * x) - mx * mx
    syy = blur(y * y) - my * my
    sxy = blur(x * y) - mx * my
    cs = (2 * sxy + c2) / (sxx + syy + c2)
    ssim = (2 * mx * my + c1) / (mx * mx + my * my + c1) * cs
    return ssim.mean(dim=[1, 2, 3]), cs.mean(dim=[1, 2, 3])


def ms_ssim(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """MS-SSIM per image ([N]) of x, y in [-1, 1]; as many scales (<= 5) as the size allows."""
    x, y = (x + 1) / 2, (y + 1) / 2
    win = _gauss_window()
    levels = max(1, min(len(MS_SSIM_WEIGHTS), int(math.log2(min(x.shape[-2:]) / 11)) + 1))
    w = torch.tensor(MS_SSIM_WEIGHTS[:levels], device=x.device)
    w = w / w.sum()
    vals = []
    for i in range(levels):
        ssim, cs = _ssim_parts(x, y, win)
        vals.append(ssim if i == levels - 1 else cs)
        if i < levels - 1:
            x, y = F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)
    v = torch.stack(vals, dim=1).clamp_min(1e-6)  # [N, levels]
    return (v ** w[None]).prod(dim=1)


def pixel_loss(x: torch.Tensor, y: torch.Tensor, scales: int = 4) -> torch.Tensor:
    """Multi-scale L1 per image ([N])."""
    out = x.new_zeros(x.shape[0])
    for s in range(scales):
        out = out + (x - y).abs().mean(dim=[1, 2, 3])
        if s + 1 < scales and x.shape[-1] >= 16:
            x, y = F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)
    return out / scales


def noise_regularisation(maps: list[torch.Tensor]) -> torch.Tensor:
    """NVIDIA's projector regulariser: squared autocorrelation at shifts of 1, all octaves."""
    reg = maps[0].new_zeros([])
    for n in maps:
        t = n[None, None]
        while True:
            reg = reg + (t * t.roll(1, dims=3)).mean() ** 2 + (t * t.roll(1, dims=2)).mean() ** 2
            if t.shape[2] <= 8:
                break
            t = F.avg_pool2d(t, 2)
    return reg


# ----------------------------------------------------------------------------- projection


def w_stats(G: Generator, n: int = 4096, seed: int = 0) -> tuple[torch.Tensor, float]:
    """Mean w [w_dim] and the rms distance of w's from it (NVIDIA's w_std)."""
    dev = next(G.parameters()).device
    z = torch.randn([n, G.z_dim], generator=torch.Generator().manual_seed(seed)).to(dev)
    with torch.no_grad():
        w = G.mapping(z)[:, 0]
    mean = w.mean(0)
    return mean, float(((w - mean).square().sum(1).mean()) ** 0.5)


def project(
    G: Generator,
    targets: torch.Tensor,
    space: str = "w+",
    steps: int = 300,
    lr: float = 0.05,
    D=None,
    optimize_noise: bool = False,
    seed: int = 0,
    progress: bool = False,
) -> Projection:
    """targets [N, 3, R, R] in [-1, 1] (R = G's resolution) -> Projection."""
    from vj.progress import progress_bar

    if space not in ("w", "w+"):
        raise ProjectError(f"--space must be w or w+, got {space!r}")
    t0 = time.perf_counter()
    G = G.eval().requires_grad_(False)
    dev = next(G.parameters()).device
    targets = targets.to(dev)
    n = targets.shape[0]
    w_avg, w_std = w_stats(G, seed=seed)
    k = 1 if space == "w" else G.num_ws
    base = w_avg.reshape(1, 1, -1).repeat(1, k, 1).clone().requires_grad_(True)
    offsets = torch.zeros([n, k, G.w_dim], device=dev, requires_grad=n > 1)
    params = [base] + ([offsets] if n > 1 else [])
    noise = {}
    if optimize_noise:
        for block in G.synthesis.blocks():
            for name, layer in zip(("conv0", "conv1")[-block.num_conv :], block.conv_layers(),
                                   strict=True):  # fmt: skip
                if layer.use_noise:
                    key = f"b{block.resolution}.{name}"
                    noise[key] = layer.noise_const.detach().clone().requires_grad_(True)
        params += list(noise.values())
    opt = torch.optim.Adam(params, lr=lr, betas=(0.9, 0.999))
    d_target = None
    if D is not None:
        with torch.no_grad():
            d_target = [f / f.norm(dim=[1, 2, 3], keepdim=True) for f in D.features(targets)]
    g = torch.Generator().manual_seed(seed)
    last = float("nan")
    for i in progress_bar(range(steps), enabled=progress, unit="step", desc="project"):
        t = i / max(steps - 1, 1)
        # NVIDIA's schedule: cosine ramp-down over the last 25 %, linear ramp-up over 5 %.
        ramp = min(1.0, (1 - t) / 0.25)
        ramp = (0.5 - 0.5 * math.cos(ramp * math.pi)) * min(1.0, t / 0.05)
        for group in opt.param_groups:
            group["lr"] = lr * max(ramp, 0.02)
        w_noise = w_std * 0.05 * max(0.0, 1 - t / 0.75) ** 2
        ws = base + offsets
        ws = ws + torch.randn(ws.shape, generator=g).to(dev) * w_noise
        if k == 1:
            ws = ws.repeat(1, G.num_ws, 1)
        img = G.synthesis(ws, noise_mode="const", noise=noise or None, force_fp32=True)
        per = pixel_loss(img, targets) + (1 - ms_ssim(img, targets))
        loss = per.mean()
        if d_target is not None:
            feats = D.features(img)
            for f, ft in zip(feats, d_target, strict=True):
                loss = loss + (f / f.norm(dim=[1, 2, 3], keepdim=True) - ft).square().sum() / n
        if n > 1:
            loss = loss + 0.1 * offsets.square().sum(-1).mean() / max(w_std**2, 1e-8)
        if noise:
            loss = loss + 1e3 * noise_regularisation(list(noise.values()))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if noise:  # keep the maps unit-variance, as NVIDIA does
            with torch.no_grad():
                for m in noise.values():
                    m.sub_(m.mean()).div_(m.square().mean().sqrt() + 1e-8)
        last = per.mean().item()
    with torch.no_grad():
        ws = (base + offsets).detach()
        if k == 1:
            ws = ws.repeat(1, G.num_ws, 1)
        ws = ws.expand(n, -1, -1).contiguous() if ws.shape[0] == 1 else ws
    out_noise = {key: m.detach().cpu() for key, m in noise.items()} or None
    return Projection(ws.cpu(), out_noise, last, time.perf_counter() - t0)


def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """PSNR in dB per image of a, b [N, C, H, W] in [-1, 1] (peak-to-peak 2)."""
    mse = (a.clamp(-1, 1) - b.clamp(-1, 1)).square().mean(dim=[1, 2, 3])
    return 10 * torch.log10(4.0 / mse.clamp_min(1e-12))


# ----------------------------------------------------------------------------- files


def load_targets(paths: list[Path], resolution: int) -> torch.Tensor:
    """Image files -> [N, 3, R, R] in [-1, 1] (centre crop + resize)."""
    from vj.gan.data import read_image, square_resize

    out = []
    for p in paths:
        if not Path(p).is_file():
            raise ProjectError(f"{p}: no such image file")
        out.append(square_resize(read_image(Path(p)), resolution))
    return torch.stack(out).float() / 127.5 - 1


def load_discriminator(spec: str):
    """The D inside an NVIDIA training pickle or a `vj train` state.pt, else None."""
    path = Path(spec)
    if spec == "default" or not path.is_file():
        return None
    with open(path, "rb") as fh:
        head = fh.read(4)
    try:
        if head[:1] == b"\x80":
            from vj.gan.checkpoint import load_generator
            from vj.gan.train import _nvidia_g_d

            G, _ = load_generator(path)
            return _nvidia_g_d(path, G)[1]
        if head[:4] == b"PK\x03\x04":
            import json

            from vj.gan.discriminator import Discriminator
            from vj.gan.train import read_state_file

            data = read_state_file(path)
            D = Discriminator(**json.loads(data["D_config"]))
            D.load_state_dict(data["D"])
            return D.eval().requires_grad_(False)
    except ValueError:  # TrainError / CheckpointError: not a checkpoint with a D
        return None
    return None


def load_for_projection(spec: str):
    """(G, D or None) for a checkpoint spec; a `vj train` state.pt gives its G_ema and D."""
    import json

    from vj.gan.checkpoint import load_checkpoint_or_default

    path = Path(spec)
    if spec != "default" and path.is_file():
        with open(path, "rb") as fh:
            if fh.read(4) == b"PK\x03\x04":
                from vj.gan.train import TrainError, read_state_file

                try:
                    data = read_state_file(path)
                except TrainError:
                    data = None
                if data is not None:
                    G = Generator(**json.loads(data["G_config"]))
                    G.load_state_dict(data["G_ema"])
                    return G.eval().requires_grad_(False), load_discriminator(spec)
    if spec != "default" and not path.exists():
        raise ProjectError(f"--checkpoint {spec}: no such file (or use 'default')")
    G, _ = load_checkpoint_or_default(spec)
    return G, load_discriminator(spec)


def project_files(
    images: list[Path],
    output: Path,
    checkpoint: str = "default",
    space: str = "w+",
    steps: int = 300,
    lr: float = 0.05,
    seed: int = 0,
    progress: bool = True,
    optimize_noise: bool = False,
) -> Projection:
    """Project image files and write ws [N, num_ws, w_dim] float32 to `output` (.npy)."""
    G, D = load_for_projection(checkpoint)
    targets = load_targets(images, G.img_resolution)
    res = project(G, targets, space, steps, lr, D=D, optimize_noise=optimize_noise, seed=seed,
                  progress=progress)  # fmt: skip
    buf = io.BytesIO()
    np.save(buf, res.ws.numpy().astype(np.float32))
    try:
        atomic_write_bytes(output, buf.getvalue())
        if res.noise:
            nbuf = io.BytesIO()
            np.savez(nbuf, **{k: v.numpy() for k, v in res.noise.items()})
            atomic_write_bytes(output.with_suffix(".noise.npz"), nbuf.getvalue())
    except OSError as e:
        raise ProjectError(f"{output}: cannot write: {e.strerror or e}") from None
    return res
