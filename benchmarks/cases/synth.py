"""Benchmarks of the synthetic world: writing multi-view segmap datasets."""
from __future__ import annotations

import itertools
import shutil
import tempfile
from pathlib import Path

from benchmarks.cases import Context, register


@register(
    "synth_scans",
    description="sofgan_lab.synthetic.write_scans: the paper-sized set (122 instances x 64 views at 128 px, "
    "default workers) and one process on 8 instances; --quick: 8 x 16 and 4 x 16",
)
def synth_scans(ctx: Context) -> None:
    from sofgan_lab.synthetic.writers import _default_workers, write_scans

    size = 128
    if ctx.quick:
        instances, views, single_instances = 8, 16, 4
    else:
        instances, views, single_instances = 122, 64, 8
    workers = _default_workers()
    root = Path(tempfile.mkdtemp(prefix="sofgan-lab-bench-synth-"))
    counter = itertools.count()

    def run(n: int, w: int | None) -> None:
        # a fresh folder per call: write_scans refuses a non-empty OUT
        write_scans(root / f"run{next(counter)}", instances=n, views=views, size=size, seed=0, workers=w,
                    progress=False)

    try:
        # The paper-sized set once (it takes minutes); repeats/warmup only add minutes more.
        parallel = ctx.measure("write_scans", lambda: run(instances, None), repeats=1, warmup=0,
                               items=instances * views)
        single = ctx.measure("write_scans_single_process", lambda: run(single_instances, 1), repeats=1,
                             warmup=0, items=single_instances * views)
        ctx.record("workers", workers, "processes")
        ctx.record("instances", instances, "heads")
        ctx.record("views_per_instance", views, "views")
        ctx.record("total_views", instances * views, "views")
        ctx.record("parallel_over_single", parallel.items_per_s / single.items_per_s, "x")
    finally:
        shutil.rmtree(root, ignore_errors=True)
