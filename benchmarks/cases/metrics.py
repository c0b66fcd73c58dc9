"""Benchmarks of the paper's §6.3 metrics (``sofgan_lab.metrics``): LPIPS pairs/s per trunk, FID feature
throughput (FID Inception-v3, the face-parser stand-in), portrait generation for the metrics, and
the time the paper's protocols would take here, estimated from the measured rates.

Trunk weights: when torchvision's ImageNet checkpoints (LPIPS) or ``pt_inception-2015-12-05``
(FID) are in the torch hub cache they are used; otherwise the networks keep random weights — the
cost of a forward pass does not depend on the weight values, so the timings hold, and each JSON
records which was used (``lpips_<net>_trunk_pretrained``, ``inception_pretrained`` = 1 or 0).
"""
from __future__ import annotations

import logging
import math

from benchmarks.cases import Context, register

log = logging.getLogger(__name__)

PAPER_PAIRS = 50_000          # Table 2: 50k random pairs (100k generated images)
PAPER_FID_SAMPLES = 50_000    # Fig. 7: FID on 50k generated images


def _lpips(net: str, device):
    """(metric, pretrained?) — ImageNet trunk if its file is cached, else a random (seeded) one."""
    from sofgan_lab.metrics import load_lpips

    try:
        return load_lpips(net, device=device), True
    except FileNotFoundError:
        log.info("LPIPS-%s: ImageNet trunk weights absent; timing the random trunk", net)
        return load_lpips(net, pretrained_backbone=False, device=device), False


def _images(n: int, size: int, seed: int, device):
    import torch

    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, 3, size, size, generator=g) * 2 - 1).to(device)


@register(
    "metrics_lpips",
    description="sofgan_lab.metrics LPIPS: pairs/s for alex, squeeze, vgg at 256 px (--quick: 64 px), "
    "batch 8 (vgg 4); portrait generation for the metrics (demo SOF + random demo-width SIW, 128 px; --quick "
    "64 px); estimated hours of the paper's Table 2 protocol (50k pairs) here",
)
def metrics_lpips(ctx: Context) -> None:
    import torch

    size = 64 if ctx.quick else 256
    repeats = 2 if ctx.quick else 3
    rates = {}
    with torch.no_grad():
        for net in ("alex", "squeeze", "vgg"):
            metric, pretrained = _lpips(net, ctx.device)
            batch = 4 if net == "vgg" else 8
            x, y = _images(batch, size, 1, ctx.device), _images(batch, size, 2, ctx.device)
            tag = "" if pretrained else "_random_trunk"
            m = ctx.measure(f"lpips_{net}_{size}px_b{batch}{tag}", lambda: metric(x, y), repeats=repeats, warmup=1,
                            unit="ms", items=batch)
            ctx.record(f"lpips_{net}_trunk_pretrained", 1.0 if pretrained else 0.0, "bool")
            rates[net] = m.items_per_s
            ctx.record(f"paper_50k_pairs_lpips_only_{net}_{size}px", PAPER_PAIRS / m.items_per_s / 3600, "h")
            del metric

        # generation of the images the metric compares
        from sofgan_lab.geometry.sof import SemanticOccupancyField
        from sofgan_lab.geometry.space import GeometrySpace
        from sofgan_lab.metrics.sampling import PipelineSampler
        from sofgan_lab.pipeline import SofGAN
        from sofgan_lab.texture import SIWConfig, SIWGenerator

        gen_size = 64 if ctx.quick else 128
        torch.manual_seed(0)
        siw = SIWGenerator(SIWConfig.demo(gen_size)).eval()
        pipe = SofGAN(SemanticOccupancyField.from_pretrained("demo"), siw, GeometrySpace.load("demo")).to(ctx.device)
        sampler = PipelineSampler(pipe)
        gb = 8
        g = ctx.measure(f"generate_{gen_size}px_b{gb}", lambda: sampler(gb, 0), repeats=repeats, warmup=1, unit="ms",
                        items=gb)
        # the paper's protocol at the generation size: 100k images + 50k LPIPS-alex pairs at that size
        metric, _ = _lpips("alex", ctx.device)
        xa, ya = _images(8, gen_size, 3, ctx.device), _images(8, gen_size, 4, ctx.device)
        la = ctx.measure(f"lpips_alex_{gen_size}px_b8", lambda: metric(xa, ya), repeats=repeats, warmup=1, unit="ms",
                         items=8)
        total_s = 2 * PAPER_PAIRS / g.items_per_s + PAPER_PAIRS / la.items_per_s
        ctx.record(f"paper_50k_pairs_total_alex_{gen_size}px", total_s / 3600, "h")
        ctx.record("generation_share_of_total", (2 * PAPER_PAIRS / g.items_per_s) / total_s, "fraction")


@register(
    "metrics_fid",
    description="sofgan_lab.metrics FID features: FID Inception-v3 (299 px input) and face-parser features "
    "(128 px) images/s, batch 8 (--quick: 2); Fréchet distance of 2048-d statistics; estimated hours for the "
    "paper's 50k-sample FID here",
)
def metrics_fid(ctx: Context) -> None:
    import numpy as np
    import torch

    from sofgan_lab.metrics import frechet_distance
    from sofgan_lab.metrics.features import InceptionFeatures, ParserFeatures, load_inception

    batch = 2 if ctx.quick else 8
    repeats = 2 if ctx.quick else 3
    try:
        inception, pretrained = load_inception(device=ctx.device), True
    except FileNotFoundError:
        log.info("FID Inception weights absent; timing random weights")
        torch.manual_seed(0)
        inception, pretrained = InceptionFeatures().to(ctx.device), False
    ctx.record("inception_pretrained", 1.0 if pretrained else 0.0, "bool")
    x = _images(batch, 128, 5, ctx.device)
    tag = "" if pretrained else "_random_weights"
    with torch.no_grad():
        m = ctx.measure(f"inception_features_b{batch}{tag}", lambda: inception(x), repeats=repeats, warmup=1,
                        unit="ms", items=batch)
        ctx.record("paper_50k_fid_features_inception", PAPER_FID_SAMPLES / m.items_per_s / 3600, "h")
        parser = ParserFeatures().to(ctx.device)
        p = ctx.measure(f"parser_features_b{batch}", lambda: parser(x), repeats=repeats, warmup=1, unit="ms",
                        items=batch)
        ctx.record("paper_50k_fid_features_parser", PAPER_FID_SAMPLES / p.items_per_s / 3600, "h")
    rng = np.random.default_rng(0)
    d = 2048 if not ctx.quick else 512
    a, b = rng.normal(size=(d + 64, d)), rng.normal(size=(d + 64, d))
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    mu1, mu2 = a.mean(0), b.mean(0)
    ctx.measure(f"frechet_distance_{d}d", lambda: frechet_distance(mu1, s1, mu2, s2), repeats=2 if ctx.quick else 3,
                warmup=0, unit="s", items=1)
    value = frechet_distance(mu1, s1, mu2, s2)
    if not math.isfinite(value):
        raise RuntimeError("frechet_distance returned a non-finite value")
