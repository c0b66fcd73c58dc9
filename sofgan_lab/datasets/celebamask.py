"""CelebAMask-HQ: per-part masks composed into label maps, and segmap folders for training.

Layout (the dataset as distributed; ``root`` is the ``CelebAMask-HQ`` folder, or its parent)::

    CelebAMask-HQ/CelebA-HQ-img/{i}.jpg                              1024x1024 RGB, i = 0..29999
    CelebAMask-HQ/CelebAMask-HQ-mask-anno/{i // 2000}/{i:05d}_{part}.png   512x512 binary masks

``part`` is one of :data:`CELEBAMASK_PARTS`; a part absent from an image has no file.

Composition (:func:`compose_masks`): the label map starts as background (0); the parts are then
painted **in the CelebAMask-19 class order** of :class:`sofgan_lab.labels.CelebAMask`, part
``k`` with id ``k`` (skin = 1, nose = 2, eye_g = 3, l_eye = 4, r_eye = 5, l_brow = 6, r_brow = 7,
l_ear = 8, r_ear = 9, mouth = 10, u_lip = 11, l_lip = 12, hair = 13, hat = 14, ear_r = 15,
neck_l = 16, neck = 17, cloth = 18), so where two masks overlap **the later part wins** (a hat
over hair, cloth over neck). We assume this is the order the dataset's own mask-composition tool
uses (its list of part names in this order, each painted over the previous ones); the part file
names are the class names of :data:`sofgan_lab.labels.CELEBAMASK19_NAMES` one for one, and
"left"/"right" are taken as in :mod:`sofgan_lab.labels` (the subject's own): we have not checked
the annotators' convention on real images. A pixel belongs to a part where its mask is non-zero
(any colour channel of an RGB mask; alpha is ignored), as the dataset's tool reads them.

:func:`build_segmap_folder` turns the whole dataset into a folder that
:class:`sofgan_lab.train.siw_data.SegmapFolder` reads (``OUT/segmaps/{i:05d}.png`` + ``OUT/index.json``
with the label set), in SOF-20 (nose split by :func:`sofgan_lab.labels.celebamask_to_sof`),
SofGAN-17 or CelebAMask-19 ids.
"""
from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..images import read_image

from ..labels import CELEBAMASK19_NAMES, CelebAMask, celebamask_to_sof, get_label_set, sof_to_sofgan
from ._common import MAX_SIZE, check_int, open_output, png, run_jobs, write_index

__all__ = [
    "CELEBAMASK_PARTS",
    "CELEBAHQ_IMAGE_DIR",
    "CELEBAMASK_MASK_DIR",
    "MASKS_PER_FOLDER",
    "SEGMAP_FOLDER_FORMAT",
    "resolve_celebamask_root",
    "celebamask_image_path",
    "celebamask_mask_path",
    "celebamask_indices",
    "compose_masks",
    "read_celebamask_labels",
    "build_segmap_folder",
]

log = logging.getLogger(__name__)

CELEBAMASK_PARTS: tuple[str, ...] = CELEBAMASK19_NAMES[1:]
"""The 18 part names of the mask files, in painting order; part ``CELEBAMASK_PARTS[k - 1]`` gets
CelebAMask-19 id ``k``: ``('skin', 'nose', 'eye_g', 'l_eye', 'r_eye', 'l_brow', 'r_brow', 'l_ear',
'r_ear', 'mouth', 'u_lip', 'l_lip', 'hair', 'hat', 'ear_r', 'neck_l', 'neck', 'cloth')``."""

assert CELEBAMASK_PARTS == ("skin", "nose", "eye_g", "l_eye", "r_eye", "l_brow", "r_brow", "l_ear", "r_ear",
                            "mouth", "u_lip", "l_lip", "hair", "hat", "ear_r", "neck_l", "neck", "cloth")
assert all(CelebAMask[p.upper()] == k + 1 for k, p in enumerate(CELEBAMASK_PARTS))

CELEBAHQ_IMAGE_DIR = "CelebA-HQ-img"
CELEBAMASK_MASK_DIR = "CelebAMask-HQ-mask-anno"
MASKS_PER_FOLDER = 2000
SEGMAP_FOLDER_FORMAT = "sofgan-lab/segmaps"

_MASK_NAME = re.compile(r"^(\d+)_([a-z_]+)\.png$")
_LAYOUT = (f"expected the CelebAMask-HQ layout {CELEBAHQ_IMAGE_DIR}/{{i}}.jpg and "
           f"{CELEBAMASK_MASK_DIR}/{{i // 2000}}/{{i:05d}}_{{part}}.png")


def resolve_celebamask_root(root: Any) -> Path:
    """The ``CelebAMask-HQ`` folder: ``root`` itself, or ``root/CelebAMask-HQ`` when ``root`` is its
    parent. Raises ``FileNotFoundError`` naming ``root`` when it is missing or has no mask folder."""
    if not isinstance(root, (str, os.PathLike)):
        raise TypeError(f"root: expected a path, got {type(root).__name__}")
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"root: {root} is not a folder")
    if not (root / CELEBAMASK_MASK_DIR).is_dir() and (root / "CelebAMask-HQ" / CELEBAMASK_MASK_DIR).is_dir():
        root = root / "CelebAMask-HQ"
    if not (root / CELEBAMASK_MASK_DIR).is_dir():
        raise FileNotFoundError(f"root: {root} has no {CELEBAMASK_MASK_DIR} folder ({_LAYOUT})")
    return root


def celebamask_image_path(root: Any, index: int) -> Path:
    """``root/CelebA-HQ-img/{index}.jpg`` (not checked for existence)."""
    return Path(root) / CELEBAHQ_IMAGE_DIR / f"{check_int(index, 'index', 0)}.jpg"


def celebamask_mask_path(root: Any, index: int, part: str) -> Path:
    """``root/CelebAMask-HQ-mask-anno/{index // 2000}/{index:05d}_{part}.png`` (not checked)."""
    index = check_int(index, "index", 0)
    if part not in CELEBAMASK_PARTS:
        raise ValueError(f"part: expected one of {CELEBAMASK_PARTS}, got {part!r}")
    return Path(root) / CELEBAMASK_MASK_DIR / str(index // MASKS_PER_FOLDER) / f"{index:05d}_{part}.png"


def celebamask_indices(root: Any) -> list[int]:
    """Sorted CelebA-HQ indices that have at least one part mask under ``root``.

    Scans the numbered folders of ``CelebAMask-HQ-mask-anno`` (files named ``{i:05d}_{part}.png``
    with a known part; a file in the wrong numbered folder is ignored with a warning). Raises
    ``FileNotFoundError`` for a missing root / mask folder and ``ValueError`` when no mask is found.
    """
    root = resolve_celebamask_root(root)
    mask_dir = root / CELEBAMASK_MASK_DIR
    parts = set(CELEBAMASK_PARTS)
    found: set[int] = set()
    misplaced = 0
    for d in sorted(mask_dir.iterdir()):
        if not (d.is_dir() and d.name.isdigit()):
            continue
        folder = int(d.name)
        with os.scandir(d) as it:
            for e in it:
                m = _MASK_NAME.match(e.name)
                if m is None or m.group(2) not in parts:
                    continue
                i = int(m.group(1))
                if i // MASKS_PER_FOLDER != folder:
                    misplaced += 1
                    continue
                found.add(i)
    if misplaced:
        log.warning("celebamask_indices: %d mask file(s) under %s lie in the wrong numbered folder "
                    "(expected {i // %d}) and were ignored", misplaced, mask_dir, MASKS_PER_FOLDER)
    if not found:
        raise ValueError(f"root: no part masks ({{i:05d}}_{{part}}.png in numbered folders) under {mask_dir} "
                         f"({_LAYOUT})")
    return sorted(found)


def _read_mask(path: Path) -> np.ndarray:
    """(H, W) bool: where the mask file is non-zero."""
    try:
        im = read_image(path, "root")
    except ValueError as exc:
        raise ValueError(f"root: mask {str(exc).partition(': ')[2]}") from None
    if im.mode in ("P", "PA", "CMYK", "YCbCr", "LAB", "HSV", "F"):
        im = im.convert("RGB")
    a = np.asarray(im)
    if a.ndim == 3:
        a = a[..., :3] if a.shape[-1] >= 3 else a[..., :1]  # drop alpha (RGBA / LA)
        return (a != 0).any(axis=-1)
    return a != 0


def compose_masks(masks: Mapping[str, np.ndarray]) -> np.ndarray:
    """Paint part masks into one label map, CelebAMask-19 ids, later parts over earlier ones.

    ``masks``: part name (one of :data:`CELEBAMASK_PARTS`) -> ``(H, W)`` array, non-zero inside the
    part (bool or any number type); all the same shape. Absent parts are simply left out.
    Returns ``(H, W)`` uint8 CelebAMask-19 ids (0 = background where no mask is set).
    """
    if not masks:
        raise ValueError("masks: expected at least one part mask, got none")
    shape = None
    for part, m in masks.items():
        if part not in CELEBAMASK_PARTS:
            raise ValueError(f"masks: unknown part {part!r}; expected names from {CELEBAMASK_PARTS}")
        m = np.asarray(m)
        if m.ndim != 2:
            raise ValueError(f"masks: {part!r} has shape {m.shape}; expected (H, W)")
        if shape is None:
            shape = m.shape
        elif m.shape != shape:
            raise ValueError(f"masks: {part!r} has shape {m.shape}, other parts {shape}; expected one shape")
    labels = np.zeros(shape, dtype=np.uint8)
    for k, part in enumerate(CELEBAMASK_PARTS, start=1):
        if part in masks:
            labels[np.asarray(masks[part]) != 0] = k
    return labels


def read_celebamask_labels(root: Any, index: int, *, mask_size: int | None = None) -> np.ndarray:
    """The label map of CelebA-HQ image ``index``: its part masks composed by :func:`compose_masks`.

    ``root``: the ``CelebAMask-HQ`` folder (or its parent). ``mask_size``: the side every mask must
    have (the real dataset: 512); ``None`` accepts any square size shared by all of the image's masks.
    Returns ``(S, S)`` uint8 **CelebAMask-19** ids (``S = 512`` for the real dataset). Raises
    ``ValueError`` naming the file for a mask of the wrong size and naming ``index`` when the image
    has no mask at all.
    """
    root = resolve_celebamask_root(root)
    index = check_int(index, "index", 0)
    mask_size = check_int(mask_size, "mask_size", 1, MAX_SIZE, allow_none=True)
    masks: dict[str, np.ndarray] = {}
    ref: tuple[Path, tuple[int, ...]] | None = None  # the first mask read and its shape
    for part in CELEBAMASK_PARTS:
        p = celebamask_mask_path(root, index, part)
        if not p.is_file():
            continue
        m = _read_mask(p)
        h, w = m.shape
        if mask_size is not None and (h, w) != (mask_size, mask_size):
            raise ValueError(f"root: mask {p} is {w}x{h}; expected {mask_size}x{mask_size}")
        if ref is None:
            if h != w:
                raise ValueError(f"root: mask {p} is {w}x{h}; expected square masks (512x512 in CelebAMask-HQ)")
            ref = (p, m.shape)
        elif m.shape != ref[1]:
            raise ValueError(f"root: mask {p} is {w}x{h}, {ref[0].name} is {ref[1][1]}x{ref[1][0]}; "
                             "expected all masks of an image to have one size")
        masks[part] = m
    if not masks:
        folder = root / CELEBAMASK_MASK_DIR / str(index // MASKS_PER_FOLDER)
        raise ValueError(f"index: no part masks for image {index} in {folder} "
                         f"(expected files such as {index:05d}_skin.png)")
    return compose_masks(masks)


def _convert(cm: np.ndarray, label_set: str) -> np.ndarray:
    """(H, W) uint8 CelebAMask-19 ids -> (H, W) uint8 ids of ``label_set``."""
    if label_set == "celebamask19":
        return cm
    sof = celebamask_to_sof(cm)
    return sof if label_set == "sof20" else sof_to_sofgan(sof)


def _resize_labels(labels: np.ndarray, size: int | None) -> np.ndarray:
    if size is None or labels.shape == (size, size):
        return labels
    return np.asarray(Image.fromarray(labels).resize((size, size), Image.NEAREST))


def _segmap_job(job: tuple) -> int:
    root, index, target, label_set, size, mask_size = job
    cm = read_celebamask_labels(root, index, mask_size=mask_size)
    out = _resize_labels(_convert(cm, label_set), size)
    png(out.astype(np.uint8), Path(target) / f"{index:05d}.png")
    return index


def build_segmap_folder(root: Any, out: Any, *, label_set: str = "sof20", size: int | None = None,
                        limit: int | None = None, workers: int | None = None, overwrite: bool = False,
                        progress: bool = True) -> Path:
    """Compose every CelebAMask-HQ mask set into a label map and write a segmap folder.

    Args:
        root: the ``CelebAMask-HQ`` folder (or its parent); see the module docstring.
        out: the output folder. Layout: ``OUT/segmaps/{i:05d}.png`` (8-bit single-channel label
            maps, ``i`` the CelebA-HQ index) and ``OUT/index.json`` (``label_set``, ``size``,
            ``count``, ``complete``), which :class:`~sofgan_lab.train.siw_data.SegmapFolder` reads
            (``label_set="auto"`` picks the set up from the index).
        label_set: ids of the written maps: ``"sof20"`` (default; the nose split by
            :func:`~sofgan_lab.labels.celebamask_to_sof` at the masks' full resolution),
            ``"sofgan17"`` (SOF-20 remapped by :func:`~sofgan_lab.labels.sof_to_sofgan`) or
            ``"celebamask19"`` (the composed ids as they are).
        size: side of the written maps (nearest-neighbour resize after the conversion); ``None``
            keeps the masks' size (512 for the real dataset).
        limit: only the first ``limit`` indices (in index order).
        workers: processes (default: the machine's cores, at most 8).
        overwrite: rebuild a folder built with other settings (``OUT/segmaps`` and the index are
            replaced; other files in ``OUT`` are left alone).
        progress: show a tqdm bar.

    Every file is written atomically (a hidden temporary file and a rename), so an interrupted run
    leaves only complete maps; running the same call again resumes, skipping the maps already
    written. The masks' size is taken from the first index; a mask of another size anywhere raises
    ``ValueError`` naming the file.

    Returns:
        ``out`` as a ``Path``.
    """
    ls = get_label_set(label_set).key
    size = check_int(size, "size", 1, MAX_SIZE, allow_none=True)
    limit = check_int(limit, "limit", 1, allow_none=True)
    root = resolve_celebamask_root(root)
    indices = celebamask_indices(root)[:limit]
    first = read_celebamask_labels(root, indices[0])
    mask_size = first.shape[0]
    params = {"source": "CelebAMask-HQ", "label_set": ls, "size": size or mask_size, "mask_size": mask_size}
    target, done = open_output(out, "segmaps", SEGMAP_FOLDER_FORMAT, params, overwrite)
    out = target.parent
    write_index(out, SEGMAP_FOLDER_FORMAT, params, root=str(root), count=len(indices), complete=False)
    todo = [i for i in indices if f"{i:05d}.png" not in done]
    jobs = [(str(root), i, str(target), ls, size, mask_size) for i in todo]
    run_jobs(_segmap_job, jobs, workers=workers, desc="segmaps", progress=progress)
    write_index(out, SEGMAP_FOLDER_FORMAT, params, root=str(root), count=len(indices), complete=True)
    log.info("wrote %d segmaps (%s, %d²; %d already there) to %s", len(todo), ls, params["size"],
             len(indices) - len(todo), target)
    return out
