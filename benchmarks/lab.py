"""A throw-away JupyterLab and a headless Chromium, for the browser tests (``tests/test_browser.py``)
and the browser benchmark (``benchmarks/cases/browser.py``).

JupyterLab runs on 127.0.0.1 with its own config, settings and runtime folders (no token, no news,
no autosave), serving one folder; Chromium is Debian's (``/usr/bin/chromium``, or
``$SOFGAN_LAB_CHROMIUM``), driven by Playwright. The recipe is in ``shared/BROWSER-TESTING.md``.
"""
from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator

__all__ = ["CHROMIUM", "CHROMIUM_ARGS", "KERNEL_IDLE_JS", "jupyter_lab", "launch_chromium", "open_and_run_all",
           "shutdown_kernels"]

CHROMIUM = os.environ.get("SOFGAN_LAB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]

#: True once the notebook's kernel is connected and idle.
KERNEL_IDLE_JS = """() => {
    const ind = document.querySelector('.jp-NotebookPanel .jp-Notebook-ExecutionIndicator');
    const name = document.querySelector('.jp-NotebookPanel .jp-KernelName, .jp-Toolbar-kernelName');
    const status = [...document.querySelectorAll('.jp-StatusBar-TextItem')].map(e => e.textContent);
    return ind && ind.getAttribute('data-status') === 'idle' && name &&
           !name.textContent.includes('No Kernel') && status.some(t => /\\|\\s*Idle/.test(t));
}"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write_settings(settings: Path) -> None:
    for rel, body in (("@jupyterlab/apputils-extension/notification.jupyterlab-settings",
                       {"fetchNews": "false", "checkForUpdates": False}),
                      ("@jupyterlab/docmanager-extension/plugin.jupyterlab-settings", {"autosave": False})):
        f = settings / rel
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(json.dumps(body))


@contextlib.contextmanager
def jupyter_lab(served: Path, root: Path, *, threads: int = 1, timeout: float = 90.0) -> Iterator[str]:
    """Run JupyterLab serving ``served`` (its config, settings and log under ``root``, which must
    exist) with ``threads`` torch/OpenMP threads per kernel; yields its URL once ``/api/status``
    answers; stops it on exit."""
    settings, workspaces, config, runtime = (root / n for n in ("settings", "workspaces", "config", "runtime"))
    _write_settings(settings)
    port = _free_port()
    cfg = root / "jupyter_server_config.json"
    cfg.write_text(json.dumps({
        "ServerApp": {"ip": "127.0.0.1", "port": port, "port_retries": 0, "open_browser": False,
                      "allow_root": True, "token": "", "password": "", "disable_check_xsrf": True,
                      "root_dir": str(served)},
        "IdentityProvider": {"token": ""},
        "LabServerApp": {"workspaces_dir": str(workspaces), "user_settings_dir": str(settings)},
        "LabApp": {"news_url": None, "check_for_updates_class": "jupyterlab.NeverCheckForUpdate"},
    }))
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(config), JUPYTER_RUNTIME_DIR=str(runtime),
               OMP_NUM_THREADS=str(threads))
    log_path = root / "lab.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "jupyter", "lab", f"--config={cfg}"], cwd=served, env=env,
                                stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + timeout
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"jupyter lab exited with {proc.returncode}: {log_path.read_text()[-2000:]}")
                try:
                    with urllib.request.urlopen(f"{url}/api/status", timeout=2) as r:
                        if r.status == 200:
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"jupyter lab did not answer /api/status within {timeout:g} s")
                time.sleep(0.3)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


def shutdown_kernels(url: str, timeout: float = 30.0) -> int:
    """Shut down every session and kernel of the JupyterLab at ``url`` (its REST API); returns how many
    were deleted. A notebook opened afterwards starts a fresh kernel instead of re-running its cells
    in one that still holds the widgets of every earlier run (which a new page then restores)."""
    count = 0
    for kind in ("sessions", "kernels"):  # a session's kernel goes with it; then any kernel left alone
        with urllib.request.urlopen(f"{url}/api/{kind}", timeout=timeout) as r:
            items = json.load(r)
        for item in items:
            req = urllib.request.Request(f"{url}/api/{kind}/{item['id']}", method="DELETE")
            with urllib.request.urlopen(req, timeout=timeout):
                count += 1
    return count


def launch_chromium(pw):
    """A headless Chromium (Debian's, :data:`CHROMIUM`) through Playwright's ``pw``."""
    return pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)


def open_and_run_all(page, url: str) -> None:
    """Load ``url`` (a notebook in JupyterLab), wait for an idle kernel, then Run > Run All Cells."""
    page.goto(url)
    page.wait_for_selector("#jupyterlab-splash", state="detached", timeout=60_000)
    page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=60_000)
    page.wait_for_function(KERNEL_IDLE_JS, timeout=90_000)
    page.click("text=Run", timeout=10_000)
    page.click('[data-command="runmenu:run-all"]', timeout=10_000)
