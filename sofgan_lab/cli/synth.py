"""``synth scans|photos`` (sofgan_lab.synthetic) and ``demo`` (sofgan_lab.applications.demo_sheet)."""
from __future__ import annotations

from pathlib import Path

from ._common import Command, int_arg

_SIZE_HELP = "image side in pixels (default 128)"


def _common(cmd: Command) -> None:
    cmd.arg("out", type=Path, help="output folder (absent or empty unless --overwrite)")
    cmd.arg("--size", type=int_arg, default=128, help=_SIZE_HELP)
    cmd.arg("--seed", type=int_arg, default=0, help="seed; the same seed gives byte-identical files")
    cmd.arg("--camera", choices=("orthographic", "perspective"), default="orthographic",
            help="camera model (default: orthographic, the release's sampler)")
    cmd.arg("--framing", choices=("portrait", "official"), default="portrait",
            help="portrait (default: the head fills the frame, shoulders at the bottom edge) or "
                 "official (the release's whole-bust framing)")
    cmd.arg("--workers", type=int_arg, default=None, help="processes (default: all cores, at most 8)")
    cmd.arg("--overwrite", action="store_true", help="replace a non-empty OUT")


def _scans(args) -> Path:
    from ..synthetic.writers import write_scans

    return write_scans(args.out, instances=args.instances, views=args.views, size=args.size, seed=args.seed,
                       camera=args.camera, supersample=args.supersample, framing=args.framing,
                       overwrite=args.overwrite, workers=args.workers, progress=not args.quiet)


def _photos(args) -> Path:
    from ..synthetic.writers import write_photos

    return write_photos(args.out, count=args.count, size=args.size, seed=args.seed, camera=args.camera,
                        with_segmaps=args.with_segmaps, supersample=args.supersample, framing=args.framing,
                        overwrite=args.overwrite, workers=args.workers, progress=not args.quiet)


def _demo(args) -> Path:
    from ..applications.demo_sheet import write_demo

    return write_demo(args.out, count=args.count, size=args.size, seed=args.seed, source=args.source,
                      overwrite=args.overwrite, progress=not args.quiet)


def add_commands(sub) -> None:
    synth = sub.add_parser("synth", help="make data from the procedural portrait world")
    ssub = synth.add_subparsers(dest="what", required=True, metavar="WHAT")

    scans = Command(ssub, "scans", _scans, help="multi-view segmaps in the SOF training layout", output="path")
    _common(scans)
    scans.arg("--instances", type=int_arg, default=122, help="number of heads (default 122)")
    scans.arg("--views", type=int_arg, default=64, help="random views per head (default 64)")
    scans.arg("--supersample", type=int_arg, default=1, help="label anti-aliasing factor (default 1)")

    photos = Command(ssub, "photos", _photos, help="shaded photos (optionally with their segmaps)", output="path")
    _common(photos)
    photos.arg("--count", type=int_arg, required=True, help="number of photos")
    photos.arg("--with-segmaps", action="store_true", help="also write SOF-20 segmaps (evaluation only)")
    photos.arg("--supersample", type=int_arg, default=2, help="anti-aliasing factor (default 2)")

    demo = Command(sub, "demo", _demo, help="headless demo: write a few portraits and a contact sheet",
                   output="path", flags={"out": "OUT"})
    demo.arg("out", type=Path, nargs="?", default=Path("out/demo"), help="output folder (default out/demo)")
    demo.arg("--count", type=int_arg, default=8, help="number of portraits (default 8)")
    demo.arg("--size", type=int_arg, default=128, help=_SIZE_HELP)
    demo.arg("--seed", type=int_arg, default=0, help="seed (default 0)")
    demo.arg("--source", choices=("auto", "pipeline", "synthetic"), default="auto",
             help="portraits from the demo pipeline, or the synthetic world's photos (default auto: the "
                  "pipeline when the demo models are present)")
    demo.arg("--overwrite", action="store_true",
             help="replace a non-empty OUT (a previous demo output is replaced anyway)")
