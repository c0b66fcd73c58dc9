"""Depth and surface-normal views of a SOF rendering, as images a person can read.

The SOF marcher stops each ray at the surface of the head (:class:`~sofgan_lab.geometry.sof.SOFRender`:
``depth`` is the camera-space z of that point, ``points`` its world position). Two views of that
surface, beside the portrait and its segmap:

* :func:`depth_image`: grey levels, the nearest surface point white, the farthest dark grey
  (:data:`FAR_GREY`), the background black. The range is the image's own (the 2nd to 98th
  percentile of the head's depths, beyond which the grey is clipped, so a hat's brim or the
  shoulders do not flatten the face), showing the relief, not the distance to the camera.
* :func:`surface_normals` / :func:`normal_image`: the unit normal of the surface at each pixel in
  the camera frame, from finite differences of the surface points (the one-sided difference at the
  head's outline), turned toward the camera; shown the usual way, ``RGB = (n + 1) / 2`` with x to
  the right (red), y up (green) and z toward the viewer (blue): a surface facing the camera is
  (128, 128, 255).

Pixels whose label is the background (SOF id 0) are no surface and are drawn black in both views.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

__all__ = ["surface_mask", "depth_image", "surface_normals", "normal_image", "FAR_GREY"]

#: Grey level (0..255) of the farthest surface point in :func:`depth_image` (the nearest is 255).
FAR_GREY = 48


def _array(x: Any, name: str, ndim: int) -> np.ndarray:
    a = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    if a.ndim != ndim:
        raise ValueError(f"{name}: expected {ndim} dimensions, got shape {a.shape}")
    return a


def surface_mask(labels: Any) -> np.ndarray:
    """``(H, W)`` bool: the pixels whose SOF-20 label is not the background (id 0)."""
    return _array(labels, "labels", 2) != 0


def depth_image(depth: Any, labels: Any) -> np.ndarray:
    """``(H, W, 3)`` uint8 grey image of ``depth`` ``(H, W)`` over the surface pixels of ``labels``
    (SOF-20 ``(H, W)``): nearest white, farthest :data:`FAR_GREY`, background black."""
    d = _array(depth, "depth", 2).astype(np.float64)
    fg = surface_mask(labels)
    if fg.shape != d.shape:
        raise ValueError(f"labels: shape {fg.shape} differs from depth's {d.shape}")
    if not np.isfinite(d[fg]).all():
        raise ValueError("depth: non-finite values on the surface")
    out = np.zeros(d.shape, dtype=np.float64)
    if fg.any():
        lo, hi = (float(v) for v in np.percentile(d[fg], [2.0, 98.0]))
        t = np.clip((d[fg] - lo) / (hi - lo), 0.0, 1.0) if hi > lo else np.zeros(int(fg.sum()))
        out[fg] = 255.0 - t * (255.0 - FAR_GREY)
    grey = np.rint(out).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=-1)


def surface_normals(points: Any, labels: Any, camera: Any) -> np.ndarray:
    """``(H, W, 3)`` float32 unit normals in the camera frame (x right, y up, z toward the viewer) of
    the surface through ``points`` (world positions ``(H, W, 3)``) seen by ``camera`` (a one-view
    :class:`~sofgan_lab.cameras.Camera`); zero on the background of ``labels`` (SOF-20 ``(H, W)``).
    Central differences inside the head, one-sided ones at its outline."""
    p = _array(points, "points", 3).astype(np.float64)
    fg = surface_mask(labels)
    if p.shape[:2] != fg.shape or p.shape[2] != 3:
        raise ValueError(f"points: expected shape {fg.shape + (3,)}, got {p.shape}")
    if getattr(camera, "batch_size", None) != 1:
        raise ValueError("camera: expected a one-view Camera")
    rot = camera.rotation[0].detach().cpu().double().numpy()      # columns: right, -up, forward
    pos = camera.position[0].detach().cpu().double().numpy()
    q = (p - pos) @ rot                                          # camera frame: x right, y down, z forward

    def diff(axis: int) -> np.ndarray:
        """Difference along ``axis`` (1: columns, 0: rows) between surface neighbours, central where
        both exist, one-sided at the outline, zero where neither does."""
        n = q.shape[axis]
        fwd = np.zeros_like(q)
        bwd = np.zeros_like(q)
        ok_f = np.zeros(fg.shape, dtype=bool)
        ok_b = np.zeros(fg.shape, dtype=bool)
        sl = [slice(None)] * 2
        a, b = list(sl), list(sl)
        a[axis], b[axis] = slice(0, n - 1), slice(1, n)
        a, b = tuple(a), tuple(b)
        fwd[a] = q[b] - q[a]
        ok_f[a] = fg[b] & fg[a]
        bwd[b] = q[b] - q[a]
        ok_b[b] = fg[b] & fg[a]
        both = ok_f & ok_b
        out = np.where(ok_f[..., None], fwd, 0.0) + np.where(ok_b[..., None], bwd, 0.0)
        return np.where(both[..., None], out / 2, out)

    dx, dy = diff(1), diff(0)
    n = np.cross(dy, dx)                                         # toward the camera for a facing surface
    length = np.linalg.norm(n, axis=-1, keepdims=True)
    n = np.where(length > 1e-12, n / np.maximum(length, 1e-12), np.array([0.0, 0.0, -1.0]))
    n = np.where((n[..., 2:3] > 0), -n, n)                        # never facing away from the camera
    shown = np.stack([n[..., 0], -n[..., 1], -n[..., 2]], -1)     # x right, y up, z toward the viewer
    shown[~fg] = 0.0
    return shown.astype(np.float32)


def normal_image(points: Any, labels: Any, camera: Any) -> np.ndarray:
    """``(H, W, 3)`` uint8: :func:`surface_normals` as ``RGB = (n + 1) / 2`` on the surface, black
    on the background."""
    n = surface_normals(points, labels, camera).astype(np.float64)
    fg = surface_mask(labels)
    rgb = np.rint((n + 1.0) / 2.0 * 255.0)
    rgb[~fg] = 0.0
    return np.clip(rgb, 0, 255).astype(np.uint8)
