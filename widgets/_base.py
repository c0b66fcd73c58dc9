"""The one pattern every widget follows: an ``ipywidgets.VBox`` subclass with typed traits.

A :class:`Panel` is displayable on its own (it *is* a container widget) and composable (put it
in another box or tab). Its public state is its traitlets (each with ``help``); trait changes
become requests to its :class:`~._render.Renderer` objects; :meth:`Panel.wait` blocks until every
renderer it depends on (its own and those of the panels it drives, e.g. a shared portrait) is
idle; :meth:`Panel.close` ends their threads and closes every widget the panel owns (see
:func:`close_tree`).
"""
from __future__ import annotations

import logging
import time
from collections import deque
from typing import Any

import ipywidgets as W
from traitlets import Float, Unicode, observe

from ._render import DEFAULT_DEBOUNCE, Renderer, error_html

__all__ = ["Panel", "close_tree", "SliderLink"]

log = logging.getLogger(__name__)


class SliderLink:
    """A two-way link between a slider's ``value`` and ``owner.name`` that ignores the browser's echoes.

    The browser's slider sends back every value the kernel gives it, after a round trip through its
    own arithmetic (``1.2`` comes back as ``1.2000000000000028``). ``W.link`` takes that echo for a
    user's move: every programmatic change (a drag on the portrait, the orbit player) then cost a second
    render, and an echo arriving after a newer change set the value *back* (the camera jumped back a
    step while dragging). Here a value from the slider within ``tolerance`` of the owner's is ignored,
    one within ``tolerance`` of a value the kernel sent in the last ``keep`` seconds, but not equal to it
    (the browser only sends back a value its arithmetic changed), is a late echo of that value (each
    value is echoed once; the slider is given the current value again), and anything else is the
    user's and goes to the owner.
    """

    def __init__(self, slider: W.Widget, owner: Any, name: str, *, tolerance: float = 1e-9, keep: float = 1.5):
        self.slider, self.owner, self.name = slider, owner, name
        self.tolerance, self.keep = float(tolerance), float(keep)
        self._sent: deque = deque(maxlen=64)   # (value, monotonic time) the kernel gave the slider
        self._busy = False
        slider.value = getattr(owner, name)
        owner.observe(self._from_owner, name)
        slider.observe(self._from_slider, "value")

    def _push(self, value: Any) -> None:
        self._busy = True
        try:
            self._sent.append((float(value), time.monotonic()))
            self.slider.value = value
        finally:
            self._busy = False

    def _from_owner(self, change: Any) -> None:
        if not self._busy:
            self._push(change.new)

    def _from_slider(self, change: Any) -> None:
        if self._busy:
            return
        v, current = float(change.new), float(getattr(self.owner, self.name))
        if abs(v - current) <= self.tolerance:
            return
        now = time.monotonic()
        for i, (s, t) in enumerate(self._sent):
            # the browser sends a value back only when its arithmetic changed it: never bit for bit
            if 0 < abs(v - s) <= self.tolerance and now - t <= self.keep:
                del self._sent[i]             # one echo per value sent
                self._push(current)           # a late echo of an older value: the slider follows the owner
                return
        self._busy = True
        try:
            setattr(self.owner, self.name, change.new)
        finally:
            self._busy = False
        if float(getattr(self.owner, self.name)) != v:   # clamped or cast by the owner: show what it kept
            self._push(getattr(self.owner, self.name))


class Panel(W.VBox):
    """Base class of the sofgan-lab widgets (a ``VBox``)."""

    _closed = True  # until __init__ runs: a constructor that raises early leaves nothing for __del__ to close

    error = Unicode("", help="The last render error as 'Type: message' ('' after a successful render).")
    debounce = Float(DEFAULT_DEBOUNCE, min=0.0, max=10.0,
                     help="Seconds without a newer change before a previewed render is redone at full quality.")

    def __init__(self, *args: Any, **kwargs: Any):
        self._renderers: list[Renderer] = []
        self._linked: list[Panel] = []
        self._owned: list[W.Widget] = []  # closed with this panel even when not among its children
        self._closed = False
        super().__init__(*args, **kwargs)

    # ------------------------------------------------------------------ renderers
    def _add_renderer(self, renderer: Renderer) -> Renderer:
        renderer.debounce = self.debounce
        self._renderers.append(renderer)
        return renderer

    def _submit(self, renderer: Renderer, params: Any, preview: bool = False) -> int:
        """Submit to ``renderer`` unless the panel is closed (then nothing happens; returns 0)."""
        if self._closed:
            log.debug("%s is closed; request ignored", type(self).__name__)
            return 0
        try:
            return renderer.submit(params, preview=preview)
        except RuntimeError:
            if self._closed:  # closed on another thread meanwhile
                return 0
            raise

    def _own(self, widget: "W.Widget | None") -> None:
        """Close ``widget`` (a panel or a plain widget, with its subtree) when this panel closes, even
        when it is not among this panel's children. Only what the panel built itself is owned: a panel
        passed in by the caller (e.g. a shared portrait) is linked, never owned."""
        if widget is not None and widget is not self and all(widget is not w for w in self._owned):
            self._owned.append(widget)

    def _add_linked(self, panel: "Panel | None") -> None:
        """Make :meth:`wait` also wait for ``panel`` (e.g. the portrait this control drives)."""
        if panel is not None and panel is not self and panel not in self._linked:
            self._linked.append(panel)

    def _all_renderers(self, seen: set[int] | None = None) -> list[Renderer]:
        seen = set() if seen is None else seen
        if id(self) in seen:
            return []
        seen.add(id(self))
        out = list(self._renderers)
        for p in self._linked:
            out += p._all_renderers(seen)
        return out

    @observe("debounce")
    def _debounce_changed(self, change: Any) -> None:
        for r in self._renderers:
            r.debounce = change.new

    @property
    def renderers(self) -> tuple[Renderer, ...]:
        """This panel's own renderers (their ``stats`` count requests, renders and drops)."""
        return tuple(self._renderers)

    def wait(self, timeout: float = 30.0) -> bool:
        """Block until every render this panel started or drives is done and shown (results of one
        renderer may trigger another, e.g. a selection re-rendering a portrait: this waits until all
        are idle at once). Returns ``False`` if ``timeout`` seconds passed first."""
        deadline = time.monotonic() + timeout
        while True:
            renderers = self._all_renderers()
            for r in renderers:
                if not r.wait(max(0.0, deadline - time.monotonic())):
                    return False
            if all(r.idle for r in renderers):
                return True
            if time.monotonic() >= deadline:
                return False

    def _show_error(self, exc: BaseException, where: W.HTML) -> None:
        msg = f"{type(exc).__name__}: {exc}"
        log.warning("%s: %s", type(self).__name__, msg)
        where.value = error_html(msg)
        self.error = msg

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    def close(self) -> None:
        """Stop the renderers' threads and close the widget with everything it owns: its children
        (plain widgets, their ``layout`` and ``style``, and nested panels, each closing what it owns)
        and the panels it built itself (:meth:`_own`). Panels it only drives (a portrait passed in by
        the caller) stay open. Closing twice does nothing."""
        if self._closed:
            return
        self._closed = True
        for r in self._renderers:
            r.close()
        for w in self._owned:
            close_tree(w)
        close_tree(self)


def _sub_widgets(widget: W.Widget) -> list[W.Widget]:
    """The widgets a widget holds as its own parts: its ``children`` (boxes, tabs, accordions), its
    ``layout`` and its ``style``. The raw trait values are read, so that a class overriding the
    attribute (plotly's ``FigureWidget.layout``) is not asked; other widget-valued traits are left
    alone on purpose (they may hold shared singletons, e.g. ipycanvas' canvas manager)."""
    values = widget._trait_values
    out = [c for c in values.get("children", None) or () if isinstance(c, W.Widget)]
    for name in ("layout", "style"):
        v = values.get(name)
        if isinstance(v, W.Widget):
            out.append(v)
    return out


def close_tree(widget: W.Widget) -> None:
    """Close ``widget`` and every widget below it (children, ``layout``, ``style``, recursively). A
    :class:`Panel` met below the top is closed through its own :meth:`Panel.close` (which ends its
    renderers and keeps the panels it does not own open); ``widget`` itself, even a panel, is closed
    as a plain widget after its subtree (a panel not yet closed is closed through :meth:`Panel.close`)."""
    if isinstance(widget, Panel) and not widget._closed:
        widget.close()  # ends its renderers, then comes back here
        return
    stack = [(widget, False)]
    seen: set[int] = set()
    while stack:
        w, expanded = stack.pop()
        if expanded:
            if w is widget and isinstance(w, Panel):
                W.Widget.close(w)  # Panel.close is what called us
            else:
                w.close()
            _release_global_references(w)
            continue
        if id(w) in seen:
            continue
        seen.add(id(w))
        if w is not widget and isinstance(w, Panel):
            w.close()
            continue
        stack.append((w, True))  # after its subtree
        stack.extend((c, False) for c in _sub_widgets(w))


def _release_global_references(widget: W.Widget) -> None:
    """Drop the references that third-party globals keep to a closed widget, which would keep it
    (and for a canvas, the whole panel around it) alive after :meth:`Panel.close`:

    * ipycanvas' one shared canvas manager remembers the canvas it last drew on
      (``_current_canvas``); forgetting it only makes its next command switch canvases again;
    * anywidget (up to at least 0.11) connects, per instance, a callback holding the widget to the
      ``changed`` signal of its class's ``_esm``/``_css`` file contents (plotly's ``FigureWidget``),
      so every figure ever made stays alive; the callback of this widget is disconnected.

    Best effort: an attribute that a newer release renamed is simply not there."""
    manager = widget._trait_values.get("_canvas_manager")
    if manager is not None and getattr(manager, "_current_canvas", None) is widget:
        manager._current_canvas = None
    for key in ("_esm", "_css"):
        for klass in type(widget).__mro__:
            signal = getattr(klass.__dict__.get(key), "changed", None)
            if signal is None:
                continue
            for slot in list(getattr(signal, "_slots", ())):
                try:
                    callback = slot.dereference()
                    cells = getattr(callback, "__closure__", None) or ()
                    if any(c.cell_contents is widget for c in cells):
                        signal.disconnect(callback)
                except Exception:  # a private structure changed: leave it
                    log.debug("could not disconnect %s.%s watcher", type(widget).__name__, key, exc_info=True)
