"""Explorer: every widget in one dashboard around one portrait.

Tabs on the left, the shared :class:`PortraitView` on the right. The chain of links:

* sampler → sliders: a clicked thumbnail's code becomes the sliders' ``base``;
* sliders → portrait and 3D viewer: the edited ``code`` (and, with ``restrict``, the base and the
  regions) is the portrait's geometry and the viewer's;
* camera → portrait, 3D viewer (frustum), sampler thumbnails (while the sample tab is open),
  painter ("from geometry");
* mixer → portrait (styles A/B, region weights, ψ) and painter (style A, ψ);
* sliders → painter: "from geometry" in the painter loads the current edited geometry.

The painter drives the shared portrait too, while the *paint* tab is open (``painter.active``): the
portrait then shows the painted segmap, textured with the mixer's styles, and a note under it says so;
the first visit loads the current geometry through the current camera onto the canvas (the portrait
does not change until the first stroke); leaving the tab gives the portrait back to the geometry.

Layout (ipywidgets ``Layout`` properties only; no CSS is injected): the tab panel on the left has one
width for every tab (``tab_width``, a flex basis; it only shrinks in a container narrower than itself,
and then scrolls sideways rather than cut its content off); the column on the right (portrait, notes,
readout, state and export controls) has a fixed width (``display_size`` + 16 px) and never shrinks,
and the portrait in it is a square of ``display_size`` pixels with a *portrait* / *segmap* / *depth* /
*normals* toggle above it. Drag on the portrait to orbit: the drag turns the camera tab's pose
(:meth:`~.camera.CameraControl.orbit_by`, inside the trained poses unless freed), previews stream
as JPEG with a frames-per-second readout in the corner, the full PNG follows the release
(:class:`~.orbit.OrbitSurface`). The two wrap: in a
container narrower than both, the column goes under the tabs instead of being clipped. The edit tab's
many sliders scroll inside a box of their own (:class:`~.sliders.AttributeSliders`).

Every camera starts at the pipeline's own default camera (its framing: look-at point and zoom).
The camera tab keeps the pose inside the poses the SOF was trained on (``pipe.pose_range``) unless
*leave the trained range* is ticked (``explorer.camera.free_camera``); while the pose is outside
that range a note under the shared portrait (``pose_note``) says so, whichever tab is open.

State as data (:mod:`.state`): ``explorer.state`` is a JSON-serialisable dict of everything the
controls hold (the sliders' base code and edits, the camera, the mixer's seeds, weights and ψ, the
sampler's batch); ``Explorer.from_state(pipe, state)`` builds an explorer showing the same pixels and
``explorer.load_state(state)`` applies one. Under the portrait: a one-line readout of the state and
the state controls (*copy state* / *load state* through a text box, *bookmark* and the bookmarks
drop-down, *undo* / *redo* over every change of the controls, one step per settled change).

Exports (:mod:`.export`), under the state controls: *PNG* (the portrait shown and its segmap),
*video* (a turntable of the current state) and *mesh* (the SOF of the current geometry, PLY/OBJ/GLB
with per-class colours) write into ``export_dir`` and link the files in a status line; the methods
:meth:`Explorer.export_png`, :meth:`Explorer.export_video` and :meth:`Explorer.export_mesh` do the
same from code and return the paths.
"""
from __future__ import annotations

import logging
from typing import Any

import ipywidgets as W
from traitlets import Unicode

from ._base import Panel
from ._render import DEFAULT_DEBOUNCE, status_html
from .camera import CameraControl
from .export import ExportControls
from .mixer import RegionStyleMixer
from .painter import SegmapPainter
from .portrait import PortraitView
from .sampler import GeometrySampler
from .sliders import AttributeSliders
from .state import StateControls, apply_state, check_state, code_label, explorer_state, readout_html, state_summary
from .viewer3d import SOFViewer3D

__all__ = ["Explorer"]

log = logging.getLogger(__name__)


class Explorer(Panel):
    """All widgets linked around one portrait (see the module docstring).

    Args:
        pipe: a :class:`~sofgan_lab.pipeline.SofGAN` with a geometry space.
        viewer: include the 3D viewer tab (it meshes the geometry on every change; built when the tab
            first opens, see :attr:`viewer`).
        metrics: include the metrics tab.
        display_size: CSS pixels of the side of the (square) portrait.
        tab_width: CSS pixels of the tab panel (every tab has this width).
        debounce: seconds of quiet before full-quality renders (passed on to every panel).
        history_settle: seconds within which successive changes of one control are one undo step.
        history_limit: the most states kept for undo.
        export_dir: the folder the export buttons write into (relative to the working directory).

    Attributes:
        portrait, sampler, sliders, camera, mixer, painter, viewer (or None), metrics (or None).
        tabs: the ``ipywidgets.Tab`` of the controls; side: the column of the portrait and what is under
            it; main: the wrapping row of the two (the explorer's only child).
        pose_note: the HTML note under the portrait, shown while the camera's pose is outside
            ``pipe.pose_range`` (the camera tab's ``range_note``, mirrored).
        paint_note: the HTML note under the portrait, shown while it shows the painted segmap.
        readout: the HTML line under the portrait summarising :attr:`state`.
        state_controls: the :class:`~.state.StateControls` under it (copy/load, bookmarks, undo/redo).
        exports: the :class:`~.export.ExportControls` under those (PNG, video, mesh).
    """

    readout_text = Unicode("", help="The readout's text: a one-line summary of the state (read only).")

    def __init__(self, pipe: Any, *, viewer: bool = True, metrics: bool = True, display_size: int = 320,
                 tab_width: int = 480, debounce: float = DEFAULT_DEBOUNCE, history_settle: float = 0.5,
                 history_limit: int = 100, export_dir: str = "exports"):
        if isinstance(tab_width, bool) or not isinstance(tab_width, int) or not 240 <= tab_width <= 4096:
            raise ValueError(f"tab_width: expected an integer in 240..4096 (CSS pixels), got {tab_width!r}")
        super().__init__()
        self.debounce = debounce
        self.pipe = pipe
        self._build_panels(pipe, viewer=viewer, metrics=metrics, display_size=display_size, tab_width=tab_width)
        self._link_panels()
        self._build_tabs(tab_width)
        self._build_notes()
        self._build_state_controls(history_limit=history_limit, history_settle=history_settle)
        self._build_exports(pipe, export_dir=export_dir, debounce=debounce)
        self._build_layout(display_size)

    def _build_panels(self, pipe: Any, *, viewer: bool, metrics: bool, display_size: int, tab_width: int) -> None:
        """The shared portrait and the panels around it (the 3D viewer only as a slot, built later)."""
        self.portrait = PortraitView(pipe, display_size=display_size, segmap_toggle=True, orbit=True)
        self.sampler = GeometrySampler(pipe, portrait=False)
        self.sliders = AttributeSliders(pipe, portrait=self.portrait)
        self.camera = CameraControl(pipe, portrait=self.portrait)
        self.portrait.orbit_handler = self.camera.orbit_by   # drag on the portrait: the camera tab's pose
        self.mixer = RegionStyleMixer(pipe, portrait=self.portrait)
        self.painter = SegmapPainter(pipe, portrait=self.portrait, active=False)
        # The 3D viewer is built when its tab first opens (or ``viewer`` is first read): its plotly figure
        # loads a 4.7 MB script in the browser, which anywidget gives 2 s before it drops every later update
        # of the figure; at start-up the browser is busy with the other tabs and the kernel with their renders.
        self._viewer: SOFViewer3D | None = None
        self._viewer_width = tab_width - 40  # a hidden tab has no width to autosize to: plotly would draw 700 px
        self._viewer_slot = None
        if viewer:
            self._viewer_slot = W.VBox([W.HTML(status_html("the 3D view is built when this tab opens…"))])
            self._viewer_slot.add_class("sofgan-explorer-viewer-slot")
        self.metrics = None
        if metrics:
            from .metrics import MetricTable

            self.metrics = MetricTable(pipe)

    def _link_panels(self) -> None:
        """The links between the panels (sampler -> sliders, camera -> sampler and painter, ...)."""
        self.sampler.observe(self._selected, "selected")
        # The sampler's thumbnails follow the camera while its tab is open and no drag is under way (8
        # renders per camera change would compete with the portrait for the pipeline); opening the tab
        # or releasing the drag catches up.
        self.camera.observe(lambda change: self._camera_to_sampler(), "camera")
        self.portrait.orbit_surface.observe(lambda change: self._camera_to_sampler(), "dragging")
        W.dlink((self.camera, "camera"), (self.painter, "camera"))
        W.dlink((self.sliders, "code"), (self.painter, "geometry"))
        W.dlink((self.mixer, "style_a"), (self.painter, "texture"))
        W.dlink((self.mixer, "truncation"), (self.painter, "truncation"))

    def _build_tabs(self, tab_width: int) -> None:
        """The tab panel of the controls; the panels it holds become this explorer's own."""
        tabs = [("sample", self.sampler), ("edit", self.sliders), ("camera", self.camera), ("style", self.mixer),
                ("paint", self.painter)]
        if self._viewer_slot is not None:
            tabs.append(("3D", self._viewer_slot))
        if self.metrics is not None:
            tabs.append(("metrics", self.metrics))
        self.tabs = W.Tab(children=[w for _, w in tabs], titles=[t for t, _ in tabs],
                          layout=W.Layout(flex=f"0 1 {tab_width}px", width=f"{tab_width}px", min_width="0",
                                          max_width="100%", overflow="auto"))
        self.tabs.add_class("sofgan-explorer-tabs")
        self._paint_tab = [t for t, _ in tabs].index("paint")
        self._sample_tab = [t for t, _ in tabs].index("sample")
        self._viewer_tab = [t for t, _ in tabs].index("3D") if self._viewer_slot is not None else None
        self.tabs.observe(self._tab_changed, "selected_index")
        self._panels = [self.portrait, *(w for _, w in tabs if w is not self._viewer_slot)]
        self._own(self._viewer_slot)
        for p in self._panels:
            self._add_linked(p)
            self._own(p)
            W.dlink((self, "debounce"), (p, "debounce"))

    def _build_notes(self) -> None:
        """The notes under the portrait: the pose outside the trained range, the painted segmap shown."""
        self.pose_note = W.HTML(self.camera.range_note.value)
        self.pose_note.add_class("sofgan-explorer-pose-note")
        W.dlink((self.camera.range_note, "value"), (self.pose_note, "value"))
        self.camera.observe(self._pose_range_changed, "in_trained_range")
        self._pose_range_changed()
        self.paint_note = W.HTML('<div style="color:#444;font-size:small">showing the painted segmap (paint tab); '
                                 'the other tabs show the geometry</div>', layout=W.Layout(display="none"))
        self.paint_note.add_class("sofgan-explorer-paint-note")
        self._paint_pending = False
        self.painter.observe(self._painter_changed, ["version", "active"])

    def _build_state_controls(self, *, history_limit: int, history_settle: float) -> None:
        """The readout of the state and the state controls (copy/load, bookmarks, undo/redo), fed by
        every control that the state holds."""
        self._geometry_name = (tuple(self.sliders.base), "space seed 0")  # default_geometry's code
        self.readout = W.HTML()
        self.readout.add_class("sofgan-explorer-readout")
        self.state_controls = StateControls(lambda: self.state, self._apply_state, history_limit=history_limit,
                                            describe=state_summary, history_settle=history_settle)
        W.dlink((self.state_controls, "error"), (self, "error"))
        for panel, names, group in ((self.sliders, ("base", "amounts", "restrict", "regions"), "geometry"),
                                    (self.camera, ("camera", "free_camera"), "camera"),
                                    (self.mixer, ("style_a", "style_b", "mix", "truncation"), "texture"),
                                    (self.sampler, ("seed", "component", "temperature"), "sampler")):
            panel.observe(lambda change, group=group: self._state_changed(f"{group}.{change.name}"), list(names))
        self._update_readout()

    def _build_exports(self, pipe: Any, *, export_dir: str, debounce: float) -> None:
        """The export buttons (PNG, video, mesh) under the state controls."""
        self.exports = ExportControls(pipe, self.portrait, export_dir=export_dir, debounce=debounce)
        W.dlink((self, "debounce"), (self.exports, "debounce"))
        W.dlink((self.exports, "error"), (self, "error"))
        self._add_linked(self.exports)
        self._own(self.exports)

    def _build_layout(self, display_size: int) -> None:
        """The wrapping row of the tabs and the column of the portrait and what is under it."""
        side = display_size + 16
        self.side = W.VBox([self.portrait, self.pose_note, self.paint_note, self.readout, self.state_controls,
                            self.exports],
                           layout=W.Layout(flex="0 0 auto", width=f"{side}px", min_width=f"{side}px",
                                           overflow="visible"))
        self.side.add_class("sofgan-explorer-side")
        self.main = W.HBox([self.tabs, self.side],
                           layout=W.Layout(flex_flow="row wrap", align_items="flex-start", overflow="visible"))
        self.main.add_class("sofgan-explorer-main")
        self.children = [self.main]
        self.add_class("sofgan-explorer")

    @property
    def viewer(self) -> SOFViewer3D | None:
        """The 3D viewer tab's :class:`SOFViewer3D` (``None`` when built with ``viewer=False``), built on
        first use: when its tab first opens or this attribute is first read."""
        if self._viewer is None and self._viewer_slot is not None and not self.closed:
            v = SOFViewer3D(self.pipe, geometry=list(self.sliders.code), height=340)
            v.figure.layout.width = self._viewer_width
            W.dlink((self.sliders, "code"), (v, "geometry"))
            W.dlink((self.camera, "camera"), (v, "camera"))
            W.dlink((self, "debounce"), (v, "debounce"))
            self._add_linked(v)
            self._own(v)
            self._panels.append(v)
            self._viewer = v
            self._viewer_slot.children = [v]
        return self._viewer

    def _camera_to_sampler(self) -> None:
        tabs = getattr(self, "tabs", None)
        if self.portrait.orbit_surface.dragging:
            return
        if (tabs is None or tabs.selected_index == self._sample_tab) and self.sampler.camera != self.camera.camera:
            self.sampler.camera = dict(self.camera.camera)

    def _tab_changed(self, change: Any) -> None:
        """The paint tab opened or closed: hand the shared portrait to the painter, or back; the 3D tab
        opened for the first time: build the viewer."""
        if change.new is not None and change.new == self._viewer_tab:
            self.viewer  # noqa: B018 - builds it
        if change.new == self._sample_tab:
            self._camera_to_sampler()
        painting = change.new == self._paint_tab
        if painting and self.painter.version == 0:
            # A blank canvas: paint over what the portrait shows. The painter takes the portrait once the
            # map is loaded (a blank map would flash a background-only portrait meanwhile).
            self._paint_pending = True
            self.painter.load_from_geometry()
        else:
            self.painter.active = painting

    def _painter_changed(self, change: Any) -> None:
        if change.name == "version" and self._paint_pending:
            self._paint_pending = False
            self.painter.active = self.tabs.selected_index == self._paint_tab
        elif change.name == "active":
            self.paint_note.layout.display = None if change.new else "none"

    def _pose_range_changed(self, change: Any = None) -> None:
        self.pose_note.layout.display = "none" if self.camera.in_trained_range else None

    def _selected(self, change: Any) -> None:
        if change.new:
            s = self.sampler
            where = f"sample {s.selected_index} · seed {s.seed}" if s.selected_index is not None else None
            if where and s.component is not None:
                where += f" · component {s.component}"
            self._name_geometry(change.new, where)
            self.sliders.base = list(change.new)

    # ------------------------------------------------------------------ state as data
    def _name_geometry(self, code: Any, name: str | None) -> None:
        """Remember where the base code ``code`` came from (``name``; ``None``: nowhere known)."""
        self._geometry_name = (tuple(float(v) for v in code), name)

    @property
    def geometry_label(self) -> str:
        """Where the sliders' base code came from ("sample 3 · seed 0", "space seed 0"), or its
        :func:`~.state.code_label` when not known."""
        base = tuple(float(v) for v in self.sliders.base)
        code, name = self._geometry_name
        return name if name and code == base else code_label(base)

    @property
    def state(self) -> dict:
        """Everything the controls hold, as a JSON-serialisable dict (see :mod:`.state`); a new dict on
        every read."""
        return explorer_state(self)

    def load_state(self, state: dict) -> None:
        """Apply ``state`` (a dict like :attr:`state`, e.g. from ``json.loads``; missing sections or keys
        keep their current values) to the controls: one undo step. A bad value raises a one-line
        ``ValueError`` naming its key, before anything changes."""
        self.state_controls.load(state)

    @classmethod
    def from_state(cls, pipe: Any, state: dict, **kwargs: Any) -> "Explorer":
        """An explorer (``Explorer(pipe, **kwargs)``) showing ``state``: the same pixels as the explorer
        it came from. Its undo history starts at ``state``."""
        explorer = cls(pipe, **kwargs)
        try:
            explorer.load_state(state)
        except BaseException:
            explorer.close()
            raise
        explorer.state_controls.reset_history()
        return explorer

    def _apply_state(self, state: dict) -> None:
        """Check ``state`` and write it into the controls (what load, undo, redo and bookmarks call)."""
        apply_state(self, check_state(self, state))
        self._update_readout()

    def undo(self) -> bool:
        """Back to the state before the last change; returns ``False`` when there is none."""
        return self.state_controls.undo()

    def redo(self) -> bool:
        """Forward to the state last undone; returns ``False`` when there is none."""
        return self.state_controls.redo()

    def add_bookmark(self, name: str | None = None) -> str:
        """Bookmark the current state (default name: its number and readout); returns the name."""
        return self.state_controls.add_bookmark(name)

    def load_bookmark(self, name: str) -> None:
        """Load a bookmark by name (what choosing it in the drop-down does)."""
        self.state_controls.load_bookmark(name)

    @property
    def bookmarks(self) -> list[tuple[str, dict]]:
        """``(name, state)`` of every bookmark, oldest first."""
        return self.state_controls.bookmarks

    # ------------------------------------------------------------------ exports
    def export_png(self, path: str | None = None) -> list:
        """Write the portrait shown (pixel for pixel) and its coloured segmap: ``path`` (default: the next
        ``export_dir/portrait-NNN.png``) and ``<stem>_segmap.png``. Returns both paths."""
        return self.exports.export_png(path)

    def export_video(self, path: str | None = None, *, frames: int | None = None) -> Any:
        """Write a turntable video of the current state (``frames``, default 48) to ``path`` (``.mp4`` or
        ``.gif``; default: the next ``export_dir/turntable-NNN.mp4``). Returns the path."""
        return self.exports.export_video(path, frames=frames)

    def export_mesh(self, path: str | None = None, *, format: str | None = None, resolution: int | None = None) -> Any:
        """Write the SOF of the current geometry code as a mesh with per-class colours to ``path``
        (default: the next ``export_dir/mesh-NNN.<format>``; ``format`` ``"ply"``, ``"obj"``, ``"glb"``
        or ``None`` = the suffix of ``path``, else the drop-down's). Returns the path."""
        return self.exports.export_mesh(path, format=format, resolution=resolution)

    def _state_changed(self, group: str) -> None:
        if self._closed or self.state_controls.applying:
            return  # load_state / undo / redo record and update once they are done
        state = self.state
        self._update_readout(state)
        self.state_controls.record(group, state)

    def _update_readout(self, state: dict | None = None) -> None:
        state = self.state if state is None else state
        self.readout_text = state_summary(state)
        self.readout.value = readout_html(state)

