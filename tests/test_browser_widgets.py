"""Every widget in a real browser, one notebook each, as a reader of the tutorials meets it: JupyterLab
on 127.0.0.1, Playwright driving Debian's Chromium (the recipe is in ``shared/BROWSER-TESTING.md``;
the server and the browser launch are ``benchmarks/lab.py``'s, the shared checks ``tests/_browser.py``).

Each test opens a small notebook that builds one widget on the demo pipeline, does what a user does
with the mouse and the keyboard (a click on a thumbnail, a drag of a slider, a stroke on the canvas,
a toggle, a button), and asserts that the picture changed by more than a stated amount (mean absolute
RGB difference in [0, 1], or the fraction of pixels changed by more than 0.1) — or, for *undo*,
*reset* and *load state*, that it came back. Each checks the layout at 1280x800 (file browser open)
and 1920x1080: the portrait and every control inside the viewport, no two overlapping, nothing cut
off sideways; and that the browser console has no errors. Screenshots go to
``out/test-artifacts/browser/`` (``$SOFGAN_LAB_ARTIFACTS``).

Covered here: ``GeometrySampler``, ``AttributeSliders``, ``SOFViewer3D``, ``SegmapPainter`` (alone),
``MetricTable``, and the explorer's ``StateControls`` (copy / load state, bookmark, undo, redo) and
``ExportControls`` (PNG, video, mesh); and tutorial 07 as a whole at both window sizes.
``tests/test_browser.py`` covers the explorer's tabs and
layouts, ``CameraControl``, ``RegionStyleMixer``, the portrait's views and its drag-to-orbit.
"""
from __future__ import annotations

import base64
import json
import os
import re
from pathlib import Path

import nbformat
import numpy as np
import pytest
from _browser import (  # tests/_browser.py
    _CUT_OFF_JS, ARTIFACTS, KERNELSPEC, _browser_page, _drag_slider, _image_rgb, _overlap, _readout)

from benchmarks.lab import CHROMIUM, jupyter_lab, open_and_run_all

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).is_file() and not os.environ.get("CI"),
                       reason=f"Chromium not found at {CHROMIUM} (apt-get install chromium)"),
]

SETUP = """\
from sofgan_lab import SofGAN

pipe = SofGAN.from_pretrained("demo")"""

# One notebook per widget: the setup cell, then the widget's cell (what the tutorials show).
WIDGET_CELLS = {
    "sampler": "from sofgan_lab.widgets import GeometrySampler\n\nsampler = GeometrySampler(pipe)\nsampler",
    "sliders": "from sofgan_lab.widgets import AttributeSliders\n\nsliders = AttributeSliders(pipe)\nsliders",
    "viewer": "from sofgan_lab.widgets import SOFViewer3D\n\nviewer = SOFViewer3D(pipe)\nviewer",
    "painter": "from sofgan_lab.widgets import SegmapPainter\n\npainter = SegmapPainter(pipe)\npainter",
    "metrics": "from sofgan_lab.widgets import MetricTable\n\ntable = MetricTable(pipe, n=4)\ntable",
    "explorer": "from sofgan_lab.widgets import Explorer\n\nexplorer = Explorer(pipe)\nexplorer",
}

# The two windows every widget must hold in (the first with JupyterLab's file browser open, as it starts).
VIEWPORTS = ((1280, 800), (1920, 1080))

# --- visible amounts (RGB in [0, 1]) ----------------------------------------------------------------
# a thumbnail click shows another head in the sampler's portrait
SELECT_MIN_DIFF = 0.02
# the selection frame: at least this share of the frame's pixels show its blue (and at most
# FRAME_MAX_SHARE_UNSELECTED where no frame is drawn)
FRAME_MIN_SHARE = 0.5
FRAME_MAX_SHARE_UNSELECTED = 0.1
# segmap thumbnails -> portrait thumbnails, and a resampled batch: the grid changes by at least
MODE_MIN_DIFF = 0.05
RESAMPLE_MIN_DIFF = 0.02
# the hair_length slider dragged to +3 std: changed pixels (> 0.1) of the portrait
EDIT_MIN_CHANGED = 0.05
# coming back (reset, undo, load state): at most this mean difference from the picture before
BACK_MAX_DIFF = 0.002
# a 150 px drag on the 3D scene turns it; hiding the hair or showing the slice changes the picture
# (fraction of its pixels, most of which are the scene's white background) by at least
ROTATE_MIN_CHANGED = 0.03
HIDE_HAIR_MIN_CHANGED = 0.01
SLICE_MIN_CHANGED = 0.05
# the painter: loading the geometry onto an empty canvas, and a hat stroke across the face
LOAD_MIN_DIFF = 0.1
STROKE_MIN_DIFF = 0.005
STROKE_MIN_CHANGED = 0.01
# a turntable video: its first frame and the one a quarter of the way round differ by at least
VIDEO_MIN_DIFF = 0.02


TUTORIAL_07 = Path(__file__).resolve().parents[1] / "notebooks" / "07_explorer.ipynb"


def _notebook(name: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(SETUP),
                                           nbformat.v4.new_code_cell(WIDGET_CELLS[name])],
                                    metadata={"kernelspec": dict(KERNELSPEC)})


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab serving one notebook per widget (``<name>.ipynb``) and tutorial 07 without its outputs
    (``tutorial_07.ipynb``); yields ``(url, served folder)``."""
    from sofgan_lab.demo import demo_dir

    demo_dir("siw")  # a clear error when the demo models are missing
    root = tmp_path_factory.mktemp("lab_widgets")
    served = root / "served"
    served.mkdir()
    for name in WIDGET_CELLS:
        nbformat.write(_notebook(name), served / f"{name}.ipynb")
    tutorial = nbformat.read(TUTORIAL_07, as_version=4)
    for cell in tutorial.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nbformat.write(tutorial, served / "tutorial_07.ipynb")
    with jupyter_lab(served, root) as url:
        yield url, served


# An <img> is shown and settled: loaded, `status` (a panel's status line) empty, its blob URL not
# `not_src` and unchanged for 0.8 s (a newer render would replace it).
_SETTLED_JS = """([img_sel, status_sel, not_src]) => {
    const img = document.querySelector(img_sel), st = document.querySelector(status_sel);
    if (!img || !st || !img.complete || !img.naturalWidth || st.textContent.trim() !== '') return false;
    if (not_src !== null && img.src === not_src) return false;
    const now = performance.now(), key = '__sofganSettle' + img_sel, s = window[key];
    if (!s || s.src !== img.src) { window[key] = {src: img.src, t: now}; return false; }
    return now - s.t > 800;
}"""

# A canvas's pixels as a PNG data URL (ipycanvas draws into a <canvas>: compare what it shows).
_CANVAS_JS = "(sel) => { const c = document.querySelector(sel); return c && c.width > 1 ? c.toDataURL() : null; }"


def _settle(page, img_sel: str, status_sel: str, not_src: str | None = None, timeout: float = 120_000) -> str:
    page.wait_for_function(_SETTLED_JS, arg=[img_sel, status_sel, not_src], timeout=timeout)
    return page.get_attribute(img_sel, "src")


def _shot(page, sel: str, name: str | None = None) -> np.ndarray:
    loc = page.locator(sel).first
    loc.scroll_into_view_if_needed()
    return _image_rgb(loc.screenshot(path=None if name is None else str(ARTIFACTS / name)))


def _canvas(page, sel: str) -> str:
    return page.evaluate(_CANVAS_JS, sel)


def _canvas_rgb(data_url: str) -> np.ndarray:
    return _image_rgb(base64.b64decode(data_url.split(",", 1)[1]))


def _changed(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(mean |a - b|, fraction of pixels changed by more than 0.1) of two RGB images in [0, 1]."""
    assert a.shape == b.shape, (a.shape, b.shape)
    d = abs(a - b)
    return float(d.mean()), float((d.max(axis=2) > 0.1).mean())


# Boxes (CSS px, viewport coordinates) of the first shown match of each selector under `root`.
_BOXES_JS = """([root, sels]) => {
    const top = document.querySelector(root), out = {vw: window.innerWidth, vh: window.innerHeight};
    for (const [name, sel] of Object.entries(sels)) {
        const el = [...top.querySelectorAll(sel)].find(e => e.getClientRects().length > 0);
        if (!el) { out[name] = null; continue; }
        const r = el.getBoundingClientRect();
        out[name] = {x: r.left, y: r.top, w: r.width, h: r.height, r: r.right, b: r.bottom};
    }
    return out;
}"""


def _check_layout(page, root: str, parts: dict[str, str], label: str) -> None:
    """At the current window size: every part of ``root`` (name → CSS selector) is shown, inside the
    viewport sideways and, scrolled to, from top to bottom (when it is not taller than the window), no
    two parts overlap, and no control under ``root`` is cut off sideways. A screenshot of the whole."""
    page.locator(root).first.scroll_into_view_if_needed()
    page.wait_for_timeout(300)
    page.screenshot(path=str(ARTIFACTS / f"{label}.png"))
    boxes = page.evaluate(_BOXES_JS, [root, parts])
    for name, b in boxes.items():
        if name in ("vw", "vh"):
            continue
        assert b is not None and b["w"] > 0 and b["h"] > 0, f"{label}: {name} ({parts[name]}) is not shown"
        assert b["x"] >= -1 and b["r"] <= boxes["vw"] + 1, f"{label}: {name} {b} sticks out of {boxes['vw']} px"
    names = [n for n in parts]
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            area = _overlap(boxes[a], boxes[b])
            assert area == 0, f"{label}: {a} {boxes[a]} and {b} {boxes[b]} overlap by {area:.0f} px²"
    for name, sel in parts.items():
        if boxes[name]["h"] > boxes["vh"]:
            continue
        page.locator(root).locator(sel).first.scroll_into_view_if_needed()
        b = page.evaluate(_BOXES_JS, [root, {name: sel}])[name]
        assert b["y"] >= -1 and b["b"] <= boxes["vh"] + 1, f"{label}: {name} {b} is not in view when scrolled to"
    cut = page.evaluate(_CUT_OFF_JS, root)
    assert not cut, f"{label}: controls cut off: {cut}"


def _check_layouts(page, root: str, parts: dict[str, str], name: str) -> None:
    """:func:`_check_layout` at both :data:`VIEWPORTS`, then back to the first."""
    for w, h in VIEWPORTS:
        page.set_viewport_size({"width": w, "height": h})
        page.wait_for_timeout(400)
        _check_layout(page, root, parts, f"{name}_layout_{w}x{h}")
    page.set_viewport_size({"width": VIEWPORTS[0][0], "height": VIEWPORTS[0][1]})
    page.wait_for_timeout(300)


def _open(page, url: str, name: str) -> None:
    open_and_run_all(page, f"{url}/lab/tree/{name}.ipynb?reset")


def _clear_artifacts(prefix: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob(f"{prefix}_*.png"):
        old.unlink()


def _click_canvas_pixel(page, sel: str, x: float, y: float) -> None:
    """Click the canvas ``sel`` at its pixel ``(x, y)`` (its CSS box may scale the pixels)."""
    loc = page.locator(sel).first
    loc.scroll_into_view_if_needed()
    box = loc.bounding_box()
    w, h = page.evaluate("(s) => { const c = document.querySelector(s); return [c.width, c.height]; }", sel)
    page.mouse.click(box["x"] + (x + 0.5) * box["width"] / w, box["y"] + (y + 0.5) * box["height"] / h)


def _thumbnail_centre(index: int, columns: int = 4, size: int = 64) -> tuple[float, float]:
    """Canvas pixel of the centre of thumbnail ``index`` in a GeometrySampler grid (its _PAD layout)."""
    from sofgan_lab.widgets.sampler import _PAD

    r, c = divmod(index, columns)
    cell = size + _PAD
    return _PAD + c * cell + size / 2, _PAD + r * cell + size / 2


def _frame_pixels(grid: np.ndarray, index: int, columns: int = 4, size: int = 64) -> tuple[int, int]:
    """(pixels of thumbnail ``index``'s selection frame that show the frame's blue, pixels of the frame)."""
    from sofgan_lab.widgets.sampler import _PAD

    r, c = divmod(index, columns)
    cell = size + _PAD
    y, x = _PAD + r * cell - 2, _PAD + c * cell - 2
    ring = np.zeros(grid.shape[:2], bool)
    ring[y:y + size + 4, x:x + size + 4] = True
    ring[y + 2:y + size + 2, x + 2:x + size + 2] = False
    blue = np.array([30, 120, 255]) / 255.0
    hit = (abs(grid - blue).max(axis=2) < 0.2) & ring  # ipycanvas sends the pixels lossily (JPEG-like noise)
    return int(hit.sum()), int(ring.sum())


# ------------------------------------------------------------------------------------------ sampler
def test_geometry_sampler_click_select_toggle_and_resample(lab):
    """GeometrySampler alone: the component drop-down reads "all"; a click on thumbnail 5 frames it and
    shows that head in the portrait; the segmap/portrait toggle re-draws the grid as portraits and keeps
    the frame; *resample* draws a new batch (seed 1) and drops the frame; the layout holds."""
    playwright = pytest.importorskip("playwright.sync_api")
    url, _ = lab
    _clear_artifacts("sampler")
    root = ".sofgan-sampler"
    canvas = f"{root} canvas"
    img, status = f"{root} img.sofgan-portrait-image", f"{root} .sofgan-portrait .sofgan-lab-status"
    with playwright.sync_playwright() as pw:
        with _browser_page(pw, {"width": 1280, "height": 800}, "sampler_failure.png") as (page, errors):
            _open(page, url, "sampler")
            page.locator(root).wait_for(state="visible", timeout=120_000)
            page.locator(f"{root} .sofgan-lab-status", has_text="click a thumbnail").first.wait_for(timeout=120_000)
            src = _settle(page, img, status)
            shown = page.evaluate("(s) => { const d = document.querySelector(s); return d.options[d.selectedIndex].text; }",
                                  f"{root} .widget-dropdown select")
            assert shown == "all", f"the component drop-down shows {shown!r}"
            grid0, portrait0 = _canvas(page, canvas), _shot(page, img)
            hit0, ring = _frame_pixels(_canvas_rgb(grid0), 5)
            assert hit0 < FRAME_MAX_SHARE_UNSELECTED * ring, f"a frame before any click ({hit0} of {ring} px)"

            # a click on thumbnail 5: its frame, and its head in the portrait
            _click_canvas_pixel(page, canvas, *_thumbnail_centre(5))
            page.wait_for_function("([s, old]) => document.querySelector(s).toDataURL() !== old", arg=[canvas, grid0],
                                   timeout=30_000)
            src = _settle(page, img, status, not_src=src)
            grid1 = _canvas_rgb(_canvas(page, canvas))
            hit, ring = _frame_pixels(grid1, 5)
            portrait1 = _shot(page, img, "sampler_selected.png")
            mean, _ = _changed(portrait1, portrait0)
            print(f"sampler: frame {hit}/{ring} px; portrait mean |diff| {mean:.3f} after the click")
            assert hit >= FRAME_MIN_SHARE * ring, f"thumbnail 5 has no selection frame ({hit} of {ring} px)"
            assert mean >= SELECT_MIN_DIFF, f"the click barely changed the portrait: mean |diff| {mean:.4f}"

            # the toggle: portrait thumbnails, the frame kept
            page.locator(f"{root} .widget-toggle-buttons button", has_text="portrait").first.click()
            before = _canvas(page, canvas)
            page.wait_for_function("([s, old]) => document.querySelector(s).toDataURL() !== old",
                                   arg=[canvas, before], timeout=120_000)
            page.locator(f"{root} .sofgan-lab-status", has_text="click a thumbnail").first.wait_for(timeout=120_000)
            grid2 = _canvas_rgb(_canvas(page, canvas))
            mean, _ = _changed(grid2, grid1)
            hit2, _ = _frame_pixels(grid2, 5)
            print(f"sampler: segmap -> portrait thumbnails mean |diff| {mean:.3f}; frame {hit2}/{ring} px")
            assert mean >= MODE_MIN_DIFF, f"the toggle barely changed the thumbnails: mean |diff| {mean:.4f}"
            assert hit2 >= FRAME_MIN_SHARE * ring, "the toggle lost the selection frame"

            # resample: seed 1, a new batch, no frame
            cur = _canvas(page, canvas)
            page.locator(f"{root} button", has_text="resample").click()
            page.wait_for_function("([s, old]) => document.querySelector(s).toDataURL() !== old", arg=[canvas, cur],
                                   timeout=120_000)
            page.locator(f"{root} .sofgan-lab-status", has_text="seed 1").first.wait_for(timeout=120_000)
            grid3 = _canvas_rgb(_canvas(page, canvas))
            page.locator(canvas).first.screenshot(path=str(ARTIFACTS / "sampler_resampled.png"))
            mean, _ = _changed(grid3, grid2)
            hit3, _ = _frame_pixels(grid3, 5)
            assert page.locator(f"{root} .widget-text input").first.input_value() == "1"
            assert mean >= RESAMPLE_MIN_DIFF, f"resample barely changed the thumbnails: mean |diff| {mean:.4f}"
            assert hit3 < FRAME_MAX_SHARE_UNSELECTED * ring, "a new batch still shows the old selection frame"

            _check_layouts(page, root, {"seed": ".widget-text", "component": ".widget-dropdown",
                                        "resample": "button.jupyter-button:not(.widget-toggle-button)",
                                        "temperature": ".widget-slider", "toggle": ".widget-toggle-buttons",
                                        "grid": "canvas", "portrait": "img.sofgan-portrait-image"}, "sampler")
            assert not errors, f"browser console errors: {errors}"


# ------------------------------------------------------------------------------------------ sliders
def test_attribute_sliders_drag_filter_and_reset(lab):
    """AttributeSliders alone: dragging the hair_length slider to its right end (+3 std) with the mouse
    changes the portrait visibly; typing "hair" into the filter leaves only the hair sliders; *reset*
    gives the first portrait back; the layout holds."""
    playwright = pytest.importorskip("playwright.sync_api")
    from sofgan_lab.geometry.space import GeometrySpace
    from sofgan_lab.widgets.sliders import direction_labels

    url, _ = lab
    _clear_artifacts("sliders")
    labels = direction_labels(GeometrySpace.from_pretrained("demo"), 6)
    want = sorted(d for d, text in labels.items() if "hair" in text.lower())
    root = ".sofgan-sliders"
    img, status = f"{root} img.sofgan-portrait-image", f"{root} .sofgan-portrait .sofgan-lab-status"
    with playwright.sync_playwright() as pw:
        with _browser_page(pw, {"width": 1280, "height": 800}, "sliders_failure.png") as (page, errors):
            _open(page, url, "sliders")
            page.locator(root).wait_for(state="visible", timeout=120_000)
            src = _settle(page, img, status)
            first = _shot(page, img, "sliders_first.png")

            slider = page.locator(f"{root} .sofgan-slider-hair_length")
            slider.scroll_into_view_if_needed()
            _drag_slider(page, slider, to_right=True)
            page.wait_for_function("(s) => parseFloat(document.querySelector(s).textContent) >= 2.95",
                                   arg=f"{root} .sofgan-slider-hair_length .widget-readout", timeout=10_000)
            src = _settle(page, img, status, not_src=src)
            edited = _shot(page, img, "sliders_hair_length.png")
            mean, changed = _changed(edited, first)
            print(f"sliders: hair_length +3 std: mean |diff| {mean:.4f}, {100 * changed:.1f}% of the pixels")
            assert changed >= EDIT_MIN_CHANGED, f"the hair_length drag is hard to see: {100 * changed:.2f}% of pixels"

            page.locator(f"{root} .sofgan-sliders-filter input").fill("hair")
            page.wait_for_timeout(800)
            # the slider cells shown, by their class sofgan-slider-<direction>
            shown = page.evaluate("(r) => [...document.querySelectorAll(r + ' [class*=\"sofgan-slider-\"]')]"
                                  ".filter(e => e.getClientRects().length > 0)"
                                  ".map(e => [...e.classList].find(c => c.startsWith('sofgan-slider-')).slice(14))",
                                  root)
            page.screenshot(path=str(ARTIFACTS / "sliders_filtered.png"))
            assert sorted(shown) == want, f"the filter 'hair' shows {sorted(shown)}, expected {want}"

            page.locator(f"{root} button", has_text="reset").click()
            page.wait_for_function("(s) => parseFloat(document.querySelector(s).textContent) === 0",
                                   arg=f"{root} .sofgan-slider-hair_length .widget-readout", timeout=10_000)
            _settle(page, img, status, not_src=src)
            back = _shot(page, img)
            mean, _ = _changed(back, first)
            assert mean <= BACK_MAX_DIFF, f"reset did not give the first portrait back: mean |diff| {mean:.4f}"
            page.locator(f"{root} .sofgan-sliders-filter input").fill("")
            page.wait_for_timeout(500)
            _check_layouts(page, root, {"filter": ".sofgan-sliders-filter", "sliders": ".sofgan-sliders-scroll",
                                        "restrict": ".widget-checkbox", "regions": ".widget-select-multiple",
                                        "portrait": "img.sofgan-portrait-image"}, "sliders")
            assert not errors, f"browser console errors: {errors}"


# ------------------------------------------------------------------------------------------- viewer
_VIEWER_JS = """() => {
    const gd = document.querySelector('.sofgan-viewer .js-plotly-plot');
    if (!gd || !gd.data || !gd._fullLayout || !gd._fullLayout.scene) return null;
    const sc = gd._fullLayout.scene._scene, cam = sc && sc.getCamera ? sc.getCamera() : gd._fullLayout.scene.camera;
    const mesh = gd.data.filter(t => t.type === 'mesh3d');
    return {eye: [cam.eye.x, cam.eye.y, cam.eye.z], meshed: mesh.some(t => t.x && t.x.length > 0),
            hair: gd.data.find(t => t.name === 'hair').visible, slice: gd.data.find(t => t.name === 'slice').visible};
}"""


def test_sof_viewer_keeps_the_rotation_through_toggles(lab):
    """SOFViewer3D alone: a 150 px drag on the scene turns the head; unticking *hair* hides the hair and
    ticking *slice* shows the plane, each a visible change, and neither resets the user's rotation; the
    layout holds."""
    playwright = pytest.importorskip("playwright.sync_api")
    url, _ = lab
    _clear_artifacts("viewer")
    root, plot = ".sofgan-viewer", ".sofgan-viewer .js-plotly-plot"
    with playwright.sync_playwright() as pw:
        with _browser_page(pw, {"width": 1280, "height": 800}, "viewer_failure.png") as (page, errors):
            _open(page, url, "viewer")
            page.locator(root).wait_for(state="visible", timeout=120_000)
            page.wait_for_function(f"() => ({_VIEWER_JS})() && ({_VIEWER_JS})().meshed", timeout=120_000)
            page.locator(f"{root} .sofgan-lab-status", has_text="vertices").wait_for(timeout=60_000)
            page.wait_for_timeout(800)
            start = _shot(page, plot, "viewer_start.png")
            eye0 = page.evaluate(_VIEWER_JS)["eye"]

            box = page.locator(plot).bounding_box()
            x, y = box["x"] + 0.5 * box["width"], box["y"] + 0.5 * box["height"]
            page.mouse.move(x, y)
            page.mouse.down()
            page.mouse.move(x + 150, y, steps=15)
            page.mouse.up()
            page.wait_for_timeout(800)
            turned = _shot(page, plot, "viewer_turned.png")
            eye1 = page.evaluate(_VIEWER_JS)["eye"]
            mean, changed = _changed(turned, start)
            print(f"viewer: drag mean |diff| {mean:.3f}, {100 * changed:.1f}% of the pixels, eye {eye0} -> {eye1}")
            assert changed >= ROTATE_MIN_CHANGED, f"the drag barely turned the scene: {100 * changed:.2f}% of the pixels"
            assert max(abs(a - b) for a, b in zip(eye0, eye1)) > 0.1, f"the camera did not move: {eye0} -> {eye1}"

            for what, click, key, min_changed in (
                    ("hair", lambda: page.locator(root).get_by_label("hair", exact=True).click(), "hair",
                     HIDE_HAIR_MIN_CHANGED),
                    ("slice", lambda: page.locator(root).get_by_label("slice", exact=True).click(), "slice",
                     SLICE_MIN_CHANGED)):
                before = _shot(page, plot)
                was = page.evaluate(_VIEWER_JS)[key]
                click()
                page.wait_for_function(f"(was) => ({_VIEWER_JS})()['{key}'] !== was", arg=was, timeout=60_000)
                page.wait_for_timeout(1500)  # the slice is computed in the kernel, then drawn
                after = _shot(page, plot, f"viewer_{what}.png")
                eye = page.evaluate(_VIEWER_JS)["eye"]
                mean, changed = _changed(after, before)
                print(f"viewer: toggling {what}: mean |diff| {mean:.4f}, {100 * changed:.1f}% of the pixels")
                assert changed >= min_changed, f"toggling {what} is hard to see: {100 * changed:.2f}% of the pixels"
                assert max(abs(a - b) for a, b in zip(eye, eye1)) < 1e-3, (
                    f"toggling {what} reset the rotation: {eye1} -> {eye}")

            _check_layouts(page, root, {"scene": ".js-plotly-plot", "slice": ".widget-checkbox",
                                        "axis": ".widget-toggle-buttons", "position": ".widget-slider",
                                        "class": ".widget-dropdown", "grid": ".widget-text"}, "viewer")
            assert not errors, f"browser console errors: {errors}"


# ------------------------------------------------------------------------------------------ painter
def test_segmap_painter_load_stroke_and_undo(lab):
    """SegmapPainter alone: *from geometry* fills the empty canvas with the rendered head and its
    portrait appears; a 20 px hat stroke across the face changes the portrait visibly; *undo* gives the
    canvas and the portrait back; the layout holds."""
    playwright = pytest.importorskip("playwright.sync_api")
    url, _ = lab
    _clear_artifacts("painter")
    root = ".sofgan-painter"
    canvas = f"{root} canvas"
    img, status = f"{root} img.sofgan-portrait-image", f"{root} .sofgan-portrait .sofgan-lab-status"
    with playwright.sync_playwright() as pw:
        with _browser_page(pw, {"width": 1280, "height": 800}, "painter_failure.png") as (page, errors):
            _open(page, url, "painter")
            page.locator(root).wait_for(state="visible", timeout=120_000)
            src = _settle(page, img, status)
            empty_canvas, empty = _canvas(page, canvas), _shot(page, img)

            page.locator(f"{root} button", has_text="from geometry").click()
            page.locator(f"{root} .sofgan-lab-status", has_text="loaded the rendered geometry").wait_for(timeout=60_000)
            src = _settle(page, img, status, not_src=src)
            loaded_canvas, loaded = _canvas(page, canvas), _shot(page, img, "painter_loaded.png")
            mean_c, _ = _changed(_canvas_rgb(loaded_canvas), _canvas_rgb(empty_canvas))
            mean_p, _ = _changed(loaded, empty)
            print(f"painter: from geometry: canvas mean |diff| {mean_c:.3f}, portrait {mean_p:.3f}")
            assert mean_c >= LOAD_MIN_DIFF and mean_p >= LOAD_MIN_DIFF, (mean_c, mean_p)

            # a 20 px hat brush (the demo textures hat green: a stroke of it across the face stands out)
            page.locator(f"{root} button[title='19 hat']").click()
            handle = page.locator(f"{root} .widget-slider .noUi-handle").first
            handle.focus()
            for _ in range(13):
                handle.press("ArrowRight")
            page.wait_for_function("(s) => document.querySelector(s).textContent.trim() === '20'",
                                   arg=f"{root} .widget-slider .widget-readout", timeout=10_000)
            cb = page.locator(canvas).first.bounding_box()
            y = cb["y"] + 0.6 * cb["height"]
            page.mouse.move(cb["x"] + 0.25 * cb["width"], y)
            page.mouse.down()
            page.mouse.move(cb["x"] + 0.75 * cb["width"], y, steps=15)
            page.mouse.up()
            src = _settle(page, img, status, not_src=src)
            painted = _shot(page, img, "painter_painted.png")
            mean, changed = _changed(painted, loaded)
            print(f"painter: hat stroke: mean |diff| {mean:.4f}, {100 * changed:.1f}% of the pixels")
            assert mean >= STROKE_MIN_DIFF and changed >= STROKE_MIN_CHANGED, (mean, changed)

            page.locator(f"{root} button", has_text="undo").click()
            page.wait_for_function("([s, want]) => document.querySelector(s).toDataURL() === want",
                                   arg=[canvas, loaded_canvas], timeout=30_000)
            _settle(page, img, status, not_src=src)
            back = _shot(page, img)
            mean, _ = _changed(back, loaded)
            assert mean <= BACK_MAX_DIFF, f"undo did not give the loaded portrait back: mean |diff| {mean:.4f}"

            _check_layouts(page, root, {"palette": "button[title='18 hair']", "tool": ".widget-toggle-buttons",
                                        "brush": ".widget-slider", "load": ".widget-upload",
                                        "canvas": ".sofgan-painter-canvas", "portrait": "img.sofgan-portrait-image"},
                           "painter")
            assert not errors, f"browser console errors: {errors}"


# ------------------------------------------------------------------------------------------ metrics
def test_metric_table_runs_and_shows_a_table_and_a_chart(lab):
    """MetricTable alone: *run* fills the progress bar, shows the table with the model's row and a
    number, marks the result as not comparable to the paper (no ImageNet weights here), and draws the
    bar chart; the layout holds."""
    playwright = pytest.importorskip("playwright.sync_api")
    url, _ = lab
    _clear_artifacts("metrics")
    root = ".sofgan-metrics"
    with playwright.sync_playwright() as pw:
        with _browser_page(pw, {"width": 1280, "height": 800}, "metrics_failure.png") as (page, errors):
            _open(page, url, "metrics")
            run = page.locator(f"{root} button", has_text="run")
            run.wait_for(state="visible", timeout=120_000)
            out = page.locator(root)
            h0 = out.bounding_box()["height"]
            run.click()
            page.locator(f"{root} .sofgan-lab-status", has_text="metric(s), n = 4").wait_for(timeout=180_000)
            page.locator(f"{root} .js-plotly-plot .bars path").first.wait_for(timeout=60_000)
            page.wait_for_timeout(500)
            out.screenshot(path=str(ARTIFACTS / "metrics_run.png"))
            progress = page.evaluate("(r) => { const b = document.querySelector(r + ' .progress-bar');"
                                     " return b ? b.style.width : null; }", root)
            table = page.locator(f"{root} table").first
            row = table.locator("tbody tr").first.inner_text()
            chart = page.locator(f"{root} .js-plotly-plot").first.bounding_box()
            h1 = out.bounding_box()["height"]
            print(f"metrics: progress {progress}, row {row!r}, chart {chart['width']:.0f}x{chart['height']:.0f}, "
                  f"output {h0:.0f} -> {h1:.0f} px")
            assert progress == "100%", f"the progress bar shows {progress}"
            assert row.split()[0] == "SofGAN" and re.search(r"\d+\.\d+", row), f"table row {row!r}"
            assert "not comparable" in out.inner_text(), "the table does not say it is not comparable to the paper"
            assert chart["width"] >= 300 and chart["height"] >= 200, f"the bar chart is {chart}"
            assert h1 - h0 >= 250, f"the output grew by {h1 - h0:.0f} px only"
            _check_layouts(page, root,
                           {"pick": ".widget-select-multiple", "n": ".widget-text", "run": "button",
                            "progress": ".progress", "table": "table",
                            "chart": ".js-plotly-plot"}, "metrics")
            assert not errors, f"browser console errors: {errors}"


# ------------------------------------------------------------------- explorer: state and exports
def _img_png(page, sel: str) -> bytes:
    """The bytes the <img> ``sel`` shows (its blob)."""
    b64 = page.evaluate("async (s) => { const r = await fetch(document.querySelector(s).src);"
                        " const b = new Uint8Array(await r.arrayBuffer()); let t = '';"
                        " for (let i = 0; i < b.length; i += 1) t += String.fromCharCode(b[i]); return btoa(t); }", sel)
    return base64.b64decode(b64)


def test_explorer_state_controls_and_exports(lab):
    """The explorer's state and export buttons: *copy state* writes the state's JSON; a thumbnail click
    changes the portrait and the readout; *load state* of the copied JSON gives the first portrait back;
    *undo* and *redo* go back and forth; *bookmark* adds an entry; *PNG* writes exactly the pixels shown,
    *mesh* a coloured mesh trimesh loads, *video* a turntable whose frames turn."""
    playwright = pytest.importorskip("playwright.sync_api")
    trimesh = pytest.importorskip("trimesh")
    url, served = lab
    _clear_artifacts("state")
    side, tabs = ".sofgan-explorer-side", ".sofgan-explorer-tabs"
    img, status = f"{side} img.sofgan-portrait-image", f"{side} .sofgan-portrait .sofgan-lab-status"
    canvas = f"{tabs} .sofgan-sampler canvas"
    with playwright.sync_playwright() as pw:
        with _browser_page(pw, {"width": 1280, "height": 800}, "state_failure.png") as (page, errors):
            _open(page, url, "explorer")
            page.locator(img).wait_for(state="visible", timeout=120_000)
            src = _settle(page, img, status)
            first, readout0 = _shot(page, img, "state_first.png"), page.locator(".sofgan-explorer-readout").first.inner_text()

            page.locator(".sofgan-state-copy").click()
            text = page.locator(".sofgan-state-text textarea")
            page.wait_for_function("(t) => t.value.trim().startsWith('{')", arg=text.element_handle(), timeout=10_000)
            state0 = json.loads(text.input_value())
            assert "geometry" in state0 and "camera" in state0, sorted(state0)

            page.locator(f"{tabs} .sofgan-sampler .sofgan-lab-status", has_text="click a thumbnail").wait_for(
                timeout=120_000)
            _click_canvas_pixel(page, canvas, *_thumbnail_centre(5))
            src = _settle(page, img, status, not_src=src)
            picked = _shot(page, img, "state_picked.png")
            readout1 = page.locator(".sofgan-explorer-readout").first.inner_text()
            mean, _ = _changed(picked, first)
            assert mean >= SELECT_MIN_DIFF, f"the thumbnail click barely changed the portrait: {mean:.4f}"
            assert readout1 != readout0, f"the readout did not follow the click: {readout1!r}"

            steps = (("load", first, "load state"), ("undo", picked, "undo"), ("redo", first, "redo"))
            for name, want, what in steps:
                page.locator(f".sofgan-state-{name}").click()
                src = _settle(page, img, status, not_src=src)
                got = _shot(page, img, f"state_{name}.png")
                mean, _ = _changed(got, want)
                print(f"state: {what}: mean |diff| {mean:.4f} from the expected portrait")
                assert mean <= BACK_MAX_DIFF, f"{what} did not show the expected portrait: mean |diff| {mean:.4f}"

            page.locator(".sofgan-state-bookmark").click()
            page.wait_for_function("() => document.querySelector('.sofgan-state-bookmarks select').options.length >= 2",
                                   timeout=10_000)

            # exports: the files land in the kernel's working directory (the served folder)
            page.locator(".sofgan-export-png").click()
            page.locator(".sofgan-export-status a", has_text="portrait-001.png").wait_for(timeout=30_000)
            written = (served / "exports" / "portrait-001.png").read_bytes()
            shown = _img_png(page, img)
            assert np.array_equal(_image_rgb(written), _image_rgb(shown)), "the PNG is not the portrait shown"
            assert (served / "exports" / "portrait-001_segmap.png").is_file()

            page.locator(".sofgan-export-format select").select_option("ply")
            page.locator(".sofgan-export-mesh").click()
            page.locator(".sofgan-export-status a", has_text="mesh-001.ply").wait_for(timeout=180_000)
            mesh = trimesh.load(served / "exports" / "mesh-001.ply", force="mesh")
            colours = np.unique(np.asarray(mesh.visual.vertex_colors)[:, :3], axis=0)
            print(f"export: mesh {len(mesh.vertices)} vertices, {len(colours)} colours")
            assert len(mesh.vertices) >= 1000 and len(colours) >= 5, (len(mesh.vertices), len(colours))

            page.locator(".sofgan-export-video").click()
            page.locator(".sofgan-export-status a", has_text=re.compile(r"turntable-001\.mp4")).wait_for(
                timeout=300_000)
            import imageio.v3 as iio

            frames = iio.imread(served / "exports" / "turntable-001.mp4")
            quarter = frames[len(frames) // 4].astype(np.float64) / 255
            mean = float(abs(quarter - frames[0].astype(np.float64) / 255).mean())
            print(f"export: video {frames.shape}, frame 0 vs {len(frames) // 4}: mean |diff| {mean:.3f}")
            assert len(frames) >= 8 and mean >= VIDEO_MIN_DIFF, (frames.shape, mean)
            page.screenshot(path=str(ARTIFACTS / "state_exports.png"))
            assert not errors, f"browser console errors: {errors}"


# ------------------------------------------------------------------------------------- tutorial 07
def test_tutorial_07_reads_well_at_1280x800(lab):
    """Tutorial 07 (every widget, then the explorer) run in JupyterLab at 1280x800 with the file browser
    open and at 1920x1080: every widget shows, nothing in any output is cut off sideways, every portrait
    and segmap image is a square, and the console has no errors."""
    playwright = pytest.importorskip("playwright.sync_api")
    from benchmarks.lab import KERNEL_IDLE_JS

    url, _ = lab
    _clear_artifacts("tutorial07")
    images_js = """() => [...document.querySelectorAll('.jp-OutputArea-output img.sofgan-portrait-image, '
                       + '.jp-OutputArea-output img.sofgan-portrait-segmap')]
        .filter(i => i.getClientRects().length > 0)
        .map(i => { const r = i.getBoundingClientRect(); return [r.width, r.height]; })"""
    with playwright.sync_playwright() as pw:
        with _browser_page(pw, {"width": 1280, "height": 800}, "tutorial07_failure.png") as (page, errors):
            _open(page, url, "tutorial_07")
            page.locator(".jp-OutputArea-output .sofgan-explorer").wait_for(state="attached", timeout=300_000)
            page.wait_for_function(KERNEL_IDLE_JS, timeout=300_000)
            for cls in ("sofgan-portrait", "sofgan-sampler", "sofgan-sliders", "sofgan-viewer", "sofgan-metrics",
                        "sofgan-painter", "sofgan-explorer"):
                assert page.locator(f".jp-OutputArea-output .{cls}").count() >= 1, f"tutorial 07 shows no {cls}"
            for w, h in VIEWPORTS:
                page.set_viewport_size({"width": w, "height": h})
                page.wait_for_timeout(500)
                cells = page.locator(".jp-Cell")
                for i in range(cells.count()):
                    cells.nth(i).scroll_into_view_if_needed()
                page.wait_for_timeout(500)
                page.locator(".sofgan-explorer").first.scroll_into_view_if_needed()
                page.screenshot(path=str(ARTIFACTS / f"tutorial07_{w}x{h}_explorer.png"))
                cut = page.evaluate(_CUT_OFF_JS, ".jp-NotebookPanel .jp-Notebook")
                assert not cut, f"tutorial 07 at {w}x{h}: controls cut off: {cut}"
                sizes = page.evaluate(images_js)
                assert sizes, "no portrait images shown"
                bad = [s for s in sizes if abs(s[0] - s[1]) > 1 or s[0] < 128]
                assert not bad, f"tutorial 07 at {w}x{h}: portrait images that are not squares of 128+ px: {bad}"
            assert not errors, f"browser console errors: {errors}"
