"""Cameras, look-at, view paths and rays for SOF rendering.

Conventions
-----------
World frame
    y is up, the face looks toward +z, and cameras look at ``DEFAULT_TARGET = (0, 0.1, 0)`` by
    default. The whole bust lies inside the radius-1.5 sphere around the origin.
Camera frame
    OpenCV: x right, y down, z forward. ``cam2world`` is a ``(B, 4, 4)`` rigid transform whose
    rotation columns are ``[right, -up, forward]`` and whose translation is the camera position.
    A camera-space point ``p_c`` maps to the world as ``R @ p_c + t``. ``depth`` everywhere in
    this module is the camera-space z (not the distance along the ray).
Angles
    Every angle in the public API is in DEGREES. ``yaw = 0`` is the frontal camera on the +z side
    looking toward -z; positive yaw moves the camera toward +x (the subject's left); positive
    pitch raises the camera (it then looks down)::

        eye = target + radius * (sin(yaw) cos(pitch), sin(pitch), cos(yaw) cos(pitch))

Intrinsics
    ``K = [[fx, 0, cx], [0, fy, cy], [0, 0, 1]]`` in pixels, no skew. For a perspective camera a
    camera-space point ``(X, Y, Z)`` lands at image coordinates ``(fx X/Z + cx, fy Y/Z + cy)``.
    For an orthographic camera ``fx, fy`` are pixels per world unit and the point lands at
    ``(fx X + cx, fy Y + cy)``.
Image coordinates and pixels
    Image coordinates ``(x, y)`` are continuous, with (0, 0) the top-left corner of the image, x
    to the right (columns) and y down (rows). Pixel ``(row i, col j)`` is sampled at
    ``(x, y) = (j + pixel_offset, i + pixel_offset)``. The default ``pixel_offset = 0.5`` samples
    pixel centres, so a camera with ``cx = W/2`` is exactly left-right symmetric;
    ``pixel_offset = 0.0`` reproduces the official SOF release, whose ``uv`` are the integer pixel
    indices.

The official look-at rule (SOF dataset code) is :func:`look_at`; the official release's view
sampler is :func:`random_views` with :meth:`Camera.from_orbit`'s defaults (orthographic, radius
4.5, 36 px per world unit at 128 px, azimuth pi/2 +- 0.6 rad, polar pi/2 +- 0.2 rad).

Everything is float32 unless asked, batched along a leading ``B`` axis, and follows the device of
its inputs.
"""
from __future__ import annotations

import logging
import math
import numbers
from dataclasses import dataclass
from typing import Any, Sequence

import torch

from ._validate import check_number

__all__ = [
    "DEFAULT_TARGET",
    "DEFAULT_RADIUS",
    "PORTRAIT_TARGET",
    "PORTRAIT_ZOOM",
    "TRAINED_YAW_RANGE",
    "TRAINED_PITCH_RANGE",
    "FRAMINGS",
    "framing",
    "framing_name",
    "OFFICIAL_PIXELS_PER_UNIT_128",
    "MAX_IMAGE_SIZE",
    "look_at",
    "orbit_eye",
    "opencv_to_opengl",
    "opengl_to_opencv",
    "intrinsics_from_fov",
    "ortho_intrinsics",
    "RayBundle",
    "Camera",
    "yaw_sweep",
    "spiral",
    "sphere_grid",
    "uniform_heights",
    "random_views",
]

logger = logging.getLogger(__name__)

#: Default look-at target (world units): the release's cameras look at about (0, 0.1, 0).
DEFAULT_TARGET: tuple[float, float, float] = (0.0, 0.1, 0.0)
#: Default orbit radius (world units) of the release's sampler.
DEFAULT_RADIUS: float = 4.5
#: Pixels per world unit of the release's orthographic sampler at 128 px (f = 36, c = 64).
OFFICIAL_PIXELS_PER_UNIT_128: float = 36.0
#: Look-at point of the portrait framing (world units): between the top of the hair and the top
#: of the shoulders of the synthetic busts, so the whole head is in view and the shoulders meet
#: the bottom edge, as in CelebAMask-HQ portraits.
PORTRAIT_TARGET: tuple[float, float, float] = (0.0, 0.47, 0.0)
#: Focal-length multiplier of the portrait framing: 1.95 x the release's 36 px per unit at 128 px
#: (the image spans 1.82 world units, the face of a synthetic head covers about 23 % of it).
PORTRAIT_ZOOM: float = 1.95
#: Yaw and pitch ranges (degrees) of the release's view sampler (:func:`random_views`), the poses
#: the SOF training views are drawn from.
TRAINED_YAW_RANGE: tuple[float, float] = (-34.4, 34.4)
TRAINED_PITCH_RANGE: tuple[float, float] = (-11.5, 11.5)
#: Named framings: ``target`` and ``zoom`` for :meth:`Camera.from_orbit`. ``"official"`` is the
#: release's (the whole bust small in the frame), ``"portrait"`` the demo world's.
FRAMINGS: dict[str, dict[str, Any]] = {
    "official": {"target": DEFAULT_TARGET, "zoom": 1.0},
    "portrait": {"target": PORTRAIT_TARGET, "zoom": PORTRAIT_ZOOM},
}
#: Largest accepted image side, in pixels.
MAX_IMAGE_SIZE: int = 4096

_ORTHONORMAL_TOL = 1e-3


# --------------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------------


def _shape(x: Any) -> str:
    return str(tuple(x.shape)) if hasattr(x, "shape") else repr(x)


def _real_tensor(t: torch.Tensor, name: str, dtype: torch.dtype | None, device: Any) -> torch.Tensor:
    """A real-valued tensor as floating point, on ``dtype`` / ``device`` when given."""
    if t.dtype == torch.bool or t.is_complex():
        raise TypeError(f"{name}: expected a real tensor, got dtype {t.dtype}")
    if not t.is_floating_point():
        t = t.to(dtype or torch.float32)
    if dtype is not None:
        t = t.to(dtype)
    if device is not None:
        t = t.to(device)
    return t


def _as_vec3(
    value: Any, name: str, *, dtype: torch.dtype | None = None, device: Any = None
) -> torch.Tensor:
    """A tensor, or a sequence of 3 numbers, as a float tensor ``(3,)`` or ``(B, 3)``."""
    if isinstance(value, torch.Tensor):
        t = _real_tensor(value, name, dtype, device)
    elif isinstance(value, (list, tuple)):
        if not all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in _flatten(value)):
            raise TypeError(f"{name}: expected a tensor or a sequence of numbers, got {value!r}")
        t = torch.tensor(value, dtype=dtype or torch.float32, device=device)
    else:
        raise TypeError(
            f"{name}: expected a torch.Tensor or a sequence of 3 numbers, got {type(value).__name__}"
        )
    if t.dim() not in (1, 2) or t.shape[-1] != 3:
        raise ValueError(f"{name}: expected shape (3,) or (B, 3), got {_shape(t)}")
    return t


def _flatten(seq: Any) -> list:
    out = []
    for v in seq:
        if isinstance(v, (list, tuple)):
            out.extend(_flatten(v))
        else:
            out.append(v)
    return out


def _as_angles(
    value: Any, name: str, *, dtype: torch.dtype | None = None, device: Any = None
) -> torch.Tensor:
    """A scalar, a 1-D tensor or a sequence of numbers as a 1-D float tensor ``(n,)``."""
    if isinstance(value, torch.Tensor):
        t = _real_tensor(value, name, dtype, device)
        if t.dim() == 0:
            t = t.reshape(1)
        if t.dim() != 1:
            raise ValueError(f"{name}: expected a scalar or a 1-D tensor, got shape {_shape(t)}")
    elif isinstance(value, numbers.Real) and not isinstance(value, bool):
        t = torch.tensor([float(value)], dtype=dtype or torch.float32, device=device)
    elif isinstance(value, (list, tuple)):
        if len(value) == 0 or not all(
            isinstance(v, numbers.Real) and not isinstance(v, bool) for v in value
        ):
            raise TypeError(f"{name}: expected a non-empty sequence of numbers, got {value!r}")
        t = torch.tensor([float(v) for v in value], dtype=dtype or torch.float32, device=device)
    else:
        raise TypeError(
            f"{name}: expected a number, a 1-D tensor or a sequence of numbers, "
            f"got {type(value).__name__}"
        )
    if not torch.isfinite(t.detach()).all():
        raise ValueError(f"{name}: contains non-finite values")
    return t


def _check_image_size(image_size: Any, name: str = "image_size") -> tuple[int, int]:
    """An int or ``(H, W)`` of ints in ``1..MAX_IMAGE_SIZE`` -> ``(H, W)``."""
    if isinstance(image_size, torch.Tensor) and image_size.dim() == 0:
        image_size = image_size.item()
    if isinstance(image_size, numbers.Integral) and not isinstance(image_size, bool):
        hw = (int(image_size), int(image_size))
    elif isinstance(image_size, (tuple, list, torch.Size)) and len(image_size) == 2 and all(
        isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in image_size
    ):
        hw = (int(image_size[0]), int(image_size[1]))
    else:
        raise TypeError(
            f"{name}: expected an int or an (H, W) pair of ints, got {image_size!r} "
            f"({type(image_size).__name__})"
        )
    if not all(1 <= v <= MAX_IMAGE_SIZE for v in hw):
        raise ValueError(
            f"{name}: expected sides in 1..{MAX_IMAGE_SIZE} pixels, got {image_size!r}"
        )
    return hw


def _check_count(n: Any, name: str = "n") -> int:
    if isinstance(n, torch.Tensor) and n.dim() == 0 and not n.is_floating_point():
        n = n.item()
    if not isinstance(n, numbers.Integral) or isinstance(n, bool):
        raise TypeError(f"{name}: expected an int >= 1, got {n!r} ({type(n).__name__})")
    if n < 1:
        raise ValueError(f"{name}: expected an int >= 1, got {n}")
    return int(n)


def _check_range(value: Any, name: str) -> tuple[float, float]:
    if (
        not isinstance(value, (tuple, list))
        or len(value) != 2
        or not all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in value)
    ):
        raise TypeError(f"{name}: expected a (low, high) pair of numbers, got {value!r}")
    lo, hi = float(value[0]), float(value[1])
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"{name}: expected finite numbers, got {value!r}")
    return lo, hi


def _linspace(lo: float, hi: float, n: int) -> torch.Tensor:
    """``n`` evenly spaced values from lo to hi, both included; ``n = 1`` gives the midpoint."""
    if n == 1:
        return torch.tensor([(lo + hi) / 2.0], dtype=torch.float64)
    return torch.linspace(lo, hi, n, dtype=torch.float64)


# --------------------------------------------------------------------------------------------
# look-at and conventions
# --------------------------------------------------------------------------------------------


def framing(name: str) -> dict[str, Any]:
    """``{"target": (x, y, z), "zoom": z}`` of a named framing (``"official"`` or ``"portrait"``),
    keyword arguments for :meth:`Camera.from_orbit` and the view paths."""
    if not isinstance(name, str) or name not in FRAMINGS:
        raise ValueError(f"framing: expected one of {sorted(FRAMINGS)}, got {name!r}")
    f = FRAMINGS[name]
    return {"target": tuple(f["target"]), "zoom": float(f["zoom"])}


def framing_name(target: Any, zoom: float) -> str | None:
    """The name in :data:`FRAMINGS` of the framing with this look-at ``target`` and ``zoom``, or
    ``None`` when no named framing matches (to 1e-6)."""
    t = [float(v) for v in target]
    for name, f in FRAMINGS.items():
        if all(abs(a - b) < 1e-6 for a, b in zip(t, f["target"])) and abs(float(zoom) - f["zoom"]) < 1e-6:
            return name
    return None


def look_at(
    eye: Any,
    target: Any = DEFAULT_TARGET,
    up: Any = (0.0, 1.0, 0.0),
) -> torch.Tensor:
    """The official SOF look-at rule: camera-to-world matrices in the OpenCV convention.

    ``fwd = normalize(target - eye)``, ``right = normalize(fwd x up)``, ``up' = right x fwd``;
    the rotation columns are ``(right, -up', fwd)`` and the translation is ``eye``.

    Args:
        eye: camera positions, ``(B, 3)`` or ``(3,)`` tensor or sequence, world units.
        target: look-at points, ``(B, 3)`` or ``(3,)``; default ``(0, 0.1, 0)``.
        up: world up direction, ``(B, 3)`` or ``(3,)``; default ``(0, 1, 0)``.

    Returns:
        ``(B, 4, 4)`` cam2world, dtype of ``eye`` if it is a floating tensor (else float32), on
        ``eye``'s device. ``B = 1`` when every argument is ``(3,)``.

    Raises:
        ValueError: ``eye`` equals ``target`` (no view direction), ``up`` is zero or parallel to
            the view direction, or the batch sizes do not broadcast.
    """
    eye_t = _as_vec3(eye, "eye")
    dtype = eye_t.dtype if eye_t.is_floating_point() else torch.float32
    device = eye_t.device
    eye_t = eye_t.to(dtype)
    target_t = _as_vec3(target, "target", dtype=dtype, device=device)
    up_t = _as_vec3(up, "up", dtype=dtype, device=device)
    eye_t, target_t, up_t = (t.reshape(-1, 3) for t in (eye_t, target_t, up_t))
    sizes = {t.shape[0] for t in (eye_t, target_t, up_t)} - {1}
    if len(sizes) > 1:
        raise ValueError(
            f"eye, target, up: batch sizes do not broadcast: eye {_shape(eye_t)}, "
            f"target {_shape(target_t)}, up {_shape(up_t)}"
        )
    b = sizes.pop() if sizes else 1
    eye_t, target_t, up_t = (t.expand(b, 3) for t in (eye_t, target_t, up_t))
    for name, t in (("eye", eye_t), ("target", target_t), ("up", up_t)):
        if not torch.isfinite(t.detach()).all():
            raise ValueError(f"{name}: contains non-finite values")

    fwd = target_t - eye_t
    fwd_norm = fwd.norm(dim=-1, keepdim=True)
    scale = torch.maximum(eye_t.detach().abs().amax(-1), target_t.detach().abs().amax(-1))
    if (fwd_norm.detach().squeeze(-1) <= 1e-6 * torch.clamp(scale, min=1.0)).any():
        raise ValueError(
            "eye: coincides with target (no view direction); "
            f"got eye {eye_t.detach().cpu().tolist()}, target {target_t.detach().cpu().tolist()}"
        )
    fwd = fwd / fwd_norm
    up_norm = up_t.norm(dim=-1, keepdim=True)
    if (up_norm.detach() <= 1e-12).any():
        raise ValueError(f"up: must be a non-zero vector, got {up_t.detach().cpu().tolist()}")
    right = torch.linalg.cross(fwd, up_t / up_norm, dim=-1)
    right_norm = right.norm(dim=-1, keepdim=True)
    if (right_norm.detach() <= 1e-6).any():
        raise ValueError(
            "up: parallel to the view direction (target - eye), the roll is undefined; "
            f"got up {up_t.detach().cpu().tolist()}, view direction {fwd.detach().cpu().tolist()}"
        )
    right = right / right_norm
    true_up = torch.linalg.cross(right, fwd, dim=-1)
    rot = torch.stack([right, -true_up, fwd], dim=-1)  # columns
    c2w = torch.cat(
        [
            torch.cat([rot, eye_t.unsqueeze(-1)], dim=-1),
            torch.tensor([0.0, 0.0, 0.0, 1.0], dtype=dtype, device=device).expand(b, 1, 4),
        ],
        dim=-2,
    )
    return c2w


def orbit_eye(
    yaw: Any = 0.0, pitch: Any = 0.0, radius: Any = DEFAULT_RADIUS, target: Any = DEFAULT_TARGET,
    *, dtype: torch.dtype | None = None, device: Any = None,
) -> torch.Tensor:
    """Camera positions on an orbit: ``target + radius * (sin y cos p, sin p, cos y cos p)``.

    Args:
        yaw, pitch: degrees; scalars, 1-D tensors or sequences, broadcast together to ``(B,)``.
        radius: world units, scalar or ``(B,)``, > 0.
        target: ``(3,)`` or ``(B, 3)`` world point.

    Returns:
        ``(B, 3)`` eye positions (float32 unless ``dtype``), world units.
    """
    dev = device
    if dev is None:
        for v in (yaw, pitch, radius, target):
            if isinstance(v, torch.Tensor):
                dev = v.device
                break
    dt = dtype or torch.float32
    yaw_t = _as_angles(yaw, "yaw", dtype=dt, device=dev)
    pitch_t = _as_angles(pitch, "pitch", dtype=dt, device=dev)
    radius_t = _as_angles(radius, "radius", dtype=dt, device=dev)
    target_t = _as_vec3(target, "target", dtype=dt, device=dev).reshape(-1, 3)
    if (pitch_t.detach().abs() >= 90.0).any():
        raise ValueError(
            f"pitch: expected degrees strictly inside (-90, 90), got {pitch_t.detach().cpu().tolist()}"
        )
    if (radius_t.detach() <= 0).any():
        raise ValueError(f"radius: expected > 0, got {radius_t.detach().cpu().tolist()}")
    sizes = {yaw_t.shape[0], pitch_t.shape[0], radius_t.shape[0], target_t.shape[0]} - {1}
    if len(sizes) > 1:
        raise ValueError(
            f"yaw, pitch, radius, target: batch sizes do not broadcast: yaw {_shape(yaw_t)}, "
            f"pitch {_shape(pitch_t)}, radius {_shape(radius_t)}, target {_shape(target_t)}"
        )
    b = sizes.pop() if sizes else 1
    y = torch.deg2rad(yaw_t).expand(b)
    p = torch.deg2rad(pitch_t).expand(b)
    r = radius_t.expand(b)
    offset = torch.stack([torch.sin(y) * torch.cos(p), torch.sin(p), torch.cos(y) * torch.cos(p)], -1)
    return target_t.expand(b, 3) + r.unsqueeze(-1) * offset


def _check_c2w_shape(c2w: Any, name: str) -> torch.Tensor:
    if not isinstance(c2w, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(c2w).__name__}")
    if c2w.dim() < 2 or tuple(c2w.shape[-2:]) != (4, 4):
        raise ValueError(f"{name}: expected shape (..., 4, 4), got {_shape(c2w)}")
    return c2w


def opencv_to_opengl(c2w: torch.Tensor) -> torch.Tensor:
    """OpenCV cam2world (x right, y down, z forward) -> OpenGL (x right, y up, z backward).

    Negates the camera's y and z axes (columns 1 and 2 of the rotation); the position is kept.
    ``(..., 4, 4) -> (..., 4, 4)``, same dtype and device. Its own inverse.
    """
    c2w = _check_c2w_shape(c2w, "c2w")
    flip = torch.tensor([1.0, -1.0, -1.0, 1.0], dtype=c2w.dtype, device=c2w.device)
    return c2w * flip


def opengl_to_opencv(c2w: torch.Tensor) -> torch.Tensor:
    """OpenGL cam2world -> OpenCV cam2world (the same axis flip; see :func:`opencv_to_opengl`)."""
    return opencv_to_opengl(c2w)


def _scalar_or_batch(value: Any, name: str, dtype, device) -> torch.Tensor:
    return _as_angles(value, name, dtype=dtype or torch.float32, device=device)


def _k_matrix(fx, fy, cx, cy) -> torch.Tensor:
    zero = torch.zeros_like(fx)
    one = torch.ones_like(fx)
    return torch.stack(
        [
            torch.stack([fx, zero, cx], -1),
            torch.stack([zero, fy, cy], -1),
            torch.stack([zero, zero, one], -1),
        ],
        -2,
    )


def intrinsics_from_fov(
    fov_deg: Any, image_size: Any, *, dtype: torch.dtype | None = None, device: Any = None
) -> torch.Tensor:
    """Perspective intrinsics from a vertical field of view.

    ``fy = (H / 2) / tan(fov / 2)``, ``fx = fy`` (square pixels), ``cx = W / 2``, ``cy = H / 2``.

    Args:
        fov_deg: vertical field of view in degrees, in (0, 180); a number gives ``(3, 3)``, a
            1-D tensor or sequence of ``B`` values gives ``(B, 3, 3)``.
        image_size: int or ``(H, W)``, pixels.

    Returns:
        ``(3, 3)`` or ``(B, 3, 3)`` K in pixels, float32 unless ``dtype``.
    """
    return _fov_intrinsics(fov_deg, image_size, "fov_deg", dtype, device)


def _fov_intrinsics(fov_deg: Any, image_size: Any, name: str, dtype, device) -> torch.Tensor:
    h, w = _check_image_size(image_size)
    scalar = isinstance(fov_deg, numbers.Real) or (
        isinstance(fov_deg, torch.Tensor) and fov_deg.dim() == 0
    )
    fov = _scalar_or_batch(fov_deg, name, dtype, device)
    if ((fov.detach() <= 0) | (fov.detach() >= 180)).any():
        raise ValueError(f"{name}: expected degrees in (0, 180), got {fov.detach().cpu().tolist()}")
    fy = (h / 2.0) / torch.tan(torch.deg2rad(fov) / 2.0)
    k = _k_matrix(fy, fy, torch.full_like(fy, w / 2.0), torch.full_like(fy, h / 2.0))
    return k[0] if scalar else k


def ortho_intrinsics(
    pixels_per_unit: Any, image_size: Any, *, dtype: torch.dtype | None = None, device: Any = None
) -> torch.Tensor:
    """Orthographic intrinsics: ``fx = fy = pixels_per_unit``, ``cx = W / 2``, ``cy = H / 2``.

    Args:
        pixels_per_unit: pixels per world unit, > 0; a number gives ``(3, 3)``, a 1-D tensor or
            sequence gives ``(B, 3, 3)``. The release uses 36 at 128 px.
        image_size: int or ``(H, W)``, pixels.

    Returns:
        ``(3, 3)`` or ``(B, 3, 3)`` K, float32 unless ``dtype``.
    """
    h, w = _check_image_size(image_size)
    scalar = isinstance(pixels_per_unit, numbers.Real) or (
        isinstance(pixels_per_unit, torch.Tensor) and pixels_per_unit.dim() == 0
    )
    f = _scalar_or_batch(pixels_per_unit, "pixels_per_unit", dtype, device)
    if (f.detach() <= 0).any():
        raise ValueError(f"pixels_per_unit: expected > 0, got {f.detach().cpu().tolist()}")
    k = _k_matrix(f, f, torch.full_like(f, w / 2.0), torch.full_like(f, h / 2.0))
    return k[0] if scalar else k


# --------------------------------------------------------------------------------------------
# rays
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class RayBundle:
    """One ray per pixel of a batch of cameras.

    Attributes:
        origins: ``(B, H, W, 3)`` float, world units. The camera position for perspective
            cameras; a point of the camera's image plane (camera z = 0) for orthographic ones.
        directions: ``(B, H, W, 3)`` float, unit length, world frame.
        pixel_offset: where inside each pixel the ray was sampled: pixel ``(i, j)`` is image
            coordinate ``(j + pixel_offset, i + pixel_offset)``; 0.5 = centres, 0.0 = official.
    """

    origins: torch.Tensor
    directions: torch.Tensor
    pixel_offset: float = 0.5

    def __post_init__(self) -> None:
        for name in ("origins", "directions"):
            t = getattr(self, name)
            if not isinstance(t, torch.Tensor):
                raise TypeError(f"{name}: expected a torch.Tensor, got {type(t).__name__}")
            if t.dim() != 4 or t.shape[-1] != 3:
                raise ValueError(f"{name}: expected shape (B, H, W, 3), got {_shape(t)}")
        if self.origins.shape != self.directions.shape:
            raise ValueError(
                f"directions: expected the shape of origins {_shape(self.origins)}, "
                f"got {_shape(self.directions)}"
            )

    @property
    def batch_size(self) -> int:
        return self.origins.shape[0]

    @property
    def image_size(self) -> tuple[int, int]:
        """``(H, W)`` in pixels."""
        return (self.origins.shape[1], self.origins.shape[2])

    def at(self, t: torch.Tensor) -> torch.Tensor:
        """Points at distance ``t`` (world units) along the rays.

        ``t``: ``(B, H, W)`` -> ``(B, H, W, 3)``, or ``(B, H, W, S)`` -> ``(B, H, W, S, 3)``.
        """
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"t: expected a torch.Tensor, got {type(t).__name__}")
        if t.dim() == 3:
            return self.origins + t.unsqueeze(-1) * self.directions
        if t.dim() == 4:
            return self.origins.unsqueeze(-2) + t.unsqueeze(-1) * self.directions.unsqueeze(-2)
        raise ValueError(f"t: expected shape (B, H, W) or (B, H, W, S), got {_shape(t)}")

    def to(self, device: Any = None, dtype: torch.dtype | None = None) -> "RayBundle":
        return RayBundle(
            origins=self.origins.to(device=device, dtype=dtype),
            directions=self.directions.to(device=device, dtype=dtype),
            pixel_offset=self.pixel_offset,
        )


# --------------------------------------------------------------------------------------------
# Camera
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False, kw_only=True)
class Camera:
    """A batch of pinhole or orthographic cameras that share one image size.

    Args (keyword-only):
        cam2world: ``(B, 4, 4)`` (or ``(4, 4)`` for B = 1) float tensor, OpenCV convention
            (rotation columns ``[right, -up, forward]``, translation = camera position, world
            units). The rotation must be orthonormal with determinant +1.
        intrinsics: ``(B, 3, 3)``, ``(1, 3, 3)`` or ``(3, 3)`` (broadcast over the batch) float
            tensor ``[[fx, 0, cx], [0, fy, cy], [0, 0, 1]]``. Perspective: pixels. Orthographic:
            ``fx, fy`` in pixels per world unit, ``cx, cy`` the principal point in pixels.
            Converted to ``cam2world``'s dtype and device.
        image_size: int (square) or ``(H, W)``, each in ``1..4096`` pixels. Stored as ``(H, W)``.
        orthographic: ``True`` for parallel projection along ``forward``.

    The attributes are the normalised inputs: ``cam2world (B, 4, 4)``, ``intrinsics (B, 3, 3)``,
    ``image_size (H, W)``, ``orthographic``. Instances are immutable; methods return new ones.
    """

    cam2world: torch.Tensor
    intrinsics: torch.Tensor
    image_size: tuple[int, int]
    orthographic: bool = False

    def __post_init__(self) -> None:
        c2w = self.cam2world
        if not isinstance(c2w, torch.Tensor):
            raise TypeError(f"cam2world: expected a torch.Tensor, got {type(c2w).__name__}")
        if not c2w.is_floating_point():
            raise TypeError(f"cam2world: expected a floating-point tensor, got dtype {c2w.dtype}")
        if c2w.dim() == 2:
            c2w = c2w.unsqueeze(0)
        if c2w.dim() != 3 or tuple(c2w.shape[-2:]) != (4, 4) or c2w.shape[0] < 1:
            raise ValueError(f"cam2world: expected shape (B, 4, 4) with B >= 1, got {_shape(self.cam2world)}")
        k = self.intrinsics
        if not isinstance(k, torch.Tensor):
            raise TypeError(f"intrinsics: expected a torch.Tensor, got {type(k).__name__}")
        if k.dtype == torch.bool or k.is_complex():
            raise TypeError(f"intrinsics: expected a real tensor, got dtype {k.dtype}")
        b = c2w.shape[0]
        if k.dim() == 2:
            k = k.unsqueeze(0)
        if k.dim() != 3 or tuple(k.shape[-2:]) != (3, 3) or k.shape[0] not in (1, b):
            raise ValueError(
                f"intrinsics: expected shape (3, 3), (1, 3, 3) or (B, 3, 3) with B = {b} "
                f"(the batch of cam2world), got {_shape(self.intrinsics)}"
            )
        k = k.to(device=c2w.device, dtype=c2w.dtype).expand(b, 3, 3).contiguous()
        hw = _check_image_size(self.image_size, "image_size")
        ortho = self.orthographic
        if not isinstance(ortho, bool):
            raise TypeError(f"orthographic: expected a bool, got {ortho!r} ({type(ortho).__name__})")

        with torch.no_grad():
            if not torch.isfinite(c2w).all():
                raise ValueError("cam2world: contains non-finite values")
            if not torch.isfinite(k).all():
                raise ValueError("intrinsics: contains non-finite values")
            bottom = c2w[:, 3, :]
            ref = torch.tensor([0.0, 0.0, 0.0, 1.0], dtype=c2w.dtype, device=c2w.device)
            if (bottom - ref).abs().max() > 1e-6:
                raise ValueError(
                    f"cam2world: last row must be (0, 0, 0, 1), got {bottom.cpu().tolist()}"
                )
            rot = c2w[:, :3, :3].to(torch.float32 if c2w.dtype in (torch.float16, torch.bfloat16) else c2w.dtype)
            eye = torch.eye(3, dtype=rot.dtype, device=rot.device)
            err = (rot.transpose(-1, -2) @ rot - eye).abs().amax()
            if err > _ORTHONORMAL_TOL or (torch.linalg.det(rot) <= 0).any():
                raise ValueError(
                    "cam2world: rotation part must be orthonormal with determinant +1 "
                    f"(max |R^T R - I| = {float(err):.3g})"
                )
            if (k[:, 0, 0] <= 0).any() or (k[:, 1, 1] <= 0).any():
                raise ValueError(
                    f"intrinsics: fx and fy must be > 0, got fx {k[:, 0, 0].cpu().tolist()}, "
                    f"fy {k[:, 1, 1].cpu().tolist()}"
                )
            zero_ref = torch.stack([k[:, 0, 1], k[:, 1, 0], k[:, 2, 0], k[:, 2, 1], k[:, 2, 2] - 1])
            if zero_ref.abs().max() > 1e-6:
                raise ValueError(
                    "intrinsics: expected [[fx, 0, cx], [0, fy, cy], [0, 0, 1]] (no skew), "
                    f"got {k[0].cpu().tolist()} (first of the batch)"
                )
        object.__setattr__(self, "cam2world", c2w)
        object.__setattr__(self, "intrinsics", k)
        object.__setattr__(self, "image_size", hw)

    # ---- construction ------------------------------------------------------------------------

    @classmethod
    def from_look_at(
        cls,
        eye: Any,
        target: Any = DEFAULT_TARGET,
        up: Any = (0.0, 1.0, 0.0),
        *,
        intrinsics: torch.Tensor,
        image_size: Any,
        orthographic: bool = False,
    ) -> "Camera":
        """A camera from :func:`look_at` (``eye``: ``(B, 3)`` or ``(3,)``) and given intrinsics."""
        c2w = look_at(eye, target, up)
        return cls(cam2world=c2w, intrinsics=intrinsics, image_size=image_size, orthographic=orthographic)

    @classmethod
    def from_orbit(
        cls,
        yaw: Any = 0.0,
        pitch: Any = 0.0,
        radius: Any = DEFAULT_RADIUS,
        *,
        fov: Any = None,
        target: Any = DEFAULT_TARGET,
        image_size: Any = 128,
        pixels_per_unit: Any = None,
        zoom: Any = 1.0,
        dtype: torch.dtype | None = None,
        device: Any = None,
    ) -> "Camera":
        """Cameras on an orbit around ``target``, looking at it (world up = +y).

        Args:
            yaw: degrees, scalar or 1-D ``(B,)``; 0 = frontal (+z side), > 0 toward +x.
            pitch: degrees in (-90, 90), scalar or ``(B,)``; > 0 raises the camera.
            radius: distance to ``target`` in world units, scalar or ``(B,)``.
            fov: ``None`` (default) for an orthographic camera; a vertical field of view in
                degrees (scalar or ``(B,)``) for a perspective one.
            target: ``(3,)`` or ``(B, 3)`` look-at point; default ``(0, 0.1, 0)``.
            image_size: int or ``(H, W)`` pixels.
            pixels_per_unit: orthographic scale; default ``36 * H / 128`` (the release's sampler:
                the image spans about 3.56 world units vertically). Not allowed with ``fov``.
            zoom: focal-length multiplier (> 0) applied to the orthographic scale or to the
                perspective focal length of ``fov``; 1 = unchanged. ``framing("portrait")`` gives
                the demo world's ``target`` and ``zoom``.
            dtype, device: of the result; by default float32 and the device of any tensor input.

        Returns:
            A Camera with batch ``B`` (the broadcast of yaw, pitch, radius, target, fov).
        """
        hw = _check_image_size(image_size)
        if isinstance(zoom, bool) or not isinstance(zoom, numbers.Real) or not math.isfinite(zoom) or zoom <= 0:
            raise ValueError(f"zoom: expected a finite number > 0, got {zoom!r}")
        eye = orbit_eye(yaw, pitch, radius, target, dtype=dtype, device=device)
        dt, dev = eye.dtype, eye.device
        target_t = _as_vec3(target, "target", dtype=dt, device=dev).reshape(-1, 3)
        c2w = look_at(eye, target_t, (0.0, 1.0, 0.0))
        if fov is None:
            if pixels_per_unit is None:
                pixels_per_unit = OFFICIAL_PIXELS_PER_UNIT_128 * hw[0] / 128.0
            k = ortho_intrinsics(pixels_per_unit, hw, dtype=dt, device=dev)
            ortho = True
        else:
            if pixels_per_unit is not None:
                raise ValueError(
                    "pixels_per_unit: only for orthographic cameras (fov=None), "
                    f"got pixels_per_unit={pixels_per_unit!r} with fov={fov!r}"
                )
            k = _fov_intrinsics(fov, hw, "fov", dt, dev)
            ortho = False
        if zoom != 1.0:
            k = k.clone()
            k[..., 0, 0] *= float(zoom)
            k[..., 1, 1] *= float(zoom)
        if k.dim() == 3 and k.shape[0] not in (1, c2w.shape[0]):
            if c2w.shape[0] == 1:
                c2w = c2w.expand(k.shape[0], 4, 4)
            else:
                raise ValueError(
                    f"fov/pixels_per_unit: {k.shape[0]} values do not broadcast with a batch of "
                    f"{c2w.shape[0]} cameras"
                )
        return cls(cam2world=c2w, intrinsics=k, image_size=hw, orthographic=ortho)

    # ---- basic properties --------------------------------------------------------------------

    @property
    def batch_size(self) -> int:
        return self.cam2world.shape[0]

    def __len__(self) -> int:
        return self.batch_size

    @property
    def height(self) -> int:
        """Image height H in pixels."""
        return self.image_size[0]

    @property
    def width(self) -> int:
        """Image width W in pixels."""
        return self.image_size[1]

    @property
    def device(self) -> torch.device:
        return self.cam2world.device

    @property
    def dtype(self) -> torch.dtype:
        return self.cam2world.dtype

    @property
    def rotation(self) -> torch.Tensor:
        """``(B, 3, 3)`` camera-to-world rotation, columns ``[right, -up, forward]``."""
        return self.cam2world[:, :3, :3]

    @property
    def position(self) -> torch.Tensor:
        """``(B, 3)`` camera positions (world units)."""
        return self.cam2world[:, :3, 3]

    @property
    def forward(self) -> torch.Tensor:
        """``(B, 3)`` unit viewing directions (camera +z) in the world frame."""
        return self.cam2world[:, :3, 2]

    @property
    def right(self) -> torch.Tensor:
        """``(B, 3)`` unit camera +x (image right) in the world frame."""
        return self.cam2world[:, :3, 0]

    @property
    def up(self) -> torch.Tensor:
        """``(B, 3)`` unit camera up (= -camera y, image up) in the world frame."""
        return -self.cam2world[:, :3, 1]

    @property
    def world2cam(self) -> torch.Tensor:
        """``(B, 4, 4)`` inverse of ``cam2world`` (computed as the rigid inverse)."""
        rt = self.rotation.transpose(-1, -2)
        t = -(rt @ self.position.unsqueeze(-1))
        bottom = self.cam2world[:, 3:, :]
        return torch.cat([torch.cat([rt, t], -1), bottom], -2)

    @property
    def focal(self) -> torch.Tensor:
        """``(B, 2)`` ``(fx, fy)``: pixels (perspective) or pixels per world unit (orthographic)."""
        return torch.stack([self.intrinsics[:, 0, 0], self.intrinsics[:, 1, 1]], -1)

    @property
    def principal_point(self) -> torch.Tensor:
        """``(B, 2)`` ``(cx, cy)`` in pixels."""
        return torch.stack([self.intrinsics[:, 0, 2], self.intrinsics[:, 1, 2]], -1)

    def __repr__(self) -> str:
        kind = "orthographic" if self.orthographic else "perspective"
        return (
            f"Camera(batch_size={self.batch_size}, image_size={self.image_size}, {kind}, "
            f"dtype={self.dtype}, device={self.device})"
        )

    # ---- batch manipulation ------------------------------------------------------------------

    def _replace(self, **changes: Any) -> "Camera":
        kwargs = dict(
            cam2world=self.cam2world,
            intrinsics=self.intrinsics,
            image_size=self.image_size,
            orthographic=self.orthographic,
        )
        kwargs.update(changes)
        return Camera(**kwargs)

    def __getitem__(self, idx: Any) -> "Camera":
        """Select cameras; always keeps the batch dim.

        ``idx``: int, slice, list of ints, or a 1-D integer / boolean tensor.
        """
        b = self.batch_size
        if isinstance(idx, torch.Tensor) and idx.dim() == 0 and not idx.is_floating_point():
            idx = idx.item()
        if isinstance(idx, numbers.Integral) and not isinstance(idx, bool):
            i = int(idx)
            if not -b <= i < b:
                raise IndexError(f"idx: {i} out of range for a batch of {b} cameras")
            i %= b
            sel: Any = slice(i, i + 1)
        elif isinstance(idx, slice):
            sel = idx
        elif isinstance(idx, (list, tuple)) and all(
            isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in idx
        ):
            sel = torch.as_tensor(list(idx), dtype=torch.long, device=self.device)
        elif isinstance(idx, torch.Tensor) and idx.dim() == 1 and (
            idx.dtype == torch.bool or not idx.is_floating_point()
        ):
            sel = idx.to(self.device)
        else:
            raise TypeError(
                f"idx: expected an int, a slice, a list of ints or a 1-D integer/bool tensor, "
                f"got {type(idx).__name__}"
            )
        c2w = self.cam2world[sel]
        if c2w.shape[0] == 0:
            raise IndexError(f"idx: selects no camera out of {b}")
        return self._replace(cam2world=c2w, intrinsics=self.intrinsics[sel])

    def to(self, device: Any = None, dtype: torch.dtype | None = None) -> "Camera":
        """The same cameras on another device and/or floating dtype."""
        return self._replace(
            cam2world=self.cam2world.to(device=device, dtype=dtype),
            intrinsics=self.intrinsics.to(device=device, dtype=dtype),
        )

    @staticmethod
    def cat(cameras: Sequence["Camera"]) -> "Camera":
        """Concatenate batches. All must share ``image_size`` and ``orthographic``; the result
        takes the dtype and device of the first camera."""
        if isinstance(cameras, Camera) or not isinstance(cameras, (list, tuple)):
            raise TypeError(
                f"cameras: expected a list or tuple of Camera, got {type(cameras).__name__}"
            )
        if len(cameras) == 0:
            raise ValueError("cameras: expected at least one Camera, got an empty sequence")
        for i, c in enumerate(cameras):
            if not isinstance(c, Camera):
                raise TypeError(f"cameras: item {i} is a {type(c).__name__}, not a Camera")
        first = cameras[0]
        for i, c in enumerate(cameras):
            if c.image_size != first.image_size or c.orthographic != first.orthographic:
                raise ValueError(
                    f"cameras: item {i} has image_size {c.image_size}, orthographic="
                    f"{c.orthographic}; item 0 has {first.image_size}, "
                    f"orthographic={first.orthographic}"
                )
        dev, dt = first.device, first.dtype
        return Camera(
            cam2world=torch.cat([c.cam2world.to(device=dev, dtype=dt) for c in cameras]),
            intrinsics=torch.cat([c.intrinsics.to(device=dev, dtype=dt) for c in cameras]),
            image_size=first.image_size,
            orthographic=first.orthographic,
        )

    def resized(self, image_size: Any) -> "Camera":
        """The same view at another resolution.

        Scales ``fx, cx`` by ``W'/W`` and ``fy, cy`` by ``H'/H``, so a world point at image
        coordinate ``(x, y)`` lands at ``(x W'/W, y H'/H)`` (continuous coordinates, corner origin).
        """
        h2, w2 = _check_image_size(image_size)
        sx, sy = w2 / self.width, h2 / self.height
        scale = torch.tensor([[sx], [sy], [1.0]], dtype=self.dtype, device=self.device)
        return self._replace(intrinsics=self.intrinsics * scale, image_size=(h2, w2))

    # ---- geometry ----------------------------------------------------------------------------

    def pixel_grid(self, pixel_offset: float = 0.5) -> torch.Tensor:
        """``(H, W, 2)`` image coordinates ``(x, y) = (j + pixel_offset, i + pixel_offset)``;
        ``pixel_offset`` a finite number in [0, 1] (where in the pixel it is sampled)."""
        pixel_offset = check_number(pixel_offset, "pixel_offset", 0, 1)
        ys = torch.arange(self.height, dtype=self.dtype, device=self.device) + float(pixel_offset)
        xs = torch.arange(self.width, dtype=self.dtype, device=self.device) + float(pixel_offset)
        gy, gx = torch.meshgrid(ys, xs, indexing="ij")
        return torch.stack([gx, gy], -1)

    def rays(self, pixel_offset: float = 0.5) -> RayBundle:
        """One ray per pixel.

        Pixel ``(i, j)`` is sampled at ``(x, y) = (j + pixel_offset, i + pixel_offset)``; 0.5 =
        pixel centres (default), 0.0 = the official SOF release. With ``R, t`` from cam2world:

        - perspective: origin = ``t``, direction = ``normalize(R ((x-cx)/fx, (y-cy)/fy, 1))``;
        - orthographic: origin = ``t + R ((x-cx)/fx, (y-cy)/fy, 0)``, direction = forward.

        Returns:
            RayBundle with ``origins`` and ``directions`` ``(B, H, W, 3)`` in the camera dtype.
        """
        grid = self.pixel_grid(pixel_offset)  # (H, W, 2)
        b, h, w = self.batch_size, self.height, self.width
        f = self.focal.view(b, 1, 1, 2)
        c = self.principal_point.view(b, 1, 1, 2)
        xy = (grid.unsqueeze(0) - c) / f  # (B, H, W, 2)
        rot = self.rotation.view(b, 1, 1, 3, 3)
        pos = self.position.view(b, 1, 1, 3)
        if self.orthographic:
            offset = (rot[..., :2] @ xy.unsqueeze(-1)).squeeze(-1)
            origins = pos + offset
            directions = self.forward.view(b, 1, 1, 3).expand(b, h, w, 3).contiguous()
        else:
            cam = torch.cat([xy, torch.ones_like(xy[..., :1])], -1)
            d = (rot @ cam.unsqueeze(-1)).squeeze(-1)
            directions = d / d.norm(dim=-1, keepdim=True)
            origins = pos.expand(b, h, w, 3).contiguous()
        return RayBundle(origins=origins, directions=directions, pixel_offset=float(pixel_offset))

    def _points_arg(self, points: Any, name: str, last: int) -> torch.Tensor:
        if not isinstance(points, torch.Tensor):
            raise TypeError(f"{name}: expected a torch.Tensor, got {type(points).__name__}")
        if not points.is_floating_point():
            raise TypeError(f"{name}: expected a floating-point tensor, got dtype {points.dtype}")
        b = self.batch_size
        if points.dim() == 2:
            points = points.unsqueeze(0)
        if points.dim() != 3 or points.shape[-1] != last or points.shape[0] not in (1, b):
            raise ValueError(
                f"{name}: expected shape (N, {last}) or (B, N, {last}) with B = {b}, "
                f"got {_shape(points)}"
            )
        return points.to(device=self.device, dtype=self.dtype).expand(b, -1, -1)

    def to_camera(self, points: torch.Tensor) -> torch.Tensor:
        """World points ``(B, N, 3)`` or ``(N, 3)`` -> camera-space points ``(B, N, 3)``."""
        p = self._points_arg(points, "points", 3)
        return (p - self.position.unsqueeze(1)) @ self.rotation

    def project(self, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Project world points to image coordinates.

        Args:
            points: ``(B, N, 3)`` or ``(N, 3)`` (shared by all cameras), world units.

        Returns:
            ``uv (B, N, 2)`` image coordinates ``(x, y)`` in pixels (pixel ``(i, j)``'s centre is
            ``(j + 0.5, i + 0.5)``) and ``depth (B, N)``, the camera-space z in world units. For a
            perspective camera uv is only meaningful where ``depth > 0`` (inf/NaN at 0).
        """
        pc = self.to_camera(points)
        z = pc[..., 2]
        f = self.focal.unsqueeze(1)
        c = self.principal_point.unsqueeze(1)
        xy = pc[..., :2] if self.orthographic else pc[..., :2] / z.unsqueeze(-1)
        return xy * f + c, z

    def unproject(self, uv: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`project`.

        Args:
            uv: ``(B, N, 2)`` or ``(N, 2)`` image coordinates in pixels.
            depth: ``(B, N)`` or ``(N,)`` camera-space z in world units.

        Returns:
            ``(B, N, 3)`` world points.
        """
        uv_t = self._points_arg(uv, "uv", 2)
        if not isinstance(depth, torch.Tensor):
            raise TypeError(f"depth: expected a torch.Tensor, got {type(depth).__name__}")
        if not depth.is_floating_point():
            raise TypeError(f"depth: expected a floating-point tensor, got dtype {depth.dtype}")
        b, n = uv_t.shape[0], uv_t.shape[1]
        d = depth.unsqueeze(0) if depth.dim() == 1 else depth
        if d.dim() != 2 or d.shape[0] not in (1, b) or d.shape[1] != n:
            raise ValueError(
                f"depth: expected shape (N,) or (B, N) with B = {b}, N = {n} (from uv), "
                f"got {_shape(depth)}"
            )
        d = d.to(device=self.device, dtype=self.dtype).expand(b, n)
        xy = (uv_t - self.principal_point.unsqueeze(1)) / self.focal.unsqueeze(1)
        if not self.orthographic:
            xy = xy * d.unsqueeze(-1)
        pc = torch.cat([xy, d.unsqueeze(-1)], -1)
        return pc @ self.rotation.transpose(-1, -2) + self.position.unsqueeze(1)


# --------------------------------------------------------------------------------------------
# view paths
# --------------------------------------------------------------------------------------------


def _orbit(yaw: torch.Tensor, pitch: torch.Tensor, orbit_kwargs: dict) -> Camera:
    for bad in ("yaw", "pitch"):
        if bad in orbit_kwargs:
            raise TypeError(f"{bad}: set by the view path; pass its range/amplitude instead")
    dtype = orbit_kwargs.get("dtype") or torch.float32
    device = orbit_kwargs.get("device")
    if device is None:  # follow any tensor argument
        for key in ("target", "radius", "fov", "pixels_per_unit"):
            if isinstance(orbit_kwargs.get(key), torch.Tensor):
                device = orbit_kwargs[key].device
                break
    yaw = yaw.to(dtype=dtype, device=device)
    pitch = pitch.to(dtype=dtype, device=device)
    return Camera.from_orbit(yaw, pitch, **orbit_kwargs)


def yaw_sweep(
    n: int, yaw_range: tuple[float, float] = (-35.0, 35.0), pitch: float = 0.0, **orbit_kwargs: Any
) -> Camera:
    """``n`` cameras with yaw evenly spaced over ``yaw_range`` (both ends included; ``n = 1``
    gives the middle) at a fixed ``pitch`` (degrees).

    ``orbit_kwargs`` go to :meth:`Camera.from_orbit` (radius, fov, target, image_size, ...).
    Returns a Camera with batch ``n``.
    """
    n = _check_count(n)
    lo, hi = _check_range(yaw_range, "yaw_range")
    if not isinstance(pitch, numbers.Real) or isinstance(pitch, bool):
        raise TypeError(f"pitch: expected a number, got {type(pitch).__name__}")
    yaw = _linspace(lo, hi, n)
    return _orbit(yaw, torch.full_like(yaw, float(pitch)), orbit_kwargs)


def spiral(
    n: int,
    yaw_amplitude: float = 30.0,
    pitch_amplitude: float = 10.0,
    turns: float = 1.0,
    **orbit_kwargs: Any,
) -> Camera:
    """A closed loop of ``n`` views: for ``s = 2 pi turns k / n`` (k = 0..n-1),
    ``yaw = yaw_amplitude sin(s)``, ``pitch = pitch_amplitude cos(s)`` (degrees).

    The end frame is not repeated, so the path loops seamlessly as a video. Returns a Camera
    with batch ``n``.
    """
    n = _check_count(n)
    for name, v in (("yaw_amplitude", yaw_amplitude), ("pitch_amplitude", pitch_amplitude), ("turns", turns)):
        if not isinstance(v, numbers.Real) or isinstance(v, bool) or not math.isfinite(v):
            raise TypeError(f"{name}: expected a finite number, got {v!r}")
    s = 2.0 * math.pi * float(turns) * torch.arange(n, dtype=torch.float64) / n
    return _orbit(yaw_amplitude * torch.sin(s), pitch_amplitude * torch.cos(s), orbit_kwargs)


def sphere_grid(
    n_yaw: int,
    n_pitch: int,
    yaw_range: tuple[float, float] = (-35.0, 35.0),
    pitch_range: tuple[float, float] = (-12.0, 12.0),
    **orbit_kwargs: Any,
) -> Camera:
    """A ``n_pitch x n_yaw`` grid of views, row-major (pitch outer, yaw inner): camera
    ``r * n_yaw + c`` has the r-th pitch and the c-th yaw. Both ranges include their ends (one
    value gives the middle). Returns a Camera with batch ``n_yaw * n_pitch``.
    """
    n_yaw = _check_count(n_yaw, "n_yaw")
    n_pitch = _check_count(n_pitch, "n_pitch")
    ylo, yhi = _check_range(yaw_range, "yaw_range")
    plo, phi = _check_range(pitch_range, "pitch_range")
    yaw = _linspace(ylo, yhi, n_yaw)
    pitch = _linspace(plo, phi, n_pitch)
    pp, yy = torch.meshgrid(pitch, yaw, indexing="ij")
    return _orbit(yy.reshape(-1), pp.reshape(-1), orbit_kwargs)


def uniform_heights(
    n: int,
    heights: Sequence[float] = (-10.0, 0.0, 10.0),
    yaw_range: tuple[float, float] = (-35.0, 35.0),
    **orbit_kwargs: Any,
) -> Camera:
    """``n`` views spread over the pitch levels ``heights`` (degrees), level by level.

    Level ``l`` of ``L`` gets ``floor((l+1) n / L) - floor(l n / L)`` frames (so the counts
    differ by at most one and a level may get none when ``n < L``); within a level the yaws are
    evenly spaced over ``yaw_range``, ends included (one frame sits in the middle). Returns a
    Camera with batch ``n``.
    """
    n = _check_count(n)
    if isinstance(heights, torch.Tensor):
        heights = heights.detach().cpu().reshape(-1).tolist()
    if not isinstance(heights, (list, tuple)) or len(heights) == 0 or not all(
        isinstance(v, numbers.Real) and not isinstance(v, bool) for v in heights
    ):
        raise TypeError(f"heights: expected a non-empty sequence of pitch angles, got {heights!r}")
    lo, hi = _check_range(yaw_range, "yaw_range")
    levels = len(heights)
    yaws, pitches = [], []
    for level, h in enumerate(heights):
        count = (level + 1) * n // levels - level * n // levels
        if count == 0:
            continue
        yaws.append(_linspace(lo, hi, count))
        pitches.append(torch.full((count,), float(h), dtype=torch.float64))
    return _orbit(torch.cat(yaws), torch.cat(pitches), orbit_kwargs)


def random_views(
    n: int,
    *,
    seed: int | None = None,
    generator: torch.Generator | None = None,
    yaw_range: tuple[float, float] = TRAINED_YAW_RANGE,
    pitch_range: tuple[float, float] = TRAINED_PITCH_RANGE,
    **orbit_kwargs: Any,
) -> Camera:
    """``n`` views with yaw and pitch drawn uniformly from their ranges (degrees).

    The defaults are the release's sampler (azimuth pi/2 +- 0.6 rad, polar pi/2 +- 0.2 rad, with
    :meth:`Camera.from_orbit`'s orthographic radius-4.5 defaults). Draws are made on the CPU in
    float64, first the ``n`` yaws and then the ``n`` pitches, from ``generator`` or from a fresh
    ``torch.Generator`` seeded with ``seed``; the same seed gives bit-identical cameras. With
    neither, torch's global RNG is used. Returns a Camera with batch ``n``.
    """
    n = _check_count(n)
    if seed is not None and generator is not None:
        raise ValueError("seed, generator: pass at most one of them")
    ylo, yhi = _check_range(yaw_range, "yaw_range")
    plo, phi = _check_range(pitch_range, "pitch_range")
    if generator is None and seed is not None:
        if not isinstance(seed, numbers.Integral) or isinstance(seed, bool):
            raise TypeError(f"seed: expected an int, got {type(seed).__name__}")
        generator = torch.Generator(device="cpu").manual_seed(int(seed))
    elif generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator: expected a torch.Generator, got {type(generator).__name__}")
    gen_device = generator.device if generator is not None else "cpu"
    u_yaw = torch.rand(n, generator=generator, dtype=torch.float64, device=gen_device).cpu()
    u_pitch = torch.rand(n, generator=generator, dtype=torch.float64, device=gen_device).cpu()
    yaw = ylo + (yhi - ylo) * u_yaw
    pitch = plo + (phi - plo) * u_pitch
    logger.debug("random_views: n=%d seed=%s", n, seed)
    return _orbit(yaw, pitch, orbit_kwargs)
