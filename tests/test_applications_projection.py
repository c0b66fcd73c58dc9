"""Projection of a photo into the texture space and into the SOF geometry space
(``sofgan_lab.applications.projection``; paper §6.4, Fig. 12 bottom, Fig. 21, Fig. 27).

Texture: a tiny random 32-px SIW generator projects images it made itself from known codes.
Geometry: the shipped demo SOF, a synthetic photo of one of its training heads parsed by the demo
parser, and a photo rendered through the pipeline with an oracle parser.
"""
from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from torch import nn

from sofgan_lab.applications.projection import (
    GeometryProjection, TextureProjection, lpips_weights_path, noise_regularization, project_geometry,
    project_texture,
)
from sofgan_lab.cameras import Camera
from sofgan_lab.labels import SofGAN as C17, sof_to_sofgan
from sofgan_lab.pipeline import PortraitList, SofGAN
from sofgan_lab.texture import SIWConfig, SIWGenerator
from sofgan_lab.texture.generator import style_mixing_latents
from _tiny import tiny_pipeline  # tests/_tiny.py

pytestmark = pytest.mark.usefixtures("one_thread")

SIZE = 32




@pytest.fixture(scope="module")
def pipe() -> SofGAN:
    return tiny_pipeline()


@pytest.fixture(scope="module")
def scene(pipe):
    """A SOF-20 segmap of a demo head at 32 px, a known W and the generator's image of it."""
    siw = pipe.siw
    seg20 = pipe.render_segmap(3).labels[0].cpu()
    seg17 = sof_to_sofgan(seg20)
    with torch.no_grad():
        w = siw.mapping(siw.random_z(1, seed=5)[:, 0])
        image = siw(seg17[None], w=w, noise="const")[0]
    return {"seg20": seg20, "seg17": seg17, "w": w[0], "image": image}


@pytest.fixture(scope="module")
def projected(pipe, scene) -> TextureProjection:
    return project_texture(pipe.siw, scene["image"], scene["seg20"], mode="w", steps=80, perceptual="none")


# --------------------------------------------------------------------------------------- texture
def test_projection_fits_the_image_and_the_loss_decreases(pipe, scene, projected):
    r = projected
    assert isinstance(r, TextureProjection) and r.mode == "w" and r.steps == 80 and r.perceptual == "none"
    # measured: MSE 0.215 -> 0.058 in 80 steps (noise maps fitted from random, the target used the stored ones)
    assert r.mse < 0.5 * r.initial_mse, (r.initial_mse, r.mse)
    assert len(r.loss_curve) == 80 and all(np.isfinite(r.loss_curve))
    assert r.loss_curve[-1] < 0.01 * r.loss_curve[0]
    mse = r.loss_components["mse"]
    assert set(r.loss_components) == {"total", "perceptual", "mse", "noise"}
    assert all(len(v) == 80 for v in r.loss_components.values())
    assert np.mean(mse[-10:]) < 0.5 * np.mean(mse[:10])
    assert r.loss_components["perceptual"] == [0.0] * 80
    assert r.latents.shape == (1, pipe.siw.n_latent, pipe.siw.style_dim) and r.class_weights is None
    assert torch.equal(r.latents[0], r.latents[0, :1].expand_as(r.latents[0]))  # W: one code on every slot
    assert r.tensor.shape == (3, SIZE, SIZE) and r.target.shape == (3, SIZE, SIZE)
    assert torch.allclose(r.target, scene["image"].clamp(-1, 1))
    assert r.image.size == (SIZE, SIZE) and r.image.mode == "RGB"
    assert np.array_equal(r.segmap17, scene["seg17"].numpy())
    assert "mse" in repr(r)


def test_w_projection_with_the_true_noise_recovers_the_code(pipe, scene):
    r = project_texture(pipe.siw, scene["image"], scene["seg20"], mode="w", steps=100, perceptual="none",
                        optimize_noise=False)
    # measured: MSE 0.148 -> 0.0029 in 100 steps, 0.00007 in 300 (the target lies in the model: same noise, one W)
    assert r.mse < 0.05 * r.initial_mse, (r.initial_mse, r.mse)
    mean = pipe.siw.mean_latent()
    assert (r.latents[0, 0] - scene["w"]).norm() < 0.75 * (mean - scene["w"]).norm()  # measured 1.17 vs 2.14
    assert all(torch.equal(n, getattr(pipe.siw.noises, f"noise_{i}")) for i, n in enumerate(r.noise))


def test_w_plus_fits_a_style_mixed_image_better_than_w(pipe, scene):
    siw = pipe.siw
    with torch.no_grad():
        w2 = siw.mapping(siw.random_z(1, k=2, seed=7))
        target = siw(scene["seg17"][None], latents=style_mixing_latents(w2[:, :1], w2[:, 1:], 3, siw.n_latent),
                     noise="const")[0]
    kw = dict(steps=150, perceptual="none", optimize_noise=False)
    w = project_texture(siw, target, scene["seg20"], mode="w", **kw)
    wp = project_texture(siw, target, scene["seg20"], mode="w+", **kw)
    # measured: 0.0024 (W) vs 0.0010 (W+): the target is outside W
    assert wp.mse <= w.mse, (w.mse, wp.mse)
    assert wp.latents.shape == (1, siw.n_latent, siw.style_dim)
    assert not torch.allclose(wp.latents[0, 0], wp.latents[0, -1])


def test_two_codes_give_per_class_weights(pipe, scene):
    r = project_texture(pipe.siw, scene["image"], scene["seg20"], mode="two", steps=30, perceptual="none")
    cw = r.class_weights
    assert cw.shape == (17, 2) and r.latents.shape == (2, pipe.siw.n_latent, pipe.siw.style_dim)
    assert float(cw.min()) >= 0 and float(cw.max()) <= 1
    assert torch.allclose(cw.sum(1), torch.ones(17), atol=1e-6)
    assert r.mse < r.initial_mse
    assert torch.allclose(r.render(pipe.siw), r.tensor, atol=1e-5)


def test_noise_maps_stay_normalised_and_the_regulariser_measures_correlation(projected):
    for n in projected.noise:
        assert abs(float(n.mean())) < 1e-4 and abs(float(n.std()) - 1) < 1e-4
    noise = projected.loss_components["noise"]
    assert noise[-1] < noise[0]
    g = torch.Generator().manual_seed(0)
    white = [torch.randn(1, 1, 64, 64, generator=g)]
    smooth = [torch.nn.functional.interpolate(torch.randn(1, 1, 8, 8, generator=g), size=64, mode="bilinear")]
    assert float(noise_regularization(white)) < 0.01 < float(noise_regularization(smooth))


def test_the_generator_is_left_unchanged_and_runs_are_deterministic(pipe, scene):
    siw = pipe.siw
    before = {k: v.clone() for k, v in siw.state_dict().items()}
    a = project_texture(siw, scene["image"], scene["seg20"], mode="w+", steps=5, perceptual="none", seed=3)
    b = project_texture(siw, scene["image"], scene["seg20"], mode="w+", steps=5, perceptual="none", seed=3)
    assert torch.equal(a.latents, b.latents) and a.loss_curve == b.loss_curve
    assert all(torch.equal(before[k], v) for k, v in siw.state_dict().items())
    assert all(p.requires_grad for p in siw.parameters()) and all(p.grad is None for p in siw.parameters())


def test_photo_formats_and_a_pipeline_are_accepted(pipe, scene):
    from PIL import Image

    u8 = ((scene["image"].clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()
    big = np.asarray(Image.fromarray(u8).resize((64, 64), Image.NEAREST))
    seg_big = np.kron(scene["seg20"].numpy(), np.ones((2, 2), dtype=np.int64))
    runs = [project_texture(pipe, Image.fromarray(u8), scene["seg17"].numpy(), label_set="sofgan17", steps=2,
                            perceptual="none"),
            project_texture(pipe.siw, u8, scene["seg20"], steps=2, perceptual="none"),
            project_texture(pipe.siw, big, seg_big, steps=2, perceptual="none")]  # resized to 32
    for r in runs:
        assert r.target.shape == (3, SIZE, SIZE) and np.array_equal(r.segmap17, scene["seg17"].numpy())
    assert torch.allclose(runs[0].target, runs[1].target)


def test_callback_sees_every_step_and_can_stop_the_run(pipe, scene):
    seen = []

    def cb(step, info):
        seen.append((step, info))
        return step == 4

    r = project_texture(pipe.siw, scene["image"], scene["seg20"], steps=50, perceptual="none", callback=cb)
    assert r.steps == 5 and len(r.loss_curve) == 5 and [s for s, _ in seen] == [0, 1, 2, 3, 4]
    assert {"total", "perceptual", "mse", "noise", "lr"} <= set(seen[0][1])
    assert seen[0][1]["lr"] == 0.0 and seen[1][1]["lr"] > 0  # the ramp-up


def test_a_custom_perceptual_module_is_called(pipe, scene):
    class L1(nn.Module):
        def __init__(self):
            super().__init__()
            self.calls = 0

        def forward(self, x, y):
            self.calls += 1
            assert x.shape == y.shape == (1, 3, SIZE, SIZE)
            return (x - y).abs().mean(dim=(1, 2, 3))

    m = L1()
    r = project_texture(pipe.siw, scene["image"], scene["seg20"], steps=6, perceptual=m, mse_weight=0.0)
    assert m.calls == 6 and r.perceptual == "L1"
    assert all(v > 0 for v in r.loss_components["perceptual"])


def test_lpips_without_its_weights_raises_or_falls_back(pipe, scene, tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    expected = tmp_path / "hub" / "checkpoints" / "vgg16-397923af.pth"
    assert lpips_weights_path() == expected
    with pytest.raises(FileNotFoundError, match="perceptual") as exc:
        project_texture(pipe.siw, scene["image"], scene["seg20"], steps=2, perceptual="lpips")
    assert str(expected) in str(exc.value) and "vgg16-397923af.pth" in str(exc.value)
    assert not expected.exists()  # nothing was downloaded
    with caplog.at_level(logging.WARNING, logger="sofgan_lab.applications.projection"):
        r = project_texture(pipe.siw, scene["image"], scene["seg20"], steps=2, perceptual="auto")
    assert r.perceptual == "none" and "LPIPS" in caplog.text


def test_lpips_is_built_from_a_cached_vgg16_file(pipe, scene, tmp_path, monkeypatch):
    """A stand-in VGG16 weights file (random values, torchvision's key names and shapes) in the hub
    cache is enough for LPIPS: it is read from there and nothing is downloaded."""
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    (tmp_path / "checkpoints").mkdir()
    g = torch.Generator().manual_seed(0)
    widths = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512]
    state, c_in, idx = {}, 3, 0
    for v in widths:
        if v == "M":
            idx += 1
            continue
        state[f"features.{idx}.weight"] = torch.randn(v, c_in, 3, 3, generator=g) * (2 / (9 * c_in)) ** 0.5
        state[f"features.{idx}.bias"] = torch.zeros(v)
        c_in, idx = v, idx + 2
    torch.save(state, tmp_path / "checkpoints" / "vgg16-397923af.pth")
    r = project_texture(pipe.siw, scene["image"], scene["seg20"], steps=3, perceptual="auto")
    assert r.perceptual == "lpips-vgg" and all(v > 0 for v in r.loss_components["perceptual"])


# --------------------------------------------------------------------------------------- restyle
def test_restyle_keeps_the_projection_where_asked(pipe, projected):
    own = projected.render(pipe)
    assert torch.allclose(own, projected.tensor, atol=1e-5)
    groups = ("background", "complexion", "hair", "eyes_mouth", "wearings")
    same = projected.restyle(pipe, 3, {g: 0 for g in groups})
    assert torch.allclose(same, own, atol=1e-4)
    hair_edit = projected.restyle(pipe.siw, 3, {"hair": 1})
    hair = torch.from_numpy(projected.segmap17 == C17.HAIR)
    assert hair.any()
    change = (hair_edit - own).abs().mean(0)
    # measured: 0.157 in the hair, 0.007 elsewhere
    assert change[hair].mean() > 5 * change[~hair].mean()
    z = pipe.siw.random_z(1, seed=3)[0, 0]
    assert torch.allclose(projected.restyle(pipe.siw, z, {"hair": 1}), hair_edit, atol=1e-5)
    img = projected.restyle(pipe, 3, {"hair": 1}, pil=True)
    assert img.size == (SIZE, SIZE)


def test_restyle_of_a_two_code_projection(pipe, scene):
    r = project_texture(pipe.siw, scene["image"], scene["seg20"], mode="two", steps=5, perceptual="none")
    own = r.render(pipe.siw)
    assert torch.allclose(r.restyle(pipe.siw, 1, {}), own, atol=1e-4)
    assert (r.restyle(pipe.siw, 1, {"background": 1}) - own).abs().max() > 1e-3


def test_render_on_other_segmaps(pipe, projected):
    other = pipe.render_segmap(4, {"yaw": 25}).labels.cpu()             # (1, 32, 32) SOF-20
    one = projected.render(pipe, other[0])
    batch = projected.render(pipe, torch.cat([other, other]))
    assert one.shape == (3, SIZE, SIZE) and batch.shape == (2, 3, SIZE, SIZE)
    assert torch.allclose(batch[0], one, atol=1e-5)
    assert (one - projected.tensor).abs().mean() > 1e-3
    assert torch.allclose(projected.render(pipe, sof_to_sofgan(other[0]), label_set="sofgan17"), one, atol=1e-6)


# --------------------------------------------------------------------------------------- geometry
def test_geometry_of_a_synthetic_photo_parsed_by_the_demo_parser():
    from sofgan_lab.synthetic.attributes import instance_rng, sample_attributes
    from sofgan_lab.synthetic.head import build_head
    from sofgan_lab.synthetic.photo import render_photo, sample_style

    # a head the demo SOF was trained on (scans of seed 0), in a new texture, at the parser's 128 px,
    # framed by the demo pipeline's default camera (what its SOF and parser were trained on)
    pipe = tiny_pipeline(demo_camera=True)
    head = build_head(sample_attributes(instance_rng(0, 3)))
    photo = render_photo(head, pipe.camera(0.0, 0.0, image_size=128), sample_style(np.random.default_rng(3)))
    gp = project_geometry(pipe, photo.images[0], size=64, steps=60, lr=0.05, rays_per_step=1024, eval_every=20)
    assert isinstance(gp, GeometryProjection)
    curve = [m for _, m in gp.inversion.miou_curve]
    # measured (instances 3 / 7 / 11): mIoU 0.71 / 0.77 / 0.76 from 0.54 / 0.71 / 0.70 at the mean code; the
    # instance's own training code scores 0.74 / 0.72 / 0.70 against the same parse
    assert gp.miou > 0.65 and gp.miou > curve[0] + 0.05, curve
    assert gp.segmap.shape == (64, 64) and gp.labels.shape == (64, 64) and gp.code.shape == (64,)
    assert len(np.unique(gp.segmap)) >= 8
    assert gp.camera.image_size == (64, 64) and gp.camera.orthographic
    assert "mIoU" in repr(gp)


def test_geometry_of_a_pipeline_photo_and_new_views(pipe, projected):
    code = pipe.space.sample(1, seed=2)[0]
    portrait = pipe(geometry=code, texture=1)
    truth = torch.from_numpy(portrait.segmap.astype(np.int64))

    class OracleParser:
        """Returns the true segmap (what a perfect parser would see) and records its inputs."""

        def __init__(self):
            self.inputs = []

        def parse(self, images):
            self.inputs.append(images)
            return truth[None]

    parser = OracleParser()
    gp = project_geometry(pipe, portrait.tensor, parser=parser, parse_size=SIZE, steps=40, lr=0.05, eval_every=20)
    assert len(parser.inputs) == 1 and parser.inputs[0].shape == (1, 3, SIZE, SIZE)
    # measured: 0.80 at 32 px in 40 steps
    assert gp.miou > 0.7, gp.inversion.miou_curve
    same = project_geometry(pipe, segmap=portrait.segmap, steps=40, lr=0.05, eval_every=20)
    assert torch.equal(same.code, gp.code)

    views = gp.views(pipe, [-20, 0, 20], texture=5)
    assert isinstance(views, PortraitList) and len(views) == 3
    assert all(v.tensor.shape == (3, SIZE, SIZE) for v in views)
    assert not np.array_equal(views[0].segmap, views[2].segmap)
    single = gp.views(pipe, pipe.camera(yaw=10))
    assert isinstance(single, PortraitList) and len(single) == 1
    textured = gp.views(pipe, [0, 30], texture=projected)                # the photo's own projected style
    assert len(textured) == 2 and torch.allclose(textured[0].tensor, projected.render(pipe, textured[0].segmap),
                                                 atol=1e-5)


# --------------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("photo, exc, match", [
    (np.zeros((32, 32), np.uint8), ValueError, "photo"),
    (np.zeros((32, 32, 3), np.float32), TypeError, "photo"),
    (torch.zeros(4, 32, 32), ValueError, "photo"),
    (torch.zeros(3, 32, 32, dtype=torch.int32), TypeError, "photo"),
    (torch.full((3, 32, 32), 200.0), ValueError, "photo"),
    ("face.png", TypeError, "photo"),
])
def test_bad_photos_are_named(pipe, scene, photo, exc, match):
    with pytest.raises(exc, match=match):
        project_texture(pipe.siw, photo, scene["seg20"], steps=1, perceptual="none")


@pytest.mark.parametrize("kwargs, exc, match", [
    ({"mode": "z"}, ValueError, "mode"),
    ({"steps": 0}, ValueError, "steps"),
    ({"steps": 2.5}, ValueError, "steps"),
    ({"lr": 0}, ValueError, "lr"),
    ({"mse_weight": -1}, ValueError, "mse_weight"),
    ({"perceptual": "vgg"}, ValueError, "perceptual"),
    ({"label_set": "celebamask19"}, ValueError, "label_set"),
    ({"callback": 3}, TypeError, "callback"),
    ({"perceptual": "none", "mse_weight": 0.0}, ValueError, "mse_weight"),
])
def test_bad_arguments_are_named(pipe, scene, kwargs, exc, match):
    kw = {"steps": 1, "perceptual": "none"}
    kw.update(kwargs)
    with pytest.raises(exc, match=match):
        project_texture(pipe.siw, scene["image"], scene["seg20"], **kw)


def test_bad_segmaps_and_targets_are_named(pipe, scene, projected):
    with pytest.raises(ValueError, match="segmap"):
        project_texture(pipe.siw, scene["image"], np.zeros((20, 20), np.int64), steps=1, perceptual="none")
    with pytest.raises(ValueError, match="segmap"):
        project_texture(pipe.siw, scene["image"], np.full((32, 32), 25), steps=1, perceptual="none")
    with pytest.raises(TypeError, match="segmap"):
        project_texture(pipe.siw, scene["image"], np.zeros((32, 32), np.float32), steps=1, perceptual="none")
    with pytest.raises(TypeError, match="siw_or_pipe"):
        project_texture(object(), scene["image"], scene["seg20"], steps=1)
    with pytest.raises(TypeError, match="parser"):
        project_texture(pipe.siw, scene["image"], parser=object(), steps=1, perceptual="none")
    with pytest.raises(ValueError, match="region_mix"):
        projected.restyle(pipe, 1, {"beard": 1})
    with pytest.raises(ValueError, match="other_texture"):
        projected.restyle(pipe, torch.zeros(5), {"hair": 1})
    with pytest.raises(TypeError, match="pipe"):
        project_geometry(pipe.siw, scene["image"])
    with pytest.raises(ValueError, match="photo"):
        project_geometry(pipe)
    with pytest.raises(ValueError, match="label_set"):
        project_geometry(pipe, segmap=scene["seg17"].numpy(), label_set="sofgan17")
    with pytest.raises(ValueError, match="camera"):
        project_geometry(pipe, segmap=scene["seg20"].numpy(), camera=Camera.from_orbit(0.0, 0.0, image_size=16))
    other = SIWGenerator(SIWConfig(size=32, style_dim=16, channels={4: 8, 8: 8, 16: 8, 32: 8},
                                   encoder_channels=(4, 4, 8), spade_hidden=4))
    with pytest.raises(ValueError, match="siw_or_pipe"):
        projected.render(other)
