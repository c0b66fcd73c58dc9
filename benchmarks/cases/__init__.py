"""The benchmark case registry and the context a case measures with.

A case is a function ``case(ctx) -> None`` in any module of this folder, registered by name::

    from benchmarks.cases import Context, register

    @register("images_roundtrip", description="tensor -> uint8 -> tensor on a (16, 3, 256, 256) batch")
    def images_roundtrip(ctx: Context) -> None:
        x = ...                                   # build the workload; smaller when ctx.quick
        fig = ctx.measure("roundtrip", lambda: f(x), repeats=10, warmup=2, items=16)
        ctx.record("speedup_vs_naive", base.median / fig.median, "x")

``ctx.measure`` times ``fn`` with ``time.perf_counter`` (synchronising CUDA/MPS around each call
when ``ctx.device`` is one) and returns a :class:`Measured` figure; ``ctx.record`` stores a derived
number (a ratio against a baseline measured in the same run, a memory peak, ...). Modules here
are imported by :func:`discover`, so adding ``benchmarks/cases/<topic>.py`` is all it takes.
"""
from __future__ import annotations

import importlib
import logging
import math
import pkgutil
import statistics
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

__all__ = ["Case", "Context", "Measured", "Recorded", "register", "registry", "discover", "percentile"]

log = logging.getLogger(__name__)

# seconds -> the unit a timing is reported in
TIME_UNITS = {"s": 1.0, "ms": 1e3, "us": 1e6, "ns": 1e9}


@dataclass(frozen=True)
class Case:
    name: str  # unique, used on the command line and as the JSON file name
    description: str  # one line, copied into the JSON and `--list`
    fn: Callable[["Context"], None]  # the case body
    module: str  # where it was registered


_REGISTRY: dict[str, Case] = {}


def register(name: str, *, description: str) -> Callable[[Callable[["Context"], None]], Callable[["Context"], None]]:
    """Register ``fn(ctx) -> None`` as the benchmark case ``name``; returns ``fn`` unchanged."""
    if not isinstance(name, str) or not name or not name.replace("_", "").replace("-", "").isalnum():
        raise ValueError(f"name: expected a non-empty identifier-like string, got {name!r}")
    if not isinstance(description, str) or not description.strip():
        raise ValueError(f"description: expected a non-empty string for case {name!r}, got {description!r}")

    def decorator(fn: Callable[["Context"], None]) -> Callable[["Context"], None]:
        if not callable(fn):
            raise TypeError(f"register({name!r}): expected a callable, got {type(fn).__name__}")
        case = Case(name=name, description=description.strip(), fn=fn, module=fn.__module__)
        existing = _REGISTRY.get(name)
        if existing is not None and (existing.module, existing.fn.__qualname__) != (case.module, fn.__qualname__):
            raise ValueError(f"benchmark case {name!r} registered twice: in {existing.module} and {case.module}")
        _REGISTRY[name] = case
        return fn

    return decorator


def registry() -> dict[str, Case]:
    """The registered cases by name (call :func:`discover` first to load every module)."""
    return dict(sorted(_REGISTRY.items()))


def discover() -> dict[str, str]:
    """Import every module in ``benchmarks/cases/``; returns ``{module: error}`` for those that failed."""
    errors: dict[str, str] = {}
    for info in pkgutil.iter_modules(__path__, __name__ + "."):
        try:
            importlib.import_module(info.name)
        except Exception as exc:  # one broken case module must not hide the others
            log.exception("could not import benchmark module %s", info.name)
            errors[info.name] = f"{type(exc).__name__}: {exc}"
    return errors


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values``, linearly interpolated between order statistics."""
    s = sorted(values)
    if not s:
        raise ValueError("values: empty")
    pos = (len(s) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


@dataclass(frozen=True)
class Measured:
    """A timed figure. ``min``/``median``/``mean`` are in ``unit``; ``items_per_s`` from the median."""

    name: str
    unit: str
    repeats: int
    warmup: int
    min: float
    median: float
    mean: float
    items: float | None = None
    items_per_s: float | None = None
    kind: str = "measured"

    @property
    def median_s(self) -> float:
        return self.median / TIME_UNITS[self.unit]


@dataclass(frozen=True)
class Recorded:
    """A derived figure (a ratio, a count, a memory peak) given by the case."""

    name: str
    value: float
    unit: str
    kind: str = "recorded"


@dataclass
class Context:
    """What a case sees: the workload size, the device, and the two ways to report a figure."""

    quick: bool = False  # smoke run: cases should use a much smaller workload
    device: Any = "cpu"  # torch.device the case should put its tensors on
    repeats: int | None = None  # when set (--repeats), overrides every measure(..., repeats=)
    figures: dict[str, Measured | Recorded] = field(default_factory=dict)

    def _add(self, figure: Measured | Recorded) -> None:
        if figure.name in self.figures:
            raise ValueError(f"figure_name: {figure.name!r} was already reported by this case")
        self.figures[figure.name] = figure

    def synchronize(self) -> None:
        """Wait for queued work on ``self.device`` (CUDA/MPS); a no-op on CPU."""
        kind = getattr(self.device, "type", str(self.device).split(":")[0])
        if kind == "cpu":
            return
        import torch

        if kind == "cuda":
            torch.cuda.synchronize(self.device)
        elif kind == "mps":
            torch.mps.synchronize()

    def measure(
        self,
        figure_name: str,
        fn: Callable[[], Any],
        repeats: int = 5,
        warmup: int = 1,
        unit: str = "s",
        items: float | None = None,
    ) -> Measured:
        """Time ``fn()`` ``repeats`` times after ``warmup`` untimed calls; record and return it.

        unit: one of s, ms, us, ns (how min/median/mean are stored). items: how many things one
        call of ``fn`` processes (images, rays, ...); gives ``items_per_s = items / median``.
        """
        repeats = self._timing_args(unit, repeats, warmup)
        if items is not None and not (isinstance(items, (int, float)) and items > 0):
            raise ValueError(f"items: expected a positive number or None, got {items!r}")
        for _ in range(warmup):
            fn()
        self.synchronize()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            self.synchronize()
            times.append(time.perf_counter() - start)
        scale = TIME_UNITS[unit]
        median = statistics.median(times)
        figure = Measured(
            name=figure_name,
            unit=unit,
            repeats=repeats,
            warmup=warmup,
            min=min(times) * scale,
            median=median * scale,
            mean=statistics.fmean(times) * scale,
            items=items,
            items_per_s=(items / median if items is not None and median > 0 else None),
        )
        self._add(figure)
        log.info("%s: median %.4g %s over %d repeats", figure_name, figure.median, unit, repeats)
        return figure

    def _timing_args(self, unit: str, repeats: Any, warmup: Any) -> int:
        """Check ``unit`` and ``warmup``; the repeats to run (the runner's ``--repeats`` wins)."""
        if unit not in TIME_UNITS:
            raise ValueError(f"unit: expected one of {sorted(TIME_UNITS)}, got {unit!r}")
        repeats = self.repeats if self.repeats is not None else repeats
        if not isinstance(repeats, int) or repeats < 1:
            raise ValueError(f"repeats: expected an int >= 1, got {repeats!r}")
        if not isinstance(warmup, int) or warmup < 0:
            raise ValueError(f"warmup: expected an int >= 0, got {warmup!r}")
        return repeats

    def measure_interleaved(
        self,
        fns: dict[str, Callable[[], Any]],
        repeats: int = 5,
        warmup: int = 1,
        unit: str = "s",
        items: float | None = None,
        clock: str = "wall",
    ) -> dict[str, Measured]:
        """Time several ``{figure_name: fn}`` in turn, one call of each per round, ``repeats``
        rounds after ``warmup`` untimed ones; record each as :meth:`measure` does. On a loaded
        machine this compares them under the same load (take the ``min``).

        clock: ``"wall"`` (``time.perf_counter``) or ``"cpu"`` (``time.thread_time``: the calling
        thread's CPU time, which time slices lost to other processes do not inflate; meaningful
        only for single-threaded CPU work, e.g. ``torch.set_num_threads(1)``)."""
        if clock not in ("wall", "cpu"):
            raise ValueError(f"clock: expected 'wall' or 'cpu', got {clock!r}")
        now = time.perf_counter if clock == "wall" else time.thread_time
        repeats = self._timing_args(unit, repeats, warmup)
        if not fns:
            raise ValueError("fns: expected at least one function to time")
        for _ in range(warmup):
            for fn in fns.values():
                fn()
        self.synchronize()
        times: dict[str, list[float]] = {name: [] for name in fns}
        for _ in range(repeats):
            for name, fn in fns.items():
                start = now()
                fn()
                self.synchronize()
                times[name].append(now() - start)
        scale = TIME_UNITS[unit]
        out = {}
        for name, ts in times.items():
            median = statistics.median(ts)
            figure = Measured(name=name, unit=unit, repeats=repeats, warmup=warmup, min=min(ts) * scale,
                              median=median * scale, mean=statistics.fmean(ts) * scale, items=items,
                              items_per_s=(items / median if items is not None and median > 0 else None))
            self._add(figure)
            log.info("%s: min %.4g %s over %d interleaved repeats", name, figure.min, unit, repeats)
            out[name] = figure
        return out

    def record(self, name: str, value: float, unit: str) -> Recorded:
        """Record a derived figure ``value`` (finite number) in ``unit`` (e.g. "x", "MiB")."""
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"value: expected a finite number for figure {name!r}, got {value!r}")
        figure = Recorded(name=name, value=float(value), unit=str(unit))
        self._add(figure)
        log.info("%s: %.4g %s", name, figure.value, unit)
        return figure

    def figures_as_json(self) -> dict[str, dict[str, Any]]:
        return {name: asdict(fig) for name, fig in self.figures.items()}
