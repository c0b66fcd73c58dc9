"""MetricTable: run a few of the paper's metrics on the pipeline and show a paper-style table.

Each chosen metric is one call of ``sofgan_lab.metrics`` on the pipeline, with ``n`` units (LPIPS
pairs, SSG segmaps, FVV instances; small by default — the paper used 50k / 1k / 1k), run one
after the other on the renderer's thread with a progress bar (one step per metric); the results
go through ``sofgan_lab.metrics.metric_table`` and are shown as HTML (with the table's footnotes)
and as a bar chart with standard-error bars (:func:`plot_metrics`, a plotly ``FigureWidget``).
``pretrained_backbone`` (default: whether the ImageNet weights of the LPIPS trunk are on disk;
nothing is downloaded) decides whether LPIPS uses them; without them results are marked not
comparable to the paper.
"""
from __future__ import annotations

import html
import logging
from typing import TYPE_CHECKING, Any, Iterable

import ipywidgets as W
from traitlets import Bool, Enum, Int, List, TraitError, Unicode, validate

from ._base import Panel, close_tree
from ._render import Renderer, RenderJob, pipeline_lock, status_html

if TYPE_CHECKING:  # annotations only
    from sofgan_lab.metrics.results import MetricResult

__all__ = ["MetricTable", "WIDGET_METRICS", "plot_metrics"]

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
    """Run chosen metrics with a progress bar and show the table and a bar chart (see the module docstring).

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
        self._pre = W.Checkbox(value=self.pretrained_backbone, description="ImageNet backbone", indent=False,
                               layout=W.Layout(width="auto"))
        W.link((self._pre, "value"), (self, "pretrained_backbone"))
        self._run = W.Button(description="run", icon="play", layout=W.Layout(width="80px"))
        self._run.on_click(lambda _: self.run())
        self.progress = W.IntProgress(value=0, min=0, max=max(1, len(self.metrics)), description="",
                                      layout=W.Layout(width="300px"))
        self.output = W.HTML()
        self.figure = None                      # the bar chart (plotly FigureWidget) of the last run
        self._plot_box = W.Box()
        self.status = W.HTML(status_html("choose metrics and press run"))
        self.children = [W.HBox([self._pick, W.VBox([self._n, self._pre, self._run])]), self.progress, self.status,
                          self.output, self._plot_box]
        self.add_class("sofgan-metrics")
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
        import plotly.graph_objects as go

        fig = plot_metrics(results, error="se", title=f"{self.model_name}: error bars = standard error; "
                                                       "hatched = not comparable to the paper")
        fig.update_layout(height=320, margin=dict(l=40, r=20, t=60, b=30))
        old, self.figure = self.figure, go.FigureWidget(fig)
        self._plot_box.children = (self.figure,)
        if old is not None:  # the chart of the previous run: shown nowhere now
            close_tree(old)
        self.error = ""
        self.status.value = status_html(f"{len(results)} metric(s), n = {job.params[1]}")

    def _failed(self, exc: BaseException, job: RenderJob) -> None:
        self._show_error(exc, self.status)


def plot_metrics(results: Iterable[MetricResult] | MetricResult, *, error: str = "std", title: str | None = None):
    """Bars per model, one panel per table column, with error bars; non-comparable results hatched.

    Args:
        error: ``"std"`` (the per-unit standard deviation — the paper's ± before its ×100 scaling) or
            ``"se"`` (the standard error of the mean — what a model comparison needs).

    Returns:
        A ``plotly.graph_objects.Figure`` (show it, or wrap it in ``go.FigureWidget``).
    """
    if error not in ("std", "se"):
        raise ValueError(f"error: expected 'std' or 'se', got {error!r}")
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    from sofgan_lab.metrics.tables import _check_results, metric_table

    res = _check_results(results)
    df = metric_table(res)
    cols = list(df.columns)
    arrows = {c: "↑" if df.attrs["higher_is_better"][c] else "↓" for c in cols}
    fig = make_subplots(rows=1, cols=len(cols), subplot_titles=[f"{c} {arrows[c]}" for c in cols])
    models = list(df.index)
    palette = ["#4C78A8", "#F58518", "#54A24B", "#E45756", "#72B7B2", "#B279A2", "#FF9DA6", "#9D755D"]
    for j, c in enumerate(cols):
        for i, m in enumerate(models):
            cell = df.attrs["cells"].get(m, {}).get(c)
            if cell is None:
                continue
            r = cell["result"]
            e = r["std"] if error == "std" else r["error"]
            hover = f"{m}<br>{c}: {cell['value']}" + (f" ± {cell['error']} (×10⁻²)" if cell["error"] else "") + \
                f"<br>n = {r['n']}" + ("" if r["comparable_to_paper"] else "<br>" + "<br>".join(r["caveats"]))
            fig.add_trace(go.Bar(
                x=[m], y=[r["value"]], name=m, legendgroup=m, showlegend=j == 0,
                marker=dict(color=palette[i % len(palette)],
                            pattern=dict(shape="" if r["comparable_to_paper"] else "/")),
                error_y=dict(type="data", array=[e], visible=e is not None), hovertext=hover, hoverinfo="text"),
                row=1, col=j + 1)
    fig.update_layout(title=title or f"Metrics (error bars: {'std' if error == 'std' else 'standard error'}; "
                                     "hatched = not comparable to the paper)", barmode="group", bargap=0.3)
    return fig

