"""Notebook widgets for sofgan-lab, installed as ``sofgan_lab.widgets``.

This folder sits at the top of the repository and is mapped onto the ``sofgan_lab.widgets``
subpackage by ``setup.py``. Widgets hold no model logic: they turn trait changes into calls of
the core library (``sofgan_lab``), which never imports from here.
"""
from __future__ import annotations

__all__: list[str] = []
