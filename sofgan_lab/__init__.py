"""sofgan-lab: a Jupyter-first kit for exploring SofGAN.

``image = SIW(texture styles, remap(render(SOF(z_geo), camera)))``

The core package never imports ipywidgets, plotly or IPython; the notebook widgets live in
:mod:`sofgan_lab.widgets`. Importing the package is cheap: heavy modules (torch) load on use.
"""
from __future__ import annotations

import logging

__version__ = "0.1.0"

__all__ = ["__version__", "default_device"]

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
