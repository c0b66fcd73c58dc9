"""The device-sensitive paths on the ``--device`` of the run (``./dev test --device cuda``), each compared
with the same work on the CPU: SOF rendering (labels and probabilities), the SIW generator, the whole
pipeline, segmap inversion and a few SOF training steps. On the default ``--device cpu`` the two sides
are the same device and must agree exactly; on a GPU they agree to float32 kernel differences (TF32
is turned off for the comparison). Skipped when the device is absent (the ``device`` fixture).
"""
from __future__ import annotations

import contextlib

import numpy as np
import pytest
import torch

from sofgan_lab.cameras import Camera
from sofgan_lab.geometry import SemanticOccupancyField
from _tiny import tiny_pipeline, tiny_siw  # tests/_tiny.py

pytestmark = pytest.mark.usefixtures("one_thread")


@contextlib.contextmanager
def _no_tf32():
    """Full float32 matmuls and convolutions on CUDA (TF32 would make the GPU side differ by ~1e-3)."""
    old = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old


def _tol(device: torch.device, cpu: float, other: float) -> float:
    return cpu if device.type == "cpu" else other


def test_sof_render_on_the_device_matches_the_cpu(device):
    sof = SemanticOccupancyField.from_pretrained("demo").eval()
    z = sof.latents.weight[:2].detach()
    cam = Camera.from_orbit([0.0, 20.0], [0.0, 5.0], image_size=32)
    with torch.no_grad(), _no_tf32():
        ref = sof.render(z, cam)
        got = sof.to(device).render(z.to(device), cam.to(device))
    assert got.labels.device.type == device.type
    agree = float((got.labels.cpu() == ref.labels).double().mean())
    assert agree >= _tol(device, 1.0, 0.999), f"labels agree on {100 * agree:.2f}% of the pixels"
    torch.testing.assert_close(got.probs.cpu(), ref.probs, atol=_tol(device, 0.0, 1e-4), rtol=0)


def test_siw_generator_on_the_device_matches_the_cpu(device):
    g = tiny_siw()
    seg = torch.randint(0, 17, (2, 32, 32), generator=torch.Generator().manual_seed(0))  # SofGAN-17 ids
    z = g.random_z(2, 1, seed=0)
    with torch.no_grad(), _no_tf32():
        ref = g(seg, z)
        got = g.to(device)(seg.to(device), z.to(device))
    assert got.device.type == device.type and torch.isfinite(got).all()
    torch.testing.assert_close(got.cpu(), ref, atol=_tol(device, 0.0, 1e-4), rtol=0)


def test_pipeline_portrait_on_the_device_matches_the_cpu(device):
    ref = tiny_pipeline()(geometry=1, texture=2).array.astype(np.int16)
    with _no_tf32():
        got = tiny_pipeline().to(device)(geometry=1, texture=2).array.astype(np.int16)
    diff = np.abs(got - ref)
    assert diff.max() <= _tol(device, 0, 2), f"the portraits differ by up to {diff.max()}/255"


def test_inversion_on_the_device_matches_the_cpu(device):
    from sofgan_lab.geometry.inversion import invert_segmap

    sof = SemanticOccupancyField.from_pretrained("demo").eval()
    cam = Camera.from_orbit(0.0, 0.0, image_size=24)
    with torch.no_grad():
        target = sof.render(sof.latents.weight[1:2].detach(), cam).labels[0]
    kwargs = dict(steps=4, eval_every=2, rays_per_step=256, seed=0)
    with _no_tf32():
        ref = invert_segmap(sof, target, cam, **kwargs)
        got = invert_segmap(sof.to(device), target.to(device), cam.to(device), **kwargs)
    assert got.z.device.type == device.type
    assert abs(got.miou - ref.miou) <= _tol(device, 0.0, 0.02), (got.miou, ref.miou)
    torch.testing.assert_close(got.z.cpu(), ref.z, atol=_tol(device, 0.0, 1e-3), rtol=0)


def test_sof_training_steps_on_the_device_match_the_cpu(device, scans, tmp_path):
    from sofgan_lab.geometry import SOFConfig
    from sofgan_lab.train.sof_trainer import SOFTrainConfig, train_sof

    if device.type not in ("cpu", "cuda"):
        pytest.skip(f"the trainers run on cpu or cuda, not {device.type}")
    tiny = SOFConfig(latent_dim=16, hyper_dim=16, phi_dim=16, marcher_dim=16, classifier_dim=16,
                     classifier_layers=1, march_steps=3)
    runs = {}
    with _no_tf32():
        for name, dev in (("ref", "cpu"), ("dev", device.type)):
            cfg = SOFTrainConfig.tiny(steps=6, checkpoint_every=6, device=dev)
            runs[name] = train_sof(scans, tmp_path / name, model_config=tiny, train_config=cfg, progress=False)
    a, b = (runs[n].model.state_dict() for n in ("ref", "dev"))
    worst = max(float((a[k].float() - b[k].float().cpu()).abs().max()) for k in a)
    assert worst <= _tol(device, 0.0, 1e-3), f"the weights after 6 steps differ by up to {worst:.2e}"
