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

from sofgan_lab.cameras import Camera
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
    with pytest.raises(ValueError, match="camera: unknown keys"):
        SofGAN(pipe.sof, pipe.siw, camera={"zoom": 2})
    no_space = SofGAN(pipe.sof, pipe.siw)
    with pytest.raises(ValueError, match="geometry: this pipeline has no geometry space"):
        no_space(geometry=1)
    assert no_space(geometry=pipe.sof.latents.weight[0]).tensor.shape == (3, 32, 32)


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
