"""Held-out evaluation of a trained SOF: mIoU of its renders against ground-truth label maps.

Two sources of ground truth:

- a dataset in the SOF layout (``data``): the held-out views chosen by
  ``SOFScanDataset.split_views(heldout_views, seed)`` (with the training run's own ``holdout_views``
  and ``seed`` these are exactly the views the training never saw);
- the synthetic world (no ``data``): the training instances are rebuilt from the data seed
  recorded in the model's ``training.json`` and rendered exactly from ``heldout_views`` new
  cameras ``random_views(heldout_views, seed=seed)`` (the same cameras for every instance), framed
  as the training data was (``framing`` in its index; data written before framings existed used
  the release's, ``"official"``) unless ``framing`` says otherwise.
"""
from __future__ import annotations

import logging
import numbers
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ..io.checkpoints import read_json
from ..geometry.sof import SemanticOccupancyField
from ..confusion import ConfusionMatrix
from .common import resolve_device
from .sof_data import SOFScanDataset
from .sof_trainer import evaluate_views, segmentation_report

__all__ = ["evaluate_sof_model", "resolve_model_dir"]

log = logging.getLogger(__name__)

DEFAULT_HELDOUT_VIEWS = 8


def resolve_model_dir(model: str | Path) -> Path:
    """A model folder (``config.json`` + ``model.safetensors``), or a run folder holding ``model/``."""
    p = Path(model)
    for cand in (p, p / "model"):
        if (cand / "config.json").is_file() and (cand / "model.safetensors").is_file():
            return cand
    raise ValueError(f"model: {p} is neither a SOF model folder (config.json + model.safetensors) nor a "
                     "training run folder holding model/")


def _count(value, name: str, low: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise ValueError(f"{name}: expected an integer >= {low}, got {value!r}")
    return int(value)


def evaluate_sof_model(model: str | Path, *, data: str | Path | None = None, heldout_views: int | None = None,
                       seed: int | None = None, instances: int | None = None, device: str = "auto",
                       chunk: int = 32768, framing: str | None = None, progress: bool = False) -> dict:
    """Evaluate a trained SOF on held-out views (see the module docstring).

    Args:
        model: the model folder (``OUT/model``) or the run folder ``OUT``.
        data: a dataset in the SOF layout; ``None`` regenerates the synthetic training instances.
        heldout_views: views per instance (default: the run's ``holdout_views`` with ``data``,
            else 8).
        seed: the view split (with ``data``; default the run's seed) or the new cameras' seed
            (default 0).
        instances: evaluate the first N of the model's instances (default: all).
        device: "auto", "cpu" or "cuda".
        framing: the new cameras' framing without ``data`` ("portrait" or "official"; default:
            the training data's).
        progress: show a progress bar over the instances.

    Returns:
        ``{"miou", "pixel_accuracy", "iou": {SOF-20 name: IoU or None}, "views", "instances",
        "heldout_views", "seed", "source": "data" | "synthetic", "model"}`` (synthetic: also
        ``"framing"``); with ``data`` also
        ``"seen_in_training"``: how many of the evaluated views the training used (0 when the
        split is the run's own).
    """
    model_dir = resolve_model_dir(model)
    heldout_views = _count(heldout_views, "heldout_views", 1)
    instances = _count(instances, "instances", 1)
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0):
        raise ValueError(f"seed: expected an integer >= 0, got {seed!r}")
    dev = resolve_device(device)
    sof = SemanticOccupancyField.from_pretrained(model_dir, map_location=dev)
    sof.eval()
    tj = model_dir / "training.json"
    training = read_json(tj, "model") if tj.is_file() else None
    names = list(training["instances"]) if training else None
    n_model = sof.config.num_instances
    if n_model < 1:
        raise ValueError(f"model: {model_dir} has no latent table (num_instances = 0); nothing to evaluate")
    if instances is not None and instances > n_model:
        raise ValueError(f"instances: the model has {n_model} training instances, got {instances}")
    n = instances or n_model
    if framing is not None and framing not in ("portrait", "official"):
        raise ValueError(f"framing: expected 'portrait' or 'official', got {framing!r}")
    if data is not None:
        if framing is not None:
            raise ValueError("framing: only without data (a dataset's views carry their own cameras)")
        rep = _eval_data(sof, Path(data), names, training, heldout_views, seed, n, chunk, progress)
    else:
        rep = _eval_synthetic(sof, model_dir, training, heldout_views, seed, n, chunk, framing, progress)
    rep["model"] = str(model_dir)
    return rep


def _eval_data(sof, data: Path, names, training, heldout, seed, n, chunk, progress=False) -> dict:
    tc = (training or {}).get("train_config", {})
    if heldout is None:
        heldout = tc.get("holdout_views") or DEFAULT_HELDOUT_VIEWS
    if seed is None:
        seed = int(tc.get("seed", 0))
    try:
        ds = SOFScanDataset(data, instances=names)
    except ValueError as exc:
        msg = str(exc)
        if msg.startswith("instances:"):
            raise ValueError(f"data: {data} lacks the model's training instances ({msg[11:].strip()})") from None
        raise ValueError(f"data: {msg[5:].strip() if msg.startswith('root:') else msg}") from None
    if len(ds) != sof.config.num_instances:
        raise ValueError(f"data: {data} holds {len(ds)} instances but the model was trained on "
                         f"{sof.config.num_instances}")
    try:
        split = ds.split_views(heldout, seed=seed)
    except ValueError as exc:
        raise ValueError(f"heldout_views: {str(exc).partition(':')[2].strip()}") from None
    cm = evaluate_views(sof, ds, split, instances=tqdm(range(n), desc="eval sof", unit="inst",
                                                       disable=not progress), chunk=chunk)
    rep = segmentation_report(cm)
    seen = None
    if training and training.get("heldout_views") is not None:
        th = training["heldout_views"]
        seen = sum(1 for i in range(n) for v in split.heldout[i] if v not in th[i])
    rep.update(views=sum(len(split.heldout[i]) for i in range(n)), instances=n, heldout_views=heldout,
               seed=seed, source="data", seen_in_training=seen)
    return rep


def _eval_synthetic(sof, model_dir: Path, training, heldout, seed, n, chunk, framing=None, progress=False) -> dict:
    from ..cameras import framing as framing_kwargs, random_views
    from ..synthetic import build_head, instance_rng, render_segmap, sample_attributes
    from ..synthetic.writers import _PERSPECTIVE_FOV

    index = (training or {}).get("data_index") or {}
    if not training or index.get("format") != "sofgan-lab/sof-scans" or "seed" not in index:
        raise ValueError(f"data: {model_dir} records no synthetic training data (training.json with the "
                         "'sofgan-lab/sof-scans' index and its seed); pass --data")
    heldout = heldout or DEFAULT_HELDOUT_VIEWS
    seed = 0 if seed is None else int(seed)
    size = int(index["size"])
    ortho = index.get("camera", "orthographic") == "orthographic"
    framing = framing or index.get("framing", "official")
    cams = random_views(heldout, seed=seed, image_size=size, fov=None if ortho else _PERSPECTIVE_FOV,
                        **framing_kwargs(framing))
    data_names = index.get("names")
    cm = ConfusionMatrix(sof.config.num_classes)
    dev = next(sof.parameters()).device
    names = training["instances"][:n]
    for i, name in enumerate(tqdm(names, desc="eval sof", unit="inst", disable=not progress)):
        k = data_names.index(name) if data_names else int(name)
        head = build_head(sample_attributes(instance_rng(int(index["seed"]), k)))
        target = render_segmap(head, cams, supersample=int(index.get("supersample", 1))).labels
        with torch.no_grad():
            z = sof.latents.weight[i:i + 1].to(dev).expand(heldout, -1)
            pred = sof.render(z, cams, chunk=chunk, pixel_offset=float(index.get("pixel_offset", 0.5))).labels
        cm.update(pred.cpu(), target)
    rep = segmentation_report(cm)
    rep.update(views=heldout * n, instances=n, heldout_views=heldout, seed=seed, source="synthetic",
               framing=framing)
    return rep
