"""Interpretable attributes of a procedural portrait, their distributions and sampling.

Every synthetic head is built from a dictionary of named attributes. Each attribute has a
documented distribution; a dataset stores each instance's sampled values in its
``attributes.json`` so that later tools (attribute directions in the geometry space, metrics)
have ground truth.

Continuous attributes are floats; binary ones (``kind == "bernoulli"``) are stored as 0.0 or 1.0.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

__all__ = ["AttributeSpec", "ATTRIBUTES", "ATTRIBUTE_NAMES", "sample_attributes",
           "default_attributes", "validate_attributes", "instance_rng", "synthetic_attributes"]


@dataclass(frozen=True)
class AttributeSpec:
    """One attribute: ``kind`` is "uniform" (on [low, high]) or "bernoulli" (1 with prob ``p``)."""

    name: str
    kind: str
    low: float = 0.0
    high: float = 1.0
    p: float = 0.5
    default: float = 0.5
    doc: str = ""

    @property
    def distribution(self) -> str:
        """A human-readable statement of the distribution, e.g. ``Uniform(0.85, 1.15)``."""
        if self.kind == "uniform":
            return f"Uniform({self.low:g}, {self.high:g})"
        return f"Bernoulli({self.p:g})"

    def sample(self, rng: np.random.Generator) -> float:
        if self.kind == "uniform":
            return float(rng.uniform(self.low, self.high))
        return float(rng.random() < self.p)

    def check(self, value: object) -> float:
        if isinstance(value, bool):
            value = float(value)
        if not isinstance(value, (int, float, np.floating, np.integer)):
            raise TypeError(f"attributes[{self.name!r}]: expected a number, got {type(value).__name__}")
        v = float(value)
        if not np.isfinite(v):
            raise ValueError(f"attributes[{self.name!r}]: expected a finite number, got {v}")
        if self.kind == "bernoulli":
            if v not in (0.0, 1.0):
                raise ValueError(f"attributes[{self.name!r}]: expected 0 or 1 (binary), got {v:g}")
        elif not (self.low - 1e-9 <= v <= self.high + 1e-9):
            raise ValueError(
                f"attributes[{self.name!r}]: expected a value in [{self.low:g}, {self.high:g}], got {v:g}")
        return v


_SPECS = [
    AttributeSpec("face_width", "uniform", 0.85, 1.15, default=1.0,
                  doc="horizontal scale of the cranium and face"),
    AttributeSpec("face_length", "uniform", 0.9, 1.1, default=1.0,
                  doc="vertical scale of the cranium and face"),
    AttributeSpec("jaw_width", "uniform", 0.8, 1.2, default=1.0, doc="width of the lower face"),
    AttributeSpec("smile", "uniform", 0.0, 1.0, default=0.0,
                  doc="0 = neutral mouth, 1 = broad smile (corners raised, mouth wider)"),
    AttributeSpec("mouth_opening", "uniform", 0.0, 1.0, default=0.0,
                  doc="0 = closed lips, 1 = open mouth (inner mouth visible)"),
    AttributeSpec("eye_size", "uniform", 0.8, 1.25, default=1.0, doc="scale of the eyes"),
    AttributeSpec("brow_height", "uniform", 0.0, 1.0, default=0.5, doc="height of the brows above the eyes"),
    AttributeSpec("nose_size", "uniform", 0.8, 1.25, default=1.0, doc="scale of the nose"),
    AttributeSpec("ear_size", "uniform", 0.8, 1.2, default=1.0, doc="scale of the ears"),
    AttributeSpec("hair_length", "uniform", 0.0, 1.0, default=0.3,
                  doc="0 = short hair above the ears, 1 = hair to the shoulders"),
    AttributeSpec("hair_volume", "uniform", 0.0, 1.0, default=0.5, doc="thickness of the hair"),
    AttributeSpec("bangs", "bernoulli", p=0.35, default=0.0, doc="a fringe over the forehead"),
    AttributeSpec("glasses", "bernoulli", p=0.3, default=0.0, doc="eye glasses (frames)"),
    AttributeSpec("hat", "bernoulli", p=0.2, default=0.0, doc="a hat with a brim"),
    AttributeSpec("earrings", "bernoulli", p=0.35, default=0.0, doc="a ball earring below each ear"),
    AttributeSpec("necklace", "bernoulli", p=0.35, default=0.0, doc="a necklace around the neck"),
    AttributeSpec("collar_height", "uniform", 0.0, 1.0, default=0.3,
                  doc="0 = low neckline, 1 = high collar up the neck"),
    AttributeSpec("lip_thickness", "uniform", 0.75, 1.3, default=1.0, doc="thickness of the lips"),
    AttributeSpec("neck_width", "uniform", 0.85, 1.15, default=1.0, doc="radius of the neck"),
]

#: All attributes by name, in a fixed order (the order of ``attributes.json`` and of vectors).
ATTRIBUTES: dict[str, AttributeSpec] = {s.name: s for s in _SPECS}
ATTRIBUTE_NAMES: tuple[str, ...] = tuple(ATTRIBUTES)


def instance_rng(seed: int, index: int, stream: int = 0) -> np.random.Generator:
    """The random generator of instance ``index`` of a dataset made with ``seed``.

    Instance ``i`` gets the same numbers whatever the dataset's size, so ``--instances 10`` is a
    prefix of ``--instances 122`` made with the same seed. ``stream`` separates independent uses
    (0: attributes, 1: cameras, 2: texture styles, ...).
    """
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed: expected a non-negative integer, got {seed!r}")
    return np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(int(index), int(stream))))


def validate_attributes(attributes: Mapping[str, object], *, complete: bool = False) -> dict[str, float]:
    """Check names, types and ranges; return a new dict of floats in the canonical order.

    Unknown names raise ``ValueError`` listing the known ones. With ``complete=True`` every
    attribute must be present; otherwise missing ones take their default.
    """
    if not isinstance(attributes, Mapping):
        raise TypeError(f"attributes: expected a mapping of name -> value, got {type(attributes).__name__}")
    unknown = sorted(set(attributes) - set(ATTRIBUTES))
    if unknown:
        raise ValueError(f"attributes: unknown attribute name(s) {unknown}; known: {list(ATTRIBUTE_NAMES)}")
    missing = [n for n in ATTRIBUTE_NAMES if n not in attributes]
    if complete and missing:
        raise ValueError(f"attributes: missing {missing}")
    return {n: (ATTRIBUTES[n].check(attributes[n]) if n in attributes else ATTRIBUTES[n].default)
            for n in ATTRIBUTE_NAMES}


def default_attributes(**overrides: float) -> dict[str, float]:
    """The neutral head: every attribute at its default, with ``overrides`` applied."""
    return validate_attributes(overrides)


def sample_attributes(rng: np.random.Generator, **overrides: float) -> dict[str, float]:
    """Draw every attribute from its distribution (in the fixed order), then apply ``overrides``."""
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng: expected a numpy.random.Generator, got {type(rng).__name__}")
    values = {n: s.sample(rng) for n, s in ATTRIBUTES.items()}
    if overrides:
        checked = validate_attributes(overrides)
        values.update({k: checked[k] for k in overrides})
    return values


def synthetic_attributes(seed: int, count: int) -> dict[str, np.ndarray]:
    """The ground-truth attributes of instances ``0..count-1`` of a synthetic dataset of ``seed``:
    ``{attribute name: (count,) array}`` (what a geometry space's attribute directions are fitted to)."""
    rows = [sample_attributes(instance_rng(seed, i)) for i in range(count)]
    return {name: np.array([r[name] for r in rows]) for name in ATTRIBUTE_NAMES}
