"""Metrics: segmentation (confusion matrix, IoU, mIoU); more to come (LPIPS, FID/KID, ...)."""
from .segmentation import ConfusionMatrix, miou

__all__ = ["ConfusionMatrix", "miou"]
