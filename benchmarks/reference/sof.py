"""Frozen copy of the SOF march as it was at the start of issue 21 (commit ad6c3ed: the model's
``phi`` / ``march`` / ``classify`` / ``forward_rays`` / ``render`` from
``sofgan_lab/geometry/sof.py`` and ``render_adaptive`` from ``sofgan_lab/geometry/rendering.py``,
input checks trimmed), kept so that benchmarks can time today's implementation against it in the
same run and check that outputs agree.

Do not optimise or edit this file: it is the baseline. :class:`ReferenceSOF` has the parameter
layout of :class:`sofgan_lab.geometry.SemanticOccupancyField`, so ``reference_sof(model)`` loads
its weights key for key. ``render_adaptive`` returns ``(logits, labels, depth, mask, points,
marched_rays)``.
"""
from __future__ import annotations

import math
import numbers
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from sofgan_lab.cameras import Camera
from sofgan_lab.geometry.sof import MISS_LOGIT, SOFConfig, SOFRender
from sofgan_lab.labels import SOF

__all__ = ["ReferenceSOF", "reference_sof", "render_adaptive"]


class _HyperLayer(nn.Module):
    """Emits the weight (out, in) and bias (out,) of one Θ layer from z (official layout)."""

    def __init__(self, latent_dim: int, hidden: int, fan_in: int, fan_out: int):
        super().__init__()
        self.fan_in, self.fan_out = fan_in, fan_out
        self.net = nn.Sequential(
            nn.Linear(latent_dim, hidden), nn.LayerNorm(hidden), nn.ReLU(),
            nn.Linear(hidden, hidden), nn.LayerNorm(hidden), nn.ReLU(),
            nn.Linear(hidden, fan_in * fan_out + fan_out),
        )
        for m in self.net:
            if isinstance(m, nn.Linear):
                nn.init.kaiming_normal_(m.weight, a=0.0, nonlinearity="relu", mode="fan_in")
        with torch.no_grad():
            self.net[-1].weight.mul_(0.1)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        o = self.net(z)
        n = self.fan_in * self.fan_out
        return o[:, :n].view(-1, self.fan_out, self.fan_in), o[:, n:]


class _RayMarcher(nn.Module):
    """u_{k+1} = M_k u_k + (G_k d + g_k), ReLU between layers; the last layer gives the step."""

    def __init__(self, in_dim: int, hidden: int, layers: int):
        super().__init__()
        dims = [in_dim] + [hidden] * (layers - 1) + [1]
        self.weights = nn.ModuleList(nn.Linear(dims[k], dims[k + 1], bias=False) for k in range(layers))
        self.dir_bias = nn.ModuleList(nn.Linear(3, dims[k + 1]) for k in range(layers))

    def biases(self, direction: torch.Tensor) -> list[torch.Tensor]:
        """The direction-conditioned biases G_k d + g_k (constant along a ray: computed once)."""
        return [b(direction) for b in self.dir_bias]

    def forward(self, feature: torch.Tensor, biases: list[torch.Tensor]) -> torch.Tensor:
        """Signed step (...,) from Θ's ``feature`` (..., in_dim) and the ray's :meth:`biases`."""
        u = feature
        last = len(self.weights) - 1
        for k, (w, b) in enumerate(zip(self.weights, biases)):
            u = w(u) + b
            if k < last:
                u = F.relu(u)
        return u[..., 0]


class ReferenceSOF(nn.Module):
    """The SOF model as of ad6c3ed (paper §4).

    Args:
        config: a :class:`SOFConfig`; ``config.num_instances`` rows of learnable latents (the
            auto-decoder table, initialised N(0, 0.01²)) are held in ``self.latents``.
    """

    def __init__(self, config: SOFConfig | None = None):
        super().__init__()
        cfg = config or SOFConfig()
        if not isinstance(cfg, SOFConfig):
            raise TypeError(f"config: expected a SOFConfig, got {type(cfg).__name__}")
        self.config = cfg
        dims = [3] + [cfg.phi_dim] * cfg.phi_layers
        self.hyper = nn.ModuleList(
            _HyperLayer(cfg.latent_dim, cfg.hyper_dim, dims[i], dims[i + 1]) for i in range(cfg.phi_layers))
        self.marcher = _RayMarcher(cfg.phi_dim, cfg.marcher_dim, cfg.marcher_layers)
        layers: list[nn.Module] = []
        d = cfg.phi_dim
        for _ in range(cfg.classifier_layers):
            lin = nn.Linear(d, cfg.classifier_dim)
            nn.init.kaiming_normal_(lin.weight, a=0.0, nonlinearity="relu", mode="fan_in")
            layers += [lin, nn.LayerNorm(cfg.classifier_dim), nn.ReLU()]
            d = cfg.classifier_dim
        out = nn.Linear(d, cfg.num_classes)
        nn.init.kaiming_normal_(out.weight, a=0.0, nonlinearity="relu", mode="fan_in")
        self.classifier = nn.Sequential(*layers, out)
        self.latents = nn.Embedding(max(cfg.num_instances, 0), cfg.latent_dim)
        nn.init.normal_(self.latents.weight, 0.0, 0.01)

    # ------------------------------------------------------------------ pieces
    def check_latent(self, z: torch.Tensor, name: str = "z") -> torch.Tensor:
        """Validate ``z`` (B, latent_dim) or (latent_dim,) -> (B, latent_dim) float."""
        if not isinstance(z, torch.Tensor):
            raise TypeError(f"{name}: expected a torch.Tensor, got {type(z).__name__}")
        if z.dim() == 1:
            z = z[None]
        if z.dim() != 2 or z.shape[1] != self.config.latent_dim:
            raise ValueError(f"{name}: expected shape (B, {self.config.latent_dim}), got {tuple(z.shape)}")
        if not torch.isfinite(z).all():
            raise ValueError(f"{name}: contains non-finite values")
        return z.float() if not z.is_floating_point() else z

    def hyper_weights(self, z: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Θ's layers for each latent: [(W (B, out, in), b (B, out)), ...], generated once per z."""
        return [h(z) for h in self.hyper]

    @staticmethod
    def phi(theta: list[tuple[torch.Tensor, torch.Tensor]], points: torch.Tensor) -> torch.Tensor:
        """Θ at ``points`` (B, N, 3) -> features (B, N, phi_dim), batched over latents."""
        x = points
        for w, b in theta:
            x = torch.baddbmm(b[:, None, :], x, w.transpose(1, 2))
            x = F.relu(F.layer_norm(x, x.shape[-1:]))
        return x

    def march(self, theta, points: torch.Tensor, directions: torch.Tensor,
              steps: int | None = None) -> torch.Tensor:
        """Walk ``points`` (B, N, 3) along ``directions`` for ``steps`` learned steps."""
        n = self.config.march_steps if steps is None else int(steps)
        biases = self.marcher.biases(directions)
        p = points
        for _ in range(n):
            p = p + self.marcher(self.phi(theta, p), biases)[..., None] * directions
        return p

    def classify(self, theta, points: torch.Tensor) -> torch.Tensor:
        """Class logits (B, N, num_classes) at ``points`` (B, N, 3)."""
        return self.classifier(self.phi(theta, points))

    # ------------------------------------------------------------------ rays
    def start_on_sphere(self, origins: torch.Tensor, directions: torch.Tensor):
        """Near intersection of rays with the bounding sphere -> (start (..., 3), hit (...) bool).

        Rays starting inside the sphere start at their origin."""
        r = self.config.sphere_radius
        b = (origins * directions).sum(-1)
        c = (origins * origins).sum(-1) - r * r
        disc = b * b - c
        t = (-b - torch.sqrt(disc.clamp_min(0))).clamp_min(0)
        hit = (disc > 0) & ((-b + torch.sqrt(disc.clamp_min(0))) > 0)
        return origins + directions * t[..., None], hit

    def forward_rays(self, z: torch.Tensor, origins: torch.Tensor, directions: torch.Tensor, *,
                     start: torch.Tensor | None = None, steps: int | None = None):
        """Render rays: origins/directions (B, N, 3) -> logits (B, N, C), final points (B, N, 3),
        hit (B, N) bool. Differentiable (used by training and inversion).

        ``start`` (B, N, 3) overrides the sphere start (the depth prior)."""
        z = self.check_latent(z)
        theta = self.hyper_weights(z)
        sphere_start, hit = self.start_on_sphere(origins, directions)
        p0 = sphere_start if start is None else start
        p = self.march(theta, p0, directions, steps)
        logits = self.classify(theta, p)
        miss = torch.full_like(logits, MISS_LOGIT)
        miss[..., int(SOF.BACKGROUND)] = 0.0
        logits = torch.where(hit[..., None], logits, miss)
        return logits, p, hit

    # ------------------------------------------------------------------ images
    @torch.no_grad()
    def render(self, z: torch.Tensor, camera: Camera, *, chunk: int = 32768, steps: int | None = None,
               pixel_offset: float = 0.5, start_depth: torch.Tensor | None = None) -> SOFRender:
        """Render label maps of latents ``z`` (B, latent_dim) through ``camera`` (B views, or 1
        view shared by all latents).

        Memory is bounded by ``chunk`` rays per latent at a time; rays that miss the bounding
        sphere are background (logit 0 for background, :data:`MISS_LOGIT` for the rest) without
        marching. ``start_depth`` (B, H, W), when given, starts each ray at that camera-space depth
        instead of on the sphere (the depth prior; pixels with depth <= 0 keep the sphere start).
        Runs on the module's device; results are returned on it.
        """
        z = self.check_latent(z)
        if not isinstance(camera, Camera):
            raise TypeError(f"camera: expected a sofgan_lab.cameras.Camera, got {type(camera).__name__}")
        if not isinstance(chunk, int) or chunk < 1:
            raise ValueError(f"chunk: expected a positive integer, got {chunk!r}")
        B = z.shape[0]
        if camera.batch_size not in (1, B):
            raise ValueError(f"camera: expected 1 or {B} views (one per latent), got {camera.batch_size}")
        dev = next(self.parameters()).device
        z = z.to(dev)
        cam = camera.to(device=dev, dtype=torch.float32)
        rays = cam.rays(pixel_offset=pixel_offset)
        H, W = cam.height, cam.width
        o = rays.origins.reshape(cam.batch_size, -1, 3).expand(B, -1, -1)
        d = rays.directions.reshape(cam.batch_size, -1, 3).expand(B, -1, -1)
        start, hit = self.start_on_sphere(o, d)
        if start_depth is not None:
            if start_depth.shape != (B, H, W):
                raise ValueError(f"start_depth: expected shape {(B, H, W)}, got {tuple(start_depth.shape)}")
            sd = start_depth.to(dev).reshape(B, -1)
            fwd = cam.forward.expand(B, 3) if cam.batch_size == 1 else cam.forward
            pos = cam.position.expand(B, 3) if cam.batch_size == 1 else cam.position
            # the point on the ray whose camera-space z is sd
            t = (sd - ((o - pos[:, None]) * fwd[:, None]).sum(-1)) / (d * fwd[:, None]).sum(-1).clamp_min(1e-6)
            prior = o + d * t[..., None]
            start = torch.where((sd > 0)[..., None], prior, start)
        theta = self.hyper_weights(z)
        C = self.config.num_classes
        logits = torch.zeros(B, H * W, C, device=dev)
        logits[..., int(SOF.BACKGROUND)] = 0.0
        logits[..., 1:] = MISS_LOGIT
        final = start.clone()
        for bi in range(B):
            idx = torch.nonzero(hit[bi]).view(-1)
            th = [(w[bi:bi + 1], b[bi:bi + 1]) for w, b in theta]
            for s in range(0, idx.numel(), chunk):
                j = idx[s:s + chunk]
                dj = d[bi:bi + 1, j]
                p = self.march(th, start[bi:bi + 1, j], dj, steps)
                logits[bi, j] = self.classify(th, p)[0]
                final[bi, j] = p[0]
        pos = cam.position.expand(B, 3) if cam.batch_size == 1 else cam.position
        fwd = cam.forward.expand(B, 3) if cam.batch_size == 1 else cam.forward
        depth = ((final - pos[:, None]) * fwd[:, None]).sum(-1)
        depth = torch.where(hit, depth, torch.zeros_like(depth))
        logits = logits.view(B, H, W, C).permute(0, 3, 1, 2).contiguous()
        return SOFRender(logits, logits.argmax(1), depth.view(B, H, W), hit.view(B, H, W),
                         final.view(B, H, W, 3))


def _miss_logits(n: int, num_classes: int, device) -> torch.Tensor:
    out = torch.full((n, num_classes), MISS_LOGIT, device=device)
    out[:, int(SOF.BACKGROUND)] = 0.0
    return out


def _check_steps(steps: Any, model: "ReferenceSOF") -> int:
    if steps is None:
        return model.config.march_steps
    if isinstance(steps, bool) or not isinstance(steps, numbers.Integral) or steps < 0:
        raise ValueError(f"steps: expected an integer >= 0 or None, got {steps!r}")
    return int(steps)


def _march_one(model, th, origins, directions, start, steps, chunk):
    """One latent's Θ ``th``; origins/directions/start (N, 3) -> logits (N, C), points, hit."""
    sphere_start, hit = model.start_on_sphere(origins, directions)
    start = sphere_start if start is None else start
    n = origins.shape[0]
    logits = _miss_logits(n, model.config.num_classes, origins.device)
    final = start.clone()
    idx = torch.nonzero(hit).view(-1)
    for s in range(0, idx.numel(), chunk):
        j = idx[s:s + chunk]
        p = model.march(th, start[None, j], directions[None, j], steps)
        logits[j] = model.classify(th, p)[0]
        final[j] = p[0]
    return logits, final, hit


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


@torch.no_grad()
def render_adaptive(model: "ReferenceSOF", z: torch.Tensor, camera: Camera, *,
                    coarse_factor: int = 4, band: int = 1, steps: int | None = None,
                    chunk: int = 32768, pixel_offset: float = 0.5):
    """``sofgan_lab.geometry.render_adaptive`` as of ad6c3ed -> (logits, labels, depth, mask, points,
    marched_rays)."""
    z = model.check_latent(z)
    B = z.shape[0]
    steps = _check_steps(steps, model)
    if (isinstance(coarse_factor, bool) or not isinstance(coarse_factor, numbers.Integral)
            or coarse_factor not in (1, 2, 4, 8, 16)):
        raise ValueError(f"coarse_factor: expected one of 1, 2, 4, 8, 16, got {coarse_factor!r}")
    if isinstance(band, bool) or not isinstance(band, numbers.Integral) or band < 1:
        raise ValueError(f"band: expected an integer >= 1, got {band!r}")
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
        for bi in range(B):
            idx = torch.nonzero(todo[bi].reshape(-1)).view(-1)
            if idx.numel() == 0:
                continue
            ci = bi if cam_l.batch_size > 1 else 0
            th = [(wt[bi:bi + 1], bt[bi:bi + 1]) for wt, bt in theta]
            lg, p, _ = _march_one(model, th, o[ci, idx], d[ci, idx], None, steps, chunk)
            logits.view(B, -1, C)[bi, idx] = lg
            labels.view(B, -1)[bi, idx] = lg.argmax(-1)
            points.view(B, -1, 3)[bi, idx] = p
            depth.view(B, -1)[bi, idx] = ((p - pos[bi]) * fwd[bi]).sum(-1)
            marched += idx.numel()
        refined = todo
        mask = hit
    return (logits.permute(0, 3, 1, 2).contiguous(), labels, depth, mask.contiguous(), points.contiguous(),
            marched)


def reference_sof(model: nn.Module) -> ReferenceSOF:
    """A :class:`ReferenceSOF` with ``model``'s config and weights, on its device, in eval mode."""
    ref = ReferenceSOF(model.config)
    ref.load_state_dict(model.state_dict())
    return ref.to(next(model.parameters()).device).eval()
