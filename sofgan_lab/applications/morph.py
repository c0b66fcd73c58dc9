"""Morphs and edits at a fixed camera (paper §6.4, Fig. 12), each returned as :class:`~.video.Frames`.

* :func:`geometry_morph` — the shape moves from geometry A to geometry B (z_g interpolated,
  linearly or spherically), the texture holds.
* :func:`style_morph` — the texture moves from style A to style B on a fixed label map, in the
  mapped ``w`` space (default) or in ``z``.
* :func:`regional_style_morph` — only the named style groups (e.g. ``"hair"``) ease from style A to
  style B (the region-mix weight ``p`` goes 0 → 1); the other regions keep style A.
* :func:`expression_edit` — z_g moves along a named direction of the geometry space (``"smile"``,
  ``"pc1"``, ...), optionally with the label edit restricted to regions (``"face"``: hair,
  background and clothes keep their labels; Fig. 12, first row).

Frames are rendered in chunks of ``batch``, with the generator's constant noise and the pipeline's
truncation (ψ pulls every W+ slot toward the mean latent, as in ``pipe(...)``), so every call is
deterministic and a frame equals the matching single ``pipe(...)`` call up to float rounding of
the batched arithmetic. The camera is the pipeline's default unless ``camera=`` is given (a dict
of orbit parameters or a one-view :class:`~sofgan_lab.cameras.Camera`).
"""
from __future__ import annotations

import logging
import time
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import torch

from ..geometry.space import interpolate, region_ids, restricted_edit
from ..texture.regions import STYLE_GROUPS, two_style_weights
from .video import (
    Frames, _check_fps, _check_int, check_truncation, _repeat_camera, fixed_camera, geometry_code, render_views,
    texture_code, texture_styles, texturize_frames,
)

__all__ = ["geometry_morph", "style_morph", "regional_style_morph", "expression_edit"]

log = logging.getLogger(__name__)

_MORPH_FPS = 8.0


def _steps(n: Any) -> tuple[int, np.ndarray]:
    n = _check_int(n, "n", 2)
    return n, np.linspace(0.0, 1.0, n)


def _path(a: torch.Tensor, b: torch.Tensor, n: int, mode: str) -> torch.Tensor:
    """``n`` codes from ``a`` to ``b`` (``interpolate``), with the end points exactly ``a`` and ``b``."""
    if mode not in ("linear", "slerp"):
        raise ValueError(f"mode: expected 'linear' or 'slerp', got {mode!r}")
    out = interpolate(a, b, n, mode)
    out[0], out[-1] = a, b
    return out


def _log_done(kind: str, frames: np.ndarray, t0: float) -> None:
    dt = time.perf_counter() - t0
    log.info("%s: %d frames at %dx%d in %.2fs (%.3fs per frame)", kind, len(frames), frames.shape[2],
             frames.shape[1], dt, dt / len(frames))


def _render_labels(pipe, z: torch.Tensor, camera) -> torch.Tensor:
    """SOF-20 labels ``(B, h, w)`` (CPU, int64) of codes ``z`` ``(B, D)`` through a one-view camera."""
    with torch.no_grad():
        return pipe.sof.render(z.to(pipe.sof.latents.weight.device), camera).labels.cpu().long()


@torch.no_grad()
def geometry_morph(pipe, geometry_a: Any, geometry_b: Any, texture: Any = 0, n: int = 16, mode: str = "linear", *,
                   camera: Any = None, region_mix: Mapping | None = None, truncation: float | None = None,
                   batch: int = 8, fps: float = _MORPH_FPS) -> Frames:
    """Morph the shape from ``geometry_a`` to ``geometry_b`` with the texture fixed.

    Args:
        pipe: a :class:`~sofgan_lab.pipeline.SofGAN`.
        geometry_a, geometry_b: seeds or codes ``(latent_dim,)``.
        texture: a seed, a code, or a pair ``(a, b)`` with ``region_mix``.
        n: number of frames (≥ 2); the first is A, the last B.
        mode: ``"linear"`` or ``"slerp"`` interpolation of z_g
            (:func:`sofgan_lab.geometry.space.interpolate`).
        camera, region_mix, truncation: as in ``pipe(...)``; the camera is fixed.
        batch: frames per pipeline call. fps: the result's default frame rate.

    Returns:
        :class:`~.video.Frames`; frame ``k`` is ``pipe(geometry=info["geometry"][k], texture, camera)``.
    """
    n, t = _steps(n)
    batch = _check_int(batch, "batch", 1)
    fps = _check_fps(fps)
    za = geometry_code(pipe, geometry_a, "geometry_a")
    zb = geometry_code(pipe, geometry_b, "geometry_b")
    codes = _path(za, zb, n, mode)
    tex = texture_styles(pipe, texture)
    cam = fixed_camera(pipe, camera)
    psi = check_truncation(pipe, truncation)
    t0 = time.perf_counter()
    images, segs = render_views(pipe, codes, tex, cam, region_mix=region_mix, truncation=psi, batch=batch)
    _log_done("geometry_morph", images, t0)
    info = {"kind": "geometry_morph", "t": t, "mode": mode, "geometry": codes, "texture": tex,
            "region_mix": None if region_mix is None else dict(region_mix), "truncation": psi}
    return Frames(images, segs, _repeat_camera(cam, n), fps, info)


def _style_morph_args(pipe, geometry, texture_a, texture_b, camera, truncation, batch, fps) -> tuple:
    """The checked arguments of a texture morph: batch, fps, geometry code, the two texture codes,
    the fixed camera and ψ (each error names its argument)."""
    batch = _check_int(batch, "batch", 1)
    fps = _check_fps(fps)
    z_g = geometry_code(pipe, geometry)
    za = texture_code(pipe, texture_a, "texture_a")
    zb = texture_code(pipe, texture_b, "texture_b")
    return batch, fps, z_g, za, zb, fixed_camera(pipe, camera), check_truncation(pipe, truncation)


@torch.no_grad()
def style_morph(pipe, geometry: Any, texture_a: Any, texture_b: Any, n: int = 16, space: str = "w",
                mode: str = "linear", *, camera: Any = None, truncation: float | None = None, batch: int = 8,
                fps: float = _MORPH_FPS) -> Frames:
    """Morph the texture from ``texture_a`` to ``texture_b`` on the fixed label map of ``geometry``.

    Args:
        geometry: a seed or a code; rendered once through the fixed camera.
        texture_a, texture_b: seeds or codes ``(style_dim,)``.
        n: frames (≥ 2); the first is style A, the last style B.
        space: ``"w"`` interpolates the mapped latents w = mapping(z) (smooth, the usual StyleGAN
            choice) and renders with ``siw(seg, w=...)``; ``"z"`` interpolates the codes themselves.
            Truncation ψ is applied to the interpolated w exactly as the pipeline applies it (it is
            affine, so interpolating then truncating equals truncating then interpolating).
        mode: ``"linear"`` or ``"slerp"``.

    Returns:
        :class:`~.video.Frames`; the first and last frames equal ``pipe(geometry, texture_a/b, camera)``.
        ``info["codes"]`` holds the interpolated ``z`` or ``w`` ``(n, style_dim)``.
    """
    n, t = _steps(n)
    if space not in ("w", "z"):
        raise ValueError(f"space: expected 'w' or 'z', got {space!r}")
    batch, fps, z_g, za, zb, cam, psi = _style_morph_args(pipe, geometry, texture_a, texture_b, camera, truncation,
                                                          batch, fps)
    t0 = time.perf_counter()
    seg = _render_labels(pipe, z_g[None], cam)
    dev = pipe.siw.device
    if space == "z":
        codes = _path(za, zb, n, mode)
        images = texturize_frames(pipe, seg, z=codes[:, None], truncation=psi, batch=batch)
    else:
        # mapped one at a time, shaped like the pipeline's own call ([1, 1, D]), so the end points match it
        wa, wb = (pipe.siw.mapping(c[None, None].to(dev))[0, 0].float().cpu() for c in (za, zb))
        codes = _path(wa, wb, n, mode)
        images = texturize_frames(pipe, seg, w=codes[:, None], truncation=psi, batch=batch)
    _log_done("style_morph", images, t0)
    segs = np.repeat(seg.numpy().astype(np.uint8), n, axis=0)
    info = {"kind": "style_morph", "t": t, "space": space, "mode": mode, "codes": codes, "geometry": z_g,
            "texture": torch.stack([za, zb]), "truncation": psi}
    return Frames(images, segs, _repeat_camera(cam, n), fps, info)


def _groups(groups: Any) -> tuple[str, ...]:
    if isinstance(groups, str):
        groups = (groups,)
    try:
        items = tuple(groups)
    except TypeError:
        raise TypeError(f"groups: expected style group names from {list(STYLE_GROUPS)}, got "
                        f"{type(groups).__name__}") from None
    if not items:
        raise ValueError(f"groups: expected at least one style group from {list(STYLE_GROUPS)}")
    for g in items:
        if not isinstance(g, str) or g not in STYLE_GROUPS:
            raise ValueError(f"groups: unknown style group {g!r}; expected some of {list(STYLE_GROUPS)}")
    return tuple(dict.fromkeys(items))


@torch.no_grad()
def regional_style_morph(pipe, geometry: Any, texture_a: Any, texture_b: Any, groups: str | Sequence[str] = ("hair",),
                         n: int = 16, *, camera: Any = None, truncation: float | None = None, batch: int = 8,
                         fps: float = _MORPH_FPS) -> Frames:
    """Ease the named style ``groups`` from ``texture_a`` to ``texture_b``; everything else keeps A.

    Frame ``k`` is ``pipe(geometry, texture=(a, b), region_mix={g: t_k for g in groups}, camera)``
    with ``t_k`` going 0 → 1 (the region map blends the two styles per layer, paper Eq. 10).

    Args:
        groups: names of :data:`~sofgan_lab.texture.regions.STYLE_GROUPS` (one name or several).
        n: frames (≥ 2).

    Returns:
        :class:`~.video.Frames` (``info["t"]`` holds the weights of style B).
    """
    n, t = _steps(n)
    names = _groups(groups)
    batch, fps, z_g, za, zb, cam, psi = _style_morph_args(pipe, geometry, texture_a, texture_b, camera, truncation,
                                                          batch, fps)
    t0 = time.perf_counter()
    p = torch.zeros(n, len(STYLE_GROUPS))
    order = list(STYLE_GROUPS)
    for g in names:
        p[:, order.index(g)] = torch.from_numpy(t).float()
    weights = two_style_weights(p)                                   # [n, 17, 2]
    seg = _render_labels(pipe, z_g[None], cam)
    images = texturize_frames(pipe, seg, z=torch.stack([za, zb])[None], class_weights=weights, truncation=psi,
                              batch=batch)
    _log_done("regional_style_morph", images, t0)
    segs = np.repeat(seg.numpy().astype(np.uint8), n, axis=0)
    info = {"kind": "regional_style_morph", "t": t, "groups": names, "geometry": z_g,
            "texture": torch.stack([za, zb]), "truncation": psi}
    return Frames(images, segs, _repeat_camera(cam, n), fps, info)


def _amounts(amounts: Any, n: int | None) -> np.ndarray:
    if amounts is None:
        return np.linspace(-2.0, 2.0, _check_int(16 if n is None else n, "n", 2))
    try:
        a = np.asarray(amounts, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"amounts: expected a sequence of numbers, got {type(amounts).__name__}") from None
    if a.ndim != 1 or a.shape[0] < 2:
        raise ValueError(f"amounts: expected a 1-D sequence of at least 2 numbers, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError("amounts: contains NaN or infinite values")
    if n is not None and _check_int(n, "n", 2) != a.shape[0]:
        raise ValueError(f"n: {n} frames asked for {a.shape[0]} amounts (give one of them)")
    return a


@torch.no_grad()
def expression_edit(pipe, geometry: Any, texture: Any = 0, direction: str = "smile", amounts: Iterable[float] | None = None,
                    *, n: int | None = None, regions: Any = "face", camera: Any = None,
                    region_mix: Mapping | None = None, truncation: float | None = None, batch: int = 8,
                    fps: float = _MORPH_FPS) -> Frames:
    """Move the geometry code along a named direction of the geometry space (paper Fig. 12, row 1).

    Frame ``k`` renders ``pipe.space.edit(z_g, direction, amounts[k])`` (``amount`` in standard
    deviations of the fitted codes along the direction) with the texture fixed.

    Args:
        geometry: a seed or a code.
        texture: a seed, a code, or a pair ``(a, b)`` with ``region_mix``.
        direction: a name of ``pipe.space.direction_names`` (``"pc1"``, ..., attribute names such
            as ``"smile"``).
        amounts: the edit amounts, one per frame (default ``np.linspace(-2, 2, n)``).
        n: frames when ``amounts`` is not given (default 16).
        regions: keep the label edit inside these regions
            (:func:`~sofgan_lab.geometry.space.restricted_edit`; names of
            :data:`~sofgan_lab.geometry.space.REGIONS` or SOF-20 ids; ``"face"``: hair, background and
            clothes keep the original labels), or ``None`` for the unrestricted edit.

    Returns:
        :class:`~.video.Frames` (``info["amounts"]``, ``info["geometry"]`` the edited codes). A frame
        with amount 0 equals ``pipe(geometry, texture, camera)``.
    """
    if pipe.space is None:
        raise ValueError("pipe: this pipeline has no geometry space, so it has no edit directions")
    a = _amounts(amounts, n)
    if not isinstance(direction, str):
        raise ValueError(f"direction: expected a direction name, got {direction!r}")
    pipe.space.direction(direction)       # "direction: unknown direction ...; known: pc1..pcN and [...]"
    if regions is not None:
        region_ids(regions)                # "regions: unknown region ..."
    batch = _check_int(batch, "batch", 1)
    fps = _check_fps(fps)
    z_g = geometry_code(pipe, geometry)
    tex = texture_styles(pipe, texture)
    weights = pipe.region_weights(region_mix, tex.shape[0], 1)
    cam = fixed_camera(pipe, camera)
    psi = check_truncation(pipe, truncation)
    t0 = time.perf_counter()
    codes = torch.stack([pipe.space.edit(z_g, direction, float(x)) for x in a])
    segs = []
    for start in range(0, len(a), batch):
        chunk = codes[start:start + batch]
        if regions is None:
            segs.append(_render_labels(pipe, chunk, cam))
        else:
            # the original is rendered once per chunk and broadcast over the chunk's edited codes
            segs.append(restricted_edit(pipe.sof, z_g[None], chunk, cam, regions).restricted.long())
    seg = torch.cat(segs)
    images = texturize_frames(pipe, seg, z=tex[None], class_weights=weights, truncation=psi, batch=batch)
    _log_done("expression_edit", images, t0)
    info = {"kind": "expression_edit", "direction": direction, "amounts": a, "regions": regions, "geometry": codes,
            "texture": tex, "region_mix": None if region_mix is None else dict(region_mix), "truncation": psi}
    return Frames(images, seg.numpy().astype(np.uint8), _repeat_camera(cam, len(a)), fps, info)
