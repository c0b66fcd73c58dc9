"""Tests for sofgan_lab.cameras: conventions, exact geometry, official parity, view paths, errors."""
from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from sofgan_lab import cameras as C
from sofgan_lab.cameras import (
    Camera,
    RayBundle,
    intrinsics_from_fov,
    look_at,
    opencv_to_opengl,
    opengl_to_opencv,
    ortho_intrinsics,
    random_views,
    sphere_grid,
    spiral,
    uniform_heights,
    yaw_sweep,
)

# The official-format fixtures live in shared/ beside the checkout (SOFGAN_LAB_SHARED overrides).
SHARED = Path(os.environ.get("SOFGAN_LAB_SHARED", Path(__file__).resolve().parents[2] / "shared"))
FIXTURES = SHARED / "fixtures" / "official"
# Skipped where the folder is absent, except in CI, where a missing fixture fails loudly.
needs_fixtures = pytest.mark.skipif(not FIXTURES.is_dir() and not os.environ.get("CI"),
                                    reason=f"official fixtures not found at {FIXTURES}")
TARGET = torch.tensor([0.0, 0.1, 0.0])
SETTINGS = settings(max_examples=60, deadline=None)


def assert_close(actual, expected, atol, what=""):
    actual = torch.as_tensor(actual, dtype=torch.float64)
    expected = torch.as_tensor(expected, dtype=torch.float64)
    assert actual.shape == expected.shape, f"{what}: shape {tuple(actual.shape)} != {tuple(expected.shape)}"
    diff = (actual - expected).abs().max().item() if actual.numel() else 0.0
    assert diff <= atol, f"{what}: max abs diff {diff:.3g} > {atol:.3g}"


# ------------------------------------------------------------------------------------------
# strategies
# ------------------------------------------------------------------------------------------

coord = st.floats(-5.0, 5.0, allow_nan=False, allow_infinity=False)
vec3 = st.tuples(coord, coord, coord)
yaws = st.floats(-170.0, 170.0, allow_nan=False)
pitches = st.floats(-80.0, 80.0, allow_nan=False)
radii = st.floats(0.5, 10.0, allow_nan=False)
sizes = st.one_of(st.integers(1, 96), st.tuples(st.integers(1, 96), st.integers(1, 96)))


@st.composite
def cameras(draw, orthographic=None):
    ortho = draw(st.booleans()) if orthographic is None else orthographic
    b = draw(st.integers(1, 3))
    yaw = [draw(yaws) for _ in range(b)]
    pitch = [draw(pitches) for _ in range(b)]
    radius = [draw(radii) for _ in range(b)]
    target = draw(vec3)
    size = draw(sizes)
    if ortho:
        ppu = [draw(st.floats(2.0, 200.0)) for _ in range(b)]
        return Camera.from_orbit(yaw, pitch, radius, target=target, image_size=size, pixels_per_unit=ppu)
    fov = [draw(st.floats(5.0, 120.0)) for _ in range(b)]
    return Camera.from_orbit(yaw, pitch, radius, target=target, image_size=size, fov=fov)


def _front_points(cam: Camera, seed: int, n: int = 32) -> torch.Tensor:
    """(B, N, 3) world points in front of each camera (camera z in [0.2, 20])."""
    g = torch.Generator().manual_seed(seed)
    xy = (torch.rand(cam.batch_size, n, 2, generator=g) - 0.5) * 10
    z = 0.2 + torch.rand(cam.batch_size, n, generator=g) * 19.8
    pc = torch.cat([xy, z.unsqueeze(-1)], -1)
    return pc @ cam.rotation.transpose(-1, -2) + cam.position.unsqueeze(1)


# ------------------------------------------------------------------------------------------
# look_at and conventions
# ------------------------------------------------------------------------------------------


@SETTINGS
@given(eye=vec3, target=vec3)
def test_look_at_rotation_orthonormal_det_one(eye, target):
    e, t = torch.tensor(eye), torch.tensor(target)
    assume((e - t).norm() > 1e-2)
    d = (t - e) / (t - e).norm()
    assume(math.hypot(d[0].item(), d[2].item()) > 1e-2)  # not parallel to up
    c2w = look_at(e, t)
    assert c2w.shape == (1, 4, 4) and c2w.dtype == torch.float32
    r = c2w[0, :3, :3].double()
    assert_close(r.T @ r, torch.eye(3), 1e-5, "R^T R")
    assert_close(torch.linalg.det(r), torch.tensor(1.0), 1e-5, "det R")
    assert_close(c2w[0, 3], [0, 0, 0, 1], 0, "bottom row")
    assert_close(c2w[0, :3, 3], e, 0, "translation")
    # forward points at the target; camera "up" (-y column) has a non-negative world-y part
    assert_close(c2w[0, :3, 2], d, 1e-5, "forward")
    assert -c2w[0, 1, 1] >= -1e-6
    # right is horizontal (no roll) for world up +y
    assert abs(c2w[0, 1, 0].item()) < 1e-5


def test_look_at_batched_and_sequences():
    eyes = torch.tensor([[0.0, 0.1, 4.5], [1.0, 2.0, 3.0], [-3.0, 0.0, -1.0]])
    c2w = look_at(eyes, (0, 0.1, 0), (0, 1, 0))
    assert c2w.shape == (3, 4, 4)
    for i in range(3):
        assert_close(c2w[i], look_at(eyes[i].tolist())[0], 1e-6, f"row {i}")
    assert look_at(eyes.double()).dtype == torch.float64


@needs_fixtures
@pytest.mark.parametrize("case", ["ortho", "persp"])
def test_look_at_matches_official_fixture(case):
    load_file = pytest.importorskip("safetensors.torch").load_file
    d = load_file(str(FIXTURES / f"sof_case_{case}.safetensors"))
    eye = {"ortho": (0.0, 0.1, 4.5), "persp": (-2.0, 0.8, 3.6)}[case]
    assert_close(look_at(eye, (0.0, 0.1, 0.0))[0], d["cam2world"], 1e-6, "cam2world")


@needs_fixtures
def test_official_ortho_camera_from_orbit_defaults():
    load_file = pytest.importorskip("safetensors.torch").load_file
    d = load_file(str(FIXTURES / "sof_case_ortho.safetensors"))
    cam = Camera.from_orbit(image_size=32)  # yaw 0, pitch 0, radius 4.5, orthographic, 36 px/unit @128
    assert cam.orthographic
    assert_close(cam.cam2world[0], d["cam2world"], 1e-6, "cam2world")
    assert_close(cam.intrinsics[0], d["intrinsics"], 0, "intrinsics f=9 c=16")
    assert_close(Camera.from_orbit().intrinsics[0], [[36, 0, 64], [0, 36, 64], [0, 0, 1]], 0, "128 px")


def _official_camera(d) -> Camera:
    h, w = (int(v) for v in d["resolution"])
    return Camera(
        cam2world=d["cam2world"],
        intrinsics=d["intrinsics"],
        image_size=(h, w),
        orthographic=bool(d["orthographic"].item()),
    )


def _sphere_snap(p, d, radius=1.5):
    """The official start-point rule (fixture README step 4), with zero sphere jitter."""
    v = -p
    length = v.norm(dim=-1, keepdim=True)
    cos = ((v / length) * d).sum(-1, keepdim=True)
    sin = torch.sqrt(1 - cos**2 + 1e-6)
    ls, lc = sin * length, cos * length
    p = p + lc * d
    inside = ls < radius
    return torch.where(inside, p - d * torch.sqrt((radius**2 - ls**2).clamp(min=0) + 1e-6), p)


@needs_fixtures
@pytest.mark.parametrize("case", ["ortho", "persp"])
@pytest.mark.parametrize("jitter", ["zero_jitter", "seeded_jitter"])
def test_rays_pixel_offset_zero_match_official_start_points(case, jitter):
    load_file = pytest.importorskip("safetensors.torch").load_file
    d = load_file(str(FIXTURES / f"sof_case_{case}.safetensors"))
    cam = _official_camera(d)
    # the fixture's uv are integer pixel indices, row n = i*W + j holds (x=j, y=i)
    grid = cam.pixel_grid(pixel_offset=0.0)
    assert_close(grid.reshape(-1, 2), d["uv"], 0, "uv")
    rays = cam.rays(pixel_offset=0.0)
    assert rays.pixel_offset == 0.0
    o, dirs = rays.origins[0].double(), rays.directions[0].double()
    if jitter == "zero_jitter":
        delta = torch.full(o.shape[:-1], 0.05, dtype=torch.float64)
        eps = torch.zeros_like(delta)
    else:
        delta = d["seeded_jitter.init_depth_noise"].double()
        eps = d["seeded_jitter.sphere_jitter"].double()
    # official start point at camera z-depth delta, expressed with our rays
    if cam.orthographic:
        start = o + delta.unsqueeze(-1) * dirs
    else:
        fwd = cam.forward[0].double()
        start = o + (delta / (dirs @ fwd)).unsqueeze(-1) * dirs
    p_init = _sphere_snap(start, dirs) + eps.unsqueeze(-1) * dirs
    assert_close(p_init, d[f"{jitter}.points_init"], 1e-4, f"{case} {jitter} points_init")


@needs_fixtures
@pytest.mark.parametrize("case", ["ortho", "persp"])
def test_official_march_stays_on_our_rays_and_depth_matches_project(case):
    load_file = pytest.importorskip("safetensors.torch").load_file
    d = load_file(str(FIXTURES / f"sof_case_{case}.safetensors"))
    cam = _official_camera(d)
    rays = cam.rays(pixel_offset=0.0)
    o, dirs = rays.origins[0].double(), rays.directions[0].double()
    steps = d["zero_jitter.points_steps"].double()  # (11, H, W, 3)
    rel = steps - o
    off_line = rel - (rel * dirs).sum(-1, keepdim=True) * dirs
    assert off_line.norm(dim=-1).max() < 1e-4, "marched points leave our rays"
    # depth = camera-space z of the final point, and it projects back to its pixel
    final = d["zero_jitter.points_final"].reshape(-1, 3)
    uv, depth = cam.project(final)
    assert_close(depth[0].reshape(32, 32), d["zero_jitter.depth"], 1e-4, "depth")
    assert_close(uv[0], d["uv"], 2e-3, "uv of final points")


def test_opengl_opencv_round_trip_and_semantics():
    c2w = look_at(torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.1, 4.5]]))
    gl = opencv_to_opengl(c2w)
    assert_close(opengl_to_opencv(gl), c2w, 0, "round trip")
    assert_close(opencv_to_opengl(opencv_to_opengl(c2w)), c2w, 0, "involution")
    # OpenGL: camera looks down -z, +y is up
    assert_close(-gl[:, :3, 2], c2w[:, :3, 2], 0, "-z_gl is forward")
    assert_close(gl[:, :3, 1], -c2w[:, :3, 1], 0, "y_gl is up")
    assert_close(gl[:, :3, 3], c2w[:, :3, 3], 0, "position kept")
    assert_close(opencv_to_opengl(c2w[0]), gl[0], 0, "unbatched")


def test_frontal_camera_sits_on_plus_z_and_image_axes():
    cam = Camera.from_orbit(0.0, 0.0, 4.5)
    assert_close(cam.position, [[0.0, 0.1, 4.5]], 1e-6, "position")
    assert_close(cam.forward, [[0.0, 0.0, -1.0]], 1e-6, "forward")
    assert_close(cam.right, [[1.0, 0.0, 0.0]], 1e-6, "image right = world +x (subject's left)")
    assert_close(cam.up, [[0.0, 1.0, 0.0]], 1e-6, "image up = world +y")


@pytest.mark.parametrize("yaw", [5.0, 30.0, 90.0, 120.0])
def test_positive_yaw_moves_camera_to_plus_x_and_pitch_raises(yaw):
    cam = Camera.from_orbit(yaw, 0.0)
    assert cam.position[0, 0] > 0
    assert_close(cam.position[0], [4.5 * math.sin(math.radians(yaw)), 0.1, 4.5 * math.cos(math.radians(yaw))], 1e-5, "eye")
    up = Camera.from_orbit(0.0, 10.0)
    assert up.position[0, 1] > 0.1 and up.forward[0, 1] < 0, "positive pitch looks down"
    assert_close(up.position[0], [0.0, 0.1 + 4.5 * math.sin(math.radians(10)), 4.5 * math.cos(math.radians(10))], 1e-5, "eye")


# ------------------------------------------------------------------------------------------
# Camera container
# ------------------------------------------------------------------------------------------


def test_camera_properties_and_broadcast_intrinsics():
    c2w = look_at(torch.tensor([[0.0, 0.1, 4.5], [1.0, 1.0, 4.0]]))
    k = intrinsics_from_fov(30.0, (24, 40))
    cam = Camera(cam2world=c2w, intrinsics=k, image_size=(24, 40))
    assert cam.batch_size == len(cam) == 2
    assert (cam.height, cam.width, cam.image_size) == (24, 40, (24, 40))
    assert cam.intrinsics.shape == (2, 3, 3) and cam.dtype == torch.float32
    assert cam.device == torch.device("cpu")
    assert cam.position.shape == (2, 3) and cam.forward.shape == (2, 3)
    assert_close(cam.world2cam @ cam.cam2world, torch.eye(4).expand(2, 4, 4), 1e-6, "w2c c2w")
    assert_close(cam.world2cam, torch.linalg.inv(cam.cam2world), 1e-5, "rigid inverse")
    fy = 12 / math.tan(math.radians(15))
    assert_close(k, [[fy, 0, 20], [0, fy, 12], [0, 0, 1]], 1e-4, "K from fov")
    assert_close(ortho_intrinsics(9.0, 32), [[9, 0, 16], [0, 9, 16], [0, 0, 1]], 0, "ortho K")
    assert intrinsics_from_fov([20.0, 30.0], 16).shape == (2, 3, 3)
    assert "batch_size=2" in repr(cam)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cam.orthographic = True  # type: ignore[misc]
    single = Camera(cam2world=c2w[0], intrinsics=k, image_size=8)
    assert single.batch_size == 1 and single.image_size == (8, 8)


def test_camera_indexing_to_and_cat():
    cam = yaw_sweep(5, fov=20.0, image_size=16)
    one = cam[2]
    assert isinstance(one, Camera) and len(one) == 1
    assert_close(one.cam2world, cam.cam2world[2:3], 0, "int index")
    assert_close(cam[-1].cam2world, cam.cam2world[4:5], 0, "negative index")
    assert len(cam[1:4]) == 3
    assert_close(cam[torch.tensor([4, 0])].position, cam.position[[4, 0]], 0, "tensor index")
    assert_close(cam[[1, 3]].position, cam.position[[1, 3]], 0, "list index")
    mask = torch.tensor([True, False, True, False, False])
    assert len(cam[mask]) == 2
    with pytest.raises(IndexError, match="idx"):
        cam[5]
    with pytest.raises(IndexError, match="idx"):
        cam[5:]
    c64 = cam.to(dtype=torch.float64)
    assert c64.dtype == torch.float64 and c64.intrinsics.dtype == torch.float64
    both = Camera.cat([cam, cam[0], c64])
    assert len(both) == 11 and both.dtype == torch.float32
    assert_close(both.cam2world[5], cam.cam2world[0], 0, "cat order")


def test_default_dtype_and_float64_option():
    assert Camera.from_orbit().dtype == torch.float32
    assert Camera.from_orbit(dtype=torch.float64).rays().directions.dtype == torch.float64
    assert yaw_sweep(3, dtype=torch.float64).dtype == torch.float64


# ------------------------------------------------------------------------------------------
# projection
# ------------------------------------------------------------------------------------------


@SETTINGS
@given(cam=cameras(), seed=st.integers(0, 2**31 - 1))
def test_project_unproject_round_trip(cam, seed):
    pts = _front_points(cam, seed)
    uv, depth = cam.project(pts)
    assert uv.shape == (cam.batch_size, 32, 2) and depth.shape == (cam.batch_size, 32)
    back = cam.unproject(uv, depth)
    assert_close(back, pts, 1e-4 * (1 + pts.abs().max().item()), "unproject(project(p))")
    uv2, depth2 = cam.project(back)
    assert_close(depth2, depth, 1e-4, "depth")
    assert_close(uv2, uv, 1e-3 * (1 + uv.abs().max().item()), "uv")


@SETTINGS
@given(cam=cameras())
def test_target_projects_to_principal_point_and_forward_points_at_target(cam):
    # cameras() look at `target`; recover it from position + radius along forward via projection
    pts = cam.position + cam.forward * 3.0
    uv, depth = cam.project(pts.unsqueeze(1))
    assert_close(uv[:, 0], cam.principal_point, 1e-3, "point on the axis -> principal point")
    assert_close(depth[:, 0], torch.full((cam.batch_size,), 3.0), 1e-4, "depth along the axis")


@SETTINGS
@given(eye=vec3, fov=st.floats(5.0, 120.0), size=sizes)
def test_look_at_target_projects_to_principal_point(eye, fov, size):
    e = torch.tensor(eye)
    assume((e - TARGET).norm() > 0.05)
    d = (TARGET - e) / (TARGET - e).norm()
    assume(math.hypot(d[0].item(), d[2].item()) > 1e-2)
    for ortho in (False, True):
        k = ortho_intrinsics(10.0, size) if ortho else intrinsics_from_fov(fov, size)
        cam = Camera.from_look_at(e, intrinsics=k, image_size=size, orthographic=ortho)
        uv, depth = cam.project(TARGET.unsqueeze(0))
        assert_close(uv[0, 0], cam.principal_point[0], 1e-3 * (1 + cam.focal.max().item() / 100), "target uv")
        assert_close(depth[0, 0], (TARGET - e).norm(), 1e-4 * (1 + (TARGET - e).norm().item()), "target depth")


def test_project_shared_points_and_known_values():
    cam = Camera.from_orbit(fov=90.0, image_size=(20, 40))  # fy = fx = 10, cx = 20, cy = 10
    # a point 1 unit to the camera's right and 1 unit up at distance 4.5 in front
    p = torch.tensor([[1.0, 1.1, 0.0]])
    uv, depth = cam.project(p)
    assert_close(uv, [[[20 + 10 / 4.5, 10 - 10 / 4.5]]], 1e-4, "perspective uv")
    assert_close(depth, [[4.5]], 1e-5, "depth")
    ortho = Camera.from_orbit(image_size=128)
    uv, depth = ortho.project(p)
    assert_close(uv, [[[64 + 36, 64 - 36]]], 1e-4, "orthographic uv")


# ------------------------------------------------------------------------------------------
# rays
# ------------------------------------------------------------------------------------------


@SETTINGS
@given(cam=cameras(), offset=st.sampled_from([0.0, 0.5, 0.25]))
def test_rays_unit_length_shapes_and_consistent_with_project(cam, offset):
    rays = cam.rays(pixel_offset=offset)
    assert isinstance(rays, RayBundle)
    b, (h, w) = cam.batch_size, cam.image_size
    assert rays.origins.shape == rays.directions.shape == (b, h, w, 3)
    assert rays.image_size == (h, w) and rays.batch_size == b
    assert_close(rays.directions.norm(dim=-1), torch.ones(b, h, w), 1e-5, "|d|")
    # a point along each ray projects back onto its pixel sample
    pts = rays.at(torch.full((b, h, w), 2.0)).reshape(b, -1, 3)
    uv, depth = cam.project(pts)
    grid = cam.pixel_grid(offset).reshape(1, -1, 2).expand(b, -1, -1)
    assert_close(uv, grid, 2e-3 * (1 + max(h, w) / 32), "project(ray point) = pixel")
    assert (depth > 0).all()


@pytest.mark.parametrize("yaw,pitch", [(0.0, 0.0), (25.0, -8.0), (-40.0, 12.0)])
def test_centre_pixel_ray_passes_through_target(yaw, pitch):
    target = (0.2, 0.1, -0.3)
    for size, offset, centre in [(33, 0.5, 16), (32, 0.0, 16)]:
        cam = Camera.from_orbit(yaw, pitch, 3.0, fov=25.0, target=target, image_size=size)
        rays = cam.rays(pixel_offset=offset)
        o, d = rays.origins[0, centre, centre], rays.directions[0, centre, centre]
        rel = torch.tensor(target) - o
        miss = rel - (rel @ d) * d
        assert miss.norm() < 1e-5, f"size {size}: ray misses the target by {miss.norm():.3g}"
        assert_close(rel @ d, 3.0, 1e-5, "distance along ray")


@pytest.mark.parametrize("ppu", [9.0, 36.0, 50.0])
def test_orthographic_rays_parallel_and_grid_spacing(ppu):
    cam = Camera.from_orbit(20.0, 7.0, image_size=(12, 16), pixels_per_unit=ppu)
    rays = cam.rays()
    fwd = cam.forward[0]
    assert_close(rays.directions[0], fwd.expand(12, 16, 3), 1e-6, "parallel to forward")
    o = rays.origins[0]
    assert_close((o[:, 1:] - o[:, :-1]), (cam.right[0] / ppu).expand(12, 15, 3), 1e-6, "column spacing")
    assert_close((o[1:] - o[:-1]), (-cam.up[0] / ppu).expand(11, 16, 3), 1e-6, "row spacing")
    assert_close((o - cam.position[0]) @ fwd, torch.zeros(12, 16), 1e-5, "origins on the image plane")
    # the image centre (between the 4 central pixels) is the camera position
    centre = o[5:7, 7:9].reshape(-1, 3).mean(0)
    assert_close(centre, cam.position[0], 1e-5, "centred")


@SETTINGS
@given(
    a=st.floats(-60.0, 60.0),
    pitch=st.floats(-20.0, 20.0),
    size=st.tuples(st.integers(1, 24), st.integers(1, 24)),
    ortho=st.booleans(),
)
def test_mirror_symmetry_of_yaw(a, pitch, size, ortho):
    kw = dict(image_size=size, target=(0.0, 0.1, 0.0))
    if not ortho:
        kw["fov"] = 30.0
    plus = Camera.from_orbit(a, pitch, **kw).rays()
    minus = Camera.from_orbit(-a, pitch, **kw).rays()
    flip = torch.tensor([-1.0, 1.0, 1.0])
    mirrored_o = (plus.origins * flip).flip(2)
    mirrored_d = (plus.directions * flip).flip(2)
    assert_close(mirrored_o, minus.origins, 1e-5, "origins")
    assert_close(mirrored_d, minus.directions, 1e-5, "directions")


def test_pixel_offset_half_is_symmetric_and_zero_is_official_shift():
    cam = Camera.from_orbit(fov=40.0, image_size=8)
    d = cam.rays().directions[0]
    assert_close(d[:, :, 0], -d.flip(1)[:, :, 0], 1e-6, "left-right symmetric")
    d0 = cam.rays(pixel_offset=0.0).directions[0]
    # with offset 0, column 4 is exactly on the axis (x = cx = 4)
    assert_close(d0[4, 4], cam.forward[0], 1e-6, "official centre pixel")


@SETTINGS
@given(cam=cameras(), new=st.tuples(st.integers(1, 200), st.integers(1, 200)), seed=st.integers(0, 10**6))
def test_resized_keeps_projection_consistent(cam, new, seed):
    pts = _front_points(cam, seed, n=8)
    uv, depth = cam.project(pts)
    small = cam.resized(new)
    assert small.image_size == new and small.orthographic == cam.orthographic
    uv2, depth2 = small.project(pts)
    scale = torch.tensor([new[1] / cam.width, new[0] / cam.height])
    assert_close(uv2, uv * scale, 1e-3 * (1 + uv2.abs().max().item()), "scaled uv")
    assert_close(depth2, depth, 1e-6, "depth unchanged")
    # the image centre stays the image centre
    assert_close(small.principal_point, cam.principal_point * scale, 1e-4, "principal point")


# ------------------------------------------------------------------------------------------
# view paths
# ------------------------------------------------------------------------------------------

PATHS = {
    "yaw_sweep": lambda n, **kw: yaw_sweep(n, **kw),
    "spiral": lambda n, **kw: spiral(n, **kw),
    "uniform_heights": lambda n, **kw: uniform_heights(n, **kw),
    "random_views": lambda n, **kw: random_views(n, seed=3, **kw),
    "sphere_grid": lambda n, **kw: sphere_grid(n, 1, **kw),
}


@pytest.mark.parametrize("name", sorted(PATHS))
@pytest.mark.parametrize("n", [1, 2, 5, 8])
@pytest.mark.parametrize("persp", [False, True])
def test_view_paths_count_and_look_at_target(name, n, persp):
    target = (0.1, 0.2, -0.1)
    kw = dict(target=target, image_size=(16, 24), radius=3.0)
    if persp:
        kw["fov"] = 20.0
    cam = PATHS[name](n, **kw)
    assert isinstance(cam, Camera) and len(cam) == n and cam.orthographic != persp
    to_target = torch.tensor(target) - cam.position
    assert_close(to_target.norm(dim=-1), torch.full((n,), 3.0), 1e-5, "radius")
    assert_close(cam.forward, to_target / to_target.norm(dim=-1, keepdim=True), 1e-5, "forward")
    uv, _ = cam.project(torch.tensor([target]))
    assert_close(uv[:, 0], torch.tensor([12.0, 8.0]).expand(n, 2), 1e-3, "target at image centre")


def _yaw_pitch(cam: Camera, target=TARGET):
    v = cam.position - target
    yaw = torch.rad2deg(torch.atan2(v[:, 0], v[:, 2]))
    pitch = torch.rad2deg(torch.asin(v[:, 1] / v.norm(dim=-1)))
    return yaw, pitch


def test_yaw_sweep_values():
    yaw, pitch = _yaw_pitch(yaw_sweep(5, (-30, 30), pitch=4.0))
    assert_close(yaw, [-30, -15, 0, 15, 30], 1e-3, "yaw")
    assert_close(pitch, [4.0] * 5, 1e-3, "pitch")
    yaw, _ = _yaw_pitch(yaw_sweep(1, (-30, 10)))
    assert_close(yaw, [-10.0], 1e-3, "n=1 -> middle")


def test_spiral_values():
    yaw, pitch = _yaw_pitch(spiral(4, yaw_amplitude=30, pitch_amplitude=10))
    assert_close(yaw, [0, 30, 0, -30], 1e-3, "yaw")
    assert_close(pitch, [10, 0, -10, 0], 1e-3, "pitch")


def test_sphere_grid_row_major():
    cam = sphere_grid(3, 2, yaw_range=(-20, 20), pitch_range=(-5, 5))
    assert len(cam) == 6
    yaw, pitch = _yaw_pitch(cam)
    assert_close(yaw, [-20, 0, 20, -20, 0, 20], 1e-3, "yaw inner")
    assert_close(pitch, [-5, -5, -5, 5, 5, 5], 1e-3, "pitch outer")


def test_uniform_heights_levels():
    yaw, pitch = _yaw_pitch(uniform_heights(7, heights=(-10, 0, 10), yaw_range=(-30, 30)))
    assert_close(pitch, [-10, -10, 0, 0, 10, 10, 10], 1e-3, "levels")
    assert_close(yaw, [-30, 30, -30, 30, -30, 0, 30], 1e-3, "yaw per level")
    _, pitch = _yaw_pitch(uniform_heights(2, heights=(-10, 0, 10)))
    assert len(pitch) == 2


def test_random_views_deterministic_and_in_range():
    a, b = random_views(64, seed=7), random_views(64, seed=7)
    assert torch.equal(a.cam2world, b.cam2world) and torch.equal(a.intrinsics, b.intrinsics)
    c = random_views(64, seed=8)
    assert not torch.allclose(a.cam2world, c.cam2world)
    g = torch.Generator().manual_seed(7)
    assert torch.equal(random_views(64, generator=g).cam2world, a.cam2world)
    yaw, pitch = _yaw_pitch(a)
    assert yaw.min() >= -34.4 - 1e-3 and yaw.max() <= 34.4 + 1e-3
    assert pitch.min() >= -11.5 - 1e-3 and pitch.max() <= 11.5 + 1e-3
    assert yaw.max() - yaw.min() > 40 and pitch.max() - pitch.min() > 12, "not spread out"
    assert a.orthographic and a.intrinsics[0, 0, 0] == 36.0
    assert_close((a.position - TARGET).norm(dim=-1), torch.full((64,), 4.5), 1e-5, "release radius")


# ------------------------------------------------------------------------------------------
# zoom and named framings
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("zoom", [2, 0.5, 1.95, np.float64(3.0)])
def test_zoom_multiplies_the_orthographic_scale_only(zoom):
    base = Camera.from_orbit(20.0, 5.0, image_size=(48, 64))
    cam = Camera.from_orbit(20.0, 5.0, image_size=(48, 64), zoom=zoom)
    assert cam.orthographic and torch.equal(cam.cam2world, base.cam2world)
    assert_close(cam.focal, [[36.0 * 48 / 128 * float(zoom)] * 2], 1e-5, "fx, fy = zoom x 36 H / 128")
    assert torch.equal(cam.principal_point, base.principal_point)
    ppu = Camera.from_orbit(image_size=32, pixels_per_unit=10.0, zoom=zoom)
    assert_close(ppu.focal, [[10.0 * float(zoom)] * 2], 1e-5, "zoom x pixels_per_unit")
    # a point 0.5 units right of the target lands zoom times as far from the centre
    frontal = Camera.from_orbit(image_size=64, zoom=zoom)
    uv, _ = frontal.project(torch.tensor([[0.5, 0.1, 0.0]]))
    assert_close(uv[0, 0], [32.0 + 0.5 * 18.0 * float(zoom), 32.0], 1e-4, "projected offset")


def test_zoom_multiplies_the_perspective_focal_length():
    fov = torch.tensor([20.0, 40.0])
    base = Camera.from_orbit(torch.tensor([0.0, 10.0]), fov=fov, image_size=32)
    cam = Camera.from_orbit(torch.tensor([0.0, 10.0]), fov=fov, image_size=32, zoom=2.5)
    assert not cam.orthographic and torch.equal(cam.cam2world, base.cam2world)
    fy = 16.0 / torch.tan(torch.deg2rad(fov) / 2)                   # (H / 2) / tan(fov / 2)
    assert_close(cam.focal, torch.stack([2.5 * fy, 2.5 * fy], -1), 1e-4, "fx, fy")
    assert_close(cam.principal_point, [[16.0, 16.0]] * 2, 0, "centre")
    # a zoom of 2 is the field of view whose half-angle tangent is halved
    narrow = Camera.from_orbit(fov=math.degrees(2 * math.atan(math.tan(math.radians(15.0)) / 2)), image_size=32)
    assert_close(Camera.from_orbit(fov=30.0, image_size=32, zoom=2).intrinsics, narrow.intrinsics, 1e-4, "K")


@pytest.mark.parametrize("zoom", [0, -1, 0.0, float("nan"), float("inf"), True, "2", None])
def test_bad_zoom_is_refused(zoom):
    with pytest.raises(ValueError, match=r"^zoom: "):
        Camera.from_orbit(zoom=zoom)
    with pytest.raises(ValueError, match=r"^zoom: "):
        yaw_sweep(3, zoom=zoom)


def test_framings():
    assert set(C.FRAMINGS) == {"official", "portrait"}
    assert C.framing("official") == {"target": C.DEFAULT_TARGET, "zoom": 1.0}
    assert C.framing("portrait") == {"target": C.PORTRAIT_TARGET, "zoom": C.PORTRAIT_ZOOM}
    f = C.framing("portrait")
    assert isinstance(f["target"], tuple) and isinstance(f["zoom"], float)
    f["zoom"] = 5.0                                                  # a copy: the table is unchanged
    assert C.framing("portrait")["zoom"] == C.PORTRAIT_ZOOM
    # the official framing is from_orbit's defaults exactly
    official = Camera.from_orbit(10.0, -3.0, **C.framing("official"))
    default = Camera.from_orbit(10.0, -3.0)
    assert torch.equal(official.cam2world, default.cam2world) and torch.equal(official.intrinsics, default.intrinsics)
    # the image spans H / fy world units: 128 / 36 = 3.56 (official), 128 / (36 x 1.95) = 1.82 (portrait)
    portrait = Camera.from_orbit(image_size=128, **C.framing("portrait"))
    assert 128 / float(default.focal[0, 1]) == pytest.approx(3.556, abs=1e-3)
    assert 128 / float(portrait.focal[0, 1]) == pytest.approx(1.82, abs=5e-3)
    uv, _ = portrait.project(torch.tensor([C.PORTRAIT_TARGET]))
    assert_close(uv[0, 0], [64.0, 64.0], 1e-4, "the portrait target is the image centre")
    assert C.TRAINED_YAW_RANGE == (-34.4, 34.4) and C.TRAINED_PITCH_RANGE == (-11.5, 11.5)
    for name in ("PORTRAIT_TARGET", "PORTRAIT_ZOOM", "TRAINED_YAW_RANGE", "TRAINED_PITCH_RANGE", "FRAMINGS",
                 "framing"):
        assert name in C.__all__


@pytest.mark.parametrize("name", ["close", "Portrait", "", None, 3, ("official",)])
def test_unknown_framing_is_refused(name):
    with pytest.raises(ValueError, match=r"^framing: "):
        C.framing(name)


@pytest.mark.parametrize("name", sorted(PATHS))
@pytest.mark.parametrize("persp", [False, True])
def test_view_paths_pass_zoom_and_target_through(name, persp):
    kw = dict(image_size=(16, 24), fov=20.0 if persp else None)
    base = PATHS[name](4, **kw)
    cam = PATHS[name](4, **kw, **C.framing("portrait"))
    assert len(cam) == 4
    assert_close(cam.focal, base.focal * C.PORTRAIT_ZOOM, 1e-4, "focal x zoom")
    assert torch.equal(cam.principal_point, base.principal_point)
    # the same poses around the new target: same rotations, positions moved by the target shift
    assert_close(cam.rotation, base.rotation, 1e-5, "rotation")
    shift = torch.tensor(C.PORTRAIT_TARGET) - TARGET
    assert_close(cam.position - base.position, shift.expand(4, 3), 1e-5, "position")
    uv, _ = cam.project(torch.tensor([C.PORTRAIT_TARGET]))
    assert_close(uv[:, 0], torch.tensor([12.0, 8.0]).expand(4, 2), 1e-3, "target at image centre")


def test_random_views_poses_do_not_depend_on_the_framing():
    a = random_views(32, seed=5)
    b = random_views(32, seed=5, **C.framing("portrait"))
    ya, pa = _yaw_pitch(a)
    yb, pb = _yaw_pitch(b, torch.tensor(C.PORTRAIT_TARGET))
    assert_close(yb, ya, 1e-3, "yaw")
    assert_close(pb, pa, 1e-3, "pitch")
    lo, hi = C.TRAINED_YAW_RANGE
    assert float(yb.min()) >= lo - 1e-3 and float(yb.max()) <= hi + 1e-3
    lo, hi = C.TRAINED_PITCH_RANGE
    assert float(pb.min()) >= lo - 1e-3 and float(pb.max()) <= hi + 1e-3


# ------------------------------------------------------------------------------------------
# errors: each names the argument
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call,arg",
    [
        (lambda: yaw_sweep(0), "n"),
        (lambda: spiral(0), "n"),
        (lambda: uniform_heights(-1), "n"),
        (lambda: random_views(0, seed=1), "n"),
        (lambda: sphere_grid(0, 3), "n_yaw"),
        (lambda: sphere_grid(3, 0), "n_pitch"),
        (lambda: Camera.from_orbit(image_size=0), "image_size"),
        (lambda: Camera.from_orbit(image_size=5000), "image_size"),
        (lambda: Camera.from_orbit(image_size=(32, 0)), "image_size"),
        (lambda: Camera.from_orbit(fov=0.0), "fov"),
        (lambda: Camera.from_orbit(fov=180.0), "fov"),
        (lambda: Camera.from_orbit(fov=30.0, pixels_per_unit=10.0), "pixels_per_unit"),
        (lambda: Camera.from_orbit(pixels_per_unit=-1.0), "pixels_per_unit"),
        (lambda: Camera.from_orbit(pitch=90.0), "pitch"),
        (lambda: Camera.from_orbit(radius=0.0), "radius"),
        (lambda: Camera.from_orbit(yaw=[0.0, 1.0], pitch=[0.0, 1.0, 2.0]), "yaw"),
        (lambda: look_at((0.0, 0.1, 0.0)), "eye"),
        (lambda: look_at((0.0, 5.0, 0.0)), "up"),
        (lambda: look_at((1.0, 1.0, 1.0), up=(0.0, 0.0, 0.0)), "up"),
        (lambda: look_at(torch.zeros(2, 4)), "eye"),
        (lambda: look_at(torch.ones(2, 3), target=torch.zeros(3, 3)), "target"),
        (lambda: random_views(3, seed=1, generator=torch.Generator()), "seed"),
        (lambda: Camera.cat([]), "cameras"),
        (lambda: Camera.cat([yaw_sweep(2, image_size=8), yaw_sweep(2, image_size=16)]), "cameras"),
        (lambda: yaw_sweep(2).resized(5000), "image_size"),
        (lambda: intrinsics_from_fov(30.0, 0), "image_size"),
    ],
)
def test_value_errors_name_the_argument(call, arg):
    with pytest.raises(ValueError, match=rf"\b{arg}\b"):
        call()


def _cam_kwargs(**over):
    kw = dict(cam2world=look_at((0.0, 0.1, 4.5)), intrinsics=ortho_intrinsics(9.0, 32), image_size=32)
    kw.update(over)
    return kw


@pytest.mark.parametrize(
    "over,arg,shape",
    [
        (dict(cam2world=torch.eye(4)[:3].expand(2, 3, 4)), "cam2world", "(2, 3, 4)"),
        (dict(cam2world=torch.eye(4).expand(2, 2, 4, 4)), "cam2world", "(2, 2, 4, 4)"),
        (dict(intrinsics=torch.eye(3)[:2]), "intrinsics", "(2, 3)"),
        (dict(intrinsics=torch.eye(3).expand(3, 3, 3)), "intrinsics", "(3, 3, 3)"),
    ],
)
def test_camera_bad_shapes_show_the_shape(over, arg, shape):
    with pytest.raises(ValueError, match=rf"\b{arg}\b") as info:
        Camera(**_cam_kwargs(**over))
    assert shape in str(info.value)


@pytest.mark.parametrize(
    "over,arg",
    [
        (dict(cam2world=np.eye(4, dtype=np.float32)), "cam2world"),
        (dict(cam2world=torch.eye(4).tolist()), "cam2world"),
        (dict(cam2world=torch.eye(4, dtype=torch.int64)), "cam2world"),
        (dict(intrinsics=np.eye(3)), "intrinsics"),
        (dict(image_size="32"), "image_size"),
        (dict(image_size=32.0), "image_size"),
        (dict(image_size=True), "image_size"),
        (dict(orthographic="yes"), "orthographic"),
    ],
)
def test_camera_bad_types(over, arg):
    with pytest.raises(TypeError, match=rf"\b{arg}\b"):
        Camera(**_cam_kwargs(**over))


@pytest.mark.parametrize(
    "over,arg",
    [
        (dict(image_size=0), "image_size"),
        (dict(image_size=5000), "image_size"),
        (dict(cam2world=torch.diag(torch.tensor([2.0, 1.0, 1.0, 1.0]))), "cam2world"),  # not rigid
        (dict(cam2world=torch.diag(torch.tensor([-1.0, 1.0, 1.0, 1.0]))), "cam2world"),  # det -1
        (dict(cam2world=torch.full((4, 4), float("nan"))), "cam2world"),
        (dict(intrinsics=torch.diag(torch.tensor([0.0, 1.0, 1.0]))), "intrinsics"),  # fx = 0
        (dict(intrinsics=torch.tensor([[9.0, 1.0, 16.0], [0.0, 9.0, 16.0], [0.0, 0.0, 1.0]])), "intrinsics"),
    ],
)
def test_camera_bad_values(over, arg):
    with pytest.raises(ValueError, match=rf"\b{arg}\b"):
        Camera(**_cam_kwargs(**over))


def test_camera_constructor_is_keyword_only():
    kw = _cam_kwargs()
    with pytest.raises(TypeError):
        Camera(kw["cam2world"], kw["intrinsics"], 32)  # type: ignore[misc]


def test_type_errors_name_the_argument():
    cam = Camera(**_cam_kwargs())
    with pytest.raises(TypeError, match=r"\beye\b"):
        look_at("front")
    with pytest.raises(TypeError, match=r"\bpoints\b"):
        cam.project([[0.0, 0.0, 0.0]])
    with pytest.raises(TypeError, match=r"\bdepth\b"):
        cam.unproject(torch.zeros(4, 2), [1.0] * 4)
    with pytest.raises(TypeError, match=r"\bc2w\b"):
        opencv_to_opengl(np.eye(4))
    with pytest.raises(TypeError, match=r"\bn\b"):
        yaw_sweep(2.5)
    with pytest.raises(TypeError, match=r"\bgenerator\b"):
        random_views(2, generator=123)
    with pytest.raises(TypeError, match=r"\bcameras\b"):
        Camera.cat(cam)
    with pytest.raises(TypeError, match=r"\byaw\b"):
        Camera.from_orbit(yaw="left")


def test_projection_shape_errors_show_the_shape():
    cam = yaw_sweep(2, image_size=8)
    with pytest.raises(ValueError, match=r"\bpoints\b.*\(2, 5, 2\)"):
        cam.project(torch.zeros(2, 5, 2))
    with pytest.raises(ValueError, match=r"\bpoints\b.*\(3, 5, 3\)"):
        cam.project(torch.zeros(3, 5, 3))
    with pytest.raises(ValueError, match=r"\bdepth\b.*\(2, 4\)"):
        cam.unproject(torch.zeros(2, 5, 2), torch.ones(2, 4))
    with pytest.raises(ValueError, match=r"\buv\b"):
        cam.unproject(torch.zeros(5, 3), torch.ones(5))
    with pytest.raises(ValueError, match=r"\bc2w\b.*\(3, 3\)"):
        opencv_to_opengl(torch.eye(3))


def test_module_exports():
    for name in C.__all__:
        assert hasattr(C, name), name
    for name in ["Camera", "RayBundle", "look_at", "yaw_sweep", "spiral", "sphere_grid",
                 "uniform_heights", "random_views", "intrinsics_from_fov", "ortho_intrinsics",
                 "opencv_to_opengl", "opengl_to_opencv"]:
        assert name in C.__all__


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_device_follows_inputs_cuda():
    cam = Camera.from_orbit(torch.tensor([0.0, 10.0], device="cuda"), fov=30.0, image_size=16)
    assert cam.device.type == "cuda"
    rays = cam.rays()
    assert rays.origins.device.type == "cuda"
    uv, depth = cam.project(torch.zeros(3, 3, device="cuda"))
    assert uv.device.type == "cuda"
    assert yaw_sweep(3, target=torch.tensor([0.0, 0.1, 0.0], device="cuda")).device.type == "cuda"
    cpu = cam.to("cpu")
    assert_close(cpu.rays().directions, rays.directions.cpu(), 1e-5, "cpu vs cuda rays")


def test_framing_name_names_the_named_framings_only():
    from sofgan_lab.cameras import PORTRAIT_TARGET, PORTRAIT_ZOOM, framing_name

    assert framing_name(PORTRAIT_TARGET, PORTRAIT_ZOOM) == "portrait"
    assert framing_name([0.0, 0.1, 0.0], 1) == "official"
    assert framing_name(PORTRAIT_TARGET, 1.0) is None
    assert framing_name((0.0, 0.2, 0.0), PORTRAIT_ZOOM) is None


@pytest.mark.parametrize("bad, exc", [(math.nan, ValueError), (math.inf, ValueError), (-0.5, ValueError),
                                      (1.5, ValueError), ("0.5", TypeError), (True, TypeError)])
def test_pixel_offset_must_be_a_finite_number_in_0_1(bad, exc):
    """Before: ``pixel_offset=nan`` gave NaN rays, which every renderer turned into all background."""
    cam = Camera.from_orbit(0.0, 0.0, image_size=4)
    with pytest.raises(exc, match="pixel_offset"):
        cam.rays(pixel_offset=bad)
    assert torch.equal(cam.rays(pixel_offset=np.float32(0.25)).origins, cam.rays(pixel_offset=0.25).origins)
