"""Texture-branch metrics: does a generated portrait follow its segmap, and does a regional edit stay
in its region?

* :func:`segmentation_consistency` — the SPADE/SEAN protocol: generate from segmaps, parse the
  images with a face parser, mIoU of the parse against the input segmaps (SofGAN-17 classes,
  dataset-level confusion matrix, classes present in the inputs).
* :func:`region_edit_leakage` — restyle one region group (style B there, A elsewhere) and measure
  the mean absolute pixel change (images in [0, 1]) outside the dilated region and inside it, and
  how far the region's mean colour moves (CIE76 ΔE): what a user sees when a region mixer goes
  from 0 to 1.
* :func:`style_color_diversity` — do the texture styles reach every region? The spread of each
  region's mean CIE-Lab colour (trace of its covariance) over random styles on a few geometries,
  divided by the same spread over photos: 1 = the styles vary a region's colour as much as the
  photos do, 0 = every style paints it alike.
* :func:`photo_region_delta_e` — the mean ΔE between the region colours of two photos, the
  reference for what a region edit should reach.
"""
from __future__ import annotations

import logging
from typing import Any, Iterable

import numpy as np
import torch
import torch.nn.functional as F

from ..images import rgb_to_lab
from ..labels import NUM_SOFGAN_CLASSES, SOFGAN17_NAMES, SofGAN, sof_to_sofgan
from .segmentation import ConfusionMatrix

__all__ = ["segmentation_consistency", "region_edit_leakage", "region_mean_lab", "color_spread",
           "style_color_diversity", "photo_region_delta_e", "DIVERSITY_REGIONS"]

#: The regions whose colour diversity :func:`style_color_diversity` measures (SofGAN-17 ids).
DIVERSITY_REGIONS: dict[str, tuple[int, ...]] = {
    "hair": (int(SofGAN.HAIR),), "skin": (int(SofGAN.SKIN),), "cloth": (int(SofGAN.CLOTH),),
    "background": (int(SofGAN.BACKGROUND),),
}
#: A region counts in an image when at least this many pixels of it survive the erosion.
MIN_REGION_PIXELS = 16

log = logging.getLogger(__name__)


def _batches(n: int, batch: int) -> Iterable[slice]:
    for i in range(0, n, batch):
        yield slice(i, min(n, i + batch))


def _as_labels(segmaps: Any, name: str = "segmaps") -> torch.Tensor:
    seg = torch.as_tensor(np.asarray(segmaps)) if not isinstance(segmaps, torch.Tensor) else segmaps
    if seg.ndim != 3:
        raise ValueError(f"{name}: expected label maps [N, H, W], got shape {tuple(seg.shape)}")
    return seg.long()


def _at_size(labels: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if tuple(labels.shape[-2:]) == tuple(size):
        return labels
    return F.interpolate(labels[:, None].float(), size=tuple(size), mode="nearest")[:, 0].long()


def region_mean_lab(images: torch.Tensor, segmaps: Any, ids: Iterable[int], *, erode: int = 1,
                    min_pixels: int = MIN_REGION_PIXELS) -> torch.Tensor:
    """Mean CIE-Lab colour of a region in each image: ``images`` ``(N, 3, H, W)`` in [-1, 1],
    ``segmaps`` ``(N, h, w)`` SofGAN-17 ids (resized to the images, nearest), ``ids`` the region's
    classes. The region is eroded by ``erode`` pixels (boundary pixels blend two regions). Returns
    ``(N, 3)`` float64; rows of images where fewer than ``min_pixels`` region pixels remain are NaN."""
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"images: expected (N, 3, H, W), got {getattr(images, 'shape', type(images).__name__)}")
    seg = _at_size(_as_labels(segmaps), images.shape[-2:])
    if seg.shape[0] != images.shape[0]:
        raise ValueError(f"segmaps: {seg.shape[0]} maps for {images.shape[0]} images")
    mask = torch.isin(seg.cpu(), torch.as_tensor(list(ids))).float()[:, None]
    if erode:
        mask = -F.max_pool2d(-mask, 2 * erode + 1, stride=1, padding=erode)
    lab = rgb_to_lab(images.cpu()).double()
    w = mask.double()
    count = w.sum((1, 2, 3))
    mean = (lab * w).sum((2, 3)) / count.clamp_min(1)[:, None]
    mean[count < min_pixels] = float("nan")
    return mean


def color_spread(means: Any) -> float:
    """Trace of the covariance of colour rows ``(N, 3)`` (NaN rows skipped); NaN with < 2 rows."""
    m = torch.as_tensor(np.asarray(means), dtype=torch.float64)
    m = m[~torch.isnan(m).any(1)]
    if m.shape[0] < 2:
        return float("nan")
    return float(torch.cov(m.T).trace())


def photo_region_delta_e(photos: torch.Tensor, photo_segmaps: Any, group: str = "hair", *,
                         erode: int = 1) -> dict:
    """Mean CIE76 ΔE between the mean colours of ``group``'s region (a style group of
    :data:`~sofgan_lab.texture.regions.STYLE_GROUPS`) in every pair of photos that show it.
    ``photos`` ``(N, 3, H, W)`` in [-1, 1] with their SofGAN-17 ``photo_segmaps``. Returns
    ``{"delta_e", "pairs", "photos"}``."""
    from ..texture.regions import STYLE_GROUPS

    if group not in STYLE_GROUPS:
        raise ValueError(f"group: expected one of {list(STYLE_GROUPS)}, got {group!r}")
    m = region_mean_lab(photos, photo_segmaps, STYLE_GROUPS[group], erode=erode)
    m = m[~torch.isnan(m).any(1)]
    if m.shape[0] < 2:
        raise ValueError(f"photos: fewer than two photos show the {group} region")
    d = torch.cdist(m, m)
    iu = torch.triu_indices(m.shape[0], m.shape[0], 1)
    pairs = d[iu[0], iu[1]]
    return {"delta_e": float(pairs.mean()), "pairs": int(pairs.numel()), "photos": int(m.shape[0])}


@torch.no_grad()
def style_color_diversity(generator, segmaps: Any, photos: torch.Tensor, photo_segmaps: Any, *,
                          n_styles: int = 128, n_geometries: int = 8, seed: int = 0, truncation: float = 1.0,
                          batch: int = 16, regions: dict[str, tuple[int, ...]] | None = None,
                          noise: str = "const") -> dict:
    """Per-region colour diversity of ``generator``'s styles against photos (module docstring).

    ``n_styles`` random styles (from ``seed``, ψ = ``truncation``) are drawn on each of the first
    ``n_geometries`` of ``segmaps`` (SofGAN-17 ``[N, H, W]``); for each region of ``regions``
    (default :data:`DIVERSITY_REGIONS`) the spread of the portraits' mean Lab colours
    (:func:`color_spread`, pooled over all portraits) is divided by the spread over ``photos``
    (``(M, 3, H, W)`` in [-1, 1], with their SofGAN-17 ``photo_segmaps``). Returns ``{"ratio":
    {region: r}, "generated": {region: spread}, "photos": {region: spread}, "n_styles",
    "n_geometries", "n_photos"}``.
    """
    regions = dict(DIVERSITY_REGIONS if regions is None else regions)
    seg = _as_labels(segmaps)
    for v, name, low in ((n_styles, "n_styles", 2), (n_geometries, "n_geometries", 1), (batch, "batch", 1)):
        if isinstance(v, bool) or not isinstance(v, int) or v < low:
            raise ValueError(f"{name}: expected an integer >= {low}, got {v!r}")
    if seg.shape[0] < n_geometries:
        raise ValueError(f"segmaps: {seg.shape[0]} maps, fewer than n_geometries={n_geometries}")
    gen = torch.Generator().manual_seed(int(seed))
    z = torch.randn(n_geometries * n_styles, generator.style_dim, generator=gen)
    seg_rep = seg[:n_geometries].repeat_interleave(n_styles, 0)
    means: dict[str, list[torch.Tensor]] = {r: [] for r in regions}
    was_training = generator.training
    generator.eval()
    try:
        for sl in _batches(seg_rep.shape[0], batch):
            s = seg_rep[sl]
            img = generator(s.to(generator.device), z[sl].to(generator.device), truncation=truncation,
                            noise=noise).float().cpu()
            for r, ids in regions.items():
                means[r].append(region_mean_lab(img, s, ids))
    finally:
        generator.train(was_training)
    ratio, g_spread, p_spread = {}, {}, {}
    for r, ids in regions.items():
        g_spread[r] = color_spread(torch.cat(means[r]))
        p_spread[r] = color_spread(region_mean_lab(photos, photo_segmaps, ids))
        ratio[r] = g_spread[r] / p_spread[r] if p_spread[r] > 0 else float("nan")
    return {"ratio": ratio, "generated": g_spread, "photos": p_spread, "n_styles": n_styles,
            "n_geometries": n_geometries, "n_photos": int(photos.shape[0]), "truncation": truncation}


@torch.no_grad()
def segmentation_consistency(generator, parser, segmaps: Any, *, seed: int = 0, batch: int = 8,
                             truncation: float = 1.0, noise: str = "const") -> dict:
    """Parser mIoU of ``generator`` outputs against their input ``segmaps`` (SofGAN-17 ids
    ``[N, H, W]``). One random style per segmap from ``seed``. Returns ``{"miou", "pixel_accuracy",
    "per_class": {name: IoU}, "count"}``."""
    seg = torch.as_tensor(np.asarray(segmaps)) if not isinstance(segmaps, torch.Tensor) else segmaps
    if seg.ndim != 3:
        raise ValueError(f"segmaps: expected label maps [N, H, W], got shape {tuple(seg.shape)}")
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ValueError(f"batch: expected an integer >= 1, got {batch!r}")
    seg = seg.long()
    size = generator.config.size
    gen = torch.Generator().manual_seed(int(seed))
    z = torch.randn(seg.shape[0], generator.style_dim, generator=gen)
    cm = ConfusionMatrix(NUM_SOFGAN_CLASSES)
    was_training = generator.training
    generator.eval()
    parser.eval()
    try:
        for sl in _batches(seg.shape[0], batch):
            s = seg[sl]
            img = generator(s.to(generator.device), z[sl].to(generator.device), truncation=truncation, noise=noise)
            pred20 = parser.parse(img.clamp(-1, 1))
            pred = sof_to_sofgan(pred20.cpu())
            target = s
            if tuple(target.shape[-2:]) != (size, size):
                target = F.interpolate(target[:, None].float(), size=(size, size), mode="nearest")[:, 0].long()
            cm.update(pred.cpu(), target.cpu())
    finally:
        generator.train(was_training)
    iou = cm.iou()
    present = cm.present()
    return {"miou": cm.miou(), "pixel_accuracy": cm.pixel_accuracy(), "count": int(seg.shape[0]),
            "per_class": {SOFGAN17_NAMES[i]: float(iou[i]) for i in range(NUM_SOFGAN_CLASSES) if present[i]}}


@torch.no_grad()
def region_edit_leakage(generator, segmaps: Any, group: str = "hair", *, seed: int = 0, batch: int = 8,
                        dilation: int = 5, mode: str = "exact", noise: str = "const") -> dict:
    """Change only ``group``'s style and measure where pixels move.

    For each segmap: style A everywhere vs. style B on ``group`` (one of
    :data:`~sofgan_lab.texture.regions.STYLE_GROUPS`) and A elsewhere. Returns the mean absolute
    difference (images mapped to [0, 1], averaged over channels) outside the region dilated by
    ``dilation`` pixels (``outside``), inside the region (``inside``), and the sample count."""
    from ..texture.regions import STYLE_GROUPS, two_style_weights

    if group not in STYLE_GROUPS:
        raise ValueError(f"group: expected one of {list(STYLE_GROUPS)}, got {group!r}")
    if isinstance(dilation, bool) or not isinstance(dilation, int) or dilation < 0:
        raise ValueError(f"dilation: expected an integer >= 0, got {dilation!r}")
    seg = torch.as_tensor(np.asarray(segmaps)) if not isinstance(segmaps, torch.Tensor) else segmaps
    if seg.ndim != 3:
        raise ValueError(f"segmaps: expected label maps [N, H, W], got shape {tuple(seg.shape)}")
    seg = seg.long()
    size = generator.config.size
    gen = torch.Generator().manual_seed(int(seed))
    z = torch.randn(seg.shape[0], 2, generator.style_dim, generator=gen)
    cw = two_style_weights({group: 1.0})
    ids = torch.as_tensor(STYLE_GROUPS[group])
    out_sum = in_sum = 0.0
    out_n = in_n = 0
    shifts: list[torch.Tensor] = []
    was_training = generator.training
    generator.eval()
    try:
        for sl in _batches(seg.shape[0], batch):
            s = seg[sl].to(generator.device)
            zz = z[sl].to(generator.device)
            a = generator(s, zz[:, :1], noise=noise)
            ab = generator(s, zz, class_weights=cw.expand(s.shape[0], -1, -1), mode=mode, noise=noise)
            diff = ((a - ab).abs() / 2).mean(1).cpu()                     # [B, size, size] in [0,1] units
            ma = region_mean_lab(a.float().cpu(), s.cpu(), ids.tolist())
            mb = region_mean_lab(ab.float().cpu(), s.cpu(), ids.tolist())
            shifts.append((ma - mb).norm(dim=1))
            lab = s.cpu()
            if tuple(lab.shape[-2:]) != (size, size):
                lab = F.interpolate(lab[:, None].float(), size=(size, size), mode="nearest")[:, 0].long()
            region = torch.isin(lab, ids).float()[:, None]
            if dilation:
                region_d = F.max_pool2d(region, 2 * dilation + 1, stride=1, padding=dilation)
            else:
                region_d = region
            outside = region_d[:, 0] == 0
            inside = region[:, 0] > 0
            out_sum += float(diff[outside].sum())
            out_n += int(outside.sum())
            in_sum += float(diff[inside].sum())
            in_n += int(inside.sum())
    finally:
        generator.train(was_training)
    sh = torch.cat(shifts)
    sh = sh[~torch.isnan(sh)]
    return {"group": group, "outside": out_sum / max(out_n, 1), "inside": in_sum / max(in_n, 1),
            "delta_e": float(sh.mean()) if sh.numel() else float("nan"), "dilation": dilation, "count": int(seg.shape[0]), "outside_pixels": out_n, "inside_pixels": in_n}
