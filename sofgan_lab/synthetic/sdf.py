"""Signed-distance primitives and a labelled scene evaluated in batches.

A :class:`Scene` is a union of primitives (ellipsoids, capsules, tori), each carrying a SOF-20
label, optionally clipped by half-spaces and optionally smooth-blended with the other members of
its blend group. The scene's signed distance at a point is the minimum over its (blended)
members, and the point's label is the label of the member that attains it: the label of the
nearest surface. The whole scene is intersected with a bounding sphere.

Evaluation is vectorised over points and primitives (one small GEMM per primitive kind) and
contains only elementwise float32 operations, so results are bit-identical between runs on the
same machine.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch

__all__ = ["Primitive", "Scene", "SceneSample", "rotation"]

_KINDS = ("ellipsoid", "capsule", "torus")


def rotation(x_deg: float = 0.0, y_deg: float = 0.0, z_deg: float = 0.0) -> np.ndarray:
    """Rotation matrix (3, 3) = Rz @ Ry @ Rx for angles in degrees (local -> world)."""
    ax, ay, az = np.radians([x_deg, y_deg, z_deg])
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    return rz @ ry @ rx


@dataclass
class Primitive:
    """One labelled solid in world coordinates (build-time description, numpy/float).

    kind "ellipsoid": ``centre``, ``radii`` (3,), ``rot`` (3,3 local->world), ``bend`` (the local
    frame is bent by y -> y - bend * clamp(x, -rx, rx)**2 before the ellipsoid test; used for smiles and brows).
    kind "capsule": segment ``a`` -> ``b`` with ``radius``.
    kind "torus": ``centre``, ``rot``, ring radius ``major`` in the local xy-plane, tube ``radius``.
    ``clips``: half-spaces kept, each ``(normal (3,), offset)``: the solid is cut to n.p <= offset.
    ``blend``: members of one blend group (same label) are smooth-unioned with radius
    ``blend_radius``.
    """

    name: str
    label: int
    kind: str
    centre: Sequence[float] = (0.0, 0.0, 0.0)
    radii: Sequence[float] = (1.0, 1.0, 1.0)
    rot: np.ndarray | None = None
    bend: float = 0.0
    a: Sequence[float] = (0.0, 0.0, 0.0)
    b: Sequence[float] = (0.0, 0.0, 0.0)
    radius: float = 0.0
    major: float = 0.0
    clips: list = field(default_factory=list)
    blend: str | None = None

    def scaled(self, scale: float, pivot: Sequence[float]) -> "Primitive":
        """The same primitive scaled uniformly by ``scale`` about ``pivot`` (distances scale too)."""
        pv = np.asarray(pivot, float)
        move = lambda v: (pv + scale * (np.asarray(v, float) - pv)).tolist()  # noqa: E731
        clips = [(list(n), float(scale * o + (1.0 - scale) * np.dot(n, pv))) for n, o in self.clips]
        return Primitive(self.name, self.label, self.kind, move(self.centre),
                         [scale * r for r in self.radii], self.rot, self.bend / scale, move(self.a),
                         move(self.b), scale * self.radius, scale * self.major, clips, self.blend)

    def mirrored(self) -> "Primitive":
        """The same primitive reflected by x -> -x (labels are swapped by the caller)."""
        m = np.diag([-1.0, 1.0, 1.0])
        rot = None if self.rot is None else m @ np.asarray(self.rot) @ m
        clips = [((m @ np.asarray(n, float)).tolist(), float(o)) for n, o in self.clips]
        flip = lambda v: [-float(v[0]), float(v[1]), float(v[2])]  # noqa: E731
        return Primitive(self.name, self.label, self.kind, flip(self.centre), list(self.radii), rot,
                         self.bend, flip(self.a), flip(self.b), self.radius, self.major, clips,
                         self.blend)


@dataclass(frozen=True)
class SceneSample:
    """The scene evaluated at N points.

    ``sdf``: (N,) float32 signed distance (negative inside). ``label``: (N,) int64 SOF-20 id of the
    nearest surface. ``member``: (N,) int64 index into :attr:`Scene.member_names` of the member that
    attains the minimum.
    """

    sdf: torch.Tensor
    label: torch.Tensor
    member: torch.Tensor


def _vec(v) -> torch.Tensor:
    return torch.tensor([float(x) for x in v], dtype=torch.float32)


class _Compiled:
    """One primitive with its parameters as float32 tensors / Python floats, evaluated elementwise.

    Only elementwise operations are used (no GEMM, no reductions), so the distance at a point does
    not depend on which other points are evaluated with it.
    """

    def __init__(self, p: Primitive):
        self.kind = p.kind
        self.centre = _vec(p.centre)
        rot = None if p.rot is None else np.asarray(p.rot, float)
        self.rows = None if rot is None or np.allclose(rot, np.eye(3)) else [_vec(r) for r in rot]
        self.inv_r = _vec(1.0 / np.asarray(p.radii, float))
        self.bend = float(p.bend)
        self.half_width = float(p.radii[0])
        self.centre_sdf = -float(min(p.radii))  # the formula below is 0/0 at the centre itself
        self.a = _vec(p.a)
        ba = np.subtract(p.b, p.a).astype(float)
        self.ba = _vec(ba)
        self.inv_baba = float(1.0 / max(float(ba @ ba), 1e-12))
        self.radius = float(p.radius)
        self.major = float(p.major)
        self.clips = [(_vec(n), float(o)) for n, o in p.clips]
        # A sphere that holds the solid, for culling (clips only remove matter).
        if p.kind == "ellipsoid":
            self.bcentre, self.bradius = self.centre, float(max(p.radii)) * (1.0 + abs(p.bend))
        elif p.kind == "capsule":
            self.bcentre = _vec((np.asarray(p.a, float) + np.asarray(p.b, float)) / 2)
            self.bradius = float(np.linalg.norm(ba)) / 2 + p.radius
        else:
            self.bcentre, self.bradius = self.centre, p.major + p.radius

    def local(self, p: torch.Tensor) -> torch.Tensor:
        q = p - self.centre
        if self.rows is not None:
            r = self.rows  # local = R^T q = q0 * R[0] + q1 * R[1] + q2 * R[2]
            q = q[:, 0:1] * r[0] + q[:, 1:2] * r[1] + q[:, 2:3] * r[2]
        return q

    def __call__(self, p: torch.Tensor) -> torch.Tensor:
        if self.kind == "ellipsoid":
            q = self.local(p)
            if self.bend:
                # The bend saturates outside the solid's width so the distance stays well-behaved
                # (close to 1-Lipschitz) far from it.
                x = q[:, 0].clamp(-self.half_width, self.half_width)
                q = torch.stack((q[:, 0], q[:, 1] - self.bend * x * x, q[:, 2]), 1)
            u = q * self.inv_r
            v = u * self.inv_r
            u, v = u * u, v * v
            k0 = torch.sqrt(u[:, 0] + u[:, 1] + u[:, 2])
            k1 = torch.sqrt(v[:, 0] + v[:, 1] + v[:, 2]).clamp_min(1e-9)
            d = torch.where(k0 > 0, k0 * (k0 - 1.0) / k1, torch.full_like(k0, self.centre_sdf))
        elif self.kind == "capsule":
            pa = p - self.a
            m = pa * self.ba
            h = ((m[:, 0] + m[:, 1] + m[:, 2]) * self.inv_baba).clamp(0.0, 1.0)
            e = pa - self.ba * h[:, None]
            e = e * e
            d = torch.sqrt(e[:, 0] + e[:, 1] + e[:, 2]) - self.radius
        else:
            q = self.local(p)
            q2 = q * q
            ring = torch.sqrt(q2[:, 0] + q2[:, 1]) - self.major
            d = torch.sqrt(ring * ring + q2[:, 2]) - self.radius
        for n, o in self.clips:
            m = p * n
            d = torch.maximum(d, m[:, 0] + m[:, 1] + m[:, 2] - o)
        return d


class Scene:
    """A labelled union of primitives, evaluated in batches.

    Members: every primitive is a member on its own, except that the primitives of one blend
    group form a single member (their smooth union). The scene's distance is the minimum over
    members (intersected with the bounding ball); a point's label is its nearest member's label.

    Args:
        primitives: the solids; members sharing a ``blend`` group must share a label.
        bound_radius: the scene is intersected with the ball of this radius at the origin.
        blend_radius: smoothing radius of blend groups (polynomial smooth minimum).
    """

    def __init__(self, primitives: Sequence[Primitive], *, bound_radius: float = 1.49,
                 blend_radius: float = 0.06):
        if not primitives:
            raise ValueError("primitives: expected at least one primitive, got none")
        for p in primitives:
            if p.kind not in _KINDS:
                raise ValueError(f"primitives: unknown kind {p.kind!r} for {p.name!r}; expected one of {_KINDS}")
        self.primitives = list(primitives)
        self.bound_radius = float(bound_radius)
        self.blend_radius = float(blend_radius)
        members: dict[str, list[Primitive]] = {}
        for p in primitives:
            members.setdefault(p.blend or f"\0{p.name}\0{id(p)}", []).append(p)
        self.member_names: list[str] = []
        self.member_primitives: list[list[Primitive]] = []
        for key, ps in members.items():
            labels = {q.label for q in ps}
            if len(labels) != 1:
                raise ValueError(f"primitives: blend group {key!r} mixes labels {sorted(labels)}")
            self.member_names.append(ps[0].name if len(ps) == 1 else key)
            self.member_primitives.append(ps)
        self._members = [[_Compiled(q) for q in ps] for ps in self.member_primitives]
        self.member_labels = torch.tensor([ps[0].label for ps in self.member_primitives], dtype=torch.long)
        self._tables: dict = {}

    @property
    def num_members(self) -> int:
        return len(self._members)

    def member_sdf(self, m: int, p: torch.Tensor) -> torch.Tensor:
        """Distance (M,) of member ``m`` at points ``p`` (M, 3) float32."""
        prims = self._members[m]
        if len(prims) == 1:
            return prims[0](p)
        # Polynomial smooth minimum: equal to the hard minimum wherever the members' distances
        # differ by more than the blend radius, so surfaces away from the seams stay in place.
        k = self.blend_radius
        d = prims[0](p)
        for q in prims[1:]:
            e = q(p)
            h = (k - (d - e).abs()).clamp_min(0.0) / k
            d = torch.minimum(d, e) - h * h * (0.25 * k)
        return d

    # ------------------------------------------------------------------ culling
    def _cull_table(self, cells: int, extent: float) -> torch.Tensor:
        """(num_members, cells**3) bool: which members can be nearest somewhere in each cell."""
        key = ("cull", cells, extent)
        if key not in self._tables:
            h = 2.0 * extent / cells
            lin = -extent + h * (torch.arange(cells, dtype=torch.float32) + 0.5)
            zz, yy, xx = torch.meshgrid(lin, lin, lin, indexing="ij")
            centres = torch.stack((xx, yy, zz), -1).view(-1, 3)
            d = torch.stack([self.member_sdf(m, centres) for m in range(self.num_members)], 0)
            slack = 1.5 * (math.sqrt(3.0) * h / 2.0)  # 1.5: margin for not-quite-Lipschitz distances
            self._tables[key] = (d - slack) <= (d.min(0).values + slack)
        return self._tables[key]

    # ------------------------------------------------------------------ evaluation
    def _bound(self, p: torch.Tensor) -> torch.Tensor:
        return torch.sqrt(p[:, 0] * p[:, 0] + p[:, 1] * p[:, 1] + p[:, 2] * p[:, 2]) - self.bound_radius

    def evaluate(self, points: torch.Tensor, *, cull: bool = True, cells: int = 32) -> SceneSample:
        """Distance, label (SOF-20) and member index at ``points`` (..., 3) -> tensors of shape (...).

        With ``cull`` (default), each member is evaluated only at points whose cell (of a
        ``cells``³ grid over the bounding cube) it can be nearest in, judged by its distance at
        the cell's centre and the 1-Lipschitz bound. Within a cell's size of any surface the result
        is bit-identical to ``cull=False``; farther away, where the approximate distance of a thin
        bent ellipsoid can fall faster than 1-Lipschitz, the culled value may be the larger of two
        lower bounds of the true distance (harmless for sphere tracing and labels of hits).
        """
        if not isinstance(points, torch.Tensor):
            raise TypeError(f"points: expected a torch.Tensor, got {type(points).__name__}")
        if points.shape[-1] != 3:
            raise ValueError(f"points: expected shape (..., 3), got {tuple(points.shape)}")
        shape = points.shape[:-1]
        p = points.reshape(-1, 3).to(torch.float32).contiguous()
        n = p.shape[0]
        best = torch.full((n,), float("inf"))
        member = torch.zeros(n, dtype=torch.long)
        if cull and n > 0:
            extent = self.bound_radius + 0.05
            table = self._cull_table(cells, extent)
            ijk = ((p + extent) * (cells / (2.0 * extent))).floor().long().clamp_(0, cells - 1)
            cell = (ijk[:, 2] * cells + ijk[:, 1]) * cells + ijk[:, 0]
            outside = (p.abs() > extent).any(1)
        for m in range(self.num_members):
            if cull and n > 0:
                sel = table[m][cell] | outside
                idx = torch.nonzero(sel).view(-1)
                if idx.numel() == 0:
                    continue
                d = self.member_sdf(m, p[idx])
                better = d < best[idx]
                bi = idx[better]
                best[bi] = d[better]
                member[bi] = m
            else:
                d = self.member_sdf(m, p)
                better = d < best
                best = torch.where(better, d, best)
                member = torch.where(better, torch.full_like(member, m), member)
        sdf = torch.maximum(best, self._bound(p))
        label = self.member_labels[member]
        return SceneSample(sdf.view(shape), label.view(shape), member.view(shape))

    def sdf(self, points: torch.Tensor, **kwargs) -> torch.Tensor:
        """Signed distance at ``points`` (..., 3) float32 world coordinates -> (...) float32."""
        return self.evaluate(points, **kwargs).sdf

    def grid(self, resolution: int, extent: float | None = None) -> torch.Tensor:
        """The signed distance sampled on a ``resolution``³ grid over [-extent, extent]³ (cached).

        Returns (R, R, R) float32 indexed [z, y, x] (the layout ``grid_sample`` expects).
        """
        e = self.bound_radius if extent is None else float(extent)
        key = ("grid", int(resolution), e)
        if key not in self._tables:
            lin = torch.linspace(-e, e, resolution)
            zz, yy, xx = torch.meshgrid(lin, lin, lin, indexing="ij")
            self._tables[key] = self.sdf(torch.stack((xx, yy, zz), -1))
        return self._tables[key]

    def member_local(self, m: int, p: torch.Tensor) -> torch.Tensor:
        """Points ``p`` (M, 3) in the local frame of member ``m``'s first primitive."""
        return self._members[m][0].local(p)
