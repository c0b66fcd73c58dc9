"""Checkpoints in the native format (``config.json`` + ``*.safetensors``, atomic writes) and a torch
file reader that never executes pickled code. The official releases' checkpoints (SOF and SofGAN)
are read by :mod:`sofgan_lab.io.official`, which builds models and so sits above them: import it
from there (``from sofgan_lab.io.official import load_official_sof``)."""
from .checkpoints import CheckpointError, load_module, save_module
from .torchfile import load_torch_file

__all__ = ["CheckpointError", "load_module", "save_module", "load_torch_file"]
