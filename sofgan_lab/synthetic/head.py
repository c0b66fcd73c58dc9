"""Procedural 3D semantic portraits: a head is a labelled union of SDF primitives.

Canonical frame (the frame of the official SOF release's cameras): world y is up, the face looks
toward +z, and the whole bust (head, neck, shoulders) lies inside the ball of radius 1.5 at the
origin. Left and right are the SUBJECT's own: the subject's left (``l_eye``, ``l_ear``,
``l_brow``, ``l_nose``) is at +x, so in a frontal view it appears on the image's right side.
The nose is split into ``r_nose`` (x < 0) and ``l_nose`` (x >= 0) at its median plane x = 0.

Geometry is a deterministic function of the attributes (:mod:`.attributes`); all randomness is in
the attribute sampling. Distances are in world units (the default orthographic camera sees
3.56 units across the image).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

from ..labels import SOF, SOF20_LR_SWAP
from .attributes import validate_attributes
from .sdf import Primitive, Scene, rotation

__all__ = ["Head", "build_head"]

# Cranium and jaw ellipsoids (before attribute scaling) and landmark heights.
_CRANIUM_C = np.array([0.0, 0.45, -0.02])
_EYE_Y = 0.43
_MOUTH_Y = 0.12
# The head is modelled at unit scale, then the whole bust is scaled about the look-at point so
# that it fills the official frame (inside the radius-1.5 ball).
_BUST_SCALE = 1.25
_BUST_PIVOT = (0.0, 0.1, 0.0)


@dataclass
class Head:
    """A procedural head: its attributes, its primitives, and the compiled :class:`Scene`."""

    attributes: dict[str, float]
    scene: Scene
    mirrored_copy: bool = False

    def mirrored(self) -> "Head":
        """The head reflected by x -> -x with left/right labels swapped (the subject's mirror twin)."""
        prims = []
        for p in self.scene.primitives:
            q = p.mirrored()
            q.label = int(SOF20_LR_SWAP[p.label])
            prims.append(q)
        scene = Scene(prims, bound_radius=self.scene.bound_radius, blend_radius=self.scene.blend_radius)
        return Head(dict(self.attributes), scene, not self.mirrored_copy)


def _ellipsoid_front(c, r, x, y):
    """z of the front surface of an axis-aligned ellipsoid at (x, y), or -inf if outside."""
    u = 1.0 - ((x - c[0]) / r[0]) ** 2 - ((y - c[1]) / r[1]) ** 2
    return c[2] + r[2] * np.sqrt(u) if u > 0 else -np.inf


def _normal_frame(normal, up=(0.0, 1.0, 0.0)):
    """Rotation whose local z is ``normal`` and local y is as close to ``up`` as possible."""
    z = np.asarray(normal, float)
    z = z / np.linalg.norm(z)
    x = np.cross(up, z)
    x = x / np.linalg.norm(x)
    y = np.cross(z, x)
    return np.stack([x, y, z], axis=1)


def build_head(attributes: Mapping[str, float]) -> Head:
    """Build the primitives of a head from its attributes (missing ones take their defaults)."""
    b = _HeadBuilder(validate_attributes(attributes))
    for part in (_add_skin, _add_eyes_and_brows, _add_nose, _add_mouth, _add_ears, _add_glasses,
                 _add_neck_and_cloth, _add_hair, _add_hat):
        part(b)
    return Head(b.a, Scene([p.scaled(_BUST_SCALE, _BUST_PIVOT) for p in b.prims]))


class _HeadBuilder:
    """The primitives of a head under construction (in order), its attributes ``a`` and the
    cranium and jaw ellipsoids that the face surface follows."""

    def __init__(self, a: dict[str, float]):
        self.a = a
        self.prims: list[Primitive] = []
        fw, fl, jw = a["face_width"], a["face_length"], a["jaw_width"]
        self.cr_c, self.cr_r = _CRANIUM_C, np.array([0.40 * fw, 0.50 * fl, 0.47])
        self.jaw_c = np.array([0.0, 0.20 - 0.05 * (fl - 1.0), 0.05])
        self.jaw_r = np.array([0.31 * jw * fw, 0.30 * fl, 0.36])

    def ell(self, name, label, centre, radii, rot=None, bend=0.0, clips=(), blend=None):
        self.prims.append(Primitive(name, int(label), "ellipsoid", centre=list(map(float, centre)),
                                    radii=list(map(float, radii)), rot=rot, bend=float(bend),
                                    clips=[(list(map(float, n)), float(o)) for n, o in clips], blend=blend))

    def cap(self, name, label, pa, pb, radius, clips=()):
        self.prims.append(Primitive(name, int(label), "capsule", a=list(map(float, pa)), b=list(map(float, pb)),
                                    radius=float(radius), clips=[(list(map(float, n)), float(o)) for n, o in clips]))

    def torus(self, name, label, centre, rot, major, minor):
        self.prims.append(Primitive(name, int(label), "torus", centre=list(map(float, centre)), rot=rot,
                                    major=float(major), radius=float(minor)))

    def surface(self, x, y, inset):
        """Point on the face surface at (x, y) moved ``inset`` inward, and the surface normal."""
        zc = _ellipsoid_front(self.cr_c, self.cr_r, x, y)
        zj = _ellipsoid_front(self.jaw_c, self.jaw_r, x, y)
        c, r, z = (self.cr_c, self.cr_r, zc) if zc >= zj else (self.jaw_c, self.jaw_r, zj)
        p = np.array([x, y, z])
        n = (p - c) / r ** 2
        n = n / np.linalg.norm(n)
        return p - inset * n, n


def _add_skin(b: _HeadBuilder) -> None:
    """Skin: cranium + jaw, smoothly blended."""
    b.ell("cranium", SOF.SKIN, b.cr_c, b.cr_r, blend="skin")
    b.ell("jaw", SOF.SKIN, b.jaw_c, b.jaw_r, blend="skin")


def _add_eyes_and_brows(b: _HeadBuilder) -> None:
    a, fw, es = b.a, b.a["face_width"], b.a["eye_size"]
    ex = 0.16 * fw
    for side, sx, eye_label, brow_label in ((+1, ex, SOF.L_EYE, SOF.L_BROW), (-1, -ex, SOF.R_EYE, SOF.R_BROW)):
        name = "l" if side > 0 else "r"
        c, n = b.surface(sx, _EYE_Y, 0.013)
        b.ell(f"{name}_eye", eye_label, c, (0.072 * es, 0.036 * es, 0.034), rot=_normal_frame(n))
        by = _EYE_Y + 0.07 + 0.05 * a["brow_height"]
        c, n = b.surface(side * 0.165 * fw, by, 0.01)
        b.ell(f"{name}_brow", brow_label, c, (0.085, 0.02, 0.026),
              rot=_normal_frame(n) @ rotation(z_deg=side * 8.0), bend=-2.5)


def _add_nose(b: _HeadBuilder) -> None:
    """The nose, split at its median plane x = 0."""
    ns = b.a["nose_size"]
    c, n = b.surface(0.0, _EYE_Y - 0.13, 0.03)
    nose_rot = rotation(x_deg=-14.0)
    nose_r = (0.052 * ns, 0.11 * ns, 0.085 * ns)
    b.ell("r_nose", SOF.R_NOSE, c, nose_r, rot=nose_rot, clips=[((1, 0, 0), 0.0)])
    b.ell("l_nose", SOF.L_NOSE, c, nose_r, rot=nose_rot, clips=[((-1, 0, 0), 0.0)])


def _add_mouth(b: _HeadBuilder) -> None:
    """Mouth: lips and the inner mouth, bent upward by the smile."""
    sm, mo, lt = b.a["smile"], b.a["mouth_opening"], b.a["lip_thickness"]
    width = 1.0 + 0.22 * sm
    bend = 3.0 * sm
    gap = 0.05 * mo
    up_c, up_n = b.surface(0.0, _MOUTH_Y + 0.016 + 0.5 * gap, 0.024)
    lo_c, lo_n = b.surface(0.0, _MOUTH_Y - 0.022 - 0.5 * gap, 0.026)
    b.ell("u_lip", SOF.U_LIP, up_c, (0.115 * width, 0.024 * lt, 0.036), rot=_normal_frame(up_n), bend=bend)
    b.ell("l_lip", SOF.L_LIP, lo_c, (0.105 * width, 0.029 * lt, 0.038), rot=_normal_frame(lo_n), bend=bend)
    in_c, in_n = b.surface(0.0, _MOUTH_Y - 0.003, 0.028)
    b.ell("mouth", SOF.MOUTH, in_c, (0.095 * width, 0.012 + 0.55 * gap + 0.01 * mo, 0.031),
          rot=_normal_frame(in_n), bend=bend)


def _add_ears(b: _HeadBuilder) -> None:
    """Ears and earrings."""
    a, fw, ers = b.a, b.a["face_width"], b.a["ear_size"]
    for side, ear_label in ((+1, SOF.L_EAR), (-1, SOF.R_EAR)):
        name = "l" if side > 0 else "r"
        b.ell(f"{name}_ear", ear_label, (side * 0.392 * fw, _EYE_Y - 0.04, -0.03),
              (0.032, 0.095 * ers, 0.06 * ers), rot=rotation(y_deg=side * 18.0))
        if a["earrings"]:
            b.ell(f"{name}_earring", SOF.EAR_R,
                  (side * (0.405 * fw + 0.012), _EYE_Y - 0.04 - 0.095 * ers - 0.028, -0.01), (0.028, 0.028, 0.028))


def _add_glasses(b: _HeadBuilder) -> None:
    """Glasses (with the attribute): two rims, a bridge, two temples."""
    if not b.a["glasses"]:
        return
    fw = b.a["face_width"]
    ex = 0.16 * fw
    zg = b.surface(ex, _EYE_Y, 0.0)[0][2] + 0.055
    rim = 0.09
    for side in (+1, -1):
        b.torus(f"{'l' if side > 0 else 'r'}_rim", SOF.EYE_G, (side * ex, _EYE_Y, zg), np.eye(3), rim, 0.013)
        b.cap(f"{'l' if side > 0 else 'r'}_temple", SOF.EYE_G, (side * (ex + rim), _EYE_Y + 0.01, zg - 0.01),
              (side * 0.41 * fw, _EYE_Y + 0.03, -0.06), 0.011)
    b.cap("bridge", SOF.EYE_G, (-(ex - rim), _EYE_Y + 0.012, zg), ((ex - rim), _EYE_Y + 0.012, zg), 0.012)


def _add_neck_and_cloth(b: _HeadBuilder) -> None:
    """Neck, necklace (with the attribute), torso and collar."""
    a = b.a
    neck_r = 0.165 * a["neck_width"]
    b.cap("neck", SOF.NECK, (0.0, -0.70, -0.03), (0.0, 0.25, -0.05), neck_r)
    if a["necklace"]:
        tilt = np.radians(25.0)
        b.torus("necklace", SOF.NECK_L, (0.0, -0.34, -0.02),
                _normal_frame((0.0, np.cos(tilt), np.sin(tilt)), up=(0.0, 0.0, -1.0)), neck_r + 0.05, 0.014)
    b.ell("torso", SOF.CLOTH, (0.0, -1.02, -0.06), (0.98, 0.55, 0.40))
    b.cap("collar", SOF.CLOTH, (0.0, -0.75, -0.03), (0.0, -0.46 + 0.22 * a["collar_height"], -0.04), neck_r + 0.035)


def _add_hair(b: _HeadBuilder) -> None:
    """Hair: a cap behind the hairline, a fringe (with bangs), and the long part behind/along the sides."""
    a, fw, hl, hv = b.a, b.a["face_width"], b.a["hair_length"], b.a["hair_volume"]
    cap_r = b.cr_r + 0.035 + 0.06 * hv
    hairline = np.array([0.0, -0.55, 1.0]) / np.linalg.norm([0.0, -0.55, 1.0])
    p0 = np.array([0.0, 0.73, 0.33])
    b.ell("hair_cap", SOF.HAIR, b.cr_c + (0.0, 0.02, -0.02), cap_r,
          clips=[(hairline, float(hairline @ p0)), ((0, -1, 0), -(_EYE_Y + 0.06))])
    if a["bangs"]:
        b.ell("bangs", SOF.HAIR, (0.0, 0.74, 0.30), (0.33 * fw, 0.11, 0.17),
              clips=[((0, -1, 0), -(_EYE_Y + 0.15))])
    b.ell("hair_long", SOF.HAIR, (0.0, _EYE_Y - 0.05 - 0.25 * hl, -0.12),
          ((0.34 + 0.12 * hl) * fw + 0.04 * hv, 0.22 + 0.42 * hl, 0.40 + 0.03 * hv),
          clips=[((0, 0, 1), 0.06)])


def _add_hat(b: _HeadBuilder) -> None:
    """Hat (with the attribute): a dome and a brim."""
    if not b.a["hat"]:
        return
    fw, hv = b.a["face_width"], b.a["hair_volume"]
    b.ell("hat_dome", SOF.HAT, (0.0, 0.78, -0.03), (0.44 * fw + 0.06 * hv, 0.29, 0.51 + 0.06 * hv),
          clips=[((0, -1, 0), -0.74)])
    b.ell("hat_brim", SOF.HAT, (0.0, 0.76, 0.02), (0.62, 0.022, 0.66))
