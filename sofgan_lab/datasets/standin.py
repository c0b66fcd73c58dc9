"""Stand-ins: tiny trees with the exact folder and file layout of CelebAMask-HQ and FFHQ, made from
the synthetic world (:func:`sofgan_lab.synthetic.write_photos`), so that the real-data code paths
run offline, in tests and notebooks.

They are **not** the real datasets: the photos are procedural renders (one random head, view and
style each; views drawn uniformly in ``yaw_range`` × ``pitch_range``, by default ±15° × ±5°, a
modest spread of head turns around frontal), and the masks are the renders' exact SOF-20 label
maps converted to CelebAMask-19 by
:func:`sof_to_celebamask` (the two nose halves merged into one nose) and cut into one binary mask
per part. Every stand-in writes ``sofgan-lab-standin.json`` at its top, so it cannot be mistaken
for the real thing.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .. import __version__
from ..labels import CELEBAMASK19_TO_SOF20, NUM_SOF_CLASSES, SOF, CelebAMask, validate_labels
from ._common import MAX_SIZE, atomic_save, check_int, png, run_jobs, staged_tree
from .celebamask import CELEBAHQ_IMAGE_DIR, CELEBAMASK_MASK_DIR, CELEBAMASK_PARTS, MASKS_PER_FOLDER
from .images import FFHQ_IMAGE_DIR

__all__ = ["SOF20_TO_CELEBAMASK19", "sof_to_celebamask", "make_celebamask_standin", "make_ffhq_standin",
           "render_standin_photo", "STANDIN_MARKER"]

log = logging.getLogger(__name__)

STANDIN_MARKER = "sofgan-lab-standin.json"


def _sof_to_celebamask_table() -> np.ndarray:
    table = np.full(NUM_SOF_CLASSES, -1, dtype=np.int64)
    for cm_id, sof_id in enumerate(CELEBAMASK19_TO_SOF20.tolist()):
        if sof_id >= 0:
            table[sof_id] = cm_id
    table[SOF.R_NOSE] = table[SOF.L_NOSE] = CelebAMask.NOSE
    assert (table >= 0).all()
    table.setflags(write=False)
    return table


SOF20_TO_CELEBAMASK19: np.ndarray = _sof_to_celebamask_table()
"""(20,) int64: SOF-20 id -> CelebAMask-19 id; both nose halves (``r_nose``, ``l_nose``) -> ``nose``,
every other class to the class of the same name."""


def sof_to_celebamask(labels: Any) -> np.ndarray:
    """SOF-20 ids -> CelebAMask-19 ids (the two nose halves merged; the inverse of
    :func:`sofgan_lab.labels.celebamask_to_sof` up to the nose split).

    ``labels``: any shape, integer numpy array (or array-like), SOF-20 ids in [0, 19].
    Returns a numpy array of the same shape and dtype with CelebAMask-19 ids in [0, 18].
    """
    x = np.asarray(validate_labels(np.asarray(labels), "sof20", name="labels"))
    return SOF20_TO_CELEBAMASK19[x].astype(x.dtype, copy=False)


_CAMERA_STREAM, _STYLE_STREAM = 11, 2  # instance_rng streams (2: the synthetic world's style stream)
_DEFAULT_YAW, _DEFAULT_PITCH = (-15.0, 15.0), (-5.0, 5.0)


def _check_range(r: Any, name: str, limit: float) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in r)
    except (TypeError, ValueError):
        raise TypeError(f"{name}: expected a pair of numbers (degrees), got {r!r}") from None
    if not (-limit <= lo <= hi <= limit):
        raise ValueError(f"{name}: expected low <= high within ±{limit:g} degrees, got {r!r}")
    return lo, hi


def render_standin_photo(seed: int, k: int, size: int, yaw_range: tuple[float, float],
                         pitch_range: tuple[float, float]) -> tuple[np.ndarray, np.ndarray, dict]:
    """Synthetic photo ``k`` of a stand-in: ``(image (size, size, 3) uint8, labels (size, size) uint8
    SOF-20 ids, camera dict with yaw/pitch in degrees)``. Head ``k`` and its texture style are the
    synthetic world's instance ``k`` of ``seed`` (as in ``write_photos``); the view is drawn from
    the ranges with its own random stream (an orthographic camera at the SOF sampler's framing)."""
    from ..cameras import Camera
    from ..synthetic import build_head, instance_rng, render_photo, sample_attributes, sample_style

    head = build_head(sample_attributes(instance_rng(seed, k)))
    u = instance_rng(seed, k, _CAMERA_STREAM).random(2)
    yaw = yaw_range[0] + (yaw_range[1] - yaw_range[0]) * float(u[0])
    pitch = pitch_range[0] + (pitch_range[1] - pitch_range[0]) * float(u[1])
    cam = Camera.from_orbit(yaw, pitch, image_size=size)  # the release's orthographic sampler framing
    style = sample_style(instance_rng(seed, k, _STYLE_STREAM))
    photo = render_photo(head, cam, style, supersample=2)
    labels = photo.segmap.labels[0].numpy().astype(np.uint8)
    return photo.images[0], labels, {"yaw": round(yaw, 3), "pitch": round(pitch, 3)}


def _render_one_thread(seed, k, size, yaw_range, pitch_range):
    """:func:`render_standin_photo` on one torch thread (the jobs run side by side in processes)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return render_standin_photo(seed, k, size, yaw_range, pitch_range)
    finally:
        torch.set_num_threads(threads)


def _celebamask_job(job: tuple) -> dict:
    root, k, i, size, image_size, seed, yaw_range, pitch_range, keep_source = job
    rgb, sof, view = _render_one_thread(seed, k, size, yaw_range, pitch_range)
    root = Path(root)
    im = Image.fromarray(rgb)
    if image_size != size:
        im = im.resize((image_size, image_size), Image.LANCZOS, reducing_gap=None)
    atomic_save(im, root / CELEBAHQ_IMAGE_DIR / f"{i}.jpg", format="JPEG", quality=95)
    cm = sof_to_celebamask(sof)
    folder = root / CELEBAMASK_MASK_DIR / str(i // MASKS_PER_FOLDER)
    folder.mkdir(exist_ok=True)
    for part_id, part in enumerate(CELEBAMASK_PARTS, start=1):
        m = cm == part_id
        if m.any():
            png(np.where(m, 255, 0).astype(np.uint8), folder / f"{i:05d}_{part}.png")
    if keep_source:
        png(sof, root / "source" / "segmaps" / f"{i:05d}.png")
    return {"index": i, **view}


def _ffhq_job(job: tuple) -> dict:
    root, k, size, seed, yaw_range, pitch_range, per_folder = job
    rgb, _, view = _render_one_thread(seed, k, size, yaw_range, pitch_range)
    folder = Path(root) / FFHQ_IMAGE_DIR / f"{per_folder * (k // per_folder):05d}"
    folder.mkdir(parents=True, exist_ok=True)
    png(rgb, folder / f"{k:05d}.png")
    return {"index": k, **view}


def _check_common(count: int, size: int, seed: int, yaw_range: Any, pitch_range: Any,
                  flags: dict[str, Any]) -> tuple[tuple[float, float], tuple[float, float]]:
    check_int(count, "count", 1)
    check_int(size, "size", 8, MAX_SIZE)
    check_int(seed, "seed", 0)
    for name, v in flags.items():
        if not isinstance(v, bool):
            raise TypeError(f"{name}: expected a bool, got {type(v).__name__}")
    return _check_range(yaw_range, "yaw_range", 90.0), _check_range(pitch_range, "pitch_range", 60.0)


def make_celebamask_standin(out: Any, count: int = 8, *, size: int = 512, image_size: int | None = None,
                            seed: int = 0, stride: int = 1, yaw_range: tuple[float, float] = _DEFAULT_YAW,
                            pitch_range: tuple[float, float] = _DEFAULT_PITCH, keep_source: bool = False,
                            overwrite: bool = False, workers: int | None = None, progress: bool = True) -> Path:
    """Write a tiny tree in the CelebAMask-HQ layout from synthetic photos (see the module docstring).

    Layout (``out`` plays the ``CelebAMask-HQ`` folder)::

        OUT/CelebA-HQ-img/{i}.jpg                          RGB photos (JPEG, quality 95)
        OUT/CelebAMask-HQ-mask-anno/{i // 2000}/{i:05d}_{part}.png   8-bit masks, 0 or 255
        OUT/sofgan-lab-standin.json                        what this is, seed, indices, views
        OUT/source/segmaps/{i:05d}.png                     with ``keep_source``: the SOF-20 maps
                                                           (+ ``source/index.json``)

    Args:
        out: the folder to write (absent or empty unless ``overwrite``); built in a temporary
            sibling and renamed at the end.
        count: number of images; synthetic head ``k`` becomes CelebA-HQ index ``i = k * stride``.
        size: side of the masks and of the synthetic renders (the real masks: 512).
        image_size: side of the JPEGs (the real ones: 1024); default ``size``. Other sides are
            resized from the render with Lanczos.
        seed: the synthetic world's seed; the same arguments give the same files.
        stride: index step, to spread the masks over several ``{i // 2000}`` folders (e.g. 1500).
        yaw_range, pitch_range: degrees; each view is drawn uniformly in them. ``(0, 0)`` and
            ``(0, 0)`` give exactly frontal views, where the synthetic nose halves (split at the 3D
            median plane) coincide with :func:`~sofgan_lab.labels.celebamask_to_sof`'s 2D split.
        keep_source: also keep the original SOF-20 label maps (ground truth for round trips).
        workers: processes (default: the machine's cores, at most 8). progress: a tqdm bar.

    Parts absent from an image have no mask file, as in the real dataset. Returns ``out``.
    """
    yaw_range, pitch_range = _check_common(count, size, seed, yaw_range, pitch_range,
                                           {"keep_source": keep_source, "overwrite": overwrite, "progress": progress})
    image_size = check_int(image_size, "image_size", 8, MAX_SIZE, allow_none=True) or size
    stride = check_int(stride, "stride", 1)
    out = Path(out)
    with staged_tree(out, overwrite) as tmp:
        (tmp / CELEBAHQ_IMAGE_DIR).mkdir()
        (tmp / CELEBAMASK_MASK_DIR).mkdir()
        for f in sorted({k * stride // MASKS_PER_FOLDER for k in range(count)}):
            (tmp / CELEBAMASK_MASK_DIR / str(f)).mkdir()
        if keep_source:
            (tmp / "source" / "segmaps").mkdir(parents=True)
            (tmp / "source" / "index.json").write_text(json.dumps({"label_set": "sof20"}) + "\n")
        jobs = [(str(tmp), k, k * stride, size, image_size, seed, yaw_range, pitch_range, keep_source)
                for k in range(count)]
        views = run_jobs(_celebamask_job, jobs, workers=workers, desc="stand-in", progress=progress, unit="img")
        marker = {"what": "a stand-in for CelebAMask-HQ made by sofgan-lab from synthetic photos; "
                          "not the real dataset",
                  "layout": "CelebAMask-HQ", "generator": f"sofgan-lab {__version__}", "seed": seed,
                  "count": count, "size": size, "image_size": image_size, "stride": stride,
                  "yaw_range": list(yaw_range), "pitch_range": list(pitch_range),
                  "source_label_set": "sof20", "keep_source": keep_source, "views": views}
        (tmp / STANDIN_MARKER).write_text(json.dumps(marker, indent=2) + "\n")
    log.info("wrote a CelebAMask-HQ stand-in (%d images, masks %d², photos %d²) to %s", count, size,
             image_size, out)
    return out


def make_ffhq_standin(out: Any, count: int = 8, *, size: int = 128, seed: int = 0, per_folder: int = 1000,
                      yaw_range: tuple[float, float] = _DEFAULT_YAW, pitch_range: tuple[float, float] = _DEFAULT_PITCH,
                      overwrite: bool = False, workers: int | None = None, progress: bool = True) -> Path:
    """Write a tiny tree in FFHQ's nested layout from synthetic photos (see the module docstring).

    Layout (``out`` plays the ``ffhq`` folder)::

        OUT/images1024x1024/{k:05d}/{i:05d}.png    RGB photos, k = per_folder * (i // per_folder)
        OUT/sofgan-lab-standin.json

    The folder keeps the real name ``images1024x1024`` whatever ``size`` is (real: 1024², 1,000
    per folder); a ``per_folder`` below 1000 spreads a few images over several folders. Photo ``i``
    shows the synthetic world's head ``i`` of ``seed`` (the heads of a CelebAMask-HQ stand-in with
    the same seed: the two are paired, unlike the real datasets). Returns ``out``.
    """
    yaw_range, pitch_range = _check_common(count, size, seed, yaw_range, pitch_range,
                                           {"overwrite": overwrite, "progress": progress})
    per_folder = check_int(per_folder, "per_folder", 1)
    out = Path(out)
    with staged_tree(out, overwrite) as tmp:
        jobs = [(str(tmp), k, size, seed, yaw_range, pitch_range, per_folder) for k in range(count)]
        for f in sorted({per_folder * (k // per_folder) for k in range(count)}):
            (tmp / FFHQ_IMAGE_DIR / f"{f:05d}").mkdir(parents=True)
        views = run_jobs(_ffhq_job, jobs, workers=workers, desc="stand-in", progress=progress, unit="img")
        marker = {"what": "a stand-in for FFHQ made by sofgan-lab from synthetic photos; not the real dataset",
                  "layout": "FFHQ", "generator": f"sofgan-lab {__version__}", "seed": seed, "count": count,
                  "size": size, "per_folder": per_folder, "yaw_range": list(yaw_range),
                  "pitch_range": list(pitch_range), "views": views}
        (tmp / STANDIN_MARKER).write_text(json.dumps(marker, indent=2) + "\n")
    log.info("wrote an FFHQ stand-in (%d images at %d²) to %s", count, size, out)
    return out
