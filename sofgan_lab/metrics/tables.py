"""Paper-style tables and a bar chart of :class:`~sofgan_lab.metrics.results.MetricResult` lists.

:func:`metric_table` gives a pandas ``DataFrame`` shaped like the paper's Tables 2–3: one row per
model (``provenance["model"]``), one column per metric (:attr:`MetricResult.column`, e.g.
``"LPIPS (alex)"``, ``"FFHQ: FVV Identity"``), cells ``"0.66 ± 5.81"`` (mean ± std·100, the paper's
scaled error; see :mod:`~sofgan_lab.metrics.results`). A result measured with a different
instrument than the paper's (``comparable_to_paper=False``) gets a mark (†, ‡, ...) per distinct
set of caveats, explained in ``df.attrs["footnotes"]``.

:func:`table_to_markdown`, :func:`table_to_latex` and :func:`table_to_csv` write it out (the
Markdown writer is our own: pandas' needs ``tabulate``, which is not a dependency).
:func:`sofgan_lab.widgets.plot_metrics` draws them as bars with error bars (plotly lives with the
widgets: the core library never imports it).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Iterable, Sequence

import pandas as pd

from .results import MetricResult, metric_spec

__all__ = ["metric_table", "table_to_markdown", "table_to_latex", "table_to_csv", "MARKS"]

log = logging.getLogger(__name__)

#: Marks for non-comparable results, in order of first appearance.
MARKS = ("†", "‡", "§", "¶", "‖", "††", "‡‡", "§§")
_LATEX_MARKS = {"†": r"\dagger", "‡": r"\ddagger", "§": r"\S", "¶": r"\P", "‖": r"\|", "††": r"\dagger\dagger",
                "‡‡": r"\ddagger\ddagger", "§§": r"\S\S"}


def _check_results(results: Any) -> list[MetricResult]:
    if isinstance(results, MetricResult):
        return [results]
    if isinstance(results, (str, bytes)) or not isinstance(results, Iterable):
        raise TypeError(f"results: expected MetricResult objects, got {type(results).__name__}")
    out = list(results)
    for i, r in enumerate(out):
        if not isinstance(r, MetricResult):
            raise TypeError(f"results: item {i} is a {type(r).__name__}, not a MetricResult")
    if not out:
        raise ValueError("results: empty")
    return out


def metric_table(results: Iterable[MetricResult] | MetricResult, *, metrics: Sequence[str] | None = None,
                 columns: Sequence[str] | None = None, rows: Sequence[str] | None = None,
                 value_decimals: int | None = None, error_decimals: int | None = None) -> pd.DataFrame:
    """A paper-style table of ``results`` (see the module docstring).

    Args:
        results: MetricResult objects; at most one per (model, column).
        metrics: keep only these metric names (each must be registered).
        columns, rows: order (and subset) of columns / models; default: first appearance.
        value_decimals, error_decimals: override every metric's decimals.

    Returns:
        A ``DataFrame`` of strings (index "Model"; empty string where a model lacks a metric) with
        ``attrs``: ``footnotes`` (list of "† not comparable to the paper: ..."), ``higher_is_better``
        ``{column: bool}``, ``cells`` ``{model: {column: {"value", "error", "mark", "result"}}}``
        (``result`` = :meth:`MetricResult.to_dict`).
    """
    res = _check_results(results)
    if metrics is not None:
        for m in metrics:
            try:
                metric_spec(m)
            except ValueError as exc:
                raise ValueError(f"metrics: {str(exc).partition(': ')[2]}") from None
        res = [r for r in res if r.metric in set(metrics)]
        if not res:
            raise ValueError(f"metrics: none of the results is one of {list(metrics)}")
    cells: dict[str, dict[str, dict[str, Any]]] = {}
    col_order: list[str] = []
    higher: dict[str, bool] = {}
    marks: dict[tuple[str, ...], str] = {}
    for r in res:
        row, col = r.model, r.column
        if col in cells.get(row, {}):
            raise ValueError(f"results: two results for model {row!r} and column {col!r}; give them different model "
                             "names or provenance extras (e.g. dataset)")
        if col not in col_order:
            col_order.append(col)
        higher[col] = r.spec.higher_is_better
        mark = ""
        if not r.comparable_to_paper:
            key = tuple(r.caveats)
            if key not in marks:
                marks[key] = MARKS[len(marks)] if len(marks) < len(MARKS) else f"*{len(marks) + 1}"
            mark = marks[key]
        full = r.format(value_decimals, error_decimals)
        value, _, error = full.partition(" ± ")
        cells.setdefault(row, {})[col] = {"value": value, "error": error or None, "mark": mark, "text": full + mark,
                                          "result": r.to_dict()}
    row_order = list(cells)
    for name, given, known in (("columns", columns, col_order), ("rows", rows, row_order)):
        if given is not None:
            unknown = [g for g in given if g not in known]
            if unknown:
                raise ValueError(f"{name}: unknown {unknown}; the results have {known}")
    col_order = list(columns) if columns is not None else col_order
    row_order = list(rows) if rows is not None else row_order
    data = [[cells[r].get(c, {}).get("text", "") for c in col_order] for r in row_order]
    df = pd.DataFrame(data, index=pd.Index(row_order, name="Model"), columns=col_order)
    df.attrs["footnotes"] = [f"{m} not comparable to the paper: {'; '.join(k)}" for k, m in marks.items()]
    df.attrs["higher_is_better"] = {c: higher[c] for c in col_order}
    df.attrs["cells"] = {r: {c: {k: v for k, v in cells[r][c].items() if k != "text"} for c in col_order
                             if c in cells[r]} for r in row_order}
    return df


def _header(df: pd.DataFrame, arrows: bool) -> list[str]:
    hib = df.attrs.get("higher_is_better", {})
    return [f"{c} {'↑' if hib[c] else '↓'}" if arrows and c in hib else str(c) for c in df.columns]


def table_to_markdown(df: pd.DataFrame, *, arrows: bool = True, footnotes: bool = True) -> str:
    """GitHub Markdown of a :func:`metric_table` (our own writer; no ``tabulate`` needed): a header
    with ↑/↓ per column, "—" for missing cells, footnotes below."""
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"df: expected a DataFrame from metric_table, got {type(df).__name__}")
    head = [str(df.index.name or "")] + _header(df, arrows)
    body = [[str(idx)] + [str(v) if str(v) else "—" for v in row] for idx, row in zip(df.index, df.values)]

    def esc(s: str) -> str:
        return s.replace("|", "\\|")

    widths = [max(len(esc(r[i])) for r in [head] + body) for i in range(len(head))]
    lines = ["| " + " | ".join(esc(h).ljust(w) for h, w in zip(head, widths)) + " |",
             "|" + "|".join([":" + "-" * (widths[0] + 1)] + ["-" * (w + 1) + ":" for w in widths[1:]]) + "|"]
    lines += ["| " + " | ".join(esc(c).ljust(w) if i == 0 else esc(c).rjust(w) for i, (c, w) in
                                enumerate(zip(r, widths))) + " |" for r in body]
    text = "\n".join(lines)
    if footnotes and df.attrs.get("footnotes"):
        text += "\n\n" + "\n".join(df.attrs["footnotes"])
    return text + "\n"


def _latex_escape(s: str) -> str:
    for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("$", r"\$"), ("#", r"\#"),
                 ("_", r"\_"), ("{", r"\{"), ("}", r"\}"), ("~", r"\textasciitilde{}"), ("^", r"\^{}"),
                 ("↑", r"$\uparrow$"), ("↓", r"$\downarrow$")):
        s = s.replace(a, b)
    return s


def table_to_latex(df: pd.DataFrame, *, caption: str | None = None, label: str | None = None,
                   arrows: bool = True) -> str:
    """A ``booktabs`` LaTeX table in the paper's style: ``0.66$_{\\pm 5.81}$`` (the scaled error as a
    subscript), marks as ``$^{\\dagger}$``, footnotes under the tabular."""
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"df: expected a DataFrame from metric_table, got {type(df).__name__}")
    cells = df.attrs.get("cells", {})
    head = [_latex_escape(str(df.index.name or ""))] + [_latex_escape(h) for h in _header(df, arrows)]
    lines = [r"\begin{table}[t]", r"\centering"]
    if caption:
        lines.append(rf"\caption{{{_latex_escape(caption)}}}")
    if label:
        lines.append(rf"\label{{{label}}}")
    lines += [r"\begin{tabular}{l" + "c" * len(df.columns) + "}", r"\toprule", " & ".join(head) + r" \\",
              r"\midrule"]
    for idx in df.index:
        row = [_latex_escape(str(idx))]
        for c in df.columns:
            cell = cells.get(idx, {}).get(c)
            if cell is None:
                row.append("--")
                continue
            s = cell["value"]
            if cell["error"]:
                s += rf"$_{{\pm {cell['error']}}}$"
            if cell["mark"]:
                s += rf"$^{{{_LATEX_MARKS.get(cell['mark'], '*')}}}$"
            row.append(s)
        lines.append(" & ".join(row) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    for note in df.attrs.get("footnotes", []):
        mark, _, rest = note.partition(" ")
        lines.append(rf"\par\footnotesize $^{{{_LATEX_MARKS.get(mark, '*')}}}$ {_latex_escape(rest)}")
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"


def table_to_csv(df: pd.DataFrame, path: str | Path | None = None, *, numeric: bool = False) -> str:
    """CSV of a :func:`metric_table`. ``numeric=False``: the table of cell strings. ``numeric=True``: a
    long table, one line per result, with ``model, column, metric, value, error, std, scaled_error, n,
    comparable_to_paper, caveats``. Written to ``path`` when given; the text is returned."""
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"df: expected a DataFrame from metric_table, got {type(df).__name__}")
    if numeric:
        recs = []
        for row, cols in df.attrs.get("cells", {}).items():
            for col, cell in cols.items():
                r = cell["result"]
                recs.append({"model": row, "column": col, "metric": r["metric"], "value": r["value"],
                             "error": r["error"], "std": r["std"], "scaled_error": r["scaled_error"], "n": r["n"],
                             "comparable_to_paper": r["comparable_to_paper"], "caveats": "; ".join(r["caveats"])})
        text = pd.DataFrame.from_records(recs).to_csv(index=False)
    else:
        text = df.to_csv()
    if path is not None:
        Path(path).write_text(text, encoding="utf-8")
    return text
