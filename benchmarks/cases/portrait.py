"""The portrait path of issue 21: ``pipe(geometry, texture)`` at 128² on the demo models (SOF render +
SOF-20 → SofGAN-17 + SIW + conversion to a ``Portrait``), today against the same pipeline with
the models of the start of issue 21 (:mod:`benchmarks.reference`) swapped in, interleaved.

Figures: ``portrait_ms`` / ``portrait_ref_ms`` (min over rounds; each round renders a new geometry
seed), ``portrait_speedup``, ``portrait_max_abs_diff`` (images), and the parts alone:
``sof_render_ms`` / ``sof_render_ref_ms`` and ``siw_ms`` / ``siw_ref_ms``. Goal: ≤ 50 ms per portrait
on two threads. With one torch thread on the CPU the times are thread CPU time (``cpu_clock`` = 1).
"""
from __future__ import annotations

import contextlib

from benchmarks.cases import Context, register


@contextlib.contextmanager
def _swapped(pipe, sof, siw):
    old = pipe.sof, pipe.siw
    pipe.sof, pipe.siw = sof, siw
    try:
        yield pipe
    finally:
        pipe.sof, pipe.siw = old


@register(
    "portrait_path",
    description="issue 21: ms per pipe(...) portrait at 128² on the demo models (SOF + SIW + conversion), today vs "
    "the models of the start of issue 21 swapped in (interleaved), and the SOF render and SIW parts alone; "
    "goal <= 50 ms on two threads",
)
def portrait_path(ctx: Context) -> None:
    import torch

    from benchmarks.cases.roofline import _clock
    from benchmarks.cases.widgets import _pipeline
    from benchmarks.reference.siw import reference_siw
    from benchmarks.reference.sof import reference_sof
    from sofgan_lab.labels import sof_to_sofgan

    pipe, trained = _pipeline(ctx.device)
    ref_sof, ref_siw = reference_sof(pipe.sof), reference_siw(pipe.siw)
    clock = _clock(ctx)
    ctx.record("image_size", pipe.image_size, "px")
    ctx.record("demo_texture_model", float(trained), "bool")
    ctx.record("torch_threads", torch.get_num_threads(), "threads")
    ctx.record("cpu_clock", 1.0 if clock == "cpu" else 0.0, "bool")
    repeats = 3 if ctx.quick else 15
    seeds = iter(range(10 ** 6))

    def today():
        return pipe(next(seeds) % 50, 0)

    def reference():
        with _swapped(pipe, ref_sof, ref_siw):
            return pipe(next(seeds) % 50, 0)

    with torch.no_grad():
        a = pipe(7, 0)
        with _swapped(pipe, ref_sof, ref_siw):
            b = pipe(7, 0)
        ctx.record("portrait_max_abs_diff", float((a.tensor - b.tensor).abs().max()), "abs")
        m = ctx.measure_interleaved({"portrait_ms": today, "portrait_ref_ms": reference}, repeats=repeats,
                                    warmup=2, unit="ms", items=1, clock=clock)
        ctx.record("portrait_speedup", m["portrait_ref_ms"].min / m["portrait_ms"].min, "x")

        z = pipe.geometry_code(7).to(pipe.sof.latents.weight.device)
        cam = pipe.resolve_camera(None, 1)
        m = ctx.measure_interleaved({"sof_render_ms": lambda: pipe.sof.render(z, cam),
                                     "sof_render_ref_ms": lambda: ref_sof.render(z, cam)},
                                    repeats=repeats, warmup=1, unit="ms", items=1, clock=clock)
        ctx.record("sof_render_speedup", m["sof_render_ref_ms"].min / m["sof_render_ms"].min, "x")
        seg17 = sof_to_sofgan(pipe.sof.render(z, cam).labels)
        w = pipe.siw.random_z(1, 1, seed=0)
        m = ctx.measure_interleaved({"siw_ms": lambda: pipe.siw(seg17, w), "siw_ref_ms": lambda: ref_siw(seg17, w)},
                                    repeats=repeats, warmup=1, unit="ms", items=1, clock=clock)
        ctx.record("siw_speedup", m["siw_ref_ms"].min / m["siw_ms"].min, "x")
