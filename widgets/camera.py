"""CameraControl: yaw, pitch, distance and field of view of the orbit camera, and an orbit player.

The public state is the ``camera`` dict ``{yaw, pitch, radius, fov, target, zoom}`` (the
pipeline's orbit parameters: degrees, world units, ``fov`` ``None`` = orthographic, ``target`` the
look-at point, ``zoom`` the focal-length multiplier), kept in step with the scalar traits. It
starts at the pipeline's own default camera (``pipe.default_camera``), framing included, so the
portrait is framed the way the model was made to be seen. Link it to a portrait or a 3D viewer::

    cam = CameraControl(pipe)                       # with its own portrait
    traitlets.dlink((cam, "camera"), (viewer, "camera"))

The SOF was trained on a range of poses (``pipe.pose_range``, the demo's yaw ±34.4°, pitch
±11.5°); outside it the rendered head shrinks or vanishes. By default the control keeps the camera
inside that range: the yaw and pitch sliders span it, values set from Python are clamped into it,
and the orbit player sweeps back and forth across it. Ticking *leave the trained range*
(``free_camera = True``) opens the full ±180° / ±80°; a note then warns whenever the pose is outside
the trained range.
"""
from __future__ import annotations

import html
import logging
import math
from typing import Any

import ipywidgets as W
from traitlets import Bool, Dict, Float, Int, List, TraitError, observe, validate

from sofgan_lab.cameras import DEFAULT_TARGET

from ._base import SliderLink
from ._render import orbit_camera, status_html
from .portrait import PortraitControl, PortraitView

__all__ = ["CameraControl", "pose_range_text"]

log = logging.getLogger(__name__)

#: Field of view (degrees) offered when switching from orthographic to perspective: about the view
#: of the orthographic default (3.56 world units tall at distance 4.5).
DEFAULT_PERSPECTIVE_FOV = 43.0

_KEYS = ("yaw", "pitch", "radius", "fov", "target", "zoom")

#: Degrees within which a pose just outside ``pipe.pose_range`` still counts as inside (float noise).
_EDGE_TOLERANCE = 1e-6


def _deg(v: float) -> str:
    s = f"{float(v):.1f}".rstrip("0").rstrip(".")
    return "0" if s == "-0" else s.replace("-", "\u2212")


def _span(lo: float, hi: float, symmetric: bool) -> str:
    if symmetric and math.isclose(lo, -hi):
        return f"\u00b1{_deg(hi)}\u00b0"
    return f"{_deg(lo)}\u2026{_deg(hi)}\u00b0"


def pose_range_text(pipe: Any, symmetric: bool = True) -> str:
    """``"yaw ±34.4°, pitch ±11.5°"``: the trained poses of ``pipe`` (``pipe.pose_range``); with
    ``symmetric=False`` always as ``low…high``."""
    r = pipe.pose_range
    return f"yaw {_span(*r['yaw'], symmetric)}, pitch {_span(*r['pitch'], symmetric)}"


def _note_html(text: str) -> str:
    return (f'<div class="sofgan-lab-warning" style="color:#8a5a00;font-size:small">'
            f"&#9888; {html.escape(text)}</div>")


class CameraControl(PortraitControl):
    """Orbit-camera controls (see the module docstring).

    Args:
        pipe: a :class:`~sofgan_lab.pipeline.SofGAN` (its default camera is the start, its
            ``pose_range`` the confinement).
        portrait: ``True`` (default): show an own :class:`PortraitView`; a ``PortraitView``: drive that
            one (not shown here); ``False``/``None``: no portrait.
        **traits: initial trait values (``free_camera`` is applied before the pose, so
            ``CameraControl(pipe, free_camera=True, yaw=90)`` starts at 90°).

    Attributes:
        range_label: the HTML line naming the trained poses (beside the *leave the trained range* box).
        range_note: the HTML warning shown while the pose is outside ``pipe.pose_range`` (hidden otherwise).
    """

    yaw = Float(0.0, min=-180.0, max=180.0,
                help="Degrees around the vertical axis; 0 = frontal, > 0 toward +x. While free_camera is off, "
                     "values outside pipe.pose_range['yaw'] are clamped into it.")
    pitch = Float(0.0, min=-80.0, max=80.0,
                  help="Degrees of elevation; > 0 raises the camera. While free_camera is off, values outside "
                       "pipe.pose_range['pitch'] are clamped into it.")
    radius = Float(4.5, min=0.5, max=50.0, help="Distance from the look-at point (world units).")
    fov = Float(None, allow_none=True, min=1.0, max=120.0,
                help="Vertical field of view in degrees; None = orthographic (the release's sampler).")
    target = List(Float(), default_value=list(DEFAULT_TARGET), minlen=3, maxlen=3,
                  help="Look-at point (x, y, z) in world units; default: the pipeline's framing.")
    zoom = Float(1.0, help="Focal-length multiplier (> 0) of the framing; default: the pipeline's.")
    camera = Dict(help="The camera as the pipeline's orbit parameters {yaw, pitch, radius, fov, target, zoom}; "
                       "a partial dict changes only the keys it has.")
    free_camera = Bool(False, help="Let yaw and pitch leave the poses the SOF was trained on (pipe.pose_range). "
                                   "Off: the sliders span that range, the pose is clamped into it and the orbit "
                                   "player sweeps back and forth across it; on: ±180° yaw, ±80° pitch, full turns.")
    in_trained_range = Bool(True, help="Whether the current yaw and pitch lie inside pipe.pose_range (set by the "
                                       "control; the range note shows while it is False).")
    orbit_step = Int(10, min=1, max=90, help="Degrees of yaw per frame of the orbit player.")
    playing = Bool(False, help="Whether the orbit player runs (front-end driven).")

    def __init__(self, pipe: Any, *, portrait: "PortraitView | bool | None" = True, **traits: Any):
        self.pipe = pipe
        self._syncing = False
        self._play_syncing = False
        self._orbit_dir = 1  # direction of the confined sweep (+1: toward the upper yaw)
        init = {k: v for k, v in pipe.default_camera.items() if k in _KEYS}
        init.update({k: traits.pop(k) for k in list(traits) if k in _KEYS})
        if "camera" in traits:
            init.update(traits.pop("camera"))
        super().__init__()
        for k, v in traits.items():
            if not self.has_trait(k):
                raise TypeError(f"{k}: CameraControl has no trait {k!r}")
            setattr(self, k, v)
        self.camera = init

        style = {"description_width": "70px"}
        lay = W.Layout(width="340px")
        ylo, yhi = self._slider_bounds("yaw")
        plo, phi = self._slider_bounds("pitch")
        # No step: the browser's slider snaps to a grid of steps counted from its min and sends the
        # snapped value back, so step=1 on the trained range (-34.4..34.4) turned the default yaw 0
        # into -0.4 as soon as the control was shown, and each change of the range moved the pose.
        self._yaw = W.FloatSlider(value=self.yaw, min=ylo, max=yhi, step=None, description="yaw", style=style,
                                  layout=lay)
        self._pitch = W.FloatSlider(value=self.pitch, min=plo, max=phi, step=None, description="pitch",
                                    style=style, layout=lay)
        self._free = W.Checkbox(value=self.free_camera, description="leave the trained range", indent=False,
                                layout=W.Layout(width="auto"))
        self.range_label = W.HTML(status_html(f"trained: {pose_range_text(pipe)}"))
        self.range_note = W.HTML(_note_html(
            f"outside the poses the model was trained on ({pose_range_text(pipe, symmetric=False)}): "
            "expect a shrinking or empty head"))
        self.range_note.add_class("sofgan-camera-range-note")
        self._radius = W.FloatSlider(value=self.radius, min=1.0, max=15.0, step=0.05, description="distance",
                                     style=style, layout=lay)
        self._ortho = W.Checkbox(value=self.fov is None, description="orthographic", indent=False)
        self._fov = W.FloatSlider(value=self.fov or DEFAULT_PERSPECTIVE_FOV, min=5, max=90, step=0.5,
                                  description="fov", style=style, layout=lay, disabled=self.fov is None)
        self._play = W.Play(value=int(round(self.yaw)) % 360, min=0, max=359, step=self.orbit_step, interval=120,
                            repeat=True, description="orbit")
        self._reset = W.Button(description="reset", tooltip="the pipeline's default camera",
                               layout=W.Layout(width="80px"))
        # the pose sliders follow drags and the orbit player: a link that ignores the browser's echoes
        self._slider_links = [SliderLink(w, self, name) for w, name in
                              ((self._yaw, "yaw"), (self._pitch, "pitch"), (self._radius, "radius"))]
        W.link((self._free, "value"), (self, "free_camera"))
        self._ortho.observe(self._on_ortho_box, "value")
        self._fov.observe(self._on_fov_slider, "value")
        self._play.observe(self._on_play_frame, "value")
        self._play.observe(lambda ch: setattr(self, "playing", bool(ch.new)), "playing")
        self._reset.on_click(lambda _: self.reset())
        self._update_range_note()

        self.portrait: PortraitView | None = None
        rows: list[W.Widget] = [self._yaw, self._pitch, W.HBox([self._free, self.range_label]), self.range_note,
                                self._radius, W.HBox([self._ortho, self._fov]), W.HBox([self._play, self._reset])]
        view, built = self._attach_portrait(pipe, portrait, camera=self.camera)
        if built:
            rows.append(view)
        if view is not None:
            W.dlink((self, "camera"), (view, "camera"))
        self.children = rows

    # ------------------------------------------------------------------ state
    def _params(self) -> dict:
        return {"yaw": float(self.yaw), "pitch": float(self.pitch), "radius": float(self.radius),
                "fov": None if self.fov is None else float(self.fov), "target": [float(v) for v in self.target],
                "zoom": float(self.zoom)}

    def _pose_bounds(self, name: str) -> tuple[float, float]:
        """The trained range of ``name`` ("yaw" or "pitch") within the trait's own bounds."""
        t = self.traits()[name]
        lo, hi = self.pipe.pose_range[name]
        return max(float(lo), t.min), min(float(hi), t.max)

    def _slider_bounds(self, name: str) -> tuple[float, float]:
        if self.free_camera:
            t = self.traits()[name]
            return t.min, t.max
        return self._pose_bounds(name)

    def _confine(self, name: str, value: float) -> float:
        if self.free_camera:
            return value
        lo, hi = self._pose_bounds(name)
        return min(max(value, lo), hi)

    def _sync_from_camera(self, cam: dict) -> None:
        self._syncing = True
        try:
            with self.hold_trait_notifications():
                for k in _KEYS:
                    if k not in cam:
                        continue
                    v = cam[k]
                    if k == "target":
                        setattr(self, k, [float(x) for x in v])
                    else:
                        setattr(self, k, v if (k == "fov" and v is None) else float(v))
        finally:
            self._syncing = False

    @validate("yaw", "pitch")
    def _check_pose(self, proposal: Any) -> float:
        v = float(proposal.value)
        if not math.isfinite(v):
            raise TraitError(f"{proposal.trait.name}: expected a finite number of degrees, got {proposal.value!r}")
        return self._confine(proposal.trait.name, v)

    @validate("zoom")
    def _check_zoom(self, proposal: Any) -> float:
        v = float(proposal.value)
        if not (math.isfinite(v) and v > 0):
            raise TraitError(f"zoom: expected a finite number > 0, got {proposal.value!r}")
        return v

    @validate("camera")
    def _check_camera(self, proposal: Any) -> dict:
        try:  # the pipeline's own validation: known keys, finite numbers, zoom > 0, a 3-float target
            cam = self.pipe.camera_params(dict(proposal.value), "camera")
        except ValueError as exc:
            raise TraitError(str(exc)) from None
        full = self._params()
        full.update(cam)
        for k in ("yaw", "pitch", "radius", "fov"):  # the traits' bounds, before anything changes
            if full[k] is not None:
                full[k] = self.traits()[k].validate(self, full[k])
        full["yaw"] = self._confine("yaw", full["yaw"])
        full["pitch"] = self._confine("pitch", full["pitch"])
        return full

    @observe("yaw", "pitch", "radius", "fov", "target", "zoom")
    def _scalar_changed(self, change: Any) -> None:
        if not self._syncing:
            self.camera = self._params()
        if change.name in ("yaw", "pitch"):
            self._update_range_note()
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

    @observe("free_camera")
    def _free_camera_changed(self, change: Any) -> None:
        if not change.new:  # confined again: the pose back into the trained range (one camera change)
            self.camera = {"yaw": self.yaw, "pitch": self.pitch}
        if hasattr(self, "_yaw"):
            for w, name in ((self._yaw, "yaw"), (self._pitch, "pitch")):
                lo, hi = self._slider_bounds(name)
                w.min, w.max = min(w.min, lo), max(w.max, hi)  # widen first: min <= max at every step
                w.min, w.max = lo, hi
            if change.new:  # the player's frames map to yaw again: start from the current one
                self._set_play_frame(int(round(self.yaw)) % 360)
        self._update_range_note()

    def _update_range_note(self) -> None:
        # Within _EDGE_TOLERANCE of an end counts as the end: when the sliders' range changes, the
        # browser sends the pose back with rounding noise (34.4 -> 34.400000000000006), which must not
        # raise the note at the edge of the trained range.
        pose = []
        for name in ("yaw", "pitch"):
            v, (lo, hi) = float(getattr(self, name)), self.pipe.pose_range[name]
            pose.append(min(max(v, lo), hi) if lo - _EDGE_TOLERANCE <= v <= hi + _EDGE_TOLERANCE else v)
        inside = bool(self.pipe.in_pose_range(*pose))
        self.in_trained_range = inside
        if hasattr(self, "range_note"):
            self.range_note.layout.display = "none" if inside else None

    @observe("orbit_step")
    def _orbit_step_changed(self, change: Any) -> None:
        if hasattr(self, "_play"):
            self._play.step = change.new

    def _on_ortho_box(self, change: Any) -> None:
        self.fov = None if change.new else float(self._fov.value)

    def _on_fov_slider(self, change: Any) -> None:
        if not self._ortho.value:
            self.fov = float(change.new)

    def _set_play_frame(self, frame: int) -> None:
        self._play_syncing = True
        try:
            self._play.value = frame
        finally:
            self._play_syncing = False

    def _on_play_frame(self, change: Any) -> None:
        """A frame of the orbit player. Free: the frame (0..359) is the yaw, in [-180, 180). Confined:
        each frame is one :meth:`orbit` step of the back-and-forth sweep (the frame number is a tick)."""
        if self._play_syncing:
            return
        if self.free_camera:
            self.yaw = float(((int(change.new) + 180) % 360) - 180)
        else:
            self.orbit()

    def orbit(self, degrees: float | None = None) -> None:
        """Turn the camera by ``degrees`` of yaw (default ``orbit_step``) — what one frame of the orbit
        player does.

        With ``free_camera`` on, the yaw wraps at ±180 (the player makes full turns). Off, the camera
        sweeps back and forth across ``pipe.pose_range['yaw']``: a step stops at an end of the range,
        and the next one turns back (ping-pong); the sweep's direction is kept between calls, so after
        a bounce the same call turns the other way. The sign of ``degrees`` sets the direction of the
        first sweep."""
        step = self.orbit_step if degrees is None else degrees
        if not math.isfinite(step):
            raise ValueError(f"degrees: expected a finite number, got {degrees!r}")
        if self.free_camera:
            self.yaw = float(((self.yaw + step + 180.0) % 360.0) - 180.0)
            return
        lo, hi = self._pose_bounds("yaw")
        move = self._orbit_dir * float(step)
        if (move > 0 and self.yaw >= hi) or (move < 0 and self.yaw <= lo):  # at the end it heads out of
            self._orbit_dir = -self._orbit_dir
            move = -move
        self.yaw = min(max(self.yaw + move, lo), hi)

    def orbit_by(self, d_yaw: float, d_pitch: float) -> None:
        """Turn the camera by ``d_yaw`` and ``d_pitch`` degrees in one camera change — what a drag on an
        orbiting portrait does. While ``free_camera`` is off the pose stays inside the trained range
        (clamped at its edges); on, the yaw wraps at ±180 and the pitch stops at ±80."""
        if not (math.isfinite(d_yaw) and math.isfinite(d_pitch)):
            raise ValueError(f"d_yaw, d_pitch: expected finite degrees, got {d_yaw!r}, {d_pitch!r}")
        yaw = self.yaw + float(d_yaw)
        if self.free_camera:
            yaw = ((yaw + 180.0) % 360.0) - 180.0
        t = self.traits()["pitch"]
        self.camera = {"yaw": yaw, "pitch": min(max(self.pitch + float(d_pitch), t.min), t.max)}

    def reset(self) -> None:
        """Back to the pipeline's default camera, ``target`` and ``zoom`` included (``free_camera`` is
        kept; while confined, a default pose outside the trained range is clamped into it)."""
        self._orbit_dir = 1
        self.camera = dict(self.pipe.default_camera)

    def get_camera(self, image_size: int | None = None) -> Any:
        """The current camera as a :class:`~sofgan_lab.cameras.Camera` (``image_size`` default: the
        pipeline's)."""
        return orbit_camera(self.pipe, self.camera, image_size)
