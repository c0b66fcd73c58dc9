"""Frozen copy of the SIW generator's forward path as it was at the start of issue 21 (commit
ad6c3ed: ``sofgan_lab/texture/ops.py`` and the layers and forward of
``sofgan_lab/texture/generator.py``), kept so that benchmarks can time today's implementation
against it in the same run and check that outputs agree.

Do not optimise or edit this file: it is the baseline. It shares the state-dict layout of
:class:`sofgan_lab.texture.SIWGenerator`, so ``ReferenceSIWGenerator(g.config)`` loads
``g.state_dict()`` key for key. Configs and region-map helpers (unchanged by issue 21) come from
the library.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from sofgan_lab.texture.generator import SIWConfig, SIWOutput, _MODES, _NOISE_MODES
from sofgan_lab.texture.regions import check_class_weights, check_region_map, region_map_from_weights

__all__ = ["ReferenceSIWGenerator", "reference_siw"]

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


def upfirdn2d(x: torch.Tensor, kernel: torch.Tensor, up: int = 1, down: int = 1,
              pad: tuple[int, int] = (0, 0)) -> torch.Tensor:
    """Upsample (zero insertion), pad, FIR-filter (true convolution), downsample; per channel."""
    n, c, h, w = x.shape
    if up > 1:
        x = x.reshape(n, c, h, 1, w, 1)
        x = F.pad(x, (0, up - 1, 0, 0, 0, up - 1))
        x = x.reshape(n, c, h * up, w * up)
    p0, p1 = int(pad[0]), int(pad[1])
    x = F.pad(x, (max(p0, 0), max(p1, 0), max(p0, 0), max(p1, 0)))
    if p0 < 0 or p1 < 0:
        hh, ww = x.shape[2], x.shape[3]
        x = x[:, :, max(-p0, 0):hh - max(-p1, 0), max(-p0, 0):ww - max(-p1, 0)]
    kh, kw = kernel.shape
    weight = torch.flip(kernel, [0, 1]).to(dtype=x.dtype, device=x.device)
    weight = weight.view(1, 1, kh, kw).expand(c, 1, kh, kw)
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


# ---- generator layers (from generator.py)

class RegionPyramid:
    """A region map ``[N, K, h, w]`` with its bilinear (align_corners=True) resizes cached per size:
    one generator call resizes it to each layer size once, not once per layer."""

    def __init__(self, region_map: torch.Tensor):
        self.base = region_map
        self._cache: dict = {}

    def at(self, size, dtype: torch.dtype) -> torch.Tensor:
        key = (tuple(int(s) for s in size), dtype)
        hit = self._cache.get(key)
        if hit is None:
            hit = self._cache[key] = resize_bilinear(self.base, key[0]).to(dtype)
        return hit


def _region_at(region_map, size, dtype: torch.dtype) -> torch.Tensor:
    if isinstance(region_map, RegionPyramid):
        return region_map.at(size, dtype)
    return resize_bilinear(region_map, tuple(size)).to(dtype)


class ModulatedConv2d(nn.Module):
    """StyleGAN2 modulated convolution with K styles per sample (exact blend or fast mode)."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, style_dim: int, demodulate: bool = True,
                 upsample: bool = False, blur_kernel: Sequence[float] = (1, 3, 3, 1)):
        super().__init__()
        self.in_ch, self.out_ch, self.kernel_size = in_ch, out_ch, kernel_size
        self.demodulate, self.upsample = demodulate, upsample
        self.weight = nn.Parameter(torch.randn(1, out_ch, in_ch, kernel_size, kernel_size))
        self.scale = 1.0 / math.sqrt(in_ch * kernel_size ** 2)
        self.modulation = EqualLinear(style_dim, in_ch, bias_init=1.0)
        if upsample:
            factor = 2
            p = (len(blur_kernel) - factor) - (kernel_size - 1)
            self.blur = Blur(blur_kernel, pad=((p + 1) // 2 + factor - 1, p // 2 + 1), upsample_factor=factor)

    def extra_repr(self) -> str:
        return (f"{self.in_ch}, {self.out_ch}, {self.kernel_size}, demodulate={self.demodulate}, "
                f"upsample={self.upsample}")

    def _conv(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        if self.upsample:
            x = F.conv_transpose2d(x, weight.transpose(0, 1), stride=2, padding=0)
            return self.blur(x)
        return F.conv2d(x, weight, padding=self.kernel_size // 2)

    def _demod(self, sigma2: torch.Tensor, wsq: torch.Tensor) -> torch.Tensor:
        # sigma2 [..., in] -> [..., out]
        return torch.rsqrt(sigma2 @ wsq.t() + 1e-8)

    def forward(self, x: torch.Tensor, w: torch.Tensor, region_map: torch.Tensor | None = None,
                mode: str = "exact") -> torch.Tensor:
        """``x`` [N, in, H, W]; ``w`` [N, K, D]; ``region_map`` [N, K, h, w] (K > 1)."""
        n, k = w.shape[0], w.shape[1]
        sigma = self.modulation(w)                                   # [N, K, in]
        weight = self.weight[0] * self.scale                         # [out, in, kh, kw]
        wsq = weight.pow(2).sum(dim=(2, 3)) if self.demodulate else None  # [out, in]
        if k == 1:
            s = sigma[:, 0]
            out = self._conv(x * s[:, :, None, None], weight)
            if self.demodulate:
                out = out * self._demod(s * s, wsq)[:, :, None, None]
            return out
        if mode == "exact":
            xs = (x[:, None] * sigma[:, :, :, None, None]).flatten(0, 1)   # [N*K, in, H, W]
            out = self._conv(xs, weight)
            if self.demodulate:
                out = out * self._demod((sigma * sigma).flatten(0, 1), wsq)[:, :, None, None]
            out = out.unflatten(0, (n, k))                              # [N, K, out, H', W']
            p = _region_at(region_map, out.shape[-2:], out.dtype)
            return torch.einsum("nkchw,nkhw->nchw", out, p)
        # fast: spatially-varying modulation. One batched matmul blends, per pixel of the input,
        # the modulation (in channels) and each style's demodulation coefficients (out channels).
        h, w_ = x.shape[-2:]
        p_in = _region_at(region_map, (h, w_), x.dtype).flatten(2)        # [N, K, HW]
        if self.demodulate:
            d = self._demod(sigma * sigma, wsq)                            # [N, K, out]
            both = torch.bmm(torch.cat([sigma, d], 2).transpose(1, 2), p_in)  # [N, in + out, HW]
            smap, dmap = both[:, :self.in_ch], both[:, self.in_ch:]
        else:
            smap = torch.bmm(sigma.transpose(1, 2), p_in)
        out = self._conv(x * smap.view(n, -1, h, w_), weight)
        if self.demodulate:
            dmap = dmap.reshape(n, -1, h, w_)
            if out.shape[-2:] != dmap.shape[-2:]:                           # upsampling layer
                dmap = F.interpolate(dmap, size=out.shape[-2:], mode="nearest")
            out = out * dmap
        return out


class NoiseInjection(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor, noise: torch.Tensor | None) -> torch.Tensor:
        if noise is None:
            return x
        return x + self.weight * noise


class SPADE(nn.Module):
    """γ/β from the resized one-hot (Conv 17→hidden + lrelu 0.2, then Conv hidden→C each);
    applied by the caller as ``x·(1+γ)+β`` without normalisation."""

    def __init__(self, num_classes: int, hidden: int, channels: int):
        super().__init__()
        self.mlp_shared = nn.Sequential(nn.Conv2d(num_classes, hidden, 3, padding=1), nn.LeakyReLU(0.2))
        self.mlp_gamma = nn.Conv2d(hidden, channels, 3, padding=1)
        self.mlp_beta = nn.Conv2d(hidden, channels, 3, padding=1)

    def forward(self, x: torch.Tensor, onehot: torch.Tensor) -> torch.Tensor:
        c = resize_bilinear(onehot, x.shape[-2:]).to(x.dtype)
        a = self.mlp_shared(c)
        return x * (1 + self.mlp_gamma(a)) + self.mlp_beta(a)


class StyledConv(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, style_dim: int, upsample: bool = False,
                 blur_kernel: Sequence[float] = (1, 3, 3, 1), spade: tuple[int, int] | None = None):
        super().__init__()
        self.conv = ModulatedConv2d(in_ch, out_ch, kernel_size, style_dim, upsample=upsample, blur_kernel=blur_kernel)
        self.noise = NoiseInjection()
        self.activate = FusedLeakyReLU(out_ch)
        if spade is not None:
            self.segEncoder = SPADE(spade[0], spade[1], out_ch)

    def forward(self, x, w, noise, onehot, region_map=None, mode="exact"):
        out = self.conv(x, w, region_map, mode)
        out = self.noise(out, noise)
        out = self.activate(out)
        if hasattr(self, "segEncoder"):
            out = self.segEncoder(out, onehot)
        return out


class ToRGB(nn.Module):
    def __init__(self, in_ch: int, style_dim: int, upsample: bool = True,
                 blur_kernel: Sequence[float] = (1, 3, 3, 1)):
        super().__init__()
        if upsample:
            self.upsample = Upsample(blur_kernel)
        self.conv = ModulatedConv2d(in_ch, 3, 1, style_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))

    def forward(self, x, w, skip=None, region_map=None):
        # A 1x1 convolution without demodulation is linear in the modulation, so the blend of K
        # outputs equals one convolution with the blended modulation: "fast" is exact here.
        if w.shape[1] == 1:
            out = self.conv(x, w)
        else:
            out = self.conv(x, w, region_map, "fast")
        out = out + self.bias
        if skip is not None:
            out = out + self.upsample(skip)
        return out


class _Noises(nn.Module):
    def __init__(self, sizes: Sequence[int]):
        super().__init__()
        for i, r in enumerate(sizes):
            self.register_buffer(f"noise_{i}", torch.randn(1, 1, r, r))


# --------------------------------------------------------------------------------------------
# Generator
# --------------------------------------------------------------------------------------------

class ReferenceSIWGenerator(nn.Module):
    """The SIW generator as of ad6c3ed (see the module docstring)."""

    def __init__(self, config: SIWConfig | None = None):
        super().__init__()
        self.config = config = config if config is not None else SIWConfig.demo()
        d, bk = config.style_dim, config.blur_kernel
        self.style = nn.Sequential(PixelNorm(split=config.pixel_norm == "split"),
                                   *[EqualLinear(d, d, lr_mul=config.lr_mlp, activation=True)
                                     for _ in range(config.n_mlp)])
        enc = (config.num_classes,) + config.encoder_channels
        self.segEncoder = nn.Sequential(*[ResBlock(enc[i], enc[i + 1], bk) for i in range(3)])
        ch = config.channels
        self.conv1 = StyledConv(enc[-1], ch[4], 3, d, blur_kernel=bk)
        self.to_rgb1 = ToRGB(ch[4], d, upsample=False)
        self.convs = nn.ModuleList()
        self.to_rgbs = nn.ModuleList()
        in_ch = ch[4]
        sizes = [4]
        for i in range(3, config.log_size + 1):
            res = 2 ** i
            out_ch = ch[res]
            spade = (config.num_classes, config.spade_hidden) if config.uses_spade(res) else None
            self.convs.append(StyledConv(in_ch, out_ch, 3, d, upsample=True, blur_kernel=bk, spade=spade))
            self.convs.append(StyledConv(out_ch, out_ch, 3, d, blur_kernel=bk))
            self.to_rgbs.append(ToRGB(out_ch, d, blur_kernel=bk))
            sizes += [res, res]
            in_ch = out_ch
        self.noises = _Noises(sizes)
        self._mean_cache: tuple | None = None

    # ---------------------------------------------------------------- properties & helpers
    @property
    def n_latent(self) -> int:
        return self.config.n_latent

    @property
    def style_dim(self) -> int:
        return self.config.style_dim

    @property
    def device(self) -> torch.device:
        return self.conv1.conv.weight.device

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def mapping(self, z: torch.Tensor) -> torch.Tensor:
        """z ``[..., D]`` → w ``[..., D]``."""
        if z.shape[-1] != self.style_dim:
            raise ValueError(f"z: last dimension must be style_dim={self.style_dim}, got shape {tuple(z.shape)}")
        return self.style(z)

    @torch.no_grad()
    def mean_latent(self, n: int = 4096, seed: int = 0) -> torch.Tensor:
        """Mean of the mapping over ``n`` z ~ N(0, I) drawn from ``seed`` → ``[D]`` (cached until the
        mapping weights change)."""
        params = [p for p in self.style.parameters()]
        key = (n, seed, str(self.device), tuple((p.data_ptr(), p._version) for p in params))
        if self._mean_cache is not None and self._mean_cache[0] == key:
            return self._mean_cache[1]
        g = torch.Generator().manual_seed(seed)
        z = torch.randn(n, self.style_dim, generator=g)
        total = torch.zeros(self.style_dim, dtype=torch.float64, device=self.device)
        for chunk in z.split(1024):
            total += self.style(chunk.to(self.device)).double().sum(0)
        mean = (total / n).float()
        self._mean_cache = (key, mean)
        return mean

    def random_z(self, n: int, k: int = 1, *, seed: int | None = None,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        """``[n, k, D]`` standard normal codes (CPU generator, so seeds agree across devices)."""
        if generator is None:
            generator = torch.Generator().manual_seed(int(seed) if seed is not None else
                                                      int(torch.randint(0, 2 ** 31, ()).item()))
        return torch.randn(n, k, self.style_dim, generator=generator).to(self.device)

    def make_noise(self, batch: int = 1, *, generator: torch.Generator | None = None) -> list[torch.Tensor]:
        """Fresh noise maps, one per noise layer, ``[batch, 1, r, r]``."""
        out = []
        for i in range(self.config.num_noise):
            r = getattr(self.noises, f"noise_{i}").shape[-1]
            out.append(torch.randn(batch, 1, r, r, generator=generator).to(self.device))
        return out

    # ---------------------------------------------------------------- inputs
    def prepare_segmap(self, segmap: Any, label_set: str = "sofgan17") -> torch.Tensor:
        """Label map → one-hot ``[N, 17, cs, cs]`` float at the condition size.

        ``segmap``: integer ``[N, H, W]`` or ``[H, W]`` (tensor or numpy) with SofGAN-17 ids
        (``label_set="sof20"`` converts SOF-20 ids first), or a float one-hot / soft map
        ``[N, 17, H, W]``. Integer maps are nearest-resized (source index floor(dst·in/out), the
        release's rule); soft maps bilinearly."""
        cs = self.config.condition_size
        nc = self.config.num_classes
        t = torch.as_tensor(segmap) if not isinstance(segmap, torch.Tensor) else segmap
        if torch.is_floating_point(t):
            if t.ndim != 4 or t.shape[1] != nc:
                raise ValueError(f"segmap: a float segmap must be a one-hot/soft map [N, {nc}, H, W]; got shape "
                                 f"{tuple(t.shape)} (pass integer label ids for a label map)")
            if not torch.isfinite(t).all() or t.min() < 0 or t.max() > 1:
                raise ValueError("segmap: one-hot values must be finite and lie in [0, 1]")
            t = t.to(self.device, torch.float32)
            if tuple(t.shape[-2:]) != (cs, cs):
                t = F.interpolate(t, size=(cs, cs), mode="bilinear", align_corners=True)
            return t
        if t.dtype == torch.bool or not (t.dtype in (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)):
            raise TypeError(f"segmap: expected integer label ids or a float one-hot map, got dtype {t.dtype}")
        if t.ndim == 2:
            t = t[None]
        if t.ndim == 4 and t.shape[1] == 1:
            t = t[:, 0]
        if t.ndim != 3:
            raise ValueError(f"segmap: expected a label map [N, H, W] or [H, W], got shape {tuple(t.shape)}")
        if label_set not in ("sofgan17", "sof20"):
            raise ValueError(f"label_set: expected 'sofgan17' or 'sof20', got {label_set!r}")
        t = t.long()
        if label_set == "sof20":
            from sofgan_lab.labels import sof_to_sofgan, validate_labels

            validate_labels(t, "sof20", name="segmap")
            t = sof_to_sofgan(t)
        if t.numel() and (t.min() < 0 or t.max() >= nc):
            bad = torch.unique(t[(t < 0) | (t >= nc)])[:10].tolist()
            raise ValueError(f"segmap: label ids must lie in 0..{nc - 1} (SofGAN-17); found {bad}")
        t = t.to(self.device)
        if tuple(t.shape[-2:]) != (cs, cs):
            t = F.interpolate(t[:, None].float(), size=(cs, cs), mode="nearest")[:, 0].long()
        return F.one_hot(t, nc).permute(0, 3, 1, 2).float()

    def encode_segmap(self, onehot: torch.Tensor) -> torch.Tensor:
        """One-hot at the condition size → the 4×4 synthesis input."""
        x = resize_bilinear(onehot, (32, 32))
        return self.segEncoder(x)

    def _styles(self, batch: int, z, w, latents, truncation, truncation_cutoff, truncation_latent):
        given = [name for name, v in (("z", z), ("w", w), ("latents", latents)) if v is not None]
        if len(given) != 1:
            raise ValueError(f"styles: pass exactly one of z, w or latents (got {given or 'none'})")
        d, L = self.style_dim, self.n_latent
        w_out = None
        if latents is not None:
            lat = torch.as_tensor(latents).to(self.device)
            if lat.ndim == 3:
                lat = lat[:, None]
            if lat.ndim != 4 or lat.shape[2] != L or lat.shape[3] != d:
                raise ValueError(f"latents: expected shape [N, K, {L}, {d}] or [N, {L}, {d}], got {tuple(lat.shape)}")
        else:
            name, v = ("z", z) if z is not None else ("w", w)
            v = torch.as_tensor(v).to(self.device)
            if v.ndim == 2:
                v = v[:, None]
            if v.ndim != 3 or v.shape[-1] != d:
                raise ValueError(f"{name}: expected shape [N, {d}] or [N, K, {d}], got {tuple(v.shape)}")
            if not torch.is_floating_point(v):
                raise TypeError(f"{name}: expected a float tensor, got dtype {v.dtype}")
            w_out = self.mapping(v) if name == "z" else v
            lat = w_out[:, :, None].expand(-1, -1, L, -1)
        if lat.shape[0] != batch:
            if lat.shape[0] == 1:
                lat = lat.expand(batch, -1, -1, -1)
                w_out = w_out.expand(batch, -1, -1) if w_out is not None else None
            else:
                raise ValueError(f"styles: {lat.shape[0]} style rows for a segmap batch of {batch}")
        if isinstance(truncation, bool) or not isinstance(truncation, (int, float)) or not 0 <= truncation <= 1:
            raise ValueError(f"truncation: expected a number in [0, 1], got {truncation!r}")
        if truncation < 1:
            cutoff = L if truncation_cutoff is None else int(truncation_cutoff)
            if not 0 <= cutoff <= L:
                raise ValueError(f"truncation_cutoff: expected 0..{L}, got {truncation_cutoff!r}")
            mean = self.mean_latent() if truncation_latent is None else torch.as_tensor(truncation_latent).to(lat)
            mean = mean.reshape(-1)
            if mean.shape[0] != d:
                raise ValueError(f"truncation_latent: expected {d} values, got {mean.shape[0]}")
            trunc = mean + truncation * (lat[:, :, :cutoff] - mean)
            lat = torch.cat([trunc, lat[:, :, cutoff:]], dim=2)
        return lat, w_out

    def _noise_list(self, noise, batch, generator):
        n = self.config.num_noise
        if isinstance(noise, str):
            if noise not in _NOISE_MODES:
                raise ValueError(f"noise: expected one of {_NOISE_MODES} or a list of {n} tensors, got {noise!r}")
            if noise == "const":
                return [getattr(self.noises, f"noise_{i}") for i in range(n)]
            if noise == "none":
                return [None] * n
            return self.make_noise(batch, generator=generator)
        noise = list(noise)
        if len(noise) != n:
            raise ValueError(f"noise: expected {n} noise maps, got {len(noise)}")
        return [None if t is None else t.to(self.device) for t in noise]

    # ---------------------------------------------------------------- forward
    def forward(self, segmap: Any, z: torch.Tensor | None = None, *, w: torch.Tensor | None = None,
                latents: torch.Tensor | None = None, region_map: torch.Tensor | None = None,
                class_weights: torch.Tensor | None = None, mode: str = "exact", truncation: float = 1.0,
                truncation_cutoff: int | None = None, truncation_latent: torch.Tensor | None = None,
                noise: Any = "const", generator: torch.Generator | None = None, label_set: str = "sofgan17",
                return_all: bool = False):
        """Render portraits for a batch of segmaps.

        Styles: ``z`` or ``w`` ``[N, D]`` / ``[N, K, D]``, or W+ ``latents`` ``[N, K, L, D]``; a single
        row is broadcast over the batch. With K > 1 give ``region_map`` ``[N, K, H, W]`` or
        ``class_weights`` ``[N, 17, K]`` (see :mod:`sofgan_lab.texture.regions`).
        ``truncation`` ψ pulls the first ``truncation_cutoff`` slots (default all) toward the mean
        latent (``truncation_latent`` or :meth:`mean_latent`). ``noise``: ``"const"`` (the stored
        buffers), ``"random"`` (drawn from ``generator``), ``"none"``, or a list of maps.

        Returns the image ``[N, 3, size, size]`` (≈ [-1, 1], not clamped), or an
        :class:`SIWOutput` with ``return_all=True``."""
        if mode not in _MODES:
            raise ValueError(f"mode: expected one of {_MODES}, got {mode!r}")
        onehot = self.prepare_segmap(segmap, label_set)
        batch = onehot.shape[0]
        lat, w_out = self._styles(batch, z, w, latents, truncation, truncation_cutoff, truncation_latent)
        k = lat.shape[1]
        pmap = None
        if k > 1:
            if (region_map is None) == (class_weights is None):
                raise ValueError(f"region_map: {k} styles per sample need exactly one of region_map [N, {k}, H, W] "
                                 f"or class_weights [N, 17, {k}]")
            if class_weights is not None:
                cw = check_class_weights(class_weights, batch, k).to(onehot)
                pmap = region_map_from_weights(onehot, cw)
            else:
                pmap = check_region_map(region_map, batch, k).to(onehot)
        elif region_map is not None or class_weights is not None:
            cnt = (region_map if region_map is not None else class_weights).shape
            raise ValueError(f"region_map: a region map needs two or more styles per sample; got one style "
                             f"(z/w/latents with K=1) and a map of shape {tuple(cnt)}")
        pyramid = RegionPyramid(pmap) if pmap is not None else None
        noises = self._noise_list(noise, batch, generator)
        seg_feature = self.encode_segmap(onehot)

        skips = []
        x = self.conv1(seg_feature, lat[:, :, 0], noises[0], onehot, pyramid, mode)
        skip = self.to_rgb1(x, lat[:, :, 1], None, pyramid)
        skips.append(skip)
        i = 1
        for level in range(len(self.to_rgbs)):
            up, conv, to_rgb = self.convs[2 * level], self.convs[2 * level + 1], self.to_rgbs[level]
            x = up(x, lat[:, :, i], noises[i], onehot, pyramid, mode)
            x = conv(x, lat[:, :, i + 1], noises[i + 1], onehot, pyramid, mode)
            skip = to_rgb(x, lat[:, :, i + 2], skip, pyramid)
            skips.append(skip)
            i += 2
        if not return_all:
            return skip
        return SIWOutput(image=skip, latents=lat, w=w_out, seg_feature=seg_feature, rgb_skips=skips,
                         region_map=pmap)


def reference_siw(generator: nn.Module) -> ReferenceSIWGenerator:
    """A :class:`ReferenceSIWGenerator` with ``generator``'s config and weights, on its device, in eval mode."""
    ref = ReferenceSIWGenerator(generator.config)
    ref.load_state_dict(generator.state_dict())
    return ref.to(next(generator.parameters()).device).eval()
