"""Free-view videos and morphs (``sofgan_lab.applications.video`` / ``.morph``, paper §6.4, Fig. 12):
frames equal per-view pipeline calls, end points, locality of the regional morph and of the
restricted expression edit, GIF/MP4 files and inline HTML, and bad arguments.

The geometry half is the shipped demo SOF and space (rendered at 32 px); the texture half is a
tiny random SIW generator (the pattern of ``test_pipeline.py``).
"""
from __future__ import annotations

import base64
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from sofgan_lab.applications.morph import expression_edit, geometry_morph, regional_style_morph, style_morph
from sofgan_lab.applications.video import Frames, free_view
from sofgan_lab.cameras import Camera
from sofgan_lab.geometry.space import REGIONS, restricted_edit
from sofgan_lab.labels import sof_to_sofgan
from sofgan_lab.pipeline import SofGAN
from sofgan_lab.texture.regions import STYLE_GROUPS
from _tiny import tiny_pipeline  # tests/_tiny.py

pytestmark = pytest.mark.usefixtures("one_thread")




@pytest.fixture(scope="module")
def pipe() -> SofGAN:
    return tiny_pipeline()


@pytest.fixture(scope="module")
def turn(pipe) -> Frames:
    return free_view(pipe, geometry=1, texture=2, frames=5, batch=2)


def _same(a: np.ndarray, b: np.ndarray) -> None:
    """uint8 images equal up to one level (batched vs single float rounding at the .5 boundary)."""
    assert a.shape == b.shape
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 1


# ------------------------------------------------------------------------------------ free view
def test_free_view_frames_equal_per_view_pipeline_calls(pipe, turn):
    assert len(turn) == 5 and turn.images.shape == (5, 32, 32, 3) and turn.images.dtype == np.uint8
    assert turn.segmaps.shape == (5, 32, 32) and turn.segmaps.dtype == np.uint8
    assert isinstance(turn.cameras, Camera) and turn.cameras.batch_size == 5 and turn.fps == 24
    np.testing.assert_allclose(turn.info["yaw"], np.linspace(-35, 35, 5))
    for i in range(5):                                            # chunks of 2, 2, 1
        p = pipe(geometry=1, texture=2, camera=turn.cameras[i])
        _same(turn[i], p.array)
        assert np.array_equal(turn.segmaps[i], p.segmap)
    # the path is the default camera turned: same as the orbit-dict form
    side = pipe(geometry=1, texture=2, camera={"yaw": 35})
    assert np.array_equal(turn.segmaps[-1], side.segmap)
    assert not np.array_equal(turn.segmaps[0], turn.segmaps[-1])


def test_free_view_is_deterministic_and_independent_of_batch(pipe, turn):
    again = free_view(pipe, geometry=1, texture=2, frames=5, batch=2)
    assert np.array_equal(again.images, turn.images) and np.array_equal(again.segmaps, turn.segmaps)
    one = free_view(pipe, geometry=1, texture=2, frames=5, batch=1)
    _same(one.images, turn.images)
    code = free_view(pipe, geometry=pipe.geometry_code(1)[0], texture=pipe.texture_code(2)[0, 0], frames=5)
    _same(code.images, turn.images)


def test_spiral_path_loops_and_camera_paths_are_used_as_given(pipe):
    s = free_view(pipe, geometry=1, texture=2, path="spiral", frames=6)
    diffs = [np.abs(s[i].astype(int) - s[i + 1]).mean() for i in range(5)]
    assert min(diffs) > 0                                         # every frame moves
    assert not np.array_equal(s[0], s[-1])                        # the end frame is not a repeat of the first
    np.testing.assert_allclose(s.info["pitch"], 10 * np.cos(2 * np.pi * np.arange(6) / 6), atol=1e-9)
    np.testing.assert_allclose(s.info["yaw"], 35 * np.sin(2 * np.pi * np.arange(6) / 6), atol=1e-9)
    cams = Camera.from_orbit(torch.tensor([-20.0, 0.0, 20.0]), torch.tensor([5.0, 0.0, -5.0]), 4.5, image_size=32)
    c = free_view(pipe, geometry=1, texture=(2, 7), path=cams, region_mix={"hair": 1.0})
    assert len(c) == 3 and c.cameras is cams
    _same(c[2], pipe(geometry=1, texture=(2, 7), camera=cams[2], region_mix={"hair": 1.0}).array)


# ------------------------------------------------------------------------------------ morphs
@pytest.mark.parametrize("mode", ["linear", "slerp"])
def test_geometry_morph_runs_from_a_to_b(pipe, mode):
    m = geometry_morph(pipe, 1, 4, texture=2, n=4, mode=mode, batch=3)
    assert len(m) == 4 and m.fps == 8 and m.cameras.batch_size == 4
    for i, seed in ((0, 1), (-1, 4)):
        p = pipe(geometry=seed, texture=2)
        _same(m[i], p.array)
        assert np.array_equal(m.segmaps[i], p.segmap)
    assert torch.equal(m.info["geometry"][0], pipe.geometry_code(1)[0])
    mid = pipe(geometry=m.info["geometry"][1], texture=2)
    _same(m[1], mid.array)
    assert not np.array_equal(m.segmaps[1], m.segmaps[0]) and not np.array_equal(m.segmaps[1], m.segmaps[-1])


@pytest.mark.parametrize("space", ["w", "z"])
def test_style_morph_end_points_and_a_fixed_label_map(pipe, space):
    cam = {"yaw": 20}
    m = style_morph(pipe, 1, 2, 7, n=4, space=space, camera=cam, batch=3)
    a, b = pipe(geometry=1, texture=2, camera=cam), pipe(geometry=1, texture=7, camera=cam)
    _same(m[0], a.array)
    _same(m[-1], b.array)
    assert all(np.array_equal(s, a.segmap) for s in m.segmaps)
    d = [np.abs(m[i].astype(int) - m[i + 1]).mean() for i in range(3)]
    assert min(d) > 0
    assert m.info["codes"].shape == (4, pipe.siw.style_dim)
    again = style_morph(pipe, 1, 2, 7, n=4, space=space, camera=cam)
    assert np.array_equal(again.images, m.images)


def test_style_morph_keeps_the_pipeline_truncation(pipe):
    m = style_morph(pipe, 1, 2, 7, n=3, truncation=0.3)
    _same(m[0], pipe(geometry=1, texture=2, truncation=0.3).array)
    _same(m[-1], pipe(geometry=1, texture=7, truncation=0.3).array)
    assert m.info["truncation"] == 0.3
    full = style_morph(pipe, 1, 2, 7, n=3, truncation=1.0)
    assert np.abs(full[0].astype(int) - m[0]).mean() > 0.5


def test_regional_style_morph_changes_the_groups_and_little_else(pipe):
    m = regional_style_morph(pipe, 1, 2, 7, groups="hair", n=4)
    _same(m[0], pipe(geometry=1, texture=2).array)
    _same(m[-1], pipe(geometry=1, texture=(2, 7), region_mix={"hair": 1.0}).array)
    _same(m[1], pipe(geometry=1, texture=(2, 7), region_mix={"hair": 1 / 3}).array)
    seg17 = sof_to_sofgan(torch.as_tensor(m.segmaps[0]).long())
    hair = torch.isin(seg17, torch.tensor(STYLE_GROUPS["hair"])).float()
    assert hair.sum() > 20
    far = (F.max_pool2d(hair[None, None], 7, 1, 3)[0, 0] == 0).numpy()   # outside the hair dilated by 3 px
    diff = np.abs(m[-1].astype(float) - m[0]).mean(-1)
    inside, outside = diff[hair.numpy() > 0].mean(), diff[far].mean()
    assert inside > 5 and outside < 0.1 * inside
    assert m.info["groups"] == ("hair",)


def test_expression_edit_amount_zero_and_restricted_regions(pipe):
    amounts = [-3.0, 0.0, 3.0]
    e = expression_edit(pipe, 1, 2, direction="pc1", amounts=amounts, batch=2)
    assert len(e) == 3 and list(e.info["amounts"]) == amounts
    _same(e[1], pipe(geometry=1, texture=2).array)              # amount 0 is the portrait itself
    original = e.segmaps[1].astype(np.int64)
    face = np.array(REGIONS["face"])
    for k in (0, 2):
        seg = e.segmaps[k].astype(np.int64)
        keep = ~np.isin(original, face) & ~np.isin(seg, face)
        assert np.array_equal(seg[keep], original[keep])         # hair, background, clothes stay
        assert (seg != original).any()                            # the face moved
    # the same labels as restricted_edit with a full batch of originals
    z = pipe.geometry_code(1)
    ref = restricted_edit(pipe.sof, z.expand(3, -1), e.info["geometry"], pipe.camera(), "face")
    assert np.array_equal(ref.restricted.numpy(), e.segmaps)
    free = expression_edit(pipe, 1, 2, direction="pc1", amounts=amounts, regions=None)
    assert (free.segmaps != e.segmaps).any()                      # unrestricted: the rest moves too
    p = pipe(geometry=free.info["geometry"][2], texture=2)
    assert np.array_equal(free.segmaps[2], p.segmap)
    _same(free[2], p.array)


def test_expression_edit_defaults(pipe):
    assert "smile" in pipe.space.direction_names
    e = expression_edit(pipe, 1, 2, n=3)
    np.testing.assert_allclose(e.info["amounts"], [-2, 0, 2])
    assert e.info["direction"] == "smile" and e.info["regions"] == "face"


# ------------------------------------------------------------------------------------ files and display
def _read_mp4(path) -> tuple[dict, list[np.ndarray]]:
    """Decode an MP4 with imageio's ffmpeg. Its reader leaves the pipes of an ffmpeg that has already
    exited to the garbage collector (a ResourceWarning under ``-W error``), so that is silenced here."""
    import gc
    import warnings

    import imageio_ffmpeg

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gen = imageio_ffmpeg.read_frames(str(path))
        meta = next(gen)
        w, h = meta["size"]
        frames = [np.frombuffer(f, np.uint8).reshape(h, w, 3).copy() for f in gen]
        del gen
        gc.collect()
    return meta, frames


def test_gif_and_mp4_files_round_trip(turn, tmp_path):
    import imageio.v3 as iio

    gif = turn.save_gif(tmp_path / "sub" / "turn.gif", fps=10)
    back = iio.imread(gif, index=None)
    assert back.shape[:3] == (5, 32, 32)
    with Image.open(gif) as im:
        assert im.info["duration"] == 100 and im.info["loop"] == 0
    mp4 = turn.save(tmp_path / "turn.mp4")
    meta, frames = _read_mp4(mp4)
    assert len(frames) == 5 and frames[0].shape == (32, 32, 3) and meta["fps"] == 24
    assert np.abs(frames[2].astype(float) - turn[2]).mean() < 25     # lossy, but the same picture
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sub", "turn.mp4"]   # no temporary files left
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["turn.gif"]
    odd = Frames(np.zeros((2, 15, 17, 3), np.uint8), fps=5)              # odd sides are padded for yuv420p
    meta, frames = _read_mp4(odd.save_mp4(tmp_path / "odd.mp4"))
    assert meta["size"] == (18, 16) and len(frames) == 2


def test_inline_html_grid_and_indexing(turn):
    html = turn.to_html()
    assert html == turn._repr_html_()
    data = re.search(r'src="data:image/gif;base64,([^"]+)"', html).group(1)
    assert base64.b64decode(data).startswith(b"GIF89a")
    video = turn.to_html("mp4", width=128)
    assert "<video autoplay loop muted" in video and 'width="128"' in video
    mp4 = base64.b64decode(re.search(r'src="data:video/mp4;base64,([^"]+)"', video).group(1))
    assert mp4[4:8] == b"ftyp"
    g = turn.grid(3)
    assert g.size == (3 * 32 + 2 * 2, 32) and g.mode == "RGB"
    assert np.array_equal(np.asarray(g)[:, 34:66], turn[2])               # frames 0, 2, 4
    assert turn.grid(99, ncols=2, segmaps=True).size == (2 * 32 + 2, 3 * 2 * (32 + 2) - 2)
    part = turn[1:3]
    assert isinstance(part, Frames) and len(part) == 2 and part.cameras.batch_size == 2
    assert np.array_equal(part[0], turn[1]) and np.array_equal(turn[-1], turn.images[4])
    assert "Frames(5 x 32x32" in repr(turn)
    with pytest.raises(IndexError, match="idx"):
        turn[5]


# ------------------------------------------------------------------------------------ errors
@pytest.mark.parametrize("call, exc, match", [
    (lambda p: free_view(p, 1, 2, frames=1), ValueError, "frames: expected an integer >= 2"),
    (lambda p: free_view(p, 1, 2, path="orbit"), ValueError, r"path: expected one of \['yaw', 'spiral'\]"),
    (lambda p: free_view(p, 1, 2, path=p.camera()), ValueError, "path: a Camera path needs at least 2 views"),
    (lambda p: free_view(p, 1, 2, path=Camera.from_orbit(torch.zeros(3), image_size=32), frames=4), ValueError,
     "frames: 4 given with a Camera path of 3 views"),
    (lambda p: free_view(p, 1, 2, yaw_range=(0,)), ValueError, "yaw_range"),
    (lambda p: free_view(p, 1, 2, path="spiral", pitch_amplitude=95), ValueError, "pitch_amplitude"),
    (lambda p: free_view(p, 1, [2, 3]), ValueError, "texture: expected one style"),
    (lambda p: free_view(p, torch.zeros(5), 2), ValueError, r"geometry: expected a seed or one code of shape \(64,\)"),
    (lambda p: free_view(p, 1, 2, batch=0), ValueError, "batch: expected an integer >= 1"),
    (lambda p: free_view(p, 1, (2, 7)), ValueError, "region_mix: two texture styles need a region mix"),
    (lambda p: geometry_morph(p, 1, 2, n=1), ValueError, "n: expected an integer >= 2"),
    (lambda p: geometry_morph(p, 1, torch.zeros(5)), ValueError, r"geometry_b: expected a seed or one code"),
    (lambda p: geometry_morph(p, -1, 2), ValueError, "geometry_a: expected a non-negative seed"),
    (lambda p: geometry_morph(p, 1, 2, mode="cubic"), ValueError, "mode: expected 'linear' or 'slerp'"),
    (lambda p: style_morph(p, 1, 2, torch.zeros(31)), ValueError, r"texture_b: expected a seed or one code of shape \(32,\)"),
    (lambda p: style_morph(p, 1, "red", 3), TypeError, "texture_a: expected a seed"),
    (lambda p: style_morph(p, 1, 2, 3, space="s"), ValueError, "space: expected 'w' or 'z'"),
    (lambda p: style_morph(p, 1, 2, 3, camera=Camera.from_orbit(torch.zeros(2), image_size=32)), ValueError,
     "camera: has 2 views"),
    (lambda p: regional_style_morph(p, 1, 2, 3, groups=("hair", "beard")), ValueError,
     r"groups: unknown style group 'beard'; expected some of \['background'"),
    (lambda p: regional_style_morph(p, 1, 2, 3, groups=()), ValueError, "groups: expected at least one"),
    (lambda p: expression_edit(p, 1, 2, direction="frown"), ValueError,
     r"direction: unknown direction 'frown'; known: pc1\.\.pc64 and \[.*'smile'\]"),
    (lambda p: expression_edit(p, 1, 2, amounts=[1.0]), ValueError, "amounts: expected a 1-D sequence of at least 2"),
    (lambda p: expression_edit(p, 1, 2, amounts=[0, 1], n=3), ValueError, "n: 3 frames asked for 2 amounts"),
    (lambda p: expression_edit(p, 1, 2, regions="tail"), ValueError, "regions: unknown region 'tail'"),
    (lambda p: expression_edit(SofGAN(p.sof, p.siw), p.sof.latents.weight[0], 2), ValueError,
     "pipe: this pipeline has no geometry space"),
])
def test_bad_arguments_name_the_argument(pipe, call, exc, match):
    with pytest.raises(exc, match=match):
        call(pipe)


def test_bad_file_and_display_arguments(turn, tmp_path):
    with pytest.raises(ValueError, match="path: save_gif writes .gif files"):
        turn.save_gif(tmp_path / "a.mp4")
    with pytest.raises(ValueError, match="path: save_mp4 writes .mp4 files"):
        turn.save_mp4(tmp_path / "a.avi")
    with pytest.raises(ValueError, match="path: unknown video suffix '.webm'"):
        turn.save(tmp_path / "a.webm")
    with pytest.raises(ValueError, match="fps: expected a positive number"):
        turn.save_gif(tmp_path / "a.gif", fps=0)
    with pytest.raises(ValueError, match="kind: expected 'gif' or 'mp4'"):
        turn.to_html("webm")
    with pytest.raises(ValueError, match="images: expected uint8"):
        Frames(np.zeros((2, 8, 8, 3), np.float32))
    assert list(tmp_path.iterdir()) == []


def test_a_failed_write_leaves_the_old_file_and_no_temporary(turn, tmp_path, monkeypatch):
    target = tmp_path / "v.gif"
    target.write_bytes(b"old")

    def boom(self, tmp, fps):
        with open(tmp, "wb") as f:
            f.write(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(Frames, "_write_gif", boom)
    with pytest.raises(OSError, match="disk full"):
        turn.save_gif(target)
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["v.gif"]
