"""Widgets that free what they hold, and the explorer's state as data (headless, no browser).

* ``Panel.close()`` closes every widget a panel owns (plain ipywidgets, their layout and style, the
  panels it built) and ends its renderer threads, and leaves the panels it only drives open;
  building and closing an ``Explorer`` again and again keeps the widget registry and the memory flat.
* ``Explorer.state`` round-trips through JSON and rebuilds the same pixels; ``load_state``, the
  copy/load text box, bookmarks, undo and redo; bad states fail with one line naming the key.

The pipeline is the shipped demo SOF and geometry space with the tiny 32-px SIW of ``_tiny.py``.
"""
from __future__ import annotations

import gc
import json
import os
import threading

import numpy as np
import pytest

pytest.importorskip("ipywidgets")
pytest.importorskip("ipycanvas")
pytest.importorskip("plotly")

import ipywidgets as W  # noqa: E402
from ipywidgets.widgets.widget import _instances  # noqa: E402

from sofgan_lab.widgets import (  # noqa: E402
    AttributeSliders, CameraControl, Explorer, PortraitView, RegionStyleMixer, SegmapPainter,
)
from sofgan_lab.widgets._render import decode_image  # noqa: E402
from sofgan_lab.widgets.state import StateHistory  # noqa: E402
from _tiny import tiny_pipeline  # tests/_tiny.py

pytestmark = pytest.mark.usefixtures("one_thread")

FAST = 0.01  # debounce of the tests' widgets (seconds)
WAIT = 60.0  # generous timeout of every wait()


@pytest.fixture(scope="module")
def pipe():
    return tiny_pipeline()


def explorer(make, pipe, **kwargs):
    """A small explorer (no 3D viewer, no metrics) whose every change is one undo step."""
    kwargs.setdefault("viewer", False)
    kwargs.setdefault("metrics", False)
    kwargs.setdefault("history_settle", 0.0)
    e = make(Explorer, pipe, **kwargs)
    assert e.wait(WAIT), e.error
    return e


def shown(e) -> np.ndarray:
    """The portrait an explorer shows, once every render is done, decoded from its PNG bytes."""
    assert e.wait(WAIT), e.error
    assert e.portrait.error == "", e.portrait.error
    return decode_image(e.portrait.image.value)


def assert_same_image(got: np.ndarray, want: np.ndarray) -> None:
    assert got.shape == want.shape, (got.shape, want.shape)
    diff = np.abs(got.astype(int) - want.astype(int))
    assert diff.max() == 0, f"{int((diff > 0).any(-1).sum())} pixels differ, largest difference {diff.max()}"


def closed(w: W.Widget) -> bool:
    return w.comm is None


# --------------------------------------------------------------------------------------- close
def _rss_bytes() -> int | None:
    try:
        import psutil

        return psutil.Process().memory_info().rss
    except ImportError:
        pass
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, AttributeError):
        return None


def _settled_rss() -> int | None:
    """RSS after a full collection and, with glibc, after handing freed heap pages back to the system
    (``malloc_trim``): without it, RSS swings by ~100 MB between cycles with the transient arrays of
    the renders (meshes, label maps), hiding any trend."""
    gc.collect()
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
    return _rss_bytes()


def _live_widget_objects() -> int:
    return sum(issubclass(type(o), W.Widget) for o in gc.get_objects())


def _render_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("sofgan-lab")]


@pytest.mark.slow
def test_explorer_build_close_cycles_leave_no_widgets_threads_or_memory(pipe):
    """10 build/close cycles of the full explorer (all tabs). Before the fix, every cycle left ~450
    widgets registered (sliders, buttons, boxes, layouts, styles) and RSS grew by ~23 MB.

    The counts are compared after one warm-up cycle, which creates what lives once per process
    (ipycanvas' canvas manager, plotly's templates, lazily imported modules); after it they must
    not grow at all. Memory: the lowest RSS of cycles 6-10 may exceed that of cycles 1-5 by less than
    5 MB per cycle (the leak was 23 MB per cycle; a leak raises the floor, allocator noise of ±20 MB
    after ``malloc_trim`` mostly sits above it)."""
    def cycle():
        e = Explorer(pipe, debounce=FAST)
        e.sliders.set_amount("pc1", 1.0)
        e.camera.yaw = 10.0
        e.mixer.set_weight("hair", 0.5)
        assert e.wait(WAIT), e.error
        renderers = e._all_renderers()
        assert len(renderers) >= 6  # portrait, sampler, painter (2), viewer (2), metrics...
        e.close()
        alive = [r.name for r in renderers if r.thread_alive]
        assert not alive, f"renderer threads still running after close: {alive}"

    cycle()  # warm-up
    gc.collect()
    registered, objects = len(_instances), _live_widget_objects()
    n, rss = 10, []
    for _ in range(n):
        cycle()
        rss.append(_settled_rss())
    assert len(_instances) == registered, (
        f"{len(_instances) - registered} widgets stay registered after {n} build/close cycles")
    assert _live_widget_objects() == objects, (
        f"{_live_widget_objects() - objects} widget objects stay alive after {n} build/close cycles")
    assert not _render_threads(), _render_threads()
    if None not in rss:
        half = n // 2
        growth = (min(rss[half:]) - min(rss[:half])) / half / 2**20
        assert growth < 5.0, (f"RSS grew {growth:.1f} MB per build/close cycle "
                              f"(MB after each cycle: {[round(r / 2**20) for r in rss]})")


def test_close_closes_plain_children_layouts_styles_and_built_portraits(pipe, make):
    m = make(RegionStyleMixer, pipe)  # builds its own portrait
    p = make(SegmapPainter, pipe)  # builds its own portrait, beside its canvas
    assert m.wait(WAIT) and p.wait(WAIT)
    plain = [m._trunc, m._trunc.layout, m._trunc.style, m._a, m._sliders["hair"], m.children[0],
             m.portrait.image, m.portrait.image.layout, m.portrait.status]
    assert not any(closed(w) for w in plain)
    m.close()
    assert all(closed(w) for w in plain), [type(w).__name__ for w in plain if not closed(w)]
    assert m.closed and m.portrait.closed and closed(m.portrait)
    assert not any(r.thread_alive for r in m.portrait.renderers)
    built = p.portrait
    p.close()
    assert built.closed and closed(built.image) and closed(p.canvas)
    assert not any(r.thread_alive for r in (*p.renderers, *built.renderers))


def test_close_leaves_a_shared_portrait_open(pipe, make):
    view = make(PortraitView, pipe)
    cam = make(CameraControl, pipe, portrait=view)
    sliders = make(AttributeSliders, pipe, portrait=view)
    assert cam.wait(WAIT)
    cam.close()
    assert cam.closed and closed(cam._yaw) and closed(cam._yaw.layout)
    assert not view.closed and not closed(view) and not closed(view.image) and not closed(view.image.layout)
    assert not sliders.closed
    before = view.full_updates
    sliders.set_amount("pc1", 1.0)  # the view still renders for the control that remains
    assert sliders.wait(WAIT) and view.full_updates > before and view.error == ""


def test_explorer_close_closes_every_tab_and_its_own_state_panel(pipe, make):
    e = explorer(make, pipe)
    parts = [e.portrait, e.sampler, e.sliders, e.camera, e.mixer, e.painter, e.state_controls]
    e.close()
    assert all(p.closed for p in parts)
    assert closed(e.tabs) and closed(e.readout) and closed(e.pose_note) and closed(e.state_controls.text)
    assert not any(r.thread_alive for r in e._all_renderers())


# --------------------------------------------------------------------------------------- state as data
def _move_everything(e) -> None:
    e.sampler.select(2)
    e.sliders.set_amount("pc1", 1.5)
    e.sliders.set_amount("pc3", -0.7)
    e.camera.camera = {"yaw": 12.3, "pitch": -4.0, "radius": 4.0}
    e.mixer.style_b = 5
    e.mixer.set_weight("hair", 0.6)
    e.mixer.truncation = 0.55


def test_state_round_trips_through_json_and_rebuilds_the_same_pixels(pipe, make):
    e = explorer(make, pipe)
    _move_everything(e)
    want = shown(e)
    state = e.state
    text = json.dumps(state)  # JSON-serialisable as it is
    s = json.loads(text)
    assert s == state and s["version"] == 1
    assert s["geometry"]["amounts"] == {"pc1": 1.5, "pc3": -0.7} and s["geometry"]["label"] == "sample 2 · seed 0"
    assert s["camera"]["yaw"] == 12.3 and s["camera"]["radius"] == 4.0 and s["camera"]["free_camera"] is False
    assert s["texture"] == {"style_a": 0, "style_b": 5, "mix": {**{g: 0.0 for g in e.mixer.mix}, "hair": 0.6},
                            "truncation": 0.55}
    e2 = make(Explorer.from_state, pipe, s, viewer=False, metrics=False)
    assert_same_image(shown(e2), want)
    assert e2.state == state and e2.readout_text == e.readout_text
    assert not e2.state_controls.can_undo  # a rebuilt explorer's history starts at its state
    # the pixels are those of the pipeline called with the state's values
    direct = pipe(geometry=e.sliders.get_code(), texture=(0, 5), region_mix={"hair": 0.6}, truncation=0.55,
                  camera={"yaw": 12.3, "pitch": -4.0, "radius": 4.0})
    assert_same_image(want, direct.array)


def test_load_state_of_copied_json_reproduces_the_pixels(pipe, make):
    e = explorer(make, pipe)
    _move_everything(e)
    want = shown(e)
    e.state_controls.copy_button.click()
    copied = e.state_controls.text.value
    assert json.loads(copied) == e.state
    e.camera.yaw = -20.0
    e.mixer.style_a = 9
    e.sliders.reset()
    assert not np.array_equal(shown(e), want)
    e.state_controls.load_button.click()  # reads the text box
    assert e.error == "" and "loaded" in e.state_controls.status.value
    assert_same_image(shown(e), want)
    assert e.state == json.loads(copied)
    other = explorer(make, pipe)  # and into another explorer, through load_state
    other.load_state(json.loads(copied))
    assert_same_image(shown(other), want)


def test_undo_and_redo_step_through_changes_and_their_pixels(pipe, make):
    e = explorer(make, pipe)
    states, images = [e.state], [shown(e)]
    for change in (lambda: setattr(e.camera, "yaw", 20.0), lambda: setattr(e.mixer, "truncation", 0.4),
                   lambda: e.sliders.set_amount("pc1", 1.0), lambda: e.mixer.set_weight("hair", 1.0)):
        change()
        states.append(e.state)
        images.append(shown(e))
    assert len({json.dumps(s) for s in states}) == 5 and e.state_controls.can_undo
    assert not e.state_controls.can_redo and e.state_controls.redo_button.disabled
    for i in (3, 2, 1):
        assert e.undo()
        assert e.state == states[i]
        assert_same_image(shown(e), images[i])
    e.state_controls.undo_button.click()  # the button does the same
    assert e.state == states[0] and not e.state_controls.can_undo and e.state_controls.undo_button.disabled
    assert_same_image(shown(e), images[0])
    assert e.undo() is False
    assert e.redo() and e.state == states[1]
    e.state_controls.redo_button.click()
    assert e.state == states[2]
    assert_same_image(shown(e), images[2])
    assert "ψ 0.40" in e.readout_text and "yaw 20.0°" in e.readout_text
    e.camera.pitch = 5.0  # a new change drops what could have been redone
    assert not e.state_controls.can_redo and e.redo() is False
    assert e.undo() and e.state == states[2]


def test_undo_takes_a_dragged_slider_back_in_one_step(pipe, make):
    e = explorer(make, pipe, history_settle=30.0)
    start = e.state
    for yaw in np.linspace(1.0, 25.0, 12):  # one drag: many changes, one undo step
        e.camera.yaw = float(yaw)
    e.mixer.truncation = 0.3  # another control: a new step
    assert len(e.state_controls.history) == 3
    assert e.undo() and e.state["camera"]["yaw"] == 25.0 and e.state["texture"]["truncation"] != 0.3
    assert e.undo() and e.state == start
    for yaw in (5.0, 0.0):  # a new drag (undo ended the last) back to where it started: no step at all
        e.camera.yaw = yaw
    assert e.state == start and len(e.state_controls.history) == 1 and not e.state_controls.can_undo


def test_bookmarks_load_their_state_and_pixels(pipe, make):
    e = explorer(make, pipe)
    _move_everything(e)
    want, state = shown(e), e.state
    e.state_controls.bookmark_button.click()
    (name, saved), = e.bookmarks
    assert saved == state and name.startswith("1: sample 2 · seed 0")
    assert [v for _, v in e.state_controls.bookmark_list.options] == ["", name]
    e.camera.yaw = -30.0
    e.sliders.reset()
    e.add_bookmark("second")
    assert [n for n, _ in e.bookmarks] == [name, "second"]
    e.state_controls.bookmark_list.value = name  # choosing it loads it
    assert e.state == state
    assert_same_image(shown(e), want)
    assert e.state_controls.bookmark_list.value == ""  # back on the placeholder: the same one can be chosen again
    e.load_bookmark("second")
    assert e.state["camera"]["yaw"] == -30.0
    assert e.undo() and e.state == state  # loading a bookmark is one undo step
    with pytest.raises(ValueError, match="name: a bookmark 'second' exists already"):
        e.add_bookmark("second")
    with pytest.raises(ValueError, match="name: no bookmark 'third'"):
        e.load_bookmark("third")


def test_readout_under_the_portrait_summarises_the_state(pipe, make):
    e = explorer(make, pipe)
    column = e.children[0].children[1].children
    assert e.portrait in column and e.readout in column and e.state_controls in column
    assert e.readout_text == "space seed 0 | yaw 0.0° pitch 0.0° | style A 0 | ψ 0.70"
    e.sampler.select(1)
    e.sliders.set_amount("pc2", -1.0)
    e.camera.camera = {"yaw": 15.0, "pitch": 3.0}
    e.mixer.set_weight("hair", 1.0)
    assert e.readout_text == ("sample 1 · seed 0, pc2 -1.0 | yaw 15.0° pitch 3.0° | style A 0 + B 1 (hair 1.00) "
                              "| ψ 0.70")
    assert "yaw 15.0°" in e.readout.value
    e.sliders.base = [v + 0.01 for v in e.sliders.base]  # a code from elsewhere: named by its digest
    assert e.readout_text.startswith("code ") and e.state["geometry"]["label"].startswith("code ")


def test_a_free_camera_state_outside_the_trained_poses_loads(pipe, make):
    e = explorer(make, pipe)
    hi = pipe.pose_range["yaw"][1]
    state = {"version": 1, "camera": {"yaw": hi + 30.0, "free_camera": True}}
    e.load_state(state)
    assert e.camera.free_camera and e.camera.yaw == hi + 30.0 and e.portrait.camera["yaw"] == hi + 30.0
    with pytest.raises(ValueError, match=r"^state\['camera'\]\['yaw'\]: .* outside the trained poses"):
        e.load_state({"version": 1, "camera": {"yaw": hi + 30.0, "free_camera": False}})


@pytest.mark.parametrize("patch, message", [
    ({"camera": {"yaw": "x"}}, r"state['camera']['yaw']: expected a number, got 'x'"),
    ({"camera": {"yaw": None}}, r"state['camera']['yaw']: expected a number, got None"),
    ({"camera": {"pitch": float("nan")}}, r"state['camera']['pitch']: expected a finite number, got nan"),
    ({"camera": {"target": [0, 1]}}, r"state['camera']['target']: expected 3 numbers (x, y, z), got 2"),
    ({"camera": {"zoom": 0}}, r"state['camera']['zoom']: expected a number > 0, got 0"),
    ({"camera": {"free_camera": 1}}, r"state['camera']['free_camera']: expected true or false, got 1"),
    ({"camera": {"roll": 3}}, r"state['camera']: unknown keys ['roll']"),
    ({"version": 2}, r"state['version']: expected 1, got 2"),
    ({"geometry": {"base": [0.0, 1.0]}}, r"state['geometry']['base']: expected "),
    ({"geometry": {"amounts": {"smile!": 1.0}}}, r"state['geometry']['amounts']: unknown directions ['smile!']"),
    ({"geometry": {"amounts": {"pc1": True}}}, r"state['geometry']['amounts']['pc1']: expected a number, got True"),
    ({"geometry": {"regions": ["face", "tail"]}}, r"state['geometry']['regions']: unknown regions ['tail']"),
    ({"texture": {"mix": {"hair": 2}}}, r"state['texture']['mix']['hair']: expected a number in [0.0, 1.0], got 2"),
    ({"texture": {"style_b": 1.5}}, r"state['texture']['style_b']: expected an integer, got 1.5"),
    ({"texture": {"style_a": -1}}, r"state['texture']['style_a']: expected an integer in [0, 2147483647], got -1"),
    ({"texture": []}, r"state['texture']: expected a dict, got list"),
    ({"sampler": {"component": 99}}, r"state['sampler']['component']: expected an integer in [0, "),
    ({"colour": 1}, r"state: unknown keys ['colour']"),
])
def test_a_bad_state_fails_with_one_line_naming_the_key_and_changes_nothing(pipe, make, patch, message):
    e = explorer(make, pipe)
    state = e.state
    before = e.state
    for section, value in patch.items():
        state[section] = {**state[section], **value} if isinstance(value, dict) and section in state else value
    with pytest.raises(ValueError) as info:
        e.load_state(state)
    text = str(info.value)
    assert text.startswith(message) and "\n" not in text, text
    assert e.state == before and not e.state_controls.can_undo


def test_bad_state_text_shows_an_error_in_the_widget(pipe, make):
    e = explorer(make, pipe)
    before = e.state
    for text, message in (("", "the box is empty"), ("{not json", "state: not valid JSON"),
                          ('{"version": 1, "camera": {"yaw": "x"}}', "state['camera']['yaw']: expected a number")):
        e.state_controls.text.value = text
        e.state_controls.load_button.click()  # shown in the widget, not raised
        assert message in e.error and message in e.state_controls.status.value.replace("&#x27;", "'")
    assert e.state == before
    with pytest.raises(ValueError, match="state: expected a dict"):
        e.load_state([1, 2])
    e.state_controls.copy_button.click()
    assert e.error == ""


def test_state_history_limit_redo_and_coalescing():
    h = StateHistory(limit=3)
    for i in range(5):
        assert h.record({"i": i}, group="a", settle=0.0)
    assert len(h) == 3 and h.current == {"i": 4} and [s["i"] for s in h.states] == [2, 3, 4]
    assert h.undo() == {"i": 3} and h.undo() == {"i": 2} and h.undo() is None
    assert h.redo() == {"i": 3} and h.can_redo
    assert h.record({"i": 9}) and not h.can_redo and [s["i"] for s in h.states] == [2, 3, 9]
    assert not h.record({"i": 9})  # the current state again: nothing new
    h = StateHistory()
    h.reset({"x": 0})
    h.record({"x": 1}, "drag", settle=1.0, now=10.0)
    h.record({"x": 2}, "drag", settle=1.0, now=10.5)  # the same drag: replaces the top
    h.record({"x": 3}, "other", settle=1.0, now=10.6)
    h.record({"x": 4}, "other", settle=1.0, now=12.0)  # too late: a new step
    assert [s["x"] for s in h.states] == [0, 2, 3, 4]
    state = {"x": [1.0]}
    h.record(state)
    state["x"].append(2.0)  # the history keeps copies
    assert h.current == {"x": [1.0]}
    with pytest.raises(ValueError, match="limit"):
        StateHistory(limit=1)
