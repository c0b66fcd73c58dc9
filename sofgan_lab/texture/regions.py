"""Region maps for regional styling (paper Eq. 10).

A generator call with K styles per sample blends them with a *region map* ``P`` of shape
``[N, K, H, W]`` (non-negative, summing to 1 over K at every pixel). ``P`` is most often built
from *class weights* ``[N, 17, K]``: row ``c`` says how much of each style class ``c`` takes, and
``P = sum_c onehot_c * weights[:, c]`` on the one-hot segmap. Helpers here build class weights
for the common cases:

* two styles, one value ``p`` in [0, 1] per style group (or per class): ``p`` is the weight of
  style B (``two_style_weights``);
* K styles, one per style group or one per class (``group_style_weights``, ``class_style_weights``);
* random binary or soft choices for training (``random_two_style_weights``).

:data:`STYLE_GROUPS` is a *partition* of the 17 SofGAN classes (every class in exactly one group),
unlike :data:`sofgan_lab.labels.REGION_GROUPS` whose ``global`` group overlaps the others. It
follows the release's demo grouping and puts ``eye_brow`` (only in ``global`` there) with
``complexion``.
"""
from __future__ import annotations

import types
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from .._validate import check_number
from ..labels import NUM_SOFGAN_CLASSES, REGION_GROUPS, SofGAN

__all__ = [
    "STYLE_GROUPS", "group_of_class", "two_style_weights", "group_style_weights", "class_style_weights",
    "random_two_style_weights", "region_map_from_weights", "check_class_weights", "check_region_map",
]

STYLE_GROUPS: Mapping[str, tuple[int, ...]] = types.MappingProxyType({
    "background": tuple(REGION_GROUPS["background"]),
    "complexion": tuple(sorted(REGION_GROUPS["complexion"] + (int(SofGAN.EYE_BROW),))),
    "hair": tuple(REGION_GROUPS["hair"]),
    "eyes_mouth": tuple(REGION_GROUPS["eyes_mouth"]),
    "wearings": tuple(REGION_GROUPS["wearings"]),
})
"""Style groups, a partition of the SofGAN-17 ids: name -> ids."""

_GROUP_NAMES = tuple(STYLE_GROUPS)
_GROUP_OF_CLASS = np.zeros(NUM_SOFGAN_CLASSES, dtype=np.int64)
for _g, _ids in enumerate(STYLE_GROUPS.values()):
    _GROUP_OF_CLASS[list(_ids)] = _g
assert sorted(i for ids in STYLE_GROUPS.values() for i in ids) == list(range(NUM_SOFGAN_CLASSES))


def group_of_class() -> np.ndarray:
    """``[17]`` int array: the index (in :data:`STYLE_GROUPS` order) of each class's group."""
    return _GROUP_OF_CLASS.copy()


def _group_index(name: str, arg: str) -> int:
    key = str(name).lower().replace(" & ", "_").replace(" ", "_")
    if key not in STYLE_GROUPS:
        raise ValueError(f"{arg}: unknown style group {name!r}; expected one of {list(STYLE_GROUPS)}")
    return _GROUP_NAMES.index(key)


def _as_float_tensor(x: Any, arg: str) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        t = x.detach().to(torch.float32)
    else:
        try:
            t = torch.as_tensor(np.asarray(x, dtype=np.float64), dtype=torch.float32)
        except (TypeError, ValueError):
            raise TypeError(f"{arg}: expected numbers, got {type(x).__name__}") from None
    if not torch.isfinite(t).all():
        raise ValueError(f"{arg}: contains NaN or infinite values")
    return t


def _check_unit(t: torch.Tensor, arg: str) -> None:
    if t.numel() and (bool(t.isnan().any()) or t.min() < 0 or t.max() > 1):
        raise ValueError(f"{arg}: values must lie in [0, 1], got range [{float(t.min()):.3g}, {float(t.max()):.3g}]")


def two_style_weights(p: Any, batch: int | None = None) -> torch.Tensor:
    """Class weights ``[N, 17, 2]`` for two styles (A, B) from the weight of style B.

    ``p`` is one of: a number (every class), a mapping ``{group: p}`` over :data:`STYLE_GROUPS`
    (unnamed groups get 0, i.e. style A), a sequence/tensor of 5 values (per group) or 17 values
    (per class), or a tensor ``[N, 5]`` / ``[N, 17]`` per sample. All values must be in [0, 1]."""
    if isinstance(p, Mapping):
        vals = torch.zeros(len(STYLE_GROUPS))
        for name, v in p.items():
            i = _group_index(name, "p")
            vals[i] = check_number(v, f"p[{name!r}]")  # a finite number (NaN passed the range check)
        t = vals
    else:
        t = _as_float_tensor(p, "p")
    _check_unit(t, "p")
    if t.ndim == 0:
        t = t.expand(NUM_SOFGAN_CLASSES)
    if t.ndim == 1:
        t = t[None]
    if t.ndim != 2 or t.shape[1] not in (len(STYLE_GROUPS), NUM_SOFGAN_CLASSES):
        raise ValueError(f"p: expected one value per style group ({len(STYLE_GROUPS)}) or per class "
                         f"({NUM_SOFGAN_CLASSES}), optionally per sample [N, G]; got shape {tuple(t.shape)}")
    if t.shape[1] == len(STYLE_GROUPS):
        t = t[:, torch.as_tensor(_GROUP_OF_CLASS)]
    if batch is not None:
        if t.shape[0] == 1:
            t = t.expand(batch, -1)
        elif t.shape[0] != batch:
            raise ValueError(f"p: has {t.shape[0]} rows for a batch of {batch}")
    return torch.stack([1 - t, t], dim=-1).contiguous()


def group_style_weights(batch: int = 1) -> torch.Tensor:
    """Class weights ``[N, 17, 5]``: style k paints style group k (in :data:`STYLE_GROUPS` order)."""
    w = torch.zeros(NUM_SOFGAN_CLASSES, len(STYLE_GROUPS))
    w[torch.arange(NUM_SOFGAN_CLASSES), torch.as_tensor(_GROUP_OF_CLASS)] = 1
    return w[None].expand(batch, -1, -1).contiguous()


def class_style_weights(batch: int = 1) -> torch.Tensor:
    """Class weights ``[N, 17, 17]``: style k paints class k."""
    return torch.eye(NUM_SOFGAN_CLASSES)[None].expand(batch, -1, -1).contiguous()


def random_two_style_weights(labels17: torch.Tensor, *, soft: bool = False,
                             generator: torch.Generator | None = None) -> torch.Tensor:
    """Random class weights ``[N, 17, 2]`` for region-mix training: per sample, half of the style
    groups present in its segmap (rounded down, at least one when two or more are present) take
    style B (binary), or every present group gets a uniform random ``p`` (soft).

    ``labels17``: int ``[N, H, W]`` SofGAN-17 ids (or a one-hot ``[N, 17, H, W]``)."""
    if labels17.ndim == 4:
        present_cls = labels17.flatten(2).amax(-1) > 0
    else:
        oh = torch.zeros(labels17.shape[0], NUM_SOFGAN_CLASSES, dtype=torch.bool, device=labels17.device)
        oh.scatter_(1, labels17.flatten(1).long(), True)
        present_cls = oh
    present_cls = present_cls.cpu()
    n, g = labels17.shape[0], len(STYLE_GROUPS)
    gid = torch.as_tensor(_GROUP_OF_CLASS)
    present = torch.zeros(n, g, dtype=torch.bool)
    for k in range(g):
        present[:, k] = present_cls[:, gid == k].any(1)
    p = torch.zeros(n, g)
    for i in range(n):
        idx = torch.nonzero(present[i]).flatten()
        if soft:
            p[i, idx] = torch.rand(len(idx), generator=generator)
        elif len(idx) >= 2:
            order = idx[torch.randperm(len(idx), generator=generator)]
            p[i, order[: len(idx) // 2]] = 1.0
    return two_style_weights(p)


def _check_style_shares(t: torch.Tensor, name: str, batch: int, style_dim: int, sum_error: str) -> torch.Tensor:
    """Shares of the styles (class weights or region maps): 1 or ``batch`` rows, finite, in [0, 1],
    summing to 1 over ``style_dim``; returned as float."""
    if t.shape[0] not in (1, batch):
        raise ValueError(f"{name}: has {t.shape[0]} rows for a batch of {batch}")
    if not torch.is_floating_point(t):
        t = t.float()
    with torch.no_grad():
        if not torch.isfinite(t).all():
            raise ValueError(f"{name}: contains NaN or infinite values")
        if (t < 0).any() or (t > 1).any():
            raise ValueError(f"{name}: values must lie in [0, 1]")
        if ((t.sum(style_dim) - 1).abs() > 1e-3).any():
            raise ValueError(f"{name}: {sum_error}")
    return t


def check_class_weights(weights: Any, batch: int, num_styles: int) -> torch.Tensor:
    """Validate class weights ``[N or 1, 17, K]`` (non-negative, rows summing to 1)."""
    t = weights if isinstance(weights, torch.Tensor) else _as_float_tensor(weights, "class_weights")
    if t.ndim == 2:
        t = t[None]
    if t.ndim != 3 or t.shape[1] != NUM_SOFGAN_CLASSES or t.shape[2] != num_styles:
        raise ValueError(f"class_weights: expected shape [N, {NUM_SOFGAN_CLASSES}, {num_styles}] (one weight per "
                         f"class and style), got {tuple(t.shape)}")
    t = _check_style_shares(t, "class_weights", batch, -1, "the weights of each class must sum to 1 over the styles")
    return t.expand(batch, -1, -1)


def check_region_map(region_map: Any, batch: int, num_styles: int) -> torch.Tensor:
    """Validate a region map ``[N or 1, K, H, W]`` (values in [0, 1], summing to 1 over K)."""
    t = region_map if isinstance(region_map, torch.Tensor) else _as_float_tensor(region_map, "region_map")
    if t.ndim == 3:
        t = t[None]
    if t.ndim != 4 or t.shape[1] != num_styles:
        raise ValueError(f"region_map: expected shape [N, {num_styles}, H, W] (one map per style), got {tuple(t.shape)}")
    t = _check_style_shares(t, "region_map", batch, 1, "the maps must sum to 1 over the styles at every pixel")
    return t.expand(batch, -1, -1, -1)


def region_map_from_weights(onehot: torch.Tensor, class_weights: torch.Tensor) -> torch.Tensor:
    """``P[n, k] = sum_c onehot[n, c] * class_weights[n, c, k]`` -> ``[N, K, H, W]``."""
    return torch.einsum("nchw,nck->nkhw", onehot, class_weights.to(onehot))


def group_names() -> Sequence[str]:
    return _GROUP_NAMES
