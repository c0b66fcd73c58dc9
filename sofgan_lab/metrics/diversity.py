"""Diversity metrics of the paper's §6.3: LPIPS over random image pairs (Table 2) and over styles of one
segmap (Table 3, "SSG Diversity").

Both return a :class:`~sofgan_lab.metrics.results.MetricResult` whose value is a mean LPIPS, whose
error is the standard error of that mean and whose ``str`` is the paper's ``mean ± std·100`` form.
Draws are made up front from ``numpy.random.default_rng(seed)``, so for a ``SofGAN`` pipeline the
images do not depend on ``batch`` (the LPIPS values agree across batch sizes to float rounding,
~1e-7) and the same seed and batch give bit-identical numbers on a CPU.
"""
from __future__ import annotations

import logging
from itertools import combinations
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from .perceptual import LPIPSMetric, load_lpips
from .results import MetricResult, make_provenance
from .sampling import PipelineSampler, as_image_sampler, check_generated_range, check_int, model_name_of, \
    save_like, seed_stream

__all__ = ["lpips_diversity", "ssg_diversity", "resolve_lpips", "PAPER_PAIRS", "PAPER_SSG"]

log = logging.getLogger(__name__)

#: The paper's Table 2 protocol: 50k random pairs.
PAPER_PAIRS = 50_000
#: The paper's Table 3 SSG protocol: 1k segmaps × 6 styles, 10 pairs each.
PAPER_SSG = {"segmaps": 1000, "styles": 6, "pairs": 10}

_MAX_SEED = 2 ** 31 - 1


def resolve_lpips(net: Any, *, pretrained_backbone: bool = True, backbone_weights: Any = None,
                  device: Any = None) -> LPIPSMetric:
    """An :class:`LPIPSMetric` from a name (loaded with :func:`load_lpips`) or an existing one
    (moved to ``device`` when given)."""
    if isinstance(net, LPIPSMetric):
        if backbone_weights is not None:
            raise ValueError("backbone_weights: only with a net name; this LPIPSMetric is already loaded")
        return net.to(device) if device is not None else net
    if not isinstance(net, str):
        raise TypeError(f"net: expected 'alex', 'vgg', 'squeeze' or an LPIPSMetric, got {type(net).__name__}")
    return load_lpips(net, weights=backbone_weights, pretrained_backbone=pretrained_backbone, device=device)


def _device_of(model: Any, device: Any) -> torch.device:
    if device is not None:
        return torch.device(device)
    if isinstance(model, PipelineSampler):
        return model.device
    from ..pipeline import SofGAN

    if isinstance(model, SofGAN):
        return model.device
    return torch.device("cpu")


def _check_batch(batch: Any) -> int:
    return check_int(batch, "batch")


def _lpips_provenance(metric: LPIPSMetric, model: Any, model_name: str | None, model_weights: str | None,
                      seed: int, **protocol: Any) -> dict:
    """The provenance of an LPIPS diversity result: the model, its weights, the LPIPS backbone, the
    seed, then ``protocol``'s entries."""
    return make_provenance(model=model_name or model_name_of(model), weights=model_weights, backbone=metric.name,
                           backbone_pretrained=metric.backbone_pretrained, seed=int(seed),
                           **{k: v for k, v in metric.provenance().items() if k not in ("backbone",
                                                                                        "backbone_pretrained")},
                           **protocol)


@torch.no_grad()
def lpips_diversity(model: Any, n_pairs: int = PAPER_PAIRS, *, net: str | LPIPSMetric = "alex",
                    pretrained_backbone: bool = True, backbone_weights: Any = None, seed: int = 0, batch: int = 16,
                    camera: Any = None, truncation: float = 1.0, quantize: bool = True, device: Any = None,
                    progress: bool = False, model_name: str | None = None, model_weights: str | None = None,
                    dataset: str | None = None) -> MetricResult:
    """Mean LPIPS over ``n_pairs`` random image pairs (the paper's Table 2 protocol, 50k pairs).

    What is random: every image of every pair is an independent draw — for a ``SofGAN`` pipeline a
    geometry seed and a texture seed, each uniform in [0, 2^31 − 1) from ``default_rng(seed)``,
    giving the geometry code ``pipe.space.sample(1, seed=g)`` and the texture code
    ``pipe.siw.random_z(1, seed=t)`` (the image ``pipe(geometry=g, texture=t, truncation=truncation)``
    clamped to [-1, 1], quantized to uint8 levels with ``quantize``). Camera: ``camera`` (default:
    the pipeline's default view), the same for all images. For a sampler callable
    ``model(n, seed) -> (n, 3, H, W)`` each batch of ``2·batch`` images is one call with a seed from
    the same stream, and images ``2i``, ``2i+1`` form pair ``i`` (so there the result depends on
    ``batch``).

    Args:
        model: a ``SofGAN`` pipeline, a :class:`~sofgan_lab.metrics.sampling.PipelineSampler`, or a
            sampler callable.
        n_pairs: number of pairs (>= 2).
        net: ``"alex"``, ``"vgg"``, ``"squeeze"`` or a loaded :class:`LPIPSMetric`.
        pretrained_backbone, backbone_weights: see :func:`~sofgan_lab.metrics.perceptual.load_lpips`.
        seed: seed of all random draws.
        batch: pairs per forward pass.
        device: where LPIPS runs (default: the pipeline's device; CPU for a callable).
        model_name, model_weights, dataset: provenance (the table row, where the weights came from,
            a column group).

    Returns:
        ``MetricResult("lpips_diversity")`` with ``n = n_pairs`` and the per-pair scores.
    """
    n_pairs = check_int(n_pairs, "n_pairs", 2)
    batch = _check_batch(batch)
    rng = seed_stream(seed)
    sampler, desc = as_image_sampler(model, camera=camera, truncation=truncation, quantize=quantize)
    dev = _device_of(sampler, device)
    metric = resolve_lpips(net, pretrained_backbone=pretrained_backbone, backbone_weights=backbone_weights,
                           device=dev)
    is_pipe = isinstance(sampler, PipelineSampler)
    seeds = rng.integers(0, _MAX_SEED, size=(n_pairs, 4)) if is_pipe else None
    scores = np.empty(n_pairs, dtype=np.float64)
    for start in tqdm(range(0, n_pairs, batch), disable=not progress, desc="LPIPS pairs", unit="batch"):
        stop = min(n_pairs, start + batch)
        b = stop - start
        if is_pipe:
            s = seeds[start:stop]
            imgs = sampler.images(np.concatenate([s[:, 0], s[:, 1]]).tolist(),
                                  np.concatenate([s[:, 2], s[:, 3]]).tolist())
            x, y = imgs[:b], imgs[b:]
        else:
            imgs = sampler(2 * b, int(rng.integers(0, _MAX_SEED)))
            x, y = imgs[0::2], imgs[1::2]
        scores[start:stop] = metric(x.to(dev), y.to(dev)).double().cpu().numpy()
    how = ("each image an independent (geometry seed, texture seed) pair, uniform in [0, 2^31-1) from "
           "numpy default_rng(seed); geometry = pipe.space.sample(1, seed), texture = pipe.siw.random_z(1, seed); "
           "one camera for all") if is_pipe else \
        "images 2i and 2i+1 of sampler(2*batch, s) form pair i; s drawn per batch from numpy default_rng(seed)"
    prov = _lpips_provenance(metric, model, model_name, model_weights, seed,
                             protocol="Table 2: mean LPIPS over random image pairs", pairs=how, n_pairs=n_pairs,
                             paper_n_pairs=PAPER_PAIRS, batch=batch, device=str(dev), **desc,
                             **({"dataset": dataset} if dataset else {}))
    res = MetricResult.from_scores("lpips_diversity", scores, provenance=prov, caveats=metric.caveats)
    log.info("lpips_diversity(%s, %d pairs): %s", metric.net, n_pairs, res)
    return res


def _as_segmaps(segmaps: Any) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(segmaps)) if not isinstance(segmaps, torch.Tensor) else segmaps.detach()
    if t.is_floating_point() or t.dtype == torch.bool:
        raise TypeError(f"segmaps: expected integer label ids, got dtype {t.dtype}")
    if t.dim() != 3:
        raise ValueError(f"segmaps: expected label maps (N, H, W), got shape {tuple(t.shape)}")
    return t.long()


def _ssg_sampler(model: Any, segmaps: Any, *, camera: Any, truncation: float,
                 quantize: bool) -> tuple[bool, Any, dict]:
    """What textures the segmaps in :func:`ssg_diversity` -> ``(is a pipeline, sampler, its description)``."""
    from ..pipeline import SofGAN

    is_pipe = isinstance(model, (SofGAN, PipelineSampler))
    if is_pipe:
        sampler = model if isinstance(model, PipelineSampler) else \
            PipelineSampler(model, camera=camera, truncation=truncation, quantize=quantize)
        desc = {"source": "SofGAN pipeline", **sampler.describe()}
    elif callable(model):
        if segmaps is None:
            raise ValueError("segmaps: required when model is a callable (it cannot draw geometry)")
        if camera is not None:
            raise ValueError("camera: only for a SofGAN pipeline")
        sampler = model
        desc = {"source": f"callable {model_name_of(model)}", "quantize": quantize}
    else:
        raise TypeError(f"model: expected a SofGAN pipeline or a callable (segmaps, seed) -> images, got "
                        f"{type(model).__name__}")
    return is_pipe, sampler, desc


def _ssg_segmaps(segmaps: Any, n_segmaps: Any, is_pipe: bool, label_set: str) -> tuple[torch.Tensor | None, int]:
    """The given segmaps checked -> ``(segmaps (N, H, W) int64 or None, n_segmaps)``; ``n_segmaps``
    defaults to all given maps, or to the paper's 1000 when the pipeline renders them."""
    seg_all = None
    if segmaps is not None:
        seg_all = _as_segmaps(segmaps)
        if is_pipe:
            from ..labels import validate_labels

            validate_labels(seg_all, label_set, name="segmaps")
        if n_segmaps is None:
            n_segmaps = seg_all.shape[0]
        n_segmaps = check_int(n_segmaps, "n_segmaps", 2)
        if n_segmaps > seg_all.shape[0]:
            raise ValueError(f"n_segmaps: {n_segmaps} requested but segmaps holds {seg_all.shape[0]}")
    else:
        if n_segmaps is None:
            n_segmaps = PAPER_SSG["segmaps"]
        n_segmaps = check_int(n_segmaps, "n_segmaps", 2)
    return seg_all, n_segmaps


def _ssg_images(sampler: Any, is_pipe: bool, seg_all: torch.Tensor | None, label_set: str, geo_seeds: Any,
                tex_seeds: np.ndarray, start: int, stop: int, styles: int, quantize: bool) -> torch.Tensor:
    """Segmaps ``start:stop`` each textured with its ``styles`` styles -> ``(b, styles, 3, H, W)``
    (a pipeline renders the maps from ``geo_seeds`` when none are given)."""
    b = stop - start
    if is_pipe:
        if seg_all is None:
            seg = sampler.segmaps(geo_seeds[start:stop].tolist())
            ls = "sof20"
        else:
            seg, ls = seg_all[start:stop].to(sampler.device), label_set
        rep = seg.repeat_interleave(styles, 0)                          # segmap-major: (b*styles, H, W)
        imgs = sampler.texture(rep, tex_seeds[start:stop].reshape(-1).tolist(), label_set=ls)
        return imgs.reshape(b, styles, *imgs.shape[1:])
    seg = seg_all[start:stop]
    outs = []
    for s in range(styles):
        out = sampler(seg, int(tex_seeds[start, s]))
        if not isinstance(out, torch.Tensor) or out.dim() != 4 or out.shape[0] != b or out.shape[1] != 3:
            got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ValueError(f"model: expected images ({b}, 3, H, W) for {b} segmaps, got {got}")
        check_generated_range(out, "model")
        outs.append(save_like(out.float(), quantize))
    return torch.stack(outs, 1)                                        # (b, styles, 3, H, W)


@torch.no_grad()
def ssg_diversity(model: Any, n_segmaps: int | None = None, *, segmaps: Any = None,
                  label_set: str = "sof20", styles: int = PAPER_SSG["styles"], pairs: int = PAPER_SSG["pairs"],
                  net: str | LPIPSMetric = "alex", pretrained_backbone: bool = True, backbone_weights: Any = None,
                  seed: int = 0, batch: int = 8, camera: Any = None, truncation: float = 1.0, quantize: bool = True,
                  device: Any = None, progress: bool = False, model_name: str | None = None,
                  model_weights: str | None = None, dataset: str | None = None) -> MetricResult:
    """Single-segmap-generation diversity (Table 3; the paper: 1k segmaps): each segmap textured with ``styles`` random
    styles; LPIPS over ``pairs`` distinct random style pairs of the same segmap; per-segmap mean;
    the result is the mean over segmaps (``n = n_segmaps``) with its standard error.

    Segmaps: ``segmaps`` ``(N, H, W)`` integer ids of ``label_set`` ("sof20" or "sofgan17"; the first
    ``n_segmaps`` are used, all when ``n_segmaps`` is ``None``) — the paper used 1k CelebAMask-HQ
    maps — or, for a ``SofGAN`` pipeline without ``segmaps``, ``n_segmaps`` (default 1000) maps
    rendered from random geometry seeds through ``camera``. Texture seeds (uniform in [0, 2^31 − 1), one per segmap and
    style) and the pair choices come from ``default_rng(seed)``.

    ``model`` may also be a callable ``model(segmaps (B, H, W) int64, seed) -> (B, 3, H, W)`` that
    textures each map with one random style drawn from ``seed`` (then ``segmaps`` is required and
    passed through as given); it is called once per style and batch.

    Args:
        styles: styles per segmap (>= 2); pairs: style pairs per segmap (1 .. styles·(styles−1)/2).
        batch: segmaps per forward pass (``batch · styles`` images are generated at once).
        Other arguments: as :func:`lpips_diversity`.
    """
    styles = check_int(styles, "styles", 2)
    pairs = check_int(pairs, "pairs", 1)
    combos = list(combinations(range(styles), 2))
    if pairs > len(combos):
        raise ValueError(f"pairs: at most styles*(styles-1)/2 = {len(combos)} distinct pairs for styles={styles}, "
                         f"got {pairs}")
    batch = _check_batch(batch)
    if label_set not in ("sof20", "sofgan17"):
        raise ValueError(f"label_set: expected 'sof20' or 'sofgan17', got {label_set!r}")
    is_pipe, sampler, desc = _ssg_sampler(model, segmaps, camera=camera, truncation=truncation, quantize=quantize)
    seg_all, n_segmaps = _ssg_segmaps(segmaps, n_segmaps, is_pipe, label_set)
    rng = seed_stream(seed)
    geo_seeds = rng.integers(0, _MAX_SEED, size=n_segmaps) if seg_all is None else None
    tex_seeds = rng.integers(0, _MAX_SEED, size=(n_segmaps, styles))
    pair_idx = np.stack([rng.choice(len(combos), size=pairs, replace=False) for _ in range(n_segmaps)])
    combo_arr = np.asarray(combos)                                       # (C, 2)
    dev = _device_of(sampler, device)
    metric = resolve_lpips(net, pretrained_backbone=pretrained_backbone, backbone_weights=backbone_weights,
                           device=dev)
    scores = np.empty(n_segmaps, dtype=np.float64)
    pair_scores = np.empty((n_segmaps, pairs), dtype=np.float64)
    for start in tqdm(range(0, n_segmaps, batch), disable=not progress, desc="SSG segmaps", unit="batch"):
        stop = min(n_segmaps, start + batch)
        b = stop - start
        imgs = _ssg_images(sampler, is_pipe, seg_all, label_set, geo_seeds, tex_seeds, start, stop, styles, quantize)
        chosen = combo_arr[pair_idx[start:stop]]                           # (b, pairs, 2)
        rows = torch.arange(b)[:, None].expand(b, pairs).reshape(-1)
        ia = torch.as_tensor(chosen[..., 0].reshape(-1))
        ib = torch.as_tensor(chosen[..., 1].reshape(-1))
        d = metric(imgs[rows, ia].to(dev), imgs[rows, ib].to(dev)).double().cpu().numpy().reshape(b, pairs)
        pair_scores[start:stop] = d
        scores[start:stop] = d.mean(1)
    prov = _lpips_provenance(metric, model, model_name, model_weights, seed,
                             protocol="Table 3 SSG: LPIPS between styles of one segmap, mean per segmap",
                             segmaps=("given" if seg_all is not None else "rendered from random geometry seeds"),
                             label_set=label_set if seg_all is not None else "sof20", n_segmaps=n_segmaps,
                             styles=styles, pairs=pairs, paper=dict(PAPER_SSG),
                             pair_std=float(pair_scores.std(ddof=1)), batch=batch, device=str(dev), **desc,
                             **({"dataset": dataset} if dataset else {}))
    res = MetricResult.from_scores("ssg_diversity", scores, provenance=prov, caveats=metric.caveats)
    log.info("ssg_diversity(%s, %d segmaps x %d styles): %s", metric.net, n_segmaps, styles, res)
    return res
