"""What every command shares: argument types, the flag each library argument is reported under,
config-derived flags, device and pipeline loading, and turning results into output."""
from __future__ import annotations

import argparse
import dataclasses
import logging
from pathlib import Path
from typing import Any, Callable

log = logging.getLogger("sofgan_lab.cli")

DEVICES = ("auto", "cpu", "cuda")


def int_arg(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def float_arg(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def channel_table(text: str) -> dict[int, int]:
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


def flagged(message: str, flags: dict[str, str]) -> str:
    """A library message ``"name: ..."`` with ``name`` replaced by the flag that feeds it."""
    head, sep, rest = message.partition(":")
    return f"{flags[head]}:{rest}" if sep and head in flags else message


def detail(exc: BaseException) -> str:
    """A library message without its ``"name: "`` head, the library's argument name that a CLI flag
    replaces; a head that is a path (``"/run/model/config.json: ..."``) is kept."""
    head, sep, rest = str(exc).partition(": ")
    return rest if sep and rest and head.isidentifier() else str(exc)


def nan_to_none(value):
    """NaN (a metric undefined here, e.g. a region fewer than two photos show) -> None (JSON null)."""
    if isinstance(value, dict):
        return {k: nan_to_none(v) for k, v in value.items()}
    return None if isinstance(value, float) and value != value else value


_TYPES = {int: int_arg, float: float_arg}


def _shown(value) -> str:
    """A default as its help shows it: ``1e-4``, ``0.002``, ``10``, ``100000``."""
    if isinstance(value, float):
        if 0 < abs(value) < 1e-3:
            return f"{value:.0e}".replace("e-0", "e-")
        return f"{value:g}"
    return str(value)


class LazyParser(argparse.ArgumentParser):
    """A sub-command parser whose arguments are added on first use (parsing, usage or help): the
    trainers' flags come from their config dataclasses, whose modules import torch, and
    ``sofgan-lab --help`` / ``--version`` should not pay for that."""

    def __init__(self, *args, populate: Callable[[], None] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self._populate = populate

    def _ready(self) -> None:
        populate, self._populate = self._populate, None
        if populate is not None:
            populate()

    def parse_known_args(self, *args, **kwargs):
        self._ready()
        return super().parse_known_args(*args, **kwargs)

    def format_usage(self) -> str:
        self._ready()
        return super().format_usage()

    def format_help(self) -> str:
        self._ready()
        return super().format_help()


class Command:
    """One leaf command: its parser, the function that runs it, and the CLI name of every library
    argument it feeds (so that a library error ``"steps: ..."`` reads ``"--steps: ..."``).

    ``output`` says what the runner returns: ``"json"`` (a dict printed as one JSON line), ``"text"``
    (printed as is) or ``"path"`` (logged as ``wrote PATH``).
    """

    def __init__(self, sub, name: str, run: Callable[[argparse.Namespace], Any], *, help: str,
                 output: str = "json", flags: dict[str, str] | None = None,
                 lazy: Callable[["Command"], None] | None = None):
        """``lazy``: a function adding the arguments on first use (``sub`` must make :class:`LazyParser` parsers)."""
        extra = {"populate": lambda: lazy(self)} if lazy is not None else {}
        self.parser = sub.add_parser(name, help=help, **extra)
        self.flags: dict[str, str] = dict(flags or {})   # library argument -> flag
        self.fields: dict[str, str] = {}                  # argparse dest -> config field
        self.parser.set_defaults(_run=run, _flags=self.flags, _fields=self.fields, _output=output)

    def arg(self, *names: str, field: str | None = None, **kw) -> argparse.Action:
        """``add_argument``; the flag is reported for the library argument ``field`` (default: its dest)."""
        action = self.parser.add_argument(*names, **kw)
        if action.option_strings:
            label = max(action.option_strings, key=len)
        else:
            label = action.metavar if isinstance(action.metavar, str) else action.dest.upper()
        self.flags.setdefault(field or action.dest, label)
        return action

    def config(self, cls: type, field: str, help: str, *, flag: str | None = None, show_default: bool = True,
               **kw) -> argparse.Action:
        """A flag overriding the dataclass field ``cls.field``: its type and the default shown in its help
        come from the dataclass (``{default}`` in ``help`` places it, else ``(default X)`` is appended).
        The flag's value is None unless given; :meth:`overrides` collects the given ones."""
        spec = {f.name: f for f in dataclasses.fields(cls)}[field]
        default = spec.default if spec.default is not dataclasses.MISSING else spec.default_factory()
        shown = _shown(default)
        if "{default}" in help:
            help = help.format(default=shown)
        elif show_default:
            help = f"{help} (default {shown})"
        if "type" not in kw and "choices" not in kw and type(default) in _TYPES:
            kw["type"] = _TYPES[type(default)]
        action = self.arg(flag or "--" + field.replace("_", "-"), field=field, default=None, help=help, **kw)
        self.fields[action.dest] = field
        return action

    def device(self) -> argparse.Action:
        return self.arg("--device", choices=DEVICES, default="auto", help="device (default auto)")


def overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The config fields the user set through :meth:`Command.config` flags."""
    return {field: getattr(args, dest) for dest, field in args._fields.items() if getattr(args, dest) is not None}


def load_pipeline(args):
    """``--model`` (``demo`` or a folder) on ``--device``; a missing or bad folder is a ``--model`` error."""
    from ..io.checkpoints import CheckpointError
    from ..pipeline import SofGAN
    from ..train.common import resolve_device

    device = resolve_device(args.device)  # "--device: 'cuda' requested but CUDA is not available", not a --model error
    try:
        return SofGAN.from_pretrained(args.model if args.model == "demo" else Path(args.model), device=device)
    except (FileNotFoundError, CheckpointError) as exc:
        raise ValueError(f"--model: {detail(exc)}") from None
