"""LPIPS (Zhang et al. 2018) through the ``lpips`` package, loaded offline with explicit provenance.

:func:`load_lpips` builds ``lpips.LPIPS`` (v0.1) with an untrained trunk (so torchvision never
downloads anything), then fills

* the trunk with the ImageNet weights torchvision publishes (``alexnet-owt-7be5be79.pth``,
  ``vgg16-397923af.pth``, ``squeezenet1_1-b8a52dc0.pth``), read from
  ``torch.hub.get_dir()/checkpoints/`` or from a given path — the file is checked first and a
  missing one raises :class:`FileNotFoundError` naming the file, the folder and the URL; its
  SHA-256 is checked against the 8-hex prefix in the file name (a mismatch warns and marks the
  results as not comparable);
* the linear calibration layers with the weights shipped inside the ``lpips`` wheel
  (``lpips/weights/v0.1/<net>.pth``).

``pretrained_backbone=False`` keeps a randomly initialised trunk (seeded, so reproducible): LPIPS
then still is a metric (0 for identical images, symmetric) but its values mean nothing against the
paper; results carry ``backbone_pretrained=False`` and tables mark them.

Input rule (:meth:`LPIPSMetric.check_images`): float tensors ``(N, 3, H, W)`` (or ``(3, H, W)``)
in the range named by ``input_range`` — ``(-1, 1)`` by default, the library's convention; ``(0, 1)``
and ``(0, 255)`` are converted. After conversion every value must lie in [-1.5, 1.5] (unclamped
generator output may overshoot ±1 a little; [0, 255] pixels are refused with a hint). With the
default range, inputs whose values all lie in [0, 1] are accepted with a ``UserWarning`` (real
portraits in [-1, 1] have dark pixels < 0; a whole batch without one almost surely is [0, 1] data).
Both inputs must have the same shape, be finite, and be at least :data:`MIN_SIZE` pixels wide.
"""
from __future__ import annotations

import hashlib
import logging
import math
import warnings
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from ..io.torchfile import load_torch_file

__all__ = ["LPIPSMetric", "load_lpips", "backbone_weights_path", "LPIPS_NETS", "BACKBONE_FILES", "MIN_SIZE",
           "INPUT_RANGES", "sha256_prefix_matches"]

log = logging.getLogger(__name__)

LPIPS_NETS = ("alex", "vgg", "squeeze")

#: torchvision's ImageNet checkpoints of the LPIPS trunks (file name in the torch hub cache, URL).
BACKBONE_FILES: dict[str, tuple[str, str]] = {
    "alex": ("alexnet-owt-7be5be79.pth", "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth"),
    "vgg": ("vgg16-397923af.pth", "https://download.pytorch.org/models/vgg16-397923af.pth"),
    "squeeze": ("squeezenet1_1-b8a52dc0.pth", "https://download.pytorch.org/models/squeezenet1_1-b8a52dc0.pth"),
}

#: Smallest image side each trunk accepts (measured: smaller inputs collapse a pooling stage to 0).
MIN_SIZE = {"alex": 31, "vgg": 16, "squeeze": 17}

#: Accepted ``input_range`` values.
INPUT_RANGES = ((-1, 1), (0, 1), (0, 255))

#: After conversion to [-1, 1], values outside ±RANGE_LIMIT are refused.
RANGE_LIMIT = 1.5

_NUM_LINEAR = {"alex": 5, "vgg": 5, "squeeze": 7}


def _hub_checkpoints() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints"


def backbone_weights_path(net: str, weights: str | Path | None = None) -> Path:
    """The ImageNet checkpoint of ``net``'s trunk: ``weights`` if given, else
    ``torch.hub.get_dir()/checkpoints/<torchvision file name>``. Raises ``FileNotFoundError`` (what
    to put where) when the file is not there; never downloads."""
    net = _check_net(net)
    fname, url = BACKBONE_FILES[net]
    if weights is not None:
        p = Path(weights).expanduser()
        if not p.is_file():
            raise FileNotFoundError(f"weights: {p} is not a file (expected torchvision's ImageNet {net} checkpoint "
                                    f"{fname}, from {url})")
        return p
    p = _hub_checkpoints() / fname
    if not p.is_file():
        raise FileNotFoundError(
            f"LPIPS-{net} needs torchvision's ImageNet weights {fname}, which are not in the torch hub cache: "
            f"put the file (from {url}) at {p}, or pass weights='/path/to/{fname}' — or load with "
            f"pretrained_backbone=False for numbers that are NOT comparable to the paper. (Nothing is downloaded.)")
    return p


def sha256_prefix_matches(path: Path) -> bool | None:
    """Whether the SHA-256 of ``path`` starts with the 8-hex tag in its name (``name-<hash>.pth``,
    the torch hub convention); ``None`` when the name carries no such tag."""
    stem = path.name.split(".")[0]
    tag = stem.rsplit("-", 1)[-1] if "-" in stem else ""
    if len(tag) < 6 or any(c not in "0123456789abcdef" for c in tag):
        return None
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest().startswith(tag)


def _check_net(net: Any) -> str:
    if net == "vgg16":
        net = "vgg"
    if net not in LPIPS_NETS:
        raise ValueError(f"net: expected one of {list(LPIPS_NETS)}, got {net!r}")
    return net


def _check_range(input_range: Any) -> tuple[float, float]:
    try:
        r = tuple(float(v) for v in input_range)
    except TypeError:
        r = ()
    if r not in [tuple(float(v) for v in x) for x in INPUT_RANGES]:
        raise ValueError(f"input_range: expected one of {list(INPUT_RANGES)}, got {input_range!r}")
    return r  # type: ignore[return-value]


class LPIPSMetric(nn.Module):
    """LPIPS distance between image batches: ``metric(x, y)`` → ``(N,)`` float32 (no gradients).

    Build it with :func:`load_lpips`. Attributes: ``net`` (alex/vgg/squeeze), ``backbone_pretrained``,
    ``weights`` (the trunk checkpoint path or ``None``), ``weights_verified`` (SHA-256 prefix check:
    ``True``/``False``/``None`` = not checked), ``version`` ("0.1"), ``caveats`` (why numbers made with
    it are not comparable to the paper; empty when they are).

    Inputs ``x``, ``y``: float ``(N, 3, H, W)`` in ``input_range`` (see the module docstring for the
    rule); they are moved to the module's device; the result is on that device.
    """

    def __init__(self, model: nn.Module, net: str, *, backbone_pretrained: bool, weights: Path | None,
                 weights_verified: bool | None, version: str = "0.1", init_seed: int | None = None):
        super().__init__()
        self.model = model.eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.net = net
        self.backbone_pretrained = bool(backbone_pretrained)
        self.weights = None if weights is None else str(weights)
        self.weights_verified = weights_verified
        self.version = version
        self.init_seed = init_seed

    @property
    def name(self) -> str:
        return f"lpips-{self.net} v{self.version}"

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def caveats(self) -> tuple[str, ...]:
        out = []
        if not self.backbone_pretrained:
            out.append(f"LPIPS {self.net} trunk randomly initialised (no ImageNet weights)")
        elif self.weights_verified is False:
            out.append(f"LPIPS {self.net} trunk weights {Path(self.weights).name} fail the SHA-256 check")
        return tuple(out)

    def provenance(self) -> dict[str, Any]:
        """The backbone part of a result's provenance."""
        return {"backbone": self.name, "backbone_pretrained": self.backbone_pretrained,
                "backbone_weights": self.weights, "backbone_weights_verified": self.weights_verified,
                "lpips_net": self.net, "backbone_init_seed": None if self.backbone_pretrained else self.init_seed}

    def check_images(self, images: Any, name: str = "images", input_range: Any = (-1, 1)) -> torch.Tensor:
        """Validate ``images`` (see the module docstring) and return them as float ``(N, 3, H, W)``
        in [-1, 1] (converted from ``input_range``)."""
        lo_r, hi_r = _check_range(input_range)
        if not isinstance(images, torch.Tensor):
            raise TypeError(f"{name}: expected a torch.Tensor (N, 3, H, W), got {type(images).__name__}")
        x = images.detach()
        if x.dtype == torch.uint8 and (lo_r, hi_r) == (0.0, 255.0):
            x = x.float()
        if not x.is_floating_point():
            raise TypeError(f"{name}: expected a float tensor, got dtype {x.dtype} (uint8 needs input_range=(0, 255))")
        if x.dim() == 3:
            x = x[None]
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"{name}: expected shape (N, 3, H, W) or (3, H, W), got {tuple(images.shape)}")
        m = MIN_SIZE[self.net]
        if x.shape[-1] < m or x.shape[-2] < m:
            raise ValueError(f"{name}: LPIPS-{self.net} needs images of at least {m}x{m} pixels, got "
                             f"{x.shape[-2]}x{x.shape[-1]}")
        if x.numel():
            lo, hi = (float(v) for v in torch.aminmax(x))
            if not (math.isfinite(lo) and math.isfinite(hi)):
                raise ValueError(f"{name}: contains NaN or infinite values")
            if (lo_r, hi_r) != (-1.0, 1.0):
                x = (x - lo_r) / (hi_r - lo_r) * 2 - 1
                lo, hi = (lo - lo_r) / (hi_r - lo_r) * 2 - 1, (hi - lo_r) / (hi_r - lo_r) * 2 - 1
            if lo < -RANGE_LIMIT or hi > RANGE_LIMIT:
                hint = " — this looks like [0, 255] pixels: pass input_range=(0, 255)" if hi > 2 and lo >= 0 else ""
                raise ValueError(f"{name}: expected values in [-1, 1] (input_range={input_range}), got values in "
                                 f"[{lo:.4g}, {hi:.4g}]{hint}")
            if (lo_r, hi_r) == (-1.0, 1.0) and lo >= 0 and hi <= 1 and hi > lo:
                warnings.warn(f"{name}: every value lies in [0, 1] — if these are [0, 1] images pass "
                              "input_range=(0, 1); LPIPS expects [-1, 1]", UserWarning, stacklevel=3)
        return x

    @torch.no_grad()
    def forward(self, x: torch.Tensor, y: torch.Tensor, *, input_range: Any = (-1, 1)) -> torch.Tensor:
        """LPIPS of each pair ``(x[i], y[i])`` → ``(N,)`` float32 on the module's device."""
        a = self.check_images(x, "x", input_range)
        b = self.check_images(y, "y", input_range)
        if a.shape != b.shape:
            raise ValueError(f"x, y: expected the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
        dev = self.device
        if a.shape[0] == 0:
            return torch.zeros(0, device=dev)
        d = self.model(a.to(dev, torch.float32), b.to(dev, torch.float32))
        return d.reshape(a.shape[0]).float()

    def __repr__(self) -> str:
        state = "ImageNet" if self.backbone_pretrained else f"random (seed {self.init_seed})"
        return f"LPIPSMetric(net={self.net!r}, version={self.version}, trunk={state})"


def load_lpips(net: str = "alex", *, weights: str | Path | None = None, pretrained_backbone: bool = True,
               device: str | torch.device | None = None, linear_weights: str | Path | None = None,
               check_hash: bool = True, init_seed: int = 0) -> LPIPSMetric:
    """Build an :class:`LPIPSMetric` without any network access.

    Args:
        net: ``"alex"`` (the paper's and lpips' default), ``"vgg"`` or ``"squeeze"``.
        weights: path of the trunk's torchvision ImageNet checkpoint (default: the torch hub cache,
            :func:`backbone_weights_path`).
        pretrained_backbone: ``False`` keeps a random trunk (seeded with ``init_seed``); results are
            then marked not comparable to the paper.
        device: where to put the module (default CPU).
        linear_weights: the LPIPS calibration layers (default: the ones shipped in the lpips wheel).
        check_hash: verify the trunk file's SHA-256 against the tag in its name.
        init_seed: seed of the random trunk (only with ``pretrained_backbone=False``).

    Raises:
        FileNotFoundError: the trunk checkpoint (or the lpips linear weights) are missing.
        ValueError: unknown ``net``, or a checkpoint that does not fit the trunk.
    """
    net = _check_net(net)
    if not isinstance(pretrained_backbone, bool):
        raise TypeError(f"pretrained_backbone: expected a bool, got {type(pretrained_backbone).__name__}")
    if weights is not None and not pretrained_backbone:
        raise ValueError("weights: given together with pretrained_backbone=False; drop one of them")
    trunk_path = backbone_weights_path(net, weights) if pretrained_backbone else None  # check before building
    try:
        import lpips as lpips_pkg
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise ImportError("load_lpips: the 'lpips' package is required (pip install lpips)") from exc
    lin_path = Path(linear_weights) if linear_weights is not None else \
        Path(lpips_pkg.__file__).resolve().parent / "weights" / "v0.1" / f"{net}.pth"
    if not lin_path.is_file():
        raise FileNotFoundError(f"linear_weights: the LPIPS calibration weights {lin_path} are missing (they ship "
                                "inside the lpips wheel: reinstall lpips, or pass linear_weights=PATH)")

    with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
        torch.manual_seed(int(init_seed))
        warnings.filterwarnings("ignore", category=UserWarning, module=r"torchvision\..*")
        model = lpips_pkg.LPIPS(pretrained=False, net=net, version="0.1", pnet_rand=True, verbose=False)

    lin = load_torch_file(lin_path, what="linear_weights: LPIPS calibration weights")
    want = {f"lin{i}.model.1.weight" for i in range(_NUM_LINEAR[net])}
    if not want <= set(lin):
        raise ValueError(f"linear_weights: {lin_path} lacks {sorted(want - set(lin))} (not LPIPS-{net} v0.1 weights)")
    model.load_state_dict({k: lin[k] for k in want}, strict=False)

    verified = None
    if trunk_path is not None:
        sd = load_torch_file(trunk_path, what=f"weights: ImageNet {net} weights")
        if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
            sd = sd["state_dict"]
        target = {k: v for k, v in model.state_dict().items() if k.startswith("net.")}
        mapped = {}
        for key in target:  # net.slice<k>.<idx>.<rest> -> features.<idx>.<rest>
            src = "features." + key.split(".", 2)[2]
            if src not in sd:
                raise ValueError(f"weights: {trunk_path} has no {src!r}; it is not torchvision's ImageNet {net} "
                                 f"checkpoint ({BACKBONE_FILES[net][0]})")
            if tuple(sd[src].shape) != tuple(target[key].shape):
                raise ValueError(f"weights: {src} in {trunk_path} has shape {tuple(sd[src].shape)}, the {net} "
                                 f"trunk expects {tuple(target[key].shape)}")
            mapped[key] = sd[src]
        model.load_state_dict(mapped, strict=False)
        if check_hash:
            verified = sha256_prefix_matches(trunk_path)
            if verified is False:
                warnings.warn(f"weights: the SHA-256 of {trunk_path} does not start with the tag in its name; "
                              "results are marked not comparable to the paper", UserWarning, stacklevel=2)
        log.info("LPIPS-%s: trunk weights from %s (hash %s)", net, trunk_path,
                 {True: "ok", False: "MISMATCH", None: "not checked"}[verified])
    else:
        log.info("LPIPS-%s: random trunk (seed %d) — not comparable to the paper", net, init_seed)
    metric = LPIPSMetric(model, net, backbone_pretrained=trunk_path is not None, weights=trunk_path,
                         weights_verified=verified, init_seed=None if trunk_path is not None else int(init_seed))
    return metric.to(device) if device is not None else metric
