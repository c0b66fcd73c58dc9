"""Where the shipped demo models live, and how to find them.

The demo models are trained on the project's synthetic world and shipped in the repository's
``data/demo/`` folder (``data/demo/sof/`` for the geometry model). ``SOFGAN_LAB_DATA`` points to
another ``data`` folder (for wheel installs, which do not carry ``data/``).
"""
from __future__ import annotations

import os
from pathlib import Path

__all__ = ["data_dir", "demo_dir", "demo_available"]


def data_dir() -> Path:
    """The ``data`` folder: ``$SOFGAN_LAB_DATA`` if set, else the checkout's ``data/``."""
    env = os.environ.get("SOFGAN_LAB_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[1] / "data"


def demo_dir(name: str) -> Path:
    """The folder of the demo model ``name`` (``"sof"``, ``"geometry_space"``, ``"parser"``, ``"siw"``); a clear error if it
    is absent or empty."""
    if not isinstance(name, str) or not name or "/" in name or "\\" in name:
        raise ValueError(f"name: expected a demo model name like 'sof', got {name!r}")
    d = data_dir() / "demo" / name
    if not d.is_dir() or not any(d.iterdir()):
        raise FileNotFoundError(
            f"name: the demo model {name!r} is not at {d}. It ships in the repository's data/demo/ "
            f"folder; set SOFGAN_LAB_DATA to a folder that holds demo/{name}/ if sofgan-lab was "
            "installed without the checkout.")
    return d


def demo_available(*names: str) -> bool:
    """Whether every demo model in ``names`` (default: the pipeline's sof, siw and geometry_space) is present."""
    try:
        for name in names or ("sof", "siw", "geometry_space"):
            demo_dir(name)
    except FileNotFoundError:
        return False
    return True
