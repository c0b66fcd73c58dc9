"""The ``sofgan-lab`` command.

::

    sofgan-lab synth scans OUT --instances 122 --views 64 --size 128 --seed 0
    sofgan-lab synth photos OUT --count N --size 128 --seed 0 [--with-segmaps]
    sofgan-lab demo OUT            # headless: a few portraits and a contact sheet
    sofgan-lab train sof DATA --out RUN [--config small|official] [--steps N] [--batch-views N]
                                        [--rays-per-view N] [--lr X] [--resume] [--device cpu|cuda] [--amp]
    sofgan-lab eval sof MODEL [--data DATA] [--heldout-views 8] [--seed S] [--instances N]
                                                   # prints one JSON line (miou, per-class IoU, ...)
    sofgan-lab train parser PHOTOS --out RUN [--steps N] [--batch N] [--lr X] [--crop N]
                                   [--eval PHOTOS2] [--amp] [--resume] [--device cpu|cuda]
    sofgan-lab eval parser MODEL --data PHOTOS [--blur SIGMA] [--noise STD] [--flip-average]
                                                   # prints one JSON line (miou, per-class IoU, ...)
    sofgan-lab eval siw MODEL --segmaps SEGMAPS [--n N] [--parser demo|DIR] [--truncation PSI]
                        [--group hair] [--dilation 5] [--which g_ema|g]
                                                   # a texture generator's parser mIoU and hair leakage
    sofgan-lab train siw IMAGES SEGMAPS --out RUN [--size 128] [--preset demo|official] [--resume]
                         [--steps N] [--batch N] [--lr X] [--r1-gamma X] [--pl-weight X]
                         [--region-mix-prob X] [--region-mode exact|fast] [--scale-max X] [--no-flip]
                         [--segmap-labels auto|sof20|sofgan17|celebamask19] [--sample-every N]
                         [--checkpoint-every N] [--log-every N] [--eval-every N --parser DIR|demo]
                         [--device cpu|cuda] [--amp-cpu] [--stream-images] [--seed S] [--until N] [--limit N]
                                                   # the SIW-StyleGAN texture generator (unpaired)
    sofgan-lab eval metrics --model demo|DIR --metrics diversity,ssg,fvv,fid --n 2000 [--real PHOTOS]
                            [--net alex|vgg|squeeze] [--untrained-backbone] [--extractor inception|parser]
                            [--csv OUT.csv] [--seed S]    # prints the paper-style table (Markdown)
    sofgan-lab import-official --sof PATH --sofgan PATH --out DIR [--pixel-norm split|whole] [--overwrite]
                                                   # official checkpoints -> a native pipeline folder
    sofgan-lab generate --model demo|DIR --geometry-seed 1 --texture-seed 2 [--yaw DEG] [--pitch DEG]
                        [--fov DEG] [--truncation PSI] [--texture-seed-b 7 --region hair=1 ...]
                        [--segmap SEG.png] --out a.png    # one portrait (PNG or JPEG)
    sofgan-lab video --model demo|DIR --path yaw|spiral --frames 60 [--fps 24] [--geometry-seed 1]
                     [--texture-seed 2] [--truncation PSI] --out v.mp4|v.gif   # free-view video

    sofgan-lab data celebamask ROOT --out SEGMAPS [--label-set sof20|sofgan17|celebamask19] [--size N]
                               [--limit N] [--workers N] [--overwrite]
                                                   # CelebAMask-HQ part masks -> a segmap folder
    sofgan-lab data images SOURCE --out DIR [--size 256] [--limit N] [--format png|jpg] [--workers N]
                                                   # CelebA-HQ / FFHQ photos resized once for training
    sofgan-lab data standin celebamask|ffhq OUT [--count 8] [--size N] [--seed 0]
                                                   # tiny offline stand-ins with the real layouts

Bad arguments end with a one-line error naming the argument and a non-zero exit status
(2), never a traceback.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Sequence

from . import __version__

__all__ = ["main", "build_parser"]

log = logging.getLogger("sofgan_lab.cli")


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def _channel_table(text: str) -> dict[int, int]:
    """``RES:C[,RES:C...]`` -> {RES: C}."""
    table = {}
    for item in text.split(","):
        res, sep, width = item.strip().partition(":")
        try:
            if not sep:
                raise ValueError
            table[int(res)] = int(width)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected RES:WIDTH pairs separated by commas (e.g. 64:64,128:32), "
                                             f"got {text!r}") from None
    return table


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sofgan-lab", description="A Jupyter-first kit for exploring SofGAN.")
    p.add_argument("--version", action="version", version=f"sofgan-lab {__version__}")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars or info messages")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    synth = sub.add_parser("synth", help="make data from the procedural portrait world")
    ssub = synth.add_subparsers(dest="what", required=True, metavar="WHAT")

    def common(q):
        q.add_argument("out", type=Path, help="output folder (absent or empty unless --overwrite)")
        q.add_argument("--size", type=_int, default=128, help="image side in pixels (default 128)")
        q.add_argument("--seed", type=_int, default=0, help="seed; the same seed gives byte-identical files")
        q.add_argument("--camera", choices=("orthographic", "perspective"), default="orthographic",
                       help="camera model (default: orthographic, the release's sampler)")
        q.add_argument("--framing", choices=("portrait", "official"), default="portrait",
                       help="portrait (default: the head fills the frame, shoulders at the bottom edge) or "
                            "official (the release's whole-bust framing)")
        q.add_argument("--workers", type=_int, default=None, help="processes (default: all cores, at most 8)")
        q.add_argument("--overwrite", action="store_true", help="replace a non-empty OUT")

    scans = ssub.add_parser("scans", help="multi-view segmaps in the SOF training layout")
    common(scans)
    scans.add_argument("--instances", type=_int, default=122, help="number of heads (default 122)")
    scans.add_argument("--views", type=_int, default=64, help="random views per head (default 64)")
    scans.add_argument("--supersample", type=_int, default=1, help="label anti-aliasing factor (default 1)")

    photos = ssub.add_parser("photos", help="shaded photos (optionally with their segmaps)")
    common(photos)
    photos.add_argument("--count", type=_int, required=True, help="number of photos")
    photos.add_argument("--with-segmaps", action="store_true", help="also write SOF-20 segmaps (evaluation only)")
    photos.add_argument("--supersample", type=_int, default=2, help="anti-aliasing factor (default 2)")

    demo = sub.add_parser("demo", help="headless demo: write a few portraits and a contact sheet")
    demo.add_argument("out", type=Path, nargs="?", default=Path("out/demo"), help="output folder (default out/demo)")
    demo.add_argument("--count", type=_int, default=8, help="number of portraits (default 8)")
    demo.add_argument("--size", type=_int, default=128, help="image side in pixels (default 128)")
    demo.add_argument("--seed", type=_int, default=0, help="seed (default 0)")
    demo.add_argument("--source", choices=("auto", "pipeline", "synthetic"), default="auto",
                      help="portraits from the demo pipeline, or the synthetic world's photos (default auto: the "
                           "pipeline when the demo models are present)")
    demo.add_argument("--overwrite", action="store_true",
                      help="replace a non-empty OUT (a previous demo output is replaced anyway)")

    train = sub.add_parser("train", help="train a model")
    tsub = train.add_subparsers(dest="what", required=True, metavar="WHAT")
    tsof = tsub.add_parser("sof", help="train the semantic occupancy field on multi-view segmaps")
    tsof.add_argument("data", type=Path, metavar="DATA", help="dataset in the SOF layout (sofgan-lab synth scans)")
    tsof.add_argument("--out", type=Path, required=True, help="run folder (checkpoints, metrics.jsonl, model/)")
    tsof.add_argument("--config", choices=("small", "official"), default="small",
                      help="network sizes (default: small, the demo's; official: the release's)")
    tsof.add_argument("--steps", type=_int, default=None, help="optimisation steps (default 100000)")
    tsof.add_argument("--batch-views", type=_int, default=None, help="views per step (default 8)")
    tsof.add_argument("--rays-per-view", type=_int, default=None, help="random pixels per view (default 4096)")
    tsof.add_argument("--lr", type=_float, default=None, help="peak learning rate (default 1e-4)")
    tsof.add_argument("--warmup-steps", type=_int, default=None, help="linear warm-up steps (default 1000)")
    tsof.add_argument("--balanced-fraction", type=_float, default=None,
                      help="share of each view's rays drawn class-balanced (default 0.5; release 0)")
    tsof.add_argument("--latent-lr-scale", type=_float, default=None,
                      help="latent table LR as a multiple of --lr (default 10; release 1)")
    tsof.add_argument("--holdout-views", type=_int, default=None, help="views per instance held out (default 2)")
    tsof.add_argument("--eval-every", type=_int, default=None, help="steps between held-out evaluations")
    tsof.add_argument("--eval-instances", type=_int, default=None, help="instances in each evaluation (0 = all)")
    tsof.add_argument("--checkpoint-every", type=_int, default=None, help="steps between checkpoints")
    tsof.add_argument("--seed", type=_int, default=None, help="seed of the init, view split and sampler (default 0)")
    tsof.add_argument("--init", type=Path, default=None, metavar="MODEL",
                      help="start from a saved SOF (e.g. an earlier run's model/) with a new schedule")
    tsof.add_argument("--resume", action="store_true", help="continue the run in --out from its newest checkpoint")
    tsof.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="device (default auto)")
    tsof.add_argument("--amp", action="store_true", help="mixed precision on CUDA (bf16 where supported, else fp16)")

    ev = sub.add_parser("eval", help="evaluate a model")
    esub = ev.add_subparsers(dest="what", required=True, metavar="WHAT")
    esof = esub.add_parser("sof", help="held-out mIoU of a trained SOF; prints one JSON line")
    esof.add_argument("model", type=Path, metavar="MODEL", help="model folder (RUN/model) or run folder")
    esof.add_argument("--data", type=Path, default=None,
                      help="dataset with the training instances (default: regenerate the synthetic ones)")
    esof.add_argument("--heldout-views", type=_int, default=None,
                      help="views per instance (default: the run's held-out views with --data, else 8)")
    esof.add_argument("--seed", type=_int, default=None,
                      help="view split seed with --data (default: the run's) or new cameras' seed (default 0)")
    esof.add_argument("--instances", type=_int, default=None, help="evaluate the first N instances (default all)")
    esof.add_argument("--framing", choices=("portrait", "official"), default=None,
                      help="framing of the new cameras without --data (default: the training data's)")
    esof.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="device (default auto)")
    _add_parser_commands(tsub, esub)
    _add_siw_command(tsub)
    _add_import_command(sub)
    _add_pipeline_commands(sub)
    _add_metrics_command(esub)
    _add_data_commands(sub)
    return p


def _add_parser_commands(tsub, esub) -> None:
    """``train parser`` and ``eval parser`` (the synthetic face parser, sofgan_lab.parsing)."""
    tp = tsub.add_parser("parser", help="train the face parser on photos with segmaps")
    tp.add_argument("photos", type=Path, metavar="PHOTOS",
                    help="photo folder with segmaps (sofgan-lab synth photos --with-segmaps)")
    tp.add_argument("--out", type=Path, required=True, help="run folder (checkpoints, metrics.jsonl, model/)")
    tp.add_argument("--steps", type=_int, default=None, help="optimisation steps (default 5000)")
    tp.add_argument("--batch", type=_int, default=None, help="crops per step (default 16)")
    tp.add_argument("--lr", type=_float, default=None, help="peak learning rate (default 2e-3)")
    tp.add_argument("--crop", type=_int, default=None,
                    help="training crop side, a multiple of 16 (default 64; 0 = whole photos)")
    tp.add_argument("--warmup-steps", type=_int, default=None, help="linear warm-up steps (default 100)")
    tp.add_argument("--eval", type=Path, default=None, metavar="PHOTOS2",
                    help="held-out photo folder with segmaps for the mIoU (default: none)")
    tp.add_argument("--eval-every", type=_int, default=None, help="steps between held-out evaluations (default 1000)")
    tp.add_argument("--checkpoint-every", type=_int, default=None, help="steps between checkpoints (default 500)")
    tp.add_argument("--seed", type=_int, default=None, help="seed of the init and the augmentations (default 0)")
    tp.add_argument("--amp", action="store_true",
                    help="bfloat16 autocast (CUDA, or CPUs with AVX512-BF16/AMX: ~2x faster)")
    tp.add_argument("--resume", action="store_true", help="continue the run in --out from its newest checkpoint")
    tp.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="device (default auto)")

    ep = esub.add_parser("parser", help="mIoU of a face parser on photos with segmaps; prints one JSON line")
    ep.add_argument("model", type=Path, metavar="MODEL", help="parser folder (RUN/model), run folder or 'demo'")
    ep.add_argument("--data", type=Path, required=True, metavar="PHOTOS",
                    help="photo folder with segmaps (sofgan-lab synth photos --with-segmaps)")
    ep.add_argument("--blur", type=_float, default=0.0, help="degrade first: Gaussian blur sigma in pixels (default 0)")
    ep.add_argument("--noise", type=_float, default=0.0,
                    help="degrade first: Gaussian noise std as a fraction of the [0, 1] range (default 0)")
    ep.add_argument("--seed", type=_int, default=0, help="seed of the noise (default 0)")
    ep.add_argument("--batch", type=_int, default=32, help="photos per forward pass (default 32)")
    ep.add_argument("--flip-average", action="store_true",
                    help="average each photo's and its mirror image's class probabilities (2x the cost)")
    ep.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="device (default auto)")

    es = esub.add_parser("siw", help="a texture generator's parser mIoU against its input segmaps and its hair-edit "
                                     "leakage; prints one JSON line")
    es.add_argument("model", type=Path, metavar="MODEL",
                    help="'demo', a generator folder (RUN/model), a run folder or a checkpoint folder (RUN/checkpoints/step_N)")
    es.add_argument("--segmaps", type=Path, required=True, metavar="SEGMAPS",
                    help="label-map folder (or a folder with segmaps/), e.g. held-out sofgan-lab synth photos --with-segmaps")
    es.add_argument("--n", type=_int, default=None, help="evaluate the first N segmaps (default all)")
    es.add_argument("--parser", default="demo", metavar="demo|DIR", help="face parser (default: the demo parser)")
    es.add_argument("--truncation", type=_float, default=1.0, help="truncation psi of the styles (default 1.0)")
    es.add_argument("--group", default="hair", help="style group whose style changes for the leakage (default hair)")
    es.add_argument("--dilation", type=_int, default=5, help="pixels the group's region is dilated by (default 5)")
    es.add_argument("--which", choices=("g_ema", "g"), default="g_ema",
                    help="from a checkpoint: the EMA generator (default) or the raw one")
    es.add_argument("--seed", type=_int, default=0, help="seed of the styles (default 0)")
    es.add_argument("--batch", type=_int, default=8, help="segmaps per forward pass (default 8)")
    es.add_argument("--photos", type=Path, default=None, metavar="PHOTOS",
                    help="photos with segmaps for the colour-diversity and region-mix references (default: the "
                         "--segmaps folder when it holds images/, as sofgan-lab synth photos --with-segmaps writes)")
    es.add_argument("--styles", type=_int, default=128, help="styles per geometry for the colour diversity (default 128)")
    es.add_argument("--geometries", type=_int, default=8,
                    help="segmaps the styles are drawn on for the colour diversity (default 8)")
    es.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="device (default auto)")


def _eval_siw(args) -> dict:
    import torch

    from .parsing import FaceParser
    from .train.common import resolve_device
    from .train.siw_data import SegmapFolder
    from .train.siw_trainer import evaluate_siw, load_siw_generator

    device = resolve_device(args.device)
    try:
        G = load_siw_generator(args.model, which=args.which, map_location=device)  # "demo" included
    except FileNotFoundError as exc:  # no shipped demo texture model
        raise ValueError(f"model: {str(exc).partition(': ')[2] or exc}") from None
    parser_dir = "demo" if args.parser == "demo" else Path(args.parser)
    if parser_dir != "demo" and not parser_dir.is_dir():
        raise ValueError(f"parser: {parser_dir} is not a folder")
    parser = FaceParser.from_pretrained(parser_dir, map_location=device)
    if not args.segmaps.is_dir():
        raise ValueError(f"segmaps: {args.segmaps} is not a folder")
    if args.n is not None and args.n < 1:
        raise ValueError(f"n: expected a positive number of segmaps, got {args.n}")
    try:
        segs = SegmapFolder(args.segmaps, G.config.size, limit=args.n).data
    except FileNotFoundError as exc:  # an empty folder
        raise ValueError(f"segmaps: {str(exc).partition(': ')[2] or exc}") from None
    photos_dir = args.photos
    if photos_dir is None and (args.segmaps / "images").is_dir():
        photos_dir = args.segmaps
    photos = photo_segs = None
    if photos_dir is not None:
        from .train.siw_data import ImageFolder

        if not Path(photos_dir).is_dir():
            raise ValueError(f"photos: {photos_dir} is not a folder")
        for sub in ("images", "segmaps"):
            if not (Path(photos_dir) / sub).is_dir():
                raise ValueError(f"photos: {photos_dir} has no {sub}/ (write it with sofgan-lab synth photos "
                                 "--with-segmaps)")
        try:
            imgs = ImageFolder(photos_dir, G.config.size, limit=args.n)
            photo_segs = SegmapFolder(photos_dir, G.config.size, limit=args.n).data
        except FileNotFoundError as exc:  # an empty images/ or segmaps/
            raise ValueError(f"photos: {str(exc).partition(': ')[2] or exc}") from None
        if len(imgs) != photo_segs.shape[0]:
            raise ValueError(f"photos: {photos_dir} holds {len(imgs)} images but {photo_segs.shape[0]} segmaps")
        photos = imgs.batch(torch.arange(len(imgs)))
    if args.styles < 2:
        raise ValueError(f"styles: expected an integer >= 2, got {args.styles}")
    if args.geometries < 1:
        raise ValueError(f"geometries: expected an integer >= 1, got {args.geometries}")
    with torch.no_grad():
        rep = evaluate_siw(G, parser, segs, seed=args.seed, truncation=args.truncation, group=args.group,
                           dilation=args.dilation, batch=args.batch, photos=photos, photo_segmaps=photo_segs,
                           n_styles=args.styles, n_geometries=args.geometries)
    return {"model": str(args.model), "segmaps": str(args.segmaps), "parser": str(args.parser), **_nan_to_none(rep)}


def _nan_to_none(value):
    """NaN (a metric undefined here, e.g. a region fewer than two photos show) -> None (JSON null)."""
    if isinstance(value, dict):
        return {k: _nan_to_none(v) for k, v in value.items()}
    return None if isinstance(value, float) and value != value else value


def _demo_available() -> bool:
    from .demo import demo_dir

    try:
        for part in ("sof", "siw", "geometry_space"):
            demo_dir(part)
    except FileNotFoundError:
        return False
    return True


def _demo(args) -> Path:
    """Write portraits, their segmaps and a contact sheet: from the demo pipeline (geometry seed and
    texture seed ``seed + i``), or the synthetic world's shaded photos when the demo models are absent
    (or with ``--source synthetic``)."""
    import numpy as np
    from PIL import Image

    from .synthetic.writers import write_photos

    out_dir = Path(args.out)
    previous = out_dir / "contact_sheet.png"
    # A previous demo in OUT is replaced; any other non-empty folder needs --overwrite.
    overwrite = args.overwrite or (previous.is_file() and (out_dir / "index.json").is_file())
    if args.count < 1:
        raise ValueError(f"count: expected an integer >= 1, got {args.count}")
    if not 8 <= args.size <= 4096:
        raise ValueError(f"size: expected an integer in 8..4096, got {args.size}")
    source = args.source
    if source == "auto":
        source = "pipeline" if _demo_available() else "synthetic"
        if source == "synthetic":
            log.info("the demo texture model is not in data/demo/siw yet: writing the synthetic world's photos")
    if source == "synthetic":
        out = write_photos(out_dir, count=args.count, size=args.size, seed=args.seed, with_segmaps=True,
                           overwrite=overwrite, progress=not args.quiet)
    else:
        out = _demo_portraits(out_dir, args, overwrite)
    tiles = [np.asarray(Image.open(out / "images" / f"{i:05d}.png")) for i in range(args.count)]
    vis = [np.asarray(Image.open(out / "segmaps_vis" / f"{i:05d}.png")) for i in range(args.count)]
    sheet = np.concatenate([np.concatenate(vis, 1), np.concatenate(tiles, 1)], 0)
    Image.fromarray(sheet).save(out / "contact_sheet.png")
    return out


def _demo_portraits(out: Path, args, overwrite: bool) -> Path:
    """``count`` demo-pipeline portraits at ``size`` px into ``out`` (images/, segmaps/, segmaps_vis/, index.json)."""
    import io
    import shutil

    from PIL import Image

    from .io.checkpoints import atomic_write_bytes
    from .pipeline import SofGAN

    if out.exists() and not out.is_dir():
        raise ValueError(f"out: {out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise ValueError(f"out: {out} is not empty (pass --overwrite to replace its contents)")
        shutil.rmtree(out)
    from .io.checkpoints import CheckpointError

    try:
        pipe = SofGAN.from_pretrained("demo")
    except (FileNotFoundError, CheckpointError) as exc:
        raise ValueError(f"--source: {str(exc).partition(': ')[2] or exc}") from None
    seeds = [args.seed + i for i in range(args.count)]
    portraits = [p for k in range(0, len(seeds), 8)
                 for p in pipe(geometry=seeds[k:k + 8], texture=seeds[k:k + 8])]

    def png(im) -> bytes:
        buf = io.BytesIO()
        im.save(buf, format="PNG")
        return buf.getvalue()

    for i, p in enumerate(portraits):
        image, seg = p.image, Image.fromarray(p.segmap)
        vis = p.segmap_image("sof20")
        if image.size != (args.size, args.size):
            image = image.resize((args.size, args.size), Image.LANCZOS)
        if seg.size != (args.size, args.size):
            seg, vis = (im.resize((args.size, args.size), Image.NEAREST) for im in (seg, vis))
        for sub, im in (("images", image), ("segmaps", seg), ("segmaps_vis", vis)):
            atomic_write_bytes(out / sub / f"{i:05d}.png", png(im))
    index = {"format": "sofgan-lab/demo-portraits", "generator": f"sofgan-lab {__version__}", "model": "demo",
             "count": args.count, "size": args.size, "seed": args.seed, "label_set": "sof20",
             "geometry_seeds": seeds, "texture_seeds": seeds, "truncation": pipe.truncation}
    atomic_write_bytes(out / "index.json", (json.dumps(index, indent=2) + "\n").encode())
    return out


# CLI flag names for library argument names in error messages.
_FLAGS = {"size": "--size", "seed": "--seed", "instances": "--instances", "views": "--views",
          "count": "--count", "supersample": "--supersample", "workers": "--workers", "out": "OUT",
          "camera": "--camera"}


_TRAIN_FLAGS = {"root": "DATA", "data_root": "DATA", "out": "--out", "steps": "--steps",
                "batch_views": "--batch-views", "rays_per_view": "--rays-per-view", "lr": "--lr",
                "device": "--device", "warmup_steps": "--warmup-steps", "model_config": "--config",
                "checkpoint": "--resume", "balanced_fraction": "--balanced-fraction",
                "latent_lr_scale": "--latent-lr-scale", "holdout_views": "--holdout-views",
                "eval_every": "--eval-every", "eval_instances": "--eval-instances",
                "checkpoint_every": "--checkpoint-every", "seed": "--seed", "init_from": "--init"}
_EVAL_FLAGS = {"model": "MODEL", "directory": "MODEL", "data": "--data", "root": "--data",
               "heldout_views": "--heldout-views", "seed": "--seed", "instances": "--instances",
               "device": "--device", "framing": "--framing"}


def _flagged(message: str, flags: dict[str, str] = _FLAGS) -> str:
    head, sep, rest = message.partition(":")
    return f"{flags[head]}:{rest}" if sep and head in flags else message


def _train_sof(args) -> dict:
    import dataclasses

    from .geometry.sof import SOFConfig
    from .train.sof_trainer import SOFTrainConfig, train_sof

    model_config = SOFConfig.small() if args.config == "small" else SOFConfig.official()
    names = ("steps", "batch_views", "rays_per_view", "lr", "warmup_steps", "balanced_fraction",
             "latent_lr_scale", "holdout_views", "eval_every", "eval_instances", "checkpoint_every", "seed")
    overrides = {k: getattr(args, k) for k in names if getattr(args, k) is not None}
    if args.amp:
        overrides["amp"] = True
    cfg = SOFTrainConfig(device=args.device)
    if "steps" in overrides:  # keep the warm-up within short runs
        overrides.setdefault("warmup_steps", min(cfg.warmup_steps, max(overrides["steps"] // 10, 0)))
        overrides.setdefault("checkpoint_every", min(cfg.checkpoint_every, overrides["steps"]))
    cfg = dataclasses.replace(cfg, **overrides)
    if not args.data.is_dir():
        raise ValueError(f"root: {args.data} is not a folder")
    result = train_sof(args.data, args.out, model_config=model_config, train_config=cfg, resume=args.resume,
                       progress=not args.quiet, init_from=args.init)
    return {"model": str(result.model_dir), "steps": result.step, **result.metrics}


def _eval_sof(args) -> dict:
    from .train.sof_eval import evaluate_sof_model

    if args.data is not None and not args.data.is_dir():
        raise ValueError(f"data: {args.data} is not a folder")
    return evaluate_sof_model(args.model, data=args.data, heldout_views=args.heldout_views, seed=args.seed,
                              instances=args.instances, device=args.device, framing=args.framing,
                              progress=not args.quiet)


_PARSER_TRAIN_FLAGS = {"photos_dir": "PHOTOS", "out_dir": "--out", "steps": "--steps", "batch_size": "--batch",
                       "lr": "--lr", "crop": "--crop", "warmup_steps": "--warmup-steps", "eval_dir": "--eval",
                       "eval_every": "--eval-every", "checkpoint_every": "--checkpoint-every", "seed": "--seed",
                       "device": "--device", "checkpoint": "--resume"}
_SIW_EVAL_FLAGS = {"model": "MODEL", "path": "MODEL", "directory": "MODEL", "segmaps": "--segmaps", "n": "--n",
                   "parser": "--parser", "truncation": "--truncation", "group": "--group",
                   "dilation": "--dilation", "which": "--which", "seed": "--seed", "batch": "--batch",
                   "device": "--device", "photos": "--photos", "photo_segmaps": "--photos",
                   "n_styles": "--styles", "n_geometries": "--geometries", "styles": "--styles",
                   "geometries": "--geometries"}
_PARSER_EVAL_FLAGS = {"model": "MODEL", "directory": "MODEL", "photos_dir": "--data", "blur_sigma": "--blur",
                      "noise_std": "--noise", "seed": "--seed", "batch_size": "--batch", "device": "--device"}


def _train_parser(args) -> dict:
    import dataclasses

    from .train.parser_trainer import ParserTrainConfig, train_parser

    names = {"steps": "steps", "batch": "batch_size", "lr": "lr", "crop": "crop", "warmup_steps": "warmup_steps",
             "eval_every": "eval_every", "checkpoint_every": "checkpoint_every", "seed": "seed"}
    overrides = {field: getattr(args, a) for a, field in names.items() if getattr(args, a) is not None}
    cfg = ParserTrainConfig(device=args.device, amp=args.amp)
    if "steps" in overrides:  # keep the warm-up and checkpoints within short runs
        overrides.setdefault("warmup_steps", min(cfg.warmup_steps, max(overrides["steps"] // 10, 0)))
        overrides.setdefault("checkpoint_every", min(cfg.checkpoint_every, max(overrides["steps"], 1)))
    cfg = dataclasses.replace(cfg, **overrides)
    if not args.photos.is_dir():
        raise ValueError(f"photos_dir: {args.photos} is not a folder")
    if args.eval is not None and not args.eval.is_dir():
        raise ValueError(f"eval_dir: {args.eval} is not a folder")
    result = train_parser(args.photos, args.out, cfg, eval_dir=args.eval, resume=args.resume,
                          progress=not args.quiet)
    return {"model": str(result.model_dir), "steps": result.step, **result.metrics}


def _eval_parser(args) -> dict:
    import torch

    from .parsing import FaceParser
    from .train.parser_trainer import evaluate_parser
    from .train.common import resolve_device

    model_dir: Path | str = args.model
    if str(model_dir) == "demo":
        model_dir = "demo"
    else:
        if (model_dir / "model" / "config.json").is_file():  # a run folder
            model_dir = model_dir / "model"
        if not model_dir.is_dir():
            raise ValueError(f"model: {args.model} is not a folder")
    if not args.data.is_dir():
        raise ValueError(f"photos_dir: {args.data} is not a folder")
    device = resolve_device(args.device)
    try:
        model = FaceParser.from_pretrained(model_dir, map_location=device)
    except FileNotFoundError as exc:  # no shipped demo parser
        raise ValueError(f"model: {str(exc).partition(': ')[2]}") from None
    with torch.no_grad():
        rep = evaluate_parser(model, args.data, blur_sigma=args.blur, noise_std=args.noise, seed=args.seed,
                              batch_size=args.batch, flip_average=args.flip_average)
    return {"model": str(model_dir), "data": str(args.data), **rep}


def _add_siw_command(tsub) -> None:
    """``train siw`` (the SIW-StyleGAN texture generator, sofgan_lab.train.siw_trainer)."""
    ts = tsub.add_parser("siw", help="train the SIW-StyleGAN texture generator on unpaired images and segmaps")
    ts.add_argument("images", type=Path, metavar="IMAGES", help="image folder (or a folder with images/)")
    ts.add_argument("segmaps", type=Path, metavar="SEGMAPS",
                    help="label-map folder (or a folder with segmaps/), e.g. sofgan-lab synth photos --with-segmaps")
    ts.add_argument("--out", type=Path, required=True, help="run folder (checkpoints, samples, metrics.jsonl, model/)")
    ts.add_argument("--size", type=_int, default=128, help="training resolution, a power of two (default 128)")
    ts.add_argument("--preset", choices=("demo", "official"), default="demo",
                    help="network widths (default: demo, CPU-trainable; official: the release's)")
    ts.add_argument("--resume", action="store_true", help="continue the run in --out from its newest checkpoint")
    ts.add_argument("--spade-min", type=_int, default=None, metavar="RES",
                    help="lowest resolution with SPADE gamma/beta (default: the preset's, 64)")
    ts.add_argument("--spade-max", type=_int, default=None, metavar="RES",
                    help="highest resolution with SPADE gamma/beta (default: the preset's, 256)")
    ts.add_argument("--channels", type=_channel_table, default=None, metavar="RES:C,...",
                    help="network widths at these resolutions instead of the preset's, e.g. 64:64,128:32")
    ts.add_argument("--init-from", default=None, metavar="MODEL",
                    help="start from these weights ('demo', a model, run or checkpoint folder) instead of a random "
                         "init; SPADE layers added by --spade-min/--spade-max start as the identity, channels "
                         "added by --channels start disconnected (the first images are the source's)")
    ts.add_argument("--steps", type=_int, default=None, help="training steps (default 100000)")
    ts.add_argument("--batch", type=_int, default=None, help="images per step and process (default 8)")
    ts.add_argument("--lr", type=_float, default=None, help="Adam learning rate (default 0.002)")
    ts.add_argument("--r1-gamma", type=_float, default=None, help="R1 weight gamma (default 10; 0 = off)")
    ts.add_argument("--pl-weight", type=_float, default=None, help="path-length weight (default 2; 0 = off)")
    ts.add_argument("--region-mix-prob", type=_float, default=None,
                    help="share of batches with two region styles per sample (default 0.5)")
    ts.add_argument("--region-mode", choices=("exact", "fast"), default=None,
                    help="region-style rendering while training (default exact)")
    ts.add_argument("--scale-max", type=_float, default=None, help="largest augmentation up-scale (default 1.7)")
    ts.add_argument("--no-flip", action="store_true", help="no horizontal-flip augmentation")
    ts.add_argument("--segmap-labels", choices=("auto", "sof20", "sofgan17", "celebamask19"), default="auto",
                    help="label set of SEGMAPS (default auto: index.json or the ids)")
    ts.add_argument("--sample-every", type=_int, default=None,
                    help="steps between sample grids (default 1000; 0 = end only)")
    ts.add_argument("--checkpoint-every", type=_int, default=None, help="steps between checkpoints (default 1000)")
    ts.add_argument("--log-every", type=_int, default=None, help="steps between metrics lines (default 50)")
    ts.add_argument("--eval-every", type=_int, default=None,
                    help="steps between parser-mIoU evaluations of G_ema samples (needs --parser; default 0 = off)")
    ts.add_argument("--parser", default=None, metavar="DIR|demo", help="face parser for --eval-every")
    ts.add_argument("--diversity-weight", type=_float, default=None, metavar="W",
                    help="weight of a mode-seeking term (pairs of styles on one segmap must differ; not in "
                         "SofGAN's training; default 0 = off)")
    ts.add_argument("--diversity-tau", type=_float, default=None, metavar="T",
                    help="the mode-seeking ratio counts up to this value (default 1)")
    ts.add_argument("--diversity-mode", choices=("pooled", "regions"), default=None,
                    help="what the mode-seeking term compares: the 16x16 pooled images (default) or the mean "
                         "colours of hair, skin, cloth and background")
    ts.add_argument("--parser-weight", type=_float, default=None, metavar="W",
                    help="weight of a semantic term: the frozen --loss-parser must read each fake's segmap in it "
                         "(not in SofGAN's training; default 0 = off)")
    ts.add_argument("--loss-parser", default=None, metavar="DIR|demo",
                    help="face parser of --parser-weight (evaluate with another one)")
    ts.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="device (default auto)")
    ts.add_argument("--stream-images", action="store_true",
                    help="decode photos per batch instead of preloading them (default: preload when they fit in 4 GiB)")
    ts.add_argument("--amp-cpu", action="store_true",
                    help="bfloat16 autocast on CPU too (CPUs with AMX/AVX512-BF16: ~1.4x faster; CUDA always uses it)")
    ts.add_argument("--seed", type=_int, default=None, help="seed of the init and the data stream (default 0)")
    ts.add_argument("--until", type=_int, default=None, help="stop (with a checkpoint) after this step")
    ts.add_argument("--limit", type=_int, default=None, help="use only the first N files of each folder")


_SIW_TRAIN_FLAGS = {"images": "IMAGES", "segmaps": "SEGMAPS", "out": "--out", "size": "--size", "preset": "--preset",
                    "model_config": "--preset/--size", "spade_min/spade_max": "--spade-min/--spade-max",
                    "spade_min": "--spade-min", "spade_max": "--spade-max", "channels": "--channels",
                    "init_from": "--init-from", "steps": "--steps", "batch": "--batch", "lr": "--lr",
                    "r1_gamma": "--r1-gamma", "pl_weight": "--pl-weight", "region_mix_prob": "--region-mix-prob",
                    "region_mode": "--region-mode", "scale_min/scale_max": "--scale-max",
                    "label_set": "--segmap-labels",
                    "sample_every": "--sample-every", "checkpoint_every": "--checkpoint-every",
                    "log_every": "--log-every", "eval_every": "--eval-every", "parser": "--parser",
                    "device": "--device", "seed": "--seed", "until": "--until", "limit": "--limit",
                    "diversity_weight": "--diversity-weight", "diversity_tau": "--diversity-tau",
                    "diversity_mode": "--diversity-mode", "parser_weight": "--parser-weight", "loss_parser": "--loss-parser"}


def _train_siw(args) -> dict:
    import dataclasses

    from .texture.generator import SIWConfig
    from .train.siw_trainer import SIWTrainConfig, train_siw

    try:
        model_config = SIWConfig.preset(args.preset, args.size)
        arch = {k: getattr(args, k) for k in ("spade_min", "spade_max") if getattr(args, k) is not None}
        if args.channels:
            unknown = sorted(set(args.channels) - set(model_config.channels))
            if unknown:
                raise ValueError(f"channels: resolutions {unknown} are not in 4..{args.size}")
            arch["channels"] = {**model_config.channels, **args.channels}
        if arch:
            model_config = SIWConfig.from_dict({**model_config.to_dict(), **arch})
        names = {"steps": "steps", "batch": "batch", "lr": "lr", "r1_gamma": "r1_gamma", "pl_weight": "pl_weight",
                 "region_mix_prob": "region_mix_prob", "region_mode": "region_mode", "scale_max": "scale_max",
                 "sample_every": "sample_every", "checkpoint_every": "checkpoint_every", "log_every": "log_every",
                 "eval_every": "eval_every", "parser": "parser", "seed": "seed",
                 "diversity_weight": "diversity_weight", "diversity_tau": "diversity_tau",
                 "diversity_mode": "diversity_mode", "parser_weight": "parser_weight", "loss_parser": "loss_parser"}
        overrides = {field: getattr(args, a) for a, field in names.items() if getattr(args, a) is not None}
        if args.no_flip:
            overrides["flip"] = False
        if args.amp_cpu:
            overrides["amp_cpu"] = True
        if args.stream_images:
            overrides["images_in_memory"] = False
        cfg = SIWTrainConfig(device=args.device)
        if "steps" in overrides:  # keep checkpoints, samples and logs within short runs
            for k in ("checkpoint_every", "sample_every", "log_every"):
                overrides.setdefault(k, min(getattr(cfg, k), max(overrides["steps"], 1)))
        cfg = dataclasses.replace(cfg, **overrides)
        for name, folder in (("images", args.images), ("segmaps", args.segmaps)):
            if not folder.is_dir():
                raise ValueError(f"{name}: {folder} is not a folder")
        for field, used in (("parser", cfg.eval_every), ("loss_parser", cfg.parser_weight)):
            value = getattr(cfg, field)
            if value is not None and used:  # fail now, not after the first evaluation interval
                from .parsing import FaceParser

                try:
                    FaceParser.from_pretrained(value if value == "demo" else Path(value))
                except (FileNotFoundError, ValueError) as exc:
                    raise ValueError(f"{field}: {str(exc).partition(': ')[2] or exc}") from None
        try:
            result = train_siw(args.images, args.segmaps, args.out, model_config=model_config, train_config=cfg,
                               resume=args.resume, progress=not args.quiet, until=args.until,
                               segmap_label_set=args.segmap_labels, limit=args.limit, init_from=args.init_from)
        except (FileNotFoundError, FileExistsError) as exc:  # missing files, an existing run in --out
            raise ValueError(str(exc)) from None
    except ValueError as exc:  # name the flag, not the library argument
        raise ValueError(_flagged(str(exc), _SIW_TRAIN_FLAGS)) from None
    metrics = {k: v for k, v in result.metrics.items() if k not in ("event", "step")}
    return {"model": str(result.model_dir) if result.model_dir is not None else None, "steps": result.step,
            "finished": result.finished, **metrics}


_METRIC_NAMES = ("diversity", "ssg", "fvv", "fid")


def _add_metrics_command(esub) -> None:
    """``eval metrics`` (sofgan_lab.metrics: the paper's Tables 2-3 and FID)."""
    em = esub.add_parser("metrics", help="the paper's metrics on a pipeline; prints a Markdown table, writes CSV")
    em.add_argument("--model", default="demo", metavar="demo|DIR", help="'demo' or a saved pipeline folder")
    em.add_argument("--metrics", default="diversity,ssg,fvv", metavar="LIST",
                    help=f"comma-separated, from {','.join(_METRIC_NAMES)} (default diversity,ssg,fvv)")
    em.add_argument("--n", type=_int, default=200,
                    help="pairs (diversity), segmaps (ssg), instances (fvv), generated images (fid); default 200")
    em.add_argument("--real", type=Path, default=None, metavar="PHOTOS", help="real image folder (needed by fid)")
    em.add_argument("--net", choices=("alex", "vgg", "squeeze"), default="alex", help="LPIPS backbone (default alex)")
    em.add_argument("--untrained-backbone", action="store_true",
                    help="run LPIPS without the ImageNet backbone weights (results marked not comparable)")
    em.add_argument("--extractor", choices=("inception", "parser"), default="inception",
                    help="FID features: the FID Inception (needs its weights file) or the demo face parser")
    em.add_argument("--truncation", type=_float, default=1.0, help="truncation psi (default 1.0, the paper's)")
    em.add_argument("--csv", type=Path, default=None, help="also write the table as CSV here")
    em.add_argument("--seed", type=_int, default=0, help="seed (default 0)")
    em.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="device (default auto)")


def _eval_metrics(args) -> str:
    """Run the chosen metrics and return the Markdown table (the CSV goes to ``--csv``)."""
    from .metrics import (fid, fvv_identity, lpips_diversity, metric_table, ssg_diversity, table_to_csv,
                          table_to_markdown)

    names = [m.strip() for m in args.metrics.split(",") if m.strip()]
    unknown = [m for m in names if m not in _METRIC_NAMES]
    if not names or unknown:
        raise ValueError(f"--metrics: unknown metric(s) {unknown or names}; choose from {', '.join(_METRIC_NAMES)}")
    if args.n < 2:
        raise ValueError(f"--n: expected at least 2, got {args.n}")
    if "fid" in names and args.real is None:
        raise ValueError("--real: fid needs a folder of real images (e.g. sofgan-lab synth photos OUT)")
    if args.real is not None and not Path(args.real).is_dir():
        raise ValueError(f"--real: {args.real} is not a folder")
    if args.csv is not None and Path(args.csv).suffix.lower() != ".csv":
        raise ValueError(f"--csv: expected a .csv file name, got {str(args.csv)!r}")
    pipe = _load_pipeline(args)
    name = "demo" if args.model == "demo" else Path(args.model).name
    common = dict(seed=args.seed, truncation=args.truncation, progress=not args.quiet, model_name=name)
    lp = dict(net=args.net, pretrained_backbone=not args.untrained_backbone)
    results = []
    try:
        for m in names:
            if m == "diversity":
                results.append(lpips_diversity(pipe, args.n, **lp, **common))
            elif m == "ssg":
                results.append(ssg_diversity(pipe, args.n, **lp, **common))
            elif m == "fvv":
                results.append(fvv_identity(pipe, args.n, **common))
            else:
                from .metrics import as_feature_extractor, load_inception
                from .train.siw_data import ImageFolder

                if args.extractor == "parser":
                    from .parsing import FaceParser

                    extractor = as_feature_extractor(FaceParser.from_pretrained("demo"))
                else:
                    extractor = load_inception()
                real = ImageFolder(args.real, pipe.siw.config.size).data.float() / 127.5 - 1
                results.append(fid(real, pipe, extractor, n=args.n, **common))
    except FileNotFoundError as exc:  # missing backbone / Inception weights: say which flag avoids them
        hint = "--untrained-backbone" if "lpips" in str(exc).lower() or m != "fid" else "--extractor parser"
        raise ValueError(f"--{'net' if m != 'fid' else 'extractor'}: {exc} (or pass {hint})") from None
    table = metric_table(results)
    if args.csv is not None:
        table_to_csv(table, args.csv)
    return table_to_markdown(table)


def _add_import_command(sub) -> None:
    """``import-official`` (the releases' checkpoints, sofgan_lab.io.official -> sofgan_lab.pipeline)."""
    imp = sub.add_parser("import-official",
                         help="convert the official SOF and SofGAN checkpoints into a native pipeline folder")
    imp.add_argument("--sof", type=Path, required=True, metavar="PATH",
                     help="SOF release checkpoint (.pth with a 'model' entry, or .safetensors)")
    imp.add_argument("--sofgan", type=Path, required=True, metavar="PATH",
                     help="SofGAN release checkpoint (.pt with a 'g_ema' entry, or .safetensors)")
    imp.add_argument("--out", type=Path, required=True, metavar="DIR",
                     help="output folder for the pipeline (absent or empty unless --overwrite)")
    imp.add_argument("--pixel-norm", choices=("split", "whole"), default="split",
                     help="mapping PixelNorm: split (the release's training and notebooks, default) or whole "
                          "(its painter UI)")
    imp.add_argument("--overwrite", action="store_true", help="write into a non-empty DIR")


def _add_pipeline_commands(sub) -> None:
    """``generate`` and ``video`` (sofgan_lab.pipeline, sofgan_lab.applications.video)."""
    def common(q):
        q.add_argument("--model", default="demo", metavar="demo|DIR",
                       help="'demo' (the shipped demo models) or a saved pipeline folder (default demo)")
        q.add_argument("--geometry-seed", type=_int, default=0, help="geometry seed (default 0)")
        q.add_argument("--texture-seed", type=_int, default=0, help="texture seed (default 0)")
        q.add_argument("--truncation", type=_float, default=None, help="truncation psi in [0, 1] (default: the model's)")
        q.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="device (default auto)")

    gen = sub.add_parser("generate", help="render one portrait to an image file")
    common(gen)
    gen.add_argument("--yaw", type=_float, default=None, help="camera yaw in degrees (default 0: frontal)")
    gen.add_argument("--pitch", type=_float, default=None, help="camera pitch in degrees (default 0)")
    gen.add_argument("--fov", type=_float, default=None, help="vertical field of view in degrees (default: orthographic)")
    gen.add_argument("--texture-seed-b", type=_int, default=None, help="second style for --region")
    gen.add_argument("--region", action="append", default=[], metavar="GROUP=P",
                     help="weight P in [0, 1] of style B in a style group (repeatable; needs --texture-seed-b)")
    gen.add_argument("--segmap", type=Path, default=None, help="also write the coloured SOF-20 segmap here (PNG)")
    gen.add_argument("--out", type=Path, required=True, help="image file (.png, .jpg)")

    vid = sub.add_parser("video", help="render a free-view video (geometry and texture fixed)")
    common(vid)
    vid.add_argument("--path", choices=("yaw", "spiral"), default="yaw", help="camera path (default yaw)")
    vid.add_argument("--frames", type=_int, default=60, help="number of frames (default 60)")
    vid.add_argument("--fps", type=_float, default=24.0, help="frames per second (default 24)")
    vid.add_argument("--out", type=Path, required=True, help="video file (.mp4 or .gif)")


def _load_pipeline(args):
    from . import default_device
    from .io.checkpoints import CheckpointError
    from .pipeline import SofGAN

    device = default_device() if args.device == "auto" else args.device
    try:
        return SofGAN.from_pretrained(args.model if args.model == "demo" else Path(args.model), device=device)
    except (FileNotFoundError, CheckpointError) as exc:
        raise ValueError(f"--model: {str(exc).partition(': ')[2] or exc}") from None


_IMAGE_SUFFIXES = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}


def _generate(args) -> dict:
    """Render one portrait with the pipeline and write it (atomically)."""
    import io

    from .io.checkpoints import atomic_write_bytes

    fmt = _IMAGE_SUFFIXES.get(Path(args.out).suffix.lower())
    if fmt is None:
        raise ValueError(f"--out: expected a .png or .jpg file name, got {str(args.out)!r}")
    if args.segmap is not None and Path(args.segmap).suffix.lower() != ".png":
        raise ValueError(f"--segmap: expected a .png file name, got {str(args.segmap)!r}")
    mix = {}
    for item in args.region:
        group, sep, value = item.partition("=")
        try:
            mix[group.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep:
            raise ValueError(f"--region: expected GROUP=P (e.g. hair=1), got {item!r}")
    if mix and args.texture_seed_b is None:
        raise ValueError("--region: needs a second style, --texture-seed-b")
    if args.texture_seed_b is not None and not mix:
        raise ValueError("--texture-seed-b: give the regions it paints with --region GROUP=P")
    pipe = _load_pipeline(args)
    camera = {k: v for k, v in (("yaw", args.yaw), ("pitch", args.pitch), ("fov", args.fov)) if v is not None}
    texture = args.texture_seed if not mix else (args.texture_seed, args.texture_seed_b)
    flags = {"geometry": "--geometry-seed", "seed": "--geometry-seed", "texture": "--texture-seed",
             "camera": "--yaw/--pitch/--fov", "region_mix": "--region", "truncation": "--truncation"}
    try:
        portrait = pipe(geometry=args.geometry_seed, texture=texture, camera=camera or None,
                        region_mix=mix or None, truncation=args.truncation)
    except (ValueError, TypeError) as exc:
        raise ValueError(_flagged(str(exc), flags)) from None
    buf = io.BytesIO()
    portrait.image.save(buf, format=fmt)
    atomic_write_bytes(args.out, buf.getvalue())
    result = {"out": str(args.out), "geometry_seed": args.geometry_seed, "texture_seed": args.texture_seed,
              "camera": camera, "truncation": portrait.truncation, "size": list(portrait.image.size)}
    if mix:
        result.update(texture_seed_b=args.texture_seed_b, region_mix=mix)
    if args.segmap is not None:
        buf = io.BytesIO()
        portrait.segmap_image("sof20").save(buf, format="PNG")
        atomic_write_bytes(args.segmap, buf.getvalue())
        result["segmap"] = str(args.segmap)
    return result


def _video(args) -> dict:
    """Render a free-view video with the pipeline and write it as MP4 or GIF."""
    from .applications.video import free_view

    suffix = Path(args.out).suffix.lower()
    if suffix not in (".mp4", ".gif"):
        raise ValueError(f"--out: expected a .mp4 or .gif file name, got {str(args.out)!r}")
    if args.frames < 2:
        raise ValueError(f"--frames: expected at least 2, got {args.frames}")
    if not args.fps > 0:
        raise ValueError(f"--fps: expected a positive number, got {args.fps}")
    pipe = _load_pipeline(args)
    flags = {"geometry": "--geometry-seed", "texture": "--texture-seed", "frames": "--frames", "path": "--path",
             "truncation": "--truncation", "fps": "--fps"}
    try:
        frames = free_view(pipe, args.geometry_seed, args.texture_seed, path=args.path, frames=args.frames,
                           truncation=args.truncation)
    except (ValueError, TypeError) as exc:
        raise ValueError(_flagged(str(exc), flags)) from None
    (frames.save_mp4 if suffix == ".mp4" else frames.save_gif)(args.out, fps=args.fps)
    return {"out": str(args.out), "frames": len(frames), "fps": args.fps, "path": args.path,
            "geometry_seed": args.geometry_seed, "texture_seed": args.texture_seed}


#: The release fits its geometry sampler to the training codes; fewer codes than this give no space.
_MIN_SPACE_CODES = 8


def _import_official(args) -> dict:
    """Load both official checkpoints and save them as one native :class:`~sofgan_lab.pipeline.SofGAN`."""
    from .io.checkpoints import CheckpointError
    from .io.official import load_official_sof, load_official_sofgan

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
    codes = sof.latents.weight.detach()
    space = None
    if codes.shape[0] >= _MIN_SPACE_CODES:
        from .geometry.space import GeometrySpace

        # at least two codes per mixture component on average; the release uses 16 components
        space = GeometrySpace.fit(codes, n_components=min(16, codes.shape[0] // 2))
    else:
        log.info("the SOF checkpoint holds %d latent codes (fewer than %d): no geometry space is fitted; "
                 "sample geometry from its codes or fit one later", codes.shape[0], _MIN_SPACE_CODES)
    from .pipeline import SofGAN

    try:
        pipe = SofGAN(sof=sof, siw=siw, space=space)
    except (ValueError, TypeError) as exc:  # e.g. a model with another number of classes
        raise ValueError(_flagged(str(exc), {"sof": "--sof", "siw": "--sofgan", "space": "--sof"})) from None
    pipe.save_pretrained(out)
    return {"out": str(out), "sof": sof.config.to_dict(), "sofgan": siw.config.to_dict(),
            "space": None if space is None else space.num_components, "latent_codes": int(codes.shape[0])}


def _add_data_commands(sub) -> None:
    """``data celebamask|images|standin`` (sofgan_lab.datasets)."""
    data = sub.add_parser("data", help="prepare real datasets (CelebAMask-HQ, FFHQ) or offline stand-ins")
    dsub = data.add_subparsers(dest="what", required=True, metavar="WHAT")

    cm = dsub.add_parser("celebamask", help="compose CelebAMask-HQ part masks into a segmap folder; "
                                            "prints one JSON line")
    cm.add_argument("root", type=Path, metavar="ROOT", help="the CelebAMask-HQ folder (or its parent)")
    cm.add_argument("--out", type=Path, required=True, help="segmap folder to write (resumes an interrupted run)")
    cm.add_argument("--label-set", choices=("sof20", "sofgan17", "celebamask19"), default="sof20",
                    help="ids of the written maps (default sof20: the nose split at the face's median column)")
    cm.add_argument("--size", type=_int, default=None, help="side of the written maps (default: the masks', 512)")
    cm.add_argument("--limit", type=_int, default=None, help="only the first N images")
    cm.add_argument("--workers", type=_int, default=None, help="processes (default: all cores, at most 8)")
    cm.add_argument("--overwrite", action="store_true", help="rebuild a folder made with other settings")

    im = dsub.add_parser("images", help="write resized copies of CelebA-HQ / FFHQ / any photos; prints one JSON line")
    im.add_argument("source", type=Path, metavar="SOURCE",
                    help="a CelebAMask-HQ folder, an FFHQ folder (images1024x1024/...) or a folder of images")
    im.add_argument("--out", type=Path, required=True, help="folder to write (OUT/images/*)")
    im.add_argument("--size", type=_int, default=256, help="image side in pixels (default 256)")
    im.add_argument("--limit", type=_int, default=None, help="only the first N images")
    im.add_argument("--format", choices=("png", "jpg"), default="png", help="file format (default png)")
    im.add_argument("--workers", type=_int, default=None, help="processes (default: all cores, at most 8)")
    im.add_argument("--overwrite", action="store_true", help="rebuild a folder made with other settings")

    st = dsub.add_parser("standin", help="a tiny CelebAMask-HQ- or FFHQ-shaped tree from synthetic photos; "
                                         "prints one JSON line")
    st.add_argument("layout", choices=("celebamask", "ffhq"), metavar="LAYOUT", help="celebamask or ffhq")
    st.add_argument("out", type=Path, metavar="OUT", help="output folder (absent or empty unless --overwrite)")
    st.add_argument("--count", type=_int, default=8, help="number of images (default 8)")
    st.add_argument("--size", type=_int, default=None,
                    help="image (and mask) side in pixels (default: 512 for celebamask, 128 for ffhq)")
    st.add_argument("--seed", type=_int, default=0, help="seed; the same seed gives the same files")
    st.add_argument("--workers", type=_int, default=None, help="processes (default: all cores, at most 8)")
    st.add_argument("--overwrite", action="store_true", help="replace a non-empty OUT")


_DATA_FLAGS = {
    "celebamask": {"root": "ROOT", "out": "--out", "label_set": "--label-set", "size": "--size",
                   "limit": "--limit", "workers": "--workers", "index": "ROOT"},
    "images": {"source": "SOURCE", "out": "--out", "size": "--size", "limit": "--limit", "format": "--format",
               "workers": "--workers"},
    "standin": {"out": "OUT", "count": "--count", "size": "--size", "seed": "--seed", "workers": "--workers"},
}


def _data(args) -> dict:
    """Run a ``data`` command; a missing file or folder becomes a ValueError (one-line error, exit 2)."""
    from . import datasets

    progress = not args.quiet
    try:
        if args.what == "celebamask":
            out = datasets.build_segmap_folder(args.root, args.out, label_set=args.label_set, size=args.size,
                                               limit=args.limit, workers=args.workers, overwrite=args.overwrite,
                                               progress=progress)
            index = json.loads((out / "index.json").read_text())
            return {"out": str(out), "segmaps": str(out / "segmaps"), "label_set": index["label_set"],
                    "size": index["size"], "count": index["count"]}
        if args.what == "images":
            out = datasets.build_image_folder(args.source, args.out, size=args.size, limit=args.limit,
                                              format=args.format, workers=args.workers, overwrite=args.overwrite,
                                              progress=progress)
            index = json.loads((out / "index.json").read_text())
            return {"out": str(out), "images": str(out / "images"), "size": index["size"], "count": index["count"]}
        if args.layout == "celebamask":
            out = datasets.make_celebamask_standin(args.out, args.count, size=args.size or 512, seed=args.seed,
                                                   overwrite=args.overwrite, workers=args.workers, progress=progress)
        else:
            out = datasets.make_ffhq_standin(args.out, args.count, size=args.size or 128, seed=args.seed,
                                             overwrite=args.overwrite, workers=args.workers, progress=progress)
        marker = json.loads((out / datasets.STANDIN_MARKER).read_text())
        return {"out": str(out), "layout": marker["layout"], "count": marker["count"], "size": marker["size"],
                "standin": True}
    except (FileNotFoundError, NotADirectoryError) as exc:
        raise ValueError(str(exc)) from None


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    flags = {"train": _TRAIN_FLAGS, "eval": _EVAL_FLAGS}.get(args.command, _FLAGS)
    runners = {("train", "sof"): _train_sof, ("eval", "sof"): _eval_sof,
               ("train", "parser"): _train_parser, ("eval", "parser"): _eval_parser,
               ("train", "siw"): _train_siw, ("eval", "siw"): _eval_siw}
    if getattr(args, "what", None) == "parser":
        flags = _PARSER_TRAIN_FLAGS if args.command == "train" else _PARSER_EVAL_FLAGS
    if args.command == "eval" and getattr(args, "what", None) == "siw":
        flags = _SIW_EVAL_FLAGS
    if args.command == "data":
        flags = _DATA_FLAGS[args.what]
    try:
        if args.command == "data":
            print(json.dumps(_data(args), allow_nan=False))
            return 0
        if args.command == "eval" and args.what == "metrics":
            print(_eval_metrics(args))
            return 0
        if args.command in ("train", "eval"):
            result = runners[(args.command, args.what)](args)
            print(json.dumps(result, allow_nan=False))
            return 0
        if args.command in ("import-official", "generate", "video"):
            run = {"import-official": _import_official, "generate": _generate, "video": _video}[args.command]
            print(json.dumps(run(args), allow_nan=False))
            return 0
        if args.command == "synth":
            from .synthetic.writers import write_photos, write_scans

            if args.what == "scans":
                out = write_scans(args.out, instances=args.instances, views=args.views, size=args.size,
                                  seed=args.seed, camera=args.camera, supersample=args.supersample,
                                  framing=args.framing, overwrite=args.overwrite, workers=args.workers, progress=not args.quiet)
            else:
                out = write_photos(args.out, count=args.count, size=args.size, seed=args.seed,
                                   camera=args.camera, with_segmaps=args.with_segmaps,
                                   supersample=args.supersample, framing=args.framing, overwrite=args.overwrite,
                                   workers=args.workers, progress=not args.quiet)
        else:
            out = _demo(args)
    except (ValueError, TypeError) as exc:
        print(f"sofgan-lab: error: {_flagged(str(exc), flags)}".splitlines()[0], file=sys.stderr)
        return 2
    except FloatingPointError as exc:  # a diverged training run
        print(f"sofgan-lab: error: {exc}".splitlines()[0], file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        if args.command == "train":
            print("sofgan-lab: interrupted; continue with --resume from the newest checkpoint", file=sys.stderr)
        else:
            print("sofgan-lab: interrupted; nothing was written", file=sys.stderr)
        return 130
    log.info("wrote %s", out)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
