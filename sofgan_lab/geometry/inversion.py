"""Inversion of a single segmentation map into the SOF geometry space (paper §6.4, Fig. 9).

The networks stay frozen; only the geometry latent z_g (and optionally the camera's yaw, pitch
and distance, or scale for an orthographic camera) is optimised so that the rendered label map
matches the given one under cross-entropy, with a small penalty on ``‖z‖²``.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..cameras import Camera
from ..labels import NUM_SOF_CLASSES, celebamask_to_sof, validate_labels
from ..confusion import ConfusionMatrix
from .sof import SemanticOccupancyField, rays_as_bundle

__all__ = ["InversionResult", "invert_segmap"]

log = logging.getLogger(__name__)


@dataclass
class InversionResult:
    """``z`` (latent_dim,) the fitted code; ``camera`` the (fitted) camera; ``labels`` (H, W) its
    render (SOF-20); ``miou_curve`` [(step, mIoU)]; ``losses`` per step; ``camera_params`` the
    fitted yaw/pitch/radius (degrees, world units) when the camera was optimised."""

    z: torch.Tensor
    camera: Camera
    labels: torch.Tensor
    miou: float
    miou_curve: list = field(default_factory=list)
    losses: list = field(default_factory=list)
    camera_params: dict | None = None


def _miou(pred: torch.Tensor, target: torch.Tensor) -> float:
    cm = ConfusionMatrix(NUM_SOF_CLASSES)
    cm.update(pred, target)
    return float(cm.miou())


def _target_labels(segmap: Any, label_set: str) -> torch.Tensor:
    """The map to invert as SOF-20 ids ``(H, W)`` (CelebAMask-HQ ids converted with the nose split)."""
    seg = torch.as_tensor(np.asarray(segmap) if not isinstance(segmap, torch.Tensor) else segmap)
    if seg.dim() != 2:
        raise ValueError(f"segmap: expected shape (H, W), got {tuple(seg.shape)}")
    if label_set == "celebamask19":
        seg = torch.as_tensor(celebamask_to_sof(seg.numpy()))
    elif label_set != "sof20":
        raise ValueError(f"label_set: expected 'sof20' or 'celebamask19', got {label_set!r}")
    validate_labels(seg, "sof20", name="segmap")
    return seg


def _view_camera(camera: Camera | None, H: int, W: int, dev: torch.device) -> Camera:
    """The view of an ``(H, W)`` map (default: frontal orthographic), one view, float32 on ``dev``."""
    if camera is None:
        camera = Camera.from_orbit(0.0, 0.0, image_size=(H, W))
    if not isinstance(camera, Camera):
        raise TypeError(f"camera: expected a Camera, got {type(camera).__name__}")
    if camera.batch_size != 1 or camera.image_size != (H, W):
        raise ValueError(f"camera: expected one view of size {(H, W)}, got {camera.batch_size} "
                         f"view(s) of size {camera.image_size}")
    return camera.to(device=dev, dtype=torch.float32)


class _CameraFit:
    """The camera of an inversion: the given one, or (``optimize``) yaw, pitch and a log scale fitted
    from it, orbiting the default target (the scale is the radius's for a perspective camera and the
    focal length's for an orthographic one, whose distance does not change the image)."""

    def __init__(self, camera: Camera, optimize: bool):
        self.base, self.optimize, self.params = camera, optimize, []
        if not optimize:
            return
        dev = camera.cam2world.device
        pos = camera.position[0] - torch.tensor([0.0, 0.1, 0.0], device=dev)
        radius = pos.norm()
        yaw = torch.rad2deg(torch.atan2(pos[0], pos[2]))
        pitch = torch.rad2deg(torch.asin((pos[1] / radius).clamp(-1, 1)))
        self.yaw = yaw.detach().clone().requires_grad_(True)
        self.pitch = pitch.detach().clone().requires_grad_(True)
        self.log_scale = torch.zeros((), device=dev, requires_grad=True)
        self.params = [self.yaw, self.pitch, self.log_scale]
        self.base_k, self.base_radius = camera.intrinsics[0].detach(), radius.detach()

    def camera(self) -> Camera:
        if not self.optimize:
            return self.base
        size, dev, scale = self.base.image_size, self.base.cam2world.device, self.log_scale.exp()
        if self.base.orthographic:
            cam = Camera.from_orbit(self.yaw[None], self.pitch[None], self.base_radius, image_size=size, device=dev)
            k = self.base_k.clone()
            k[0, 0], k[1, 1] = self.base_k[0, 0] * scale, self.base_k[1, 1] * scale
            return Camera(cam2world=cam.cam2world, intrinsics=k, image_size=size, orthographic=True)
        cam = Camera.from_orbit(self.yaw[None], self.pitch[None], self.base_radius * scale, image_size=size, device=dev)
        return Camera(cam2world=cam.cam2world, intrinsics=self.base_k, image_size=size, orthographic=False)

    def fitted(self) -> dict | None:
        if not self.optimize:
            return None
        return {"yaw": float(self.yaw.detach()), "pitch": float(self.pitch.detach()),
                "scale": float(self.log_scale.detach().exp())}


def invert_segmap(model: SemanticOccupancyField, segmap, camera: Camera | None = None, *,
                  steps: int = 300, lr: float = 0.01, rays_per_step: int = 4096,
                  optimize_camera: bool = False, label_set: str = "sof20", init: torch.Tensor | None = None,
                  latent_weight: float = 1e-3, eval_every: int = 25, seed: int = 0,
                  progress: bool = False) -> InversionResult:
    """Fit a geometry code (and optionally the camera) to one label map.

    Args:
        model: a trained :class:`SemanticOccupancyField` (frozen here; left unchanged).
        segmap: (H, W) integer label map, SOF-20 ids (``label_set="sof20"``) or CelebAMask-HQ ids
            (``label_set="celebamask19"``, converted with the nose split).
        camera: the view the map was seen from; default: a frontal orthographic camera of the
            release's sampler at the map's size. With ``optimize_camera`` it is the starting point
            (yaw, pitch, radius are fitted; for orthographic cameras the scale instead of radius).
        steps: optimisation steps (Adam on z, and camera parameters).
        rays_per_step: random pixels per step (all pixels if larger than the map).
        init: starting code (latent_dim,); default: the mean of the model's latent table (zeros
            if it is empty).
        eval_every: steps between full renders for the mIoU curve.

    Returns:
        :class:`InversionResult`.
    """
    if not isinstance(model, SemanticOccupancyField):
        raise TypeError(f"model: expected a SemanticOccupancyField, got {type(model).__name__}")
    seg = _target_labels(segmap, label_set)
    for name, v, low in (("steps", steps, 1), ("rays_per_step", rays_per_step, 1), ("eval_every", eval_every, 1)):
        if isinstance(v, bool) or not isinstance(v, int) or v < low:
            raise ValueError(f"{name}: expected an integer >= {low}, got {v!r}")
    H, W = seg.shape
    dev = next(model.parameters()).device
    seg = seg.long().to(dev)
    camera = _view_camera(camera, H, W, dev)

    if init is None:
        table = model.latents.weight
        init = table.mean(0) if table.shape[0] else torch.zeros(model.config.latent_dim, device=dev)
    z = model.check_latent(init.detach().to(dev).clone(), "init")[0].clone().requires_grad_(True)
    fit = _CameraFit(camera, optimize_camera)
    current_camera = fit.camera
    opt = torch.optim.Adam([z, *fit.params], lr=lr)
    gen = torch.Generator().manual_seed(seed)
    was_training = model.training
    model.eval()
    frozen = [p.requires_grad for p in model.parameters()]
    for p in model.parameters():
        p.requires_grad_(False)
    curve, losses = [], []
    target = seg.view(-1)
    n_pix = H * W
    try:
        for step in tqdm(range(steps), disable=not progress, desc="invert"):
            cam = current_camera()
            rays = cam.rays()
            o = rays.origins.reshape(1, -1, 3)
            d = rays.directions.reshape(1, -1, 3)
            if rays_per_step < n_pix:
                pix = torch.randperm(n_pix, generator=gen)[:rays_per_step].to(dev)
                o, d, t = o[:, pix], d[:, pix], target[pix]
            else:
                t = target
            logits = model.march_rays(z[None], rays_as_bundle(o, d), chunk=None, march_misses=True).logits
            loss = F.cross_entropy(logits[0], t) + latent_weight * (z * z).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
            if step % eval_every == 0 or step == steps - 1:
                with torch.no_grad():
                    r = model.render(z.detach()[None], current_camera())
                curve.append((step, _miou(r.labels[0], seg)))
    finally:
        for p, f in zip(model.parameters(), frozen):
            p.requires_grad_(f)
        model.train(was_training)
    with torch.no_grad():
        final_cam = current_camera()
        final_cam = Camera(cam2world=final_cam.cam2world.detach(), intrinsics=final_cam.intrinsics.detach(),
                           image_size=(H, W), orthographic=final_cam.orthographic)
        r = model.render(z.detach()[None], final_cam)
    fitted = fit.fitted()
    miou = _miou(r.labels[0], seg)
    log.info("inversion: mIoU %.4f after %d steps", miou, steps)
    return InversionResult(z.detach(), final_cam, r.labels[0], miou, curve, losses, fitted)
