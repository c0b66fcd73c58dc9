"""Pieces shared by the trainers: checkpoints with exact resume, LR schedule, JSONL logs, DDP.

Checkpoint format (no pickle anywhere)::

    RUN/checkpoints/step_00000100/
        config.json            the model's config (as ``save_pretrained`` writes it)
        model.safetensors      the model's state dict (so the folder loads with ``from_pretrained``)
        optimizer.safetensors  the optimizer's tensor state, keys ``state/<param id>/<name>``
        rng.safetensors        torch CPU (``torch/cpu``) and CUDA (``torch/cuda/<i>``) RNG states,
                               numpy's MT19937 keys (``numpy/keys``) and named generators
                               (``generator/<name>``, e.g. ``generator/sampler/rank0``)
        trainer.json           step, optimizer structure (param groups, non-tensor state),
                               scheduler and grad-scaler state dicts, python ``random`` and numpy
                               scalar RNG state, and the trainer's ``extra`` dict

A checkpoint is written into a hidden temporary folder and renamed into place, so a killed
process leaves either the whole checkpoint or none of it; the newest ``keep`` are kept.
"""
from __future__ import annotations

import copy
import json
import logging
import math
import os
import random
import re
import shutil
import tempfile
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
import torch.distributed as dist
from safetensors.torch import load_file

from .. import __version__
from ..io.checkpoints import (CheckpointError, atomic_save_safetensors, atomic_write_bytes, json_dict, json_int,
                              read_json, save_module)

__all__ = [
    "TrainConfigBase", "CHECKPOINT_FORMAT_VERSION", "warmup_cosine_factor", "WarmupCosine", "make_warmup_cosine",
    "schedule_config", "apply_schedule_config",
    "MetricsLogger", "DistInfo", "init_distributed", "cleanup_distributed", "all_gather_tensor",
    "barrier", "unwrap", "save_checkpoint", "load_checkpoint", "latest_checkpoint", "list_checkpoints",
    "capture_rng_state", "restore_rng_state", "flatten_optimizer_state", "unflatten_optimizer_state",
    "resolve_device", "parameters_checksum",
]


class TrainConfigBase:
    """What the trainers' frozen config dataclasses share: JSON round trip and common checks."""

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict):
        unknown = sorted(set(d) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"train_config: unknown {cls.__name__} fields {unknown}")
        return cls(**d)

    def _check_bools(self, *names: str) -> None:
        for name in names:
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name}: expected a bool, got {type(getattr(self, name)).__name__}")

    def _check_ints(self, lows: Mapping[str, int]) -> None:
        """Each named field an integer (not a bool) at least its low bound."""
        for name, low in lows.items():
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int):
                raise TypeError(f"{name}: expected an integer, got {type(v).__name__}")
            if v < low:
                raise ValueError(f"{name}: expected an integer >= {low}, got {v}")

    def _check_device(self) -> None:
        dev = getattr(self, "device")
        if dev is None:
            return
        if not isinstance(dev, str) or not (dev in ("auto", "cpu", "mps") or dev.startswith("cuda")):
            raise ValueError(f"device: expected 'auto', 'cpu' or 'cuda', got {dev!r}")

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT_VERSION = 1
_STEP_DIR = re.compile(r"^step_(\d+)$")


# ------------------------------------------------------------------------------------------
# learning-rate schedule
# ------------------------------------------------------------------------------------------

def warmup_cosine_factor(step: int, *, total_steps: int, warmup_steps: int, min_lr_ratio: float) -> float:
    """The LR multiplier of optimisation step ``step`` (0-based).

    Linear warm-up ``(step + 1) / warmup_steps`` for ``step < warmup_steps``, then a cosine
    decay from 1 at ``step = warmup_steps`` to ``min_lr_ratio`` at ``step = total_steps``:
    ``min_lr_ratio + (1 - min_lr_ratio) * (1 + cos(pi * p)) / 2`` with
    ``p = (step - warmup_steps) / (total_steps - warmup_steps)`` clamped to [0, 1].
    """
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    span = max(1, total_steps - warmup_steps)
    p = min(1.0, max(0.0, (step - warmup_steps) / span))
    return min_lr_ratio + (1.0 - min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * p))


class WarmupCosine:
    """A picklable-free callable for ``LambdaLR`` (its state is plain numbers, saved as JSON)."""

    def __init__(self, total_steps: int, warmup_steps: int, min_lr_ratio: float):
        if isinstance(total_steps, bool) or not isinstance(total_steps, int) or total_steps < 1:
            raise ValueError(f"total_steps: expected an integer >= 1, got {total_steps!r}")
        if isinstance(warmup_steps, bool) or not isinstance(warmup_steps, int) or warmup_steps < 0:
            raise ValueError(f"warmup_steps: expected an integer >= 0, got {warmup_steps!r}")
        if not (isinstance(min_lr_ratio, (int, float)) and 0.0 <= min_lr_ratio <= 1.0):
            raise ValueError(f"min_lr_ratio: expected a number in [0, 1], got {min_lr_ratio!r}")
        self.total_steps = int(total_steps)
        self.warmup_steps = int(warmup_steps)
        self.min_lr_ratio = float(min_lr_ratio)

    def __call__(self, step: int) -> float:
        return warmup_cosine_factor(step, total_steps=self.total_steps, warmup_steps=self.warmup_steps,
                                    min_lr_ratio=self.min_lr_ratio)


def make_warmup_cosine(optimizer: torch.optim.Optimizer, *, total_steps: int, warmup_steps: int,
                       min_lr_ratio: float) -> torch.optim.lr_scheduler.LambdaLR:
    """``LambdaLR`` with :class:`WarmupCosine`; call ``.step()`` after every optimiser step."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, WarmupCosine(total_steps, warmup_steps, min_lr_ratio))


def schedule_config(scheduler: torch.optim.lr_scheduler.LambdaLR) -> tuple[list[float], list]:
    """A copy of a ``LambdaLR``'s peak learning rates and schedule callables, to take before
    :func:`load_checkpoint` (which overwrites both in place) and hand to :func:`apply_schedule_config`."""
    return [float(b) for b in scheduler.base_lrs], [copy.copy(lam) for lam in scheduler.lr_lambdas]


def apply_schedule_config(scheduler: torch.optim.lr_scheduler.LambdaLR, config: tuple[list[float], list]) -> bool:
    """After resuming from a checkpoint: this run's configuration decides the peak learning rates
    and the schedule's shape (``--lr``, ``--steps``, warm-up), the checkpoint only the step reached.

    ``config`` comes from :func:`schedule_config`, taken before the checkpoint was loaded. Each
    group's learning rate becomes ``base_lr * lambda(step)``, exactly what the scheduler itself
    sets, so an unchanged configuration resumes bit for bit. Returns whether anything changed."""
    base_lrs, lr_lambdas = config

    def state(lam):
        return dict(vars(lam)) if hasattr(lam, "__dict__") else lam
    changed = ([float(b) for b in scheduler.base_lrs] != list(base_lrs)
               or [state(a) for a in scheduler.lr_lambdas] != [state(b) for b in lr_lambdas])
    scheduler.base_lrs = list(base_lrs)
    scheduler.lr_lambdas = list(lr_lambdas)
    step = scheduler.last_epoch
    for group, base, lam in zip(scheduler.optimizer.param_groups, scheduler.base_lrs, scheduler.lr_lambdas):
        group["initial_lr"] = base
        group["lr"] = base * lam(step)
    scheduler._last_lr = [g["lr"] for g in scheduler.optimizer.param_groups]
    return changed


# ------------------------------------------------------------------------------------------
# JSON-lines metrics
# ------------------------------------------------------------------------------------------

def _jsonable(x: Any) -> Any:
    if isinstance(x, torch.Tensor):
        x = x.item() if x.numel() == 1 else x.tolist()
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    return x


class MetricsLogger:
    """Appends one JSON object per line to ``path`` (flushed each time). Disabled loggers (e.g. on
    non-zero DDP ranks) do nothing. Non-finite floats are written as ``null``."""

    def __init__(self, path: str | Path, *, enabled: bool = True):
        self.path = Path(path)
        self.enabled = enabled
        self._f = None
        if enabled:
            self.path.parent.mkdir(parents=True, exist_ok=True)

    def truncate_after(self, step: int, *, drop_at_step: tuple[str, ...] = ()) -> None:
        """Drop records whose ``step`` is greater than ``step`` (after resuming from a checkpoint,
        the lost steps are run again and must not appear twice), and those at ``step`` whose
        ``event`` is in ``drop_at_step`` (a record of an unfinished log window, written again)."""
        if not self.enabled or not self.path.is_file():
            return
        keep = []
        for line in self.path.read_text().splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:  # a line cut by a kill
                continue
            if not isinstance(rec, dict) or (rec.get("step", -1) < step or (
                    rec.get("step", -1) == step and rec.get("event") not in drop_at_step)):
                keep.append(line)
        atomic_write_bytes(self.path, ("\n".join(keep) + "\n" if keep else "").encode())

    def log(self, record: Mapping[str, Any]) -> None:
        if not self.enabled:
            return
        if self._f is None:
            self._f = open(self.path, "a")
        self._f.write(json.dumps(_jsonable(dict(record)), allow_nan=False) + "\n")
        self._f.flush()

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None

    @staticmethod
    def read(path: str | Path) -> list[dict]:
        """All complete records of a JSONL file."""
        out = []
        for line in Path(path).read_text().splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return out


# ------------------------------------------------------------------------------------------
# devices and DDP
# ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class DistInfo:
    """Where this process stands in a (possibly) distributed run. Not distributed: rank 0 of 1."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None
    owns_group: bool = False  # True when init_distributed created the process group

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def resolve_device(device: str | torch.device | None, local_rank: int = 0) -> torch.device:
    """``"auto"``/None -> :func:`sofgan_lab.default_device`; ``"cuda"`` -> ``cuda:<local_rank>``.

    Raises ValueError naming ``device`` when CUDA is requested but not available."""
    from .. import default_device

    if device is None or device == "auto":
        dev = default_device()
    else:
        try:
            dev = torch.device(device)
        except (RuntimeError, TypeError):
            raise ValueError(f"device: expected 'auto', 'cpu' or 'cuda', got {device!r}") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device: {device!r} requested but CUDA is not available")
        if dev.index is None:
            dev = torch.device("cuda", local_rank)
    return dev


def init_distributed(device: torch.device) -> DistInfo:
    """Join the ``torchrun`` process group if the environment says so (``WORLD_SIZE`` > 1).

    Uses ``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` (and ``MASTER_ADDR``/``MASTER_PORT``); backend
    ``nccl`` on CUDA, ``gloo`` otherwise. Does nothing outside a distributed launch. If a group
    is already initialised (e.g. by ``torch.multiprocessing.spawn`` code) it is used as is."""
    if dist.is_available() and dist.is_initialized():
        return DistInfo(rank=dist.get_rank(), world_size=dist.get_world_size(),
                        local_rank=int(os.environ.get("LOCAL_RANK", dist.get_rank())),
                        backend=dist.get_backend(), owns_group=False)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    if not dist.is_available():
        raise RuntimeError("WORLD_SIZE > 1 but torch.distributed is not available")
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(local_rank)
    dist.init_process_group(backend=backend)
    log.info("distributed: rank %d of %d (local %d, %s)", rank, world, local_rank, backend)
    return DistInfo(rank=rank, world_size=world, local_rank=local_rank, backend=backend, owns_group=True)


def cleanup_distributed(info: DistInfo) -> None:
    """Destroy the process group if :func:`init_distributed` created it, after a last barrier so
    that no rank tears the group down while another is still inside a collective (with gloo that
    race can abort the slower process at exit)."""
    if info.owns_group and dist.is_initialized():
        try:
            if info.backend == "gloo":  # bounded wait if a peer died on an error path
                from datetime import timedelta

                dist.monitored_barrier(timeout=timedelta(seconds=60))
            else:
                dist.barrier()
        except Exception as exc:  # a peer failed: still release this rank's resources
            log.warning("distributed: final barrier failed (%s)", exc)
        finally:
            dist.destroy_process_group()


def barrier(info: DistInfo) -> None:
    if info.distributed:
        dist.barrier()


def all_gather_tensor(t: torch.Tensor, info: DistInfo, device: torch.device | None = None) -> list[torch.Tensor]:
    """Gather a same-shaped tensor from every rank (CPU results; moved to ``device`` for nccl)."""
    if not info.distributed:
        return [t.detach().cpu()]
    work = t.detach().to(device) if (device is not None and info.backend == "nccl") else t.detach()
    out = [torch.empty_like(work) for _ in range(info.world_size)]
    dist.all_gather(out, work.contiguous())
    return [o.cpu() for o in out]


def unwrap(module: torch.nn.Module) -> torch.nn.Module:
    """The module inside a DistributedDataParallel (or the module itself)."""
    return module.module if isinstance(module, torch.nn.parallel.DistributedDataParallel) else module


# ------------------------------------------------------------------------------------------
# RNG and optimizer state without pickle
# ------------------------------------------------------------------------------------------

def capture_rng_state(generators: Mapping[str, torch.Generator | torch.Tensor] | None = None
                      ) -> tuple[dict[str, torch.Tensor], dict]:
    """The global RNG states (torch CPU/CUDA, numpy, python ``random``) and named generators as
    (tensors for safetensors, JSON-able dict). ``generators`` may hold generators or their
    ``get_state()`` tensors (e.g. gathered from other ranks)."""
    tensors: dict[str, torch.Tensor] = {"torch/cpu": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"torch/cuda/{i}"] = s.cpu()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    tensors["numpy/keys"] = torch.from_numpy(np.asarray(keys, dtype=np.int64))
    version, internal, gauss_next = random.getstate()
    for name, g in (generators or {}).items():
        tensors[f"generator/{name}"] = g.get_state() if isinstance(g, torch.Generator) else g.detach().cpu()
    meta = {"numpy": {"kind": kind, "pos": int(pos), "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
            "python": {"version": version, "internal": list(internal), "gauss_next": gauss_next}}
    return tensors, meta


def restore_rng_state(tensors: Mapping[str, torch.Tensor], meta: Mapping, *,
                      generators: Mapping[str, torch.Generator] | None = None, where: str = "rng",
                      global_state: bool = True) -> None:
    """Inverse of :func:`capture_rng_state`; every name in ``generators`` must be present.
    With ``global_state=False`` only the named generators are restored."""
    for name, g in (generators or {}).items():
        key = f"generator/{name}"
        if key not in tensors:
            raise CheckpointError(f"{where}: no state for generator {name!r} (has "
                                  f"{sorted(k[10:] for k in tensors if k.startswith('generator/'))})")
        g.set_state(tensors[key])
    if not global_state:
        return
    torch.set_rng_state(tensors["torch/cpu"])
    cuda = sorted((k for k in tensors if k.startswith("torch/cuda/")), key=lambda k: int(k.rsplit("/", 1)[1]))
    if cuda and torch.cuda.is_available() and torch.cuda.device_count() == len(cuda):
        torch.cuda.set_rng_state_all([tensors[k] for k in cuda])
    elif cuda:
        log.warning("%s: CUDA RNG states of %d devices not restored (%d available)", where, len(cuda),
                    torch.cuda.device_count() if torch.cuda.is_available() else 0)
    npm = meta["numpy"]
    np.random.set_state((npm["kind"], tensors["numpy/keys"].numpy().astype(np.uint32), npm["pos"],
                         npm["has_gauss"], npm["cached_gaussian"]))
    py = meta["python"]
    random.setstate((py["version"], tuple(py["internal"]), py["gauss_next"]))


def flatten_optimizer_state(state_dict: Mapping) -> tuple[dict[str, torch.Tensor], dict]:
    """``optimizer.state_dict()`` -> (tensors ``state/<id>/<name>``, JSON structure)."""
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict] = {}
    for pid, st in state_dict["state"].items():
        for k, v in st.items():
            if isinstance(v, torch.Tensor):
                tensors[f"state/{pid}/{k}"] = v
            else:
                scalars.setdefault(str(pid), {})[k] = v
    groups = [dict(g) for g in state_dict["param_groups"]]
    structure = {"param_groups": groups, "scalars": scalars,
                 "params": sorted(int(p) for p in state_dict["state"])}
    json.dumps(structure)  # raises TypeError early if something is not JSON-able
    return tensors, structure


def unflatten_optimizer_state(tensors: Mapping[str, torch.Tensor], structure: Mapping) -> dict:
    """Inverse of :func:`flatten_optimizer_state`."""
    state: dict[int, dict] = {int(p): {} for p in structure["params"]}
    for key, v in tensors.items():
        _, pid, name = key.split("/", 2)
        state.setdefault(int(pid), {})[name] = v
    for pid, d in structure["scalars"].items():
        state.setdefault(int(pid), {}).update(d)
    groups = []
    for g in structure["param_groups"]:
        g = dict(g)
        if isinstance(g.get("betas"), list):
            g["betas"] = tuple(g["betas"])
        groups.append(g)
    return {"state": state, "param_groups": groups}


# ------------------------------------------------------------------------------------------
# checkpoints
# ------------------------------------------------------------------------------------------

def list_checkpoints(directory: str | Path) -> list[tuple[int, Path]]:
    """Complete checkpoints (``step_N`` folders holding ``trainer.json``) in ``directory``, oldest first."""
    d = Path(directory)
    if not d.is_dir():
        return []
    out = []
    for p in d.iterdir():
        m = _STEP_DIR.match(p.name)
        if m and p.is_dir() and (p / "trainer.json").is_file():
            out.append((int(m.group(1)), p))
    return sorted(out)


def latest_checkpoint(directory: str | Path) -> Path | None:
    """The newest complete checkpoint folder in ``directory``, or None."""
    cks = list_checkpoints(directory)
    return cks[-1][1] if cks else None


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def _discard(folder: Path) -> None:
    """Delete a checkpoint folder by renaming it out of :func:`list_checkpoints`' sight first (one atomic
    step), then removing the renamed tree: a kill in between leaves a hidden ``.step_N.pruned-*`` folder
    (removed by the next :func:`save_checkpoint`), never a ``step_N`` that lists as complete but lacks files."""
    hidden = folder.parent / f".{folder.name}.pruned-{os.getpid()}"
    if hidden.exists():
        shutil.rmtree(hidden, ignore_errors=True)
    os.replace(folder, hidden)
    _fsync_dir(folder.parent)
    shutil.rmtree(hidden, ignore_errors=True)


def save_checkpoint(directory: str | Path, step: int, *, model: torch.nn.Module, model_kind: str,
                    model_config: dict, optimizer: torch.optim.Optimizer | Mapping[str, torch.optim.Optimizer],
                    scheduler: Any = None, scaler: Any = None,
                    generators: Mapping[str, torch.Generator | torch.Tensor] | None = None,
                    extra: Mapping[str, Any] | None = None, keep: int = 2) -> Path:
    """Write ``directory/step_<step>/`` atomically (see the module docstring) and keep the newest
    ``keep`` checkpoints. Call on one process only (rank 0). Returns the checkpoint folder."""
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise ValueError(f"step: expected an integer >= 0, got {step!r}")
    if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
        raise ValueError(f"keep: expected an integer >= 1, got {keep!r}")
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    for pattern in (".step_*.partial-*", ".step_*.pruned-*"):  # left by a killed process
        for stale in root.glob(pattern):
            shutil.rmtree(stale, ignore_errors=True)
    final = root / f"step_{step:08d}"
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.partial-", dir=root))
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o777 & ~umask)  # mkdtemp makes it 0700
    try:
        save_module(unwrap(model), tmp, kind=model_kind, config=model_config)
        if isinstance(optimizer, Mapping):  # several optimizers (e.g. a GAN's G and D)
            opt_structure = {"multiple": {}}
            for name, opt in optimizer.items():
                tensors_i, structure_i = flatten_optimizer_state(opt.state_dict())
                atomic_save_safetensors(tensors_i, tmp / f"optimizer.{name}.safetensors")
                opt_structure["multiple"][name] = structure_i
        else:
            opt_tensors, opt_structure = flatten_optimizer_state(optimizer.state_dict())
            atomic_save_safetensors(opt_tensors, tmp / "optimizer.safetensors")
        rng_tensors, rng_meta = capture_rng_state(generators)
        atomic_save_safetensors(rng_tensors, tmp / "rng.safetensors")
        meta = {
            "format": "sofgan-lab/train-checkpoint", "format_version": CHECKPOINT_FORMAT_VERSION,
            "library_version": __version__, "step": step, "model_kind": model_kind,
            "optimizer": opt_structure,
            "scheduler": scheduler.state_dict() if scheduler is not None else None,
            "scaler": scaler.state_dict() if scaler is not None else None,
            "rng": rng_meta, "extra": _jsonable(dict(extra or {})),
        }
        atomic_write_bytes(tmp / "trainer.json", (json.dumps(meta, indent=1, allow_nan=False) + "\n").encode())
        _fsync_dir(tmp)
        if final.exists():  # re-saving the same step (e.g. a resumed run's last step)
            _discard(final)
        os.replace(tmp, final)
        _fsync_dir(root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for _, old in list_checkpoints(root)[:-keep]:
        _discard(old)
    log.info("checkpoint: step %d -> %s", step, final)
    return final


def _load_optimizers(optimizer, structure, read, meta_path: Path) -> None:
    """Fill ``optimizer`` (one, or a mapping of names to optimizers) from a checkpoint's ``optimizer``
    record ``structure`` and its safetensors files (``read(name)``)."""
    if isinstance(optimizer, Mapping):
        saved = structure.get("multiple") if isinstance(structure, Mapping) else None
        if saved is None or set(saved) != set(optimizer):
            raise CheckpointError(f"checkpoint: {meta_path} holds optimizers {sorted(saved or ['(one)'])}, "
                                  f"expected {sorted(optimizer)}")
        for name, opt in optimizer.items():
            opt.load_state_dict(unflatten_optimizer_state(read(f"optimizer.{name}.safetensors"), saved[name]))
    else:
        if "multiple" in structure:
            raise CheckpointError(f"checkpoint: {meta_path} holds several optimizers {sorted(structure['multiple'])}")
        optimizer.load_state_dict(unflatten_optimizer_state(read("optimizer.safetensors"), structure))


def load_checkpoint(path: str | Path, *, model: torch.nn.Module,
                    optimizer: torch.optim.Optimizer | Mapping[str, torch.optim.Optimizer] | None = None,
                    scheduler: Any = None, scaler: Any = None,
                    generators: Mapping[str, torch.Generator] | None = None,
                    restore_global_rng: bool = True) -> dict:
    """Load a :func:`save_checkpoint` folder into the given objects (in place).

    The model's state dict must match exactly (keys and shapes). Returns the ``trainer.json``
    dict (``step``, ``extra``, ...). Raises :class:`CheckpointError` naming the file."""
    d = Path(path)
    meta_path = d / "trainer.json"
    if not meta_path.is_file():
        raise CheckpointError(f"checkpoint: {meta_path} is missing")
    meta = read_json(meta_path, "checkpoint")
    if meta.get("format") != "sofgan-lab/train-checkpoint":
        raise CheckpointError(f"checkpoint: {meta_path} is not a sofgan-lab training checkpoint")
    if json_int(meta, "format_version", meta_path, "checkpoint", default=0) > CHECKPOINT_FORMAT_VERSION:
        raise CheckpointError(f"checkpoint: {meta_path} has format version {meta['format_version']}, newer than "
                              f"this sofgan-lab reads ({CHECKPOINT_FORMAT_VERSION})")
    json_int(meta, "step", meta_path, "checkpoint")
    json_dict(meta, "rng", meta_path, "checkpoint")
    if optimizer is not None:
        json_dict(meta, "optimizer", meta_path, "checkpoint")

    def read(name: str) -> dict[str, torch.Tensor]:
        p = d / name
        if not p.is_file():
            raise CheckpointError(f"checkpoint: {p} is missing")
        try:
            return load_file(str(p), device="cpu")
        except Exception as exc:
            raise CheckpointError(f"checkpoint: {p} cannot be read ({exc})") from None

    target = unwrap(model)
    state = read("model.safetensors")
    own = target.state_dict()
    missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    if missing or unexpected:
        raise CheckpointError(f"checkpoint: {d / 'model.safetensors'}: missing keys {missing[:5]}, "
                              f"unexpected keys {unexpected[:5]}")
    for k, v in state.items():
        if v.shape != own[k].shape:
            raise CheckpointError(f"checkpoint: {d / 'model.safetensors'}: key {k!r} has shape {tuple(v.shape)}, "
                                  f"the model expects {tuple(own[k].shape)}")
    target.load_state_dict(state)
    if optimizer is not None:
        try:
            _load_optimizers(optimizer, meta["optimizer"], read, meta_path)
        except (KeyError, TypeError, IndexError, AttributeError) as exc:  # a tampered 'optimizer' record
            raise CheckpointError(f"checkpoint: {meta_path}: key 'optimizer' is incomplete or malformed "
                                  f"({exc!r})") from None
    if scheduler is not None and meta.get("scheduler") is not None:
        scheduler.load_state_dict(meta["scheduler"])
    if scaler is not None and meta.get("scaler"):
        scaler.load_state_dict(meta["scaler"])
    rng = read("rng.safetensors")
    try:
        restore_rng_state(rng, meta["rng"], generators=generators,
                          where=f"checkpoint: {d / 'rng.safetensors'}", global_state=restore_global_rng)
    except (KeyError, TypeError, IndexError) as exc:  # a tampered 'rng' record
        raise CheckpointError(f"checkpoint: {meta_path}: key 'rng' is incomplete or malformed ({exc!r})") from None
    log.info("checkpoint: resumed step %d from %s", meta["step"], d)
    return meta


def parameters_checksum(module: torch.nn.Module) -> str:
    """SHA-256 over the names and raw bytes of every parameter, in order (exact comparisons)."""
    import hashlib

    h = hashlib.sha256()
    for name, p in unwrap(module).named_parameters():
        h.update(name.encode())
        h.update(p.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()
