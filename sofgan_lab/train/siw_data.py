"""Unpaired data for SIW-StyleGAN training: an image folder and a segmap folder.

* :class:`ImageFolder`: every ``*.png`` / ``*.jpg`` / ``*.jpeg`` / ``*.webp`` under a folder (or its
  ``images/`` sub-folder, the layout of ``sofgan-lab synth photos``; one level of sub-folders when
  the folder itself holds none, as in FFHQ's ``images1024x1024/00000/``), RGB, resized to the
  training size (antialiased bilinear) and held in memory as uint8: 3·size² bytes per image, about
  49 MB per 1,000 images at 128² and 197 MB at 256² (twice that while loading).
  :class:`sofgan_lab.datasets.StreamingImageFolder` decodes on demand instead.
* :class:`SegmapFolder`: single-channel PNG label maps (a ``segmaps/`` sub-folder is used when
  present), converted to SofGAN-17 ids: ``label_set="sof20"`` (the SOF / synthetic layout) is
  remapped 20 → 17, ``"celebamask19"`` (CelebAMask-HQ) is converted through SOF-20 with the nose
  split, ``"sofgan17"`` is taken as is. ``"auto"`` reads ``index.json`` when the folder was written
  by ``sofgan-lab synth`` and otherwise requires the ids to fit one set unambiguously.
  Nearest-neighbour resize to the training size.

Images and segmaps are never paired: they may come from different instances and differ in count.

:func:`augment_batch` applies the release's augmentation to a batch: a random up-scale in
``scale_range`` followed by a random crop back to the size, and a horizontal flip (p = 0.5) that
swaps left/right label ids on segmaps.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..images import from_uint8, list_images, read_image
from ..io.checkpoints import read_json
from ..labels import NUM_SOF_CLASSES, NUM_SOFGAN_CLASSES, celebamask_to_sof, sof_to_sofgan, swap_left_right

__all__ = ["ImageFolder", "SegmapFolder", "augment_batch", "list_images"]

log = logging.getLogger(__name__)

_LABEL_SETS = ("auto", "sof20", "sofgan17", "celebamask19")


class ImageFolder:
    """RGB images as a uint8 tensor ``[N, 3, size, size]`` (see the module docstring)."""

    def __init__(self, folder: str | Path, size: int, *, limit: int | None = None):
        self.files = list_images(folder, "images", "images")[: limit or None]
        self.size = int(size)
        arrays = []
        for p in self.files:
            im = read_image(p, "images").convert("RGB")
            if im.size != (self.size, self.size):
                if im.size[0] != im.size[1]:
                    side = min(im.size)  # centre square crop
                    left, top = (im.size[0] - side) // 2, (im.size[1] - side) // 2
                    im = im.crop((left, top, left + side, top + side))
                im = im.resize((self.size, self.size), Image.BILINEAR, reducing_gap=None)
            arrays.append(np.asarray(im, dtype=np.uint8))
        self.data = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()
        log.info("images: %d from %s at %d²", len(self.files), Path(folder), self.size)

    def __len__(self) -> int:
        return self.data.shape[0]

    def batch(self, index: torch.Tensor) -> torch.Tensor:
        """Float images in [-1, 1], ``[B, 3, size, size]``."""
        return from_uint8(self.data[index])


def _detect_label_set(folder: Path, maps: np.ndarray) -> str:
    for idx in (folder / "index.json", folder.parent / "index.json"):
        if idx.is_file():
            meta = read_json(idx, "segmaps")  # a broken index.json is named, not skipped
            ls = meta.get("label_set")
            if ls in ("sof20", "sofgan17", "celebamask19"):
                return ls
    top = int(maps.max()) if maps.size else 0
    if top == NUM_SOF_CLASSES - 1:  # id 19 exists only in SOF-20
        return "sof20"
    if top >= NUM_SOF_CLASSES:
        raise ValueError(f"segmaps: ids up to {top} in {folder} fit none of SOF-20, SofGAN-17 and CelebAMask-19")
    if top < NUM_SOFGAN_CLASSES:
        raise ValueError(f"segmaps: the label set of {folder} is ambiguous (ids 0..{top} fit SOF-20, SofGAN-17 and "
                         "CelebAMask-19); pass label_set='sof20', 'sofgan17' or 'celebamask19'")
    raise ValueError(f"segmaps: the label set of {folder} is ambiguous (max id {top}); pass label_set='sof20' "
                     "or 'celebamask19'")


class SegmapFolder:
    """Label maps as SofGAN-17 ids, uint8 ``[N, size, size]`` (see the module docstring)."""

    def __init__(self, folder: str | Path, size: int, *, label_set: str = "auto", limit: int | None = None):
        if label_set not in _LABEL_SETS:
            raise ValueError(f"label_set: expected one of {_LABEL_SETS}, got {label_set!r}")
        self.files = list_images(folder, "segmaps", "segmaps", exts=(".png",))[: limit or None]
        self.size = int(size)
        maps = []
        for p in self.files:
            im = read_image(p, "segmaps")
            if im.mode not in ("L", "P", "I", "I;16"):
                raise ValueError(f"segmaps: {p} has mode {im.mode}; expected a single-channel label map "
                                 "(colour-coded maps must be decolorized first: sofgan_lab.labels.decolorize)")
            a = np.asarray(im)
            if a.shape[0] != a.shape[1]:
                raise ValueError(f"segmaps: {p} is {a.shape[1]}x{a.shape[0]}; expected square label maps")
            if maps and a.shape != maps[0].shape:
                raise ValueError(f"segmaps: {p} is {a.shape[1]}x{a.shape[0]}, {self.files[0].name} is "
                                 f"{maps[0].shape[1]}x{maps[0].shape[0]}; expected label maps of one size")
            maps.append(a.astype(np.int64))
        raw = np.stack(maps)
        root = self.files[0].parent
        self.source_label_set = label_set if label_set != "auto" else _detect_label_set(root, raw)
        limit_ids = {"sof20": NUM_SOF_CLASSES, "sofgan17": NUM_SOFGAN_CLASSES, "celebamask19": 19}[self.source_label_set]
        bad = np.unique(raw[(raw < 0) | (raw >= limit_ids)])
        if bad.size:
            raise ValueError(f"segmaps: ids {bad[:10].tolist()} in {root} are outside the {self.source_label_set} "
                             f"set (0..{limit_ids - 1})")
        if self.source_label_set == "celebamask19":
            raw = np.stack([celebamask_to_sof(m) for m in raw])
            raw = sof_to_sofgan(raw)
        elif self.source_label_set == "sof20":
            raw = sof_to_sofgan(raw)
        t = torch.from_numpy(np.asarray(raw, dtype=np.uint8))
        if t.shape[-1] != self.size:
            t = F.interpolate(t[:, None].float(), size=(self.size, self.size), mode="nearest")[:, 0].to(torch.uint8)
        self.data = t.contiguous()
        log.info("segmaps: %d from %s (%s -> sofgan17) at %d²", len(self.files), root, self.source_label_set, self.size)

    def __len__(self) -> int:
        return self.data.shape[0]

    def batch(self, index: torch.Tensor) -> torch.Tensor:
        """int64 SofGAN-17 ids ``[B, size, size]``."""
        return self.data[index].long()


_SWAP17 = None


def _swap_table(device) -> torch.Tensor:
    global _SWAP17
    if _SWAP17 is None:
        _SWAP17 = torch.as_tensor(swap_left_right(np.arange(NUM_SOFGAN_CLASSES), "sofgan17"), dtype=torch.long)
    return _SWAP17.to(device)


def augment_batch(x: torch.Tensor, generator: torch.Generator, *, scale_range: tuple[float, float] = (1.0, 1.7),
                  flip: bool = True, labels: bool = False) -> torch.Tensor:
    """Random up-scale in ``scale_range`` + random crop back to the size, then a horizontal flip with
    probability 0.5 (left/right ids swapped when ``labels``). Random numbers come from
    ``generator`` (CPU), so runs are reproducible and resumable.

    ``x``: float images ``[B, C, H, W]`` or int label maps ``[B, H, W]`` (``labels=True``)."""
    b = x.shape[0]
    lo, hi = float(scale_range[0]), float(scale_range[1])
    scales = lo + (hi - lo) * torch.rand(b, generator=generator)
    offsets = torch.rand(b, 2, generator=generator)
    flips = torch.rand(b, generator=generator) < 0.5 if flip else torch.zeros(b, dtype=torch.bool)
    if hi <= 1.0 and not flip:
        return x
    h, w = x.shape[-2], x.shape[-1]
    # sampling grid: output pixel -> input coordinate (normalised, align_corners=False)
    ys = (torch.arange(h, dtype=torch.float32) + 0.5) / h * 2 - 1
    xs = (torch.arange(w, dtype=torch.float32) + 0.5) / w * 2 - 1
    s = scales[:, None]
    # the visible window has half-size 1/s and a centre that keeps it inside [-1, 1]
    cy = (1 - 1 / s) * (offsets[:, :1] * 2 - 1)
    cx = (1 - 1 / s) * (offsets[:, 1:] * 2 - 1)
    gy = cy + ys[None] / s                            # [B, H]
    gx = cx + xs[None] / s                            # [B, W]
    gx = torch.where(flips[:, None], -gx, gx)
    grid = torch.stack(torch.broadcast_tensors(gx[:, None, :], gy[:, :, None]), dim=-1).to(x.device)
    if labels:
        out = F.grid_sample(x[:, None].float(), grid, mode="nearest", padding_mode="border", align_corners=False)
        out = out[:, 0].round().long()
        if flip and flips.any():
            sw = _swap_table(out.device)
            f = flips.to(out.device)
            out[f] = sw[out[f]]
        return out
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
