"""Repository-wide pytest configuration (applies to ``tests/`` and ``notebooks/``).

* ``--device cpu|cuda|cuda:N|mps`` and the ``device`` fixture (a ``torch.device``; the test is
  skipped when that device is not available here).
* ``gpu`` marker: skipped when ``torch.cuda.is_available()`` is false.
* ``browser`` marker: skipped when Chromium (``/usr/bin/chromium`` or ``$SOFGAN_LAB_CHROMIUM``)
  or the ``playwright`` package is missing; with ``SOFGAN_LAB_REQUIRE_BROWSER=1`` it fails instead.
  A browser test that failed only because anywidget's front end gave up on a widget model (its
  fixed 2 s initialisation timeout, which a busy 2-core machine can miss while JupyterLab builds a
  panel's hundred widget views) is run once more (pytest-rerunfailures), and the summary says so.
* Cells collected by nbval get the ``notebooks`` marker, so ``-m "not notebooks"`` deselects them.

torch is imported lazily (only by the ``device`` fixture, or when a ``gpu`` test is collected)
so that collection stays fast.
"""
from __future__ import annotations

import functools
import importlib
import os
import re
from pathlib import Path

import pytest

DEFAULT_CHROMIUM = "/usr/bin/chromium"
# The message anywidget's front end (0.9 to at least 0.11) raises when a model's module has not
# loaded within its fixed 2 s: the one browser failure that is re-run (once).
ANYWIDGET_INIT_TIMEOUT = r"\[anywidget\] Failed to initialize model"
_DEVICE_RE = re.compile(r"^(cpu|mps|cuda(:\d+)?)$")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--device",
        action="store",
        default="cpu",
        help="torch device for tests using the `device` fixture: cpu (default), cuda, cuda:N or mps",
    )


def pytest_configure(config: pytest.Config) -> None:
    value = config.getoption("--device")
    if not _DEVICE_RE.match(value):
        raise pytest.UsageError(
            f"--device: expected one of cpu, cuda, cuda:N, mps; got {value!r}"
        )


def _device_unavailable_reason(name: str) -> str | None:
    """Why ``name`` (already validated) cannot be used here, or None if it can."""
    import torch

    if name == "cpu":
        return None
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            return f"--device {name}: CUDA is not available (torch {torch.__version__})"
        index = int(name.split(":")[1]) if ":" in name else 0
        count = torch.cuda.device_count()
        if index >= count:
            return f"--device {name}: only {count} CUDA device(s) present"
        return None
    mps = getattr(torch.backends, "mps", None)
    if mps is None or not mps.is_available():
        return "--device mps: MPS is not available"
    return None


@pytest.fixture(scope="session")
def device(pytestconfig: pytest.Config):
    """The ``torch.device`` chosen with ``--device`` (default cpu); skips if it is unavailable."""
    import torch

    name = pytestconfig.getoption("--device")
    reason = _device_unavailable_reason(name)
    if reason is not None:
        pytest.skip(reason)
    return torch.device(name)


@functools.lru_cache(maxsize=None)
def _cuda_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())


@functools.lru_cache(maxsize=None)
def _browser_missing_reason() -> str | None:
    chromium = os.environ.get("SOFGAN_LAB_CHROMIUM") or DEFAULT_CHROMIUM
    if not Path(chromium).exists():
        return f"browser test needs Chromium at {chromium} (set SOFGAN_LAB_CHROMIUM to override)"
    try:
        importlib.import_module("playwright.sync_api")
    except Exception as exc:  # ImportError, or a broken install
        return f"browser test needs playwright ({type(exc).__name__}: {exc})"
    return None


def _is_nbval_item(item: pytest.Item) -> bool:
    if type(item).__module__.startswith("nbval"):
        return True
    path = getattr(item, "path", None)
    return path is not None and Path(path).suffix == ".ipynb"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skip_gpu = pytest.mark.skip(reason="gpu test: torch.cuda.is_available() is False")
    for item in items:
        if _is_nbval_item(item):
            item.add_marker(pytest.mark.notebooks)
        # torch is imported (once, cached) only when a gpu test was actually collected.
        if item.get_closest_marker("gpu") is not None and not _cuda_available():
            item.add_marker(skip_gpu)
        if item.get_closest_marker("browser") is not None and config.pluginmanager.hasplugin("rerunfailures"):
            item.add_marker(pytest.mark.flaky(reruns=1, only_rerun=[ANYWIDGET_INIT_TIMEOUT]))


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("browser") is None:
        return
    reason = _browser_missing_reason()
    if reason is None:
        return
    if os.environ.get("SOFGAN_LAB_REQUIRE_BROWSER") == "1":
        pytest.fail(f"SOFGAN_LAB_REQUIRE_BROWSER=1 but {reason}", pytrace=False)
    pytest.skip(reason)


def _skip_reason(report) -> str:
    longrepr = getattr(report, "longrepr", None)
    return str(longrepr[2]) if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr or "")


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    """Say plainly, at the end of the run, which checks did not run here: the browser tests (no
    Chromium or playwright) and the official-parity tests (no ``shared/fixtures/official``)."""
    skipped = terminalreporter.stats.get("skipped", [])
    browser = [r for r in skipped if "browser" in getattr(r, "keywords", {})]
    if browser:
        reason = _browser_missing_reason() or "see the skip reasons above"
        terminalreporter.write_sep("!", f"{len(browser)} BROWSER TESTS SKIPPED: {reason}", yellow=True, bold=True)
        terminalreporter.write_line("The widgets were not checked in a real browser. Install Debian's chromium "
                                    "(apt-get install chromium) and playwright, or set SOFGAN_LAB_CHROMIUM.")
    reruns = terminalreporter.stats.get("rerun", [])
    if reruns:
        names = ", ".join(sorted({r.nodeid.split("::")[-1] for r in reruns}))
        terminalreporter.write_sep("!", f"{len(reruns)} BROWSER TEST(S) RE-RUN after anywidget's 2 s model "
                                        f"initialisation timeout: {names}", yellow=True, bold=True)
    fixtures = [r for r in skipped if "fixtures not found at" in _skip_reason(r)]
    if fixtures:
        where = _skip_reason(fixtures[0]).split("fixtures not found at", 1)[1].strip()
        terminalreporter.write_sep("!", f"{len(fixtures)} OFFICIAL-PARITY TESTS SKIPPED: no fixtures at {where}",
                                   yellow=True, bold=True)
        terminalreporter.write_line("The importer was not compared with the official code. The fixtures (outputs of "
                                    "the official code on small random models; see their README) live in "
                                    "shared/fixtures/official beside the checkout; set SOFGAN_LAB_SHARED to the "
                                    "folder that holds fixtures/official.")
