"""The ``sofgan-lab`` command.

::

    sofgan-lab synth scans OUT --instances 122 --views 64 --size 128 --seed 0
    sofgan-lab synth photos OUT --count N --size 128 --seed 0 [--with-segmaps]
    sofgan-lab demo OUT            # headless: a few portraits and a contact sheet

Bad arguments end with a one-line error naming the argument and a non-zero exit status
(2), never a traceback.
"""
from __future__ import annotations

import argparse
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
    demo.add_argument("--overwrite", action="store_true",
                      help="replace a non-empty OUT (a previous demo output is replaced anyway)")
    return p


def _demo(args) -> Path:
    """Write portraits, their segmaps and a contact sheet (the demo models will take over here)."""
    import numpy as np
    from PIL import Image

    from .synthetic.writers import write_photos

    out_dir = Path(args.out)
    previous = out_dir / "contact_sheet.png"
    # A previous demo in OUT is replaced; any other non-empty folder needs --overwrite.
    overwrite = args.overwrite or (previous.is_file() and (out_dir / "index.json").is_file())
    out = write_photos(out_dir, count=args.count, size=args.size, seed=args.seed, with_segmaps=True,
                       overwrite=overwrite, progress=not args.quiet)
    tiles = [np.asarray(Image.open(out / "images" / f"{i:05d}.png")) for i in range(args.count)]
    vis = [np.asarray(Image.open(out / "segmaps_vis" / f"{i:05d}.png")) for i in range(args.count)]
    sheet = np.concatenate([np.concatenate(vis, 1), np.concatenate(tiles, 1)], 0)
    Image.fromarray(sheet).save(out / "contact_sheet.png")
    return out


# CLI flag names for library argument names in error messages.
_FLAGS = {"size": "--size", "seed": "--seed", "instances": "--instances", "views": "--views",
          "count": "--count", "supersample": "--supersample", "workers": "--workers", "out": "OUT",
          "camera": "--camera"}


def _flagged(message: str) -> str:
    head, sep, rest = message.partition(":")
    return f"{_FLAGS[head]}:{rest}" if sep and head in _FLAGS else message


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "synth":
            from .synthetic.writers import write_photos, write_scans

            if args.what == "scans":
                out = write_scans(args.out, instances=args.instances, views=args.views, size=args.size,
                                  seed=args.seed, camera=args.camera, supersample=args.supersample,
                                  overwrite=args.overwrite, workers=args.workers, progress=not args.quiet)
            else:
                out = write_photos(args.out, count=args.count, size=args.size, seed=args.seed,
                                   camera=args.camera, with_segmaps=args.with_segmaps,
                                   supersample=args.supersample, overwrite=args.overwrite,
                                   workers=args.workers, progress=not args.quiet)
        else:
            out = _demo(args)
    except (ValueError, TypeError) as exc:
        print(f"sofgan-lab: error: {_flagged(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("sofgan-lab: interrupted; nothing was written", file=sys.stderr)
        return 130
    log.info("wrote %s", out)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
