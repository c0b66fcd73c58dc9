"""Representability of the SOF geometry space (the paper's Fig. 9): invert segmaps, report mIoU.

Each label map is inverted on its own with :func:`~sofgan_lab.geometry.inversion.invert_segmap`
(frozen SOF, optimised geometry code, optionally the camera), and the fitted code's render is
compared with the map. The paper inverted 4,000 CelebAMask-HQ segmaps (about 6k iterations each).
"""
from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from ..labels import NUM_SOF_CLASSES, celebamask_to_sof, validate_labels
from .results import MetricResult, make_provenance
from .sampling import check_int
from .segmentation import ConfusionMatrix

__all__ = ["representability", "PAPER_REPRESENTABILITY"]

log = logging.getLogger(__name__)

PAPER_REPRESENTABILITY = {"segmaps": 4000, "dataset": "CelebAMask-HQ", "iterations": "about 6k"}


def representability(sof: Any, segmaps: Any, camera: Any = None, *, label_set: str = "sof20", steps: int = 300,
                     n: int | None = None, seed: int = 0, progress: bool = False, model_name: str | None = None,
                     model_weights: str | None = None, dataset: str | None = None,
                     keep_inversions: bool = False, **invert_kwargs: Any) -> MetricResult:
    """Invert ``segmaps`` into the SOF space and measure how well the fitted geometry reproduces them.

    Args:
        sof: a trained :class:`~sofgan_lab.geometry.SemanticOccupancyField`, or a ``SofGAN`` pipeline
            (its ``sof`` is used).
        segmaps: ``(N, H, W)`` integer label maps of ``label_set`` ("sof20" or "celebamask19",
            converted with the nose split), numpy or torch.
        camera: the view of every map (a one-view :class:`~sofgan_lab.cameras.Camera` at the maps'
            size), or ``None`` (``invert_segmap``'s frontal orthographic default).
        steps: optimisation steps per map (the paper: about 6k).
        n: invert only the first ``n`` maps (default: all).
        seed: seed of the ray sampling; map ``i`` uses ``seed + i``.
        keep_inversions: keep the :class:`~sofgan_lab.geometry.inversion.InversionResult` list in
            ``provenance["extras"]["inversions"]`` (not JSON-able; off by default).
        **invert_kwargs: passed to ``invert_segmap`` (``lr``, ``rays_per_step``, ``optimize_camera``,
            ``latent_weight``, ``eval_every``, ...).

    Returns:
        ``MetricResult("representability")``: value = mean over maps of each map's mIoU (the classes
        present in that map), error = its standard error, ``n`` = maps;
        ``extras["dataset_miou"]`` is the mIoU of the confusion matrix summed over all maps.
    """
    from ..geometry.inversion import invert_segmap
    from ..geometry.sof import SemanticOccupancyField
    from ..pipeline import SofGAN

    name = model_name
    if isinstance(sof, SofGAN):
        sof = sof.sof
        name = name or "SofGAN"
    if not isinstance(sof, SemanticOccupancyField):
        raise TypeError(f"sof: expected a SemanticOccupancyField or a SofGAN pipeline, got {type(sof).__name__}")
    seg = torch.as_tensor(np.asarray(segmaps)) if not isinstance(segmaps, torch.Tensor) else segmaps.detach().cpu()
    if seg.is_floating_point() or seg.dtype == torch.bool:
        raise TypeError(f"segmaps: expected integer label ids, got dtype {seg.dtype}")
    if seg.dim() != 3:
        raise ValueError(f"segmaps: expected label maps (N, H, W), got shape {tuple(seg.shape)}")
    if label_set == "celebamask19":
        validate_labels(seg, "celebamask19", name="segmaps")
        seg = torch.as_tensor(celebamask_to_sof(seg.numpy()))
    elif label_set == "sof20":
        validate_labels(seg, "sof20", name="segmaps")
    else:
        raise ValueError(f"label_set: expected 'sof20' or 'celebamask19', got {label_set!r}")
    total = seg.shape[0] if n is None else check_int(n, "n")
    if total > seg.shape[0]:
        raise ValueError(f"n: {total} requested but segmaps holds {seg.shape[0]}")
    if total < 2:
        raise ValueError(f"segmaps: need at least 2 maps for a mean and its error, got {total}")
    steps = check_int(steps, "steps")
    seed = check_int(seed, "seed", 0)
    cm = ConfusionMatrix(NUM_SOF_CLASSES)
    scores = np.empty(total, dtype=np.float64)
    kept = []
    for i in tqdm(range(total), disable=not progress, desc="invert segmaps", unit="map"):
        r = invert_segmap(sof, seg[i].long(), camera, steps=steps, seed=seed + i, label_set="sof20", **invert_kwargs)
        scores[i] = r.miou
        cm.update(r.labels.cpu(), seg[i].long())
        if keep_inversions:
            kept.append(r)
    extras = {"protocol": "Fig. 9: invert segmaps into the SOF space, mIoU of the fitted render", "steps": steps,
              "n_segmaps": total, "label_set": label_set, "dataset_miou": cm.miou(), "paper": PAPER_REPRESENTABILITY,
              "invert_kwargs": {k: v for k, v in invert_kwargs.items()},
              "camera": None if camera is None else repr(camera)}
    if dataset:
        extras["dataset"] = dataset
    if keep_inversions:
        extras["inversions"] = kept
    prov = make_provenance(model=name or "SOF", weights=model_weights, backbone=None, backbone_pretrained=None,
                           seed=seed, **extras)
    res = MetricResult.from_scores("representability", scores, provenance=prov)
    log.info("representability(%d maps, %d steps): %s (dataset mIoU %.4f)", total, steps, res, cm.miou())
    return res
