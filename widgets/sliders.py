"""AttributeSliders: edit a geometry code along principal components and attribute directions.

Each slider moves the code by an amount in standard deviations of the fitted codes along one
direction of the geometry space (``GeometrySpace.edit``): the leading principal components
(labelled with their explained variance and, when the space was fitted with attributes, the
attribute they correlate with most, from ``GeometrySpace.correlation_table``) and the named
attribute directions. ``code`` = ``base`` edited by every non-zero amount, in slider order (the
edits are linear, so the order does not matter up to float rounding).

With ``restrict`` on, the portrait keeps the edit inside ``regions`` only (the release's rule for
expression edits, ``sofgan_lab.geometry.space.restricted_edit``): labels outside the regions keep
the rendering of ``base``.

Layout: a *filter* text box (``filter``: only the sliders whose label contains the text, ignoring
case, stay shown), then the sliders in two sections (*principal components*, *attributes*), each a
grid of as many columns as fit (a label over each slider), inside a box of at most ``max_height``
that scrolls; the restriction controls and *reset* below it stay in view. However many directions
there are, the panel keeps one height, so a portrait beside it is never pushed away.
"""
from __future__ import annotations

import logging
from typing import Any

import ipywidgets as W
import numpy as np
import torch
from traitlets import Bool, Dict, Float, List, TraitError, Unicode, observe, validate

from ._render import default_geometry
from .portrait import PortraitControl, PortraitView

__all__ = ["AttributeSliders"]

log = logging.getLogger(__name__)

#: Slider range in standard deviations.
AMOUNT_RANGE = 3.0


def direction_labels(space: Any, n_components: int) -> dict[str, str]:
    """Display labels of the first ``n_components`` PCs ("pc1 · 11.5% · face_width |r| 0.97") and
    of the attribute directions (their names)."""
    labels = {}
    ratio = space.explained_variance_ratio
    top: dict[str, tuple[str, float]] = {}
    if space.attributes:
        try:
            table = space.correlation_table(n_components)
            top = {str(i): (str(r["top_attribute"]), float(r["top_r"])) for i, r in table.iterrows()}
        except (ValueError, ImportError) as exc:  # no attributes, or pandas missing
            log.debug("no correlation table: %s", exc)
    for i in range(n_components):
        name = f"pc{i + 1}"
        text = f"{name} · {100 * ratio[i]:.1f}%"
        if name in top:
            text += f" · {top[name][0]} |r| {top[name][1]:.2f}"
        labels[name] = text
    for name in sorted(space.attribute_directions):
        labels[name] = name
    return labels


def _checked_directions(space: Any, n_components: Any, attributes: list[str] | None) -> tuple[str, ...]:
    """The sliders' directions: ``n_components`` principal components then ``attributes`` (default:
    all the space's attribute directions, sorted); a bad argument raises naming it."""
    n_pc = space.pca_components.shape[0]
    if isinstance(n_components, bool) or not isinstance(n_components, int) or not 0 <= n_components <= n_pc:
        raise ValueError(f"n_components: expected an integer in 0..{n_pc}, got {n_components!r}")
    known = sorted(space.attribute_directions)
    attrs = known if attributes is None else list(attributes)
    unknown = [a for a in attrs if a not in known]
    if unknown:
        raise ValueError(f"attributes: unknown directions {unknown}; the space has {known}")
    return tuple([f"pc{i + 1}" for i in range(n_components)] + attrs)


class AttributeSliders(PortraitControl):
    """Sliders over principal and attribute directions of ``pipe.space`` (see the module docstring).

    Args:
        pipe: a :class:`~sofgan_lab.pipeline.SofGAN` with a geometry space.
        n_components: how many leading principal components get a slider.
        attributes: which attribute directions get a slider (default: all of the space's).
        portrait: ``True`` (default): an own :class:`PortraitView`; a ``PortraitView``: drive that one
            (``geometry``, and ``geometry_base``/``regions`` for restricted edits); ``False``/``None``.
        max_height: CSS height above which the sliders scroll (the filter and the restriction
            controls stay outside the scrolling box).
        **traits: initial trait values.
    """

    base = List(Float(), help="The code being edited (latent_dim floats). Default: pipe.geometry_code(0).")
    amounts = Dict(help="{direction name: amount in standard deviations}; every slider's direction is present.")
    code = List(Float(), help="The edited code (read it, or get_code() for a tensor).")
    restrict = Bool(False, help="Keep the edit inside `regions` only (restricted_edit) in the portrait.")
    regions = List(Unicode(), default_value=["face"],
                   help="Regions of the restricted edit (names of sofgan_lab.geometry.space.REGIONS).")
    filter = Unicode("", help="Show only the sliders whose label contains this text (case-insensitive; '' = all).")

    def __init__(self, pipe: Any, *, n_components: int = 6, attributes: list[str] | None = None,
                 portrait: "PortraitView | bool | None" = True, max_height: str = "360px", **traits: Any):
        if pipe.space is None:
            raise ValueError("pipe: AttributeSliders needs a pipeline with a geometry space (pipe.space is None)")
        self.pipe = pipe
        space = pipe.space
        self.directions: tuple[str, ...] = _checked_directions(space, n_components, attributes)
        self.labels = {k: v for k, v in direction_labels(space, n_components).items() if k in self.directions}
        self._std = {d: space.direction_std(d) for d in self.directions}
        self._syncing = False
        self._ready = False
        super().__init__()
        self.base = traits.pop("base", None) or default_geometry(pipe)
        self.amounts = {d: 0.0 for d in self.directions}
        for k, v in traits.items():
            if not self.has_trait(k):
                raise TypeError(f"{k}: AttributeSliders has no trait {k!r}")
            setattr(self, k, v)
        self._ready = True
        self._update_code()

        self._build_sliders()
        self._build_sections()
        self._build_scroll(max_height)
        children = self._build_controls()

        self.portrait: PortraitView | None = None
        view, built = self._attach_portrait(pipe, portrait, geometry=list(self.code))
        if built:
            children.append(view)
        if view is not None:
            self._push_to_portrait()
        self.children = children
        self.add_class("sofgan-sliders")

    def _build_sliders(self) -> None:
        """One labelled slider per direction, each in a cell of its own (``_sliders``, ``_cells``)."""
        self._sliders: dict[str, W.FloatSlider] = {}
        self._cells: dict[str, W.VBox] = {}
        for d in self.directions:
            s = W.FloatSlider(value=self.amounts[d], min=-AMOUNT_RANGE, max=AMOUNT_RANGE, step=0.1,
                              readout_format=".1f", layout=W.Layout(width="auto", min_width="0"))
            s.observe(lambda ch, d=d: self.set_amount(d, ch.new), "value")
            self._sliders[d] = s
            # width auto: stretched to the cell minus the widgets' margins (100% would stick out by them)
            label = W.Label(self.labels[d], tooltip=self.labels[d], layout=W.Layout(width="auto", min_width="0"))
            cell = W.VBox([label, s], layout=W.Layout(min_width="0", overflow="hidden"))
            cell.add_class(f"sofgan-slider-{d}")
            self._cells[d] = cell

    def _build_sections(self) -> None:
        """The sections (principal components, attributes): a title and a grid of cells each."""
        # One grid per section: as many 200px+ columns as the width allows (two in the explorer's tab).
        grid = dict(grid_template_columns="repeat(auto-fill, minmax(200px, 1fr))", grid_gap="0 12px",
                    width="100%", overflow="visible")
        self._sections: list[tuple[W.HTML, W.GridBox, tuple[str, ...]]] = []
        for title, names in (("principal components", [d for d in self.directions if d.startswith("pc")]),
                             ("attributes", [d for d in self.directions if not d.startswith("pc")])):
            if names:
                head = W.HTML(f"<b>{title}</b>")
                box = W.GridBox([self._cells[d] for d in names], layout=W.Layout(**grid))
                self._sections.append((head, box, tuple(names)))

    def _build_scroll(self, max_height: str) -> None:
        """The filter box, and the sections in a box that scrolls beyond ``max_height``."""
        self._filter = W.Text(value=self.filter, placeholder="filter sliders (e.g. hair, pc2)", continuous_update=True,
                              layout=W.Layout(width="240px"))
        self._filter.add_class("sofgan-sliders-filter")
        W.link((self._filter, "value"), (self, "filter"))
        self._no_match = W.HTML('<span style="color:#666;font-size:small">no slider matches the filter</span>',
                                layout=W.Layout(display="none"))
        self.scroll = W.VBox([w for head, box, _ in self._sections for w in (head, box)] + [self._no_match],
                             layout=W.Layout(max_height=max_height, overflow="hidden auto",  # x hidden, y scrolls
                                             width="100%", flex="0 0 auto", padding="0 4px 0 0"))
        self.scroll.add_class("sofgan-sliders-scroll")
        self._count = W.HTML(layout=W.Layout(width="auto"))
        self._apply_filter()

    def _build_controls(self) -> list:
        """The restrict / regions / reset controls -> the widget's children (filter row, scroll, controls)."""
        from sofgan_lab.geometry.space import REGIONS

        self._restrict = W.Checkbox(value=self.restrict, description="restrict to regions", indent=False,
                                    layout=W.Layout(width="auto"))
        self._regions = W.SelectMultiple(options=sorted(REGIONS), value=tuple(r for r in self.regions if r in REGIONS),
                                         rows=4, layout=W.Layout(width="120px"))
        W.link((self._restrict, "value"), (self, "restrict"))
        self._regions.observe(lambda ch: setattr(self, "regions", list(ch.new)), "value")
        self._reset = W.Button(description="reset", layout=W.Layout(width="80px"))
        self._reset.on_click(lambda _: self.reset())
        return [W.HBox([self._filter, self._count], layout=W.Layout(flex_flow="row wrap", align_items="center")),
                self.scroll,
                W.HBox([self._restrict, self._regions, self._reset],
                       layout=W.Layout(flex_flow="row wrap", align_items="flex-start"))]

    # ------------------------------------------------------------------ state
    @validate("amounts")
    def _check_amounts(self, proposal: Any) -> dict:
        out = {d: 0.0 for d in self.directions}
        for d, a in dict(proposal.value).items():
            if d not in out:
                raise TraitError(f"amounts: unknown direction {d!r}; expected some of {list(self.directions)}")
            if isinstance(a, bool) or not isinstance(a, (int, float)) or not np.isfinite(a):
                raise TraitError(f"amounts[{d!r}]: expected a finite number, got {a!r}")
            out[d] = float(a)
        return out

    @validate("base")
    def _check_base(self, proposal: Any) -> list:
        dim = self.pipe.sof.config.latent_dim
        if len(proposal.value) != dim:
            raise TraitError(f"base: expected a code of {dim} numbers, got {len(proposal.value)}")
        return list(proposal.value)

    @observe("base", "amounts")
    def _inputs_changed(self, change: Any) -> None:
        if change.name == "amounts" and hasattr(self, "_sliders"):
            self._syncing = True
            try:
                for d, s in self._sliders.items():
                    s.value = max(-AMOUNT_RANGE, min(AMOUNT_RANGE, change.new[d]))
            finally:
                self._syncing = False
        if self._ready:
            self._update_code()

    def _update_code(self) -> None:
        self.code = [float(v) for v in self.edited(self.base, self.amounts)]

    def edited(self, base: Any, amounts: dict[str, float]) -> torch.Tensor:
        """``base`` ``(latent_dim,)`` moved by ``amounts`` (direction → standard deviations), as
        ``GeometrySpace.edit`` does, one direction after the other: float32 ``(latent_dim,)``."""
        z = torch.as_tensor(np.asarray(base, dtype=np.float32))
        for d in self.directions:
            a = float(amounts.get(d, 0.0))
            if a != 0.0:
                z = self.pipe.space.edit(z, d, a)
        return z

    @observe("filter")
    def _filter_changed(self, change: Any) -> None:
        if hasattr(self, "_count"):  # the controls are built
            self._apply_filter()

    def matches(self, direction: str) -> bool:
        """Whether ``direction``'s slider is shown under the current ``filter`` (its label or name
        contains the filter text, ignoring case and surrounding spaces)."""
        text = self.filter.strip().lower()
        return not text or text in self.labels[direction].lower() or text in direction.lower()

    @property
    def shown_directions(self) -> tuple[str, ...]:
        """The directions whose sliders the filter leaves shown, in slider order."""
        return tuple(d for d in self.directions if self.matches(d))

    def _apply_filter(self) -> None:
        any_shown = False
        for head, box, names in self._sections:
            shown = [d for d in names if self.matches(d)]
            for d in names:
                self._cells[d].layout.display = None if d in shown else "none"
            head.layout.display = box.layout.display = None if shown else "none"
            any_shown = any_shown or bool(shown)
        self._no_match.layout.display = "none" if any_shown else None
        n, total = len(self.shown_directions), len(self.directions)
        text = f"{n} of {total} sliders" if self.filter.strip() else f"{total} sliders"
        self._count.value = f'<span style="color:#666;font-size:small">{text}</span>'

    @observe("regions")
    def _regions_changed(self, change: Any) -> None:
        """Show regions set from Python (e.g. a loaded state) in the selection box too."""
        if hasattr(self, "_regions"):
            shown = tuple(r for r in change.new if r in self._regions.options)
            if tuple(self._regions.value) != shown:
                self._regions.value = shown

    @observe("code", "restrict", "regions")
    def _push(self, change: Any) -> None:
        if getattr(self, "portrait", None) is not None:
            self._push_to_portrait()

    def _push_to_portrait(self) -> None:
        self.portrait.set_state(geometry=list(self.code), geometry_base=list(self.base) if self.restrict else [],
                                regions=list(self.regions))

    def set_amount(self, direction: str, amount: float) -> None:
        """Set one direction's amount (what its slider does)."""
        if self._syncing:
            return
        if direction not in self.directions:
            raise ValueError(f"direction: unknown {direction!r}; expected one of {list(self.directions)}")
        self.amounts = {**self.amounts, direction: float(amount)}

    def reset(self) -> None:
        """Every amount back to 0 (``code`` = ``base``)."""
        self.amounts = {d: 0.0 for d in self.directions}

    def get_code(self) -> torch.Tensor:
        """The edited code as a float32 tensor ``(latent_dim,)`` (a copy)."""
        return torch.tensor(self.code, dtype=torch.float32)
