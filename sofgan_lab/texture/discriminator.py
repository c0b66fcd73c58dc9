"""The SIW-StyleGAN discriminator: StyleGAN2's residual design with minibatch standard deviation.

It sees RGB images only (never segmaps: SofGAN trains without paired images and segmaps).
Attribute names follow the rosinality layout (``convs.N``, ``final_conv``, ``final_linear``), so
the ``'d'`` entry of an official checkpoint loads key for key.
"""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from .generator import SIWConfig
from .ops import ConvLayer, EqualLinear, ResBlock

__all__ = ["SIWDiscriminator"]


class SIWDiscriminator(nn.Module):
    """Residual discriminator for images ``[N, 3, size, size]`` → logits ``[N, 1]``.

    Widths come from ``config.channels`` (the same table as the generator);
    ``stddev_group`` samples share one minibatch-stddev feature."""

    def __init__(self, config: SIWConfig | None = None, stddev_group: int = 4):
        super().__init__()
        self.config = config = config if config is not None else SIWConfig.demo()
        ch, bk = config.channels, config.blur_kernel
        size = config.size
        layers: list[nn.Module] = [ConvLayer(3, ch[size], 1)]
        in_ch = ch[size]
        for i in range(config.log_size, 2, -1):
            out_ch = ch[2 ** (i - 1)]
            layers.append(ResBlock(in_ch, out_ch, bk))
            in_ch = out_ch
        self.convs = nn.Sequential(*layers)
        self.stddev_group = int(stddev_group)
        self.stddev_feat = 1
        self.final_conv = ConvLayer(in_ch + 1, ch[4], 3)
        self.final_linear = nn.Sequential(EqualLinear(ch[4] * 4 * 4, ch[4], activation=True),
                                          EqualLinear(ch[4], 1))

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        size = self.config.size
        if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[1] != 3 \
                or tuple(images.shape[-2:]) != (size, size):
            shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
            raise ValueError(f"images: expected a float tensor [N, 3, {size}, {size}], got {shape}")
        out = self.convs(images)
        n, c, h, w = out.shape
        group = min(n, self.stddev_group)
        if n % group:
            group = math.gcd(n, group)
        std = out.view(group, -1, self.stddev_feat, c // self.stddev_feat, h, w)
        std = torch.sqrt(std.var(0, unbiased=False) + 1e-8)
        std = std.mean([2, 3, 4], keepdim=True).squeeze(2)
        std = std.repeat(group, 1, h, w)
        out = torch.cat([out, std], 1)
        out = self.final_conv(out)
        return self.final_linear(out.view(n, -1))

    def save_pretrained(self, directory) -> Any:
        from ..io.checkpoints import save_module

        return save_module(self, directory, kind="siw_discriminator", config=self.config.to_dict())

    @classmethod
    def from_pretrained(cls, directory, *, map_location="cpu") -> "SIWDiscriminator":
        from ..io.checkpoints import load_module

        return load_module(cls, directory, kind="siw_discriminator", config_cls=SIWConfig, map_location=map_location)
