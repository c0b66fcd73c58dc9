"""Checkpoints: the native format (``config.json`` + ``*.safetensors``) and the official
releases' checkpoints (SOF and SofGAN). Loading never executes pickled code."""
from .checkpoints import CheckpointError, load_module, save_module
from .official import load_official_sof, load_official_sofgan, official_sof_render
from .torchfile import load_torch_file

__all__ = ["CheckpointError", "load_module", "save_module", "load_torch_file", "load_official_sof",
           "load_official_sofgan", "official_sof_render"]
