"""Training SIW-StyleGAN (the SofGAN texture generator) on unpaired images and segmaps.

Each iteration (StyleGAN2 recipe, paper §5 / App. B):

1. **D step**: fakes from random segmaps and styles; non-saturating logistic loss
   ``softplus(D(fake)) + softplus(-D(real))``; every ``d_reg_every`` steps the lazy R1 penalty
   ``γ/2 · E‖∇D(real)‖²`` (weighted by the interval).
2. **G step**: ``softplus(-D(G(segmap, styles)))``; every ``g_reg_every`` steps the path-length
   penalty (weight ``pl_weight``, on ``batch // pl_batch_shrink`` samples).
3. **EMA** of G (StyleGAN2-ADA rule: half-life ``ema_kimg`` thousand images, ramped up over the
   first images of a run).

Styles. With probability ``region_mix_prob`` a batch is a *region-mix* batch: every sample gets two
codes and random class weights over the style groups present in its segmap (binary: half of the
groups take style B, or soft: a uniform ``p`` per group, each with probability 1/2), rendered in
``region_mode`` ("exact" is the paper's Eq. 10). Otherwise each sample uses one style, and with
probability ``mixing`` (0.9) StyleGAN's layer-wise style mixing of two codes. (The release mixes
regions with a random half of the groups; its batch handling is only meaningful at batch 1.)

Two optional G terms that SofGAN's own training does not have (both off by default, so the paper's
unpaired recipe is what runs unless asked for):

* ``diversity_weight`` λ: a mode-seeking term. Half of each G batch repeats the other half's
  segmaps with new styles, and G is rewarded for ``min(ratio, diversity_tau)`` where ``ratio`` is
  the coarse (16 × 16 pooled) image difference of a pair over its latent difference
  (:func:`diversity_ratio`): ``-λ · mean(min(ratio, τ))``. Against styles that all paint the same
  hair colour (mode dropping). With ``diversity_mode="regions"`` the image difference is instead
  the mean over hair, skin, cloth and background (those the pair's segmap shows) of the difference
  of the region's mean colour (:func:`region_diversity_ratio`): every region's colour must follow
  the style, not only the large ones that dominate a pooled image.
* ``parser_weight`` μ with ``loss_parser``: a frozen face parser must read each fake's input segmap
  in it (:func:`parser_segmap_loss`, class-balanced): ``+μ · loss``. It needs a parser trained on
  photos of the domain (the demo parser for the synthetic world, a CelebAMask-HQ parser for real
  data); evaluate the result with a *different* parser, since G can learn that one parser's blind
  spots.

Adam β = (0, 0.99), lr 0.002, with StyleGAN2's lazy-regularisation correction of lr and β.
Augmentation (images and segmaps alike, independently): up-scale in ``scale_range`` + crop,
horizontal flip (segmaps swap left/right ids).

Run folder::

    OUT/run.json             configs and data
    OUT/metrics.jsonl        one JSON line per log / eval event
    OUT/samples/step_N.png   sample grids (top row: the segmaps; then fixed styles) from G_ema
    OUT/checkpoints/step_N/  newest ``keep_checkpoints`` checkpoints: G, D, G_ema (official-style keys
                             ``g.*``, ``d.*``, ``g_ema.*``), both optimizers, every RNG
    OUT/model/               the final G_ema (``SIWGenerator.save_pretrained``) + training.json

``resume=True`` continues exactly (bit for bit on CPU with one thread; the log's records equal an
uninterrupted run's). Under ``torchrun`` every rank
draws its own data (``seed + rank``) and the gradients are averaged with ``all_reduce`` before each
optimizer step (data-parallel, the same update DDP makes). AMP (bfloat16 autocast of the main
losses) and channels_last apply on CUDA only.
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from .. import __version__
from .._validate import check_number
from ..texture.discriminator import SIWDiscriminator
from ..texture.generator import SIWConfig, SIWGenerator, style_mixing_latents
from ..texture.regions import random_two_style_weights
from .common import TrainConfigBase, DistInfo, latest_checkpoint
from .loop import config_or_default
from .loop import (CheckpointSpec, Hook, RunningMeans, TrainLoop, check_resume_record, check_until, distributed,
                   seed_everything, write_run_record, write_training_json)
from .siw_data import ImageFolder, SegmapFolder, augment_batch

__all__ = ["SIWTrainConfig", "SIWTrainResult", "SIWNetworks", "train_siw", "d_logistic_loss", "g_nonsaturating_loss",
           "r1_penalty", "diversity_ratio", "region_diversity_ratio", "parser_segmap_loss", "sample_grid", "load_siw_generator", "evaluate_siw"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SIWTrainConfig(TrainConfigBase):
    """Hyper-parameters of :func:`train_siw`; defaults follow the paper/StyleGAN2."""

    steps: int = 100_000
    batch: int = 8                      # images per step and process
    lr: float = 0.002
    beta1: float = 0.0
    beta2: float = 0.99
    r1_gamma: float = 10.0
    d_reg_every: int = 16
    pl_weight: float = 2.0
    g_reg_every: int = 4
    pl_batch_shrink: int = 2
    pl_decay: float = 0.01
    mixing: float = 0.9                 # layer-wise style mixing probability (single-style batches)
    region_mix_prob: float = 0.5        # probability that a batch is a region-mix batch
    soft_region_prob: float = 0.5       # within region-mix batches: soft P instead of binary
    region_mode: str = "exact"          # "exact" (Eq. 10) or "fast" for region-mix batches
    ema_kimg: float = 10.0
    ema_rampup: float = 0.05            # 0 disables the ramp-up
    scale_min: float = 1.0
    scale_max: float = 1.7
    flip: bool = True
    noise: str = "random"               # noise mode while training
    seed: int = 0
    device: str | None = None
    amp: bool = True                    # bfloat16 autocast on CUDA
    amp_cpu: bool = False               # bfloat16 autocast on CPU too (AMX / AVX512-BF16 CPUs: ~1.4x faster)
    images_in_memory: bool | None = None  # decode all photos once (None: when they fit in 4 GiB), else per batch
    channels_last: bool = True          # on CUDA
    log_every: int = 50
    sample_every: int = 1000
    sample_count: int = 8
    checkpoint_every: int = 1000
    keep_checkpoints: int = 2
    eval_every: int = 0                 # parser mIoU of G_ema samples (needs ``parser``)
    eval_count: int = 64
    parser: str | None = None           # a FaceParser folder or "demo" for evaluation
    # --- terms SofGAN's own training does not have (off by default; see the module docstring)
    diversity_weight: float = 0.0       # mode-seeking term: pairs of styles on one segmap must differ
    diversity_tau: float = 1.0          # ... up to this ratio (coarse image L1 / latent L1)
    diversity_mode: str = "pooled"      # ... image L1 of the 16x16 pooled images, or "regions": of region means
    parser_weight: float = 0.0          # semantic term: a frozen face parser must read the input segmap
    loss_parser: str | None = None      # the FaceParser folder (or "demo") of that term

    def __post_init__(self):
        def check_int(name, low):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                raise ValueError(f"{name}: expected an integer >= {low}, got {v!r}")

        for name in ("steps", "batch", "d_reg_every", "g_reg_every", "pl_batch_shrink", "log_every", "sample_count",
                     "keep_checkpoints", "eval_count"):
            check_int(name, 1)
        for name in ("sample_every", "checkpoint_every", "eval_every", "seed"):
            check_int(name, 0)
        # every float is a finite number (inf or NaN would train to NaN weights), as SOFTrainConfig has it
        for name in ("mixing", "region_mix_prob", "soft_region_prob", "beta1", "beta2", "pl_decay"):
            check_number(getattr(self, name), name, 0, 1)
        for name in ("lr", "ema_kimg"):
            check_number(getattr(self, name), name, 0, low_open=True)
        for name in ("r1_gamma", "pl_weight", "ema_rampup", "scale_min", "scale_max"):
            check_number(getattr(self, name), name, 0)
        if not 1.0 <= self.scale_min <= self.scale_max:
            raise ValueError(f"scale_min/scale_max: expected 1 <= scale_min <= scale_max, got "
                             f"{self.scale_min}, {self.scale_max}")
        if self.region_mode not in ("exact", "fast"):
            raise ValueError(f"region_mode: expected 'exact' or 'fast', got {self.region_mode!r}")
        if self.noise not in ("random", "const", "none"):
            raise ValueError(f"noise: expected 'random', 'const' or 'none', got {self.noise!r}")
        if self.eval_every and not self.parser:
            raise ValueError("parser: eval_every > 0 needs a face parser (a folder or 'demo')")
        for name in ("diversity_weight", "parser_weight"):
            check_number(getattr(self, name), name, 0)
        check_number(self.diversity_tau, "diversity_tau", 0, low_open=True)
        if self.diversity_mode not in ("pooled", "regions"):
            raise ValueError(f"diversity_mode: expected 'pooled' or 'regions', got {self.diversity_mode!r}")
        if self.parser_weight and not self.loss_parser:
            raise ValueError("loss_parser: parser_weight > 0 needs a face parser (a folder or 'demo')")
        if self.batch < 2 and self.diversity_weight:
            raise ValueError(f"batch: the diversity term needs pairs, i.e. batch >= 2, got {self.batch}")
        self._check_bools("flip", "amp", "amp_cpu", "channels_last")
        if self.images_in_memory is not None:
            self._check_bools("images_in_memory")
        self._check_device()



@dataclass
class SIWTrainResult:
    generator: SIWGenerator          # G_ema
    out: Path
    step: int
    finished: bool
    metrics: dict
    model_dir: Path | None


class SIWNetworks(nn.Module):
    """G, D and G_ema in one module (checkpoint keys ``g.*``, ``d.*``, ``g_ema.*`` as in the
    release) plus the path-length running mean."""

    def __init__(self, config: SIWConfig):
        super().__init__()
        self.g = SIWGenerator(config)
        self.d = SIWDiscriminator(config)
        self.g_ema = SIWGenerator(config)
        self.g_ema.load_state_dict(self.g.state_dict())
        self.g_ema.requires_grad_(False)
        self.register_buffer("pl_mean", torch.zeros(()))


# ------------------------------------------------------------------------------------------
# losses
# ------------------------------------------------------------------------------------------

#: Training-time evaluation of the colour diversity (``eval_every``): styles per segmap, segmaps,
#: and reference photos (training photos whose regions the parser labels). Cheaper than ``eval
#: siw`` (128 styles on 8 segmaps against held-out photos with true segmaps), so noisier.
EVAL_DIVERSITY_STYLES = 16
EVAL_DIVERSITY_GEOMETRIES = 8
EVAL_DIVERSITY_PHOTOS = 128


def d_logistic_loss(real_pred: torch.Tensor, fake_pred: torch.Tensor) -> torch.Tensor:
    return F.softplus(-real_pred).mean() + F.softplus(fake_pred).mean()


def g_nonsaturating_loss(fake_pred: torch.Tensor) -> torch.Tensor:
    return F.softplus(-fake_pred).mean()


def r1_penalty(real_pred: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    (grad,) = torch.autograd.grad(real_pred.sum(), real, create_graph=True)
    return grad.pow(2).flatten(1).sum(1).mean()


def diversity_ratio(images: torch.Tensor, latents: torch.Tensor) -> torch.Tensor:
    """Per pair ``(i, i + N//2)`` of a paired batch (both halves on the same segmaps): the mean
    absolute difference of the two images after average pooling to 16 × 16 (the colour and layout
    of the regions, not the fine texture), divided by the mean absolute difference of their
    latents (detached). ``[N // 2]``. The mode-seeking ratio of Mao et al. 2019 / DSGAN (Yang et
    al. 2019), pooled."""
    half = _pairs(images)
    k = max(1, images.shape[-1] // 16)
    x = F.avg_pool2d(images.float(), k)
    di = (x[:half] - x[half:2 * half]).abs().flatten(1).mean(1)
    return di / _latent_distance(latents, half)


def _pairs(images: torch.Tensor) -> int:
    """The number of pairs ``(i, i + N//2)`` of a paired batch (at least one)."""
    half = images.shape[0] // 2
    if half < 1:
        raise ValueError(f"images: the diversity ratio needs pairs, i.e. at least 2 images, got {images.shape[0]}")
    return half


def _latent_distance(latents: torch.Tensor, half: int) -> torch.Tensor:
    """``[half]`` mean absolute difference of the pairs' latents (detached; floored at 1e-8)."""
    lat = latents.detach().float()
    return (lat[:half] - lat[half:2 * half]).abs().flatten(1).mean(1).clamp_min(1e-8)


def region_diversity_ratio(images: torch.Tensor, latents: torch.Tensor, segmaps: torch.Tensor) -> torch.Tensor:
    """Per pair ``(i, i + N//2)`` of a paired batch (both halves on the same SofGAN-17 ``segmaps``
    ``[N, H, W]``): the mean over the regions of
    :data:`~sofgan_lab.metrics.texture.DIVERSITY_REGIONS` (hair, skin, cloth, background) that the
    pair's segmap shows of the mean absolute difference of the two images' mean region colours
    (RGB in [-1, 1]), divided by the mean absolute difference of their latents (detached). A pair
    whose segmap shows none of the regions counts 0. ``[N // 2]``."""
    from ..metrics.texture import DIVERSITY_REGIONS

    half = _pairs(images)
    x = images.float()
    seg = segmaps.to(x.device).long()
    if seg.shape[-2:] != x.shape[-2:]:
        seg = F.interpolate(seg[:, None].float(), size=x.shape[-2:], mode="nearest")[:, 0].long()
    seg = seg[:half]
    total = x.new_zeros(half)
    present = x.new_zeros(half)
    for ids in DIVERSITY_REGIONS.values():
        mask = torch.zeros_like(seg, dtype=torch.bool)
        for i in ids:
            mask |= seg == i
        m = mask.to(x.dtype)[:, None]                                   # [half, 1, H, W]
        area = m.flatten(1).sum(1)                                      # [half]
        shown = area > 0
        mean_a = (x[:half] * m).flatten(2).sum(2) / area.clamp_min(1)[:, None]
        mean_b = (x[half:2 * half] * m).flatten(2).sum(2) / area.clamp_min(1)[:, None]
        total = total + (mean_a - mean_b).abs().mean(1) * shown
        present = present + shown
    return total / present.clamp_min(1) / _latent_distance(latents, half)


def parser_segmap_loss(parser: nn.Module, images: torch.Tensor, segmaps: torch.Tensor) -> torch.Tensor:
    """How badly a frozen SOF-20 face ``parser`` reads the SofGAN-17 ``segmaps`` ``[N, H, W]`` in
    ``images`` ``[N, 3, H, W]``: the negative log of the parser's probability of each pixel's class
    (SOF-20 probabilities summed into SofGAN-17 classes), half the mean over pixels and half the
    mean over the classes present (so glasses and earrings count as much as the background)."""
    from ..labels import NUM_SOFGAN_CLASSES, SOF20_TO_SOFGAN17

    logits = parser(images.clamp(-1, 1)).float()
    if logits.shape[1] != len(SOF20_TO_SOFGAN17):
        raise ValueError(f"loss_parser: expected a SOF-20 parser ({len(SOF20_TO_SOFGAN17)} classes), "
                         f"got {logits.shape[1]} classes")
    table = torch.tensor(SOF20_TO_SOFGAN17.tolist(), device=logits.device)
    probs = logits.softmax(1)
    p17 = probs.new_zeros(probs.shape[0], NUM_SOFGAN_CLASSES, *probs.shape[2:]).index_add_(1, table, probs)
    target = segmaps.to(logits.device).long()
    if target.shape[-2:] != logits.shape[-2:]:
        target = F.interpolate(target[:, None].float(), size=logits.shape[-2:], mode="nearest")[:, 0].long()
    nll = F.nll_loss(p17.clamp_min(1e-6).log(), target, reduction="none")  # [N, H, W]; at most -log 1e-6
    flat, cls = nll.flatten(), target.flatten()
    sums = flat.new_zeros(NUM_SOFGAN_CLASSES).index_add_(0, cls, flat)
    counts = torch.bincount(cls, minlength=NUM_SOFGAN_CLASSES).to(flat.dtype)
    present = counts > 0
    per_class = sums[present] / counts[present]
    return 0.5 * flat.mean() + 0.5 * per_class.mean()


# ------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------

def _sync_grads(params: list[torch.nn.Parameter], info: DistInfo) -> None:
    if not info.distributed:
        return
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= info.world_size
    i = 0
    for p, g in zip(params, grads):
        n = g.numel()
        p.grad = flat[i:i + n].view_as(p).clone()
        i += n


def _styles(g: SIWGenerator, segmaps: torch.Tensor, cfg: SIWTrainConfig, gen: torch.Generator,
            device: torch.device, *, region: bool):
    """(kwargs for G, latents tensor) for one batch."""
    n, d, L = segmaps.shape[0], g.style_dim, g.n_latent
    z = torch.randn(n, 2, d, generator=gen).to(device)
    if region:
        soft = bool(torch.rand((), generator=gen) < cfg.soft_region_prob)
        cw = random_two_style_weights(segmaps, soft=soft, generator=gen).to(device)
        w = g.mapping(z)
        lat = w[:, :, None].expand(-1, -1, L, -1)
        return {"class_weights": cw, "mode": cfg.region_mode}, lat
    mix = torch.rand(n, generator=gen) < cfg.mixing
    cross = torch.randint(1, L, (n,), generator=gen)
    cross = torch.where(mix, cross, torch.full_like(cross, L)).to(device)
    w = g.mapping(z)
    lat = style_mixing_latents(w[:, :1], w[:, 1:], cross, L)
    return {}, lat


def _noise(g: SIWGenerator, cfg: SIWTrainConfig, n: int, gen: torch.Generator):
    if cfg.noise == "random":
        return g.make_noise(n, generator=gen)
    return cfg.noise


def _index(count: int, n: int, gen: torch.Generator) -> torch.Tensor:
    return torch.randint(0, count, (n,), generator=gen)


@torch.no_grad()
def sample_grid(g: SIWGenerator, segmaps: torch.Tensor, z: torch.Tensor) -> np.ndarray:
    """A uint8 grid: the colourised segmaps on top, then one row per style row of ``z`` ``[S, D]``."""
    from ..images import tensor_to_uint8
    from ..labels import colorize

    g.eval()
    rows = []
    for s in range(z.shape[0]):
        img = g(segmaps.to(g.device), z[s:s + 1].expand(segmaps.shape[0], -1), noise="const")
        rows.append(tensor_to_uint8(img.clamp(-1, 1)))
    size = rows[0].shape[1]
    labels = F.interpolate(segmaps[:, None].float(), size=(size, size), mode="nearest")[:, 0]
    rows.insert(0, colorize(labels.cpu().numpy().astype(np.uint8), "sofgan17"))
    return np.concatenate([np.concatenate(list(r), axis=1) for r in rows], axis=0)


#: Photos are preloaded (decoded once) when they take at most this many bytes at the training size.
IMAGES_IN_MEMORY_BYTES = 4 * 2 ** 30


def _image_source(folder: Path, size: int, limit: int | None, in_memory: bool | None):
    """The photo folder, preloaded (:class:`ImageFolder`) or decoded per batch (``StreamingImageFolder``:
    FFHQ-sized folders); both give the same values."""
    from ..datasets.images import StreamingImageFolder
    from ..images import list_images

    if in_memory is None:
        n = len(list_images(folder, "images", "images")[: limit or None])
        in_memory = n * 3 * size * size <= IMAGES_IN_MEMORY_BYTES
        if not in_memory:
            log.info("images: %d photos at %d² would take %.1f GiB: decoding them per batch instead", n, size,
                     n * 3 * size * size / 2 ** 30)
    return ImageFolder(folder, size, limit=limit) if in_memory else StreamingImageFolder(folder, size, limit=limit)


def _check_run_folder(out: Path, resume: bool, latest: Path | None) -> None:
    if resume:
        return
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"out: {out} is not empty; pass resume=True (--resume) to continue the run there, "
                              "or choose a new folder")


def _ema_beta(cfg: SIWTrainConfig, images_seen: int, batch_total: int, rampup: bool = True) -> float:
    """EMA decay per step; the ramp-up (short half-life early on, to forget a random init) is
    skipped when ``rampup`` is false (runs that start from trained weights)."""
    ema_nimg = cfg.ema_kimg * 1000
    if cfg.ema_rampup and rampup:
        ema_nimg = min(ema_nimg, images_seen * cfg.ema_rampup)
    return 0.5 ** (batch_total / max(ema_nimg, 1e-8))


@torch.no_grad()
def _ema_update(g_ema: SIWGenerator, g: SIWGenerator, beta: float) -> None:
    for pe, p in zip(g_ema.parameters(), g.parameters()):
        pe.copy_(p.detach().lerp(pe, beta))
    for be, b in zip(g_ema.buffers(), g.buffers()):
        be.copy_(b)


# ------------------------------------------------------------------------------------------
# training
# ------------------------------------------------------------------------------------------

def train_siw(images: str | Path, segmaps: str | Path, out: str | Path, *, model_config: SIWConfig | None = None,
              train_config: SIWTrainConfig | None = None, resume: bool = False, progress: bool = True,
              until: int | None = None, segmap_label_set: str = "auto", limit: int | None = None,
              init_from: str | Path | None = None) -> SIWTrainResult:
    """Train SIW-StyleGAN on the images of ``images`` and the label maps of ``segmaps`` (unpaired).

    Args:
        images, segmaps: folders (see :mod:`sofgan_lab.train.siw_data`).
        out: the run folder (module docstring); must be empty unless ``resume``.
        model_config: a :class:`SIWConfig` (default ``SIWConfig.demo(128)``); its ``size`` is the
            training resolution.
        train_config: a :class:`SIWTrainConfig`.
        resume: continue from the newest checkpoint (starts afresh when there is none).
        until: stop after this step (checkpointing it) without finishing.
        segmap_label_set: ``"auto"``, ``"sof20"``, ``"sofgan17"`` or ``"celebamask19"``.
        limit: use only the first ``limit`` files of each folder (tests, quick looks).
        init_from: start from the weights of ``"demo"``, a saved generator, a run or a checkpoint
            folder instead of a random init (fine-tuning; ``model_config`` may add SPADE layers,
            which start as the identity). The optimizers start afresh. Ignored when ``resume``
            finds a checkpoint.
    """
    cfg = config_or_default(train_config, SIWTrainConfig, SIWTrainConfig, "train_config")
    mcfg = config_or_default(model_config, SIWConfig, lambda: SIWConfig.demo(128), "model_config")
    check_until(until)
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit: expected an integer >= 1 or None, got {limit!r}")
    with distributed(cfg.device) as (device, info):
        return _train(Path(images), Path(segmaps), Path(out), mcfg, cfg, resume, progress, until, device, info,
                      segmap_label_set, limit, init_from)


def _prepare(images_dir: Path, segmaps_dir: Path, out: Path, mcfg: SIWConfig, cfg: SIWTrainConfig, resume: bool,
             info: DistInfo, label_set: str, limit: int | None, init_from: str | Path | None):
    """The photo and segmap folders, the run record (written to ``out/run.json`` after the run
    folder's checks) and the weights to start from (a resumed fine-tuning run stays one)."""
    imgs = _image_source(images_dir, mcfg.size, limit, cfg.images_in_memory)
    segs = SegmapFolder(segmaps_dir, mcfg.size, label_set=label_set, limit=limit)
    latest = latest_checkpoint(out / "checkpoints")
    _check_run_folder(out, resume, latest)
    record = {"format": "sofgan-lab/siw-run", "library_version": __version__,
              "images": str(images_dir.resolve()), "num_images": len(imgs),
              "segmaps": str(segmaps_dir.resolve()), "num_segmaps": len(segs),
              "segmap_label_set": segs.source_label_set, "model_config": mcfg.to_dict(),
              "train_config": cfg.to_dict(), "world_size": info.world_size}
    old = check_resume_record(out, record) if resume else None
    if init_from is None and old is not None and old.get("init_from") is not None and latest is not None:
        init_from = old["init_from"]  # a fine-tuning run stays one when resumed (its EMA has no ramp-up)
    if init_from is not None:
        record["init_from"] = str(init_from)
    write_run_record(out, record, info, folders=("samples",))
    return imgs, segs, record, init_from


def _adam_settings(cfg: SIWTrainConfig, ratio: float) -> dict:
    """Adam's learning rate and betas with StyleGAN2's lazy-regularisation correction ``ratio``."""
    return {"lr": cfg.lr * ratio, "betas": (cfg.beta1 ** ratio, cfg.beta2 ** ratio)}


def _build(mcfg: SIWConfig, cfg: SIWTrainConfig, device: torch.device):
    """G, D and G_ema, their optimizers ``{"g", "d"}`` with the lazy-regularisation ratios, and
    whether to autocast to bfloat16."""
    seed_everything(cfg.seed)
    nets = SIWNetworks(mcfg).to(device)
    use_cuda = device.type == "cuda"
    if cfg.channels_last and use_cuda:
        nets.to(memory_format=torch.channels_last)
    ratios = {"g": cfg.g_reg_every / (cfg.g_reg_every + 1), "d": cfg.d_reg_every / (cfg.d_reg_every + 1)}
    optimizers = {name: torch.optim.Adam(getattr(nets, name).parameters(), **_adam_settings(cfg, ratio))
                  for name, ratio in ratios.items()}
    use_amp = (cfg.amp and use_cuda and torch.cuda.is_bf16_supported()) or (cfg.amp_cpu and not use_cuda)
    if cfg.amp and use_cuda and not use_amp:
        log.warning("amp: this GPU has no bfloat16; training in float32")
    return nets, optimizers, ratios, use_amp


def _apply_optimizer_config(optimizers: dict, ratios: dict, cfg: SIWTrainConfig) -> None:
    """After a resume: the optimizer state carries the learning rate and betas it was saved with;
    this run's config decides them (so ``--resume --lr`` anneals instead of being silently ignored)."""
    for name, opt in optimizers.items():
        want = _adam_settings(cfg, ratios[name])
        for group in opt.param_groups:
            if group["lr"] != want["lr"] or tuple(group["betas"]) != want["betas"]:
                log.info("resume: learning rate %.3g -> %.3g, betas %s -> %s", group["lr"], want["lr"],
                         tuple(group["betas"]), want["betas"])
            group["lr"], group["betas"] = want["lr"], want["betas"]


def _parsers(cfg: SIWTrainConfig, info: DistInfo, imgs, device: torch.device, fixed_gen: torch.Generator):
    """The evaluation parser (rank 0, with ``eval_every``) with its colour-diversity reference: up
    to 128 training photos and their regions as the parser reads them (real photo folders come
    without segmaps); and the frozen parser of the semantic loss (``parser_weight``). None where unused."""
    parser = ref_photos = ref_labels = loss_parser = None
    if cfg.eval_every and info.is_main:
        from ..labels import sof_to_sofgan
        from ..parsing import FaceParser

        parser = FaceParser.from_pretrained(cfg.parser).to(device)
        ref_idx = torch.randperm(len(imgs), generator=fixed_gen)[:EVAL_DIVERSITY_PHOTOS]
        ref_photos = imgs.batch(ref_idx)
        with torch.no_grad():
            ref_labels = sof_to_sofgan(parser.parse(ref_photos.to(device)).cpu())
    if cfg.parser_weight > 0:
        from ..parsing import FaceParser

        loss_parser = FaceParser.from_pretrained(cfg.loss_parser).to(device).eval().requires_grad_(False)
    return parser, (ref_photos, ref_labels), loss_parser


#: The values a SIW log record averages (each over the steps that have it).
LOGGED = ("d_loss", "g_loss", "r1", "pl", "real_score", "fake_score", "diversity", "semantic")


def _train(images_dir: Path, segmaps_dir: Path, out: Path, mcfg: SIWConfig, cfg: SIWTrainConfig, resume: bool,
           progress: bool, until: int | None, device: torch.device, info: DistInfo, label_set: str,
           limit: int | None, init_from: str | Path | None = None) -> SIWTrainResult:
    imgs, segs, record, init_from = _prepare(images_dir, segmaps_dir, out, mcfg, cfg, resume, info, label_set,
                                             limit, init_from)
    nets, optimizers, ratios, use_amp = _build(mcfg, cfg, device)
    gen = torch.Generator().manual_seed(cfg.seed + 1000 * info.rank)
    spec = CheckpointSpec(out / "checkpoints", nets, "siw_train", mcfg.to_dict(), optimizers, gen, "train/rank{rank}",
                          keep=cfg.keep_checkpoints, extra={"world_size": info.world_size, "train_config": cfg.to_dict()})
    loop = TrainLoop("train_siw", out, steps=cfg.steps, until=until, log_every=cfg.log_every,
                     checkpoint_every=cfg.checkpoint_every, checkpoint=spec, means=RunningMeans(LOGGED), info=info,
                     device=device, progress=progress)
    if loop.resume(latest_checkpoint(spec.directory), resume=resume) is not None:
        _apply_optimizer_config(optimizers, ratios, cfg)
    if init_from is not None and loop.start == 0:
        _init_from(nets, init_from)

    # fixed samples for the grids and evaluation (independent of the training stream)
    fixed_gen = torch.Generator().manual_seed(cfg.seed + 12345)
    fixed_idx = torch.randperm(len(segs), generator=fixed_gen)[: cfg.sample_count]
    fixed = (segs.batch(fixed_idx), torch.randn(4, mcfg.style_dim, generator=fixed_gen).to(device))
    parser, reference, loss_parser = _parsers(cfg, info, imgs, device, fixed_gen)
    stepper = _SIWStepper(nets, optimizers, cfg, imgs, segs, gen, device, info, use_amp, loss_parser, loop.means,
                          rampup=init_from is None)
    write_samples, evaluate = _siw_hooks(nets, cfg, segs, out, fixed, parser, reference, loop.logger)

    def sample_hook(step: int) -> None:
        write_samples(step)
        nets.g.train()

    def train_record(done: int, means: dict, ran: int, seconds: float) -> dict:
        return {"event": "train", "step": done, **means, "images_per_s": ran * stepper.batch_total / seconds,
                "pl_mean": float(nets.pl_mean)}

    def finish() -> Path:
        if parser is not None:
            loop.metrics = evaluate(cfg.steps)
        write_samples(cfg.steps)
        nets.g_ema.eval()
        model_dir = nets.g_ema.save_pretrained(out / "model")
        write_training_json(model_dir, record, cfg.steps, loop.metrics)
        log.info("trained SIW generator (EMA) saved to %s", model_dir)
        return model_dir

    loop.hooks += [Hook(cfg.sample_every, sample_hook, before_end=False), Hook(cfg.eval_every, evaluate)]
    nets.g.train()
    nets.d.train()
    loop.run(stepper, train_record,
             postfix=lambda r: {"d": f"{r.get('d_loss', 0):.3f}", "g": f"{r.get('g_loss', 0):.3f}"})
    model_dir = loop.finish(finish)
    return SIWTrainResult(generator=nets.g_ema, out=out, step=loop.step, finished=loop.finished,
                          metrics=loop.metrics, model_dir=model_dir)


def _siw_hooks(nets: SIWNetworks, cfg: SIWTrainConfig, segs, out: Path, fixed: tuple, parser, reference: tuple,
               logger):
    """``write_samples(step)`` (a grid from G_ema into ``out/samples``) and ``evaluate(step)`` (the
    parser mIoU and colour diversity of G_ema's samples, logged)."""
    def write_samples(step: int) -> None:
        from PIL import Image

        grid = sample_grid(nets.g_ema, *fixed)
        Image.fromarray(grid).save(out / "samples" / f"step_{step:08d}.png")

    def evaluate(step: int) -> dict:
        from ..metrics.texture import segmentation_consistency, style_color_diversity

        t0 = time.perf_counter()
        rep = segmentation_consistency(nets.g_ema, parser, segs.data[: cfg.eval_count], seed=cfg.seed,
                                       batch=cfg.batch)
        div = style_color_diversity(nets.g_ema, segs.data[: EVAL_DIVERSITY_GEOMETRIES], *reference,
                                    n_styles=EVAL_DIVERSITY_STYLES, n_geometries=min(EVAL_DIVERSITY_GEOMETRIES,
                                                                                       len(segs)),
                                    seed=cfg.seed, batch=max(cfg.batch, 16))
        rep = {"event": "eval", "step": step, "parser_miou": rep["miou"],
               **{f"diversity_{k}": (v if math.isfinite(v) else None) for k, v in div["ratio"].items()},
               "seconds": round(time.perf_counter() - t0, 2)}
        logger.log(rep)
        log.info("step %d: parser mIoU of G_ema samples %.4f; colour diversity vs photos %s", step,
                 rep["parser_miou"], ", ".join(f"{k} {v:.2f}" for k, v in div["ratio"].items()))  # nan: no region
        return rep

    return write_samples, evaluate


class _SIWStepper:
    """The step function of :class:`TrainLoop`: the D step (lazy R1), the G step (optional diversity
    and semantic terms, lazy path-length penalty) and the EMA; the values go to ``means``."""

    def __init__(self, nets: SIWNetworks, optimizers: dict, cfg: SIWTrainConfig, imgs, segs, gen: torch.Generator,
                 device: torch.device, info: DistInfo, use_amp: bool, loss_parser, means: RunningMeans, *,
                 rampup: bool):
        self.nets, self.g, self.d, self.optimizers, self.cfg = nets, nets.g, nets.d, optimizers, cfg
        self.imgs, self.segs, self.gen, self.device, self.info = imgs, segs, gen, device, info
        self.use_amp, self.loss_parser, self.means, self.rampup = use_amp, loss_parser, means, rampup
        self.channels_last = cfg.channels_last and device.type == "cuda"
        self.batch_total = cfg.batch * info.world_size
        self.g_params, self.d_params = list(nets.g.parameters()), list(nets.d.parameters())

    def real_batch(self) -> torch.Tensor:
        cfg = self.cfg
        x = self.imgs.batch(_index(len(self.imgs), cfg.batch, self.gen))
        x = augment_batch(x, self.gen, scale_range=(cfg.scale_min, cfg.scale_max), flip=cfg.flip)
        x = x.to(self.device)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def seg_batch(self, n: int) -> torch.Tensor:
        s = self.segs.batch(_index(len(self.segs), n, self.gen))
        return augment_batch(s, self.gen, scale_range=(self.cfg.scale_min, self.cfg.scale_max), flip=self.cfg.flip,
                             labels=True)

    def fake(self, n: int, *, grad: bool, latents_grad: bool = False, pairs: bool = False):
        if pairs:  # samples i and i + n // 2 share one segmap (the diversity term's pairs)
            half = n // 2
            s0 = self.seg_batch(n - half)
            s = torch.cat([s0[:half], s0])
        else:
            s = self.seg_batch(n)
        region = bool(torch.rand((), generator=self.gen) < self.cfg.region_mix_prob)
        noise = _noise(self.g, self.cfg, n, self.gen)
        with torch.set_grad_enabled(grad):
            kwargs, lat = _styles(self.g, s, self.cfg, self.gen, self.device, region=region)
            if latents_grad:
                lat = lat.detach().requires_grad_(True)
            img = self.g(s.to(self.device), latents=lat, noise=noise, **kwargs)
        return img, lat, s

    def autocast(self):
        return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=self.use_amp)

    def _update(self, name: str, loss: torch.Tensor) -> None:
        opt = self.optimizers[name]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        _sync_grads(self.g_params if name == "g" else self.d_params, self.info)
        opt.step()

    def __call__(self, step: int) -> None:
        self.d_step(step)
        self.g_step(step)
        done = step + 1
        _ema_update(self.nets.g_ema, self.g, _ema_beta(self.cfg, done * self.batch_total, self.batch_total,
                                                       rampup=self.rampup))

    def d_step(self, step: int) -> None:
        cfg, d, add = self.cfg, self.d, self.means.add
        self.g.requires_grad_(False)
        d.requires_grad_(True)
        real = self.real_batch()
        with self.autocast():
            fake_img, _, _ = self.fake(cfg.batch, grad=False)
            fake_pred = d(fake_img.detach())
            real_pred = d(real)
            d_loss = d_logistic_loss(real_pred.float(), fake_pred.float())
        self._update("d", d_loss)
        add("d_loss", float(d_loss.detach()))
        add("real_score", float(real_pred.detach().float().mean()))
        add("fake_score", float(fake_pred.detach().float().mean()))
        if step % cfg.d_reg_every == 0 and cfg.r1_gamma > 0:
            real = real.detach().requires_grad_(True)
            real_pred = d(real)
            r1 = r1_penalty(real_pred, real)
            self._update("d", cfg.r1_gamma / 2 * r1 * cfg.d_reg_every + 0 * real_pred[0, 0])
            add("r1", float(r1.detach()))

    def g_step(self, step: int) -> None:
        cfg, add = self.cfg, self.means.add
        self.g.requires_grad_(True)
        self.d.requires_grad_(False)
        with self.autocast():
            pairs = cfg.diversity_weight > 0
            fake_img, fake_lat, fake_seg = self.fake(cfg.batch, grad=True, pairs=pairs)
            g_loss = g_nonsaturating_loss(self.d(fake_img).float())
            g_total = g_loss
            if pairs:
                div_ratio = (region_diversity_ratio(fake_img, fake_lat, fake_seg)
                             if cfg.diversity_mode == "regions" else diversity_ratio(fake_img, fake_lat))
                g_total = g_total - cfg.diversity_weight * div_ratio.clamp(max=cfg.diversity_tau).mean()
                add("diversity", float(div_ratio.detach().mean()))
            if self.loss_parser is not None:
                sem = parser_segmap_loss(self.loss_parser, fake_img, fake_seg)
                g_total = g_total + cfg.parser_weight * sem
                add("semantic", float(sem.detach()))
        self._update("g", g_total)
        add("g_loss", float(g_loss.detach()))
        if step % cfg.g_reg_every == 0 and cfg.pl_weight > 0:
            self.path_length_step()

    def path_length_step(self) -> None:
        cfg, nets, info = self.cfg, self.nets, self.info
        n_pl = max(1, cfg.batch // cfg.pl_batch_shrink)
        img, lat, _ = self.fake(n_pl, grad=True, latents_grad=True)
        pl_noise = torch.randn(img.shape, generator=self.gen).to(self.device) / math.sqrt(img.shape[2] * img.shape[3])
        (grad,) = torch.autograd.grad((img * pl_noise).sum(), lat, create_graph=True)
        lengths = grad.pow(2).sum(-1).mean(-1).mean(-1).sqrt()          # [N]
        with torch.no_grad():
            mean_len = lengths.mean()
            if info.distributed:
                dist.all_reduce(mean_len)
                mean_len /= info.world_size
            nets.pl_mean.copy_(nets.pl_mean.lerp(mean_len, cfg.pl_decay))
        pl_pen = (lengths - nets.pl_mean).pow(2).mean()
        self._update("g", cfg.pl_weight * cfg.g_reg_every * pl_pen + 0 * img[0, 0, 0, 0])
        self.means.add("pl", float(pl_pen.detach()))


# ------------------------------------------------------------------------------------------
# loading and evaluating a trained generator
# ------------------------------------------------------------------------------------------

def load_siw_generator(path: str | Path, *, which: str = "g_ema", map_location: Any = "cpu") -> SIWGenerator:
    """The generator of ``path``, in eval mode.

    ``path`` is ``"demo"``, a saved generator folder (``save_pretrained``), a run folder (its
    ``model/`` when training finished, else its newest checkpoint) or one checkpoint folder
    (``RUN/checkpoints/step_N``). From a checkpoint, ``which`` picks ``"g_ema"`` (default, what
    training exports) or the raw ``"g"``. Nothing is unpickled: safetensors and JSON only.
    """
    from ..io.checkpoints import load_module

    if which not in ("g_ema", "g"):
        raise ValueError(f"which: expected 'g_ema' or 'g', got {which!r}")
    p = _siw_source(path)
    if p == "demo":
        return SIWGenerator.from_pretrained("demo", map_location=map_location).eval()
    if (p / "trainer.json").is_file():
        nets = load_module(SIWNetworks, p, kind="siw_train", config_cls=SIWConfig, map_location=map_location)
        return getattr(nets, which).eval()
    if which != "g_ema":
        raise ValueError(f"which: {p} is a saved generator (it holds G_ema only); 'g' needs a checkpoint folder")
    return SIWGenerator.from_pretrained(p, map_location=map_location).eval()


def _siw_source(path: str | Path, name: str = "path") -> Path | str:
    """``"demo"``, or the folder to read for ``path``: a checkpoint folder (``trainer.json``), a saved
    generator (``config.json``), a run's ``model/`` or, before it exists, its newest checkpoint."""
    from .common import latest_checkpoint

    if str(path) == "demo":
        return "demo"
    p = Path(path)
    if not p.is_dir():
        raise ValueError(f"{name}: {p} is not a folder (expected 'demo', a model, run or checkpoint folder)")
    if not (p / "trainer.json").is_file() and not (p / "config.json").is_file():
        if (p / "model" / "config.json").is_file():
            p = p / "model"
        else:
            newest = latest_checkpoint(p / "checkpoints")
            if newest is None:
                raise ValueError(f"{name}: {p} holds no model/, no checkpoints/step_N and no config.json")
            p = newest
    return p


def _widened(target: nn.Module, key: str, want: torch.Tensor, have: torch.Tensor) -> torch.Tensor:
    """``have`` (a source tensor) placed in the leading block of the wider ``want`` so that the wider
    network computes the same function: weights from the new input channels are zero (the new
    channels do not reach the old ones), the new output channels keep ``want``'s fresh init (their
    downstream weights are zero), except SPADE γ/β rows, which are zero (identity). Equalised-lr
    layers scale their weight by 1/sqrt(fan-in) at run time, so the copied block is rescaled by
    sqrt(new fan-in / old fan-in)."""
    owner, _, leaf = key.rpartition(".")
    module = target.get_submodule(owner)
    out = torch.zeros_like(want) if (".mlp_gamma." in key or ".mlp_beta." in key) else want.clone()
    in_dim = {5: 2, 4: 1, 2: 1}.get(want.dim()) if leaf == "weight" else None
    factor = 1.0
    if in_dim is not None and want.shape[in_dim] > have.shape[in_dim]:
        out.narrow(in_dim, have.shape[in_dim], want.shape[in_dim] - have.shape[in_dim]).zero_()
        if hasattr(module, "scale"):
            factor = math.sqrt(want.shape[in_dim] / have.shape[in_dim])
    out[tuple(slice(0, n) for n in have.shape)] = have.to(out.dtype) * factor
    return out


def _init_from(nets: SIWNetworks, source: str | Path) -> dict:
    """Start ``nets`` from the weights of ``source`` (:func:`_siw_source`): G, G_ema and D from a
    checkpoint, G and G_ema from a saved generator (D then starts fresh). The new model may add
    SPADE layers the source lacks (a wider ``spade_min``/``spade_max``): they start as the identity
    (γ = β = 0), so the first images equal the source's. It may also be wider (``channels`` larger
    at some resolutions of 8 and above, as ``--channels``): the old channels keep their weights,
    the new ones start disconnected from them (:func:`_widened`), so again the first images and D's
    scores equal the source's. Anything else that differs is an error."""
    from ..io.checkpoints import load_module

    p = _siw_source(source, "init_from")
    if p != "demo" and (p / "trainer.json").is_file():
        src = load_module(SIWNetworks, p, kind="siw_train", config_cls=SIWConfig)
        parts = {"g": src.g, "g_ema": src.g_ema, "d": src.d}
    else:
        g = SIWGenerator.from_pretrained(p)
        parts = {"g": g, "g_ema": g}
    src_cfg, cfg = parts["g"].config, nets.g.config
    narrower = {r: (src_cfg.channels.get(r), c) for r, c in cfg.channels.items()
                if r not in src_cfg.channels or c < src_cfg.channels[r] or (r == 4 and c != src_cfg.channels[r])}
    if narrower:
        raise ValueError(f"init_from: {source} does not fit this model: widths (source, new) {narrower}; the new "
                         f"model may only be wider, at resolutions of 8 and above, at the same size")
    widened = {r: (src_cfg.channels[r], c) for r, c in sorted(cfg.channels.items()) if c != src_cfg.channels[r]}
    added: set[str] = set()
    for name, module in parts.items():
        target = getattr(nets, name)
        have, want = module.state_dict(), target.state_dict()
        missing = sorted(k for k in want if k not in have)
        extra = sorted(k for k in have if k not in want)
        grown = [k for k in missing if ".segEncoder." in k]
        bad = [k for k in want if k in have and have[k].shape != want[k].shape
               and (not widened or have[k].dim() != want[k].dim()
                    or any(a > b for a, b in zip(have[k].shape, want[k].shape)))]
        if extra or bad or len(grown) != len(missing):
            raise ValueError(f"init_from: {source} does not fit this model ({name}): "
                             f"missing {[k for k in missing if k not in grown][:4]}, unexpected {extra[:4]}, "
                             f"other shapes {bad[:4]}; only SPADE layers and wider channels may be added")
        state = {k: (have[k] if have[k].shape == want[k].shape else _widened(target, k, want[k], have[k]))
                 for k in want if k in have}
        target.load_state_dict({**want, **state}, strict=True)
        params = dict(target.named_parameters())
        with torch.no_grad():
            for k in grown:
                if ".mlp_gamma." in k or ".mlp_beta." in k:
                    params[k].zero_()
        added.update(k.split(".segEncoder.")[0] for k in grown)
    log.info("init_from: weights of %s (%s)%s%s", source, ", ".join(parts),
             f"; new SPADE layers start as the identity: {sorted(added)}" if added else "",
             f"; widened (resolution: old -> new channels) {widened}, the new channels start disconnected"
             if widened else "")
    return {"source": str(source), "networks": sorted(parts), "new_spade_layers": sorted(added),
            "widened": {str(r): list(v) for r, v in widened.items()}}


def evaluate_siw(generator: SIWGenerator, parser: Any, segmaps: Any, *, seed: int = 0, truncation: float = 1.0,
                 group: str = "hair", dilation: int = 5, batch: int = 8, photos: torch.Tensor | None = None,
                 photo_segmaps: Any = None, n_styles: int = 128, n_geometries: int = 8) -> dict:
    """The demo texture model's targets on ``segmaps`` (SofGAN-17 ids ``[N, H, W]``):

    * ``miou``: the parser's mIoU of the generated images against their input segmaps (one random
      style per segmap; :func:`~sofgan_lab.metrics.texture.segmentation_consistency`), with the
      per-class IoU (``eye_g``: are glasses drawn?) and pixel accuracy;
    * ``leak_outside`` / ``leak_inside``: the mean absolute pixel change (in [0, 1] units) when only
      ``group``'s style changes, outside that region dilated by ``dilation`` pixels and inside it,
      and ``mix_delta_e``: how far the region's mean colour moves then (CIE76 ΔE; the region mixer
      going 0 → 1) (:func:`~sofgan_lab.metrics.texture.region_edit_leakage`);
    * with ``photos`` (``(M, 3, H, W)`` in [-1, 1]) and their SofGAN-17 ``photo_segmaps``:
      ``diversity_ratio`` per region (hair, skin, cloth, background; ``n_styles`` styles on
      ``n_geometries`` segmaps, :func:`~sofgan_lab.metrics.texture.style_color_diversity`),
      ``photo_delta_e`` (the mean ΔE of ``group``'s colour between two photos) and
      ``mix_delta_e_ratio`` = ``mix_delta_e / photo_delta_e``.
    """
    from ..metrics.texture import (photo_region_delta_e, region_edit_leakage, segmentation_consistency,
                                   style_color_diversity)

    seg = segmentation_consistency(generator, parser, segmaps, seed=seed, batch=batch, truncation=truncation)
    leak = region_edit_leakage(generator, segmaps, group, seed=seed, batch=batch, dilation=dilation)
    out = {"miou": seg["miou"], "pixel_accuracy": seg["pixel_accuracy"], "count": seg["count"],
           "truncation": truncation, "seed": seed, "group": group, "dilation": dilation,
           "leak_outside": leak["outside"], "leak_inside": leak["inside"], "mix_delta_e": leak["delta_e"]}
    if photos is not None:
        if photo_segmaps is None:
            raise ValueError("photo_segmaps: needed with photos (the regions of each photo)")
        div = style_color_diversity(generator, segmaps, photos, photo_segmaps, n_styles=n_styles,
                                    n_geometries=min(n_geometries, int(seg["count"])), seed=seed,
                                    truncation=truncation, batch=max(batch, 16))
        ref = photo_region_delta_e(photos, photo_segmaps, group)
        out.update(diversity_ratio=div["ratio"], diversity_generated=div["generated"],
                   diversity_photos=div["photos"], diversity_styles=div["n_styles"],
                   diversity_geometries=div["n_geometries"], photos=div["n_photos"],
                   photo_delta_e=ref["delta_e"],
                   mix_delta_e_ratio=leak["delta_e"] / ref["delta_e"] if ref["delta_e"] > 0 else float("nan"))
    out["per_class"] = seg["per_class"]
    return out
