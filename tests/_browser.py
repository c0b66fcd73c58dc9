"""What the browser tests share (``tests/test_browser.py``, ``tests/test_browser_widgets.py``): where
screenshots go, a Chromium page that collects console errors and keeps a screenshot of a failure,
image and slider readers, and the layout checks (boxes that overlap, controls cut off sideways).
The JupyterLab server and the browser launch are in ``benchmarks/lab.py`` (the browser benchmark
uses them too).
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path

from benchmarks.lab import launch_chromium

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = Path(os.environ.get("SOFGAN_LAB_ARTIFACTS", REPO / "out" / "test-artifacts" / "browser"))
KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": "python3"}


@contextlib.contextmanager
def _browser_page(pw, viewport: dict, failure_png: str):
    """A page of a fresh headless chromium at ``viewport`` with its console errors collected
    (:func:`_console_errors`): yields ``(page, errors)``; on a failure the page is saved to
    ``ARTIFACTS / failure_png``; the browser is closed in every case."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    browser = launch_chromium(pw)
    try:
        page = browser.new_page(viewport=viewport)
        errors = _console_errors(page)
        try:
            yield page, errors
        except Exception:
            page.screenshot(path=str(ARTIFACTS / failure_png))
            raise
    finally:
        browser.close()


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


def _image_rgb(png: bytes):
    import io

    import numpy as np
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.float64) / 255.0


def _readout(slider) -> float:
    """The number a slider's readout shows (ipywidgets writes negatives with U+2212)."""
    return float(slider.locator(".widget-readout").inner_text().replace("\u2212", "-"))


def _drag_slider(page, slider, to_right: bool = True) -> None:
    """Press the slider's handle with the mouse and drag it well past the track's right (or left) end."""
    handle = slider.locator(".noUi-handle").first
    track = slider.locator(".noUi-target").first
    hb, tb = handle.bounding_box(), track.bounding_box()
    assert hb and tb, "the slider has no box"
    x0, y = hb["x"] + hb["width"] / 2, hb["y"] + hb["height"] / 2
    page.mouse.move(x0, y)
    page.mouse.down()
    page.mouse.move(tb["x"] + tb["width"] + 80 if to_right else tb["x"] - 80, y, steps=12)
    page.mouse.up()


# Every visible control under `root` (outermost matches only) whose box sticks out sideways of the
# viewport or of an ancestor that clips or scrolls horizontally (overflow-x not visible).
_CUT_OFF_JS = """(root) => {
    const sel = ['.jupyter-button', '.widget-dropdown', '.widget-text', '.widget-textarea', '.widget-slider',
                 '.widget-checkbox', '.widget-toggle-buttons', '.widget-select-multiple', '.widget-image',
                 '.widget-label', '.widget-upload', '.widget-inline-hbox.widget-intprogress', 'canvas',
                 '.js-plotly-plot'].join(', ');
    const top = document.querySelector(root);
    if (!top) return ['no element ' + root];
    const name = (el) => (el.className && el.className.baseVal === undefined ? el.className : el.tagName)
                         .toString().split(' ').filter(c => c.startsWith('widget-') || c.startsWith('sofgan-')
                         || c.startsWith('jupyter-button')).join('.')
                     + ' "' + (el.textContent || '').trim().slice(0, 30) + '"';
    const bad = [];
    for (const el of top.querySelectorAll(sel)) {
        const r = el.getBoundingClientRect();
        if (r.width === 0 || r.height === 0 || el.getClientRects().length === 0) continue;  // not shown
        const outer = el.parentElement && el.parentElement.closest(sel);
        if (outer && top.contains(outer)) continue;  // a part of a control already checked
        if (r.left < -1 || r.right > window.innerWidth + 1) {
            bad.push(name(el) + ` outside the viewport: ${r.left.toFixed(0)}..${r.right.toFixed(0)}`);
            continue;
        }
        for (let a = el.parentElement; a && a !== document.body; a = a.parentElement) {
            if (getComputedStyle(a).overflowX === 'visible') continue;
            const ar = a.getBoundingClientRect();
            if (r.left < ar.left - 1 || r.right > ar.right + 1) {
                bad.push(name(el) + ` cut off by ${a.className.toString().slice(0, 60)}: ` +
                         `${r.left.toFixed(0)}..${r.right.toFixed(0)} in ` +
                         `${ar.left.toFixed(0)}..${ar.right.toFixed(0)}`);
                break;
            }
        }
    }
    return bad;
}"""


def _console_errors(page) -> list[str]:
    """Collect the page's console errors and uncaught exceptions into the returned list. Warnings are
    not errors (Chromium's software GL prints "GPU stall due to ReadPixels" performance notes, and
    canvas reads print a willReadFrequently hint); no error message is ignored."""
    errors: list[str] = []
    page.on("console", lambda m: errors.append(f"console.error: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
    return errors


def _left_sidebar_open(page) -> bool:
    return page.evaluate("() => { const s = document.querySelector('#jp-left-stack');"
                         " return !!s && !s.classList.contains('lm-mod-hidden') && s.offsetWidth > 0; }")


def _set_left_sidebar(page, open_: bool) -> None:
    """Open or close JupyterLab's left sidebar (the file browser) with its shortcut, Ctrl+B."""
    if _left_sidebar_open(page) == open_:
        return
    page.locator(".jp-NotebookPanel .jp-Cell .jp-InputPrompt").first.click()  # focus the notebook, not a widget
    page.keyboard.press("Escape")
    page.keyboard.press("Control+b")
    page.wait_for_function("(want) => { const s = document.querySelector('#jp-left-stack');"
                           " return (!!s && !s.classList.contains('lm-mod-hidden') && s.offsetWidth > 0) === want; }",
                           arg=open_, timeout=10_000)
    page.wait_for_timeout(300)  # the notebook relayouts


def _overlap(a: dict, b: dict) -> float:
    """Area (CSS px²) of the intersection of two boxes."""
    return max(0.0, min(a["r"], b["r"]) - max(a["x"], b["x"])) * max(0.0, min(a["b"], b["b"]) - max(a["y"], b["y"]))
