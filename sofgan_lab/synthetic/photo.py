"""Shaded "photos" of procedural heads with per-region texture styles.

A :class:`TextureStyle` holds one portrait's colours: skin tone, hair colour and strand texture,
lip and iris colour, cloth colour and pattern, accessory colours, background gradient and the
light. Textures are functions of the 3D surface point, so they stay put when the camera moves.
Shading is Lambertian with an ambient term and one directional light. Photos are rendered with
supersampling (anti-aliased) and returned as uint8 RGB.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..cameras import Camera
from ..images import tensor_to_uint8
from ..labels import NUM_SOF_CLASSES, SOF
from .head import Head
from .render import SegmapRender, pool_render, render_segmap

__all__ = ["TextureStyle", "sample_style", "render_photo", "Photo"]

_SKIN_TONES = np.array([[255, 224, 196], [241, 194, 160], [224, 172, 135], [198, 134, 96],
                        [160, 104, 70], [115, 72, 46]], float)
_HAIR_COLOURS = np.array([[25, 20, 18], [60, 40, 28], [110, 75, 45], [170, 130, 80], [215, 185, 125],
                          [140, 60, 30], [150, 150, 150]], float)
_IRIS_COLOURS = np.array([[70, 45, 25], [110, 80, 40], [60, 100, 150], [80, 120, 80], [40, 40, 40]], float)
_PATTERNS = ("plain", "stripes", "checks")


@dataclass(frozen=True)
class TextureStyle:
    """Colours (RGB floats in 0..255) and texture parameters of one portrait."""

    skin: tuple
    hair: tuple
    hair_strand_frequency: float
    brow: tuple
    lip: tuple
    iris: tuple
    cloth: tuple
    cloth_second: tuple
    cloth_pattern: str
    cloth_frequency: float
    hat: tuple
    glasses: tuple
    metal: tuple
    background_top: tuple
    background_bottom: tuple
    light: tuple
    ambient: float

    def to_dict(self) -> dict:
        return asdict(self)


def _jitter(rng, colour, amount):
    return tuple(float(v) for v in np.clip(colour + rng.normal(0, amount, 3), 0, 255))


def sample_style(rng: np.random.Generator) -> TextureStyle:
    """Draw a texture style (a fixed sequence of draws from ``rng``)."""
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng: expected a numpy.random.Generator, got {type(rng).__name__}")
    skin = _jitter(rng, _SKIN_TONES[rng.integers(len(_SKIN_TONES))], 8)
    hair = _jitter(rng, _HAIR_COLOURS[rng.integers(len(_HAIR_COLOURS))], 10)
    brow = tuple(0.8 * np.array(hair))
    lip = _jitter(rng, np.array([180, 85, 85]) * (0.6 + 0.5 * rng.random()), 10)
    iris = _jitter(rng, _IRIS_COLOURS[rng.integers(len(_IRIS_COLOURS))], 8)
    cloth = tuple(float(v) for v in rng.uniform(20, 235, 3))
    cloth_second = tuple(float(v) for v in rng.uniform(20, 235, 3))
    pattern = _PATTERNS[rng.integers(len(_PATTERNS))]
    hat = tuple(float(v) for v in rng.uniform(20, 235, 3))
    glasses = tuple(float(v) for v in rng.uniform(10, 120, 3))
    metal = (230.0, 200.0, 90.0) if rng.random() < 0.5 else (200.0, 200.0, 210.0)
    top = tuple(float(v) for v in rng.uniform(40, 240, 3))
    bottom = tuple(float(v) for v in rng.uniform(40, 240, 3))
    az, el = rng.uniform(-60, 60), rng.uniform(-10, 50)
    a, e = np.radians(az), np.radians(el)
    light = (float(np.sin(a) * np.cos(e)), float(np.sin(e)), float(np.cos(a) * np.cos(e)))
    return TextureStyle(skin, hair, float(rng.uniform(120, 260)), brow, lip, iris, cloth, cloth_second,
                        pattern, float(rng.uniform(10, 30)), hat, glasses, metal, top, bottom, light,
                        float(rng.uniform(0.25, 0.45)))


@dataclass(frozen=True)
class Photo:
    """A rendered photo batch: ``images`` (B, H, W, 3) uint8 and the ``segmap`` render (SOF-20)."""

    images: np.ndarray
    segmap: SegmapRender


def _normals(head: Head, points: torch.Tensor, h: float = 1e-3) -> torch.Tensor:
    offs = torch.eye(3) * h
    grads = []
    for k in range(3):
        grads.append(head.scene.sdf(points + offs[k]) - head.scene.sdf(points - offs[k]))
    return F.normalize(torch.stack(grads, -1), dim=-1)


def render_photo(head: Head, camera: Camera, style: TextureStyle, *, supersample: int = 2) -> Photo:
    """Render shaded photos of ``head`` for every view of ``camera``.

    Args:
        head: the head to render.
        camera: a batched camera (B views).
        style: the texture style (the same for every view).
        supersample: samples per pixel side for the photo's anti-aliasing (1..8); the returned
            label map is made from the same samples (each pixel's most frequent label).

    Returns:
        :class:`Photo` with ``images`` (B, H, W, 3) uint8 and ``segmap`` (labels (B, H, W) int64).
    """
    if not isinstance(head, Head):
        raise TypeError(f"head: expected a Head, got {type(head).__name__}")
    if not isinstance(style, TextureStyle):
        raise TypeError(f"style: expected a TextureStyle, got {type(style).__name__}")
    if isinstance(supersample, bool) or not isinstance(supersample, int) or not 1 <= supersample <= 8:
        raise ValueError(f"supersample: expected an integer in 1..8, got {supersample!r}")
    H, W = camera.height, camera.width
    cam = camera.to(device="cpu", dtype=torch.float32)
    big = cam.resized((H * supersample, W * supersample)) if supersample > 1 else cam
    r = render_segmap(head, big)
    B, h, w = r.labels.shape
    labels = r.labels.view(-1)
    hit = r.mask.view(-1)
    pts = r.points.view(-1, 3)
    member = r.member.view(-1)

    table = torch.zeros(NUM_SOF_CLASSES, 3)
    s = style
    for ids, colour in (
        ((SOF.SKIN, SOF.R_NOSE, SOF.L_NOSE, SOF.L_EAR, SOF.R_EAR, SOF.NECK), s.skin),
        ((SOF.L_BROW, SOF.R_BROW), s.brow), ((SOF.L_EYE, SOF.R_EYE), (235.0, 235.0, 230.0)),
        ((SOF.MOUTH,), (70.0, 25.0, 30.0)), ((SOF.U_LIP, SOF.L_LIP), s.lip),
        ((SOF.EAR_R, SOF.NECK_L), s.metal), ((SOF.EYE_G,), s.glasses), ((SOF.CLOTH,), s.cloth),
        ((SOF.HAIR,), s.hair), ((SOF.HAT,), s.hat),
    ):
        table[list(map(int, ids))] = torch.tensor(colour, dtype=torch.float32)
    base = table[labels] / 255.0

    idx = torch.nonzero(hit).view(-1)
    p = pts[idx]
    lab = labels[idx]
    col = base[idx]
    x, y, z = p.unbind(-1)
    # Hair strands: brightness waves around the vertical axis, bent by height.
    is_hair = lab == int(SOF.HAIR)
    theta = torch.atan2(x, z)
    strands = 0.78 + 0.22 * torch.sin(theta * s.hair_strand_frequency / 6.0 + 9.0 * y + 3.0 * torch.sin(5.0 * y))
    col = torch.where(is_hair[:, None], col * strands[:, None], col)
    # Cloth pattern.
    is_cloth = lab == int(SOF.CLOTH)
    f = s.cloth_frequency
    if s.cloth_pattern == "stripes":
        second = torch.sin(f * y) > 0
    elif s.cloth_pattern == "checks":
        second = (torch.sin(f * x) * torch.sin(f * y)) > 0
    else:
        second = torch.zeros_like(is_cloth)
    col = torch.where((is_cloth & second)[:, None], torch.tensor(s.cloth_second) / 255.0, col)
    # Skin: gentle low-frequency variation.
    is_skin = (lab == int(SOF.SKIN)) | (lab == int(SOF.NECK))
    col = torch.where(is_skin[:, None], col * (0.96 + 0.04 * torch.sin(13.0 * x + 7.0 * y))[:, None], col)
    # Eyes: iris and pupil discs on the eye's own frame (its local z is the face normal).
    is_eye = (lab == int(SOF.L_EYE)) | (lab == int(SOF.R_EYE))
    if is_eye.any():
        radial = torch.full_like(x, 1e9)
        for m, prims in enumerate(head.scene.member_primitives):
            if prims[0].label in (int(SOF.L_EYE), int(SOF.R_EYE)):
                sel = torch.nonzero(member[idx] == m).view(-1)
                if sel.numel():
                    q = head.scene.member_local(m, p[sel])
                    ry = float(prims[0].radii[1])
                    radial[sel] = torch.sqrt(q[:, 0] ** 2 + q[:, 1] ** 2) / ry
        iris = torch.tensor(s.iris) / 255.0
        col = torch.where((is_eye & (radial < 0.95))[:, None], iris, col)
        col = torch.where((is_eye & (radial < 0.42))[:, None], torch.full((3,), 0.05), col)

    normals = _normals(head, p)
    light = F.normalize(torch.tensor(s.light, dtype=torch.float32), dim=0)
    lambert = (normals * light).sum(-1).clamp_min(0.0)
    shade = s.ambient + (1.0 - s.ambient) * lambert
    rgb = (col * shade[:, None]).clamp(0, 1)

    # Background: a vertical gradient in image space.
    rows = torch.linspace(0, 1, h).view(1, h, 1, 1)
    top = torch.tensor(s.background_top) / 255.0
    bottom = torch.tensor(s.background_bottom) / 255.0
    image = (top * (1 - rows) + bottom * rows).expand(B, h, w, 3).reshape(-1, 3).clone()
    image[idx] = rgb
    image = image.view(B, h, w, 3).permute(0, 3, 1, 2)
    if supersample > 1:
        image = F.avg_pool2d(image, supersample)
    images = tensor_to_uint8(image * 2.0 - 1.0)
    return Photo(images, pool_render(r, supersample) if supersample > 1 else r)
