"""Tests for ``sofgan_lab.metrics.segmentation``: hand-computed IoU / mIoU / accuracy values."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sofgan_lab.metrics import ConfusionMatrix, miou


def release_style_batch_miou(batches, num_classes):
    """The release's number: per batch, the mean of the non-zero class IoUs; then the batch mean."""
    means = []
    for pred, target in batches:
        ious = []
        for c in range(num_classes):
            inter = np.sum((pred == c) & (target == c))
            union = np.sum((pred == c) | (target == c))
            if union and inter:
                ious.append(inter / union)
        means.append(np.mean(ious))
    return float(np.mean(means))


def test_hand_computed_values():
    target = np.array([0, 0, 1, 1, 2, 2])
    pred = np.array([0, 1, 1, 1, 2, 0])
    cm = ConfusionMatrix(3).update(pred, target)
    np.testing.assert_array_equal(cm.matrix, [[1, 1, 0], [0, 2, 0], [1, 0, 1]])
    np.testing.assert_allclose(cm.iou(), [1 / 3, 2 / 3, 1 / 2])
    assert cm.miou() == pytest.approx(0.5)
    assert cm.pixel_accuracy() == pytest.approx(4 / 6)
    assert miou(torch.from_numpy(pred), torch.from_numpy(target), num_classes=3) == pytest.approx(0.5)


def test_dataset_level_differs_from_per_batch_average():
    a = (np.array([[0, 0], [0, 0]]), np.array([[0, 0], [0, 1]]))  # class 1 present, missed
    b = (np.array([[1, 1], [1, 1]]), np.array([[1, 1], [1, 1]]))
    cm = ConfusionMatrix(2)
    for pred, target in (a, b):
        cm.update(pred, target)
    # dataset level: IoU0 = 3 / 4, IoU1 = 4 / 5
    np.testing.assert_allclose(cm.iou(), [0.75, 0.8])
    assert cm.miou() == pytest.approx(0.775)
    # the release's per-batch mean of non-zero IoUs: (0.75 + 1) / 2
    assert release_style_batch_miou([a, b], 2) == pytest.approx(0.875)
    assert abs(cm.miou() - release_style_batch_miou([a, b], 2)) > 0.09
    # batching does not change the dataset-level number
    whole = ConfusionMatrix(2).update(np.concatenate([a[0], b[0]]), np.concatenate([a[1], b[1]]))
    assert whole.miou() == cm.miou()


def test_mean_over_classes_present_in_ground_truth():
    # class 2 is predicted but absent from the ground truth: IoU 0, not part of the mean;
    # class 1 is absent from both: NaN
    cm = ConfusionMatrix(3).update(np.array([0, 2]), np.array([0, 0]))
    iou = cm.iou()
    assert iou[0] == 0.5 and iou[2] == 0.0 and math.isnan(iou[1])
    assert cm.miou() == 0.5
    np.testing.assert_array_equal(cm.present(), [True, False, False])


def test_ignore_index_torch_numpy_and_any_shape():
    target = torch.tensor([[0, 255], [1, 1]])
    pred = torch.tensor([[0, 1], [1, 0]])
    cm = ConfusionMatrix(2, ignore_index=255).update(pred, target)
    assert cm.total == 3
    np.testing.assert_allclose(cm.iou(), [1 / 2, 1 / 2])
    cm2 = ConfusionMatrix(2, ignore_index=255).update(pred.numpy()[None], target.numpy()[None])
    np.testing.assert_array_equal(cm.matrix, cm2.matrix)
    assert cm.merge(cm2).total == 6


def test_errors():
    cm = ConfusionMatrix(3)
    with pytest.raises(ValueError, match="no pixels"):
        cm.miou()
    with pytest.raises(ValueError, match="pred, target: expected the same shape"):
        cm.update(np.zeros((2, 2), int), np.zeros((4,), int))
    with pytest.raises(ValueError, match=r"target: expected class ids in 0\.\.2, got \[3\]"):
        cm.update(np.zeros(2, int), np.array([0, 3]))
    with pytest.raises(ValueError, match=r"pred: expected class ids in 0\.\.2, got \[-1\]"):
        cm.update(np.array([0, -1]), np.zeros(2, int))
    with pytest.raises(TypeError, match="pred: expected integer class ids"):
        cm.update(torch.zeros(2), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="num_classes"):
        ConfusionMatrix(0)
    assert cm.total == 0  # failed updates add nothing
