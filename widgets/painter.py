"""SegmapPainter: paint a SOF-20 label map on a canvas and see it textured as you paint.

The label map (``segmap``, uint8 ``(H, W)`` SOF-20 ids; ``H = W = size``, default the pipeline's
image size) is drawn on an ``ipycanvas.Canvas`` with the SOF-20 palette
(:data:`sofgan_lab.labels.SOF20_PALETTE`). Tools: a round brush of ``brush_size`` pixels
(diameter) in class ``label``, a flood fill (4-connected region of one class), undo (one step
per stroke, fill, clear or load; ``max_undo`` steps), clear, and loading a map — an uploaded file
(a PNG coloured with the SOF-20 palette, a greyscale PNG of ids, or a ``.npy`` of ids) or the
rendering of the current ``geometry`` through ``camera``. The portrait beside the canvas is
``pipe.from_segmap(segmap, texture=texture, truncation=truncation)``, re-rendered (latest wins)
after every change. Given a shared ``PortraitView`` instead (``portrait=view``, what the explorer does),
the painter drives only that view's ``segmap``, and only while ``active``: setting ``active`` shows the
painted map in the view, clearing it gives the view back to its geometry (``segmap = None``); the
view's texture stays whatever its other controls set.

The canvas' mouse events call the same methods a script or a test calls: mouse-down →
:meth:`SegmapPainter.begin_stroke` (or :meth:`~SegmapPainter.fill_at` with the fill tool),
mouse-move → :meth:`~SegmapPainter.extend_stroke`, mouse-up/out → :meth:`~SegmapPainter.end_stroke`;
:meth:`~SegmapPainter.paint_at` and :meth:`~SegmapPainter.stroke` do a whole stroke at once.
"""
from __future__ import annotations

import io
import logging
import math
import threading
from collections import deque
from typing import Any, Iterable

import ipywidgets as W
import numpy as np
import torch
from traitlets import Bool, Dict, Enum, Float, Int, List, observe

from ._render import Renderer, RenderJob, orbit_camera, pipeline_lock, status_html
from .portrait import PortraitControl, PortraitView

__all__ = ["SegmapPainter"]

log = logging.getLogger(__name__)


def _hex(rgb: Iterable[int]) -> str:
    r, g, b = (int(v) for v in rgb)
    return f"#{r:02x}{g:02x}{b:02x}"


class SegmapPainter(PortraitControl):
    """A label-map painter with a live portrait (see the module docstring).

    Args:
        pipe: a :class:`~sofgan_lab.pipeline.SofGAN`.
        size: the label map's side in pixels (default ``pipe.image_size``).
        portrait: ``True`` (default): an own :class:`PortraitView` beside the canvas (square, the
            canvas' size; its texture and ψ follow ``texture`` and ``truncation``); a ``PortraitView``:
            drive its ``segmap`` while ``active``; ``False``/``None``: none.
        display_size: CSS pixels of the canvas.
        **traits: initial trait values.
    """

    label = Int(1, min=0, max=19, help="The SOF-20 class painted by the brush and the fill (default 1 = skin).")
    brush_size = Int(7, min=1, max=128, help="Brush diameter in label-map pixels.")
    tool = Enum(["brush", "fill"], default_value="brush", help="What a click does: paint a stroke or flood-fill.")
    texture = Int(0, min=0, help="Texture seed of the portrait.")
    truncation = Float(0.7, min=0.0, max=1.0, help="Truncation ψ of the portrait's style.")
    geometry = List(Float(), help="Geometry code rendered by 'from geometry' ([] = pipe.geometry_code(0)).")
    camera = Dict(help="Camera of 'from geometry' {yaw, pitch, radius, fov, target, zoom}; missing keys (all, "
                       "with {}) take the pipeline's default camera.")
    max_undo = Int(50, min=1, max=1000, help="Undo steps kept.")
    version = Int(0, help="Increments on every change of the label map.")
    active = Bool(True, help="With a shared PortraitView: drive it (it shows the painted map); False hands the view "
                             "back to its geometry (segmap None). An own portrait always shows the painted map.")

    def __init__(self, pipe: Any, *, size: int | None = None, portrait: "PortraitView | bool | None" = True,
                 display_size: int = 256, **traits: Any):
        import ipycanvas  # noqa: F401  (a missing ipycanvas fails here, before any state is set)

        from sofgan_lab.labels import get_palette

        self.pipe = pipe
        size = pipe.image_size if size is None else size
        if isinstance(size, bool) or not isinstance(size, int) or not 8 <= size <= 1024:
            raise ValueError(f"size: expected an integer in 8..1024, got {size!r}")
        self.size = size
        self._lock = threading.RLock()
        self._labels = np.zeros((size, size), np.uint8)
        self._undo: deque[np.ndarray] = deque(maxlen=50)
        self._last_point: tuple[float, float] | None = None
        self._drawing = False
        super().__init__()
        self.truncation = float(pipe.truncation)
        for k, v in traits.items():
            if not self.has_trait(k):
                raise TypeError(f"{k}: SegmapPainter has no trait {k!r}")
            setattr(self, k, v)
        self._undo = deque(maxlen=self.max_undo)
        self._palette = get_palette("sof20")
        self._build_canvas(display_size)
        buttons = self._build_palette_buttons()
        self._build_tools()
        self._show_label()
        self._loader = self._add_renderer(Renderer(self._render_geometry, self._deliver_geometry, self._failed,
                                                   debounce=self.debounce, name="sofgan-lab-painter"))
        built = self._build_portrait(pipe, portrait, display_size)
        self._build_layout(buttons, built, display_size)
        self.add_class("sofgan-painter")
        self._redraw()

    def _build_canvas(self, display_size: int) -> None:
        """The canvas of the label map, ``display_size`` CSS pixels square, with its mouse handlers."""
        import ipycanvas

        self.canvas = ipycanvas.Canvas(width=self.size, height=self.size,
                                       layout=W.Layout(width=f"{display_size}px", height=f"{display_size}px"))
        self.canvas.on_mouse_down(self._on_mouse_down)
        self.canvas.on_mouse_move(self._on_mouse_move)
        self.canvas.on_mouse_up(self._on_mouse_up)
        self.canvas.on_mouse_out(self._on_mouse_up)

    def _build_palette_buttons(self) -> list:
        """One button per SOF-20 class, in its palette colour; a click picks the class."""
        from sofgan_lab.labels import SOF20_NAMES

        buttons = []
        for i, name in enumerate(SOF20_NAMES):
            b = W.Button(tooltip=f"{i} {name}", layout=W.Layout(width="26px", height="22px", padding="0"),
                         style=W.ButtonStyle(button_color=_hex(self._palette[i])))
            b.on_click(lambda _, i=i: setattr(self, "label", i))
            buttons.append(b)
        return buttons

    def _build_tools(self) -> None:
        """The label readout, the tool and brush controls, undo / clear / from geometry / load, the status."""
        self._label_text = W.HTML()
        self._brush = W.IntSlider(value=self.brush_size, min=1, max=40, description="brush",
                                  layout=W.Layout(width="260px"))
        W.link((self._brush, "value"), (self, "brush_size"))
        self._tool = W.ToggleButtons(options=["brush", "fill"], value=self.tool, style={"button_width": "60px"})
        W.link((self._tool, "value"), (self, "tool"))
        self._undo_btn = W.Button(description="undo", icon="undo", layout=W.Layout(width="80px"))
        self._undo_btn.on_click(lambda _: self.undo())
        self._clear_btn = W.Button(description="clear", layout=W.Layout(width="70px"))
        self._clear_btn.on_click(lambda _: self.clear())
        self._geo_btn = W.Button(description="from geometry", tooltip="render the current geometry through the camera",
                                 layout=W.Layout(width="120px"))
        self._geo_btn.on_click(lambda _: self.load_from_geometry())
        self._upload = W.FileUpload(accept=".png,.npy,image/png", multiple=False, description="load")
        self._upload.observe(self._on_upload, "value")
        self.status = W.HTML(status_html(""))

    def _build_portrait(self, pipe: Any, portrait: Any, display_size: int) -> bool:
        """The portrait the painted map drives (shared or own, see ``portrait``) -> whether it is own."""
        self.portrait: PortraitView | None = None
        view, built = self._attach_portrait(pipe, portrait, segmap=self.segmap, show_segmap=False,
                                            texture=self.texture, truncation=self.truncation,
                                            display_size=display_size)
        self._own_portrait = built
        if view is not None and not built and self.active:
            view.segmap = self.segmap
        if built:
            W.dlink((self, "texture"), (view, "texture"))
            W.dlink((self, "truncation"), (view, "truncation"))
        return built

    def _build_layout(self, buttons: list, built: bool, display_size: int) -> None:
        """The tools above, the canvas (and an own portrait) in a wrapping row below."""
        self.canvas.layout.flex = "0 0 auto"
        self.canvas.layout.min_width = f"{display_size}px"
        self.canvas.add_class("sofgan-painter-canvas")
        wrap = dict(flex_flow="row wrap", align_items="center", overflow="visible")
        tools = W.VBox([W.HBox(buttons[:10], layout=W.Layout(flex_flow="row wrap")),
                        W.HBox(buttons[10:], layout=W.Layout(flex_flow="row wrap")), self._label_text,
                        W.HBox([self._tool, self._brush], layout=W.Layout(**wrap)),
                        W.HBox([self._undo_btn, self._clear_btn, self._geo_btn, self._upload], layout=W.Layout(**wrap)),
                        self.status])
        row = [self.canvas] + ([self.portrait] if built else [])
        self.children = [tools, W.HBox(row, layout=W.Layout(flex_flow="row wrap", align_items="flex-start",
                                                             overflow="visible"))]

    # ------------------------------------------------------------------ state
    @property
    def segmap(self) -> np.ndarray:
        """A copy of the label map, uint8 ``(size, size)`` SOF-20 ids."""
        with self._lock:
            return self._labels.copy()

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @observe("label")
    def _label_changed(self, change: Any) -> None:
        self._show_label()

    @observe("max_undo")
    def _max_undo_changed(self, change: Any) -> None:
        with self._lock:
            self._undo = deque(self._undo, maxlen=change.new)

    def _show_label(self) -> None:
        from sofgan_lab.labels import SOF20_NAMES

        if hasattr(self, "_label_text"):
            c = _hex(self._palette[self.label])
            self._label_text.value = (f'<span style="display:inline-block;width:14px;height:14px;background:{c};'
                                      f'vertical-align:middle"></span> {self.label} {SOF20_NAMES[self.label]}')

    def _changed(self, box: tuple[int, int, int, int] | None = None) -> None:
        """After an edit: redraw (all, or the box ``(y0, y1, x0, x1)``), bump ``version``, re-texture."""
        self._redraw(box)
        self.version += 1
        if self.portrait is not None and (self._own_portrait or self.active):
            self.portrait.segmap = self.segmap

    @observe("active")
    def _active_changed(self, change: Any) -> None:
        if getattr(self, "portrait", None) is not None and not getattr(self, "_own_portrait", True):
            self.portrait.segmap = self.segmap if change.new else None

    def _redraw(self, box: tuple[int, int, int, int] | None = None) -> None:
        from sofgan_lab.labels import colorize

        with self._lock:
            if box is None:
                y0, y1, x0, x1 = 0, self.size, 0, self.size
            else:
                y0, y1, x0, x1 = box
            if y1 <= y0 or x1 <= x0:
                return
            rgb = colorize(self._labels[y0:y1, x0:x1], "sof20")
        self.canvas.put_image_data(rgb, x0, y0)

    def _push_undo(self) -> None:
        with self._lock:
            self._undo.append(self._labels.copy())

    def _check_label(self, label: int | None) -> int:
        lab = self.label if label is None else label
        if isinstance(lab, bool) or not isinstance(lab, (int, np.integer)) or not 0 <= lab < 20:
            raise ValueError(f"label: expected a SOF-20 id in 0..19, got {lab!r}")
        return int(lab)

    # ------------------------------------------------------------------ brush
    def _dab(self, x: float, y: float, label: int) -> tuple[int, int, int, int] | None:
        """Paint a disc of diameter ``brush_size`` centred at canvas point ``(x, y)``; returns its box."""
        r = self.brush_size / 2.0
        n = self.size
        y0, y1 = max(0, int(math.floor(y - r))), min(n, int(math.ceil(y + r)) + 1)
        x0, x1 = max(0, int(math.floor(x - r))), min(n, int(math.ceil(x + r)) + 1)
        if y1 <= y0 or x1 <= x0:
            return None
        yy, xx = np.mgrid[y0:y1, x0:x1]
        mask = (xx + 0.5 - x) ** 2 + (yy + 0.5 - y) ** 2 <= r * r
        with self._lock:
            self._labels[y0:y1, x0:x1][mask] = label
            if 0 <= int(y) < n and 0 <= int(x) < n:
                self._labels[int(y), int(x)] = label
        return y0, y1, x0, x1

    def _segment(self, p0: tuple[float, float], p1: tuple[float, float], label: int):
        """Dabs from ``p0`` to ``p1`` (spacing at most a quarter of the brush); the union box."""
        (xa, ya), (xb, yb) = p0, p1
        dist = math.hypot(xb - xa, yb - ya)
        steps = max(1, int(math.ceil(dist / max(0.5, self.brush_size / 4.0))))
        box = None
        for t in np.linspace(0.0, 1.0, steps + 1):
            b = self._dab(xa + t * (xb - xa), ya + t * (yb - ya), label)
            if b is not None:
                box = b if box is None else (min(box[0], b[0]), max(box[1], b[1]), min(box[2], b[2]), max(box[3], b[3]))
        return box

    @staticmethod
    def _check_point(x: Any, y: Any) -> tuple[float, float]:
        for name, v in (("x", x), ("y", y)):
            if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or not math.isfinite(v):
                raise ValueError(f"{name}: expected a finite number (canvas pixels), got {v!r}")
        return float(x), float(y)

    def begin_stroke(self, x: float, y: float, label: int | None = None) -> None:
        """Start a stroke at canvas pixel ``(x, y)`` (one undo step until :meth:`end_stroke`)."""
        x, y = self._check_point(x, y)
        self._stroke_label = self._check_label(label)
        self._push_undo()
        self._drawing = True
        self._last_point = (x, y)
        self._changed(self._dab(x, y, self._stroke_label))

    def extend_stroke(self, x: float, y: float) -> None:
        """Continue the current stroke to ``(x, y)`` (no-op without a stroke)."""
        if not self._drawing or self._last_point is None:
            return
        x, y = self._check_point(x, y)
        box = self._segment(self._last_point, (x, y), self._stroke_label)
        self._last_point = (x, y)
        self._changed(box)

    def end_stroke(self) -> None:
        """Finish the current stroke."""
        self._drawing = False
        self._last_point = None

    def paint_at(self, x: float, y: float, label: int | None = None) -> None:
        """One dab of the brush at ``(x, y)`` in class ``label`` (default ``self.label``); one undo step."""
        self.begin_stroke(x, y, label)
        self.end_stroke()

    def stroke(self, points: Iterable[tuple[float, float]], label: int | None = None) -> None:
        """A whole stroke through ``points`` ``[(x, y), ...]`` (canvas pixels); one undo step."""
        pts = [self._check_point(*p) for p in points]
        if not pts:
            raise ValueError("points: expected at least one (x, y) point")
        self.begin_stroke(*pts[0], label=label)
        for p in pts[1:]:
            self.extend_stroke(*p)
        self.end_stroke()

    def fill_at(self, x: float, y: float, label: int | None = None) -> int:
        """Flood-fill the 4-connected region of one class containing ``(x, y)`` with ``label``;
        returns the number of pixels filled (one undo step; nothing happens outside the map)."""
        from skimage.segmentation import flood

        x, y = self._check_point(x, y)
        lab = self._check_label(label)
        r, c = int(y), int(x)
        if not (0 <= r < self.size and 0 <= c < self.size):
            return 0
        with self._lock:
            if self._labels[r, c] == lab:
                return 0
            mask = flood(self._labels, (r, c), connectivity=1)
            self._undo.append(self._labels.copy())
            self._labels[mask] = lab
        self._changed()
        return int(mask.sum())

    def undo(self) -> bool:
        """Undo the last stroke, fill, clear or load; ``False`` when there is nothing to undo."""
        with self._lock:
            if not self._undo:
                return False
            self._labels = self._undo.pop()
        self._drawing = False
        self._changed()
        return True

    def clear(self, label: int = 0) -> None:
        """Fill the whole map with ``label`` (default 0, background); one undo step."""
        lab = self._check_label(label)
        with self._lock:
            self._undo.append(self._labels.copy())
            self._labels[:] = lab
        self._changed()

    # ------------------------------------------------------------------ loading
    def load_segmap(self, data: Any, label_set: str = "sof20") -> None:
        """Replace the map (one undo step) by ``data``: an integer array ``(H, W)`` of ids of
        ``label_set`` ("sof20", or "celebamask19", converted with ``celebamask_to_sof``), an RGB
        uint8 array ``(H, W, 3)`` / PIL image coloured with the SOF-20 palette (or greyscale ids),
        or the bytes of a PNG / ``.npy`` file. Maps of another size are resized (nearest)."""
        from PIL import Image

        from sofgan_lab.labels import celebamask_to_sof, decolorize, validate_labels

        if label_set not in ("sof20", "celebamask19"):
            raise ValueError(f"label_set: expected 'sof20' or 'celebamask19', got {label_set!r}")
        x = data
        if isinstance(x, (bytes, bytearray, memoryview)):
            raw = bytes(x)
            if raw[:6] == b"\x93NUMPY":
                x = np.load(io.BytesIO(raw), allow_pickle=False)
            else:
                x = Image.open(io.BytesIO(raw))
                x.load()
        if isinstance(x, Image.Image):
            x = np.asarray(x) if x.mode in ("L", "I", "I;16") else np.asarray(x.convert("RGB"))
        if isinstance(x, torch.Tensor):
            x = x.detach().cpu().numpy()
        x = np.asarray(x)
        if x.ndim == 3 and x.shape[-1] == 3 and x.dtype == np.uint8:
            x = decolorize(x, "sof20")
            label_set = "sof20"
        if x.ndim != 2:
            raise ValueError(f"data: expected a label map (H, W) or an RGB image (H, W, 3), got shape {x.shape}")
        x = validate_labels(x, label_set, name="data")
        if label_set == "celebamask19":
            x = celebamask_to_sof(np.asarray(x, dtype=np.int64))
        x = np.asarray(x, dtype=np.uint8)
        if x.shape != (self.size, self.size):
            rows = (np.arange(self.size) * x.shape[0]) // self.size
            cols = (np.arange(self.size) * x.shape[1]) // self.size
            x = x[rows][:, cols]
        with self._lock:
            self._undo.append(self._labels.copy())
            self._labels = np.ascontiguousarray(x)
        self._changed()

    def _on_upload(self, change: Any) -> None:
        files = change.new
        if not files:
            return
        f = files[-1] if isinstance(files, (list, tuple)) else list(files.values())[-1]
        try:
            self.load_segmap(f["content"])
            self.error = ""
            self.status.value = status_html(f"loaded {f.get('name', 'file')}")
        except Exception as exc:  # shown inside the widget
            self._show_error(exc, self.status)

    def load_from_geometry(self, geometry: Any = None, camera: dict | None = None) -> int:
        """Render ``geometry`` (default: the ``geometry`` trait, or seed 0) through ``camera`` (default:
        the ``camera`` trait) at the painter's size on the renderer's thread and load it (one undo
        step). Returns the request number; :meth:`wait` for it."""
        code = self.geometry if geometry is None else geometry
        if isinstance(code, torch.Tensor):
            code = code.detach().cpu().tolist()
        cam = dict(self.camera if camera is None else camera)
        self.status.value = status_html("rendering the geometry…")
        return self._submit(self._loader, (None if code is None or len(code) == 0 else tuple(code), cam))

    def _render_geometry(self, params: tuple, preview: bool) -> np.ndarray:
        code, c = params
        pipe = self.pipe
        with pipeline_lock(pipe):
            geometry = 0 if code is None else torch.tensor(code, dtype=torch.float32)
            cam = orbit_camera(pipe, c, self.size)
            return pipe.render_segmap(geometry, cam).labels[0].cpu().numpy().astype(np.uint8)

    def _deliver_geometry(self, labels: np.ndarray, job: RenderJob) -> None:
        with self._lock:
            self._undo.append(self._labels.copy())
            self._labels = labels
        self._changed()
        self.error = ""
        self.status.value = status_html("loaded the rendered geometry")

    def _failed(self, exc: BaseException, job: RenderJob) -> None:
        self._show_error(exc, self.status)

    # ------------------------------------------------------------------ canvas events
    def _on_mouse_down(self, x: float, y: float) -> None:
        try:
            if self.tool == "fill":
                self.fill_at(x, y)
            else:
                self.begin_stroke(x, y)
        except Exception as exc:  # shown inside the widget
            self._show_error(exc, self.status)

    def _on_mouse_move(self, x: float, y: float) -> None:
        if self._drawing:
            self.extend_stroke(x, y)

    def _on_mouse_up(self, x: float, y: float) -> None:
        self.end_stroke()
