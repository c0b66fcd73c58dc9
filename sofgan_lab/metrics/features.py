"""Image → feature networks for FID/KID and for the FVV identity embedder.

* :class:`InceptionFeatures` / :func:`load_inception` — the FID Inception-v3 (the TF 2015-12-05 graph
  ported to PyTorch, file ``pt_inception-2015-12-05-6726825d.pth`` as used by pytorch-fid and
  torch-fidelity), built on torchvision's ``Inception3`` structure with the four pooling details in
  which the TF graph differs (average pools that exclude padding in the A, C and first E blocks; a
  max pool in the last E block) and a 1008-way classifier. 2048-d pool3 features of images
  bilinearly resized to 299×299. Only numbers made with this file (its SHA-256 verified) are
  comparable to published FIDs. The file is read from ``torch.hub.get_dir()/checkpoints/`` or a
  given path; nothing is downloaded.
* :class:`ParserFeatures` — globally average-pooled encoder features of the project's
  :class:`~sofgan_lab.parsing.FaceParser` (trained on synthetic photos): a cheap, offline stand-in
  feature for FID/KID and the default FVV identity embedder. Not comparable to the paper.
* :func:`as_feature_extractor` — any ``nn.Module`` mapping ``(N, 3, H, W)`` images in [-1, 1] to
  ``(N, ...)`` features (flattened to ``(N, D)``).

Every extractor is a :class:`FeatureExtractor`: ``forward(images (N, 3, H, W) float in [-1, 1]) →
(N, D) float32`` on its own device, with ``name``, ``feature_dim``, ``weights``, ``pretrained`` and
``paper_feature`` (True only for the verified FID Inception) for provenance.
"""
from __future__ import annotations

import logging
import math
import warnings
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..io.torchfile import load_torch_file

__all__ = ["FeatureExtractor", "InceptionFeatures", "load_inception", "fid_inception_path", "ParserFeatures",
           "as_feature_extractor", "FID_INCEPTION_FILE", "FID_INCEPTION_URL"]

log = logging.getLogger(__name__)

FID_INCEPTION_FILE = "pt_inception-2015-12-05-6726825d.pth"
FID_INCEPTION_URL = ("https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
                     "pt_inception-2015-12-05-6726825d.pth")


class FeatureExtractor(nn.Module):
    """Base class: ``forward(images) -> (N, D)``; see the module docstring."""

    name: str = "features"
    feature_dim: int | None = None
    weights: str | None = None
    pretrained: bool = False
    paper_feature: bool = False

    @property
    def device(self) -> torch.device:
        p = next(self.parameters(), None)
        if p is None:
            b = next(self.buffers(), None)
            return b.device if b is not None else torch.device("cpu")
        return p.device

    def provenance(self) -> dict[str, Any]:
        return {"feature_extractor": self.name, "feature_dim": self.feature_dim, "feature_weights": self.weights,
                "feature_pretrained": self.pretrained, "paper_feature": self.paper_feature}

    @staticmethod
    def check_images(images: Any, name: str = "images") -> torch.Tensor:
        """Float ``(N, 3, H, W)`` (``(3, H, W)`` is batched), finite, within [-1.5, 1.5]."""
        if not isinstance(images, torch.Tensor):
            raise TypeError(f"{name}: expected a torch.Tensor (N, 3, H, W), got {type(images).__name__}")
        x = images.detach()
        if not x.is_floating_point():
            raise TypeError(f"{name}: expected float images in [-1, 1], got dtype {x.dtype}")
        if x.dim() == 3:
            x = x[None]
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"{name}: expected shape (N, 3, H, W), got {tuple(images.shape)}")
        if x.numel():
            lo, hi = (float(v) for v in torch.aminmax(x))
            if not (math.isfinite(lo) and math.isfinite(hi)):
                raise ValueError(f"{name}: contains NaN or infinite values")
            if lo < -1.5 or hi > 1.5:
                raise ValueError(f"{name}: expected values in [-1, 1], got [{lo:.4g}, {hi:.4g}]")
        return x


# --------------------------------------------------------------------------------------- Inception
def _inception_blocks():
    """torchvision's Inception blocks with the FID graph's pooling (own subclasses)."""
    from torchvision.models.inception import InceptionA, InceptionC, InceptionE

    def pool_avg_excl(x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)

    class FIDBlockA(InceptionA):
        def _forward(self, x):
            b5 = self.branch5x5_2(self.branch5x5_1(x))
            b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
            return [self.branch1x1(x), b5, b3, self.branch_pool(pool_avg_excl(x))]

    class FIDBlockC(InceptionC):
        def _forward(self, x):
            b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
            bd = x
            for m in (self.branch7x7dbl_1, self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4,
                      self.branch7x7dbl_5):
                bd = m(bd)
            return [self.branch1x1(x), b7, bd, self.branch_pool(pool_avg_excl(x))]

    class FIDBlockE(InceptionE):
        use_max_pool = False

        def _forward(self, x):
            t = self.branch3x3_1(x)
            b3 = torch.cat([self.branch3x3_2a(t), self.branch3x3_2b(t)], 1)
            u = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
            bd = torch.cat([self.branch3x3dbl_3a(u), self.branch3x3dbl_3b(u)], 1)
            p = F.max_pool2d(x, kernel_size=3, stride=1, padding=1) if self.use_max_pool else pool_avg_excl(x)
            return [self.branch1x1(x), b3, bd, self.branch_pool(p)]

    class FIDBlockEMax(FIDBlockE):
        use_max_pool = True

    return FIDBlockA, FIDBlockC, FIDBlockE, FIDBlockEMax


def _build_fid_inception() -> nn.Module:
    from torchvision.models.inception import BasicConv2d, Inception3, InceptionAux, InceptionB, InceptionD

    A, C, E, E_max = _inception_blocks()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning)
        net = Inception3(num_classes=1008, aux_logits=False, transform_input=False, init_weights=False,
                         inception_blocks=[BasicConv2d, A, InceptionB, C, InceptionD, E, InceptionAux])
    net.Mixed_7c = E_max(2048)  # the FID graph's last block pools with a max, not an average
    return net


def fid_inception_path(weights: str | Path | None = None) -> Path:
    """The FID Inception checkpoint: ``weights`` or ``torch.hub.get_dir()/checkpoints/`` +
    :data:`FID_INCEPTION_FILE`; ``FileNotFoundError`` saying where to put it otherwise."""
    if weights is not None:
        p = Path(weights).expanduser()
        if not p.is_file():
            raise FileNotFoundError(f"weights: {p} is not a file (expected {FID_INCEPTION_FILE} from "
                                    f"{FID_INCEPTION_URL})")
        return p
    p = Path(torch.hub.get_dir()) / "checkpoints" / FID_INCEPTION_FILE
    if not p.is_file():
        raise FileNotFoundError(
            f"FID needs the Inception-v3 FID weights {FID_INCEPTION_FILE}, which are not in the torch hub cache: put "
            f"the file (from {FID_INCEPTION_URL}) at {p}, or pass weights='/path/to/{FID_INCEPTION_FILE}' — or "
            "measure with another extractor (e.g. ParserFeatures(FaceParser.from_pretrained('demo'))), whose "
            "numbers are NOT comparable to the paper. (Nothing is downloaded.)")
    return p


class InceptionFeatures(FeatureExtractor):
    """The FID Inception-v3 pool3 features ``(N, 2048)`` (see the module docstring).

    Args:
        state_dict: the checkpoint's tensors (``None``: random weights, for tests only).
        weights: the checkpoint path (provenance), ``verified``: its SHA-256 check result.
        resize: input side after bilinear resizing (299, the graph's input).
    """

    feature_dim = 2048

    def __init__(self, state_dict: dict | None = None, *, weights: str | None = None, verified: bool | None = None,
                 resize: int = 299):
        super().__init__()
        self.net = _build_fid_inception()
        if state_dict is not None:
            sd = {k: v for k, v in state_dict.items() if not k.startswith("AuxLogits.")}
            what = weights or "the state dict"
            own = self.net.state_dict()
            wrong = [f"{k} {tuple(v.shape)} (expected {tuple(own[k].shape)})" for k, v in sd.items()
                     if k in own and isinstance(v, torch.Tensor) and v.shape != own[k].shape]
            if wrong:
                raise ValueError(f"weights: {what} is not an FID Inception-v3 checkpoint: {'; '.join(wrong[:3])}")
            missing, unexpected = self.net.load_state_dict(sd, strict=False)
            if missing or unexpected:
                raise ValueError(f"weights: {what} is not an FID Inception-v3 checkpoint (missing "
                                 f"{sorted(missing)[:5]}, unexpected {sorted(unexpected)[:5]})")
        self.net.eval()
        for p in self.net.parameters():
            p.requires_grad_(False)
        self.resize = int(resize)
        self.weights = weights
        self.pretrained = state_dict is not None
        self.verified = verified
        self.paper_feature = bool(state_dict is not None and verified is True and self.resize == 299)
        self.name = "fid-inception-v3 (pt_inception-2015-12-05)" if self.pretrained else "inception-v3 (random)"

    def provenance(self) -> dict[str, Any]:
        return {**super().provenance(), "feature_weights_verified": self.verified, "resize": self.resize}

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``images`` (N, 3, H, W) float in [-1, 1] → (N, 2048) float32."""
        x = self.check_images(images).to(self.device, torch.float32)
        if tuple(x.shape[-2:]) != (self.resize, self.resize):
            x = F.interpolate(x, size=(self.resize, self.resize), mode="bilinear", align_corners=False)
        n = self.net
        for name in ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "maxpool1", "Conv2d_3b_1x1",
                     "Conv2d_4a_3x3", "maxpool2", "Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b",
                     "Mixed_6c", "Mixed_6d", "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c"):
            x = getattr(n, name)(x)
        return F.adaptive_avg_pool2d(x, 1).flatten(1)


def load_inception(weights: str | Path | None = None, *, device: str | torch.device | None = None,
                   check_hash: bool = True) -> InceptionFeatures:
    """The FID Inception from :func:`fid_inception_path` (never downloads). ``check_hash`` verifies
    the file's SHA-256 against the ``6726825d`` tag; a mismatch warns and makes results not
    comparable to the paper."""
    from .perceptual import sha256_prefix_matches

    path = fid_inception_path(weights)
    sd = load_torch_file(path, what="weights: FID Inception weights")
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    verified = sha256_prefix_matches(path) if check_hash else None
    if verified is False:
        warnings.warn(f"weights: the SHA-256 of {path} does not start with its name's tag; FID results are marked "
                      "not comparable to the paper", UserWarning, stacklevel=2)
    model = InceptionFeatures(sd, weights=str(path), verified=verified)
    log.info("FID Inception loaded from %s (hash %s)", path,
             {True: "ok", False: "MISMATCH", None: "not checked"}[verified])
    return model.to(device) if device is not None else model


# --------------------------------------------------------------------------------------- face parser
class ParserFeatures(FeatureExtractor):
    """Globally average-pooled encoder features of a :class:`~sofgan_lab.parsing.FaceParser`: one
    mean vector per encoder level, concatenated → ``(N, sum(widths))`` (336 for the demo parser).

    The parser is trained to label synthetic portraits, so these features describe which facial
    regions appear with which colours and textures; they are an offline stand-in, not a model of
    perceptual realism or identity, and numbers made with them are not comparable to the paper.

    Args:
        parser: a FaceParser (default: ``FaceParser.from_pretrained("demo")``).
        resize: images are bilinearly resized to ``resize × resize`` first (the demo parser was
            trained at 128); ``None`` keeps the size (it must be divisible by the parser's multiple).
        name: provenance name.
    """

    def __init__(self, parser: Any = None, *, resize: int | None = 128, name: str | None = None):
        super().__init__()
        from ..parsing import FaceParser

        if parser is None:
            parser = FaceParser.from_pretrained("demo")
            name = name or "face-parser-features (demo parser)"
            self.weights = "demo"
        if not isinstance(parser, FaceParser):
            raise TypeError(f"parser: expected a sofgan_lab.parsing.FaceParser, got {type(parser).__name__}")
        if resize is not None and (isinstance(resize, bool) or not isinstance(resize, int)
                                   or resize % parser.config.multiple or resize < parser.config.multiple):
            raise ValueError(f"resize: expected None or a positive multiple of {parser.config.multiple}, "
                             f"got {resize!r}")
        self.parser = parser.eval()
        for p in self.parser.parameters():
            p.requires_grad_(False)
        self.resize = resize
        self.feature_dim = int(sum(parser.config.widths))
        self.name = name or "face-parser-features"
        self.pretrained = True

    def provenance(self) -> dict[str, Any]:
        return {**super().provenance(), "resize": self.resize}

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``images`` (N, 3, H, W) float in [-1, 1] → (N, sum(widths)) float32."""
        x = self.check_images(images).to(self.device, torch.float32)
        if self.resize is not None and tuple(x.shape[-2:]) != (self.resize, self.resize):
            x = F.interpolate(x, size=(self.resize, self.resize), mode="bilinear", align_corners=False,
                              antialias=x.shape[-1] > self.resize)
        m = self.parser.config.multiple
        if x.shape[-1] % m or x.shape[-2] % m:
            raise ValueError(f"images: {x.shape[-2]}x{x.shape[-1]} is not divisible by {m}; pass resize=128")
        x = x.clamp(-1, 1)
        pooled = []
        for i, block in enumerate(self.parser.encoder):
            if i:
                x = F.max_pool2d(x, 2)
            x = block(x)
            pooled.append(x.mean((2, 3)))
        return torch.cat(pooled, 1).float()


# --------------------------------------------------------------------------------------- any module
class _ModuleFeatures(FeatureExtractor):
    def __init__(self, module: nn.Module, name: str, pretrained: bool, paper_feature: bool):
        super().__init__()
        self.module = module
        self.name = name
        self.pretrained = pretrained
        self.paper_feature = paper_feature

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.check_images(images).to(self.device, torch.float32)
        out = self.module(x)
        if not isinstance(out, torch.Tensor) or out.dim() < 2 or out.shape[0] != x.shape[0]:
            got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ValueError(f"{self.name}: expected features (N, ...) for N={x.shape[0]} images, got {got}")
        out = out.reshape(x.shape[0], -1).float()
        if self.feature_dim is None:
            self.feature_dim = int(out.shape[1])
        return out


def as_feature_extractor(module: Any, *, name: str | None = None, pretrained: bool = True,
                         paper_feature: bool = False) -> FeatureExtractor:
    """A :class:`FeatureExtractor` from a ``FeatureExtractor`` (returned as is), a ``FaceParser``
    (:class:`ParserFeatures`) or any ``nn.Module`` images → features."""
    if isinstance(module, FeatureExtractor):
        return module
    from ..parsing import FaceParser

    if isinstance(module, FaceParser):
        return ParserFeatures(module)
    if not isinstance(module, nn.Module):
        raise TypeError(f"extractor: expected an nn.Module mapping images (N, 3, H, W) to features, got "
                        f"{type(module).__name__}")
    return _ModuleFeatures(module.eval(), name or type(module).__name__, pretrained, paper_feature)
