"""``data celebamask|images|standin`` (sofgan_lab.datasets); each prints one JSON line."""
from __future__ import annotations

import json
from pathlib import Path

from ._common import Command, int_arg

_WORKERS_HELP = "processes (default: all cores, at most 8)"
_LIMIT_HELP = "only the first N images"


def _missing_is_value_error(run):
    """A missing file or folder becomes a ValueError (one-line error, exit 2)."""
    def wrapped(args):
        try:
            return run(args)
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise ValueError(str(exc)) from None
    wrapped.__doc__ = run.__doc__
    return wrapped


@_missing_is_value_error
def _celebamask(args) -> dict:
    from .. import datasets

    out = datasets.build_segmap_folder(args.root, args.out, label_set=args.label_set, size=args.size,
                                       limit=args.limit, workers=args.workers, overwrite=args.overwrite,
                                       progress=not args.quiet)
    index = json.loads((out / "index.json").read_text())
    return {"out": str(out), "segmaps": str(out / "segmaps"), "label_set": index["label_set"],
            "size": index["size"], "count": index["count"]}


@_missing_is_value_error
def _images(args) -> dict:
    from .. import datasets

    out = datasets.build_image_folder(args.source, args.out, size=args.size, limit=args.limit, format=args.format,
                                      workers=args.workers, overwrite=args.overwrite, progress=not args.quiet)
    index = json.loads((out / "index.json").read_text())
    return {"out": str(out), "images": str(out / "images"), "size": index["size"], "count": index["count"]}


@_missing_is_value_error
def _standin(args) -> dict:
    from .. import datasets

    make = datasets.make_celebamask_standin if args.layout == "celebamask" else datasets.make_ffhq_standin
    size = args.size or (512 if args.layout == "celebamask" else 128)
    out = make(args.out, args.count, size=size, seed=args.seed, overwrite=args.overwrite, workers=args.workers,
               progress=not args.quiet)
    marker = json.loads((out / datasets.STANDIN_MARKER).read_text())
    return {"out": str(out), "layout": marker["layout"], "count": marker["count"], "size": marker["size"],
            "standin": True}


def add_commands(sub) -> None:
    data = sub.add_parser("data", help="prepare real datasets (CelebAMask-HQ, FFHQ) or offline stand-ins")
    dsub = data.add_subparsers(dest="what", required=True, metavar="WHAT")

    cm = Command(dsub, "celebamask", _celebamask, flags={"index": "ROOT"},
                 help="compose CelebAMask-HQ part masks into a segmap folder; prints one JSON line")
    cm.arg("root", type=Path, metavar="ROOT", help="the CelebAMask-HQ folder (or its parent)")
    cm.arg("--out", type=Path, required=True, help="segmap folder to write (resumes an interrupted run)")
    cm.arg("--label-set", choices=("sof20", "sofgan17", "celebamask19"), default="sof20",
           help="ids of the written maps (default sof20: the nose split at the face's median column)")
    cm.arg("--size", type=int_arg, default=None, help="side of the written maps (default: the masks', 512)")
    cm.arg("--limit", type=int_arg, default=None, help=_LIMIT_HELP)
    cm.arg("--workers", type=int_arg, default=None, help=_WORKERS_HELP)
    cm.arg("--overwrite", action="store_true", help="rebuild a folder made with other settings")

    im = Command(dsub, "images", _images,
                 help="write resized copies of CelebA-HQ / FFHQ / any photos; prints one JSON line")
    im.arg("source", type=Path, metavar="SOURCE",
           help="a CelebAMask-HQ folder, an FFHQ folder (images1024x1024/...) or a folder of images")
    im.arg("--out", type=Path, required=True, help="folder to write (OUT/images/*)")
    im.arg("--size", type=int_arg, default=256, help="image side in pixels (default 256)")
    im.arg("--limit", type=int_arg, default=None, help=_LIMIT_HELP)
    im.arg("--format", choices=("png", "jpg"), default="png", help="file format (default png)")
    im.arg("--workers", type=int_arg, default=None, help=_WORKERS_HELP)
    im.arg("--overwrite", action="store_true", help="rebuild a folder made with other settings")

    st = Command(dsub, "standin", _standin,
                 help="a tiny CelebAMask-HQ- or FFHQ-shaped tree from synthetic photos; prints one JSON line")
    st.arg("layout", choices=("celebamask", "ffhq"), metavar="LAYOUT", help="celebamask or ffhq")
    st.arg("out", type=Path, metavar="OUT", help="output folder (absent or empty unless --overwrite)")
    st.arg("--count", type=int_arg, default=8, help="number of images (default 8)")
    st.arg("--size", type=int_arg, default=None,
           help="image (and mask) side in pixels (default: 512 for celebamask, 128 for ffhq)")
    st.arg("--seed", type=int_arg, default=0, help="seed; the same seed gives the same files")
    st.arg("--workers", type=int_arg, default=None, help=_WORKERS_HELP)
    st.arg("--overwrite", action="store_true", help="replace a non-empty OUT")
