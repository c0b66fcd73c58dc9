"""SIW-StyleGAN: the semantic-instance-wise texture generator of SofGAN (paper §5, App. B).

Structure (``../shared/REFERENCE.md``): mapping network (PixelNorm + 8 equalized linear layers,
lr multiplier 0.01); a segmap encoder (17-class one-hot at ``condition_size`` → bilinear 32² →
3 residual downsampling blocks → 4×4×C) replacing StyleGAN2's constant input; modulated /
demodulated 3×3 convolutions with noise injection, FIR-blur upsampling and ToRGB skips; SPADE-like
γ/β (from the resized one-hot) after the upsampling convolutions at 64–256. Attribute names are the
official (rosinality-style) ones, so an official ``g_ema`` state dict loads key for key.

Region styles. Every call carries K ≥ 1 styles per sample (``z`` / ``w`` of shape ``[N, K, D]``
or W+ ``latents`` ``[N, K, L, D]``). With K > 1 a region map ``P`` ``[N, K, H, W]`` (or per-class
``class_weights`` ``[N, 17, K]``, see :mod:`.regions`) says which style paints where:

* ``mode="exact"``: every modulated convolution runs once per style and the K outputs are blended
  by P resized (bilinear, align_corners=True) to the layer — the paper's Eq. 10, for any batch
  size and any K. Cost grows with K.
* ``mode="fast"``: spatially-varying modulation — the input is scaled per pixel by the blended
  modulation ``sum_k P_k s_k``, convolved once and demodulated per pixel by the blended
  coefficients ``sum_k P_k d_k`` (computed at the input resolution, nearest-upsampled after an
  upsampling convolution). Exact wherever P is one-hot and constant over the 3×3 footprint
  (and always for the ToRGB layers, which are 1×1 and not demodulated); cost close to one style.
* In either mode, when one style paints every pixel alone (P exactly 1 for it and 0 for the others,
  e.g. a region mix whose weights are all 0 or all 1) and no gradient is recorded, only that style
  runs: the blend is that style's image, at the cost of one style.

The convolutions are computed as "scale the input, convolve with the shared weight, demodulate
the output", which is the same function as the reference's per-sample fused weights.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field, fields
from typing import Any, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .._validate import MAX_CODE_ABS, ArgumentTypeError, check_finite_tensor, check_int, check_number, describe
from ..labels import NUM_SOFGAN_CLASSES
from .ops import (
    SQRT2, Blur, EqualLinear, FusedLeakyReLU, PixelNorm, ResBlock, Upsample, resize_bilinear,
)
from .regions import check_class_weights, check_region_map, region_map_from_weights

__all__ = ["SIWConfig", "Widths", "SIWGenerator", "SIWOutput", "OFFICIAL_CHANNELS", "style_mixing_latents"]

log = logging.getLogger(__name__)

OFFICIAL_CHANNELS: Mapping[int, int] = {4: 512, 8: 512, 16: 512, 32: 512, 64: 512, 128: 256, 256: 128,
                                        512: 64, 1024: 32}
"""The release's channel table (StyleGAN2 with channel multiplier 2)."""

_MODES = ("exact", "fast")
_NOISE_MODES = ("const", "random", "none")


#: Seeds torch generators take (64-bit).
MAX_SEED = 2 ** 64 - 1
#: Most codes one :meth:`SIWGenerator.random_z` / :meth:`SIWGenerator.mean_latent` call draws.
MAX_DRAWS = 2 ** 20
#: Largest width (style_dim, channels, encoder and SPADE widths) an :class:`SIWConfig` accepts.
MAX_CONFIG_WIDTH = 4096


def _is_pow2(n: int) -> bool:
    return n > 0 and (n & (n - 1)) == 0


class Widths(Mapping):
    """A read-only ``{resolution: channels}`` table (hashable, so a frozen config can hold it)."""

    def __init__(self, table: Mapping[Any, Any] = ()):
        self._table = {int(k): int(v) for k, v in dict(table).items()}

    def __getitem__(self, res: int) -> int:
        return self._table[res]

    def __iter__(self):
        return iter(self._table)

    def __len__(self) -> int:
        return len(self._table)

    def __hash__(self) -> int:
        return hash(tuple(sorted(self._table.items())))

    def __repr__(self) -> str:
        return f"Widths({self._table!r})"


@dataclass(frozen=True)
class SIWConfig:
    """Architecture of an :class:`SIWGenerator` (and the matching discriminator). Immutable: derive
    another with ``dataclasses.replace``. The defaults are the release's at 1024²."""

    size: int = 1024                     # output side, a power of two in 32..1024
    style_dim: int = 512                 # width of z, of W and of the mapping MLP (official: 512)
    n_mlp: int = 8                       # layers of the mapping MLP z -> w (official: 8)
    lr_mlp: float = 0.01                 # equalised learning-rate multiplier of the mapping MLP
    channels: Mapping[int, int] = field(default_factory=lambda: Widths(OFFICIAL_CHANNELS))
    #                                      width per resolution 4..size (a Widths table; any mapping is converted)
    num_classes: int = NUM_SOFGAN_CLASSES  # classes of the input segmap (SofGAN-17)
    condition_size: int = 128            # side of the one-hot segmap the encoder and SPADE read (release: 128)
    encoder_channels: tuple = (32, 64, 128)  # widths of the segmap encoder's three stages
    spade_hidden: int = 128              # hidden width of each SPADE block's shared convolution
    spade_min: int = 64                  # lowest resolution with SPADE conditioning (a power of two)
    spade_max: int = 256                 # highest resolution with SPADE conditioning (a power of two)
    blur_kernel: tuple = (1, 3, 3, 1)    # separable low-pass taps used around up/down-sampling
    pixel_norm: str = "split"            # "split": each half of z normalised on its own (the release's
    #                                      training and notebooks); "whole": all of z (its painter UI)

    def __post_init__(self):
        if not isinstance(self.channels, Mapping):
            raise ArgumentTypeError(f"channels: expected a dict {{resolution: width}}, got {describe(self.channels)}")
        try:
            widths = Widths(self.channels)
        except (TypeError, ValueError, OverflowError):
            raise ArgumentTypeError(f"channels: expected integer resolutions and widths, got {self.channels!r}"
                                    ) from None
        object.__setattr__(self, "channels", widths)
        for name in ("encoder_channels", "blur_kernel"):
            v = getattr(self, name)
            if isinstance(v, (str, bytes)) or not isinstance(v, Sequence):
                raise ArgumentTypeError(f"{name}: expected a list of numbers, got {describe(v)}")
        object.__setattr__(self, "encoder_channels", tuple(check_int(c, "encoder_channels", 1, MAX_CONFIG_WIDTH)
                                                           for c in self.encoder_channels))
        taps = [check_number(k, "blur_kernel", 0, 1e6) for k in self.blur_kernel]
        object.__setattr__(self, "blur_kernel", tuple(int(k) if k.is_integer() else k for k in taps))
        self.validate()

    def validate(self) -> None:
        # upper bounds keep a tampered config.json from asking for terabytes; the release is far inside
        def pos_int(name, low=1, high=MAX_CONFIG_WIDTH):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                raise ValueError(f"{name}: expected an integer >= {low}, got {v!r}")
            if v > high:
                raise ValueError(f"{name}: expected an integer in {low}..{high}, got {v!r}")

        pos_int("size", 8)
        if not _is_pow2(self.size) or not 32 <= self.size <= 1024:
            raise ValueError(f"size: expected a power of two between 32 and 1024, got {self.size}")
        for name in ("style_dim", "spade_hidden"):
            pos_int(name)
        pos_int("n_mlp", 1, 64)
        pos_int("num_classes", 1, 256)
        pos_int("condition_size", 8, 1024)
        if self.style_dim % 2 and self.pixel_norm == "split":
            raise ValueError(f"style_dim: the split PixelNorm needs an even style_dim, got {self.style_dim}")
        if not isinstance(self.pixel_norm, str) or self.pixel_norm not in ("split", "whole"):
            raise ValueError(f"pixel_norm: expected 'split' or 'whole', got {self.pixel_norm!r}")
        check_number(self.lr_mlp, "lr_mlp", 0, 1e3, low_open=True)
        need = [2 ** i for i in range(2, int(math.log2(self.size)) + 1)]
        missing = [r for r in need if r not in self.channels]
        if missing:
            raise ValueError(f"channels: no width for resolutions {missing} (needed 4..{self.size})")
        for r in need:
            if not 1 <= self.channels[r] <= MAX_CONFIG_WIDTH:
                raise ValueError(f"channels: width at {r} must be in 1..{MAX_CONFIG_WIDTH}, got {self.channels[r]}")
        if len(self.encoder_channels) != 3 or min(self.encoder_channels) < 1:
            raise ValueError(f"encoder_channels: expected three positive widths, got {self.encoder_channels}")
        for name in ("spade_min", "spade_max"):
            pos_int(name, 1, 1024)
            if not _is_pow2(getattr(self, name)):
                raise ValueError(f"{name}: expected a power of two, got {getattr(self, name)}")
        if self.spade_min > self.spade_max:
            raise ValueError(f"spade_min/spade_max: expected spade_min <= spade_max, got {self.spade_min} > "
                             f"{self.spade_max}")

    @property
    def log_size(self) -> int:
        return int(math.log2(self.size))

    @property
    def n_latent(self) -> int:
        """Number of W+ slots (one per modulated layer): 2·log2(size) − 2."""
        return self.log_size * 2 - 2

    @property
    def num_noise(self) -> int:
        return (self.log_size - 2) * 2 + 1

    def uses_spade(self, res: int) -> bool:
        return self.spade_min <= res <= self.spade_max

    def to_dict(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["channels"] = {str(k): v for k, v in sorted(self.channels.items())}
        d["encoder_channels"] = list(self.encoder_channels)
        d["blur_kernel"] = list(self.blur_kernel)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "SIWConfig":
        known = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"SIWConfig: unknown fields {unknown}")
        return cls(**dict(d))

    @classmethod
    def official(cls, size: int = 1024, style_dim: int = 512) -> "SIWConfig":
        """The release's widths (StyleGAN2 channel multiplier 2) at ``size``."""
        return cls(size=size, style_dim=style_dim,
                   channels={k: v for k, v in OFFICIAL_CHANNELS.items() if k <= size})

    @classmethod
    def demo(cls, size: int = 128) -> "SIWConfig":
        """The CPU-trainable demo widths: style 128; 128 channels up to 16², then 64, 32, 16 at
        32, 64, 128 (halving further above); SPADE hidden width 16."""
        table = {4: 128, 8: 128, 16: 128, 32: 64, 64: 32, 128: 16, 256: 16, 512: 8, 1024: 8}
        return cls(size=size, style_dim=128, channels={k: v for k, v in table.items() if k <= size},
                   encoder_channels=(32, 64, 128), spade_hidden=16)

    @classmethod
    def preset(cls, name: str, size: int) -> "SIWConfig":
        if name == "official":
            return cls.official(size)
        if name == "demo":
            return cls.demo(size)
        raise ValueError(f"preset: expected 'demo' or 'official', got {name!r}")


@dataclass
class SIWOutput:
    """Everything a generator call can return (``return_all=True``)."""

    image: torch.Tensor            # [N, 3, size, size], roughly in [-1, 1], not clamped
    latents: torch.Tensor          # [N, K, L, D] per-slot styles used (after truncation)
    w: torch.Tensor | None         # [N, K, D] mapping output before truncation (None for W+ input)
    seg_feature: torch.Tensor      # [N, C, 4, 4] segmap-encoder output
    rgb_skips: list                # ToRGB skip images after each level (4, 8, ...)
    region_map: torch.Tensor | None  # [N, K, cs, cs] at the condition size (None for K = 1)


# --------------------------------------------------------------------------------------------
# Layers
# --------------------------------------------------------------------------------------------

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


def sole_style(region_map: torch.Tensor) -> int | None:
    """The style ``k`` that paints every pixel of ``region_map`` ``[N, K, H, W]`` alone (weight exactly 1
    there and exactly 0 for every other style, in every sample), or ``None``. With such a map the
    K-style blend is that style's image: the generator then runs that style only (K times cheaper)."""
    for k in range(region_map.shape[1]):
        if bool((region_map[:, k] == 1).all()):
            others = torch.cat([region_map[:, :k], region_map[:, k + 1:]], 1)
            if bool((others == 0).all()):
                return k
            return None
    return None


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

    def _weights(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(scaled weight [out, in, kh, kw], its squares summed over the kernel [out, in] or None).
        Without gradients they are kept until the weight changes (its version or storage)."""
        if torch.is_grad_enabled() and self.weight.requires_grad:
            weight = self.weight[0] * self.scale
            return weight, (weight.pow(2).sum(dim=(2, 3)) if self.demodulate else None)
        key = (self.weight.data_ptr(), self.weight._version, self.weight.dtype, self.weight.device)
        cached = self.__dict__.get("_weight_cache")
        if cached is None or cached[0] != key:
            with torch.no_grad():
                weight = self.weight[0] * self.scale
                cached = (key, weight, weight.pow(2).sum(dim=(2, 3)) if self.demodulate else None)
            self.__dict__["_weight_cache"] = cached
        return cached[1], cached[2]

    def forward(self, x: torch.Tensor, w: torch.Tensor, region_map: torch.Tensor | None = None,
                mode: str = "exact") -> torch.Tensor:
        """``x`` [N, in, H, W]; ``w`` [N, K, D]; ``region_map`` [N, K, h, w] (K > 1)."""
        n, k = w.shape[0], w.shape[1]
        inplace = not torch.is_grad_enabled()                         # inference: no autograd to keep
        sigma = self.modulation(w)                                   # [N, K, in]
        weight, wsq = self._weights()                                # [out, in, kh, kw], [out, in]
        if k == 1:
            s = sigma[:, 0]
            out = self._conv(x * s[:, :, None, None], weight)
            if self.demodulate:
                d = self._demod(s * s, wsq)[:, :, None, None]
                out = out.mul_(d) if inplace else out * d
            return out
        if mode == "exact":
            xs = (x[:, None] * sigma[:, :, :, None, None]).flatten(0, 1)   # [N*K, in, H, W]
            out = self._conv(xs, weight)
            if self.demodulate:
                d = self._demod((sigma * sigma).flatten(0, 1), wsq)[:, :, None, None]
                out = out.mul_(d) if inplace else out * d
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
            out = out.mul_(dmap) if inplace else out * dmap
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

    def forward(self, x: torch.Tensor, onehot: torch.Tensor, inplace: bool = False) -> torch.Tensor:
        """``x·(1+γ)+β``; ``inplace``: overwrite ``x`` (inference, the same numbers)."""
        c = resize_bilinear(onehot, x.shape[-2:]).to(x.dtype)
        a = self.mlp_shared(c)
        if inplace:
            return x.mul_(self.mlp_gamma(a).add_(1)).add_(self.mlp_beta(a))
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
        if torch.is_grad_enabled():
            out = self.noise(out, noise)
            out = self.activate(out)
        else:  # inference: the same operations, in place on the convolution's fresh output
            if noise is not None:
                out = out.add_(self.noise.weight * noise)
            out = F.leaky_relu_(out.add_(self.activate.bias.view(1, -1, 1, 1)), 0.2).mul_(SQRT2)
        if hasattr(self, "segEncoder"):
            out = self.segEncoder(out, onehot, inplace=not torch.is_grad_enabled())
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
        if torch.is_grad_enabled():
            out = out + self.bias
            return out if skip is None else out + self.upsample(skip)
        out = out.add_(self.bias)  # inference: in place on the convolution's fresh output
        return out if skip is None else out.add_(self.upsample(skip))


class _Noises(nn.Module):
    def __init__(self, sizes: Sequence[int]):
        super().__init__()
        for i, r in enumerate(sizes):
            self.register_buffer(f"noise_{i}", torch.randn(1, 1, r, r))


# --------------------------------------------------------------------------------------------
# Generator
# --------------------------------------------------------------------------------------------

class SIWGenerator(nn.Module):
    """The SofGAN texture generator; see the module docstring for region styles."""

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
        n = check_int(n, "n", 1, MAX_DRAWS)
        seed = check_int(seed, "seed", 0, MAX_SEED)
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
        """``[n, k, D]`` standard normal codes (CPU generator, so seeds agree across devices); ``n`` in
        ``0..MAX_DRAWS``, ``k`` in ``1..64``, ``seed`` in ``0..2**64 - 1`` (torch generators take 64-bit seeds)."""
        n, k = check_int(n, "n", 0, MAX_DRAWS), check_int(k, "k", 1, 64)
        if generator is None:
            generator = torch.Generator().manual_seed(check_int(seed, "seed", 0, MAX_SEED) if seed is not None else
                                                      int(torch.randint(0, 2 ** 31, ()).item()))
        elif not isinstance(generator, torch.Generator):
            raise ArgumentTypeError(f"generator: expected a torch.Generator, got {describe(generator)}")
        return torch.randn(n, k, self.style_dim, generator=generator).to(self.device)

    def make_noise(self, batch: int = 1, *, generator: torch.Generator | None = None) -> list[torch.Tensor]:
        """Fresh noise maps, one per noise layer, ``[batch, 1, r, r]``."""
        batch = check_int(batch, "batch", 1, MAX_DRAWS)
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
            from ..labels import sof_to_sofgan, validate_labels

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
            lat = self._float_tensor(latents, "latents")
            if lat.ndim == 3:
                lat = lat[:, None]
            if lat.ndim != 4 or lat.shape[2] != L or lat.shape[3] != d:
                raise ValueError(f"latents: expected shape [N, K, {L}, {d}] or [N, {L}, {d}], got {tuple(lat.shape)}")
        else:
            name, v = ("z", z) if z is not None else ("w", w)
            v = self._float_tensor(v, name)
            if v.ndim == 2:
                v = v[:, None]
            if v.ndim != 3 or v.shape[-1] != d:
                raise ValueError(f"{name}: expected shape [N, {d}] or [N, K, {d}], got {tuple(v.shape)}")
            w_out = self.mapping(v) if name == "z" else v
            lat = w_out[:, :, None].expand(-1, -1, L, -1)
        if lat.shape[0] != batch:
            if lat.shape[0] == 1:
                lat = lat.expand(batch, -1, -1, -1)
                w_out = w_out.expand(batch, -1, -1) if w_out is not None else None
            else:
                raise ValueError(f"styles: {lat.shape[0]} style rows for a segmap batch of {batch}")
        truncation = check_number(truncation, "truncation", 0, 1)
        if truncation < 1:
            cutoff = L if truncation_cutoff is None else check_int(truncation_cutoff, "truncation_cutoff", 0, L)
            mean = (self.mean_latent() if truncation_latent is None
                    else self._float_tensor(truncation_latent, "truncation_latent").to(lat))
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
        if not isinstance(noise, (list, tuple)):
            raise ArgumentTypeError(f"noise: expected one of {_NOISE_MODES} or a list of {n} tensors, got "
                                    f"{describe(noise)}")
        noise = list(noise)
        if len(noise) != n:
            raise ValueError(f"noise: expected {n} noise maps, got {len(noise)}")
        out = []
        for i, t in enumerate(noise):
            if t is None:
                out.append(None)
                continue
            r = getattr(self.noises, f"noise_{i}").shape[-1]
            if not isinstance(t, torch.Tensor):
                raise ArgumentTypeError(f"noise[{i}]: expected a tensor [N, 1, {r}, {r}] or None, got {describe(t)}")
            if t.ndim != 4 or t.shape[1] != 1 or t.shape[0] not in (1, batch) or tuple(t.shape[2:]) != (r, r):
                want = f"[1, 1, {r}, {r}]" + (f" or [{batch}, 1, {r}, {r}]" if batch > 1 else "")
                raise ValueError(f"noise[{i}]: expected shape {want}, got {tuple(t.shape)}")
            if not t.is_floating_point():
                raise ArgumentTypeError(f"noise[{i}]: expected a float tensor, got dtype {t.dtype}")
            out.append(check_finite_tensor(t, f"noise[{i}]", MAX_CODE_ABS).to(self.device))
        return out

    def _float_tensor(self, x: Any, name: str) -> torch.Tensor:
        """A float tensor (or array) of finite values within ±:data:`MAX_CODE_ABS` on the module's device;
        errors name ``name``."""
        if isinstance(x, torch.Tensor):
            t = x
        elif isinstance(x, np.ndarray) and x.dtype.kind in "fiu":
            t = torch.as_tensor(x)
        elif isinstance(x, (list, tuple)):
            try:
                t = torch.as_tensor(np.asarray(x, dtype=np.float32))
            except (TypeError, ValueError):
                raise ArgumentTypeError(f"{name}: expected a float tensor, got a {type(x).__name__} that is not "
                                        "numbers of one shape") from None
        else:
            raise ArgumentTypeError(f"{name}: expected a float tensor, got {describe(x)}")
        if not torch.is_floating_point(t):
            raise ArgumentTypeError(f"{name}: expected a float tensor, got dtype {t.dtype}")
        return check_finite_tensor(t, name, MAX_CODE_ABS).to(self.device)

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
        run, pyramid = lat, (RegionPyramid(pmap) if pmap is not None else None)
        sole = None if pmap is None or torch.is_grad_enabled() else sole_style(pmap)
        if sole is not None:  # one style paints every pixel: the blend equals that style's image alone
            run, pyramid = lat[:, sole:sole + 1], None
        noises = self._noise_list(noise, batch, generator)
        seg_feature = self.encode_segmap(onehot)

        skips = []
        x = self.conv1(seg_feature, run[:, :, 0], noises[0], onehot, pyramid, mode)
        skip = self.to_rgb1(x, run[:, :, 1], None, pyramid)
        skips.append(skip)
        i = 1
        for level in range(len(self.to_rgbs)):
            up, conv, to_rgb = self.convs[2 * level], self.convs[2 * level + 1], self.to_rgbs[level]
            x = up(x, run[:, :, i], noises[i], onehot, pyramid, mode)
            x = conv(x, run[:, :, i + 1], noises[i + 1], onehot, pyramid, mode)
            skip = to_rgb(x, run[:, :, i + 2], skip, pyramid)
            skips.append(skip)
            i += 2
        if not return_all:
            return skip
        return SIWOutput(image=skip, latents=lat, w=w_out, seg_feature=seg_feature, rgb_skips=skips,
                         region_map=pmap)

    # ---------------------------------------------------------------- persistence
    def save_pretrained(self, directory) -> Any:
        from ..io.checkpoints import save_module

        return save_module(self, directory, kind="siw_generator", config=self.config.to_dict())

    @classmethod
    def from_pretrained(cls, directory, *, map_location: str | torch.device = "cpu") -> "SIWGenerator":
        """Load a generator written by :meth:`save_pretrained`; ``"demo"`` loads ``data/demo/siw``."""
        from ..io.checkpoints import load_module

        if isinstance(directory, str) and directory == "demo":
            from ..demo import demo_dir

            directory = demo_dir("siw")
        return load_module(cls, directory, kind="siw_generator", config_cls=SIWConfig, map_location=map_location)


def style_mixing_latents(w_a: torch.Tensor, w_b: torch.Tensor, crossover: int | torch.Tensor, n_latent: int
                         ) -> torch.Tensor:
    """StyleGAN style mixing: slots ``< crossover`` take ``w_a``, the rest ``w_b``.

    ``w_a``, ``w_b``: ``[N, K, D]``; ``crossover``: an int or ``[N]`` ints → ``[N, K, L, D]``."""
    n = w_a.shape[0]
    c = torch.as_tensor(crossover, device=w_a.device).reshape(-1)
    if c.numel() == 1:
        c = c.expand(n)
    slot = torch.arange(n_latent, device=w_a.device)
    use_a = (slot[None] < c[:, None]).to(w_a.dtype)[:, None, :, None]    # [N, 1, L, 1]
    return use_a * w_a[:, :, None] + (1 - use_a) * w_b[:, :, None]
