"""StyleGAN2 building blocks in pure PyTorch (no compiled extension).

Semantics follow the StyleGAN2 reference operators exactly (checked against the official-format
fixtures in ``tests/test_texture_parity.py``):

* ``fused_leaky_relu(x, b) = sqrt(2) * leaky_relu_0.2(x + b)``, ``b`` added along dim 1;
* ``upfirdn2d(x, k, up, down, pad)``: insert ``up - 1`` zeros after every sample, zero-pad
  ``pad[0]`` before and ``pad[1]`` after on both axes (negative crops), take the *true*
  convolution with ``k`` (correlation with ``k`` flipped), keep every ``down``-th sample from 0.
  Output side ``(n * up + pad0 + pad1 - len(k) + down) // down``.

The layer classes keep the rosinality/official attribute names (``weight``, ``bias``,
``modulation``, ``blur.kernel``, ``noise.weight``, ``activate.bias`` ...), so an official
``state_dict`` loads key for key.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "fused_leaky_relu", "FusedLeakyReLU", "upfirdn2d", "make_kernel", "Blur", "Upsample",
    "EqualLinear", "EqualConv2d", "ConvLayer", "ResBlock", "PixelNorm", "resize_bilinear",
]

SQRT2 = math.sqrt(2.0)


def fused_leaky_relu(x: torch.Tensor, bias: torch.Tensor | None = None, negative_slope: float = 0.2,
                     scale: float = SQRT2) -> torch.Tensor:
    """``scale * leaky_relu(x + bias)``; ``bias`` has one value per channel (dim 1)."""
    if bias is not None:
        shape = [1, -1] + [1] * (x.ndim - 2)
        x = x + bias.view(shape)
    return F.leaky_relu(x, negative_slope) * scale


class FusedLeakyReLU(nn.Module):
    """Bias + leaky ReLU(0.2) + gain sqrt(2); parameter ``bias``."""

    def __init__(self, channels: int, bias: bool = True):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fused_leaky_relu(x, self.bias)


def make_kernel(k: Sequence[float]) -> torch.Tensor:
    """2-D FIR kernel from a 1-D (outer product) or 2-D list, normalised to sum 1."""
    t = torch.as_tensor(k, dtype=torch.float32)
    if t.ndim == 1:
        t = t[None, :] * t[:, None]
    return t / t.sum()


def _depthwise(kernel: torch.Tensor, c: int, like: torch.Tensor, flip: bool) -> torch.Tensor:
    """``kernel`` (kh, kw) as a contiguous depthwise weight (c, 1, kh, kw) in ``like``'s dtype/device
    (contiguous: a broadcast weight sends the convolution to a slow path)."""
    k = torch.flip(kernel, [0, 1]) if flip else kernel
    k = k.to(dtype=like.dtype, device=like.device)
    return k.view(1, 1, *k.shape).expand(c, 1, *k.shape).contiguous()


def upfirdn2d(x: torch.Tensor, kernel: torch.Tensor, up: int = 1, down: int = 1,
              pad: tuple[int, int] = (0, 0)) -> torch.Tensor:
    """Upsample (zero insertion), pad, FIR-filter (true convolution), downsample; per channel.

    Computed without materialising the zero-inserted or the padded image where it can be: an
    upsampling is a stride-``up`` transposed convolution with the kernel (which skips the
    inserted zeros: ``up**2`` times fewer multiply-adds), equal non-negative pads are the
    convolution's own padding."""
    n, c, h, w = x.shape
    p0, p1 = int(pad[0]), int(pad[1])
    kh, kw = kernel.shape
    if up > 1 and down == 1:
        # output m is the full transposed convolution's m + k - 1 - p0 (per axis, k the kernel side);
        # the lengths then differ by output_padding = p1 - p0 + up - 1 at the end
        extra = p1 - p0 + up - 1
        if kh - 1 - p0 >= 0 and kw - 1 - p0 >= 0 and 0 <= extra < up:
            return F.conv_transpose2d(x, _depthwise(kernel, c, x, flip=False), stride=up,
                                      padding=(kh - 1 - p0, kw - 1 - p0), output_padding=extra, groups=c)
    if up > 1:
        x = x.reshape(n, c, h, 1, w, 1)
        x = F.pad(x, (0, up - 1, 0, 0, 0, up - 1))
        x = x.reshape(n, c, h * up, w * up)
    weight = _depthwise(kernel, c, x, flip=True)
    if p0 == p1 and p0 >= 0:
        return F.conv2d(x, weight, stride=down, padding=p0, groups=c)
    x = F.pad(x, (max(p0, 0), max(p1, 0), max(p0, 0), max(p1, 0)))
    if p0 < 0 or p1 < 0:
        hh, ww = x.shape[2], x.shape[3]
        x = x[:, :, max(-p0, 0):hh - max(-p1, 0), max(-p0, 0):ww - max(-p1, 0)]
    return F.conv2d(x, weight, stride=down, groups=c)


class Blur(nn.Module):
    """FIR blur with padding; buffer ``kernel`` (times ``upsample_factor**2`` after an upsampling
    transposed convolution, as in StyleGAN2)."""

    def __init__(self, kernel: Sequence[float], pad: tuple[int, int], upsample_factor: int = 1):
        super().__init__()
        k = make_kernel(kernel)
        if upsample_factor > 1:
            k = k * upsample_factor ** 2
        self.register_buffer("kernel", k)
        self.pad = (int(pad[0]), int(pad[1]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upfirdn2d(x, self.kernel, pad=self.pad)


class Upsample(nn.Module):
    """2x FIR upsampling (zero insertion + blur); buffer ``kernel`` = kernel * factor**2."""

    def __init__(self, kernel: Sequence[float], factor: int = 2):
        super().__init__()
        self.factor = factor
        k = make_kernel(kernel) * factor ** 2
        self.register_buffer("kernel", k)
        p = k.shape[0] - factor
        self.pad = ((p + 1) // 2 + factor - 1, p // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upfirdn2d(x, self.kernel, up=self.factor, pad=self.pad)


class PixelNorm(nn.Module):
    """``x / sqrt(mean(x**2) + 1e-8)`` over the last dim; ``split=True`` normalises each half
    separately (the release's training/notebook variant; ``False`` is its painter UI)."""

    def __init__(self, split: bool = True):
        super().__init__()
        self.split = bool(split)

    @staticmethod
    def _norm(x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(torch.mean(x * x, dim=-1, keepdim=True) + 1e-8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.split:
            return self._norm(x)
        half = x.shape[-1] // 2
        return torch.cat([self._norm(x[..., :half]), self._norm(x[..., half:])], dim=-1)


class EqualLinear(nn.Module):
    """Equalized-learning-rate linear layer (weights N(0,1)/lr_mul, runtime scale
    lr_mul/sqrt(in)); ``activation=True`` fuses bias + leaky ReLU * sqrt(2)."""

    def __init__(self, in_dim: int, out_dim: int, bias: bool = True, bias_init: float = 0.0,
                 lr_mul: float = 1.0, activation: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim).div_(lr_mul))
        self.bias = nn.Parameter(torch.full((out_dim,), float(bias_init))) if bias else None
        self.scale = (1.0 / math.sqrt(in_dim)) * lr_mul
        self.lr_mul = lr_mul
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.activation:  # bias along the last (feature) dim, for inputs [..., in]
            out = F.linear(x, self.weight * self.scale,
                           self.bias * self.lr_mul if self.bias is not None else None)
            return F.leaky_relu(out, 0.2) * SQRT2
        return F.linear(x, self.weight * self.scale,
                        self.bias * self.lr_mul if self.bias is not None else None)

    def extra_repr(self) -> str:
        return f"{self.weight.shape[1]}, {self.weight.shape[0]}, lr_mul={self.lr_mul}, act={self.activation}"


class EqualConv2d(nn.Module):
    """Equalized-learning-rate convolution (runtime scale 1/sqrt(in * k * k))."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, stride: int = 1, padding: int = 0,
                 bias: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, kernel_size, kernel_size))
        self.scale = 1.0 / math.sqrt(in_ch * kernel_size ** 2)
        self.stride, self.padding = stride, padding
        self.bias = nn.Parameter(torch.zeros(out_ch)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.scale, bias=self.bias, stride=self.stride, padding=self.padding)

    def extra_repr(self) -> str:
        o, i, k, _ = self.weight.shape
        return f"{i}, {o}, {k}, stride={self.stride}, padding={self.padding}"


class ConvLayer(nn.Sequential):
    """[Blur] + EqualConv2d + [FusedLeakyReLU], the StyleGAN2 discriminator/encoder layer
    (keys ``0.kernel`` (downsampling only), ``N.weight``, ``N+1.bias``)."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, downsample: bool = False,
                 blur_kernel: Sequence[float] = (1, 3, 3, 1), bias: bool = True, activate: bool = True):
        layers: list[nn.Module] = []
        if downsample:
            p = (len(blur_kernel) - 2) + (kernel_size - 1)
            layers.append(Blur(blur_kernel, pad=((p + 1) // 2, p // 2)))
            stride, padding = 2, 0
        else:
            stride, padding = 1, kernel_size // 2
        layers.append(EqualConv2d(in_ch, out_ch, kernel_size, stride=stride, padding=padding,
                                  bias=bias and not activate))
        if activate:
            layers.append(FusedLeakyReLU(out_ch, bias=bias))
        super().__init__(*layers)


class ResBlock(nn.Module):
    """Residual downsampling block: ``(conv2(conv1(x)) + skip(x)) / sqrt(2)``, half the size."""

    def __init__(self, in_ch: int, out_ch: int, blur_kernel: Sequence[float] = (1, 3, 3, 1)):
        super().__init__()
        self.conv1 = ConvLayer(in_ch, in_ch, 3, blur_kernel=blur_kernel)
        self.conv2 = ConvLayer(in_ch, out_ch, 3, downsample=True, blur_kernel=blur_kernel)
        self.skip = ConvLayer(in_ch, out_ch, 1, downsample=True, activate=False, bias=False,
                              blur_kernel=blur_kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.conv2(self.conv1(x)) + self.skip(x)) / SQRT2


def resize_bilinear(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize with ``align_corners=True`` (the release's rule); identity at equal size."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=True)
