"""Image sources for the metrics: a :class:`~sofgan_lab.pipeline.SofGAN` pipeline or any callable.

A metric that draws random images accepts either

* a ``SofGAN`` pipeline — wrapped by :class:`PipelineSampler`, which renders batches on the
  pipeline's device straight from seeds (geometry seed → ``pipe.space.sample(1, seed)``, texture
  seed → ``pipe.siw.random_z(1, seed)``; the same pixels as ``pipe(geometry=g, texture=t,
  truncation=ψ)``), or
* an *image sampler* ``sampler(n, seed) -> (n, 3, H, W)`` float in [-1, 1]: ``n`` independent random
  images, the same for the same seed. Any model can be measured this way.

Generated images are "saved" before measuring: clamped to [-1, 1] and, with ``quantize`` (default),
rounded to the 256 levels of a uint8 image — what the paper's evaluation read from disk.
"""
from __future__ import annotations

import logging
from typing import Any, Callable, Sequence

import numpy as np
import torch

from .._validate import check_int as _check_int
from ..cameras import Camera

__all__ = ["PipelineSampler", "as_image_sampler", "save_like", "check_generated_range", "model_name_of", "check_int",
           "seed_stream"]

log = logging.getLogger(__name__)

ImageSampler = Callable[[int, int], torch.Tensor]


def check_int(v: Any, name: str, low: int = 1) -> int:
    """``v`` as an int >= ``low``; ``ValueError`` naming ``name`` otherwise."""
    return _check_int(v, name, low)


def seed_stream(seed: Any) -> np.random.Generator:
    """The numpy generator every metric draws its seeds and pair choices from."""
    s = check_int(seed, "seed", 0)
    return np.random.default_rng(s)


def check_generated_range(images: torch.Tensor, name: str) -> None:
    """Generated images are unclamped [-1, 1] outputs: refuse non-finite values and [0, 255]-looking
    data (min >= 0 and max > 2); warn when everything lies in [0, 1]."""
    import warnings

    if not images.is_floating_point():
        raise TypeError(f"{name}: expected float images in [-1, 1], got dtype {images.dtype}")
    if images.numel() == 0:
        return
    lo, hi = (float(v) for v in torch.aminmax(images.detach()))
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise ValueError(f"{name}: produced NaN or infinite values")
    if lo >= 0 and hi > 2:
        raise ValueError(f"{name}: produced values in [{lo:.4g}, {hi:.4g}] — this looks like [0, 255] pixels; "
                         "images must be in [-1, 1]")
    if lo >= 0 and hi <= 1 and hi > lo:
        warnings.warn(f"{name}: every value lies in [0, 1] — images must be in [-1, 1] (x * 2 - 1)",
                      UserWarning, stacklevel=3)


def save_like(images: torch.Tensor, quantize: bool = True) -> torch.Tensor:
    """Clamp to [-1, 1] and (``quantize``) round to uint8 levels: ``round((x+1)·127.5)/127.5 − 1``."""
    x = images.clamp(-1, 1)
    if quantize:
        x = torch.round((x + 1) * 127.5) / 127.5 - 1
    return x


def model_name_of(model: Any) -> str:
    from ..pipeline import SofGAN

    if isinstance(model, SofGAN):
        return "SofGAN"
    if isinstance(model, PipelineSampler):
        return "SofGAN"
    return getattr(model, "name", None) or getattr(model, "__name__", None) or type(model).__name__


class PipelineSampler:
    """Batched, seeded image rendering from a ``SofGAN`` pipeline (see the module docstring).

    Args:
        pipe: the pipeline (needs a geometry space for geometry seeds).
        camera: ``None`` (the pipeline's default camera), a dict of orbit parameters or a one-view
            :class:`~sofgan_lab.cameras.Camera`.
        truncation: ψ of the texture styles (1.0 = none, the paper's FID/LPIPS setting).
        quantize: round outputs to uint8 levels (see :func:`save_like`).
    """

    def __init__(self, pipe: Any, *, camera: Any = None, truncation: float = 1.0, quantize: bool = True):
        from ..pipeline import SofGAN

        if not isinstance(pipe, SofGAN):
            raise TypeError(f"pipe: expected a sofgan_lab.pipeline.SofGAN, got {type(pipe).__name__}")
        self.pipe = pipe
        self.camera = pipe.resolve_camera(camera, 1)
        if camera is None:
            self._camera_desc: Any = dict(pipe.default_camera)
        elif isinstance(camera, Camera):
            self._camera_desc = repr(camera)
        else:
            self._camera_desc = {**pipe.default_camera, **dict(camera)}
        if isinstance(truncation, bool) or not isinstance(truncation, (int, float, np.floating)) \
                or not 0 <= float(truncation) <= 1:
            raise ValueError(f"truncation: expected a number in [0, 1], got {truncation!r}")
        self.truncation = float(truncation)
        self.quantize = bool(quantize)

    @property
    def device(self) -> torch.device:
        return self.pipe.device

    @property
    def image_size(self) -> int:
        return self.pipe.siw.config.size

    def describe(self) -> dict[str, Any]:
        """Protocol details for a result's provenance."""
        return {"truncation": self.truncation, "quantize": self.quantize, "camera": self._camera_desc,
                "segmap_size": list(self.camera.image_size), "image_size": self.image_size}

    @torch.no_grad()
    def segmaps(self, geometry: Sequence[int] | torch.Tensor, camera: Camera | None = None) -> torch.Tensor:
        """SOF-20 label maps ``(n, H, W)`` int64 on the device: geometry seeds or codes ``(n, D)``
        through ``camera`` (1 or n views; default: the sampler's camera)."""
        g = list(geometry) if not isinstance(geometry, torch.Tensor) else geometry
        z = self.pipe.geometry_code(g)
        cam = self.camera if camera is None else camera
        return self.pipe.sof.render(z.to(self.pipe.sof.latents.weight.device), cam).labels.long()

    @torch.no_grad()
    def texture(self, segmaps: torch.Tensor, texture: Sequence[int] | torch.Tensor, *,
                label_set: str = "sof20") -> torch.Tensor:
        """Texture label maps ``(n, H, W)`` (``label_set`` "sof20" or "sofgan17") with texture seeds
        (or codes ``(n, style_dim)``) → images ``(n, 3, S, S)`` in [-1, 1] on the device."""
        from ..labels import sof_to_sofgan

        if label_set not in ("sof20", "sofgan17"):
            raise ValueError(f"label_set: expected 'sof20' or 'sofgan17', got {label_set!r}")
        seg = segmaps.long()
        seg17 = sof_to_sofgan(seg) if label_set == "sof20" else seg
        t = list(texture) if not isinstance(texture, torch.Tensor) else texture
        z = self.pipe.texture_code(t)                                            # (n, 1, D)
        if z.shape[0] != seg.shape[0]:
            raise ValueError(f"texture: {z.shape[0]} styles for {seg.shape[0]} segmaps")
        dev = self.device
        img = self.pipe.siw(seg17.to(dev), z.to(dev), truncation=self.truncation, noise="const")
        return save_like(img.float(), self.quantize)

    @torch.no_grad()
    def images(self, geometry: Sequence[int], texture: Sequence[int], camera: Camera | None = None) -> torch.Tensor:
        """Images ``(n, 3, S, S)`` of geometry seeds × texture seeds (pairwise) on the device."""
        return self.texture(self.segmaps(geometry, camera), texture)

    def __call__(self, n: int, seed: int) -> torch.Tensor:
        """``n`` random portraits (random geometry and texture seeds drawn from ``seed``)."""
        n = check_int(n, "n")
        rng = seed_stream(seed)
        seeds = rng.integers(0, 2 ** 31 - 1, size=(2, n))
        return self.images(seeds[0].tolist(), seeds[1].tolist())


def as_image_sampler(model: Any, *, camera: Any = None, truncation: float = 1.0,
                     quantize: bool = True) -> tuple[ImageSampler, dict[str, Any]]:
    """``(sampler(n, seed) -> images, protocol description)`` for a ``SofGAN`` pipeline, a
    :class:`PipelineSampler` or a callable (checked to be callable; its outputs are checked by the
    metric)."""
    from ..pipeline import SofGAN

    if isinstance(model, SofGAN):
        s = PipelineSampler(model, camera=camera, truncation=truncation, quantize=quantize)
        return s, {"source": "SofGAN pipeline", **s.describe()}
    if isinstance(model, PipelineSampler):
        return model, {"source": "SofGAN pipeline", **model.describe()}
    if callable(model):
        if camera is not None:
            raise ValueError("camera: only for a SofGAN pipeline; a sampler callable chooses its own views")

        def sampler(n: int, seed: int) -> torch.Tensor:
            out = model(n, seed)
            if not isinstance(out, torch.Tensor) or out.dim() != 4 or out.shape[0] != n or out.shape[1] != 3:
                got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
                raise ValueError(f"model: a sampler must return images (n, 3, H, W) for n={n}, got {got}")
            check_generated_range(out, "model")
            return save_like(out.float(), quantize)

        return sampler, {"source": f"callable {model_name_of(model)}", "quantize": quantize}
    raise TypeError(f"model: expected a SofGAN pipeline or a callable sampler(n, seed) -> (n, 3, H, W), got "
                    f"{type(model).__name__}")
