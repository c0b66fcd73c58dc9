"""The SofGAN pipeline (``sofgan_lab.pipeline``): one call from seeds to a portrait, determinism,
batching, region mixing, painted segmaps, saving/loading, Jupyter display, and bad input.

The geometry half is the shipped demo SOF and space (rendered at 32 px to stay fast); the texture
half is a tiny random SIW generator whose zero/one parameters are perturbed so biases matter.
"""
from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch
from PIL import Image

from sofgan_lab.cameras import (DEFAULT_RADIUS, DEFAULT_TARGET, PORTRAIT_TARGET, PORTRAIT_ZOOM, TRAINED_PITCH_RANGE,
                                TRAINED_YAW_RANGE, Camera, framing)
from sofgan_lab.io import CheckpointError
from sofgan_lab.labels import sof_to_sofgan
from sofgan_lab.pipeline import Portrait, PortraitList, SofGAN
from _tiny import tiny_pipeline  # tests/_tiny.py

pytestmark = pytest.mark.usefixtures("one_thread")




@pytest.fixture(scope="module")
def pipe() -> SofGAN:
    return tiny_pipeline()


def test_one_call_gives_a_portrait_with_everything(pipe):
    p = pipe(geometry=1, texture=2)
    assert isinstance(p, Portrait)
    assert p.tensor.shape == (3, 32, 32) and torch.isfinite(p.tensor).all()
    assert p.array.shape == (32, 32, 3) and p.array.dtype == np.uint8
    assert p.image.size == (32, 32) and p.image.mode == "RGB"
    assert p.segmap.shape == (32, 32) and p.segmap17.shape == (32, 32)
    assert np.array_equal(p.segmap17, sof_to_sofgan(p.segmap.astype(np.int64)))
    assert len(np.unique(p.segmap)) >= 5  # a face, not one class
    assert p.depth.shape == (32, 32) and np.isfinite(p.depth).all() and (p.depth > 0).any()
    assert p.geometry.shape == (pipe.sof.config.latent_dim,)
    assert p.texture.shape == (1, 32) and p.latents.shape == (1, pipe.siw.n_latent, 32)
    assert p.truncation == pipe.truncation == 0.7 and p.region_mix is None
    assert isinstance(p.camera, Camera) and p.camera.batch_size == 1


def test_same_arguments_same_pixels_and_seeds_matter(pipe):
    a, b = pipe(geometry=1, texture=2), pipe(geometry=1, texture=2)
    assert torch.equal(a.tensor, b.tensor) and np.array_equal(a.segmap, b.segmap)
    other_tex, other_geo = pipe(geometry=1, texture=3), pipe(geometry=4, texture=2)
    assert (other_tex.tensor - a.tensor).abs().mean() > 1e-3
    assert np.array_equal(other_tex.segmap, a.segmap)           # texture does not move geometry
    assert not np.array_equal(other_geo.segmap, a.segmap)
    assert torch.equal(a.geometry, pipe.space.sample(1, seed=1)[0])
    assert torch.equal(a.texture, pipe.siw.random_z(1, seed=2)[0])


def test_codes_are_accepted_in_place_of_seeds(pipe):
    a = pipe(geometry=1, texture=2)
    b = pipe(geometry=a.geometry, texture=a.texture[0])
    assert torch.equal(a.tensor, b.tensor)
    c = pipe(geometry=a.geometry.numpy().tolist(), texture=a.texture[0].numpy())
    assert torch.equal(a.tensor, c.tensor)


def test_batched_calls_give_a_list_equal_to_single_calls(pipe):
    ps = pipe(geometry=[1, 4, 5], texture=2)
    assert isinstance(ps, PortraitList) and len(ps) == 3
    for s, p in zip([1, 4, 5], ps):
        one = pipe(geometry=s, texture=2)
        assert np.array_equal(one.segmap, p.segmap)
        torch.testing.assert_close(one.tensor, p.tensor, atol=1e-5, rtol=0)
    ts = pipe(geometry=1, texture=[2, 3])
    torch.testing.assert_close(ts[1].tensor, pipe(geometry=1, texture=3).tensor, atol=1e-5, rtol=0)
    grid = ps.grid(segmaps=True)
    assert grid.size == (3 * 32 + 2 * 2, 2 * 32 + 2)
    assert Image.open(io.BytesIO(ps._repr_png_())).size == ps.grid().size


def test_camera_forms_and_multi_view(pipe):
    front = pipe(geometry=1, texture=2)
    side = pipe(geometry=1, texture=2, camera={"yaw": 35})
    assert not np.array_equal(front.segmap, side.segmap)
    same = pipe(geometry=1, texture=2, camera=pipe.camera(yaw=35))
    assert torch.equal(side.tensor, same.tensor)
    views = pipe(geometry=1, texture=2, camera=Camera.from_orbit(torch.tensor([0.0, 35.0]), image_size=32))
    assert isinstance(views, PortraitList) and len(views) == 2
    assert np.array_equal(views[1].segmap, side.segmap)
    assert torch.equal(views[0].geometry, views[1].geometry)
    segs = pipe.render_segmap(1, Camera.from_orbit(torch.tensor([0.0, 35.0]), image_size=32))
    assert segs.labels.shape == (2, 32, 32) and np.array_equal(segs.labels[1].numpy(), side.segmap)
    with pytest.raises(ValueError, match="camera: has 2 views for 3 portraits"):
        pipe.render_segmap([1, 2, 3], Camera.from_orbit(torch.tensor([0.0, 35.0]), image_size=32))


def test_region_mix_restyles_only_the_named_groups(pipe):
    a = pipe(geometry=1, texture=2)
    b = pipe(geometry=1, texture=7)
    none = pipe(geometry=1, texture=(2, 7), region_mix={"hair": 0.0})
    torch.testing.assert_close(none.tensor, a.tensor, atol=1e-5, rtol=0)      # p = 0 everywhere: style A
    every = pipe(geometry=1, texture=(2, 7), region_mix={g: 1.0 for g in ("background", "complexion", "hair",
                                                                             "eyes_mouth", "wearings")})
    torch.testing.assert_close(every.tensor, b.tensor, atol=1e-5, rtol=0)     # p = 1 everywhere: style B
    hair = pipe(geometry=1, texture=(2, 7), region_mix={"hair": 1.0})
    assert hair.texture.shape == (2, 32) and hair.region_mix == {"hair": 1.0}
    assert not torch.allclose(hair.tensor, a.tensor, atol=1e-4)
    half = pipe(geometry=1, texture=(2, 7), region_mix={"hair": 0.5})
    d_half, d_full = (half.tensor - a.tensor).abs().mean(), (hair.tensor - a.tensor).abs().mean()
    assert 0 < d_half < d_full


def test_from_segmap_matches_the_rendered_portrait(pipe):
    p = pipe(geometry=1, texture=2)
    assert torch.equal(pipe.from_segmap(p.segmap, texture=2).tensor, p.tensor)
    assert torch.equal(pipe.from_segmap(p.segmap17, texture=2, label_set="sofgan17").tensor, p.tensor)
    assert torch.equal(pipe.from_segmap(torch.as_tensor(p.segmap), texture=2).tensor, p.tensor)
    coloured = p.segmap_image("sof20")                     # a painted (coloured) map, as PIL
    assert torch.equal(pipe.from_segmap(coloured, texture=2).tensor, p.tensor)
    many = pipe.from_segmap(np.stack([p.segmap, p.segmap]), texture=[2, 3])
    assert isinstance(many, PortraitList) and len(many) == 2 and many[0].depth is None


def test_save_and_load_round_trip(pipe, tmp_path):
    d = pipe.save_pretrained(tmp_path / "pipe")
    meta = json.loads((d / "pipeline.json").read_text())
    assert meta["format"] == "sofgan-lab/pipeline" and meta["format_version"] == 1
    assert sorted(p.name for p in d.iterdir()) == ["geometry_space", "pipeline.json", "siw", "sof"]
    q = SofGAN.from_pretrained(d)
    assert torch.equal(q(geometry=3, texture=4, camera={"yaw": 10}).tensor,
                       pipe(geometry=3, texture=4, camera={"yaw": 10}).tensor)
    assert q.default_camera == pipe.default_camera and q.truncation == pipe.truncation


def test_loading_errors_are_clear(pipe, tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="name_or_dir.*only built-in name is 'demo'"):
        SofGAN.from_pretrained("demo2")
    with pytest.raises(CheckpointError, match="pipeline.json is missing"):
        SofGAN.from_pretrained(tmp_path)
    d = pipe.save_pretrained(tmp_path / "p")
    meta = json.loads((d / "pipeline.json").read_text())
    (d / "pipeline.json").write_text(json.dumps(dict(meta, format_version=99)))
    with pytest.raises(CheckpointError, match="format version 99"):
        SofGAN.from_pretrained(d)
    (d / "pipeline.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        SofGAN.from_pretrained(d)
    # the demo without its texture model names the missing part
    (tmp_path / "data" / "demo" / "sof").mkdir(parents=True)
    (tmp_path / "data" / "demo" / "sof" / "config.json").write_text("{}")
    monkeypatch.setenv("SOFGAN_LAB_DATA", str(tmp_path / "data"))
    with pytest.raises(FileNotFoundError, match="'siw'"):
        SofGAN.from_pretrained("demo")
    with pytest.raises(TypeError, match="name_or_dir"):
        SofGAN.from_pretrained(3)


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(camera=30), TypeError, "camera: expected None, a dict"),
    (dict(camera={"yawn": 3}), ValueError, r"camera: unknown keys \['yawn'\]"),
    (dict(camera={"yaw": float("nan")}), ValueError, "camera: yaw must be a finite number"),
    (dict(texture=(2, 7), region_mix={"beard": 1}), ValueError, "region_mix: unknown style group 'beard'"),
    (dict(texture=(2, 7), region_mix={"hair": 1.5}), ValueError, r"region_mix: values must lie in \[0, 1\]"),
    (dict(texture=(2, 7), region_mix=["hair"]), TypeError, "region_mix: expected a dict"),
    (dict(region_mix={"hair": 1}), ValueError, "region_mix: needs two texture styles"),
    (dict(texture=(2, 7)), ValueError, "region_mix: two texture styles need a region mix"),
    (dict(texture=(1, 2, 3)), ValueError, "texture: a tuple means two styles"),
    (dict(truncation=1.5), ValueError, r"truncation: expected a number in \[0, 1\]"),
    (dict(geometry=torch.zeros(5)), ValueError, r"geometry: expected a code of shape \(64,\)"),
    (dict(geometry="face"), TypeError, "geometry: expected a seed"),
    (dict(texture=torch.zeros(31)), ValueError, r"texture: expected a code of shape \(32,\)"),
    (dict(geometry=-1), ValueError, "seed: expected a non-negative integer"),
    (dict(geometry=[1, 2], texture=[1, 2, 3]), ValueError, "2 values for a batch of 3"),
    (dict(geometry=torch.full((64,), float("nan"))), ValueError, "geometry: contains NaN"),
])
def test_bad_arguments_name_the_argument(pipe, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        pipe(**kwargs)


def test_bad_segmaps_and_constructor_arguments(pipe):
    with pytest.raises(ValueError, match="label_map"):
        pipe.from_segmap(np.full((32, 32), 25))
    with pytest.raises(TypeError, match="label_map: expected integer class ids"):
        pipe.from_segmap(np.zeros((32, 32), np.float32))
    with pytest.raises(ValueError, match="label_set"):
        pipe.from_segmap(np.zeros((32, 32), np.int64), label_set="celeba")
    with pytest.raises(TypeError, match="sof: expected a SemanticOccupancyField"):
        SofGAN(pipe.siw, pipe.siw)
    with pytest.raises(TypeError, match="siw: expected a SIWGenerator"):
        SofGAN(pipe.sof, pipe.sof)
    with pytest.raises(ValueError, match=r"camera: unknown keys \['roll'\]"):
        SofGAN(pipe.sof, pipe.siw, camera={"roll": 2})      # (zoom is a camera key since framings)
    no_space = SofGAN(pipe.sof, pipe.siw)
    with pytest.raises(ValueError, match="geometry: this pipeline has no geometry space"):
        no_space(geometry=1)
    assert no_space(geometry=pipe.sof.latents.weight[0]).tensor.shape == (3, 32, 32)


# ---------------------------------------------------------------------- framing and pose range

def test_default_camera_is_the_release_framing_and_pose_range_the_trained_one(pipe):
    assert pipe.default_camera == {"yaw": 0.0, "pitch": 0.0, "radius": DEFAULT_RADIUS, "fov": None,
                                   "target": list(DEFAULT_TARGET), "zoom": 1.0}
    assert pipe.pose_range == {"yaw": TRAINED_YAW_RANGE, "pitch": TRAINED_PITCH_RANGE}
    ref = Camera.from_orbit(image_size=32, **framing("official"))
    cam = pipe.camera()
    assert torch.equal(cam.cam2world, ref.cam2world) and torch.equal(cam.intrinsics, ref.intrinsics)
    assert float(cam.focal[0, 0]) == 36.0 * 32 / 128             # the release's 36 px per unit at 128 px


def test_camera_target_and_zoom(pipe):
    base = pipe.camera(yaw=20)
    zoomed = pipe.camera(yaw=20, zoom=2)
    assert torch.equal(zoomed.focal, 2 * base.focal) and torch.equal(zoomed.cam2world, base.cam2world)
    moved = pipe.camera(yaw=20, target=PORTRAIT_TARGET)
    uv, _ = moved.project(torch.tensor([PORTRAIT_TARGET]))
    torch.testing.assert_close(uv[0, 0], torch.tensor([16.0, 16.0]), atol=1e-4, rtol=0)  # look-at point = centre
    portrait = pipe.camera(yaw=20, pitch=-5, **framing("portrait"))
    ref = Camera.from_orbit(20.0, -5.0, image_size=32, **framing("portrait"))
    assert torch.equal(portrait.cam2world, ref.cam2world) and torch.equal(portrait.intrinsics, ref.intrinsics)
    persp = pipe.camera(fov=30.0, zoom=1.5)
    assert torch.equal(persp.focal, 1.5 * pipe.camera(fov=30.0).focal)


def test_calls_use_the_camera_dict_target_and_zoom(pipe):
    cam = {"zoom": 2, "target": [0.0, 0.3, 0.0]}
    p = pipe(geometry=1, texture=2, camera=cam)
    assert torch.equal(p.camera.focal, 2 * pipe.camera().focal)
    same = pipe(geometry=1, texture=2, camera=pipe.camera(zoom=2, target=(0.0, 0.3, 0.0)))
    assert torch.equal(p.tensor, same.tensor) and np.array_equal(p.segmap, same.segmap)
    assert not np.array_equal(p.segmap, pipe(geometry=1, texture=2).segmap)
    segs = pipe.render_segmap(1, pipe.resolve_camera(cam))
    assert np.array_equal(segs.labels[0].numpy(), p.segmap)


def test_constructor_camera_and_pose_range(pipe):
    q = SofGAN(pipe.sof, pipe.siw, pipe.space, camera={"target": np.array([0, 0.47, 0]), "zoom": PORTRAIT_ZOOM},
               pose_range={"yaw": [-20, 20]})
    assert q.default_camera == {"yaw": 0.0, "pitch": 0.0, "radius": DEFAULT_RADIUS, "fov": None,
                                "target": [0.0, 0.47, 0.0], "zoom": PORTRAIT_ZOOM}
    assert all(type(v) is float for v in q.default_camera["target"])
    assert q.pose_range == {"yaw": (-20.0, 20.0), "pitch": TRAINED_PITCH_RANGE}
    ref = Camera.from_orbit(image_size=32, **framing("portrait"))
    assert torch.equal(q.camera().cam2world, ref.cam2world) and torch.equal(q.camera().intrinsics, ref.intrinsics)
    # a call's camera dict overrides the default framing key by key
    assert torch.equal(q.resolve_camera({"zoom": 1}).focal, pipe.camera().focal)
    assert torch.allclose(q.resolve_camera({"target": list(DEFAULT_TARGET)}).focal, q.camera().focal)


def test_in_pose_range(pipe):
    lo, hi = TRAINED_YAW_RANGE
    plo, phi = TRAINED_PITCH_RANGE
    assert pipe.in_pose_range(0, 0) and pipe.in_pose_range(lo, plo) and pipe.in_pose_range(hi, phi)  # bounds in
    assert not pipe.in_pose_range(hi + 0.1, 0) and not pipe.in_pose_range(lo - 0.1, 0)
    assert not pipe.in_pose_range(0, phi + 0.1) and not pipe.in_pose_range(0, plo - 0.1)
    q = SofGAN(pipe.sof, pipe.siw, pose_range={"yaw": (-10, 50), "pitch": (0, 5)})
    assert q.in_pose_range(45, 3) and not q.in_pose_range(-20, 3) and not q.in_pose_range(0, -1)


@pytest.mark.parametrize("bad, exc, match", [
    ([(-30, 30)], TypeError, "pose_range: expected a dict"),
    ({"roll": (-1, 1)}, ValueError, r"pose_range: unknown keys \['roll'\]"),
    ({"yaw": (20, -20)}, ValueError, "pose_range: yaw must be"),
    ({"yaw": (5, 5)}, ValueError, "pose_range: yaw must be"),
    ({"yaw": (1,)}, ValueError, "pose_range: yaw must be"),
    ({"yaw": (0, float("nan"))}, ValueError, "pose_range: yaw must be"),
    ({"yaw": (True, 3)}, ValueError, "pose_range: yaw must be"),
    ({"yaw": "ab"}, ValueError, "pose_range: yaw must be"),
    ({"pitch": (-95, 10)}, ValueError, r"pose_range: pitch must lie within \(-90, 90\)"),
    ({"pitch": (-10, 90)}, ValueError, r"pose_range: pitch must lie within \(-90, 90\)"),
])
def test_bad_pose_range_names_the_argument(pipe, bad, exc, match):
    with pytest.raises(exc, match=match):
        SofGAN.check_pose_range(bad)
    with pytest.raises(exc, match=match):
        SofGAN(pipe.sof, pipe.siw, pose_range=bad)


@pytest.mark.parametrize("cam, match", [
    ({"target": [0, 0.1]}, "camera: target must be 3 finite numbers"),
    ({"target": [0, float("nan"), 0]}, "camera: target must be 3 finite numbers"),
    ({"target": [0, True, 0]}, "camera: target must be 3 finite numbers"),
    ({"target": "0,0,0"}, "camera: target must be 3 finite numbers"),
    ({"target": 0.1}, "camera: target must be 3 finite numbers"),
    ({"zoom": 0}, "camera: zoom must be > 0"),
    ({"zoom": -2}, "camera: zoom must be > 0"),
    ({"zoom": float("nan")}, "camera: zoom must be a finite number"),
    ({"zoom": True}, "camera: zoom must be a finite number"),
    ({"zoom": "2"}, "camera: zoom must be a finite number"),
])
def test_bad_target_and_zoom_name_the_camera(pipe, cam, match):
    with pytest.raises(ValueError, match=match):
        SofGAN.camera_params(cam)
    with pytest.raises(ValueError, match=match):
        pipe(geometry=1, texture=2, camera=cam)
    with pytest.raises(ValueError, match=match):
        SofGAN(pipe.sof, pipe.siw, camera=cam)
    with pytest.raises(ValueError, match=match):
        pipe.camera(**cam)


def test_save_and_load_keep_the_framing_and_pose_range(pipe, tmp_path):
    cam = {"yaw": 12.0, "pitch": -3.0, "radius": 5.0, "fov": 25.0, "target": [0.0, 0.47, 0.1], "zoom": 1.5}
    q = SofGAN(pipe.sof, pipe.siw, pipe.space, camera=cam, pose_range={"yaw": (-20, 25), "pitch": (-5, 8)})
    d = q.save_pretrained(tmp_path / "framed")
    meta = json.loads((d / "pipeline.json").read_text())
    assert meta["camera"] == cam
    assert meta["pose_range"] == {"yaw": [-20.0, 25.0], "pitch": [-5.0, 8.0]}
    r = SofGAN.from_pretrained(d)
    assert r.default_camera == cam and r.pose_range == {"yaw": (-20.0, 25.0), "pitch": (-5.0, 8.0)}
    assert torch.equal(r.camera().intrinsics, q.camera().intrinsics)
    assert torch.equal(r.camera().cam2world, q.camera().cam2world)


def test_an_old_pipeline_json_loads_with_the_release_framing(pipe, tmp_path):
    d = pipe.save_pretrained(tmp_path / "old")
    meta = json.loads((d / "pipeline.json").read_text())
    del meta["pose_range"]
    meta["camera"] = {"yaw": 10.0, "pitch": 0.0, "radius": 4.5, "fov": None}   # written before framings
    (d / "pipeline.json").write_text(json.dumps(meta))
    q = SofGAN.from_pretrained(d)
    assert q.default_camera == {"yaw": 10.0, "pitch": 0.0, "radius": 4.5, "fov": None,
                                "target": list(DEFAULT_TARGET), "zoom": 1.0}
    assert q.pose_range == {"yaw": TRAINED_YAW_RANGE, "pitch": TRAINED_PITCH_RANGE}
    assert torch.equal(q(geometry=3, texture=4).tensor, pipe(geometry=3, texture=4, camera={"yaw": 10}).tensor)


def test_jupyter_display(pipe):
    p = pipe(geometry=1, texture=2)
    png = p._repr_png_()
    assert png.startswith(b"\x89PNG") and Image.open(io.BytesIO(png)).size == (32, 32)
    html = p._repr_html_()
    assert html.count("<img") == 2 and "portrait" in html and "segmap" in html
    assert "Portrait(32x32" in repr(p) and "SofGAN(" in repr(pipe)


def test_never_returns_an_image_with_nans(pipe):
    import copy

    broken = copy.deepcopy(pipe.siw)
    with torch.no_grad():
        broken.to_rgb1.bias.fill_(float("nan"))
    bad = SofGAN(pipe.sof, broken, pipe.space)
    with pytest.raises(FloatingPointError, match="NaN or infinite"):
        bad(geometry=1, texture=2)
    with pytest.raises(FloatingPointError, match="NaN or infinite"):
        bad.from_segmap(np.zeros((32, 32), np.int64))


def test_label_surface_is_the_rendered_map_and_the_restricted_edit(pipe):
    from sofgan_lab.geometry.space import restricted_edit

    cam = pipe.resolve_camera(None, 1)
    got = pipe.label_surface(3, cam)
    portrait = pipe(geometry=3, texture=0, camera=cam)
    assert np.array_equal(got.segmap, portrait.segmap) and got.segmap.dtype == np.uint8
    assert np.allclose(got.depth, portrait.depth) and got.points.shape == (32, 32, 3)
    assert got.camera is cam

    base, target = pipe.geometry_code(3), pipe.geometry_code(8)
    edit = pipe.label_surface(8, cam, base=3, regions=["hair"])
    want = restricted_edit(pipe.sof, base, target, cam, ["hair"])
    assert np.array_equal(edit.segmap, want.restricted[0].numpy())
    changed = edit.segmap != got.segmap
    assert changed.any()                                   # the edit moves some labels ...
    assert not np.array_equal(edit.segmap, pipe.label_surface(8, cam).segmap)  # ... but not all of them

    up = got.upsampled(64)
    assert up.segmap.shape == (64, 64) and up.points.shape == (64, 64, 3)
    assert np.array_equal(up.segmap[::2, ::2], got.segmap) and up.camera is cam
    two = Camera(cam2world=torch.cat([cam.cam2world] * 2), intrinsics=torch.cat([cam.intrinsics] * 2),
                 image_size=cam.image_size, orthographic=cam.orthographic)
    with pytest.raises(ValueError, match="camera: has 2 views for 1 portraits"):
        pipe.label_surface(3, two)
    with pytest.raises(ValueError, match="geometry: label_surface renders one geometry"):
        pipe.label_surface([1, 2], cam)


def test_smooth_upsampling_keeps_outlines_round():
    """A 4x enlarged preview map, per class (smooth): closer to the map drawn at full size than the
    nearest-neighbour steps, with only the map's own ids, and the surface arrays still nearest."""
    from sofgan_lab.pipeline import LabelSurface

    def disk(n):
        yy, xx = (np.mgrid[0:n, 0:n] + 0.5) / n
        seg = np.zeros((n, n), np.uint8)
        seg[(yy - 0.5) ** 2 + (xx - 0.5) ** 2 < 0.3 ** 2] = 13
        seg[(yy - 0.45) ** 2 + (xx - 0.62) ** 2 < 0.08 ** 2] = 4
        return seg

    small = LabelSurface(disk(16), depth=np.arange(256, dtype=np.float32).reshape(16, 16))
    smooth, steps = small.upsampled(64, smooth=True), small.upsampled(64)
    truth = disk(64)
    assert smooth.segmap.dtype == np.uint8 and smooth.segmap.shape == (64, 64)
    assert set(np.unique(smooth.segmap)) == {0, 4, 13}
    wrong_smooth, wrong_steps = (smooth.segmap != truth).mean(), (steps.segmap != truth).mean()
    assert wrong_smooth < 0.9 * wrong_steps, (wrong_smooth, wrong_steps)   # measured 0.032 vs 0.039
    assert np.array_equal(smooth.depth, steps.depth)
    with pytest.raises(ValueError, match="size"):
        small.upsampled(0)


def test_label_surface_cache_hits_and_evicts_least_recently_used(pipe, monkeypatch):
    from sofgan_lab.pipeline import LabelSurfaceCache

    calls = []
    real = pipe.label_surface
    monkeypatch.setattr(pipe, "label_surface", lambda *a, **k: calls.append(a) or real(*a, **k))
    cache, cam = LabelSurfaceCache(pipe, size=2), pipe.resolve_camera(None, 1)
    a = cache.surface(1, cam)
    assert cache.surface(1, cam) is a and len(calls) == 1          # a hit renders nothing
    assert cache.key(1, cam) in cache and cache.key(2, cam) not in cache
    b = cache.surface(2, cam)
    cache.surface(1, cam)                                          # 1 is now the most recent
    cache.surface(3, cam)                                          # evicts 2
    assert len(cache) == 2 and cache.key(2, cam) not in cache and cache.key(1, cam) in cache
    assert cache.surface(2, cam) is not b and len(calls) == 4
    other = pipe.resolve_camera({"yaw": 10.0}, 1)
    assert cache.key(1, other) != cache.key(1, cam)               # another camera is another entry
    assert cache.key(1, cam, base=2, regions=["hair"]) != cache.key(1, cam)
    cache.clear()
    assert len(cache) == 0
    with pytest.raises(ValueError, match="size: expected a positive integer"):
        LabelSurfaceCache(pipe, size=0)


# ------------------------------------------------------------------ issue 20: bad input never gives garbage
@pytest.mark.parametrize("mode", ["L", "P", "I", "I;16"])
def test_from_segmap_reads_greyscale_palette_and_integer_images_as_ids(pipe, mode):
    """A label map saved as greyscale ids (our ``seg_XX.png``) is ids, not colours: before, ids <= 17
    decoded as near-black colours and became all background, larger ones a colour error."""
    p = pipe(geometry=1, texture=2)
    assert len(np.unique(p.segmap)) > 3
    img = Image.fromarray(p.segmap)  # 'L'
    if mode == "P":
        img = img.convert("P")
    elif mode != "L":
        img = Image.fromarray(p.segmap.astype(np.int32 if mode == "I" else np.uint16))
    assert img.mode == mode
    if mode in ("L", "P"):  # as read back from a PNG file
        buf = io.BytesIO()
        img.save(buf, format="PNG")
        img = Image.open(buf)
        assert img.mode == mode
    back = pipe.from_segmap(img, texture=2)
    np.testing.assert_array_equal(back.segmap, p.segmap)
    assert torch.equal(back.tensor, p.tensor)


def test_from_segmap_still_decodes_colour_images(pipe):
    p = pipe(geometry=1, texture=2)
    back = pipe.from_segmap(p.segmap_image(), texture=2)  # an RGB PIL image in the SOF-20 palette
    np.testing.assert_array_equal(back.segmap, p.segmap)


@pytest.mark.parametrize("label_map, exc, match", [
    (np.zeros((0, 0), np.int64), ValueError, r"label_map: is empty \(shape \(0, 0\)\)"),
    (np.zeros((2, 0, 5), np.int64), ValueError, "label_map: is empty"),
    (np.zeros((8, 8, 3), np.uint16), TypeError, "label_map: an RGB image must be uint8"),
    ("seg_00.png", TypeError, "label_map: expected a label map .* got 'seg_00.png' \\(str\\)"),
    (None, TypeError, "label_map: expected a label map"),
    (np.array([["a", "b"]]), TypeError, "label_map: expected integer class ids, got dtype <U1"),
    (np.zeros((4, 4), np.complex64), TypeError, "label_map: expected integer class ids"),
])
def test_from_segmap_bad_maps_name_label_map(pipe, label_map, exc, match):
    with pytest.raises(exc, match=match):
        pipe.from_segmap(label_map)


def test_from_segmap_accepts_wide_unsigned_ids(pipe):
    p = pipe(geometry=1, texture=2)
    back = pipe.from_segmap(p.segmap.astype(np.uint16), texture=2)  # torch has no uint16 arithmetic
    np.testing.assert_array_equal(back.segmap, p.segmap)


def test_numpy_and_0d_tensor_numbers_are_accepted(pipe):
    """``truncation=np.float32(0.5)`` and a 0-d tensor yaw were refused as "not a number"."""
    ref = pipe(geometry=1, texture=2, truncation=0.5, camera={"yaw": 10.0, "pitch": -3.0})
    got = pipe(geometry=1, texture=2, truncation=np.float32(0.5),
               camera={"yaw": torch.tensor(10.0), "pitch": np.float32(-3.0)})
    assert got.truncation == 0.5
    assert torch.equal(got.tensor, ref.tensor)
    tgt = pipe(geometry=1, texture=2, camera={"target": torch.tensor([0.0, 0.1, 0.0])})
    assert torch.equal(tgt.tensor, pipe(geometry=1, texture=2, camera={"target": [0.0, 0.1, 0.0]}).tensor)


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(texture=2 ** 64), ValueError, r"texture: seed: expected an integer in 0\.\.18446744073709551615"),
    (dict(texture=[1, 2 ** 70]), ValueError, "texture: seed"),
    (dict(texture=(2 ** 64, 1), region_mix={"hair": 1}), ValueError, r"texture\[0\]: seed"),
    (dict(texture=(2, 7), region_mix={"hair": float("nan")}), ValueError,
     r"region_mix\['hair'\]: expected a finite number, got nan"),
    (dict(camera={"yaw": torch.tensor([1.0, 2.0])}), ValueError, "camera: yaw must be a finite number"),
    (dict(truncation="0.5"), ValueError, r"truncation: expected a number in \[0, 1\]"),
])
def test_more_bad_arguments_name_the_argument(pipe, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        pipe(**kwargs)


def test_texture_seeds_up_to_64_bits_work(pipe):
    big = pipe(geometry=1, texture=2 ** 64 - 1)
    assert torch.isfinite(big.tensor).all()
    assert torch.equal(big.texture, pipe.siw.random_z(1, seed=2 ** 64 - 1)[0])


def test_huge_codes_are_refused_naming_geometry_or_texture(pipe):
    """A geometry code of 1e20 rendered an all-background portrait with NaN depth."""
    with pytest.raises(ValueError, match="geometry: values must lie within ±1e\\+06"):
        pipe(geometry=torch.full((64,), 1e20))
    with pytest.raises(ValueError, match="texture: values must lie within ±1e\\+06"):
        pipe(texture=torch.full((32,), 1e7))
