"""The SOF model (sofgan_lab.geometry.sof): config, sizes, argument checks, rays, rendering
invariants and checkpoints."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sofgan_lab.cameras import Camera
from sofgan_lab.geometry import MISS_LOGIT, SemanticOccupancyField, SOFConfig
from sofgan_lab.io.checkpoints import CheckpointError
from sofgan_lab.labels import SOF

TINY = dict(latent_dim=8, hyper_dim=16, phi_dim=16, marcher_dim=16, classifier_dim=16, march_steps=4)


def tiny(seed: int = 0, **kw) -> SemanticOccupancyField:
    torch.manual_seed(seed)
    return SemanticOccupancyField(SOFConfig(**{**TINY, **kw})).eval()


def latents(n: int, dim: int = 8, seed: int = 1) -> torch.Tensor:
    return torch.randn(n, dim, generator=torch.Generator().manual_seed(seed))


def wide_camera(size: int = 16, **kw) -> Camera:
    """Orthographic, 8 world units across: the radius-1.5 sphere fills the middle of the image."""
    return Camera.from_orbit(0.0, 0.0, image_size=size, pixels_per_unit=size / 8.0, **kw)


# ------------------------------------------------------------------------------------ config
@pytest.mark.parametrize("name, value, exc", [
    ("latent_dim", 0, ValueError), ("phi_dim", -3, ValueError), ("marcher_layers", 0, ValueError),
    ("classifier_layers", 0, ValueError), ("num_classes", 0, ValueError), ("march_steps", -1, ValueError),
    ("num_instances", -1, ValueError), ("hyper_dim", 2.5, TypeError), ("phi_layers", True, TypeError),
    ("sphere_radius", 0.0, ValueError), ("sphere_radius", math.nan, ValueError),
    ("sphere_radius", "1.5", ValueError),
])
def test_config_validation_names_the_field(name, value, exc):
    with pytest.raises(exc, match=name):
        SOFConfig(**{name: value})


def test_config_accepts_zero_steps_and_instances_and_round_trips():
    cfg = SOFConfig(march_steps=0, num_instances=0)
    assert SOFConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown SOFConfig fields.*'bogus'"):
        SOFConfig.from_dict({**cfg.to_dict(), "bogus": 1})
    with pytest.raises(TypeError, match="config"):
        SemanticOccupancyField({"latent_dim": 8})


def _expected_official_parameters(num_latents: int) -> int:
    """Counted from shared/REFERENCE.md's structure, independently of the code."""
    z = h = w = 256
    linear = lambda i, o, bias=True: i * o + (o if bias else 0)  # noqa: E731
    layer_norm = lambda n: 2 * n  # noqa: E731  (affine: weight + bias)
    theta_shapes = [(3, w), (w, w), (w, w)]  # Θ: 3 -> 256 -> 256 -> 256
    hyper = sum(linear(z, h) + layer_norm(h) + linear(h, h) + layer_norm(h) + linear(h, i * o + o)
                for i, o in theta_shapes)
    # marcher: 4 layers, bias-free weights (256->256 x3, 256->1), each bias = Linear(3 -> out)(dir)
    outs = [256, 256, 256, 1]
    ins = [w, 256, 256, 256]
    marcher = sum(linear(i, o, bias=False) + linear(3, o) for i, o in zip(ins, outs))
    classifier = 3 * (linear(w, 256) + layer_norm(256)) + linear(256, 20)
    return hyper + marcher + classifier + num_latents * z


def test_official_model_has_about_35m_parameters():
    with torch.device("meta"):
        model = SemanticOccupancyField(SOFConfig.official(num_instances=4))
    expected = _expected_official_parameters(4)
    assert expected == 34_883_096  # 34.88 M, "≈ 35 M, almost all in the hypernetwork"
    assert model.num_parameters() == expected
    assert model.num_parameters(include_latents=False) == expected - 4 * 256
    hyper = sum(p.numel() for p in model.hyper.parameters())
    assert hyper / expected > 0.98


# ------------------------------------------------------------------------------------ arguments
def test_bad_latents_raise_naming_z():
    m = tiny()
    cam = wide_camera(8)
    with pytest.raises(ValueError, match=r"z: expected shape \(B, 8\), got \(1, 7\)"):
        m.render(torch.zeros(1, 7), cam)
    with pytest.raises(ValueError, match="z: contains non-finite"):
        m.render(torch.tensor([[math.nan] + [0.0] * 7]), cam)
    with pytest.raises(ValueError, match="z: contains non-finite"):
        m.forward_rays(torch.full((1, 8), math.inf), torch.zeros(1, 1, 3), torch.ones(1, 1, 3))
    with pytest.raises(TypeError, match="z: expected a torch.Tensor"):
        m.render([0.0] * 8, cam)


def test_bad_camera_and_views_raise_naming_camera():
    m = tiny()
    with pytest.raises(TypeError, match="camera: expected a sofgan_lab.cameras.Camera"):
        m.render(latents(1), torch.eye(4))
    cams = Camera.from_orbit([0.0, 10.0, 20.0], 0.0, image_size=8)
    with pytest.raises(ValueError, match="camera: expected 1 or 2 views .* got 3"):
        m.render(latents(2), cams)
    with pytest.raises(ValueError, match="chunk"):
        m.render(latents(1), wide_camera(8), chunk=0)
    with pytest.raises(ValueError, match=r"start_depth: expected shape \(1, 8, 8\)"):
        m.render(latents(1), wide_camera(8), start_depth=torch.zeros(1, 4, 4))


# ------------------------------------------------------------------------------------ rays
def test_start_on_sphere_exact_on_hand_made_rays():
    m = tiny()  # sphere radius 1.5
    origins = torch.tensor([[0.0, 0.0, 5.0],    # outside, toward the centre
                            [0.0, 0.0, 0.5],    # inside
                            [1.5, 0.0, 5.0],    # tangent (grazes (1.5, 0, 0))
                            [3.0, 0.0, 5.0],    # misses
                            [0.0, 0.0, 5.0],    # outside, pointing away
                            [0.0, 0.9, 5.0]])   # outside, off-centre: enters at z = 1.2
    dirs = torch.tensor([[0.0, 0.0, -1.0], [0.0, 0.0, 1.0], [0.0, 0.0, -1.0], [0.0, 0.0, -1.0],
                         [0.0, 0.0, 1.0], [0.0, 0.0, -1.0]])
    start, hit = m.start_on_sphere(origins, dirs)
    assert hit.tolist() == [True, True, False, False, False, True]
    torch.testing.assert_close(start[0], torch.tensor([0.0, 0.0, 1.5]), rtol=0, atol=1e-6)
    torch.testing.assert_close(start[1], origins[1], rtol=0, atol=0)
    torch.testing.assert_close(start[2], torch.tensor([1.5, 0.0, 0.0]), rtol=0, atol=1e-6)
    torch.testing.assert_close(start[5], torch.tensor([0.0, 0.9, 1.2]), rtol=0, atol=1e-5)


def test_rays_missing_the_sphere_are_background_depth_0_and_never_marched(monkeypatch):
    m = tiny()
    cam = wide_camera(16)
    seen = []
    real_march = m.march

    def moving_march(theta, points, directions, steps=None):
        seen.append(points.shape[1])
        return real_march(theta, points, directions, steps) + 100.0 * directions  # would move anything

    monkeypatch.setattr(m, "march", moving_march)
    r = m.render(latents(1), cam)
    rays = cam.rays()
    start, hit = m.start_on_sphere(rays.origins, rays.directions)
    assert torch.equal(r.mask, hit)
    assert 0 < int(hit.sum()) < hit.numel()
    assert sum(seen) == int(hit.sum()), "only rays that meet the sphere may be marched"
    miss = ~r.mask
    assert (r.labels[miss] == int(SOF.BACKGROUND)).all()
    assert (r.depth[miss] == 0).all()
    lg = r.logits.permute(0, 2, 3, 1)[miss]
    assert (lg[:, int(SOF.BACKGROUND)] == 0).all() and (lg[:, 1:] == MISS_LOGIT).all()
    assert torch.equal(r.points[miss], start[miss]), "missed rays keep their start point"
    moved = (r.points[r.mask] - start[r.mask]).norm(dim=-1)
    assert (moved > 50).all(), "hit rays went through the marcher"


# ------------------------------------------------------------------------------------ rendering
def test_render_is_deterministic_and_independent_of_chunk():
    m = tiny()
    z, cam = latents(2), wide_camera(12)
    a = m.render(z, cam)
    b = m.render(z, cam)
    for f in ("logits", "labels", "depth", "mask", "points"):
        assert torch.equal(getattr(a, f), getattr(b, f)), f
    c = m.render(z, cam, chunk=7)
    assert torch.equal(a.labels, c.labels)
    torch.testing.assert_close(c.logits, a.logits, rtol=0, atol=1e-5)
    torch.testing.assert_close(c.depth, a.depth, rtol=0, atol=1e-5)


def test_batched_latents_equal_each_latent_alone():
    m = tiny()
    z = latents(3)
    cams = Camera.from_orbit([0.0, 15.0, -20.0], [0.0, 5.0, -5.0], image_size=10, pixels_per_unit=1.5)
    together = m.render(z, cams)
    for i in range(3):
        alone = m.render(z[i:i + 1], cams[i])
        torch.testing.assert_close(together.logits[i:i + 1], alone.logits, rtol=0, atol=1e-5)
        torch.testing.assert_close(together.depth[i:i + 1], alone.depth, rtol=0, atol=1e-5)
        assert torch.equal(together.mask[i:i + 1], alone.mask)
    shared = m.render(z, cams[0])  # one view shared by every latent
    torch.testing.assert_close(shared.logits[0], together.logits[0], rtol=0, atol=1e-5)


@pytest.mark.parametrize("fov", [None, 30.0])
def test_orthographic_and_perspective_cameras_both_render(fov):
    m = tiny()
    cam = Camera.from_orbit(10.0, 5.0, image_size=(12, 10), fov=fov)
    assert cam.orthographic is (fov is None)
    r = m.render(latents(1), cam)
    assert r.logits.shape == (1, 20, 12, 10) and r.logits.dtype == torch.float32
    assert r.labels.shape == (1, 12, 10) and r.labels.dtype == torch.int64
    assert r.depth.shape == r.mask.shape == (1, 12, 10) and r.points.shape == (1, 12, 10, 3)
    assert torch.isfinite(r.logits).all() and r.mask.any()
    # depth is the camera-space z of the final points
    cz = cam.to_camera(r.points.reshape(1, -1, 3))[..., 2].view(1, 12, 10)
    torch.testing.assert_close(r.depth[r.mask], cz[r.mask], rtol=0, atol=1e-4)
    assert torch.equal(r.labels, r.logits.argmax(1))


def test_forward_rays_is_differentiable_in_z():
    m = tiny()
    z = latents(1).requires_grad_(True)
    rays = wide_camera(6).rays()
    logits, points, hit = m.forward_rays(z, rays.origins.reshape(1, -1, 3), rays.directions.reshape(1, -1, 3))
    assert logits.shape == (1, 36, 20) and points.shape == (1, 36, 3) and hit.shape == (1, 36)
    (logits[hit].logsumexp(-1).sum() + points[hit].sum()).backward()
    assert z.grad is not None and torch.isfinite(z.grad).all() and z.grad.abs().sum() > 0


# ------------------------------------------------------------------------------------ checkpoints
def test_save_and_load_round_trip_gives_identical_renders(tmp_path):
    m = tiny(num_instances=2)
    m.save_pretrained(tmp_path / "ckpt")
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["config.json", "model.safetensors"]
    back = SemanticOccupancyField.from_pretrained(tmp_path / "ckpt")
    assert back.config == m.config
    z, cam = latents(2), wide_camera(8)
    a, b = m.render(z, cam), back.render(z, cam)
    assert torch.equal(a.logits, b.logits) and torch.equal(a.depth, b.depth)
    assert torch.equal(back.latents.weight, m.latents.weight)


def test_missing_or_corrupt_checkpoint_files_raise_naming_the_file(tmp_path):
    m = tiny()
    d = m.save_pretrained(tmp_path / "ckpt")
    (d / "model.safetensors").write_bytes(b"\x00garbage")
    with pytest.raises(CheckpointError, match="model.safetensors"):
        SemanticOccupancyField.from_pretrained(d)
    (d / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="model.safetensors"):
        SemanticOccupancyField.from_pretrained(d)
    m.save_pretrained(d)
    (d / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="config.json"):
        SemanticOccupancyField.from_pretrained(d)
    (d / "config.json").unlink()
    with pytest.raises(CheckpointError, match="config.json"):
        SemanticOccupancyField.from_pretrained(d)
    other = tiny(phi_dim=8)
    other.save_pretrained(tmp_path / "other")
    m.save_pretrained(d)
    (d / "model.safetensors").write_bytes((tmp_path / "other" / "model.safetensors").read_bytes())
    with pytest.raises(CheckpointError, match="model.safetensors.*shape"):
        SemanticOccupancyField.from_pretrained(d)


def test_saved_files_get_the_usual_permissions(tmp_path):
    import os

    umask = os.umask(0)
    os.umask(umask)
    torch.manual_seed(0)
    m = SemanticOccupancyField(SOFConfig(latent_dim=8, hyper_dim=8, phi_dim=8, marcher_dim=8, classifier_dim=8))
    d = m.save_pretrained(tmp_path / "m")
    for f in ("config.json", "model.safetensors"):
        assert (d / f).stat().st_mode & 0o777 == 0o666 & ~umask, f


# ------------------------------------------------------------------ issue 20: rendering arguments
@pytest.mark.parametrize("kw, exc, match", [
    (dict(pixel_offset=math.nan), ValueError, r"pixel_offset: expected a number in \[0, 1\], got nan"),  # was: all background
    (dict(pixel_offset=math.inf), ValueError, "pixel_offset"),
    (dict(pixel_offset=7.0), ValueError, "pixel_offset"),
    (dict(pixel_offset="0.5"), TypeError, "pixel_offset"),
    (dict(steps=-1), ValueError, r"steps: expected an integer in 0\.\.1000, got -1"),  # was: no marching
    (dict(steps=2.7), TypeError, "steps: expected an integer .* got 2.7"),               # was: 2 steps
    (dict(steps="abc"), TypeError, "steps: expected an integer .* got 'abc'"),           # was: int()'s error
    (dict(chunk=True), TypeError, "chunk: expected an integer >= 1, got True"),          # was: chunk 1
    (dict(chunk=2.0), TypeError, "chunk"),
    (dict(start_depth=torch.full((1, 8, 8), math.inf)), ValueError,
     "start_depth: contains NaN or infinite values"),                                     # was: inf depth
    (dict(start_depth=torch.full((1, 8, 8), math.nan)), ValueError, "start_depth: contains NaN"),
    (dict(start_depth=torch.full((1, 8, 8), 1e30)), ValueError,
     "start_depth: depths must lie before the far side of the bounding sphere"),
    (dict(start_depth="near"), TypeError, r"start_depth: expected a tensor or numpy array of shape \(1, 8, 8\)"),
    (dict(start_depth=np.zeros((1, 4, 4))), ValueError, r"start_depth: expected shape \(1, 8, 8\)"),
    (dict(start_depth=torch.ones(1, 8, 8, dtype=torch.bool)), TypeError, "start_depth: expected real depths"),
])
def test_bad_render_arguments_are_named(kw, exc, match):
    m = tiny()
    with pytest.raises(exc, match=match):
        m.render(latents(1), wide_camera(8), **kw)


def bounded_marcher(m: SemanticOccupancyField, calls: int = 50) -> SemanticOccupancyField:
    """``m`` whose marcher raises after ``calls`` calls: a render that would hang fails instead."""
    inner, count = m.marcher.forward, [0]

    def forward(*args, **kwargs):
        count[0] += 1
        if count[0] > calls:
            raise RuntimeError(f"the marcher ran more than {calls} times (a render that would hang)")
        return inner(*args, **kwargs)

    m.marcher.forward = forward
    return m


def test_a_billion_steps_are_refused_before_marching():
    """``steps=10**9`` (or a config.json's march_steps) made the render hang."""
    m = bounded_marcher(tiny())
    with pytest.raises(ValueError, match=r"steps: expected an integer in 0\.\.1000, got 1000000000"):
        m.render(latents(1), wide_camera(8), steps=10 ** 9)
    assert m.render(latents(1), wide_camera(8), steps=4).labels.shape == (1, 8, 8)


def test_numpy_start_depth_and_steps_are_accepted():
    """A numpy ``start_depth`` raised AttributeError; numpy integers and one number are fine too."""
    m, z, cam = tiny(), latents(1), wide_camera(8)
    depth = torch.full((1, 8, 8), 4.0)
    depth[0, :, :3] = 0.0  # these pixels keep the sphere start
    ref = m.render(z, cam, start_depth=depth, steps=3)
    for sd in (depth.numpy(), depth.numpy().astype(np.float64)):
        got = m.render(z, cam, start_depth=sd, steps=np.int64(3))
        assert torch.equal(got.logits, ref.logits) and torch.equal(got.depth, ref.depth)
    flat = m.render(z, cam, start_depth=np.float32(4.0))
    assert torch.equal(flat.logits, m.render(z, cam, start_depth=torch.full((1, 8, 8), 4.0)).logits)
    with pytest.raises(ValueError, match="steps"):
        m.march(m.hyper_weights(z), torch.zeros(1, 2, 3), torch.ones(1, 2, 3), steps=-2)


@pytest.mark.parametrize("name, value", [
    ("march_steps", 10 ** 9), ("phi_dim", 10 ** 6), ("latent_dim", 5000), ("phi_layers", 10 ** 4),
    ("num_instances", 10 ** 12), ("num_classes", 10 ** 5), ("sphere_radius", 1e300),
])
def test_config_upper_bounds_keep_a_tampered_config_from_hanging(name, value):
    """A config.json with ``march_steps`` 10^9 made every render hang."""
    with pytest.raises(ValueError, match=name):
        SOFConfig(**{name: value})
    with pytest.raises(ValueError, match=name):
        SOFConfig.from_dict({**SOFConfig().to_dict(), name: value})
    SOFConfig.official()  # the release is inside the bounds


def test_huge_latents_and_depths_are_refused_not_rendered_as_nan():
    """``z`` of 1e20 rendered NaN logits and depth; a start depth of 1e300 raised torch's RuntimeError."""
    m = tiny()
    with pytest.raises(ValueError, match="z: values must lie within ±1e\\+06, got one of magnitude 1e\\+20"):
        m.render(torch.full((1, 8), 1e20), wide_camera(8))
    with pytest.raises(ValueError, match="start_depth"):
        m.render(latents(1), wide_camera(8), start_depth=1e300)
    r = m.render(torch.full((1, 8), 1e6), wide_camera(8))
    assert torch.isfinite(r.logits).all() and torch.isfinite(r.depth).all()
