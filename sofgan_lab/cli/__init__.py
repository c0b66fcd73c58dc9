"""The ``sofgan-lab`` command (also ``python -m sofgan_lab.cli``).

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

One module per command group (``synth`` + ``demo``, ``train``, ``eval``, ``import-official``
in ``official``, ``generate`` + ``video``, ``data``); each leaf command is a
:class:`~sofgan_lab.cli._common.Command` whose parser carries the function that runs it
(``set_defaults``) and the flag each library argument is reported under.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Sequence

from .. import __version__
from . import data, generate, official, synth, train
from . import eval as evaluate
from ._common import flagged, log

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sofgan-lab", description="A Jupyter-first kit for exploring SofGAN.")
    p.add_argument("--version", action="version", version=f"sofgan-lab {__version__}")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars or info messages")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in (synth, train, evaluate, official, generate, data):
        group.add_commands(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        result = args._run(args)
    except (ValueError, TypeError) as exc:
        print(f"sofgan-lab: error: {flagged(str(exc), args._flags)}".splitlines()[0], file=sys.stderr)
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
    if args._output == "json":
        print(json.dumps(result, allow_nan=False))
    elif args._output == "text":
        print(result)
    else:
        log.info("wrote %s", result)
    return 0
