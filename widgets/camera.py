"""CameraControl: yaw, pitch, distance and field of view of the orbit camera, and an orbit player.

The public state is the ``camera`` dict ``{yaw, pitch, radius, fov}`` (the pipeline's orbit
parameters: degrees, world units, ``fov`` ``None`` = orthographic), kept in step with the four
scalar traits. Link it to a portrait or a 3D viewer::

    cam = CameraControl(pipe)                       # with its own portrait
    traitlets.dlink((cam, "camera"), (viewer, "camera"))
"""
from __future__ import annotations

import logging
import math
from typing import Any

import ipywidgets as W
from traitlets import Bool, Dict, Float, Int, TraitError, observe, validate

from ._base import Panel
from ._render import orbit_camera
from .portrait import PortraitView

__all__ = ["CameraControl"]

log = logging.getLogger(__name__)

#: Field of view (degrees) offered when switching from orthographic to perspective: about the view
#: of the orthographic default (3.56 world units tall at distance 4.5).
DEFAULT_PERSPECTIVE_FOV = 43.0


class CameraControl(Panel):
    """Orbit-camera controls (see the module docstring).

    Args:
        pipe: a :class:`~sofgan_lab.pipeline.SofGAN` (its default camera is the start).
        portrait: ``True`` (default): show an own :class:`PortraitView`; a ``PortraitView``: drive that
            one (not shown here); ``False``/``None``: no portrait.
        **traits: initial trait values.
    """

    yaw = Float(0.0, min=-180.0, max=180.0, help="Degrees around the vertical axis; 0 = frontal, > 0 toward +x.")
    pitch = Float(0.0, min=-80.0, max=80.0, help="Degrees of elevation; > 0 raises the camera.")
    radius = Float(4.5, min=0.5, max=50.0, help="Distance from the look-at point (world units).")
    fov = Float(None, allow_none=True, min=1.0, max=120.0,
                help="Vertical field of view in degrees; None = orthographic (the release's sampler).")
    camera = Dict(help="The camera as the pipeline's orbit parameters {yaw, pitch, radius, fov}.")
    orbit_step = Int(10, min=1, max=90, help="Degrees of yaw per frame of the orbit player.")
    playing = Bool(False, help="Whether the orbit player runs (front-end driven).")

    def __init__(self, pipe: Any, *, portrait: "PortraitView | bool | None" = True, **traits: Any):
        self.pipe = pipe
        self._syncing = False
        d = pipe.default_camera
        init = {"yaw": d["yaw"], "pitch": d["pitch"], "radius": d["radius"], "fov": d["fov"]}
        init.update({k: traits.pop(k) for k in list(traits) if k in init})
        if "camera" in traits:
            init.update(traits.pop("camera"))
        super().__init__()
        for k, v in traits.items():
            if not self.has_trait(k):
                raise TypeError(f"{k}: CameraControl has no trait {k!r}")
            setattr(self, k, v)
        self._sync_from_camera(init)
        self.camera = self._params()

        style = {"description_width": "70px"}
        lay = W.Layout(width="340px")
        self._yaw = W.FloatSlider(value=self.yaw, min=-180, max=180, step=1, description="yaw", style=style, layout=lay)
        self._pitch = W.FloatSlider(value=self.pitch, min=-80, max=80, step=1, description="pitch", style=style,
                                    layout=lay)
        self._radius = W.FloatSlider(value=self.radius, min=1.0, max=15.0, step=0.05, description="distance",
                                     style=style, layout=lay)
        self._ortho = W.Checkbox(value=self.fov is None, description="orthographic", indent=False)
        self._fov = W.FloatSlider(value=self.fov or DEFAULT_PERSPECTIVE_FOV, min=5, max=90, step=0.5,
                                  description="fov", style=style, layout=lay, disabled=self.fov is None)
        self._play = W.Play(value=int(round(self.yaw)) % 360, min=0, max=359, step=self.orbit_step, interval=120,
                            repeat=True, description="orbit")
        self._reset = W.Button(description="reset", tooltip="the pipeline's default camera",
                               layout=W.Layout(width="80px"))
        for w, name in ((self._yaw, "yaw"), (self._pitch, "pitch"), (self._radius, "radius")):
            W.link((w, "value"), (self, name))
        self._ortho.observe(self._on_ortho_box, "value")
        self._fov.observe(self._on_fov_slider, "value")
        self._play.observe(self._on_play_frame, "value")
        self._play.observe(lambda ch: setattr(self, "playing", bool(ch.new)), "playing")
        self._reset.on_click(lambda _: self.reset())

        self.portrait: PortraitView | None = None
        rows: list[W.Widget] = [self._yaw, self._pitch, self._radius, W.HBox([self._ortho, self._fov]),
                                W.HBox([self._play, self._reset])]
        view, built = self._attach_portrait(pipe, portrait, camera=self.camera)
        if built:
            rows.append(view)
        if view is not None:
            W.dlink((self, "camera"), (view, "camera"))
        self.children = rows

    # ------------------------------------------------------------------ state
    def _params(self) -> dict:
        return {"yaw": float(self.yaw), "pitch": float(self.pitch), "radius": float(self.radius),
                "fov": None if self.fov is None else float(self.fov)}

    def _sync_from_camera(self, cam: dict) -> None:
        self._syncing = True
        try:
            with self.hold_trait_notifications():
                for k in ("yaw", "pitch", "radius", "fov"):
                    if k in cam:
                        setattr(self, k, cam[k] if (k == "fov" and cam[k] is None) else float(cam[k]))
        finally:
            self._syncing = False

    @validate("camera")
    def _check_camera(self, proposal: Any) -> dict:
        cam = dict(proposal.value)
        unknown = sorted(set(cam) - {"yaw", "pitch", "radius", "fov"})
        if unknown:
            raise TraitError(f"camera: unknown keys {unknown}; expected some of ['yaw', 'pitch', 'radius', 'fov']")
        full = self._params() if self.has_trait("yaw") else {}
        full.update(cam)
        return full

    @observe("yaw", "pitch", "radius", "fov")
    def _scalar_changed(self, change: Any) -> None:
        if not self._syncing:
            self.camera = self._params()
        if change.name == "fov" and hasattr(self, "_ortho"):
            if change.new is not None:  # the slider first, so the checkbox handler reads the new value
                self._fov.value = change.new
            self._fov.disabled = change.new is None
            self._ortho.value = change.new is None

    @observe("camera")
    def _camera_changed(self, change: Any) -> None:
        if self._syncing:
            return
        self._sync_from_camera(change.new)
        if self._params() != change.new:  # a value was clipped or cast by a scalar trait
            self.camera = self._params()

    @observe("orbit_step")
    def _orbit_step_changed(self, change: Any) -> None:
        if hasattr(self, "_play"):
            self._play.step = change.new

    def _on_ortho_box(self, change: Any) -> None:
        self.fov = None if change.new else float(self._fov.value)

    def _on_fov_slider(self, change: Any) -> None:
        if not self._ortho.value:
            self.fov = float(change.new)

    def _on_play_frame(self, change: Any) -> None:
        """The orbit player's frame (0..359) → yaw in [-180, 180)."""
        self.yaw = float(((int(change.new) + 180) % 360) - 180)

    def orbit(self, degrees: float | None = None) -> None:
        """Turn the camera by ``degrees`` of yaw (default ``orbit_step``), wrapping at ±180 — what one
        frame of the orbit player does."""
        step = self.orbit_step if degrees is None else degrees
        if not math.isfinite(step):
            raise ValueError(f"degrees: expected a finite number, got {degrees!r}")
        self.yaw = float(((self.yaw + step + 180.0) % 360.0) - 180.0)

    def reset(self) -> None:
        """Back to the pipeline's default camera."""
        self.camera = dict(self.pipe.default_camera)

    def get_camera(self, image_size: int | None = None) -> Any:
        """The current camera as a :class:`~sofgan_lab.cameras.Camera` (``image_size`` default: the
        pipeline's)."""
        return orbit_camera(self.pipe, self.camera, image_size)
