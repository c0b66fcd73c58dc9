"""Volumes of the SOF field (sofgan_lab.geometry.volume): grids, meshes, depth slices.

The exact answers come from a model whose weights are set by hand so that the class depends on one
world coordinate only: ``cls`` where ``sign * (coordinate - c) > 0``, background on the other side,
with ``P(background) = 0.5`` exactly on the plane and ``occupancy(c + u) = 1 - occupancy(c - u)``.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from sofgan_lab.cameras import Camera
from sofgan_lab.geometry import SemanticOccupancyField, SOFConfig
from sofgan_lab.geometry.volume import (Mesh, depth_slice, extract_mesh, grid_axes, grid_points,
                                        sample_grid)
from sofgan_lab.labels import SOF, get_palette

AXES = {"x": 0, "y": 1, "z": 2}


def plane_model(axis: str = "x", c: float = 0.25, cls: int = int(SOF.HAIR), sign: float = 1.0,
                sharpness: float = 4.0) -> SemanticOccupancyField:
    """Θ (one layer) = ReLU(LN([s u, -s u, 1, -1, 0, 0, 0, 0])) with u = sign (p_axis - c), the same
    for every latent (the hypernetworks' last layers are zero, their biases hold Θ); the classifier
    maps feature 0 to ``cls`` and feature 1 to background (other classes at -30)."""
    cfg = SOFConfig(latent_dim=4, hyper_dim=4, phi_dim=8, phi_layers=1, marcher_dim=8, classifier_dim=8,
                    classifier_layers=1, march_steps=0)
    m = SemanticOccupancyField(cfg).eval()
    with torch.no_grad():
        w = torch.zeros(8, 3)
        b = torch.zeros(8)
        w[0, AXES[axis]] = sharpness * sign
        b[0] = -sharpness * sign * c
        w[1], b[1] = -w[0], -b[0]
        b[2], b[3] = 1.0, -1.0
        last = m.hyper[0].net[-1]
        last.weight.zero_()
        last.bias.copy_(torch.cat([w.reshape(-1), b]))
        lin, out = m.classifier[0], m.classifier[-1]
        lin.weight.copy_(torch.eye(8))
        lin.bias.zero_()
        out.weight.zero_()
        out.bias.fill_(-30.0)
        out.weight[cls, 0] = 4.0
        out.weight[int(SOF.BACKGROUND), 1] = 4.0
        out.bias[cls] = 0.0
        out.bias[int(SOF.BACKGROUND)] = 0.0
    return m


Z = torch.zeros(1, 4)


# ------------------------------------------------------------------------------------ grids
def test_grid_axes_are_nodes_including_both_bounds():
    xs, ys, zs = grid_axes(5, ((0.0, 1.0), (-1.0, 1.0), (2.0, 3.0)))
    assert xs.tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert ys.tolist() == [-1.0, -0.5, 0.0, 0.5, 1.0]
    assert zs.tolist() == [2.0, 2.25, 2.5, 2.75, 3.0]
    p = grid_points(5, ((0.0, 1.0), (-1.0, 1.0), (2.0, 3.0)))
    assert p.shape == (5, 5, 5, 3)
    assert p[1, 2, 3].tolist() == [0.75, 0.0, 2.25]  # [k, j, i] -> (xs[i], ys[j], zs[k])
    x, y, z = grid_axes(3, 2.0)
    assert x.tolist() == y.tolist() == z.tolist() == [-2.0, 0.0, 2.0]


def test_sample_grid_shape_dtype_and_normalisation():
    torch.manual_seed(0)
    m = SemanticOccupancyField(SOFConfig(latent_dim=8, hyper_dim=8, phi_dim=8, marcher_dim=8,
                                         classifier_dim=8)).eval()
    vol = sample_grid(m, torch.randn(8), 6)
    assert vol.shape == (20, 6, 6, 6) and vol.dtype == torch.float32
    assert (vol >= 0).all()
    torch.testing.assert_close(vol.sum(0), torch.ones(6, 6, 6), rtol=0, atol=1e-5)
    # chunking does not change the answer; the default bounds are the model's sphere cube
    torch.testing.assert_close(sample_grid(m, torch.randn(8, generator=torch.Generator().manual_seed(0)), 6,
                                           chunk=7),
                               sample_grid(m, torch.randn(8, generator=torch.Generator().manual_seed(0)), 6,
                                           bounds=1.5), rtol=0, atol=1e-6)


@pytest.mark.parametrize("axis", ["x", "y", "z"])
def test_sample_grid_index_order_is_class_z_y_x(axis):
    m = plane_model(axis, c=0.25)
    vol = sample_grid(m, Z, 7)  # nodes -1.5, -1, ..., 1.5
    bg = vol[int(SOF.BACKGROUND)]
    dim = {"x": 2, "y": 1, "z": 0}[axis]
    # constant across the two other axes ...
    ref = bg.select(dim, 0)
    for other in range(3):
        if other != dim:
            assert torch.allclose(bg, bg.narrow(other, 0, 1).expand_as(bg), atol=1e-6), (axis, other)
    # ... and background exactly on the nodes below c = 0.25
    line = bg.movedim(dim, 0)[:, 0, 0]
    coords = torch.linspace(-1.5, 1.5, 7)
    assert ((line > 0.5) == (coords < 0.25)).all(), line
    assert ((vol[int(SOF.HAIR)] > 0.5) == (bg < 0.5)).all()
    assert ref.shape == (7, 7)


def test_plane_model_is_half_background_on_its_plane():
    m = plane_model("z", c=-0.3)
    from sofgan_lab.geometry.volume import classify_points

    p = torch.tensor([[0.2, 0.7, -0.3], [0.2, 0.7, -0.2], [0.2, 0.7, -0.4]])
    probs = classify_points(m, Z, p)[0].softmax(-1)
    assert probs[0, 0].item() == pytest.approx(0.5, abs=1e-6)
    assert probs[1, int(SOF.HAIR)] > 0.8 and probs[2, 0] > 0.8
    assert probs[1, int(SOF.HAIR)].item() == pytest.approx(probs[2, 0].item(), abs=1e-6)  # symmetric


# ------------------------------------------------------------------------------------ meshes
def test_extract_mesh_of_a_plane_is_that_plane_exactly():
    m = plane_model("x", c=0.25, cls=int(SOF.HAIR))
    mesh = extract_mesh(m, Z, resolution=31)  # nodes every 0.1: c lies midway between two
    assert isinstance(mesh, Mesh)
    assert mesh.vertices.dtype == np.float32 and mesh.faces.dtype == np.int32
    assert mesh.labels.dtype == np.int64 and mesh.colors.dtype == np.uint8
    assert mesh.vertices.shape == (31 * 31, 3) and mesh.faces.shape == (2 * 30 * 30, 3)
    assert mesh.labels.shape == (31 * 31,) and mesh.colors.shape == (31 * 31, 3)
    np.testing.assert_allclose(mesh.vertices[:, 0], 0.25, atol=1e-5)
    assert mesh.vertices[:, 1].min() == pytest.approx(-1.5) and mesh.vertices[:, 1].max() == pytest.approx(1.5)
    assert mesh.vertices[:, 2].min() == pytest.approx(-1.5) and mesh.vertices[:, 2].max() == pytest.approx(1.5)
    assert (mesh.labels == int(SOF.HAIR)).all()
    assert (mesh.colors == get_palette("sof20")[int(SOF.HAIR)]).all()
    # faces are wound so that normals point from the occupied side (x > c) to background (x < c)
    v = mesh.vertices[mesh.faces.astype(np.int64)]
    normals = np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0])
    assert (normals[:, 0] < 0).all()


def test_extract_mesh_follows_bounds_and_flipped_side():
    m = plane_model("y", c=-0.35, cls=int(SOF.SKIN), sign=-1.0)  # skin below y = -0.35
    mesh = extract_mesh(m, Z, resolution=21, bounds=((-1.0, 1.0), (-1.0, 1.0), (0.0, 2.0)))
    np.testing.assert_allclose(mesh.vertices[:, 1], -0.35, atol=1e-5)
    assert mesh.vertices[:, 2].min() == pytest.approx(0.0) and mesh.vertices[:, 2].max() == pytest.approx(2.0)
    assert (mesh.labels == int(SOF.SKIN)).all()
    v = mesh.vertices[mesh.faces.astype(np.int64)]
    assert (np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0])[:, 1] > 0).all()


def test_extract_mesh_without_a_surface_raises():
    m = plane_model("x", c=5.0)  # all background inside the bounds
    with pytest.raises(ValueError, match=r"level: .*never crosses 0.5.*no surface"):
        extract_mesh(m, Z, resolution=8)
    with pytest.raises(ValueError, match="level"):
        extract_mesh(plane_model(), Z, resolution=8, level=1.0)


def test_volume_arguments_are_checked():
    m = plane_model()
    with pytest.raises(ValueError, match="resolution"):
        sample_grid(m, Z, 1)
    with pytest.raises(TypeError, match="resolution"):
        sample_grid(m, Z, 8.0)
    with pytest.raises(ValueError, match="bounds"):
        sample_grid(m, Z, 4, bounds=-1.0)
    with pytest.raises(ValueError, match="bounds.*y"):
        sample_grid(m, Z, 4, bounds=((0, 1), (1, 0), (0, 1)))
    with pytest.raises(ValueError, match=r"z: expected one latent"):
        sample_grid(m, torch.zeros(2, 4), 4)
    with pytest.raises(ValueError, match=r"z: expected shape \(B, 4\)"):
        sample_grid(m, torch.zeros(5), 4)
    with pytest.raises(ValueError, match="chunk"):
        sample_grid(m, Z, 4, chunk=0)
    with pytest.raises(TypeError, match="model"):
        sample_grid(torch.nn.Linear(3, 3), Z, 4)


# ------------------------------------------------------------------------------------ slices
@pytest.mark.parametrize("fov", [None, 40.0])
def test_depth_slice_of_a_plane_model(fov):
    # frontal camera at z = 4.5 looking toward -z: the plane at camera depth D is world z = 4.5 - D
    m = plane_model("z", c=0.2, sign=-1.0)  # hair where z < 0.2
    cam = Camera.from_orbit(0.0, 0.0, image_size=(6, 8), fov=fov, target=(0.0, 0.0, 0.0))
    near = depth_slice(m, Z, cam, 4.5 - 0.5)   # world z = 0.5: background
    far = depth_slice(m, Z, cam, 4.5 - 0.0)    # world z = 0: hair
    assert near.labels.shape == (1, 6, 8) and near.probs.shape == (1, 20, 6, 8)
    assert near.points.shape == (1, 6, 8, 3)
    assert (near.labels == int(SOF.BACKGROUND)).all() and (far.labels == int(SOF.HAIR)).all()
    torch.testing.assert_close(near.points[..., 2], torch.full((1, 6, 8), 0.5), rtol=0, atol=1e-5)
    torch.testing.assert_close(near.probs.sum(1), torch.ones(1, 6, 8), rtol=0, atol=1e-5)


def test_depth_slice_splits_at_the_plane_across_the_image():
    m = plane_model("x", c=0.3)  # hair where x > 0.3
    cam = Camera.from_orbit(0.0, 0.0, image_size=16, pixels_per_unit=4.0, target=(0.0, 0.0, 0.0))
    s = depth_slice(m, Z, cam, [4.5])
    x = s.points[0, 0, :, 0]  # camera right = world +x in the frontal view
    torch.testing.assert_close(x, (torch.arange(16) + 0.5 - 8.0) / 4.0, rtol=0, atol=1e-5)
    expected = torch.where(x > 0.3, int(SOF.HAIR), int(SOF.BACKGROUND))
    assert torch.equal(s.labels[0], expected.expand(16, 16))
    two = depth_slice(m, torch.zeros(2, 4), cam, torch.tensor([4.5, 4.0]))
    assert two.labels.shape == (2, 16, 16) and torch.equal(two.labels[0], s.labels[0])
    with pytest.raises(ValueError, match="depth: expected 1 or 2 values"):
        depth_slice(m, torch.zeros(2, 4), cam, [1.0, 2.0, 3.0])
    with pytest.raises(TypeError, match="camera"):
        depth_slice(m, Z, "front", 4.5)
