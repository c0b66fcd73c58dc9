"""The one pair of image converters between tensors and arrays at the edges.

Inside the library images are float tensors ``(B, 3, H, W)`` in ``[-1, 1]``; at the edges (PIL,
numpy, PNG files) they are ``uint8`` arrays ``(H, W, 3)`` or ``(B, H, W, 3)``.
"""
from __future__ import annotations

import numpy as np
import torch

__all__ = ["tensor_to_uint8", "uint8_to_tensor", "ImageResult"]


def tensor_to_uint8(images: torch.Tensor) -> np.ndarray:
    """``(B, 3, H, W)`` or ``(3, H, W)`` float in [-1, 1] -> ``(B, H, W, 3)`` / ``(H, W, 3)`` uint8.

    Values outside [-1, 1] are clipped; NaN raises (a NaN image is never written silently).
    """
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"images: expected a torch.Tensor, got {type(images).__name__}")
    if images.dim() not in (3, 4) or images.shape[-3] != 3:
        raise ValueError(f"images: expected shape (B, 3, H, W) or (3, H, W), got {tuple(images.shape)}")
    if torch.isnan(images).any():
        raise ValueError("images: contains NaN values")
    x = images.detach().float().cpu()
    x = ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.movedim(-3, -1).numpy()


def uint8_to_tensor(array: np.ndarray) -> torch.Tensor:
    """``(H, W, 3)`` / ``(B, H, W, 3)`` uint8 -> ``(3, H, W)`` / ``(B, 3, H, W)`` float32 in [-1, 1]."""
    a = np.asarray(array)
    if a.dtype != np.uint8:
        raise TypeError(f"array: expected dtype uint8, got {a.dtype}")
    if a.ndim not in (3, 4) or a.shape[-1] != 3:
        raise ValueError(f"array: expected shape (H, W, 3) or (B, H, W, 3), got {a.shape}")
    t = torch.from_numpy(np.ascontiguousarray(a)).float() / 127.5 - 1.0
    return t.movedim(-1, -3).contiguous()


class ImageResult:
    """Mixin for result objects holding one image ``tensor`` ``(3, H, W)`` float in [-1, 1]:
    ``array`` (uint8 ``(H, W, 3)``), ``image`` (a PIL image, made once) and ``_repr_png_`` for Jupyter."""

    tensor: torch.Tensor

    @property
    def array(self) -> np.ndarray:
        """The image as uint8 ``(H, W, 3)``."""
        return tensor_to_uint8(self.tensor)

    @property
    def image(self):
        """The image as a ``PIL.Image`` (RGB)."""
        pil = self.__dict__.get("_pil_image")
        if pil is None:
            from PIL import Image

            pil = self.__dict__["_pil_image"] = Image.fromarray(self.array)
        return pil

    def _repr_png_(self) -> bytes:
        import io

        buf = io.BytesIO()
        self.image.save(buf, format="PNG")
        return buf.getvalue()
