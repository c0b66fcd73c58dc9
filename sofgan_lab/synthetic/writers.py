"""Writers for the synthetic world: the SOF training layout and photo folders.

Both write into a temporary sibling folder and rename it to ``out`` at the end, so an
interrupted run leaves nothing half-written. The same seed gives byte-identical files.

SOF scans layout (``write_scans``)::

    OUT/index.json                 dataset index (format, seed, sizes, camera model, instances)
    OUT/<instance>/seg_XX.png      label maps, 8-bit, SOF-20 ids (XX = view index, zero-padded)
    OUT/<instance>/seg_vis_XX.png  colour previews (``labels.SOF20_PALETTE``)
    OUT/<instance>/cam2world.npy   (N, 4, 4) float32, OpenCV convention
    OUT/<instance>/intrinsic.npy   (N, 3, 3) float32, pixels (orthographic: fx = px per unit)
    OUT/<instance>/attributes.json the instance's attributes

Photo folder (``write_photos``)::

    OUT/index.json, OUT/metadata.jsonl (attributes, style, camera per photo)
    OUT/images/NNNNN.png           RGB photos
    OUT/segmaps/NNNNN.png          with ``with_segmaps``: SOF-20 label maps (evaluation only)
    OUT/segmaps_vis/NNNNN.png      and their colour previews
"""
from __future__ import annotations

import json
import logging
import os
import shutil
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from .. import __version__
from .._validate import check_int as _check_int
from ..cameras import FRAMINGS, Camera, framing as framing_kwargs, random_views
from ..io.checkpoints import staged_tree
from ..labels import colorize
from .attributes import instance_rng, sample_attributes
from .head import build_head
from .photo import render_photo, sample_style
from .render import render_segmap

__all__ = ["write_scans", "write_photos", "scan_camera", "MAX_SIZE", "FORMAT_VERSION"]

log = logging.getLogger(__name__)

MAX_SIZE = 4096
FORMAT_VERSION = 1
_CAMERA_STREAM, _STYLE_STREAM = 1, 2
_PERSPECTIVE_FOV = 43.1  # degrees: frames the bust like the orthographic default at radius 4.5


def _check_common(size, seed, camera, supersample, framing="portrait"):
    if not isinstance(framing, str) or framing not in FRAMINGS:
        raise ValueError(f"framing: expected one of {sorted(FRAMINGS)}, got {framing!r}")
    _check_int(size, "size", 1, MAX_SIZE)
    _check_int(seed, "seed", 0)
    _check_int(supersample, "supersample", 1, 8)
    if camera not in ("orthographic", "perspective"):
        raise ValueError(f"camera: expected 'orthographic' or 'perspective', got {camera!r}")


def scan_camera(seed: int, index: int, views: int, size: int, camera: str = "orthographic",
                framing: str = "portrait") -> Camera:
    """The ``views`` random training cameras of instance ``index`` (the release's sampler ranges),
    framed by ``framing`` (``"portrait"``: the head fills the frame; ``"official"``: the release's
    whole-bust framing). The poses do not depend on the framing."""
    cam_seed = int(instance_rng(seed, index, _CAMERA_STREAM).integers(2**62))
    fov = None if camera == "orthographic" else _PERSPECTIVE_FOV
    return random_views(views, seed=cam_seed, image_size=size, fov=fov, **framing_kwargs(framing))


def _png(path: Path, array: np.ndarray) -> None:
    Image.fromarray(array).save(path, format="PNG", compress_level=6)


def _write_instance(job) -> str:
    root, index, views, size, seed, camera, supersample, framing = job
    torch.set_num_threads(1)
    name = f"{index:04d}"
    attrs = sample_attributes(instance_rng(seed, index))
    head = build_head(attrs)
    cam = scan_camera(seed, index, views, size, camera, framing)
    r = render_segmap(head, cam, supersample=supersample)
    labels = r.labels.numpy().astype(np.uint8)
    vis = colorize(labels)
    d = Path(root) / name
    d.mkdir()
    width = max(2, len(str(views - 1)))
    for v in range(views):
        _png(d / f"seg_{v:0{width}d}.png", labels[v])
        _png(d / f"seg_vis_{v:0{width}d}.png", vis[v])
    np.save(d / "cam2world.npy", cam.cam2world.numpy().astype(np.float32))
    np.save(d / "intrinsic.npy", cam.intrinsics.expand(views, 3, 3).numpy().astype(np.float32))
    (d / "attributes.json").write_text(json.dumps(attrs, indent=2, sort_keys=True) + "\n")
    return name


def _run(jobs, fn, workers, desc, progress):
    workers = _default_workers() if workers is None else _check_int(workers, "workers", 1)
    workers = min(workers, len(jobs))
    bar = tqdm(total=len(jobs), desc=desc, disable=not progress, unit="inst")
    try:
        if workers == 1:
            # The jobs pin torch to one thread (for pool workers); restore the caller's setting.
            threads = torch.get_num_threads()
            try:
                for job in jobs:
                    fn(job)
                    bar.update(1)
            finally:
                torch.set_num_threads(threads)
        else:
            with ProcessPoolExecutor(workers) as pool:
                for _ in pool.map(fn, jobs):
                    bar.update(1)
    finally:
        bar.close()


def _default_workers() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


def write_scans(out: str | os.PathLike, *, instances: int = 122, views: int = 64, size: int = 128,
                seed: int = 0, camera: str = "orthographic", supersample: int = 1,
                framing: str = "portrait", overwrite: bool = False, workers: int | None = None,
                progress: bool = True) -> Path:
    """Write a multi-view segmap dataset in the SOF training layout (see module docstring).

    Args:
        out: the dataset folder (must be absent or empty unless ``overwrite``).
        instances: number of heads (>= 1); instance i is the same whatever the count.
        views: random views per head (>= 1).
        size: image side in pixels (1..4096).
        seed: dataset seed (>= 0); the same seed gives byte-identical files.
        camera: "orthographic" (the release's sampler: radius 4.5, 36 px per unit at 128 px) or
            "perspective" (43.1 degree field of view at the same radius).
        supersample: anti-aliasing of the label maps (1 = none).
        framing: "portrait" (default: the head fills the frame, see ``cameras.PORTRAIT_ZOOM``) or
            "official" (the release's whole-bust framing).
        workers: processes (default: the machine's cores, at most 8).

    Returns:
        the path of the written dataset.
    """
    _check_int(instances, "instances", 1)
    _check_int(views, "views", 1)
    _check_common(size, seed, camera, supersample, framing)
    out = Path(out)
    with staged_tree(out, overwrite) as tmp:
        jobs = [(str(tmp), i, views, size, seed, camera, supersample, framing) for i in range(instances)]
        _run(jobs, _write_instance, workers, "scans", progress)
        index = {
            "format": "sofgan-lab/sof-scans", "format_version": FORMAT_VERSION,
            "generator": f"sofgan-lab {__version__}", "seed": seed, "instances": instances,
            "views": views, "size": size, "label_set": "sof20", "camera": camera, "framing": framing,
            "pixel_offset": 0.5, "supersample": supersample,
            "names": [f"{i:04d}" for i in range(instances)],
        }
        (tmp / "index.json").write_text(json.dumps(index, indent=2) + "\n")
    log.info("wrote %d instances x %d views to %s", instances, views, out)
    return out


def _photo_job(job) -> dict:
    root, index, size, seed, camera, with_segmaps, supersample, framing = job
    torch.set_num_threads(1)
    attrs = sample_attributes(instance_rng(seed, index))
    head = build_head(attrs)
    cam = scan_camera(seed, index, 1, size, camera, framing)
    style = sample_style(instance_rng(seed, index, _STYLE_STREAM))
    photo = render_photo(head, cam, style, supersample=supersample)
    root = Path(root)
    _png(root / "images" / f"{index:05d}.png", photo.images[0])
    if with_segmaps:
        labels = photo.segmap.labels[0].numpy().astype(np.uint8)
        _png(root / "segmaps" / f"{index:05d}.png", labels)
        _png(root / "segmaps_vis" / f"{index:05d}.png", colorize(labels))
    meta = {"index": index, "attributes": attrs, "style": style.to_dict(),
            "cam2world": cam.cam2world[0].tolist(), "intrinsics": cam.intrinsics[0].tolist()}
    (root / "meta" / f"{index:05d}.json").write_text(json.dumps(meta, sort_keys=True) + "\n")
    return meta


def write_photos(out: str | os.PathLike, *, count: int, size: int = 128, seed: int = 0,
                 camera: str = "orthographic", with_segmaps: bool = False, supersample: int = 2,
                 framing: str = "portrait", overwrite: bool = False, workers: int | None = None,
                 progress: bool = True) -> Path:
    """Write ``count`` shaded photos (one random head, view and style each) to ``out``.

    With ``with_segmaps`` the matching SOF-20 label maps are written too (for evaluation only:
    texture training is unpaired). ``framing`` is "portrait" (default) or "official", as in
    :func:`write_scans`. See the module docstring for the layout.
    """
    _check_int(count, "count", 1)
    _check_common(size, seed, camera, supersample, framing)
    if not isinstance(with_segmaps, bool):
        raise TypeError(f"with_segmaps: expected a bool, got {type(with_segmaps).__name__}")
    out = Path(out)
    with staged_tree(out, overwrite) as tmp:
        for sub in ("images", "meta") + (("segmaps", "segmaps_vis") if with_segmaps else ()):
            (tmp / sub).mkdir()
        jobs = [(str(tmp), i, size, seed, camera, with_segmaps, supersample, framing) for i in range(count)]
        _run(jobs, _photo_job, workers, "photos", progress)
        metas = [json.loads((tmp / "meta" / f"{i:05d}.json").read_text()) for i in range(count)]
        shutil.rmtree(tmp / "meta")
        with open(tmp / "metadata.jsonl", "w") as f:
            for m in metas:
                f.write(json.dumps(m, sort_keys=True) + "\n")
        index = {"format": "sofgan-lab/photos", "format_version": FORMAT_VERSION,
                 "generator": f"sofgan-lab {__version__}", "seed": seed, "count": count, "size": size,
                 "camera": camera, "framing": framing, "with_segmaps": with_segmaps, "label_set": "sof20",
                 "supersample": supersample}
        (tmp / "index.json").write_text(json.dumps(index, indent=2) + "\n")
    log.info("wrote %d photos to %s", count, out)
    return out
