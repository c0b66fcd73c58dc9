"""Training the semantic occupancy field (SOF) on multi-view label maps.

``train_sof(DATA, OUT)`` fits the SOF networks and one latent per training instance (the
auto-decoder table ``model.latents``) to the label maps of ``DATA`` (the SOF layout, read by
:class:`~sofgan_lab.train.sof_data.SOFScanDataset`). Each step draws ``batch_views`` random
(instance, view) pairs from the training views and ``rays_per_view`` random pixels of each and
minimises::

    ce_weight · CE(logits, labels) + depth_weight · mean(min(depth, 0)²) + latent_weight · mean(‖z‖²)

where ``depth`` is the camera-space z of the rays' final points (rays that meet the bounding
sphere) and ``z`` the batch's latents; Adam with linear warm-up and cosine decay; mixed precision
on CUDA only. A few views per instance are held out and rendered every ``eval_every`` steps to
measure the held-out mIoU (dataset-level confusion matrix).

Run folder::

    OUT/run.json                the run's configs and data (written at the start)
    OUT/metrics.jsonl           one JSON line per log/eval event (step, loss parts, lr, rays/s, miou)
    OUT/checkpoints/step_N/     the newest ``keep_checkpoints`` checkpoints (see train.common)
    OUT/model/                  the final model (``save_pretrained``) + ``training.json``

``resume=True`` continues from the newest checkpoint exactly (bit for bit on CPU): the model,
optimizer, schedule and every RNG (including the ray sampler's generator of each DDP rank) are
restored, and so are the log's running means (the records equal an uninterrupted run's).
Under ``torchrun`` (``WORLD_SIZE`` > 1) the step module runs in DistributedDataParallel;
each rank samples its own rays (``seed + rank``) and the latent table is synchronised like every
other parameter (its gradient is dense: rows not in the batch get zero).
"""
from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import __version__
from ..geometry.sof import SemanticOccupancyField, SOFConfig, rays_as_bundle
from ..io.checkpoints import atomic_write_bytes
from ..labels import SOF20_NAMES
from ..confusion import ConfusionMatrix
from .common import TrainConfigBase, DistInfo, latest_checkpoint, make_warmup_cosine
from .loop import config_or_default
from .loop import (CheckpointSpec, Hook, RunningMeans, TrainLoop, check_resume_record, check_run_folder,
                   check_until, distributed, seed_everything, write_run_record, write_training_json)
from .sof_data import RayBatch, SOFScanDataset, ViewSplit

__all__ = ["SOFTrainConfig", "SOFTrainResult", "SOFLoss", "sof_loss", "train_sof", "evaluate_views",
           "segmentation_report"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SOFTrainConfig(TrainConfigBase):
    """Hyper-parameters of :func:`train_sof`. Defaults follow the paper (lr 1e-4, warm-up + cosine)
    and the release's loss weights (200 / 10 / 1).

    Two departures from the release, measured on the synthetic scans (100 instances x 36 views,
    small config, lr 1e-3, 8 x 512 rays per step): half of each view's rays drawn class-balanced and
    a 10x learning rate for the latent table raise the held-out-view mIoU after 1000 steps from
    0.34 to 0.61 (0.78 after 4000). Set ``balanced_fraction=0, latent_lr_scale=1`` for the release's
    behaviour."""

    steps: int = 100_000          # optimisation steps in all (the schedule's length)
    batch_views: int = 8          # (instance, view) pairs per step and process (release: 8)
    rays_per_view: int = 4096     # random pixels per view; ignored with whole_images
    whole_images: bool = False    # every pixel of each sampled view (the release: 128² per view)
    lr: float = 1e-4              # peak learning rate (paper 1e-4; release 5e-5 constant)
    warmup_steps: int = 1000      # linear warm-up steps (0 = none)
    min_lr_ratio: float = 0.01    # LR at the end of the cosine decay, as a fraction of lr
    ce_weight: float = 200.0      # weight of the cross-entropy
    depth_weight: float = 10.0    # weight of mean(min(depth, 0)²): final points behind the camera
    latent_weight: float = 1.0    # weight of mean(‖z‖²) over the batch's latents (release: 1)
    latent_lr_scale: float = 10.0  # the latent table's LR as a multiple of lr (release: 1; see below)
    balanced_fraction: float = 0.5  # share of each view's rays drawn class-balanced (release: 0)
    checkpoint_every: int = 1000  # steps between checkpoints (0 = only at the end)
    keep_checkpoints: int = 2     # newest checkpoints kept
    log_every: int = 50           # steps between JSONL/log records
    eval_every: int = 5000        # steps between held-out evaluations (0 = only at the end)
    eval_instances: int = 4       # instances rendered for the held-out mIoU (0 = all)
    holdout_views: int = 2        # views per instance kept out of training for evaluation (0 = none)
    seed: int = 0                 # model init, view split; the sampler of rank r uses seed + r
    amp: bool = False             # mixed precision (CUDA only: bf16 where supported, else fp16)
    device: str = "auto"          # "auto", "cpu", "cuda" (under torchrun: cuda:LOCAL_RANK)

    def __post_init__(self):
        ints = {"steps": 1, "batch_views": 1, "rays_per_view": 1, "warmup_steps": 0, "checkpoint_every": 0,
                "keep_checkpoints": 1, "log_every": 1, "eval_every": 0, "eval_instances": 0,
                "holdout_views": 0, "seed": 0}
        self._check_ints(ints)
        if not (isinstance(self.balanced_fraction, (int, float)) and 0 <= self.balanced_fraction <= 1):
            raise ValueError(f"balanced_fraction: expected a number in [0, 1], got {self.balanced_fraction!r}")
        if not (isinstance(self.latent_lr_scale, (int, float)) and math.isfinite(self.latent_lr_scale)
                and self.latent_lr_scale > 0):
            raise ValueError(f"latent_lr_scale: expected a finite number > 0, got {self.latent_lr_scale!r}")
        for name in ("lr", "min_lr_ratio", "ce_weight", "depth_weight", "latent_weight"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise ValueError(f"{name}: expected a finite number >= 0, got {v!r}")
        if self.lr <= 0:
            raise ValueError(f"lr: expected a number > 0, got {self.lr!r}")
        if self.min_lr_ratio > 1:
            raise ValueError(f"min_lr_ratio: expected a number in [0, 1], got {self.min_lr_ratio!r}")
        if self.warmup_steps > self.steps:
            raise ValueError(f"warmup_steps: expected at most steps ({self.steps}), got {self.warmup_steps}")
        self._check_bools("whole_images", "amp")
        self._check_device()


    @classmethod
    def tiny(cls, **overrides) -> "SOFTrainConfig":
        """A seconds-long CPU configuration for tests and smoke runs."""
        base = dict(steps=30, batch_views=2, rays_per_view=64, lr=1e-3, warmup_steps=2, checkpoint_every=10,
                    log_every=5, eval_every=0, eval_instances=1, holdout_views=1, device="cpu")
        base.update(overrides)
        return cls(**base)


@dataclass(frozen=True)
class SOFLoss:
    """The loss of one step: ``total`` (scalar tensor, with grad) and its detached parts."""

    total: torch.Tensor
    ce: torch.Tensor
    depth: torch.Tensor
    latent: torch.Tensor


@dataclass
class SOFTrainResult:
    """What :func:`train_sof` returns (on every rank)."""

    model: SemanticOccupancyField  # the trained model (unwrapped), on the training device
    out: Path                      # the run folder
    step: int                      # steps done
    finished: bool                 # reached train_config.steps (False when stopped by ``until``)
    metrics: dict = field(default_factory=dict)  # the last held-out evaluation (rank 0), or {}
    model_dir: Path | None = None  # OUT/model when finished


class _SOFStep(nn.Module):
    """Latent lookup + ray rendering in one module, so DDP sees every parameter, the table too."""

    def __init__(self, sof: SemanticOccupancyField):
        super().__init__()
        self.sof = sof

    def forward(self, instance: torch.Tensor, origins: torch.Tensor, directions: torch.Tensor):
        z = self.sof.latents(instance)
        r = self.sof.march_rays(z, rays_as_bundle(origins, directions), chunk=None, march_misses=True)
        return r.logits, r.points, r.hit, z


def sof_loss(logits: torch.Tensor, points: torch.Tensor, hit: torch.Tensor, z: torch.Tensor, batch: RayBatch,
             config: SOFTrainConfig) -> SOFLoss:
    """The SOF training loss (see the module docstring).

    Args:
        logits: (B, R, C) class logits; points: (B, R, 3) final points; hit: (B, R) bool rays
            that met the bounding sphere; z: (B, latent_dim) the batch's latents; batch: the rays
            (``labels`` (B, R) SOF-20 ids, ``cam2world`` for the camera-space depth).
    """
    C = logits.shape[-1]
    ce = F.cross_entropy(logits.float().reshape(-1, C), batch.labels.reshape(-1))
    neg = batch.depth(points.float()).clamp(max=0.0).square()
    w = hit.to(neg.dtype)
    depth = (neg * w).sum() / w.sum().clamp_min(1.0)
    latent = z.float().square().sum(-1).mean()
    total = config.ce_weight * ce + config.depth_weight * depth + config.latent_weight * latent
    return SOFLoss(total, ce.detach(), depth.detach(), latent.detach())


def segmentation_report(cm: ConfusionMatrix) -> dict:
    """``{"miou", "pixel_accuracy", "iou": {SOF-20 name: IoU or None}}`` of a SOF-20 matrix (None:
    the class is neither in the ground truth nor predicted)."""
    iou = cm.iou()
    names = SOF20_NAMES if cm.num_classes == len(SOF20_NAMES) else [str(k) for k in range(cm.num_classes)]
    return {"miou": cm.miou(), "pixel_accuracy": cm.pixel_accuracy(),
            "iou": {n: (None if math.isnan(v) else float(v)) for n, v in zip(names, iou.tolist())}}


@torch.no_grad()
def evaluate_views(model: SemanticOccupancyField, dataset: SOFScanDataset, views, *, instances=None,
                   chunk: int = 32768, matrix: ConfusionMatrix | None = None) -> ConfusionMatrix:
    """Render views of training instances with their own latents and accumulate a confusion matrix.

    Args:
        model: a trained SOF whose latent row ``i`` is ``dataset`` instance ``i``.
        views: per instance the view positions to render, or a :class:`ViewSplit` (its held-out views).
        instances: instance indices (default: all).
        matrix: accumulate into this matrix (default: a new SOF-20 one).
    """
    views = views.heldout if isinstance(views, ViewSplit) else views
    cm = matrix if matrix is not None else ConfusionMatrix(model.config.num_classes)
    idx = range(len(dataset)) if instances is None else instances
    for i in idx:
        v = list(views[i])
        if not v:
            continue
        cam = dataset.cameras(i, v)
        z = model.latents.weight[i:i + 1].expand(len(v), -1)
        r = model.render(z, cam, chunk=chunk, pixel_offset=dataset.pixel_offset)
        cm.update(r.labels.cpu(), torch.stack([dataset.labels(i, x) for x in v]))
    return cm


def _run_record(data_root: Path, ds: SOFScanDataset, mcfg: SOFConfig, cfg: SOFTrainConfig, split: ViewSplit,
                info: DistInfo) -> dict:
    return {"format": "sofgan-lab/sof-run", "library_version": __version__,
            "data_root": str(data_root.resolve()), "data_index": ds.index or None,
            "instances": list(ds.instance_names), "image_size": list(ds.image_size),
            "orthographic": ds.orthographic, "pixel_offset": ds.pixel_offset,
            "model_config": mcfg.to_dict(), "train_config": cfg.to_dict(),
            "heldout_views": [list(h) for h in split.heldout], "world_size": info.world_size}


def _write_final(out: Path, model: SemanticOccupancyField, record: dict, step: int, metrics: dict) -> Path:
    model_dir = model.save_pretrained(out / "model")
    # record the training data beside the model's config (load_module reads only "config")
    cfg_path = model_dir / "config.json"
    meta = json.loads(cfg_path.read_text())
    index = record.get("data_index") or {}
    meta["training_data"] = {"root": record["data_root"], "instances": record["instances"],
                             **{k: index[k] for k in ("format", "seed", "size", "views", "camera", "pixel_offset",
                                                      "supersample", "generator") if k in index}}
    atomic_write_bytes(cfg_path, (json.dumps(meta, indent=2) + "\n").encode())
    write_training_json(model_dir, record, step, metrics)
    return model_dir


def train_sof(data_root: str | Path, out: str | Path, *, model_config: SOFConfig | None = None,
              train_config: SOFTrainConfig | None = None, resume: bool = False, progress: bool = True,
              until: int | None = None, init_from: str | Path | None = None) -> SOFTrainResult:
    """Train a SOF on the label maps of ``data_root`` into the run folder ``out``.

    Args:
        data_root: a dataset in the SOF layout (see :class:`SOFScanDataset`).
        out: the run folder (see the module docstring); must not hold a run unless ``resume``.
        model_config: the network sizes (default ``SOFConfig.small()``); ``num_instances`` is set
            to the dataset's instance count (0 or that count are accepted).
        train_config: a :class:`SOFTrainConfig` (default: its defaults).
        resume: continue from the newest checkpoint in ``out/checkpoints`` (starts afresh when
            there is none).
        progress: show a tqdm bar (rank 0).
        until: stop after this step (checkpointing it) without finishing; the LR schedule still
            follows ``train_config.steps``. For staged runs and tests.
        init_from: a saved SOF (``save_pretrained`` folder, e.g. an earlier run's ``model/``) to
            start from instead of a fresh initialisation: fine-tuning with a new schedule. Its
            config must equal ``model_config`` (with the data's instance count).

    Returns:
        :class:`SOFTrainResult`. When finished, ``out/model`` holds the model and ``training.json``.
    """
    cfg = config_or_default(train_config, SOFTrainConfig, SOFTrainConfig, "train_config")
    mcfg = config_or_default(model_config, SOFConfig, SOFConfig.small, "model_config")
    check_until(until)
    with distributed(cfg.device) as (device, info):
        return _train(Path(data_root), Path(out), mcfg, cfg, resume, progress, until, device, info,
                      None if init_from is None else Path(init_from))


def _prepare(data_root: Path, out: Path, mcfg: SOFConfig, cfg: SOFTrainConfig, resume: bool, info: DistInfo,
             init_from: Path | None):
    """The data, the view split, the model config with the data's instance count and the run record
    (written to ``out/run.json`` after the run folder's checks)."""
    ds = SOFScanDataset(data_root, preload=True)
    if mcfg.num_instances not in (0, len(ds)):
        raise ValueError(f"model_config: num_instances is {mcfg.num_instances} but the data holds {len(ds)} "
                         "instances (pass 0 to take the data's count)")
    mcfg = replace(mcfg, num_instances=len(ds))
    fewest = min(ds.num_views(i) for i in range(len(ds)))
    if cfg.holdout_views >= fewest:
        raise ValueError(f"holdout_views: expected fewer than {fewest} (the fewest views of any instance), "
                         f"got {cfg.holdout_views}")
    split = ds.split_views(cfg.holdout_views, seed=cfg.seed)
    check_run_folder(out, resume, latest_checkpoint(out / "checkpoints"))
    record = _run_record(data_root, ds, mcfg, cfg, split, info)
    record["init_from"] = None if init_from is None else str(init_from.resolve())
    if resume:
        check_resume_record(out, record, same={
            "data_root: its instances differ from those of the run being resumed": ("instances",)})
    write_run_record(out, record, info)
    return ds, split, mcfg, record


def _build(mcfg: SOFConfig, cfg: SOFTrainConfig, device: torch.device, init_from: Path | None):
    """The model (from ``init_from``'s weights when given), Adam with its two groups, the schedule,
    and the AMP dtype and grad scaler (None: no scaling)."""
    seed_everything(cfg.seed)
    model = SemanticOccupancyField(mcfg).to(device)
    # Two groups: the networks at lr, the auto-decoder latent table at lr * latent_lr_scale.
    net_params = [p for n, p in model.named_parameters() if not n.startswith("latents.")]
    optimizer = torch.optim.Adam([{"params": net_params},
                                  {"params": [model.latents.weight], "lr": cfg.lr * cfg.latent_lr_scale}],
                                 lr=cfg.lr)
    scheduler = make_warmup_cosine(optimizer, total_steps=cfg.steps, warmup_steps=cfg.warmup_steps,
                                   min_lr_ratio=cfg.min_lr_ratio)
    use_amp = cfg.amp and device.type == "cuda"
    if cfg.amp and not use_amp:
        log.warning("amp: mixed precision is CUDA-only; training in float32 on %s", device)
    amp_dtype = (torch.bfloat16 if use_amp and torch.cuda.is_bf16_supported() else torch.float16) if use_amp else None
    scaler = torch.amp.GradScaler("cuda") if amp_dtype == torch.float16 else None
    if init_from is not None:
        base = SemanticOccupancyField.from_pretrained(init_from)
        if base.config != mcfg:
            raise ValueError(f"init_from: {init_from} holds a model with config {base.config.to_dict()}, "
                             f"expected {mcfg.to_dict()}")
        model.load_state_dict(base.state_dict())
        log.info("starting from the weights of %s", init_from)
    return model, optimizer, scheduler, amp_dtype, scaler


def _train(data_root: Path, out: Path, mcfg: SOFConfig, cfg: SOFTrainConfig, resume: bool, progress: bool,
           until: int | None, device: torch.device, info: DistInfo, init_from: Path | None) -> SOFTrainResult:
    ds, split, mcfg, record = _prepare(data_root, out, mcfg, cfg, resume, info, init_from)
    model, optimizer, scheduler, amp_dtype, scaler = _build(mcfg, cfg, device, init_from)
    generator = torch.Generator().manual_seed(cfg.seed + info.rank)
    spec = CheckpointSpec(out / "checkpoints", model, "sof", mcfg.to_dict(), optimizer, generator, "sampler/rank{rank}",
                          scheduler=scheduler, scaler=scaler, keep=cfg.keep_checkpoints,
                          extra={"world_size": info.world_size, "train_config": cfg.to_dict()})
    loop = TrainLoop("train_sof", out, steps=cfg.steps, until=until, log_every=cfg.log_every,
                     checkpoint_every=cfg.checkpoint_every, checkpoint=spec,
                     means=RunningMeans(("loss", "ce", "depth", "latent"), device=device), info=info, device=device,
                     progress=progress)
    latest = latest_checkpoint(spec.directory)
    if loop.resume(latest, resume=resume) is not None:
        log.info("resuming at step %d from %s", loop.start, latest)

    step_module: nn.Module = _SOFStep(model)
    if info.distributed:
        step_module = nn.parallel.DistributedDataParallel(
            step_module, device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=mcfg.march_steps == 0)
    eval_instances = list(range(len(ds)))[: (cfg.eval_instances or len(ds))]

    def evaluate(step: int) -> dict:
        if cfg.holdout_views == 0:
            return {}
        t0 = time.perf_counter()
        rep = segmentation_report(evaluate_views(model, ds, split, instances=eval_instances))
        rep.update(step=step, views=sum(len(split.heldout[i]) for i in eval_instances),
                   instances=len(eval_instances), seconds=round(time.perf_counter() - t0, 3))
        loop.logger.log({"event": "eval", **rep})
        log.info("step %d: held-out mIoU %.4f (pixel accuracy %.4f)", step, rep["miou"], rep["pixel_accuracy"])
        model.train()
        return rep

    def finish() -> Path:
        loop.metrics = evaluate(cfg.steps) if cfg.holdout_views else {}
        model.eval()
        model_dir = _write_final(out, model, record, cfg.steps, loop.metrics)
        log.info("trained SOF saved to %s", model_dir)
        return model_dir

    loop.hooks.append(Hook(cfg.eval_every, evaluate))
    stepper = _Stepper(step_module, optimizer, scheduler, scaler, amp_dtype, ds, cfg, generator, split, device,
                       loop.means)
    rays_per_step = cfg.batch_views * (ds.image_size[0] * ds.image_size[1] if cfg.whole_images
                                       else cfg.rays_per_view) * info.world_size

    def train_record(done: int, m: dict, ran: int, seconds: float) -> dict:
        return {"event": "train", "step": done, "loss": m["loss"], "ce": m["ce"], "depth": m["depth"],
                "latent": m["latent"], "lr": stepper.lr, "rays_per_s": rays_per_step * ran / seconds}

    model.train()
    loop.run(stepper, train_record, postfix=lambda r: {"loss": f"{r['loss']:.4f}", "lr": f"{r['lr']:.2e}"})
    model_dir = loop.finish(finish)
    return SOFTrainResult(model=model, out=out, step=loop.step, finished=loop.finished, metrics=loop.metrics,
                          model_dir=model_dir)


class _Stepper:
    """The step function of :class:`TrainLoop`: a batch of rays, the loss, the optimiser and schedule
    steps; the loss parts go to ``means``, the learning rate the step used to ``lr``."""

    def __init__(self, step_module: nn.Module, optimizer, scheduler, scaler, amp_dtype, ds: SOFScanDataset,
                 cfg: SOFTrainConfig, generator: torch.Generator, split: ViewSplit, device: torch.device,
                 means: RunningMeans):
        self.step_module, self.optimizer, self.scheduler, self.scaler = step_module, optimizer, scheduler, scaler
        self.amp_dtype, self.ds, self.cfg, self.generator, self.split = amp_dtype, ds, cfg, generator, split
        self.device, self.means = device, means
        self.lr = float("nan")

    def __call__(self, step: int) -> None:
        batch = dataset_batch(self.ds, self.cfg, self.generator, self.split).to(self.device)
        amp = self.amp_dtype is not None
        with torch.autocast(device_type=self.device.type, dtype=self.amp_dtype or torch.float16, enabled=amp):
            logits, points, hit, z = self.step_module(batch.instance, batch.origins, batch.directions)
        loss = sof_loss(logits, points, hit, z, batch, self.cfg)
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss.total).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            loss.total.backward()
            self.optimizer.step()
        self.lr = self.optimizer.param_groups[0]["lr"]
        self.scheduler.step()
        self.means.add_all(torch.stack([loss.total.detach(), loss.ce, loss.depth, loss.latent]))


def dataset_batch(ds: SOFScanDataset, cfg: SOFTrainConfig, generator: torch.Generator, split: ViewSplit) -> RayBatch:
    """One training batch: ``cfg.batch_views`` random training views, ``cfg.rays_per_view`` rays each."""
    return ds.sample_rays(cfg.batch_views, cfg.rays_per_view, generator, views=split,
                          whole_images=cfg.whole_images, balanced_fraction=cfg.balanced_fraction)

