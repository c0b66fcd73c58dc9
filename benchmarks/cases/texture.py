"""Benchmarks of the texture branch (SIW-StyleGAN): forward cost by resolution and batch, the cost and
fidelity of region styles (exact Eq. 10 vs fast spatially-varying modulation), and training throughput.

Segmaps come from a few synthetic photos (``sofgan_lab.synthetic.writers.write_photos`` with
segmaps, SOF-20 → SofGAN-17), written once per process into a temporary folder. Generators use the
demo widths (``SIWConfig.demo``) with random weights; ``siw_styles`` also measures the shipped demo
model (``data/demo/siw/``) when it exists (``demo_model`` = 1).
"""
from __future__ import annotations

import json
import logging
import math
import shutil
import tempfile
from pathlib import Path

from benchmarks.cases import Context, register

log = logging.getLogger(__name__)

DEMO_DIR = Path(__file__).resolve().parents[2] / "data" / "demo" / "siw"
_PHOTOS: dict = {}


def _photos(count: int = 8, size: int = 128):
    """(images uint8 [N, 3, size, size], SofGAN-17 segmaps int64 [N, size, size]) of ``count``
    synthetic photos (seed 0), cached per process."""
    key = (count, size)
    if key not in _PHOTOS:
        from sofgan_lab.synthetic.writers import write_photos
        from sofgan_lab.train.siw_data import ImageFolder, SegmapFolder

        root = Path(tempfile.mkdtemp(prefix="sofgan-lab-bench-siw-"))
        try:
            out = write_photos(root / "photos", count=count, size=size, seed=0, with_segmaps=True, workers=1,
                               progress=False)
            images = ImageFolder(out, size).data
            segmaps = SegmapFolder(out, size, label_set="sof20").data.long()  # sof_to_sofgan on load
        finally:
            shutil.rmtree(root, ignore_errors=True)
        _PHOTOS[key] = (images, segmaps)
    return _PHOTOS[key]


def _generator(size: int, device, seed: int = 0):
    import torch

    from sofgan_lab.texture import SIWConfig, SIWGenerator

    torch.manual_seed(seed)
    return SIWGenerator(SIWConfig.demo(size)).eval().to(device)


def _psnr(a, b) -> float:
    """PSNR in [0, 1] image units after clamping [-1, 1] → [0, 1] (inf-safe: capped at 100 dB)."""
    x = (a.clamp(-1, 1) + 1) / 2
    y = (b.clamp(-1, 1) + 1) / 2
    mse = float((x - y).double().pow(2).mean())
    return 100.0 if mse <= 1e-10 else min(100.0, 10 * math.log10(1.0 / mse))


@register(
    "siw_forward",
    description="sofgan_lab.texture.SIWGenerator (demo widths, random weights): ms per image of a no-grad "
    "one-style forward at 64, 128 and 256 px (--quick: 64, 128), batch 1 and 8",
)
def siw_forward(ctx: Context) -> None:
    import torch

    _, segmaps = _photos(8, 128)
    sizes = (64, 128) if ctx.quick else (64, 128, 256)
    repeats = 2 if ctx.quick else 5
    for size in sizes:
        g = _generator(size, ctx.device)
        if size == sizes[-1]:
            ctx.record(f"parameters_{size}", g.num_parameters(), "count")
        for batch in (1, 8):
            seg = segmaps[:batch].to(ctx.device)
            z = g.random_z(batch, 1, seed=batch)
            with torch.no_grad():
                m = ctx.measure(f"forward_{size}_b{batch}", lambda: g(seg, z), repeats=repeats, warmup=1,
                                unit="ms", items=batch)
            ctx.record(f"ms_per_image_{size}_b{batch}", m.median / batch, "ms/image")
        del g


def _round_robin_weights(batch: int, k: int):
    """Class weights [batch, 17, k]: class c is painted by style c mod k."""
    import torch

    from sofgan_lab.labels import NUM_SOFGAN_CLASSES

    w = torch.zeros(NUM_SOFGAN_CLASSES, k)
    w[torch.arange(NUM_SOFGAN_CLASSES), torch.arange(NUM_SOFGAN_CLASSES) % k] = 1
    return w[None].expand(batch, -1, -1).contiguous()


@register(
    "siw_styles",
    description="sofgan_lab.texture region styles at 128 px, batch 4 (demo widths): cost of 2 (hair + eyes & "
    "mouth), 5 (groups) and 17 (classes) styles, exact and fast, relative to one style (target: 17 fast "
    "<= 1.3x); exact cost curve over K; PSNR of fast vs exact (random weights, and the demo model if shipped)",
)
def siw_styles(ctx: Context) -> None:
    import torch

    from sofgan_lab.texture import SIWGenerator, class_style_weights, group_style_weights, two_style_weights

    size, batch = 128, 4
    repeats = 2 if ctx.quick else 5
    _, segmaps = _photos(8, 128)
    seg = segmaps[:batch].to(ctx.device)
    g = _generator(size, ctx.device)
    weights = {
        2: two_style_weights({"hair": 1.0, "eyes_mouth": 1.0}, batch=batch),
        5: group_style_weights(batch),
        17: class_style_weights(batch),
    }
    curve_ks = (2, 5, 17) if ctx.quick else (2, 3, 5, 9, 17)
    for k in curve_ks:
        weights.setdefault(k, _round_robin_weights(batch, k))
    weights = {k: v.to(ctx.device) for k, v in weights.items()}
    zs = {k: g.random_z(batch, k, seed=100 + k) for k in (1, *weights)}

    def run(model, k, mode):
        if k == 1:
            return model(seg, zs[1])
        return model(seg, zs[k], class_weights=weights[k], mode=mode)

    with torch.no_grad():
        one = ctx.measure("one_style", lambda: run(g, 1, "exact"), repeats=repeats, warmup=1, unit="ms",
                          items=batch)
        for k in curve_ks:
            modes = ("exact", "fast") if k in (2, 5, 17) else ("exact",)
            for mode in modes:
                m = ctx.measure(f"styles_{k}_{mode}", lambda: run(g, k, mode), repeats=repeats, warmup=1,
                                unit="ms", items=batch)
                ctx.record(f"styles_{k}_{mode}_ratio", m.median / one.median, "x")
        # exact cost curve: extra cost per additional style (least squares over K, in one-style units)
        ks = [1, *curve_ks]
        ts = [1.0] + [ctx.figures[f"styles_{k}_exact_ratio"].value for k in curve_ks]
        mk, mt = sum(ks) / len(ks), sum(ts) / len(ts)
        slope = sum((a - mk) * (b - mt) for a, b in zip(ks, ts)) / sum((a - mk) ** 2 for a in ks)
        ctx.record("exact_ratio_per_extra_style", slope, "x/style")

        models = [("random", g)]
        if DEMO_DIR.is_dir() and (DEMO_DIR / "model.safetensors").is_file():
            demo = SIWGenerator.from_pretrained("demo", map_location=ctx.device).eval()
            models.append(("demo", demo))
            if demo.config.size != size:
                log.info("siw_styles: the demo model renders at %d px", demo.config.size)
        ctx.record("demo_model", 1.0 if len(models) > 1 else 0.0, "bool")
        for name, model in models:
            zz = {k: model.random_z(batch, k, seed=200 + k) for k in (1, 2, 5, 17)}
            single = model(seg, zz[1])
            for k in (2, 5, 17):
                exact = model(seg, zz[k], class_weights=weights[k], mode="exact")
                fast = model(seg, zz[k], class_weights=weights[k], mode="fast")
                ctx.record(f"psnr_fast_vs_exact_{k}_{name}", _psnr(fast, exact), "dB")
            # scale reference: how far two styles move the image at all (exact vs style A alone)
            two_a = model(seg, torch.cat([zz[1], zz[2][:, 1:]], 1), class_weights=weights[2], mode="exact")
            ctx.record(f"psnr_two_styles_vs_one_{name}", _psnr(two_a, single), "dB")


@register(
    "siw_train",
    description="sofgan_lab.train.train_siw on synthetic photos (demo widths, 128 px batch 8; --quick: 64 px "
    "batch 4): images/s over one full lazy-regularisation period (16 steps: D + G steps, R1 once, "
    "path length 4 times) after a warm-up step",
)
def siw_train(ctx: Context) -> None:
    from sofgan_lab.texture import SIWConfig
    from sofgan_lab.train.siw_trainer import SIWTrainConfig, train_siw

    size, batch = (64, 4) if ctx.quick else (128, 8)
    period = 16  # d_reg_every; g_reg_every = 4 divides it
    count = 8
    root = Path(tempfile.mkdtemp(prefix="sofgan-lab-bench-siwtrain-"))
    try:
        from sofgan_lab.synthetic.writers import write_photos

        data = write_photos(root / "photos", count=count, size=size, seed=0, with_segmaps=True, workers=1,
                            progress=False)
        tcfg = SIWTrainConfig(steps=10_000, batch=batch, d_reg_every=period, g_reg_every=4, log_every=1,
                              sample_every=0, checkpoint_every=0, keep_checkpoints=1, seed=0,
                              device=str(ctx.device))
        runs = iter(range(100))
        outs = []

        def train():
            out = root / f"run{next(runs)}"
            outs.append(out)
            train_siw(data, data, out, model_config=SIWConfig.demo(size), train_config=tcfg, progress=False,
                      until=period + 1, segmap_label_set="sof20")

        ctx.measure("train_siw_17_steps", train, repeats=1, warmup=0, unit="s", items=(period + 1) * batch)
        recs = [json.loads(line) for line in (outs[-1] / "metrics.jsonl").read_text().splitlines() if line.strip()]
        steps = {r["step"]: batch / r["images_per_s"] for r in recs if r.get("event") == "train"}
        period_s = [steps[s] for s in range(2, period + 2)]  # steps 1..16 (0-based): R1 at 16, PL at 4, 8, 12, 16
        plain = sorted(steps[s] for s in range(2, period + 2) if (s - 1) % 4)  # no regulariser
        ctx.record("images_per_s", batch * period / sum(period_s), "images/s")
        ctx.record("iteration_ms_amortised", 1e3 * sum(period_s) / period, "ms")
        ctx.record("plain_step_ms_median", 1e3 * plain[len(plain) // 2], "ms")
        ctx.record("reg_step_ms", 1e3 * steps[period + 1], "ms")  # step 16: D + R1 + G + PL
        ctx.record("warmup_step_ms", 1e3 * steps[1], "ms")
        ctx.record("size", size, "px")
        ctx.record("batch", batch, "images")
    finally:
        shutil.rmtree(root, ignore_errors=True)
