"""``train sof|parser|siw`` (sofgan_lab.train): the flags of each trainer's config, then the run."""
from __future__ import annotations

import dataclasses
from pathlib import Path

from ._common import Command, LazyParser, channel_table, detail, int_arg, overrides

_RESUME_HELP = "continue the run in --out from its newest checkpoint"


def _short_run(overrides: dict, cfg, fields, low: int = 1) -> None:
    """With ``--steps`` only: keep the periodic ``fields`` (checkpoints, samples, logs) within the run."""
    if "steps" in overrides:
        for k in fields:
            overrides.setdefault(k, min(getattr(cfg, k), max(overrides["steps"], low)))


def _train_sof(args) -> dict:
    from ..geometry.sof import SOFConfig
    from ..train.sof_trainer import SOFTrainConfig, train_sof

    model_config = SOFConfig.small() if args.config == "small" else SOFConfig.official()
    given = overrides(args)
    if args.amp:
        given["amp"] = True
    cfg = SOFTrainConfig(device=args.device)
    if "steps" in given:  # keep the warm-up within short runs
        given.setdefault("warmup_steps", min(cfg.warmup_steps, max(given["steps"] // 10, 0)))
    _short_run(given, cfg, ("checkpoint_every",), low=0)
    cfg = dataclasses.replace(cfg, **given)
    if not args.data.is_dir():
        raise ValueError(f"root: {args.data} is not a folder")
    result = train_sof(args.data, args.out, model_config=model_config, train_config=cfg, resume=args.resume,
                       progress=not args.quiet, init_from=args.init)
    return {"model": str(result.model_dir), "steps": result.step, **result.metrics}


def _train_parser(args) -> dict:
    from ..train.parser_trainer import ParserTrainConfig, train_parser

    given = overrides(args)
    cfg = ParserTrainConfig(device=args.device, amp=args.amp)
    if "steps" in given:  # keep the warm-up and checkpoints within short runs
        given.setdefault("warmup_steps", min(cfg.warmup_steps, max(given["steps"] // 10, 0)))
    _short_run(given, cfg, ("checkpoint_every",))
    cfg = dataclasses.replace(cfg, **given)
    if not args.photos.is_dir():
        raise ValueError(f"photos_dir: {args.photos} is not a folder")
    if args.eval is not None and not args.eval.is_dir():
        raise ValueError(f"eval_dir: {args.eval} is not a folder")
    result = train_parser(args.photos, args.out, cfg, eval_dir=args.eval, resume=args.resume,
                          progress=not args.quiet)
    return {"model": str(result.model_dir), "steps": result.step, **result.metrics}


def _siw_model_config(args):
    """The preset at ``--size`` with ``--spade-min/--spade-max/--channels`` applied."""
    from ..texture.generator import SIWConfig

    model_config = SIWConfig.preset(args.preset, args.size)
    arch = {k: getattr(args, k) for k in ("spade_min", "spade_max") if getattr(args, k) is not None}
    if args.channels:
        unknown = sorted(set(args.channels) - set(model_config.channels))
        if unknown:
            raise ValueError(f"channels: resolutions {unknown} are not in 4..{args.size}")
        arch["channels"] = {**model_config.channels, **args.channels}
    if arch:
        model_config = SIWConfig.from_dict({**model_config.to_dict(), **arch})
    return model_config


def _train_siw(args) -> dict:
    from ..train.siw_trainer import SIWTrainConfig, train_siw

    model_config = _siw_model_config(args)
    given = overrides(args)
    if args.no_flip:
        given["flip"] = False
    if args.amp_cpu:
        given["amp_cpu"] = True
    if args.stream_images:
        given["images_in_memory"] = False
    cfg = SIWTrainConfig(device=args.device)
    _short_run(given, cfg, ("checkpoint_every", "sample_every", "log_every"))
    cfg = dataclasses.replace(cfg, **given)
    for name, folder in (("images", args.images), ("segmaps", args.segmaps)):
        if not folder.is_dir():
            raise ValueError(f"{name}: {folder} is not a folder")
    for field, used in (("parser", cfg.eval_every), ("loss_parser", cfg.parser_weight)):
        value = getattr(cfg, field)
        if value is not None and used:  # fail now, not after the first evaluation interval
            from ..parsing import FaceParser

            try:
                FaceParser.from_pretrained(value if value == "demo" else Path(value))
            except (FileNotFoundError, ValueError) as exc:
                raise ValueError(f"{field}: {detail(exc)}") from None
    try:
        result = train_siw(args.images, args.segmaps, args.out, model_config=model_config, train_config=cfg,
                           resume=args.resume, progress=not args.quiet, until=args.until,
                           segmap_label_set=args.segmap_labels, limit=args.limit, init_from=args.init_from)
    except (FileNotFoundError, FileExistsError) as exc:  # missing files, an existing run in --out
        raise ValueError(str(exc)) from None
    metrics = {k: v for k, v in result.metrics.items() if k not in ("event", "step")}
    return {"model": str(result.model_dir) if result.model_dir is not None else None, "steps": result.step,
            "finished": result.finished, **metrics}


def _add_sof(tsub) -> None:
    Command(tsub, "sof", _train_sof, help="train the semantic occupancy field on multi-view segmaps",
            flags={"root": "DATA", "data_root": "DATA", "model_config": "--config", "checkpoint": "--resume",
                   "init_from": "--init"}, lazy=_sof_flags)


def _sof_flags(t: Command) -> None:
    from ..train.sof_trainer import SOFTrainConfig as C

    t.arg("data", type=Path, metavar="DATA", help="dataset in the SOF layout (sofgan-lab synth scans)")
    t.arg("--out", type=Path, required=True, help="run folder (checkpoints, metrics.jsonl, model/)")
    t.arg("--config", choices=("small", "official"), default="small",
          help="network sizes (default: small, the demo's; official: the release's)")
    t.config(C, "steps", "optimisation steps")
    t.config(C, "batch_views", "views per step")
    t.config(C, "rays_per_view", "random pixels per view")
    t.config(C, "lr", "peak learning rate")
    t.config(C, "warmup_steps", "linear warm-up steps")
    t.config(C, "balanced_fraction", "share of each view's rays drawn class-balanced (default {default}; release 0)")
    t.config(C, "latent_lr_scale", "latent table LR as a multiple of --lr (default {default}; release 1)")
    t.config(C, "holdout_views", "views per instance held out")
    t.config(C, "eval_every", "steps between held-out evaluations")
    t.config(C, "eval_instances", "instances in each evaluation (default {default}; 0 = all)")
    t.config(C, "checkpoint_every", "steps between checkpoints")
    t.config(C, "seed", "seed of the init, view split and sampler")
    t.arg("--init", type=Path, default=None, metavar="MODEL",
          help="start from a saved SOF (e.g. an earlier run's model/) with a new schedule")
    t.arg("--resume", action="store_true", help=_RESUME_HELP)
    t.device()
    t.arg("--amp", action="store_true", help="mixed precision on CUDA (bf16 where supported, else fp16)")


def _add_parser(tsub) -> None:
    Command(tsub, "parser", _train_parser, help="train the face parser on photos with segmaps",
            flags={"photos_dir": "PHOTOS", "out_dir": "--out", "eval_dir": "--eval", "checkpoint": "--resume"},
            lazy=_parser_flags)


def _parser_flags(t: Command) -> None:
    from ..train.parser_trainer import ParserTrainConfig as C

    t.arg("photos", type=Path, metavar="PHOTOS",
          help="photo folder with segmaps (sofgan-lab synth photos --with-segmaps)")
    t.arg("--out", type=Path, required=True, help="run folder (checkpoints, metrics.jsonl, model/)")
    t.config(C, "steps", "optimisation steps")
    t.config(C, "batch_size", "crops per step", flag="--batch")
    t.config(C, "lr", "peak learning rate")
    t.config(C, "crop", "training crop side, a multiple of 16 (default {default}; 0 = whole photos)")
    t.config(C, "warmup_steps", "linear warm-up steps")
    t.arg("--eval", type=Path, default=None, metavar="PHOTOS2",
          help="held-out photo folder with segmaps for the mIoU (default: none)")
    t.config(C, "eval_every", "steps between held-out evaluations")
    t.config(C, "checkpoint_every", "steps between checkpoints")
    t.config(C, "seed", "seed of the init and the augmentations")
    t.arg("--amp", action="store_true", help="bfloat16 autocast (CUDA, or CPUs with AVX512-BF16/AMX: ~2x faster)")
    t.arg("--resume", action="store_true", help=_RESUME_HELP)
    t.device()


def _add_siw(tsub) -> None:
    Command(tsub, "siw", _train_siw, help="train the SIW-StyleGAN texture generator on unpaired images and segmaps",
            flags={"model_config": "--preset/--size", "spade_min/spade_max": "--spade-min/--spade-max",
                   "scale_min/scale_max": "--scale-max", "label_set": "--segmap-labels"}, lazy=_siw_flags)


def _siw_flags(t: Command) -> None:
    from ..train.siw_trainer import SIWTrainConfig as C

    t.arg("images", type=Path, metavar="IMAGES", help="image folder (or a folder with images/)")
    t.arg("segmaps", type=Path, metavar="SEGMAPS",
          help="label-map folder (or a folder with segmaps/), e.g. sofgan-lab synth photos --with-segmaps")
    t.arg("--out", type=Path, required=True, help="run folder (checkpoints, samples, metrics.jsonl, model/)")
    t.arg("--size", type=int_arg, default=128, help="training resolution, a power of two (default 128)")
    t.arg("--preset", choices=("demo", "official"), default="demo",
          help="network widths (default: demo, CPU-trainable; official: the release's)")
    t.arg("--resume", action="store_true", help=_RESUME_HELP)
    t.arg("--spade-min", type=int_arg, default=None, metavar="RES",
          help="lowest resolution with SPADE gamma/beta (default: the preset's, 64)")
    t.arg("--spade-max", type=int_arg, default=None, metavar="RES",
          help="highest resolution with SPADE gamma/beta (default: the preset's, 256)")
    t.arg("--channels", type=channel_table, default=None, metavar="RES:C,...",
          help="network widths at these resolutions instead of the preset's, e.g. 64:64,128:32")
    t.arg("--init-from", default=None, metavar="MODEL",
          help="start from these weights ('demo', a model, run or checkpoint folder) instead of a random "
               "init; SPADE layers added by --spade-min/--spade-max start as the identity, channels "
               "added by --channels start disconnected (the first images are the source's)")
    t.config(C, "steps", "training steps")
    t.config(C, "batch", "images per step and process")
    t.config(C, "lr", "Adam learning rate")
    t.config(C, "r1_gamma", "R1 weight gamma (default {default}; 0 = off)")
    t.config(C, "pl_weight", "path-length weight (default {default}; 0 = off)")
    t.config(C, "region_mix_prob", "share of batches with two region styles per sample")
    t.config(C, "region_mode", "region-style rendering while training", choices=("exact", "fast"))
    t.config(C, "scale_max", "largest augmentation up-scale")
    t.arg("--no-flip", action="store_true", help="no horizontal-flip augmentation")
    t.arg("--segmap-labels", choices=("auto", "sof20", "sofgan17", "celebamask19"), default="auto",
          help="label set of SEGMAPS (default auto: index.json or the ids)")
    t.config(C, "sample_every", "steps between sample grids (default {default}; 0 = end only)")
    t.config(C, "checkpoint_every", "steps between checkpoints")
    t.config(C, "log_every", "steps between metrics lines")
    t.config(C, "eval_every", "steps between parser-mIoU evaluations of G_ema samples (needs --parser; "
                              "default {default} = off)")
    t.config(C, "parser", "face parser for --eval-every", metavar="DIR|demo", show_default=False)
    t.config(C, "diversity_weight", "weight of a mode-seeking term (pairs of styles on one segmap must differ; "
                                    "not in SofGAN's training; default {default} = off)", metavar="W")
    t.config(C, "diversity_tau", "the mode-seeking ratio counts up to this value", metavar="T")
    t.config(C, "diversity_mode", "what the mode-seeking term compares: the 16x16 pooled images (default) or "
                                  "the mean colours of hair, skin, cloth and background",
             choices=("pooled", "regions"), show_default=False)
    t.config(C, "parser_weight", "weight of a semantic term: the frozen --loss-parser must read each fake's "
                                 "segmap in it (not in SofGAN's training; default {default} = off)", metavar="W")
    t.config(C, "loss_parser", "face parser of --parser-weight (evaluate with another one)", metavar="DIR|demo",
             show_default=False)
    t.device()
    t.arg("--stream-images", action="store_true",
          help="decode photos per batch instead of preloading them (default: preload when they fit in 4 GiB)")
    t.arg("--amp-cpu", action="store_true",
          help="bfloat16 autocast on CPU too (CPUs with AMX/AVX512-BF16: ~1.4x faster; CUDA always uses it)")
    t.config(C, "seed", "seed of the init and the data stream")
    t.arg("--until", type=int_arg, default=None, help="stop (with a checkpoint) after this step")
    t.arg("--limit", type=int_arg, default=None, help="use only the first N files of each folder")


def add_commands(sub) -> None:
    train = sub.add_parser("train", help="train a model")
    tsub = train.add_subparsers(dest="what", required=True, metavar="WHAT", parser_class=LazyParser)
    _add_sof(tsub)
    _add_parser(tsub)
    _add_siw(tsub)
