"""The benchmark runner: ``python -m benchmarks [CASE ...] [--list] [--quick] [--device D]
[--repeats N] [--out DIR]``.

Runs the named cases (all registered ones if none are named), writes ``DIR/<case>.json`` per case
and rebuilds ``DIR/SUMMARY.md`` from every JSON in ``DIR``. Exit status: 0 when every case ran,
1 when a case (or, running all, a case module) failed, 2 for a usage error (unknown case,
unavailable device).

JSON schema (``SCHEMA_VERSION`` 1)::

    {"schema": 1, "case": str, "description": str, "timestamp": "YYYY-MM-DDTHH:MM:SSZ" (UTC),
     "quick": bool, "device": str,
     "machine": {"platform", "python", "cpu_count", "cpu_model", "memory_total_bytes",
                 "torch", "torch_threads", "device", "device_name"},
     "figures": {NAME: {"kind": "measured", "name", "unit", "repeats", "warmup", "min", "median",
                        "mean", "items", "items_per_s"}
                     | {"kind": "recorded", "name", "unit", "value"}}}
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

from benchmarks.cases import Context, discover, registry

__all__ = ["main", "machine_info", "run_case", "write_summary", "DEFAULT_OUT", "SCHEMA_VERSION"]

log = logging.getLogger("benchmarks")

SCHEMA_VERSION = 1
DEFAULT_OUT = Path(__file__).resolve().parent / "results"


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Hardware", "Processor") and value.strip():
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or None


def _memory_total_bytes() -> int | None:
    try:
        with open("/proc/meminfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def machine_info(device: Any) -> dict[str, Any]:
    """Platform, Python, CPU, memory, torch and the device's name, for the JSON records."""
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        device_name = torch.cuda.get_device_name(device)
    elif device.type == "mps":
        device_name = "Apple MPS"
    else:
        device_name = _cpu_model()
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "memory_total_bytes": _memory_total_bytes(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "device": str(device),
        "device_name": device_name,
    }


def _resolve_device(name: str):
    """``torch.device(name)`` if usable here, else a ``ValueError`` saying why."""
    import torch

    try:
        device = torch.device(name)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"--device: expected cpu, cuda, cuda:N or mps, got {name!r}") from exc
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"--device {name}: CUDA is not available on this machine")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s) present")
    elif device.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ValueError(f"--device {name}: MPS is not available on this machine")
    elif device.type != "cpu":
        raise ValueError(f"--device: expected cpu, cuda, cuda:N or mps, got {name!r}")
    return device


def run_case(name: str, *, quick: bool, device: Any, repeats: int | None) -> dict[str, Any]:
    """Run one registered case; return its JSON record (raises whatever the case raises)."""
    case = registry()[name]
    ctx = Context(quick=quick, device=device, repeats=repeats)
    started = time.perf_counter()
    case.fn(ctx)
    log.info("case %s done in %.2f s (%d figures)", name, time.perf_counter() - started, len(ctx.figures))
    if not ctx.figures:
        raise RuntimeError(f"benchmark case {name!r} reported no figures")
    return {
        "schema": SCHEMA_VERSION,
        "case": case.name,
        "description": case.description,
        "timestamp": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "quick": quick,
        "device": str(device),
        "machine": machine_info(device),
        "figures": ctx.figures_as_json(),
    }


def _write_json(path: Path, record: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(record, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    return str(value)


_COLUMNS = ("Case", "Figure", "Median / value", "Min", "Mean", "Unit", "Items/s", "Repeats",
            "Device", "Quick", "Timestamp (UTC)")


def _rows(record: dict[str, Any]) -> list[list[str]]:
    machine = record.get("machine", {})
    device = machine.get("device", record.get("device", ""))
    if machine.get("device_name") and str(device).startswith("cuda"):
        device = f"{device} ({machine['device_name']})"
    rows = []
    for name, fig in record.get("figures", {}).items():
        if fig.get("kind") == "recorded":
            cells = [fig.get("value"), None, None, fig.get("unit"), None, None]
        else:
            cells = [fig.get("median"), fig.get("min"), fig.get("mean"), fig.get("unit"),
                     fig.get("items_per_s"), fig.get("repeats")]
        rows.append([record.get("case", "?"), name, *map(_fmt, cells), str(device),
                     _fmt(record.get("quick")), record.get("timestamp", "")])
    return rows


def _table(rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(_COLUMNS) + " |", "|" + "|".join("---" for _ in _COLUMNS) + "|"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def write_summary(out: Path) -> Path:
    """Rebuild ``out/SUMMARY.md``: one Markdown table of every figure of every ``out/*.json``."""
    rows = []
    for path in sorted(out.glob("*.json")):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            log.warning("skipping %s in the summary: %s", path, exc)
            continue
        rows += _rows(record)
    text = (
        "# Benchmark results\n\n"
        "Written by `python -m benchmarks` from the JSON files in this folder; times are medians "
        "unless the unit says otherwise.\n\n" + _table(rows) + "\n"
    )
    summary = out / "SUMMARY.md"
    summary.write_text(text, encoding="utf-8")
    return summary


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    p.add_argument("cases", nargs="*", metavar="CASE", help="cases to run (default: all)")
    p.add_argument("--list", action="store_true", help="list the known cases and exit")
    p.add_argument("--quick", action="store_true", help="small workloads, for smoke runs")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N or mps")
    p.add_argument("--repeats", type=int, default=None, help="override every case's repeat count")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"results folder (default {DEFAULT_OUT})")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[bench] %(message)s", stream=sys.stderr)

    import_errors = discover()
    cases = registry()
    if args.list:
        width = max((len(n) for n in cases), default=0)
        for name, case in cases.items():
            print(f"{name:<{width}}  {case.description}")
        for module, error in import_errors.items():
            print(f"(could not import {module}: {error})", file=sys.stderr)
        return 0

    unknown = [n for n in args.cases if n not in cases]
    if unknown:
        print(f"unknown benchmark case(s): {', '.join(unknown)}", file=sys.stderr)
        print("known cases: " + (", ".join(cases) or "(none)"), file=sys.stderr)
        for module, error in import_errors.items():
            print(f"(could not import {module}: {error})", file=sys.stderr)
        return 2
    if args.repeats is not None and args.repeats < 1:
        print(f"--repeats: expected an integer >= 1, got {args.repeats}", file=sys.stderr)
        return 2
    try:
        device = _resolve_device(args.device)
    except ValueError as exc:
        print(str(exc), file=sys.stderr)
        return 2

    selected = list(dict.fromkeys(args.cases)) or list(cases)
    failed = [] if args.cases else list(import_errors)
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in selected:
        log.info("running %s on %s%s", name, device, " (quick)" if args.quick else "")
        try:
            record = run_case(name, quick=args.quick, device=device, repeats=args.repeats)
        except Exception:
            log.exception("benchmark case %s failed", name)
            failed.append(name)
            continue
        _write_json(args.out / f"{name}.json", record)
        rows += _rows(record)
    summary = write_summary(args.out)

    if rows:
        print(_table(rows))
    print(f"\nresults in {args.out} (summary: {summary})")
    if failed:
        print(f"FAILED: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0
