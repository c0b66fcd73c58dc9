"""Shared plumbing of the dataset builders: argument checks, atomic writes, resumable output
folders and a process pool with a progress bar."""
from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from .. import __version__
from .._validate import check_int as _check_int
from ..io.checkpoints import atomic_write, atomic_write_text, staged_tree  # noqa: F401  (re-exported for the dataset writers)

log = logging.getLogger(__name__)

MAX_SIZE = 4096
FORMAT_VERSION = 1


def check_int(value: Any, name: str, low: int, high: int | None = None, *, allow_none: bool = False) -> int | None:
    """``value`` as an int in ``[low, high]``; ``TypeError`` / ``ValueError`` naming ``name``."""
    if value is None and allow_none:
        return None
    if allow_none and (isinstance(value, bool) or not isinstance(value, (int, np.integer))):
        raise TypeError(f"{name}: expected an integer or None, got {type(value).__name__}")
    return _check_int(value, name, low, high)


def default_workers() -> int:
    """Processes used when ``workers`` is not given: the machine's cores, at most 8."""
    return max(1, min(os.cpu_count() or 1, 8))


def atomic_save(image: Image.Image, path: Path, **save_kwargs: Any) -> None:
    """Save ``image`` to ``path`` atomically (:func:`~sofgan_lab.io.checkpoints.atomic_write`)."""
    atomic_write(path, lambda tmp: image.save(tmp, **save_kwargs))


def png(array: np.ndarray, path: Path) -> None:
    """Atomically write a uint8 ``(H, W)`` or ``(H, W, 3)`` array as a PNG."""
    atomic_save(Image.fromarray(array), path, format="PNG", compress_level=6)


def open_output(out: Any, sub: str, fmt: str, params: dict, overwrite: bool) -> tuple[Path, set[str]]:
    """Prepare the resumable output folder ``out/sub`` of a builder.

    ``out/index.json`` records ``format`` and ``params``. A folder built earlier with the same
    format and parameters is resumed: the names of its finished files come back so they can be
    skipped. Anything else that is not empty needs ``overwrite`` (which rebuilds ``out/sub`` and
    the index and leaves other files alone). Left-over temporary files are removed.

    Returns ``(out/sub, names of the finished files)``.
    """
    if not isinstance(out, (str, os.PathLike)):
        raise TypeError(f"out: expected a path, got {type(out).__name__}")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"out: {out} exists and is not a folder")
    if not isinstance(overwrite, bool):
        raise TypeError(f"overwrite: expected a bool, got {type(overwrite).__name__}")
    index = out / "index.json"
    target = out / sub
    done: set[str] = set()
    if out.is_dir() and any(out.iterdir()):
        previous = None
        if index.is_file():
            try:
                previous = json.loads(index.read_text())
            except (OSError, json.JSONDecodeError):
                previous = None
        if overwrite:
            if target.is_dir():
                shutil.rmtree(target)
            index.unlink(missing_ok=True)
        elif previous is None or previous.get("format") != fmt:
            raise ValueError(f"out: {out} is not empty and holds no {fmt} index.json "
                             "(pass overwrite=True / --overwrite to write into it)")
        else:
            changed = {k: (previous.get(k), v) for k, v in params.items() if previous.get(k) != v}
            if changed:
                diff = ", ".join(f"{k}={old!r} (now {new!r})" for k, (old, new) in changed.items())
                raise ValueError(f"out: {out} was built with {diff}; pass overwrite=True / --overwrite to "
                                 "rebuild it")
            if target.is_dir():
                for p in target.iterdir():
                    if p.name.startswith(".") and ".tmp-" in p.name:
                        p.unlink(missing_ok=True)
                    elif p.is_file():
                        done.add(p.name)
            log.info("resuming %s: %d files already written", target, len(done))
    target.mkdir(parents=True, exist_ok=True)
    return target, done


def write_index(out: Path, fmt: str, params: dict, **extra: Any) -> None:
    """Atomically write ``out/index.json`` (format, version, generator, ``params``, ``extra``)."""
    index = {"format": fmt, "format_version": FORMAT_VERSION, "generator": f"sofgan-lab {__version__}",
             **params, **extra}
    atomic_write_text(Path(out) / "index.json", json.dumps(index, indent=2) + "\n")


def run_jobs(fn: Callable[[Any], Any], jobs: Sequence[Any], *, workers: int | None, desc: str,
             progress: bool, unit: str = "file") -> list[Any]:
    """``[fn(job) for job in jobs]`` on ``workers`` processes (1: in this process), with a tqdm bar
    when ``progress``. The first exception raised by a job is raised here."""
    workers = default_workers() if workers is None else check_int(workers, "workers", 1)
    if not isinstance(progress, bool):
        raise TypeError(f"progress: expected a bool, got {type(progress).__name__}")
    workers = max(1, min(workers, len(jobs)))
    results: list[Any] = []
    with tqdm(total=len(jobs), desc=desc, disable=not progress, unit=unit) as bar:
        if workers == 1:
            for job in jobs:
                results.append(fn(job))
                bar.update(1)
        else:
            chunk = max(1, min(64, len(jobs) // (workers * 8)))
            with ProcessPoolExecutor(workers) as pool:
                for r in pool.map(fn, jobs, chunksize=chunk):
                    results.append(r)
                    bar.update(1)
    return results


def numeric_key(path: Path) -> tuple:
    """Sort key: numeric stems in numeric order (CelebA-HQ's ``2.jpg`` before ``10.jpg``), then the rest."""
    stem = path.stem
    return (0, int(stem), str(path)) if stem.isdigit() else (1, 0, str(path))


