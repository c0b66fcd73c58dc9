"""SOFViewer3D: the semantic occupancy field of one geometry code in 3D (plotly).

What it shows (a ``plotly.graph_objects.FigureWidget``):

* the proxy mesh: marching cubes of ``1 - P(background) = 0.5`` on a ``resolution``³ grid of
  the field (``sofgan_lab.geometry.volume.extract_mesh``), one ``Mesh3d`` trace per SOF-20
  class (a face takes the class of at least two of its vertices, else of its first), coloured
  with the SOF-20 palette, so that each class can be hidden on its own (``visible_classes``);
* a slicing plane perpendicular to ``slice_axis`` at ``slice_position`` (world units) coloured by
  the field's probability of ``slice_class`` (or the occupancy ``1 - P(background)``), evaluated
  exactly at ``slice_resolution``² points (``classify_points``, no marching);
* the frustum of ``camera`` (the pipeline's orbit parameters; missing keys, framing included, take
  ``pipe.default_camera``'s): the image rectangle on the plane through the look-at point
  (``target``), its size set by ``fov`` and ``zoom``, joined to the camera (perspective) or to the
  same rectangle at the camera (orthographic).

The scene keeps the user's rotation and zoom across every update (plotly ``uirevision``), its
axes span the head (the mesh's bounding box plus a margin; the frustum is clipped to it, so it
does not shrink the head), and the slicing plane is off by default and translucent
(``slice_opacity``) when on. ``resolution`` (the *mesh grid* box) gives a finer mesh on request.

The default ``resolution`` of 48 is CPU-friendly: about 0.2 s and 6k vertices for the demo SOF
on one CPU core (64: about 0.45 s and 10k vertices; the cost grows as resolution³). Vertex arrays
are float32 and face indices int32, and every update of the traces is one ``batch_update``, so a
100k-vertex mesh stays fluid: toggling a class only flips a trace's ``visible`` flag.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import ipywidgets as W
import numpy as np
import torch
from traitlets import Bool, Dict, Enum, Float, Int, List, TraitError, Unicode, observe, validate

from ._base import Panel
from ._render import Renderer, RenderJob, default_geometry, orbit_camera, pipeline_lock, status_html

__all__ = ["SOFViewer3D", "split_mesh_by_class", "head_bounds"]

log = logging.getLogger(__name__)

#: The plotly ``uirevision`` of the scene: constant, so that data updates keep the user's view.
UIREVISION = "sofgan-lab-viewer"

#: Margin around the head's bounding box in the scene, as a share of its largest side.
SCENE_MARGIN = 0.08


def head_bounds(parts: dict[int, tuple[np.ndarray, np.ndarray]], margin: float = SCENE_MARGIN) -> tuple:
    """The bounding box of per-class meshes ``{class: (vertices (V, 3), faces)}`` grown by ``margin``
    × its largest side on every side: ``((x_lo, x_hi), (y_lo, y_hi), (z_lo, z_hi))``."""
    verts = [np.asarray(v, np.float32).reshape(-1, 3) for v, _ in parts.values() if len(v)]
    if not verts:
        raise ValueError("parts: no vertices")
    allv = np.concatenate(verts)
    lo, hi = allv.min(0), allv.max(0)
    pad = float((hi - lo).max()) * margin
    return tuple((float(a) - pad, float(b) + pad) for a, b in zip(lo, hi))


#: Default grid resolution of the proxy mesh (CPU-friendly, see the module docstring).
DEFAULT_RESOLUTION = 48


def split_mesh_by_class(vertices: np.ndarray, faces: np.ndarray, labels: np.ndarray,
                        num_classes: int = 20) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Split a labelled mesh into one mesh per class.

    Args:
        vertices: ``(V, 3)`` float world coordinates.
        faces: ``(F, 3)`` int vertex indices.
        labels: ``(V,)`` int class ids (SOF-20).

    Returns:
        ``{class: (vertices (V_c, 3) float32, faces (F_c, 3) int32)}`` for the classes that own at
        least one face (a face's class: the label shared by at least two of its vertices, else the
        label of its first vertex); vertices are compacted to those the class's faces use.
    """
    v = np.asarray(vertices, dtype=np.float32)
    f = np.asarray(faces, dtype=np.int64)
    lab = np.asarray(labels, dtype=np.int64)
    if v.ndim != 2 or v.shape[1] != 3 or f.ndim != 2 or f.shape[1] != 3 or lab.shape != (v.shape[0],):
        raise ValueError(f"vertices, faces, labels: expected (V, 3), (F, 3), (V,); got {v.shape}, {f.shape}, "
                         f"{lab.shape}")
    if f.size == 0:
        return {}
    fl = lab[f]
    face_label = np.where(fl[:, 1] == fl[:, 2], fl[:, 1], fl[:, 0])
    out = {}
    for c in np.unique(face_label):
        if not 0 <= c < num_classes:
            continue
        fc = f[face_label == c]
        used, inverse = np.unique(fc, return_inverse=True)
        out[int(c)] = (np.ascontiguousarray(v[used]), inverse.reshape(-1, 3).astype(np.int32))
    return out


@dataclass(frozen=True, eq=False)
class _MeshResult:
    parts: dict
    num_vertices: int
    num_faces: int
    seconds: float


@dataclass(frozen=True, eq=False)
class _SliceResult:
    x: np.ndarray
    y: np.ndarray
    z: np.ndarray
    color: np.ndarray
    title: str


def _hex(rgb) -> str:
    r, g, b = (int(v) for v in rgb)
    return f"#{r:02x}{g:02x}{b:02x}"


class SOFViewer3D(Panel):
    """The SOF of ``geometry`` as a mesh, a probability slice and a camera frustum (see the module
    docstring).

    Args:
        pipe: a :class:`~sofgan_lab.pipeline.SofGAN` (its ``sof`` is shown).
        height: figure height in pixels.
        **traits: initial trait values.
    """

    geometry = List(Float(), help="Geometry code shown (latent_dim floats). Default: pipe.geometry_code(0).")
    resolution = Int(DEFAULT_RESOLUTION, min=8, max=256,
                     help="Grid nodes per axis of the marching cubes (48: ~0.2 s on one CPU core; cost ~ R^3).")
    visible_classes = List(Int(), help="SOF-20 ids whose mesh part is shown (default: all 1..19).")
    show_slice = Bool(False, help="Show the slicing plane (off by default: it hides half the head).")
    slice_opacity = Float(0.6, min=0.0, max=1.0, help="Opacity of the slicing plane.")
    slice_axis = Enum(["x", "y", "z"], default_value="z", help="World axis perpendicular to the slicing plane.")
    slice_position = Float(0.0, help="Position of the slicing plane along slice_axis (world units).")
    slice_class = Unicode("occupancy", help="What the plane shows: 'occupancy' (1 - P(background)) or the "
                                            "probability of a SOF-20 class name (e.g. 'hair').")
    slice_resolution = Int(64, min=8, max=256, help="Samples per side of the slicing plane.")
    camera = Dict(help="Camera whose frustum is drawn {yaw, pitch, radius, fov, target, zoom}; missing keys (all, "
                       "with {}) take the pipeline's default camera.")
    show_frustum = Bool(True, help="Show the camera frustum.")
    mesh_updates = Int(0, help="Meshes shown so far.")
    slice_updates = Int(0, help="Slicing planes shown so far.")

    def __init__(self, pipe: Any, *, height: int = 480, **traits: Any):
        import plotly.graph_objects  # noqa: F401  (a missing plotly fails here, before any state is set)

        from sofgan_lab.geometry.volume import check_bounds
        from sofgan_lab.labels import SOF20_NAMES, get_palette

        self.pipe = pipe
        self._ready = False
        self._names = SOF20_NAMES
        self.bounds = check_bounds(None, pipe.sof)
        self.mesh_info: dict[str, Any] = {}
        super().__init__()
        self.visible_classes = list(range(1, 20))
        self.geometry = traits.pop("geometry", None) or default_geometry(pipe)
        for k, v in traits.items():
            if not self.has_trait(k):
                raise TypeError(f"{k}: SOFViewer3D has no trait {k!r}")
            setattr(self, k, v)
        palette = get_palette("sof20")
        fig = self._build_figure(palette, height)
        toggles = self._build_class_toggles(palette)
        self._build_slice_controls()
        # The controls wrap and the class toggles fill as many 112 px columns as fit: the viewer holds in
        # the explorer's tab (about 450 px) as well as alone in a wide notebook.
        self.children = [fig, W.HBox([self._slice_on, self._slice_axis, self._slice_pos, self._slice_class,
                                      self._frustum_on, self._resolution],
                                     layout=W.Layout(flex_flow="row wrap", align_items="center", overflow="visible")),
                         W.GridBox(toggles, layout=W.Layout(grid_template_columns="repeat(auto-fill, 112px)",
                                                            width="100%")), self.status]
        self.add_class("sofgan-viewer")
        self._start_renderers()

    def _build_figure(self, palette: np.ndarray, height: int) -> Any:
        """The plotly figure: one empty mesh trace per class, the slicing plane, the frustum; its
        scene framed on the SOF's bounds (``figure``, ``scene_bounds``)."""
        import plotly.graph_objects as go

        from sofgan_lab.labels import SOF20_NAMES

        fig = go.FigureWidget()
        empty_f = np.zeros(0, np.float32)
        empty_i = np.zeros(0, np.int32)
        self._mesh_index: dict[int, int] = {}
        with fig.batch_update():
            for c in range(1, 20):
                fig.add_trace(go.Mesh3d(x=empty_f, y=empty_f, z=empty_f, i=empty_i, j=empty_i, k=empty_i,
                                        color=_hex(palette[c]), name=SOF20_NAMES[c], flatshading=True,
                                        hoverinfo="name", showlegend=False, visible=c in self.visible_classes))
                self._mesh_index[c] = len(fig.data) - 1
            fig.add_trace(go.Surface(x=np.zeros((2, 2), np.float32), y=np.zeros((2, 2), np.float32),
                                     z=np.zeros((2, 2), np.float32), surfacecolor=np.zeros((2, 2), np.float32),
                                     cmin=0.0, cmax=1.0, colorscale="Viridis", opacity=self.slice_opacity,
                                     name="slice",
                                     showscale=True, colorbar={"title": {"text": "P"}, "len": 0.6},
                                     visible=False, hoverinfo="skip"))
            self._slice_index = len(fig.data) - 1
            fig.add_trace(go.Scatter3d(x=empty_f, y=empty_f, z=empty_f, mode="lines", name="camera",
                                       line={"color": "#222222", "width": 4}, showlegend=False, hoverinfo="name",
                                       visible=self.show_frustum))
            self._frustum_index = len(fig.data) - 1
            fig.update_layout(height=height, margin={"l": 0, "r": 0, "t": 0, "b": 0},
                              uirevision=UIREVISION,
                              scene={"aspectmode": "manual", "uirevision": UIREVISION,
                                     "camera": {"up": {"x": 0, "y": 1, "z": 0}, "eye": {"x": 0.0, "y": 0.4, "z": 2.2}},
                                     "xaxis": {"title": {"text": "x"}}, "yaxis": {"title": {"text": "y"}},
                                     "zaxis": {"title": {"text": "z"}}})
        self.figure = fig
        self.scene_bounds = tuple(tuple(float(v) for v in b) for b in self.bounds)
        self._set_scene_bounds(self.scene_bounds)
        return fig

    def _build_class_toggles(self, palette: np.ndarray) -> list:
        """One checkbox per class (with its colour swatch) that shows or hides its mesh part."""
        from sofgan_lab.labels import SOF20_NAMES

        self._toggles: dict[int, W.Checkbox] = {}
        toggles = []
        for c in range(1, 20):
            cb = W.Checkbox(value=c in self.visible_classes, description=SOF20_NAMES[c], indent=False,
                            layout=W.Layout(width="92px"))
            cb.observe(lambda ch, c=c: self.set_visible(c, ch.new), "value")
            self._toggles[c] = cb
            swatch = W.HTML(f'<span style="display:inline-block;width:10px;height:10px;background:{_hex(palette[c])}">'
                            "</span>", layout=W.Layout(width="14px"))
            toggles.append(W.HBox([swatch, cb], layout=W.Layout(width="110px")))
        return toggles

    def _build_slice_controls(self) -> None:
        """The slice, camera and mesh-grid controls, linked to their traits, and the status line."""
        from sofgan_lab.labels import SOF20_NAMES

        lo, hi = self._axis_range(self.slice_axis)
        self._slice_on = W.Checkbox(value=self.show_slice, description="slice", indent=False,
                                    layout=W.Layout(width="70px"))
        self._slice_axis = W.ToggleButtons(options=["x", "y", "z"], value=self.slice_axis,
                                           style={"button_width": "32px"})
        self._slice_pos = W.FloatSlider(value=self.slice_position, min=lo, max=hi, step=(hi - lo) / 100,
                                        description="position", layout=W.Layout(width="300px"))
        self._slice_class = W.Dropdown(options=["occupancy", *SOF20_NAMES[1:]], value=self.slice_class,
                                       layout=W.Layout(width="130px"))
        self._frustum_on = W.Checkbox(value=self.show_frustum, description="camera", indent=False,
                                      layout=W.Layout(width="80px"))
        self._resolution = W.BoundedIntText(value=self.resolution, min=8, max=256, description="mesh grid",
                                            tooltip="grid nodes per axis (finer: slower, ~ R^3)",
                                            layout=W.Layout(width="150px"))
        W.link((self._slice_on, "value"), (self, "show_slice"))
        W.link((self._slice_axis, "value"), (self, "slice_axis"))
        W.link((self._slice_pos, "value"), (self, "slice_position"))
        W.link((self._slice_class, "value"), (self, "slice_class"))
        W.link((self._frustum_on, "value"), (self, "show_frustum"))
        W.link((self._resolution, "value"), (self, "resolution"))
        self.status = W.HTML(status_html("meshing…"))

    def _start_renderers(self) -> None:
        """The mesh and slice renderers; the first mesh (and slice, when shown) and the frustum requested."""
        self._mesher = self._add_renderer(Renderer(self._render_mesh, self._deliver_mesh, self._failed,
                                                   debounce=self.debounce, name="sofgan-lab-mesh"))
        self._slicer = self._add_renderer(Renderer(self._render_slice, self._deliver_slice, self._failed,
                                                   debounce=self.debounce, name="sofgan-lab-slice"))
        self._ready = True
        self.request_mesh()
        if self.show_slice:
            self.request_slice()
        self._update_frustum()

    # ------------------------------------------------------------------ validation
    @validate("slice_class")
    def _check_slice_class(self, proposal: Any) -> str:
        v = proposal.value
        if v != "occupancy" and v not in self._names:
            raise TraitError(f"slice_class: expected 'occupancy' or a SOF-20 class name, got {v!r}")
        return v

    @validate("visible_classes")
    def _check_visible(self, proposal: Any) -> list:
        bad = [c for c in proposal.value if not 0 <= c < 20]
        if bad:
            raise TraitError(f"visible_classes: expected SOF-20 ids 0..19, got {bad}")
        return sorted(set(proposal.value))

    def _axis_range(self, axis: str) -> tuple[float, float]:
        return self.bounds["xyz".index(axis)]

    # ------------------------------------------------------------------ mesh
    @observe("geometry", "resolution")
    def _geometry_changed(self, change: Any) -> None:
        if self._ready:
            self.request_mesh()
            if self.show_slice:
                self.request_slice()

    def request_mesh(self) -> int:
        """Re-mesh the current geometry (latest wins); returns the request number."""
        self.status.value = status_html("meshing…")
        return self._submit(self._mesher, (tuple(self.geometry), int(self.resolution)))

    def _render_mesh(self, params: tuple, preview: bool) -> _MeshResult:
        import time

        from sofgan_lab.geometry.volume import extract_mesh

        code, res = params
        t0 = time.perf_counter()
        with pipeline_lock(self.pipe):
            mesh = extract_mesh(self.pipe.sof, torch.tensor(code, dtype=torch.float32), res)
        parts = split_mesh_by_class(mesh.vertices, mesh.faces, mesh.labels)
        return _MeshResult(parts, mesh.num_vertices, mesh.num_faces, time.perf_counter() - t0)

    def _deliver_mesh(self, result: _MeshResult, job: RenderJob) -> None:
        self.show_parts(result.parts)
        if result.parts:
            self._set_scene_bounds(head_bounds(result.parts))
        self.mesh_info = {"vertices": result.num_vertices, "faces": result.num_faces, "seconds": result.seconds,
                          "classes": sorted(result.parts)}
        self.error = ""
        self.status.value = status_html(f"{result.num_vertices} vertices, {result.num_faces} faces "
                                        f"({result.seconds:.2f} s at {job.params[1]}³)")
        self.mesh_updates += 1

    def show_mesh(self, vertices: np.ndarray, faces: np.ndarray, labels: np.ndarray) -> None:
        """Show a labelled mesh (``(V, 3)`` world vertices, ``(F, 3)`` faces, ``(V,)`` SOF-20 vertex
        labels) in one batch update — e.g. an ``extract_mesh`` result of your own."""
        self.show_parts(split_mesh_by_class(vertices, faces, labels))

    def show_parts(self, parts: dict[int, tuple[np.ndarray, np.ndarray]]) -> None:
        """Show per-class meshes ``{class: (vertices float32 (V_c, 3), faces int32 (F_c, 3))}`` in one
        batch update (classes missing from ``parts`` are emptied)."""
        empty_f, empty_i = np.zeros(0, np.float32), np.zeros(0, np.int32)
        fig = self.figure
        with fig.batch_update():
            for c, idx in self._mesh_index.items():
                tr = fig.data[idx]
                if c in parts:
                    v, f = parts[c]
                    v = np.asarray(v, np.float32)
                    f = np.asarray(f, np.int32)
                    tr.x, tr.y, tr.z = v[:, 0].copy(), v[:, 1].copy(), v[:, 2].copy()
                    tr.i, tr.j, tr.k = f[:, 0].copy(), f[:, 1].copy(), f[:, 2].copy()
                else:
                    tr.x = tr.y = tr.z = empty_f
                    tr.i = tr.j = tr.k = empty_i

    def _set_scene_bounds(self, bounds: tuple) -> None:
        """Axis ranges (and a matching aspect ratio) of the scene: ``((x_lo, x_hi), (y_lo, y_hi),
        (z_lo, z_hi))``. The user's view survives (``uirevision``)."""
        self.scene_bounds = tuple(tuple(float(v) for v in b) for b in bounds)
        ext = [hi - lo for lo, hi in self.scene_bounds]
        m = max(ext)
        with self.figure.batch_update():
            scene = self.figure.layout.scene
            for axis, (lo, hi) in zip((scene.xaxis, scene.yaxis, scene.zaxis), self.scene_bounds):
                axis.range = [lo, hi]
                axis.autorange = False
            scene.aspectratio = {"x": ext[0] / m, "y": ext[1] / m, "z": ext[2] / m}

    @observe("slice_opacity")
    def _opacity_changed(self, change: Any) -> None:
        if hasattr(self, "figure"):
            self.figure.data[self._slice_index].opacity = change.new

    # ------------------------------------------------------------------ visibility
    def mesh_trace(self, cls: int | str) -> Any:
        """The ``Mesh3d`` trace of a SOF-20 class (id or name)."""
        return self.figure.data[self._mesh_index[self._class_id(cls)]]

    def _class_id(self, cls: int | str) -> int:
        if isinstance(cls, str):
            if cls not in self._names:
                raise ValueError(f"cls: unknown SOF-20 class {cls!r}")
            cls = self._names.index(cls)
        if isinstance(cls, bool) or not isinstance(cls, (int, np.integer)) or not 1 <= cls < 20:
            raise ValueError(f"cls: expected a SOF-20 id in 1..19 or a class name, got {cls!r}")
        return int(cls)

    def set_visible(self, cls: int | str, visible: bool = True) -> None:
        """Show or hide one class's part of the mesh (what its checkbox does)."""
        c = self._class_id(cls)
        now = set(self.visible_classes)
        (now.add if visible else now.discard)(c)
        self.visible_classes = sorted(now)

    def toggle(self, cls: int | str) -> bool:
        """Flip one class's visibility; returns the new state."""
        c = self._class_id(cls)
        self.set_visible(c, c not in self.visible_classes)
        return c in self.visible_classes

    @observe("visible_classes")
    def _visible_changed(self, change: Any) -> None:
        if not hasattr(self, "figure"):
            return
        vis = set(change.new)
        with self.figure.batch_update():
            for c, idx in self._mesh_index.items():
                self.figure.data[idx].visible = c in vis
        for c, cb in self._toggles.items():
            cb.value = c in vis

    # ------------------------------------------------------------------ slice
    @observe("show_slice", "slice_axis", "slice_position", "slice_class", "slice_resolution")
    def _slice_changed(self, change: Any) -> None:
        if not self._ready:
            return
        if change.name == "slice_axis":
            lo, hi = self._axis_range(change.new)
            s = self._slice_pos
            if lo > s.max:
                s.max, s.min = hi, lo
            else:
                s.min, s.max = lo, hi
            s.step = (hi - lo) / 100
        if not self.show_slice:
            self.figure.data[self._slice_index].visible = False
            return
        self.request_slice()

    def request_slice(self) -> int:
        """Re-evaluate the slicing plane (latest wins); returns the request number."""
        return self._submit(self._slicer, (tuple(self.geometry), self.slice_axis, float(self.slice_position),
                                    self.slice_class, int(self.slice_resolution)))

    def _render_slice(self, params: tuple, preview: bool) -> _SliceResult:
        from sofgan_lab.geometry.volume import classify_points

        code, axis, pos, cls, n = params
        a = "xyz".index(axis)
        (u_ax, v_ax) = [i for i in range(3) if i != a]
        u = np.linspace(*self.bounds[u_ax], n, dtype=np.float32)
        v = np.linspace(*self.bounds[v_ax], n, dtype=np.float32)
        uu, vv = np.meshgrid(u, v, indexing="xy")  # (n, n): rows follow v
        pts = np.empty((n, n, 3), np.float32)
        pts[..., a] = pos
        pts[..., u_ax] = uu
        pts[..., v_ax] = vv
        with pipeline_lock(self.pipe):
            logits = classify_points(self.pipe.sof, torch.tensor(code, dtype=torch.float32),
                                     torch.from_numpy(pts.reshape(-1, 3)))[0]
        probs = logits.softmax(-1).cpu().numpy()
        color = 1.0 - probs[:, 0] if cls == "occupancy" else probs[:, self._names.index(cls)]
        title = "1 - P(background)" if cls == "occupancy" else f"P({cls})"
        return _SliceResult(pts[..., 0], pts[..., 1], pts[..., 2], color.reshape(n, n).astype(np.float32), title)

    def _deliver_slice(self, result: _SliceResult, job: RenderJob) -> None:
        tr = self.figure.data[self._slice_index]
        with self.figure.batch_update():
            tr.x, tr.y, tr.z = result.x, result.y, result.z
            tr.surfacecolor = result.color
            tr.colorbar.title.text = result.title
            tr.visible = bool(self.show_slice)
        self.slice_updates += 1

    @property
    def slice_trace(self) -> Any:
        """The ``Surface`` trace of the slicing plane."""
        return self.figure.data[self._slice_index]

    # ------------------------------------------------------------------ frustum
    @observe("camera", "show_frustum")
    def _camera_changed(self, change: Any) -> None:
        if self._ready:
            self._update_frustum()

    def frustum_lines(self) -> np.ndarray:
        """The frustum's polyline ``(N, 3)`` float32 (NaN rows separate the segments): the image
        rectangle on the look-at plane (through ``target``, at depth ``radius``), joined to the camera
        centre (perspective) or to the image rectangle at the camera (orthographic). The camera is
        the pipeline's (:func:`~._render.orbit_camera`), so ``target`` and ``zoom`` apply."""
        c = {**self.pipe.default_camera, **self.camera}
        cam = orbit_camera(self.pipe, c)
        h, w = cam.height, cam.width
        uv = torch.tensor([[0.0, 0.0], [w, 0.0], [w, h], [0.0, h]])
        far = cam.unproject(uv, torch.full((4,), float(c["radius"])))[0].numpy()
        nan = np.full((1, 3), np.nan, np.float32)
        rect = np.concatenate([far, far[:1]])
        if cam.orthographic:
            near = cam.unproject(uv, torch.zeros(4))[0].numpy()
            parts = [rect, nan, np.concatenate([near, near[:1]])]
            for k in range(4):
                parts += [nan, np.stack([near[k], far[k]])]
        else:
            eye = cam.position[0].numpy()
            parts = [rect]
            for k in range(4):
                parts += [nan, np.stack([eye, far[k]])]
        return np.concatenate(parts).astype(np.float32)

    def _update_frustum(self) -> None:
        tr = self.figure.data[self._frustum_index]
        try:
            pts = self.frustum_lines()
        except Exception as exc:  # a bad camera dict: shown inside the widget
            self._show_error(exc, self.status)
            return
        with self.figure.batch_update():
            tr.x, tr.y, tr.z = pts[:, 0].copy(), pts[:, 1].copy(), pts[:, 2].copy()
            tr.visible = bool(self.show_frustum)

    @property
    def frustum_trace(self) -> Any:
        """The ``Scatter3d`` trace of the camera frustum."""
        return self.figure.data[self._frustum_index]

    def _failed(self, exc: BaseException, job: RenderJob) -> None:
        self._show_error(exc, self.status)
