"""The native checkpoint format: a folder with ``config.json`` and ``model.safetensors``.

``config.json`` records the format version, the model kind, the library version and the model's
config dataclass. Files are written to a temporary name and renamed into place, so a crash
never leaves a half-written checkpoint; safetensors never executes code on load.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable

import torch
from safetensors.torch import load_file, save_file

from .. import __version__

__all__ = ["FORMAT_VERSION", "CheckpointError", "save_module", "load_module", "atomic_write_bytes",
           "atomic_save_safetensors", "read_json", "new_tree", "commit_tree"]

FORMAT_VERSION = 1


def _publish(tmp: str, path: Path) -> None:
    """Give a finished temporary file the usual permissions (mkstemp makes it 0600) and rename it."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    os.replace(tmp, path)


class CheckpointError(ValueError):
    """A checkpoint that cannot be read: missing, corrupt, of another kind, or mismatched."""


def atomic_write(path: str | Path, write: Callable[[str], Any], *, fsync: bool = False) -> Path:
    """Call ``write(tmp)`` on a hidden temporary file beside ``path`` (same suffix, so writers that
    infer the format from the name still work), then rename it to ``path``: ``path`` is either
    absent, the old file, or complete, never half-written. ``fsync`` flushes the data to the disk
    before the rename (checkpoints). The one atomic writer the others are built on."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        if fsync:
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        _publish(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (:func:`atomic_write`), flushed to the disk."""
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(data), fsync=True)


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (:func:`atomic_write`)."""
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def atomic_save_safetensors(tensors: dict[str, torch.Tensor], path: str | Path, metadata: dict | None = None) -> None:
    """``safetensors.torch.save_file`` through a temporary file and a rename."""
    atomic_write(path, lambda tmp: save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, tmp,
                                             metadata=metadata))


def read_json(path: str | Path, name: str) -> dict:
    """Parse the JSON file ``path``; a :class:`CheckpointError` naming ``name`` and the file if it is not JSON."""
    try:
        return json.loads(Path(path).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{name}: {path} is not valid JSON ({exc})") from None


def save_module(module: torch.nn.Module, directory: str | Path, *, kind: str, config: dict) -> Path:
    """Save ``module``'s state dict and its ``config`` (a JSON-able dict) into ``directory``."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    atomic_save_safetensors(module.state_dict(), d / "model.safetensors", metadata={"kind": kind})
    meta = {"format": "sofgan-lab", "format_version": FORMAT_VERSION, "kind": kind,
            "library_version": __version__, "config": config}
    atomic_write_bytes(d / "config.json", (json.dumps(meta, indent=2) + "\n").encode())
    return d


def load_module(cls, directory: str | Path, *, kind: str, config_cls, map_location="cpu"):
    """Build ``cls(config_cls.from_dict(config))`` and load ``model.safetensors`` into it strictly."""
    d = Path(directory)
    cfg_path, weights = d / "config.json", d / "model.safetensors"
    for p in (cfg_path, weights):
        if not p.is_file():
            raise CheckpointError(f"directory: {p} is missing (expected config.json and model.safetensors)")
    meta = read_json(cfg_path, "directory")
    if meta.get("kind") != kind:
        raise CheckpointError(f"{cfg_path}: holds a {meta.get('kind')!r} model, expected {kind!r}")
    if int(meta.get("format_version", 0)) > FORMAT_VERSION:
        raise CheckpointError(f"{cfg_path}: format version {meta.get('format_version')} is newer than "
                              f"this sofgan-lab reads ({FORMAT_VERSION})")
    model = cls(config_cls.from_dict(meta["config"]))
    try:
        state = load_file(str(weights), device=str(map_location))
    except Exception as exc:  # safetensors raises its own error types for truncated files
        raise CheckpointError(f"{weights}: cannot be read ({exc})") from None
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise CheckpointError(f"{weights}: missing keys {missing[:5]}, unexpected keys {unexpected[:5]}")
    for k, v in state.items():
        if v.shape != own[k].shape:
            raise CheckpointError(f"{weights}: key {k!r} has shape {tuple(v.shape)}, "
                                  f"the model expects {tuple(own[k].shape)}")
    model.load_state_dict(state)
    return model.to(map_location)


def new_tree(out: Any, overwrite: bool) -> Path:
    """A hidden temporary sibling of ``out`` to build a whole tree in (see :func:`commit_tree`)."""
    if not isinstance(out, (str, os.PathLike)):
        raise TypeError(f"out: expected a path, got {type(out).__name__}")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"out: {out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise ValueError(f"out: {out} is not empty (pass overwrite=True / --overwrite to replace it)")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o777 & ~umask)
    return tmp


def commit_tree(tmp: Path, out: Path) -> None:
    """Replace ``out`` by the finished tree ``tmp`` (renames only)."""
    out = Path(out)
    old = None
    if out.exists():
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        out.rename(old)
    tmp.rename(out)
    if old is not None:
        shutil.rmtree(old)
