"""The headless demo (``sofgan-lab demo``): a few portraits, their segmaps and a contact sheet."""
from __future__ import annotations

import io
import json
import logging
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from .. import __version__
from ..demo import demo_available
from ..io.checkpoints import CheckpointError, atomic_write_bytes

__all__ = ["write_demo", "write_demo_portraits"]

log = logging.getLogger(__name__)

SOURCES = ("auto", "pipeline", "synthetic")


def _png(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def write_demo_portraits(out: str | Path, *, count: int, size: int, seed: int = 0, overwrite: bool = False) -> Path:
    """``count`` demo-pipeline portraits (geometry and texture seed ``seed + i``) at ``size`` px into ``out``:
    ``images/``, ``segmaps/`` (SOF-20 ids), ``segmaps_vis/`` and ``index.json``. A non-empty ``out`` needs
    ``overwrite``; absent demo models are a ``source`` error."""
    from ..pipeline import SofGAN

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"out: {out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise ValueError(f"out: {out} is not empty (pass --overwrite to replace its contents)")
        shutil.rmtree(out)
    try:
        pipe = SofGAN.from_pretrained("demo")
    except (FileNotFoundError, CheckpointError) as exc:
        raise ValueError(f"--source: {str(exc).partition(': ')[2] or exc}") from None
    seeds = [seed + i for i in range(count)]
    portraits = [p for k in range(0, len(seeds), 8)
                 for p in pipe(geometry=seeds[k:k + 8], texture=seeds[k:k + 8])]
    for i, p in enumerate(portraits):
        image, seg = p.image, Image.fromarray(p.segmap)
        vis = p.segmap_image("sof20")
        if image.size != (size, size):
            image = image.resize((size, size), Image.LANCZOS)
        if seg.size != (size, size):
            seg, vis = (im.resize((size, size), Image.NEAREST) for im in (seg, vis))
        for sub, im in (("images", image), ("segmaps", seg), ("segmaps_vis", vis)):
            atomic_write_bytes(out / sub / f"{i:05d}.png", _png(im))
    index = {"format": "sofgan-lab/demo-portraits", "generator": f"sofgan-lab {__version__}", "model": "demo",
             "count": count, "size": size, "seed": seed, "label_set": "sof20",
             "geometry_seeds": seeds, "texture_seeds": seeds, "truncation": pipe.truncation}
    atomic_write_bytes(out / "index.json", (json.dumps(index, indent=2) + "\n").encode())
    return out


def write_demo(out: str | Path, *, count: int = 8, size: int = 128, seed: int = 0, source: str = "auto",
               overwrite: bool = False, progress: bool = True) -> Path:
    """Portraits, their segmaps and ``contact_sheet.png`` (segmaps above portraits) in ``out``: from the demo
    pipeline (:func:`write_demo_portraits`), or the synthetic world's shaded photos when the demo models are
    absent (``source="auto"``) or with ``source="synthetic"``. A previous demo in ``out`` is replaced; any
    other non-empty folder needs ``overwrite``."""
    from ..synthetic.writers import write_photos

    out_dir = Path(out)
    previous = out_dir / "contact_sheet.png"
    overwrite = overwrite or (previous.is_file() and (out_dir / "index.json").is_file())
    if count < 1:
        raise ValueError(f"count: expected an integer >= 1, got {count}")
    if not 8 <= size <= 4096:
        raise ValueError(f"size: expected an integer in 8..4096, got {size}")
    if source not in SOURCES:
        raise ValueError(f"source: expected one of {', '.join(SOURCES)}, got {source!r}")
    if source == "auto":
        source = "pipeline" if demo_available() else "synthetic"
        if source == "synthetic":
            log.info("the demo texture model is not in data/demo/siw yet: writing the synthetic world's photos")
    if source == "synthetic":
        out_dir = write_photos(out_dir, count=count, size=size, seed=seed, with_segmaps=True,
                               overwrite=overwrite, progress=progress)
    else:
        out_dir = write_demo_portraits(out_dir, count=count, size=size, seed=seed, overwrite=overwrite)
    tiles = [np.asarray(Image.open(out_dir / "images" / f"{i:05d}.png")) for i in range(count)]
    vis = [np.asarray(Image.open(out_dir / "segmaps_vis" / f"{i:05d}.png")) for i in range(count)]
    sheet = np.concatenate([np.concatenate(vis, 1), np.concatenate(tiles, 1)], 0)
    Image.fromarray(sheet).save(out_dir / "contact_sheet.png")
    return out_dir
