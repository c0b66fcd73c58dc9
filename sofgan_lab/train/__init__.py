"""Trainers: the SOF geometry trainer, the SIW texture trainer and the face-parser trainer. Each builds its
data, models and step function and hands them to the one training loop (:mod:`.loop`: steps, averaged
log records, evaluation hooks, checkpoints, resume, the finish, DDP, the progress bar), over the shared
checkpoint, LR schedule, JSONL logging and torchrun helpers (:mod:`.common`).

Importing :mod:`sofgan_lab.train` is cheap; the submodules load torch on use.
"""
from __future__ import annotations

__all__ = ["SOFScanDataset", "RayBatch", "ViewSplit", "SOFTrainConfig", "SOFTrainResult", "train_sof",
           "evaluate_views", "evaluate_sof_model", "SIWTrainConfig", "train_siw", "load_siw_generator",
           "evaluate_siw", "ParserTrainConfig", "ParserTrainResult", "train_parser", "evaluate_parser"]

_LAZY = {
    "SOFScanDataset": "sof_data", "RayBatch": "sof_data", "ViewSplit": "sof_data",
    "SOFTrainConfig": "sof_trainer", "SOFTrainResult": "sof_trainer", "train_sof": "sof_trainer",
    "evaluate_views": "sof_trainer", "evaluate_sof_model": "sof_eval",
    "SIWTrainConfig": "siw_trainer", "train_siw": "siw_trainer", "load_siw_generator": "siw_trainer",
    "evaluate_siw": "siw_trainer",
    "ParserTrainConfig": "parser_trainer", "ParserTrainResult": "parser_trainer", "train_parser": "parser_trainer",
    "evaluate_parser": "parser_trainer",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
