"""Explorer: every widget in one dashboard around one portrait.

Tabs on the left, the shared :class:`PortraitView` on the right. The chain of links:

* sampler → sliders: a clicked thumbnail's code becomes the sliders' ``base``;
* sliders → portrait and 3D viewer: the edited ``code`` (and, with ``restrict``, the base and the
  regions) is the portrait's geometry and the viewer's;
* camera → portrait, 3D viewer (frustum), sampler thumbnails, painter ("from geometry");
* mixer → portrait (styles A/B, region weights, ψ) and painter (style A, ψ);
* sliders → painter: "from geometry" in the painter loads the current edited geometry.

The painter keeps its own portrait beside its canvas; everything else drives the shared one.
Every camera starts at the pipeline's own default camera (its framing: look-at point and zoom).
The camera tab keeps the pose inside the poses the SOF was trained on (``pipe.pose_range``) unless
*leave the trained range* is ticked (``explorer.camera.free_camera``); while the pose is outside
that range a note under the shared portrait (``pose_note``) says so, whichever tab is open.
"""
from __future__ import annotations

import logging
from typing import Any

import ipywidgets as W

from ._base import Panel
from ._render import DEFAULT_DEBOUNCE
from .camera import CameraControl
from .mixer import RegionStyleMixer
from .painter import SegmapPainter
from .portrait import PortraitView
from .sampler import GeometrySampler
from .sliders import AttributeSliders
from .viewer3d import SOFViewer3D

__all__ = ["Explorer"]

log = logging.getLogger(__name__)


class Explorer(Panel):
    """All widgets linked around one portrait (see the module docstring).

    Args:
        pipe: a :class:`~sofgan_lab.pipeline.SofGAN` with a geometry space.
        viewer: include the 3D viewer tab (it meshes the geometry on every change).
        metrics: include the metrics tab.
        display_size: CSS pixels of the portrait.
        debounce: seconds of quiet before full-quality renders (passed on to every panel).

    Attributes:
        portrait, sampler, sliders, camera, mixer, painter, viewer (or None), metrics (or None).
        pose_note: the HTML note under the portrait, shown while the camera's pose is outside
            ``pipe.pose_range`` (the camera tab's ``range_note``, mirrored).
    """

    def __init__(self, pipe: Any, *, viewer: bool = True, metrics: bool = True, display_size: int = 320,
                 debounce: float = DEFAULT_DEBOUNCE):
        super().__init__()
        self.debounce = debounce
        self.pipe = pipe
        self.portrait = PortraitView(pipe, display_size=display_size)
        self.sampler = GeometrySampler(pipe, portrait=False)
        self.sliders = AttributeSliders(pipe, portrait=self.portrait)
        self.camera = CameraControl(pipe, portrait=self.portrait)
        self.mixer = RegionStyleMixer(pipe, portrait=self.portrait)
        self.painter = SegmapPainter(pipe)
        self.viewer = SOFViewer3D(pipe, geometry=list(self.sliders.code)) if viewer else None
        self.metrics = None
        if metrics:
            from .metrics import MetricTable

            self.metrics = MetricTable(pipe)

        self.sampler.observe(self._selected, "selected")
        W.dlink((self.camera, "camera"), (self.sampler, "camera"))
        W.dlink((self.camera, "camera"), (self.painter, "camera"))
        W.dlink((self.sliders, "code"), (self.painter, "geometry"))
        W.dlink((self.mixer, "style_a"), (self.painter, "texture"))
        W.dlink((self.mixer, "truncation"), (self.painter, "truncation"))
        if self.viewer is not None:
            W.dlink((self.sliders, "code"), (self.viewer, "geometry"))
            W.dlink((self.camera, "camera"), (self.viewer, "camera"))

        tabs = [("sample", self.sampler), ("edit", self.sliders), ("camera", self.camera), ("style", self.mixer),
                ("paint", self.painter)]
        if self.viewer is not None:
            tabs.append(("3D", self.viewer))
        if self.metrics is not None:
            tabs.append(("metrics", self.metrics))
        self.tabs = W.Tab(children=[w for _, w in tabs], titles=[t for t, _ in tabs])
        self._panels = [self.portrait, *(w for _, w in tabs)]
        for p in self._panels:
            self._add_linked(p)
            W.dlink((self, "debounce"), (p, "debounce"))
        self.pose_note = W.HTML(self.camera.range_note.value)
        self.pose_note.add_class("sofgan-explorer-pose-note")
        W.dlink((self.camera.range_note, "value"), (self.pose_note, "value"))
        self.camera.observe(self._pose_range_changed, "in_trained_range")
        self._pose_range_changed()
        self.children = [W.HBox([self.tabs, W.VBox([self.portrait, self.pose_note])])]

    def _pose_range_changed(self, change: Any = None) -> None:
        self.pose_note.layout.display = "none" if self.camera.in_trained_range else None

    def _selected(self, change: Any) -> None:
        if change.new:
            self.sliders.base = list(change.new)

    def close(self) -> None:
        for p in self._panels:
            p.close()
        super().close()
