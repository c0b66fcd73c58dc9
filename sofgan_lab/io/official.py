"""Import of the official releases' checkpoints, and an official-compatible SOF forward.

* :func:`load_official_sof` reads a checkpoint of the SOF release (``walnut-REE/sof``:
  ``{'model': state_dict, 'optimizer': ...}``, a bare state dict, or a ``.safetensors`` file),
  infers every width from the tensor shapes and returns a :class:`SemanticOccupancyField`.
* :func:`load_official_sofgan` reads a checkpoint of the SofGAN release (``apchenstu/sofgan``:
  ``{'g', 'd', 'g_ema'}``; ``g_ema`` is used), or a bare ``g_ema`` state dict / ``.safetensors``
  file, and returns an :class:`SIWGenerator`.
* :func:`official_sof_render` evaluates an imported SOF exactly as the release's forward does
  (ray origins at a small depth, the release's sphere snap including rays that miss, exactly 10
  march steps, optional replay of its random jitter). Our own
  :meth:`SemanticOccupancyField.render` deliberately differs (deterministic, pixel centres,
  misses are background); this path exists to prove parity and to reproduce release outputs.

Loading is strict: every tensor of the file must be used, every parameter and buffer of the
model must be filled, and shapes must agree. Any problem raises a
:class:`~sofgan_lab.io.checkpoints.CheckpointError` naming the file and the key. Nothing is ever
unpickled beyond tensors and plain containers (see :mod:`.torchfile`).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from .checkpoints import CheckpointError
from .torchfile import is_state_dict, load_torch_file

__all__ = ["load_official_sof", "load_official_sofgan", "official_sof_render", "OfficialSOFOutput",
           "infer_official_sof_config", "infer_official_sofgan_config", "read_official_state_dict",
           "OFFICIAL_SOF_MARCH_STEPS", "OFFICIAL_SOF_SPHERE_RADIUS", "OFFICIAL_SOF_INIT_DEPTH",
           "OFFICIAL_SOF_SPHERE_JITTER_STD", "fit_official_space", "MIN_SPACE_CODES"]

log = logging.getLogger(__name__)

#: The release's ray marcher always takes 10 steps (its ``tracing_steps`` argument is overwritten).
OFFICIAL_SOF_MARCH_STEPS = 10
#: Radius of the release's initial sphere (centre at the origin).
OFFICIAL_SOF_SPHERE_RADIUS = 1.5
#: Mean and std of the release's random initial z-depth of every ray.
OFFICIAL_SOF_INIT_DEPTH = (0.05, 0.001)
#: Std of the release's random offset along the ray after the sphere snap.
OFFICIAL_SOF_SPHERE_JITTER_STD = 0.01

_SOF = "SOF checkpoint"
_SOFGAN = "SofGAN checkpoint"


# --------------------------------------------------------------------------------------------
# reading and strict loading
# --------------------------------------------------------------------------------------------

def read_official_state_dict(path: str | Path, entry: str, *, what: str = "checkpoint") -> dict[str, torch.Tensor]:
    """The state dict of a checkpoint file: ``file[entry]`` when the file holds a dict with that
    entry, else the file itself when it is a bare state dict (as ``.safetensors`` files are).

    A uniform ``module.`` prefix (a model saved through ``DataParallel``) is removed."""
    obj = load_torch_file(path, what=what)
    if entry in obj:
        state = obj[entry]
        if not is_state_dict(state):
            raise CheckpointError(f"{what} {path}: entry {entry!r} is not a state dict of tensors "
                                  f"(got {type(state).__name__})")
    elif is_state_dict(obj):
        state = obj
    else:
        keys = sorted(map(str, obj))
        raise CheckpointError(f"{what} {path}: no {entry!r} entry (top-level keys: {keys[:8]}) and not a bare "
                              f"state dict of tensors")
    state = dict(state)
    if state and all(k.startswith("module.") for k in state):
        log.info("%s: removing the 'module.' prefix of a DataParallel state dict", path)
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def _need(state: Mapping[str, torch.Tensor], key: str, ndim: int, src: str) -> torch.Size:
    """Shape of ``state[key]``, which must exist and have ``ndim`` dimensions."""
    if key not in state:
        raise CheckpointError(f"{src}: missing key {key!r}")
    shape = state[key].shape
    if len(shape) != ndim:
        raise CheckpointError(f"{src}: key {key!r} has shape {tuple(shape)}, expected {ndim} dimensions")
    return shape


def _count(state: Mapping[str, torch.Tensor], pattern: str, start: int = 0) -> int:
    """Number of consecutive indices ``i = start, start+1, ...`` with ``pattern.format(i)`` in ``state``."""
    n = 0
    while pattern.format(start + n) in state:
        n += 1
    return n


def _load_strict(model: nn.Module, state: Mapping[str, torch.Tensor], mapping: Mapping[str, str], src: str,
                 hint: str) -> None:
    """Load ``state`` (official names) into ``model`` through ``mapping`` (official -> ours), strictly."""
    unexpected = sorted(set(state) - set(mapping))
    if unexpected:
        raise CheckpointError(f"{src}: unexpected key {unexpected[0]!r}"
                              + (f" (and {len(unexpected) - 1} more: {unexpected[1:5]})" if len(unexpected) > 1 else "")
                              + f"; it has no place in {hint}")
    missing = sorted(set(mapping) - set(state))
    if missing:
        raise CheckpointError(f"{src}: missing key {missing[0]!r}"
                              + (f" (and {len(missing) - 1} more: {missing[1:5]})" if len(missing) > 1 else "")
                              + f", needed by {hint}")
    own = model.state_dict()
    unfilled = sorted(set(own) - set(mapping.values()))
    if unfilled:  # a gap in the key map itself, not in the file
        raise CheckpointError(f"{src}: nothing in the file fills the model's {unfilled[0]!r}")
    new = {}
    for key in sorted(mapping):
        v, ours = state[key], own[mapping[key]]
        if v.shape != ours.shape:
            raise CheckpointError(f"{src}: key {key!r} has shape {tuple(v.shape)}, expected {tuple(ours.shape)} "
                                  f"for {hint}")
        if not v.is_floating_point():
            raise CheckpointError(f"{src}: key {key!r} has dtype {v.dtype}, expected floating point")
        if not torch.isfinite(v).all():
            raise CheckpointError(f"{src}: key {key!r} contains non-finite values (NaN or inf)")
        new[mapping[key]] = v.to(ours.dtype)
    model.load_state_dict(new, strict=True)


# --------------------------------------------------------------------------------------------
# SOF
# --------------------------------------------------------------------------------------------

_HYPER = "hyper_phi.layers.{l}.hyper_linear.hypo_params.net"


def infer_official_sof_config(state: Mapping[str, torch.Tensor], *, source: str = "state dict"):
    """The :class:`~sofgan_lab.geometry.sof.SOFConfig` of an official SOF state dict, from shapes.

    ``source`` names the file in error messages."""
    from ..geometry.sof import SOFConfig

    src = source
    phi_layers = _count(state, _HYPER.replace("{l}", "{}") + ".2.weight")
    if phi_layers == 0:
        raise CheckpointError(f"{src}: missing key {_HYPER.format(l=0) + '.2.weight'!r} (not an official SOF "
                              f"state dict?)")
    h = _HYPER.format(l=0)
    hyper_dim, latent_dim = _need(state, f"{h}.0.net.0.weight", 2, src)
    out0 = _need(state, f"{h}.2.weight", 2, src)[0]
    if out0 % 4:
        raise CheckpointError(f"{src}: key {h + '.2.weight'!r} has {out0} outputs; the first Θ layer (3 inputs) "
                              f"needs 4·width (3·width weights + width biases)")
    phi_dim = out0 // 4
    num_instances, code_dim = _need(state, "latent_codes.weight", 2, src)
    if code_dim != latent_dim:
        raise CheckpointError(f"{src}: key 'latent_codes.weight' has shape {(num_instances, code_dim)}, expected "
                              f"(N, {latent_dim}) (the hypernetwork input); checkpoints trained with camera "
                              f"optimisation or animation codes are not supported")
    marcher_layers = _count(state, "ray_marcher.lstm.linear.{}.weight")
    if marcher_layers == 0:
        raise CheckpointError(f"{src}: missing key 'ray_marcher.lstm.linear.0.weight'")
    marcher_dim = (_need(state, "ray_marcher.lstm.linear.0.weight", 2, src)[0] if marcher_layers > 1
                   else SOFConfig.marcher_dim)
    classifier_layers = _count(state, "pixel_generator.net.{}.net.0.weight")
    classifier_dim = (_need(state, "pixel_generator.net.0.net.0.weight", 2, src)[0] if classifier_layers
                      else phi_dim)
    num_classes = _need(state, f"pixel_generator.net.{classifier_layers}.weight", 2, src)[0]
    try:
        return SOFConfig(latent_dim=int(latent_dim), hyper_dim=int(hyper_dim), phi_dim=int(phi_dim),
                         phi_layers=int(phi_layers), marcher_dim=int(marcher_dim),
                         marcher_layers=int(marcher_layers), classifier_dim=int(classifier_dim),
                         classifier_layers=int(classifier_layers), num_classes=int(num_classes),
                         march_steps=OFFICIAL_SOF_MARCH_STEPS, sphere_radius=OFFICIAL_SOF_SPHERE_RADIUS,
                         num_instances=int(num_instances))
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{src}: the tensor shapes give an invalid SOF config ({exc})") from None


def _sof_key_map(model) -> dict[str, str]:
    """Official SOF key -> our key, for every tensor of ``model``."""
    cfg = model.config
    m = {"latent_codes.weight": "latents.weight"}
    for l, hyper in enumerate(model.hyper):
        _map_mlp(m, _HYPER.format(l=l), f"hyper.{l}.net", hyper.net)
    for k in range(cfg.marcher_layers):
        m[f"ray_marcher.lstm.linear.{k}.weight"] = f"marcher.weights.{k}.weight"
        for p in ("weight", "bias"):
            m[f"ray_marcher.lstm.bias.{k}.{p}"] = f"marcher.dir_bias.{k}.{p}"
    _map_mlp(m, "pixel_generator.net", "classifier", model.classifier)
    return m


def _map_mlp(m: dict[str, str], official: str, ours: str, net: nn.Sequential) -> None:
    """Add the keys of one MLP to ``m``: the official ``{official}.{j}`` blocks are ``net.0`` (Linear)
    and ``net.1`` (LayerNorm γ/β, then ReLU) for the hidden layers, then a plain Linear; ``net`` is
    our ``nn.Sequential`` of Linear / LayerNorm / ReLU at ``ours``."""
    lin = [i for i, mod in enumerate(net) if isinstance(mod, nn.Linear)]
    ln = [i for i, mod in enumerate(net) if isinstance(mod, nn.LayerNorm)]
    for j, (a, b) in enumerate(zip(lin[:-1], ln)):
        for p in ("weight", "bias"):
            m[f"{official}.{j}.net.0.{p}"] = f"{ours}.{a}.{p}"
            m[f"{official}.{j}.net.1.{p}"] = f"{ours}.{b}.{p}"
    for p in ("weight", "bias"):
        m[f"{official}.{len(ln)}.{p}"] = f"{ours}.{lin[-1]}.{p}"


def load_official_sof(path: str | Path):
    """Build a :class:`~sofgan_lab.geometry.sof.SemanticOccupancyField` from an official SOF
    checkpoint.

    Args:
        path: the release's ``.pth`` (``{'model': state_dict, 'optimizer': ...}``), a bare state
            dict saved with ``torch.save``, or a ``.safetensors`` file with the official key names.

    Returns:
        The model in eval mode, on the CPU; its config (every width, the number of latent codes)
        is inferred from the tensor shapes, with the release's 10 march steps and radius 1.5.
        Render it with :func:`official_sof_render` to reproduce the release's numbers, or with
        its own :meth:`~sofgan_lab.geometry.sof.SemanticOccupancyField.render` (deterministic).

    Raises:
        CheckpointError: unreadable or unsafe file, no ``model`` entry, missing / unexpected keys
            or wrong shapes (the message names the file and the key).
    """
    from ..geometry.sof import SemanticOccupancyField

    src = f"{_SOF} {path}"
    state = read_official_state_dict(path, "model", what=_SOF)
    cfg = infer_official_sof_config(state, source=src)
    model = SemanticOccupancyField(cfg)
    hint = (f"an official SOF with latent {cfg.latent_dim}, Θ width {cfg.phi_dim} x {cfg.phi_layers}, "
            f"hypernetwork width {cfg.hyper_dim}, marcher {cfg.marcher_dim} x {cfg.marcher_layers}, classifier "
            f"{cfg.classifier_dim} x {cfg.classifier_layers} -> {cfg.num_classes} classes, "
            f"{cfg.num_instances} latent codes")
    _load_strict(model, state, _sof_key_map(model), src, hint)
    log.info("imported %s: %s", src, hint)
    return model.eval()


#: The release fits its geometry sampler to the training codes; fewer codes than this give no space.
MIN_SPACE_CODES = 8


def fit_official_space(sof):
    """The geometry space of an imported SOF, fitted to its latent table as the release's sampler is:
    a GMM of ``min(16, N // 2)`` components over the ``N`` codes (at least two codes per component on
    average; the release uses 16). ``None`` (logged) when the checkpoint holds fewer than
    :data:`MIN_SPACE_CODES` codes."""
    codes = sof.latents.weight.detach()
    if codes.shape[0] < MIN_SPACE_CODES:
        log.info("the SOF checkpoint holds %d latent codes (fewer than %d): no geometry space is fitted; "
                 "sample geometry from its codes or fit one later", codes.shape[0], MIN_SPACE_CODES)
        return None
    from ..geometry.space import GeometrySpace

    return GeometrySpace.fit(codes, n_components=min(16, codes.shape[0] // 2))


@dataclass(frozen=True)
class OfficialSOFOutput:
    """What :func:`official_sof_render` returns. Per ray (``resolution=None``): ``logits``
    (B, N, C), ``labels`` (B, N) int64, ``depth`` (B, N) camera-space z of the final point,
    ``points_init`` / ``points_final`` (B, N, 3) world points after the sphere snap and after the
    last march step, ``points_steps`` (B, 11, N, 3) the point after k = 0..10 steps. With
    ``resolution=(H, W)``: (B, C, H, W), (B, H, W), (B, H, W), (B, H, W, 3), (B, 11, H, W, 3)."""

    logits: torch.Tensor
    labels: torch.Tensor
    depth: torch.Tensor
    points_init: torch.Tensor
    points_final: torch.Tensor
    points_steps: torch.Tensor


def _batched(t, name: str, tail: tuple[int, ...], batch: int, device, dtype=torch.float32) -> torch.Tensor:
    """``t`` with shape ``tail`` or ``(1|batch,) + tail`` -> ``(batch,) + tail``."""
    if not isinstance(t, torch.Tensor):
        t = torch.as_tensor(t)
    if not (t.is_floating_point() or t.dtype in (torch.int32, torch.int64, torch.int16, torch.uint8)):
        raise TypeError(f"{name}: expected a real tensor, got dtype {t.dtype}")
    t = t.to(device=device, dtype=dtype)
    if t.dim() == len(tail):
        t = t[None]
    ok = t.dim() == len(tail) + 1 and t.shape[0] in (1, batch) and all(
        want < 0 or got == want for got, want in zip(t.shape[1:], tail))
    if not ok:
        want = ", ".join("N" if w < 0 else str(w) for w in tail)
        raise ValueError(f"{name}: expected shape ({want}) or (B, {want}) with B = {batch}, got {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise ValueError(f"{name}: contains non-finite values")
    return t.expand((batch,) + tuple(t.shape[1:]))


def _per_ray(t, name: str, batch: int, n: int, device) -> torch.Tensor | None:
    """A per-ray value: N values (any shape, e.g. (H, W)) or B·N values -> (B, N)."""
    if t is None:
        return None
    t = torch.as_tensor(t).to(device=device, dtype=torch.float32)
    if t.numel() == n:
        t = t.reshape(1, n).expand(batch, n)
    elif t.numel() == batch * n:
        t = t.reshape(batch, n)
    else:
        raise ValueError(f"{name}: expected {n} values (one per ray) or {batch}x{n}, got shape {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise ValueError(f"{name}: contains non-finite values")
    return t


def _to_world(c2w: torch.Tensor, pts: torch.Tensor) -> torch.Tensor:
    """Homogeneous transform of points (B, N, 3) by (B, 4, 4)."""
    hom = torch.cat([pts, torch.ones_like(pts[..., :1])], dim=-1)
    return torch.bmm(c2w, hom.transpose(1, 2)).transpose(1, 2)[..., :3]


def official_sof_render(model, z: torch.Tensor, cam2world: torch.Tensor, intrinsics: torch.Tensor,
                        uv: torch.Tensor, *, orthographic: bool, init_depth: torch.Tensor | None = None,
                        sphere_jitter: torch.Tensor | None = None, generator: torch.Generator | None = None,
                        resolution: tuple[int, int] | None = None) -> OfficialSOFOutput:
    """Evaluate ``model`` with the SOF release's forward (see ``shared/fixtures/official/README.md``).

    Per ray: start at z-depth δ (orthographic: on the image plane shifted by δ, not scaled by it),
    move to the point of the ray closest to the origin, step back to the near intersection with the
    radius-1.5 sphere when the ray meets it (rays that miss stay at the closest point and are
    marched like the rest), add ε along the ray, march exactly 10 learned steps, classify Θ at the
    final point; depth is the camera-space z of that point (general 4x4 inverse of ``cam2world``).

    Args:
        model: a :class:`~sofgan_lab.geometry.sof.SemanticOccupancyField` (e.g. from
            :func:`load_official_sof`); its hypernetwork, Θ, marcher and classifier are used.
        z: latents (B, D) or (D,).
        cam2world: (4, 4) or (B, 4, 4), OpenCV convention (x right, y down, z forward).
        intrinsics: (3, 3) or (B, 3, 3), ``[[fx, 0, cx], [0, fy, cy], [0, 0, 1]]`` in pixels.
        uv: (N, 2) or (B, N, 2) pixel coordinates (x, y) as the release uses them (integers, no
            +0.5 for the release's own grids).
        orthographic: the release's ``orthogonal`` flag.
        init_depth: δ per ray (N or B·N values). Default: the release's mean 0.05 (or, with
            ``generator``, a draw from N(0.05, 0.001²) like the release's).
        sphere_jitter: ε per ray (N or B·N values). Default: 0 (or, with ``generator``, a draw
            from N(0, 0.01²) like the release's, which flips ~0.7% of labels).
        generator: a CPU generator for the draws above (statistically like the release's, not
            bit-identical to its global-RNG draws; pass recorded values for that).
        resolution: (H, W) with H·W = N to return images instead of per-ray values.

    Returns:
        An :class:`OfficialSOFOutput` on the model's device. Runs with gradients enabled (wrap it in
        ``torch.no_grad()`` for inference).
    """
    from ..geometry.sof import SemanticOccupancyField

    if not isinstance(model, SemanticOccupancyField):
        raise TypeError(f"model: expected a SemanticOccupancyField, got {type(model).__name__}")
    if not isinstance(orthographic, (bool, int)):
        raise TypeError(f"orthographic: expected a bool, got {type(orthographic).__name__}")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator: expected a torch.Generator, got {type(generator).__name__}")
    dev = next(model.parameters()).device
    z = model.check_latent(z).to(dev)
    B = z.shape[0]
    c2w = _batched(cam2world, "cam2world", (4, 4), B, dev)
    K = _batched(intrinsics, "intrinsics", (3, 3), B, dev)
    uv = _batched(uv, "uv", (-1, 2), B, dev)
    N = uv.shape[1]
    if N == 0:
        raise ValueError("uv: no pixels")
    if resolution is not None:
        H, W = (int(v) for v in resolution)
        if H * W != N:
            raise ValueError(f"resolution: {H}x{W} does not match the {N} rays of uv")
    delta = _per_ray(init_depth, "init_depth", B, N, dev)
    eps = _per_ray(sphere_jitter, "sphere_jitter", B, N, dev)
    if delta is None:
        mean, std = OFFICIAL_SOF_INIT_DEPTH
        delta = (torch.full((B, N), mean, device=dev) if generator is None
                 else (torch.randn(B, N, generator=generator) * std + mean).to(dev))
    if eps is None:
        eps = (torch.zeros(B, N, device=dev) if generator is None
               else (torch.randn(B, N, generator=generator) * OFFICIAL_SOF_SPHERE_JITTER_STD).to(dev))

    # pixel -> camera-plane coordinates
    fx, fy = K[:, 0, 0, None], K[:, 1, 1, None]
    cx, cy = K[:, 0, 2, None], K[:, 1, 2, None]
    xn = (uv[..., 0] - cx) / fx
    yn = (uv[..., 1] - cy) / fy
    t = c2w[:, None, :3, 3]
    if orthographic:
        d = c2w[:, None, :3, 2].expand(B, N, 3)                       # R·(0, 0, 1)
        p = _to_world(c2w, torch.stack([xn, yn, delta], -1))
    else:
        q = _to_world(c2w, torch.stack([xn, yn, torch.ones_like(xn)], -1))
        d = F.normalize(q - t, dim=-1, eps=1e-12)
        p = _to_world(c2w, torch.stack([xn * delta, yn * delta, delta], -1))
    d = d.contiguous()

    # the release's sphere snap (centre 0, radius r)
    r = OFFICIAL_SOF_SPHERE_RADIUS
    v = -p
    length = v.norm(dim=-1, keepdim=True)
    cos = ((v / length) * d).sum(-1, keepdim=True)
    sin = torch.sqrt(1 - cos * cos + 1e-6)
    l_sin, l_cos = sin * length, cos * length
    p = p + l_cos * d
    back = torch.sqrt((r * r - l_sin * l_sin + 1e-6).clamp_min(0))
    p = torch.where(l_sin < r, p - d * back, p)
    p = p + eps[..., None] * d

    theta = model.hyper_weights(z)
    biases = model.marcher.biases(d)
    steps = [p]
    for _ in range(OFFICIAL_SOF_MARCH_STEPS):
        p = p + model.marcher(model.phi(theta, p), biases)[..., None] * d
        steps.append(p)
    logits = model.classify(theta, p)
    depth = _to_world(torch.linalg.inv(c2w), p)[..., 2]
    labels = logits.argmax(-1)
    points_steps = torch.stack(steps, 1)
    if resolution is None:
        return OfficialSOFOutput(logits, labels, depth, steps[0], p, points_steps)
    C = logits.shape[-1]
    return OfficialSOFOutput(logits.reshape(B, H, W, C).permute(0, 3, 1, 2).contiguous(), labels.reshape(B, H, W),
                             depth.reshape(B, H, W), steps[0].reshape(B, H, W, 3), p.reshape(B, H, W, 3),
                             points_steps.reshape(B, len(steps), H, W, 3))


# --------------------------------------------------------------------------------------------
# SofGAN
# --------------------------------------------------------------------------------------------

def infer_official_sofgan_config(state: Mapping[str, torch.Tensor], *, pixel_norm: str = "split",
                                 source: str = "state dict"):
    """The :class:`~sofgan_lab.texture.generator.SIWConfig` of an official SofGAN ``g_ema`` state
    dict, from shapes. ``pixel_norm`` cannot be seen in the weights: ``"split"`` (the release's
    training and notebooks) or ``"whole"`` (its painter UI). ``source`` names the file in errors."""
    from ..texture.generator import SIWConfig

    src = source
    if pixel_norm not in ("split", "whole"):
        raise ValueError(f"pixel_norm: expected 'split' or 'whole', got {pixel_norm!r}")
    if "style.1.weight" not in state:
        raise CheckpointError(f"{src}: missing key 'style.1.weight' (not an official SofGAN generator state dict?)")
    style_dim = _need(state, "style.1.weight", 2, src)[1]
    n_mlp = _count(state, "style.{}.weight", start=1)
    num_classes = _need(state, "segEncoder.0.conv1.0.weight", 4, src)[1]
    encoder = tuple(int(_need(state, f"segEncoder.{i}.conv2.1.weight", 4, src)[0]) for i in range(3))
    levels = _count(state, "to_rgbs.{}.conv.weight")
    if levels == 0:
        raise CheckpointError(f"{src}: missing key 'to_rgbs.0.conv.weight' (not an official SofGAN generator?)")
    size = 2 ** (levels + 2)
    channels = {4: int(_need(state, "conv1.conv.weight", 5, src)[1])}
    spade_res, spade_hidden = [], None
    for lv in range(levels):
        res = 2 ** (lv + 3)
        channels[res] = int(_need(state, f"convs.{2 * lv}.conv.weight", 5, src)[1])
        key = f"convs.{2 * lv}.segEncoder.mlp_shared.0.weight"
        if key in state:
            spade_res.append(res)
            hidden = int(_need(state, key, 4, src)[0])
            if spade_hidden is not None and hidden != spade_hidden:
                raise CheckpointError(f"{src}: key {key!r} has {hidden} outputs, the other SPADE layers {spade_hidden}")
            spade_hidden = hidden
    resolutions = [2 ** (lv + 3) for lv in range(levels)]
    default = SIWConfig.__dataclass_fields__
    lo, hi = default["spade_min"].default, default["spade_max"].default
    if spade_res != [r for r in resolutions if lo <= r <= hi]:
        if spade_res:
            lo, hi = min(spade_res), max(spade_res)
            if spade_res != [r for r in resolutions if lo <= r <= hi]:
                gap = next(r for r in resolutions if lo <= r <= hi and r not in spade_res)
                lv = resolutions.index(gap)
                raise CheckpointError(f"{src}: missing key 'convs.{2 * lv}.segEncoder.mlp_shared.0.weight' "
                                      f"(SPADE layers must cover a contiguous range of resolutions)")
        else:
            lo = hi = 2 * size  # no SPADE layer at all
    try:
        return SIWConfig(size=size, style_dim=int(style_dim), n_mlp=n_mlp, channels=channels,
                         num_classes=int(num_classes), encoder_channels=encoder,
                         spade_hidden=spade_hidden if spade_hidden is not None else default["spade_hidden"].default,
                         spade_min=lo, spade_max=hi, pixel_norm=pixel_norm)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{src}: the tensor shapes give an invalid generator config ({exc})") from None


def load_official_sofgan(path: str | Path, *, pixel_norm: str = "split"):
    """Build an :class:`~sofgan_lab.texture.generator.SIWGenerator` from an official SofGAN checkpoint.

    Args:
        path: the release's ``.pt`` (``{'g': ..., 'd': ..., 'g_ema': ...}``; the EMA generator
            ``g_ema`` is used), a bare ``g_ema`` state dict, or a ``.safetensors`` file.
        pixel_norm: ``"split"`` (each half of z normalised on its own, as in the release's training
            and notebooks) or ``"whole"`` (one PixelNorm, as in its painter UI); the weights do not
            say which, and the two differ visibly.

    Returns:
        The generator in eval mode, on the CPU. Size, style width, mapping depth, channel table,
        seg-encoder widths and SPADE layers are inferred from the shapes; our attribute names are
        the official ones, and the stored noise maps are loaded as the constant noise buffers.

    Raises:
        CheckpointError: unreadable or unsafe file, no ``g_ema`` entry, missing / unexpected keys,
            wrong shapes, or FIR kernels other than the release's [1, 3, 3, 1] (the message names
            the file and the key).
    """
    from ..texture.generator import SIWGenerator

    src = f"{_SOFGAN} {path}"
    if pixel_norm not in ("split", "whole"):
        raise ValueError(f"pixel_norm: expected 'split' or 'whole', got {pixel_norm!r}")
    state = read_official_state_dict(path, "g_ema", what=_SOFGAN)
    cfg = infer_official_sofgan_config(state, pixel_norm=pixel_norm, source=src)
    g = SIWGenerator(cfg)
    own = g.state_dict()
    hint = (f"an official SofGAN generator of size {cfg.size}, style {cfg.style_dim}, {cfg.n_mlp} mapping layers, "
            f"channels {dict(sorted(cfg.channels.items()))}")
    for key, v in state.items():  # the FIR kernels are fixed by the architecture
        if key.endswith(".kernel") and key in own and v.shape == own[key].shape:
            if not torch.allclose(v.float(), own[key], rtol=0, atol=1e-6):
                raise CheckpointError(f"{src}: key {key!r} holds a FIR kernel other than the release's "
                                      f"[1, 3, 3, 1] (max diff {(v.float() - own[key]).abs().max().item():.3g})")
    _load_strict(g, state, {k: k for k in own}, src, hint)
    log.info("imported %s (%s PixelNorm): %s", src, pixel_norm, hint)
    return g.eval()

