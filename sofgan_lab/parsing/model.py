"""A compact U-Net face parser: RGB portrait -> SOF-20 label map.

Used to measure whether generated images follow their input segmap (the SPADE/SEAN
"segmentation mIoU" protocol): ``parse(generated) vs. the segmap it was generated from``. It is
trained on the synthetic photos (with heavy degradations, see :mod:`sofgan_lab.train.parser_trainer`)
and is not a model of real faces.

Architecture: ``len(widths)`` levels; each level is two 3x3 convolutions (each followed by a
per-pixel channel LayerNorm and SiLU); the encoder halves the resolution between levels with a
2x2 max-pool, the decoder doubles it with nearest-neighbour upsampling (half the training cost of
bilinear upsampling on a CPU; the next convolutions smooth it), concatenates the encoder's
features of that level and applies two convolutions; a 1x1 convolution gives the logits. The
normalisation is per pixel (no batch or spatial statistics), so a prediction depends neither on
the batch nor on the image size or crop, and training on crops transfers to whole images.

Shapes: ``images`` (N, 3, H, W) float in [-1, 1], H and W divisible by ``2 ** (levels - 1)``
(16 with the default five levels); logits (N, num_classes, H, W); labels (N, H, W) int64 SOF-20.
"""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..images import from_uint8
from ..labels import NUM_SOF_CLASSES, SOF20_LR_SWAP

__all__ = ["FaceParserConfig", "FaceParser", "INPUT_RANGE_LIMIT"]

log = logging.getLogger(__name__)

#: Float inputs whose values leave [-INPUT_RANGE_LIMIT, INPUT_RANGE_LIMIT] are refused: they are
#: not images in [-1, 1] (e.g. [0, 255] pixels).
INPUT_RANGE_LIMIT = 1.5

KIND = "face_parser"


@dataclass(frozen=True)
class FaceParserConfig:
    """Sizes of a :class:`FaceParser`. The defaults are the demo parser's (``small()``)."""

    widths: tuple[int, ...] = (16, 32, 64, 96, 128)  # channels per level, full resolution first;
    #                                                  levels = len(widths) (>= 2), H and W must be
    #                                                  divisible by 2 ** (levels - 1)
    in_channels: int = 3          # input channels (RGB)
    num_classes: int = NUM_SOF_CLASSES  # output classes (SOF-20)
    norm: str = "layer"           # "layer": per-pixel channel LayerNorm; "none": no normalisation

    def __post_init__(self):
        w = self.widths
        if isinstance(w, list):
            object.__setattr__(self, "widths", tuple(w))
            w = self.widths
        if not isinstance(w, tuple) or len(w) < 2 or any(
                isinstance(c, bool) or not isinstance(c, int) or c < 1 for c in w):
            raise ValueError(f"widths: expected a tuple of at least 2 positive integers, got {w!r}")
        for name in ("in_channels", "num_classes"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int):
                raise TypeError(f"{name}: expected an integer, got {type(v).__name__}")
            if v < 1:
                raise ValueError(f"{name}: expected an integer >= 1, got {v}")
        if self.norm not in ("layer", "none"):
            raise ValueError(f"norm: expected 'layer' or 'none', got {self.norm!r}")

    @property
    def levels(self) -> int:
        return len(self.widths)

    @property
    def multiple(self) -> int:
        """H and W of the input must be multiples of this (``2 ** (levels - 1)``)."""
        return 2 ** (self.levels - 1)

    @classmethod
    def small(cls) -> "FaceParserConfig":
        """The demo parser's sizes: ≈0.92 M parameters (3.7 MB in float32), 5 levels."""
        return cls()

    @classmethod
    def tiny(cls) -> "FaceParserConfig":
        """A seconds-to-train configuration for tests (5 levels, so inputs divisible by 16)."""
        return cls(widths=(4, 8, 8, 8, 8))

    def to_dict(self) -> dict:
        d = asdict(self)
        d["widths"] = list(self.widths)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "FaceParserConfig":
        unknown = sorted(set(d) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"config: unknown FaceParserConfig fields {unknown}")
        d = dict(d)
        if "widths" in d and isinstance(d["widths"], list):
            d["widths"] = tuple(d["widths"])
        return cls(**d)


class _PixelNorm(nn.Module):
    """LayerNorm over the channels of each pixel (with affine); (N, C, H, W) -> same."""

    def __init__(self, channels: int, eps: float = 1e-5):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # layer_norm over the last axis of the NHWC view: one fused kernel (faster than by hand)
        y = F.layer_norm(x.permute(0, 2, 3, 1), (x.shape[1],), self.weight, self.bias, self.eps)
        return y.permute(0, 3, 1, 2)


class _Block(nn.Module):
    """Two (3x3 conv -> norm -> SiLU) layers: (N, c_in, H, W) -> (N, c_out, H, W)."""

    def __init__(self, c_in: int, c_out: int, norm: str):
        super().__init__()
        layers: list[nn.Module] = []
        for a, b in ((c_in, c_out), (c_out, c_out)):
            layers.append(nn.Conv2d(a, b, 3, padding=1))
            if norm == "layer":
                layers.append(_PixelNorm(b))
            layers.append(nn.SiLU())
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def _describe(x: Any) -> str:
    if isinstance(x, (torch.Tensor, np.ndarray)):
        return f"{type(x).__name__} of shape {tuple(x.shape)} and dtype {x.dtype}"
    return type(x).__name__


class FaceParser(nn.Module):
    """RGB portrait -> SOF-20 logits (a compact U-Net; see the module docstring).

    Args:
        config: a :class:`FaceParserConfig` (default: ``FaceParserConfig.small()``).

    ``forward(images)``: ``images`` (N, 3, H, W) float in [-1, 1] -> logits (N, num_classes, H, W)
    float32. ``parse(images)`` -> labels (N, H, W) int64 SOF-20 ids (no grad, eval mode, batched;
    also takes uint8 (N, H, W, 3) / (H, W, 3) arrays or tensors).
    """

    def __init__(self, config: FaceParserConfig | None = None):
        super().__init__()
        cfg = config if config is not None else FaceParserConfig.small()
        if not isinstance(cfg, FaceParserConfig):
            raise TypeError(f"config: expected a FaceParserConfig, got {type(cfg).__name__}")
        self.config = cfg
        w = cfg.widths
        self.encoder = nn.ModuleList(
            _Block(cfg.in_channels if i == 0 else w[i - 1], w[i], cfg.norm) for i in range(cfg.levels))
        # decoder[i] rebuilds level i from upsampled level i+1 and the encoder's level i
        self.decoder = nn.ModuleList(_Block(w[i + 1] + w[i], w[i], cfg.norm) for i in range(cfg.levels - 1))
        self.head = nn.Conv2d(w[0], cfg.num_classes, 1)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu", mode="fan_in")
                nn.init.zeros_(m.bias)
        nn.init.normal_(self.head.weight, 0.0, 0.01)
        # SOF-20 left/right permutation for flip averaging (a derived constant, not saved)
        swap = SOF20_LR_SWAP.copy() if cfg.num_classes == NUM_SOF_CLASSES else np.arange(cfg.num_classes)
        self.register_buffer("lr_swap", torch.from_numpy(swap), persistent=False)

    # ------------------------------------------------------------------ checks
    def check_images(self, images: Any, name: str = "images") -> torch.Tensor:
        """Validate float ``images`` (N, 3, H, W) in [-1, 1] and return them (unchanged)."""
        cfg = self.config
        if not isinstance(images, torch.Tensor):
            raise TypeError(f"{name}: expected a torch.Tensor (N, {cfg.in_channels}, H, W), got {_describe(images)}")
        if not images.is_floating_point():
            raise ValueError(f"{name}: expected a float tensor in [-1, 1], got dtype {images.dtype} "
                             "(parse() converts uint8 (N, H, W, 3) images)")
        if images.dim() != 4 or images.shape[1] != cfg.in_channels:
            raise ValueError(f"{name}: expected shape (N, {cfg.in_channels}, H, W), got {tuple(images.shape)}")
        H, W = images.shape[-2:]
        m = cfg.multiple
        if H % m or W % m or H == 0 or W == 0:
            raise ValueError(f"{name}: expected H and W divisible by {m} (and > 0), got {H} x {W}")
        if images.numel():
            lo, hi = torch.aminmax(images.detach())
            lo, hi = float(lo), float(hi)
            if not (np.isfinite(lo) and np.isfinite(hi)):
                raise ValueError(f"{name}: contains non-finite values")
            if lo < -INPUT_RANGE_LIMIT or hi > INPUT_RANGE_LIMIT:
                raise ValueError(f"{name}: expected values in [-1, 1] (the generator's convention), "
                                 f"got values in [{lo:.4g}, {hi:.4g}]")
        return images

    # ------------------------------------------------------------------ network
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``images`` (N, 3, H, W) float in [-1, 1] -> logits (N, num_classes, H, W)."""
        x = self.check_images(images)
        p = next(self.parameters())
        x = x.to(dtype=p.dtype)
        skips = []
        for i, block in enumerate(self.encoder):
            if i:
                x = F.max_pool2d(x, 2)
            x = block(x)
            skips.append(x)
        x = skips.pop()
        for i in range(self.config.levels - 2, -1, -1):
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
            x = self.decoder[i](torch.cat([x, skips.pop()], 1))
        return self.head(x)

    def _as_float_images(self, images: Any) -> tuple[torch.Tensor, bool, torch.device]:
        """(N, 3, H, W) float from any accepted input, whether it was unbatched, and the caller's device."""
        if isinstance(images, np.ndarray):
            if images.dtype != np.uint8:
                raise ValueError(f"images: a numpy array must be uint8 (H, W, 3) or (N, H, W, 3), "
                                 f"got {_describe(images)}")
            device = torch.device("cpu")
            images = torch.from_numpy(np.ascontiguousarray(images))
        elif isinstance(images, torch.Tensor):
            device = images.device
        else:
            raise TypeError(f"images: expected a torch.Tensor or numpy.ndarray, got {_describe(images)}")
        if images.dtype == torch.uint8:
            if images.dim() not in (3, 4) or images.shape[-1] != 3:
                raise ValueError(f"images: uint8 images must have shape (H, W, 3) or (N, H, W, 3), "
                                 f"got {tuple(images.shape)}")
            single = images.dim() == 3
            x = from_uint8(images).movedim(-1, -3)
            return (x[None] if single else x), single, device
        if not images.is_floating_point():
            raise ValueError(f"images: expected float (N, 3, H, W) in [-1, 1] or uint8 (N, H, W, 3), "
                             f"got dtype {images.dtype}")
        single = images.dim() == 3
        return (images[None] if single else images), single, device

    def _labels(self, x: torch.Tensor, flip_average: bool) -> torch.Tensor:
        logits = self(x)
        if not flip_average:
            return logits.argmax(1)
        mirrored = self(x.flip(-1)).flip(-1)[:, self.lr_swap]  # mirrored photo's logits, ids swapped back
        return (logits.softmax(1) + mirrored.softmax(1)).argmax(1)

    @torch.no_grad()
    def parse(self, images: Any, *, batch_size: int = 32, flip_average: bool = False) -> torch.Tensor:
        """Label maps of ``images``.

        Args:
            images: (N, 3, H, W) / (3, H, W) float tensor in [-1, 1], or (N, H, W, 3) / (H, W, 3)
                uint8 numpy array or tensor (converted as :func:`sofgan_lab.images.uint8_to_tensor`).
                H and W divisible by ``config.multiple`` (16 by default).
            batch_size: images per forward pass (bounds the memory).
            flip_average: average the class probabilities of each image and of its mirror image
                (left/right ids swapped back): twice the cost; +0.011 held-out mIoU for the demo
                parser (0.835 -> 0.846 on 300 photos). Needs SOF-20 outputs (``num_classes`` 20).

        Returns:
            (N, H, W) int64 SOF-20 ids ((H, W) for an unbatched input), on the input's device
            (CPU for numpy input). Runs on the module's device in eval mode without gradients; the
            module's train/eval mode is restored afterwards.
        """
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size: expected an integer >= 1, got {batch_size!r}")
        if not isinstance(flip_average, bool):
            raise TypeError(f"flip_average: expected a bool, got {type(flip_average).__name__}")
        if flip_average and self.config.num_classes != NUM_SOF_CLASSES:
            raise ValueError(f"flip_average: needs SOF-20 outputs (num_classes {NUM_SOF_CLASSES}), "
                             f"this parser has {self.config.num_classes}")
        x, single, device = self._as_float_images(images)
        self.check_images(x)
        dev = next(self.parameters()).device
        was_training = self.training
        self.eval()
        try:
            out = [self._labels(x[s:s + batch_size].to(dev), flip_average).to(device)
                   for s in range(0, x.shape[0], batch_size)]
        finally:
            self.train(was_training)
        labels = torch.cat(out) if out else torch.zeros(0, *x.shape[-2:], dtype=torch.int64, device=device)
        return labels[0] if single else labels

    # ------------------------------------------------------------------ persistence
    def save_pretrained(self, directory: str | Path) -> Path:
        """Write ``config.json`` + ``model.safetensors`` into ``directory`` (atomically)."""
        from ..io.checkpoints import save_module

        return save_module(self, directory, kind=KIND, config=self.config.to_dict())

    @classmethod
    def from_pretrained(cls, directory: str | Path, *, map_location: str | torch.device = "cpu") -> "FaceParser":
        """Load a parser written by :meth:`save_pretrained`; ``"demo"`` loads the shipped demo
        parser (``data/demo/parser``). Returned in eval mode."""
        from ..io.checkpoints import load_module

        if isinstance(directory, str) and directory == "demo":
            from ..demo import demo_dir

            directory = demo_dir("parser")
        model = load_module(cls, directory, kind=KIND, config_cls=FaceParserConfig, map_location=map_location)
        return model.eval()

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
