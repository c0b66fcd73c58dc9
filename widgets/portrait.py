"""PortraitView: the portrait (and its segmap) of a state of geometry, camera and texture traits.

Controls (sliders, camera, mixer) write these traits, directly or through ``traitlets.dlink``;
the view turns each change into one pipeline call on its renderer:

* geometry + camera (and the base and regions of a region-restricted edit) →
  ``pipe.label_surface`` → a SOF-20 label map with its depth and points, kept in a
  :class:`~sofgan_lab.pipeline.LabelSurfaceCache` (per geometry, camera, restriction);
* label map + texture + region mix + truncation → ``pipe.from_segmap`` → the image.

The result is pixel for pixel what ``pipe(geometry=code, texture=..., camera=..., region_mix=...,
truncation=...)`` returns (the same two stages run inside the pipeline). When the geometry or the
camera moves and ``preview`` is on, the label map is first rendered at half size (4x fewer rays;
the texture is still generated at full size) and at full size once the change stops
(``debounce``); texture-only changes reuse the cached map and need no preview. The frames of a
drag on the portrait (``orbit``) use a smaller label map still (``drag_scale``, a quarter of the
side by default: 16x fewer rays), enlarged per class so that its outlines stay smooth.

With ``segmap_toggle`` two more views of the same state are on the toggle: *depth* (grey, nearest
white) and *normals* (the surface normals in the camera frame as RGB), computed by
:mod:`sofgan_lab.geometry.views` from the SOF's surface points, which the view caches with the label
map (a painted segmap has no surface: those views then say so).

With ``orbit=True`` the portrait's square is an :class:`~.orbit.OrbitSurface`: dragging on it turns
the camera (``orbit_handler``; by default this view's own camera, kept inside the trained poses),
previews stream to it as JPEG with at most two frames in flight (full-quality renders wait while the
pointer is down), and the full-quality PNG follows the release.

Layout: both images are squares of ``display_size`` CSS pixels that never shrink (``flex: 0 0 auto``,
a minimum width equal to the width, ``object-fit: contain``), so a narrow container scrolls instead of
squashing them. The segmap is shown beside the portrait, or, with ``segmap_toggle``, in its place: a
*portrait* / *segmap* toggle above one square (what the explorer uses, to keep its column narrow).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import ipywidgets as W
import numpy as np
import torch
from traitlets import Bool, Dict, Enum, Float, Instance, Int, List, Unicode, observe

from sofgan_lab.pipeline import LabelSurface, LabelSurfaceCache

from ._base import Panel
from ._render import (Renderer, RenderJob, default_geometry, jpeg_bytes, orbit_camera, pipeline_lock, png_bytes,
                      status_html)

__all__ = ["PortraitView", "PortraitControl", "PortraitRequest", "PortraitResult"]

log = logging.getLogger(__name__)

_SEGMAP_CACHE_SIZE = 16


@dataclass(frozen=True, eq=False)
class PortraitRequest:
    """A snapshot of a :class:`PortraitView`'s state (taken on the kernel's thread).

    Attributes:
        geometry: the geometry code, ``latent_dim`` floats.
        camera: the full orbit camera ``{yaw, pitch, radius, fov, target, zoom}`` (the pipeline's
            default camera filled in, so its framing — look-at point and zoom — applies).
        texture: seed of style A; ``texture_b``: seed of style B or ``None`` (one style).
        region_mix: ``{group: p}`` (used with ``texture_b``).
        truncation: ψ in [0, 1].
        base, regions: a region-restricted edit of ``base`` toward ``geometry`` (``base`` ``None``:
            no restriction).
        segmap: a SOF-20 label map ``(H, W)`` uint8 to texture instead of rendering (or ``None``).
    """

    geometry: tuple[float, ...]
    camera: dict
    texture: int
    texture_b: int | None
    region_mix: dict
    truncation: float
    base: tuple[float, ...] | None
    regions: tuple[str, ...]
    segmap: np.ndarray | None
    drag_seq: int = 0
    dragging: bool = False

    def pipeline_kwargs(self) -> dict:
        """The texture arguments of ``pipe(...)`` / ``pipe.from_segmap(...)`` for this state."""
        if self.texture_b is None:
            return {"texture": self.texture, "region_mix": None, "truncation": self.truncation}
        return {"texture": (self.texture, self.texture_b), "region_mix": dict(self.region_mix),
                "truncation": self.truncation}


@dataclass(frozen=True, eq=False)
class PortraitResult:
    """What one render gives: the ``portrait`` (a :class:`~sofgan_lab.pipeline.Portrait`), the SOF-20
    label map it was textured from (uint8 ``(H, W)``), whether it is a preview, and the surface under
    the label map: ``depth`` ``(H, W)``, ``points`` ``(H, W, 3)`` float32 and the ``camera`` (all
    ``None`` for a given segmap)."""

    portrait: Any
    segmap: np.ndarray
    preview: bool
    request: PortraitRequest
    depth: np.ndarray | None = None
    points: np.ndarray | None = None
    camera: Any = None


class PortraitView(Panel):
    """The portrait of the state in its traits (see the module docstring); image + segmap + a
    status/error line.

    Args:
        pipe: a :class:`~sofgan_lab.pipeline.SofGAN`.
        display_size: CSS pixels of the side of the shown (square) images.
        orbit: show the portrait on an :class:`~.orbit.OrbitSurface` (drag to orbit; JPEG streaming).
        **traits: initial values of the traits below.

    Attributes:
        orbit_surface: the :class:`~.orbit.OrbitSurface` (``None`` without ``orbit``).
        orbit_handler: ``callback(d_yaw, d_pitch)`` (degrees) a drag calls; default
            :meth:`orbit_by` (this view's camera). A panel that owns the camera replaces it.
    """

    geometry = List(Float(), help="Geometry code (latent_dim floats). Default: pipe.geometry_code(0).")
    geometry_base = List(Float(), help="Unedited code of a region-restricted edit ([] = no restriction): labels "
                                       "outside `regions` keep the rendering of this code.")
    regions = List(Unicode(), default_value=["face"],
                   help="Regions of a restricted edit (names of sofgan_lab.geometry.space.REGIONS).")
    camera = Dict(help="Orbit camera {yaw, pitch (degrees), radius, fov (degrees or None = orthographic), target "
                       "(look-at point), zoom (focal-length multiplier)}; missing keys take the pipeline's default "
                       "camera (its framing included).")
    texture = Int(0, min=0, help="Texture seed of style A (pipe.siw.random_z(1, seed=...)).")
    texture_b = Int(None, allow_none=True, min=0, help="Texture seed of style B; None = one style.")
    region_mix = Dict(help="{style group: p in [0, 1]}: weight of style B per group "
                           "(sofgan_lab.texture.regions.STYLE_GROUPS); used when texture_b is set.")
    truncation = Float(0.7, min=0.0, max=1.0, help="Truncation ψ of the texture styles.")
    segmap = Instance(np.ndarray, allow_none=True,
                      help="A SOF-20 label map (H, W) to texture instead of rendering the geometry (None = render).")
    preview = Bool(True, help="Render a half-size label map first while the geometry or camera changes.")
    drag_scale = Float(0.25, min=0.0625, max=1.0,
                       help="With orbit: side of the label map of the frames streamed while dragging, as a fraction of "
                            "the image size (enlarged smoothly; the texture stays full size).")
    show_segmap = Bool(True, help="Show the label map beside the portrait (or, with segmap_toggle, on request).")
    segmap_toggle = Bool(False, help="One square with a portrait/segmap toggle above it instead of the segmap "
                                     "beside the portrait.")
    shown = Enum(["portrait", "segmap", "depth", "normals"], default_value="portrait",
                 help="With segmap_toggle: what the square shows (the portrait, its segmap, the depth or the "
                      "surface normals of its geometry).")
    updates = Int(0, help="Images shown so far (previews included).")
    full_updates = Int(0, help="Full-quality images shown so far.")

    def __init__(self, pipe: Any, *, display_size: int = 256, orbit: bool = False, **traits: Any):
        self.pipe = pipe
        self._drag_seq = 0
        self._ready = False
        self._surfaces = LabelSurfaceCache(pipe, size=_SEGMAP_CACHE_SIZE)  # re-used when only the texture changes
        self._last: PortraitResult | None = None
        if isinstance(display_size, bool) or not isinstance(display_size, int) or not 16 <= display_size <= 2048:
            raise ValueError(f"display_size: expected an integer in 16..2048 (CSS pixels), got {display_size!r}")
        self.display_size = display_size
        # A square that never shrinks: ipywidgets gives images `max-width: 100%`, which squashed the
        # portrait (266x320) in a narrow flex row; the minimum width overrides it.
        side = f"{display_size}px"
        css = {"width": side, "height": side, "min_width": side, "min_height": side, "flex": "0 0 auto",
               "object_fit": "contain"}
        self.image = W.Image(format="png", layout=W.Layout(**css))
        self.segmap_image = W.Image(format="png", layout=W.Layout(**css))
        self.surface_image = W.Image(format="png", layout=W.Layout(**css, display="none"))
        if not isinstance(orbit, bool):
            raise TypeError(f"orbit: expected True or False, got {orbit!r}")
        self.orbit_surface = None
        self.orbit_handler = self.orbit_by
        if orbit:
            from .orbit import OrbitSurface

            self.orbit_surface = OrbitSurface(size=display_size, on_drag=self._dragged,
                                              on_start=lambda: self._renderer.hold_full(True),
                                              on_release=lambda seq: self._renderer.hold_full(False))
            self.orbit_surface.add_class("sofgan-portrait-orbit")
            self.image.layout.display = "none"              # kept up to date for Python; the surface shows it
        else:
            self.image.add_class("sofgan-portrait-image")   # stable hooks for browser tests and styling
        self.segmap_image.add_class("sofgan-portrait-segmap")
        self.surface_image.add_class("sofgan-portrait-surface")
        self.view_toggle = W.ToggleButtons(options=["portrait", "segmap", "depth", "normals"], value="portrait",
                                           tooltips=["the textured portrait", "its SOF-20 segmap",
                                                     "the depth of its geometry (nearest white)",
                                                     "the surface normals (x red, y green, toward you blue)"],
                                           style={"button_width": "74px"}, layout=W.Layout(display="none"))
        self.view_toggle.add_class("sofgan-portrait-toggle")
        self.status = W.HTML(status_html("rendering…"))
        shown_images = [self.image, self.segmap_image, self.surface_image]
        if self.orbit_surface is not None:
            shown_images.insert(0, self.orbit_surface)
        self._images = W.HBox(shown_images, layout=W.Layout(flex="0 0 auto", overflow="visible"))
        super().__init__(children=[self.view_toggle, self._images, self.status])
        self.add_class("sofgan-portrait")
        W.link((self.view_toggle, "value"), (self, "shown"))
        traits.setdefault("truncation", float(pipe.truncation))
        traits.setdefault("camera", dict(pipe.default_camera))
        if "geometry" not in traits:
            traits["geometry"] = default_geometry(pipe)
        for k, v in traits.items():
            if not self.has_trait(k):
                raise TypeError(f"{k}: PortraitView has no trait {k!r}")
            setattr(self, k, v)
        self._arrange()
        self._renderer = self._add_renderer(Renderer(self._render, self._deliver, self._failed,
                                                     debounce=self.debounce, name="sofgan-lab-portrait"))
        self._ready = True
        self.request()

    # ------------------------------------------------------------------ state → request
    @observe("geometry", "geometry_base", "regions", "camera", "texture", "texture_b", "region_mix", "truncation",
             "segmap")
    def _state_changed(self, change: Any) -> None:
        if self._ready:
            self.request()

    @observe("show_segmap", "segmap_toggle", "shown")
    def _arrangement_changed(self, change: Any) -> None:
        if hasattr(self, "_images"):
            self._arrange()
        if change.name == "show_segmap" and change.new and self._last is not None:
            from sofgan_lab.labels import colorize

            self.segmap_image.value = png_bytes(colorize(self._last.segmap, "sof20"))
        if change.name == "shown" and change.new in ("depth", "normals") and self._last is not None:
            self._show_surface(self._last)

    @property
    def needed_width(self) -> int:
        """CSS pixels the view needs across (its images and their margins): a container narrower than
        this would cut it off, so a panel that shows its own view keeps at least this width."""
        n = 2 if self.show_segmap and not self.segmap_toggle else 1
        return n * (self.display_size + 4) + 8

    def _arrange(self) -> None:
        """Show the images the traits ask for: both side by side, or one of them under the toggle."""
        toggle = bool(self.segmap_toggle and self.show_segmap)
        self.view_toggle.layout.display = None if toggle else "none"
        square = self.orbit_surface if self.orbit_surface is not None else self.image
        if toggle:
            square.layout.display = None if self.shown == "portrait" else "none"
            self.segmap_image.layout.display = None if self.shown == "segmap" else "none"
            self.surface_image.layout.display = None if self.shown in ("depth", "normals") else "none"
        else:
            square.layout.display = None
            self.segmap_image.layout.display = None if self.show_segmap else "none"
            self.surface_image.layout.display = "none"

    # ------------------------------------------------------------------ drag to orbit
    def orbit_by(self, d_yaw: float, d_pitch: float) -> None:
        """Turn this view's camera by ``d_yaw`` / ``d_pitch`` degrees, kept inside ``pipe.pose_range``."""
        import math

        if not (math.isfinite(d_yaw) and math.isfinite(d_pitch)):
            raise ValueError(f"d_yaw, d_pitch: expected finite degrees, got {d_yaw!r}, {d_pitch!r}")
        cam = {**self.pipe.default_camera, **self.camera}
        (ylo, yhi), (plo, phi) = self.pipe.pose_range["yaw"], self.pipe.pose_range["pitch"]
        self.camera = {**self.camera, "yaw": min(max(float(cam["yaw"]) + d_yaw, ylo), yhi),
                       "pitch": min(max(float(cam["pitch"]) + d_pitch, plo), phi)}

    def _dragged(self, d_yaw: float, d_pitch: float, seq: int) -> None:
        self._drag_seq = seq   # read by state(): the frames of this request show drag message `seq`
        before = self._renderer.generation
        try:
            self.orbit_handler(d_yaw, d_pitch)
        except Exception as exc:  # noqa: BLE001 - shown in the widget, like a render error
            self._show_error(exc, self.status)
        if self._renderer.generation == before:  # no new pose (clamped at the range): no frame will follow
            self.orbit_surface.still(seq)

    def state(self) -> PortraitRequest:
        """The current traits as a :class:`PortraitRequest`."""
        cam = {k: list(v) if isinstance(v, (list, tuple)) else v  # a snapshot: no list shared with a trait
               for k, v in {**self.pipe.default_camera, **self.camera}.items()}
        base = tuple(self.geometry_base) if self.geometry_base and self.regions else None
        seg = None if self.segmap is None else np.array(self.segmap, copy=True)
        return PortraitRequest(geometry=tuple(self.geometry), camera=cam, texture=int(self.texture),
                               texture_b=None if self.texture_b is None else int(self.texture_b),
                               region_mix=dict(self.region_mix), truncation=float(self.truncation), base=base,
                               regions=tuple(self.regions), segmap=seg, drag_seq=self._drag_seq,
                               dragging=bool(self.orbit_surface is not None and self.orbit_surface.dragging))

    def set_state(self, **traits: Any) -> int:
        """Set several traits at once with a single render request; returns its number."""
        self._ready = False
        try:
            with self.hold_trait_notifications():
                for k, v in traits.items():
                    if not self.has_trait(k):
                        raise TypeError(f"{k}: PortraitView has no trait {k!r}")
                    setattr(self, k, v)
        finally:
            self._ready = True
        return self.request()

    def request(self) -> int:
        """Render the current state (latest wins); returns the request number."""
        req = self.state()
        return self._submit(self._renderer, req, preview=bool(self.preview and not self._is_cached(req)))

    def _is_cached(self, req: PortraitRequest) -> bool:
        """Whether ``req``'s label map is at hand (given, or rendered before); a bad camera is not:
        the render reports it inside the widget."""
        if req.segmap is not None:
            return True
        try:
            cam = orbit_camera(self.pipe, req.camera)
        except (ValueError, TypeError):
            return False
        return self._surfaces.key(req.geometry, cam, req.base, req.regions) in self._surfaces

    # ------------------------------------------------------------------ rendering (worker thread)
    def _label_map(self, req: PortraitRequest, preview: bool) -> LabelSurface:
        """The label map of ``req`` with its surface (a given ``segmap``: the map alone); a preview is
        rendered at half size, a frame of a drag at ``drag_scale`` (neither cached) and shown enlarged."""
        pipe = self.pipe
        if req.segmap is not None:
            return LabelSurface(req.segmap)
        size = pipe.image_size
        drag = preview and req.dragging
        small = max(8, round(size * self.drag_scale)) if drag else max(8, size // 2)
        cam = orbit_camera(pipe, req.camera, small if preview else size)
        if preview:
            got = pipe.label_surface(req.geometry, cam, base=req.base, regions=req.regions)
            return got.upsampled(size, smooth=drag)
        return self._surfaces.surface(req.geometry, cam, base=req.base, regions=req.regions)

    def _render(self, req: PortraitRequest, preview: bool) -> PortraitResult:
        with pipeline_lock(self.pipe), torch.no_grad():  # no_grad is per thread: set it on the worker
            got = self._label_map(req, preview)
            portrait = self.pipe.from_segmap(got.segmap, label_set="sof20", **req.pipeline_kwargs())
        return PortraitResult(portrait=portrait, segmap=got.segmap, preview=preview, request=req, depth=got.depth,
                              points=got.points, camera=got.camera)

    def surface_array(self, view: str, result: PortraitResult | None = None) -> np.ndarray | None:
        """The ``view`` ("depth" or "normals") of ``result`` (default: the last shown) as uint8
        ``(H, W, 3)``; ``None`` when there is no result or it has no surface (a given segmap)."""
        from sofgan_lab.geometry.views import depth_image, normal_image

        if view not in ("depth", "normals"):
            raise ValueError(f"view: expected 'depth' or 'normals', got {view!r}")
        result = self._last if result is None else result
        if result is None or result.depth is None:
            return None
        if view == "depth":
            return depth_image(result.depth, result.segmap)
        return normal_image(result.points, result.segmap, result.camera)

    def _show_surface(self, result: PortraitResult) -> None:
        arr = self.surface_array(self.shown, result)
        if arr is None:
            self.surface_image.value = png_bytes(np.zeros((*result.segmap.shape[:2], 3), np.uint8))
            self.status.value = status_html(f"no {self.shown} view: a painted or given segmap has no 3D surface")
            return
        self.surface_image.value = png_bytes(arr)

    def _deliver(self, result: PortraitResult, job: RenderJob) -> None:
        from sofgan_lab.labels import colorize

        surface = self.orbit_surface
        drag_frame = surface is not None and result.preview and surface.dragging
        if drag_frame:  # a frame of a drag: JPEG, paced; the PNG and the segmap wait for the full render
            surface.show(jpeg_bytes(result.portrait.array), "jpeg", seq=result.request.drag_seq, preview=True)
        else:
            img = png_bytes(result.portrait.array)
            self.image.value = img
            if surface is not None:
                surface.show(img, "png", seq=result.request.drag_seq)
            if self.show_segmap:
                self.segmap_image.value = png_bytes(colorize(result.segmap, "sof20"))
        self._last = result
        self.error = ""
        self.status.value = status_html("preview (half-size label map)…" if result.preview and not drag_frame else "")
        if self.segmap_toggle and self.shown in ("depth", "normals"):
            self._show_surface(result)
        self.updates += 1
        if not result.preview:
            self.full_updates += 1

    def _failed(self, exc: BaseException, job: RenderJob) -> None:
        self._show_error(exc, self.status)

    # ------------------------------------------------------------------ results
    @property
    def result(self) -> PortraitResult | None:
        """The last shown :class:`PortraitResult` (``None`` before the first)."""
        return self._last

    @property
    def portrait(self) -> Any:
        """The last shown :class:`~sofgan_lab.pipeline.Portrait` (``None`` before the first)."""
        return None if self._last is None else self._last.portrait

    @property
    def array(self) -> np.ndarray | None:
        """The last shown image, uint8 ``(H, W, 3)``."""
        return None if self._last is None else self._last.portrait.array

    def get_geometry(self) -> torch.Tensor:
        """The geometry code as a float32 tensor ``(latent_dim,)``."""
        return torch.tensor(self.geometry, dtype=torch.float32)


class PortraitControl(Panel):
    """Base class of the controls that drive a :class:`PortraitView` (camera, mixer, painter,
    sampler, sliders): the view is built, shared or left out through :meth:`_attach_portrait`."""

    def _attach_portrait(self, pipe: Any, portrait: Any, **traits: Any) -> tuple[Any, bool]:
        """Resolve a control's ``portrait`` argument into ``self.portrait``: ``True`` builds a
        ``PortraitView(pipe, **traits)`` whose debounce follows this control's (and the panel keeps at
        least the view's width: ``layout.min_width``), a ``PortraitView`` is
        used as given, ``False``/``None`` gives none. :meth:`wait` then waits for it too. Returns
        ``(view or None, built here)``."""
        if portrait is True:
            view, built = PortraitView(pipe, debounce=self.debounce, **traits), True
            W.dlink((self, "debounce"), (view, "debounce"))
            if not self.layout.min_width:  # in a narrow row (an HBox) the panel must not cut its portrait off
                self.layout.min_width = f"{view.needed_width}px"
        elif isinstance(portrait, PortraitView):
            view, built = portrait, False
        elif portrait in (False, None):
            view, built = None, False
        else:
            raise TypeError(f"portrait: expected True, False, None or a PortraitView, got {type(portrait).__name__}")
        self.portrait = view
        self._add_linked(view)
        if built:
            self._own(view)
        return view, built
