"""The weight loaders of the metrics (LPIPS, FID Inception) and of the photo projection (LPIPS VGG16)
read through ``sofgan_lab.io.torchfile`` (issue 20 item 10): a pickle that would run code is refused in
one line naming the file, without running and without torch's advice to pass ``weights_only=False``."""
from __future__ import annotations

import pathlib

import pytest
import torch

from sofgan_lab.io.checkpoints import CheckpointError

pytestmark = pytest.mark.usefixtures("one_thread")


class TouchOnLoad:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (self.marker,))


@pytest.fixture
def evil(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "weights.pth"
    torch.save({"w": TouchOnLoad(marker)}, path)
    return path, marker


def _check(exc_info, path, marker):
    msg = str(exc_info.value)
    assert str(path) in msg and "refused to load" in msg and "\n" not in msg
    assert "weights_only" not in msg
    assert not marker.exists()


def test_lpips_linear_weights(evil):
    from sofgan_lab.metrics.perceptual import load_lpips

    path, marker = evil
    with pytest.raises(CheckpointError) as e:
        load_lpips("alex", pretrained_backbone=False, linear_weights=path)
    _check(e, path, marker)
    assert str(e.value).startswith("linear_weights: ")


def test_lpips_backbone_weights(evil, monkeypatch):
    from sofgan_lab.metrics import perceptual

    path, marker = evil
    with pytest.raises(CheckpointError) as e:
        perceptual.load_lpips("alex", weights=path, check_hash=False)
    _check(e, path, marker)
    assert str(e.value).startswith("weights: ")


def test_fid_inception_weights(evil):
    from sofgan_lab.metrics.features import load_inception

    path, marker = evil
    with pytest.raises(CheckpointError) as e:
        load_inception(path, check_hash=False)
    _check(e, path, marker)
    assert str(e.value).startswith("weights: ")


def test_projection_vgg_weights(evil, monkeypatch):
    from sofgan_lab.applications import projection

    path, marker = evil
    monkeypatch.setattr(projection, "lpips_weights_path", lambda: path)
    with pytest.raises(CheckpointError) as e:
        projection._build_lpips(torch.device("cpu"))
    _check(e, path, marker)
    assert str(e.value).startswith("perceptual: ")
