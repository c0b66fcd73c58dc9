"""Small models shared by the tests: a 32-px texture generator whose all-zero / all-one parameters
(biases, noise strengths) are perturbed so that they matter, and a pipeline around it with the
shipped demo SOF and geometry space."""
from __future__ import annotations

import torch

from sofgan_lab.texture import SIWConfig, SIWGenerator


def tiny_siw(seed: int = 0, size: int = 32) -> SIWGenerator:
    """A random 32-px ``SIWGenerator`` (SPADE at 16 and 32 px), in eval mode; the same seed, the same weights."""
    torch.manual_seed(seed)
    g = SIWGenerator(SIWConfig(size=size, style_dim=32, channels={4: 32, 8: 32, 16: 16, 32: 16},
                               encoder_channels=(8, 16, 32), spade_hidden=8, spade_min=16, spade_max=32))
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for p in g.parameters():
            if bool((p == 0).all()) or bool((p == 1).all()):
                p.add_(0.1 * torch.randn(p.shape, generator=gen))
    return g.eval()


def tiny_pipeline(seed: int = 0, *, demo_camera: bool = False):
    """``SofGAN`` with the demo SOF and space and :func:`tiny_siw` (renders 32-px portraits); the
    release's default camera, or with ``demo_camera`` the demo pipeline's (``data/demo/pipeline.json``:
    the framing and poses its SOF was trained on)."""
    import json

    from sofgan_lab.demo import demo_dir
    from sofgan_lab.geometry.sof import SemanticOccupancyField
    from sofgan_lab.geometry.space import GeometrySpace
    from sofgan_lab.pipeline import SofGAN

    kw = {}
    if demo_camera:
        meta = json.loads((demo_dir("sof").parent / "pipeline.json").read_text())
        kw = {"camera": meta.get("camera"), "pose_range": meta.get("pose_range")}
    return SofGAN(SemanticOccupancyField.from_pretrained("demo"), tiny_siw(seed), GeometrySpace.load("demo"), **kw)
