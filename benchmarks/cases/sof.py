"""Benchmarks of SOF rendering: dense, adaptive (coarse-to-fine) and depth-prior label maps.

The model is the demo checkpoint at ``data/demo/sof/`` when it exists; otherwise a small SOF is
fitted here, in seconds, to the rays of ONE synthetic head (:func:`fit_toy_sof`, the same recipe
the tests use), so that its label maps are spatially coherent like a trained model's (a random
model's are not, and adaptive rendering would have nothing to exploit). The JSON records which:
``demo_model`` = 1 (demo checkpoint) or 0 (fitted here).
"""
from __future__ import annotations

import contextlib
import logging
from pathlib import Path

from benchmarks.cases import Context, register

log = logging.getLogger(__name__)

DEMO_DIR = Path(__file__).resolve().parents[2] / "data" / "demo" / "sof"


@contextlib.contextmanager
def _threads(n: int | None):
    import torch

    if n is None:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def fit_toy_sof(*, iters: int = 300, width: int = 32, views: int = 16, size: int = 64, batch: int = 1024,
                lr: float = 5e-3, seed: int = 0, device="cpu", threads: int | None = 1):
    """Fit a small SOF (all widths ``width``, one latent) to ``views`` random views of the default
    synthetic head at ``size`` px, for ``iters`` Adam steps of ``batch`` rays.

    Rays are drawn with probability ∝ 1/sqrt(class frequency) so small parts (eyes, lips) are
    learnt too, and each starts at a random point between the bounding sphere and the true surface
    (the release also jitters starts), so the marcher converges from any start in front of the
    surface, which is what the depth prior needs. Deterministic for a given seed on the CPU.
    ``threads``: torch CPU threads during the fit (1 is fastest for these tiny matmuls), restored
    after; None leaves the setting alone.

    Returns:
        (model in eval mode, z (1, width)) on ``device``.
    """
    import torch
    import torch.nn.functional as F

    from sofgan_lab.cameras import random_views
    from sofgan_lab.geometry import SemanticOccupancyField, SOFConfig
    from sofgan_lab.synthetic import build_head, default_attributes, render_segmap

    with _threads(threads):
        torch.manual_seed(seed)
        head = build_head(default_attributes())
        cams = random_views(views, seed=seed, image_size=size)
        seg = render_segmap(head, cams, grid_resolution=48)
        rays = cams.rays()
        o = rays.origins.reshape(-1, 3)
        d = rays.directions.reshape(-1, 3)
        labels = seg.labels.reshape(-1)
        cfg = SOFConfig(latent_dim=width, hyper_dim=width, phi_dim=width, marcher_dim=width,
                        classifier_dim=width, num_instances=1)
        model = SemanticOccupancyField(cfg)
        start, _hit = model.start_on_sphere(o, d)
        t0 = ((start - o) * d).sum(-1)
        # distance along the ray to the true surface (for background rays: half the chord)
        pos = cams.position.repeat_interleave(size * size, 0)
        fwd = cams.forward.repeat_interleave(size * size, 0)
        dfwd = (d * fwd).sum(-1)
        t_surf = (seg.depth.reshape(-1) - ((o - pos) * fwd).sum(-1)) / dfwd
        b = (o * d).sum(-1)
        t1 = -b + torch.sqrt((b * b - (o * o).sum(-1) + cfg.sphere_radius ** 2).clamp_min(0))
        t_max = torch.where(seg.mask.reshape(-1), t_surf - 0.05 - t0, 0.5 * (t1 - t0)).clamp_min(0)
        freq = torch.bincount(labels, minlength=cfg.num_classes).float()
        weight = freq.clamp_min(1).rsqrt()[labels]
        model.to(device)
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        gen = torch.Generator().manual_seed(seed)
        for _ in range(iters):
            idx = torch.multinomial(weight, batch, replacement=True, generator=gen)
            u = torch.rand(batch, generator=gen)
            t = t0[idx] + u * t_max[idx]
            st = o[idx] + d[idx] * t[:, None]
            logits, _, _ = model.forward_rays(model.latents.weight, o[None, idx].to(device),
                                              d[None, idx].to(device), start=st[None].to(device))
            loss = F.cross_entropy(logits[0], labels[idx].to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        log.info("fit_toy_sof: %d steps, final loss %.4f", iters, loss.item())
        model.eval()
        return model, model.latents.weight.detach().clone()


def _load_model(ctx: Context):
    """(model, z, is_demo)."""
    import torch

    from sofgan_lab.geometry import SemanticOccupancyField

    if DEMO_DIR.is_dir() and (DEMO_DIR / "model.safetensors").is_file():
        model = SemanticOccupancyField.from_pretrained(DEMO_DIR, map_location=ctx.device).eval()
        if model.latents.num_embeddings > 0:
            z = model.latents.weight[:1].detach().clone()
        else:
            z = torch.randn(1, model.config.latent_dim, generator=torch.Generator().manual_seed(0)) * 0.01
        return model, z.to(ctx.device), True
    if ctx.quick:
        model, z = fit_toy_sof(iters=150, width=32, device=ctx.device)
    else:
        model, z = fit_toy_sof(iters=600, width=32, device=ctx.device)
    return model, z, False


@register(
    "sof_render",
    description="sofgan_lab.geometry: ms per SOF segmap at 128 and 256 px (--quick: 64 px), dense vs "
    "adaptive (coarse_factor 4, band 1) vs depth prior (64^3 proxy grid, 3 steps); field evaluations "
    "per second; adaptive's evaluation ratio and pixel agreement with dense",
)
def sof_render(ctx: Context) -> None:
    import torch

    from sofgan_lab.cameras import Camera
    from sofgan_lab.geometry.rendering import proxy_grid, render_adaptive, render_dense, render_with_prior

    model, z, is_demo = _load_model(ctx)
    ctx.record("demo_model", 1.0 if is_demo else 0.0, "bool")
    ctx.record("parameters", model.num_parameters(include_latents=False), "count")
    sizes = (64,) if ctx.quick else (128, 256)
    repeats = 2 if ctx.quick else 5
    grid_res = 32 if ctx.quick else 64
    prior_steps = 3
    grid = proxy_grid(model, z, grid_res)
    ctx.measure("proxy_grid", lambda: proxy_grid(model, z, grid_res), repeats=1 if ctx.quick else 3,
                warmup=0, unit="ms", items=grid_res ** 3)
    with torch.no_grad():
        for s in sizes:
            cam = Camera.from_orbit(20.0, 5.0, image_size=s, device=ctx.device)
            dense = render_dense(model, z, cam)
            adaptive = render_adaptive(model, z, cam, coarse_factor=4, band=1)
            prior = render_with_prior(model, z, cam, steps=prior_steps, grid=grid)
            md = ctx.measure(f"dense_{s}", lambda: render_dense(model, z, cam), repeats=repeats, unit="ms",
                             items=1)
            ma = ctx.measure(f"adaptive_{s}", lambda: render_adaptive(model, z, cam, coarse_factor=4, band=1),
                             repeats=repeats, unit="ms", items=1)
            mp = ctx.measure(f"prior_{s}", lambda: render_with_prior(model, z, cam, steps=prior_steps, grid=grid),
                             repeats=repeats, unit="ms", items=1)
            for name, r, m in (("dense", dense, md), ("adaptive", adaptive, ma), ("prior", prior, mp)):
                ctx.record(f"{name}_{s}_field_evals", r.evaluations.total, "evaluations")
                ctx.record(f"{name}_{s}_field_evals_per_s", r.evaluations.total / m.median_s, "evaluations/s")
            hits = int(dense.mask.sum())
            ctx.record(f"adaptive_{s}_eval_ratio", dense.evaluations.total / adaptive.evaluations.total, "x")
            ctx.record(f"adaptive_{s}_agreement", float((adaptive.labels == dense.labels).float().mean()),
                       "fraction")
            ctx.record(f"adaptive_{s}_speedup", md.median / ma.median, "x")
            ctx.record(f"prior_{s}_eval_ratio", dense.evaluations.total / prior.evaluations.total, "x")
            ctx.record(f"prior_{s}_agreement", float((prior.labels == dense.labels).float().mean()), "fraction")
            ctx.record(f"prior_{s}_speedup", md.median / mp.median, "x")
            ctx.record(f"hit_rays_{s}", hits, "rays")
    ctx.record("proxy_grid_points", grid.num_points, "evaluations")
