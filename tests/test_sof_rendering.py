"""Faster SOF rendering (sofgan_lab.geometry.rendering): depth prior, adaptive rendering and the
count of field evaluations.

Exact answers come from a hand-made model with a known planar surface; the adaptive and prior
renders are compared with dense renders of a small SOF fitted for a few seconds to one synthetic
head (``benchmarks.cases.sof.fit_toy_sof``, shared with the benchmark), whose label maps are
spatially coherent like a trained model's.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from sofgan_lab.cameras import Camera
from sofgan_lab.geometry import SemanticOccupancyField, SOFConfig
from sofgan_lab.geometry.rendering import (EvaluationCount, ProxyGrid, count_field_evaluations, depth_prior,
                                           proxy_grid, render_adaptive, render_dense, render_rays,
                                           render_with_prior)
from sofgan_lab.labels import SOF

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # `benchmarks` is a top-level folder, not part of the installed package
    sys.path.insert(0, str(REPO))


def plane_model(c: float, sign: float = -1.0, axis: int = 2, steps: int = 2) -> SemanticOccupancyField:
    """Hair where ``sign * (p[axis] - c) > 0``, background on the other side, P(bg) = 0.5 on the
    plane (see tests/test_sof_volume.py); the marcher's output is 0 (points stay where they start)."""
    cfg = SOFConfig(latent_dim=4, hyper_dim=4, phi_dim=8, phi_layers=1, marcher_dim=8, classifier_dim=8,
                    classifier_layers=1, march_steps=steps)
    m = SemanticOccupancyField(cfg).eval()
    with torch.no_grad():
        w, b = torch.zeros(8, 3), torch.zeros(8)
        w[0, axis], b[0] = 4.0 * sign, -4.0 * sign * c
        w[1], b[1] = -w[0], -b[0]
        b[2], b[3] = 1.0, -1.0
        m.hyper[0].net[-1].weight.zero_()
        m.hyper[0].net[-1].bias.copy_(torch.cat([w.reshape(-1), b]))
        m.classifier[0].weight.copy_(torch.eye(8))
        m.classifier[0].bias.zero_()
        out = m.classifier[-1]
        out.weight.zero_()
        out.bias.fill_(-30.0)
        out.weight[int(SOF.HAIR), 0] = out.weight[int(SOF.BACKGROUND), 1] = 4.0
        out.bias[int(SOF.HAIR)] = out.bias[int(SOF.BACKGROUND)] = 0.0
        m.marcher.weights[-1].weight.zero_()
        m.marcher.dir_bias[-1].weight.zero_()
        m.marcher.dir_bias[-1].bias.zero_()
    return m


Z = torch.zeros(1, 4)


@pytest.fixture(scope="module")
def fitted():
    """(model, z): a width-32 SOF fitted for 300 Adam steps to one synthetic head (~10 s)."""
    from benchmarks.cases.sof import fit_toy_sof

    return fit_toy_sof(iters=300, width=32, seed=0)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """These renders are many tiny matmuls: one thread is fastest (and others share the CPU)."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


# ------------------------------------------------------------------------------------ depth prior
@pytest.mark.parametrize("fov", [None, 35.0])
@pytest.mark.parametrize("c, exact", [(0.23, False), (0.0, True)])
def test_depth_prior_finds_a_known_surface_within_a_voxel(fov, c, exact):
    # hair (occupied) where z < c: frontal rays from z = 4.5 cross the plane z = c at depth 4.5 - c.
    # With 32 nodes on [-1.5, 1.5], c = 0 lies midway between two nodes, where the symmetric field's
    # trilinear interpolation crosses 0.5 exactly; elsewhere it is off by less than a cell.
    m = plane_model(c)
    cam = Camera.from_orbit(0.0, 0.0, image_size=24, fov=fov, target=(0.0, 0.0, 0.0), pixels_per_unit=None
                            if fov else 6.0)
    prior = depth_prior(m, Z, cam, resolution=32, margin=0.0)
    assert prior.shape == (1, 24, 24) and prior.dtype == torch.float32
    # which rays cross the plane inside the radius-1.5 sphere
    rays = cam.rays()
    o, d = rays.origins[0], rays.directions[0]
    t_plane = (c - o[..., 2]) / d[..., 2]
    p = o + d * t_plane[..., None]
    crosses = p.norm(dim=-1) < 1.5
    inner = p.norm(dim=-1) < 1.5 - 0.1  # away from the sphere's rim
    assert inner.sum() > 100 and (~crosses).sum() > 0
    cell = 3.0 / 31
    err = (prior[0] - (4.5 - c)).abs()
    assert err[inner].max() < cell, err[inner].max()
    if exact:
        assert err[inner].max() < 1e-4, err[inner].max()
    assert (prior[0][~crosses] == 0).all()
    backed = depth_prior(m, Z, cam, resolution=32, margin=0.1)
    shift = (prior[0] - backed[0])[inner]
    expected = (0.1 * (d[..., 2].abs()))[inner]  # 0.1 along the ray, in camera depth
    torch.testing.assert_close(shift, expected, rtol=0, atol=1e-4)


def test_depth_prior_is_zero_without_a_surface_and_reuses_a_grid():
    m = plane_model(-5.0)  # all background inside the sphere
    cam = Camera.from_orbit(0.0, 0.0, image_size=8)
    assert (depth_prior(m, Z, cam, resolution=8) == 0).all()
    m2 = plane_model(0.1)
    g = proxy_grid(m2, torch.zeros(2, 4), 16)
    assert isinstance(g, ProxyGrid) and g.occupancy.shape == (2, 16, 16, 16) and g.num_points == 2 * 16 ** 3
    with count_field_evaluations(m2) as counter:
        a = depth_prior(m2, torch.zeros(2, 4), cam, grid=g)
    assert counter.points == 0, "a given grid is not sampled again"
    torch.testing.assert_close(a, depth_prior(m2, torch.zeros(2, 4), cam, resolution=16))
    with pytest.raises(ValueError, match="grid: expected occupancy for 1 latents, got 2"):
        depth_prior(m2, Z, cam, grid=g)
    with pytest.raises(ValueError, match="margin"):
        depth_prior(m2, Z, cam, margin=-1.0)


def test_render_with_prior_is_render_from_the_prior_start():
    m = plane_model(0.23, steps=2)
    cam = Camera.from_orbit(0.0, 0.0, image_size=16, target=(0.0, 0.0, 0.0))
    g = proxy_grid(m, Z, 32)
    prior = depth_prior(m, Z, cam, grid=g, margin=0.05)
    out = render_with_prior(m, Z, cam, steps=2, grid=g, margin=0.05)
    ref = m.render(Z, cam, steps=2, start_depth=prior)
    assert torch.equal(out.logits, ref.logits) and torch.equal(out.depth, ref.depth)
    # the marcher of this model does not move: the final depth is the prior's where it found one
    found = prior > 0
    torch.testing.assert_close(out.depth[found], prior[found], rtol=0, atol=1e-5)
    assert out.evaluations == EvaluationCount(marched_rays=int(ref.mask.sum()), steps=2, grid_points=0)


# ------------------------------------------------------------------------------------ counting
def test_evaluation_counts_match_the_field_calls(fitted):
    m, z = fitted
    cam = Camera.from_orbit(15.0, 0.0, image_size=32)
    with count_field_evaluations(m) as c:
        dense = render_dense(m, z, cam)
    hits = int(dense.mask.sum())
    assert c.points == dense.evaluations.total == hits * (m.config.march_steps + 1)
    assert dense.dense_evaluations == dense.evaluations.total
    with count_field_evaluations(m) as c:
        ad = render_adaptive(m, z, cam, coarse_factor=4)
    assert c.points == ad.evaluations.total and ad.dense_evaluations == dense.evaluations.total
    with count_field_evaluations(m) as c:
        pr = render_with_prior(m, z, cam, steps=3, resolution=16)
    assert c.points == pr.evaluations.total == hits * 4 + 16 ** 3
    assert pr.evaluations.grid_points == 16 ** 3
    assert "phi" not in vars(m), "the counter is removed after the block"


def test_render_rays_matches_render_per_pixel(fitted):
    m, z = fitted
    cam = Camera.from_orbit(-10.0, 5.0, image_size=16, fov=20.0)
    ref = m.render(z, cam)
    rays = cam.rays()
    pick = torch.tensor([0, 17, 100, 135, 200, 255])
    r = render_rays(m, z, rays.origins.reshape(-1, 3)[pick], rays.directions.reshape(-1, 3)[pick])
    torch.testing.assert_close(r.logits[0], ref.logits.permute(0, 2, 3, 1).reshape(-1, 20)[pick],
                               rtol=0, atol=1e-5)
    assert torch.equal(r.hit[0], ref.mask.reshape(-1)[pick])


# ------------------------------------------------------------------------------------ adaptive
@pytest.mark.parametrize("size, min_savings", [(128, 2.5), (256, 4.0)])
def test_adaptive_matches_dense_with_fewer_evaluations(fitted, size, min_savings):
    m, z = fitted
    cam = Camera.from_orbit(20.0, 5.0, image_size=size)
    dense = render_dense(m, z, cam)
    assert len(dense.labels.unique()) >= 6, "the fitted model should show several parts"
    ad = render_adaptive(m, z, cam, coarse_factor=4, band=1)
    agree = (ad.labels == dense.labels).float().mean().item()
    assert agree >= 0.995, agree
    assert ad.savings >= min_savings, ad.savings  # the target: >= 4x at 256^2
    assert ad.evaluations.total < dense.evaluations.total
    assert torch.equal(ad.mask, dense.mask)
    # re-rendered pixels are the dense render's
    sel = ad.refined
    assert sel.any() and sel.float().mean() < 0.5
    torch.testing.assert_close(ad.logits.permute(0, 2, 3, 1)[sel], dense.logits.permute(0, 2, 3, 1)[sel],
                               rtol=0, atol=1e-4)
    torch.testing.assert_close(ad.depth[sel], dense.depth[sel], rtol=0, atol=1e-4)


def test_adaptive_with_factor_1_is_dense_and_checks_arguments(fitted):
    m, z = fitted
    cam = Camera.from_orbit([0.0, 25.0], 0.0, image_size=(20, 28))
    zz = torch.cat([z, z])
    dense = render_dense(m, zz, cam)
    one = render_adaptive(m, zz, cam, coarse_factor=1)
    assert torch.equal(one.logits, dense.logits) and one.evaluations == dense.evaluations
    two = render_adaptive(m, zz, cam, coarse_factor=2, band=2)  # sizes that are not multiples
    assert two.labels.shape == (2, 20, 28)
    assert (two.labels == dense.labels).float().mean() >= 0.99
    with pytest.raises(ValueError, match="coarse_factor"):
        render_adaptive(m, z, cam[0], coarse_factor=3)
    with pytest.raises(ValueError, match="band"):
        render_adaptive(m, z, cam[0], band=0)
    with pytest.raises(ValueError, match="camera: expected 1 or 1 views"):
        render_adaptive(m, z, cam)


# ------------------------------------------------------------------------------------ prior, fitted
def test_prior_with_few_steps_matches_dense_on_most_pixels(fitted):
    m, z = fitted
    cam = Camera.from_orbit(20.0, 5.0, image_size=96)
    dense = render_dense(m, z, cam)
    g = proxy_grid(m, z, 48)
    prior = render_with_prior(m, z, cam, steps=3, grid=g)
    plain = m.render(z, cam, steps=3)
    agree = (prior.labels == dense.labels).float().mean().item()
    plain_agree = (plain.labels == dense.labels).float().mean().item()
    assert agree >= 0.95, agree
    assert agree > plain_agree + 0.02, (agree, plain_agree)  # the prior is what makes 3 steps enough
    assert prior.savings > 2.5  # 11 evaluations per ray -> 4


# ------------------------------------------------------------------------------------ one marcher
def test_every_renderer_marches_through_march_rays(fitted, monkeypatch):
    """render, adaptive rendering, the depth prior and render_rays all go through the one marcher,
    ``SemanticOccupancyField.march_rays`` (issue 19 item 3), and give the frozen reference's results."""
    from benchmarks.reference.sof import reference_sof
    from benchmarks.reference.sof import render_adaptive as ref_adaptive

    m, z = fitted
    ref = reference_sof(m)
    cam = Camera.from_orbit(20.0, 5.0, image_size=24)
    calls = []
    original = type(m).march_rays

    def spy(self, *args, **kwargs):
        calls.append(kwargs.get("march_misses", False))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(type(m), "march_rays", spy)
    dense = m.render(z, cam, chunk=50)
    assert calls == [False]
    ref_dense = ref.render(z, cam)
    torch.testing.assert_close(dense.logits, ref_dense.logits, rtol=0, atol=1e-5)
    torch.testing.assert_close(dense.points, ref_dense.points, rtol=0, atol=1e-5)
    assert torch.equal(dense.mask, ref_dense.mask)

    calls.clear()
    ad = render_adaptive(m, z, cam, coarse_factor=4)
    assert len(calls) >= 2  # the coarse render and the refinements
    r_logits, r_labels, r_depth, r_mask, r_points, r_marched = ref_adaptive(ref, z, cam, coarse_factor=4)
    torch.testing.assert_close(ad.logits, r_logits, rtol=0, atol=1e-5)
    torch.testing.assert_close(ad.depth, r_depth, rtol=0, atol=1e-5)
    assert ad.evaluations.marched_rays == r_marched

    calls.clear()
    prior = depth_prior(m, z, cam, resolution=16)
    pr = m.render(z, cam, steps=2, start_depth=prior)
    assert calls == [False]
    torch.testing.assert_close(pr.logits, ref.render(z, cam, steps=2, start_depth=prior).logits, rtol=0, atol=1e-5)

    calls.clear()
    rays = cam.rays()
    rr = render_rays(m, z, rays.origins.reshape(-1, 3), rays.directions.reshape(-1, 3), chunk=33)
    assert calls == [False]
    torch.testing.assert_close(rr.logits[0], ref_dense.logits.permute(0, 2, 3, 1).reshape(-1, 20), rtol=0, atol=1e-5)

    calls.clear()
    o, d = rays.origins.reshape(1, -1, 3), rays.directions.reshape(1, -1, 3)
    logits, points, hit = m.forward_rays(z, o, d)
    assert calls == [True]  # training marches every ray, the misses too
    r_logits, r_points, r_hit = ref.forward_rays(z, o, d)
    torch.testing.assert_close(logits, r_logits, rtol=0, atol=1e-5)
    torch.testing.assert_close(points, r_points, rtol=0, atol=1e-5)


def test_march_rays_chunks_and_batches_agree_and_check_inputs(fitted):
    from sofgan_lab.cameras import RayBundle
    from sofgan_lab.geometry import RayRender, rays_as_bundle

    m, z = fitted
    zz = torch.cat([z, z * 0.5])
    rays = Camera.from_orbit([0.0, 30.0], 0.0, image_size=(6, 5)).rays()
    with torch.no_grad():
        whole = m.march_rays(zz, rays, chunk=None, march_misses=True)
        chunked = m.march_rays(zz, rays, chunk=7, march_misses=True)
        hits_only = m.march_rays(zz, rays, chunk=4)
    assert isinstance(whole, RayRender) and whole.logits.shape == (2, 30, 20) and whole.hit.shape == (2, 30)
    torch.testing.assert_close(whole.logits, chunked.logits, rtol=0, atol=1e-5)
    torch.testing.assert_close(whole.points, chunked.points, rtol=0, atol=1e-5)
    h = hits_only.hit
    assert h.any() and not h.all(), "the views should show rays that miss the sphere"
    torch.testing.assert_close(hits_only.logits[h], whole.logits[h], rtol=0, atol=1e-5)
    # a miss that is not marched keeps its start on the sphere, and has the miss logits
    start, _ = m.start_on_sphere(rays.origins.reshape(2, -1, 3), rays.directions.reshape(2, -1, 3))
    assert torch.equal(hits_only.points[~h], start[~h])
    assert torch.equal(hits_only.logits[~h], whole.logits[~h])
    with pytest.raises(TypeError, match="rays"):
        m.march_rays(zz, rays.origins)
    with pytest.raises(ValueError, match="rays"):
        m.march_rays(torch.cat([zz, zz, zz]), rays)
    with pytest.raises(ValueError, match="chunk"):
        m.march_rays(zz, rays, chunk=0)
    with pytest.raises(ValueError, match="start"):
        m.march_rays(zz, rays, start=torch.zeros(2, 5, 6, 3))
    with pytest.raises(ValueError, match="origins"):
        rays_as_bundle(torch.zeros(4, 3), torch.zeros(4, 3))
    assert isinstance(rays_as_bundle(torch.zeros(2, 4, 3), torch.ones(2, 4, 3)), RayBundle)


def test_render_runs_under_bfloat16_autocast(fitted):
    """The marcher writes each chunk into the float32 results, also when autocast computes it in
    bfloat16 (issue 21 measured that path; float32 stays the default)."""
    m, z = fitted
    cam = Camera.from_orbit(20.0, 5.0, image_size=24)
    dense = m.render(z, cam)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = m.render(z, cam)
    assert low.logits.dtype == torch.float32 and low.points.dtype == torch.float32
    # (the camera's rays are bfloat16 products too: a few rays at the sphere's rim may flip)
    assert (low.mask == dense.mask).float().mean() >= 0.98
    assert (low.labels == dense.labels).float().mean() >= 0.9


# ------------------------------------------------------------------ issue 20: arguments
def test_render_rays_and_renderers_check_their_arguments():
    m = plane_model(0.0)
    o = torch.tensor([[0.0, 0.0, 3.0]])
    d = torch.tensor([[0.0, 0.0, -1.0]])
    with pytest.raises(ValueError, match="start: contains NaN or infinite values"):  # was: a NaN label
        render_rays(m, Z, o, d, start=torch.full((1, 3), float("nan")))
    with pytest.raises(ValueError, match="origins: contains NaN"):
        render_rays(m, Z, torch.full((1, 3), float("inf")), d)
    with pytest.raises(TypeError, match="directions: expected real coordinates"):
        render_rays(m, Z, o, d.bool())
    with pytest.raises(ValueError, match="steps"):
        render_rays(m, Z, o, d, steps=1001)
    with pytest.raises(TypeError, match="chunk"):
        render_rays(m, Z, o, d, chunk=True)
    cam = Camera.from_orbit(0.0, 0.0, image_size=8)
    for fn in (render_dense, render_adaptive, render_with_prior):
        with pytest.raises(ValueError, match="pixel_offset"):
            fn(m, Z, cam, pixel_offset=float("nan"))
    assert torch.isfinite(render_rays(m, Z, o, d, steps=np.int64(1)).logits).all()
