"""Free-view portrait videos and the :class:`Frames` container (paper §6.4, Fig. 12).

SofGAN separates geometry (the SOF, rendered through a camera) from texture (the SIW generator
painting the rendered label map), so a portrait can be turned around with its geometry code and
its texture code fixed: :func:`free_view` renders one portrait along a camera path::

    from sofgan_lab.applications.video import free_view

    frames = free_view(pipe, geometry=1, texture=2, path="spiral", frames=48)
    frames.save_mp4("turn.mp4")         # or save_gif / save (by suffix)
    frames                              # in Jupyter: an inline looping animation
    frames.grid(8)                      # a contact sheet (PIL) of 8 evenly spaced frames

Every frame is exactly what ``pipe(geometry, texture, camera=frames.cameras[i], ...)`` returns;
views are rendered in chunks of ``batch``. The morphs of :mod:`.morph` return :class:`Frames` too.

Writing a file goes through a temporary name in the target folder and a rename, so a reader never
sees a half-written video. GIFs are written with Pillow (identical consecutive frames are merged
by the GIF encoder, their durations added); MP4s (H.264, yuv420p) need ``imageio-ffmpeg``.
"""
from __future__ import annotations

import base64
import io
import logging
import math
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from .._validate import check_int as _check_int
from ..io.checkpoints import atomic_write
from ..cameras import Camera
from ..images import image_grid, tensor_to_uint8
from ..labels import colorize, sof_to_sofgan

__all__ = ["Frames", "free_view", "PATHS"]

log = logging.getLogger(__name__)

#: The named camera paths of :func:`free_view`.
PATHS = ("yaw", "spiral")


# --------------------------------------------------------------------------------------- checks
def _is_int(x: Any) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool)


def _check_fps(fps: Any, name: str = "fps") -> float:
    if isinstance(fps, bool) or not isinstance(fps, (int, float, np.integer, np.floating)) \
            or not math.isfinite(fps) or fps <= 0:
        raise ValueError(f"{name}: expected a positive number of frames per second, got {fps!r}")
    return float(fps)


def check_truncation(pipe, truncation: Any) -> float:
    """ψ as the pipeline resolves it (``None`` = the pipeline's default)."""
    return pipe.truncation if truncation is None else pipe.check_truncation(truncation)


def _one_code(x: Any, dim: int, name: str) -> torch.Tensor:
    """One code ``(dim,)`` float32 (CPU) from a tensor / array / list of ``dim`` numbers."""
    if isinstance(x, torch.Tensor):
        t = x.detach().float().cpu()
    else:
        try:
            a = np.asarray(x)
            if a.dtype == object or a.dtype.kind not in "fiu":
                raise TypeError
            t = torch.as_tensor(a.astype(np.float32))
        except (TypeError, ValueError):
            raise TypeError(f"{name}: expected a seed (int) or a code of {dim} numbers, got "
                            f"{type(x).__name__}") from None
    if t.dim() == 2 and t.shape[0] == 1:
        t = t[0]
    if t.dim() != 1 or t.shape[0] != dim:
        raise ValueError(f"{name}: expected a seed or one code of shape ({dim},), got shape {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise ValueError(f"{name}: contains NaN or infinite values")
    return t.contiguous()


def _check_seed(x: Any, name: str) -> int:
    if x < 0:
        raise ValueError(f"{name}: expected a non-negative seed, got {x}")
    return int(x)


def geometry_code(pipe, geometry: Any, name: str = "geometry") -> torch.Tensor:
    """One geometry code ``(latent_dim,)``: a seed (drawn from ``pipe.space`` exactly like the
    pipeline does) or a code; errors name ``name``."""
    dim = pipe.sof.config.latent_dim
    if _is_int(geometry):
        seed = _check_seed(geometry, name)
        if pipe.space is None:
            raise ValueError(f"{name}: this pipeline has no geometry space, so seeds cannot be drawn; pass a code "
                             f"of {dim} numbers")
        return pipe.space.sample(1, seed=seed)[0]
    return _one_code(geometry, dim, name)


def texture_code(pipe, texture: Any, name: str = "texture") -> torch.Tensor:
    """One texture code ``(style_dim,)``: a seed (the pipeline's ``random_z``) or a code."""
    if _is_int(texture):
        return pipe.siw.random_z(1, seed=_check_seed(texture, name)).cpu()[0, 0]
    return _one_code(texture, pipe.siw.style_dim, name)


def texture_styles(pipe, texture: Any, name: str = "texture") -> torch.Tensor:
    """``(K, style_dim)``: one style (K = 1) or a pair ``(a, b)`` (K = 2, for a region mix)."""
    if isinstance(texture, tuple):
        if len(texture) != 2:
            raise ValueError(f"{name}: a tuple means two styles (A, B); got {len(texture)} items")
        return torch.stack([texture_code(pipe, t, f"{name}[{i}]") for i, t in enumerate(texture)])
    if isinstance(texture, (list, range)):
        raise ValueError(f"{name}: expected one style (a seed or a code) or a pair (a, b) as a tuple; got a list "
                         f"(a video has one texture)")
    return texture_code(pipe, texture, name)[None]


def fixed_camera(pipe, camera: Any) -> Camera:
    """A one-view camera: ``None`` (the pipeline's default), orbit parameters, or a ``Camera``."""
    cam = pipe.resolve_camera(camera, 1)
    if cam.batch_size != 1:
        raise ValueError(f"camera: expected one view, got {cam.batch_size}")
    return cam


def _repeat_camera(cam: Camera, n: int) -> Camera:
    return cam[[0] * n]


# --------------------------------------------------------------------------------------- rendering
def render_views(pipe, geometry: torch.Tensor, texture: torch.Tensor, cameras: Camera, *,
                 region_mix: Mapping | None, truncation: float | None, batch: int
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Render through ``pipe(...)`` in chunks of ``batch``: ``geometry`` ``(T or 1, D)`` codes,
    ``texture`` ``(K, style_dim)`` (fixed), ``cameras`` with T or 1 views. Returns images
    ``(T, H, W, 3)`` and SOF-20 segmaps ``(T, h, w)``, both uint8."""
    t_total = max(geometry.shape[0], cameras.batch_size)
    tex = texture[0] if texture.shape[0] == 1 else (texture[0], texture[1])
    images, segs = [], []
    for start in range(0, t_total, batch):
        stop = min(start + batch, t_total)
        g = geometry[start:stop] if geometry.shape[0] > 1 else geometry
        cam = cameras[start:stop] if cameras.batch_size > 1 else cameras
        # geometry is always 2-D (n, D), so the pipeline returns a list even for a one-frame chunk
        out = pipe(geometry=g, texture=tex, camera=cam, region_mix=region_mix, truncation=truncation)
        out = out if isinstance(out, list) else [out]
        if len(out) != stop - start:
            raise RuntimeError(f"render_views: got {len(out)} portraits for {stop - start} frames")
        images.append(tensor_to_uint8(torch.stack([p.tensor for p in out])))
        segs.append(np.stack([p.segmap for p in out]))
        log.debug("rendered frames %d..%d of %d", start, stop - 1, t_total)
    return np.concatenate(images), np.concatenate(segs)


@torch.no_grad()
def texturize_frames(pipe, seg20: torch.Tensor, *, z: torch.Tensor | None = None, w: torch.Tensor | None = None,
                     class_weights: torch.Tensor | None = None, truncation: float, batch: int) -> np.ndarray:
    """Paint SOF-20 label maps ``seg20`` ``(T or 1, h, w)`` with the texture generator exactly as the
    pipeline does (SofGAN-17 ids, the generator's constant noise, ψ = ``truncation``), ``batch``
    frames per call. Styles: ``z`` or ``w`` ``(T or 1, K, D)``; ``class_weights`` ``(T or 1, 17, K)``
    for K = 2. Returns uint8 images ``(T, H, W, 3)``."""
    styles = z if z is not None else w
    sizes = [x.shape[0] for x in (seg20, styles, class_weights) if x is not None]
    t_total = max(sizes)
    dev = pipe.siw.device

    def rows(x, a, b):
        if x is None:
            return None
        if x.shape[0] == 1:
            return x.expand(b - a, *x.shape[1:])
        return x[a:b]

    images = []
    for start in range(0, t_total, batch):
        stop = min(start + batch, t_total)
        seg17 = sof_to_sofgan(rows(seg20, start, stop).long())
        s = rows(styles, start, stop).to(dev)
        cw = rows(class_weights, start, stop)
        kwargs = {"z": s} if z is not None else {"w": s}
        out = pipe.siw(seg17.to(dev), **kwargs, class_weights=None if cw is None else cw.to(dev),
                       truncation=truncation, noise="const")
        images.append(tensor_to_uint8(out))
        log.debug("textured frames %d..%d of %d", start, stop - 1, t_total)
    return np.concatenate(images)


# --------------------------------------------------------------------------------------- frames
def _check_suffix(path: Any, suffix: str, method: str) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path: expected a file path, got {type(path).__name__}")
    p = Path(path)
    if p.suffix.lower() != suffix:
        raise ValueError(f"path: {method} writes {suffix} files; got {p.name!r} (suffix {p.suffix or 'none'!r})")
    return p


class Frames:
    """A short video: frames and what made them.

    Attributes:
        images: uint8 ``(T, H, W, 3)``.
        segmaps: SOF-20 label maps uint8 ``(T, h, w)`` (``None`` when not known).
        cameras: a :class:`~sofgan_lab.cameras.Camera` with ``T`` views (repeated for a fixed
            camera), or ``None``.
        fps: default frames per second of the written videos.
        info: what varied along the video (e.g. ``{"kind": "style_morph", "t": ...}``).

    ``len(frames)`` is T; ``frames[i]`` is frame ``i`` as an ``(H, W, 3)`` array and ``frames[a:b]``
    a :class:`Frames`. In Jupyter the object shows itself as a looping GIF.
    """

    def __init__(self, images: Any, segmaps: Any = None, cameras: Camera | None = None, fps: float = 24.0,
                 info: Mapping[str, Any] | None = None):
        a = np.asarray(images)
        if a.dtype != np.uint8 or a.ndim != 4 or a.shape[-1] != 3 or a.shape[0] < 1:
            raise ValueError(f"images: expected uint8 (T, H, W, 3) with T >= 1, got {a.dtype} {a.shape}")
        if segmaps is not None:
            s = np.asarray(segmaps)
            if s.dtype != np.uint8 or s.ndim != 3 or s.shape[0] != a.shape[0]:
                raise ValueError(f"segmaps: expected uint8 ({a.shape[0]}, h, w), got {s.dtype} {s.shape}")
            segmaps = s
        if cameras is not None:
            if not isinstance(cameras, Camera):
                raise TypeError(f"cameras: expected a Camera or None, got {type(cameras).__name__}")
            if cameras.batch_size != a.shape[0]:
                raise ValueError(f"cameras: {cameras.batch_size} views for {a.shape[0]} frames")
        self.images = a
        self.segmaps = segmaps
        self.cameras = cameras
        self.fps = _check_fps(fps)
        self.info = dict(info or {})

    # ------------------------------------------------------------------ container
    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __getitem__(self, idx: Any):
        if isinstance(idx, slice):
            sel = list(range(len(self)))[idx]
            if not sel:
                raise IndexError(f"idx: {idx} selects no frame out of {len(self)}")
            return Frames(self.images[sel], None if self.segmaps is None else self.segmaps[sel],
                          None if self.cameras is None else self.cameras[sel], self.fps, self.info)
        if not _is_int(idx):
            raise TypeError(f"idx: expected an int or a slice, got {type(idx).__name__}")
        if not -len(self) <= idx < len(self):
            raise IndexError(f"idx: {idx} out of range for {len(self)} frames")
        return self.images[int(idx)]

    def __iter__(self):
        return iter(self.images)

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)`` of a frame, like PIL."""
        return int(self.images.shape[2]), int(self.images.shape[1])

    def __repr__(self) -> str:
        kind = f", {self.info['kind']}" if "kind" in self.info else ""
        return f"Frames({len(self)} x {self.images.shape[1]}x{self.images.shape[2]}, fps={self.fps:g}{kind})"

    # ------------------------------------------------------------------ pictures
    def segmap_images(self) -> np.ndarray:
        """The segmaps coloured with the SOF-20 palette, uint8 ``(T, h, w, 3)``."""
        if self.segmaps is None:
            raise ValueError("segmaps: these frames carry no label maps")
        return np.stack([colorize(s, "sof20") for s in self.segmaps])

    def grid(self, n: int = 8, *, ncols: int | None = None, segmaps: bool = False, pad: int = 2):
        """A contact sheet (PIL, RGB) of ``n`` evenly spaced frames (first and last included; all
        frames when there are fewer), ``ncols`` per row (default all in one row); with ``segmaps``
        each frame's coloured label map is placed under it."""
        n = _check_int(n, "n", 1)
        if ncols is not None:
            ncols = _check_int(ncols, "ncols", 1)
        pad = _check_int(pad, "pad", 0)
        t = len(self)
        idx = np.unique(np.round(np.linspace(0, t - 1, min(n, t))).astype(int))
        under = self.segmap_images()[idx] if segmaps else None
        return image_grid([self.images[i] for i in idx], min(len(idx), ncols or len(idx)), pad, under=under)

    # ------------------------------------------------------------------ encoding
    def _fps(self, fps: Any) -> float:
        return self.fps if fps is None else _check_fps(fps)

    def _write_gif(self, target: Any, fps: float) -> None:
        import imageio.v3 as iio

        iio.imwrite(target, self.images, extension=".gif", plugin="pillow",
                    duration=max(int(round(1000.0 / fps)), 1), loop=0)

    def _write_mp4(self, filename: str, fps: float, quality: int) -> None:
        try:
            import imageio.v2 as iio2
            import imageio_ffmpeg  # noqa: F401  (imageio's ffmpeg binary)
        except ImportError as exc:
            raise ImportError("save_mp4: writing MP4 needs the 'imageio' and 'imageio-ffmpeg' packages "
                              "(pip install imageio imageio-ffmpeg)") from exc
        imgs = self.images
        h, w = imgs.shape[1:3]
        if h % 2 or w % 2:  # yuv420p needs even sides: repeat the last row/column
            imgs = np.pad(imgs, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="edge")
        writer = iio2.get_writer(filename, format="FFMPEG", mode="I", fps=fps, codec="libx264",
                                 pixelformat="yuv420p", macro_block_size=2, quality=quality,
                                 ffmpeg_log_level="error")
        try:
            for im in imgs:
                writer.append_data(im)
        finally:
            writer.close()

    def gif_bytes(self, fps: float | None = None) -> bytes:
        """The frames as an (infinitely looping) animated GIF."""
        buf = io.BytesIO()
        self._write_gif(buf, self._fps(fps))
        return buf.getvalue()

    def mp4_bytes(self, fps: float | None = None, *, quality: int = 8) -> bytes:
        """The frames as an H.264 MP4 (yuv420p; odd sides are padded by one pixel)."""
        fps = self._fps(fps)
        quality = _check_quality(quality)
        with tempfile.TemporaryDirectory() as d:
            f = os.path.join(d, "frames.mp4")
            self._write_mp4(f, fps, quality)
            return Path(f).read_bytes()

    def save_gif(self, path: str | os.PathLike, fps: float | None = None) -> Path:
        """Write an animated GIF (looping) to ``path`` (suffix ``.gif``; missing parent folders are
        created) atomically; returns the path."""
        p = _check_suffix(path, ".gif", "save_gif")
        fps = self._fps(fps)
        t0 = time.perf_counter()
        out = atomic_write(p, lambda tmp: self._write_gif(tmp, fps))
        log.info("wrote %d frames to %s (%.2fs)", len(self), out, time.perf_counter() - t0)
        return out

    def save_mp4(self, path: str | os.PathLike, fps: float | None = None, *, quality: int = 8) -> Path:
        """Write an H.264 MP4 to ``path`` (suffix ``.mp4``; missing parent folders are created)
        atomically; ``quality`` 0..10 (imageio's scale, 10 best). Needs ``imageio-ffmpeg``. Returns
        the path."""
        p = _check_suffix(path, ".mp4", "save_mp4")
        fps = self._fps(fps)
        quality = _check_quality(quality)
        t0 = time.perf_counter()
        out = atomic_write(p, lambda tmp: self._write_mp4(tmp, fps, quality))
        log.info("wrote %d frames to %s (%.2fs)", len(self), out, time.perf_counter() - t0)
        return out

    def save(self, path: str | os.PathLike, fps: float | None = None) -> Path:
        """:meth:`save_gif` or :meth:`save_mp4`, chosen by the suffix of ``path``."""
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"path: expected a file path, got {type(path).__name__}")
        suffix = Path(path).suffix.lower()
        if suffix == ".gif":
            return self.save_gif(path, fps)
        if suffix == ".mp4":
            return self.save_mp4(path, fps)
        raise ValueError(f"path: unknown video suffix {Path(path).suffix or 'none'!r}; expected '.gif' or '.mp4'")

    # ------------------------------------------------------------------ notebooks
    def to_html(self, kind: str = "gif", *, fps: float | None = None, width: int | None = None) -> str:
        """Inline HTML animation: ``kind="gif"`` (a base64 ``<img>``) or ``"mp4"`` (a base64
        ``<video autoplay loop muted>``); ``width`` in CSS pixels (default: the frame width)."""
        if kind not in ("gif", "mp4"):
            raise ValueError(f"kind: expected 'gif' or 'mp4', got {kind!r}")
        if width is not None:
            width = _check_int(width, "width", 1)
        w = self.size[0] if width is None else width
        style = f'width="{w}" style="image-rendering:pixelated"'
        if kind == "gif":
            data = base64.b64encode(self.gif_bytes(fps)).decode("ascii")
            return f'<img src="data:image/gif;base64,{data}" {style}/>'
        data = base64.b64encode(self.mp4_bytes(fps)).decode("ascii")
        return (f'<video autoplay loop muted playsinline {style}>'
                f'<source src="data:video/mp4;base64,{data}" type="video/mp4"/></video>')

    def _repr_html_(self) -> str:
        return self.to_html("gif")


def _check_quality(q: Any) -> int:
    if not _is_int(q) or not 0 <= q <= 10:
        raise ValueError(f"quality: expected an integer in 0..10, got {q!r}")
    return int(q)


# --------------------------------------------------------------------------------------- free view
def _path_cameras(pipe, path: Any, frames: int | None, yaw_range: Any, pitch_amplitude: Any
                  ) -> tuple[Camera, np.ndarray | None, np.ndarray | None]:
    """The cameras of a path, with the yaw and pitch (degrees) of a named one."""
    if isinstance(path, Camera):
        if path.batch_size < 2:
            raise ValueError(f"path: a Camera path needs at least 2 views, got {path.batch_size}")
        if frames is not None and frames != path.batch_size:
            raise ValueError(f"frames: {frames!r} given with a Camera path of {path.batch_size} views (leave frames "
                             f"unset; the path sets the count)")
        return path, None, None
    if not isinstance(path, str) or path not in PATHS:
        raise ValueError(f"path: expected one of {list(PATHS)} or a sofgan_lab.cameras.Camera, got {path!r}")
    n = _check_int(60 if frames is None else frames, "frames", 2)
    try:
        lo, hi = (float(v) for v in yaw_range)
    except (TypeError, ValueError):
        raise ValueError(f"yaw_range: expected two numbers (degrees), got {yaw_range!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"yaw_range: expected finite numbers, got {yaw_range!r}")
    p = pipe.default_camera
    if path == "yaw":
        yaw = np.linspace(lo, hi, n)
        pitch = np.full(n, p["pitch"])
    else:
        if isinstance(pitch_amplitude, bool) or not isinstance(pitch_amplitude, (int, float, np.integer, np.floating)) \
                or not math.isfinite(pitch_amplitude):
            raise ValueError(f"pitch_amplitude: expected a finite number of degrees, got {pitch_amplitude!r}")
        s = 2.0 * math.pi * np.arange(n) / n
        yaw = (lo + hi) / 2 + (hi - lo) / 2 * np.sin(s)
        pitch = p["pitch"] + float(pitch_amplitude) * np.cos(s)
    if (np.abs(pitch) >= 90).any():
        raise ValueError(f"pitch_amplitude: the path reaches pitch {float(np.abs(pitch).max()):.1f} degrees (must "
                         f"stay inside (-90, 90))")
    cams = Camera.from_orbit(torch.from_numpy(yaw).float(), torch.from_numpy(pitch).float(), p["radius"],
                             fov=p["fov"], image_size=pipe.image_size, target=tuple(p["target"]), zoom=p["zoom"])
    return cams, yaw, pitch


@torch.no_grad()
def free_view(pipe, geometry: Any = 0, texture: Any = 0, *, path: str | Camera = "yaw", frames: int | None = None,
              yaw_range: tuple[float, float] = (-35.0, 35.0), pitch_amplitude: float = 10.0,
              region_mix: Mapping | None = None, truncation: float | None = None, batch: int = 8,
              fps: float = 24.0) -> Frames:
    """Render one portrait (geometry and texture fixed) along a camera path.

    Args:
        pipe: a :class:`~sofgan_lab.pipeline.SofGAN`.
        geometry: a seed or a code ``(latent_dim,)``.
        texture: a seed, a code ``(style_dim,)``, or a pair ``(a, b)`` with ``region_mix``.
        path: ``"yaw"`` (yaw evenly over ``yaw_range``, both ends included, at the default
            camera's pitch), ``"spiral"`` (a closed loop: ``yaw = mid + half·sin s``, ``pitch =
            default + pitch_amplitude·cos s`` for ``s = 2πk/frames``; the end frame is not
            repeated, so it loops seamlessly) or a :class:`~sofgan_lab.cameras.Camera` with ≥ 2 views
            (used as given). Radius and field of view are the pipeline's default camera's.
        frames: number of frames for a named path (≥ 2, default 60); leave unset for a Camera.
        yaw_range: degrees ``(lo, hi)``; absolute yaw (0 = frontal).
        region_mix, truncation: as in :meth:`SofGAN.__call__ <sofgan_lab.pipeline.SofGAN.__call__>`.
        batch: views rendered per pipeline call.
        fps: the default frame rate of the result's videos.

    Returns:
        :class:`Frames`; frame ``i`` equals ``pipe(geometry, texture, camera=frames.cameras[i],
        region_mix=region_mix, truncation=truncation)``. ``info`` holds ``yaw`` and ``pitch`` (degrees)
        for named paths.
    """
    if frames is not None:
        frames = _check_int(frames, "frames", 2)
    batch = _check_int(batch, "batch", 1)
    fps = _check_fps(fps)
    cams, yaw, pitch = _path_cameras(pipe, path, frames, yaw_range, pitch_amplitude)
    z_g = geometry_code(pipe, geometry)
    tex = texture_styles(pipe, texture)
    if truncation is not None:
        check_truncation(pipe, truncation)
    t0 = time.perf_counter()
    images, segs = render_views(pipe, z_g[None], tex, cams, region_mix=region_mix, truncation=truncation,
                                batch=batch)
    dt = time.perf_counter() - t0
    log.info("free_view: %d frames at %dx%d in %.2fs (%.3fs per frame)", len(images), images.shape[2],
             images.shape[1], dt, dt / len(images))
    info: dict[str, Any] = {"kind": "free_view", "path": path if isinstance(path, str) else "camera",
                            "geometry": z_g, "texture": tex, "region_mix": None if region_mix is None else dict(region_mix),
                            "truncation": check_truncation(pipe, truncation)}
    if yaw is not None:
        info["yaw"], info["pitch"] = yaw, pitch
    return Frames(images, segs, cams, fps, info)
