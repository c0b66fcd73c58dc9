"""The semantic occupancy field (SOF): hypernetwork, Θ, MLP ray marcher, classifier.

``z`` (a geometry latent) --hypernetwork--> the weights of Θ, a small MLP over 3D points.
Each camera ray starts on the bounding sphere and is walked to the surface by a learned ray
marcher (an MLP whose layer biases depend on the ray direction and whose output is a signed step
along the ray). At the final point Θ's feature goes through a classifier to 20 class logits
(SOF-20 ids). Structure after paper §4 / Table 4 and the official release (see
``shared/REFERENCE.md``); unlike the release, rendering is deterministic (no random jitter), the
step count is honoured, and rays that miss the bounding sphere are background without marching.

Shapes: ``z`` (B, latent_dim); points (B, N, 3); directions (B, N, 3).
"""
from __future__ import annotations

import logging
import math
import numbers
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .._validate import MAX_CODE_ABS, ArgumentTypeError, check_finite_tensor, check_int, check_number, describe
from ..cameras import Camera, RayBundle
from ..labels import NUM_SOF_CLASSES, SOF

__all__ = ["SOFConfig", "SemanticOccupancyField", "SOFRender", "RayRender", "MISS_LOGIT", "DEFAULT_CHUNK"]

log = logging.getLogger(__name__)

#: Logit given to the non-background classes of rays that miss the bounding sphere.
MISS_LOGIT = -30.0

#: Rays per latent per Θ call when rendering without gradients. Small enough that one chunk's
#: activations stay in a core's L2 cache through all the marcher's layers (at width 256: 2 MiB),
#: large enough for efficient matrix products: 1.3-1.5x faster per ray than 32768 on the
#: development CPU (issue 21, benchmarks/README.md).
DEFAULT_CHUNK = 2048


#: Upper bounds of :class:`SOFConfig` (and of a render's ``steps``): a config.json cannot ask for more.
MAX_MARCH_STEPS = 1000
MAX_WIDTH = 4096
MAX_LAYERS = 64
MAX_INSTANCES = 10_000_000
MAX_SPHERE_RADIUS = 1000.0
_CONFIG_MAX = {"march_steps": MAX_MARCH_STEPS, "phi_layers": MAX_LAYERS, "marcher_layers": MAX_LAYERS,
               "classifier_layers": MAX_LAYERS, "num_instances": MAX_INSTANCES, "num_classes": 256}


def check_steps(steps: Any, default: int) -> int:
    """Marcher steps: ``None`` (``default``, the model's ``march_steps``) or an integer in
    0..:data:`MAX_MARCH_STEPS`; errors name ``steps``."""
    return default if steps is None else check_int(steps, "steps", 0, MAX_MARCH_STEPS)


def check_chunk(chunk: Any) -> int:
    """Rays (or points) per field call: an integer >= 1; errors name ``chunk``."""
    return check_int(chunk, "chunk", 1)


@dataclass(frozen=True)
class SOFConfig:
    """Sizes of a :class:`SemanticOccupancyField`. The defaults are the official model's."""

    latent_dim: int = 256          # size of z_g
    hyper_dim: int = 256           # hidden width of each per-layer hypernetwork (official: = latent_dim)
    phi_dim: int = 256             # width of Θ (3 -> phi_dim -> ... -> phi_dim)
    phi_layers: int = 3            # layers of Θ (each Linear + LayerNorm without affine + ReLU)
    marcher_dim: int = 256         # hidden width of the ray marcher (official: 256, hard-coded)
    marcher_layers: int = 4        # layers of the ray marcher (the last outputs one signed step)
    classifier_dim: int = 256      # hidden width of the classifier (official: = phi_dim)
    classifier_layers: int = 3     # hidden layers of the classifier before the logits layer
    num_classes: int = NUM_SOF_CLASSES  # output classes (SOF-20)
    march_steps: int = 10          # ray-marching steps (official: 10)
    sphere_radius: float = 1.5     # rays start on this sphere around the origin
    num_instances: int = 0         # rows of the auto-decoder latent table (training instances)

    def __post_init__(self):
        # bounds keep a tampered config.json from hanging rendering (march_steps) or asking for
        # terabytes (widths, layers, the latent table); the official and demo sizes are far inside them
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name == "sphere_radius":
                if isinstance(v, bool) or not isinstance(v, (int, float)) or not (
                        math.isfinite(v) and 0 < v <= MAX_SPHERE_RADIUS):
                    raise ValueError(f"sphere_radius: expected a positive number <= {MAX_SPHERE_RADIUS:g}, "
                                     f"got {v!r}")
                continue
            if isinstance(v, bool) or not isinstance(v, int):
                raise TypeError(f"{f.name}: expected an integer, got {type(v).__name__}")
            low = 0 if f.name in ("num_instances", "march_steps") else 1
            high = _CONFIG_MAX.get(f.name, MAX_WIDTH)
            if v < low:
                raise ValueError(f"{f.name}: expected an integer >= {low}, got {v}")
            if v > high:
                raise ValueError(f"{f.name}: expected an integer in {low}..{high}, got {v}")

    @classmethod
    def official(cls, num_instances: int = 0) -> "SOFConfig":
        """The released model's sizes (≈35 M parameters, almost all in the hypernetworks)."""
        return cls(num_instances=num_instances)

    @classmethod
    def small(cls, num_instances: int = 0) -> "SOFConfig":
        """The demo's sizes: trainable on a CPU in tens of minutes."""
        return cls(latent_dim=64, hyper_dim=64, phi_dim=64, marcher_dim=64, classifier_dim=64,
                   num_instances=num_instances)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "SOFConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"config: unknown SOFConfig fields {unknown}")
        return cls(**d)


@dataclass(frozen=True)
class SOFRender:
    """A rendered batch. ``logits`` (B, C, H, W) float32; ``labels`` (B, H, W) int64 SOF-20 ids;
    ``depth`` (B, H, W) float32 camera-space z of the final point (0 where the ray missed the
    bounding sphere); ``mask`` (B, H, W) bool, rays that met the sphere; ``points`` (B, H, W, 3)."""

    logits: torch.Tensor
    labels: torch.Tensor
    depth: torch.Tensor
    mask: torch.Tensor
    points: torch.Tensor

    @property
    def probs(self) -> torch.Tensor:
        """(B, C, H, W) class probabilities."""
        return self.logits.softmax(1)


@dataclass(frozen=True, eq=False)
class RayRender:
    """What :meth:`SemanticOccupancyField.march_rays` returns for B latents and N rays (the
    bundle's pixels, row-major): ``logits`` (B, N, C) float32 (rays that missed the bounding sphere:
    0 for background, :data:`MISS_LOGIT` for the rest); ``points`` (B, N, 3) final points (the start
    point where a miss was not marched); ``hit`` (B, N) bool, rays that met the sphere."""

    logits: torch.Tensor
    points: torch.Tensor
    hit: torch.Tensor


def rays_as_bundle(origins: torch.Tensor, directions: torch.Tensor) -> RayBundle:
    """Loose rays ``(B, N, 3)`` as a :class:`~sofgan_lab.cameras.RayBundle` of B one-row images
    ``(B, 1, N, 3)`` (what :meth:`SemanticOccupancyField.march_rays` takes)."""
    for name, t in (("origins", origins), ("directions", directions)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name}: expected a torch.Tensor, got {type(t).__name__}")
        if t.dim() != 3 or t.shape[-1] != 3:
            raise ValueError(f"{name}: expected shape (B, N, 3), got {tuple(t.shape)}")
    return RayBundle(origins=origins[:, None], directions=directions[:, None])


class _HyperLayer(nn.Module):
    """Emits the weight (out, in) and bias (out,) of one Θ layer from z (official layout)."""

    def __init__(self, latent_dim: int, hidden: int, fan_in: int, fan_out: int):
        super().__init__()
        self.fan_in, self.fan_out = fan_in, fan_out
        self.net = nn.Sequential(
            nn.Linear(latent_dim, hidden), nn.LayerNorm(hidden), nn.ReLU(),
            nn.Linear(hidden, hidden), nn.LayerNorm(hidden), nn.ReLU(),
            nn.Linear(hidden, fan_in * fan_out + fan_out),
        )
        for m in self.net:
            if isinstance(m, nn.Linear):
                nn.init.kaiming_normal_(m.weight, a=0.0, nonlinearity="relu", mode="fan_in")
        with torch.no_grad():
            self.net[-1].weight.mul_(0.1)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        o = self.net(z)
        n = self.fan_in * self.fan_out
        return o[:, :n].view(-1, self.fan_out, self.fan_in), o[:, n:]


class _RayMarcher(nn.Module):
    """u_{k+1} = M_k u_k + (G_k d + g_k), ReLU between layers; the last layer gives the step."""

    def __init__(self, in_dim: int, hidden: int, layers: int):
        super().__init__()
        dims = [in_dim] + [hidden] * (layers - 1) + [1]
        self.weights = nn.ModuleList(nn.Linear(dims[k], dims[k + 1], bias=False) for k in range(layers))
        self.dir_bias = nn.ModuleList(nn.Linear(3, dims[k + 1]) for k in range(layers))

    def biases(self, direction: torch.Tensor) -> list[torch.Tensor]:
        """The direction-conditioned biases G_k d + g_k (constant along a ray: computed once)."""
        return [b(direction) for b in self.dir_bias]

    def forward(self, feature: torch.Tensor, biases: list[torch.Tensor]) -> torch.Tensor:
        """Signed step (...,) from Θ's ``feature`` (..., in_dim) and the ray's :meth:`biases`.

        Each layer is one ``addmm`` (the per-ray bias accumulated by the matrix product, no
        separate pass over memory) and an in-place ReLU."""
        shape = feature.shape[:-1]
        u = feature.reshape(-1, feature.shape[-1])
        last = len(self.weights) - 1
        for k, (w, b) in enumerate(zip(self.weights, biases)):
            u = torch.addmm(b.reshape(-1, b.shape[-1]), u, w.weight.t())
            if k < last:
                u = u.relu_()
        return u.view(*shape, -1)[..., 0]


class SemanticOccupancyField(nn.Module):
    """The SOF geometry model (paper §4).

    Args:
        config: a :class:`SOFConfig`; ``config.num_instances`` rows of learnable latents (the
            auto-decoder table, initialised N(0, 0.01²)) are held in ``self.latents``.
    """

    def __init__(self, config: SOFConfig | None = None):
        super().__init__()
        cfg = config or SOFConfig()
        if not isinstance(cfg, SOFConfig):
            raise TypeError(f"config: expected a SOFConfig, got {type(cfg).__name__}")
        self.config = cfg
        dims = [3] + [cfg.phi_dim] * cfg.phi_layers
        self.hyper = nn.ModuleList(
            _HyperLayer(cfg.latent_dim, cfg.hyper_dim, dims[i], dims[i + 1]) for i in range(cfg.phi_layers))
        self.marcher = _RayMarcher(cfg.phi_dim, cfg.marcher_dim, cfg.marcher_layers)
        layers: list[nn.Module] = []
        d = cfg.phi_dim
        for _ in range(cfg.classifier_layers):
            lin = nn.Linear(d, cfg.classifier_dim)
            nn.init.kaiming_normal_(lin.weight, a=0.0, nonlinearity="relu", mode="fan_in")
            layers += [lin, nn.LayerNorm(cfg.classifier_dim), nn.ReLU()]
            d = cfg.classifier_dim
        out = nn.Linear(d, cfg.num_classes)
        nn.init.kaiming_normal_(out.weight, a=0.0, nonlinearity="relu", mode="fan_in")
        self.classifier = nn.Sequential(*layers, out)
        self.latents = nn.Embedding(max(cfg.num_instances, 0), cfg.latent_dim)
        nn.init.normal_(self.latents.weight, 0.0, 0.01)

    # ------------------------------------------------------------------ pieces
    def check_latent(self, z: torch.Tensor, name: str = "z") -> torch.Tensor:
        """Validate ``z`` (B, latent_dim) or (latent_dim,) -> (B, latent_dim) float."""
        if not isinstance(z, torch.Tensor):
            raise TypeError(f"{name}: expected a torch.Tensor, got {type(z).__name__}")
        if z.dim() == 1:
            z = z[None]
        if z.dim() != 2 or z.shape[1] != self.config.latent_dim:
            raise ValueError(f"{name}: expected shape (B, {self.config.latent_dim}), got {tuple(z.shape)}")
        zf = z if z.is_floating_point() else z.float()
        top = float(zf.detach().abs().amax()) if z.numel() else 0.0  # one reduction; NaN propagates
        if not math.isfinite(top):
            raise ValueError(f"{name}: contains non-finite values")
        if top > MAX_CODE_ABS:  # larger codes overflow the hypernetwork: a NaN render
            raise ValueError(f"{name}: values must lie within ±{MAX_CODE_ABS:g}, got one of magnitude {top:.3g}")
        return z.float() if not z.is_floating_point() else z

    def hyper_weights(self, z: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Θ's layers for each latent: [(W (B, out, in), b (B, out)), ...], generated once per z."""
        return [h(z) for h in self.hyper]

    @staticmethod
    def phi(theta: list[tuple[torch.Tensor, torch.Tensor]], points: torch.Tensor) -> torch.Tensor:
        """Θ at ``points`` (B, N, 3) -> features (B, N, phi_dim), batched over latents."""
        x = points
        for w, b in theta:
            x = torch.baddbmm(b[:, None, :], x, w.transpose(1, 2))
            x = F.layer_norm(x, x.shape[-1:]).relu_()  # in place: LayerNorm's backward keeps its input
        return x

    def march(self, theta, points: torch.Tensor, directions: torch.Tensor,
              steps: int | None = None) -> torch.Tensor:
        """Walk ``points`` (B, N, 3) along ``directions`` for ``steps`` learned steps."""
        n = check_steps(steps, self.config.march_steps)
        biases = self.marcher.biases(directions)
        p = points
        for _ in range(n):
            p = p + self.marcher(self.phi(theta, p), biases)[..., None] * directions
        return p

    def classify(self, theta, points: torch.Tensor) -> torch.Tensor:
        """Class logits (B, N, num_classes) at ``points`` (B, N, 3)."""
        return self.classifier(self.phi(theta, points))

    # ------------------------------------------------------------------ rays
    def start_on_sphere(self, origins: torch.Tensor, directions: torch.Tensor):
        """Near intersection of rays with the bounding sphere -> (start (..., 3), hit (...) bool).

        Rays starting inside the sphere start at their origin."""
        r = self.config.sphere_radius
        b = (origins * directions).sum(-1)
        c = (origins * origins).sum(-1) - r * r
        disc = b * b - c
        t = (-b - torch.sqrt(disc.clamp_min(0))).clamp_min(0)
        hit = (disc > 0) & ((-b + torch.sqrt(disc.clamp_min(0))) > 0)
        return origins + directions * t[..., None], hit

    def march_rays(self, z: torch.Tensor, rays: RayBundle, *, start: torch.Tensor | None = None,
                   steps: int | None = None, chunk: int | None = DEFAULT_CHUNK, march_misses: bool = False,
                   theta: list[tuple[torch.Tensor, torch.Tensor]] | None = None) -> RayRender:
        """The one SOF marcher: march ``rays`` for each latent and classify the final points.

        Every renderer goes through it (:meth:`render`, adaptive rendering, the depth prior,
        :func:`~.rendering.render_rays`), and so do training and inversion (with gradients).

        Args:
            z: (B, latent_dim) latents.
            rays: a :class:`~sofgan_lab.cameras.RayBundle` of 1 (shared) or B images (B, H, W, 3),
                unit directions; loose rays (B, N, 3) go through :func:`rays_as_bundle`. Its device
                and dtype are used as they are.
            start: optional (1 or B, H, W, 3) start points overriding the sphere start (the depth prior).
            steps: marcher steps (None: ``config.march_steps``).
            chunk: rays per latent per Θ call (None: all the rays of all latents in one call, which
                is what gradients want); bounds the memory.
            march_misses: False (rendering): rays that miss the bounding sphere are background
                without marching and keep their start point; True (training, inversion: the
                release's loss sees every ray): they are marched too, their logits still set to the
                miss logits.
            theta: Θ's layers from :meth:`hyper_weights` of these ``z`` (saves recomputing them).

        Returns:
            :class:`RayRender` with N = H·W rays per latent, on the rays' device.
        """
        z = self.check_latent(z)
        if not isinstance(rays, RayBundle):
            raise TypeError(f"rays: expected a sofgan_lab.cameras.RayBundle, got {type(rays).__name__}")
        B = z.shape[0]
        if rays.batch_size not in (1, B):
            raise ValueError(f"rays: expected 1 or {B} images (one per latent), got {rays.batch_size}")
        if chunk is not None and (isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1):
            raise ValueError(f"chunk: expected a positive integer or None, got {chunk!r}")
        o = rays.origins.reshape(rays.batch_size, -1, 3).expand(B, -1, -1)
        d = rays.directions.reshape(rays.batch_size, -1, 3).expand(B, -1, -1)
        N = o.shape[1]
        p0, hit = self.start_on_sphere(o, d)
        if start is not None:
            if start.dim() != 4 or start.shape[0] not in (1, B) or start.shape[1:] != rays.origins.shape[1:]:
                raise ValueError(f"start: expected shape (1 or {B}, {', '.join(map(str, rays.origins.shape[1:]))}), "
                                 f"got {tuple(start.shape)}")
            p0 = start.reshape(start.shape[0], -1, 3).expand(B, -1, -1)
        theta = self.hyper_weights(z) if theta is None else theta
        C = self.config.num_classes
        miss = torch.full((C,), MISS_LOGIT, device=o.device, dtype=o.dtype)
        miss[int(SOF.BACKGROUND)] = 0.0
        if chunk is None and march_misses:  # one call for every latent and ray (differentiable)
            p = self.march(theta, p0, d, steps)
            logits = torch.where(hit[..., None], self.classify(theta, p), miss)
            return RayRender(logits, p, hit)
        logits = miss.expand(B, N, C).clone()
        final = p0.clone()
        for bi in range(B):
            idx = torch.arange(N, device=o.device) if march_misses else torch.nonzero(hit[bi]).view(-1)
            th = [(w[bi:bi + 1], b[bi:bi + 1]) for w, b in theta]
            step = idx.numel() if chunk is None else chunk
            for s in range(0, idx.numel(), max(step, 1)):
                j = idx[s:s + step]
                p = self.march(th, p0[bi:bi + 1, j], d[bi:bi + 1, j], steps)
                lg = self.classify(th, p)[0].to(logits.dtype)  # (a no-op but under autocast)
                logits[bi, j] = torch.where(hit[bi, j, None], lg, miss) if march_misses else lg
                final[bi, j] = p[0].to(final.dtype)
        return RayRender(logits, final, hit)

    def forward_rays(self, z: torch.Tensor, origins: torch.Tensor, directions: torch.Tensor, *,
                     start: torch.Tensor | None = None, steps: int | None = None):
        """Loose rays, a tuple back (kept for existing callers; new code calls :meth:`march_rays`):
        origins/directions (B, N, 3) -> logits (B, N, C), final points (B, N, 3), hit (B, N) bool.
        Differentiable; every ray is marched (``march_misses=True``), in one call.

        ``start`` (B, N, 3) overrides the sphere start (the depth prior)."""
        r = self.march_rays(z, rays_as_bundle(origins, directions), start=None if start is None else start[:, None],
                            steps=steps, chunk=None, march_misses=True)
        return r.logits, r.points, r.hit

    # ------------------------------------------------------------------ images
    @torch.no_grad()
    def render(self, z: torch.Tensor, camera: Camera, *, chunk: int = DEFAULT_CHUNK, steps: int | None = None,
               pixel_offset: float = 0.5, start_depth: torch.Tensor | None = None) -> SOFRender:
        """Render label maps of latents ``z`` (B, latent_dim) through ``camera`` (B views, or 1
        view shared by all latents).

        Memory is bounded by ``chunk`` rays per latent at a time; rays that miss the bounding
        sphere are background (logit 0 for background, :data:`MISS_LOGIT` for the rest) without
        marching. ``start_depth`` (B, H, W) finite (tensor or numpy; one number: every pixel), when
        given, starts each ray at that camera-space depth instead of on the sphere (the depth prior;
        pixels with depth <= 0 keep the sphere start; depths beyond the sphere's far side are
        refused). ``steps``: marcher steps, ``None`` (the config's ``march_steps``) or
        0..:data:`MAX_MARCH_STEPS`; ``pixel_offset`` in [0, 1]; ``z`` finite, within ±1e6.
        Runs on the module's device; results are returned on it.
        """
        z = self.check_latent(z)
        if not isinstance(camera, Camera):
            raise TypeError(f"camera: expected a sofgan_lab.cameras.Camera, got {type(camera).__name__}")
        chunk = check_chunk(chunk)
        steps = check_steps(steps, self.config.march_steps)
        B = z.shape[0]
        if camera.batch_size not in (1, B):
            raise ValueError(f"camera: expected 1 or {B} views (one per latent), got {camera.batch_size}")
        dev = next(self.parameters()).device
        z = z.to(dev)
        cam = camera.to(device=dev, dtype=torch.float32)
        rays = cam.rays(pixel_offset=pixel_offset)
        H, W = cam.height, cam.width
        start = None
        if start_depth is not None:
            start_depth = self._check_start_depth(start_depth, (B, H, W))
            o = rays.origins.reshape(cam.batch_size, -1, 3).expand(B, -1, -1)
            d = rays.directions.reshape(cam.batch_size, -1, 3).expand(B, -1, -1)
            sphere, _ = self.start_on_sphere(o, d)
            sd = start_depth.to(dev).reshape(B, -1)
            fwd = cam.forward.expand(B, 3) if cam.batch_size == 1 else cam.forward
            pos = cam.position.expand(B, 3) if cam.batch_size == 1 else cam.position
            far = float(pos.norm(dim=-1).max()) + self.config.sphere_radius  # the sphere's far side
            if sd.numel() and float(sd.max()) > far:
                raise ValueError(f"start_depth: depths must lie before the far side of the bounding sphere "
                                 f"(<= {far:.4g}), got up to {float(sd.max()):.4g}")
            # the point on the ray whose camera-space z is sd
            t = (sd - ((o - pos[:, None]) * fwd[:, None]).sum(-1)) / (d * fwd[:, None]).sum(-1).clamp_min(1e-6)
            prior = o + d * t[..., None]
            start = torch.where((sd > 0)[..., None], prior, sphere).view(B, H, W, 3)
        r = self.march_rays(z, rays, start=start, steps=steps, chunk=chunk)
        final, C = r.points, self.config.num_classes
        pos = cam.position.expand(B, 3) if cam.batch_size == 1 else cam.position
        fwd = cam.forward.expand(B, 3) if cam.batch_size == 1 else cam.forward
        depth = ((final - pos[:, None]) * fwd[:, None]).sum(-1)
        depth = torch.where(r.hit, depth, torch.zeros_like(depth))
        logits = r.logits.view(B, H, W, C).permute(0, 3, 1, 2).contiguous()
        return SOFRender(logits, logits.argmax(1), depth.view(B, H, W), r.hit.view(B, H, W),
                         final.view(B, H, W, 3))

    @staticmethod
    def _check_start_depth(start_depth: Any, shape: tuple[int, int, int]) -> torch.Tensor:
        """``start_depth`` (B, H, W): a float tensor or numpy array of finite depths, or one number (a
        Python or numpy scalar, a 0-d tensor) for every pixel -> float32 tensor."""
        if isinstance(start_depth, numbers.Real) or (isinstance(start_depth, (np.ndarray, torch.Tensor))
                                                     and start_depth.ndim == 0):
            v = check_number(start_depth, "start_depth", -3e38, 3e38)  # within float32
            return torch.full(shape, v, dtype=torch.float32)
        if isinstance(start_depth, np.ndarray) and start_depth.dtype.kind in "fiu":
            start_depth = torch.from_numpy(np.ascontiguousarray(start_depth, dtype=np.float32))
        if not isinstance(start_depth, torch.Tensor):
            raise ArgumentTypeError(f"start_depth: expected a tensor or numpy array of shape {shape}, got "
                                    f"{describe(start_depth)}")
        if tuple(start_depth.shape) != shape:
            raise ValueError(f"start_depth: expected shape {shape}, got {tuple(start_depth.shape)}")
        if start_depth.dtype == torch.bool or start_depth.is_complex():
            raise ArgumentTypeError(f"start_depth: expected real depths, got dtype {start_depth.dtype}")
        return check_finite_tensor(start_depth.float(), "start_depth")

    # ------------------------------------------------------------------ persistence
    def save_pretrained(self, directory: str | Path) -> Path:
        """Write ``config.json`` + ``model.safetensors`` into ``directory`` (atomically)."""
        from ..io.checkpoints import save_module

        return save_module(self, directory, kind="sof", config=self.config.to_dict())

    @classmethod
    def from_pretrained(cls, directory: str | Path, *, map_location: str | torch.device = "cpu"):
        """Load a model written by :meth:`save_pretrained`; ``"demo"`` loads the shipped demo SOF
        (``data/demo/sof``)."""
        from ..io.checkpoints import load_module

        if isinstance(directory, str) and directory == "demo":
            from ..demo import demo_dir

            directory = demo_dir("sof")
        return load_module(cls, directory, kind="sof", config_cls=SOFConfig, map_location=map_location)

    def num_parameters(self, include_latents: bool = True) -> int:
        return sum(p.numel() for n, p in self.named_parameters() if include_latents or not n.startswith("latents"))
