"""The native checkpoint format: a folder with ``config.json`` and ``model.safetensors``.

``config.json`` records the format version, the model kind, the library version and the model's
config dataclass. Files are written to a temporary name and renamed into place, so a crash
never leaves a half-written checkpoint; safetensors never executes code on load.
"""
from __future__ import annotations

import glob
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
from safetensors.torch import load_file, save_file

from .. import __version__

__all__ = ["FORMAT_VERSION", "CheckpointError", "save_module", "load_module", "atomic_write_bytes",
           "atomic_save_safetensors", "check_output_path", "staged_tree", "read_json", "json_int", "json_dict", "inside", "check_finite", "new_tree",
           "commit_tree", "clean_partials"]

FORMAT_VERSION = 1

#: In a tree being built by :func:`new_tree`: the builder's process id (removed by :func:`commit_tree`).
_OWNER = ".sofgan-lab-owner"


def _publish(tmp: str, path: Path) -> None:
    """Give a finished temporary file the usual permissions (mkstemp makes it 0600) and rename it."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    os.replace(tmp, path)


class CheckpointError(ValueError):
    """A checkpoint that cannot be read: missing, corrupt, of another kind, or mismatched."""


def check_output_path(path: str | Path, name: str, *, folder: bool = False) -> Path:
    """Refuse an output ``path`` that cannot be written because an existing file stands where a folder
    must be (``path`` itself when ``folder``, or one of its parents), or because ``path`` is an existing
    folder where a file is to be written; a ``ValueError`` naming ``name`` and the path. Returns ``Path(path)``."""
    p = Path(path)
    if p.exists() and p.is_dir() != folder:
        raise ValueError(f"{name}: {p} exists and is {'not ' if folder else ''}a folder")
    for parent in p.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ValueError(f"{name}: {p} cannot be written: {parent} is a file, not a folder")
            break
    return p


def atomic_write(path: str | Path, write: Callable[[str], Any], *, fsync: bool = False) -> Path:
    """Call ``write(tmp)`` on a hidden temporary file beside ``path`` (same suffix, so writers that
    infer the format from the name still work), then rename it to ``path``: ``path`` is either
    absent, the old file, or complete, never half-written. ``fsync`` flushes the data to the disk
    before the rename (checkpoints). The one atomic writer the others are built on; an existing
    file where a folder must be is refused first (:func:`check_output_path`)."""
    path = check_output_path(path, "path")
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
    """Parse the JSON file ``path``, which must hold an object; a :class:`CheckpointError` naming ``name``
    and the file if it is not JSON or holds something else (a list, null, a number)."""
    try:
        out = json.loads(Path(path).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{name}: {path} is not valid JSON ({exc})") from None
    if not isinstance(out, dict):
        raise CheckpointError(f"{name}: {path} must hold a JSON object, got {_json_type(out)}")
    return out


def _json_type(value) -> str:
    return {type(None): "null", list: "a list", str: "a string", bool: "a boolean", dict: "an object"}.get(
        type(value), "a number")


def json_int(meta: dict, key: str, path: str | Path, name: str, *, default: Any = None, low: int = 0) -> int:
    """``meta[key]`` as an integer >= ``low`` (``default`` if the key is absent and a default is given);
    a :class:`CheckpointError` naming ``name``, the file and the key otherwise."""
    if key not in meta and default is not None:
        return default
    value = meta.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        what = ("nothing (the key is missing)" if key not in meta else
                str(value) if isinstance(value, int) and not isinstance(value, bool) else
                f"{_json_type(value)} ({json.dumps(value)[:40]})")
        raise CheckpointError(f"{name}: {path}: key {key!r} must be an integer >= {low}, got {what}")
    return value


def json_dict(meta: dict, key: str, path: str | Path, name: str) -> dict:
    """``meta[key]``, which must be a JSON object; a :class:`CheckpointError` naming the file and the key."""
    value = meta.get(key)
    if not isinstance(value, dict):
        what = "nothing (the key is missing)" if key not in meta else _json_type(value)
        raise CheckpointError(f"{name}: {path}: key {key!r} must be a JSON object, got {what}")
    return value


def inside(root: Path, relative: Any, key: str, path: str | Path, name: str) -> Path:
    """``root / relative`` for a relative path that stays inside ``root`` (no absolute path, no ``..``),
    as a file such as ``pipeline.json`` names its parts; a :class:`CheckpointError` naming the key otherwise."""
    if not isinstance(relative, str) or not relative:
        raise CheckpointError(f"{name}: {path}: key {key!r} must be a folder name, got {_json_type(relative)}")
    rel = Path(relative)
    if rel.is_absolute() or ".." in rel.parts or rel.drive:
        raise CheckpointError(f"{name}: {path}: key {key!r} must name a folder inside {root}, got {relative!r} "
                              "(absolute paths and '..' are refused)")
    return Path(root) / rel


def check_finite(state: dict[str, torch.Tensor], path: str | Path) -> None:
    """Refuse a state dict with NaN or inf in a floating-point tensor, naming the file and the key."""
    for key, v in state.items():
        if (v.is_floating_point() or v.is_complex()) and not torch.isfinite(v).all():
            raise CheckpointError(f"{path}: key {key!r} contains non-finite values (NaN or inf)")


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
    if json_int(meta, "format_version", cfg_path, "directory", default=0) > FORMAT_VERSION:
        raise CheckpointError(f"{cfg_path}: format version {meta.get('format_version')} is newer than "
                              f"this sofgan-lab reads ({FORMAT_VERSION})")
    model = cls(config_cls.from_dict(json_dict(meta, "config", cfg_path, "directory")))
    try:  # read on the CPU: a device problem is not the file's (it surfaces from .to() below)
        state = load_file(str(weights), device="cpu")
    except Exception as exc:  # safetensors raises its own error types for truncated files
        raise CheckpointError(f"{weights}: cannot be read ({exc})") from None
    check_finite(state, weights)
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
    out = check_output_path(out, "out", folder=True)
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise ValueError(f"out: {out} is not empty (pass overwrite=True / --overwrite to replace it)")
    out.parent.mkdir(parents=True, exist_ok=True)
    clean_partials(out)  # trees of killed runs
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o777 & ~umask)
    (tmp / _OWNER).write_text(f"{os.getpid()}\n")
    return tmp


def clean_partials(out: str | Path) -> int:
    """Remove the ``.OUT.partial-*`` trees that killed runs writing ``out`` left beside it (a live run's
    tree is not touched: its creator's process id is checked where the name records one). Returns how
    many were removed."""
    out = Path(out)
    removed = 0
    if not out.parent.is_dir():
        return 0
    for stale in out.parent.glob(f".{glob.escape(out.name)}.partial-*"):
        if stale.is_dir() and not _owner_alive(stale):
            shutil.rmtree(stale, ignore_errors=True)
            removed += 1
    return removed


def _owner_alive(tree: Path) -> bool:
    """Whether the process that made ``tree`` (its owner file) still runs on this machine."""
    try:
        pid = int((tree / _OWNER).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


@contextmanager
def staged_tree(out: Any, overwrite: bool) -> Iterator[Path]:
    """``with staged_tree(out, overwrite) as tmp:`` build a whole folder in ``tmp`` (:func:`new_tree`);
    it replaces ``out`` when the block ends (:func:`commit_tree`) and is removed if the block raises
    (or is interrupted), so ``out`` is never half-written."""
    tmp = new_tree(out, overwrite)
    try:
        yield tmp
        commit_tree(tmp, Path(out))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def commit_tree(tmp: Path, out: Path) -> None:
    """Replace ``out`` by the finished tree ``tmp`` (renames only)."""
    out = Path(out)
    (Path(tmp) / _OWNER).unlink(missing_ok=True)
    old = None
    if out.exists():
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        out.rename(old)
    tmp.rename(out)
    if old is not None:
        shutil.rmtree(old)
