"""The geometry space: sampling, principal and attribute directions, edits, interpolation.

Paper §6.4 ("Shape space exploration"): new shapes are drawn from a Bayesian Gaussian mixture with
a Dirichlet-process prior fitted to the learned geometry codes z_g; attribute edits follow
directions in z_g space; an edit can be restricted to the regions it concerns (the release keeps
every label outside the facial ids from the original render while editing expressions).

Codes are ``(N, D)`` float arrays/tensors (one row per shape). Directions are unit vectors
``(D,)``; an edit's ``amount`` is in standard deviations of the fitted codes along the direction.
Nothing here is pickled: :meth:`GeometrySpace.save` writes ``space.npz`` + ``space.json``.
"""
from __future__ import annotations

import json
import logging
import math
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from .._validate import ArgumentTypeError, check_finite_tensor, check_number, describe

__all__ = ["GeometrySpace", "REGIONS", "region_ids", "interpolate", "restricted_edit", "EditResult"]

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
#: Most codes one :meth:`GeometrySpace.sample` call draws.
MAX_SAMPLES = 2 ** 20
#: Largest :meth:`GeometrySpace.sample` temperature (draws 100x the fitted spread from the means).
MAX_TEMPERATURE = 100.0
#: Largest ``|amount|`` of :meth:`GeometrySpace.edit`, in standard deviations of the fitted codes.
MAX_EDIT_AMOUNT = 1000.0

#: Named regions (SOF-20 ids) for region-restricted edits. "face" is the release's rule for
#: expression edits: labels outside ids 2..10 keep their original value.
REGIONS: dict[str, tuple[int, ...]] = {
    "face": tuple(range(2, 11)),
    "mouth": (8, 9, 10),
    "eyes": (4, 5),
    "brows": (2, 3),
    "nose": (6, 7),
    "ears": (11, 12),
    "hair": (18,),
    "skin": (1,),
}


def region_ids(regions: str | int | Sequence[int | str]) -> tuple[int, ...]:
    """SOF-20 ids of ``regions``: a name of :data:`REGIONS`, an id, or a list of either."""
    if isinstance(regions, (str, int, np.integer)):
        items = [regions]
    else:
        try:
            items = list(regions)
        except TypeError:  # a non-iterable of the wrong type (e.g. 2.0): reported below, naming regions
            items = [regions]
    ids: set[int] = set()
    for r in items:
        if isinstance(r, str):
            if r not in REGIONS:
                raise ValueError(f"regions: unknown region {r!r}; known: {sorted(REGIONS)}")
            ids.update(REGIONS[r])
        elif isinstance(r, (int, np.integer)) and not isinstance(r, bool) and 0 <= int(r) < 20:
            ids.add(int(r))
        else:
            raise ValueError(f"regions: expected region names or SOF-20 ids (0..19), got {r!r}")
    if not ids:
        raise ValueError("regions: empty")
    return tuple(sorted(ids))


def _codes(x: Any, name: str, dim: int | None = None) -> np.ndarray:
    a = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    if a.dtype.kind not in "fiu":
        raise TypeError(f"{name}: expected real numbers, got dtype {a.dtype}")
    a = a.astype(np.float64)
    if a.ndim == 1:
        a = a[None]
    if a.ndim != 2 or (dim is not None and a.shape[1] != dim):
        want = f"(N, {dim})" if dim is not None else "(N, D)"
        raise ValueError(f"{name}: expected shape {want}, got {tuple(a.shape)}")
    if not np.isfinite(a).all():
        raise ValueError(f"{name}: contains non-finite values (NaN or inf) in {int((~np.isfinite(a)).any(1).sum())} row(s)")
    return a


def _rng(seed: int | None, generator: torch.Generator | None) -> np.random.Generator:
    if generator is not None:
        if not isinstance(generator, torch.Generator):
            raise TypeError(f"generator: expected a torch.Generator, got {type(generator).__name__}")
        seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    elif seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
        raise ValueError(f"seed: expected a non-negative integer, got {seed!r}")
    return np.random.default_rng(seed)


def interpolate(z0: Any, z1: Any, n: int, mode: str = "linear") -> torch.Tensor:
    """``n`` codes from ``z0`` to ``z1`` (both included): ``(n, D)`` float32.

    ``mode="linear"`` or ``"slerp"`` (spherical: along the great circle, with the norm interpolated
    linearly; falls back to linear for (anti)parallel codes)."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n: expected an integer >= 1, got {n!r}")
    a = _codes(z0, "z0")[0]
    b = _codes(z1, "z1", dim=a.shape[0])[0]
    t = np.linspace(0.0, 1.0, int(n))[:, None] if n > 1 else np.zeros((1, 1))
    if mode == "linear":
        out = (1 - t) * a + t * b
    elif mode == "slerp":
        na, nb = np.linalg.norm(a), np.linalg.norm(b)
        ua, ub = a / max(na, 1e-12), b / max(nb, 1e-12)
        omega = math.acos(float(np.clip(ua @ ub, -1.0, 1.0)))
        if omega < 1e-6 or math.pi - omega < 1e-6:
            out = (1 - t) * a + t * b
        else:
            dirs = (np.sin((1 - t) * omega) * ua + np.sin(t * omega) * ub) / math.sin(omega)
            out = dirs * ((1 - t) * na + t * nb)
    else:
        raise ValueError(f"mode: expected 'linear' or 'slerp', got {mode!r}")
    return torch.from_numpy(out.astype(np.float32))


class GeometrySpace:
    """A fitted geometry space: Bayesian GMM, PCA and attribute directions over codes (N, D).

    Build with :meth:`fit`; ``save``/``load`` round-trip it exactly."""

    def __init__(self, *, codes, weights, means, covariances, pca_mean, pca_components, pca_variance,
                 directions: Mapping[str, np.ndarray] | None = None, attributes: Mapping[str, np.ndarray] | None = None,
                 binary: Sequence[str] = (), meta: dict | None = None):
        self.codes = np.asarray(codes, np.float64)
        self.weights = np.asarray(weights, np.float64)
        self.means = np.asarray(means, np.float64)
        self.covariances = np.asarray(covariances, np.float64)
        self.pca_mean = np.asarray(pca_mean, np.float64)
        self.pca_components = np.asarray(pca_components, np.float64)
        self.pca_variance = np.asarray(pca_variance, np.float64)
        self.attribute_directions = {k: np.asarray(v, np.float64) for k, v in (directions or {}).items()}
        self.attributes = {k: np.asarray(v, np.float64) for k, v in (attributes or {}).items()}
        self.binary = tuple(binary)
        self.meta = dict(meta or {})
        self._chol = np.linalg.cholesky(self.covariances + 1e-9 * np.eye(self.dim))

    # ------------------------------------------------------------------ fitting
    @classmethod
    def fit(cls, codes: Any, attributes: Mapping[str, Sequence[float]] | None = None, *, n_components: int = 16,
            covariance: str = "full", seed: int = 0, max_iter: int = 500) -> "GeometrySpace":
        """Fit the mixture (scikit-learn's ``BayesianGaussianMixture`` with a Dirichlet-process
        prior), the PCA, and one direction per attribute (linear regression for continuous
        attributes, a logistic classifier's normal for binary ones, oriented so that the attribute
        increases along it)."""
        from sklearn.decomposition import PCA
        from sklearn.linear_model import LinearRegression, LogisticRegression
        from sklearn.mixture import BayesianGaussianMixture

        z = _codes(codes, "codes")
        n, d = z.shape
        if isinstance(n_components, bool) or not isinstance(n_components, (int, np.integer)) or n_components < 1:
            raise ValueError(f"n_components: expected an integer >= 1, got {n_components!r}")
        if n < max(2, n_components):
            raise ValueError(f"codes: {n} codes are too few for {n_components} mixture components "
                             f"(need at least {max(2, n_components)})")
        if covariance != "full":
            raise ValueError(f"covariance: only 'full' is supported, got {covariance!r}")
        gmm = BayesianGaussianMixture(n_components=int(n_components), covariance_type="full",
                                      weight_concentration_prior_type="dirichlet_process",
                                      max_iter=max_iter, random_state=seed, reg_covar=1e-6)
        gmm.fit(z)
        pca = PCA(n_components=min(n, d)).fit(z)
        attrs: dict[str, np.ndarray] = {}
        dirs: dict[str, np.ndarray] = {}
        binary = []
        for name, values in (attributes or {}).items():
            y = np.asarray(values, np.float64).reshape(-1)
            if y.shape[0] != n:
                raise ValueError(f"attributes[{name!r}]: expected {n} values (one per code), got {y.shape[0]}")
            if not np.isfinite(y).all():
                raise ValueError(f"attributes[{name!r}]: contains non-finite values")
            attrs[name] = y
            if np.all(np.isin(y, (0.0, 1.0))):
                binary.append(name)
                if len(np.unique(y)) < 2:
                    log.warning("attribute %r has one value only; no direction", name)
                    continue
                w = LogisticRegression(C=1.0, max_iter=2000).fit(z, y.astype(int)).coef_[0]
            else:
                w = LinearRegression().fit(z, y).coef_
            norm = np.linalg.norm(w)
            if norm > 0:
                dirs[name] = w / norm
        log.info("geometry space: %d codes of dim %d, %d mixture components with weight > 1%%",
                 n, d, int((gmm.weights_ > 0.01).sum()))
        return cls(codes=z, weights=gmm.weights_, means=gmm.means_, covariances=gmm.covariances_,
                   pca_mean=pca.mean_, pca_components=pca.components_, pca_variance=pca.explained_variance_,
                   directions=dirs, attributes=attrs, binary=binary,
                   meta={"n_components": int(n_components), "covariance": covariance, "seed": int(seed)})

    # ------------------------------------------------------------------ properties
    @property
    def dim(self) -> int:
        return int(self.codes.shape[1])

    @property
    def num_components(self) -> int:
        return int(self.weights.shape[0])

    @property
    def explained_variance_ratio(self) -> np.ndarray:
        return self.pca_variance / self.pca_variance.sum()

    @property
    def direction_names(self) -> list[str]:
        return [f"pc{i + 1}" for i in range(self.pca_components.shape[0])] + sorted(self.attribute_directions)

    # ------------------------------------------------------------------ sampling and density
    def sample(self, n: int, *, seed: int | None = None, generator: torch.Generator | None = None,
               component: int | None = None, temperature: float = 1.0) -> torch.Tensor:
        """``n`` codes ``(n, D)`` float32 from the mixture, in random component order.

        ``component`` draws from one component only; ``temperature`` in 0..:data:`MAX_TEMPERATURE` scales
        each draw's deviation from its component mean (0 = the means, 1 = the fitted spread). The same seed gives the
        same codes; components are chosen per sample (not sorted, unlike scikit-learn's sample)."""
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= MAX_SAMPLES:
            raise ValueError(f"n: expected an integer in 1..{MAX_SAMPLES}, got {n!r}")
        temperature = check_number(temperature, "temperature", 0, MAX_TEMPERATURE)
        rng = _rng(seed, generator)
        if component is None:
            comp = rng.choice(self.num_components, size=int(n), p=self.weights / self.weights.sum())
        else:
            if isinstance(component, bool) or not isinstance(component, (int, np.integer)) \
                    or not 0 <= component < self.num_components:
                raise ValueError(f"component: expected an integer in 0..{self.num_components - 1}, got {component!r}")
            comp = np.full(int(n), int(component))
        eps = rng.standard_normal((int(n), self.dim))
        z = self.means[comp] + temperature * np.einsum("nij,nj->ni", self._chol[comp], eps)
        return torch.from_numpy(z.astype(np.float32))

    def log_density(self, z: Any) -> np.ndarray:
        """Log density of the mixture at codes ``z`` (N, D) -> (N,)."""
        x = _codes(z, "z", self.dim)
        logs = []
        for k in range(self.num_components):
            diff = x - self.means[k]
            sol = np.linalg.solve(self._chol[k], diff.T)
            logdet = 2 * np.log(np.diag(self._chol[k])).sum()
            logs.append(np.log(max(self.weights[k], 1e-300)) - 0.5 * ((sol ** 2).sum(0) + logdet
                                                                       + self.dim * math.log(2 * math.pi)))
        logs = np.stack(logs, 1)
        m = logs.max(1, keepdims=True)
        return (m + np.log(np.exp(logs - m).sum(1, keepdims=True)))[:, 0]

    def nearest(self, z: Any, k: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """Indices (N, k) and Euclidean distances (N, k) of the nearest fitted codes."""
        x = _codes(z, "z", self.dim)
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= len(self.codes):
            raise ValueError(f"k: expected an integer in 1..{len(self.codes)}, got {k!r}")
        dist = np.linalg.norm(x[:, None, :] - self.codes[None], axis=-1)
        idx = np.argsort(dist, axis=1, kind="stable")[:, :k]
        return idx, np.take_along_axis(dist, idx, 1)

    # ------------------------------------------------------------------ directions and edits
    def direction(self, name: str) -> torch.Tensor:
        """Unit direction ``(D,)``: ``"pc1"``, ``"pc2"``, ... (1-based principal components) or an
        attribute name given to :meth:`fit`."""
        if not isinstance(name, str):
            raise ArgumentTypeError(f"direction: expected a name ('pc1', 'pc2', ... or an attribute), got "
                                    f"{describe(name)}")
        if name.startswith("pc") and name[2:].isdigit():
            i = int(name[2:])
            if not 1 <= i <= self.pca_components.shape[0]:
                raise ValueError(f"direction: {name!r} is out of range (pc1..pc{self.pca_components.shape[0]})")
            v = self.pca_components[i - 1]
        elif name in self.attribute_directions:
            v = self.attribute_directions[name]
        else:
            raise ValueError(f"direction: unknown direction {name!r}; known: pc1..pc{self.pca_components.shape[0]}"
                             f" and {sorted(self.attribute_directions)}")
        return torch.from_numpy((v / np.linalg.norm(v)).astype(np.float32))

    def direction_std(self, name: str) -> float:
        """Standard deviation of the fitted codes along a direction (the unit of ``amount``)."""
        v = self.direction(name).numpy().astype(np.float64)
        return float((self.codes @ v).std())

    def edit(self, z: Any, direction: str, amount: float) -> torch.Tensor:
        """Move codes ``z`` (N, D) or (D,) by ``amount`` standard deviations along ``direction``
        (``|amount|`` at most :data:`MAX_EDIT_AMOUNT`)."""
        amount = check_number(amount, "amount", -MAX_EDIT_AMOUNT, MAX_EDIT_AMOUNT)
        v = self.direction(direction)
        x = torch.as_tensor(_codes(z, "z", self.dim), dtype=torch.float32)
        check_finite_tensor(x, "z")  # codes beyond float32's range
        out = x + amount * self.direction_std(direction) * v
        if not torch.isfinite(out).all():
            raise ValueError("z: the edited codes overflow float32 (the codes are too large)")
        return out if (isinstance(z, torch.Tensor) and z.dim() == 2) or np.ndim(z) == 2 else out[0]

    def correlation_table(self, n_pcs: int = 10):
        """``|r|`` between each of the first ``n_pcs`` PC scores and each attribute: a DataFrame
        (rows pc1.., columns attributes) with ``top_attribute`` / ``top_r`` columns."""
        import pandas as pd

        if not self.attributes:
            raise ValueError("attributes: the space was fitted without attributes")
        k = min(int(n_pcs), self.pca_components.shape[0])
        scores = (self.codes - self.pca_mean) @ self.pca_components[:k].T
        rows = {}
        for i in range(k):
            s = scores[:, i]
            rows[f"pc{i + 1}"] = {name: (0.0 if y.std() == 0 or s.std() == 0 else abs(float(np.corrcoef(s, y)[0, 1])))
                                  for name, y in self.attributes.items()}
        df = pd.DataFrame(rows).T
        df["top_attribute"] = df.idxmax(axis=1)
        df["top_r"] = df.drop(columns="top_attribute").max(axis=1)
        df.insert(0, "explained_variance", self.explained_variance_ratio[:k])
        return df

    # ------------------------------------------------------------------ persistence
    def save(self, directory: str | Path) -> Path:
        """Write ``space.npz`` (arrays) + ``space.json`` (names, meta) into ``directory``."""
        from ..io.checkpoints import atomic_write_bytes

        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        names = sorted(self.attribute_directions)
        attr_names = sorted(self.attributes)
        arrays = {"codes": self.codes, "weights": self.weights, "means": self.means,
                  "covariances": self.covariances, "pca_mean": self.pca_mean,
                  "pca_components": self.pca_components, "pca_variance": self.pca_variance}
        arrays.update({f"direction/{k}": self.attribute_directions[k] for k in names})
        arrays.update({f"attribute/{k}": self.attributes[k] for k in attr_names})
        import io

        buf = io.BytesIO()
        np.savez(buf, **arrays)
        atomic_write_bytes(d / "space.npz", buf.getvalue())
        meta = {"format": "sofgan-lab/geometry-space", "format_version": FORMAT_VERSION, "directions": names,
                "attributes": attr_names, "binary": list(self.binary), "meta": self.meta}
        atomic_write_bytes(d / "space.json", (json.dumps(meta, indent=2) + "\n").encode())
        return d

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> "GeometrySpace":
        """The same as :meth:`load` (the name every shipped model loads by): ``"demo"`` or a folder."""
        return cls.load(directory)

    @classmethod
    def load(cls, directory: str | Path) -> "GeometrySpace":
        """Read a folder written by :meth:`save` (``allow_pickle=False``); ``"demo"`` loads the
        shipped demo space (``data/demo/geometry_space``)."""
        from ..io.checkpoints import CheckpointError, read_json

        if isinstance(directory, str) and directory == "demo":
            from ..demo import demo_dir

            directory = demo_dir("geometry_space")
        d = Path(directory)
        for f in ("space.npz", "space.json"):
            if not (d / f).is_file():
                raise CheckpointError(f"directory: {d / f} is missing")
        meta = read_json(d / "space.json", "directory")
        if meta.get("format") != "sofgan-lab/geometry-space":
            raise CheckpointError(f"directory: {d / 'space.json'} is not a sofgan-lab geometry space")
        try:
            with np.load(d / "space.npz", allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            detail = " ".join(str(exc).split())[:200] or type(exc).__name__
            raise CheckpointError(f"directory: {d / 'space.npz'} cannot be read, it is not a numpy .npz archive "
                                  f"of arrays (truncated or corrupt?): {detail}") from None
        names = {}
        for key in ("directions", "attributes"):
            names[key] = meta.get(key)
            if not isinstance(names[key], list) or not all(isinstance(n, str) for n in names[key]):
                raise CheckpointError(f"directory: {d / 'space.json'}: key {key!r} must be a list of names")
        wanted = ["codes", "weights", "means", "covariances", "pca_mean", "pca_components", "pca_variance",
                  *(f"direction/{k}" for k in names["directions"]), *(f"attribute/{k}" for k in names["attributes"])]
        absent = [k for k in wanted if k not in arrays]
        if absent:
            raise CheckpointError(f"directory: {d / 'space.npz'} lacks the array {absent[0]!r} that "
                                  f"{d / 'space.json'} names")
        try:
            return cls(codes=arrays["codes"], weights=arrays["weights"], means=arrays["means"],
                       covariances=arrays["covariances"], pca_mean=arrays["pca_mean"],
                       pca_components=arrays["pca_components"], pca_variance=arrays["pca_variance"],
                       directions={k: arrays[f"direction/{k}"] for k in names["directions"]},
                       attributes={k: arrays[f"attribute/{k}"] for k in names["attributes"]},
                       binary=meta.get("binary", ()), meta=meta.get("meta", {}))
        except np.linalg.LinAlgError:
            raise CheckpointError(f"directory: {d / 'space.npz'}: key 'covariances' holds a matrix that is not "
                                  "positive definite") from None


@dataclass(frozen=True)
class EditResult:
    """Label maps (B, H, W) SOF-20: ``original`` (before), ``edited`` (unrestricted), ``restricted``
    (edited inside the regions, original outside); ``leakage_unrestricted`` / ``leakage_restricted``:
    fraction of pixels outside the regions (in the original map) that changed; ``depth`` (B, H, W)
    and ``points`` (B, H, W, 3) of the restricted map's surface (each pixel's from the rendering its
    label comes from)."""

    original: torch.Tensor
    edited: torch.Tensor
    restricted: torch.Tensor
    leakage_unrestricted: float
    leakage_restricted: float
    depth: torch.Tensor | None = None
    points: torch.Tensor | None = None


def restricted_edit(model, z: Any, z_edited: Any, camera, regions) -> EditResult:
    """Render ``z`` and ``z_edited`` (B, D) through ``camera`` and keep the edit only inside
    ``regions`` (names of :data:`REGIONS` or SOF-20 ids): a pixel takes the edited label where the
    original or the edited label is in the regions, and the original label elsewhere."""
    ids = torch.tensor(region_ids(regions))
    ra = model.render(torch.as_tensor(z, dtype=torch.float32).reshape(-1, model.config.latent_dim), camera)
    rb = model.render(torch.as_tensor(z_edited, dtype=torch.float32).reshape(-1, model.config.latent_dim), camera)
    a, b = ra.labels.cpu(), rb.labels.cpu()
    inside = torch.isin(a, ids) | torch.isin(b, ids)
    restricted = torch.where(inside, b, a)
    depth = torch.where(inside, rb.depth.cpu(), ra.depth.cpu())
    points = torch.where(inside[..., None], rb.points.cpu(), ra.points.cpu())
    outside = ~torch.isin(a, ids)
    n_out = max(int(outside.sum()), 1)
    leak_u = float(((a != b) & outside).sum()) / n_out
    leak_r = float(((a != restricted) & outside & ~inside).sum()) / n_out
    return EditResult(a, b, restricted, leak_u, leak_r, depth, points)
