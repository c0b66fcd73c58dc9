"""Faster SOF rendering: the depth prior (paper §4.2 / App. B) and adaptive (coarse-to-fine)
rendering, with an account of the field evaluations each spends.

The cost of a SOF render is the number of Θ evaluations (the MLP whose weights the hypernetwork
makes from ``z``): a ray that meets the bounding sphere costs ``steps + 1`` of them (one per marcher
step, one for the classifier at the final point); a ray that misses it costs none.

- :func:`render_rays`: the marcher and classifier on any set of rays (no gradient, chunked), with
  the same semantics as :meth:`SemanticOccupancyField.render` (misses are background, unmarched).
  Every renderer here marches through the one marcher, :meth:`SemanticOccupancyField.march_rays`.
- :func:`render_adaptive`: render at ``1/coarse_factor`` of the resolution, then double the
  resolution level by level, re-rendering only the pixels whose neighbouring samples of the
  previous level disagree on the label; the rest inherit their nearest sample's result.
- :func:`proxy_grid`, :func:`depth_prior`, :func:`render_with_prior`: the occupancy
  ``1 - P(background)`` sampled on a grid; along each ray its first crossing of 0.5 in the
  trilinear interpolation of that grid (the surface marching cubes would extract, found without
  building or rasterising a mesh), backed off toward the camera by a margin, starts the marcher,
  which then needs few steps.
- :func:`count_field_evaluations`: a context manager counting the Θ evaluations a block of code
  actually makes (for checks and benchmarks).

Every renderer here returns a :class:`RenderOutput`: a :class:`~.sof.SOFRender` plus its
:class:`EvaluationCount` and the cost of the plain dense render it replaces.
"""
from __future__ import annotations

import contextlib
import logging
import math
import numbers
from dataclasses import dataclass, field
from typing import Any, Iterator

import torch
import torch.nn.functional as F

from .._validate import check_finite_tensor
from ..cameras import Camera
from ..labels import SOF
from .sof import (DEFAULT_CHUNK, MISS_LOGIT, RayRender, SemanticOccupancyField, SOFRender, check_steps,
                  rays_as_bundle)
from .volume import Bounds, _check_chunk, _check_model, _check_resolution, check_bounds, occupancy_grid

__all__ = ["EvaluationCount", "RenderOutput", "RayRender", "FieldCounter", "count_field_evaluations",
           "render_rays", "render_dense", "render_adaptive", "ProxyGrid", "proxy_grid", "depth_prior",
           "render_with_prior"]

log = logging.getLogger(__name__)


# ------------------------------------------------------------------------------------ accounting
@dataclass(frozen=True)
class EvaluationCount:
    """Θ evaluations spent by one render.

    Attributes:
        marched_rays: rays that met the bounding sphere and were marched (all levels together).
        steps: marcher steps per ray; each marched ray costs ``steps + 1`` evaluations.
        grid_points: evaluations spent sampling a proxy grid (0 when the grid was given).
    """

    marched_rays: int
    steps: int
    grid_points: int = 0

    @property
    def ray_evaluations(self) -> int:
        """``marched_rays * (steps + 1)``."""
        return self.marched_rays * (self.steps + 1)

    @property
    def total(self) -> int:
        """``ray_evaluations + grid_points``."""
        return self.ray_evaluations + self.grid_points


@dataclass(frozen=True, eq=False)
class RenderOutput(SOFRender):
    """A :class:`~.sof.SOFRender` (``logits`` (B, C, H, W), ``labels`` (B, H, W) int64 SOF-20,
    ``depth`` (B, H, W), ``mask`` (B, H, W) bool, ``points`` (B, H, W, 3)) plus its cost.

    Attributes:
        evaluations: the :class:`EvaluationCount` of this render.
        dense_evaluations: Θ evaluations of the plain dense render it stands for (see each
            renderer), for comparison.
        refined: (B, H, W) bool, pixels rendered exactly at full resolution (adaptive rendering;
            None elsewhere, where every pixel is).
    """

    evaluations: EvaluationCount = field(default_factory=lambda: EvaluationCount(0, 0))
    dense_evaluations: int = 0
    refined: torch.Tensor | None = None

    @property
    def savings(self) -> float:
        """``dense_evaluations / evaluations.total`` (inf when nothing was evaluated)."""
        t = self.evaluations.total
        return self.dense_evaluations / t if t else math.inf

    def as_sof_render(self) -> SOFRender:
        return SOFRender(self.logits, self.labels, self.depth, self.mask, self.points)


@dataclass
class FieldCounter:
    """What :func:`count_field_evaluations` counts: ``calls`` of Θ and the ``points`` it saw."""

    calls: int = 0
    points: int = 0


@contextlib.contextmanager
def count_field_evaluations(model: SemanticOccupancyField) -> Iterator[FieldCounter]:
    """Count Θ evaluations (``model.phi`` calls and their points) inside a ``with`` block::

        with count_field_evaluations(model) as c:
            model.render(z, camera)
        c.points  # == marched rays * (steps + 1)

    Works by shadowing ``model.phi`` on the instance for the duration of the block (not
    thread-safe: do not render with the same model on another thread meanwhile).
    """
    model = _check_model(model)
    counter = FieldCounter()
    original = model.phi
    had_own = "phi" in vars(model)

    def counting_phi(theta, points):
        counter.calls += 1
        counter.points += int(points.shape[:-1].numel())
        return original(theta, points)

    object.__setattr__(model, "phi", counting_phi)
    try:
        yield counter
    finally:
        if had_own:
            object.__setattr__(model, "phi", original)
        else:
            object.__delattr__(model, "phi")


# ------------------------------------------------------------------------------------ rays
def _miss_logits(n: int, num_classes: int, device) -> torch.Tensor:
    out = torch.full((n, num_classes), MISS_LOGIT, device=device)
    out[:, int(SOF.BACKGROUND)] = 0.0
    return out


def _check_camera(camera: Any, B: int) -> Camera:
    if not isinstance(camera, Camera):
        raise TypeError(f"camera: expected a sofgan_lab.cameras.Camera, got {type(camera).__name__}")
    if camera.batch_size not in (1, B):
        raise ValueError(f"camera: expected 1 or {B} views (one per latent), got {camera.batch_size}")
    return camera


def _check_steps(steps: Any, model: SemanticOccupancyField) -> int:
    return check_steps(steps, model.config.march_steps)


@torch.no_grad()
def render_rays(model: SemanticOccupancyField, z: torch.Tensor, origins: torch.Tensor,
                directions: torch.Tensor, *, start: torch.Tensor | None = None, steps: int | None = None,
                chunk: int = DEFAULT_CHUNK) -> RayRender:
    """March and classify arbitrary rays, as :meth:`SemanticOccupancyField.render` does per pixel.

    Args:
        z: (B, latent_dim) latents (or (latent_dim,)).
        origins, directions: (B, N, 3) or (N, 3) (shared by every latent) world rays; directions
            unit length.
        start: optional (B, N, 3) / (N, 3) start points overriding the sphere start.
        steps: marcher steps (None: the model's ``march_steps``).
        chunk: rays per Θ call.

    Returns:
        :class:`RayRender` on the model's device. Rays that miss the bounding sphere get logit 0
        for background and :data:`~.sof.MISS_LOGIT` for the rest, without marching.
    """
    model = _check_model(model)
    z = model.check_latent(z)
    chunk = _check_chunk(chunk)
    steps = _check_steps(steps, model)
    dev = next(model.parameters()).device
    B = z.shape[0]
    tensors = {}
    for name, t in (("origins", origins), ("directions", directions), ("start", start)):
        if t is None:
            continue
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name}: expected a torch.Tensor, got {type(t).__name__}")
        if t.dim() == 2:
            t = t[None]
        if t.dim() != 3 or t.shape[-1] != 3 or t.shape[0] not in (1, B):
            raise ValueError(f"{name}: expected shape (N, 3) or (B, N, 3) with B = {B}, got {tuple(t.shape)}")
        if t.dtype == torch.bool or t.is_complex():
            raise TypeError(f"{name}: expected real coordinates, got dtype {t.dtype}")
        tensors[name] = check_finite_tensor(t.to(device=dev, dtype=torch.float32), name)
    N = tensors["origins"].shape[1]
    for name, t in tensors.items():
        if t.shape[1] != N:
            raise ValueError(f"{name}: expected {N} rays (as origins), got {t.shape[1]}")
    tensors = {k: v.expand(B, -1, -1) for k, v in tensors.items()}
    start = tensors.get("start")
    return model.march_rays(z.to(dev), rays_as_bundle(tensors["origins"], tensors["directions"]),
                            start=None if start is None else start[:, None], steps=steps, chunk=chunk)


@torch.no_grad()
def render_dense(model: SemanticOccupancyField, z: torch.Tensor, camera: Camera, *, steps: int | None = None,
                 chunk: int = DEFAULT_CHUNK, pixel_offset: float = 0.5) -> RenderOutput:
    """:meth:`SemanticOccupancyField.render` with its :class:`EvaluationCount` (the baseline)."""
    model = _check_model(model)
    z = model.check_latent(z)
    steps = _check_steps(steps, model)
    r = model.render(z, camera, chunk=chunk, steps=steps, pixel_offset=pixel_offset)
    n = int(r.mask.sum())
    ev = EvaluationCount(marched_rays=n, steps=steps)
    return RenderOutput(r.logits, r.labels, r.depth, r.mask, r.points, evaluations=ev,
                        dense_evaluations=ev.total)


# ------------------------------------------------------------------------------------ adaptive
def _nearest_index(n_new: int, n_old: int, pixel_offset: float, device) -> torch.Tensor:
    """For each of ``n_new`` pixels, the nearest of ``n_old`` samples spanning the same image
    (old sample i sits at new-image coordinate (i + p) * n_new / n_old)."""
    c = (torch.arange(n_new, device=device, dtype=torch.float64) + pixel_offset) * n_old / n_new - pixel_offset
    return torch.floor(c + 0.5).clamp(0, n_old - 1).long()


def _support_index(n_new: int, n_old: int, pixel_offset: float, band: int, device) -> torch.Tensor:
    """(n_new, 2 * band) indices of the old samples around each new pixel: the ``band`` nearest on
    each side of it (band = 1: the two samples that bracket it), clamped to the image."""
    c = (torch.arange(n_new, device=device, dtype=torch.float64) + pixel_offset) * n_old / n_new - pixel_offset
    lo = torch.floor(c).long()
    offs = torch.arange(-band + 1, band + 1, device=device)
    return (lo[:, None] + offs[None]).clamp(0, n_old - 1)


def _check_adaptive(coarse_factor: Any, band: Any) -> None:
    if (isinstance(coarse_factor, bool) or not isinstance(coarse_factor, numbers.Integral)
            or coarse_factor not in (1, 2, 4, 8, 16)):
        raise ValueError(f"coarse_factor: expected one of 1, 2, 4, 8, 16, got {coarse_factor!r}")
    if isinstance(band, bool) or not isinstance(band, numbers.Integral) or band < 1:
        raise ValueError(f"band: expected an integer >= 1, got {band!r}")


def _march_pixels(model: SemanticOccupancyField, z: torch.Tensor, theta: list, o: torch.Tensor, d: torch.Tensor,
                  todo: torch.Tensor, maps: tuple, pos: torch.Tensor, fwd: torch.Tensor, *, steps: int,
                  chunk: int) -> int:
    """March the rays of the ``todo`` pixels ``(B, h, w)`` (origins ``o`` / directions ``d``
    ``(1 or B, h*w, 3)``) and write their logits, labels, depth and points into ``maps`` (in
    place); returns how many rays were marched."""
    logits, labels, depth, points = maps
    B, C = z.shape[0], logits.shape[-1]
    marched = 0
    for bi in range(B):
        idx = torch.nonzero(todo[bi].reshape(-1)).view(-1)
        if idx.numel() == 0:
            continue
        ci = bi if o.shape[0] > 1 else 0
        th = [(wt[bi:bi + 1], bt[bi:bi + 1]) for wt, bt in theta]
        r = model.march_rays(z[bi:bi + 1], rays_as_bundle(o[ci:ci + 1, idx], d[ci:ci + 1, idx]), steps=steps,
                             chunk=chunk, theta=th)
        lg, p = r.logits[0], r.points[0]
        logits.view(B, -1, C)[bi, idx] = lg
        labels.view(B, -1)[bi, idx] = lg.argmax(-1)
        points.view(B, -1, 3)[bi, idx] = p
        depth.view(B, -1)[bi, idx] = ((p - pos[bi]) * fwd[bi]).sum(-1)
        marched += idx.numel()
    return marched


@torch.no_grad()
def render_adaptive(model: SemanticOccupancyField, z: torch.Tensor, camera: Camera, *,
                    coarse_factor: int = 4, band: int = 1, steps: int | None = None,
                    chunk: int = DEFAULT_CHUNK, pixel_offset: float = 0.5) -> RenderOutput:
    """Coarse-to-fine rendering: exact near label boundaries, inherited elsewhere.

    The image is rendered densely at ``ceil(H / coarse_factor) x ceil(W / coarse_factor)`` (the
    same view through :meth:`Camera.resized`), then the resolution is doubled until it is
    ``(H, W)``. At each doubling every new pixel looks at the previous level's samples around it
    (the ``band`` nearest on each side, per axis: band = 1 is the 2 x 2 samples that bracket it);
    where they all carry the same label the pixel inherits the nearest sample's logits, depth
    and point (upsampling by nearest neighbour), otherwise its own ray is marched and classified.
    Rays that miss the bounding sphere are background at every level, as in the dense render.
    Features thinner than the coarse sample spacing can be missed; a larger ``band`` catches more
    of them at a higher cost.

    Args:
        z: (B, latent_dim) latents.
        camera: 1 view (shared) or B views.
        coarse_factor: 1, 2, 4, 8 or 16 (a power of two; 1 = dense).
        band: >= 1, old samples considered on each side of a new pixel.
        steps: marcher steps (None: the model's ``march_steps``).

    Returns:
        :class:`RenderOutput`; ``refined`` marks the pixels marched at full resolution (the rest
        hold their nearest coarser sample's values; where such a pixel's own ray meets the sphere
        but the sample's missed, it is background at its sphere start). ``mask`` is exact.
        ``dense_evaluations`` is the cost of ``model.render(z, camera, steps=steps)``.
    """
    model = _check_model(model)
    z = model.check_latent(z)
    B = z.shape[0]
    camera = _check_camera(camera, B)
    chunk = _check_chunk(chunk)
    steps = _check_steps(steps, model)
    _check_adaptive(coarse_factor, band)
    dev = next(model.parameters()).device
    z = z.to(dev)
    cam = camera.to(device=dev, dtype=torch.float32)
    H, W = cam.height, cam.width
    levels = int(round(math.log2(coarse_factor)))
    sizes = [(max(1, math.ceil(H / 2 ** k)), max(1, math.ceil(W / 2 ** k))) for k in range(levels, -1, -1)]
    sizes[-1] = (H, W)

    coarse = model.render(z, cam.resized(sizes[0]) if sizes[0] != (H, W) else cam, chunk=chunk, steps=steps,
                          pixel_offset=pixel_offset)
    marched = int(coarse.mask.sum())
    C = model.config.num_classes
    logits = coarse.logits.permute(0, 2, 3, 1)  # (B, h, w, C)
    labels, depth, mask, points = coarse.labels, coarse.depth, coarse.mask, coarse.points
    refined = coarse.mask.clone()  # with coarse_factor 1, every ray that met the sphere
    theta = model.hyper_weights(z)
    for (h, w), (h2, w2) in zip(sizes[:-1], sizes[1:]):
        cam_l = cam.resized((h2, w2)) if (h2, w2) != (H, W) else cam
        rows = _nearest_index(h2, h, pixel_offset, dev)
        cols = _nearest_index(w2, w, pixel_offset, dev)
        srows = _support_index(h2, h, pixel_offset, band, dev)
        scols = _support_index(w2, w, pixel_offset, band, dev)
        sup = labels[:, srows][:, :, :, scols]  # (B, h2, 2b, w2, 2b)
        uncertain = sup.amax((2, 4)) != sup.amin((2, 4))

        logits = logits[:, rows][:, :, cols]
        labels = labels[:, rows][:, :, cols]
        depth = depth[:, rows][:, :, cols]
        src_hit = mask[:, rows][:, :, cols]
        points = points[:, rows][:, :, cols]

        rays = cam_l.rays(pixel_offset=pixel_offset)
        o = rays.origins.reshape(cam_l.batch_size, -1, 3)
        d = rays.directions.reshape(cam_l.batch_size, -1, 3)
        start, hit = model.start_on_sphere(o, d)
        hit = hit.view(-1, h2, w2).expand(B, h2, w2)
        start = start.view(-1, h2, w2, 3).expand(B, h2, w2, 3)
        pos = cam_l.position.expand(B, 3) if cam_l.batch_size == 1 else cam_l.position
        fwd = cam_l.forward.expand(B, 3) if cam_l.batch_size == 1 else cam_l.forward
        # inherited pixels whose own ray misses are exact misses; those that hit where the sample
        # missed are background at their own sphere start
        fix = hit != src_hit
        if fix.any():
            miss_l = _miss_logits(1, C, dev)[0]
            logits = torch.where(fix[..., None], miss_l, logits)
            labels = torch.where(fix, torch.full_like(labels, int(SOF.BACKGROUND)), labels)
            points = torch.where(fix[..., None], start, points)
            sd = ((start - pos[:, None, None]) * fwd[:, None, None]).sum(-1)
            depth = torch.where(fix, torch.where(hit, sd, torch.zeros_like(sd)), depth)
        logits, labels, depth, points = (t.clone() for t in (logits, labels, depth, points))

        todo = uncertain & hit
        marched += _march_pixels(model, z, theta, o, d, todo, (logits, labels, depth, points), pos, fwd,
                                 steps=steps, chunk=chunk)
        refined = todo
        mask = hit
    dense = int(mask.sum()) * (steps + 1)
    ev = EvaluationCount(marched_rays=marched, steps=steps)
    log.debug("render_adaptive: %d evaluations, dense %d (x%.2f)", ev.total, dense, dense / max(ev.total, 1))
    return RenderOutput(logits.permute(0, 3, 1, 2).contiguous(), labels, depth, mask.contiguous(),
                        points.contiguous(), evaluations=ev, dense_evaluations=dense, refined=refined)


# ------------------------------------------------------------------------------------ depth prior
@dataclass(frozen=True, eq=False)
class ProxyGrid:
    """The proxy occupancy ``1 - P(background)`` of B latents on a node grid.

    Attributes:
        occupancy: (B, R, R, R) float32 indexed ``[latent, z, y, x]`` (the grid convention of
            :mod:`.volume`: nodes ``lo + (hi - lo) * i / (R - 1)``, both bounds included).
        bounds: ``((x_lo, x_hi), (y_lo, y_hi), (z_lo, z_hi))`` world units.
    """

    occupancy: torch.Tensor
    bounds: Bounds

    @property
    def resolution(self) -> int:
        return int(self.occupancy.shape[-1])

    @property
    def cell_size(self) -> tuple[float, float, float]:
        """World size of one cell along x, y, z."""
        r = self.resolution
        return tuple((hi - lo) / (r - 1) for lo, hi in self.bounds)  # type: ignore[return-value]

    @property
    def num_points(self) -> int:
        """Θ evaluations it took to sample: B * R^3."""
        return int(self.occupancy.numel())

    def sample(self, points: torch.Tensor, index: int | None = None) -> torch.Tensor:
        """Trilinear occupancy at world ``points``: (B, N, 3) -> (B, N) for every latent, or
        (N, 3) -> (N,) for latent ``index``. 0 outside the bounds."""
        lo = torch.tensor([b[0] for b in self.bounds], device=points.device, dtype=points.dtype)
        hi = torch.tensor([b[1] for b in self.bounds], device=points.device, dtype=points.dtype)
        g = (points - lo) / (hi - lo) * 2 - 1
        vol = self.occupancy[:, None] if index is None else self.occupancy[index:index + 1, None]
        g = g.reshape(vol.shape[0], 1, 1, -1, 3)
        out = F.grid_sample(vol.to(points.device), g, mode="bilinear", padding_mode="zeros", align_corners=True)
        return out.view(points.shape[:-1])


def proxy_grid(model: SemanticOccupancyField, z: torch.Tensor, resolution: int = 64, bounds: Any = None, *,
               chunk: int = 65536) -> ProxyGrid:
    """Sample the occupancy ``1 - P(background)`` of each latent ``z`` (B, latent_dim) on a grid
    (see :func:`.volume.sample_grid`). Keep it to render many views of the same latents."""
    model = _check_model(model)
    z = model.check_latent(z)
    r = _check_resolution(resolution)
    b = check_bounds(bounds, model)
    occ = torch.stack([occupancy_grid(model, z[i], r, b, chunk=chunk) for i in range(z.shape[0])])
    return ProxyGrid(occupancy=occ, bounds=b)


@torch.no_grad()
def depth_prior(model: SemanticOccupancyField, z: torch.Tensor, camera: Camera, resolution: int = 64, *,
                bounds: Any = None, level: float = 0.5, margin: float | None = None,
                grid: ProxyGrid | None = None, samples_per_cell: int = 2, pixel_offset: float = 0.5,
                chunk: int = 65536) -> torch.Tensor:
    """Start depths for the marcher from the proxy surface (paper §4.2 / App. B).

    Along each ray, from where it enters the bounding sphere to where it leaves it (clipped to the
    box of the cells that can reach ``level`` there: trilinear values never exceed their cell's
    nodes), the occupancy grid (trilinear, 0 outside its bounds) is sampled every
    ``cell / samples_per_cell``; the first sample at or above ``level`` and the one before it
    bracket the crossing, which is refined by bisection of the trilinear field and a final linear
    interpolation. This is the first hit of the marching-cubes surface of the same grid, up to
    the difference between trilinear and marching cubes' edge-linear interpolation inside a cell
    (and crossings thinner than the sample spacing). The start is that crossing moved ``margin``
    toward the camera (never before the sphere entry).

    Args:
        z: (B, latent_dim) latents.
        camera: 1 view (shared) or B views, perspective or orthographic.
        resolution, bounds: the grid, when ``grid`` is not given (see :func:`proxy_grid`).
        level: occupancy of the surface (0.5: the background probability crosses 0.5).
        margin: world units to back off along the ray; None = one cell (the largest side).
        grid: a precomputed :class:`ProxyGrid` of these latents (reuse it across views).
        samples_per_cell: sampling density along the ray (>= 1).

    Returns:
        (B, H, W) float32 camera-space depth (z along the camera's forward axis) of the start
        points, on the model's device; 0 where the ray misses the sphere or never crosses
        ``level`` (the model then starts on the sphere).
    """
    model = _check_model(model)
    z = model.check_latent(z)
    B = z.shape[0]
    camera = _check_camera(camera, B)
    if not isinstance(level, (int, float)) or isinstance(level, bool) or not 0 < level < 1:
        raise ValueError(f"level: expected a number in (0, 1), got {level!r}")
    if isinstance(samples_per_cell, bool) or not isinstance(samples_per_cell, int) or samples_per_cell < 1:
        raise ValueError(f"samples_per_cell: expected an integer >= 1, got {samples_per_cell!r}")
    if grid is None:
        grid = proxy_grid(model, z, resolution, bounds, chunk=chunk)
    elif not isinstance(grid, ProxyGrid):
        raise TypeError(f"grid: expected a ProxyGrid, got {type(grid).__name__}")
    elif grid.occupancy.shape[0] != B:
        raise ValueError(f"grid: expected occupancy for {B} latents, got {grid.occupancy.shape[0]}")
    cell = max(grid.cell_size)
    if margin is None:
        margin = cell
    if not isinstance(margin, (int, float)) or isinstance(margin, bool) or not math.isfinite(margin) or margin < 0:
        raise ValueError(f"margin: expected a finite number >= 0, got {margin!r}")
    dev = next(model.parameters()).device
    occ = ProxyGrid(grid.occupancy.to(dev), grid.bounds)
    cam = camera.to(device=dev, dtype=torch.float32)
    H, W = cam.height, cam.width
    rays = cam.rays(pixel_offset=pixel_offset)
    o = rays.origins.reshape(cam.batch_size, -1, 3).expand(B, -1, -1)
    d = rays.directions.reshape(cam.batch_size, -1, 3).expand(B, -1, -1)
    # sphere entry / exit
    r = model.config.sphere_radius
    bb = (o * d).sum(-1)
    disc = bb * bb - ((o * o).sum(-1) - r * r)
    root = torch.sqrt(disc.clamp_min(0))
    t0 = (-bb - root).clamp_min(0)
    t1 = -bb + root
    hit = (disc > 0) & (t1 > 0)
    delta = cell / samples_per_cell
    t_hit = torch.full((B, o.shape[1]), math.nan, device=dev)
    for bi in range(B):
        _first_crossings(occ, bi, o[bi], d[bi], t0[bi], t1[bi], hit[bi], level, r, delta, chunk, t_hit[bi])
    found = torch.isfinite(t_hit)
    t_start = torch.maximum(torch.nan_to_num(t_hit, nan=0.0) - margin, t0)
    p = o + d * t_start[..., None]
    pos = cam.position.expand(B, 3) if cam.batch_size == 1 else cam.position
    fwd = cam.forward.expand(B, 3) if cam.batch_size == 1 else cam.forward
    depth = ((p - pos[:, None]) * fwd[:, None]).sum(-1)
    depth = torch.where(found & hit, depth, torch.zeros_like(depth))
    return depth.view(B, H, W)


def _first_crossings(occ: ProxyGrid, bi: int, ob: torch.Tensor, db: torch.Tensor, t0: torch.Tensor, t1: torch.Tensor,
                     hit: torch.Tensor, level: float, r: float, delta: float, chunk: int, t_hit: torch.Tensor) -> None:
    """:func:`depth_prior`'s search for latent ``bi``: along the rays ``ob + t db`` (N, 3) between the
    sphere entry ``t0`` and exit ``t1`` (clipped to the occupied box), sample every ``delta`` in
    blocks of 16 and refine the first crossing of ``level``; writes it into ``t_hit`` (N,) (left
    NaN where there is none)."""
    block = 16
    box = _occupied_box(occ, bi, level, r)
    if box is None:  # no node reaches the level: trilinear values never do either
        return
    ta_box, tb_box = _slab(ob, db, *box)
    ts, te = torch.maximum(t0, ta_box), torch.minimum(t1, tb_box)
    active = torch.nonzero(hit & (te >= ts)).view(-1)
    if active.numel() == 0:
        return
    n_samples = int(math.ceil(float((te - ts)[active].max()) / delta)) + 1
    prev_t = ts.clone()
    prev_v = torch.zeros_like(ts)
    for k0 in range(0, n_samples, block):
        if active.numel() == 0:
            break
        ks = torch.arange(k0, min(k0 + block, n_samples), device=ob.device, dtype=torch.float32)
        t = (ts[active, None] + ks[None] * delta).minimum(te[active, None])  # (A, K)
        pts = ob[active, None] + db[active, None] * t[..., None]
        v = torch.empty_like(t)
        A, K = t.shape
        step = max(1, chunk // K)
        for s in range(0, A, step):
            v[s:s + step] = occ.sample(pts[s:s + step], bi)
        inside = v >= level
        found = inside.any(1)
        first = inside.float().argmax(1)
        if found.any():
            ai = active[found]
            fk = first[found]
            tb = t[found, fk]
            vb = v[found, fk]
            ta = torch.where(fk > 0, t[found, (fk - 1).clamp_min(0)], prev_t[ai])
            va = torch.where(fk > 0, v[found, (fk - 1).clamp_min(0)], prev_v[ai])
            start_inside = (k0 == 0) & (fk == 0)
            t_hit[ai] = _refine_crossing(occ, bi, ob[ai], db[ai], ta, va, tb, vb, level, start_inside)
        prev_t[active] = t[:, -1]
        prev_v[active] = v[:, -1]
        active = active[~found & (t[:, -1] < te[active])]


def _occupied_box(occ: ProxyGrid, bi: int, level: float, radius: float):
    """World box (lo (3,), hi (3,)) holding every point of the ball ``|p| <= radius`` where latent
    ``bi``'s trilinear occupancy can reach ``level``: the nodes at or above it that lie within a cell
    diagonal of the ball (the others are no corner of a cell meeting it), grown by one cell; None
    when there are none."""
    dev = occ.occupancy.device
    lo = torch.tensor([b[0] for b in occ.bounds], device=dev)
    size = torch.tensor(occ.cell_size, device=dev)
    nodes = torch.nonzero(occ.occupancy[bi] >= level).flip(-1)  # (n, 3) as (i, j, k) = (x, y, z)
    world = lo + nodes.to(torch.float32) * size
    nodes = nodes[world.norm(dim=-1) <= radius + float(size.norm()) + 1e-6]
    if nodes.numel() == 0:
        return None
    first = nodes.amin(0).to(torch.float32) - 1
    last = nodes.amax(0).to(torch.float32) + 1
    return lo + first * size, lo + last * size


def _slab(o: torch.Tensor, d: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor):
    """Ray (N, 3) / box intersection interval (t_in, t_out); empty where t_in > t_out."""
    par = d.abs() < 1e-12
    safe = torch.where(par, torch.ones_like(d), d)
    ta, tb = (lo - o) / safe, (hi - o) / safe
    t_near, t_far = torch.minimum(ta, tb), torch.maximum(ta, tb)
    inside = (o >= lo) & (o <= hi)
    t_near = torch.where(par, torch.where(inside, -math.inf, math.inf), t_near)
    t_far = torch.where(par, torch.where(inside, math.inf, -math.inf), t_far)
    return t_near.amax(-1), t_far.amin(-1)


def _refine_crossing(occ: ProxyGrid, bi: int, o, d, ta, va, tb, vb, level: float, start_inside,
                     iters: int = 6):
    """Bisect the trilinear occupancy on [ta, tb] (va < level <= vb), then interpolate linearly."""
    for _ in range(iters):
        tm = (ta + tb) / 2
        vm = occ.sample(o + d * tm[:, None], bi)
        up = vm >= level
        tb, vb = torch.where(up, tm, tb), torch.where(up, vm, vb)
        ta, va = torch.where(up, ta, tm), torch.where(up, va, vm)
    frac = ((level - va) / (vb - va).clamp_min(1e-12)).clamp(0, 1)
    t = ta + (tb - ta) * frac
    return torch.where(start_inside, tb, t)


@torch.no_grad()
def render_with_prior(model: SemanticOccupancyField, z: torch.Tensor, camera: Camera, steps: int = 3, *,
                      resolution: int = 64, bounds: Any = None, margin: float | None = None,
                      grid: ProxyGrid | None = None, chunk: int = DEFAULT_CHUNK,
                      pixel_offset: float = 0.5) -> RenderOutput:
    """``model.render(z, camera, start_depth=depth_prior(...), steps=steps)``.

    Args:
        steps: marcher steps from the prior's start (few are needed: 3 by default).
        resolution, bounds, margin, grid: see :func:`depth_prior`; pass ``grid`` (from
            :func:`proxy_grid`) to reuse the proxy across views, otherwise it is sampled here and
            its ``B * resolution^3`` evaluations are counted in ``evaluations.grid_points``.

    Returns:
        :class:`RenderOutput`; ``dense_evaluations`` is the cost of ``model.render(z, camera)``
        (the model's default ``march_steps``).
    """
    model = _check_model(model)
    z = model.check_latent(z)
    B = z.shape[0]
    camera = _check_camera(camera, B)
    steps = _check_steps(steps, model)
    grid_cost = 0
    if grid is None:
        grid = proxy_grid(model, z, resolution, bounds)
        grid_cost = grid.num_points
    prior = depth_prior(model, z, camera, grid=grid, margin=margin, pixel_offset=pixel_offset)
    r = model.render(z, camera, chunk=chunk, steps=steps, pixel_offset=pixel_offset, start_depth=prior)
    n = int(r.mask.sum())
    ev = EvaluationCount(marched_rays=n, steps=steps, grid_points=grid_cost)
    dense = n * (model.config.march_steps + 1)
    return RenderOutput(r.logits, r.labels, r.depth, r.mask, r.points, evaluations=ev, dense_evaluations=dense)
