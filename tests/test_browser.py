"""A real browser: JupyterLab started on 127.0.0.1 by the test, driven by Playwright with Debian's
Chromium (``/usr/bin/chromium``, or ``$SOFGAN_LAB_CHROMIUM``): open tutorial 04, run it, move a
slider of the region style mixer, and check that the portrait changed; open a small notebook with a
``CameraControl`` of the demo pipeline and check, with the mouse, that its sliders stay in the trained
pose range until *leave the trained range* is ticked, and that the warning note shows only outside it.

Screenshots are kept in ``out/test-artifacts/browser/`` (``$SOFGAN_LAB_ARTIFACTS`` overrides).
Skipped where Chromium is absent, except in CI (``.ci/run`` installs it), where that fails.
The recipe (server config, readiness signs, slider handling) is in ``shared/BROWSER-TESTING.md``.
"""
from __future__ import annotations

import json
import os
import re
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
KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": "python3"}

# What a reader of notebook 07 section 4 sees: a CameraControl of the demo pipeline with its own
# portrait. The two classes are hooks for the test only (the sliders and the checkbox have none).
CAMERA_CELL = """\
from sofgan_lab.pipeline import SofGAN
from sofgan_lab.widgets import CameraControl

pipe = SofGAN.from_pretrained("demo")
cam = CameraControl(pipe)
cam.add_class("sofgan-test-camera")
cam.portrait.add_class("sofgan-test-portrait")
cam"""


def _camera_notebook() -> nbformat.NotebookNode:
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(CAMERA_CELL)],
                                    metadata={"kernelspec": dict(KERNELSPEC)})


def _tutorial_without_outputs() -> nbformat.NotebookNode:
    """Tutorial 04 (it ends with a ``RegionStyleMixer``), outputs cleared as a reader would open it fresh."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return nb


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab on 127.0.0.1 with a throw-away config, serving a folder with a copy of tutorial 04
    (``tutorial.ipynb``) and the camera notebook (``camera.ipynb``)."""
    from sofgan_lab.demo import demo_dir

    demo_dir("siw")  # the tutorial needs the demo texture model: a clear error when it is missing

    root = tmp_path_factory.mktemp("lab")
    served = root / "served"
    served.mkdir()
    nbformat.write(_tutorial_without_outputs(), served / "tutorial.ipynb")
    nbformat.write(_camera_notebook(), served / "camera.ipynb")
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


_CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run", "--disable-quic"]

_KERNEL_IDLE_JS = """() => {
    const ind = document.querySelector('.jp-NotebookPanel .jp-Notebook-ExecutionIndicator');
    const name = document.querySelector('.jp-NotebookPanel .jp-KernelName, .jp-Toolbar-kernelName');
    const status = [...document.querySelectorAll('.jp-StatusBar-TextItem')].map(e => e.textContent);
    return ind && ind.getAttribute('data-status') === 'idle' && name &&
           !name.textContent.includes('No Kernel') && status.some(t => /\\|\\s*Idle/.test(t));
}"""


def _launch(pw):
    return pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=_CHROMIUM_ARGS)


def _open_and_run_all(page, url: str) -> None:
    """Load ``url`` (a notebook in JupyterLab), wait for an idle kernel, then Run > Run All Cells."""
    page.goto(url)
    page.wait_for_selector("#jupyterlab-splash", state="detached", timeout=60_000)
    page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=60_000)
    page.wait_for_function(_KERNEL_IDLE_JS, timeout=90_000)
    page.click("text=Run", timeout=10_000)
    page.click('[data-command="runmenu:run-all"]', timeout=10_000)


def test_region_mixer_slider_changes_the_portrait(lab):
    playwright = pytest.importorskip("playwright.sync_api")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob("mixer_*.png"):
        old.unlink()
    img_sel = "img.sofgan-portrait-image"
    with playwright.sync_playwright() as pw:
        browser = _launch(pw)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            _open_and_run_all(page, f"{lab}/lab/tree/tutorial.ipynb")
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


# Mean absolute difference (RGB, in [0, 1]) the portrait must show between the default pose and a
# yaw past 100 degrees: the head turns away or vanishes there, far more than this.
CAMERA_IMAGE_MIN_DIFF = 0.02

# Settled: the portrait's status line is empty (no "rendering…" / "preview…"), the <img> is loaded
# and its blob URL has not changed for 0.8 s (a newer render would replace it).
_PORTRAIT_SETTLED_JS = """(not_src) => {
    const img = document.querySelector('.sofgan-test-camera img.sofgan-portrait-image');
    const st = document.querySelector('.sofgan-test-portrait .sofgan-lab-status');
    if (!img || !st || !img.complete || !img.naturalWidth || st.textContent.trim() !== '') return false;
    if (not_src !== null && img.src === not_src) return false;
    const now = performance.now(), s = window.__sofganSettle;
    if (!s || s.src !== img.src) { window.__sofganSettle = {src: img.src, t: now}; return false; }
    return now - s.t > 800;
}"""


def _image_rgb(png: bytes):
    import io

    import numpy as np
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.float64) / 255.0


def _readout(slider) -> float:
    """The number a slider's readout shows (ipywidgets writes negatives with U+2212)."""
    return float(slider.locator(".widget-readout").inner_text().replace("\u2212", "-"))


def _drag_to_right_end(page, slider) -> None:
    """Press the slider's handle with the mouse and drag it well past the track's right end."""
    handle = slider.locator(".noUi-handle").first
    track = slider.locator(".noUi-target").first
    hb, tb = handle.bounding_box(), track.bounding_box()
    assert hb and tb, "yaw slider has no box"
    x0, y = hb["x"] + hb["width"] / 2, hb["y"] + hb["height"] / 2
    page.mouse.move(x0, y)
    page.mouse.down()
    page.mouse.move(tb["x"] + tb["width"] + 80, y, steps=12)
    page.mouse.up()


def test_camera_control_keeps_the_trained_range_until_released(lab):
    """The demo's trained poses (yaw ±34.4°, pitch ±11.5°) as a user meets them: named beside the
    checkbox, the yaw slider stops at 34.4 under the mouse, the warning note stays hidden until the
    box is ticked and the head is turned past 100°, and then the portrait differs visibly."""
    playwright = pytest.importorskip("playwright.sync_api")
    yaw_hi = 34.4
    label_text = "trained: yaw \u00b134.4\u00b0, pitch \u00b111.5\u00b0"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob("camera_*.png"):
        old.unlink()
    with playwright.sync_playwright() as pw:
        browser = _launch(pw)
        page = browser.new_page(viewport={"width": 1280, "height": 800})  # the smallest window the layout must hold
        try:
            _open_and_run_all(page, f"{lab}/lab/tree/camera.ipynb?reset")
            cam = page.locator(".sofgan-test-camera")
            cam.wait_for(state="visible", timeout=120_000)

            def slider(name):
                label = page.locator("label", has_text=re.compile(rf"^\s*{name}\s*$"))
                loc = cam.locator(".widget-hslider").filter(has=label)
                assert loc.count() == 1, f"one {name} slider"
                return loc

            yaw, pitch = slider("yaw"), slider("pitch")
            readout = yaw.locator(".widget-readout")
            handle = yaw.locator(".noUi-handle").first
            note = cam.locator(".sofgan-camera-range-note")
            img = cam.locator("img.sofgan-portrait-image")
            page.wait_for_function(_PORTRAIT_SETTLED_JS, arg=None, timeout=60_000)

            # (a) default pose: the range label is shown, the warning note is in the page but not displayed
            label = cam.get_by_text(label_text, exact=True)
            assert label.is_visible(), f"range label {label_text!r} not visible"
            assert note.count() == 1, "the range note widget is not in the page"
            assert not note.is_visible(), "range note visible at the default pose"
            box = note.bounding_box()
            assert box is None or box["width"] * box["height"] == 0, f"range note takes room at the default pose: {box}"
            # the default pose as shown: the browser's slider must not move it onto a step grid
            assert (_readout(yaw), _readout(pitch)) == (0.0, 0.0), "the default pose is not shown as yaw 0, pitch 0"
            img_default = _image_rgb(img.screenshot(path=str(ARTIFACTS / "camera_portrait_default.png")))
            page.screenshot(path=str(ARTIFACTS / "camera_default.png"))

            # (b) confined: the slider ends at the trained yaw, and dragging to the far right stops there
            assert float(handle.get_attribute("aria-valuemax")) == pytest.approx(yaw_hi, abs=0.01)
            _drag_to_right_end(page, yaw)
            page.wait_for_function("(r) => parseFloat(r.textContent) > 0", arg=readout.element_handle(), timeout=10_000)
            assert _readout(yaw) == pytest.approx(yaw_hi, abs=0.005), readout.inner_text()
            page.wait_for_function(_PORTRAIT_SETTLED_JS, arg=None, timeout=60_000)
            assert not note.is_visible(), "range note visible at the end of the trained range"

            # (c) ticked: the slider opens up to 180, a drag goes past 100 degrees and the note appears
            cam.get_by_label("leave the trained range").click()
            page.wait_for_function("(h) => parseFloat(h.getAttribute('aria-valuemax')) >= 179.9",
                                   arg=handle.element_handle(), timeout=10_000)
            page.wait_for_timeout(500)  # a kernel round trip: the pose (at the edge) must stay put, the note hidden
            assert _readout(yaw) == pytest.approx(yaw_hi, abs=0.005), readout.inner_text()
            assert not note.is_visible(), "range note visible right after ticking, at the edge of the trained range"
            src_confined = img.get_attribute("src")
            _drag_to_right_end(page, yaw)
            page.wait_for_function("(r) => parseFloat(r.textContent) > 100", arg=readout.element_handle(),
                                   timeout=10_000)
            note.wait_for(state="visible", timeout=10_000)
            box = note.bounding_box()
            assert box and box["width"] > 0 and box["height"] > 0, f"range note has no box: {box}"
            assert note.inner_text().strip().startswith("\u26a0 outside the poses the model was trained on")
            page.wait_for_function(_PORTRAIT_SETTLED_JS, arg=src_confined, timeout=60_000)

            # (d) the portrait changed visibly between the default pose and the free one
            img_free = _image_rgb(img.screenshot(path=str(ARTIFACTS / "camera_portrait_free.png")))
            page.screenshot(path=str(ARTIFACTS / "camera_range.png"))
            assert img_free.shape == img_default.shape
            diff = float(abs(img_free - img_default).mean())
            assert diff > CAMERA_IMAGE_MIN_DIFF, f"portrait barely changed: mean |diff| {diff:.4f}"
        except Exception:
            page.screenshot(path=str(ARTIFACTS / "camera_failure.png"))
            raise
        finally:
            browser.close()
