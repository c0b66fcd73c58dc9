"""Notebook widgets for sofgan-lab, installed as ``sofgan_lab.widgets``.

This folder sits at the top of the repository and is mapped onto the ``sofgan_lab.widgets``
subpackage by ``setup.py``. Widgets hold no model logic: they turn trait changes into calls of
the core library (``sofgan_lab``), which never imports from here.

Every widget is an ``ipywidgets.VBox`` subclass (display it on its own, or put it in a box or a
tab) whose public state is its traitlets; renders run on a worker thread through the shared
renderer of :mod:`._render` (latest request wins, a cheap preview while a control moves and a
full render when it stops, errors shown inside the widget); ``widget.wait()`` blocks until
everything it shows is up to date::

    from sofgan_lab import SofGAN
    from sofgan_lab.widgets import Explorer

    Explorer(SofGAN.from_pretrained("demo"))

The public classes are loaded on first use, so ``import sofgan_lab.widgets`` stays cheap.
"""
from __future__ import annotations

import importlib
from typing import Any

__all__ = ["PortraitView", "GeometrySampler", "AttributeSliders", "SOFViewer3D", "CameraControl",
           "RegionStyleMixer", "SegmapPainter", "MetricTable", "Explorer", "ExportControls", "Renderer", "Panel",
           "plot_metrics"]

_WHERE = {
    "PortraitView": "portrait",
    "GeometrySampler": "sampler",
    "AttributeSliders": "sliders",
    "SOFViewer3D": "viewer3d",
    "CameraControl": "camera",
    "RegionStyleMixer": "mixer",
    "SegmapPainter": "painter",
    "MetricTable": "metrics",
    "plot_metrics": "metrics",
    "Explorer": "explorer",
    "ExportControls": "export",
    "Renderer": "_render",
    "Panel": "_base",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        value = getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
