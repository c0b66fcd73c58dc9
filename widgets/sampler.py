"""GeometrySampler: draw geometry codes from the geometry space and pick one from a grid.

``n`` codes are drawn with ``pipe.space.sample(n, seed=seed, component=component,
temperature=temperature)`` (``component`` ``None`` = the whole mixture) and shown as a grid of
thumbnails (coloured SOF-20 label maps, or portraits with texture seed ``texture``) rendered
through ``camera`` at ``thumb_size`` pixels. Clicking a thumbnail selects it: ``selected`` becomes
its code (``selected_index`` its position). "resample" moves to the next seed. A new batch keeps
``selected`` (the code chosen before) and clears ``selected_index``.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

import ipywidgets as W
import numpy as np
import torch
from traitlets import Dict, Enum, Float, Int, List, TraitError, observe, validate

from ._render import Renderer, RenderJob, orbit_camera, pipeline_lock, status_html
from .portrait import PortraitControl, PortraitView

#: The component drop-down's value for "all components" (``component = None``).
_ALL = -1

__all__ = ["GeometrySampler"]

log = logging.getLogger(__name__)

_PAD = 4  # pixels between thumbnails (the selection frame is drawn there)


@dataclass(frozen=True)
class _SampleRequest:
    seed: int
    component: int | None
    temperature: float
    n: int
    mode: str
    texture: int
    thumb_size: int
    camera: tuple


@dataclass(frozen=True, eq=False)
class _Samples:
    request: _SampleRequest
    codes: torch.Tensor  # (n, D) float32
    tiles: np.ndarray  # (n, t, t, 3) uint8


class GeometrySampler(PortraitControl):
    """Sample geometry codes and select one (see the module docstring).

    Args:
        pipe: a :class:`~sofgan_lab.pipeline.SofGAN` with a geometry space.
        portrait: ``True`` (default): an own :class:`PortraitView` of the selected code; a
            ``PortraitView``: drive its ``geometry``; ``False``/``None``: no portrait.
        **traits: initial trait values.
    """

    seed = Int(0, min=0, help="Seed of the batch of codes.")
    component = Int(None, allow_none=True, min=0, help="Mixture component to draw from; None = all components.")
    temperature = Float(1.0, min=0.0, max=3.0, help="Spread around the component means (0 = the means).")
    n = Int(8, min=1, max=64, help="Number of codes (thumbnails).")
    columns = Int(4, min=1, max=16, help="Thumbnails per row.")
    thumb_size = Int(64, min=8, max=512, help="Thumbnail size in pixels (label maps are rendered at this size).")
    mode = Enum(["segmap", "portrait"], default_value="segmap",
                help="Thumbnails: coloured SOF-20 label maps, or portraits with texture seed `texture`.")
    texture = Int(0, min=0, help="Texture seed of portrait thumbnails.")
    camera = Dict(help="Orbit camera of the thumbnails {yaw, pitch, radius, fov, target, zoom}; missing keys "
                       "(all, with {}) take the pipeline's default camera.")
    codes = List(List(Float()), help="The drawn codes, n lists of latent_dim floats (after the render).")
    selected = List(Float(), help="The selected code ([] before a selection).")
    selected_index = Int(None, allow_none=True, help="Position of the selected thumbnail in the grid, or None.")

    def __init__(self, pipe: Any, *, portrait: "PortraitView | bool | None" = True, **traits: Any):
        if pipe.space is None:
            raise ValueError("pipe: GeometrySampler needs a pipeline with a geometry space (pipe.space is None)")
        self.pipe = pipe
        self._ready = False
        self._samples: _Samples | None = None
        self._grid: np.ndarray | None = None
        self._draw_lock = threading.RLock()
        super().__init__()
        for k, v in traits.items():
            if not self.has_trait(k):
                raise TypeError(f"{k}: GeometrySampler has no trait {k!r}")
            setattr(self, k, v)
        import ipycanvas

        k = pipe.space.num_components
        weights = pipe.space.weights / pipe.space.weights.sum()
        style = {"description_width": "90px"}
        # Widths that fit two rows into 440 px (the explorer's tab); the rows wrap where narrower, so
        # nothing is cut off (the drop-down, "resample", the segmap/portrait toggle).
        self._seed = W.BoundedIntText(value=self.seed, min=0, max=2**31 - 1, description="seed",
                                      style={"description_width": "36px"}, layout=W.Layout(width="130px"))
        # the drop-down's value for "all" is -1, not None: a Dropdown whose value is None shows a blank
        options = [("all", _ALL)] + [(f"{i} ({100 * weights[i]:.0f}%)", i) for i in range(k)]
        self._component = W.Dropdown(options=options,
                                     value=_ALL if self.component is None else self.component,
                                     description="component", style={"description_width": "80px"},
                                     layout=W.Layout(width="190px"))
        self._temperature = W.FloatSlider(value=self.temperature, min=0.0, max=2.0, step=0.05,
                                          description="temperature",
                                          style=style, layout=W.Layout(width="270px"))
        self._mode = W.ToggleButtons(options=["segmap", "portrait"], value=self.mode, style={"button_width": "72px"},
                                     layout=W.Layout(width="auto", flex="0 0 auto"))
        self._resample = W.Button(description="resample", icon="refresh", layout=W.Layout(width="auto"))
        for w, name in ((self._seed, "seed"), (self._temperature, "temperature"), (self._mode, "mode")):
            W.link((w, "value"), (self, name))
        W.link((self._component, "value"), (self, "component"),
               transform=(lambda v: None if v == _ALL else v, lambda c: _ALL if c is None else c))
        self._resample.on_click(lambda _: self.resample())
        self.canvas = ipycanvas.Canvas(width=1, height=1, layout=W.Layout(width="auto", height="auto"))
        self.canvas.on_mouse_down(self._on_canvas_click)
        self.status = W.HTML(status_html("sampling…"))
        row = dict(flex_flow="row wrap", align_items="center", overflow="visible")
        children: list[W.Widget] = [W.HBox([self._seed, self._component, self._resample], layout=W.Layout(**row)),
                                    W.HBox([self._temperature, self._mode], layout=W.Layout(**row)),
                                    self.canvas, self.status]
        self.portrait: PortraitView | None = None
        view, built = self._attach_portrait(pipe, portrait)
        if built:
            children.append(view)
        self.children = children
        self.add_class("sofgan-sampler")
        self._renderer = self._add_renderer(Renderer(self._render, self._deliver, self._failed,
                                                     debounce=self.debounce, name="sofgan-lab-sampler"))
        self._ready = True
        self.request()

    # ------------------------------------------------------------------ requests
    @validate("component")
    def _check_component(self, proposal: Any) -> int | None:
        c = proposal.value
        if c is not None and c >= self.pipe.space.num_components:
            raise TraitError(f"component: expected None or 0..{self.pipe.space.num_components - 1}, got {c}")
        return c

    @observe("seed", "component", "temperature", "n", "mode", "texture", "thumb_size", "camera")
    def _params_changed(self, change: Any) -> None:
        if self._ready:
            self.request()

    @observe("columns")
    def _columns_changed(self, change: Any) -> None:
        if self._ready:
            self._draw()

    def request(self) -> int:
        """Draw and render the batch of the current traits (latest wins); returns the request number."""
        cam = dict(self.camera)
        req = _SampleRequest(seed=int(self.seed), component=self.component, temperature=float(self.temperature),
                             n=int(self.n), mode=self.mode, texture=int(self.texture), thumb_size=int(self.thumb_size),
                             camera=tuple(sorted((k, tuple(v) if isinstance(v, (list, tuple)) else v)
                                                 for k, v in cam.items())))
        return self._submit(self._renderer, req, preview=False)

    def resample(self) -> None:
        """A new batch: the next seed."""
        self.seed = self.seed + 1

    # ------------------------------------------------------------------ rendering (worker thread)
    def _render(self, req: _SampleRequest, preview: bool) -> _Samples:
        from PIL import Image

        from sofgan_lab.labels import colorize

        pipe = self.pipe
        codes = pipe.space.sample(req.n, seed=req.seed, component=req.component, temperature=req.temperature)
        c = dict(req.camera)
        t = req.thumb_size
        with pipeline_lock(pipe):
            if req.mode == "segmap":
                cam = orbit_camera(pipe, c, t)
                labels = pipe.render_segmap(codes, cam).labels.cpu().numpy()
                tiles = colorize(labels, "sof20")
            else:
                cam = orbit_camera(pipe, c, min(t, pipe.image_size))
                out = pipe(geometry=codes, texture=req.texture, camera=cam)
                tiles = np.stack([np.asarray(p.image.resize((t, t), Image.BILINEAR)) if p.image.size != (t, t)
                                  else p.array for p in out])
        return _Samples(request=req, codes=codes, tiles=np.ascontiguousarray(tiles, dtype=np.uint8))

    def _deliver(self, samples: _Samples, job: RenderJob) -> None:
        old = self._samples
        self._samples = samples
        self.codes = [[float(v) for v in row] for row in samples.codes]
        same_codes = old is not None and old.codes.shape == samples.codes.shape and torch.equal(old.codes,
                                                                                               samples.codes)
        if not same_codes:  # a new batch; a new camera, mode or texture keeps the selection (and its frame)
            self.selected_index = None
        self._draw()
        self.error = ""
        self.status.value = status_html(f"{samples.request.n} codes, seed {samples.request.seed}"
                                        + ("" if samples.request.component is None else
                                           f", component {samples.request.component}")
                                        + " — click a thumbnail to select it")

    def _failed(self, exc: BaseException, job: RenderJob) -> None:
        self._show_error(exc, self.status)

    # ------------------------------------------------------------------ grid
    def _layout(self) -> tuple[int, int, int]:
        """(columns, rows, cell size) of the current grid."""
        n = 0 if self._samples is None else self._samples.tiles.shape[0]
        t = self.thumb_size if self._samples is None else self._samples.tiles.shape[1]
        cols = max(1, min(self.columns, n))
        rows = -(-n // cols) if n else 0
        return cols, rows, t + _PAD

    def grid_image(self) -> np.ndarray | None:
        """The grid as drawn on the canvas, uint8 ``(H, W, 3)`` (selection frame included)."""
        return None if self._grid is None else self._grid.copy()

    def _draw(self) -> None:
        with self._draw_lock:
            self._draw_locked()

    def _draw_locked(self) -> None:
        if self._samples is None:
            return
        tiles = self._samples.tiles
        cols, rows, cell = self._layout()
        grid = np.full((rows * cell + _PAD, cols * cell + _PAD, 3), 255, np.uint8)
        t = tiles.shape[1]
        for i, tile in enumerate(tiles):
            r, c = divmod(i, cols)
            y, x = _PAD + r * cell, _PAD + c * cell
            grid[y:y + t, x:x + t] = tile
        if self.selected_index is not None:
            r, c = divmod(self.selected_index, cols)
            y, x = _PAD + r * cell - 2, _PAD + c * cell - 2
            frame = np.array([30, 120, 255], np.uint8)
            grid[y:y + 2, x:x + t + 4] = frame
            grid[y + t + 2:y + t + 4, x:x + t + 4] = frame
            grid[y:y + t + 4, x:x + 2] = frame
            grid[y:y + t + 4, x + t + 2:x + t + 4] = frame
        self._grid = grid
        h, w = grid.shape[:2]
        with self.canvas.hold_sync():
            if (self.canvas.width, self.canvas.height) != (w, h):
                self.canvas.width, self.canvas.height = w, h
            self.canvas.put_image_data(grid, 0, 0)

    def index_at(self, x: float, y: float) -> int | None:
        """The thumbnail under canvas pixel ``(x, y)``, or ``None`` (padding, outside)."""
        if self._samples is None:
            return None
        cols, rows, cell = self._layout()
        t = self._samples.tiles.shape[1]
        cx, cy = x - _PAD, y - _PAD
        if cx < 0 or cy < 0:
            return None
        c, r = int(cx // cell), int(cy // cell)
        if c >= cols or r >= rows or cx - c * cell >= t or cy - r * cell >= t:
            return None
        i = r * cols + c
        return i if i < self._samples.tiles.shape[0] else None

    def _on_canvas_click(self, x: float, y: float) -> None:
        """The canvas' mouse-down handler: select the thumbnail under the pointer."""
        i = self.index_at(x, y)
        if i is not None:
            self.select(i)

    def select(self, index: int) -> None:
        """Select thumbnail ``index`` (0-based, row-major): ``selected`` becomes its code."""
        if self._samples is None:
            raise RuntimeError("select: no samples yet (wait() for the first batch)")
        n = self._samples.codes.shape[0]
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not 0 <= index < n:
            raise ValueError(f"index: expected an integer in 0..{n - 1}, got {index!r}")
        code = [float(v) for v in self._samples.codes[int(index)]]
        with self.hold_trait_notifications():
            self.selected_index = int(index)
            self.selected = code
        self._draw()
        if self.portrait is not None:
            self.portrait.geometry = code

    def get_selected(self) -> torch.Tensor | None:
        """The selected code as a float32 tensor ``(latent_dim,)``, or ``None``."""
        return torch.tensor(self.selected, dtype=torch.float32) if self.selected else None
