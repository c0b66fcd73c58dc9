"""Projection of a photo into SofGAN's two spaces (paper §6.4, Fig. 12 bottom, Fig. 21, Fig. 27).

**Texture** (:func:`project_texture`). A photo and its segmap (given, or parsed from the photo) are
fitted by the texture generator: starting from the mean W, Adam optimises the style — one W code
broadcast over all slots (``mode="w"``), one code per slot (``"w+"``), or two W+ codes blended by a
learnable per-class mix (``"two"``) — together with the per-layer noise maps. The loss is a
perceptual distance (LPIPS with a VGG16 trunk when its weights are on disk; see below), plus
``mse_weight`` times the pixel MSE, plus the StyleGAN2 noise regulariser (the squared
autocorrelation of every noise map with its one-pixel shifts, over a pyramid of 2x2-averaged
copies down to 8 px) weighted by ``noise_regularize``; the noise maps are renormalised to zero mean
and unit variance after every step. As in the StyleGAN2 projector the learning rate ramps up over
the first ``lr_rampup`` fraction of the steps and down along a half cosine over the last
``lr_rampdown`` fraction, and a Gaussian perturbation of the code, of standard deviation
``initial_noise_factor * w_std * max(0, 1 - t / noise_ramp_length) ** 2`` (``t`` = fraction of the
steps done; ``w_std`` = the RMS distance of mapped codes from the mean W) is added during the first
steps. The result, :class:`TextureProjection`, renders the photo's style on any segmap
(:meth:`TextureProjection.render`) and edits it regionally with another style
(:meth:`TextureProjection.restyle`, Fig. 27).

**Geometry** (:func:`project_geometry`). The photo is parsed to a SOF-20 map, which is inverted into
the SOF latent space (:func:`sofgan_lab.geometry.inversion.invert_segmap`) through the pipeline's
default camera; :meth:`GeometryProjection.views` renders new views of the fitted geometry (Fig. 12
bottom, Fig. 21), textured by a seed or by a :class:`TextureProjection` of the same photo.

**LPIPS offline.** The ``lpips`` package builds its VGG16 trunk from torchvision's ImageNet weights,
which torchvision downloads on first use. Nothing here downloads: the trunk is loaded only from
``<torch.hub.get_dir()>/checkpoints/vgg16-397923af.pth`` (:func:`lpips_weights_path`). Without that
file ``perceptual="auto"`` falls back to MSE only (with a logged warning) and ``"lpips"`` raises.
"""
from __future__ import annotations

import logging
import math
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .._validate import check_int as _check_int, check_number
from ..cameras import Camera
from ..images import ImageResult, from_uint8, tensor_to_uint8
from ..labels import NUM_SOFGAN_CLASSES, celebamask_to_sof, sof_to_sofgan, validate_labels
from ..texture.generator import SIWGenerator

__all__ = [
    "TextureProjection", "GeometryProjection", "project_texture", "project_geometry",
    "lpips_weights_path", "lpips_available", "noise_regularization", "PROJECTION_MODES", "VGG16_WEIGHTS_FILE",
]

log = logging.getLogger(__name__)

PROJECTION_MODES = ("w", "w+", "two")
"""``"w"``: one W code for every slot; ``"w+"``: one code per slot; ``"two"``: two W+ codes and a
learnable per-class mix."""

VGG16_WEIGHTS_FILE = "vgg16-397923af.pth"
"""torchvision's ImageNet VGG16 weights file (the LPIPS trunk), looked up in the torch hub cache."""

_PERCEPTUAL_SIZE = 256  # images larger than this are area-downsampled for the perceptual loss
_LPIPS_CACHE: dict = {}


# --------------------------------------------------------------------------------------- helpers
def _is_int(x: Any) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool)


def _check_number(value: Any, name: str, *, low: float = 0.0, strict: bool = False) -> float:
    return check_number(value, name, low, low_open=strict)


def _describe(x: Any) -> str:
    if isinstance(x, (torch.Tensor, np.ndarray)):
        return f"{type(x).__name__} of shape {tuple(x.shape)} and dtype {x.dtype}"
    return type(x).__name__


def _is_pil(x: Any) -> bool:
    return hasattr(x, "mode") and hasattr(x, "size") and hasattr(x, "convert") \
        and not isinstance(x, (np.ndarray, torch.Tensor))


def _as_siw(siw_or_pipe: Any, name: str = "siw_or_pipe") -> tuple[SIWGenerator, Any]:
    """The generator of ``siw_or_pipe`` (an SIWGenerator or a SofGAN) and the pipeline (or None)."""
    if isinstance(siw_or_pipe, SIWGenerator):
        return siw_or_pipe, None
    siw = getattr(siw_or_pipe, "siw", None)
    if isinstance(siw, SIWGenerator):
        return siw, siw_or_pipe
    raise TypeError(f"{name}: expected an SIWGenerator or a SofGAN pipeline, got {type(siw_or_pipe).__name__}")


def _photo_tensor(photo: Any, name: str = "photo") -> torch.Tensor:
    """A photo (PIL, uint8 (H, W, 3) array/tensor, or float tensor (3, H, W) / (1, 3, H, W) in
    [-1, 1]) -> float32 (1, 3, H, W) in [-1, 1] on the CPU."""
    if _is_pil(photo):
        photo = np.array(photo.convert("RGB"))
    if isinstance(photo, np.ndarray):
        if photo.dtype != np.uint8:
            raise TypeError(f"{name}: a numpy photo must be uint8 (H, W, 3), got {_describe(photo)} "
                            "(float images are tensors (3, H, W) in [-1, 1])")
        photo = torch.from_numpy(np.array(photo, copy=True))  # a copy: the caller's array may be read-only
    if not isinstance(photo, torch.Tensor):
        raise TypeError(f"{name}: expected a PIL image, a uint8 array (H, W, 3) or a float tensor (3, H, W) in "
                        f"[-1, 1], got {_describe(photo)}")
    x = photo.detach().cpu()
    if x.dtype == torch.uint8:
        if x.dim() != 3 or x.shape[-1] != 3:
            raise ValueError(f"{name}: a uint8 photo must have shape (H, W, 3), got {tuple(x.shape)}")
        x = from_uint8(x).permute(2, 0, 1)[None]
    elif x.is_floating_point():
        if x.dim() == 4 and x.shape[0] == 1:
            x = x[0]
        if x.dim() != 3 or x.shape[0] != 3:
            raise ValueError(f"{name}: a float photo must have shape (3, H, W) or (1, 3, H, W), got {tuple(x.shape)}")
        x = x.float()[None]
        if not torch.isfinite(x).all():
            raise ValueError(f"{name}: contains NaN or infinite values")
        lo, hi = float(x.min()), float(x.max())
        if lo < -1.5 or hi > 1.5:
            raise ValueError(f"{name}: a float photo must have values in [-1, 1], got [{lo:.4g}, {hi:.4g}] "
                             "(pass uint8 for 0..255 pixels)")
        x = x.clamp(-1, 1)
    else:
        raise TypeError(f"{name}: expected uint8 (H, W, 3) or a float tensor (3, H, W) in [-1, 1], got dtype {x.dtype}")
    if x.shape[-1] < 4 or x.shape[-2] < 4:
        raise ValueError(f"{name}: the photo is too small ({x.shape[-2]} x {x.shape[-1]} px)")
    return x.contiguous()


def _resize_image(x: torch.Tensor, size: int, warn: bool = True) -> torch.Tensor:
    """(N, 3, H, W) -> (N, 3, size, size), antialiased bilinear (a logged warning for a non-square input)."""
    if tuple(x.shape[-2:]) == (size, size):
        return x
    if warn and x.shape[-2] != x.shape[-1]:
        log.warning("photo: %d x %d is not square; it is stretched to %d x %d (crop it first to keep its aspect)",
                    x.shape[-2], x.shape[-1], size, size)
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)


def _resize_labels(t: torch.Tensor, size: int) -> torch.Tensor:
    """(H, W) int -> (size, size) int64, nearest."""
    if tuple(t.shape) == (size, size):
        return t.long()
    return F.interpolate(t[None, None].float(), size=(size, size), mode="nearest")[0, 0].long()


def _label_tensor(segmap: Any, label_set: str, name: str = "segmap") -> torch.Tensor:
    """A label map (numpy/tensor integer (H, W) or (1, H, W), PIL label image, or an RGB image coloured
    with the palette of ``label_set``) -> int64 (H, W) CPU tensor, ids validated for ``label_set``."""
    from ..labels import decolorize

    x = segmap
    if _is_pil(x):
        x = np.asarray(x.convert("RGB")) if x.mode in ("RGB", "RGBA") else np.asarray(x)
    if isinstance(x, np.ndarray) and x.ndim == 3 and x.shape[-1] == 3 and x.dtype == np.uint8:
        x = decolorize(x, label_set)
    if isinstance(x, torch.Tensor):
        t = x.detach().cpu()
    elif isinstance(x, np.ndarray):
        t = torch.from_numpy(np.array(x, copy=True))
    else:
        raise TypeError(f"{name}: expected an integer label map (H, W) (numpy, torch or PIL), got {_describe(x)}")
    if t.is_floating_point() or t.dtype == torch.bool or t.is_complex():
        raise TypeError(f"{name}: expected integer class ids, got dtype {t.dtype}")
    if t.dim() == 3 and t.shape[0] == 1:
        t = t[0]
    if t.dim() != 2:
        raise ValueError(f"{name}: expected a label map of shape (H, W), got {tuple(t.shape)}")
    validate_labels(t, label_set, name=name)
    return t.long()


def _default_parser():
    from ..parsing import FaceParser

    return FaceParser.from_pretrained("demo")


def _parse(parser: Any, photo: torch.Tensor, parse_size: int) -> torch.Tensor:
    """SOF-20 labels (parse_size, parse_size) int64 of a (1, 3, H, W) photo."""
    parser = _default_parser() if parser is None else parser
    if not callable(getattr(parser, "parse", None)):
        raise TypeError(f"parser: expected a face parser with a parse(images) method (e.g. "
                        f"FaceParser.from_pretrained('demo')), got {type(parser).__name__}")
    x = _resize_image(photo, parse_size, warn=False)
    first = next(iter(parser.parameters()), None) if isinstance(parser, nn.Module) else None
    dev = first.device if first is not None else torch.device("cpu")
    labels = torch.as_tensor(parser.parse(x.to(dev))).cpu()
    if labels.dim() == 3 and labels.shape[0] == 1:
        labels = labels[0]
    if tuple(labels.shape) != (parse_size, parse_size):
        raise ValueError(f"parser: returned labels of shape {tuple(labels.shape)} for a {parse_size}^2 photo")
    validate_labels(labels, "sof20", name="parser output")
    log.info("parsed the photo at %d px: %d classes present", parse_size, int(labels.unique().numel()))
    return labels.long()


# --------------------------------------------------------------------------------------- losses
def lpips_weights_path() -> Path:
    """Where the LPIPS VGG16 trunk's weights must be: ``<torch.hub.get_dir()>/checkpoints/vgg16-397923af.pth``
    (torchvision's ImageNet VGG16 file; nothing here downloads it)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / VGG16_WEIGHTS_FILE


def lpips_available() -> bool:
    """Whether LPIPS(VGG) can be built offline (the VGG16 weights file is in the torch hub cache)."""
    return lpips_weights_path().is_file()


def _build_lpips(device: torch.device) -> nn.Module:
    """LPIPS(VGG) with its trunk loaded from :func:`lpips_weights_path` (never downloads)."""
    path = lpips_weights_path()
    if not path.is_file():
        raise FileNotFoundError(
            f"perceptual: 'lpips' needs torchvision's VGG16 ImageNet weights offline; put the file "
            f"{VGG16_WEIGHTS_FILE} (https://download.pytorch.org/models/{VGG16_WEIGHTS_FILE}) at {path} "
            f"(the torch hub cache, torch.hub.get_dir() + '/checkpoints/'), or use perceptual='none' or 'auto'")
    key = (str(path.resolve()), path.stat().st_mtime_ns, str(device))
    hit = _LPIPS_CACHE.get(key)
    if hit is not None:
        return hit
    from ..metrics.perceptual import load_lpips  # the one LPIPS loader (calibration heads, trunk, safe reads)

    try:
        model = load_lpips("vgg", weights=path, check_hash=False).model
    except ValueError as exc:  # CheckpointError too: the same type, named as this function's argument
        raise type(exc)(f"perceptual: {exc}") from None
    model = model.eval().to(device)
    for p in model.parameters():
        p.requires_grad_(False)
    _LPIPS_CACHE.clear()
    _LPIPS_CACHE[key] = model
    log.info("LPIPS(VGG) loaded with the trunk from %s", path)
    return model


def _resolve_perceptual(perceptual: Any, device: torch.device) -> tuple[nn.Module | None, str]:
    if isinstance(perceptual, nn.Module):
        return perceptual, type(perceptual).__name__
    if perceptual == "none":
        return None, "none"
    if perceptual == "lpips":
        return _build_lpips(device), "lpips-vgg"
    if perceptual == "auto":
        if lpips_available():
            return _build_lpips(device), "lpips-vgg"
        log.warning("perceptual='auto': the LPIPS VGG16 weights are not at %s; projecting with the pixel MSE only "
                    "(put %s there for LPIPS)", lpips_weights_path(), VGG16_WEIGHTS_FILE)
        return None, "none"
    raise ValueError(f"perceptual: expected 'auto', 'lpips', 'none' or an nn.Module (x, y) -> distance, got "
                     f"{perceptual!r}")


def noise_regularization(noises: Sequence[torch.Tensor]) -> torch.Tensor:
    """The StyleGAN2 noise regulariser: for every map and every level of its 2x2-average pyramid
    (down to 8 px), the squared mean products with its one-pixel shifts along x and y (circular)."""
    total = noises[0].new_zeros(())
    for n in noises:
        x = n
        while True:
            total = total + (x * torch.roll(x, 1, dims=3)).mean() ** 2 + (x * torch.roll(x, 1, dims=2)).mean() ** 2
            h, w = x.shape[-2:]
            if h <= 8 or w <= 8 or h % 2 or w % 2:
                break
            x = F.avg_pool2d(x, 2)
    return total


@torch.no_grad()
def _normalize_noise_(noises: Sequence[torch.Tensor]) -> None:
    for n in noises:
        n.sub_(n.mean()).div_(n.std().clamp_min(1e-8))


def _lr_at(t: float, base: float, rampup: float, rampdown: float) -> float:
    """The StyleGAN2 projector schedule: linear ramp-up over ``rampup``, half-cosine ramp-down over
    the last ``rampdown`` of the run (``t`` in [0, 1))."""
    ramp = min(1.0, (1.0 - t) / rampdown) if rampdown > 0 else 1.0
    ramp = 0.5 - 0.5 * math.cos(ramp * math.pi)
    if rampup > 0:
        ramp *= min(1.0, t / rampup)
    return base * ramp


def _w_stats(siw: SIWGenerator, n: int = 4096, seed: int = 0) -> tuple[torch.Tensor, float]:
    """The mean W (the generator's :meth:`mean_latent`) and the RMS distance of mapped codes from it."""
    mean = siw.mean_latent(n, seed)
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, siw.style_dim, generator=g)
    with torch.no_grad():
        sq = sum(float((siw.mapping(c.to(siw.device)) - mean).pow(2).sum()) for c in z.split(1024))
    return mean, math.sqrt(sq / n)


def _class_weights(logits: torch.Tensor) -> torch.Tensor:
    """Per-class mix logits (1, 17) -> class weights (1, 17, 2) (sigmoid = a two-way softmax)."""
    p = torch.sigmoid(logits)
    return torch.stack([1 - p, p], dim=-1)


# --------------------------------------------------------------------------------------- results
@dataclass
class TextureProjection(ImageResult):
    """A photo projected into the texture space (see :func:`project_texture`).

    Attributes:
        latents: the fitted W+ codes ``(K, n_latent, style_dim)`` (K = 1, or 2 for ``mode="two"``).
        class_weights: ``(17, K)`` per-class mix of the K codes (rows sum to 1), or ``None`` for K = 1.
        noise: the fitted noise maps, one ``(1, 1, r, r)`` tensor per noise layer.
        loss_curve: the total loss of every step.
        loss_components: ``{"total", "perceptual", "mse", "noise"}`` -> per-step values (the noise
            term unweighted; ``perceptual`` is 0 when none is used).
        tensor: the projection's render ``(3, size, size)`` (≈ [-1, 1], unclamped, CPU).
        target: the photo as fitted ``(3, size, size)`` in [-1, 1].
        segmap17: the SofGAN-17 label map ``(size, size)`` uint8 the render is conditioned on.
        perceptual: the perceptual loss used: ``"lpips-vgg"``, ``"none"`` or a module's class name.
        mode: ``"w"``, ``"w+"`` or ``"two"``.
        mse: pixel MSE between ``tensor`` and ``target`` after the projection (images in [-1, 1]).
        initial_mse: the same for the starting point (mean W, initial noise).
        steps: optimisation steps run (fewer than asked when the callback stopped the run).
    """

    latents: torch.Tensor
    class_weights: torch.Tensor | None
    noise: list
    loss_curve: list
    loss_components: dict
    tensor: torch.Tensor
    target: torch.Tensor
    segmap17: np.ndarray
    perceptual: str
    mode: str
    mse: float
    initial_mse: float
    steps: int

    def __repr__(self) -> str:
        k, L, d = self.latents.shape
        return (f"TextureProjection(mode={self.mode!r}, styles={k}, slots={L}, dim={d}, steps={self.steps}, "
                f"perceptual={self.perceptual!r}, mse {self.initial_mse:.4f} -> {self.mse:.4f})")

    # ------------------------------------------------------------------ rendering
    def _check_generator(self, siw: SIWGenerator) -> None:
        k, L, d = self.latents.shape
        if siw.n_latent != L or siw.style_dim != d:
            raise ValueError(f"siw_or_pipe: this projection has {L} slots of {d} dims; the generator has "
                             f"{siw.n_latent} of {siw.style_dim} (project with the same generator)")
        sizes = [getattr(siw.noises, f"noise_{i}").shape[-1] for i in range(siw.config.num_noise)]
        if [n.shape[-1] for n in self.noise] != sizes:
            raise ValueError("siw_or_pipe: the projection's noise maps do not fit this generator")

    def _segmap17(self, siw: SIWGenerator, segmap: Any, label_set: str) -> torch.Tensor:
        if segmap is None:
            return torch.from_numpy(self.segmap17.astype(np.int64))[None]
        if label_set not in ("sof20", "sofgan17"):
            raise ValueError(f"label_set: expected 'sof20' or 'sofgan17', got {label_set!r}")
        if isinstance(segmap, (torch.Tensor, np.ndarray)) and segmap.ndim == 3 and segmap.shape[-1] != 3:
            t = torch.as_tensor(np.asarray(segmap)) if isinstance(segmap, np.ndarray) else segmap.detach().cpu()
            if t.is_floating_point() or t.dtype == torch.bool:
                raise TypeError(f"segmap: expected integer class ids, got dtype {t.dtype}")
            validate_labels(t, label_set, name="segmap")
            t = t.long()
        else:
            t = _label_tensor(segmap, label_set)[None]
        return sof_to_sofgan(t) if label_set == "sof20" else t

    @torch.no_grad()
    def _generate(self, siw: SIWGenerator, seg17: torch.Tensor, latents: torch.Tensor,
                  class_weights: torch.Tensor | None) -> torch.Tensor:
        dev = siw.device
        was_training = siw.training
        siw.eval()
        try:
            out = siw(seg17.to(dev), latents=latents.to(dev)[None],
                      class_weights=None if class_weights is None else class_weights.to(dev)[None],
                      noise=[n.to(dev) for n in self.noise], truncation=1.0)
        finally:
            siw.train(was_training)
        return out.float().cpu()

    @staticmethod
    def _finish(img: torch.Tensor, pil: bool):
        if not pil:
            return img[0] if img.shape[0] == 1 else img
        from PIL import Image

        arr = tensor_to_uint8(img)
        return Image.fromarray(arr[0]) if arr.shape[0] == 1 else [Image.fromarray(a) for a in arr]

    def render(self, siw_or_pipe: Any, segmap: Any = None, *, label_set: str = "sof20", pil: bool = False):
        """Render the projected style (codes, class mix and noise) on ``segmap`` — ``(H, W)`` or
        ``(N, H, W)`` ids of ``label_set`` ("sof20" or "sofgan17"), e.g. a new view of the photo's
        geometry — or, by default, on the photo's own segmap. Returns ``(3, S, S)`` (``(N, 3, S, S)``
        for a batch) float on the CPU, or PIL image(s) with ``pil=True``."""
        siw, _ = _as_siw(siw_or_pipe)
        self._check_generator(siw)
        seg = self._segmap17(siw, segmap, label_set)
        return self._finish(self._generate(siw, seg, self.latents, self.class_weights), pil)

    def restyle(self, siw_or_pipe: Any, other_texture: Any, region_mix: Mapping[str, float], segmap: Any = None, *,
                label_set: str = "sof20", truncation: float | None = None, pil: bool = False):
        """Regional edit of the projected photo (paper Fig. 27): style groups given ``p`` in
        ``region_mix`` (``{group: p}`` over :data:`sofgan_lab.texture.regions.STYLE_GROUPS`) take the
        weight ``p`` of ``other_texture`` (a seed, or a z code ``(style_dim,)``, mapped and truncated
        toward the mean W by ``truncation``: default the pipeline's ψ, or 1 for a bare generator);
        everything else keeps the projection. Noise stays the projection's. Returns as :meth:`render`."""
        from ..texture.regions import two_style_weights

        siw, pipe = _as_siw(siw_or_pipe)
        self._check_generator(siw)
        if not isinstance(region_mix, Mapping):
            raise TypeError(f"region_mix: expected a dict {{group: p}}, got {type(region_mix).__name__}")
        try:
            mix = two_style_weights(dict(region_mix))[0]                     # (17, 2): [projection, other]
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"region_mix: {str(exc).partition(': ')[2] or exc}") from None
        if truncation is None:
            psi = float(pipe.truncation) if pipe is not None else 1.0
        else:
            psi = _check_number(truncation, "truncation")
            if psi > 1:
                raise ValueError(f"truncation: expected a number in [0, 1], got {truncation!r}")
        if _is_int(other_texture):
            if other_texture < 0:
                raise ValueError(f"other_texture: expected a non-negative seed, got {other_texture}")
            z = siw.random_z(1, seed=int(other_texture))[0]
        else:
            try:
                z = other_texture.detach().float().cpu() if isinstance(other_texture, torch.Tensor) \
                    else torch.as_tensor(np.asarray(other_texture, dtype=np.float32))
            except (TypeError, ValueError):
                raise TypeError(f"other_texture: expected a seed (int) or a z code of {siw.style_dim} numbers, got "
                                f"{type(other_texture).__name__}") from None
            if z.numel() != siw.style_dim or z.dim() > 2 or not torch.isfinite(z).all():
                raise ValueError(f"other_texture: expected a seed or a finite z code of shape ({siw.style_dim},), "
                                 f"got shape {tuple(z.shape)}")
            z = z.reshape(1, siw.style_dim)
        with torch.no_grad():
            w = siw.mapping(z.to(siw.device)).float()
            if psi < 1:
                mean = siw.mean_latent().to(w)
                w = mean + psi * (w - mean)
        other = w.cpu()[:, None].expand(1, siw.n_latent, -1)                  # (1, L, D)
        latents = torch.cat([self.latents, other], 0)                         # (K + 1, L, D)
        own = self.class_weights if self.class_weights is not None else torch.ones(NUM_SOFGAN_CLASSES, 1)
        weights = torch.cat([own * mix[:, :1], mix[:, 1:]], 1)                # (17, K + 1)
        seg = self._segmap17(siw, segmap, label_set)
        return self._finish(self._generate(siw, seg, latents, weights), pil)


@dataclass
class GeometryProjection:
    """A photo projected into the SOF geometry space (see :func:`project_geometry`).

    Attributes:
        code: the fitted geometry code ``(latent_dim,)`` (CPU).
        miou: mIoU of the code's render against the (parsed) segmap, through ``camera``.
        segmap: the SOF-20 map that was inverted ``(H, W)`` uint8 (parsed, or given).
        labels: the code's render through ``camera`` ``(H, W)`` uint8 (SOF-20).
        camera: the camera of the inversion (fitted with ``optimize_camera=True``).
        inversion: the full :class:`~sofgan_lab.geometry.inversion.InversionResult`.
    """

    code: torch.Tensor
    miou: float
    segmap: np.ndarray
    labels: np.ndarray
    camera: Camera
    inversion: Any

    def __repr__(self) -> str:
        h, w = self.segmap.shape
        return f"GeometryProjection({h}x{w}, code dim {self.code.shape[0]}, mIoU {self.miou:.3f})"

    def views(self, pipe: Any, cameras: Any = None, *, texture: Any = 0, region_mix: Mapping | None = None,
              truncation: float | None = None):
        """Render new views of the projected geometry with ``pipe`` -> a :class:`~sofgan_lab.pipeline.PortraitList`.

        ``cameras``: a :class:`~sofgan_lab.cameras.Camera` (any batch), a list of yaws in degrees
        (other orbit parameters from the pipeline's default camera), a list of orbit dicts /
        Cameras, or ``None`` (yaws -30, -15, 0, 15, 30). ``texture``: a seed, a code or a pair for
        ``region_mix`` as in ``pipe(...)``, or a :class:`TextureProjection` (the photo's own style,
        rendered on every view; ``region_mix``/``truncation`` do not apply to it)."""
        from ..pipeline import Portrait, PortraitList, SofGAN

        if not isinstance(pipe, SofGAN):
            raise TypeError(f"pipe: expected a SofGAN pipeline, got {type(pipe).__name__}")
        cam = _view_cameras(pipe, cameras)
        code = self.code
        if code.shape[0] != pipe.sof.config.latent_dim:
            raise ValueError(f"pipe: its SOF has {pipe.sof.config.latent_dim}-d codes, this projection "
                             f"{code.shape[0]}-d (project with the same pipeline)")
        if not isinstance(texture, TextureProjection):
            out = pipe(geometry=code, texture=texture, camera=cam, region_mix=region_mix, truncation=truncation)
            return out if isinstance(out, list) else PortraitList([out])
        if region_mix is not None or truncation is not None:
            raise ValueError("region_mix: does not apply to a projected texture (use TextureProjection.restyle)")
        render = pipe.render_segmap(code[None].expand(cam.batch_size, -1), cam)
        seg20 = render.labels.cpu()
        seg17 = sof_to_sofgan(seg20.long())
        imgs = texture.render(pipe, seg17, label_set="sofgan17")
        imgs = imgs[None] if imgs.dim() == 3 else imgs
        return PortraitList(
            Portrait(tensor=imgs[i], segmap=seg20[i].numpy().astype(np.uint8),
                     segmap17=seg17[i].numpy().astype(np.uint8), depth=render.depth[i].float().cpu().numpy(),
                     geometry=code.clone(), texture=texture.latents[:, 0].clone(), latents=texture.latents.clone(),
                     camera=cam[i] if cam.batch_size > 1 else cam, region_mix=None, truncation=1.0,
                     points=render.points[i].float().cpu().numpy())
            for i in range(imgs.shape[0]))


def _view_cameras(pipe: Any, cameras: Any) -> Camera:
    if cameras is None:
        cameras = [-30.0, -15.0, 0.0, 15.0, 30.0]
    if isinstance(cameras, Camera):
        return cameras
    if isinstance(cameras, (int, float, np.integer, np.floating)) and not isinstance(cameras, bool):
        cameras = [cameras]
    if isinstance(cameras, np.ndarray) or isinstance(cameras, torch.Tensor):
        cameras = [float(v) for v in np.asarray(cameras).reshape(-1)]
    if not isinstance(cameras, (list, tuple)) or not cameras:
        raise TypeError(f"cameras: expected a Camera, a non-empty list of yaws (degrees), orbit dicts or Cameras, "
                        f"or None, got {_describe(cameras)}")
    cams = []
    for i, c in enumerate(cameras):
        if isinstance(c, Camera):
            cams.append(c)
        elif isinstance(c, Mapping):
            cams.append(pipe.resolve_camera(dict(c)))
        elif isinstance(c, (int, float, np.integer, np.floating)) and not isinstance(c, bool):
            cams.append(pipe.camera(yaw=float(c)))
        else:
            raise TypeError(f"cameras: item {i} is a {type(c).__name__}; expected a yaw, an orbit dict or a Camera")
    return Camera.cat(cams)


# --------------------------------------------------------------------------------------- texture
def project_texture(siw_or_pipe: Any, photo: Any, segmap: Any = None, *, label_set: str = "sof20",
                    mode: str = "w", steps: int = 1000, lr: float = 0.1, perceptual: Any = "auto",
                    mse_weight: float = 1.0, noise_regularize: float = 1e5, optimize_noise: bool = True,
                    initial_noise_factor: float = 0.05, noise_ramp_length: float = 0.75, lr_rampup: float = 0.05,
                    lr_rampdown: float = 0.25, parser: Any = None, parse_size: int = 128, seed: int = 0,
                    progress: bool = False,
                    callback: Callable[[int, dict], Any] | None = None) -> TextureProjection:
    """Project a photo into the texture space of a SIW generator (see the module docstring).

    Args:
        siw_or_pipe: an :class:`~sofgan_lab.texture.SIWGenerator` or a SofGAN pipeline (its generator).
            It is left unchanged (its parameters are frozen during the run and restored).
        photo: a PIL image, a uint8 array/tensor ``(H, W, 3)``, or a float tensor ``(3, H, W)`` in
            [-1, 1]; resized (antialiased bilinear) to the generator's size.
        segmap: the photo's label map ``(H, W)`` — at the photo's size or the generator's — with ids of
            ``label_set`` (``"sof20"`` or ``"sofgan17"``; an integer array/tensor, a PIL label image,
            or an RGB image in that label set's palette). ``None``: parse the photo with ``parser``.
        mode: ``"w"`` (one code on all slots), ``"w+"`` (one code per slot) or ``"two"`` (two W+ codes,
            mixed per class by learnable weights ``sigmoid(logit_c)``; the logits start N(0, 1) from
            ``seed`` so that the two codes, both starting at the mean W, receive different gradients).
        steps: Adam steps; ``lr``: peak learning rate (ramped as in the StyleGAN2 projector by
            ``lr_rampup`` / ``lr_rampdown``, fractions of the run).
        perceptual: ``"auto"`` (LPIPS(VGG) when its weights are on disk, else none with a warning),
            ``"lpips"`` (raises ``FileNotFoundError`` naming the missing file), ``"none"`` (pixels
            only), or an ``nn.Module`` called as ``module(x, y)`` on ``(1, 3, h, w)`` images in [-1, 1]
            giving a distance per sample. Images above 256 px are area-downsampled to 256 for it.
        mse_weight: weight of the pixel MSE (images in [-1, 1]).
        noise_regularize: weight of :func:`noise_regularization`.
        optimize_noise: fit the noise maps (initialised N(0, 1) from ``seed``); otherwise the
            generator's stored noise buffers are used, fixed.
        initial_noise_factor, noise_ramp_length: the decaying perturbation of the code (see the
            module docstring).
        parser: a face parser with ``parse(images)`` -> SOF-20 labels (default: the demo
            :class:`~sofgan_lab.parsing.FaceParser`); ``parse_size``: the square size it parses at
            (the demo parser's training size, 128, where its whole-bust framing matches).
        seed: seeds the noise initialisation, the mix initialisation and the code perturbation.
        progress: show a tqdm bar.
        callback: ``callback(step, info)`` after every step, ``info`` holding the step's loss terms and
            learning rate; returning ``True`` stops the run.

    Returns:
        :class:`TextureProjection`.
    """
    siw, _ = _as_siw(siw_or_pipe)
    run = _check_texture_options(mode=mode, steps=steps, lr=lr, mse_weight=mse_weight,
                                 noise_regularize=noise_regularize, optimize_noise=optimize_noise,
                                 initial_noise_factor=initial_noise_factor, noise_ramp_length=noise_ramp_length,
                                 lr_rampup=lr_rampup, lr_rampdown=lr_rampdown, parse_size=parse_size, seed=seed,
                                 callback=callback, label_set=label_set, perceptual=perceptual)
    dev = siw.device
    photo_t, target, seg17 = _texture_target(siw, photo, segmap, label_set, parser, run.parse_size)
    seg_in = seg17[None].to(dev)
    percept, percept_name = _resolve_perceptual(perceptual, dev)
    log.info("projecting a %dx%d photo into the texture space (%s, %d steps, perceptual %s)",
             photo_t.shape[-2], photo_t.shape[-1], mode, run.steps, percept_name)

    gen = torch.Generator().manual_seed(run.seed)
    w_mean, w_std = _w_stats(siw)
    L, D = siw.n_latent, siw.style_dim
    code, logits, noises = _texture_variables(siw, run, w_mean, gen)
    opt = torch.optim.Adam([code] + ([logits] if logits is not None else []) + (noises if run.optimize_noise else []),
                           lr=run.lr, betas=(0.9, 0.999))
    synth = _texture_synthesizer(siw, seg_in, logits, noises)
    target_p = _perceptual_input(target)
    components: dict[str, list[float]] = {"total": [], "perceptual": [], "mse": [], "noise": []}
    with _frozen_eval(siw):
        with torch.no_grad():
            initial_mse = float(F.mse_loss(synth(code).float(), target))
        done = _fit_texture(run, synth, code, noises, opt, target, target_p, percept, w_std * run.initial_noise_factor,
                            gen, components, progress, callback)
        with torch.no_grad():
            final = synth(code).float()
            final_mse = float(F.mse_loss(final, target))
            weights = _class_weights(logits)[0].detach().cpu() if logits is not None else None
    latents = code.detach().expand(1, code.shape[1], L, D)[0].cpu().clone()
    log.info("texture projection: MSE %.4f -> %.4f in %d steps", initial_mse, final_mse, done)
    return TextureProjection(
        latents=latents, class_weights=weights, noise=[n.detach().cpu().clone() for n in noises],
        loss_curve=list(components["total"]), loss_components=components, tensor=final[0].cpu(),
        target=target[0].cpu(), segmap17=seg17.numpy().astype(np.uint8), perceptual=percept_name, mode=mode,
        mse=final_mse, initial_mse=initial_mse, steps=done)


@dataclass(frozen=True)
class _TextureRun:
    """The checked options of one :func:`project_texture` run (see its arguments)."""

    mode: str
    steps: int
    lr: float
    mse_weight: float
    noise_regularize: float
    optimize_noise: bool
    initial_noise_factor: float
    noise_ramp_length: float
    lr_rampup: float
    lr_rampdown: float
    parse_size: int
    seed: int


def _check_texture_options(*, mode: str, steps: Any, lr: Any, mse_weight: Any, noise_regularize: Any,
                           optimize_noise: Any, initial_noise_factor: Any, noise_ramp_length: Any,
                           lr_rampup: Any, lr_rampdown: Any, parse_size: Any, seed: Any, callback: Any,
                           label_set: Any, perceptual: Any) -> _TextureRun:
    """:func:`project_texture`'s options checked (each error names its argument) -> a :class:`_TextureRun`."""
    if mode not in PROJECTION_MODES:
        raise ValueError(f"mode: expected one of {PROJECTION_MODES}, got {mode!r}")
    steps = _check_int(steps, "steps", 1)
    lr = _check_number(lr, "lr", strict=True)
    mse_weight = _check_number(mse_weight, "mse_weight")
    noise_regularize = _check_number(noise_regularize, "noise_regularize")
    initial_noise_factor = _check_number(initial_noise_factor, "initial_noise_factor")
    noise_ramp_length = _check_number(noise_ramp_length, "noise_ramp_length", strict=True)
    lr_rampup = _check_number(lr_rampup, "lr_rampup")
    lr_rampdown = _check_number(lr_rampdown, "lr_rampdown")
    if lr_rampup > 1 or lr_rampdown > 1:
        raise ValueError(f"lr_rampup/lr_rampdown: expected fractions in [0, 1], got {lr_rampup}, {lr_rampdown}")
    parse_size = _check_int(parse_size, "parse_size", 16)
    seed = _check_int(seed, "seed", 0)
    if not isinstance(optimize_noise, bool):
        raise TypeError(f"optimize_noise: expected a bool, got {type(optimize_noise).__name__}")
    if callback is not None and not callable(callback):
        raise TypeError(f"callback: expected a callable (step, info) or None, got {type(callback).__name__}")
    if label_set not in ("sof20", "sofgan17"):
        raise ValueError(f"label_set: expected 'sof20' or 'sofgan17', got {label_set!r}")
    if isinstance(perceptual, str) and perceptual == "none" and mse_weight == 0:
        raise ValueError("mse_weight: must be > 0 when perceptual='none' (nothing would be fitted)")
    return _TextureRun(mode=mode, steps=steps, lr=lr, mse_weight=mse_weight, noise_regularize=noise_regularize,
                       optimize_noise=optimize_noise, initial_noise_factor=initial_noise_factor,
                       noise_ramp_length=noise_ramp_length, lr_rampup=lr_rampup, lr_rampdown=lr_rampdown,
                       parse_size=parse_size, seed=seed)


def _texture_target(siw: SIWGenerator, photo: Any, segmap: Any, label_set: str, parser: Any,
                    parse_size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The photo to project and its map -> ``(photo (3, h, w) in [-1, 1], target (1, 3, S, S) on the
    generator's device, SofGAN-17 map (S, S) int64)``, ``S`` the generator's size; ``segmap=None``
    parses the photo."""
    size = siw.config.size
    photo_t = _photo_tensor(photo)
    target = _resize_image(photo_t, size).to(siw.device)
    if segmap is None:
        seg17 = sof_to_sofgan(_resize_labels(_parse(parser, photo_t, parse_size), size))
    else:
        lab = _label_tensor(segmap, label_set)
        if tuple(lab.shape) not in (tuple(photo_t.shape[-2:]), (size, size)):
            raise ValueError(f"segmap: its shape {tuple(lab.shape)} matches neither the photo "
                             f"{tuple(photo_t.shape[-2:])} nor the generator size ({size}, {size})")
        lab = _resize_labels(lab, size)
        seg17 = sof_to_sofgan(lab) if label_set == "sof20" else lab
    return photo_t, target, seg17


def _texture_variables(siw: SIWGenerator, run: _TextureRun, w_mean: torch.Tensor,
                       gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor | None, list[torch.Tensor]]:
    """The variables a run fits -> ``(code (1, K, 1 or L, D) from the mean W, mix logits (1, 17) or
    None, noise maps)``; ``K`` is 2 in mode ``"two"``, else 1. Draws from ``gen``: the logits
    (mode ``"two"``), then the noise maps (with ``optimize_noise``)."""
    L, D = siw.n_latent, siw.style_dim
    code = w_mean.detach().clone().reshape(1, 1, 1, D)
    if run.mode == "w+":
        code = code.repeat(1, 1, L, 1)
    elif run.mode == "two":
        code = code.repeat(1, 2, L, 1)
    code = code.to(siw.device).requires_grad_(True)
    logits = None
    if run.mode == "two":
        # random initial mix (seeded) so the two codes receive different gradients from the start
        logits = torch.randn(1, NUM_SOFGAN_CLASSES, generator=gen).to(siw.device).requires_grad_(True)
    if run.optimize_noise:
        noises = [n.requires_grad_(True) for n in siw.make_noise(1, generator=gen)]
    else:
        noises = [getattr(siw.noises, f"noise_{i}").detach().clone() for i in range(siw.config.num_noise)]
    return code, logits, noises


def _texture_synthesizer(siw: SIWGenerator, seg_in: torch.Tensor, logits: torch.Tensor | None,
                         noises: list[torch.Tensor]) -> Callable[[torch.Tensor], torch.Tensor]:
    """``synth(code (1, K, 1 or L, D)) -> (1, 3, S, S)``: the generator's image of ``seg_in`` with the
    code, the current mix of ``logits`` (if any) and ``noises``."""
    L, D = siw.n_latent, siw.style_dim

    def synth(c: torch.Tensor) -> torch.Tensor:
        lat = c.expand(1, c.shape[1], L, D)
        cw = _class_weights(logits) if logits is not None else None
        return siw(seg_in, latents=lat, class_weights=cw, noise=noises, truncation=1.0)

    return synth


def _perceptual_input(x: torch.Tensor) -> torch.Tensor:
    """``x`` (B, 3, H, W) area-downsampled to ``_PERCEPTUAL_SIZE`` when larger."""
    if x.shape[-1] > _PERCEPTUAL_SIZE:
        return F.adaptive_avg_pool2d(x, (_PERCEPTUAL_SIZE, _PERCEPTUAL_SIZE))
    return x


@contextmanager
def _frozen_eval(module: nn.Module):
    """``module`` in eval mode with its parameters frozen; its mode and flags restored on exit (errors too)."""
    was_training = module.training
    frozen = [p.requires_grad for p in module.parameters()]
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)
    try:
        yield module
    finally:
        for p, f in zip(module.parameters(), frozen):
            p.requires_grad_(f)
        module.train(was_training)


def _fit_texture(run: _TextureRun, synth: Callable, code: torch.Tensor, noises: list[torch.Tensor],
                 opt: torch.optim.Optimizer, target: torch.Tensor, target_p: torch.Tensor, percept: Any,
                 perturbation: float, gen: torch.Generator, components: dict[str, list[float]],
                 progress: bool, callback: Callable | None) -> int:
    """The Adam steps of a texture projection; appends each step's loss terms to ``components`` and
    returns the number of steps run (fewer when ``callback`` stops it). ``perturbation``: the
    code's initial noise scale (``w_std * initial_noise_factor``), decaying over the run."""
    from tqdm.auto import tqdm

    done = 0
    bar = tqdm(range(run.steps), disable=not progress, desc=f"project texture ({run.mode})")
    for step in bar:
        t = step / run.steps
        cur_lr = _lr_at(t, run.lr, run.lr_rampup, run.lr_rampdown)
        for group in opt.param_groups:
            group["lr"] = cur_lr
        strength = perturbation * max(0.0, 1.0 - t / run.noise_ramp_length) ** 2
        c = code
        if strength > 0:
            c = code + strength * torch.randn(code.shape, generator=gen).to(code.device)
        info = _texture_step(run, synth(c).float(), target, target_p, percept, noises, opt, step)
        for k, v in info.items():
            components[k].append(v)
        done = step + 1
        if progress:
            bar.set_postfix(loss=f"{info['total']:.4f}", mse=f"{info['mse']:.4f}")
        if callback is not None and callback(step, dict(info, lr=cur_lr)) is True:
            log.info("project_texture: stopped by the callback after %d steps", done)
            break
    return done


def _texture_step(run: _TextureRun, img: torch.Tensor, target: torch.Tensor, target_p: torch.Tensor,
                  percept: Any, noises: list[torch.Tensor], opt: torch.optim.Optimizer, step: int) -> dict[str, float]:
    """One optimiser step on the loss of ``img`` (1, 3, S, S) against ``target`` -> its loss terms."""
    mse = F.mse_loss(img, target)
    if percept is not None:
        p_loss = percept(_perceptual_input(img), target_p).float().sum()
    else:
        p_loss = img.new_zeros(())
    n_loss = noise_regularization(noises) if run.optimize_noise else img.new_zeros(())
    loss = p_loss + run.mse_weight * mse + run.noise_regularize * n_loss
    if not torch.isfinite(loss):
        raise FloatingPointError(f"project_texture: the loss became {float(loss)} at step {step} "
                                 "(lower lr, or check the photo)")
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    if run.optimize_noise:
        _normalize_noise_(noises)
    return {"total": float(loss.detach()), "perceptual": float(p_loss.detach()), "mse": float(mse.detach()),
            "noise": float(n_loss.detach())}


# --------------------------------------------------------------------------------------- geometry
def project_geometry(pipe: Any, photo: Any = None, *, segmap: Any = None, label_set: str = "sof20",
                     parser: Any = None, parse_size: int = 128, size: int | None = None, camera: Any = None,
                     steps: int = 300, seed: int = 0, progress: bool = False,
                     **inversion_kwargs: Any) -> GeometryProjection:
    """Project a photo into the SOF geometry space (paper §6.4, Fig. 21).

    The photo is parsed to SOF-20 with ``parser`` (default: the demo face parser) at ``parse_size``
    (square; the demo parser's training size is 128), or ``segmap`` is given instead (SOF-20 ids,
    or CelebAMask-HQ ids with ``label_set="celebamask19"``, converted with the nose split). The map
    is nearest-resized to ``size`` (default: its own size; smaller is faster) and inverted with
    :func:`~sofgan_lab.geometry.inversion.invert_segmap` through ``camera`` — by default the
    pipeline's default camera at that size (the framing its SOF was trained with); a dict of orbit
    parameters or a one-view :class:`~sofgan_lab.cameras.Camera` of that size may be given.
    ``steps``, ``seed``, ``progress`` and ``inversion_kwargs`` (``lr``, ``rays_per_step``,
    ``optimize_camera``, ``init``, ``latent_weight``, ``eval_every``) go to ``invert_segmap``.

    Returns:
        :class:`GeometryProjection` (code, mIoU, the inverted map, the render, the camera).
    """
    from ..geometry.inversion import invert_segmap
    from ..pipeline import SofGAN

    if not isinstance(pipe, SofGAN):
        raise TypeError(f"pipe: expected a SofGAN pipeline, got {type(pipe).__name__}")
    if "model" in inversion_kwargs:
        raise TypeError("model: project_geometry inverts into pipe.sof; do not pass model=")
    parse_size = _check_int(parse_size, "parse_size", 16)
    if segmap is None:
        if photo is None:
            raise ValueError("photo: give a photo to parse, or its label map as segmap=")
        ph = _photo_tensor(photo)
        if ph.shape[-2] != ph.shape[-1]:
            log.warning("photo: %d x %d is not square; it is stretched to %d x %d for parsing (crop it first)",
                        ph.shape[-2], ph.shape[-1], parse_size, parse_size)
        seg = _parse(parser, ph, parse_size)
    else:
        if label_set == "celebamask19":
            seg = torch.as_tensor(celebamask_to_sof(_label_tensor(segmap, "celebamask19").numpy())).long()
        elif label_set == "sof20":
            seg = _label_tensor(segmap, "sof20")
        else:
            raise ValueError(f"label_set: expected 'sof20' or 'celebamask19' (SOF needs left/right classes), "
                             f"got {label_set!r}")
        if photo is not None:
            ph = _photo_tensor(photo)
            if tuple(ph.shape[-2:]) != tuple(seg.shape):
                raise ValueError(f"segmap: its shape {tuple(seg.shape)} does not match the photo "
                                 f"{tuple(ph.shape[-2:])}")
    if seg.shape[0] != seg.shape[1] and size is None:
        raise ValueError(f"size: the map is {seg.shape[0]} x {seg.shape[1]}; give a square size to invert at")
    size = int(seg.shape[0]) if size is None else _check_int(size, "size", 8)
    seg = _resize_labels(seg, size)
    if camera is None:
        cam = pipe.camera(image_size=size)
    elif isinstance(camera, Mapping):
        p = pipe.camera_params(camera, "camera")
        cam = pipe.camera(p.get("yaw"), p.get("pitch"), p.get("radius"), p["fov"] if "fov" in p else "default",
                          image_size=size, target=p.get("target"), zoom=p.get("zoom"))
    elif isinstance(camera, Camera):
        if camera.batch_size != 1 or camera.image_size != (size, size):
            raise ValueError(f"camera: expected one view of size {(size, size)}, got {camera.batch_size} view(s) of "
                             f"size {camera.image_size}")
        cam = camera
    else:
        raise TypeError(f"camera: expected None, an orbit dict or a Camera, got {type(camera).__name__}")
    res = invert_segmap(pipe.sof, seg, cam, steps=steps, seed=seed, progress=progress, label_set="sof20",
                        **inversion_kwargs)
    log.info("geometry projection: mIoU %.3f at %d px", res.miou, size)
    return GeometryProjection(code=res.z.detach().cpu().clone(), miou=float(res.miou),
                              segmap=seg.numpy().astype(np.uint8), labels=res.labels.cpu().numpy().astype(np.uint8),
                              camera=res.camera, inversion=res)
