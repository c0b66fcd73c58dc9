"""Volumes of a semantic occupancy field: class-probability grids, meshes and depth slices.

Everything here evaluates the field directly, without the ray marcher: Θ (the MLP whose weights
the hypernetwork generates from ``z``) at a 3D point, then the classifier, then a softmax over the
SOF-20 classes. The "occupancy" of a point is ``1 - P(background)``; the object's surface is where
the background probability crosses 0.5 (paper §4.2 / App. B, the proxy mesh of the depth prior).

Grid convention (used by :func:`sample_grid`, :func:`grid_axes`, :func:`extract_mesh` and the depth
prior in :mod:`.rendering`)
    ``bounds = ((x_lo, x_hi), (y_lo, y_hi), (z_lo, z_hi))`` in world units, or a number ``h`` for
    the cube ``[-h, h]^3``; the default is the model's bounding sphere's cube
    ``[-r, r]^3`` (``r = config.sphere_radius``, 1.5 for the official model). A grid of
    resolution ``R`` samples the ``R`` evenly spaced values ``lo + (hi - lo) * i / (R - 1)``,
    ``i = 0..R-1``, along each axis: the samples are the grid's NODES and the first and last lie
    exactly on the bounds (there are ``R - 1`` cells per axis, the cell size is
    ``(hi - lo) / (R - 1)``). Volumes are indexed ``[class, k, j, i]`` = ``[class, z, y, x]``:
    ``volume[c, k, j, i]`` is the probability of class ``c`` at the world point
    ``(xs[i], ys[j], zs[k])``. This is the layout of ``torch.nn.functional.grid_sample`` (whose
    last coordinate is x) with ``align_corners=True``.
"""
from __future__ import annotations

import logging
import math
import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .._validate import check_int
from ..cameras import Camera
from ..labels import SOF, colorize
from .sof import SemanticOccupancyField, check_chunk

__all__ = ["Bounds", "grid_axes", "grid_points", "sample_grid", "occupancy_grid", "Mesh",
           "extract_mesh", "DepthSlice", "depth_slice", "classify_points"]

log = logging.getLogger(__name__)

#: ((x_lo, x_hi), (y_lo, y_hi), (z_lo, z_hi)), world units.
Bounds = tuple[tuple[float, float], tuple[float, float], tuple[float, float]]

#: Points per Θ call when sampling volumes (bounds memory to about chunk × width × 4 bytes × a few).
DEFAULT_CHUNK = 65536
#: Largest accepted grid resolution (R³ points: 512³ is 134 M evaluations).
MAX_RESOLUTION = 512


# ------------------------------------------------------------------------------------ checks
def _check_model(model: Any) -> SemanticOccupancyField:
    if not isinstance(model, SemanticOccupancyField):
        raise TypeError(f"model: expected a SemanticOccupancyField, got {type(model).__name__}")
    return model


def _check_chunk(chunk: Any) -> int:
    return check_chunk(chunk)


def _check_resolution(resolution: Any) -> int:
    return check_int(resolution, "resolution", 2, MAX_RESOLUTION)


def _is_number(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def check_bounds(bounds: Any, model: SemanticOccupancyField | None = None) -> Bounds:
    """Normalise ``bounds`` (None, a positive half-extent, or three (lo, hi) pairs in x, y, z order)
    to ``((x_lo, x_hi), (y_lo, y_hi), (z_lo, z_hi))``. None: the model's ``[-r, r]^3``."""
    if bounds is None:
        if model is None:
            raise ValueError("bounds: expected a half-extent or three (lo, hi) pairs, got None")
        bounds = float(model.config.sphere_radius)
    if _is_number(bounds):
        h = float(bounds)
        if not (math.isfinite(h) and h > 0):
            raise ValueError(f"bounds: expected a positive finite half-extent, got {bounds!r}")
        return ((-h, h),) * 3
    if not isinstance(bounds, (tuple, list)) or len(bounds) != 3:
        raise TypeError(f"bounds: expected a number or three (lo, hi) pairs (x, y, z), got {bounds!r}")
    out = []
    for axis, pair in zip("xyz", bounds):
        if not isinstance(pair, (tuple, list)) or len(pair) != 2 or not all(_is_number(v) for v in pair):
            raise TypeError(f"bounds: expected a (lo, hi) pair of numbers for {axis}, got {pair!r}")
        lo, hi = float(pair[0]), float(pair[1])
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise ValueError(f"bounds: expected finite lo < hi for {axis}, got {pair!r}")
        out.append((lo, hi))
    return tuple(out)  # type: ignore[return-value]


def _single_latent(model: SemanticOccupancyField, z: Any) -> torch.Tensor:
    z = model.check_latent(z)
    if z.shape[0] != 1:
        raise ValueError(f"z: expected one latent, shape ({model.config.latent_dim},) or "
                         f"(1, {model.config.latent_dim}), got {tuple(z.shape)}")
    return z


def _device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


# ------------------------------------------------------------------------------------ grids
def grid_axes(resolution: int, bounds: Any = 1.5) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The node coordinates ``(xs, ys, zs)``, each ``(R,)`` float32 world units:
    ``lo + (hi - lo) * i / (R - 1)`` (both bounds included). See the module docstring."""
    r = _check_resolution(resolution)
    b = check_bounds(bounds)
    return tuple(torch.linspace(lo, hi, r, dtype=torch.float64).float() for lo, hi in b)  # type: ignore[return-value]


def grid_points(resolution: int, bounds: Any = 1.5) -> torch.Tensor:
    """``(R, R, R, 3)`` float32 world points indexed ``[k, j, i]`` = ``[z, y, x]``; the last axis
    holds ``(x, y, z)``: ``grid_points(R)[k, j, i] == (xs[i], ys[j], zs[k])``."""
    xs, ys, zs = grid_axes(resolution, bounds)
    gz, gy, gx = torch.meshgrid(zs, ys, xs, indexing="ij")
    return torch.stack([gx, gy, gz], -1)


@torch.no_grad()
def classify_points(model: SemanticOccupancyField, z: torch.Tensor, points: torch.Tensor, *,
                    chunk: int = DEFAULT_CHUNK) -> torch.Tensor:
    """Class logits of the field (no marching) at world ``points``.

    Args:
        z: (B, latent_dim) latents (or (latent_dim,) for B = 1).
        points: (B, N, 3) or (N, 3) (shared by all latents) world points.
        chunk: points per Θ call.

    Returns:
        (B, N, num_classes) float32 logits, on the model's device.
    """
    model = _check_model(model)
    chunk = _check_chunk(chunk)
    z = model.check_latent(z)
    dev = _device(model)
    z = z.to(dev)
    if not isinstance(points, torch.Tensor):
        raise TypeError(f"points: expected a torch.Tensor, got {type(points).__name__}")
    if points.dim() == 2:
        points = points[None]
    B = z.shape[0]
    if points.dim() != 3 or points.shape[-1] != 3 or points.shape[0] not in (1, B):
        raise ValueError(f"points: expected shape (N, 3) or (B, N, 3) with B = {B}, got {tuple(points.shape)}")
    points = points.to(device=dev, dtype=torch.float32)
    theta = model.hyper_weights(z)
    N = points.shape[1]
    out = torch.empty(B, N, model.config.num_classes, device=dev)
    for bi in range(B):
        th = [(w[bi:bi + 1], b[bi:bi + 1]) for w, b in theta]
        pts = points[bi if points.shape[0] > 1 else 0]
        for s in range(0, N, chunk):
            out[bi, s:s + chunk] = model.classify(th, pts[None, s:s + chunk])[0]
    return out


@torch.no_grad()
def sample_grid(model: SemanticOccupancyField, z: torch.Tensor, resolution: int = 64,
                bounds: Any = None, *, chunk: int = DEFAULT_CHUNK) -> torch.Tensor:
    """Class probabilities of the field on a regular grid: ``softmax(classifier(Θ(x)))``.

    Args:
        model: a :class:`SemanticOccupancyField`.
        z: one latent, (latent_dim,) or (1, latent_dim).
        resolution: ``R``, nodes per axis (2..512).
        bounds: a half-extent ``h`` (the cube ``[-h, h]^3``), three ``(lo, hi)`` pairs in x, y, z
            order, or None for the model's ``[-sphere_radius, sphere_radius]^3``.
        chunk: points per Θ call (memory bound).

    Returns:
        (C, R, R, R) float32 probabilities (sum 1 over ``C = num_classes``, SOF-20 ids), indexed
        ``[class, z, y, x]``: ``volume[c, k, j, i]`` is at the world point ``(xs[i], ys[j], zs[k])``
        of :func:`grid_axes` (nodes, both bounds included). On the model's device.
    """
    model = _check_model(model)
    z = _single_latent(model, z)
    r = _check_resolution(resolution)
    b = check_bounds(bounds, model)
    chunk = _check_chunk(chunk)
    pts = grid_points(r, b).view(-1, 3)
    logits = classify_points(model, z, pts, chunk=chunk)[0]  # (R^3, C)
    probs = logits.softmax(-1)
    log.debug("sample_grid: R=%d bounds=%s (%d field evaluations)", r, b, pts.shape[0])
    return probs.t().reshape(-1, r, r, r).contiguous()


def occupancy_grid(model: SemanticOccupancyField, z: torch.Tensor, resolution: int = 64,
                   bounds: Any = None, *, chunk: int = DEFAULT_CHUNK) -> torch.Tensor:
    """``1 - P(background)`` on the grid of :func:`sample_grid`: (R, R, R) float32 ``[z, y, x]``."""
    return 1.0 - sample_grid(model, z, resolution, bounds, chunk=chunk)[int(SOF.BACKGROUND)]


# ------------------------------------------------------------------------------------ meshes
@dataclass(frozen=True, eq=False)
class Mesh:
    """A triangle mesh of the field's surface (numpy arrays, world units).

    Attributes:
        vertices: (V, 3) float32 world coordinates ``(x, y, z)``.
        faces: (F, 3) int32 vertex indices, counter-clockwise seen from outside (normals point
            from occupied to background).
        labels: (V,) int64 SOF-20 ids, the most probable non-background class of the field at
            each vertex (on the surface the background is at 50 % by construction).
        colors: (V, 3) uint8, ``labels.colorize`` of ``labels`` (the SOF-20 palette).
    """

    vertices: np.ndarray
    faces: np.ndarray
    labels: np.ndarray
    colors: np.ndarray

    @property
    def num_vertices(self) -> int:
        return int(self.vertices.shape[0])

    @property
    def num_faces(self) -> int:
        return int(self.faces.shape[0])

    def __repr__(self) -> str:
        return f"Mesh(vertices={self.num_vertices}, faces={self.num_faces})"


@torch.no_grad()
def extract_mesh(model: SemanticOccupancyField, z: torch.Tensor, resolution: int = 64,
                 level: float = 0.5, bounds: Any = None, *, chunk: int = DEFAULT_CHUNK) -> Mesh:
    """The surface ``1 - P(background) = level`` by marching cubes (``skimage.measure``).

    Args:
        z: one latent, (latent_dim,) or (1, latent_dim).
        resolution, bounds, chunk: the grid of :func:`sample_grid`.
        level: occupancy iso-level in (0, 1); 0.5 = where the background probability crosses 0.5.

    Returns:
        :class:`Mesh` in world coordinates; vertex labels come from the field evaluated at the
        vertices themselves (not interpolated from the grid).

    Raises:
        ValueError: the occupancy never crosses ``level`` inside ``bounds`` (no surface: the
            grid is all background or all occupied); the message gives the occupancy's range.
    """
    from skimage.measure import marching_cubes

    model = _check_model(model)
    z = _single_latent(model, z)
    if not _is_number(level) or not 0.0 < float(level) < 1.0:
        raise ValueError(f"level: expected a number in (0, 1), got {level!r}")
    level = float(level)
    r = _check_resolution(resolution)
    b = check_bounds(bounds, model)
    occ = occupancy_grid(model, z, r, b, chunk=chunk).cpu().numpy().astype(np.float32)
    lo, hi = float(occ.min()), float(occ.max())
    if not lo < level < hi:
        raise ValueError(f"level: the occupancy 1 - P(background) never crosses {level} inside bounds "
                         f"{b} at resolution {r} (it ranges over [{lo:.4g}, {hi:.4g}]): no surface")
    # volume axes are (z, y, x): spacing in that order; marching cubes' vertices come back as (k, j, i)
    spacing = tuple((h - l) / (r - 1) for l, h in reversed(b))
    verts, faces, _normals, _values = marching_cubes(occ, level=level, spacing=spacing,
                                                     gradient_direction="descent")
    origin = np.array([l for l, _ in b], dtype=np.float64)
    vertices = (verts[:, ::-1].astype(np.float64) + origin).astype(np.float32)
    logits = classify_points(model, z, torch.from_numpy(vertices), chunk=chunk)[0]
    logits[:, int(SOF.BACKGROUND)] = -math.inf
    labels = logits.argmax(-1).cpu().numpy().astype(np.int64)
    mesh = Mesh(vertices=np.ascontiguousarray(vertices), faces=np.ascontiguousarray(faces, dtype=np.int32),
                labels=labels, colors=np.ascontiguousarray(colorize(labels[None])[0]))
    log.debug("extract_mesh: %s", mesh)
    return mesh


# ------------------------------------------------------------------------------------ slices
@dataclass(frozen=True, eq=False)
class DepthSlice:
    """The field on the plane at a fixed camera-space depth.

    Attributes:
        labels: (B, H, W) int64 SOF-20 ids (argmax of ``probs``).
        probs: (B, C, H, W) float32 class probabilities.
        points: (B, H, W, 3) float32 world points of the plane, one per pixel.
    """

    labels: torch.Tensor
    probs: torch.Tensor
    points: torch.Tensor


@torch.no_grad()
def depth_slice(model: SemanticOccupancyField, z: torch.Tensor, camera: Camera, depth: Any, *,
                pixel_offset: float = 0.5, chunk: int = DEFAULT_CHUNK) -> DepthSlice:
    """Classify the plane ``camera-space z = depth`` of each view (a cross-section of the field).

    Pixel ``(i, j)`` shows the field (no marching) at the world point that projects to it at that
    depth (``camera.unproject``), for perspective and orthographic cameras alike.

    Args:
        z: (B, latent_dim) latents (or (latent_dim,)).
        camera: a :class:`~sofgan_lab.cameras.Camera` with 1 view (shared) or B views.
        depth: camera-space z in world units: a number or a (B,) tensor / sequence. For the
            default orbit cameras (radius 4.5), 4.5 cuts through the look-at point.
        pixel_offset: where in each pixel the plane is sampled (0.5 = centres).

    Returns:
        :class:`DepthSlice` on the model's device.
    """
    model = _check_model(model)
    z = model.check_latent(z)
    if not isinstance(camera, Camera):
        raise TypeError(f"camera: expected a sofgan_lab.cameras.Camera, got {type(camera).__name__}")
    B = z.shape[0]
    if camera.batch_size not in (1, B):
        raise ValueError(f"camera: expected 1 or {B} views (one per latent), got {camera.batch_size}")
    if isinstance(depth, torch.Tensor):
        d = depth.detach().to(torch.float32).cpu().reshape(-1)
    elif _is_number(depth):
        d = torch.tensor([float(depth)])
    elif isinstance(depth, (list, tuple)) and all(_is_number(v) for v in depth):
        d = torch.tensor([float(v) for v in depth])
    else:
        raise TypeError(f"depth: expected a number or a (B,) tensor/sequence, got {type(depth).__name__}")
    if d.numel() not in (1, B):
        raise ValueError(f"depth: expected 1 or {B} values, got {d.numel()}")
    if not torch.isfinite(d).all() or (not camera.orthographic and (d <= 0).any()):
        raise ValueError(f"depth: expected finite values (> 0 for a perspective camera), got {d.tolist()}")
    dev = _device(model)
    cam = camera.to(device=dev, dtype=torch.float32)
    H, W = cam.height, cam.width
    uv = cam.pixel_grid(pixel_offset).reshape(1, -1, 2)
    dd = d.to(dev).view(-1, 1).expand(cam.batch_size if d.numel() == 1 else B, H * W)
    if cam.batch_size == 1 and dd.shape[0] > 1:
        cam = Camera.cat([cam] * B)
    pts = cam.unproject(uv, dd)  # (Bc, HW, 3)
    logits = classify_points(model, z, pts, chunk=chunk)  # (B, HW, C)
    probs = logits.softmax(-1)
    pts = pts.expand(B, -1, -1)
    return DepthSlice(labels=probs.argmax(-1).view(B, H, W),
                      probs=probs.permute(0, 2, 1).reshape(B, -1, H, W).contiguous(),
                      points=pts.reshape(B, H, W, 3).contiguous())
