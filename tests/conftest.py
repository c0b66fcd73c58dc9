"""Fixtures shared by the test modules (the repository-wide options live in ../conftest.py)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch


#: Debounce (seconds) of the widgets that :func:`make` builds: the tests' renders run at once.
WIDGET_DEBOUNCE = 0.01


@pytest.fixture
def make():
    """Build widgets (``make(cls, *args, **kwargs)``; debounce :data:`WIDGET_DEBOUNCE` unless given)
    that are closed, their threads ended, after the test; ``make.made`` lists them."""
    made = []

    def build(cls, *args, **kwargs):
        kwargs.setdefault("debounce", WIDGET_DEBOUNCE)
        w = cls(*args, **kwargs)
        made.append(w)
        return w

    build.made = made
    yield build
    for w in made:
        w.close()


@pytest.fixture
def one_thread():
    """Run a test with torch on one thread: the machines have 2 busy cores, where OpenMP spinning
    makes tiny ops crawl, and sums then round the same way in every process (bit-exact checks).
    Use with ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def scans(tmp_path_factory) -> Path:
    """A tiny synthetic dataset in the SOF layout: 2 instances x 4 orthographic views at 16 px, seed 0."""
    from sofgan_lab.synthetic import write_scans

    return write_scans(tmp_path_factory.mktemp("scans") / "ortho", instances=2, views=4, size=16,
                       workers=1, progress=False)
