"""Texture-branch metrics: does a generated portrait follow its segmap, and does a regional edit stay
in its region?

* :func:`segmentation_consistency` — the SPADE/SEAN protocol: generate from segmaps, parse the
  images with a face parser, mIoU of the parse against the input segmaps (SofGAN-17 classes,
  dataset-level confusion matrix, classes present in the inputs).
* :func:`region_edit_leakage` — restyle one region group (style B there, A elsewhere) and measure
  the mean absolute pixel change (images in [0, 1]) outside the dilated region and inside it.
"""
from __future__ import annotations

import logging
from typing import Any, Iterable

import numpy as np
import torch
import torch.nn.functional as F

from ..labels import NUM_SOFGAN_CLASSES, SOFGAN17_NAMES, sof_to_sofgan
from .segmentation import ConfusionMatrix

__all__ = ["segmentation_consistency", "region_edit_leakage"]

log = logging.getLogger(__name__)


def _batches(n: int, batch: int) -> Iterable[slice]:
    for i in range(0, n, batch):
        yield slice(i, min(n, i + batch))


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
    was_training = generator.training
    generator.eval()
    try:
        for sl in _batches(seg.shape[0], batch):
            s = seg[sl].to(generator.device)
            zz = z[sl].to(generator.device)
            a = generator(s, zz[:, :1], noise=noise)
            ab = generator(s, zz, class_weights=cw.expand(s.shape[0], -1, -1), mode=mode, noise=noise)
            diff = ((a - ab).abs() / 2).mean(1).cpu()                     # [B, size, size] in [0,1] units
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
    return {"group": group, "outside": out_sum / max(out_n, 1), "inside": in_sum / max(in_n, 1),
            "dilation": dilation, "count": int(seg.shape[0]), "outside_pixels": out_n, "inside_pixels": in_n}
