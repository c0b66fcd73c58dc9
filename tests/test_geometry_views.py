"""Depth and normal views of a SOF rendering (``sofgan_lab.geometry.views``), on surfaces whose
answer is known, and through ``Portrait.depth_image`` / ``normal_image``."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from sofgan_lab.cameras import Camera
from sofgan_lab.geometry.views import FAR_GREY, depth_image, normal_image, surface_normals


def _plane(camera: Camera, slope_x: float = 0.0, n: int = 16, dist: float = 4.0) -> torch.Tensor:
    """World points of a plane seen by ``camera``: camera-frame z = dist + slope_x * x on an n x n grid
    (x to the image right, y down the rows)."""
    s = torch.linspace(-0.5, 0.5, n, dtype=torch.float64)
    y, x = torch.meshgrid(s, s, indexing="ij")
    right, up, fwd, pos = (v[0].double() for v in (camera.right, camera.up, camera.forward, camera.position))
    z = dist + slope_x * x
    return pos + x[..., None] * right - y[..., None] * up + z[..., None] * fwd


@pytest.fixture(scope="module")
def cam() -> Camera:
    return Camera.from_orbit(25.0, 10.0, image_size=16)


def test_a_plane_facing_the_camera_has_the_normal_toward_the_viewer(cam):
    labels = np.ones((16, 16), np.int64)
    n = surface_normals(_plane(cam), labels, cam)
    np.testing.assert_allclose(n.reshape(-1, 3), np.tile([0.0, 0.0, 1.0], (256, 1)), atol=1e-5)
    rgb = normal_image(_plane(cam), labels, cam)
    assert np.abs(rgb.reshape(-1, 3).astype(int) - [128, 128, 255]).max() <= 1  # (n + 1) / 2 of (0, 0, 1)


@pytest.mark.parametrize("k", [0.5, -1.0])
def test_a_plane_receding_to_the_right_turns_its_normal_right(cam, k):
    labels = np.ones((16, 16), np.int64)
    labels[:, :3] = 0                                        # background: black, no normal
    n = surface_normals(_plane(cam, slope_x=k), labels, cam)
    want = np.array([k, 0.0, 1.0]) / np.hypot(k, 1.0)
    np.testing.assert_allclose(n[labels == 1], np.tile(want, (int((labels == 1).sum()), 1)), atol=1e-5)
    assert (n[labels == 0] == 0).all()
    assert (normal_image(_plane(cam, slope_x=k), labels, cam)[labels == 0] == 0).all()


def test_depth_image_grades_near_to_far_and_blacks_the_background():
    depth = np.tile(np.linspace(3.0, 5.0, 64), (8, 1))      # nearer on the left
    labels = np.ones((8, 64), np.int64)
    labels[0] = 0
    img = depth_image(depth, labels)
    assert img.shape == (8, 64, 3) and img.dtype == np.uint8 and (img[0] == 0).all()
    grey = img[1:, :, 0].astype(int)
    assert grey[:, 0].min() == 255 and grey[:, -1].max() == FAR_GREY  # the 2-98 % range, clipped
    assert (np.diff(grey[1]) <= 0).all() and grey[1, 16] > grey[1, 48] + 60
    flat = depth_image(np.full((4, 4), 2.0), np.ones((4, 4), np.int64))
    assert (flat == 255).all()
    with pytest.raises(ValueError, match="labels: shape"):
        depth_image(depth, labels[:4])
    with pytest.raises(ValueError, match="depth: non-finite"):
        depth_image(np.full((4, 4), np.nan), np.ones((4, 4), np.int64))
    with pytest.raises(ValueError, match="depth: expected 2 dimensions"):
        depth_image(np.zeros(4), np.ones(4))


def test_surface_normals_bad_arguments(cam):
    labels = np.ones((16, 16), np.int64)
    with pytest.raises(ValueError, match="points: expected shape"):
        surface_normals(np.zeros((8, 8, 3)), labels, cam)
    with pytest.raises(ValueError, match="camera: expected a one-view Camera"):
        surface_normals(_plane(cam), labels, Camera.cat([cam, cam]))


def test_portraits_show_their_depth_and_normals():
    from _tiny import tiny_pipeline

    pipe = tiny_pipeline()
    p = pipe(geometry=0, texture=0)
    fg = p.segmap != 0
    d = np.asarray(p.depth_image())
    n = np.asarray(p.normal_image())
    assert d.shape == n.shape == (*p.segmap.shape, 3)
    assert (d[~fg] == 0).all() and (d[fg, 0] >= FAR_GREY).all() and d[fg, 0].std() > 20  # relief shows
    # the head faces the camera: blue (toward the viewer) dominates, and the left and right halves
    # of the face turn their normals apart (red channel)
    assert n[fg, 2].mean() > 180
    cols = np.nonzero(fg.any(0))[0]
    mid = (cols[0] + cols[-1]) // 2
    left, right = n[:, cols[0]:mid][fg[:, cols[0]:mid]], n[:, mid:cols[-1]][fg[:, mid:cols[-1]]]
    assert left[:, 0].mean() + 20 < right[:, 0].mean()
    painted = pipe.from_segmap(p.segmap)
    for view in (painted.depth_image, painted.normal_image):
        with pytest.raises(ValueError, match="made from a label map"):
            view()
