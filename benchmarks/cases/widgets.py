"""Benchmark of the notebook widgets: latency from a trait change to new image bytes.

The pipeline renders 128² portraits: the shipped demo pipeline (``SofGAN.from_pretrained("demo")``).
Without the demo texture model (a checkout that lacks ``data/demo/siw``) a generator of the demo
widths with random weights stands in; it costs the same time, and the figure
``demo_texture_model`` (1 or 0) records which one ran.

Per widget, ``repeats`` changes (each to a new value, so no label-map cache hit hides the work),
each followed by ``widget.wait()``; the clock starts before the trait is set, on the calling
thread (the kernel's thread in a notebook), and stops when the widget's image bytes change (set
on the renderer's thread):

* ``<widget>_first_ms``: the first new image — a preview (half-size label map) for geometry and
  camera changes, the final image for texture changes;
* ``<widget>_full_ms``: the full-quality image, after the widget's ``debounce`` of quiet
  (0.15 s by default, recorded as ``debounce_ms``).

Each is recorded as p50 and p95 (``_p50`` / ``_p95``). Widgets: ``camera`` (yaw),
``sliders`` (pc1 amount), ``mixer`` (hair weight: texture only), ``painter`` (one brush dab, the
portrait re-textured), ``sampler`` (resample: 8 label-map thumbnails at 64²), ``viewer_mesh``
(a new geometry meshed at 48³) and ``viewer_slice`` (the slicing plane moved, 64² samples).
Target: the first image within 150 ms at the median on a 2-core CPU.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable

from benchmarks.cases import Context, percentile, register

log = logging.getLogger(__name__)



def _pipeline(device):
    """(pipeline, whether it is the shipped demo texture model)."""
    import torch

    from sofgan_lab.demo import demo_dir
    from sofgan_lab.geometry.sof import SemanticOccupancyField
    from sofgan_lab.geometry.space import GeometrySpace
    from sofgan_lab.pipeline import SofGAN
    from sofgan_lab.texture import SIWConfig, SIWGenerator

    try:
        demo_dir("siw")
    except FileNotFoundError:
        torch.manual_seed(0)
        siw = SIWGenerator(SIWConfig.demo(128)).eval()
        return SofGAN(SemanticOccupancyField.from_pretrained("demo"), siw, GeometrySpace.load("demo")).to(device), False
    return SofGAN.from_pretrained("demo").to(device), True



class _Clock:
    """Times of the first and the last change of one trait of a widget after ``start()``."""

    def __init__(self, owner: Any, trait: str, full: tuple[Any, str] | None = None):
        self._first: float | None = None
        self._full: float | None = None
        self._t0 = 0.0
        self._lock = threading.Lock()
        owner.observe(self._on_first, trait)
        if full is not None:
            full[0].observe(self._on_full, full[1])

    def start(self) -> None:
        with self._lock:
            self._first = self._full = None
            self._t0 = time.perf_counter()

    def _on_first(self, change: Any) -> None:
        with self._lock:
            if self._first is None:
                self._first = time.perf_counter()

    def _on_full(self, change: Any) -> None:
        with self._lock:
            self._full = time.perf_counter()

    def elapsed(self) -> tuple[float | None, float | None]:
        """(first, full) seconds since ``start()`` (None where it did not happen)."""
        with self._lock:
            f = None if self._first is None else self._first - self._t0
            g = None if self._full is None else self._full - self._t0
            return f, g


def _run(ctx: Context, name: str, widget: Any, clock: _Clock, change: Callable[[int], None], repeats: int,
         warmup: int = 2, wait: Callable[[], bool] | None = None) -> None:
    wait = wait or (lambda: widget.wait(120.0))
    if not wait():
        raise RuntimeError(f"{name}: the widget did not become idle")
    firsts, fulls = [], []
    for i in range(warmup + repeats):
        clock.start()
        change(i)
        if not wait():
            raise RuntimeError(f"{name}: no result within 120 s")
        if widget.error:
            raise RuntimeError(f"{name}: the widget shows an error: {widget.error}")
        first, full = clock.elapsed()
        if first is None:
            raise RuntimeError(f"{name}: the change {i} produced no new image")
        if i >= warmup:
            firsts.append(first * 1e3)
            if full is not None:
                fulls.append(full * 1e3)
    ctx.record(f"{name}_first_ms_p50", percentile(firsts, 0.5), "ms")
    ctx.record(f"{name}_first_ms_p95", percentile(firsts, 0.95), "ms")
    if fulls:
        ctx.record(f"{name}_full_ms_p50", percentile(fulls, 0.5), "ms")
        ctx.record(f"{name}_full_ms_p95", percentile(fulls, 0.95), "ms")
    log.info("%s: first image p50 %.0f ms, p95 %.0f ms", name, percentile(firsts, 0.5), percentile(firsts, 0.95))


@register(
    "widget_latency",
    description="sofgan_lab.widgets at 128² (the demo pipeline; demo_texture_model = 0: random SIW weights): ms from a "
    "trait change to new image bytes (first = preview or final image; full = full quality after the debounce), "
    "p50/p95 per widget (camera, sliders, mixer, painter, sampler, viewer mesh/slice); target first p50 <= 150 ms",
)
def widget_latency(ctx: Context) -> None:
    import torch

    from sofgan_lab.widgets import (AttributeSliders, CameraControl, GeometrySampler, RegionStyleMixer,
                                    SegmapPainter, SOFViewer3D)
    from sofgan_lab.widgets._render import DEFAULT_DEBOUNCE

    pipe, trained = _pipeline(ctx.device)
    repeats = 5 if ctx.quick else (ctx.repeats or 20)
    ctx.record("image_size", pipe.image_size, "px")
    ctx.record("debounce_ms", DEFAULT_DEBOUNCE * 1e3, "ms")
    ctx.record("demo_texture_model", float(trained), "bool")
    ctx.record("torch_threads", torch.get_num_threads(), "threads")

    cc = CameraControl(pipe)
    try:
        clock = _Clock(cc.portrait.image, "value", (cc.portrait, "full_updates"))
        _run(ctx, "camera", cc, clock, lambda i: setattr(cc, "yaw", -30.0 + 2.5 * (i % 24)), repeats)  # inside the trained yaw (±34.4°)
    finally:
        cc.close()

    sl = AttributeSliders(pipe, n_components=4)
    try:
        clock = _Clock(sl.portrait.image, "value", (sl.portrait, "full_updates"))
        _run(ctx, "sliders", sl, clock, lambda i: sl.set_amount("pc1", -2.0 + 0.15 * i), repeats)
    finally:
        sl.close()

    mx = RegionStyleMixer(pipe)
    try:
        clock = _Clock(mx.portrait.image, "value", (mx.portrait, "full_updates"))
        _run(ctx, "mixer", mx, clock, lambda i: mx.set_weight("hair", (i % 20) / 20.0 + 0.025), repeats)
    finally:
        mx.close()

    pt = SegmapPainter(pipe)
    try:
        pt.load_from_geometry()
        pt.wait(120.0)
        clock = _Clock(pt.portrait.image, "value", (pt.portrait, "full_updates"))
        labels = (1, 18, 17, 15)
        _run(ctx, "painter", pt, clock,
             lambda i: pt.paint_at(20 + 4 * (i % 22), 64, label=labels[i % len(labels)]), repeats)
    finally:
        pt.close()

    sm = GeometrySampler(pipe, portrait=False, n=8, thumb_size=64)
    try:
        clock = _Clock(sm, "codes")
        _run(ctx, "sampler", sm, clock, lambda i: sm.resample(), max(3, repeats // 4), warmup=1)
    finally:
        sm.close()

    vw = SOFViewer3D(pipe)
    try:
        mesher, slicer = vw.renderers
        codes = pipe.space.sample(64, seed=123)
        clock = _Clock(vw, "mesh_updates")
        _run(ctx, "viewer_mesh", vw, clock, lambda i: setattr(vw, "geometry", [float(v) for v in codes[i]]),
             max(3, repeats // 4), warmup=1, wait=lambda: mesher.wait(120.0))
        vw.show_slice = True            # off by default
        vw.wait(120.0)
        clock = _Clock(vw, "slice_updates")
        _run(ctx, "viewer_slice", vw, clock, lambda i: setattr(vw, "slice_position", -0.9 + 0.05 * i), repeats,
             wait=lambda: slicer.wait(120.0))
        ctx.record("viewer_mesh_vertices", float(vw.mesh_info.get("vertices", 0)), "vertices")
    finally:
        vw.close()
