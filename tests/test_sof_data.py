"""Tests for ``sofgan_lab.train.sof_data``: the SOF layout reader, view/pose pairing, the ray sampler."""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sofgan_lab.synthetic import build_head, render_segmap, write_scans
from sofgan_lab.train.sof_data import RayBatch, SOFScanDataset, ViewSplit


# one thread; `scans`: the shared tiny dataset (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="session")
def persp_scans(tmp_path_factory) -> Path:
    return write_scans(tmp_path_factory.mktemp("sof_data") / "persp", instances=1, views=3, size=16,
                       camera="perspective", seed=5, workers=1, progress=False)


def copy(src: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "copy"
    shutil.copytree(src, dst)
    return dst


# ------------------------------------------------------------------------------------------
# layout and pairing
# ------------------------------------------------------------------------------------------

def test_layout(scans):
    ds = SOFScanDataset(scans)
    assert len(ds) == 2 and ds.instance_names == ("0000", "0001")
    assert [ds.num_views(i) for i in range(2)] == [4, 4] and ds.total_views == 8
    assert ds.image_size == (16, 16) and ds.orthographic and ds.pixel_offset == 0.5
    assert ds.index["seed"] == 0
    lab = ds.labels(1, 2)
    assert lab.dtype == torch.int64 and lab.shape == (16, 16)
    np.testing.assert_array_equal(lab.numpy(), np.asarray(Image.open(scans / "0001" / "seg_02.png")))
    cam = ds.camera(1, 2)
    assert cam.batch_size == 1 and cam.orthographic and cam.image_size == (16, 16)
    np.testing.assert_array_equal(cam.cam2world[0].numpy(), np.load(scans / "0001" / "cam2world.npy")[2])
    lazy = SOFScanDataset(scans, preload=False)
    for i in range(2):
        for v in range(4):
            assert torch.equal(lazy.labels(i, v), ds.labels(i, v))


@pytest.mark.parametrize("which", ["ortho", "persp"])
def test_each_view_keeps_its_pose(which, scans, persp_scans):
    root = scans if which == "ortho" else persp_scans
    ds = SOFScanDataset(root)
    assert ds.orthographic == (which == "ortho")
    for i in range(len(ds)):
        head = build_head(ds.attributes(i))
        for v in range(ds.num_views(i)):
            again = render_segmap(head, ds.camera(i, v)).labels[0]
            assert torch.equal(again, ds.labels(i, v)), f"instance {i} view {v} re-renders differently"
        # and another view's pose does not reproduce it (the test can fail)
        other = render_segmap(head, ds.camera(i, 1)).labels[0]
        assert not torch.equal(other, ds.labels(i, 0))


def test_selecting_instances_and_views_keeps_pairing(scans):
    ds = SOFScanDataset(scans, instances=["0001"], views=[3, 1])
    assert ds.instance_names == ("0001",) and ds.num_views(0) == 2
    assert ds.view_id(0, 0) == 3 and ds.label_file(0, 0).name == "seg_03.png"
    full = SOFScanDataset(scans)
    assert torch.equal(ds.labels(0, 0), full.labels(1, 3))
    assert torch.equal(ds.camera(0, 1).cam2world, full.camera(1, 1).cam2world)
    assert SOFScanDataset(scans, instances=1).instance_names == ("0000",)


def test_camera_model_override_and_no_index(scans, tmp_path):
    assert not SOFScanDataset(scans, orthographic=False).orthographic
    d = copy(scans, tmp_path)
    (d / "index.json").unlink()
    ds = SOFScanDataset(d)
    assert ds.orthographic and ds.pixel_offset == 0.5 and ds.instance_names == ("0000", "0001")


# ------------------------------------------------------------------------------------------
# rays and splits
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("which", ["ortho", "persp"])
def test_sample_rays_match_camera_rays_and_labels(which, scans, persp_scans):
    ds = SOFScanDataset(scans if which == "ortho" else persp_scans)
    b = ds.sample_rays(3, 50, torch.Generator().manual_seed(1))
    assert isinstance(b, RayBatch)
    assert b.instance.shape == (3,) and b.origins.shape == (3, 50, 3) and b.labels.shape == (3, 50)
    for k in range(3):
        i, v = int(b.instance[k]), int(b.view[k])
        rays = ds.camera(i, v).rays(pixel_offset=ds.pixel_offset)
        o = rays.origins.reshape(-1, 3)[b.pixels[k]]
        d = rays.directions.reshape(-1, 3)[b.pixels[k]]
        torch.testing.assert_close(b.origins[k], o, atol=1e-5, rtol=0)
        torch.testing.assert_close(b.directions[k], d, atol=1e-6, rtol=0)
        assert torch.equal(b.labels[k], ds.labels(i, v).reshape(-1)[b.pixels[k]])
    # camera-space depth of a point one unit along the forward axis
    fwd = b.cam2world[:, None, :3, 2]
    pts = b.cam2world[:, None, :3, 3] + 2.0 * fwd
    torch.testing.assert_close(b.depth(pts.expand(3, 50, 3)), torch.full((3, 50), 2.0))


def test_sample_rays_deterministic_and_whole_images(scans):
    ds = SOFScanDataset(scans)
    a = ds.sample_rays(4, 32, torch.Generator().manual_seed(7))
    b = ds.sample_rays(4, 32, torch.Generator().manual_seed(7))
    c = ds.sample_rays(4, 32, torch.Generator().manual_seed(8))
    for f in ("instance", "view", "pixels", "origins", "directions", "labels"):
        assert torch.equal(getattr(a, f), getattr(b, f)), f
    assert not torch.equal(a.pixels, c.pixels)
    w = ds.sample_rays(2, None, torch.Generator().manual_seed(0), whole_images=True)
    assert w.labels.shape == (2, 256)
    i, v = int(w.instance[0]), int(w.view[0])
    assert torch.equal(w.labels[0].view(16, 16), ds.labels(i, v))


def test_split_views_and_sampling_only_train_views(scans):
    ds = SOFScanDataset(scans)
    s = ds.split_views(1, seed=3)
    assert isinstance(s, ViewSplit) and s == ds.split_views(1, seed=3)
    for i in range(2):
        assert len(s.heldout[i]) == 1 and len(s.train[i]) == 3
        assert sorted(s.train[i] + s.heldout[i]) == [0, 1, 2, 3]
    b = ds.sample_rays(64, 1, torch.Generator().manual_seed(0), views=s)
    for i, v in zip(b.instance.tolist(), b.view.tolist()):
        assert v in s.train[i]
    with pytest.raises(ValueError, match="holdout: expected fewer than 4"):
        ds.split_views(4)
    with pytest.raises(ValueError, match="batch_views"):
        ds.sample_rays(0, 4, torch.Generator())
    with pytest.raises(ValueError, match="rays_per_view"):
        ds.sample_rays(1, 0, torch.Generator())


# ------------------------------------------------------------------------------------------
# errors name the file
# ------------------------------------------------------------------------------------------

def _raises_naming(path: Path, *more: str):
    return pytest.raises(ValueError, match=re.escape(str(path)) + ".*" + ".*".join(more))


def test_missing_pose_files(scans, tmp_path):
    d = copy(scans, tmp_path)
    (d / "0001" / "intrinsic.npy").unlink()
    with _raises_naming(d / "0001" / "intrinsic.npy", "missing"):
        SOFScanDataset(d)
    (d / "0000" / "cam2world.npy").unlink()
    with _raises_naming(d / "0000" / "cam2world.npy", "missing"):
        SOFScanDataset(d)


def test_count_mismatch(scans, tmp_path):
    d = copy(scans, tmp_path)
    (d / "0001" / "seg_03.png").unlink()
    with _raises_naming(d / "0001" / "cam2world.npy", "4 poses", "3 seg_XX.png"):
        SOFScanDataset(d)


def test_non_orthonormal_rotation(scans, tmp_path):
    d = copy(scans, tmp_path)
    c2w = np.load(d / "0000" / "cam2world.npy")
    c2w[2, :3, :3] *= 1.1
    np.save(d / "0000" / "cam2world.npy", c2w)
    with _raises_naming(d / "0000" / "cam2world.npy", "view 2", "orthonormal"):
        SOFScanDataset(d)


def test_label_out_of_range(scans, tmp_path):
    d = copy(scans, tmp_path)
    lab = np.asarray(Image.open(d / "0001" / "seg_01.png")).copy()
    lab[3, 3] = 25
    Image.fromarray(lab).save(d / "0001" / "seg_01.png")
    with _raises_naming(d / "0001" / "seg_01.png", r"\[25\]"):
        SOFScanDataset(d)
    ds = SOFScanDataset(d, preload=False)  # lazily: when the map is read
    with _raises_naming(d / "0001" / "seg_01.png", r"\[25\]"):
        ds.labels(1, 1)


def test_size_mismatch_and_colour_images(scans, tmp_path):
    d = copy(scans, tmp_path)
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(d / "0001" / "seg_02.png")
    with _raises_naming(d / "0001" / "seg_02.png", "8x8", "16x16"):
        SOFScanDataset(d, preload=False)
    shutil.copy(d / "0001" / "seg_vis_02.png", d / "0001" / "seg_02.png")
    with _raises_naming(d / "0001" / "seg_02.png", "single-channel"):
        SOFScanDataset(d)


def test_argument_errors(scans, tmp_path):
    with pytest.raises(ValueError, match="root: .* is not a folder"):
        SOFScanDataset(tmp_path / "nope")
    with pytest.raises(ValueError, match="root: .* holds no instance folders"):
        SOFScanDataset(tmp_path)
    with pytest.raises(ValueError, match="instances: unknown instance 'x'"):
        SOFScanDataset(scans, instances=["x"])
    with pytest.raises(ValueError, match="views: expected view indices in 0..3"):
        SOFScanDataset(scans, views=[7])
    with pytest.raises(IndexError, match="v: view 4 out of range"):
        SOFScanDataset(scans).labels(0, 4)
    d = copy(scans, tmp_path)
    idx = json.loads((d / "index.json").read_text())
    idx["camera"] = "fisheye"
    (d / "index.json").write_text(json.dumps(idx))
    with _raises_naming(d / "index.json", "fisheye"):
        SOFScanDataset(d)
