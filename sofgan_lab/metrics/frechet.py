"""Fréchet distance (FID) and kernel inception distance (KID) between two image sets.

* :func:`frechet_distance` — ``‖μ1 − μ2‖² + tr Σ1 + tr Σ2 − 2 tr (Σ1 Σ2)^{1/2}``. The trace of the
  matrix square root is computed from eigenvalues: with ``S = Σ1^{1/2}`` (symmetric, from ``eigh``
  with negative round-off eigenvalues set to 0), ``Σ1 Σ2`` is similar to the symmetric PSD matrix
  ``S Σ2 S``, so ``tr (Σ1 Σ2)^{1/2} = Σ sqrt(eig(S Σ2 S))``. No complex parts to discard, no
  ``eps·I`` offset needed, exact for singular (rank-deficient) covariances, in float64.
* :class:`FeatureStats` — streaming mean/covariance in float64 (batch-wise merge of means and
  scatter matrices, Chan et al.), optionally keeping the features for KID.
* :func:`kid` — unbiased MMD² with the cubic polynomial kernel ``k(x, y) = (xᵀy / d + 1)³`` averaged
  over random subsets (mean ± standard error over subsets).
* :func:`compute_features` / :func:`fid` — stream images (tensors, iterables of batches, a
  ``SofGAN`` pipeline or a sampler callable) through a :class:`~sofgan_lab.metrics.features.FeatureExtractor`.

FID and KID from one pass: ``s1 = compute_features(real, ext, keep_features=True)``, the same for the
fakes, then ``fid(s1, s2)`` and ``kid(s1, s2)``.

The paper (Fig. 7) reports FID on 50k generated images at truncation 1.0 with the FID Inception;
only such results are marked ``comparable_to_paper`` (FID is biased upwards for small samples).
"""
from __future__ import annotations

import logging
import warnings
from typing import Any, Iterable

import numpy as np
import torch
from tqdm.auto import tqdm

from .features import as_feature_extractor, load_inception
from .results import MetricResult, make_provenance
from .sampling import PipelineSampler, as_image_sampler, check_int, model_name_of, seed_stream

__all__ = ["frechet_distance", "FeatureStats", "kid", "compute_features", "fid", "PAPER_FID_SAMPLES"]

log = logging.getLogger(__name__)

PAPER_FID_SAMPLES = 50_000


# --------------------------------------------------------------------------------------- Fréchet
def _as_f64(x: Any, name: str, ndim: int) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().double().numpy()
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != ndim:
        raise ValueError(f"{name}: expected a {ndim}-D array, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError(f"{name}: contains NaN or infinite values")
    return a


def _check_cov(s: np.ndarray, name: str, d: int) -> np.ndarray:
    if s.shape != (d, d):
        raise ValueError(f"{name}: expected shape ({d}, {d}), got {s.shape}")
    scale = max(float(np.abs(s).max()), 1e-300)
    asym = float(np.abs(s - s.T).max())
    if asym > 1e-6 * scale:
        raise ValueError(f"{name}: not symmetric (max |S - S^T| = {asym:.3g}, max |S| = {scale:.3g})")
    return (s + s.T) / 2


def _psd_sqrt(s: np.ndarray, name: str) -> np.ndarray:
    w, v = np.linalg.eigh(s)
    tol = 1e-6 * max(float(np.abs(w).max()), 1e-300)
    if w.min() < -tol:
        raise ValueError(f"{name}: not positive semi-definite (smallest eigenvalue {w.min():.3g}, largest "
                         f"{w.max():.3g})")
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(mu1: Any, sigma1: Any, mu2: Any, sigma2: Any) -> float:
    """The Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2) (see the module docstring).

    Args:
        mu1, mu2: means ``(D,)``; sigma1, sigma2: covariances ``(D, D)``, symmetric PSD (round-off
            asymmetry and negative eigenvalues down to −1e-6·max are tolerated). numpy or torch.

    Returns:
        The distance (float, >= 0; a round-off negative result is returned as 0).
    """
    m1 = _as_f64(mu1, "mu1", 1)
    m2 = _as_f64(mu2, "mu2", 1)
    if m1.shape != m2.shape:
        raise ValueError(f"mu1, mu2: expected the same shape, got {m1.shape} and {m2.shape}")
    d = m1.shape[0]
    s1 = _check_cov(_as_f64(sigma1, "sigma1", 2), "sigma1", d)
    s2 = _check_cov(_as_f64(sigma2, "sigma2", 2), "sigma2", d)
    r1 = _psd_sqrt(s1, "sigma1")
    _psd_sqrt(s2, "sigma2")  # validation only
    m = r1 @ s2 @ r1
    ev = np.linalg.eigvalsh((m + m.T) / 2)
    tr_covmean = float(np.sqrt(np.clip(ev, 0, None)).sum())
    diff = m1 - m2
    value = float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * tr_covmean)
    if value < 0:
        log.debug("frechet_distance: round-off negative value %.3g clipped to 0", value)
        value = 0.0
    return value


# --------------------------------------------------------------------------------------- statistics
class FeatureStats:
    """Streaming mean and covariance of features in float64.

    Args:
        keep_features: also keep every feature row (needed by :func:`kid`; ``N × D`` float32 memory).

    ``update(feats (B, D))`` merges a batch: the running mean and scatter matrix ``M2 = Σ (x − μ)(x − μ)ᵀ``
    are combined with the batch's by Chan et al.'s pairwise formula (no catastrophic cancellation of
    ``Σ xxᵀ − n μμᵀ``). Arithmetic runs in float64 on the features' device.
    """

    def __init__(self, *, keep_features: bool = False):
        self.n = 0
        self.dim: int | None = None
        self._mean: torch.Tensor | None = None
        self._m2: torch.Tensor | None = None
        self.keep_features = bool(keep_features)
        self._kept: list[torch.Tensor] = []
        #: who made the features: {"name", "pretrained", "paper_feature", "provenance"} (set by
        #: compute_features) or None
        self.source: dict[str, Any] | None = None

    def update(self, feats: Any) -> "FeatureStats":
        x = feats.detach() if isinstance(feats, torch.Tensor) else torch.as_tensor(np.asarray(feats))
        if x.dim() != 2:
            raise ValueError(f"feats: expected (B, D) features, got shape {tuple(x.shape)}")
        if self.dim is not None and x.shape[1] != self.dim:
            raise ValueError(f"feats: expected {self.dim} feature dims, got {x.shape[1]}")
        if x.shape[0] == 0:
            return self
        x = x.double()
        if not torch.isfinite(x).all():
            raise ValueError("feats: contains NaN or infinite values")
        b = x.shape[0]
        mb = x.mean(0)
        c = x - mb
        m2b = c.T @ c
        if self._mean is None:
            self.dim = int(x.shape[1])
            self._mean, self._m2 = mb, m2b
        else:
            mean, m2 = self._mean.to(x.device), self._m2.to(x.device)
            n = self.n
            tot = n + b
            delta = mb - mean
            self._mean = mean + delta * (b / tot)
            self._m2 = m2 + m2b + torch.outer(delta, delta) * (n * b / tot)
        self.n += b
        if self.keep_features:
            self._kept.append(x.float().cpu())
        return self

    def merge(self, other: "FeatureStats") -> "FeatureStats":
        """Add another accumulator's samples (e.g. from another process). Returns self."""
        if not isinstance(other, FeatureStats):
            raise TypeError(f"other: expected a FeatureStats, got {type(other).__name__}")
        if other.n == 0:
            return self
        if self.n == 0:
            self.n, self.dim = other.n, other.dim
            self._mean, self._m2 = other._mean.clone(), other._m2.clone()
            self._kept = list(other._kept)
            return self
        if other.dim != self.dim:
            raise ValueError(f"other: {other.dim} feature dims, this accumulator has {self.dim}")
        n, b = self.n, other.n
        tot = n + b
        delta = other._mean.to(self._mean.device) - self._mean
        self._mean = self._mean + delta * (b / tot)
        self._m2 = self._m2 + other._m2.to(self._m2.device) + torch.outer(delta, delta) * (n * b / tot)
        self.n = tot
        self._kept += other._kept
        return self

    def _require(self, k: int) -> None:
        if self.n < k:
            raise ValueError(f"FeatureStats: needs at least {k} samples, has {self.n}")

    @property
    def mean(self) -> np.ndarray:
        """(D,) float64."""
        self._require(1)
        return self._mean.cpu().numpy()

    @property
    def cov(self) -> np.ndarray:
        """(D, D) float64 unbiased covariance (``M2 / (n − 1)``)."""
        self._require(2)
        return (self._m2 / (self.n - 1)).cpu().numpy()

    @property
    def features(self) -> torch.Tensor:
        """All kept features (N, D) float32 (only with ``keep_features``)."""
        if not self.keep_features:
            raise ValueError("features: this FeatureStats was made with keep_features=False")
        self._require(1)
        return torch.cat(self._kept)

    def __repr__(self) -> str:
        return f"FeatureStats(n={self.n}, dim={self.dim}, keep_features={self.keep_features})"


# --------------------------------------------------------------------------------------- KID
def _feature_matrix(x: Any, name: str) -> np.ndarray:
    if isinstance(x, FeatureStats):
        x = x.features
    a = _as_f64(x, name, 2)
    return a


def kid(feats1: Any, feats2: Any, subsets: int = 100, subset_size: int = 1000, *, seed: int = 0,
        provenance: dict | None = None) -> MetricResult:
    """Kernel inception distance: unbiased MMD² with ``k(x, y) = (xᵀy / d + 1)³``.

    For each of ``subsets`` rounds, ``subset_size`` rows are drawn without replacement from each set
    (``default_rng(seed)``) and

    ``MMD² = Σ_{i≠j} k(x_i, x_j) / (m(m−1)) + Σ_{i≠j} k(y_i, y_j) / (m(m−1)) − 2 Σ_{i,j} k(x_i, y_j) / m²``.

    Args:
        feats1, feats2: ``(N1, D)``, ``(N2, D)`` features (numpy, torch, or a :class:`FeatureStats`
            made with ``keep_features=True``).
        subsets: rounds (>= 1); subset_size: rows per set and round (2 .. min(N1, N2)).

    Returns:
        ``MetricResult("kid")``: mean over subsets, standard error over subsets (``n = subsets``).
    """
    x = _feature_matrix(feats1, "feats1")
    y = _feature_matrix(feats2, "feats2")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"feats1, feats2: expected the same feature dims, got {x.shape[1]} and {y.shape[1]}")
    subsets = check_int(subsets, "subsets")
    subset_size = check_int(subset_size, "subset_size", 2)
    if subset_size > min(len(x), len(y)):
        raise ValueError(f"subset_size: {subset_size} is larger than the smaller feature set ({min(len(x), len(y))} "
                         "rows); lower it")
    d = x.shape[1]
    m = subset_size
    rng = seed_stream(seed)
    vals = np.empty(subsets, dtype=np.float64)
    for s in range(subsets):
        a = x[rng.choice(len(x), m, replace=False)]
        b = y[rng.choice(len(y), m, replace=False)]
        kxx = (a @ a.T / d + 1) ** 3
        kyy = (b @ b.T / d + 1) ** 3
        kxy = (a @ b.T / d + 1) ** 3
        vals[s] = ((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
                   - 2 * kxy.mean())
    prov = dict(provenance or make_provenance(seed=int(seed)))
    prov.setdefault("extras", {})
    prov["extras"] = {**prov["extras"], "subsets": subsets, "subset_size": subset_size, "n1": len(x), "n2": len(y),
                      "kernel": "(x.y/d + 1)^3"}
    return MetricResult.from_scores("kid", vals, provenance=prov, caveats=("KID is not reported in the paper",))


# --------------------------------------------------------------------------------------- streaming
def _batches_of(source: Any, name: str, *, n: int | None, batch: int, seed: int, camera: Any,
                truncation: float, quantize: bool) -> tuple[Iterable[torch.Tensor], int | None, dict]:
    """(iterator over image batches, total count or None, description)."""
    from ..pipeline import SofGAN

    if isinstance(source, torch.Tensor):
        t = source if source.dim() == 4 else source[None]
        if n is not None:
            t = t[:n]
        return (t[i:i + batch] for i in range(0, t.shape[0], batch)), int(t.shape[0]), {"source": "tensor"}
    if isinstance(source, (SofGAN, PipelineSampler)) or (callable(source) and not isinstance(source, (list, tuple))
                                                        and not hasattr(source, "__iter__")):
        if n is None:
            raise ValueError(f"n: required to draw images from a model ({name} is a {type(source).__name__})")
        sampler, desc = as_image_sampler(source, camera=camera, truncation=truncation, quantize=quantize)
        rng = seed_stream(seed)

        def gen():
            done = 0
            while done < n:
                b = min(batch, n - done)
                yield sampler(b, int(rng.integers(0, 2 ** 31 - 1)))
                done += b

        return gen(), n, {**desc, "model": model_name_of(source), "images": "sampler(batch, s), s drawn per batch "
                                                                             "from numpy default_rng(seed)"}
    if hasattr(source, "__iter__"):
        def it():
            count = 0
            for i, x in enumerate(source):
                if not isinstance(x, torch.Tensor):
                    raise TypeError(f"{name}: item {i} is a {type(x).__name__}, expected image tensors (B, 3, H, W)")
                if n is not None and count >= n:
                    return
                if n is not None:
                    x = x[: n - count]
                count += x.shape[0] if x.dim() == 4 else 1
                yield x
        return it(), n, {"source": "iterable"}
    raise TypeError(f"{name}: expected images (N, 3, H, W), an iterable of such batches, a SofGAN pipeline or a "
                    f"sampler callable, got {type(source).__name__}")


@torch.no_grad()
def compute_features(images: Any, extractor: Any, *, n: int | None = None, batch: int = 32, seed: int = 0,
                     keep_features: bool = False, camera: Any = None, truncation: float = 1.0,
                     quantize: bool = True, progress: bool = False, name: str = "images") -> FeatureStats:
    """Features of ``images`` accumulated into a :class:`FeatureStats`.

    ``images``: a float tensor ``(N, 3, H, W)`` in [-1, 1], an iterable of such batches, or a
    ``SofGAN`` pipeline / sampler callable ``(n, seed) -> images`` (then ``n`` images are drawn in
    batches of ``batch``, seeds from ``default_rng(seed)``). ``extractor``: a
    :class:`~sofgan_lab.metrics.features.FeatureExtractor` or any ``nn.Module`` (see
    :func:`~sofgan_lab.metrics.features.as_feature_extractor`).
    """
    batch = check_int(batch, "batch")
    if n is not None:
        n = check_int(n, "n")
    ext = as_feature_extractor(extractor)
    it, total, _ = _batches_of(images, name, n=n, batch=batch, seed=seed, camera=camera, truncation=truncation,
                               quantize=quantize)
    stats = FeatureStats(keep_features=keep_features)
    bar = tqdm(total=total, disable=not progress, desc=f"features ({name})", unit="img")
    try:
        for x in it:
            stats.update(ext(x))
            bar.update(x.shape[0] if x.dim() == 4 else 1)
    finally:
        bar.close()
    if stats.n == 0:
        raise ValueError(f"{name}: no images")
    stats.source = {"name": ext.name, "pretrained": ext.pretrained, "paper_feature": ext.paper_feature,
                    "provenance": ext.provenance()}
    return stats


def fid(real: Any, fake: Any, extractor: Any = None, *, n: int | None = None, n_real: int | None = None,
        batch: int = 32, seed: int = 0, camera: Any = None, truncation: float = 1.0, quantize: bool = True,
        device: Any = None, progress: bool = False, model_name: str | None = None, model_weights: str | None = None,
        dataset: str | None = None, return_stats: bool = False) -> MetricResult | tuple[MetricResult, FeatureStats,
                                                                                            FeatureStats]:
    """FID between ``real`` and ``fake`` images.

    Args:
        real: float images ``(N, 3, H, W)`` in [-1, 1], an iterable of batches, or a precomputed
            :class:`FeatureStats` (from the same extractor).
        fake: the same kinds, or a ``SofGAN`` pipeline / sampler callable (``n`` images are drawn).
        extractor: a :class:`~sofgan_lab.metrics.features.FeatureExtractor` / ``nn.Module``; default:
            the FID Inception from :func:`~sofgan_lab.metrics.features.load_inception` (raises
            ``FileNotFoundError`` saying where to put the file when it is absent), or, when both
            sets are :class:`FeatureStats`, the extractor recorded in them.
        n, n_real: how many fake / real images to use (fake: required for a model).
        device: where the extractor runs (default: the pipeline's device, else the extractor's).
        return_stats: also return the two :class:`FeatureStats`.

    Fewer samples than feature dimensions leaves the covariances singular: allowed (the Fréchet
    distance handles it exactly) but warned about with ``warnings.warn``.

    Returns:
        ``MetricResult("fid")`` with ``error=None`` and ``n`` = fake samples.
    """
    from ..pipeline import SofGAN

    given = isinstance(real, FeatureStats) and isinstance(fake, FeatureStats)
    if extractor is not None:
        ext = as_feature_extractor(extractor)
    elif not given:
        ext = load_inception()
    else:
        ext = None
    if device is None and isinstance(fake, (SofGAN, PipelineSampler)):
        device = fake.device
    if device is not None and ext is not None:
        ext = ext.to(device)
    kw = dict(batch=batch, seed=seed, camera=None, truncation=truncation, quantize=quantize, progress=progress)
    s_real = real if isinstance(real, FeatureStats) else compute_features(real, ext, n=n_real, name="real", **kw)
    kw["camera"] = camera
    s_fake = fake if isinstance(fake, FeatureStats) else compute_features(fake, ext, n=n, name="fake", **kw)
    for nm, st in (("real", s_real), ("fake", s_fake)):
        if st.n < 2:
            raise ValueError(f"{nm}: FID needs at least 2 samples, got {st.n}")
    if s_real.dim != s_fake.dim:
        raise ValueError(f"real, fake: features of {s_real.dim} and {s_fake.dim} dims (different extractors?)")
    if ext is not None:
        info = {"name": ext.name, "pretrained": ext.pretrained, "paper_feature": ext.paper_feature,
                "provenance": ext.provenance()}
    else:
        info = s_fake.source or s_real.source or {"name": "unknown (precomputed features)", "pretrained": None,
                                                  "paper_feature": False, "provenance": {}}
        if s_real.source and s_fake.source and s_real.source["name"] != s_fake.source["name"]:
            raise ValueError(f"real, fake: features from different extractors ({s_real.source['name']!r} and "
                             f"{s_fake.source['name']!r})")
    if min(s_real.n, s_fake.n) <= s_real.dim:
        warnings.warn(f"fid: {min(s_real.n, s_fake.n)} samples for {s_real.dim} feature dims — the covariance is "
                      "singular and FID strongly biased; use more samples than dimensions", UserWarning, stacklevel=2)
    value = frechet_distance(s_real.mean, s_real.cov, s_fake.mean, s_fake.cov)
    caveats = []
    if not info["paper_feature"]:
        caveats.append(f"FID features from {info['name']}, not the verified FID Inception-v3")
    if s_fake.n < PAPER_FID_SAMPLES:
        caveats.append(f"{s_fake.n} generated samples (paper: {PAPER_FID_SAMPLES}; FID is biased upward for "
                       "small samples)")
    extra = dict(info["provenance"])
    desc = as_image_sampler(fake, camera=camera, truncation=truncation, quantize=quantize)[1] \
        if isinstance(fake, (SofGAN, PipelineSampler)) else {}
    prov = make_provenance(model=model_name or (model_name_of(fake) if not isinstance(fake, (torch.Tensor,
                                                                                              FeatureStats))
                                                 else "model"),
                           weights=model_weights, backbone=info["name"], backbone_pretrained=info["pretrained"],
                           seed=int(seed), n_real=s_real.n, n_fake=s_fake.n, paper_n=PAPER_FID_SAMPLES, **extra,
                           **desc, **({"dataset": dataset} if dataset else {}))
    res = MetricResult("fid", value, None, s_fake.n, prov, comparable_to_paper=not caveats, caveats=tuple(caveats))
    log.info("fid(%s, %d real, %d fake): %.4g", info["name"], s_real.n, s_fake.n, value)
    return (res, s_real, s_fake) if return_stats else res
