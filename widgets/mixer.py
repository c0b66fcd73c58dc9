"""RegionStyleMixer: two texture styles (A and B) blended per style group, live.

Style A (``style_a``) is the global style: it paints every region whose weight is 0. Style B
(``style_b``) paints each style group (:data:`sofgan_lab.texture.regions.STYLE_GROUPS`:
background, complexion, hair, eyes_mouth, wearings) with the weight ``mix[group]`` in [0, 1]
(the paper's Eq. 10 region map; ``pipe(texture=(A, B), region_mix=mix)``). The "all groups"
slider sets every weight at once. ``truncation`` is ψ.

Per-region reseed: the pipeline blends exactly two styles, so there is no per-group third style.
:meth:`RegionStyleMixer.reseed` ``(group)`` draws a new style B (the next seed after the current
one, skipping style A's) and sets that group's weight to 1. Style B is shared: other groups with a
weight above 0 change with it.

The portrait only changes texture here, so its label map comes from the cache and each change
costs one texture-generator call (no preview needed).
"""
from __future__ import annotations

import logging
from typing import Any

import ipywidgets as W
from traitlets import Dict, Float, Int, List, TraitError, observe, validate

from .portrait import PortraitControl, PortraitView

__all__ = ["RegionStyleMixer"]

log = logging.getLogger(__name__)


def _groups() -> tuple[str, ...]:
    from sofgan_lab.texture.regions import STYLE_GROUPS

    return tuple(STYLE_GROUPS)


class RegionStyleMixer(PortraitControl):
    """Style A/B seeds, one weight per style group, reseed per group, truncation (see the module
    docstring).

    Args:
        pipe: a :class:`~sofgan_lab.pipeline.SofGAN`.
        portrait: ``True`` (default): an own :class:`PortraitView` (geometry ``geometry``, default
            seed 0 of the space); a ``PortraitView``: drive that one; ``False``/``None``: none.
        **traits: initial trait values.
    """

    style_a = Int(0, min=0, help="Seed of style A, the global style (weight 0 everywhere = style A only).")
    style_b = Int(1, min=0, help="Seed of style B, blended into each group with weight mix[group].")
    mix = Dict(help="{style group: p in [0, 1]}, the weight of style B per group (all groups present).")
    truncation = Float(0.7, min=0.0, max=1.0, help="Truncation ψ of both styles.")
    geometry = List(Float(), help="Geometry code of the own portrait (ignored when driving a shared one).")

    def __init__(self, pipe: Any, *, portrait: "PortraitView | bool | None" = True, **traits: Any):
        self.pipe = pipe
        self._syncing = False
        groups = _groups()
        super().__init__()
        self.mix = {g: 0.0 for g in groups}
        self.truncation = float(pipe.truncation)
        for k, v in traits.items():
            if not self.has_trait(k):
                raise TypeError(f"{k}: RegionStyleMixer has no trait {k!r}")
            setattr(self, k, v)

        style = {"description_width": "90px"}
        self._a = W.BoundedIntText(value=self.style_a, min=0, max=2**31 - 1, description="style A (global)",
                                   style={"description_width": "110px"}, layout=W.Layout(width="220px"))
        self._b = W.BoundedIntText(value=self.style_b, min=0, max=2**31 - 1, description="style B",
                                   style=style, layout=W.Layout(width="200px"))
        W.link((self._a, "value"), (self, "style_a"))
        W.link((self._b, "value"), (self, "style_b"))
        self._sliders: dict[str, W.FloatSlider] = {}
        self._reseeds: dict[str, W.Button] = {}
        rows = []
        for g in groups:
            s = W.FloatSlider(value=self.mix[g], min=0.0, max=1.0, step=0.05, description=g, style=style,
                              layout=W.Layout(width="320px"))
            s.observe(lambda ch, g=g: self.set_weight(g, ch.new), "value")
            s.add_class(f"sofgan-mix-{g}")
            b = W.Button(description="↻", tooltip=f"new style B for {g} (B is shared with every group using it)",
                         layout=W.Layout(width="36px"))
            b.on_click(lambda _, g=g: self.reseed(g))
            self._sliders[g], self._reseeds[g] = s, b
            rows.append(W.HBox([s, b]))
        self._all = W.FloatSlider(value=0.0, min=0.0, max=1.0, step=0.05, description="all groups", style=style,
                                  layout=W.Layout(width="320px"))
        self._all.observe(lambda ch: self.set_all(ch.new), "value")
        self._trunc = W.FloatSlider(value=self.truncation, min=0.0, max=1.0, step=0.01, description="truncation ψ",
                                    style=style, layout=W.Layout(width="320px"))
        W.link((self._trunc, "value"), (self, "truncation"))

        self.portrait: PortraitView | None = None
        children: list[W.Widget] = [W.HBox([self._a, self._b]), *rows, self._all, self._trunc]
        kw = {"geometry": list(self.geometry)} if self.geometry else {}
        view, built = self._attach_portrait(pipe, portrait, **kw)
        if built:
            W.dlink((self, "geometry"), (view, "geometry"), transform=lambda g: g or view.geometry)
            children.append(view)
        if view is not None:
            p = self.portrait
            with p.hold_trait_notifications():
                W.dlink((self, "style_a"), (p, "texture"))
                W.dlink((self, "style_b"), (p, "texture_b"))
                W.dlink((self, "mix"), (p, "region_mix"))
                W.dlink((self, "truncation"), (p, "truncation"))
        self.children = children

    # ------------------------------------------------------------------ state
    @validate("mix")
    def _check_mix(self, proposal: Any) -> dict:
        groups = _groups()
        mix = {g: 0.0 for g in groups}
        for g, p in dict(proposal.value).items():
            if g not in groups:
                raise TraitError(f"mix: unknown style group {g!r}; expected some of {list(groups)}")
            if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= float(p) <= 1.0:
                raise TraitError(f"mix[{g!r}]: expected a number in [0, 1], got {p!r}")
            mix[g] = float(p)
        return mix

    @observe("mix")
    def _mix_changed(self, change: Any) -> None:
        if not hasattr(self, "_sliders"):
            return
        self._syncing = True
        try:
            for g, s in self._sliders.items():
                s.value = change.new[g]
        finally:
            self._syncing = False

    def set_weight(self, group: str, p: float) -> None:
        """Set the weight of style B in ``group`` (what its slider does)."""
        if self._syncing:
            return
        self.mix = {**self.mix, group: float(p)}

    def set_all(self, p: float) -> None:
        """Set every group's weight to ``p`` (the "all groups" slider)."""
        if self._syncing:
            return
        self.mix = {g: float(p) for g in self.mix}

    def reseed(self, group: str) -> int:
        """A new style B (the next seed, skipping style A's) with ``group``'s weight set to 1; returns
        the new seed. Style B is shared by every group whose weight is above 0."""
        if group not in self.mix:
            raise ValueError(f"group: unknown style group {group!r}; expected one of {list(self.mix)}")
        seed = self.style_b + 1
        if seed == self.style_a:
            seed += 1
        with self.hold_trait_notifications():
            self.style_b = seed
            self.mix = {**self.mix, group: 1.0}
        log.debug("reseeded %s: style B = %d", group, seed)
        return seed

    def pipeline_kwargs(self) -> dict:
        """The texture arguments of ``pipe(...)`` for the current state."""
        return {"texture": (self.style_a, self.style_b), "region_mix": dict(self.mix), "truncation": self.truncation}
