"""Reading the SOF training layout (multi-view label maps with their cameras) and sampling rays.

Layout (what ``sofgan-lab synth scans`` writes, and the official SOF data)::

    ROOT/index.json              optional: "names", "camera" ("orthographic"|"perspective"),
                                 "pixel_offset", "seed", "size", ...
    ROOT/<instance>/seg_XX.png   8-bit label maps, SOF-20 ids; XX = view index 0..N-1
    ROOT/<instance>/cam2world.npy  (N, 4, 4) OpenCV cam2world (view XX uses row XX)
    ROOT/<instance>/intrinsic.npy  (N, 3, 3), (1, 3, 3) or (3, 3)

Every view keeps its own pose: the label map ``seg_XX.png`` is always paired with row ``XX`` of
``cam2world.npy`` (the official loader shuffles the images without their poses; we do not).
Without ``index.json`` the instances are the sub-folders in sorted order, the camera model is
orthographic and pixels are sampled at their centres (``pixel_offset = 0.5``).
"""
from __future__ import annotations

import json
import logging
import numbers
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from ..images import read_image
from ..cameras import Camera
from ..labels import NUM_SOF_CLASSES

__all__ = ["SOFScanDataset", "RayBatch", "ViewSplit"]

log = logging.getLogger(__name__)

_SEG = re.compile(r"^seg_(\d+)\.png$")
_ORTHONORMAL_TOL = 1e-3


@dataclass(frozen=True)
class RayBatch:
    """Rays sampled from B (instance, view) pairs, R rays each.

    Attributes:
        instance: (B,) int64 instance index (row of the model's latent table).
        view: (B,) int64 view index within the instance.
        pixels: (B, R) int64 flat pixel index ``row * W + col``.
        origins: (B, R, 3) float32 world ray origins.
        directions: (B, R, 3) float32 unit ray directions.
        labels: (B, R) int64 target SOF-20 ids.
        cam2world: (B, 4, 4) float32 the views' cameras (for camera-space depth).
    """

    instance: torch.Tensor
    view: torch.Tensor
    pixels: torch.Tensor
    origins: torch.Tensor
    directions: torch.Tensor
    labels: torch.Tensor
    cam2world: torch.Tensor

    def to(self, device: Any) -> "RayBatch":
        return RayBatch(**{k: getattr(self, k).to(device) for k in self.__dataclass_fields__})

    def depth(self, points: torch.Tensor) -> torch.Tensor:
        """Camera-space z (B, R) of world ``points`` (B, R, 3) in each ray's camera."""
        pos = self.cam2world[:, None, :3, 3]
        fwd = self.cam2world[:, None, :3, 2]
        return ((points - pos.to(points.dtype)) * fwd.to(points.dtype)).sum(-1)


@dataclass(frozen=True)
class ViewSplit:
    """Per-instance view indices: ``train[i]`` and ``heldout[i]`` (sorted tuples, disjoint)."""

    train: tuple[tuple[int, ...], ...]
    heldout: tuple[tuple[int, ...], ...]

    def to_dict(self) -> dict:
        return {"train": [list(t) for t in self.train], "heldout": [list(h) for h in self.heldout]}


def _err(path: Path | str, message: str) -> ValueError:
    return ValueError(f"root: {path}: {message}")


class SOFScanDataset:
    """Multi-view SOF-20 label maps with their cameras (see the module docstring for the layout).

    Args:
        root: the dataset folder.
        instances: which instances to use: ``None`` (all, in index order), an int n (the first n),
            or a sequence of instance names (str) or positions (int).
        views: which views to keep in every instance: ``None`` (all), an int n (the first n) or a
            sequence of view indices (the ``XX`` of ``seg_XX.png``). Afterwards views are addressed
            by their position ``0..num_views(i)-1`` (see :meth:`view_id`).
        orthographic: override the camera model of ``index.json`` (``None``: use it; without
            ``index.json`` the default is orthographic).
        preload: ``True`` reads every label map into memory as uint8 up front (7808 maps of 128²
            are 128 MB) and validates them all; ``False`` reads each map when it is used
            (headers are still checked up front for the image size).

    Raises:
        ValueError: naming the offending file: missing ``cam2world.npy``/``intrinsic.npy``, a
            count mismatch between ``seg_XX.png`` files and poses, a non-orthonormal rotation,
            a label >= 20, a multi-channel image, or images of different sizes.
    """

    def __init__(self, root: str | Path, *, instances: int | Sequence[str | int] | None = None,
                 views: int | Sequence[int] | None = None, orthographic: bool | None = None,
                 preload: bool = True):
        self.root = Path(root)
        if not self.root.is_dir():
            raise ValueError(f"root: {self.root} is not a folder")
        if orthographic is not None and not isinstance(orthographic, bool):
            raise TypeError(f"orthographic: expected a bool or None, got {type(orthographic).__name__}")
        if not isinstance(preload, bool):
            raise TypeError(f"preload: expected a bool, got {type(preload).__name__}")
        index_path = self.root / "index.json"
        self.index: dict = {}
        if index_path.is_file():
            try:
                self.index = json.loads(index_path.read_text())
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise _err(index_path, f"not valid JSON ({exc})") from None
            if not isinstance(self.index, dict):
                raise _err(index_path, "expected a JSON object")
        camera = self.index.get("camera", "orthographic")
        if camera not in ("orthographic", "perspective"):
            raise _err(index_path, f"'camera' must be 'orthographic' or 'perspective', got {camera!r}")
        self.orthographic = (camera == "orthographic") if orthographic is None else orthographic
        po = self.index.get("pixel_offset", 0.5)
        if not isinstance(po, numbers.Real) or isinstance(po, bool):
            raise _err(index_path, f"'pixel_offset' must be a number, got {po!r}")
        self.pixel_offset = float(po)
        self.preload = preload

        all_names = self._instance_names(index_path)
        self.instance_names: tuple[str, ...] = self._select_instances(all_names, instances)
        self._views_arg = views

        self._files: list[list[Path]] = []
        self._view_ids: list[tuple[int, ...]] = []
        self._c2w: list[torch.Tensor] = []
        self._K: list[torch.Tensor] = []
        self._maps: list[np.ndarray | None] = []
        size: tuple[int, int] | None = None
        first_file: Path | None = None
        for name in self.instance_names:
            files, ids, c2w, K = self._read_instance(self.root / name, views)
            for f in files:
                with read_image(f, "root", header_only=True) as im:
                    hw = (im.height, im.width)
                    bands, mode = len(im.getbands()), im.mode
                if bands != 1:
                    raise _err(f, f"expected a single-channel 8-bit label map, got mode {mode!r}")
                if size is None:
                    size, first_file = hw, f
                elif hw != size:
                    raise _err(f, f"image size {hw[0]}x{hw[1]} (HxW) differs from {size[0]}x{size[1]} "
                                  f"of {first_file}")
            self._files.append(files)
            self._view_ids.append(ids)
            self._c2w.append(c2w)
            self._K.append(K)
            self._maps.append(np.stack([self._read_map(f) for f in files]) if preload else None)
        assert size is not None
        self.image_size: tuple[int, int] = size
        log.info("SOF scans: %d instances, %d views, %dx%d, %s, from %s", len(self), self.total_views,
                 size[0], size[1], "orthographic" if self.orthographic else "perspective", self.root)

    # ------------------------------------------------------------------ reading
    def _instance_names(self, index_path: Path) -> list[str]:
        names = self.index.get("names")
        if names is not None:
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                raise _err(index_path, "'names' must be a list of folder names")
            for n in names:
                if not (self.root / n).is_dir():
                    raise _err(self.root / n, "listed in index.json but missing")
        else:
            names = sorted(p.name for p in self.root.iterdir()
                           if p.is_dir() and not p.name.startswith(".")
                           and ((p / "cam2world.npy").exists() or any(p.glob("seg_*.png"))))
        if not names:
            raise ValueError(f"root: {self.root} holds no instance folders (folders with seg_XX.png and "
                             "cam2world.npy)")
        return names

    @staticmethod
    def _select_instances(names: list[str], instances) -> tuple[str, ...]:
        if instances is None:
            return tuple(names)
        if isinstance(instances, numbers.Integral) and not isinstance(instances, bool):
            if not 1 <= instances <= len(names):
                raise ValueError(f"instances: expected 1..{len(names)}, got {instances}")
            return tuple(names[:int(instances)])
        if isinstance(instances, (str, bytes)) or not isinstance(instances, Sequence) or not instances:
            raise TypeError(f"instances: expected None, an int or a non-empty sequence of names/positions, "
                            f"got {instances!r}")
        out = []
        for x in instances:
            if isinstance(x, str):
                if x not in names:
                    raise ValueError(f"instances: unknown instance {x!r}; known: {names[:10]}...")
                out.append(x)
            elif isinstance(x, numbers.Integral) and not isinstance(x, bool):
                if not 0 <= x < len(names):
                    raise ValueError(f"instances: position {x} out of range 0..{len(names) - 1}")
                out.append(names[int(x)])
            else:
                raise TypeError(f"instances: expected names or positions, got {x!r}")
        if len(set(out)) != len(out):
            raise ValueError(f"instances: duplicates in {list(instances)}")
        return tuple(out)

    def _read_instance(self, d: Path, views):
        if not d.is_dir():
            raise _err(d, "instance folder is missing")
        segs = {}
        for p in d.iterdir():
            m = _SEG.match(p.name)
            if m:
                segs[int(m.group(1))] = p
        if not segs:
            raise _err(d, "holds no seg_XX.png label maps")
        c2w_path, k_path = d / "cam2world.npy", d / "intrinsic.npy"
        for p in (c2w_path, k_path):
            if not p.is_file():
                raise _err(p, "is missing (every instance needs seg_XX.png, cam2world.npy and intrinsic.npy)")
        c2w = self._load_npy(c2w_path)
        K = self._load_npy(k_path)
        n = len(segs)
        if c2w.ndim != 3 or c2w.shape[1:] != (4, 4):
            raise _err(c2w_path, f"expected shape (N, 4, 4), got {c2w.shape}")
        if c2w.shape[0] != n:
            raise _err(c2w_path, f"holds {c2w.shape[0]} poses but the folder has {n} seg_XX.png label maps")
        if sorted(segs) != list(range(n)):
            missing = sorted(set(range(n)) - set(segs))
            extra = sorted(set(segs) - set(range(n)))
            raise _err(d, f"seg_XX.png view indices must be 0..{n - 1} (one per pose); missing {missing[:5]}, "
                          f"unexpected {[segs[e].name for e in extra[:5]]}")
        if K.shape == (3, 3):
            K = np.broadcast_to(K, (n, 3, 3))
        elif K.ndim == 3 and K.shape[1:] == (3, 3) and K.shape[0] in (1, n):
            K = np.broadcast_to(K, (n, 3, 3))
        else:
            raise _err(k_path, f"expected shape (3, 3), (1, 3, 3) or ({n}, 3, 3) (one per seg_XX.png), "
                               f"got {K.shape}")
        for arr, p in ((c2w, c2w_path), (K, k_path)):
            if not np.isfinite(arr).all():
                raise _err(p, "contains non-finite values")
        R = c2w[:, :3, :3].astype(np.float64)
        err = np.abs(np.einsum("nji,njk->nik", R, R) - np.eye(3)).max(axis=(1, 2))
        det = np.linalg.det(R)
        bad = np.flatnonzero((err > _ORTHONORMAL_TOL) | (det <= 0))
        if bad.size:
            v = int(bad[0])
            raise _err(c2w_path, f"rotation of view {v} is not orthonormal with determinant +1 "
                                 f"(max |R^T R - I| = {err[v]:.3g}, det = {det[v]:.3g})")
        if np.abs(c2w[:, 3] - np.array([0, 0, 0, 1])).max() > 1e-6:
            raise _err(c2w_path, "last row of every pose must be (0, 0, 0, 1)")
        if (K[:, 0, 0] <= 0).any() or (K[:, 1, 1] <= 0).any():
            raise _err(k_path, "fx and fy must be > 0")
        ids = self._select_views(n, views, d)
        files = [segs[v] for v in ids]
        sel = list(ids)
        return (files, tuple(ids), torch.from_numpy(np.ascontiguousarray(c2w[sel], dtype=np.float32)),
                torch.from_numpy(np.ascontiguousarray(K[sel], dtype=np.float32)))

    @staticmethod
    def _select_views(n: int, views, d: Path) -> tuple[int, ...]:
        if views is None:
            return tuple(range(n))
        if isinstance(views, numbers.Integral) and not isinstance(views, bool):
            if not 1 <= views <= n:
                raise ValueError(f"views: expected 1..{n} (the views of {d}), got {views}")
            return tuple(range(int(views)))
        if isinstance(views, (str, bytes)) or not isinstance(views, Sequence) or not views:
            raise TypeError(f"views: expected None, an int or a non-empty sequence of view indices, got {views!r}")
        out = []
        for v in views:
            if isinstance(v, bool) or not isinstance(v, numbers.Integral) or not 0 <= v < n:
                raise ValueError(f"views: expected view indices in 0..{n - 1} (the views of {d}), got {v!r}")
            out.append(int(v))
        if len(set(out)) != len(out):
            raise ValueError(f"views: duplicates in {list(views)}")
        return tuple(out)

    @staticmethod
    def _load_npy(path: Path) -> np.ndarray:
        try:
            arr = np.load(path, allow_pickle=False)
        except Exception as exc:  # corrupt or pickled files
            raise _err(path, f"cannot be read as a numeric .npy array ({exc})") from None
        if not np.issubdtype(arr.dtype, np.number):
            raise _err(path, f"expected a numeric array, got dtype {arr.dtype}")
        return arr

    def _read_map(self, path: Path) -> np.ndarray:
        with read_image(path, "root") as im:
            if len(im.getbands()) != 1:
                raise _err(path, f"expected a single-channel 8-bit label map, got mode {im.mode!r}")
            arr = np.asarray(im)
        if arr.shape != getattr(self, "image_size", arr.shape):
            raise _err(path, f"image size {arr.shape} differs from the dataset's {self.image_size}")
        if arr.dtype != np.uint8:
            if arr.min() < 0 or arr.max() > 255:
                raise _err(path, f"expected 8-bit labels, got values {arr.min()}..{arr.max()}")
            arr = arr.astype(np.uint8)
        if arr.max() >= NUM_SOF_CLASSES:
            bad = np.unique(arr[arr >= NUM_SOF_CLASSES])[:10].tolist()
            raise _err(path, f"labels must be SOF-20 ids 0..{NUM_SOF_CLASSES - 1}, got {bad}")
        return arr

    # ------------------------------------------------------------------ access
    def __len__(self) -> int:
        """Number of instances."""
        return len(self.instance_names)

    def __repr__(self) -> str:
        return (f"SOFScanDataset({str(self.root)!r}, instances={len(self)}, views={self.total_views}, "
                f"size={self.image_size}, {'orthographic' if self.orthographic else 'perspective'})")

    def _check_i(self, i: int) -> int:
        if isinstance(i, bool) or not isinstance(i, (numbers.Integral, torch.Tensor, np.integer)):
            raise TypeError(f"i: expected an instance index, got {type(i).__name__}")
        i = int(i)
        if not 0 <= i < len(self):
            raise IndexError(f"i: instance {i} out of range 0..{len(self) - 1}")
        return i

    def _check_v(self, i: int, v: int) -> int:
        v = int(v)
        if not 0 <= v < self.num_views(i):
            raise IndexError(f"v: view {v} out of range 0..{self.num_views(i) - 1} of instance {i}")
        return v

    def num_views(self, i: int) -> int:
        """Number of (kept) views of instance ``i``."""
        return len(self._view_ids[self._check_i(i)])

    @property
    def total_views(self) -> int:
        return sum(len(v) for v in self._view_ids)

    def view_id(self, i: int, v: int) -> int:
        """The file index XX (``seg_XX.png``, row of ``cam2world.npy``) of view position ``v``."""
        i = self._check_i(i)
        return self._view_ids[i][self._check_v(i, v)]

    def label_file(self, i: int, v: int) -> Path:
        i = self._check_i(i)
        return self._files[i][self._check_v(i, v)]

    def camera(self, i: int, v: int) -> Camera:
        """The camera (batch 1, float32, CPU) of view ``v`` of instance ``i``."""
        i = self._check_i(i)
        v = self._check_v(i, v)
        return Camera(cam2world=self._c2w[i][v:v + 1], intrinsics=self._K[i][v:v + 1],
                      image_size=self.image_size, orthographic=self.orthographic)

    def cameras(self, i: int, views: Sequence[int] | None = None) -> Camera:
        """The cameras (batch len(views)) of instance ``i`` (default: all its views)."""
        i = self._check_i(i)
        sel = list(range(self.num_views(i))) if views is None else [self._check_v(i, v) for v in views]
        return Camera(cam2world=self._c2w[i][sel], intrinsics=self._K[i][sel],
                      image_size=self.image_size, orthographic=self.orthographic)

    def _map_u8(self, i: int, v: int) -> np.ndarray:
        m = self._maps[i]
        return m[v] if m is not None else self._read_map(self._files[i][v])

    def labels(self, i: int, v: int) -> torch.Tensor:
        """(H, W) int64 SOF-20 ids of view ``v`` of instance ``i``."""
        i = self._check_i(i)
        v = self._check_v(i, v)
        return torch.from_numpy(self._map_u8(i, v).astype(np.int64))

    def attributes(self, i: int) -> dict | None:
        """The instance's ``attributes.json`` (synthetic data), or None."""
        p = self.root / self.instance_names[self._check_i(i)] / "attributes.json"
        return json.loads(p.read_text()) if p.is_file() else None

    # ------------------------------------------------------------------ splits and rays
    def split_views(self, holdout: int, seed: int = 0) -> ViewSplit:
        """Hold out ``holdout`` random views of every instance (the same seed gives the same split).

        Instance ``i``'s held-out views are the first ``holdout`` entries of a permutation drawn
        from ``torch.Generator().manual_seed(seed)``, instance by instance in order."""
        if isinstance(holdout, bool) or not isinstance(holdout, numbers.Integral) or holdout < 0:
            raise ValueError(f"holdout: expected an integer >= 0, got {holdout!r}")
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
            raise TypeError(f"seed: expected an int, got {type(seed).__name__}")
        fewest = min(self.num_views(i) for i in range(len(self)))
        if holdout >= fewest:
            raise ValueError(f"holdout: expected fewer than {fewest} views (the fewest of any instance, "
                             f"leaving at least one to train on), got {holdout}")
        g = torch.Generator().manual_seed(int(seed))
        train, held = [], []
        for i in range(len(self)):
            perm = torch.randperm(self.num_views(i), generator=g).tolist()
            held.append(tuple(sorted(perm[:holdout])))
            train.append(tuple(sorted(perm[holdout:])))
        return ViewSplit(tuple(train), tuple(held))

    def sample_rays(self, batch_views: int, rays_per_view: int | None, generator: torch.Generator, *,
                    views: Sequence[Sequence[int]] | ViewSplit | None = None,
                    whole_images: bool = False, balanced_fraction: float = 0.0) -> RayBatch:
        """Draw ``batch_views`` random (instance, view) pairs and ``rays_per_view`` random pixels of each.

        Args:
            batch_views: B >= 1 pairs, drawn uniformly (with replacement) among the allowed views.
            rays_per_view: R >= 1 pixels per view, uniformly with replacement; ignored with
                ``whole_images`` (then R = H·W, every pixel in row-major order).
            generator: a CPU ``torch.Generator``; the same state gives the same batch, bit for bit.
            views: allowed views per instance (``views[i]`` view positions), or a :class:`ViewSplit`
                (its ``train`` views); ``None``: all views.
            whole_images: take every pixel of each sampled view.
            balanced_fraction: the last ``round(R * balanced_fraction)`` pixels of each view are
                drawn (with replacement) with weight ``1 / sqrt(n_c)``, ``n_c`` the pixel count of the
                pixel's class in that view, so that small classes (eyes, brows, earrings) are seen
                far more often than uniform sampling shows them. 0 = uniform (the release).

        Pixels are sampled at ``(col + pixel_offset, row + pixel_offset)`` with the dataset's
        ``pixel_offset`` (index.json; 0.5 = centres). Returns a :class:`RayBatch` on the CPU.
        """
        if isinstance(batch_views, bool) or not isinstance(batch_views, numbers.Integral) or batch_views < 1:
            raise ValueError(f"batch_views: expected an integer >= 1, got {batch_views!r}")
        if not whole_images and (isinstance(rays_per_view, bool) or not isinstance(rays_per_view, numbers.Integral)
                                 or rays_per_view < 1):
            raise ValueError(f"rays_per_view: expected an integer >= 1, got {rays_per_view!r}")
        if not isinstance(generator, torch.Generator) or generator.device.type != "cpu":
            raise TypeError(f"generator: expected a CPU torch.Generator, got {generator!r}")
        pairs = self._pairs(views)
        H, W = self.image_size
        pick = torch.randint(len(pairs), (int(batch_views),), generator=generator)
        sel = pairs[pick]  # (B, 2)
        inst, view = sel[:, 0].contiguous(), sel[:, 1].contiguous()
        B = int(batch_views)
        if not (isinstance(balanced_fraction, (int, float)) and 0.0 <= balanced_fraction <= 1.0):
            raise ValueError(f"balanced_fraction: expected a number in [0, 1], got {balanced_fraction!r}")
        maps = torch.from_numpy(np.stack([self._map_u8(i, v).reshape(-1)
                                          for i, v in zip(inst.tolist(), view.tolist())]).astype(np.int64))
        if whole_images:
            pix = torch.arange(H * W).expand(B, H * W).contiguous()
        else:
            pix = torch.randint(H * W, (B, int(rays_per_view)), generator=generator)
            k = int(round(int(rays_per_view) * balanced_fraction))
            if k:
                counts = torch.zeros(B, NUM_SOF_CLASSES, dtype=torch.float32)
                counts.scatter_add_(1, maps, torch.ones_like(maps, dtype=torch.float32))
                weights = counts.gather(1, maps).rsqrt()
                pix[:, pix.shape[1] - k:] = torch.multinomial(weights, k, replacement=True, generator=generator)
        c2w = torch.stack([self._c2w[i][v] for i, v in zip(inst.tolist(), view.tolist())])
        K = torch.stack([self._K[i][v] for i, v in zip(inst.tolist(), view.tolist())])
        origins, directions = self._rays(c2w, K, pix, W)
        labels = maps.gather(1, pix)
        return RayBatch(instance=inst, view=view, pixels=pix, origins=origins, directions=directions,
                        labels=labels, cam2world=c2w)

    def _pairs(self, views) -> torch.Tensor:
        key = id(views) if views is not None else None
        cache = getattr(self, "_pairs_cache", None)
        if cache is not None and cache[0] == key and cache[1] is views:
            return cache[2]
        if isinstance(views, ViewSplit):
            allowed = views.train
        elif views is None:
            allowed = [range(self.num_views(i)) for i in range(len(self))]
        else:
            allowed = views
        if len(allowed) != len(self):
            raise ValueError(f"views: expected one list of views per instance ({len(self)}), got {len(allowed)}")
        pairs = [(i, self._check_v(i, v)) for i in range(len(self)) for v in allowed[i]]
        if not pairs:
            raise ValueError("views: no views to sample from")
        t = torch.tensor(pairs, dtype=torch.int64)
        self._pairs_cache = (key, views, t)
        return t

    def _rays(self, c2w: torch.Tensor, K: torch.Tensor, pix: torch.Tensor, W: int):
        """Rays through flat pixels ``pix`` (B, R) of cameras (B, 4, 4)/(B, 3, 3), as :meth:`Camera.rays`."""
        row = torch.div(pix, W, rounding_mode="floor").to(torch.float32)
        col = (pix % W).to(torch.float32)
        x = (col + self.pixel_offset - K[:, None, 0, 2]) / K[:, None, 0, 0]
        y = (row + self.pixel_offset - K[:, None, 1, 2]) / K[:, None, 1, 1]
        R = c2w[:, :3, :3]
        pos = c2w[:, None, :3, 3]
        if self.orthographic:
            origins = pos + x[..., None] * R[:, None, :, 0] + y[..., None] * R[:, None, :, 1]
            directions = R[:, None, :, 2].expand_as(origins).contiguous()
        else:
            d = x[..., None] * R[:, None, :, 0] + y[..., None] * R[:, None, :, 1] + R[:, None, :, 2]
            directions = d / d.norm(dim=-1, keepdim=True)
            origins = pos.expand_as(directions).contiguous()
        return origins.contiguous(), directions.contiguous()
