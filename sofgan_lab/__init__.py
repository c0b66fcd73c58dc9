"""sofgan-lab: a Jupyter-first kit for exploring SofGAN.

``image = SIW(texture styles, remap(render(SOF(z_geo), camera)))``

The core package never imports ipywidgets, plotly or IPython; the notebook widgets live in
:mod:`sofgan_lab.widgets`. Importing the package is cheap: heavy modules (torch) load on use, and
the pipeline's classes on first access::

    from sofgan_lab import SofGAN, Portrait   # imports sofgan_lab.pipeline (and torch) here
"""
from __future__ import annotations

import importlib
import logging
from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "default_device", "SofGAN", "Portrait"]

#: Names loaded on first access (``__getattr__``): name -> the module that defines it.
_LAZY = {"SofGAN": "sofgan_lab.pipeline", "Portrait": "sofgan_lab.pipeline"}

logging.getLogger(__name__).addHandler(logging.NullHandler())


def default_device():
    """The best available ``torch.device``: ``cuda`` if present, then ``mps``, else ``cpu``."""
    import torch

    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value  # later accesses skip this hook
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
