"""The SofGAN pipeline: geometry (SOF) + texture (SIW-StyleGAN) in one object.

``SofGAN`` owns a :class:`~sofgan_lab.geometry.SemanticOccupancyField`, the
:class:`~sofgan_lab.geometry.space.GeometrySpace` fitted on its codes (optional), an
:class:`~sofgan_lab.texture.SIWGenerator` and a default camera. One call renders a portrait::

    pipe = SofGAN.from_pretrained("demo")
    p = pipe(geometry=1, texture=2, camera={"yaw": 20})           # a Portrait
    p = pipe(geometry=1, texture=(2, 7), region_mix={"hair": 1})  # style 7 paints the hair
    ps = pipe(geometry=[1, 2, 3], texture=5)                      # a PortraitList (shows a grid)

``geometry`` is a seed (drawn from the geometry space) or a code ``(latent_dim,)``; ``texture`` is
a seed, a code ``(style_dim,)``, or a pair of seeds/codes (styles A and B) for ``region_mix``
``{group: p}`` (``p`` = weight of style B, groups from
:data:`~sofgan_lab.texture.regions.STYLE_GROUPS`). Noise is the generator's fixed buffers, so the
same arguments give the same pixels. :meth:`SofGAN.from_segmap` textures a given label map.

A saved pipeline is a folder: ``pipeline.json`` (format, default camera, default truncation, and
the sub-folders of the components) with ``sof/``, ``siw/`` and optionally ``geometry_space/`` in
the native checkpoint format.
"""
from __future__ import annotations

import base64
import logging
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from . import __version__
from ._validate import MAX_CODE_ABS, ArgumentTypeError, check_finite_tensor, check_int, check_number, describe
from .cameras import DEFAULT_RADIUS, DEFAULT_TARGET, TRAINED_PITCH_RANGE, TRAINED_YAW_RANGE, Camera
from .geometry.sof import SemanticOccupancyField
from .geometry.space import GeometrySpace
from .images import ImageResult
from .labels import NUM_SOF_CLASSES, NUM_SOFGAN_CLASSES, colorize, sof_to_sofgan
from .texture.generator import SIWGenerator
from .texture.regions import STYLE_GROUPS, two_style_weights

__all__ = ["SofGAN", "Portrait", "PortraitList", "LabelSurface", "LabelSurfaceCache", "segmap_path",
           "PIPELINE_FORMAT", "PIPELINE_FORMAT_VERSION"]

log = logging.getLogger(__name__)

PIPELINE_FORMAT = "sofgan-lab/pipeline"
PIPELINE_FORMAT_VERSION = 1
_CAMERA_KEYS = ("yaw", "pitch", "radius", "fov", "target", "zoom")
_POSE_KEYS = ("yaw", "pitch")


# --------------------------------------------------------------------------------------- results
def _png(image) -> bytes:
    from .images import encode_png

    return encode_png(image)


def check_png_path(path: Any, name: str = "path") -> Path:
    """``path`` as a :class:`~pathlib.Path` ending in ``.png`` (errors name ``name``)."""
    if not isinstance(path, (str, Path)) and not hasattr(path, "__fspath__"):
        raise TypeError(f"{name}: expected a file path, got {type(path).__name__}")
    p = Path(path)
    if p.suffix.lower() != ".png":
        raise ValueError(f"{name}: expected a .png file name, got {str(p)!r}")
    return p


def segmap_path(path: str | Path) -> Path:
    """Where the coloured label map of the portrait written to ``path`` goes: ``<stem>_segmap.png``
    in the same folder (``me.png`` -> ``me_segmap.png``)."""
    p = Path(path)
    return p.with_name(f"{p.stem}_segmap.png")


@dataclass
class Portrait(ImageResult):
    """One rendered portrait and everything that made it.

    Attributes:
        tensor: the generator's output ``[3, H, W]`` (≈ [-1, 1], unclamped), on the CPU.
        segmap: SOF-20 label map ``(h, w)`` uint8 (``None`` when made from a SofGAN-17 map).
        segmap17: SofGAN-17 label map ``(h, w)`` uint8 (the generator's input).
        depth: camera-space depth ``(h, w)`` float32 of the surface (0 where rays miss), or ``None``
            for :meth:`SofGAN.from_segmap` portraits.
        geometry: the geometry code ``(latent_dim,)`` or ``None``.
        texture: the texture codes ``(K, style_dim)`` (K = 1, or 2 with a region mix).
        latents: the W+ latents used ``(K, n_latent, style_dim)`` (after truncation).
        camera: the camera (batch 1), or ``None``.
        region_mix: the region mix ``{group: p}`` or ``None``.
        truncation: ψ.
        points: world positions ``(h, w, 3)`` float32 of the surface point of each pixel, or ``None``
            (as ``depth``); with the camera they give :meth:`normal_image`.
    """

    tensor: torch.Tensor
    segmap: np.ndarray | None
    segmap17: np.ndarray
    depth: np.ndarray | None
    geometry: torch.Tensor | None
    texture: torch.Tensor
    latents: torch.Tensor
    camera: Camera | None
    region_mix: dict | None
    truncation: float
    points: np.ndarray | None = None

    def depth_image(self):
        """The depth of the head as a grey PIL image (nearest white, background black;
        :func:`~sofgan_lab.geometry.views.depth_image`). Needs a rendered portrait (``depth``)."""
        from PIL import Image

        from .geometry.views import depth_image

        if self.depth is None or self.segmap is None:
            raise ValueError("depth: this portrait was made from a label map, not rendered; it has no depth")
        return Image.fromarray(depth_image(self.depth, self.segmap))

    def normal_image(self):
        """The surface normals of the head in the camera frame as a PIL image (``RGB = (n + 1) / 2``,
        x right, y up, z toward the viewer; background black;
        :func:`~sofgan_lab.geometry.views.normal_image`). Needs a rendered portrait."""
        from PIL import Image

        from .geometry.views import normal_image

        if self.points is None or self.camera is None or self.segmap is None:
            raise ValueError("normals: this portrait was made from a label map, not rendered; it has no surface")
        return Image.fromarray(normal_image(self.points, self.segmap, self.camera))

    def segmap_image(self, label_set: str = "sof20"):
        """The label map coloured with the palette of ``label_set`` ("sof20" or "sofgan17"), as PIL."""
        from PIL import Image

        if label_set == "sof20":
            if self.segmap is None:
                raise ValueError("label_set: this portrait was made from a SofGAN-17 map; use 'sofgan17'")
            return Image.fromarray(colorize(self.segmap, "sof20"))
        if label_set == "sofgan17":
            return Image.fromarray(colorize(self.segmap17, "sofgan17"))
        raise ValueError(f"label_set: expected 'sof20' or 'sofgan17', got {label_set!r}")

    def save(self, path: str | Path, *, segmap: bool = True) -> list[Path]:
        """Write the portrait as a PNG to ``path`` (suffix ``.png``; missing folders are created) and,
        with ``segmap``, its coloured label map (SOF-20 palette, or SofGAN-17 for a portrait made from
        a SofGAN-17 map; at the label map's own size) beside it as ``<stem>_segmap.png``
        (:func:`segmap_path`). Each file is written atomically. Returns the written paths, the image
        first."""
        from .images import encode_png
        from .io.checkpoints import atomic_write_bytes

        path = check_png_path(path)
        atomic_write_bytes(path, encode_png(self.array))
        out = [path]
        if segmap:
            seg_path = segmap_path(path)
            atomic_write_bytes(seg_path, encode_png(self.segmap_image("sof20" if self.segmap is not None
                                                                      else "sofgan17")))
            out.append(seg_path)
        log.info("wrote %s", ", ".join(str(p) for p in out))
        return out

    def _repr_html_(self) -> str:
        seg = self.segmap_image("sof20" if self.segmap is not None else "sofgan17")
        if seg.size != self.image.size:
            from PIL import Image

            seg = seg.resize(self.image.size, Image.NEAREST)
        imgs = "".join(
            f'<figure style="margin:0 6px 0 0"><img src="data:image/png;base64,{base64.b64encode(_png(im)).decode()}"'
            f' style="image-rendering:pixelated"/><figcaption style="text-align:center;font-size:small">{cap}'
            f"</figcaption></figure>" for im, cap in ((self.image, "portrait"), (seg, "segmap")))
        return f'<div style="display:flex">{imgs}</div>'

    def __repr__(self) -> str:
        h, w = self.tensor.shape[-2:]
        cam = "" if self.camera is None else ", camera=1 view"
        mix = "" if self.region_mix is None else f", region_mix={self.region_mix}"
        return f"Portrait({h}x{w}, styles={self.texture.shape[0]}, truncation={self.truncation}{cam}{mix})"


class PortraitList(list):
    """A list of :class:`Portrait` that shows itself as a grid in Jupyter."""

    def grid(self, ncols: int | None = None, *, segmaps: bool = False, pad: int = 2):
        """All images in a grid (``ncols`` columns, default up to 8) as a PIL image; with
        ``segmaps`` each portrait's coloured segmap is placed under it."""
        from .images import image_grid

        if not self:
            raise ValueError("grid: the list is empty")
        if ncols is not None and (isinstance(ncols, bool) or not isinstance(ncols, int) or ncols < 1):
            raise ValueError(f"ncols: expected a positive integer, got {ncols!r}")
        under = [p.segmap_image("sof20" if p.segmap is not None else "sofgan17") for p in self] if segmaps else None
        return image_grid([p.image for p in self], min(len(self), ncols or 8), pad, under=under)

    def _repr_png_(self) -> bytes:
        return _png(self.grid()) if self else b""


# --------------------------------------------------------------------------------------- pipeline
@dataclass(frozen=True, eq=False)
class LabelSurface:
    """One view's SOF-20 label map with the surface it was rendered from.

    Attributes:
        segmap: ``(H, W)`` uint8 SOF-20 ids.
        depth: ``(H, W)`` float32 ray depth, ``points``: ``(H, W, 3)`` float32 world points, and the
            ``camera`` (a one-view :class:`~sofgan_lab.cameras.Camera`); all ``None`` for a label map
            that was given rather than rendered.
    """

    segmap: np.ndarray
    depth: np.ndarray | None = None
    points: np.ndarray | None = None
    camera: Camera | None = None

    def upsampled(self, size: int, smooth: bool = False) -> "LabelSurface":
        """The same surface at ``size`` x ``size`` (a quick preview of a low-resolution render; the
        camera is kept: normals need only its pose). Nearest-neighbour sampling; with ``smooth`` the
        label map is resampled per class instead (each class's indicator bilinearly, then the most
        covered class per pixel), so the outlines of a map enlarged 3-4x stay smooth instead of
        turning into steps (depth and points stay nearest)."""
        if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= 8192:
            raise ValueError(f"size: expected an integer in 1..8192, got {size!r}")

        def up(a):
            if a is None:
                return None
            h, w = a.shape[:2]
            return np.ascontiguousarray(a[(np.arange(size) * h) // size][:, (np.arange(size) * w) // size])
        seg = _smooth_labels(self.segmap, size) if smooth else up(self.segmap)
        return LabelSurface(seg, up(self.depth), up(self.points), self.camera)


def _smooth_labels(segmap: np.ndarray, size: int) -> np.ndarray:
    """``segmap`` (H, W) ids resampled to ``size`` x ``size``: per class bilinear, then argmax."""
    import torch.nn.functional as F

    ids, inverse = np.unique(segmap, return_inverse=True)
    onehot = F.one_hot(torch.from_numpy(inverse.reshape(segmap.shape).astype(np.int64)), len(ids))
    grown = F.interpolate(onehot.permute(2, 0, 1)[None].float(), size=(size, size), mode="bilinear",
                          align_corners=False)
    return ids[grown[0].argmax(0).numpy()].astype(segmap.dtype)


class LabelSurfaceCache:
    """The last ``size`` :class:`LabelSurface` renders of a pipeline, keyed by what determines them
    (geometry code, camera, and the base and regions of a restricted edit); least recently used
    first out. Thread-safe: an interactive view renders on a worker thread and asks from the
    kernel's. Interactive views use it so that changing only the texture re-uses the label map."""

    def __init__(self, pipe: "SofGAN", size: int = 16):
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"size: expected a positive integer, got {size!r}")
        self.pipe, self.size = pipe, size
        self._items: OrderedDict[tuple, LabelSurface] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def key(geometry: Any, camera: Camera, base: Any = None, regions: Sequence[str] = ()) -> tuple:
        """The cache key of these render inputs (exact values: a changed float is another entry)."""
        def flat(x):
            return None if x is None else tuple(float(v) for v in np.asarray(
                x.detach().cpu() if isinstance(x, torch.Tensor) else x, dtype=np.float64).ravel())
        cam = (camera.cam2world.detach().cpu().numpy().tobytes(), camera.intrinsics.detach().cpu().numpy().tobytes(),
               tuple(camera.image_size), bool(camera.orthographic))
        return (flat(geometry), cam, flat(base), tuple(regions))

    def __contains__(self, key: tuple) -> bool:
        with self._lock:
            return key in self._items

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def surface(self, geometry: Any, camera: Camera, *, base: Any = None, regions: Sequence[str] = ()) -> LabelSurface:
        """:meth:`SofGAN.label_surface` of these inputs, from the cache when it holds them."""
        key = self.key(geometry, camera, base, regions)
        with self._lock:
            hit = self._items.get(key)
            if hit is not None:
                self._items.move_to_end(key)
                return hit
        got = self.pipe.label_surface(geometry, camera, base=base, regions=regions)
        with self._lock:
            self._items[key] = got
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return got

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
#: PIL modes whose pixel values are class ids ('L' 8-bit, 'P' palette indices, 'I' / 'I;16' integers).
_ID_IMAGE_MODES = ("L", "P", "I", "I;16", "I;16B", "I;16L")
_WIDE_UNSIGNED = tuple(getattr(torch, n) for n in ("uint16", "uint32", "uint64") if hasattr(torch, n))


def _is_int(x: Any) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool)


def _batched(x: Any) -> bool:
    """A list of seeds, a list of codes or an ``(n, D)`` array asks for a list of portraits (a flat
    list of floats is one code)."""
    if isinstance(x, range):
        return True
    if isinstance(x, list):
        return bool(x) and all(_is_int(v) or isinstance(v, (list, tuple, np.ndarray, torch.Tensor)) for v in x)
    return isinstance(x, (torch.Tensor, np.ndarray)) and x.ndim == 2


def _as_code(x: Any, dim: int, name: str) -> torch.Tensor:
    """A code ``(dim,)`` or ``(n, dim)`` from a tensor/array/list -> float32 ``(n, dim)``."""
    if isinstance(x, torch.Tensor):
        t = x.detach().float().cpu()
    else:
        try:
            with np.errstate(over="ignore"):  # a value beyond float32 becomes inf, refused below
                t = torch.as_tensor(np.asarray(x, dtype=np.float32))
        except (TypeError, ValueError):
            raise TypeError(f"{name}: expected a seed (int) or a code of {dim} numbers, got {type(x).__name__}") from None
    if t.dim() == 1:
        t = t[None]
    if t.dim() != 2 or t.shape[1] != dim:
        raise ValueError(f"{name}: expected a code of shape ({dim},) or (n, {dim}), got {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise ValueError(f"{name}: contains NaN or infinite values")
    return check_finite_tensor(t, name, MAX_CODE_ABS)


class SofGAN:
    """Geometry + texture in one object (see the module docstring).

    Args:
        sof: the geometry model.
        siw: the texture generator.
        space: the geometry space (seeds for ``geometry`` need it), or ``None``.
        camera: the default camera as orbit parameters ``{"yaw", "pitch", "radius", "fov", "target",
            "zoom"}`` (degrees, world units; ``fov`` ``None`` = orthographic; ``target`` the look-at
            point; ``zoom`` the focal-length multiplier). Missing keys take the release's framing
            (frontal, radius 4.5, orthographic, target ``(0, 0.1, 0)``, zoom 1), which an imported
            official pipeline keeps; models trained on portrait-framed data record
            ``cameras.framing("portrait")`` in their ``pipeline.json``.
        pose_range: ``{"yaw": (lo, hi), "pitch": (lo, hi)}`` in degrees, the poses the SOF was
            trained on (default: the release's sampler, yaw ±34.4°, pitch ±11.5°). Widgets keep the
            camera inside it unless the user leaves it on purpose.
        truncation: the default ψ of calls that do not give one.
        image_size: the size of rendered segmaps (default: the generator's size).
    """

    def __init__(self, sof: SemanticOccupancyField, siw: SIWGenerator, space: GeometrySpace | None = None,
                 camera: Mapping[str, Any] | None = None, *, truncation: float = 0.7,
                 image_size: int | None = None, pose_range: Mapping[str, Any] | None = None):
        if not isinstance(sof, SemanticOccupancyField):
            raise TypeError(f"sof: expected a SemanticOccupancyField, got {type(sof).__name__}")
        if not isinstance(siw, SIWGenerator):
            raise TypeError(f"siw: expected a SIWGenerator, got {type(siw).__name__}")
        if space is not None and not isinstance(space, GeometrySpace):
            raise TypeError(f"space: expected a GeometrySpace or None, got {type(space).__name__}")
        if space is not None and space.dim != sof.config.latent_dim:
            raise ValueError(f"space: its codes have {space.dim} dims, the SOF's latents {sof.config.latent_dim}")
        if sof.config.num_classes != NUM_SOF_CLASSES:
            raise ValueError(f"sof: expected a {NUM_SOF_CLASSES}-class (SOF-20) model, got {sof.config.num_classes}")
        if siw.config.num_classes != NUM_SOFGAN_CLASSES:
            raise ValueError(f"siw: expected a {NUM_SOFGAN_CLASSES}-class generator, got {siw.config.num_classes}")
        self.sof = sof.eval()
        self.siw = siw.eval()
        self.space = space
        self.default_camera = {"yaw": 0.0, "pitch": 0.0, "radius": DEFAULT_RADIUS, "fov": None,
                               "target": [float(v) for v in DEFAULT_TARGET], "zoom": 1.0}
        self.default_camera.update(self.camera_params(camera or {}, "camera"))
        self.pose_range = self.check_pose_range(pose_range)
        self.truncation = self.check_truncation(truncation)
        size = image_size if image_size is not None else siw.config.size
        if not _is_int(size) or not 8 <= size <= 1024:
            raise ValueError(f"image_size: expected an integer in 8..1024, got {size!r}")
        self.image_size = int(size)

    # ------------------------------------------------------------------ loading and saving
    @classmethod
    def from_pretrained(cls, name_or_dir: str | Path = "demo", *, device: str | torch.device = "cpu") -> "SofGAN":
        """Load ``"demo"`` (the shipped demo models in ``data/demo/``) or a folder written by
        :meth:`save_pretrained` (or by ``sofgan-lab import-official``)."""
        from .io.checkpoints import CheckpointError, inside, json_dict, json_int, read_json

        if isinstance(name_or_dir, str) and name_or_dir == "demo":
            from .demo import data_dir, demo_dir

            d = data_dir() / "demo"
            for part in ("sof", "siw", "geometry_space"):
                demo_dir(part)  # a clear message when a part is missing
        elif isinstance(name_or_dir, (str, Path)):
            d = Path(name_or_dir)
            if not d.is_dir():
                hint = " (the only built-in name is 'demo')" if isinstance(name_or_dir, str) and "/" not in name_or_dir \
                    and not name_or_dir.startswith(".") else ""
                raise FileNotFoundError(f"name_or_dir: {str(name_or_dir)!r} is not a folder{hint}")
        else:
            raise TypeError(f"name_or_dir: expected 'demo' or a folder path, got {type(name_or_dir).__name__}")
        meta_path = d / "pipeline.json"
        if not meta_path.is_file():
            raise CheckpointError(f"name_or_dir: {meta_path} is missing (not a saved SofGAN pipeline)")
        meta = read_json(meta_path, "name_or_dir")
        if meta.get("format") != PIPELINE_FORMAT:
            raise CheckpointError(f"name_or_dir: {meta_path} is not a sofgan-lab pipeline (format {meta.get('format')!r})")
        if json_int(meta, "format_version", meta_path, "name_or_dir", default=0) > PIPELINE_FORMAT_VERSION:
            raise CheckpointError(f"name_or_dir: {meta_path} has format version {meta.get('format_version')}; this "
                                  f"sofgan-lab reads up to {PIPELINE_FORMAT_VERSION} (upgrade sofgan-lab)")
        parts = json_dict(meta, "components", meta_path, "name_or_dir")
        for key in ("sof", "siw"):
            if not isinstance(parts.get(key), str):
                raise CheckpointError(f"name_or_dir: {meta_path} names no '{key}' component")
        where = {k: inside(d, v, f"components.{k}", meta_path, "name_or_dir") for k, v in parts.items() if v}
        sof = SemanticOccupancyField.from_pretrained(where["sof"], map_location=device)
        siw = SIWGenerator.from_pretrained(where["siw"], map_location=device)
        space = GeometrySpace.load(where["geometry_space"]) if "geometry_space" in where else None
        pipe = cls(sof, siw, space, meta.get("camera"), truncation=meta.get("truncation", 0.7),
                   image_size=meta.get("image_size"), pose_range=meta.get("pose_range"))
        log.info("loaded the SofGAN pipeline from %s", d)
        return pipe

    def save_pretrained(self, directory: str | Path) -> Path:
        """Write the pipeline into ``directory`` (``sof/``, ``siw/``, ``geometry_space/`` and, last,
        ``pipeline.json``); every file is written atomically."""
        from .io.checkpoints import atomic_write_bytes
        import json

        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        self.sof.save_pretrained(d / "sof")
        self.siw.save_pretrained(d / "siw")
        if self.space is not None:
            self.space.save(d / "geometry_space")
        meta = {"format": PIPELINE_FORMAT, "format_version": PIPELINE_FORMAT_VERSION, "library_version": __version__,
                "components": {"sof": "sof", "siw": "siw",
                               "geometry_space": "geometry_space" if self.space is not None else None},
                "camera": dict(self.default_camera), "pose_range": {k: list(v) for k, v in self.pose_range.items()},
                "truncation": self.truncation, "image_size": self.image_size}
        atomic_write_bytes(d / "pipeline.json", (json.dumps(meta, indent=2) + "\n").encode())
        return d

    def to(self, device: str | torch.device) -> "SofGAN":
        """Move both networks to ``device`` (in place); returns ``self``."""
        self.sof.to(device)
        self.siw.to(device)
        return self

    @property
    def device(self) -> torch.device:
        return self.siw.device

    def __repr__(self) -> str:
        space = "none" if self.space is None else f"{self.space.num_components} components"
        return (f"SofGAN(geometry: SOF z{self.sof.config.latent_dim}, space {space}; texture: SIW "
                f"{self.siw.config.size}px style {self.siw.config.style_dim}; camera {self.default_camera})")

    # ------------------------------------------------------------------ arguments
    @staticmethod
    def check_truncation(t: Any) -> float:
        """``t`` (a Python or numpy number, or a 0-d tensor) as a float ψ in [0, 1]; a ``ValueError``
        naming ``truncation`` otherwise."""
        return check_number(t, "truncation", 0, 1)

    @staticmethod
    def check_pose_range(pose_range: Mapping[str, Any] | None) -> dict:
        """``{"yaw": (lo, hi), "pitch": (lo, hi)}`` (degrees, lo < hi; pitch within (-90, 90));
        missing keys take the release's sampler ranges. Errors name ``pose_range``."""
        out = {"yaw": tuple(TRAINED_YAW_RANGE), "pitch": tuple(TRAINED_PITCH_RANGE)}
        if pose_range is None:
            return out
        if not isinstance(pose_range, Mapping):
            raise TypeError(f"pose_range: expected a dict like {{'yaw': [-34.4, 34.4]}}, got "
                            f"{type(pose_range).__name__}")
        unknown = sorted(set(pose_range) - set(_POSE_KEYS))
        if unknown:
            raise ValueError(f"pose_range: unknown keys {unknown}; expected some of {list(_POSE_KEYS)}")
        for k, v in pose_range.items():
            ok = isinstance(v, (list, tuple)) and len(v) == 2 and all(
                not isinstance(x, bool) and isinstance(x, (int, float, np.floating, np.integer)) and math.isfinite(x)
                for x in v)
            if not ok or not v[0] < v[1]:
                raise ValueError(f"pose_range: {k} must be [low, high] with low < high, got {v!r}")
            if k == "pitch" and not (-90 < v[0] and v[1] < 90):
                raise ValueError(f"pose_range: pitch must lie within (-90, 90), got {v!r}")
            out[k] = (float(v[0]), float(v[1]))
        return out

    @property
    def framing(self) -> dict:
        """The default camera's framing as keyword arguments for :meth:`Camera.from_orbit` and the
        view paths: ``{"target": (x, y, z), "zoom": z}`` (e.g. ``random_views(8, **pipe.framing)``)."""
        return {"target": tuple(self.default_camera["target"]), "zoom": float(self.default_camera["zoom"])}

    @property
    def framing_name(self) -> str | None:
        """``"portrait"`` or ``"official"`` when the default camera has that named framing
        (:data:`sofgan_lab.cameras.FRAMINGS`; e.g. for ``write_photos(..., framing=pipe.framing_name)``),
        else ``None``."""
        from .cameras import framing_name

        return framing_name(self.default_camera["target"], self.default_camera["zoom"])

    def in_pose_range(self, yaw: float, pitch: float) -> bool:
        """Whether ``(yaw, pitch)`` (degrees) lies inside :attr:`pose_range`, the trained poses."""
        (ylo, yhi), (plo, phi) = self.pose_range["yaw"], self.pose_range["pitch"]
        return ylo <= float(yaw) <= yhi and plo <= float(pitch) <= phi

    @staticmethod
    def camera_params(camera: Mapping[str, Any], name: str = "camera") -> dict:
        """Validate orbit parameters ``{"yaw", "pitch", "radius", "fov", "target", "zoom"}`` (errors
        name ``name``); ``target`` comes back as a list of 3 floats."""
        unknown = sorted(set(camera) - set(_CAMERA_KEYS))
        if unknown:
            raise ValueError(f"{name}: unknown keys {unknown}; expected some of {list(_CAMERA_KEYS)}")
        out = {}
        for k, v in camera.items():
            if k == "fov" and v is None:
                out[k] = None
                continue
            if k == "target":
                vals = list(v) if isinstance(v, (list, tuple, np.ndarray, torch.Tensor)) else None
                try:
                    ok = vals is not None and len(vals) == 3
                    vals = [check_number(x, f"{name}: target") for x in vals] if ok else None
                except ValueError:
                    vals = None
                if vals is None:
                    raise ValueError(f"{name}: target must be 3 finite numbers (x, y, z), got {v!r}")
                out[k] = vals
                continue
            try:  # numbers: Python, numpy, or 0-d tensors
                out[k] = check_number(v, f"{name}: {k}")
            except ValueError:
                raise ValueError(f"{name}: {k} must be a finite number, got {v!r}") from None
            if k == "zoom" and not out[k] > 0:
                raise ValueError(f"{name}: zoom must be > 0, got {v!r}")
        return out

    def camera(self, yaw: float | None = None, pitch: float | None = None, radius: float | None = None,
               fov: float | None | str = "default", *, image_size: int | None = None,
               target: Any = None, zoom: float | None = None) -> Camera:
        """An orbit camera at the pipeline's image size: unset arguments take the default camera's
        values (yaw, pitch in degrees; ``fov`` ``None`` = orthographic; ``target``, ``zoom`` the
        framing)."""
        p = dict(self.default_camera)
        given = {"yaw": yaw, "pitch": pitch, "radius": radius, "target": target, "zoom": zoom}
        p.update(self.camera_params({k: v for k, v in given.items() if v is not None}, "camera"))
        if fov != "default":
            p.update(self.camera_params({"fov": fov}, "camera"))
        size = self.image_size if image_size is None else image_size
        return Camera.from_orbit(p["yaw"], p["pitch"], p["radius"], fov=p["fov"], image_size=size,
                                 target=tuple(p["target"]), zoom=p["zoom"])

    def resolve_camera(self, camera: Any, batch: int = 1) -> Camera:
        """``None`` (the default camera), a mapping of orbit parameters, or a :class:`Camera` with 1 or
        ``batch`` views."""
        if camera is None:
            cam = self.camera()
        elif isinstance(camera, Camera):
            cam = camera
        elif isinstance(camera, Mapping):
            p = self.camera_params(camera, "camera")
            cam = self.camera(p.get("yaw"), p.get("pitch"), p.get("radius"), p["fov"] if "fov" in p else "default",
                              target=p.get("target"), zoom=p.get("zoom"))
        else:
            raise TypeError(f"camera: expected None, a dict like {{'yaw': 20, 'pitch': 5}}, or a sofgan_lab.cameras."
                            f"Camera, got {type(camera).__name__}")
        if cam.batch_size not in (1, batch):
            raise ValueError(f"camera: has {cam.batch_size} views for {batch} portraits (give 1 or {batch})")
        return cam

    def geometry_code(self, geometry: Any) -> torch.Tensor:
        """Geometry codes ``(n, latent_dim)``: a seed (one draw from the geometry space), a list of
        seeds, or codes."""
        dim = self.sof.config.latent_dim
        seeds = self._seeds(geometry)
        if seeds is not None:
            if self.space is None:
                raise ValueError("geometry: this pipeline has no geometry space, so seeds cannot be drawn; pass a "
                                 f"code of {dim} numbers (e.g. pipe.sof.latents.weight[0])")
            return torch.cat([self.space.sample(1, seed=s) for s in seeds])
        return _as_code(geometry, dim, "geometry")

    def texture_code(self, texture: Any) -> torch.Tensor:
        """Texture codes ``(n, K, style_dim)``: a seed, a code, a pair ``(a, b)`` of seeds/codes (K = 2),
        or a list of seeds (n portraits)."""
        dim = self.siw.style_dim
        if isinstance(texture, tuple):
            if len(texture) != 2:
                raise ValueError(f"texture: a tuple means two styles (A, B); got {len(texture)} items")
            a, b = (self._one_texture(t, dim, f"texture[{i}]") for i, t in enumerate(texture))
            return torch.stack([a, b], 0)[None]
        seeds = self._seeds(texture)
        if seeds is not None:
            return torch.cat([self.siw.random_z(1, seed=self._texture_seed(s, "texture")).cpu() for s in seeds])
        return _as_code(texture, dim, "texture")[:, None]

    def _one_texture(self, t: Any, dim: int, name: str) -> torch.Tensor:
        if _is_int(t):
            return self.siw.random_z(1, seed=self._texture_seed(t, name)).cpu()[0, 0]
        c = _as_code(t, dim, name)
        if c.shape[0] != 1:
            raise ValueError(f"{name}: expected one code ({dim},), got {tuple(c.shape)}")
        return c[0]

    @staticmethod
    def _texture_seed(seed: Any, name: str) -> int:
        """A texture seed: torch generators take 64-bit seeds, so 0..2**64 - 1."""
        return check_int(seed, f"{name}: seed", 0, 2 ** 64 - 1)

    @staticmethod
    def _seeds(x: Any) -> list[int] | None:
        if _is_int(x):
            if x < 0:
                raise ValueError(f"seed: expected a non-negative integer, got {x}")
            return [int(x)]
        if isinstance(x, (list, range)) and len(x) and all(_is_int(s) for s in x):
            if min(x) < 0:
                raise ValueError(f"seed: expected non-negative integers, got {min(x)}")
            return [int(s) for s in x]
        return None

    # ------------------------------------------------------------------ rendering
    @torch.no_grad()
    def render_segmap(self, geometry: Any, camera: Any = None):
        """Render SOF-20 label maps of ``geometry`` (seeds or codes) through ``camera`` -> :class:`SOFRender`."""
        z = self.geometry_code(geometry)
        n = max(z.shape[0], camera.batch_size if isinstance(camera, Camera) else 1)
        cam = self.resolve_camera(camera, n)
        if z.shape[0] not in (1, n):
            raise ValueError(f"geometry: {z.shape[0]} codes for {n} views (give 1 or {n})")
        z = z.expand(n, -1)
        return self.sof.render(z.to(self.sof.latents.weight.device), cam)

    @torch.no_grad()
    def label_surface(self, geometry: Any, camera: Any = None, *, base: Any = None,
                      regions: Sequence[str] = ()) -> LabelSurface:
        """One view's label map with its surface (:class:`LabelSurface`, numpy on the CPU).

        ``geometry``: a seed or a code; ``camera``: as for :meth:`render_segmap` (one view). With
        ``base`` (a seed or code), a region-restricted edit of ``base`` toward ``geometry``
        (:func:`~sofgan_lab.geometry.space.restricted_edit`): labels outside ``regions`` keep the
        base's, and so do their depth and points."""
        from .geometry.space import restricted_edit

        cam = self.resolve_camera(camera, 1)
        z = self.geometry_code(geometry)
        if z.shape[0] != 1:
            raise ValueError(f"geometry: label_surface renders one geometry, got {z.shape[0]} codes")
        dev = self.sof.latents.weight.device
        if base is not None:
            zb = self.geometry_code(base)
            if zb.shape[0] != 1:
                raise ValueError(f"base: expected one geometry, got {zb.shape[0]} codes")
            edit = restricted_edit(self.sof, zb.to(dev), z.to(dev), cam, list(regions))
            labels, depth, points = edit.restricted[0], edit.depth[0], edit.points[0]
        else:
            render = self.render_segmap(z, cam)
            labels, depth, points = render.labels[0], render.depth[0], render.points[0]
        return LabelSurface(segmap=labels.cpu().numpy().astype(np.uint8), depth=depth.float().cpu().numpy(),
                            points=points.float().cpu().numpy(), camera=cam)

    @staticmethod
    def _texture_batch(t: torch.Tensor, n: int) -> torch.Tensor:
        if t.shape[0] == 1 and n > 1:
            t = t.expand(n, -1, -1)
        if t.shape[0] != n:
            raise ValueError(f"texture: {t.shape[0]} styles for {n} portraits (give 1 or {n})")
        return t

    def region_weights(self, region_mix: Any, styles: int, n: int) -> torch.Tensor | None:
        """Class weights ``[n, 17, 2]`` for ``region_mix`` ``{group: p}`` with ``styles`` texture styles per
        portrait (``None`` for one style); errors name ``region_mix``."""
        if region_mix is None:
            if styles == 2:
                raise ValueError("region_mix: two texture styles need a region mix, e.g. region_mix={'hair': 1}")
            return None
        if not isinstance(region_mix, Mapping):
            raise TypeError(f"region_mix: expected a dict {{group: p}} over {list(STYLE_GROUPS)}, got "
                            f"{type(region_mix).__name__}")
        if styles != 2:
            raise ValueError("region_mix: needs two texture styles, e.g. texture=(2, 7) (style A, style B)")
        try:
            return two_style_weights(dict(region_mix), batch=n)
        except (ValueError, TypeError) as exc:
            msg = str(exc)
            msg = f"region_mix{msg[1:]}" if msg.startswith(("p:", "p[")) else f"region_mix: {msg}"
            raise type(exc)(msg) from None

    def _texturize(self, seg17: torch.Tensor, texture: torch.Tensor, region_mix: Any, truncation: float | None):
        n = seg17.shape[0]
        psi = self.truncation if truncation is None else self.check_truncation(truncation)
        z = self._texture_batch(texture, n)
        weights = self.region_weights(region_mix, z.shape[1], n)
        dev = self.siw.device
        out = self.siw(seg17.to(dev), z.to(dev), class_weights=None if weights is None else weights.to(dev),
                       truncation=psi, noise="const", return_all=True)
        if not torch.isfinite(out.image).all():
            raise FloatingPointError("the texture generator produced NaN or infinite values (are its weights finite? "
                                     "check pipe.siw's parameters); no image is returned")
        return out, z, psi

    @torch.no_grad()
    def __call__(self, geometry: Any = 0, texture: Any = 0, camera: Any = None, region_mix: Mapping | None = None,
                 truncation: float | None = None) -> "Portrait | PortraitList":
        """Render portraits (see the module docstring). A single seed/code for both ``geometry`` and
        ``texture`` (and a one-view camera) gives a :class:`Portrait`; lists of seeds, ``(n, D)``
        codes or an ``n``-view camera give a :class:`PortraitList` of ``n``."""
        z_g = self.geometry_code(geometry)
        tex = self.texture_code(texture)
        cam = camera if isinstance(camera, Camera) else None
        n = max(z_g.shape[0], tex.shape[0], cam.batch_size if cam is not None else 1)
        for name, m in (("geometry", z_g.shape[0]), ("texture", tex.shape[0])):
            if m not in (1, n):
                raise ValueError(f"{name}: {m} values for a batch of {n} (give 1 or {n})")
        cam = self.resolve_camera(camera, n)
        z_g = z_g.expand(n, -1)
        render = self.sof.render(z_g.to(self.sof.latents.weight.device), cam)
        seg20 = render.labels
        seg17 = sof_to_sofgan(seg20)
        out, z, psi = self._texturize(seg17, tex, region_mix, truncation)
        mix = None if region_mix is None else {k: float(v) for k, v in region_mix.items()}
        result = PortraitList(
            Portrait(tensor=out.image[i].float().cpu(), segmap=seg20[i].cpu().numpy().astype(np.uint8),
                     segmap17=seg17[i].cpu().numpy().astype(np.uint8),
                     depth=render.depth[i].float().cpu().numpy(), geometry=z_g[i].clone(), texture=z[i].clone(),
                     latents=out.latents[i].float().cpu(), camera=cam[i] if cam.batch_size > 1 else cam,
                     region_mix=mix, truncation=psi, points=render.points[i].float().cpu().numpy())
            for i in range(n))
        single = not (_batched(geometry) or _batched(texture) or cam.batch_size > 1)
        return result[0] if single else result

    @torch.no_grad()
    def from_segmap(self, label_map: Any, texture: Any = 0, *, label_set: str = "sof20",
                    region_mix: Mapping | None = None, truncation: float | None = None) -> "Portrait | PortraitList":
        """Texture a given label map (painted or parsed): ``label_map`` ``(H, W)`` or ``(N, H, W)`` ids of
        ``label_set`` ("sof20" or "sofgan17"; numpy, torch, or an RGB uint8 image coloured with that
        label set's palette). A PIL image in mode 'L', 'P' or 'I' (e.g. a ``seg_XX.png`` the synthetic
        writers save) holds ids; other PIL modes are decoded as colours."""
        from .labels import decolorize, validate_labels

        if label_set not in ("sof20", "sofgan17"):
            raise ValueError(f"label_set: expected 'sof20' or 'sofgan17', got {label_set!r}")
        x = label_map
        if hasattr(x, "mode") and hasattr(x, "size") and not isinstance(x, (np.ndarray, torch.Tensor)):  # PIL
            # greyscale / palette / 32-bit images hold ids (our seg_XX.png), the rest are coloured maps
            x = np.array(x) if x.mode in _ID_IMAGE_MODES else np.array(x.convert("RGB"))
        if isinstance(x, (list, tuple)):
            try:
                x = np.asarray(x)
            except ValueError:  # ragged
                raise ValueError("label_map: a list must hold rows of equal length (a (H, W) grid of ids)") from None
        if not isinstance(x, (np.ndarray, torch.Tensor)):
            raise ArgumentTypeError(f"label_map: expected a label map (numpy array, torch tensor or PIL image), "
                                    f"got {describe(x)}")
        if isinstance(x, np.ndarray) and x.ndim == 3 and x.shape[-1] == 3 and x.dtype != np.uint8:
            raise ArgumentTypeError(f"label_map: an RGB image must be uint8 (H, W, 3), got dtype {x.dtype} "
                                    "(convert it, or pass class ids (H, W))")
        if isinstance(x, np.ndarray) and x.ndim == 3 and x.shape[-1] == 3 and x.dtype == np.uint8:
            x = decolorize(x, label_set)
        if isinstance(x, np.ndarray) and (x.dtype == object or x.dtype.kind not in "biuf"):
            raise ArgumentTypeError(f"label_map: expected integer class ids, got dtype {x.dtype}")
        if isinstance(x, np.ndarray) and x.dtype.kind == "u" and x.dtype.itemsize > 1:
            x = x.astype(np.int64)  # torch has no arithmetic on uint16/32/64
        t = torch.as_tensor(x) if not isinstance(x, torch.Tensor) else x.detach().cpu()
        if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
            raise ArgumentTypeError(f"label_map: expected integer class ids, got dtype {t.dtype}")
        if t.dtype in _WIDE_UNSIGNED:
            t = t.to(torch.int64)
        if t.dim() not in (2, 3):
            raise ValueError(f"label_map: expected shape (H, W) or (N, H, W), got {tuple(t.shape)}")
        if t.numel() == 0:
            raise ValueError(f"label_map: is empty (shape {tuple(t.shape)})")
        single = t.dim() == 2
        t = t[None] if single else t
        validate_labels(t, label_set, name="label_map")
        seg20 = t.to(torch.uint8).numpy() if label_set == "sof20" else None
        seg17 = sof_to_sofgan(t.long()) if label_set == "sof20" else t.long()
        out, z, psi = self._texturize(seg17, self.texture_code(texture), region_mix, truncation)
        mix = None if region_mix is None else {k: float(v) for k, v in region_mix.items()}
        result = PortraitList(
            Portrait(tensor=out.image[i].float().cpu(), segmap=None if seg20 is None else seg20[i],
                     segmap17=seg17[i].numpy().astype(np.uint8), depth=None, geometry=None, texture=z[i].clone(),
                     latents=out.latents[i].float().cpu(), camera=None, region_mix=mix, truncation=psi)
            for i in range(t.shape[0]))
        return result[0] if single else result
