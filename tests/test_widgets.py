"""The notebook widgets (``sofgan_lab.widgets``), headless: no browser, no kernel.

Widgets are driven the way the front-end drives them — by setting traits and calling the methods
that canvas/button events call — and every check waits for the renderer with ``widget.wait()``
(never a sleep). Images are decoded from the widgets' PNG bytes and compared pixel for pixel with
the pipeline called with the same parameters.

The pipeline is the shipped demo SOF and geometry space with a tiny random 32-px SIW generator
(as in ``test_pipeline.py``), so that each render takes milliseconds.
"""
from __future__ import annotations

import io
import threading
import tracemalloc

import numpy as np
import pytest
import torch
from PIL import Image

from sofgan_lab.geometry.space import restricted_edit
from sofgan_lab.labels import colorize
from sofgan_lab.pipeline import SofGAN

pytest.importorskip("ipywidgets")
pytest.importorskip("ipycanvas")
pytest.importorskip("plotly")

from sofgan_lab.widgets import (  # noqa: E402
    AttributeSliders, CameraControl, Explorer, GeometrySampler, MetricTable, PortraitView, RegionStyleMixer,
    Renderer, SegmapPainter, SOFViewer3D,
)
from sofgan_lab.widgets._render import decode_image  # noqa: E402
from sofgan_lab.widgets.viewer3d import split_mesh_by_class  # noqa: E402
from _tiny import tiny_pipeline  # tests/_tiny.py

pytestmark = pytest.mark.usefixtures("one_thread")

FAST = 0.01  # debounce of the tests' widgets (seconds)
WAIT = 60.0  # generous timeout of every wait(); a pass takes far less




@pytest.fixture(scope="module")
def pipe() -> SofGAN:
    return tiny_pipeline()


def shown(view: PortraitView) -> np.ndarray:
    """The portrait the widget shows, decoded from its PNG bytes."""
    return decode_image(view.image.value)


def assert_same_image(got: np.ndarray, want: np.ndarray) -> None:
    assert got.shape == want.shape, (got.shape, want.shape)
    diff = np.abs(got.astype(int) - want.astype(int))
    assert diff.max() == 0, f"{int((diff > 0).any(-1).sum())} pixels differ, largest difference {diff.max()}"


# --------------------------------------------------------------------------------------- renderer
def test_renderer_renders_only_the_newest_request():
    started, release = threading.Event(), threading.Event()
    rendered, delivered = [], []

    def render(params, preview):
        rendered.append(params)
        if params == 0:
            started.set()
            assert release.wait(WAIT)
        return params * 10

    r = Renderer(render, lambda value, job: delivered.append((value, job.gen)), debounce=0.0)
    try:
        r.submit(0)
        assert started.wait(WAIT)  # the first render is running: the next 49 requests queue up
        for i in range(1, 50):
            r.submit(i)
        release.set()
        assert r.wait(WAIT)
        assert rendered == [0, 49]
        assert delivered == [(0, 1), (490, 50)]
        assert r.stats.submitted == 50 and r.stats.rendered == 2 and r.stats.dropped == 48 and r.stats.errors == 0
        assert r.idle
    finally:
        r.close()


def test_renderer_preview_then_full_render_after_quiet():
    calls = []
    r = Renderer(lambda p, preview: calls.append((p, preview)), lambda v, j: None, debounce=FAST)
    try:
        r.submit("a", preview=True)
        assert r.wait(WAIT)
        assert calls == [("a", True), ("a", False)]
        r.submit("b", preview=False)
        assert r.wait(WAIT)
        assert calls[-1] == ("b", False) and len(calls) == 3
        assert r.stats.previews == 1
    finally:
        r.close()


def test_renderer_holds_full_renders_while_asked_and_renders_the_last_on_release():
    import time

    calls = []
    r = Renderer(lambda p, preview: calls.append((p, preview)), lambda v, j: None, debounce=FAST)
    try:
        r.hold_full(True)
        for p in ("a", "b", "c"):
            r.submit(p, preview=True)
            time.sleep(0.1)                                   # far past the debounce
        assert calls == [("a", True), ("b", True), ("c", True)]   # previews only
        assert not r.wait(0.2)                                # a full render waits
        r.hold_full(False)
        assert r.wait(WAIT) and calls[-1] == ("c", False) and len(calls) == 4
    finally:
        r.close()


def test_renderer_captures_errors_and_stays_usable():
    errors, values = [], []

    def render(params, preview):
        if params == "bad":
            raise ValueError("broken pipeline call")
        return params

    r = Renderer(render, lambda v, j: values.append(v), lambda exc, j: errors.append(str(exc)), debounce=0.0)
    try:
        r.submit("bad")
        assert r.wait(WAIT)
        assert errors == ["broken pipeline call"] and values == [] and r.stats.errors == 1
        r.submit("good")
        assert r.wait(WAIT)
        assert values == ["good"]
    finally:
        r.close()


def test_renderer_thread_ends_when_idle_and_on_close():
    r = Renderer(lambda p, preview: p, lambda v, j: None, idle_exit=0.05)
    r.submit(1)
    assert r.wait(WAIT)
    t = r._thread
    if t is not None:
        t.join(WAIT)
        assert not t.is_alive()
    r.submit(2)  # a new thread starts on demand
    assert r.wait(WAIT)
    r.close()
    assert not r.thread_alive
    with pytest.raises(RuntimeError, match="closed"):
        r.submit(3)
    with pytest.raises(ValueError, match="debounce"):
        Renderer(lambda p, q: p, lambda v, j: None, debounce=-1)


# --------------------------------------------------------------------------------------- camera + portrait
def test_camera_control_updates_the_portrait_exactly(pipe, make):
    cc = make(CameraControl, pipe)
    assert cc.wait(WAIT)
    view = cc.portrait
    before = bytes(view.image.value)
    code = view.get_geometry()
    assert_same_image(shown(view), pipe(geometry=code, texture=0).array)

    cc.yaw, cc.pitch = 25.0, 5.0
    assert cc.camera == {**pipe.default_camera, "yaw": 25.0, "pitch": 5.0}  # target and zoom included
    assert set(cc.camera) == {"yaw", "pitch", "radius", "fov", "target", "zoom"}
    assert cc.wait(WAIT)
    assert bytes(view.image.value) != before
    want = pipe(geometry=code, texture=0, camera={"yaw": 25.0, "pitch": 5.0})
    assert_same_image(shown(view), want.array)
    assert np.array_equal(view.result.segmap, want.segmap) and not view.result.preview
    assert_same_image(decode_image(view.segmap_image.value), colorize(want.segmap, "sof20"))
    assert view.updates > view.full_updates >= 2  # the camera move was previewed first

    cc.camera = {"fov": 30.0}  # a partial dict keeps the other parameters
    assert (cc.yaw, cc.pitch, cc.fov) == (25.0, 5.0, 30.0) and not cc._ortho.value
    assert cc.wait(WAIT)
    assert_same_image(shown(view), pipe(geometry=code, texture=0, camera=cc.camera).array)
    cc._ortho.value = True  # the "orthographic" checkbox
    assert cc.fov is None and cc.camera["fov"] is None

    cc.free_camera = True  # free: the orbit player's frames are yaws, as far as ±180
    cc._play.value = 200  # an orbit-player frame → yaw in [-180, 180)
    assert cc.yaw == -160.0
    cc.orbit(30)
    assert cc.yaw == -130.0
    cc.reset()
    assert cc.camera == pipe.default_camera
    assert cc.wait(WAIT)
    assert view.camera == pipe.default_camera


# --------------------------------------------------------------------------------------- camera range + framing
@pytest.fixture(scope="module")
def framed_pipe(pipe) -> SofGAN:
    """The tiny pipeline's models with a default camera of the portrait framing at zoom 2."""
    return SofGAN(pipe.sof, pipe.siw, pipe.space, camera={"target": [0.0, 0.47, 0.0], "zoom": 2.0})


def visible(widget) -> bool:
    return widget.layout.display != "none"


def test_camera_sliders_span_the_trained_range_until_freed(pipe, make):
    from traitlets import TraitError

    (ylo, yhi), (plo, phi) = pipe.pose_range["yaw"], pipe.pose_range["pitch"]
    assert (ylo, yhi, plo, phi) == (-34.4, 34.4, -11.5, 11.5)  # the demo SOF's training views
    cc = make(CameraControl, pipe, portrait=False)
    assert cc.free_camera is False and cc._free.value is False and "leave the trained range" in cc._free.description
    assert (cc._yaw.min, cc._yaw.max) == (ylo, yhi) and (cc._pitch.min, cc._pitch.max) == (plo, phi)
    assert "trained: yaw ±34.4°, pitch ±11.5°" in cc.range_label.value and visible(cc.range_label)
    assert cc.in_trained_range and not visible(cc.range_note)

    # confined: values outside the range are clamped, from the traits and from the camera dict
    cc.yaw = 60.0
    assert cc.yaw == yhi and cc.camera["yaw"] == yhi and cc._yaw.value == yhi
    cc.pitch = -40.0
    assert cc.pitch == plo and cc.camera["pitch"] == plo
    cc.camera = {"yaw": -90.0, "pitch": 30.0}
    assert (cc.yaw, cc.pitch) == (ylo, phi) and (cc.camera["yaw"], cc.camera["pitch"]) == (ylo, phi)
    assert cc.in_trained_range and not visible(cc.range_note)
    with pytest.raises(TraitError):
        cc.yaw = 200.0  # beyond the control's own bounds: an error, not a clamp
    with pytest.raises(TraitError, match="unknown keys"):
        cc.camera = {"yawn": 1.0}
    with pytest.raises(TraitError, match="zoom"):
        cc.camera = {"zoom": 0.0}

    # free (the checkbox): the full turn, and the note while the pose is outside the trained range
    cc._free.value = True
    assert cc.free_camera is True
    assert (cc._yaw.min, cc._yaw.max) == (-180.0, 180.0) and (cc._pitch.min, cc._pitch.max) == (-80.0, 80.0)
    cc.yaw, cc.pitch = 90.0, 30.0
    assert (cc.yaw, cc.pitch) == (90.0, 30.0) and cc.camera["yaw"] == 90.0 and cc._yaw.value == 90.0
    assert not cc.in_trained_range and visible(cc.range_note)
    assert "outside the poses the model was trained on" in cc.range_note.value
    assert "yaw −34.4…34.4°, pitch −11.5…11.5°" in cc.range_note.value
    cc.yaw, cc.pitch = 10.0, 0.0
    assert cc.in_trained_range and not visible(cc.range_note)
    cc.pitch = -20.0  # pitch alone leaves the range too
    assert not cc.in_trained_range and visible(cc.range_note)
    cc.camera = {"yaw": -120.0, "pitch": 0.0}
    assert not cc.in_trained_range and visible(cc.range_note)

    # confined again: the pose is clamped back in, the sliders narrow, the note goes
    cc.free_camera = False
    assert (cc.yaw, cc.pitch) == (ylo, 0.0) and cc.camera["yaw"] == ylo and cc._yaw.value == ylo
    assert (cc._yaw.min, cc._yaw.max) == (ylo, yhi) and cc._free.value is False
    assert cc.in_trained_range and not visible(cc.range_note)


def test_camera_range_comes_from_the_pipeline(pipe, make):
    narrow = SofGAN(pipe.sof, pipe.siw, pipe.space, pose_range={"yaw": (-20.0, 30.0), "pitch": (-5.0, 8.0)})
    cc = make(CameraControl, narrow, portrait=False, yaw=50.0)  # clamped from the start
    assert cc.yaw == 30.0 and (cc._yaw.min, cc._yaw.max) == (-20.0, 30.0) and (cc._pitch.min, cc._pitch.max) == (-5, 8)
    assert "trained: yaw −20…30°, pitch −5…8°" in cc.range_label.value
    cc.pitch = 10.0
    assert cc.pitch == 8.0
    free = make(CameraControl, narrow, portrait=False, free_camera=True, yaw=50.0)  # freedom first, then the pose
    assert free.yaw == 50.0 and visible(free.range_note)
    assert "yaw −20…30°, pitch −5…8°" in free.range_note.value


def test_orbit_player_sweeps_back_and_forth_inside_the_trained_range(pipe, make):
    lo, hi = pipe.pose_range["yaw"]
    cc = make(CameraControl, pipe, portrait=False)

    def frames(n):  # what the front-end's Play does: value += step, back to min past max (repeat)
        yaws = []
        for _ in range(n):
            v = cc._play.value + cc._play.step
            cc._play.value = v if v <= cc._play.max else cc._play.min
            yaws.append(cc.yaw)
        return np.array(yaws)

    yaws = frames(50)
    assert np.all((yaws >= lo) & (yaws <= hi)), yaws
    assert yaws.min() == lo and yaws.max() == hi  # both ends are shown
    steps = np.diff(np.concatenate([[0.0], yaws]))
    assert np.all(np.abs(steps) <= cc.orbit_step + 1e-9) and (np.abs(steps) > 0).all()
    assert int((np.diff(np.sign(steps)) != 0).sum()) >= 4  # 50 frames of 10° over 68.8°: several turns back

    cc.reset()  # yaw 0, the sweep heading toward +yaw again
    swept = [cc.orbit(25) or cc.yaw for _ in range(8)]  # orbit() is one frame of the same sweep
    assert swept == pytest.approx([25.0, hi, hi - 25, hi - 50, lo, lo + 25, lo + 50, hi])

    cc.free_camera = True  # free: as before, the frame is the yaw and the player makes full turns
    yaws = frames(36)
    assert yaws.min() <= -170.0 and yaws.max() >= 170.0
    cc.yaw = 170.0
    cc.orbit(30)
    assert cc.yaw == -160.0


def test_camera_control_renders_with_the_models_framing(pipe, framed_pipe, make, monkeypatch):
    cams = {}
    for p in (pipe, framed_pipe):  # record the cameras the portraits' label maps are rendered through
        real, seen = p.render_segmap, cams.setdefault(id(p), [])
        monkeypatch.setattr(p, "render_segmap", lambda g, c=None, real=real, seen=seen: seen.append(c) or real(g, c))
    plain, framed = make(CameraControl, pipe), make(CameraControl, framed_pipe)
    assert framed.camera["zoom"] == 2.0 and framed.camera["target"] == [0.0, 0.47, 0.0]
    assert (framed.zoom, framed.target) == (2.0, [0.0, 0.47, 0.0]) and plain.camera["zoom"] == 1.0
    assert framed.portrait.camera == framed_pipe.default_camera
    assert plain.wait(WAIT) and framed.wait(WAIT), (plain.error, framed.portrait.error)

    size = pipe.image_size
    full_plain = [c for c in cams[id(pipe)] if c.height == size][-1]
    full_framed = [c for c in cams[id(framed_pipe)] if c.height == size][-1]
    fx_plain, fx_framed = float(full_plain.intrinsics[0, 0, 0]), float(full_framed.intrinsics[0, 0, 0])
    assert fx_framed == pytest.approx(2.0 * fx_plain) and fx_plain > 0
    centre = torch.tensor([[size / 2, size / 2]])
    radius = torch.full((1,), framed.radius)
    assert full_framed.unproject(centre, radius)[0, 0].tolist() == pytest.approx([0.0, 0.47, 0.0], abs=1e-5)
    assert full_plain.unproject(centre, radius)[0, 0].tolist() == pytest.approx([0.0, 0.1, 0.0], abs=1e-5)
    code = framed.portrait.get_geometry()
    want = framed_pipe(geometry=code, texture=0)
    assert_same_image(shown(framed.portrait), want.array)
    assert not np.array_equal(shown(framed.portrait), shown(plain.portrait))  # the framing shows

    framed.camera = {"yaw": 20.0, "zoom": 1.0, "target": [0.0, 0.0, 0.0]}
    assert (framed.zoom, framed.target) == (1.0, [0.0, 0.0, 0.0])
    assert framed.wait(WAIT)
    assert framed.portrait.camera["zoom"] == 1.0
    assert float(cams[id(framed_pipe)][-1].intrinsics[0, 0, 0]) == pytest.approx(fx_plain)
    framed._reset.click()  # the reset button: the model's default camera, framing included
    assert framed.camera == framed_pipe.default_camera and (framed.zoom, framed.target) == (2.0, [0.0, 0.47, 0.0])
    assert framed.wait(WAIT)
    assert framed.portrait.camera == framed_pipe.default_camera
    assert_same_image(shown(framed.portrait), want.array)


def test_sampler_painter_and_frustum_use_the_models_framing(framed_pipe, make):
    pipe = framed_pipe
    g = make(GeometrySampler, pipe, n=2, columns=2, thumb_size=16, portrait=False)
    p = make(SegmapPainter, pipe)
    code0 = pipe.geometry_code(0)[0]
    p.load_from_geometry(code0)  # "from geometry" through the painter's camera, {} = the model's default
    assert g.wait(WAIT) and p.wait(WAIT), (g.error, p.error)
    seg = pipe.render_segmap(g.codes[0], pipe.camera(image_size=16)).labels[0].numpy()
    official = pipe.render_segmap(g.codes[0], pipe.camera(image_size=16, target=(0, 0.1, 0), zoom=1.0))
    assert not np.array_equal(seg, official.labels[0].numpy())  # the framing matters at this size
    assert np.array_equal(g.grid_image()[4:20, 4:20], colorize(seg, "sof20"))  # thumbnail 0
    assert np.array_equal(p.segmap, pipe.render_segmap(code0).labels[0].numpy().astype(np.uint8))

    v = make(SOFViewer3D, pipe, resolution=16, slice_resolution=8)
    assert v.wait(WAIT), v.error
    rect = v.frustum_lines()[:4]  # the image rectangle on the look-at plane
    assert rect.mean(0).tolist() == pytest.approx([0.0, 0.47, 0.0], abs=1e-5)
    v.camera = {"target": [0.0, 0.1, 0.0], "zoom": 1.0}
    wide = v.frustum_lines()[:4]
    assert wide.mean(0).tolist() == pytest.approx([0.0, 0.1, 0.0], abs=1e-5)
    width = float(np.linalg.norm(rect[1] - rect[0]))
    assert width > 0 and float(np.linalg.norm(wide[1] - wide[0])) == pytest.approx(2.0 * width)
    assert np.array(v.frustum_trace.x, dtype=np.float32)[:4] == pytest.approx(wide[:, 0])


def test_rapid_changes_end_on_the_last_value_with_bounded_work(pipe, make):
    cc = make(CameraControl, pipe)
    assert cc.wait(WAIT)
    view = cc.portrait
    renderer = view.renderers[0]
    before = renderer.stats.rendered
    threads_before = {t for t in threading.enumerate() if t.name.startswith("sofgan-lab")}
    tracemalloc.start()
    try:
        for i in range(200):
            cc.yaw = float(i % 90) - 45.0 + 0.25 * (i // 90)
        assert cc.wait(WAIT)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    last = cc.yaw
    renders = renderer.stats.rendered - before
    assert renders < 200, renders
    assert renderer.stats.dropped > 0
    assert peak < 64 * 2**20, f"peak traced memory {peak / 2**20:.1f} MiB"
    threads_after = {t for t in threading.enumerate() if t.name.startswith("sofgan-lab")}
    assert len(threads_after - threads_before) <= 1  # at most the portrait's worker, restarted
    assert view.camera["yaw"] == last and not view.result.preview
    want = pipe(geometry=view.get_geometry(), texture=0, camera={"yaw": last})
    assert_same_image(shown(view), want.array)


def test_errors_show_inside_the_widget_and_it_still_renders(pipe, make, monkeypatch):
    mixer = make(RegionStyleMixer, pipe)
    assert mixer.wait(WAIT)
    view = mixer.portrait
    good = bytes(view.image.value)

    def broken(*args, **kwargs):
        raise RuntimeError("broken pipeline call")

    monkeypatch.setattr(pipe, "from_segmap", broken)
    mixer.truncation = 0.5
    assert mixer.wait(WAIT)
    assert "broken pipeline call" in view.status.value and "sofgan-lab-error" in view.status.value
    assert view.error == "RuntimeError: broken pipeline call"
    assert bytes(view.image.value) == good  # the last good image stays
    monkeypatch.undo()

    mixer.truncation = 0.6
    assert mixer.wait(WAIT)
    assert view.error == "" and "error" not in view.status.value
    want = pipe(geometry=view.get_geometry(), texture=(0, 1), region_mix=mixer.mix, truncation=0.6)
    assert_same_image(shown(view), want.array)

    view.camera = {"yaw": float("nan")}  # a bad camera is an error in the widget, not an exception
    assert view.wait(WAIT)
    assert "yaw must be a finite number" in view.error
    view.camera = {"yawn": 10.0}
    assert view.wait(WAIT)
    assert "unknown keys ['yawn']" in view.error
    view.camera = {"yaw": 10.0}
    assert view.wait(WAIT) and view.error == ""


# --------------------------------------------------------------------------------------- sliders
def test_attribute_sliders_edit_the_code_and_the_portrait(pipe, make):
    space = pipe.space
    s = make(AttributeSliders, pipe, n_components=4)
    assert s.wait(WAIT)
    assert s.base == [float(v) for v in pipe.geometry_code(0)[0]] and s.code == s.base
    table = space.correlation_table(4)
    for i in range(4):
        label = s.labels[f"pc{i + 1}"]
        assert f"{100 * space.explained_variance_ratio[i]:.1f}%" in label
        assert table.loc[f"pc{i + 1}", "top_attribute"] in label
    assert "smile" in s.directions and s.labels["smile"] == "smile"

    before = bytes(s.portrait.image.value)
    s.set_amount("pc1", 1.5)
    s._sliders["smile"].value = 2.0  # what dragging the slider does
    assert s.amounts["pc1"] == 1.5 and s.amounts["smile"] == 2.0
    want_code = space.edit(space.edit(torch.tensor(s.base), "pc1", 1.5), "smile", 2.0)
    assert torch.equal(s.get_code(), want_code)
    assert s.wait(WAIT)
    assert bytes(s.portrait.image.value) != before
    assert_same_image(shown(s.portrait), pipe(geometry=s.get_code(), texture=0).array)

    s.reset()
    assert s.code == s.base and all(v == 0 for v in s.amounts.values())
    assert s._sliders["pc1"].value == 0.0
    with pytest.raises(ValueError, match="unknown"):
        s.set_amount("nope", 1.0)


def test_attribute_sliders_region_restriction(pipe, make):
    s = make(AttributeSliders, pipe, n_components=2, attributes=["smile", "mouth_opening"])
    s.restrict = True
    s.regions = ["mouth"]
    s.set_amount("mouth_opening", 3.0)
    assert s.wait(WAIT)
    cam = pipe.camera()
    edit = restricted_edit(pipe.sof, torch.tensor(s.base), s.get_code(), cam, ["mouth"])
    want_seg = edit.restricted[0].numpy().astype(np.uint8)
    assert np.array_equal(s.portrait.result.segmap, want_seg)
    assert_same_image(shown(s.portrait), pipe.from_segmap(want_seg, texture=0).array)
    s.restrict = False
    assert s.wait(WAIT)
    assert_same_image(shown(s.portrait), pipe(geometry=s.get_code(), texture=0).array)


# --------------------------------------------------------------------------------------- sampler
def test_sampler_grid_and_click_selection(pipe, make):
    g = make(GeometrySampler, pipe, n=6, columns=3, thumb_size=16)
    assert g.wait(WAIT)
    want = pipe.space.sample(6, seed=0)
    assert torch.equal(torch.tensor(g.codes), want)
    assert g.selected == [] and g.selected_index is None
    grid = g.grid_image()
    assert grid.shape == (2 * 20 + 4, 3 * 20 + 4, 3)
    seg = pipe.render_segmap(want[4], pipe.camera(image_size=16)).labels[0].numpy()
    assert np.array_equal(grid[24:40, 24:40], colorize(seg, "sof20"))  # thumbnail 4 (row 1, column 1)

    g._on_canvas_click(8 + 20 + 3, 4 + 20 + 7)  # what a mouse-down on the canvas calls
    assert g.selected_index == 4 and g.selected == [float(v) for v in want[4]]
    assert g.portrait.geometry == g.selected
    assert not np.array_equal(g.grid_image(), grid)  # the selection frame is drawn
    g._on_canvas_click(1, 1)  # padding: no change
    assert g.selected_index == 4
    assert g.wait(WAIT)
    assert_same_image(shown(g.portrait), pipe(geometry=g.get_selected(), texture=0).array)
    framed = g.grid_image()
    g.camera = {"yaw": 20.0}  # the same codes from another side: the selection and its frame stay
    assert g.wait(WAIT) and g.selected_index == 4
    turned = g.grid_image()
    assert not np.array_equal(turned, framed)
    assert np.array_equal(turned[22:24, 22:42], framed[22:24, 22:42])  # the frame's top edge (blue)
    assert (turned[22:24, 22:42] == [30, 120, 255]).all()
    g.camera = {}
    assert g.wait(WAIT) and np.array_equal(g.grid_image(), framed)
    # the component drop-down names "all" (a None value would show a blank)
    assert g._component.label == "all" and g.component is None
    g._component.value = 1
    assert g.component == 1
    g.component = None
    assert g._component.label == "all"
    assert g.wait(WAIT)

    g._resample.click()
    assert g.seed == 1
    assert g.wait(WAIT)
    assert torch.equal(torch.tensor(g.codes), pipe.space.sample(6, seed=1))
    assert g.selected_index is None and g.selected == [float(v) for v in want[4]]  # the choice is kept
    g.component, g.temperature = 2, 0.5
    assert g.wait(WAIT)
    assert torch.equal(torch.tensor(g.codes), pipe.space.sample(6, seed=1, component=2, temperature=0.5))
    g.mode = "portrait"  # thumbnails textured with seed `texture`
    assert g.wait(WAIT) and g.error == ""
    assert g.grid_image().shape == grid.shape and not np.array_equal(g.grid_image()[24:40, 24:40],
                                                                     colorize(seg, "sof20"))
    with pytest.raises(Exception, match="component"):
        g.component = pipe.space.num_components
    with pytest.raises(ValueError, match="index"):
        g.select(6)


# --------------------------------------------------------------------------------------- 3D viewer
def test_split_mesh_by_class():
    v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0], [2, 2, 0]], np.float64)
    f = np.array([[0, 1, 2], [1, 3, 2], [3, 4, 2]])
    lab = np.array([1, 1, 1, 18, 18])
    parts = split_mesh_by_class(v, f, lab)
    assert sorted(parts) == [1, 18]
    v1, f1 = parts[1]  # faces 0 (1,1,1) and 1 (1,18,1 → first vertex's 1)
    assert v1.dtype == np.float32 and f1.dtype == np.int32 and f1.shape == (2, 3)
    assert np.array_equal(v1[f1], v[f[:2]].astype(np.float32))
    v18, f18 = parts[18]  # face 2 (18,18,1 → 18)
    assert np.array_equal(v18[f18], v[f[2:]].astype(np.float32))


def test_viewer_mesh_toggles_slice_and_frustum(pipe, make):
    v = make(SOFViewer3D, pipe, resolution=20, slice_resolution=12)
    assert v.wait(WAIT), v.error
    # the slicing plane is off until asked for (it would hide half the head), translucent when on
    assert v.show_slice is False and v.slice_trace.visible is False
    assert v.slice_trace.opacity == v.slice_opacity < 1
    v.show_slice = True
    # the user's rotation survives data updates; the scene spans the head, not the camera frustum
    lay = v.figure.layout
    assert lay.uirevision == lay.scene.uirevision == "sofgan-lab-viewer"
    (xl, xh), (yl, yh), (zl, zh) = v.scene_bounds
    assert list(lay.scene.xaxis.range) == [xl, xh] and list(lay.scene.zaxis.range) == [zl, zh]
    head = np.concatenate([np.stack([np.asarray(v.mesh_trace(c).x), np.asarray(v.mesh_trace(c).y),
                                     np.asarray(v.mesh_trace(c).z)], 1) for c in v.mesh_info["classes"]])
    assert (head.min(0) >= np.array([xl, yl, zl])).all() and (head.max(0) <= np.array([xh, yh, zh])).all()
    side = float((head.max(0) - head.min(0)).max())
    assert max(xh - xl, yh - yl, zh - zl) <= 1.2 * side  # the head fills the scene
    eye_z = float(pipe.default_camera["radius"])
    assert zh < eye_z  # the camera (at the radius) lies outside the scene: its frustum is clipped
    v.slice_opacity = 0.3
    assert v.slice_trace.opacity == 0.3
    v._resolution.value = 24  # the "mesh grid" box asks for another mesh
    assert v.resolution == 24 and v.wait(WAIT) and v.mesh_updates >= 2
    assert v.error == "" and v.mesh_info["vertices"] > 100
    classes = v.mesh_info["classes"]
    assert 1 in classes and 18 in classes  # skin and hair
    hair = v.mesh_trace("hair")
    assert hair.x.dtype == np.float32 and hair.i.dtype == np.int32 and len(hair.i) > 0
    total = sum(len(v.mesh_trace(c).i) for c in range(1, 20))
    assert total == v.mesh_info["faces"]

    assert hair.visible is True
    assert v.toggle("hair") is False
    assert v.mesh_trace("hair").visible is False and 18 not in v.visible_classes
    v._toggles[1].value = False  # the skin checkbox
    assert v.mesh_trace("skin").visible is False
    v.visible_classes = list(range(1, 20))
    assert v.mesh_trace("hair").visible is True and v._toggles[18].value is True

    v.slice_axis, v.slice_position, v.slice_class = "x", 0.25, "skin"
    assert v.wait(WAIT)
    s = v.slice_trace
    assert s.visible is True and np.allclose(s.x, 0.25) and s.surfacecolor.shape == (12, 12)
    assert 0.0 <= float(np.min(s.surfacecolor)) and float(np.max(s.surfacecolor)) <= 1.0
    assert s.colorbar.title.text == "P(skin)"
    v.show_slice = False
    assert v.slice_trace.visible is False

    ortho = np.array(v.frustum_trace.x, dtype=np.float32)
    v.camera = {"yaw": 40.0, "fov": 30.0}
    pts = v.frustum_lines()
    assert not np.array_equal(np.array(v.frustum_trace.x, dtype=np.float32), ortho)
    eye = pipe.camera(40.0, fov=30.0).position[0].numpy()
    assert np.isclose(np.linalg.norm(eye - np.array([0.0, 0.1, 0.0])), pipe.default_camera["radius"], atol=1e-5)
    assert np.any(np.all(np.isclose(pts, eye, atol=1e-5), axis=1))  # the apex is the camera centre

    # a 100k-vertex mesh goes in as one batch update of float32/int32 arrays
    rng = np.random.default_rng(0)
    big_v = rng.normal(size=(100_000, 3)).astype(np.float32)
    big_f = rng.integers(0, 100_000, size=(200_000, 3)).astype(np.int32)
    big_l = rng.integers(1, 20, size=100_000)
    v.show_mesh(big_v, big_f, big_l)
    assert sum(len(v.mesh_trace(c).i) for c in range(1, 20)) == 200_000


# --------------------------------------------------------------------------------------- mixer
def test_region_style_mixer(pipe, make):
    m = make(RegionStyleMixer, pipe)
    assert m.wait(WAIT)
    view = m.portrait
    code = view.get_geometry()
    assert_same_image(shown(view), pipe(geometry=code, texture=(0, 1), region_mix=m.mix).array)
    before = bytes(view.image.value)
    counts = (view.updates, view.full_updates)
    m._sliders["hair"].value = 1.0  # the hair slider
    assert m.mix["hair"] == 1.0
    assert m.wait(WAIT)
    assert bytes(view.image.value) != before
    assert_same_image(shown(view), pipe(geometry=code, texture=(0, 1), region_mix={"hair": 1.0}).array)
    # texture-only changes reuse the label map: one full render, no preview
    assert (view.updates - counts[0], view.full_updates - counts[1]) == (1, 1)

    assert m.reseed("background") == 2
    assert m.style_b == 2 and m.mix["background"] == 1.0 and m.mix["hair"] == 1.0
    m.truncation = 0.4
    m.style_a = 3
    assert m.wait(WAIT)
    want = pipe(geometry=code, texture=(3, 2), region_mix={"hair": 1.0, "background": 1.0}, truncation=0.4)
    assert_same_image(shown(view), want.array)
    m.set_all(0.5)
    assert set(m.mix.values()) == {0.5} and m._sliders["complexion"].value == 0.5
    m.style_a, m.style_b = 5, 4
    assert m.reseed("hair") == 6  # skips style A's seed
    with pytest.raises(Exception, match="unknown style group"):
        m.mix = {"nose": 1.0}


# --------------------------------------------------------------------------------------- painter
def test_segmap_painter_tools(pipe, make):
    p = make(SegmapPainter, pipe)
    assert p.wait(WAIT)
    assert p.segmap.shape == (32, 32) and not p.segmap.any() and not p.can_undo
    v0 = p.version

    p.brush_size = 5
    p.paint_at(10.5, 10.5, label=18)  # canvas pixel coordinates: (10.5, 10.5) is the centre of pixel [10, 10]
    seg = p.segmap
    assert seg[10, 10] == 18 and seg[10, 12] == 18 and seg[12, 10] == 18 and seg[10, 13] == 0 and seg[0, 0] == 0
    assert int((seg == 18).sum()) == 21  # a disc of diameter 5
    assert p.version == v0 + 1
    p.stroke([(2, 28), (28, 28)], label=17)
    assert (p.segmap[28, 3:28] == 17).all()
    assert p.undo() and np.array_equal(p.segmap, seg)

    # the canvas' mouse events do the same as stroke()
    p.label = 1
    p._on_mouse_down(20, 5)
    p._on_mouse_move(25, 5)
    p._on_mouse_up(25, 5)
    mouse = p.segmap
    p.undo()
    p.stroke([(20, 5), (25, 5)], label=1)
    assert np.array_equal(p.segmap, mouse)

    from skimage.measure import label as components

    regions = components(mouse == 0, connectivity=1, background=-1)
    filled = p.fill_at(0, 0, label=1)  # the background around the two blobs (4-connected)
    assert filled == int((regions == regions[0, 0]).sum()) > 0
    after_fill = p.segmap
    assert (after_fill[seg == 18] == 18).all() and after_fill[0, 0] == 1 and after_fill[31, 31] == 1
    assert p.fill_at(0, 0, label=1) == 0  # same class: nothing to fill
    p.clear()
    assert not p.segmap.any()
    assert p.undo() and np.array_equal(p.segmap, after_fill)

    # loading: ids, a palette-coloured PNG, and the rendering of a geometry
    target = pipe.render_segmap(3).labels[0].numpy().astype(np.uint8)
    p.load_segmap(target)
    assert np.array_equal(p.segmap, target)
    p.clear()
    buf = io.BytesIO()
    Image.fromarray(colorize(target, "sof20")).save(buf, format="PNG")
    p.load_segmap(buf.getvalue())
    assert np.array_equal(p.segmap, target)
    p.clear()
    p._on_upload(type("Change", (), {"new": ({"name": "map.png", "content": memoryview(buf.getvalue())},)})())
    assert np.array_equal(p.segmap, target) and p.error == ""
    p._on_upload(type("Change", (), {"new": ({"name": "bad.png", "content": b"not an image"},)})())
    assert "Error" in p.error and "sofgan-lab-error" in p.status.value  # shown, not raised

    p.geometry = [float(v) for v in pipe.geometry_code(5)[0]]
    p.camera = {"yaw": 20.0}
    p.load_from_geometry()
    assert p.wait(WAIT)
    want = pipe.render_segmap(5, {"yaw": 20.0}).labels[0].numpy().astype(np.uint8)
    assert np.array_equal(p.segmap, want)
    assert_same_image(shown(p.portrait), pipe.from_segmap(want, texture=0).array)

    p.paint_at(16, 16, label=8)  # the portrait follows the paint
    p.texture = 4
    assert p.wait(WAIT)
    assert_same_image(shown(p.portrait), pipe.from_segmap(p.segmap, texture=4).array)
    with pytest.raises(ValueError, match="label"):
        p.paint_at(1, 1, label=20)


# --------------------------------------------------------------------------------------- dashboard
def test_explorer_links_sampler_sliders_camera_mixer_portrait(pipe, make):
    e = make(Explorer, pipe, viewer=False, metrics=False)
    assert e.wait(WAIT)
    assert e.portrait.geometry == e.sliders.code
    e.sampler.select(3)
    assert e.sliders.base == e.sampler.selected == [float(v) for v in pipe.space.sample(8, seed=0)[3]]
    e.sliders.set_amount("pc2", -1.0)
    e.camera.yaw = 15.0
    e.mixer.set_weight("hair", 1.0)
    e.mixer.truncation = 0.5
    assert e.wait(WAIT)
    assert e.portrait.geometry == e.sliders.code
    assert e.portrait.camera["yaw"] == 15.0 and e.sampler.camera["yaw"] == 15.0
    assert e.painter.geometry == e.sliders.code and e.painter.truncation == 0.5
    want = pipe(geometry=e.sliders.get_code(), texture=(0, 1), camera={"yaw": 15.0}, region_mix={"hair": 1.0},
                truncation=0.5)
    assert_same_image(shown(e.portrait), want.array)
    assert [e.tabs.get_title(i) for i in range(len(e.tabs.children))] == ["sample", "edit", "camera", "style", "paint"]


def test_explorer_default_has_every_tab_and_links_the_viewer(pipe, make):
    e = make(Explorer, pipe)
    assert [e.tabs.get_title(i) for i in range(len(e.tabs.children))] == [
        "sample", "edit", "camera", "style", "paint", "3D", "metrics"]
    import plotly.graph_objects as go

    def figures() -> int:  # plotly figures in the explorer's widget tree
        stack, n = [e], 0
        while stack:
            w = stack.pop()
            n += isinstance(w, go.FigureWidget)
            stack.extend(getattr(w, "children", None) or ())
        return n

    assert figures() == 0, "the 3D viewer's plotly figure was built before its tab opened"
    e.tabs.selected_index = 5
    assert figures() == 1 and e.tabs.children[5].children == (e.viewer,)
    e.tabs.selected_index = 0
    e.tabs.selected_index = 5
    assert figures() == 1, "reopening the 3D tab built a second viewer"
    e.viewer.resolution = 16
    e.camera.camera = {"yaw": -20.0, "fov": 35.0}
    e.sliders.set_amount("pc1", 1.0)
    assert e.wait(WAIT)
    assert e.viewer.geometry == e.sliders.code and e.viewer.camera["yaw"] == -20.0
    assert e.viewer.error == "" and e.viewer.mesh_info["vertices"] > 0
    e.close()
    assert all(not r.thread_alive for p in e._panels for r in p.renderers)


def test_explorer_confines_the_camera_and_shows_the_note(framed_pipe, make):
    pipe = framed_pipe
    e = make(Explorer, pipe, viewer=False, metrics=False)
    lo, hi = pipe.pose_range["yaw"]
    assert e.camera.free_camera is False and (e.camera._yaw.min, e.camera._yaw.max) == (lo, hi)
    assert e.portrait.camera == pipe.default_camera and e.camera.camera["zoom"] == 2.0
    assert e.pose_note in e.children[0].children[1].children  # under the shared portrait
    assert not visible(e.pose_note)
    e.camera.yaw = 80.0
    assert e.camera.yaw == hi and not visible(e.pose_note)
    e.camera.free_camera = True
    e.camera.yaw = 80.0
    assert visible(e.pose_note) and "outside the poses the model was trained on" in e.pose_note.value
    assert e.wait(WAIT), e.error
    assert e.portrait.camera["yaw"] == 80.0 and e.sampler.camera["yaw"] == 80.0
    assert e.sampler.camera["zoom"] == 2.0 and e.painter.camera["target"] == [0.0, 0.47, 0.0]
    assert_same_image(shown(e.portrait), pipe(geometry=e.sliders.get_code(), camera={"yaw": 80.0},
                                               **e.mixer.pipeline_kwargs()).array)
    e.camera.free_camera = False
    assert e.camera.yaw == hi and not visible(e.pose_note)


def test_public_names_are_exported():
    import sofgan_lab.widgets as widgets

    for name in widgets.__all__:
        assert getattr(widgets, name) is not None
    assert {"GeometrySampler", "AttributeSliders", "SOFViewer3D", "CameraControl", "RegionStyleMixer",
            "SegmapPainter", "MetricTable", "Explorer"} <= set(widgets.__all__)
    with pytest.raises(AttributeError):
        widgets.NoSuchWidget  # noqa: B018


def test_metric_table_runs_metrics_with_progress(pipe, make):
    mt = make(MetricTable, pipe, n=2, pretrained_backbone=False)
    mt.run()
    assert mt.wait(WAIT), mt.error
    assert mt.error == "" and mt.progress.value == 1 and mt.completed == 1
    assert "LPIPS" in mt.output.value and "SofGAN" in mt.output.value
    assert list(mt.table.columns) == ["LPIPS (alex)"]
    bars = [t for t in mt.figure.data if t.type == "bar"]  # the bar chart of the same results
    assert mt._plot_box.children == (mt.figure,) and len(bars) == 1
    assert bars[0].y[0] == pytest.approx(mt.results[0].value) and bars[0].marker.pattern.shape == "/"
    mt.metrics = []
    mt.run()
    assert mt.wait(WAIT)
    assert "choose at least one metric" in mt.error


def test_a_closed_widget_ignores_changes(pipe, make):
    m = make(RegionStyleMixer, pipe)
    assert m.wait(WAIT)
    m.close()
    m.portrait.close()
    m.truncation = 0.3  # drives the closed portrait: nothing happens, nothing raises
    assert m.portrait.request() == 0 and m.wait(WAIT)


# --------------------------------------------------------------------------------------- layout (headless)
# The browser checks the layout itself (tests/test_browser.py); these pin the layout settings it
# rests on and the behaviour behind them, without a browser.
def test_attribute_sliders_filter_sections_and_scroll_box(pipe, make):
    s = make(AttributeSliders, pipe, portrait=False, max_height="300px")
    assert len(s.directions) > 20  # 6 PCs + every attribute: the case that pushed the portrait away
    assert s.scroll.layout.max_height == "300px" and s.scroll.layout.overflow == "hidden auto"
    heads = [h.value for h, _, _ in s._sections]
    assert heads == ["<b>principal components</b>", "<b>attributes</b>"]
    assert all("auto-fill" in box.layout.grid_template_columns for _, box, _ in s._sections)
    assert s.shown_directions == s.directions and "sliders" in s._count.value

    s._filter.value = "HAIR"  # typing in the filter box: case-insensitive, labels ("pc5 · … hair_volume") too
    want = tuple(d for d in s.directions if "hair" in s.labels[d].lower())
    assert s.filter == "HAIR" and s.shown_directions == want and "hair_length" in want
    for d in s.directions:
        assert visible(s._cells[d]) == (d in want), d
    pcs_shown = any(d.startswith("pc") for d in want)
    assert visible(s._sections[0][0]) == pcs_shown and visible(s._sections[1][0])
    assert f"{len(want)} of {len(s.directions)} sliders" in s._count.value

    s.filter = "no such direction"
    assert s.shown_directions == () and visible(s._no_match)
    assert not any(visible(head) for head, _, _ in s._sections)
    s.filter = ""
    assert all(visible(c) for c in s._cells.values()) and not visible(s._no_match)
    s.set_amount("smile", 1.0)  # the filter hides sliders, it never changes the edit
    s.filter = "pc"
    assert s.amounts["smile"] == 1.0


def test_portrait_view_squares_and_segmap_toggle(pipe, make):
    v = make(PortraitView, pipe, display_size=200)
    for img in (v.image, v.segmap_image):
        lay = img.layout
        assert (lay.width, lay.height, lay.min_width, lay.flex, lay.object_fit) == ("200px", "200px", "200px",
                                                                                     "0 0 auto", "contain")
    assert visible(v.image) and visible(v.segmap_image) and not visible(v.view_toggle)  # beside
    assert v.needed_width == 2 * 204 + 8
    v.segmap_toggle = True
    assert visible(v.view_toggle) and visible(v.image) and not visible(v.segmap_image)
    assert v.needed_width == 204 + 8
    v.view_toggle.value = "segmap"  # the toggle button
    assert v.shown == "segmap" and visible(v.segmap_image) and not visible(v.image)
    assert v.wait(WAIT) and np.array_equal(decode_image(v.segmap_image.value), colorize(v.result.segmap, "sof20"))
    v.show_segmap = False
    assert not visible(v.view_toggle) and visible(v.image) and not visible(v.segmap_image)
    with pytest.raises(ValueError, match="display_size"):
        PortraitView(pipe, display_size=True)


def test_portrait_view_depth_and_normal_views(pipe, make):
    from sofgan_lab.geometry.views import depth_image, normal_image

    v = make(PortraitView, pipe, display_size=200, segmap_toggle=True, debounce=FAST)
    assert list(v.view_toggle.options) == ["portrait", "segmap", "depth", "normals"]
    assert v.wait(WAIT)
    portrait = shown(v)
    v.view_toggle.value = "depth"
    assert visible(v.surface_image) and not visible(v.image) and not visible(v.segmap_image)
    r = v.result
    depth = decode_image(v.surface_image.value)
    # the depth of the geometry shown, from the renderer's own surface (the same as a direct render)
    want = pipe(geometry=np.array(v.geometry, np.float32), texture=v.texture, camera=pipe.camera(**{
        k: v.camera[k] for k in ("yaw", "pitch")}))
    np.testing.assert_array_equal(depth, depth_image(want.depth, want.segmap))
    fg = r.segmap != 0
    assert fg.mean() > 0.1 and depth[fg, 0].std() > 20 and (depth[~fg] == 0).all()  # visible relief
    v.view_toggle.value = "normals"
    normals = decode_image(v.surface_image.value)
    np.testing.assert_array_equal(normals, normal_image(r.points, r.segmap, r.camera))
    assert np.abs(normals.astype(int) - depth.astype(int))[fg].mean() > 30      # a different picture
    assert np.abs(normals.astype(int) - portrait.astype(int))[fg].mean() > 30
    # a camera change re-renders the view shown (camera-frame normals of a turned head: the outline
    # moves, a sphere's normals would not)
    v.camera = {**v.camera, "yaw": 25.0}
    assert v.wait(WAIT) and v.result.request.camera["yaw"] == 25.0
    turned = decode_image(v.surface_image.value)
    cam = pipe.camera(yaw=25.0, pitch=v.camera["pitch"])
    want = pipe(geometry=np.array(v.geometry, np.float32), texture=v.texture, camera=cam)
    np.testing.assert_array_equal(turned, np.asarray(want.normal_image()))
    assert (np.abs(turned.astype(int) - normals.astype(int)).max(-1) > 40).mean() > 0.005
    # a given segmap has no surface: the view says so instead of showing a stale one
    v.segmap = r.segmap.copy()
    assert v.wait(WAIT) and v.result.depth is None
    assert "no normals view" in v.status.value and decode_image(v.surface_image.value).max() == 0
    v.view_toggle.value = "portrait"
    assert visible(v.image) and not visible(v.surface_image)


def test_panels_with_their_own_portrait_keep_its_width(pipe, make):
    s = make(AttributeSliders, pipe, n_components=2, attributes=["smile"])
    assert s.layout.min_width == f"{s.portrait.needed_width}px"
    shared = make(PortraitView, pipe)
    t = make(AttributeSliders, pipe, n_components=2, attributes=["smile"], portrait=shared)
    assert not t.layout.min_width  # a shared portrait lives elsewhere
    g = make(GeometrySampler, pipe, n=4, thumb_size=16, portrait=False)
    rows = [c for c in g.children if isinstance(c, __import__("ipywidgets").HBox)]
    assert rows and all(r.layout.flex_flow == "row wrap" for r in rows)  # the controls wrap, never cut off


def test_painter_drives_a_shared_portrait_only_while_active(pipe, make):
    view = make(PortraitView, pipe)
    assert view.wait(WAIT)
    geometry_image = shown(view)
    p = make(SegmapPainter, pipe, portrait=view, active=False)
    assert view.segmap is None and p.portrait is view  # inactive: the view keeps its geometry
    p.clear(1)
    assert view.segmap is None
    p.active = True
    assert np.array_equal(view.segmap, p.segmap)
    p.paint_at(10, 10, label=19)
    assert np.array_equal(view.segmap, p.segmap)
    assert p.wait(WAIT) and view.wait(WAIT)
    assert_same_image(shown(view), pipe.from_segmap(p.segmap, texture=view.texture, truncation=view.truncation).array)
    p.texture = 5  # a shared view's texture is its other controls' business
    assert view.texture == 0
    p.active = False
    assert view.segmap is None and view.wait(WAIT)
    assert_same_image(shown(view), geometry_image)
    own = make(SegmapPainter, pipe, active=False)  # an own portrait always follows the paint
    own.clear(1)
    assert np.array_equal(own.portrait.segmap, own.segmap)


def test_explorer_layout_and_paint_tab_hand_over_the_portrait(pipe, make):
    e = make(Explorer, pipe, viewer=False, metrics=False, display_size=300, tab_width=500)
    assert e.children == (e.main,) and e.main.children == (e.tabs, e.side)
    assert e.main.layout.flex_flow == "row wrap"  # narrow containers stack instead of clipping
    assert e.tabs.layout.flex == "0 1 500px" and e.tabs.layout.width == "500px"
    assert (e.side.layout.flex, e.side.layout.width, e.side.layout.min_width) == ("0 0 auto", "316px", "316px")
    assert e.portrait.segmap_toggle and e.portrait.image.layout.width == "300px"
    assert e.painter.portrait is e.portrait and not e.painter.active
    assert all(isinstance(c, PortraitView) is False for c in e.painter.children[1].children)  # no second portrait
    assert e.wait(WAIT)
    geometry_image = shown(e.portrait)

    e.tabs.selected_index = 4  # the paint tab: the current geometry is loaded onto the canvas first
    assert e.tabs.titles[4] == "paint" and e.wait(WAIT)
    assert e.painter.active and visible(e.paint_note) and e.painter.version == 1
    assert np.array_equal(e.portrait.segmap, e.painter.segmap)
    assert_same_image(shown(e.portrait), geometry_image)  # what was shown, now paintable
    e.painter.stroke([(2, 3), (12, 3)], label=19)
    assert e.wait(WAIT)
    assert np.array_equal(e.portrait.segmap, e.painter.segmap)
    assert not np.array_equal(shown(e.portrait), geometry_image)
    e.tabs.selected_index = 1  # any other tab: the geometry again
    assert e.wait(WAIT)
    assert not e.painter.active and not visible(e.paint_note) and e.portrait.segmap is None
    assert_same_image(shown(e.portrait), geometry_image)
    e.tabs.selected_index = 4  # back: the paint is still there (no reload)
    assert e.wait(WAIT) and e.painter.version > 1 and np.array_equal(e.portrait.segmap, e.painter.segmap)
    with pytest.raises(ValueError, match="tab_width"):
        Explorer(pipe, viewer=False, metrics=False, tab_width=10)


# --------------------------------------------------------------------------------------- drag to orbit
def _msg(surface, **content):
    """What the front end sends (``model.send``), delivered the way the comm delivers it."""
    surface._on_message(surface, content, [])


def test_camera_sliders_ignore_the_browsers_echoes(pipe, make):
    """The browser sends back each value the kernel gives a slider, a few ulps off: neither that
    echo nor a late echo of an older value (arriving after a newer drag) moves the camera."""
    cc = make(CameraControl, pipe, portrait=False)
    seen = []
    cc.observe(lambda ch: seen.append(ch.new["yaw"]), "camera")
    cc.orbit_by(1.2, 0.0)
    cc.orbit_by(1.2, 0.0)                                   # the kernel moves the pose: 1.2, then 2.4
    assert cc._yaw.value == pytest.approx(2.4) and len(seen) == 2
    cc._yaw.set_state({"value": cc.yaw + 3e-15})            # what the browser sends back for 2.4
    cc._yaw.set_state({"value": 1.2000000000000028})        # ... and, late, for 1.2
    assert cc.yaw == pytest.approx(2.4) and len(seen) == 2, seen
    assert cc._yaw.value == pytest.approx(2.4)              # the slider is given the pose again
    cc._yaw.set_state({"value": 1.2000000000000028})        # a second time: only one echo per value sent
    assert cc.yaw == pytest.approx(1.2)
    cc._yaw.set_state({"value": 2.4})                       # the user goes back to a value the kernel sent
    assert cc.yaw == 2.4 and len(seen) == 4
    cc._yaw.set_state({"value": 10.0})                      # the user moves the slider: that counts
    assert cc.yaw == 10.0 and seen[-1] == 10.0 and len(seen) == 5
    cc._yaw.set_state({"value": 500.0})                     # clamped into the trained range, shown clamped
    assert cc.yaw == pytest.approx(pipe.pose_range["yaw"][1]) and cc._yaw.value == pytest.approx(cc.yaw)


def test_orbit_surface_paces_preview_frames_and_never_holds_a_full_one():
    from sofgan_lab.widgets.orbit import OrbitSurface

    s = OrbitSurface(size=64)
    try:
        assert s.show(b"a", "jpeg", seq=1, preview=True) and s.show(b"b", "jpeg", seq=2, preview=True)
        assert s.in_flight == 2 and s.frame == b"b" and s.frame_format == "jpeg" and s.frame_seq == 2
        assert not s.show(b"c", "jpeg", seq=3, preview=True)       # two in flight: waits
        assert not s.show(b"d", "jpeg", seq=4, preview=True)       # ... the newest waiting one wins
        assert s.frame == b"b" and s.held == 2
        _msg(s, kind="shown", id=1)                                 # a slot frees: the waiting frame goes
        assert s.frame == b"d" and s.frame_seq == 4 and s.frame_id == 3 and s.in_flight == 2
        _msg(s, kind="shown", id=3)
        assert s.in_flight == 0
        for i in range(2):
            s.show(b"p", "jpeg", preview=True)
        assert s.show(b"full", "png", seq=9)                        # full quality: never held
        assert s.frame == b"full" and s.frame_format == "png"
        with pytest.raises(ValueError, match="fmt: expected 'jpeg' or 'png'"):
            s.show(b"x", "gif")
        _msg(s, kind="bogus")                                       # unknown messages are ignored
        _msg(s, kind="shown", id="x")                               # ... and bad ones do not raise
    finally:
        s.close()


def test_dragging_the_explorer_portrait_orbits_inside_the_trained_range(pipe, make):
    e = make(Explorer, pipe, viewer=False, metrics=False, debounce=FAST)
    s = e.portrait.orbit_surface
    assert s is not None and e.portrait.wait(WAIT)
    assert s.frame_format == "png" and np.array_equal(decode_image(s.frame), shown(e.portrait))
    start = e.portrait.result.segmap.copy()
    e.tabs.selected_index = 2                                       # the camera tab: the sampler rests
    _msg(s, kind="start")
    assert s.dragging
    _msg(s, kind="drag", dx=60, dy=0, seq=1)                        # 60 px right: +18 degrees of yaw
    assert e.camera.yaw == pytest.approx(60 * s.degrees_per_pixel)
    assert e.portrait.camera["yaw"] == pytest.approx(18.0) and e.state["camera"]["yaw"] == pytest.approx(18.0)
    _msg(s, kind="drag", dx=400, dy=-100, seq=2)                    # far past the range: clamped
    lo, hi = pipe.pose_range["yaw"]
    plo, phi = pipe.pose_range["pitch"]
    assert e.camera.yaw == pytest.approx(hi) and e.camera.pitch == pytest.approx(phi)
    assert e.camera.in_trained_range
    told = []
    s.send = lambda content, buffers=None: told.append(content)   # what goes to the front end
    _msg(s, kind="drag", dx=50, dy=0, seq=7)                        # already at the edge: no change, no frame
    assert told == [{"kind": "still", "seq": 7}] and e.camera.yaw == pytest.approx(hi)
    del s.send
    _msg(s, kind="end", seq=2)
    assert not s.dragging and e.portrait.wait(WAIT)
    # the full-quality PNG of the final pose, showing drag 2, equal to a direct render
    assert s.frame_format == "png" and s.frame_seq == 2
    want = pipe(geometry=np.array(e.sliders.code, np.float32), texture=e.mixer.style_a,
                camera=pipe.camera(hi, phi), truncation=e.mixer.truncation)
    assert_same_image(decode_image(s.frame), want.array)
    assert (e.portrait.result.segmap != start).mean() > 0.02        # the head turned (32 px: a small head)
    assert e.sampler.camera.get("yaw", 0.0) == 0.0                  # no thumbnails re-rendered meanwhile
    e.tabs.selected_index = 0                                       # ... until the sample tab opens again
    assert e.sampler.camera["yaw"] == pytest.approx(hi) and e.wait(WAIT)
    # freed, a drag leaves the range (and the note says so)
    e.camera.free_camera = True
    _msg(s, kind="start")
    _msg(s, kind="drag", dx=300, dy=0, seq=3)
    assert e.camera.yaw == pytest.approx(hi + 90.0) and not e.camera.in_trained_range
    _msg(s, kind="end", seq=3)
    assert e.portrait.wait(WAIT)
    # on the sample tab the thumbnails wait for the release (no 8 renders per frame of a drag)
    e.camera.free_camera = False
    assert e.wait(WAIT) and e.tabs.selected_index == 0
    before = dict(e.sampler.camera)
    _msg(s, kind="start")
    _msg(s, kind="drag", dx=-100, dy=0, seq=4)
    assert e.portrait.camera["yaw"] == pytest.approx(hi - 30.0) and e.sampler.camera == before
    _msg(s, kind="end", seq=4)
    assert e.sampler.camera["yaw"] == pytest.approx(hi - 30.0) and e.wait(WAIT)


def test_drag_previews_stream_as_jpeg(pipe, make):
    import time

    v = make(PortraitView, pipe, orbit=True, debounce=1.0)
    s = v.orbit_surface
    assert v.wait(WAIT)
    _msg(s, kind="shown", id=s.frame_id)                            # the browser showed the first frames
    _msg(s, kind="start")
    _msg(s, kind="drag", dx=20, dy=10, seq=5)
    deadline = time.monotonic() + WAIT
    while s.frame_seq != 5 and time.monotonic() < deadline:        # the preview, before the 1 s debounce
        time.sleep(0.01)
    assert s.frame_format == "jpeg" and s.frame_seq == 5 and s.frame[:2] == b"\xff\xd8"
    assert v.camera["yaw"] == pytest.approx(6.0) and v.camera["pitch"] == pytest.approx(-3.0)
    # a drag frame textures a label map of a quarter of the side (16x fewer rays), enlarged smoothly
    from sofgan_lab.widgets._render import orbit_camera

    size = pipe.image_size
    small = pipe.label_surface(v.geometry, orbit_camera(pipe, v.camera, max(8, round(size * v.drag_scale))))
    assert v.result.preview and v.result.request.dragging
    assert np.array_equal(v.result.segmap, small.upsampled(size, smooth=True).segmap)
    _msg(s, kind="end", seq=5)
    assert v.wait(WAIT) and s.frame_format == "png"
    _msg(s, kind="drag", dx=float("nan"), dy=0, seq=6)              # a bad message: an error line, no crash
    assert "d_yaw" in v.status.value or "finite" in v.error
