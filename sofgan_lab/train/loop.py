"""The one training loop the trainers share: steps, logging, evaluation hooks, checkpoints, resume,
the finish, torchrun DDP and the progress bar.

A trainer builds its data, model and optimizers, then hands the loop

* a :class:`CheckpointSpec` (what a checkpoint holds: model, optimizer(s), schedule, grad scaler,
  the per-rank random generator and the trainer's ``extra`` dict),
* a :class:`RunningMeans` (the values its step adds, averaged into each log record),
* a step function ``step(i)`` (optimisation step ``i``, 0-based; it adds its values to the means),
* a record function ``record(done, means, steps, seconds)`` (the JSONL record of a log event; ``steps``
  and ``seconds``: the steps this process ran since the previous record and the time they took),
* optional :class:`Hook` s (evaluations, sample grids) run every so many steps,

and :meth:`TrainLoop.run` does the rest::

    for step in range(start, stop):
        step(step)
        log a record every log_every steps (and at the last step), averaged over the steps since the last one
        run the hooks that are due
        checkpoint every checkpoint_every steps and at the stop

The running means are part of every checkpoint (``extra["log_window"]``), so a resumed run's records
average the same steps as an uninterrupted run's. A run stopped by ``until`` between two log steps
still writes a record of its unfinished window (the user sees the last losses); resuming drops that
record and continues the window, so the log of a resumed run equals that of an uninterrupted run
(apart from the timings). Checkpoints written before the window was saved resume with an empty one.
"""
from __future__ import annotations

import json
import logging
import math
import os
import random
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from ..io.checkpoints import atomic_write_bytes, read_json
from .common import (DistInfo, MetricsLogger, all_gather_tensor, apply_schedule_config, barrier, cleanup_distributed,
                     init_distributed, load_checkpoint, resolve_device, save_checkpoint, schedule_config)

__all__ = ["RunningMeans", "CheckpointSpec", "Hook", "TrainLoop", "distributed", "seed_everything", "check_until",
           "check_run_folder", "check_resume_record", "config_or_default", "write_run_record", "write_training_json"]

log = logging.getLogger(__name__)

#: The key of the running means in a checkpoint's ``extra`` dict.
WINDOW_KEY = "log_window"


class RunningMeans:
    """Sums and counts of the values logged between two records.

    With a ``device`` the sums are one float32 tensor there and every value is added every step
    (:meth:`add_all`, no host synchronisation per step); without, they are Python floats with a
    count per key (:meth:`add`, for values that not every step has, e.g. a lazy regulariser)."""

    def __init__(self, keys: Sequence[str], *, device: torch.device | str | None = None):
        self.keys = tuple(keys)
        self.device = None if device is None else torch.device(device)
        self.reset()

    def reset(self) -> None:
        if self.device is not None:
            self.sums: Any = torch.zeros(len(self.keys), device=self.device)
            self.count = 0
        else:
            self.sums = {k: 0.0 for k in self.keys}
            self.counts = {k: 0 for k in self.keys}

    def add_all(self, values: torch.Tensor) -> None:
        """Add one step's values, ``(len(keys),)`` in the order of ``keys`` (device mode)."""
        self.sums += values
        self.count += 1

    def add(self, key: str, value: float) -> None:
        """Add one value of ``key`` (float mode)."""
        self.sums[key] += value
        self.counts[key] += 1

    @property
    def empty(self) -> bool:
        return (self.count if self.device is not None else sum(self.counts.values())) == 0

    def means(self) -> dict[str, float]:
        """The mean of each key that has values."""
        if self.device is not None:
            return dict(zip(self.keys, (self.sums / self.count).tolist())) if self.count else {}
        return {k: self.sums[k] / self.counts[k] for k in self.keys if self.counts[k]}

    def state_dict(self) -> dict:
        """JSON-able and exact (float32 sums as Python floats, float sums as they are)."""
        if self.device is not None:
            return {"keys": list(self.keys), "sums": self.sums.tolist(), "counts": [self.count] * len(self.keys)}
        return {"keys": list(self.keys), "sums": [self.sums[k] for k in self.keys],
                "counts": [self.counts[k] for k in self.keys]}

    def load_state_dict(self, state: Mapping, where: str = "checkpoint") -> None:
        if list(state.get("keys", ())) != list(self.keys):
            raise ValueError(f"{where}: the logged values {state.get('keys')} differ from this trainer's "
                             f"{list(self.keys)}")
        if self.device is not None:
            self.sums = torch.tensor(state["sums"], dtype=torch.float32, device=self.device)
            self.count = int(state["counts"][0]) if self.keys else 0
        else:
            self.sums = {k: float(v) for k, v in zip(self.keys, state["sums"])}
            self.counts = {k: int(c) for k, c in zip(self.keys, state["counts"])}


@dataclass
class CheckpointSpec:
    """What :class:`TrainLoop` writes into (and restores from) ``directory/step_N``."""

    directory: Path                      # RUN/checkpoints
    model: torch.nn.Module               # saved as model.safetensors (unwrapped from DDP)
    model_kind: str                      # the ``kind`` in its config.json
    model_config: dict
    optimizer: Any                       # an optimizer or a {name: optimizer} dict
    generator: torch.Generator           # this rank's training generator
    generator_name: str                  # its name in rng.safetensors; "{rank}" is replaced by the rank
    scheduler: Any = None                # a LambdaLR; on resume this run's config decides its shape
    scaler: Any = None                   # a GradScaler (fp16 AMP) or None
    extra: dict = field(default_factory=dict)  # JSON-able, in trainer.json (the window is added)
    keep: int = 2                        # newest checkpoints kept


@dataclass
class Hook:
    """``fn(done)`` every ``every`` steps (0: never); ``main_only``: on rank 0 only; ``before_end``:
    not at the last step (the trainer's finish does it then). A dict it returns becomes the loop's
    ``metrics`` (the newest evaluation)."""

    every: int
    fn: Callable[[int], dict | None]
    main_only: bool = True
    before_end: bool = True


class TrainLoop:
    """One run of optimisation steps ``start .. stop - 1`` (see the module docstring).

    Args:
        name: ``"train_sof"`` etc. (errors; the bar shows ``"train sof"``).
        out: the run folder (``metrics.jsonl`` goes there).
        steps: the schedule's length; ``until`` stops earlier (checkpointing that step).
    """

    def __init__(self, name: str, out: Path, *, steps: int, until: int | None, log_every: int,
                 checkpoint_every: int, checkpoint: CheckpointSpec, means: RunningMeans, info: DistInfo,
                 device: torch.device, progress: bool = True):
        self.name, self.out, self.steps, self.info, self.device = name, Path(out), steps, info, device
        self.stop = steps if until is None else min(until, steps)
        self.log_every, self.checkpoint_every = log_every, checkpoint_every
        self.spec, self.means, self.progress = checkpoint, means, progress
        self.logger = MetricsLogger(self.out / "metrics.jsonl", enabled=info.is_main)
        self.hooks: list[Hook] = []
        self.start = 0
        self.metrics: dict = {}

    # -------------------------------------------------------------------------------- resume
    def resume(self, latest: Path | None, *, resume: bool) -> dict | None:
        """With ``resume``: load ``latest`` (None: start afresh) into the spec's objects, this run's
        learning-rate schedule kept (:func:`apply_schedule_config`), the running means restored, and
        the log cut back to the checkpoint's step. Returns the checkpoint's ``trainer.json`` or None."""
        spec = self.spec
        if not resume:
            return None
        if latest is None:
            log.info("resume: no checkpoint in %s; starting afresh", spec.directory)
            self.logger.truncate_after(0)
            return None
        schedule = schedule_config(spec.scheduler) if spec.scheduler is not None else None
        meta = load_checkpoint(latest, model=spec.model, optimizer=spec.optimizer, scheduler=spec.scheduler,
                               scaler=spec.scaler,
                               generators={spec.generator_name.format(rank=self.info.rank): spec.generator})
        self.start = int(meta["step"])
        if schedule is not None and apply_schedule_config(spec.scheduler, schedule):
            log.info("resume: learning-rate schedule of this run's config (peak %s, %d steps)",
                     [f"{b:.3g}" for b in spec.scheduler.base_lrs], self.steps)
        window = (meta.get("extra") or {}).get(WINDOW_KEY)
        if window is not None:
            self.means.load_state_dict(window, where=f"checkpoint: {latest / 'trainer.json'}")
        # an unfinished window's record (a stop by ``until``) is written again at the window's end
        self.logger.truncate_after(self.start, drop_at_step=("train",) if not self.means.empty else ())
        return meta

    # -------------------------------------------------------------------------------- the loop
    def run(self, step: Callable[[int], None], record: Callable[[int, dict, int, float], dict],
            postfix: Callable[[dict], dict] | None = None) -> None:
        """Steps ``start .. stop - 1`` with logging, hooks and checkpoints (module docstring)."""
        bar = tqdm(total=self.steps, initial=self.start, disable=not (self.progress and self.info.is_main),
                   desc=self.name.replace("_", " "), unit="step", dynamic_ncols=True)
        t_last, ran = time.perf_counter(), 0
        try:
            for i in range(self.start, self.stop):
                step(i)
                done, ran = i + 1, ran + 1
                bar.update(1)
                boundary = done % self.log_every == 0 or done == self.steps
                if boundary or done == self.stop:
                    now = time.perf_counter()
                    rec = self._log(done, record, ran, now - t_last)
                    if postfix is not None:
                        bar.set_postfix(**postfix(rec))
                    if boundary:  # an unfinished window (stop by ``until``) goes on in the checkpoint
                        self.means.reset()
                        t_last, ran = now, 0
                for hook in self.hooks:
                    if (hook.every and done % hook.every == 0 and (self.info.is_main or not hook.main_only)
                            and (done < self.steps or not hook.before_end)):
                        result = hook.fn(done)
                        if isinstance(result, dict):
                            self.metrics = result
                if (self.checkpoint_every and done % self.checkpoint_every == 0) or done == self.stop:
                    self.checkpoint(done)
        finally:
            bar.close()
            self.logger.close()

    def _log(self, done: int, record: Callable, ran: int, seconds: float) -> dict:
        rec = record(done, self.means.means(), ran, max(seconds, 1e-9))
        if not all(math.isfinite(v) for v in rec.values() if isinstance(v, float)):
            raise FloatingPointError(f"{self.name}: non-finite values at step {done}: {rec}")
        self.logger.log(rec)
        log.debug("step %d: %s", done, rec)
        return rec

    def checkpoint(self, step: int) -> None:
        """Every rank's generator state gathered; rank 0 writes ``step_<step>``."""
        spec = self.spec
        states = all_gather_tensor(spec.generator.get_state(), self.info, self.device)
        if self.info.is_main:
            save_checkpoint(spec.directory, step, model=spec.model, model_kind=spec.model_kind,
                            model_config=spec.model_config, optimizer=spec.optimizer, scheduler=spec.scheduler,
                            scaler=spec.scaler,
                            generators={spec.generator_name.format(rank=r): s for r, s in enumerate(states)},
                            extra={**spec.extra, WINDOW_KEY: self.means.state_dict()}, keep=spec.keep)

    # -------------------------------------------------------------------------------- the end
    @property
    def finished(self) -> bool:
        return self.stop == self.steps

    def finish(self, write: Callable[[], Path]) -> Path | None:
        """When the schedule is done: ``write()`` on rank 0 (final evaluation, the model folder; it
        returns that folder), the log closed, then every rank waits for it. Returns the folder
        (``out/model`` on the other ranks) or None when stopped early."""
        model_dir = None
        if self.finished and self.info.is_main:
            try:
                model_dir = write()
            finally:
                self.logger.close()
        barrier(self.info)
        if self.finished and model_dir is None:
            model_dir = self.out / "model"
        return model_dir

    @property
    def step(self) -> int:
        """The steps done when :meth:`run` returns."""
        return max(self.stop, self.start)


# ------------------------------------------------------------------------------------------
# around the loop: devices and DDP, seeds, the run folder
# ------------------------------------------------------------------------------------------

@contextmanager
def distributed(device: str | None) -> Iterator[tuple[torch.device, DistInfo]]:
    """The training device (``cuda:LOCAL_RANK`` under torchrun) and this process's place in the
    process group, joined on entry when ``WORLD_SIZE`` > 1 and left on exit."""
    dev = resolve_device(device, int(os.environ.get("LOCAL_RANK", "0")))
    info = init_distributed(dev)
    try:
        yield dev, info
    finally:
        cleanup_distributed(info)


def seed_everything(seed: int) -> None:
    """Seed torch, numpy and Python's ``random`` (model initialisation)."""
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)


def check_until(until: int | None) -> None:
    if until is not None and (isinstance(until, bool) or not isinstance(until, int) or until < 1):
        raise ValueError(f"until: expected an integer >= 1 or None, got {until!r}")


def check_run_folder(out: Path, resume: bool, latest: Path | None, *, name: str = "out") -> None:
    """``out`` (the argument ``name``) must be a folder or nothing, and hold no run (no checkpoint,
    ``model/`` or ``run.json``) unless resuming."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"{name}: {out} exists and is not a folder")
    if not resume and (latest is not None or (out / "model").exists() or (out / "run.json").exists()):
        raise ValueError(f"{name}: {out} already holds a training run; pass resume=True (--resume) to continue "
                         "it or choose another folder")


def config_or_default(value: Any, cls: type, default: Callable[[], Any], name: str) -> Any:
    """A trainer's ``value`` config, ``default()`` when it is None; a TypeError naming ``name`` when it
    is of another class."""
    cfg = value if value is not None else default()
    if not isinstance(cfg, cls):
        raise TypeError(f"{name}: expected a {cls.__name__}, got {type(cfg).__name__}")
    return cfg


def check_resume_record(out: Path, record: dict, *, same: Mapping[str, Sequence[str]] = (),
                        name: str = "out") -> dict | None:
    """Compare the ``run.json`` of the run being resumed (returned; None when there is none) with
    this run's ``record``: the model config, the world size (when recorded) and, for each message of
    ``same``, its keys must be equal (a ValueError ``"<message> (<run.json>)"`` otherwise); changed
    train-config fields are logged as a warning. A run.json that is not a JSON object is a
    CheckpointError naming ``name`` (the output-folder argument) and the file."""
    p = out / "run.json"
    if not p.is_file():
        return None
    old = read_json(p, name)
    if old.get("model_config") != record["model_config"]:
        raise ValueError(f"model_config: differs from the run being resumed ({p})")
    for message, keys in dict(same).items():
        if any(old.get(k) != record.get(k) for k in keys):
            raise ValueError(f"{message} ({p})")
    if "world_size" in record and old.get("world_size") != record["world_size"]:
        raise ValueError(f"out: the run in {out} used {old.get('world_size')} processes, this one "
                         f"{record['world_size']}; resume with the same number for an exact continuation")
    changed = sorted(k for k, v in record["train_config"].items() if old.get("train_config", {}).get(k) != v)
    if changed:
        log.warning("resume: train config fields changed since the run started: %s", changed)
    return old


def write_run_record(out: Path, record: dict, info: DistInfo, *, folders: Sequence[str] = ()) -> None:
    """After every rank has checked the run folder, rank 0 creates it (and ``folders`` in it) and
    writes ``run.json``."""
    barrier(info)
    if info.is_main:
        out.mkdir(parents=True, exist_ok=True)
        for name in folders:
            (out / name).mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(out / "run.json", (json.dumps(record, indent=2) + "\n").encode())


def write_training_json(model_dir: Path, record: dict, steps: int, metrics: dict) -> None:
    """``model_dir/training.json``: the run record, the steps and the final metrics."""
    training = dict(record, steps=steps, final_metrics=metrics)
    atomic_write_bytes(model_dir / "training.json", (json.dumps(training, indent=2, allow_nan=False) + "\n").encode())
