"""Exports (``sofgan_lab.applications.export`` and the explorer's export buttons, issue 18 item 3):

* the SOF mesh as PLY / OBJ / GLB through trimesh: ``trimesh.load`` gives back the vertices and faces
  of ``extract_mesh`` and, per vertex, the SOF-20 palette colour of its class (PLY and GLB also keep
  the class ids; OBJ keeps the colours but has no place for ids); bad suffixes and formats fail in
  one line naming ``path`` / ``format``; no temporary files are left;
* a portrait as ``name.png`` + ``name_segmap.png`` (pixels equal, atomic, checked arguments);
* the turntable of a state: frame 0 is the portrait of that state, the yaw swings and loops, a
  region-restricted edit is honoured, and the written MP4 / GIF has the frames asked for;
* the explorer: *PNG* writes exactly the portrait and segmap it shows, *video* and *mesh* (buttons,
  on their threads, and methods) write readable files into ``export_dir`` and link them in the status
  line; errors show there in one line.

The pipeline is the shipped demo SOF and space with the tiny 32-px SIW of ``_tiny.py``; meshes use a
24³ grid and videos 4 frames, so the whole file takes a few seconds.
"""
from __future__ import annotations

import gc
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

trimesh = pytest.importorskip("trimesh")

from sofgan_lab.applications import MESH_FORMATS, export_mesh, save_portrait, turntable  # noqa: E402
from sofgan_lab.applications.export import mesh_bytes, mesh_format  # noqa: E402
from sofgan_lab.geometry.space import restricted_edit  # noqa: E402
from sofgan_lab.geometry.volume import extract_mesh  # noqa: E402
from sofgan_lab.labels import SOF20_NAMES, SOF20_PALETTE, colorize  # noqa: E402
from _tiny import tiny_pipeline  # tests/_tiny.py  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")

RES = 24       # marching-cubes grid of the tests' meshes
FAST = 0.01    # debounce of the tests' widgets (seconds)
WAIT = 60.0    # generous timeout of every wait()


@pytest.fixture(scope="module")
def pipe():
    return tiny_pipeline()


@pytest.fixture(scope="module")
def mesh(pipe):
    """The reference: extract_mesh of geometry seed 1 on the tests' grid."""
    return extract_mesh(pipe.sof, pipe.geometry_code(1)[0], RES)


def _png(path) -> np.ndarray:
    with Image.open(path) as im:
        assert im.format == "PNG"
        return np.asarray(im.convert("RGB"))


def _single_geometry(loaded):
    """The one mesh of what ``trimesh.load`` returned (a GLB comes back as a Scene of one mesh)."""
    if isinstance(loaded, trimesh.Scene):
        assert len(loaded.geometry) == 1, loaded.geometry
        return next(iter(loaded.geometry.values()))
    return loaded


def _read_video(path) -> np.ndarray:
    """All frames of an MP4 / GIF with imageio, ``(T, H, W, 3)``. imageio's ffmpeg reader leaves the
    pipes of an exited ffmpeg to the garbage collector (a ResourceWarning), so that is silenced."""
    import imageio.v3 as iio

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        if str(path).endswith(".mp4"):
            frames = iio.imread(path, index=None, plugin="FFMPEG")
        else:
            frames = iio.imread(path, index=None)
        gc.collect()
    return np.asarray(frames)[..., :3]


# ------------------------------------------------------------------------------------ meshes
@pytest.mark.parametrize("fmt", MESH_FORMATS)
def test_mesh_loads_back_with_trimesh_with_palette_colours_per_vertex(pipe, mesh, fmt, tmp_path):
    path = export_mesh(pipe, 1, tmp_path / "sub" / f"head.{fmt}", resolution=RES)
    assert path == tmp_path / "sub" / f"head.{fmt}" and path.is_file()
    assert [p.name for p in path.parent.iterdir()] == [path.name]        # atomic: no temporary file left
    got = _single_geometry(trimesh.load(path))                           # trimesh's defaults (process=True)
    assert isinstance(got, trimesh.Trimesh)
    assert got.vertices.shape == (mesh.num_vertices, 3) and got.faces.shape == (mesh.num_faces, 3)
    np.testing.assert_allclose(got.vertices, mesh.vertices, rtol=0, atol=1e-6)   # OBJ prints 8 decimals
    assert np.array_equal(got.faces, mesh.faces)
    assert len(np.unique(mesh.labels)) >= 5                              # several classes: colours matter
    colours = np.asarray(got.visual.vertex_colors)
    assert colours.shape == (mesh.num_vertices, 4)
    assert np.array_equal(colours[:, :3], SOF20_PALETTE[mesh.labels])    # the palette colour of each class
    assert (colours[:, 3] == 255).all()


def test_ply_and_glb_keep_the_class_ids_obj_does_not(pipe, mesh, tmp_path):
    ply = trimesh.load(export_mesh(pipe, 1, tmp_path / "head.ply", resolution=RES))
    raw = ply.metadata["_ply_raw"]["vertex"]["data"]                     # trimesh keeps every PLY property here
    assert raw["label"].dtype == np.uint8 and np.array_equal(raw["label"], mesh.labels)

    glb = _single_geometry(trimesh.load(export_mesh(pipe, 1, tmp_path / "head.glb", resolution=RES)))
    assert np.array_equal(np.asarray(glb.vertex_attributes["_LABEL"]).reshape(-1), mesh.labels)
    assert glb.metadata["sofgan_lab"] == {"label_set": "sof20", "classes": list(SOF20_NAMES)}

    # OBJ: positions and the `v x y z r g b` colours only (tested above); no per-vertex ids in the format
    path = export_mesh(pipe, 1, tmp_path / "head.obj", resolution=RES)
    first_v = next(line for line in path.read_text().splitlines() if line.startswith("v "))
    assert len(first_v.split()) == 7                                     # v x y z r g b
    obj = trimesh.load(path)
    assert "label" not in obj.vertex_attributes and "_LABEL" not in obj.vertex_attributes


def test_mesh_of_a_code_and_of_a_bare_sof_equal_the_seed_mesh(pipe, mesh, tmp_path):
    code = pipe.geometry_code(1)[0]
    a = export_mesh(pipe.sof, code, tmp_path / "a.ply", resolution=RES).read_bytes()
    b = export_mesh(pipe, code.tolist(), tmp_path / "b.ply", resolution=RES).read_bytes()
    assert a == b == mesh_bytes(mesh, "ply")
    with pytest.raises(ValueError, match=r"^geometry: a seed needs a pipeline"):
        export_mesh(pipe.sof, 1, tmp_path / "c.ply", resolution=RES)


def test_format_argument_and_bad_names_fail_in_one_line(pipe, tmp_path):
    assert mesh_format("x.GLB") == (Path("x.GLB"), "glb")
    assert mesh_format("x", "PLY") == (Path("x.ply"), "ply")
    p = export_mesh(pipe, 1, tmp_path / "noext", resolution=RES, format="obj")
    assert p == tmp_path / "noext.obj" and _single_geometry(trimesh.load(p)).faces.shape[1] == 3
    cases = [((tmp_path / "head.stl", None), r"^path: expected a mesh file name ending in \.ply, \.obj, \.glb, "
                                              r"got 'head\.stl'$"),
             ((tmp_path / "head", None), r"^path: expected a mesh file name"),
             ((tmp_path / "head.ply", "stl"), r"^format: expected one of \['ply', 'obj', 'glb'\]"),
             ((tmp_path / "head.ply", "glb"), r"^path: suffix '\.ply' of 'head\.ply' disagrees with format 'glb'$")]
    for (path, fmt), pattern in cases:
        with pytest.raises(ValueError, match=pattern) as info:
            export_mesh(pipe, 1, path, resolution=RES, format=fmt)
        assert "\n" not in str(info.value)
    with pytest.raises(TypeError, match=r"^path: expected a file path"):
        export_mesh(pipe, 1, 3, resolution=RES)
    with pytest.raises(TypeError, match=r"^pipe_or_sof: expected a SofGAN pipeline"):
        export_mesh(object(), 1, tmp_path / "x.ply")
    with pytest.raises(ValueError, match=r"^resolution: "):
        export_mesh(pipe, 1, tmp_path / "x.ply", resolution=1)
    assert list(tmp_path.iterdir()) == [tmp_path / "noext.obj"]          # nothing written by a failed call


# ------------------------------------------------------------------------------------ pictures
def test_save_portrait_writes_the_image_and_its_coloured_segmap(pipe, tmp_path):
    p = pipe(geometry=1, texture=2, camera={"yaw": 15})
    paths = save_portrait(p, tmp_path / "out" / "me.png")
    assert paths == [tmp_path / "out" / "me.png", tmp_path / "out" / "me_segmap.png"]
    assert sorted(x.name for x in (tmp_path / "out").iterdir()) == ["me.png", "me_segmap.png"]
    assert np.array_equal(_png(paths[0]), p.array)
    assert np.array_equal(_png(paths[1]), colorize(p.segmap, "sof20"))
    assert p.save(tmp_path / "only.png", segmap=False) == [tmp_path / "only.png"]
    assert np.array_equal(_png(tmp_path / "only.png"), p.array)
    # a bare image (array, PIL or tensor) with an optional SOF-20 label map
    raw = save_portrait(p.array, tmp_path / "raw.png", segmap=torch.from_numpy(p.segmap.astype(np.int64)))
    assert np.array_equal(_png(raw[0]), p.array) and np.array_equal(_png(raw[1]), colorize(p.segmap))
    assert save_portrait(p.image, tmp_path / "pil.png") == [tmp_path / "pil.png"]
    assert np.array_equal(_png(tmp_path / "pil.png"), p.array)
    save_portrait(p.tensor, tmp_path / "tensor.png")
    assert np.array_equal(_png(tmp_path / "tensor.png"), p.array)


def test_save_portrait_bad_arguments_fail_in_one_line(pipe, tmp_path):
    p = pipe(geometry=1, texture=2)
    with pytest.raises(ValueError, match=r"^path: expected a \.png file name, got '.*me\.jpg'$"):
        save_portrait(p, tmp_path / "me.jpg")
    with pytest.raises(ValueError, match=r"^portrait: expected a Portrait"):
        save_portrait(np.zeros((4, 4), np.uint8), tmp_path / "a.png")
    with pytest.raises(ValueError, match=r"^segmap: "):
        save_portrait(p.array, tmp_path / "a.png", segmap=np.full((4, 4), 99, np.int64))
    with pytest.raises(TypeError, match=r"^segmap: expected None, False or a SOF-20 label map"):
        save_portrait(p, tmp_path / "a.png", segmap="yes")
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------------ turntable
def test_turntable_starts_at_the_state_swings_and_loops(pipe, tmp_path):
    cam = {"yaw": 12.0, "pitch": 5.0}
    t = turntable(pipe, 1, (2, 3), camera=cam, region_mix={"hair": 1.0}, frames=4)
    assert len(t) == 4 and t.images.shape == (4, 32, 32, 3) and t.info["kind"] == "turntable"
    p = pipe(geometry=1, texture=(2, 3), camera=cam, region_mix={"hair": 1.0})
    assert np.abs(t[0].astype(int) - p.array).max() <= 1                 # frame 0 is the state's portrait
    assert np.array_equal(t.segmaps[0], p.segmap)
    lo, hi = pipe.pose_range["yaw"]
    yaw = t.info["yaw"]
    assert yaw[0] == 12.0 and lo - 1e-9 <= yaw.min() and yaw.max() <= hi + 1e-9
    assert (t.info["pitch"] == 5.0).all() and len(set(np.round(yaw, 6))) == 4   # no repeated end frame
    long = turntable(pipe, 1, 2, camera=cam, frames=24).info["yaw"]       # a smooth swing over the whole range
    assert long[0] == 12.0 and long.max() == pytest.approx(hi, abs=0.5) and long.min() == pytest.approx(lo, abs=0.5)
    assert np.abs(np.diff(np.r_[long, long[0]])).max() < 10               # and back to the start: it loops
    # a start outside the range widens the swing to take it in
    wide = turntable(pipe, 1, 2, camera={"yaw": 50.0}, frames=4)
    assert wide.info["yaw"][0] == 50.0 and wide.info["yaw"].max() == pytest.approx(50.0)
    with pytest.raises(ValueError, match=r"^frames: expected an integer >= 2"):
        turntable(pipe, 1, 2, frames=1)
    with pytest.raises(TypeError, match=r"^camera: expected orbit parameters"):
        turntable(pipe, 1, 2, camera=pipe.camera())


def test_turntable_of_a_restricted_edit(pipe):
    base, edited = pipe.geometry_code(1)[0], pipe.geometry_code(4)[0]
    t = turntable(pipe, edited, 2, frames=3, base=base, regions=["face"])
    want = restricted_edit(pipe.sof, base, edited, t.cameras[1], ["face"]).restricted[0].numpy()
    assert np.array_equal(t.segmaps[1], want)
    plain = turntable(pipe, edited, 2, frames=3)
    assert not np.array_equal(t.segmaps, plain.segmaps)                   # the restriction is honoured
    same = turntable(pipe, edited, 2, frames=3, base=edited)              # restricting a code to itself
    assert np.array_equal(same.segmaps, plain.segmaps)
    assert np.abs(same.images.astype(int) - plain.images).max() <= 1


@pytest.mark.parametrize("suffix", [".mp4", ".gif"])
def test_turntable_video_file_has_the_frames_asked_for(pipe, tmp_path, suffix):
    path = turntable(pipe, 1, 2, frames=4).save(tmp_path / f"turn{suffix}")
    frames = _read_video(path)
    assert frames.shape == (4, 32, 32, 3)


# ------------------------------------------------------------------------------------ explorer
@pytest.fixture
def explorer(pipe, tmp_path):
    pytest.importorskip("ipywidgets")
    pytest.importorskip("ipycanvas")
    from sofgan_lab.widgets import Explorer

    e = Explorer(pipe, viewer=False, metrics=False, debounce=FAST, export_dir=str(tmp_path / "exports"))
    assert e.wait(WAIT), e.error
    yield e
    e.close()


def _shown(e) -> tuple[np.ndarray, np.ndarray]:
    from sofgan_lab.widgets._render import decode_image

    assert e.wait(WAIT), e.error
    assert e.portrait.error == "", e.portrait.error
    return decode_image(e.portrait.image.value), decode_image(e.portrait.segmap_image.value)


def test_explorer_png_is_the_portrait_and_segmap_shown(explorer, tmp_path):
    e = explorer
    e.camera.camera = {**e.camera.camera, "yaw": 14.0}
    e.mixer.style_a = 5
    image, segmap = _shown(e)
    paths = e.export_png()
    d = tmp_path / "exports"
    assert paths == [d / "portrait-001.png", d / "portrait-001_segmap.png"]
    assert np.array_equal(_png(paths[0]), image)                          # pixel for pixel what is shown
    assert np.array_equal(_png(paths[1]), segmap)
    assert np.array_equal(_png(paths[1]), colorize(e.portrait.result.segmap, "sof20"))
    assert e.exports.written == [str(p) for p in paths]
    status = e.exports.status.value
    assert "portrait-001.png</a>" in status and "portrait-001_segmap.png</a>" in status and "<a href=" in status
    # the button does the same under the next free name; an explicit path is used as given
    e.exports.png_button.click()
    assert (d / "portrait-002.png").is_file() and (d / "portrait-002_segmap.png").is_file()
    assert e.export_png(tmp_path / "mine.png") == [tmp_path / "mine.png", tmp_path / "mine_segmap.png"]


def test_explorer_video_and_mesh_methods_write_readable_files(explorer, pipe, tmp_path):
    e = explorer
    e.camera.camera = {**e.camera.camera, "yaw": -10.0}
    _shown(e)
    video = e.export_video(frames=4)
    assert video == tmp_path / "exports" / "turntable-001.mp4"
    assert _read_video(video).shape == (4, 32, 32, 3)
    code = torch.tensor(e.sliders.code, dtype=torch.float32)
    want = extract_mesh(pipe.sof, code, RES)
    for fmt in MESH_FORMATS:
        path = e.export_mesh(format=fmt, resolution=RES)
        assert path == tmp_path / "exports" / f"mesh-001.{fmt}"
        got = _single_geometry(trimesh.load(path))
        assert got.vertices.shape == (want.num_vertices, 3) and got.faces.shape == (want.num_faces, 3)
        assert np.array_equal(np.asarray(got.visual.vertex_colors)[:, :3], want.colors)
    assert e.export_mesh(tmp_path / "m.ply", resolution=RES) == tmp_path / "m.ply"   # format from the suffix
    with pytest.raises(ValueError, match=r"^path: expected a mesh file name"):
        e.export_mesh(tmp_path / "m.stl", resolution=RES)


def test_explorer_buttons_run_on_threads_and_show_links_or_one_line_errors(explorer, tmp_path):
    e = explorer
    ex = e.exports
    ex.mesh_resolution = RES
    ex.video_frames = 3
    ex.format.value = "ply"                                               # the drop-down sets the format
    assert ex.mesh_format == "ply"
    ex.mesh_button.click()
    assert e.wait(WAIT), e.error
    assert ex.written == [str(tmp_path / "exports" / "mesh-001.ply")] and "mesh-001.ply</a>" in ex.status.value
    ex.video_format = "gif"
    ex.video_button.click()
    assert e.wait(WAIT), e.error
    assert ex.written == [str(tmp_path / "exports" / "turntable-001.gif")]
    assert _read_video(ex.written[0]).shape == (3, 32, 32, 3)
    assert ex.renderers[0].stats.rendered == 1 and ex.renderers[1].stats.rendered == 1   # off the kernel thread
    # a folder that is a file: the error in the status line, one line, and on the explorer's error trait
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    ex.export_dir = str(blocker)
    ex.png_button.click()
    assert "export_dir: " in ex.status.value and "sofgan-lab-error" in ex.status.value
    assert e.error.startswith("ValueError: export_dir: ") and "\n" not in e.error
    ex.mesh_button.click()
    assert e.wait(WAIT)
    assert ex.error.startswith("ValueError: export_dir: ")
