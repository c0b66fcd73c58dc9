"""The one pair of image converters between tensors and arrays at the edges.

Inside the library images are float tensors ``(B, 3, H, W)`` in ``[-1, 1]``; at the edges (PIL,
numpy, PNG files) they are ``uint8`` arrays ``(H, W, 3)`` or ``(B, H, W, 3)``.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

__all__ = ["from_uint8", "image_grid", "tensor_to_uint8", "uint8_to_tensor", "rgb_to_lab", "encode_png", "ImageResult",
           "list_images", "IMAGE_SUFFIXES", "read_image"]

log = logging.getLogger(__name__)

#: Suffixes of the image files the folders of photos are read from (any case).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")

# sRGB (D65) linear RGB -> XYZ, and the D65 white point (IEC 61966-2-1 / CIE 1976).
_RGB_TO_XYZ = torch.tensor([[0.4124564, 0.3575761, 0.1804375],
                            [0.2126729, 0.7151522, 0.0721750],
                            [0.0193339, 0.1191920, 0.9503041]], dtype=torch.float64)
_WHITE_D65 = torch.tensor([0.95047, 1.0, 1.08883], dtype=torch.float64)


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


def from_uint8(x: torch.Tensor) -> torch.Tensor:
    """uint8 levels -> float32 in [-1, 1] (``x / 127.5 - 1``), any shape, layout kept: the one
    conversion of stored pixels into the models' range (:func:`tensor_to_uint8` is its inverse)."""
    if not isinstance(x, torch.Tensor) or x.dtype != torch.uint8:
        raise TypeError(f"x: expected a uint8 torch.Tensor, got {getattr(x, 'dtype', type(x).__name__)}")
    return x.float().div_(127.5).sub_(1.0)


def uint8_to_tensor(array: np.ndarray) -> torch.Tensor:
    """``(H, W, 3)`` / ``(B, H, W, 3)`` uint8 -> ``(3, H, W)`` / ``(B, 3, H, W)`` float32 in [-1, 1]."""
    a = np.asarray(array)
    if a.dtype != np.uint8:
        raise TypeError(f"array: expected dtype uint8, got {a.dtype}")
    if a.ndim not in (3, 4) or a.shape[-1] != 3:
        raise ValueError(f"array: expected shape (H, W, 3) or (B, H, W, 3), got {a.shape}")
    return from_uint8(torch.from_numpy(np.ascontiguousarray(a))).movedim(-1, -3).contiguous()


def image_grid(tiles: Sequence, ncols: int, pad: int = 2, *, under: Sequence | None = None):
    """A contact sheet (PIL, RGB, white gaps of ``pad`` pixels): ``tiles`` (PIL images or uint8
    ``(H, W, 3)`` arrays, resized to the first one's size) in rows of ``ncols``; with ``under``, each
    tile's companion (e.g. its coloured label map, resized with nearest neighbours) right below it."""
    from PIL import Image

    def pil(t):
        return t if isinstance(t, Image.Image) else Image.fromarray(np.asarray(t))

    tiles = [pil(t) for t in tiles]
    w, h = tiles[0].size
    per = 2 if under is not None else 1
    nrows = -(-len(tiles) // ncols)
    canvas = Image.new("RGB", (ncols * (w + pad) - pad, nrows * per * (h + pad) - pad), (255, 255, 255))
    for j, tile in enumerate(tiles):
        r, c = divmod(j, ncols)
        x, y = c * (w + pad), r * per * (h + pad)
        canvas.paste(tile if tile.size == (w, h) else tile.resize((w, h)), (x, y))
        if under is not None:
            canvas.paste(pil(under[j]).resize((w, h), Image.NEAREST), (x, y + h + pad))
    return canvas


def rgb_to_lab(images: torch.Tensor) -> torch.Tensor:
    """CIE-L*a*b* (D65) of sRGB images: ``(..., 3, H, W)`` float in [-1, 1] -> the same shape,
    float32, L* in [0, 100] and a*, b* roughly in [-128, 127]. Values outside [-1, 1] are clipped;
    NaN raises. ΔE (CIE76) between two colours is the Euclidean distance of their Lab values."""
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"images: expected a torch.Tensor, got {type(images).__name__}")
    if images.dim() < 3 or images.shape[-3] != 3:
        raise ValueError(f"images: expected shape (..., 3, H, W), got {tuple(images.shape)}")
    if torch.isnan(images).any():
        raise ValueError("images: contains NaN values")
    rgb = ((images.detach().double().clamp(-1, 1) + 1) / 2).movedim(-3, -1)
    lin = torch.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    xyz = lin @ _RGB_TO_XYZ.to(lin.device).T / _WHITE_D65.to(lin.device)
    d = 6.0 / 29.0
    f = torch.where(xyz > d ** 3, xyz.clamp_min(0) ** (1.0 / 3.0), xyz / (3 * d * d) + 4.0 / 29.0)
    lab = torch.stack([116.0 * f[..., 1] - 16.0, 500.0 * (f[..., 0] - f[..., 1]), 200.0 * (f[..., 1] - f[..., 2])], -1)
    return lab.movedim(-1, -3).float()


def encode_png(image) -> bytes:
    """Lossless PNG bytes of an image at the edges: a uint8 array ``(H, W, 3)`` (RGB) or ``(H, W)``
    (grey), or a PIL image (written in its own mode)."""
    import io

    from PIL import Image

    if not isinstance(image, Image.Image):
        a = np.asarray(image)
        if a.dtype != np.uint8 or not (a.ndim == 2 or (a.ndim == 3 and a.shape[-1] == 3)):
            raise ValueError(f"image: expected a PIL image or uint8 (H, W, 3) / (H, W), got {a.dtype} {a.shape}")
        image = Image.fromarray(np.ascontiguousarray(a))
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


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


def list_images(folder: str | Path, sub: str, what: str, exts: Sequence[str] = IMAGE_SUFFIXES, *,
                recursive: bool | None = None) -> list[Path]:
    """The image files of ``folder`` (or of ``folder/sub`` when that sub-folder exists), sorted.

    ``exts``: accepted suffixes (any case). ``recursive``: ``False`` lists the folder itself only;
    ``True`` adds the files one level down (``folder/*/file``), sorted by their relative path;
    ``None`` (default) does that only when the folder itself holds no matching file, which is
    FFHQ's nested layout (``images1024x1024/00000/00000.png``, ``.../01000/01000.png``, ...).
    Deeper levels are never searched. Hidden files and folders (names starting with ``.``) are
    skipped. Raises ``FileNotFoundError`` naming ``what`` when ``folder`` is not a folder or
    nothing matches.
    """
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"{what}: {root} is not a folder")
    if (root / sub).is_dir():
        root = root / sub
    suffixes = tuple(e.lower() for e in exts)

    def matching(d: Path) -> list[Path]:
        return [p for p in d.iterdir() if not p.name.startswith(".") and p.suffix.lower() in suffixes
                and p.is_file()]

    files = sorted(matching(root))
    nested = False
    if recursive or (recursive is None and not files):
        subdirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
        deeper = [p for d in subdirs for p in sorted(matching(d))]
        nested = bool(deeper)
        files = files + deeper
    if not files:
        searched = " or its sub-folders" if recursive is not False else ""
        raise FileNotFoundError(f"{what}: no {'/'.join(exts)} files in {root}{searched}")
    if nested:
        log.debug("%s: %d files in %s, one level of sub-folders included", what, len(files), root)
    return files


def read_image(path: str | Path, what: str, *, header_only: bool = False):
    """Open the image file ``path`` and decode it (``header_only``: size and mode only) as a PIL image
    in its own mode.

    A truncated, corrupt or non-image file, or one whose pixel count exceeds PIL's decompression-bomb
    limit (``PIL.Image.MAX_IMAGE_PIXELS``, twice that is refused outright), raises a one-line
    ``ValueError`` naming ``what`` and the file, never PIL's own error types."""
    import struct
    import warnings
    import zlib

    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(path)
            if not header_only:
                im.load()
    except (OSError, SyntaxError, ValueError, EOFError, struct.error, zlib.error, MemoryError,
            Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        text = " ".join(str(exc).split())[:200] or type(exc).__name__
        if isinstance(exc, (Image.DecompressionBombError, Image.DecompressionBombWarning)):
            text = f"too many pixels for a photo, a possible decompression bomb: {text}"
        raise ValueError(f"{what}: {path} cannot be read as an image ({text})") from None
    return im
