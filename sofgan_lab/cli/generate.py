"""``generate`` and ``video`` (sofgan_lab.pipeline, sofgan_lab.applications.video)."""
from __future__ import annotations

import io
import math
from pathlib import Path

from ._common import Command, flagged, float_arg, int_arg, load_pipeline

IMAGE_SUFFIXES = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}


def _region_mix(items: list[str]) -> dict[str, float]:
    """``--region GROUP=P`` (repeatable) -> {GROUP: P}."""
    mix = {}
    for item in items:
        group, sep, value = item.partition("=")
        try:
            mix[group.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep:
            raise ValueError(f"--region: expected GROUP=P (e.g. hair=1), got {item!r}")
    return mix


def _generate(args) -> dict:
    """Render one portrait with the pipeline and write it (atomically)."""
    from ..io.checkpoints import atomic_write_bytes, check_output_path

    fmt = IMAGE_SUFFIXES.get(Path(args.out).suffix.lower())
    if fmt is None:
        raise ValueError(f"--out: expected a .png or .jpg file name, got {str(args.out)!r}")
    if args.segmap is not None and Path(args.segmap).suffix.lower() != ".png":
        raise ValueError(f"--segmap: expected a .png file name, got {str(args.segmap)!r}")
    check_output_path(args.out, "--out")
    if args.segmap is not None:
        check_output_path(args.segmap, "--segmap")
    mix = _region_mix(args.region)
    if mix and args.texture_seed_b is None:
        raise ValueError("--region: needs a second style, --texture-seed-b")
    if args.texture_seed_b is not None and not mix:
        raise ValueError("--texture-seed-b: give the regions it paints with --region GROUP=P")
    pipe = load_pipeline(args)
    camera = {k: v for k, v in (("yaw", args.yaw), ("pitch", args.pitch), ("fov", args.fov)) if v is not None}
    texture = args.texture_seed if not mix else (args.texture_seed, args.texture_seed_b)
    flags = {"geometry": "--geometry-seed", "seed": "--geometry-seed", "texture": "--texture-seed",
             "camera": "--yaw/--pitch/--fov", "region_mix": "--region", "truncation": "--truncation"}
    try:
        portrait = pipe(geometry=args.geometry_seed, texture=texture, camera=camera or None,
                        region_mix=mix or None, truncation=args.truncation)
    except (ValueError, TypeError) as exc:
        raise ValueError(flagged(str(exc), flags)) from None
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
    from ..applications.video import free_view
    from ..io.checkpoints import check_output_path

    suffix = Path(args.out).suffix.lower()
    if suffix not in (".mp4", ".gif"):
        raise ValueError(f"--out: expected a .mp4 or .gif file name, got {str(args.out)!r}")
    if args.frames < 2:
        raise ValueError(f"--frames: expected at least 2, got {args.frames}")
    if not (math.isfinite(args.fps) and args.fps > 0):  # before any frame is rendered
        raise ValueError(f"--fps: expected a positive number (finite), got {args.fps}")
    check_output_path(args.out, "--out")
    pipe = load_pipeline(args)
    flags = {"geometry": "--geometry-seed", "texture": "--texture-seed", "frames": "--frames", "path": "--path",
             "truncation": "--truncation", "fps": "--fps"}
    try:
        frames = free_view(pipe, args.geometry_seed, args.texture_seed, path=args.path, frames=args.frames,
                           truncation=args.truncation)
    except (ValueError, TypeError) as exc:
        raise ValueError(flagged(str(exc), flags)) from None
    (frames.save_mp4 if suffix == ".mp4" else frames.save_gif)(args.out, fps=args.fps)
    return {"out": str(args.out), "frames": len(frames), "fps": args.fps, "path": args.path,
            "geometry_seed": args.geometry_seed, "texture_seed": args.texture_seed}


def _common(cmd: Command) -> None:
    cmd.arg("--model", default="demo", metavar="demo|DIR",
            help="'demo' (the shipped demo models) or a saved pipeline folder (default demo)")
    cmd.arg("--geometry-seed", type=int_arg, default=0, help="geometry seed (default 0)")
    cmd.arg("--texture-seed", type=int_arg, default=0, help="texture seed (default 0)")
    cmd.arg("--truncation", type=float_arg, default=None, help="truncation psi in [0, 1] (default: the model's)")
    cmd.device()


def add_commands(sub) -> None:
    gen = Command(sub, "generate", _generate, help="render one portrait to an image file")
    _common(gen)
    gen.arg("--yaw", type=float_arg, default=None, help="camera yaw in degrees (default 0: frontal)")
    gen.arg("--pitch", type=float_arg, default=None, help="camera pitch in degrees (default 0)")
    gen.arg("--fov", type=float_arg, default=None, help="vertical field of view in degrees (default: orthographic)")
    gen.arg("--texture-seed-b", type=int_arg, default=None, help="second style for --region")
    gen.arg("--region", action="append", default=[], metavar="GROUP=P",
            help="weight P in [0, 1] of style B in a style group (repeatable; needs --texture-seed-b)")
    gen.arg("--segmap", type=Path, default=None, help="also write the coloured SOF-20 segmap here (PNG)")
    gen.arg("--out", type=Path, required=True, help="image file (.png, .jpg)")

    vid = Command(sub, "video", _video, help="render a free-view video (geometry and texture fixed)")
    _common(vid)
    vid.arg("--path", choices=("yaw", "spiral"), default="yaw", help="camera path (default yaw)")
    vid.arg("--frames", type=int_arg, default=60, help="number of frames (default 60)")
    vid.arg("--fps", type=float_arg, default=24.0, help="frames per second (default 24)")
    vid.arg("--out", type=Path, required=True, help="video file (.mp4 or .gif)")
