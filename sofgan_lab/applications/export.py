"""Exports: a portrait and its label map as PNGs, a turntable video, the SOF as a coloured mesh.

::

    from sofgan_lab.applications.export import export_mesh, save_portrait, turntable

    save_portrait(pipe(geometry=1, texture=2), "out/me.png")        # out/me.png + out/me_segmap.png
    turntable(pipe, 1, 2, camera={"yaw": 10}, frames=48).save("out/turn.mp4")   # or .gif
    export_mesh(pipe, 1, "out/head.glb")                              # or .ply / .obj

**Meshes.** :func:`export_mesh` runs marching cubes on the SOF of one geometry code
(:func:`~sofgan_lab.geometry.volume.extract_mesh`: the surface ``1 - P(background) = level``, world
units, y up, the face toward +z, which is glTF's frame too) and writes it through
`trimesh <https://trimesh.org>`_ with per-vertex colours: each vertex gets the SOF-20 palette colour
(:data:`~sofgan_lab.labels.SOF20_PALETTE`) of its class. What each format keeps:

* ``.ply`` (binary little-endian): positions (float32), colours (``red green blue alpha``, uchar)
  and the class id as a vertex property ``label`` (uchar, SOF-20 ids);
* ``.glb`` (glTF 2.0 binary): ``POSITION``, ``COLOR_0`` (RGBA uint8) and the class id as the custom
  vertex attribute ``_LABEL`` (float32); the mesh's ``extras`` hold
  ``{"sofgan_lab": {"label_set": "sof20", "classes": [...names...]}}``;
* ``.obj``: positions and colours as the common ``v x y z r g b`` extension (colours in [0, 1],
  read by trimesh, MeshLab and Blender); OBJ has no per-vertex attributes, so no class ids.

**Files** are written atomically (a temporary file in the target folder and a rename), missing
folders are created.
"""
from __future__ import annotations

import logging
import math
import os
import time
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from ..cameras import Camera
from ..geometry.volume import Mesh
from .video import (Frames, _check_fps, _check_int, _is_int, _one_code, check_truncation, free_view, geometry_code,
                    texture_styles, texturize_frames)

__all__ = ["MESH_FORMATS", "mesh_format", "mesh_bytes", "to_trimesh", "export_mesh", "save_portrait", "turntable"]

log = logging.getLogger(__name__)

#: The mesh formats of :func:`export_mesh` (file suffixes without the dot).
MESH_FORMATS = ("ply", "obj", "glb")

#: Default marching-cubes grid of :func:`export_mesh` (nodes per axis; 128³ ≈ 6 s on one CPU core).
DEFAULT_MESH_RESOLUTION = 128


# --------------------------------------------------------------------------------------- meshes
def _check_path(path: Any) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path: expected a file path, got {type(path).__name__}")
    return Path(path)


def mesh_format(path: Any, format: str | None = None) -> tuple[Path, str]:
    """The file and format of a mesh export: ``format`` (one of :data:`MESH_FORMATS`) or, when
    ``None``, the suffix of ``path``. With ``format`` given, a ``path`` without a suffix gets
    ``.<format>`` and one with another suffix is an error. Returns ``(path, format)``."""
    p = _check_path(path)
    suffix = p.suffix.lower().lstrip(".")
    if format is not None:
        if not isinstance(format, str) or format.lower().lstrip(".") not in MESH_FORMATS:
            raise ValueError(f"format: expected one of {list(MESH_FORMATS)} or None, got {format!r}")
        fmt = format.lower().lstrip(".")
        if not suffix:
            return p.with_name(f"{p.name}.{fmt}"), fmt
        if suffix != fmt:
            raise ValueError(f"path: suffix {p.suffix!r} of {p.name!r} disagrees with format {fmt!r}")
        return p, fmt
    if suffix not in MESH_FORMATS:
        raise ValueError(f"path: expected a mesh file name ending in {', '.join('.' + f for f in MESH_FORMATS)}, "
                         f"got {p.name!r}")
    return p, suffix


def to_trimesh(mesh: Mesh, format: str | None = None):
    """A ``trimesh.Trimesh`` of an :func:`~sofgan_lab.geometry.volume.extract_mesh` result: the same
    vertices and faces in the same order (nothing merged), vertex colours RGBA uint8 (the mesh's
    palette colours, alpha 255), and the class ids as the vertex attribute that ``format`` keeps
    (``"ply"``: ``label`` uchar; ``"glb"``: ``LABEL`` float32, written as ``_LABEL``; ``"obj"`` or
    ``None``: ``label`` int64, not written by OBJ)."""
    import trimesh

    from ..labels import SOF20_NAMES

    if not isinstance(mesh, Mesh):
        raise TypeError(f"mesh: expected a sofgan_lab.geometry.volume.Mesh, got {type(mesh).__name__}")
    colors = np.concatenate([mesh.colors, np.full((mesh.num_vertices, 1), 255, np.uint8)], axis=1)
    tm = trimesh.Trimesh(vertices=mesh.vertices, faces=mesh.faces, vertex_colors=colors, process=False)
    if format == "ply":
        tm.vertex_attributes["label"] = mesh.labels.astype(np.uint8)
    elif format == "glb":
        # glTF accessors have no int64/int32 component type, and 1-byte scalars are padded to 4
        # bytes by trimesh's writer (read back as VEC4): float32 scalars stay (V,) on the way back
        tm.vertex_attributes["LABEL"] = mesh.labels.astype(np.float32)
        tm.metadata["sofgan_lab"] = {"label_set": "sof20", "classes": list(SOF20_NAMES)}
    else:
        tm.vertex_attributes["label"] = mesh.labels.astype(np.int64)
    return tm


def mesh_bytes(mesh: Mesh, format: str) -> bytes:
    """The file contents of ``mesh`` in ``format`` (one of :data:`MESH_FORMATS`; see the module
    docstring for what each keeps)."""
    if not isinstance(format, str) or format.lower().lstrip(".") not in MESH_FORMATS:
        raise ValueError(f"format: expected one of {list(MESH_FORMATS)}, got {format!r}")
    fmt = format.lower().lstrip(".")
    tm = to_trimesh(mesh, fmt)
    if fmt == "ply":
        data = tm.export(file_type="ply", encoding="binary")
    elif fmt == "obj":
        data = tm.export(file_type="obj", include_color=True, include_normals=False, include_texture=False)
    else:
        data = tm.export(file_type="glb")
    return data.encode("utf-8") if isinstance(data, str) else bytes(data)


def _sof_and_code(pipe_or_sof: Any, geometry: Any):
    from ..geometry.sof import SemanticOccupancyField

    if isinstance(pipe_or_sof, SemanticOccupancyField):
        sof = pipe_or_sof
        if _is_int(geometry):
            raise ValueError(f"geometry: a seed needs a pipeline (SofGAN) with a geometry space; with a bare SOF "
                             f"pass a code of {sof.config.latent_dim} numbers")
        return sof, _one_code(geometry, sof.config.latent_dim, "geometry")
    if not hasattr(pipe_or_sof, "sof") or not isinstance(pipe_or_sof.sof, SemanticOccupancyField):
        raise TypeError(f"pipe_or_sof: expected a SofGAN pipeline or a SemanticOccupancyField, got "
                        f"{type(pipe_or_sof).__name__}")
    return pipe_or_sof.sof, geometry_code(pipe_or_sof, geometry)


@torch.no_grad()
def export_mesh(pipe_or_sof: Any, geometry: Any, path: str | os.PathLike, *,
                resolution: int = DEFAULT_MESH_RESOLUTION, level: float = 0.5, bounds: Any = None,
                format: str | None = None) -> Path:
    """Mesh the SOF of one geometry code and write it as PLY, OBJ or GLB with per-class colours.

    Args:
        pipe_or_sof: a :class:`~sofgan_lab.pipeline.SofGAN` (seeds are drawn from its geometry space)
            or a :class:`~sofgan_lab.geometry.sof.SemanticOccupancyField` (codes only).
        geometry: a seed or a code ``(latent_dim,)``.
        path: the file; its suffix (``.ply``, ``.obj``, ``.glb``) sets the format unless ``format``
            does (see :func:`mesh_format`).
        resolution, level, bounds: the marching-cubes grid of
            :func:`~sofgan_lab.geometry.volume.extract_mesh` (nodes per axis 2..512; iso-level of
            ``1 - P(background)``; ``None`` bounds = the SOF's sphere).
        format: ``"ply"``, ``"obj"``, ``"glb"`` or ``None`` (from the suffix).

    Returns:
        The written path. ``trimesh.load(path)`` gives back the vertices and faces of
        ``extract_mesh(sof, code, resolution, level, bounds)`` and their colours (see the module
        docstring for the class ids).
    """
    from ..geometry.volume import extract_mesh
    from ..io.checkpoints import atomic_write_bytes

    p, fmt = mesh_format(path, format)
    sof, code = _sof_and_code(pipe_or_sof, geometry)
    t0 = time.perf_counter()
    mesh = extract_mesh(sof, code, resolution, level, bounds)
    data = mesh_bytes(mesh, fmt)
    atomic_write_bytes(p, data)
    log.info("export_mesh: %d vertices, %d faces (grid %d) to %s, %d bytes (%.2fs)", mesh.num_vertices,
             mesh.num_faces, resolution, p, len(data), time.perf_counter() - t0)
    return p


# --------------------------------------------------------------------------------------- pictures
def save_portrait(portrait: Any, path: str | os.PathLike, *, segmap: Any = None) -> list[Path]:
    """Write a portrait as ``path`` (a ``.png``) and its coloured label map as ``<stem>_segmap.png``.

    Args:
        portrait: a :class:`~sofgan_lab.pipeline.Portrait`, or an image: uint8 ``(H, W, 3)`` array, a
            PIL image, or a ``(3, H, W)`` float tensor in [-1, 1].
        path: the portrait's file name (suffix ``.png``; missing folders are created).
        segmap: the label map to write beside it: ``None`` (a Portrait's own; none for a bare image),
            ``False`` (none), or SOF-20 ids ``(h, w)`` (numpy or torch), coloured with the SOF-20 palette
            at their own size.

    Returns:
        The written paths, the image first (``[me.png]`` or ``[me.png, me_segmap.png]``); each file is
        written atomically.
    """
    from ..images import encode_png, tensor_to_uint8
    from ..io.checkpoints import atomic_write_bytes
    from ..labels import colorize, validate_labels
    from ..pipeline import Portrait, check_png_path, segmap_path

    if segmap is not None and segmap is not False and not isinstance(segmap, (np.ndarray, torch.Tensor)):
        raise TypeError(f"segmap: expected None, False or a SOF-20 label map (h, w), got {type(segmap).__name__}")
    if isinstance(portrait, Portrait) and (segmap is None or segmap is False):
        return portrait.save(path, segmap=segmap is None)
    p = check_png_path(path)
    if isinstance(portrait, Portrait):
        image = portrait.array
    elif isinstance(portrait, torch.Tensor):
        image = tensor_to_uint8(portrait)
    elif hasattr(portrait, "mode") and hasattr(portrait, "size"):  # PIL
        image = np.asarray(portrait.convert("RGB"))
    else:
        image = np.asarray(portrait)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"portrait: expected a Portrait, a uint8 (H, W, 3) image, a PIL image or a (3, H, W) "
                         f"tensor, got {image.dtype} {image.shape}")
    seg_png = None
    if segmap is not None and segmap is not False:
        seg = segmap.detach().cpu().numpy() if isinstance(segmap, torch.Tensor) else np.asarray(segmap)
        if seg.ndim != 2:
            raise ValueError(f"segmap: expected one SOF-20 label map (h, w), got shape {seg.shape}")
        validate_labels(seg, "sof20", name="segmap")
        seg_png = encode_png(colorize(seg, "sof20"))
    atomic_write_bytes(p, encode_png(image))
    out = [p]
    if seg_png is not None:
        atomic_write_bytes(segmap_path(p), seg_png)
        out.append(segmap_path(p))
    log.info("save_portrait: wrote %s", ", ".join(str(x) for x in out))
    return out


# --------------------------------------------------------------------------------------- turntable
def _turntable_yaws(start: float, lo: float, hi: float, n: int) -> np.ndarray:
    """``n`` yaws of a closed, smooth swing over ``[lo, hi]`` that starts at ``start`` (degrees):
    ``mid + half·sin(φ0 + 2πk/n)`` with ``sin φ0 = (start - mid) / half``; the range grows to take in
    a ``start`` outside it. Frame 0 is ``start`` exactly; the end frame is not repeated."""
    mid, half = (lo + hi) / 2, (hi - lo) / 2
    half = max(half, abs(start - mid))
    if half == 0:
        return np.full(n, start)
    phi0 = math.asin(max(-1.0, min(1.0, (start - mid) / half)))
    yaw = mid + half * np.sin(phi0 + 2 * math.pi * np.arange(n) / n)
    yaw[0] = start
    return yaw


@torch.no_grad()
def turntable(pipe, geometry: Any = 0, texture: Any = 0, *, camera: Mapping[str, Any] | None = None,
              frames: int = 48, yaw_range: tuple[float, float] | None = None, region_mix: Mapping | None = None,
              truncation: float | None = None, base: Any = None, regions: Any = ("face",), batch: int = 8,
              fps: float = 24.0) -> Frames:
    """A looping turntable video of one state (geometry, texture and camera fixed but for the yaw).

    The camera keeps the pitch, radius, field of view and framing of ``camera`` and swings its yaw
    smoothly over ``yaw_range`` and back, starting from ``camera``'s yaw, so frame 0 is the portrait
    ``pipe(geometry, texture, camera=camera, ...)`` and the video loops seamlessly.

    Args:
        pipe: a :class:`~sofgan_lab.pipeline.SofGAN`.
        geometry: a seed or a code ``(latent_dim,)``.
        texture: a seed, a code ``(style_dim,)``, or a pair ``(a, b)`` with ``region_mix``.
        camera: orbit parameters ``{yaw, pitch, radius, fov, target, zoom}`` (missing keys: the
            pipeline's default camera), or ``None`` for the default camera. For an arbitrary camera
            path use :func:`~.video.free_view`.
        frames: number of frames (≥ 2).
        yaw_range: degrees ``(lo, hi)`` of the swing (default: ``pipe.pose_range["yaw"]``, the poses
            the SOF was trained on); widened to take in a start yaw outside it.
        region_mix, truncation: as in :meth:`SofGAN.__call__ <sofgan_lab.pipeline.SofGAN.__call__>`.
        base, regions: a region-restricted edit (what the explorer's *restrict* shows): labels outside
            ``regions`` come from the code ``base``
            (:func:`~sofgan_lab.geometry.space.restricted_edit`); ``base`` ``None``: no restriction.
        batch: views rendered per call; fps: the frame rate of the written videos.

    Returns:
        :class:`~.video.Frames` (``info["kind"] == "turntable"``, ``info["yaw"]``, ``info["pitch"]``);
        ``frames.save("turn.mp4")`` (or ``.gif``) writes it.
    """
    from ..geometry.space import region_ids, restricted_edit

    n = _check_int(frames, "frames", 2)
    batch = _check_int(batch, "batch", 1)
    fps = _check_fps(fps)
    if isinstance(camera, Camera):
        raise TypeError("camera: expected orbit parameters like {'yaw': 10, 'pitch': 5} or None; for a Camera path "
                        "use sofgan_lab.applications.free_view(pipe, ..., path=cameras)")
    if camera is not None and not isinstance(camera, Mapping):
        raise TypeError(f"camera: expected a dict of orbit parameters or None, got {type(camera).__name__}")
    p = {**pipe.default_camera, **pipe.camera_params(camera or {}, "camera")}
    if yaw_range is None:
        lo, hi = (float(v) for v in pipe.pose_range["yaw"])
    else:
        try:
            lo, hi = (float(v) for v in yaw_range)
        except (TypeError, ValueError):
            raise ValueError(f"yaw_range: expected two numbers (degrees), got {yaw_range!r}") from None
        if not (math.isfinite(lo) and math.isfinite(hi) and lo <= hi):
            raise ValueError(f"yaw_range: expected finite lo <= hi (degrees), got {yaw_range!r}")
    yaw = _turntable_yaws(float(p["yaw"]), lo, hi, n)
    pitch = np.full(n, float(p["pitch"]))
    cams = Camera.from_orbit(torch.from_numpy(yaw).float(), torch.from_numpy(pitch).float(), p["radius"],
                             fov=p["fov"], image_size=pipe.image_size, target=tuple(p["target"]), zoom=p["zoom"])
    t0 = time.perf_counter()
    if base is None:
        out = free_view(pipe, geometry, texture, path=cams, region_mix=region_mix, truncation=truncation,
                        batch=batch, fps=fps)
        images, segs = out.images, out.segmaps
    else:
        region_ids(regions)  # "regions: unknown region ..."
        z_g = geometry_code(pipe, geometry)
        z_b = geometry_code(pipe, base, "base")
        tex = texture_styles(pipe, texture)
        weights = pipe.region_weights(region_mix, tex.shape[0], 1)
        psi = check_truncation(pipe, truncation)
        dev = pipe.sof.latents.weight.device
        chunks = []
        for start in range(0, n, batch):
            cam = cams[start:min(start + batch, n)]
            k = cam.batch_size
            edit = restricted_edit(pipe.sof, z_b[None].expand(k, -1).to(dev), z_g[None].expand(k, -1).to(dev), cam,
                                   regions)
            chunks.append(edit.restricted.long())
        seg = torch.cat(chunks)
        images = texturize_frames(pipe, seg, z=tex[None], class_weights=weights, truncation=psi, batch=batch)
        segs = seg.numpy().astype(np.uint8)
    dt = time.perf_counter() - t0
    log.info("turntable: %d frames at %dx%d in %.2fs", n, images.shape[2], images.shape[1], dt)
    info = {"kind": "turntable", "yaw": yaw, "pitch": pitch, "camera": p,
            "region_mix": None if region_mix is None else dict(region_mix),
            "truncation": check_truncation(pipe, truncation), "restricted": base is not None}
    return Frames(images, segs, cams, fps, info)
