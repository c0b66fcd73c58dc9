"""One measured number and everything needed to read it: :class:`MetricResult`.

Error convention (the paper's "mean ± scaled std error")
-------------------------------------------------------
Every metric here is a mean over ``n`` independent units (image pairs for LPIPS diversity,
segmaps for SSG diversity, SOF instances for FVV identity, segmaps for representability, random
subsets for KID). :class:`MetricResult` stores

* ``value`` — that mean;
* ``error`` — its **standard error**, ``std / sqrt(n)`` with ``std`` the sample standard deviation
  (``ddof=1``) of the per-unit scores;
* ``n`` — the number of units.

The paper prints ``mean ± x`` with x "scaled std errors in unit of 10^-2" (Table 2 caption; Table 3
likewise). Its footnote 4 says that with 50k pairs "the standard [deviation] of LPIPS ... [is]
around ± 0.0003": that is a standard error, since 0.0003 · sqrt(50,000) · 100 ≈ 6.7, which is exactly
the size of the subscripts in Table 2 (5.59 … 12.52); a plain standard error in units of 10^-2
would print as 0.03. So the paper's scaling is ``error · sqrt(n) · 100`` — the per-unit standard
deviation in units of 10^-2 — and :meth:`MetricResult.__str__` prints that number
(:attr:`MetricResult.scaled_error`), e.g. ``"0.66 ± 5.81"``. The stored ``error`` stays the honest
standard error of the mean (what a comparison between two models needs).

``comparable_to_paper`` says whether the *measuring instrument* matches the paper's (ImageNet
backbone for LPIPS, the FID Inception weights and ≥ 50k samples for FID, dlib face recognition for
FVV identity); ``caveats`` lists why not. It says nothing about the model or the data it was trained
on.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import numpy as np

__all__ = ["MetricSpec", "METRICS", "register_metric", "metric_spec", "MetricResult", "make_provenance",
           "PROVENANCE_KEYS"]

log = logging.getLogger(__name__)

#: The keys of every provenance dict (see :func:`make_provenance`).
PROVENANCE_KEYS = ("model", "weights", "backbone", "backbone_pretrained", "seed", "extras")


@dataclass(frozen=True)
class MetricSpec:
    """How a metric is named, ordered and printed.

    Args:
        name: registry key (``MetricResult.metric``).
        label: column header in tables (a backbone, when relevant, is added in parentheses).
        higher_is_better: direction (shown as ↑/↓ in table headers).
        value_decimals: decimals of the value in a cell.
        error_decimals: decimals of the scaled error; ``None`` = 3 significant digits.
        error_scale: the printed error is ``std · error_scale`` (100: "in units of 10^-2").
        paper: where the paper reports it ("Table 2", "Table 3", "Fig. 7", "Fig. 9") or ``None``.
    """

    name: str
    label: str
    higher_is_better: bool
    value_decimals: int = 2
    error_decimals: int | None = 2
    error_scale: float = 100.0
    paper: str | None = None


METRICS: dict[str, MetricSpec] = {}


def register_metric(spec: MetricSpec) -> MetricSpec:
    """Add (or replace, with the same name) a metric to the registry used by results and tables."""
    if not isinstance(spec, MetricSpec):
        raise TypeError(f"spec: expected a MetricSpec, got {type(spec).__name__}")
    if not spec.name or not spec.name.replace("_", "").isalnum():
        raise ValueError(f"spec.name: expected an identifier-like string, got {spec.name!r}")
    METRICS[spec.name] = spec
    return spec


for _spec in (
    MetricSpec("lpips_diversity", "LPIPS", True, 2, 2, 100.0, "Table 2"),
    MetricSpec("ssg_diversity", "SSG Diversity", True, 3, None, 100.0, "Table 3"),
    MetricSpec("fvv_identity", "FVV Identity", True, 3, None, 100.0, "Table 3"),
    MetricSpec("fid", "FID", False, 2, 2, 1.0, "Fig. 7"),
    MetricSpec("kid", "KID", False, 4, 4, 1.0, None),
    MetricSpec("representability", "SOF mIoU", True, 3, None, 100.0, "Fig. 9"),
):
    register_metric(_spec)


def metric_spec(name: str) -> MetricSpec:
    """The :class:`MetricSpec` of ``name``; ``ValueError`` listing the known names otherwise."""
    if name not in METRICS:
        raise ValueError(f"metric: unknown metric {name!r}; expected one of {sorted(METRICS)} "
                         "(or add one with register_metric)")
    return METRICS[name]


def make_provenance(*, model: str | None = None, weights: str | None = None, backbone: str | None = None,
                    backbone_pretrained: bool | None = None, seed: int | None = None,
                    **extras: Any) -> dict[str, Any]:
    """A provenance dict with the fixed keys :data:`PROVENANCE_KEYS`.

    Args:
        model: the measured model's name (the table row), e.g. ``"SofGAN (demo)"``.
        weights: where the measured model's weights came from (a folder, a name) or ``None``.
        backbone: the measuring network, e.g. ``"lpips-alex v0.1"``, ``"fid-inception-v3"``.
        backbone_pretrained: whether that network carries its reference (ImageNet / FID) weights.
        seed: the seed of the random draws.
        **extras: anything else (protocol details, sample sizes, the dataset name under
            ``dataset``, which becomes a column group in :func:`~sofgan_lab.metrics.tables.metric_table`).
    """
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
        raise TypeError(f"seed: expected an int or None, got {type(seed).__name__}")
    return {"model": model, "weights": weights, "backbone": backbone, "backbone_pretrained": backbone_pretrained,
            "seed": None if seed is None else int(seed), "extras": dict(extras)}


def _fmt_fixed(x: float, decimals: int) -> str:
    s = f"{x:.{decimals}f}"
    return "0" + s[2:] if s.startswith("-0") and float(s) == 0 else s  # no "-0.00"


def _fmt_sig(x: float, digits: int = 3) -> str:
    """``x`` with ``digits`` significant digits in fixed notation (13.3, 6.17, 0.180)."""
    if x == 0 or not math.isfinite(x):
        return f"{x:.{digits - 1}f}" if math.isfinite(x) else str(x)
    decimals = max(0, digits - 1 - int(math.floor(math.log10(abs(x)))))
    return _fmt_fixed(x, decimals)


@dataclass(frozen=True)
class MetricResult:
    """A metric value with its uncertainty and provenance (see the module docstring).

    Attributes:
        metric: a registered metric name (:data:`METRICS`): ``lpips_diversity``, ``ssg_diversity``,
            ``fvv_identity``, ``fid``, ``kid``, ``representability``.
        value: the mean over the ``n`` units.
        error: the standard error of that mean, ``std(scores, ddof=1) / sqrt(n)``; ``None`` when the
            metric has no per-unit scores (FID) or ``n < 2``.
        n: the number of units (pairs, segmaps, instances, subsets; samples for FID).
        provenance: ``{"model", "weights", "backbone", "backbone_pretrained", "seed", "extras"}``
            (:func:`make_provenance`).
        comparable_to_paper: whether the measuring protocol matches the paper's.
        caveats: why it is not comparable (empty when it is).
        scores: the per-unit scores ``(n,)`` float64 (not compared, not printed), or ``None``.
    """

    metric: str
    value: float
    error: float | None
    n: int
    provenance: dict = field(default_factory=make_provenance)
    comparable_to_paper: bool = True
    caveats: tuple[str, ...] = ()
    scores: np.ndarray | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        metric_spec(self.metric)
        if isinstance(self.value, bool) or not isinstance(self.value, (int, float, np.floating, np.integer)):
            raise TypeError(f"value: expected a number, got {type(self.value).__name__}")
        object.__setattr__(self, "value", float(self.value))
        if self.error is not None:
            if isinstance(self.error, bool) or not isinstance(self.error, (int, float, np.floating)) \
                    or not (float(self.error) >= 0):
                raise ValueError(f"error: expected a standard error >= 0 or None, got {self.error!r}")
            object.__setattr__(self, "error", float(self.error))
        if isinstance(self.n, bool) or not isinstance(self.n, (int, np.integer)) or self.n < 1:
            raise ValueError(f"n: expected a sample count >= 1, got {self.n!r}")
        object.__setattr__(self, "n", int(self.n))
        if not isinstance(self.provenance, Mapping):
            raise TypeError(f"provenance: expected a dict, got {type(self.provenance).__name__}")
        prov = {k: self.provenance.get(k) for k in PROVENANCE_KEYS}
        unknown = sorted(set(self.provenance) - set(PROVENANCE_KEYS))
        if unknown:
            raise ValueError(f"provenance: unknown keys {unknown}; expected {list(PROVENANCE_KEYS)} (put the rest "
                             "under 'extras')")
        prov["extras"] = dict(prov["extras"] or {})
        object.__setattr__(self, "provenance", prov)
        if not isinstance(self.comparable_to_paper, bool):
            raise TypeError(f"comparable_to_paper: expected a bool, got {type(self.comparable_to_paper).__name__}")
        caveats = tuple(str(c) for c in (self.caveats or ()))
        if not self.comparable_to_paper and not caveats:
            caveats = ("the measuring protocol differs from the paper's",)
        object.__setattr__(self, "caveats", caveats)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_scores(cls, metric: str, scores: Iterable[float] | np.ndarray, *, provenance: Mapping | None = None,
                    caveats: Iterable[str] = (), keep_scores: bool = True) -> "MetricResult":
        """Mean and standard error of per-unit ``scores`` (1-D, finite). ``comparable_to_paper`` is
        ``not caveats``."""
        s = np.asarray(list(scores) if not isinstance(scores, np.ndarray) else scores, dtype=np.float64).reshape(-1)
        if s.size == 0:
            raise ValueError(f"scores: no scores for metric {metric!r}")
        if not np.isfinite(s).all():
            raise ValueError(f"scores: {int((~np.isfinite(s)).sum())} non-finite scores for metric {metric!r}")
        err = float(s.std(ddof=1) / math.sqrt(s.size)) if s.size > 1 else None
        caveats = tuple(caveats)
        return cls(metric, float(s.mean()), err, int(s.size), dict(provenance or make_provenance()),
                   comparable_to_paper=not caveats, caveats=caveats, scores=s if keep_scores else None)

    # ------------------------------------------------------------------ reading
    @property
    def spec(self) -> MetricSpec:
        return metric_spec(self.metric)

    @property
    def std(self) -> float | None:
        """The per-unit sample standard deviation, ``error · sqrt(n)``."""
        return None if self.error is None else self.error * math.sqrt(self.n)

    @property
    def scaled_error(self) -> float | None:
        """The paper's printed error: ``error · sqrt(n) · spec.error_scale`` (``std`` in units of 10^-2
        for the paper's metrics)."""
        return None if self.error is None else self.std * self.spec.error_scale

    @property
    def model(self) -> str:
        return str(self.provenance.get("model") or "model")

    @property
    def column(self) -> str:
        """The table column: the metric's label, plus the backbone for LPIPS-based metrics, prefixed
        by ``extras["dataset"]`` when given (``"FFHQ: LPIPS (alex)"``)."""
        label = self.spec.label
        net = self.provenance.get("extras", {}).get("lpips_net")
        if net and self.metric in ("lpips_diversity", "ssg_diversity"):
            label = f"{label} ({net})"
        dataset = self.provenance.get("extras", {}).get("dataset")
        return f"{dataset}: {label}" if dataset else label

    def format(self, value_decimals: int | None = None, error_decimals: int | None = None) -> str:
        """``"value ± scaled_error"`` (``"value"`` without an error) with the spec's decimals unless
        given; the error uses 3 significant digits when the spec's ``error_decimals`` is ``None``."""
        spec = self.spec
        vd = spec.value_decimals if value_decimals is None else value_decimals
        text = _fmt_fixed(self.value, vd)
        se = self.scaled_error
        if se is None:
            return text
        ed = spec.error_decimals if error_decimals is None else error_decimals
        return f"{text} ± {_fmt_sig(se) if ed is None else _fmt_fixed(se, ed)}"

    def __str__(self) -> str:
        return self.format()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (without the per-unit scores)."""
        return {"metric": self.metric, "value": self.value, "error": self.error, "n": self.n,
                "std": self.std, "scaled_error": self.scaled_error, "text": str(self),
                "provenance": _jsonable(self.provenance), "comparable_to_paper": self.comparable_to_paper,
                "caveats": list(self.caveats)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "MetricResult":
        """Inverse of :meth:`to_dict`."""
        try:
            return cls(d["metric"], d["value"], d.get("error"), d["n"], dict(d.get("provenance") or {}),
                       bool(d.get("comparable_to_paper", True)), tuple(d.get("caveats") or ()))
        except KeyError as exc:
            raise ValueError(f"d: missing key {exc.args[0]!r} of a MetricResult dict") from None


def _jsonable(x: Any) -> Any:
    if isinstance(x, Mapping):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.floating,)):
        return float(x)
    if isinstance(x, np.ndarray):
        return x.tolist()
    if x is None or isinstance(x, (str, int, float, bool)):
        return x
    return str(x)
