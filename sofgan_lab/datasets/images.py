"""Photo folders for texture training: FFHQ's nested layout, resized copies, and on-demand loading.

FFHQ layout (the dataset as distributed; ``root`` is the ``ffhq`` folder)::

    ffhq/images1024x1024/{k:05d}/{i:05d}.png     1024x1024 RGB PNGs, k = 1000 * (i // 1000),
                                                 i = 0..69999 (folders 00000, 01000, ..., 69000)

:func:`sofgan_lab.images.list_images` descends one level of sub-folders when a folder holds
no image itself, so ``ImageFolder("ffhq/images1024x1024", 256)`` works as is. But
:class:`~sofgan_lab.train.siw_data.ImageFolder` decodes every image at once and keeps them all in
memory as uint8 (3·size² bytes each: 49 MB per 1,000 images at 128², 197 MB at 256², so 13.8 GB
for all of FFHQ at 256², and twice that while it loads) and resizes from 1024² on every start.
Two remedies here:

* :func:`build_image_folder` writes a resized copy once (``OUT/images/{name}.png``); training then
  reads small files.
* :class:`StreamingImageFolder` has the same ``len`` / ``batch`` interface as ``ImageFolder`` but
  decodes the images of each batch on demand (memory: one batch).
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from ..images import from_uint8, list_images, read_image
from ._common import MAX_SIZE, check_int, numeric_key, open_output, run_jobs, atomic_save, write_index
from .celebamask import CELEBAHQ_IMAGE_DIR

__all__ = ["FFHQ_IMAGE_DIR", "IMAGE_FOLDER_FORMAT", "ffhq_images", "source_images", "build_image_folder",
           "StreamingImageFolder", "load_rgb", "IMAGE_BYTES_PER_1K"]

log = logging.getLogger(__name__)

FFHQ_IMAGE_DIR = "images1024x1024"
IMAGE_FOLDER_FORMAT = "sofgan-lab/images"
IMAGE_BYTES_PER_1K = {size: 3 * size * size * 1000 for size in (64, 128, 256, 512, 1024)}
"""Memory that :class:`~sofgan_lab.train.siw_data.ImageFolder` holds per 1,000 images, by side
(uint8 RGB): 128 -> 49,152,000 bytes, 256 -> 196,608,000 bytes."""


def ffhq_images(root: Any) -> list[Path]:
    """The PNGs of FFHQ's ``images1024x1024`` tree, sorted by path (= by index).

    ``root``: the ``ffhq`` folder or its ``images1024x1024`` folder itself (or any folder of
    numbered sub-folders of PNGs). Raises ``FileNotFoundError`` naming ``root``.
    """
    if not isinstance(root, (str, os.PathLike)):
        raise TypeError(f"root: expected a path, got {type(root).__name__}")
    return list_images(root, FFHQ_IMAGE_DIR, "root", exts=(".png",), recursive=True)


def source_images(source: Any) -> list[Path]:
    """The photos of ``source``, in index order: a CelebAMask-HQ folder (its ``CelebA-HQ-img``, or
    the parent of ``CelebAMask-HQ``), an FFHQ folder (``images1024x1024``, nested) or any folder
    of images (its ``images/`` sub-folder when present, one level of sub-folders when it holds no
    image itself). Numeric file names sort by number (``2.jpg`` before ``10.jpg``)."""
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(f"source: expected a path, got {type(source).__name__}")
    src = Path(source)
    if not src.is_dir():
        raise FileNotFoundError(f"source: {src} is not a folder")
    for cand in (src / CELEBAHQ_IMAGE_DIR, src / "CelebAMask-HQ" / CELEBAHQ_IMAGE_DIR):
        if cand.is_dir():
            return sorted(list_images(cand, "images", "source", recursive=False), key=numeric_key)
    if (src / FFHQ_IMAGE_DIR).is_dir():
        files = list_images(src / FFHQ_IMAGE_DIR, "images", "source", recursive=True)
    else:
        files = list_images(src, "images", "source")
    return sorted(files, key=lambda p: (numeric_key(p.parent), numeric_key(p)))


def load_rgb(path: Path, size: int, *, resample: int = Image.BILINEAR, what: str = "images") -> np.ndarray:
    """One image as ``(size, size, 3)`` uint8 RGB: a centre square crop when it is not square, then
    an antialiased resize (``resample``; bilinear as in ``ImageFolder``) when its side differs."""
    im = read_image(path, what).convert("RGB")
    if im.size != (size, size):
        if im.size[0] != im.size[1]:
            side = min(im.size)
            left, top = (im.size[0] - side) // 2, (im.size[1] - side) // 2
            im = im.crop((left, top, left + side, top + side))
        im = im.resize((size, size), resample, reducing_gap=None)
    return np.asarray(im, dtype=np.uint8)


def _output_name(path: Path) -> str:
    stem = path.stem
    return f"{int(stem):05d}" if stem.isdigit() else stem


def _image_job(job: tuple) -> str:
    path, target, name, size, fmt = job
    a = load_rgb(Path(path), size, resample=Image.LANCZOS, what="source")
    im = Image.fromarray(a)
    if fmt == "png":
        atomic_save(im, Path(target) / f"{name}.png", format="PNG", compress_level=6)
    else:
        atomic_save(im, Path(target) / f"{name}.jpg", format="JPEG", quality=95, subsampling=0)
    return name


def build_image_folder(source: Any, out: Any, *, size: int = 256, limit: int | None = None, format: str = "png",
                       workers: int | None = None, overwrite: bool = False, progress: bool = True) -> Path:
    """Write resized copies of a photo dataset for texture training.

    Args:
        source: see :func:`source_images` (CelebAMask-HQ, FFHQ or a plain image folder).
        out: output folder: ``OUT/images/{name}.{png|jpg}`` and ``OUT/index.json``. Numeric names are
            zero-padded to 5 digits (CelebA-HQ's ``17.jpg`` -> ``00017.png``); others keep their stem.
        size: side of the written images; non-square images are centre-cropped first, then resized
            with Lanczos (antialiased).
        limit: only the first ``limit`` images (in index order).
        format: ``"png"`` (lossless, default) or ``"jpg"`` (quality 95, about 4x smaller).
        workers, overwrite, progress: as in :func:`~sofgan_lab.datasets.build_segmap_folder`
            (atomic files, an interrupted run resumes).

    Returns:
        ``out`` as a ``Path`` (read it with ``ImageFolder(out, size)`` or
        :class:`StreamingImageFolder`).
    """
    size = check_int(size, "size", 1, MAX_SIZE)
    limit = check_int(limit, "limit", 1, allow_none=True)
    if format not in ("png", "jpg"):
        raise ValueError(f"format: expected 'png' or 'jpg', got {format!r}")
    files = source_images(source)[:limit]
    names = [_output_name(p) for p in files]
    if len(set(names)) != len(names):
        seen: dict[str, Path] = {}
        for p, n in zip(files, names):
            if n in seen:
                raise ValueError(f"source: {seen[n]} and {p} would both be written as {n}.{format}")
            seen[n] = p
    params = {"source": str(Path(source)), "size": size, "image_format": format}
    target, done = open_output(out, "images", IMAGE_FOLDER_FORMAT, params, overwrite)
    out = target.parent
    write_index(out, IMAGE_FOLDER_FORMAT, params, count=len(files), complete=False)
    jobs = [(str(p), str(target), n, size, format) for p, n in zip(files, names) if f"{n}.{format}" not in done]
    run_jobs(_image_job, jobs, workers=workers, desc="images", progress=progress)
    write_index(out, IMAGE_FOLDER_FORMAT, params, count=len(files), complete=True)
    log.info("wrote %d images at %d² (%d already there) to %s", len(jobs), size, len(files) - len(jobs), target)
    return out


class StreamingImageFolder:
    """RGB images decoded on demand; a drop-in for :class:`~sofgan_lab.train.siw_data.ImageFolder`
    in ``len`` and ``batch`` (same files, same crop and resize, same values).

    ``folder``: as for ``ImageFolder`` (its ``images/`` sub-folder when present; one level of
    sub-folders when it holds no image itself, e.g. FFHQ's ``images1024x1024``). ``size``: side of
    the returned images. ``limit``: use the first ``limit`` files. Memory: the file list only; each
    :meth:`batch` decodes its images (fast when the files are already ``size``² — see
    :func:`build_image_folder`).
    """

    def __init__(self, folder: str | Path, size: int, *, limit: int | None = None):
        self.size = check_int(size, "size", 1, MAX_SIZE)
        limit = check_int(limit, "limit", 1, allow_none=True)
        self.files = list_images(folder, "images", "images")[:limit]
        log.info("images: %d from %s at %d² (streamed)", len(self.files), Path(folder), self.size)

    def __len__(self) -> int:
        return len(self.files)

    def uint8(self, index: Any) -> torch.Tensor:
        """uint8 images ``[B, 3, size, size]`` for ``index`` (a 1-D integer tensor or sequence)."""
        idx = torch.as_tensor(index).reshape(-1).tolist()
        arrays = [load_rgb(self.files[int(i)], self.size) for i in idx]
        if not arrays:
            return torch.zeros(0, 3, self.size, self.size, dtype=torch.uint8)
        return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()

    def batch(self, index: Any) -> torch.Tensor:
        """Float images in [-1, 1], ``[B, 3, size, size]``."""
        return from_uint8(self.uint8(index))
