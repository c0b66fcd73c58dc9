"""Benchmarks of the small core utilities."""
from __future__ import annotations

from benchmarks.cases import Context, register


@register(
    "images_roundtrip",
    description="sofgan_lab.images: tensor_to_uint8 then uint8_to_tensor on a (16, 3, 256, 256) batch",
)
def images_roundtrip(ctx: Context) -> None:
    import torch

    from sofgan_lab.images import tensor_to_uint8, uint8_to_tensor

    batch, size = (4, 64) if ctx.quick else (16, 256)
    generator = torch.Generator().manual_seed(0)
    images = (torch.rand(batch, 3, size, size, generator=generator) * 2 - 1).to(ctx.device)
    arrays = tensor_to_uint8(images)
    repeats = 3 if ctx.quick else 20

    ctx.measure("to_uint8", lambda: tensor_to_uint8(images), repeats=repeats, warmup=1, unit="ms", items=batch)
    ctx.measure("to_tensor", lambda: uint8_to_tensor(arrays), repeats=repeats, warmup=1, unit="ms", items=batch)
    ctx.measure(
        "roundtrip",
        lambda: uint8_to_tensor(tensor_to_uint8(images)),
        repeats=repeats,
        warmup=1,
        unit="ms",
        items=batch,
    )


@register(
    "labels_colorize",
    description="sofgan_lab.labels: colorize and decolorize (exact and with +-10 noise) of a 1024x1024 SOF-20 map",
)
def labels_colorize(ctx: Context) -> None:
    import numpy as np

    from sofgan_lab.labels import colorize, decolorize

    size = 256 if ctx.quick else 1024
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 20, (size, size))
    rgb = colorize(labels)
    noisy = np.clip(rgb.astype(np.int16) + rng.integers(-10, 11, rgb.shape), 0, 255).astype(np.uint8)
    repeats = 2 if ctx.quick else 5
    pixels = size * size
    ctx.measure("colorize", lambda: colorize(labels), repeats=repeats, unit="ms", items=pixels)
    exact_m = ctx.measure("decolorize_exact", lambda: decolorize(rgb), repeats=repeats, unit="ms", items=pixels)
    noisy_m = ctx.measure("decolorize_noisy", lambda: decolorize(noisy), repeats=repeats, unit="ms", items=pixels)
    ctx.record("noisy_over_exact", noisy_m.median / exact_m.median, "ratio")
