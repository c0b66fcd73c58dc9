"""A real browser: JupyterLab started on 127.0.0.1 by the test, driven by Playwright with Debian's
Chromium (``/usr/bin/chromium``, or ``$SOFGAN_LAB_CHROMIUM``): open tutorial 04, run it, move a
slider of the region style mixer, and check that the portrait changed.

Screenshots are kept in ``out/test-artifacts/browser/`` (``$SOFGAN_LAB_ARTIFACTS`` overrides).
Skipped where Chromium is absent, except in CI (``.ci/run`` installs it), where that fails.
The recipe (server config, readiness signs, slider handling) is in ``shared/BROWSER-TESTING.md``.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("SOFGAN_LAB_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(os.environ.get("SOFGAN_LAB_ARTIFACTS", REPO / "out" / "test-artifacts" / "browser"))

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).is_file() and not os.environ.get("CI"),
                       reason=f"Chromium not found at {CHROMIUM} (apt-get install chromium)"),
]


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


NOTEBOOK = REPO / "notebooks" / "04_texture_and_region_styles.ipynb"


def _tutorial_without_outputs() -> nbformat.NotebookNode:
    """Tutorial 04 (it ends with a ``RegionStyleMixer``), outputs cleared as a reader would open it fresh."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return nb


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab on 127.0.0.1 with a throw-away config, serving a folder with a copy of tutorial 04."""
    from sofgan_lab.demo import demo_dir

    demo_dir("siw")  # the tutorial needs the demo texture model: a clear error when it is missing

    root = tmp_path_factory.mktemp("lab")
    served = root / "served"
    served.mkdir()
    nbformat.write(_tutorial_without_outputs(), served / "tutorial.ipynb")
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
               OMP_NUM_THREADS="1")
    log = open(root / "lab.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "jupyter", "lab", f"--config={cfg}"], cwd=served, env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"jupyter lab exited with {proc.returncode}: {(root / 'lab.log').read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{url}/api/status", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("jupyter lab did not answer /api/status within 90 s")
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


_PIXELS_JS = """(sel) => {
    const img = document.querySelector(sel);
    if (!img || !img.complete || !img.naturalWidth) return null;
    const c = document.createElement('canvas');
    c.width = img.naturalWidth; c.height = img.naturalHeight;
    const ctx = c.getContext('2d');
    ctx.drawImage(img, 0, 0);
    const d = ctx.getImageData(0, 0, c.width, c.height).data;
    let h = 0;
    for (let i = 0; i < d.length; i += 1) h = (h * 31 + d[i]) % 1000000007;
    return h + ':' + c.width;
}"""


def test_region_mixer_slider_changes_the_portrait(lab):
    playwright = pytest.importorskip("playwright.sync_api")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob("mixer_*.png"):
        old.unlink()
    img_sel = "img.sofgan-portrait-image"
    with playwright.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run", "--disable-quic"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            page.goto(f"{lab}/lab/tree/tutorial.ipynb")
            page.wait_for_selector("#jupyterlab-splash", state="detached", timeout=60_000)
            page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=60_000)
            page.wait_for_function("""() => {
                const ind = document.querySelector('.jp-NotebookPanel .jp-Notebook-ExecutionIndicator');
                const name = document.querySelector('.jp-NotebookPanel .jp-KernelName, .jp-Toolbar-kernelName');
                const status = [...document.querySelectorAll('.jp-StatusBar-TextItem')].map(e => e.textContent);
                return ind && ind.getAttribute('data-status') === 'idle' && name &&
                       !name.textContent.includes('No Kernel') && status.some(t => /\\|\\s*Idle/.test(t));
            }""", timeout=90_000)
            page.click("text=Run", timeout=10_000)
            page.click('[data-command="runmenu:run-all"]', timeout=10_000)
            # the tutorial's last code cells leave the mixer's hair weight at 1.0
            page.wait_for_function("() => { const r = document.querySelector('.sofgan-mix-hair .widget-readout');"
                                   " return r && parseFloat(r.textContent) >= 0.99; }", timeout=240_000)
            page.wait_for_function(f"() => ({_PIXELS_JS})('{img_sel}') !== null", timeout=60_000)
            before = page.evaluate(_PIXELS_JS, img_sel)
            src_before = page.get_attribute(img_sel, "src")
            page.screenshot(path=str(ARTIFACTS / "mixer_before.png"))
            handle = page.locator(".sofgan-mix-hair .noUi-handle").first
            handle.focus()
            for _ in range(20):                         # 20 x 0.05: hair weight 1 -> 0
                handle.press("ArrowLeft")
            page.wait_for_function(
                "() => { const r = document.querySelector('.sofgan-mix-hair .widget-readout');"
                " return r && parseFloat(r.textContent) <= 0.01; }", timeout=30_000)
            page.wait_for_function(f"(b) => {{ const p = ({_PIXELS_JS})('{img_sel}'); return p !== null && p !== b; }}",
                                   arg=before, timeout=60_000)
            after = page.evaluate(_PIXELS_JS, img_sel)
            page.screenshot(path=str(ARTIFACTS / "mixer_after.png"))
            assert after != before and page.get_attribute(img_sel, "src") != src_before
        except Exception:
            page.screenshot(path=str(ARTIFACTS / "mixer_failure.png"))
            raise
        finally:
            browser.close()
