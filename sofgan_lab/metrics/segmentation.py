"""Segmentation scores of the metrics: the confusion matrix and mIoU. They live in
:mod:`sofgan_lab.confusion`, below the models (segmap inversion and the trainers use them too);
this module keeps the metrics' import path."""
from __future__ import annotations

from ..confusion import ConfusionMatrix, miou

__all__ = ["ConfusionMatrix", "miou"]
