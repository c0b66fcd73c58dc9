"""Training and evaluating the face parser on synthetic photos with their segmaps.

``train_parser(PHOTOS, OUT)`` fits a :class:`~sofgan_lab.parsing.model.FaceParser` to the photos of
a folder written by ``sofgan-lab synth photos ... --with-segmaps`` (paired photos and SOF-20
segmaps; the pairing is used for this evaluation tool only, never for texture training). Each step
draws ``batch_size`` random photos and one random crop of each, augments them, and minimises the
(class-weighted, see below) cross-entropy plus a soft Dice loss with Adam, linear warm-up and cosine decay.

Augmentations (all drawn from one seeded ``torch.Generator``, so a run is reproducible and resumes
exactly), in this order:

* geometry: for a share ``scale_prob`` of the crops a random scale in ``[scale_min, scale_max]``
  (the others are pixel-aligned, exact crops), and a crop of ``crop`` pixels centred, for
  a share ``face_crop_fraction`` of the crops, in the box of the small face parts (brows, eyes,
  nose, mouth, lips, ears, earrings, glasses, necklace) and elsewhere anywhere in the photo; with
  ``crop=0`` whole photos with a random shift of up to ``shift`` of their side. Photos are
  resampled bilinearly, labels by nearest neighbour (border pixels repeated);
* horizontal flip (``flip_prob``): the mirrored photo with mirrored labels whose left/right ids
  are swapped (:func:`sofgan_lab.labels.flip_horizontal`);
* colour: brightness, contrast, saturation and per-channel gains (a hue-like shift);
* resolution loss (``resample_prob``): 2x average-pool down and bilinear up (upsampler blur);
* Gaussian blur (``blur_prob``, sigma in [0.3, ``blur_sigma_max``] pixels);
* additive Gaussian noise (``noise_prob``, std in [0, ``noise_std_max``] of the [0, 1] range).

Class weights: the cross-entropy starts with median-frequency weights ``w_c`` (``class_weight_power``
0.5, clipped to ``max_class_weight``) and ends unweighted: at step ``t`` of ``T`` the weights are
``w_c ** (1 - t / T)``. Measured on the demo data (3000 photos, the demo's settings, 100 held-out
photos of seed 4): constant weights learn the small parts fast but over-predict them (recall ~0.9, precision
~0.4-0.6 on brows, ears, earrings, necklace; mIoU 0.61 after 2000 steps), no weights learn them
slowly (mIoU 0.35 after 1000 steps, 0.55 after 2000, brows and earrings still near 0); annealing
keeps the fast start and ends with an unbiased (unweighted) objective (mIoU 0.59 after 1000 steps,
0.68 after 2000). These runs: 64-px crops, batch 16, lr 2e-3, float32, bilinear upsampling.

Soft Dice (``dice_weight``, :func:`soft_dice_loss`): with it the demo run reached a held-out mIoU of
0.720 after 2000 steps and 0.835 at the end (9500 steps, 300 photos), without it (otherwise the same,
10000 steps, the same ~22 min) 0.640 and 0.787: the Dice term lifts the thin parts (brows, ears,
earrings, necklace) whose IoU the cross-entropy barely sees.

Run folder (as :func:`sofgan_lab.train.sof_trainer.train_sof`)::

    OUT/run.json                the run's configs and data (written at the start)
    OUT/metrics.jsonl           one JSON line per log/eval event
    OUT/checkpoints/step_N/     the newest ``keep_checkpoints`` checkpoints (see train.common)
    OUT/model/                  the final parser (``save_pretrained``) + ``training.json``

``resume=True`` continues from the newest checkpoint exactly (bit for bit on a CPU): model,
optimizer, schedule, the augmentation generator and the log's running means (the records equal
an uninterrupted run's) are restored.
"""
from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .. import __version__
from ..images import from_uint8, read_image
from ..io.checkpoints import read_json
from ..labels import NUM_SOF_CLASSES, SOF, SOF20_NAMES, flip_horizontal
from ..confusion import ConfusionMatrix
from ..parsing.model import KIND, FaceParser, FaceParserConfig
from .common import TrainConfigBase, DistInfo, latest_checkpoint, make_warmup_cosine, resolve_device
from .loop import config_or_default
from .loop import (CheckpointSpec, Hook, RunningMeans, TrainLoop, check_resume_record, check_run_folder,
                   check_until, seed_everything, write_run_record, write_training_json)

__all__ = ["ParserTrainConfig", "ParserTrainResult", "PhotoSet", "train_parser", "evaluate_parser",
           "degrade", "gaussian_blur", "hflip", "augment_batch", "class_weights", "soft_dice_loss", "DETAIL_CLASSES"]

log = logging.getLogger(__name__)

#: SOF-20 ids of the small face parts that face-centred crops aim at.
DETAIL_CLASSES: tuple[int, ...] = tuple(int(c) for c in (
    SOF.L_BROW, SOF.R_BROW, SOF.L_EYE, SOF.R_EYE, SOF.R_NOSE, SOF.L_NOSE, SOF.MOUTH, SOF.U_LIP, SOF.L_LIP,
    SOF.L_EAR, SOF.R_EAR, SOF.EAR_R, SOF.EYE_G, SOF.NECK_L))


# ------------------------------------------------------------------------------------------
# configuration
# ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ParserTrainConfig(TrainConfigBase):
    """Hyper-parameters of :func:`train_parser`. The demo parser: these defaults with ``steps=9500``,
    ``eval_every=2000`` and ``amp=True`` (``data/demo/README.md``)."""

    steps: int = 5000             # optimisation steps in all (the schedule's length)
    batch_size: int = 16          # crops per step
    crop: int = 64                # side of the training crops, a multiple of the model's 16 (0 = whole photos)
    face_crop_fraction: float = 0.75  # share of crops centred in the face parts' box (else anywhere)
    lr: float = 2e-3              # peak learning rate (Adam)
    warmup_steps: int = 100       # linear warm-up steps (0 = none)
    min_lr_ratio: float = 0.02    # LR at the end of the cosine decay, as a fraction of lr
    class_weight_power: float = 0.5  # CE weights (median frequency / frequency) ** power (0 = unweighted)
    max_class_weight: float = 10.0   # upper bound of a class weight
    class_weight_anneal: bool = True  # the weights' exponent falls linearly to 0 at the last step
    #                                   (False: constant weights; see the module docstring)
    dice_weight: float = 1.0      # weight of the soft Dice loss added to the cross-entropy (0 = none)
    flip_prob: float = 0.5        # horizontal flip (with left/right id swap)
    scale_prob: float = 0.5       # share of crops rescaled (the others are exact, pixel-aligned crops)
    scale_min: float = 0.9        # random scale range
    scale_max: float = 1.1
    shift: float = 0.05           # with crop=0: random shift, as a fraction of the side
    color_jitter: float = 0.2     # strength of brightness/contrast/saturation/gain jitter (0 = none)
    resample_prob: float = 0.15   # 2x down + up sampling
    blur_prob: float = 0.4        # Gaussian blur
    blur_sigma_max: float = 1.5   # largest blur sigma (pixels)
    noise_prob: float = 0.4       # additive Gaussian noise
    noise_std_max: float = 0.08   # largest noise std (fraction of the [0, 1] range)
    checkpoint_every: int = 500   # steps between checkpoints (0 = only at the end)
    keep_checkpoints: int = 2     # newest checkpoints kept
    log_every: int = 50           # steps between JSONL/log records
    eval_every: int = 1000        # steps between held-out evaluations (0 = only at the end)
    eval_count: int = 100         # held-out photos in the evaluations during training (0 = all)
    seed: int = 0                 # model init and the augmentation generator
    amp: bool = False             # bfloat16 autocast for the forward pass (CUDA, or CPUs with AVX512-BF16/AMX:
    #                               ~2x faster there; emulated and slow on other CPUs)
    device: str = "auto"          # "auto", "cpu", "cuda"

    def __post_init__(self):
        ints = {"steps": 1, "batch_size": 1, "crop": 0, "warmup_steps": 0, "checkpoint_every": 0,
                "keep_checkpoints": 1, "log_every": 1, "eval_every": 0, "eval_count": 0, "seed": 0}
        self._check_ints(ints)
        if isinstance(self.lr, bool) or not isinstance(self.lr, (int, float)) or not math.isfinite(self.lr) \
                or self.lr <= 0:
            raise ValueError(f"lr: expected a finite number > 0, got {self.lr!r}")
        nums = ("face_crop_fraction", "min_lr_ratio", "class_weight_power", "max_class_weight", "dice_weight",
                "flip_prob", "scale_prob", "scale_min", "scale_max", "shift", "color_jitter", "resample_prob",
                "blur_prob", "blur_sigma_max", "noise_prob", "noise_std_max")
        for name in nums:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise ValueError(f"{name}: expected a finite number >= 0, got {v!r}")
        for name in ("face_crop_fraction", "min_lr_ratio", "flip_prob", "scale_prob", "resample_prob", "blur_prob",
                     "noise_prob", "color_jitter", "shift"):
            if getattr(self, name) > 1:
                raise ValueError(f"{name}: expected a number in [0, 1], got {getattr(self, name)!r}")
        if self.max_class_weight < 1:
            raise ValueError(f"max_class_weight: expected a number >= 1, got {self.max_class_weight!r}")
        if not 0 < self.scale_min <= self.scale_max:
            raise ValueError(f"scale_min: expected 0 < scale_min <= scale_max, got {self.scale_min!r} "
                             f"and {self.scale_max!r}")
        self._check_bools("class_weight_anneal", "amp")
        if self.warmup_steps > self.steps:
            raise ValueError(f"warmup_steps: expected at most steps ({self.steps}), got {self.warmup_steps}")
        self._check_device()


    @classmethod
    def tiny(cls, **overrides) -> "ParserTrainConfig":
        """A seconds-long CPU configuration for tests and smoke runs."""
        base = dict(steps=20, batch_size=4, crop=32, lr=5e-3, warmup_steps=2, checkpoint_every=10, log_every=5,
                    eval_every=0, eval_count=0, device="cpu")
        base.update(overrides)
        return cls(**base)


@dataclass
class ParserTrainResult:
    """What :func:`train_parser` returns."""

    model: FaceParser              # the trained parser, on the training device
    out: Path                      # the run folder
    step: int                      # steps done
    finished: bool                 # reached config.steps (False when stopped by ``until``)
    metrics: dict = field(default_factory=dict)  # the final held-out evaluation(s), or {}
    model_dir: Path | None = None  # OUT/model when finished


# ------------------------------------------------------------------------------------------
# data
# ------------------------------------------------------------------------------------------

class PhotoSet:
    """A photo folder with segmaps (``sofgan-lab synth photos ... --with-segmaps``) held in memory.

    ``images`` (N, H, W, 3) uint8; ``labels`` (N, H, W) uint8 SOF-20 ids; ``detail_boxes`` (N, 4)
    int64 ``(y0, y1, x0, x1)`` half-open box of the :data:`DETAIL_CLASSES` pixels (the whole image
    where there are none). ``limit`` keeps the first photos only.
    """

    def __init__(self, root: str | os.PathLike, *, limit: int | None = None, name: str = "photos_dir"):
        root = Path(root)
        if not root.is_dir():
            raise ValueError(f"{name}: {root} is not a folder")
        img_dir, seg_dir = root / "images", root / "segmaps"
        if not img_dir.is_dir():
            raise ValueError(f"{name}: {root} has no images/ folder (write one with `sofgan-lab synth photos`)")
        if not seg_dir.is_dir():
            raise ValueError(f"{name}: {root} has no segmaps/ folder (write it with --with-segmaps)")
        files = sorted(p.name for p in img_dir.glob("*.png"))
        if limit is not None:
            if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
                raise ValueError(f"limit: expected an integer >= 1 or None, got {limit!r}")
            files = files[:limit]
        if not files:
            raise ValueError(f"{name}: {img_dir} holds no PNG images")
        missing = [f for f in files if not (seg_dir / f).is_file()]
        if missing:
            raise ValueError(f"{name}: segmaps/ lacks {len(missing)} of the photos' label maps (e.g. {missing[0]})")
        self.root = root
        self.names = files
        imgs, labs = [], []
        for f in files:
            a = np.asarray(read_image(img_dir / f, name).convert("RGB"))
            s = np.asarray(read_image(seg_dir / f, name))
            if s.ndim != 2 or s.shape != a.shape[:2]:
                raise ValueError(f"{name}: segmaps/{f} has shape {s.shape}, expected {a.shape[:2]}")
            if imgs and a.shape != imgs[0].shape:
                raise ValueError(f"{name}: images/{f} has shape {a.shape}, the first photo {imgs[0].shape}")
            imgs.append(a)
            labs.append(s)
        self.images = torch.from_numpy(np.stack(imgs))
        self.labels = torch.from_numpy(np.stack(labs).astype(np.uint8))
        if int(self.labels.max()) >= NUM_SOF_CLASSES:
            raise ValueError(f"{name}: segmaps hold ids up to {int(self.labels.max())}, "
                             f"expected SOF-20 ids 0..{NUM_SOF_CLASSES - 1}")
        self.index = read_json(root / "index.json", name) if (root / "index.json").is_file() else {}
        self.detail_boxes = self._boxes()
        log.info("loaded %d photos of %dx%d from %s", len(self), self.size[0], self.size[1], root)

    def _boxes(self) -> torch.Tensor:
        lut = torch.zeros(256, dtype=torch.bool)
        lut[list(DETAIL_CLASSES)] = True
        mask = lut[self.labels.long()]
        N, H, W = mask.shape
        rows, cols = mask.any(2), mask.any(1)
        ar_h, ar_w = torch.arange(H), torch.arange(W)
        has = rows.any(1)
        y0 = torch.where(rows, ar_h, H).amin(1)
        y1 = torch.where(rows, ar_h, -1).amax(1) + 1
        x0 = torch.where(cols, ar_w, W).amin(1)
        x1 = torch.where(cols, ar_w, -1).amax(1) + 1
        box = torch.stack([y0, y1, x0, x1], 1)
        whole = torch.tensor([0, H, 0, W])
        return torch.where(has[:, None], box, whole).long()

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def size(self) -> tuple[int, int]:
        """(H, W) of the photos."""
        return int(self.images.shape[1]), int(self.images.shape[2])

    def class_counts(self) -> np.ndarray:
        """(20,) int64 pixel counts per SOF-20 id."""
        return np.bincount(self.labels.numpy().reshape(-1), minlength=NUM_SOF_CLASSES).astype(np.int64)


def class_weights(counts: np.ndarray, power: float, max_weight: float) -> torch.Tensor:
    """(C,) float32 CE weights ``clip((median frequency / frequency) ** power, 1 / max_weight,
    max_weight)`` over the classes that occur (the others get 1); ``power=0`` gives ones."""
    counts = np.asarray(counts, dtype=np.float64)
    w = np.ones_like(counts)
    present = counts > 0
    if power > 0 and present.any():
        freq = counts[present] / counts.sum()
        w[present] = np.clip((np.median(freq) / freq) ** power, 1.0 / max_weight, max_weight)
    return torch.tensor(w, dtype=torch.float32)


# ------------------------------------------------------------------------------------------
# augmentation and degradation (all on (N, 3, H, W) float in [-1, 1])
# ------------------------------------------------------------------------------------------

def _gaussian_kernels(sigma: torch.Tensor, radius: int) -> torch.Tensor:
    """(N, 2r+1) normalised 1-D Gaussian kernels; sigma <= 0 gives a delta."""
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    s = sigma.float().clamp_min(1e-6)[:, None]
    k = torch.exp(-0.5 * (x[None] / s) ** 2)
    k = k / k.sum(1, keepdim=True)
    delta = (x == 0).float()[None].expand_as(k)
    return torch.where((sigma > 0)[:, None], k, delta)


def gaussian_blur(images: torch.Tensor, sigma: float | torch.Tensor) -> torch.Tensor:
    """Blur ``images`` (N, C, H, W) with a Gaussian of ``sigma`` pixels (a number or one per image,
    (N,)); reflect padding, kernel radius ``ceil(3 * max sigma)``. Sigma 0 leaves an image as is."""
    N, C, H, W = images.shape
    sig = torch.as_tensor(sigma, dtype=torch.float32).reshape(-1)
    if sig.numel() == 1:
        sig = sig.expand(N)
    if sig.numel() != N:
        raise ValueError(f"sigma: expected a number or {N} values, got {sig.numel()}")
    smax = float(sig.max()) if N else 0.0
    if smax <= 0:
        return images
    r = max(1, math.ceil(3 * smax))
    r = min(r, H - 1, W - 1)
    k = _gaussian_kernels(sig, r).to(images)                     # (N, K)
    k = k.repeat_interleave(C, 0)                                # (N*C, K)
    x = images.reshape(1, N * C, H, W)
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode="reflect"), k[:, None, None, :], groups=N * C)
    x = F.conv2d(F.pad(x, (0, 0, r, r), mode="reflect"), k[:, None, :, None], groups=N * C)
    return x.reshape(N, C, H, W)


def degrade(images: torch.Tensor, *, blur_sigma: float = 0.0, noise_std: float = 0.0,
            generator: torch.Generator | None = None, seed: int | None = None) -> torch.Tensor:
    """GAN-like degradation for robustness checks: Gaussian blur of ``blur_sigma`` pixels, then
    additive Gaussian noise of std ``noise_std`` **in units of the [0, 1] range** (``0.05`` is
    ±12.75 grey levels; it is ``2 * noise_std`` on the [-1, 1] scale), then clipping to [-1, 1].

    ``images`` (N, 3, H, W) float in [-1, 1] -> same shape. The noise comes from ``generator`` or,
    if None, from a CPU generator seeded with ``seed`` (default 0): the same seed, the same result.
    """
    if not isinstance(images, torch.Tensor) or not images.is_floating_point() or images.dim() != 4:
        raise ValueError(f"images: expected a float tensor (N, C, H, W), got "
                         f"{getattr(images, 'shape', type(images).__name__)}")
    for name, v in (("blur_sigma", blur_sigma), ("noise_std", noise_std)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
            raise ValueError(f"{name}: expected a finite number >= 0, got {v!r}")
    x = gaussian_blur(images, float(blur_sigma)) if blur_sigma > 0 else images
    if noise_std > 0:
        g = generator if generator is not None else torch.Generator().manual_seed(0 if seed is None else seed)
        noise = torch.randn(x.shape, generator=g, dtype=torch.float32).to(x)
        x = x + 2.0 * float(noise_std) * noise
    return x.clamp(-1.0, 1.0)


def hflip(images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mirror ``images`` (N, C, H, W) and ``labels`` (N, H, W) SOF-20 ids left-right; the labels'
    left/right ids are swapped (:func:`sofgan_lab.labels.flip_horizontal`), as for a mirrored photo."""
    return images.flip(-1), flip_horizontal(labels, "sof20")


def _uniform(g: torch.Generator, n: int, lo: float, hi: float) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=g)


def _sample_geometry(ps: PhotoSet, idx: torch.Tensor, cfg: ParserTrainConfig, g: torch.Generator):
    """Sampling grids (B, K, K, 2) for the photos ``idx``: scale and crop centre (see the module docstring)."""
    B = idx.numel()
    H, W = ps.size
    K = cfg.crop if cfg.crop else None
    kh, kw = (K, K) if K else (H, W)
    scaled = torch.rand(B, generator=g) < cfg.scale_prob
    scale = torch.where(scaled, _uniform(g, B, cfg.scale_min, cfg.scale_max), torch.ones(B))
    if K:
        face = torch.rand(B, generator=g) < cfg.face_crop_fraction
        box = ps.detail_boxes[idx].float()
        fy, fx = torch.rand(B, generator=g), torch.rand(B, generator=g)
        cy_face = box[:, 0] + fy * (box[:, 1] - box[:, 0])
        cx_face = box[:, 2] + fx * (box[:, 3] - box[:, 2])
        uy, ux = torch.rand(B, generator=g), torch.rand(B, generator=g)
        cy = torch.where(face, cy_face, uy * H)
        cx = torch.where(face, cx_face, ux * W)
    else:
        sy, sx = _uniform(g, B, -cfg.shift, cfg.shift), _uniform(g, B, -cfg.shift, cfg.shift)
        cy, cx = H / 2 + sy * H, W / 2 + sx * W
    # unscaled crops are pixel-aligned: an exact copy of photo and labels (no resampling)
    cy = torch.where(scaled, cy, (cy - kh / 2).round() + kh / 2)
    cx = torch.where(scaled, cx, (cx - kw / 2).round() + kw / 2)
    # output pixel u (centre u + 0.5) -> source position c + (u + 0.5 - k/2) / scale (continuous coords)
    v = (torch.arange(kh, dtype=torch.float32) + 0.5 - kh / 2)[None] / scale[:, None]
    u = (torch.arange(kw, dtype=torch.float32) + 0.5 - kw / 2)[None] / scale[:, None]
    ys = 2 * (cy[:, None] + v) / H - 1                           # (B, kh) normalised (align_corners=False)
    xs = 2 * (cx[:, None] + u) / W - 1                           # (B, kw)
    grid = torch.stack([xs[:, None, :].expand(B, kh, kw), ys[:, :, None].expand(B, kh, kw)], -1)
    return grid


def _color(x01: torch.Tensor, strength: float, g: torch.Generator) -> torch.Tensor:
    B = x01.shape[0]
    s = strength
    bright = _uniform(g, B, -s / 2, s / 2)[:, None, None, None]
    contrast = _uniform(g, B, 1 - s, 1 + s)[:, None, None, None]
    sat = _uniform(g, B, 1 - 2 * s, 1 + 2 * s).clamp_min(0)[:, None, None, None]
    gain = (1 + _uniform(g, B * 3, -s / 2, s / 2)).reshape(B, 3, 1, 1)
    x = x01 * gain
    gray = x.mean(1, keepdim=True)
    x = gray + (x - gray) * sat
    mean = x.mean((1, 2, 3), keepdim=True)
    x = (x - mean) * contrast + mean + bright
    return x.clamp(0, 1)


def augment_batch(ps: PhotoSet, idx: torch.Tensor, cfg: ParserTrainConfig, g: torch.Generator
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """One augmented training batch of the photos ``idx`` (B,) of ``ps``: images (B, 3, K, K) float
    in [-1, 1] and labels (B, K, K) int64 SOF-20 ids (K = ``cfg.crop``, or the photo size with 0).
    Every random number comes from ``g`` in a fixed order (reproducible, exact resume)."""
    B = idx.numel()
    img = from_uint8(ps.images[idx].permute(0, 3, 1, 2))
    lab = ps.labels[idx].float()[:, None]
    grid = _sample_geometry(ps, idx, cfg, g)
    img = F.grid_sample(img, grid, mode="bilinear", padding_mode="border", align_corners=False)
    lab = F.grid_sample(lab, grid, mode="nearest", padding_mode="border", align_corners=False)[:, 0].round().long()
    flip = torch.rand(B, generator=g) < cfg.flip_prob
    if flip.any():
        fi, fl = hflip(img[flip], lab[flip])
        img, lab = img.clone(), lab.clone()
        img[flip], lab[flip] = fi, fl
    x01 = (img + 1) / 2
    if cfg.color_jitter > 0:
        x01 = _color(x01, cfg.color_jitter, g)
    res = (torch.rand(B, generator=g) < cfg.resample_prob)[:, None, None, None]
    if res.any():
        low = F.interpolate(F.avg_pool2d(x01, 2), size=x01.shape[-2:], mode="bilinear", align_corners=False)
        x01 = torch.where(res, low, x01)
    blur = torch.rand(B, generator=g) < cfg.blur_prob
    sigma = torch.where(blur, _uniform(g, B, 0.3, max(cfg.blur_sigma_max, 0.3)), torch.zeros(B))
    if cfg.blur_sigma_max > 0:
        x01 = gaussian_blur(x01, sigma)
    noisy = torch.rand(B, generator=g) < cfg.noise_prob
    std = torch.where(noisy, _uniform(g, B, 0.0, cfg.noise_std_max), torch.zeros(B))[:, None, None, None]
    x01 = x01 + std * torch.randn(x01.shape, generator=g)
    return (x01.clamp(0, 1) * 2 - 1), lab


def soft_dice_loss(logits: torch.Tensor, labels: torch.Tensor, eps: float = 1.0, *,
                   log_probs: torch.Tensor | None = None) -> torch.Tensor:
    """``1 - mean_c dice_c`` over the classes present in ``labels``, with the soft Dice
    ``dice_c = (2 sum(p_c y_c) + eps) / (sum(p_c) + sum(y_c) + eps)`` summed over the whole batch.

    ``logits`` (B, C, H, W) float; ``labels`` (B, H, W) int64 ids; ``log_probs``: their
    ``log_softmax(1)`` if already computed. A differentiable stand-in for the IoU of every class,
    small parts weighing as much as the background."""
    C = logits.shape[1]
    p = (log_probs if log_probs is not None else logits.float().log_softmax(1)).exp()
    flat = labels.reshape(-1)
    p_true = p.gather(1, labels[:, None]).reshape(-1)                  # p of each pixel's own class
    inter = torch.zeros(C, dtype=p.dtype, device=p.device).index_add_(0, flat, p_true)
    count = torch.bincount(flat, minlength=C).to(p.dtype)
    dice = (2 * inter + eps) / (p.sum((0, 2, 3)) + count + eps)
    return 1.0 - dice[count > 0].mean()


# ------------------------------------------------------------------------------------------
# evaluation
# ------------------------------------------------------------------------------------------

def _report(cm: ConfusionMatrix) -> dict:
    iou = cm.iou()
    return {"miou": cm.miou(), "pixel_accuracy": cm.pixel_accuracy(),
            "iou": {n: (None if math.isnan(v) else float(v)) for n, v in zip(SOF20_NAMES, iou.tolist())}}


@torch.no_grad()
def evaluate_parser(model: FaceParser, photos_dir: str | os.PathLike | PhotoSet, *, blur_sigma: float = 0.0,
                    noise_std: float = 0.0, seed: int = 0, batch_size: int = 32, limit: int | None = None,
                    flip_average: bool = False) -> dict:
    """Segmentation quality of ``model`` on a photo folder with segmaps.

    Args:
        model: a :class:`FaceParser` (any device; evaluated in eval mode).
        photos_dir: a folder written with ``sofgan-lab synth photos ... --with-segmaps`` (or a
            loaded :class:`PhotoSet`).
        blur_sigma, noise_std, seed: degrade the photos first (see :func:`degrade`; the noise of
            batch ``b`` is drawn with seed ``seed + b``).
        limit: evaluate the first ``limit`` photos only.
        flip_average: parse with ``FaceParser.parse(..., flip_average=True)``.

    Returns:
        ``{"miou", "pixel_accuracy", "iou": {SOF-20 name: IoU or None}, "images", "blur_sigma",
        "noise_std", "flip_average"}``: dataset-level IoU (one confusion matrix over every pixel), mIoU over the
        classes present in the ground truth; None where a class is neither present nor predicted.
    """
    if not isinstance(model, FaceParser):
        raise TypeError(f"model: expected a FaceParser, got {type(model).__name__}")
    ps = photos_dir if isinstance(photos_dir, PhotoSet) else PhotoSet(photos_dir, name="photos_dir")
    n = len(ps) if limit is None else min(len(ps), limit)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size: expected an integer >= 1, got {batch_size!r}")
    cm = ConfusionMatrix(model.config.num_classes)
    for b, s in enumerate(range(0, n, batch_size)):
        x = from_uint8(ps.images[s:min(n, s + batch_size)].permute(0, 3, 1, 2))
        if blur_sigma or noise_std:
            x = degrade(x, blur_sigma=blur_sigma, noise_std=noise_std, seed=seed + b)
        cm.update(model.parse(x, batch_size=batch_size, flip_average=flip_average),
                  ps.labels[s:s + x.shape[0]].long())
    rep = _report(cm)
    rep.update(images=n, blur_sigma=float(blur_sigma), noise_std=float(noise_std), flip_average=flip_average)
    return rep


# ------------------------------------------------------------------------------------------
# training
# ------------------------------------------------------------------------------------------

def _run_record(ps: PhotoSet, eval_dir: Path | None, mcfg: FaceParserConfig, cfg: ParserTrainConfig) -> dict:
    return {"format": "sofgan-lab/parser-run", "library_version": __version__,
            "photos_dir": str(ps.root.resolve()), "photos_index": ps.index or None, "photos": len(ps),
            "image_size": list(ps.size), "eval_dir": None if eval_dir is None else str(eval_dir.resolve()),
            "model_config": mcfg.to_dict(), "train_config": cfg.to_dict()}


def _check_resume_compatible(out: Path, record: dict) -> None:
    check_resume_record(out, record, same={
        "photos_dir: differs from the photos of the run being resumed": ("photos", "image_size")}, name="out_dir")


def train_parser(photos_dir: str | os.PathLike, out_dir: str | os.PathLike, config: ParserTrainConfig | None = None,
                 *, model_config: FaceParserConfig | None = None, eval_dir: str | os.PathLike | None = None,
                 resume: bool = False, progress: bool = True, until: int | None = None) -> ParserTrainResult:
    """Train a face parser on the photos and segmaps of ``photos_dir`` into the run folder ``out_dir``.

    Args:
        photos_dir: a photo folder with segmaps (``sofgan-lab synth photos ... --with-segmaps``).
        out_dir: the run folder (see the module docstring); must not hold a run unless ``resume``.
        config: a :class:`ParserTrainConfig` (default: its defaults, the demo's).
        model_config: network sizes (default ``FaceParserConfig.small()``).
        eval_dir: a separate photo folder with segmaps for the held-out mIoU (every
            ``config.eval_every`` steps on ``config.eval_count`` photos, and at the end on all of
            them, clean and degraded with blur sigma 1 + noise 0.05). None: no evaluation.
        resume: continue from the newest checkpoint in ``out_dir/checkpoints`` (starts afresh when
            there is none).
        progress: show a tqdm bar.
        until: stop after this step (checkpointing it) without finishing; the LR schedule still
            follows ``config.steps``. For staged runs and tests.

    Returns:
        :class:`ParserTrainResult`; when finished ``out_dir/model`` holds the parser.
    """
    cfg = config_or_default(config, ParserTrainConfig, ParserTrainConfig, "config")
    mcfg = config_or_default(model_config, FaceParserConfig, FaceParserConfig.small, "model_config")
    check_until(until)
    if cfg.crop and cfg.crop % mcfg.multiple:
        raise ValueError(f"crop: expected a multiple of {mcfg.multiple} (or 0), got {cfg.crop}")
    device = resolve_device(cfg.device)
    out = Path(out_dir)
    ps, eval_set, record = _prepare(photos_dir, out, eval_dir, mcfg, cfg, resume)
    seed_everything(cfg.seed)
    model = FaceParser(mcfg).to(device)
    generator = torch.Generator().manual_seed(cfg.seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    scheduler = make_warmup_cosine(optimizer, total_steps=cfg.steps, warmup_steps=cfg.warmup_steps,
                                   min_lr_ratio=cfg.min_lr_ratio)
    weights = class_weights(ps.class_counts(), cfg.class_weight_power, cfg.max_class_weight).to(device)
    spec = CheckpointSpec(out / "checkpoints", model, KIND, mcfg.to_dict(), optimizer, generator, "augment",
                          scheduler=scheduler, keep=cfg.keep_checkpoints, extra={"train_config": cfg.to_dict()})
    loop = TrainLoop("train_parser", out, steps=cfg.steps, until=until, log_every=cfg.log_every,
                     checkpoint_every=cfg.checkpoint_every, checkpoint=spec,
                     means=RunningMeans(("loss", "ce", "dice", "pixel_accuracy"), device="cpu"), info=DistInfo(),
                     device=device, progress=progress)
    latest = latest_checkpoint(spec.directory)
    if loop.resume(latest, resume=resume) is not None:
        log.info("resuming at step %d from %s", loop.start, latest)
    evaluate = _evaluator(model, eval_set, loop.logger)
    if eval_set is not None:
        loop.hooks.append(Hook(cfg.eval_every, lambda done: _then_train(model, evaluate(done, cfg.eval_count or None))))
    stepper = _Stepper(model, optimizer, scheduler, ps, cfg, generator, weights, device, loop.means)

    def train_record(done: int, m: dict, ran: int, seconds: float) -> dict:
        return {"event": "train", "step": done, "loss": m["loss"], "ce": m["ce"], "dice": m["dice"],
                "pixel_accuracy": m["pixel_accuracy"], "lr": stepper.lr,
                "images_per_s": cfg.batch_size * ran / seconds}

    def finish() -> Path:
        model.eval()
        if eval_set is not None:
            loop.metrics = _final_evaluation(model, eval_set, evaluate, loop.logger, cfg.steps)
        model_dir = model.save_pretrained(out / "model")
        write_training_json(model_dir, record, cfg.steps, loop.metrics)
        log.info("trained parser saved to %s", model_dir)
        return model_dir

    model.train()
    loop.run(stepper, train_record, postfix=lambda r: {"loss": f"{r['loss']:.4f}", "lr": f"{r['lr']:.2e}"})
    model_dir = loop.finish(finish)
    return ParserTrainResult(model=model, out=out, step=loop.step, finished=loop.finished, metrics=loop.metrics,
                             model_dir=model_dir)


def _prepare(photos_dir, out: Path, eval_dir, mcfg: FaceParserConfig, cfg: ParserTrainConfig, resume: bool):
    """The training and evaluation photos and the run record (written to ``out/run.json`` after the
    run folder's checks)."""
    check_run_folder(out, resume, latest_checkpoint(out / "checkpoints"), name="out_dir")
    ps = PhotoSet(photos_dir, name="photos_dir")
    H, W = ps.size
    if not cfg.crop and (H % mcfg.multiple or W % mcfg.multiple):
        raise ValueError(f"photos_dir: photos of {H}x{W} are not divisible by {mcfg.multiple}; set a crop")
    eval_set = None
    if eval_dir is not None:
        eval_set = PhotoSet(eval_dir, name="eval_dir")
        if eval_set.size[0] % mcfg.multiple or eval_set.size[1] % mcfg.multiple:
            raise ValueError(f"eval_dir: photos of {eval_set.size} are not divisible by {mcfg.multiple}")
    record = _run_record(ps, None if eval_dir is None else Path(eval_dir), mcfg, cfg)
    if resume:
        _check_resume_compatible(out, record)
    write_run_record(out, record, DistInfo())
    return ps, eval_set, record


def _then_train(model: FaceParser, result: dict) -> dict:
    model.train()
    return result


def _evaluator(model: FaceParser, eval_set: PhotoSet | None, logger):
    """``evaluate(step, limit)``: the held-out report of the first ``limit`` photos (None: all), logged."""
    def evaluate(step: int, limit: int | None) -> dict:
        t0 = time.perf_counter()
        rep = evaluate_parser(model, eval_set, limit=limit)
        rep.update(step=step, seconds=round(time.perf_counter() - t0, 3))
        logger.log({"event": "eval", **rep})
        log.info("step %d: held-out mIoU %.4f (pixel accuracy %.4f, %d photos)", step, rep["miou"],
                 rep["pixel_accuracy"], rep["images"])
        return rep
    return evaluate


def _final_evaluation(model: FaceParser, eval_set: PhotoSet, evaluate, logger, steps: int) -> dict:
    """``{"clean", "degraded"}``: every held-out photo, as it is and with blur 1 + noise 0.05."""
    metrics = {"clean": evaluate(steps, None)}
    t0 = time.perf_counter()
    deg = evaluate_parser(model, eval_set, blur_sigma=1.0, noise_std=0.05)
    deg.update(step=steps, seconds=round(time.perf_counter() - t0, 3))
    logger.log({"event": "eval_degraded", **deg})
    log.info("held-out mIoU with blur 1 + noise 0.05: %.4f", deg["miou"])
    metrics["degraded"] = deg
    return metrics


class _Stepper:
    """The step function of :class:`TrainLoop`: augmented crops, the (annealed) class-weighted
    cross-entropy plus soft Dice, the optimiser and schedule steps; the loss parts and the pixel
    accuracy go to ``means``, the learning rate the step used to ``lr``."""

    def __init__(self, model: FaceParser, optimizer, scheduler, ps: PhotoSet, cfg: ParserTrainConfig,
                 generator: torch.Generator, weights: torch.Tensor, device: torch.device, means):
        self.model, self.optimizer, self.scheduler, self.ps, self.cfg = model, optimizer, scheduler, ps, cfg
        self.generator, self.weights, self.device, self.means = generator, weights, device, means
        self.lr = float("nan")

    def __call__(self, step: int) -> None:
        cfg, device = self.cfg, self.device
        idx = torch.randint(len(self.ps), (cfg.batch_size,), generator=self.generator)
        x, y = augment_batch(self.ps, idx, cfg, self.generator)
        x, y = x.to(device), y.to(device)
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=cfg.amp):
            logits = self.model(x)
        logits = logits.float()
        w = self.weights ** (1.0 - step / cfg.steps) if cfg.class_weight_anneal else self.weights
        logp = logits.log_softmax(1)
        ce = F.nll_loss(logp, y, weight=w)
        dice = soft_dice_loss(logits, y, log_probs=logp) if cfg.dice_weight else torch.zeros((), device=device)
        loss = ce + cfg.dice_weight * dice
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.lr = self.optimizer.param_groups[0]["lr"]
        self.optimizer.step()
        self.scheduler.step()
        with torch.no_grad():
            acc = (logits.argmax(1) == y).float().mean()
        self.means.add_all(torch.stack([loss.detach().cpu(), ce.detach().cpu(), dice.detach().cpu(), acc.cpu()]))
