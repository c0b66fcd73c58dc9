"""ExportControls: *PNG*, *video* and *mesh* buttons that write what a :class:`PortraitView` shows.

The panel is a thin view over :mod:`sofgan_lab.applications.export`; it reads the portrait it is given
and writes into ``export_dir`` (default ``exports/``, relative to the kernel's working directory,
created on first use), each file under the next free name:

* *PNG*: the portrait shown, pixel for pixel, as ``portrait-001.png`` and its coloured SOF-20 label
  map as ``portrait-001_segmap.png`` (:func:`~sofgan_lab.applications.export.save_portrait`);
* *video*: a looping turntable of the current state (geometry, texture, camera pitch, radius and
  framing; the yaw swings over the trained range) as ``turntable-001.mp4`` (or ``.gif``)
  (:func:`~sofgan_lab.applications.export.turntable`);
* *mesh*: the SOF of the current geometry code (the sliders' edited code; a region-restricted edit
  is a 2D operation on label maps, so the mesh is the edited code's) with per-class colours, in the
  format of the drop-down, ``mesh-001.glb`` / ``.ply`` / ``.obj``
  (:func:`~sofgan_lab.applications.export.export_mesh`).

The PNG is written at once on the kernel's thread (it waits for a render in flight first, so the
file is the full-quality portrait). The video and the mesh take seconds, so the buttons hand them to
a renderer thread each (the kernel keeps answering; a click while one runs queues the newest only);
the methods :meth:`export_png`, :meth:`export_video` and :meth:`export_mesh` do the same work on the
caller's thread and return the written paths. The status line under the buttons links the written
files or shows the error in one line.
"""
from __future__ import annotations

import html
import logging
import os
from pathlib import Path
from typing import Any, Callable
from urllib.parse import quote

import ipywidgets as W
import torch
from traitlets import Enum, Int, List, Unicode

from sofgan_lab.applications.export import MESH_FORMATS

from ._base import Panel
from ._render import Renderer, RenderJob, pipeline_lock, status_html

__all__ = ["ExportControls", "VIDEO_FORMATS"]

log = logging.getLogger(__name__)

#: Video formats of :meth:`ExportControls.export_video` (``Frames.save`` picks the writer by suffix).
VIDEO_FORMATS = ("mp4", "gif")


def _links_html(paths: list[Path]) -> str:
    """One status line linking ``paths`` (relative to the working directory when inside it)."""
    links = []
    for p in paths:
        try:
            href = p.resolve().relative_to(Path.cwd().resolve()).as_posix()
        except ValueError:
            href = p.resolve().as_uri()
        links.append(f'<a href="{html.escape(quote(href, safe="/:"))}" target="_blank" '
                     f'title="{html.escape(str(p))}" style="text-decoration:underline">{html.escape(p.name)}</a>')
    return (f'<div class="sofgan-export-status" style="color:#444;font-size:small">wrote {", ".join(links)}'
            f"</div>")


class ExportControls(Panel):
    """The export buttons of a portrait (see the module docstring).

    Args:
        pipe: the :class:`~sofgan_lab.pipeline.SofGAN` the portrait renders with.
        portrait: the :class:`~.portrait.PortraitView` whose state is exported (linked, not owned).
        **traits: initial values of the traits below.

    Attributes:
        png_button, video_button, mesh_button: the buttons; format: the mesh format drop-down.
        status: the HTML line with links to the last written files, or the last error.
    """

    export_dir = Unicode("exports", help="Folder the buttons write into (relative to the working directory; "
                                         "created on first use).")
    mesh_format = Enum(MESH_FORMATS, default_value="glb", help="Format of the mesh button: 'ply', 'obj' or 'glb'.")
    mesh_resolution = Int(128, min=8, max=512, help="Marching-cubes grid (nodes per axis) of mesh exports.")
    video_frames = Int(48, min=2, max=1000, help="Frames of a turntable video.")
    video_format = Enum(VIDEO_FORMATS, default_value="mp4", help="Format of the video button: 'mp4' or 'gif'.")
    written = List(Unicode(), help="Paths of the files the last export wrote (read only).")

    def __init__(self, pipe: Any, portrait: Any, **traits: Any):
        from .portrait import PortraitView

        if not isinstance(portrait, PortraitView):
            raise TypeError(f"portrait: expected a PortraitView, got {type(portrait).__name__}")
        self.pipe = pipe
        super().__init__()
        self.portrait = portrait
        self._add_linked(portrait)
        for k, v in traits.items():
            if not self.has_trait(k):
                raise TypeError(f"{k}: ExportControls has no trait {k!r}")
            setattr(self, k, v)

        def button(description: str, tooltip: str, width: str = "72px") -> W.Button:
            return W.Button(description=description, tooltip=tooltip, icon="download", layout=W.Layout(width=width))

        self.png_button = button("PNG", "write the portrait shown and its segmap as PNGs")
        self.video_button = button("video", "write a turntable video of the current state", "80px")
        self.mesh_button = button("mesh", "write the SOF of the current geometry as a coloured mesh", "80px")
        self.format = W.Dropdown(options=list(MESH_FORMATS), value=self.mesh_format, tooltip="mesh format",
                                 layout=W.Layout(width="72px"))
        W.link((self, "mesh_format"), (self.format, "value"))
        self.status = W.HTML("")
        for w, cls in ((self.png_button, "png"), (self.video_button, "video"), (self.mesh_button, "mesh"),
                       (self.format, "format")):
            w.add_class(f"sofgan-export-{cls}")
        self.png_button.on_click(lambda _: self._ui(self.export_png))
        self.video_button.on_click(lambda _: self._start(self._video_renderer, "video", self.video_frames))
        self.mesh_button.on_click(lambda _: self._start(self._mesh_renderer, "mesh", self.mesh_format))
        self._video_renderer = self._add_renderer(Renderer(self._render_video, self._done, self._failed,
                                                           debounce=self.debounce, name="sofgan-lab-export-video"))
        self._mesh_renderer = self._add_renderer(Renderer(self._render_mesh, self._done, self._failed,
                                                          debounce=self.debounce, name="sofgan-lab-export-mesh"))
        self.children = [W.HBox([W.HTML('<span style="font-size:small;color:#444">export</span>'),
                                 self.png_button, self.video_button, self.mesh_button, self.format],
                                layout=W.Layout(flex_flow="row wrap", align_items="center")),
                         self.status]
        self.add_class("sofgan-export")

    # ------------------------------------------------------------------ file names
    def _folder(self) -> Path:
        d = Path(os.path.expanduser(self.export_dir or "."))
        if d.exists() and not d.is_dir():
            raise ValueError(f"export_dir: {str(d)!r} exists and is not a folder")
        return d

    def next_path(self, prefix: str, suffix: str) -> Path:
        """The first free ``export_dir/<prefix>-NNN<suffix>`` (for a PNG, its ``_segmap.png`` partner is
        free too)."""
        from sofgan_lab.pipeline import segmap_path

        d = self._folder()
        i = 1
        while True:
            p = d / f"{prefix}-{i:03d}{suffix}"
            if not p.exists() and not (suffix == ".png" and segmap_path(p).exists()):
                return p
            i += 1

    # ------------------------------------------------------------------ exports (caller's thread)
    def export_png(self, path: str | os.PathLike | None = None, *, timeout: float = 60.0) -> list[Path]:
        """Write the portrait shown (waiting up to ``timeout`` seconds for a render in flight) as ``path``
        (default: the next ``export_dir/portrait-NNN.png``) and its coloured label map beside it
        (``<stem>_segmap.png``). Returns both paths."""
        from sofgan_lab.applications.export import save_portrait

        if not self.portrait.wait(timeout):
            raise ValueError(f"portrait: still rendering after {timeout:g} s; try again when it is shown")
        result = self.portrait.result
        if result is None:
            raise ValueError("portrait: nothing is shown yet")
        if result.preview:
            raise ValueError("portrait: only a preview is shown; try again when the full render is shown")
        target = self.next_path("portrait", ".png") if path is None else path
        out = save_portrait(result.portrait, target, segmap=result.segmap)
        self._report(out)
        return out

    def _state(self) -> Any:
        req = self.portrait.state()
        if req.segmap is not None:
            raise ValueError("portrait: it textures a given label map, which has no geometry to turn or mesh")
        return req

    def _video(self, req: Any, path: Any, frames: int | None, fmt: str) -> Path:
        from sofgan_lab.applications.export import turntable

        frames = self.video_frames if frames is None else frames
        kwargs = req.pipeline_kwargs()
        with pipeline_lock(self.pipe), torch.no_grad():
            video = turntable(self.pipe, torch.tensor(req.geometry, dtype=torch.float32), kwargs["texture"],
                              camera=req.camera, frames=frames, region_mix=kwargs["region_mix"],
                              truncation=kwargs["truncation"],
                              base=None if req.base is None else torch.tensor(req.base, dtype=torch.float32),
                              regions=list(req.regions))
        target = self.next_path("turntable", f".{fmt}") if path is None else path
        return video.save(target)

    def export_video(self, path: str | os.PathLike | None = None, *, frames: int | None = None) -> Path:
        """Render a turntable video of the current state (``frames``, default :attr:`video_frames`) and
        write it to ``path`` (``.mp4`` or ``.gif``; default: the next
        ``export_dir/turntable-NNN.<video_format>``). Returns the path."""
        out = self._video(self._state(), path, frames, self.video_format)
        self._report([out])
        return out

    def _mesh(self, req: Any, path: Any, fmt: str | None, resolution: int) -> Path:
        from sofgan_lab.applications.export import export_mesh

        if path is None:
            fmt = fmt or self.mesh_format
            path = self.next_path("mesh", f".{fmt.lower().lstrip('.')}")
        with pipeline_lock(self.pipe), torch.no_grad():
            return export_mesh(self.pipe, torch.tensor(req.geometry, dtype=torch.float32), path,
                               resolution=resolution, format=fmt)

    def export_mesh(self, path: str | os.PathLike | None = None, *, format: str | None = None,
                    resolution: int | None = None) -> Path:
        """Write the SOF of the current geometry code as a coloured mesh to ``path`` (default: the next
        ``export_dir/mesh-NNN.<format>``); ``format`` ``"ply"``, ``"obj"``, ``"glb"`` or ``None`` (the
        suffix of ``path``, else :attr:`mesh_format`); ``resolution`` default :attr:`mesh_resolution`.
        Returns the path."""
        out = self._mesh(self._state(), path, format, self.mesh_resolution if resolution is None else resolution)
        self._report([out])
        return out

    # ------------------------------------------------------------------ buttons (renderer threads)
    def _start(self, renderer: Renderer, kind: str, option: Any) -> int:
        """Snapshot the state and hand the export to its renderer (what the video and mesh buttons do)."""
        try:
            req = self._state()
        except ValueError as exc:
            self._show_error(exc, self.status)
            return 0
        what = f"a {option}-frame video" if kind == "video" else f"a {option} mesh"
        self.status.value = status_html(f"writing {what}…")
        params = (req, self.video_format) if kind == "video" else (req, option, int(self.mesh_resolution))
        return self._submit(renderer, params)

    def _render_video(self, params: tuple, preview: bool) -> list[Path]:
        req, fmt = params
        return [self._video(req, None, None, fmt)]

    def _render_mesh(self, params: tuple, preview: bool) -> list[Path]:
        req, fmt, resolution = params
        return [self._mesh(req, None, fmt, resolution)]

    def _done(self, paths: list[Path], job: RenderJob) -> None:
        self._report(paths)

    def _failed(self, exc: BaseException, job: RenderJob) -> None:
        self._show_error(exc, self.status)

    def _ui(self, action: Callable, *args: Any) -> None:
        """Run a button's action; an error is shown in the status line, not raised."""
        try:
            action(*args)
        except (ValueError, TypeError, OSError) as exc:
            self._show_error(exc, self.status)

    def _report(self, paths: list[Path]) -> None:
        self.written = [str(p) for p in paths]
        self.error = ""
        self.status.value = _links_html(list(paths))
