"""Free-viewpoint identity consistency (the paper's Table 3, "FVV Identity").

Protocol (paper §6.3): 1k random SOF instances, each rendered (with one random texture) in 15
views; 10 random view pairs per instance scored by a face-recognition similarity; the mean over
instances with its standard error. The paper used dlib face recognition (``face_recognition``)
on face crops. dlib is not available here, so the similarity comes from a pluggable embedder
(any ``nn.Module`` images → features; cosine similarity of the embeddings).

Default embedder: :class:`~sofgan_lab.metrics.features.ParserFeatures` of the shipped demo face
parser — pooled encoder features that describe which facial regions appear with which colours
and textures, offline and fast. It is *not* a face-identity model (nothing was trained to tell
people apart), so its numbers are not the paper's: every result made with it carries
``comparable_to_paper=False`` and says so in ``caveats`` and provenance. LPIPS was considered and
rejected as the default: it compares images location by location, so it measures how much the
pixels move between views rather than whether the person stays the same. To make the parser
similarity informative, the embeddings are centred on the mean embedding of all rendered images
(``center=True``; cosine similarity of centred vectors, i.e. a correlation), and an *impostor*
baseline — the same view pairs taken from two different instances — is reported in
``provenance["extras"]["impostor_similarity"]`` together with the ``identity_gap`` (genuine − impostor).
"""
from __future__ import annotations

import logging
from itertools import combinations
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from .features import FeatureExtractor, ParserFeatures, as_feature_extractor
from .results import MetricResult, make_provenance
from .sampling import PipelineSampler, check_generated_range, check_int, model_name_of, save_like, seed_stream

__all__ = ["fvv_identity", "PAPER_FVV", "DEFAULT_YAW_RANGE"]

log = logging.getLogger(__name__)

#: The paper's protocol: 1k instances × 15 views, 10 view pairs each.
PAPER_FVV = {"instances": 1000, "views": 15, "pairs": 10}
#: The release's camera sampler spans yaw ±0.6 rad (±34.4°).
DEFAULT_YAW_RANGE = (-34.4, 34.4)
_MAX_SEED = 2 ** 31 - 1


def _fvv_sampler(model: Any, views: int, *, yaw_range: tuple[float, float], pitch: float | None,
                 truncation: float, quantize: bool, device: Any) -> tuple[bool, Any, Any, dict, torch.device]:
    """What renders the instances in :func:`fvv_identity` -> ``(is a pipeline, sampler, the ``views``
    cameras of the yaw sweep (None for a callable), its description, the embedder's device)``."""
    from ..cameras import yaw_sweep
    from ..pipeline import SofGAN

    is_pipe = isinstance(model, (SofGAN, PipelineSampler))
    if is_pipe:
        sampler = model if isinstance(model, PipelineSampler) else \
            PipelineSampler(model, truncation=truncation, quantize=quantize)
        pipe = sampler.pipe
        cam0 = pipe.default_camera
        p = cam0["pitch"] if pitch is None else float(pitch)
        cams = yaw_sweep(views, tuple(yaw_range), p, radius=cam0["radius"], fov=cam0["fov"],
                         image_size=pipe.image_size, target=tuple(cam0["target"]), zoom=cam0["zoom"])
        desc = {"source": "SofGAN pipeline", "truncation": sampler.truncation, "quantize": sampler.quantize,
                "yaw_range": [float(v) for v in yaw_range], "pitch": p, "radius": cam0["radius"], "fov": cam0["fov"]}
        dev = torch.device(device) if device is not None else sampler.device
    elif callable(model):
        sampler, cams, dev = model, None, torch.device(device) if device is not None else torch.device("cpu")
        desc = {"source": f"callable {model_name_of(model)}", "quantize": quantize}
    else:
        raise TypeError(f"model: expected a SofGAN pipeline or a callable (n, seed) -> (n, views, 3, H, W), got "
                        f"{type(model).__name__}")
    return is_pipe, sampler, cams, desc, dev


def _fvv_features(sampler: Any, is_pipe: bool, cams: Any, emb: FeatureExtractor, dev: torch.device,
                  seeds: np.ndarray, batch_seeds: np.ndarray, *, n_instances: int, views: int, batch: int,
                  quantize: bool, progress: bool) -> np.ndarray:
    """The embeddings of every view of every instance -> ``(n_instances, views, F)`` float64.
    ``seeds``: (geometry, texture) per instance for a pipeline; ``batch_seeds``: one per batch for
    a callable."""
    from ..cameras import Camera

    feats: np.ndarray | None = None
    for k, start in enumerate(tqdm(range(0, n_instances, batch), disable=not progress, desc="FVV instances",
                                   unit="batch")):
        stop = min(n_instances, start + batch)
        b = stop - start
        if is_pipe:
            g = np.repeat(seeds[start:stop, 0], views).tolist()
            t = np.repeat(seeds[start:stop, 1], views).tolist()
            imgs = sampler.images(g, t, camera=Camera.cat([cams] * b))            # (b*views, 3, H, W)
        else:
            out = sampler(b, int(batch_seeds[k]))
            if not isinstance(out, torch.Tensor) or out.dim() != 5 or out.shape[:2] != (b, views) or out.shape[2] != 3:
                got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
                raise ValueError(f"model: expected images ({b}, {views}, 3, H, W), got {got}")
            check_generated_range(out, "model")
            imgs = save_like(out.float(), quantize).reshape(b * views, *out.shape[2:])
        f = emb(imgs.to(dev)).double().cpu().numpy().reshape(b, views, -1)
        if feats is None:
            feats = np.empty((n_instances, views, f.shape[-1]), dtype=np.float64)
        feats[start:stop] = f
    assert feats is not None
    return feats


def _fvv_similarities(feats: np.ndarray, chosen: np.ndarray, center: bool) -> tuple[np.ndarray, np.ndarray]:
    """Cosine similarities of the chosen view pairs ``chosen`` (n, pairs, 2) of ``feats`` (n, views, F)
    -> ``(genuine, impostor)``, each (n, pairs): the pair's views of the same instance, and the
    first view of the instance with the second of the next one (a different instance)."""
    n_instances = feats.shape[0]
    if center:
        feats = feats - feats.reshape(-1, feats.shape[-1]).mean(0)
    norms = np.linalg.norm(feats, axis=-1, keepdims=True)
    unit = feats / np.maximum(norms, 1e-12)
    rows = np.arange(n_instances)[:, None]
    genuine = (unit[rows, chosen[..., 0]] * unit[rows, chosen[..., 1]]).sum(-1)  # (n, pairs)
    other = (rows + 1) % n_instances                                            # a different instance
    impostor = (unit[rows, chosen[..., 0]] * unit[other, chosen[..., 1]]).sum(-1)
    return genuine, impostor


@torch.no_grad()
def fvv_identity(model: Any, n_instances: int = PAPER_FVV["instances"], *, views: int = PAPER_FVV["views"],
                 pairs: int = PAPER_FVV["pairs"], embedder: Any = None, yaw_range: tuple[float, float] =
                 DEFAULT_YAW_RANGE, pitch: float | None = None, center: bool = True, seed: int = 0, batch: int = 2,
                 truncation: float = 1.0, quantize: bool = True, device: Any = None, progress: bool = False,
                 model_name: str | None = None, model_weights: str | None = None,
                 dataset: str | None = None) -> MetricResult:
    """Identity similarity between views of the same instance (see the module docstring).

    Each instance: a geometry seed and a texture seed (uniform in [0, 2^31 − 1) from
    ``default_rng(seed)``), rendered through ``views`` orbit cameras with yaw evenly spaced over
    ``yaw_range`` (degrees, ends included) at ``pitch`` (default: the pipeline's), the pipeline's
    radius and field of view; ``pairs`` distinct random view pairs (same stream) are scored by the
    cosine similarity of the embedder's features; an instance's score is the mean over its pairs.

    Args:
        model: a ``SofGAN`` pipeline, a :class:`~sofgan_lab.metrics.sampling.PipelineSampler`, or a
            callable ``model(n, seed) -> (n, views, 3, H, W)`` rendering ``n`` random instances in
            ``views`` views each (in [-1, 1]).
        n_instances: instances (>= 2); views: views per instance (>= 2); pairs: 1 .. views·(views−1)/2.
        embedder: images → features ``nn.Module`` (a FeatureExtractor, a FaceParser, anything);
            default: the demo parser's pooled features (not comparable to the paper).
        center: centre the embeddings on their overall mean before the cosine similarity.
        batch: instances per forward pass (``batch · views`` images).
        Other arguments: as :func:`~sofgan_lab.metrics.diversity.lpips_diversity`.

    Returns:
        ``MetricResult("fvv_identity")`` with ``n = n_instances``.
    """
    n_instances = check_int(n_instances, "n_instances", 2)
    views = check_int(views, "views", 2)
    pairs = check_int(pairs, "pairs", 1)
    batch = check_int(batch, "batch")
    combos = np.asarray(list(combinations(range(views), 2)))
    if pairs > len(combos):
        raise ValueError(f"pairs: at most views*(views-1)/2 = {len(combos)} distinct pairs for views={views}, "
                         f"got {pairs}")
    rng = seed_stream(seed)
    is_pipe, sampler, cams, desc, dev = _fvv_sampler(model, views, yaw_range=yaw_range, pitch=pitch,
                                                     truncation=truncation, quantize=quantize, device=device)
    if embedder is None:
        emb: FeatureExtractor = ParserFeatures()
    else:
        emb = as_feature_extractor(embedder)
    emb = emb.to(dev)
    seeds = rng.integers(0, _MAX_SEED, size=(n_instances, 2))
    pair_idx = np.stack([rng.choice(len(combos), size=pairs, replace=False) for _ in range(n_instances)])
    batch_seeds = rng.integers(0, _MAX_SEED, size=(n_instances + batch - 1) // batch)
    feats = _fvv_features(sampler, is_pipe, cams, emb, dev, seeds, batch_seeds, n_instances=n_instances, views=views,
                          batch=batch, quantize=quantize, progress=progress)
    genuine, impostor = _fvv_similarities(feats, combos[pair_idx], center)
    scores = genuine.mean(1)
    caveats = [] if emb.paper_feature else \
        [f"identity similarity from {emb.name} (cosine{', centred' if center else ''}), not dlib face recognition"]
    prov = make_provenance(model=model_name or model_name_of(model), weights=model_weights, backbone=emb.name,
                           backbone_pretrained=emb.pretrained, seed=int(seed),
                           protocol="Table 3 FVV: cosine similarity of embeddings between views of one instance",
                           embedder=emb.name, embedder_note=(
                               "stand-in for the paper's dlib face recognition; not an identity model"
                               if embedder is None else "user-supplied embedder"),
                           **{f"embedder_{k}": v for k, v in emb.provenance().items()},
                           n_instances=n_instances, views=views, pairs=pairs, paper=dict(PAPER_FVV), center=center,
                           impostor_similarity=float(impostor.mean()),
                           identity_gap=float(genuine.mean() - impostor.mean()), batch=batch, device=str(dev), **desc,
                           **({"dataset": dataset} if dataset else {}))
    res = MetricResult.from_scores("fvv_identity", scores, provenance=prov, caveats=caveats)
    log.info("fvv_identity(%s, %d instances x %d views): %s (impostor %.3f)", emb.name, n_instances, views, res,
             impostor.mean())
    return res
