"""``eval sof|parser|siw|metrics``: each prints one JSON line (``metrics``: a Markdown table)."""
from __future__ import annotations

from pathlib import Path

from ._common import Command, detail, float_arg, int_arg, load_pipeline, nan_to_none

METRIC_NAMES = ("diversity", "ssg", "fvv", "fid")


def _eval_sof(args) -> dict:
    from ..train.sof_eval import evaluate_sof_model

    if args.data is not None and not args.data.is_dir():
        raise ValueError(f"data: {args.data} is not a folder")
    return evaluate_sof_model(args.model, data=args.data, heldout_views=args.heldout_views, seed=args.seed,
                              instances=args.instances, device=args.device, framing=args.framing,
                              progress=not args.quiet)


def _eval_parser(args) -> dict:
    import torch

    from ..parsing import FaceParser
    from ..train.common import resolve_device
    from ..train.parser_trainer import evaluate_parser

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


def _siw_photos(photos_dir: Path, size: int, limit: int | None):
    """The (images (N, 3, H, W), segmaps (N, H, W)) of a photo folder with segmaps, for ``--photos``."""
    import torch

    from ..train.siw_data import ImageFolder, SegmapFolder

    if not Path(photos_dir).is_dir():
        raise ValueError(f"photos: {photos_dir} is not a folder")
    for sub in ("images", "segmaps"):
        if not (Path(photos_dir) / sub).is_dir():
            raise ValueError(f"photos: {photos_dir} has no {sub}/ (write it with sofgan-lab synth photos "
                             "--with-segmaps)")
    try:
        imgs = ImageFolder(photos_dir, size, limit=limit)
        photo_segs = SegmapFolder(photos_dir, size, limit=limit).data
    except FileNotFoundError as exc:  # an empty images/ or segmaps/
        raise ValueError(f"photos: {detail(exc)}") from None
    if len(imgs) != photo_segs.shape[0]:
        raise ValueError(f"photos: {photos_dir} holds {len(imgs)} images but {photo_segs.shape[0]} segmaps")
    return imgs.batch(torch.arange(len(imgs))), photo_segs


def _eval_siw(args) -> dict:
    import torch

    from ..parsing import FaceParser
    from ..train.common import resolve_device
    from ..train.siw_data import SegmapFolder
    from ..train.siw_trainer import evaluate_siw, load_siw_generator

    device = resolve_device(args.device)
    try:
        G = load_siw_generator(args.model, which=args.which, map_location=device)  # "demo" included
    except FileNotFoundError as exc:  # no shipped demo texture model
        raise ValueError(f"model: {detail(exc)}") from None
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
        raise ValueError(f"segmaps: {detail(exc)}") from None
    photos_dir = args.photos
    if photos_dir is None and (args.segmaps / "images").is_dir():
        photos_dir = args.segmaps
    photos = photo_segs = None
    if photos_dir is not None:
        photos, photo_segs = _siw_photos(photos_dir, G.config.size, args.n)
    if args.styles < 2:
        raise ValueError(f"styles: expected an integer >= 2, got {args.styles}")
    if args.geometries < 1:
        raise ValueError(f"geometries: expected an integer >= 1, got {args.geometries}")
    with torch.no_grad():
        rep = evaluate_siw(G, parser, segs, seed=args.seed, truncation=args.truncation, group=args.group,
                           dilation=args.dilation, batch=args.batch, photos=photos, photo_segmaps=photo_segs,
                           n_styles=args.styles, n_geometries=args.geometries)
    return {"model": str(args.model), "segmaps": str(args.segmaps), "parser": str(args.parser), **nan_to_none(rep)}


def _eval_metrics(args) -> str:
    """Run the chosen metrics and return the Markdown table (the CSV goes to ``--csv``)."""
    from ..metrics import (fid, fvv_identity, lpips_diversity, metric_table, ssg_diversity, table_to_csv,
                           table_to_markdown)

    names = [m.strip() for m in args.metrics.split(",") if m.strip()]
    unknown = [m for m in names if m not in METRIC_NAMES]
    if not names or unknown:
        raise ValueError(f"--metrics: unknown metric(s) {unknown or names}; choose from {', '.join(METRIC_NAMES)}")
    if args.n < 2:
        raise ValueError(f"--n: expected at least 2, got {args.n}")
    if "fid" in names and args.real is None:
        raise ValueError("--real: fid needs a folder of real images (e.g. sofgan-lab synth photos OUT)")
    if args.real is not None and not Path(args.real).is_dir():
        raise ValueError(f"--real: {args.real} is not a folder")
    if args.csv is not None and Path(args.csv).suffix.lower() != ".csv":
        raise ValueError(f"--csv: expected a .csv file name, got {str(args.csv)!r}")
    pipe = load_pipeline(args)
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
                from ..images import from_uint8
                from ..metrics import as_feature_extractor, load_inception
                from ..train.siw_data import ImageFolder

                if args.extractor == "parser":
                    from ..parsing import FaceParser

                    extractor = as_feature_extractor(FaceParser.from_pretrained("demo"))
                else:
                    extractor = load_inception()
                real = from_uint8(ImageFolder(args.real, pipe.siw.config.size).data)
                results.append(fid(real, pipe, extractor, n=args.n, **common))
    except FileNotFoundError as exc:  # missing backbone / Inception weights: say which flag avoids them
        hint = "--untrained-backbone" if "lpips" in str(exc).lower() or m != "fid" else "--extractor parser"
        raise ValueError(f"--{'net' if m != 'fid' else 'extractor'}: {exc} (or pass {hint})") from None
    table = metric_table(results)
    if args.csv is not None:
        table_to_csv(table, args.csv)
    return table_to_markdown(table)


def _add_sof(esub) -> None:
    e = Command(esub, "sof", _eval_sof, help="held-out mIoU of a trained SOF; prints one JSON line",
                flags={"directory": "MODEL", "root": "--data"})
    e.arg("model", type=Path, metavar="MODEL", help="model folder (RUN/model) or run folder")
    e.arg("--data", type=Path, default=None,
          help="dataset with the training instances (default: regenerate the synthetic ones)")
    e.arg("--heldout-views", type=int_arg, default=None,
          help="views per instance (default: the run's held-out views with --data, else 8)")
    e.arg("--seed", type=int_arg, default=None,
          help="view split seed with --data (default: the run's) or new cameras' seed (default 0)")
    e.arg("--instances", type=int_arg, default=None, help="evaluate the first N instances (default all)")
    e.arg("--framing", choices=("portrait", "official"), default=None,
          help="framing of the new cameras without --data (default: the training data's)")
    e.device()


def _add_parser(esub) -> None:
    e = Command(esub, "parser", _eval_parser,
                help="mIoU of a face parser on photos with segmaps; prints one JSON line",
                flags={"directory": "MODEL", "photos_dir": "--data", "blur_sigma": "--blur", "noise_std": "--noise",
                       "batch_size": "--batch"})
    e.arg("model", type=Path, metavar="MODEL", help="parser folder (RUN/model), run folder or 'demo'")
    e.arg("--data", type=Path, required=True, metavar="PHOTOS",
          help="photo folder with segmaps (sofgan-lab synth photos --with-segmaps)")
    e.arg("--blur", type=float_arg, default=0.0, help="degrade first: Gaussian blur sigma in pixels (default 0)")
    e.arg("--noise", type=float_arg, default=0.0,
          help="degrade first: Gaussian noise std as a fraction of the [0, 1] range (default 0)")
    e.arg("--seed", type=int_arg, default=0, help="seed of the noise (default 0)")
    e.arg("--batch", type=int_arg, default=32, help="photos per forward pass (default 32)")
    e.arg("--flip-average", action="store_true",
          help="average each photo's and its mirror image's class probabilities (2x the cost)")
    e.device()


def _add_siw(esub) -> None:
    e = Command(esub, "siw", _eval_siw,
                help="a texture generator's parser mIoU against its input segmaps and its hair-edit leakage; "
                     "prints one JSON line",
                flags={"path": "MODEL", "directory": "MODEL", "photo_segmaps": "--photos", "n_styles": "--styles",
                       "n_geometries": "--geometries"})
    e.arg("model", type=Path, metavar="MODEL",
          help="'demo', a generator folder (RUN/model), a run folder or a checkpoint folder (RUN/checkpoints/step_N)")
    e.arg("--segmaps", type=Path, required=True, metavar="SEGMAPS",
          help="label-map folder (or a folder with segmaps/), e.g. held-out sofgan-lab synth photos --with-segmaps")
    e.arg("--n", type=int_arg, default=None, help="evaluate the first N segmaps (default all)")
    e.arg("--parser", default="demo", metavar="demo|DIR", help="face parser (default: the demo parser)")
    e.arg("--truncation", type=float_arg, default=1.0, help="truncation psi of the styles (default 1.0)")
    e.arg("--group", default="hair", help="style group whose style changes for the leakage (default hair)")
    e.arg("--dilation", type=int_arg, default=5, help="pixels the group's region is dilated by (default 5)")
    e.arg("--which", choices=("g_ema", "g"), default="g_ema",
          help="from a checkpoint: the EMA generator (default) or the raw one")
    e.arg("--seed", type=int_arg, default=0, help="seed of the styles (default 0)")
    e.arg("--batch", type=int_arg, default=8, help="segmaps per forward pass (default 8)")
    e.arg("--photos", type=Path, default=None, metavar="PHOTOS",
          help="photos with segmaps for the colour-diversity and region-mix references (default: the "
               "--segmaps folder when it holds images/, as sofgan-lab synth photos --with-segmaps writes)")
    e.arg("--styles", type=int_arg, default=128, help="styles per geometry for the colour diversity (default 128)")
    e.arg("--geometries", type=int_arg, default=8,
          help="segmaps the styles are drawn on for the colour diversity (default 8)")
    e.device()


def _add_metrics(esub) -> None:
    e = Command(esub, "metrics", _eval_metrics, output="text",
                help="the paper's metrics on a pipeline; prints a Markdown table, writes CSV")
    e.arg("--model", default="demo", metavar="demo|DIR", help="'demo' or a saved pipeline folder")
    e.arg("--metrics", default="diversity,ssg,fvv", metavar="LIST",
          help=f"comma-separated, from {','.join(METRIC_NAMES)} (default diversity,ssg,fvv)")
    e.arg("--n", type=int_arg, default=200,
          help="pairs (diversity), segmaps (ssg), instances (fvv), generated images (fid); default 200")
    e.arg("--real", type=Path, default=None, metavar="PHOTOS", help="real image folder (needed by fid)")
    e.arg("--net", choices=("alex", "vgg", "squeeze"), default="alex", help="LPIPS backbone (default alex)")
    e.arg("--untrained-backbone", action="store_true",
          help="run LPIPS without the ImageNet backbone weights (results marked not comparable)")
    e.arg("--extractor", choices=("inception", "parser"), default="inception",
          help="FID features: the FID Inception (needs its weights file) or the demo face parser")
    e.arg("--truncation", type=float_arg, default=1.0, help="truncation psi (default 1.0, the paper's)")
    e.arg("--csv", type=Path, default=None, help="also write the table as CSV here")
    e.arg("--seed", type=int_arg, default=0, help="seed (default 0)")
    e.device()


def add_commands(sub) -> None:
    ev = sub.add_parser("eval", help="evaluate a model")
    esub = ev.add_subparsers(dest="what", required=True, metavar="WHAT")
    _add_sof(esub)
    _add_parser(esub)
    _add_siw(esub)
    _add_metrics(esub)
