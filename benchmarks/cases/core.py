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
