"""`vj train`: StyleGAN2 training (non-saturating logistic loss, lazy R1, optional path-length
regularisation, EMA generator, DiffAugment, bf16 autocast on CUDA) on a folder of images or a video.

Deterministic with a seed on the CPU: every random draw of step s (z, noise, real indices,
augmentation) comes from generators seeded by (seed, s), so a run resumed from its state
continues exactly as an uninterrupted one. State is written atomically to RUN_DIR/state.pt
(read back with weights_only=True); the EMA generator goes to RUN_DIR/network.safetensors.
"""

from __future__ import annotations

import copy
import io
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from vj.fsutil import atomic_write_bytes
from vj.gan.data import Dataset
from vj.gan.discriminator import Discriminator
from vj.gan.stylegan2 import Generator, default_config, make_default_generator


class TrainError(ValueError):
    """Bad training input (resume checkpoint, settings); the CLI turns it into exit 2."""


@dataclass(frozen=True)
class TrainConfig:
    resolution: int = 256
    kimg: float = 100.0
    batch: int = 8
    seed: int = 0
    lr: float = 0.0025
    r1_gamma: float | None = None  # None: NVIDIA's heuristic 0.0002 * R^2 / batch
    r1_interval: int = 16
    pl_weight: float = 0.0  # > 0 enables path-length regularisation
    pl_interval: int = 4
    ema_kimg: float | None = None  # None: batch * 10 / 32
    ema_rampup: float = 0.05
    augment: str = "auto"  # auto (on below 5000 images) | on | off
    snap_kimg: float = 10.0
    channel_base: int | None = None  # None: the embedded default's widths
    channel_max: int | None = None
    amp: bool = True  # bf16 autocast on CUDA GPUs that have it

    def gamma(self) -> float:
        if self.r1_gamma is not None:
            return self.r1_gamma
        return 0.0002 * self.resolution**2 / self.batch


def generator_config(cfg: TrainConfig) -> dict:
    gc = dict(default_config(), img_resolution=cfg.resolution)
    if cfg.channel_base is not None:
        gc["channel_base"] = cfg.channel_base
    if cfg.channel_max is not None:
        gc["channel_max"] = cfg.channel_max
    gc["channel_base"] = max(gc["channel_base"], cfg.resolution * 4)  # >= 4 channels on top
    return gc


# ----------------------------------------------------------------------------- augmentation


def diff_augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """DiffAugment-style colour, translation and cutout, differentiable in x [N, C, H, W]."""
    n, _, h, w = x.shape
    dev = x.device

    def rand(*shape):
        return torch.rand(shape, generator=gen).to(dev, x.dtype)

    x = x + (rand(n, 1, 1, 1) - 0.5)  # brightness
    m = x.mean(dim=1, keepdim=True)
    x = (x - m) * (rand(n, 1, 1, 1) * 2) + m  # saturation
    m = x.mean(dim=[1, 2, 3], keepdim=True)
    x = (x - m) * (rand(n, 1, 1, 1) + 0.5) + m  # contrast
    # translation by up to 1/8 of the size, zero padded
    sh, sw = h // 8, w // 8
    ty = torch.randint(-sh, sh + 1, (n,), generator=gen)
    tx = torch.randint(-sw, sw + 1, (n,), generator=gen)
    yy = (torch.arange(h)[None] - ty[:, None]).clamp(-1, h)  # [N, H]
    xx = (torch.arange(w)[None] - tx[:, None]).clamp(-1, w)
    pad = F.pad(x, [1, 1, 1, 1])
    iy = (yy + 1).to(dev)[:, :, None].expand(n, h, w)
    ix = (xx + 1).to(dev)[:, None, :].expand(n, h, w)
    flat = pad.flatten(2)  # [N, C, (H+2)(W+2)]
    idx = (iy * (w + 2) + ix).flatten(1)[:, None].expand(-1, x.shape[1], -1)
    x = flat.gather(2, idx).reshape(x.shape)
    # cutout: one square of half the size per image
    cy = torch.randint(0, h, (n,), generator=gen)[:, None, None]
    cx = torch.randint(0, w, (n,), generator=gen)[:, None, None]
    ar_y = torch.arange(h)[None, :, None]
    ar_x = torch.arange(w)[None, None, :]
    keep = ((ar_y - cy).abs() >= h // 4) | ((ar_x - cx).abs() >= w // 4)  # [N, H, W]
    return x * keep[:, None].to(dev, x.dtype)


# ----------------------------------------------------------------------------- state


@dataclass
class TrainState:
    G: Generator
    D: Discriminator
    G_ema: Generator
    opt_G: torch.optim.Optimizer
    opt_D: torch.optim.Optimizer
    step: int = 0
    nimg: int = 0
    pl_mean: float = 0.0
    wall_s: float = 0.0


def _adam(params, lr: float, interval: int) -> torch.optim.Adam:
    # Lazy regularisation: NVIDIA scales lr and betas by interval / (interval + 1).
    ratio = interval / (interval + 1) if interval else 1.0
    return torch.optim.Adam(params, lr=lr * ratio, betas=(0.0, 0.99**ratio), eps=1e-8)


def new_state(cfg: TrainConfig, device: torch.device) -> TrainState:
    gc = generator_config(cfg)
    G = make_default_generator(seed=cfg.seed, config=gc).train().requires_grad_(True)
    with torch.random.fork_rng(devices=[]):  # D's init (NVIDIA's randn), seeded, RNG untouched
        torch.manual_seed(cfg.seed + 1)
        D = Discriminator(cfg.resolution, 3, gc["channel_base"], gc["channel_max"])
    return _assemble(cfg, G, D, None, device)


def _assemble(cfg, G, D, G_ema, device) -> TrainState:
    G = G.to(device).train().requires_grad_(True)
    D = D.to(device).train().requires_grad_(True)
    G_ema = copy.deepcopy(G if G_ema is None else G_ema).to(device).eval().requires_grad_(False)
    pl_int = cfg.pl_interval if cfg.pl_weight > 0 else 0
    return TrainState(G, D, G_ema, _adam(G.parameters(), cfg.lr, pl_int),
                      _adam(D.parameters(), cfg.lr, cfg.r1_interval))  # fmt: skip


def save_state(path: Path, st: TrainState, cfg: TrainConfig) -> None:
    payload = {
        "format": "vj-train-state-1",
        "config": json.dumps(asdict(cfg)),
        "G_config": json.dumps(st.G.config()),
        "D_config": json.dumps(st.D.config()),
        "G": st.G.state_dict(),
        "D": st.D.state_dict(),
        "G_ema": st.G_ema.state_dict(),
        "opt_G": st.opt_G.state_dict(),
        "opt_D": st.opt_D.state_dict(),
        "step": st.step,
        "nimg": st.nimg,
        "pl_mean": st.pl_mean,
        "wall_s": st.wall_s,
    }
    buf = io.BytesIO()
    torch.save(payload, buf)
    atomic_write_bytes(path, buf.getvalue())


def read_state_file(path: Path) -> dict:
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises assorted types for corrupt files
        raise TrainError(f"{path}: not a readable vj training state: {e}") from None
    if not isinstance(data, dict) or data.get("format") != "vj-train-state-1":
        raise TrainError(f"{path}: not a vj training state (state.pt from `vj train`)")
    return data


def load_resume(path: Path, cfg: TrainConfig, device: torch.device) -> tuple[TrainState, bool]:
    """--resume CKPT: our state.pt (exact continuation), an NVIDIA .pkl (G, D, G_ema) or a
    generator checkpoint (.safetensors/.pt: G only, fresh D). Returns (state, exact)."""
    from vj.gan.checkpoint import CheckpointError, load_generator

    path = Path(path)
    if not path.is_file():
        raise TrainError(f"--resume {path}: no such file")
    with open(path, "rb") as fh:
        head = fh.read(4)
    if head[:4] == b"PK\x03\x04":
        try:  # our own state, or else a rosinality .pt generator
            data = read_state_file(path)
        except TrainError:
            data = None
        if data is not None:
            return _from_state(path, data, cfg, device), True
    try:
        G_ema, _meta = load_generator(path)
    except CheckpointError as e:
        raise TrainError(str(e)) from None
    _check_res(path, G_ema.img_resolution, cfg.resolution)
    G, D = copy.deepcopy(G_ema), None
    if head[:1] == b"\x80":
        G, D = _nvidia_g_d(path, G_ema)
    if D is None:
        gc = G_ema.config()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed + 1)
            D = Discriminator(cfg.resolution, gc["img_channels"], gc["channel_base"],
                              gc["channel_max"])  # fmt: skip
    return _assemble(cfg, G, D, G_ema, device), False


def _check_res(path: Path, have: int, want: int) -> None:
    if have != want:
        raise TrainError(
            f"--resume {path}: the checkpoint is {have}x{have}, training is at {want}x{want} "
            f"(pass --resolution {have})"
        )


def _from_state(path: Path, data: dict, cfg: TrainConfig, device) -> TrainState:
    gc, dc = json.loads(data["G_config"]), json.loads(data["D_config"])
    _check_res(path, gc["img_resolution"], cfg.resolution)
    G, G_ema, D = Generator(**gc), Generator(**gc), Discriminator(**dc)
    try:
        G.load_state_dict(data["G"])
        G_ema.load_state_dict(data["G_ema"])
        D.load_state_dict(data["D"])
    except RuntimeError as e:
        raise TrainError(f"{path}: weights do not match their config: {e}") from None
    st = _assemble(cfg, G, D, G_ema, device)
    try:
        st.opt_G.load_state_dict(data["opt_G"])
        st.opt_D.load_state_dict(data["opt_D"])
    except (ValueError, KeyError) as e:
        msg = f"{path}: optimiser state does not match (changed --pl-weight?): {e}"
        raise TrainError(msg) from None
    st.step, st.nimg = int(data["step"]), int(data["nimg"])
    st.pl_mean, st.wall_s = float(data["pl_mean"]), float(data["wall_s"])
    return st


def _nvidia_g_d(path: Path, G_ema: Generator) -> tuple[Generator, Discriminator | None]:
    """The trainable G and the D of an NVIDIA training pickle (through the safe unpickler)."""
    from vj.gan import checkpoint as ck
    from vj.gan.discriminator import nvidia_d_config

    data = ck._unpickle(path)
    G = copy.deepcopy(G_ema)
    if not isinstance(data, dict):
        return G, None
    rec = data.get("G")
    if isinstance(rec, ck._Persistent):
        tensors: dict = {}
        ck._collect_state(path, rec, "", tensors)
        ck._load_state(path, G, tensors)
    rec = data.get("D")
    if not isinstance(rec, ck._Persistent):
        return G, None
    kwargs = ck._plain(dict(rec.state.get("_init_kwargs") or {}))
    try:
        D = Discriminator(**nvidia_d_config(kwargs))
    except (KeyError, TypeError, ValueError) as e:
        raise TrainError(f"{path}: cannot rebuild its discriminator: {e}") from None
    tensors = {}
    ck._collect_state(path, rec, "", tensors)
    own = D.state_dict()
    if set(own) != set(tensors) or any(own[k].shape != tensors[k].shape for k in own):
        diff = sorted(set(own) ^ set(tensors))[:4]
        raise TrainError(f"{path}: its discriminator does not match (keys {diff})")
    D.load_state_dict({k: v.float() for k, v in tensors.items()})
    return G, D


# ----------------------------------------------------------------------------- one step


def _gens(seed: int, step: int) -> tuple[torch.Generator, np.random.RandomState]:
    g = torch.Generator().manual_seed(seed * 1_000_003 + step)
    return g, np.random.RandomState((seed * 7919 + step) % 2**32)


def train_step(st: TrainState, cfg: TrainConfig, data: Dataset, augment: bool, device) -> dict:
    """One G step and one D step (plus lazy R1 / path length when due); returns the losses."""
    g, rs = _gens(cfg.seed, st.step)
    b = cfg.batch
    # bf16 autocast needs no loss scaling; GPUs without bf16 train in fp32.
    use_amp = cfg.amp and device.type == "cuda" and torch.cuda.is_bf16_supported()
    G, D = st.G, st.D
    aug = (lambda x: diff_augment(x, g)) if augment else (lambda x: x)

    def fake_images(n):
        z = torch.randn([n, G.z_dim], generator=g).to(device)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=use_amp):
            noise_gen = g if device.type == "cpu" else None
            return G(z, noise_mode="random", noise_generator=noise_gen)

    def d_logits(img):
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=use_amp):
            return D(aug(img)).float()

    out = {}
    # G main: non-saturating logistic loss.
    G.requires_grad_(True)
    D.requires_grad_(False)
    loss_g = F.softplus(-d_logits(fake_images(b))).mean()
    st.opt_G.zero_grad(set_to_none=True)
    loss_g.backward()
    out["loss_G"] = loss_g.item()
    if cfg.pl_weight > 0 and st.step % cfg.pl_interval == 0:
        pl = _pl_penalty(st, g, device, b)
        (pl * cfg.pl_weight * cfg.pl_interval).backward()
        out["pl"] = pl.item()
    _finite_step(st.opt_G, G)
    # D main: real vs fake, plus R1 on the reals every r1_interval steps.
    G.requires_grad_(False)
    D.requires_grad_(True)
    with torch.no_grad():
        fake = fake_images(b)
    idx = rs.randint(0, len(data), size=b)
    real = data.batch(idx).to(device)
    do_r1 = cfg.r1_interval > 0 and st.step % cfg.r1_interval == 0 and cfg.gamma() > 0
    real.requires_grad_(do_r1)
    real_logits = d_logits(real)
    loss_d = F.softplus(d_logits(fake)).mean() + F.softplus(-real_logits).mean()
    total = loss_d
    if do_r1:
        (grad,) = torch.autograd.grad(real_logits.sum(), real, create_graph=True)
        r1 = grad.float().square().sum(dim=[1, 2, 3]).mean()
        total = total + r1 * (cfg.gamma() / 2) * cfg.r1_interval
        out["r1"] = r1.item()
    st.opt_D.zero_grad(set_to_none=True)
    total.backward()
    _finite_step(st.opt_D, D)
    out["loss_D"] = loss_d.item()
    # EMA with NVIDIA's half-life (ema_kimg) and ramp-up.
    st.step += 1
    st.nimg += b
    ema_nimg = (cfg.ema_kimg if cfg.ema_kimg is not None else b * 10 / 32) * 1000
    if cfg.ema_rampup:
        ema_nimg = min(ema_nimg, st.nimg * cfg.ema_rampup)
    beta = 0.5 ** (b / max(ema_nimg, 1e-8))
    with torch.no_grad():
        for pe, p in zip(st.G_ema.parameters(), G.parameters(), strict=True):
            pe.copy_(p.lerp(pe, beta))
        for be, bb in zip(st.G_ema.buffers(), G.buffers(), strict=True):
            be.copy_(bb)
    return out


def _pl_penalty(st: TrainState, g: torch.Generator, device, b: int) -> torch.Tensor:
    G = st.G
    n = max(b // 2, 1)
    z = torch.randn([n, G.z_dim], generator=g).to(device)
    ws = G.mapping(z)
    img = G.synthesis(ws, noise_mode="const")
    noise = torch.randn(img.shape, generator=g).to(device) / math.sqrt(img.shape[2] * img.shape[3])
    (grad,) = torch.autograd.grad((img * noise).sum(), ws, create_graph=True)
    lengths = grad.square().sum(2).mean(1).sqrt()
    st.pl_mean = st.pl_mean + (lengths.mean().item() - st.pl_mean) * 0.01
    return (lengths - st.pl_mean).square().mean()


def _finite_step(opt: torch.optim.Optimizer, net: torch.nn.Module) -> None:
    # NVIDIA's nan_to_num on gradients: one bad batch must not poison the weights.
    for p in net.parameters():
        if p.grad is not None:
            torch.nan_to_num_(p.grad, nan=0, posinf=1e5, neginf=-1e5)
    opt.step()


# ----------------------------------------------------------------------------- the run


def sample_grid(G: Generator, n: int = 16, seed: int = 123) -> torch.Tensor:
    """EMA samples for fixed seeded z: [n, 3, R, R]."""
    z = torch.randn([n, G.z_dim], generator=torch.Generator().manual_seed(seed))
    dev = next(G.parameters()).device
    with torch.no_grad():
        return G(z.to(dev), noise_mode="const", force_fp32=True).cpu()


def run(
    cfg: TrainConfig,
    data: Dataset,
    run_dir: Path,
    resume: Path | None = None,
    device: torch.device | None = None,
    progress: bool = True,
    log=print,
    max_wall_s: float | None = None,
) -> TrainState:
    """Train until cfg.kimg (or until the run's own clock passes max_wall_s); snapshots every
    cfg.snap_kimg and at the end."""
    from vj.progress import progress_bar

    device = device or torch.device("cuda" if torch.cuda.is_available() else "cpu")
    state_path = run_dir / "state.pt"
    if resume is not None:
        st, exact = load_resume(resume, cfg, device)
        how = "exact" if exact else "fine-tune"
        log(f"resumed from {resume} at {st.nimg / 1000:.3f} kimg ({how})")
    else:
        if state_path.exists():
            raise TrainError(
                f"{run_dir}: already holds a run; continue it with --resume {state_path} "
                f"or pick another -o (nothing was overwritten)"
            )
        st = new_state(cfg, device)
    run_dir.mkdir(parents=True, exist_ok=True)
    augment = cfg.augment == "on" or (cfg.augment == "auto" and len(data) < 5000)
    total = int(cfg.kimg * 1000)
    snap = max(int(cfg.snap_kimg * 1000), cfg.batch)
    next_snap = (st.nimg // snap + 1) * snap
    bar = progress_bar(total=total / 1000, initial=st.nimg / 1000, unit="kimg", enabled=progress,
               bar_format="{l_bar}{bar}| {n:.2f}/{total:.2f} kimg [{elapsed}<{remaining}, "
               "{rate_fmt}{postfix}]")  # fmt: skip
    losses_path = run_dir / "losses.jsonl"
    t0, wall0 = time.perf_counter(), st.wall_s
    with open(losses_path, "a") as lf:
        while st.nimg < total:
            if max_wall_s is not None and st.wall_s >= max_wall_s:
                log(f"stopping at {st.nimg / 1000:.2f} kimg: wall-time budget reached")
                snapshot(st, cfg, run_dir)
                break
            out = train_step(st, cfg, data, augment, device)
            st.wall_s = wall0 + time.perf_counter() - t0
            lf.write(json.dumps({"step": st.step, "kimg": st.nimg / 1000, **out}) + "\n")
            lf.flush()
            bar.update(min(st.nimg, total) / 1000 - bar.n)  # exact, no float drift
            bar.set_postfix(G=f"{out['loss_G']:.3f}", D=f"{out['loss_D']:.3f}")
            if st.nimg >= next_snap or st.nimg >= total:
                snapshot(st, cfg, run_dir)
                next_snap += snap
    bar.close()
    return st


def snapshot(st: TrainState, cfg: TrainConfig, run_dir: Path) -> None:
    """state.pt, network.safetensors (EMA G, with w_avg refreshed) and grid PNG, atomically."""
    from vj.gan.checkpoint import save_generator
    from vj.gan.commands import write_png

    refresh_w_avg(st.G_ema)
    save_state(run_dir / "state.pt", st, cfg)
    save_generator(
        st.G_ema,
        run_dir / "network.safetensors",
        {
            "source": f"vj train: {st.nimg / 1000:.1f} kimg, seed {cfg.seed}",
            "licence": "that of the training data and vj (MIT)",
        },
    )
    write_png(run_dir / f"grid-{st.nimg // 1000:06d}kimg.png", image_grid(sample_grid(st.G_ema), 4))


def refresh_w_avg(G: Generator) -> None:
    """w_avg = mean w of 4096 seeded z (truncation needs it; training leaves it stale)."""
    with torch.no_grad():
        z = torch.randn([4096, G.z_dim], generator=torch.Generator().manual_seed(0))
        dev = next(G.parameters()).device
        G.mapping.w_avg.copy_(G.mapping(z.to(dev))[:, 0].mean(0))


def image_grid(imgs: torch.Tensor, cols: int) -> np.ndarray:
    """[N, 3, H, W] in [-1, 1] -> one [rows*H, cols*W, 3] uint8 picture."""
    from vj.gan.commands import to_uint8

    u = to_uint8(imgs.clamp(-1, 1))
    n, h, w, c = u.shape
    rows = -(-n // cols)
    u = np.concatenate([u, np.zeros([rows * cols - n, h, w, c], np.uint8)])
    u = u.reshape(rows, cols, h, w, c).transpose(0, 2, 1, 3, 4)
    return np.ascontiguousarray(u.reshape(rows * h, cols * w, c))
