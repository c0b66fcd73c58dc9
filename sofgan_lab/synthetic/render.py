"""Exact rendering of a procedural head: sphere tracing of its signed distance.

For every pixel ray the first surface hit is found by sphere tracing in two phases:

1. **Grid phase.** The scene's distance is sampled once per head on a coarse grid. Trilinear
   interpolation of a 1-Lipschitz distance is within ``sqrt(3) * h`` of the true value (``h`` is the
   grid spacing), so stepping by ``interpolated - sqrt(3) * h`` never crosses a surface, however
   thin (glasses frames are thinner than a grid cell). This phase brings the ray close to the
   first surface cheaply.
2. **Exact phase.** Sphere tracing on the exact (analytic) distance until ``|d| < eps``. The label
   and depth of the hit are those of the exact scene at the hit point.

Rays that miss the bounding sphere are background without marching. Supersampling renders at
``s`` times the size and takes the most frequent label of each ``s x s`` block (ties: lowest id)
and the mean depth of its surface samples.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..cameras import Camera
from ..labels import NUM_SOF_CLASSES, SOF
from .head import Head
from .sdf import Scene

__all__ = ["SegmapRender", "render_segmap", "pool_render", "trace"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SegmapRender:
    """What :func:`render_segmap` returns, for a camera batch of B views at (H, W).

    Attributes:
        labels: (B, H, W) int64, SOF-20 ids; background where no surface is hit.
        depth: (B, H, W) float32, camera-space z of the hit (the OpenCV camera's forward axis);
            0 on background pixels.
        mask: (B, H, W) bool, True where a surface was hit.
        points: (B, H, W, 3) float32 world coordinates of the hits (0 on background), or None when
            supersampled.
        member: (B, H, W) int64 index into ``scene.member_names`` of the surface hit (-1 on
            background), or None when supersampled.
    """

    labels: torch.Tensor
    depth: torch.Tensor
    mask: torch.Tensor
    points: torch.Tensor | None = None
    member: torch.Tensor | None = None


def _sample_grid(grid: torch.Tensor, p: torch.Tensor, extent: float) -> torch.Tensor:
    g = (p / extent).view(1, 1, 1, -1, 3)
    return F.grid_sample(grid, g, mode="bilinear", padding_mode="border", align_corners=True).view(-1)


def trace(scene: Scene, origins: torch.Tensor, directions: torch.Tensor, *, grid_resolution: int = 64,
          eps: float = 5e-4, max_grid_steps: int = 256, max_exact_steps: int = 96,
          step_scale: float = 0.95) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """First hits of N rays with the scene.

    Args:
        origins, directions: (N, 3) float32 world coordinates; directions of unit length.
        grid_resolution: samples per axis of the acceleration grid (16 to 512).
        eps: a ray has hit when the exact distance is below this (world units); a ray still
            marching after ``max_exact_steps`` (a near-tangent ray at a silhouette) counts as a
            hit if its distance is below ``20 * eps``.
        step_scale: fraction of the exact distance stepped (< 1 tolerates the approximate
            ellipsoid distances).

    Returns:
        hit (N,) bool, t (N,) float32 ray parameter of the hit, label (N,) int64 SOF-20 id
        (background where missed), member (N,) int64 (-1 where missed).
    """
    if not (16 <= grid_resolution <= 512):
        raise ValueError(f"grid_resolution: expected 16..512, got {grid_resolution}")
    n = origins.shape[0]
    o = origins.to(torch.float32)
    d = directions.to(torch.float32)
    radius = scene.bound_radius + 1e-3
    extent = radius + 0.02
    grid = scene.grid(grid_resolution, extent)[None, None]  # (1, 1, R, R, R), cached by the scene
    slack = math.sqrt(3.0) * (2.0 * extent / (grid_resolution - 1))

    hit = torch.zeros(n, dtype=torch.bool)
    t_hit = torch.zeros(n, dtype=torch.float32)
    label = torch.full((n,), int(SOF.BACKGROUND), dtype=torch.long)
    member = torch.full((n,), -1, dtype=torch.long)

    # Entry and exit of the bounding sphere.
    b = (o * d).sum(-1)
    c = (o * o).sum(-1) - radius * radius
    disc = b * b - c
    inside = disc > 0
    sq = torch.sqrt(disc.clamp_min(0))
    t0 = (-b - sq).clamp_min(0)
    t1 = -b + sq
    idx = torch.nonzero(inside & (t1 > 0)).view(-1)
    t = t0[idx]
    t_end = t1[idx]

    # Phase 1: conservative steps on the grid.
    exact_idx, exact_t = [], []
    for _ in range(max_grid_steps):
        if idx.numel() == 0:
            break
        p = o[idx] + d[idx] * t[:, None]
        step = _sample_grid(grid, p, extent) - slack
        near = step < 0.02
        exact_idx.append(idx[near])
        exact_t.append(t[near])
        keep = ~near
        t = t[keep] + step[keep]
        idx, t_end = idx[keep], t_end[keep]
        alive = t < t_end
        idx, t, t_end = idx[alive], t[alive], t_end[alive]
    if idx.numel():  # out of grid steps: hand the rest to the exact phase
        exact_idx.append(idx)
        exact_t.append(t)
    idx = torch.cat(exact_idx) if exact_idx else torch.zeros(0, dtype=torch.long)
    t = torch.cat(exact_t) if exact_t else torch.zeros(0)
    t_end = t1[idx]

    # Phase 2: exact sphere tracing.
    for it in range(max_exact_steps + 1):
        if idx.numel() == 0:
            break
        p = o[idx] + d[idx] * t[:, None]
        s = scene.evaluate(p)
        done = s.sdf.abs() < (eps if it < max_exact_steps else 20 * eps)
        if done.any():
            di = idx[done]
            hit[di] = True
            t_hit[di] = t[done]
            label[di] = s.label[done]
            member[di] = s.member[done]
        keep = ~done
        t = t[keep] + step_scale * s.sdf[keep]
        idx, t_end = idx[keep], t_end[keep]
        alive = t < t_end
        idx, t, t_end = idx[alive], t[alive], t_end[alive]
    if idx.numel():
        log.debug("%d rays did not converge and are treated as background", idx.numel())
    return hit, t_hit, label, member


def _as_scene(head) -> Scene:
    if isinstance(head, Head):
        return head.scene
    if isinstance(head, Scene):
        return head
    raise TypeError(f"head: expected a Head or Scene, got {type(head).__name__}")


def render_segmap(head: Head | Scene, camera: Camera, *, supersample: int = 1,
                  grid_resolution: int = 64) -> SegmapRender:
    """Render a head's SOF-20 label map and depth for every view of ``camera``.

    Args:
        head: a :class:`Head` (or its :class:`Scene`).
        camera: a batched :class:`Camera` (B views, any size, perspective or orthographic). Pixel
            (i, j) is sampled at its centre (j + 0.5, i + 0.5).
        supersample: samples per pixel side (1 = none, up to 8); labels take the block's most
            frequent id.

    Returns:
        :class:`SegmapRender` with labels (B, H, W) int64 SOF-20 ids and depth (B, H, W) float32.
    """
    scene = _as_scene(head)
    if not isinstance(camera, Camera):
        raise TypeError(f"camera: expected a sofgan_lab.cameras.Camera, got {type(camera).__name__}")
    if isinstance(supersample, bool) or not isinstance(supersample, int) or not 1 <= supersample <= 8:
        raise ValueError(f"supersample: expected an integer in 1..8, got {supersample!r}")
    cam = camera.to(device="cpu", dtype=torch.float32)
    H, W = cam.height, cam.width
    if supersample > 1:
        cam = cam.resized((H * supersample, W * supersample))
    rays = cam.rays()
    B, h, w = cam.batch_size, cam.height, cam.width
    o = rays.origins.reshape(-1, 3)
    d = rays.directions.reshape(-1, 3)
    hit, t, label, member = trace(scene, o, d, grid_resolution=grid_resolution)
    points = o + d * t[:, None]
    pos = cam.position.repeat_interleave(h * w, dim=0)
    fwd = cam.forward.repeat_interleave(h * w, dim=0)
    depth = torch.where(hit, ((points - pos) * fwd).sum(-1), torch.zeros_like(t))
    points = torch.where(hit[:, None], points, torch.zeros_like(points))
    label, depth, hit = label.view(B, h, w), depth.view(B, h, w), hit.view(B, h, w)
    full = SegmapRender(label, depth, hit, points.view(B, h, w, 3), member.view(B, h, w))
    return full if supersample == 1 else pool_render(full, supersample)


def pool_render(render: SegmapRender, factor: int) -> SegmapRender:
    """Reduce a render by ``factor`` per side: each block's most frequent label (ties: lowest id)
    and the mean depth of its surface samples. ``points`` and ``member`` are dropped."""
    B, h, w = render.labels.shape
    if h % factor or w % factor:
        raise ValueError(f"factor: {factor} does not divide the render size {(h, w)}")
    H, W, s = h // factor, w // factor, factor
    counts = F.one_hot(render.labels, NUM_SOF_CLASSES).view(B, H, s, W, s, -1).sum((2, 4))
    labels = counts.argmax(-1)
    hits = render.mask.view(B, H, s, W, s).sum((2, 4))
    dsum = render.depth.view(B, H, s, W, s).sum((2, 4))
    mask = labels != int(SOF.BACKGROUND)
    depth = torch.where(mask, dsum / hits.clamp_min(1), torch.zeros_like(dsum))
    return SegmapRender(labels, depth, mask)
