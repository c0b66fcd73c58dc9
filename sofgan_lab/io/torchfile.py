"""Reading foreign checkpoint files (``.pt`` / ``.pth`` pickles and ``.safetensors``) safely.

PyTorch checkpoints are pickles, and unpickling can run arbitrary code. Every pickle here goes
through ``torch.load(path, map_location="cpu", weights_only=True)``, which only rebuilds tensors
and plain containers (dict, list, tuple, numbers, strings); a file that asks for anything else is
refused with a :class:`~sofgan_lab.io.checkpoints.CheckpointError` before any of it runs.
``.safetensors`` files hold only tensors and are read with ``safetensors.torch.load_file``.
"""
from __future__ import annotations

import logging
import pickle
import re
from pathlib import Path
from typing import Any, Mapping

import torch

from .checkpoints import CheckpointError

__all__ = ["load_torch_file", "is_state_dict"]

log = logging.getLogger(__name__)

_SAFETENSORS_SUFFIXES = (".safetensors",)


def is_state_dict(obj: Any) -> bool:
    """Whether ``obj`` is a non-empty mapping of string keys to tensors (a bare ``state_dict``)."""
    return (isinstance(obj, Mapping) and len(obj) > 0
            and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()))


#: Pickle opcodes that import or call Python objects (GLOBAL, INST, OBJ, REDUCE, BUILD, NEWOBJ, EXT*,
#: NEWOBJ_EX, STACK_GLOBAL): torch's weights-only unpickler refusing one of these is a file asking to run code.
_CODE_OPCODES = frozenset(b"ciobR\x81\x82\x83\x84\x92\x93")


def _garbage_opcode(exc: BaseException) -> bool:
    """Whether torch's weights-only refusal is about a byte that no code-running pickle needs (an
    'Unsupported operand' that is not an import or call opcode): the file is not a pickle at all."""
    m = re.search(r"Unsupported operand (\d+)", str(exc))
    return m is not None and int(m.group(1)) not in _CODE_OPCODES


def _weights_only_detail(exc: BaseException) -> str:
    """The informative part of torch's 'Weights only load failed' message (without its advice
    on how to turn the protection off)."""
    text = " ".join(str(exc).split())
    i = text.find("WeightsUnpickler error:")
    if i < 0:
        return "it holds objects other than tensors and plain containers"
    rest = text[i + len("WeightsUnpickler error:"):]
    for cut in (" Please use ", " Check the documentation"):
        j = rest.find(cut)
        if j >= 0:
            rest = rest[:j]
    return rest.strip()[:200] or "it holds objects other than tensors and plain containers"


def load_torch_file(path: str | Path, *, what: str = "checkpoint") -> dict:
    """Read a checkpoint file into a dict without ever executing code from it.

    Args:
        path: a ``.safetensors`` file (read with ``safetensors.torch.load_file``) or a PyTorch
            pickle (``.pt``, ``.pth`` or any other name; read with ``torch.load(...,
            map_location="cpu", weights_only=True)``).
        what: what the file is meant to be, used in error messages (e.g. ``"SOF checkpoint"``).

    Returns:
        The file's top-level dict (tensors on the CPU).

    Raises:
        CheckpointError: the file is missing, truncated or corrupt, is a pickle that would need to
            run code or rebuild arbitrary objects (refused; nothing of it is executed), or does not
            hold a dict. The message names the file.
    """
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"{what} {p}: no such file")
    if p.suffix.lower() in _SAFETENSORS_SUFFIXES:
        from safetensors.torch import load_file

        try:
            out = load_file(str(p), device="cpu")
        except Exception as exc:  # safetensors raises its own error types for corrupt files
            raise CheckpointError(f"{what} {p}: not a readable safetensors file "
                                  f"(truncated or corrupt?): {exc}") from None
        log.debug("read %d tensors from %s", len(out), p)
        return dict(out)
    try:
        obj = torch.load(str(p), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if _garbage_opcode(exc):  # e.g. a text file: its first byte is no pickle opcode torch reads
            raise CheckpointError(f"{what} {p}: not a PyTorch checkpoint (neither a zip archive nor a pickle "
                                  f"of tensors: {_weights_only_detail(exc)}); is it the right file?") from None
        if "weights only" in str(exc).lower() or "weightsunpickler" in str(exc).lower():
            raise CheckpointError(
                f"{what} {p}: refused to load: the file asks to execute code or rebuild Python "
                f"objects other than tensors and plain containers ({_weights_only_detail(exc)}); "
                f"sofgan-lab never executes code from checkpoint files") from None
        raise CheckpointError(f"{what} {p}: corrupt pickle ({exc})") from None
    except (EOFError, RuntimeError, KeyError, ValueError, OSError, IndexError, TypeError,
            AttributeError, ImportError, MemoryError, OverflowError) as exc:
        # torch reports truncated zip archives as RuntimeError, garbage as KeyError/EOFError, ...
        detail = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise CheckpointError(f"{what} {p}: cannot be read, the file is truncated or corrupt "
                              f"({type(exc).__name__}: {detail})") from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"{what} {p}: expected a dict at the top level, got {type(obj).__name__}")
    log.debug("read %s with top-level keys %s", p, sorted(map(str, obj))[:10])
    return obj
