"""Checkpoints: the native format (``config.json`` + ``*.safetensors``) and, later, the official
releases' checkpoints. Loading never executes pickled code."""
from .checkpoints import CheckpointError, load_module, save_module

__all__ = ["CheckpointError", "load_module", "save_module"]
