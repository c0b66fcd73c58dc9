"""``import-official`` (the releases' checkpoints, sofgan_lab.io.official -> sofgan_lab.pipeline)."""
from __future__ import annotations

from pathlib import Path

from ._common import Command, flagged


def _import_official(args) -> dict:
    """Load both official checkpoints and save them as one native :class:`~sofgan_lab.pipeline.SofGAN`."""
    from ..io.checkpoints import CheckpointError
    from ..io.official import fit_official_space, load_official_sof, load_official_sofgan
    from ..pipeline import SofGAN

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out: {out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not args.overwrite:
        raise ValueError(f"--out: {out} is not empty (use --overwrite to write into it)")
    try:
        sof = load_official_sof(args.sof)
    except CheckpointError as exc:
        raise ValueError(f"--sof: {exc}") from None
    try:
        siw = load_official_sofgan(args.sofgan, pixel_norm=args.pixel_norm)
    except CheckpointError as exc:
        raise ValueError(f"--sofgan: {exc}") from None
    space = fit_official_space(sof)
    try:
        pipe = SofGAN(sof=sof, siw=siw, space=space)
    except (ValueError, TypeError) as exc:  # e.g. a model with another number of classes
        raise ValueError(flagged(str(exc), {"sof": "--sof", "siw": "--sofgan", "space": "--sof"})) from None
    pipe.save_pretrained(out)
    return {"out": str(out), "sof": sof.config.to_dict(), "sofgan": siw.config.to_dict(),
            "space": None if space is None else space.num_components,
            "latent_codes": int(sof.latents.weight.shape[0])}


def add_commands(sub) -> None:
    imp = Command(sub, "import-official", _import_official,
                  help="convert the official SOF and SofGAN checkpoints into a native pipeline folder")
    imp.arg("--sof", type=Path, required=True, metavar="PATH",
            help="SOF release checkpoint (.pth with a 'model' entry, or .safetensors)")
    imp.arg("--sofgan", type=Path, required=True, metavar="PATH",
            help="SofGAN release checkpoint (.pt with a 'g_ema' entry, or .safetensors)")
    imp.arg("--out", type=Path, required=True, metavar="DIR",
            help="output folder for the pipeline (absent or empty unless --overwrite)")
    imp.arg("--pixel-norm", choices=("split", "whole"), default="split",
            help="mapping PixelNorm: split (the release's training and notebooks, default) or whole "
                 "(its painter UI)")
    imp.arg("--overwrite", action="store_true", help="write into a non-empty DIR")
