"""Shared argument checks for the public entry points (layer 1: imports nothing from the package).

Every check names the argument, says what was expected and shows what was given, in one line. A value
of the wrong type raises :class:`ArgumentTypeError`, which is a ``TypeError`` and also a ``ValueError``
(so code and tests that catch either keep working, as numpy's ``AxisError`` is both a ``ValueError`` and
an ``IndexError``); a value of the right type out of range raises ``ValueError``.

torch is not imported here (``labels`` stays importable without it); tensors are recognised when torch
is loaded. Numbers: Python ints/floats, numpy scalars and 0-d tensors (and 0-d arrays) are accepted; ``bool`` is
never a number here.
"""
from __future__ import annotations

import math
import numbers
import sys
from typing import Any

import numpy as np

__all__ = ["ArgumentTypeError", "check_int", "check_number", "check_bool", "check_finite_tensor", "describe",
           "MAX_CODE_ABS"]

#: Largest magnitude of a latent / style code value the models accept: codes are O(1) (a unit normal, a
#: mapping's output, a fitted geometry code); far larger ones overflow float32 inside the networks and
#: come out as NaN images (SOF at |z| ~ 1e20, SIW's w at ~ 1e38). 1e6 leaves room for any edit.
MAX_CODE_ABS = 1e6


class ArgumentTypeError(TypeError, ValueError):
    """An argument of the wrong type (a ``TypeError`` that is also a ``ValueError``)."""


def _is_tensor(x: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def describe(x: Any) -> str:
    """``x`` for an error message: its repr (shortened) and type, or an array's shape and dtype."""
    if (_is_tensor(x) or isinstance(x, np.ndarray)) and x.ndim > 0:
        return f"{type(x).__name__} of shape {tuple(x.shape)} and dtype {x.dtype}"
    r = repr(x)
    if len(r) > 60:
        r = r[:57] + "..."
    return f"{r} ({type(x).__name__})"


def _scalar(x: Any) -> Any:
    """A 0-d tensor / array as its Python scalar; anything else unchanged."""
    if _is_tensor(x) and x.dim() == 0:
        return x.item()
    if isinstance(x, np.ndarray) and x.ndim == 0:
        return x.item()
    return x


def _range_text(low: Any, high: Any, lo_open: bool = False, hi_open: bool = False) -> str:
    if low is not None and high is not None:
        return f"in {'(' if lo_open else '['}{low}, {high}{')' if hi_open else ']'}"
    if low is not None:
        return f"{'>' if lo_open else '>='} {low}"
    if high is not None:
        return f"{'<' if hi_open else '<='} {high}"
    return ""


def check_int(value: Any, name: str, low: int | None = None, high: int | None = None) -> int:
    """``value`` as an ``int`` in ``[low, high]`` (either bound may be ``None``).

    Accepts Python and numpy integers and 0-d integer tensors; refuses ``bool``, floats (even 2.0) and
    strings with :class:`ArgumentTypeError`, values out of range with ``ValueError``."""
    v = _scalar(value)
    rng = (f"in {low}..{high}" if low is not None and high is not None else
           f">= {low}" if low is not None else f"<= {high}" if high is not None else "")
    what = f"an integer {rng}".rstrip()
    if isinstance(v, bool) or not isinstance(v, numbers.Integral):
        raise ArgumentTypeError(f"{name}: expected {what}, got {describe(value)}")
    v = int(v)
    if (low is not None and v < low) or (high is not None and v > high):
        raise ValueError(f"{name}: expected {what}, got {v}")
    return v


def check_number(value: Any, name: str, low: float | None = None, high: float | None = None, *,
                 low_open: bool = False, high_open: bool = False) -> float:
    """``value`` as a finite ``float`` in the range ``low``..``high`` (closed unless ``low_open`` /
    ``high_open``; either bound may be ``None``).

    Accepts Python and numpy reals and 0-d real tensors; refuses ``bool``, strings, complex numbers with
    :class:`ArgumentTypeError`, NaN, infinities and values out of range with ``ValueError``."""
    v = _scalar(value)
    rng = _range_text(low, high, low_open, high_open)
    what = f"a number {rng}" if low is not None and high is not None else f"a finite number {rng}".rstrip()
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise ArgumentTypeError(f"{name}: expected {what}, got {describe(value)}")
    try:
        f = float(v)
    except (OverflowError, ValueError):  # an int too large for a float
        raise ValueError(f"{name}: expected {what}, got {v!r}") from None
    if not math.isfinite(f):
        raise ValueError(f"{name}: expected {what}, got {f!r}")
    if low is not None and (f <= low if low_open else f < low):
        raise ValueError(f"{name}: expected {what}, got {f!r}")
    if high is not None and (f >= high if high_open else f > high):
        raise ValueError(f"{name}: expected {what}, got {f!r}")
    return f


def check_bool(value: Any, name: str) -> bool:
    """``value`` as a ``bool`` (Python or numpy); anything else raises :class:`ArgumentTypeError`."""
    if not isinstance(value, (bool, np.bool_)):
        raise ArgumentTypeError(f"{name}: expected True or False, got {describe(value)}")
    return bool(value)


def check_finite_tensor(t: Any, name: str, max_abs: float | None = None) -> Any:
    """``t`` (a tensor) unchanged when every value is finite (and, with ``max_abs``, within
    ``±max_abs``); ``ValueError`` naming ``name`` otherwise."""
    import torch

    if (t.is_floating_point() or t.is_complex()) and t.numel():
        d = t.detach()
        top = float(d.abs().amax())  # one reduction (one device sync); NaN propagates
        if not math.isfinite(top):
            bad = int((~torch.isfinite(d)).sum())
            raise ValueError(f"{name}: contains NaN or infinite values ({bad} of {t.numel()})")
        if max_abs is not None and top > max_abs:
            raise ValueError(f"{name}: values must lie within ±{max_abs:g}, got one of magnitude {top:.3g}")
    return t
