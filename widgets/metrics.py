"""MetricTable: run a few of the paper's metrics on the pipeline and show a paper-style table.

Each chosen metric is one call of ``sofgan_lab.metrics`` on the pipeline, with ``n`` units (LPIPS
pairs, SSG segmaps, FVV instances; small by default — the paper used 50k / 1k / 1k), run one
after the other on the renderer's thread with a progress bar (one step per metric); the results
go through ``sofgan_lab.metrics.metric_table`` and are shown as HTML (with the table's footnotes).
``pretrained_backbone`` (default: whether the ImageNet weights of the LPIPS trunk are on disk;
nothing is downloaded) decides whether LPIPS uses them; without them results are marked not
comparable to the paper.
"""
from __future__ import annotations

import html
import logging
from typing import Any

import ipywidgets as W
from traitlets import Bool, Enum, Int, List, TraitError, Unicode, validate

from ._base import Panel
from ._render import Renderer, RenderJob, pipeline_lock, status_html

__all__ = ["MetricTable", "WIDGET_METRICS"]

log = logging.getLogger(__name__)

#: Metrics the widget can run: name → (function in sofgan_lab.metrics, its sample-size argument).
WIDGET_METRICS: dict[str, tuple[str, str]] = {
    "lpips_diversity": ("lpips_diversity", "n_pairs"),
    "ssg_diversity": ("ssg_diversity", "n_segmaps"),
    "fvv_identity": ("fvv_identity", "n_instances"),
}


def _backbone_on_disk(net: str = "alex") -> bool:
    try:
        from sofgan_lab.metrics import backbone_weights_path

        backbone_weights_path(net)
        return True
    except Exception:  # FileNotFoundError, or a broken install
        return False


class MetricTable(Panel):
    """Run chosen metrics with a progress bar and show the table (see the module docstring).

    Args:
        pipe: a :class:`~sofgan_lab.pipeline.SofGAN`.
        **traits: initial trait values.
    """

    metrics = List(Unicode(), default_value=["lpips_diversity"],
                   help=f"Metrics to run, some of {list(WIDGET_METRICS)}.")
    n = Int(16, min=2, max=100_000, help="Units per metric (LPIPS pairs, SSG segmaps, FVV instances).")
    seed = Int(0, min=0, help="Seed of every random draw of the metrics.")
    net = Enum(["alex", "vgg", "squeeze"], default_value="alex", help="LPIPS trunk.")
    pretrained_backbone = Bool(help="Use the trunk's ImageNet weights (must be on disk; never downloaded).")
    model_name = Unicode("SofGAN", help="Row name of the table.")
    completed = Int(0, help="Metrics finished in the current/last run.")

    def __init__(self, pipe: Any, **traits: Any):
        self.pipe = pipe
        super().__init__()
        self.pretrained_backbone = _backbone_on_disk(traits.get("net", "alex"))
        for k, v in traits.items():
            if not self.has_trait(k):
                raise TypeError(f"{k}: MetricTable has no trait {k!r}")
            setattr(self, k, v)
        self.results: list = []
        self.table = None
        self._pick = W.SelectMultiple(options=list(WIDGET_METRICS), value=tuple(self.metrics), rows=3,
                                      layout=W.Layout(width="170px"))
        self._pick.observe(lambda ch: setattr(self, "metrics", list(ch.new)), "value")
        self._n = W.BoundedIntText(value=self.n, min=2, max=100_000, description="n", layout=W.Layout(width="150px"))
        W.link((self._n, "value"), (self, "n"))
        self._pre = W.Checkbox(value=self.pretrained_backbone, description="ImageNet backbone", indent=False)
        W.link((self._pre, "value"), (self, "pretrained_backbone"))
        self._run = W.Button(description="run", icon="play", layout=W.Layout(width="80px"))
        self._run.on_click(lambda _: self.run())
        self.progress = W.IntProgress(value=0, min=0, max=max(1, len(self.metrics)), description="",
                                      layout=W.Layout(width="300px"))
        self.output = W.HTML()
        self.status = W.HTML(status_html("choose metrics and press run"))
        self.children = [W.HBox([self._pick, W.VBox([self._n, self._pre, self._run])]), self.progress, self.status,
                          self.output]
        self._renderer = self._add_renderer(Renderer(self._render, self._deliver, self._failed,
                                                     debounce=self.debounce, name="sofgan-lab-metrics"))

    @validate("metrics")
    def _check_metrics(self, proposal: Any) -> list:
        bad = [m for m in proposal.value if m not in WIDGET_METRICS]
        if bad:
            raise TraitError(f"metrics: unknown {bad}; expected some of {list(WIDGET_METRICS)}")
        return list(proposal.value)

    def run(self) -> int:
        """Run the chosen metrics on the renderer's thread; returns the request number (:meth:`wait`)."""
        params = (tuple(self.metrics), int(self.n), int(self.seed), self.net, bool(self.pretrained_backbone),
                  self.model_name)
        self.completed = 0
        self.progress.max = max(1, len(params[0]))
        self.progress.value = 0
        self.status.value = status_html("running…")
        return self._submit(self._renderer, params)

    def _render(self, params: tuple, preview: bool) -> Any:
        import sofgan_lab.metrics as M

        names, n, seed, net, pretrained, model_name = params
        if not names:
            raise ValueError("metrics: choose at least one metric")
        results = []
        for i, name in enumerate(names):
            fn_name, n_arg = WIDGET_METRICS[name]
            fn = getattr(M, fn_name)
            kwargs: dict[str, Any] = {n_arg: n, "seed": seed, "model_name": model_name, "progress": False}
            if name != "fvv_identity":
                kwargs.update(net=net, pretrained_backbone=pretrained)
            self.status.value = status_html(f"{name} ({i + 1}/{len(names)})…")
            with pipeline_lock(self.pipe):
                results.append(fn(self.pipe, **kwargs))
            self.progress.value = i + 1
            self.completed = i + 1
        return results

    def _deliver(self, results: list, job: RenderJob) -> None:
        from sofgan_lab.metrics import metric_table

        self.results = results
        self.table = metric_table(results)
        notes = "".join(f"<div style='font-size:small'>{html.escape(f)}</div>" for f in self.table.attrs["footnotes"])
        self.output.value = self.table.to_html(escape=True) + notes
        self.error = ""
        self.status.value = status_html(f"{len(results)} metric(s), n = {job.params[1]}")

    def _failed(self, exc: BaseException, job: RenderJob) -> None:
        self._show_error(exc, self.status)
