"""The one pattern every widget follows: an ``ipywidgets.VBox`` subclass with typed traits.

A :class:`Panel` is displayable on its own (it *is* a container widget) and composable (put it
in another box or tab). Its public state is its traitlets (each with ``help``); trait changes
become requests to its :class:`~._render.Renderer` objects; :meth:`Panel.wait` blocks until every
renderer it depends on (its own and those of the panels it drives, e.g. a shared portrait) is
idle; :meth:`Panel.close` ends their threads.
"""
from __future__ import annotations

import logging
import time
from typing import Any, Iterable

import ipywidgets as W
from traitlets import Float, Unicode, observe

from ._render import DEFAULT_DEBOUNCE, Renderer, error_html

__all__ = ["Panel"]

log = logging.getLogger(__name__)


class Panel(W.VBox):
    """Base class of the sofgan-lab widgets (a ``VBox``)."""

    error = Unicode("", help="The last render error as 'Type: message' ('' after a successful render).")
    debounce = Float(DEFAULT_DEBOUNCE, min=0.0, max=10.0,
                     help="Seconds without a newer change before a previewed render is redone at full quality.")

    def __init__(self, *args: Any, **kwargs: Any):
        self._renderers: list[Renderer] = []
        self._linked: list[Panel] = []
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

    def _attach_portrait(self, pipe: Any, portrait: Any, **traits: Any) -> tuple[Any, bool]:
        """Resolve a control's ``portrait`` argument into ``self.portrait``: ``True`` builds a
        ``PortraitView(pipe, **traits)`` whose debounce follows this control's, a ``PortraitView`` is
        used as given, ``False``/``None`` gives none. :meth:`wait` then waits for it too. Returns
        ``(view or None, built here)``."""
        from .portrait import PortraitView

        if portrait is True:
            view, built = PortraitView(pipe, debounce=self.debounce, **traits), True
            W.dlink((self, "debounce"), (view, "debounce"))
        elif isinstance(portrait, PortraitView):
            view, built = portrait, False
        elif portrait in (False, None):
            view, built = None, False
        else:
            raise TypeError(f"portrait: expected True, False, None or a PortraitView, got {type(portrait).__name__}")
        self.portrait = view
        self._add_linked(view)
        return view, built

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

    def close(self) -> None:
        """Stop the renderers' threads and close the widget (and its children)."""
        if self._closed:
            return
        self._closed = True
        for r in self._renderers:
            r.close()
        for child in _walk(self.children):
            if isinstance(child, Panel):
                child.close()
        super().close()


def _walk(children: Iterable[Any]):
    for c in children:
        yield c
        sub = getattr(c, "children", None)
        if sub and not isinstance(c, Panel):
            yield from _walk(sub)
