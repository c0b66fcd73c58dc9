"""The roofline of the two forward passes (issue 21): FLOPs per call (counted from the layer shapes,
:mod:`benchmarks.flops`) divided by the time, beside the GFLOP/s of a large float32 matmul measured
in the same run with the same threads; and today's implementation against the one at the start of
issue 21 (:mod:`benchmarks.reference`), interleaved in the same run, with their largest output
difference.

Figures, per SIW case ``siw_<widths>_<size>_b<batch>_k<styles>`` (widths ``demo`` or ``official``,
random weights, ``mode="exact"``, two styles = hair by the second one, per-sample class weights)
and per SOF case ``sof_<widths>_<dense|adaptive>_<size>`` (``demo``: the shipped demo SOF;
``official``: the release's sizes, random weights; one view):

* ``<case>_s`` / ``<case>_ref_s``: the call, today and the reference (use ``min``);
* ``<case>_matmul_s``: a float32 2048² matmul timed in the same rounds (the machine may be loaded by
  others: the peak is measured under the same load), ``<case>_matmul_gflops`` its rate;
* ``<case>_gflop`` (SIW: per call; SOF: ``<case>_mflop_per_ray``), ``<case>_gflops`` (FLOPs / min
  time; ``_ref_gflops`` the reference's), ``<case>_peak_fraction`` (of ``<case>_matmul_gflops``;
  ``_ref_peak_fraction``), ``<case>_speedup`` (reference min / today's min), ``<case>_max_abs_diff``
  (largest |today − reference| of the image or the logits);
* SOF also ``<case>_marched_rays`` and ``<case>_us_per_ray`` (time per marched ray).

With one torch thread on the CPU (``OMP_NUM_THREADS=1``) the cases are timed in thread CPU time
(``cpu_clock`` = 1), which the other processes of a shared machine do not inflate; otherwise in
wall-clock time. On CUDA each case also runs with TF32 allowed (suffix ``_tf32``); the plain figures have it off
(parity). The machine's load matters: compare only figures of one run.
"""
from __future__ import annotations

import contextlib
import logging
import time

from benchmarks.cases import Context, register

log = logging.getLogger(__name__)


_MATMUL_N = 2048


def _matmul_fn(ctx: Context):
    """A float32 ``n x n`` matmul on the device (n = 2048; --quick: 256) and its FLOPs."""
    import torch

    n = 256 if ctx.quick else _MATMUL_N
    g = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=g).to(ctx.device)
    b = torch.randn(n, n, generator=g).to(ctx.device)
    return (lambda: a @ b), 2 * n ** 3


def _timed(ctx: Context, tag: str, flops: float, fns: dict, repeats: int, items=None):
    """Time ``fns`` ({"": today, "_ref": reference}) interleaved with the matmul (same rounds, so the
    same load); record ``<tag>_s``, ``<tag>_ref_s``, ``<tag>_matmul_gflops``, ``<tag>_gflops``,
    ``<tag>_peak_fraction`` (of that matmul rate) and ``<tag>_speedup``; return (today's, ref's) min s."""
    mm, mm_flops = _matmul_fn(ctx)
    named = {f"{tag}{k}_s": f for k, f in fns.items()}
    named[f"{tag}_matmul_s"] = mm
    m = ctx.measure_interleaved(named, repeats=repeats, warmup=1, unit="s", items=items, clock=_clock(ctx))
    t, t_ref, t_mm = m[f"{tag}_s"].min, m[f"{tag}_ref_s"].min, m[f"{tag}_matmul_s"].min
    peak = mm_flops / t_mm / 1e9
    ctx.record(f"{tag}_matmul_gflops", peak, "GFLOP/s")
    ctx.record(f"{tag}_gflops", flops / t / 1e9, "GFLOP/s")
    ctx.record(f"{tag}_ref_gflops", flops / t_ref / 1e9, "GFLOP/s")
    ctx.record(f"{tag}_peak_fraction", flops / t / 1e9 / peak, "fraction")
    ctx.record(f"{tag}_ref_peak_fraction", flops / t_ref / 1e9 / peak, "fraction")
    ctx.record(f"{tag}_speedup", t_ref / t, "x")
    return t, t_ref


def _clock(ctx: Context) -> str:
    """"cpu" (thread CPU time) for single-threaded CPU runs, else "wall"."""
    import torch

    single = getattr(ctx.device, "type", str(ctx.device)) == "cpu" and torch.get_num_threads() == 1
    return "cpu" if single else "wall"


def matmul_peak(ctx: Context, sizes=(1024, 2048), repeats: int = 5) -> float:
    """Record ``matmul_<n>_gflops`` (float32 ``n x n @ n x n``, min time) and return the best."""
    import torch

    best = 0.0
    g = torch.Generator().manual_seed(0)
    for n in sizes:
        a = torch.randn(n, n, generator=g).to(ctx.device)
        b = torch.randn(n, n, generator=g).to(ctx.device)
        m = ctx.measure(f"matmul_{n}", lambda: a @ b, repeats=max(repeats, 3), warmup=2, unit="ms")
        gflops = 2 * n ** 3 / (m.min / 1e3) / 1e9
        ctx.record(f"matmul_{n}_gflops", gflops, "GFLOP/s")
        best = max(best, gflops)
    ctx.record("matmul_peak_gflops", best, "GFLOP/s")
    return best


@contextlib.contextmanager
def _tf32(device, on: bool):
    import torch

    if getattr(device, "type", str(device)) != "cuda":
        yield
        return
    old = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = on
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old


def _tf32_modes(ctx: Context):
    kind = getattr(ctx.device, "type", str(ctx.device))
    return [("", False), ("_tf32", True)] if kind == "cuda" else [("", False)]


def _siw_case(ctx: Context, tag: str, config, batch: int, styles: int, repeats: int) -> None:
    import torch

    from benchmarks.flops import siw_flops
    from benchmarks.reference.siw import reference_siw
    from sofgan_lab.texture import SIWGenerator, two_style_weights

    torch.manual_seed(0)
    g = SIWGenerator(config).eval().to(ctx.device)
    ref = reference_siw(g)
    gen = torch.Generator().manual_seed(1)
    cs = config.condition_size
    seg = torch.randint(0, config.num_classes, (batch, 8, 8), generator=gen)
    seg = torch.nn.functional.interpolate(seg[:, None].float(), size=(cs, cs), mode="nearest")[:, 0].long()
    seg = seg.to(ctx.device)
    z = g.random_z(batch, styles, seed=2)
    kw = {} if styles == 1 else {"class_weights": two_style_weights({"hair": 1.0}, batch=batch), "mode": "exact"}
    flops = siw_flops(config, batch, styles, "exact").total
    ctx.record(f"{tag}_gflop", flops / 1e9, "GFLOP")
    for suffix, tf32 in _tf32_modes(ctx):
        with torch.no_grad(), _tf32(ctx.device, tf32):
            diff = float((g(seg, z, **kw) - ref(seg, z, **kw)).abs().max())
            _timed(ctx, f"{tag}{suffix}", flops, {"": lambda: g(seg, z, **kw), "_ref": lambda: ref(seg, z, **kw)},
                   repeats, items=batch)
        ctx.record(f"{tag}{suffix}_max_abs_diff", diff, "abs")


def _sof_model(ctx: Context, widths: str, quick: bool):
    """(model, z (1, latent_dim))."""
    import torch

    from sofgan_lab.geometry import SemanticOccupancyField, SOFConfig

    if quick:
        torch.manual_seed(0)
        cfg = SOFConfig(latent_dim=16, hyper_dim=16, phi_dim=16, marcher_dim=16, classifier_dim=16)
        model = SemanticOccupancyField(cfg)
    elif widths == "demo":
        model = SemanticOccupancyField.from_pretrained("demo")
    else:
        torch.manual_seed(0)
        model = SemanticOccupancyField(SOFConfig.official())
    model = model.eval().to(ctx.device)
    if model.latents.num_embeddings > 0:
        z = model.latents.weight[:1].detach().clone()
    else:
        z = torch.randn(1, model.config.latent_dim, generator=torch.Generator().manual_seed(0)) * 0.01
    return model, z.to(ctx.device)


def _sof_case(ctx: Context, widths: str, size: int, repeats: int) -> None:
    import torch

    from benchmarks.flops import sof_hyper_flops, sof_ray_flops
    from benchmarks.reference.sof import reference_sof
    from benchmarks.reference.sof import render_adaptive as ref_adaptive
    from sofgan_lab.cameras import Camera
    from sofgan_lab.geometry.rendering import render_adaptive, render_dense

    model, z = _sof_model(ctx, widths, ctx.quick)
    ref = reference_sof(model)
    cam = Camera.from_orbit(20.0, 5.0, image_size=size, device=ctx.device)
    per_ray = sof_ray_flops(model.config)
    hyper = sof_hyper_flops(model.config)
    ctx.record(f"sof_{widths}_parameters", model.num_parameters(include_latents=False), "count")
    ctx.record(f"sof_{widths}_mflop_per_ray", per_ray / 1e6, "MFLOP")
    ctx.record(f"sof_{widths}_hyper_mflop", hyper / 1e6, "MFLOP")
    for suffix, tf32 in _tf32_modes(ctx):
        with torch.no_grad(), _tf32(ctx.device, tf32):
            tag = f"sof_{widths}_dense_{size}{suffix}"
            cur = render_dense(model, z, cam)
            old = ref.render(z, cam)
            rays = int(cur.evaluations.marched_rays)
            t, t_ref = _timed(ctx, tag, rays * per_ray + hyper, {"": lambda: render_dense(model, z, cam),
                                                                 "_ref": lambda: ref.render(z, cam)}, repeats, rays)
            ctx.record(f"{tag}_marched_rays", rays, "rays")
            ctx.record(f"{tag}_us_per_ray", t / max(rays, 1) * 1e6, "us")
            ctx.record(f"{tag}_ref_us_per_ray", t_ref / max(rays, 1) * 1e6, "us")
            ctx.record(f"{tag}_max_abs_diff", float((cur.logits - old.logits).abs().max()), "abs")

            tag = f"sof_{widths}_adaptive_{size}{suffix}"
            cur = render_adaptive(model, z, cam, coarse_factor=4, band=1)
            old = ref_adaptive(ref, z, cam, coarse_factor=4, band=1)
            rays = int(cur.evaluations.marched_rays)
            t, t_ref = _timed(ctx, tag, rays * per_ray + hyper,
                              {"": lambda: render_adaptive(model, z, cam, coarse_factor=4, band=1),
                               "_ref": lambda: ref_adaptive(ref, z, cam, coarse_factor=4, band=1)}, repeats, rays)
            ctx.record(f"{tag}_marched_rays", rays, "rays")
            ctx.record(f"{tag}_us_per_ray", t / max(rays, 1) * 1e6, "us")
            ctx.record(f"{tag}_ref_us_per_ray", t_ref / max(rays, 1) * 1e6, "us")
            ctx.record(f"{tag}_max_abs_diff", float((cur.logits - old[0]).abs().max()), "abs")


@register(
    "roofline",
    description="issue 21: GFLOP/s and fraction of the float32 matmul peak (same run, same threads) of the SIW "
    "forward (demo and official widths, 128/256 px, batch 1/4, 1/2 styles) and the SOF march (demo and official "
    "sizes, dense and adaptive 128 px), each beside the reference implementation of the start of issue 21 "
    "(interleaved; speedup and max |diff|); --quick: tiny sizes",
)
def roofline(ctx: Context) -> None:
    import torch

    from sofgan_lab.texture import SIWConfig

    started = time.perf_counter()
    ctx.record("torch_threads", torch.get_num_threads(), "threads")
    ctx.record("cpu_clock", 1.0 if _clock(ctx) == "cpu" else 0.0, "bool")
    if ctx.quick:
        matmul_peak(ctx, sizes=(256,), repeats=3)
        cfg = SIWConfig.demo(32)
        for k in (1, 2):
            _siw_case(ctx, f"siw_demo_32_b1_k{k}", cfg, 1, k, repeats=2)
        _sof_case(ctx, "tiny", 16, repeats=2)
        return
    matmul_peak(ctx)
    for widths in ("demo", "official"):
        for size in (128, 256):
            cfg = SIWConfig.demo(size) if widths == "demo" else SIWConfig.official(size)
            for batch in (1, 4):
                for k in (1, 2):
                    reps = 5 if (widths == "demo" or (size == 128 and batch == 1)) else 3
                    _siw_case(ctx, f"siw_{widths}_{size}_b{batch}_k{k}", cfg, batch, k, repeats=reps)
    for widths in ("demo", "official"):
        _sof_case(ctx, widths, 128, repeats=5 if widths == "demo" else 3)
    log.info("roofline done in %.0f s", time.perf_counter() - started)
