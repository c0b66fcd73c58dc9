"""Segmentation metrics accumulated over a whole evaluation set: confusion matrix, IoU, mIoU.

The official release averages, per batch, the IoU of the classes whose IoU is non-zero and then
averages those batch means. That number depends on the batch size and silently drops classes
that were present but entirely missed. Here the confusion matrix is summed over the whole set
first; per-class IoU is ``sum(intersection) / sum(union)`` over the set and the mIoU is the mean
over the classes present in the ground truth (a missed class counts as 0).
"""
from __future__ import annotations

import logging
from typing import Any

import numpy as np

__all__ = ["ConfusionMatrix", "miou"]

log = logging.getLogger(__name__)


def _to_numpy(x: Any, name: str) -> np.ndarray:
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        torch = None
    if torch is not None and isinstance(x, torch.Tensor):
        if x.is_floating_point() or x.is_complex() or x.dtype == torch.bool:
            raise TypeError(f"{name}: expected integer class ids, got a tensor of dtype {x.dtype}")
        return x.detach().to("cpu").numpy()
    if isinstance(x, np.ndarray):
        if not np.issubdtype(x.dtype, np.integer):
            raise TypeError(f"{name}: expected integer class ids, got an array of dtype {x.dtype}")
        return x
    raise TypeError(f"{name}: expected a torch.Tensor or numpy.ndarray, got {type(x).__name__}")


class ConfusionMatrix:
    """A ``(num_classes, num_classes)`` int64 confusion matrix; rows = ground truth, columns = prediction.

    Args:
        num_classes: number of classes C (>= 1); ids are ``0..C-1`` (e.g. 20 for SOF-20).
        ignore_index: a ground-truth id whose pixels are skipped (``None``: none).

    ``update(pred, target)`` accepts label maps of any matching shape, torch or numpy, integer
    dtype. Ids outside ``0..C-1`` raise ``ValueError`` (never clamped).
    """

    def __init__(self, num_classes: int, ignore_index: int | None = None):
        if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
            raise ValueError(f"num_classes: expected an integer >= 1, got {num_classes!r}")
        if ignore_index is not None and (isinstance(ignore_index, bool)
                                         or not isinstance(ignore_index, (int, np.integer))):
            raise TypeError(f"ignore_index: expected an int or None, got {type(ignore_index).__name__}")
        self.num_classes = int(num_classes)
        self.ignore_index = None if ignore_index is None else int(ignore_index)
        self.matrix = np.zeros((self.num_classes, self.num_classes), dtype=np.int64)

    def reset(self) -> None:
        self.matrix[:] = 0

    def update(self, pred: Any, target: Any) -> "ConfusionMatrix":
        """Add the pixels of ``pred`` and ``target`` (same shape, integer class ids). Returns self."""
        p = _to_numpy(pred, "pred").astype(np.int64, copy=False).reshape(-1)
        t = _to_numpy(target, "target").astype(np.int64, copy=False).reshape(-1)
        if np.shape(pred) != np.shape(target):
            raise ValueError(f"pred, target: expected the same shape, got {tuple(np.shape(pred))} "
                             f"and {tuple(np.shape(target))}")
        if self.ignore_index is not None:
            keep = t != self.ignore_index
            p, t = p[keep], t[keep]
        C = self.num_classes
        for name, a in (("target", t), ("pred", p)):
            if a.size and (a.min() < 0 or a.max() >= C):
                bad = np.unique(a[(a < 0) | (a >= C)])[:10].tolist()
                raise ValueError(f"{name}: expected class ids in 0..{C - 1}, got {bad}")
        self.matrix += np.bincount(t * C + p, minlength=C * C).reshape(C, C)
        return self

    def merge(self, other: "ConfusionMatrix") -> "ConfusionMatrix":
        """Add another matrix with the same classes (e.g. from another process). Returns self."""
        if not isinstance(other, ConfusionMatrix) or other.num_classes != self.num_classes:
            raise ValueError("other: expected a ConfusionMatrix with the same num_classes")
        self.matrix += other.matrix
        return self

    @property
    def total(self) -> int:
        """Number of accumulated (non-ignored) pixels."""
        return int(self.matrix.sum())

    def _require_data(self) -> None:
        if self.total == 0:
            raise ValueError("ConfusionMatrix: no pixels accumulated (call update first)")

    def intersection(self) -> np.ndarray:
        """(C,) int64 true positives per class."""
        return np.diag(self.matrix).copy()

    def union(self) -> np.ndarray:
        """(C,) int64 |pred ∪ target| per class."""
        return self.matrix.sum(0) + self.matrix.sum(1) - np.diag(self.matrix)

    def present(self) -> np.ndarray:
        """(C,) bool: classes that occur in the ground truth."""
        return self.matrix.sum(1) > 0

    def iou(self) -> np.ndarray:
        """(C,) float64 IoU per class over the whole set; NaN where the union is empty."""
        self._require_data()
        u = self.union()
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(u > 0, self.intersection() / np.maximum(u, 1), np.nan)

    def miou(self) -> float:
        """Mean IoU over the classes present in the ground truth."""
        iou = self.iou()
        present = self.present()
        return float(iou[present].mean())

    def pixel_accuracy(self) -> float:
        """Fraction of pixels whose predicted id equals the ground truth."""
        self._require_data()
        return float(np.trace(self.matrix) / self.total)

    def __repr__(self) -> str:
        return f"ConfusionMatrix(num_classes={self.num_classes}, pixels={self.total})"


def miou(pred: Any, target: Any, num_classes: int = 20, ignore_index: int | None = None) -> float:
    """mIoU of one prediction set (see :class:`ConfusionMatrix`): ``pred``/``target`` integer label
    maps of the same shape, torch or numpy (SOF-20 ids for the default ``num_classes=20``)."""
    return ConfusionMatrix(num_classes, ignore_index).update(pred, target).miou()
