"""The shared renderer of the widgets: off the message loop, latest wins, preview then full.

Every widget that shows a result (a portrait, thumbnails, a mesh) turns its traits into an
immutable *request* on the kernel's thread and hands it to a :class:`Renderer`. The renderer

* runs the render function on its own worker thread, so the kernel keeps answering while a
  slider moves (one daemon thread per renderer, started on demand, ended after ``idle_exit``
  seconds without work or by :meth:`Renderer.close`);
* keeps only the **newest** request: a request replaced before its render started is dropped
  (counted in :attr:`RenderStats.dropped`), so 200 slider events cost a handful of renders;
* with ``preview=True`` renders the request at once in a cheap mode (``render(params, True)``)
  and again at full quality (``render(params, False)``) once no newer request has come for
  ``debounce`` seconds; with ``preview=False`` it renders at full quality directly;
* captures errors: an exception in the render function goes to ``on_error`` (the widgets show it
  as an HTML line inside themselves) and the renderer stays usable;
* lets callers (tests, benchmarks, notebooks) wait for idle without sleeping: :meth:`wait`.

The callbacks ``on_result`` / ``on_error`` run on the worker thread, before :meth:`wait` returns.
Pipelines are not guaranteed to be re-entrant, so every render of one pipeline is serialised by
:func:`pipeline_lock`.
"""
from __future__ import annotations

import html
import io
import logging
import threading
import time
import weakref
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

__all__ = ["Renderer", "RenderJob", "RenderStats", "pipeline_lock", "png_bytes", "jpeg_bytes", "decode_image",
           "error_html", "status_html", "default_geometry", "orbit_camera", "DEFAULT_DEBOUNCE"]

log = logging.getLogger(__name__)

#: Seconds without a newer request before a previewed request is rendered at full quality.
DEFAULT_DEBOUNCE = 0.15

_LOCKS: "weakref.WeakKeyDictionary[Any, threading.RLock]" = weakref.WeakKeyDictionary()
_LOCKS_GUARD = threading.Lock()


def pipeline_lock(pipe: Any) -> threading.RLock:
    """The lock that serialises renders of ``pipe`` across all widgets (one per pipeline object)."""
    with _LOCKS_GUARD:
        lock = _LOCKS.get(pipe)
        if lock is None:
            lock = _LOCKS[pipe] = threading.RLock()
        return lock


# --------------------------------------------------------------------------------------- images
def png_bytes(array: np.ndarray) -> bytes:
    """PNG bytes of a uint8 image ``(H, W, 3)`` (lossless, so tests can compare pixels exactly)."""
    from PIL import Image

    a = np.asarray(array)
    if a.dtype != np.uint8 or a.ndim != 3 or a.shape[-1] != 3:
        raise ValueError(f"array: expected uint8 (H, W, 3), got {a.dtype} {a.shape}")
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def jpeg_bytes(array: np.ndarray, quality: int = 85) -> bytes:
    """JPEG bytes of a uint8 image ``(H, W, 3)`` (lossy, ~5x smaller than PNG: for frames streamed
    while dragging; ``quality`` 1..95)."""
    from PIL import Image

    a = np.asarray(array)
    if a.dtype != np.uint8 or a.ndim != 3 or a.shape[-1] != 3:
        raise ValueError(f"array: expected uint8 (H, W, 3), got {a.dtype} {a.shape}")
    if isinstance(quality, bool) or not isinstance(quality, int) or not 1 <= quality <= 95:
        raise ValueError(f"quality: expected an integer in 1..95, got {quality!r}")
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def decode_image(data: bytes | memoryview) -> np.ndarray:
    """uint8 ``(H, W, 3)`` pixels of PNG/JPEG ``data`` (e.g. an ``ipywidgets.Image`` value)."""
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(bytes(data))).convert("RGB"))


def error_html(exc: BaseException | str) -> str:
    """One red HTML line naming the error (type and message, escaped)."""
    text = exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"
    return (f'<div class="sofgan-lab-error" style="color:#b00020;font-family:monospace;font-size:small">'
            f"&#9888; {html.escape(text)}</div>")


def status_html(text: str) -> str:
    """One grey HTML status line."""
    return f'<div class="sofgan-lab-status" style="color:#666;font-size:small">{html.escape(text)}</div>'


def default_geometry(pipe: Any) -> list[float]:
    """The geometry code the widgets start from: ``pipe.geometry_code(0)`` (seed 0 of the geometry
    space), or the SOF's first training code when the pipeline has no space."""
    if pipe.space is not None:
        return [float(v) for v in pipe.geometry_code(0)[0]]
    return [float(v) for v in pipe.sof.latents.weight[0].detach().cpu()]


def orbit_camera(pipe: Any, camera: Any, image_size: int | None = None) -> Any:
    """The :class:`~sofgan_lab.cameras.Camera` of orbit parameters ``camera`` (a dict with some of
    ``yaw, pitch, radius, fov, target, zoom``; missing keys take ``pipe.default_camera``'s) at
    ``image_size`` (default: the pipeline's). Unknown keys raise ``ValueError``."""
    keys = ("yaw", "pitch", "radius", "fov", "target", "zoom")
    c = dict(camera or {})
    unknown = sorted(set(c) - set(keys))
    if unknown:
        raise ValueError(f"camera: unknown keys {unknown}; expected some of {list(keys)}")
    p = {**pipe.default_camera, **c}
    return pipe.camera(p["yaw"], p["pitch"], p["radius"], p["fov"], image_size=image_size,
                       target=p.get("target"), zoom=p.get("zoom"))


# --------------------------------------------------------------------------------------- renderer
@dataclass(frozen=True)
class RenderJob:
    """One render to do: request number ``gen`` (1, 2, ...), its ``params``, the mode, and (for a
    full render following a preview) the ``monotonic`` time before which it must not start."""

    gen: int
    params: Any
    preview: bool
    due: float = 0.0


@dataclass
class RenderStats:
    """Counters of a :class:`Renderer` (read them after :meth:`Renderer.wait`).

    Attributes:
        submitted: requests submitted.
        rendered: render-function calls (previews and full renders).
        previews: of which in preview mode.
        dropped: jobs (previews or full renders) replaced by a newer request before they started.
        errors: render-function calls that raised.
        delivered: results handed to ``on_result``.
    """

    submitted: int = 0
    rendered: int = 0
    previews: int = 0
    dropped: int = 0
    errors: int = 0
    delivered: int = 0
    last_seconds: float = 0.0  # duration of the last render-function call


class Renderer:
    """Render the newest request on a worker thread (see the module docstring).

    Args:
        render: ``render(params, preview) -> value``; ``preview`` is ``True`` for the cheap render of
            a request that will be rendered again at full quality.
        on_result: ``on_result(value, job)`` — called on the worker thread with each result.
        on_error: ``on_error(exc, job)`` — called on the worker thread when ``render`` raises;
            default: log the error.
        debounce: seconds of quiet before the full render of a previewed request (>= 0).
        name: the thread's name (for logs).
        idle_exit: seconds without work after which the worker thread ends (a later request starts
            a new one).
    """

    def __init__(self, render: Callable[[Any, bool], Any], on_result: Callable[[Any, RenderJob], None],
                 on_error: Callable[[BaseException, RenderJob], None] | None = None, *,
                 debounce: float = DEFAULT_DEBOUNCE, name: str = "sofgan-lab-render", idle_exit: float = 10.0):
        if not callable(render) or not callable(on_result):
            raise TypeError("render, on_result: expected callables")
        self._render = render
        self._on_result = on_result
        self._on_error = on_error
        self.debounce = debounce
        self.name = name
        self.idle_exit = float(idle_exit)
        self.stats = RenderStats()
        self._cond = threading.Condition(threading.Lock())
        self._gen = 0
        self._pending: RenderJob | None = None  # to render as soon as possible
        self._final: RenderJob | None = None  # full render of a previewed request, after `due`
        self._hold_full = False               # hold_full(): full renders wait (a drag in progress)
        self._running: RenderJob | None = None
        self._thread: threading.Thread | None = None
        self._closed = False

    # ------------------------------------------------------------------ properties
    @property
    def debounce(self) -> float:
        """Seconds of quiet before the full render of a previewed request."""
        return self._debounce

    @debounce.setter
    def debounce(self, value: float) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 60:
            raise ValueError(f"debounce: expected seconds in [0, 60), got {value!r}")
        self._debounce = float(value)

    @property
    def generation(self) -> int:
        """Number of the newest request (0 before the first)."""
        return self._gen

    @property
    def idle(self) -> bool:
        """No request waiting and no render running."""
        with self._cond:
            return self._idle_locked()

    @property
    def thread_alive(self) -> bool:
        t = self._thread
        return t is not None and t.is_alive()

    def _idle_locked(self) -> bool:
        return self._pending is None and self._final is None and self._running is None

    # ------------------------------------------------------------------ requests
    def submit(self, params: Any, *, preview: bool = False) -> int:
        """Queue ``params`` (replacing any request not yet started); returns its request number.

        With ``preview`` the request is rendered at once in preview mode and again at full quality
        after ``debounce`` seconds without a newer request."""
        with self._cond:
            if self._closed:
                raise RuntimeError(f"{self.name}: the renderer is closed")
            self._gen += 1
            self.stats.submitted += 1
            for old in (self._pending, self._final):
                if old is not None:
                    self.stats.dropped += 1
            now = time.monotonic()
            if preview:
                self._pending = RenderJob(self._gen, params, True)
                self._final = RenderJob(self._gen, params, False, now + self._debounce)
            else:
                self._pending = RenderJob(self._gen, params, False)
                self._final = None
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
                self._thread.start()
            self._cond.notify_all()
            return self._gen

    def hold_full(self, hold: bool) -> None:
        """While ``hold`` is true, full renders of previewed requests wait (previews still run): a drag
        in progress wants only cheap frames. Releasing schedules the waiting full render ``debounce``
        seconds later."""
        with self._cond:
            self._hold_full = bool(hold)
            if not hold and self._final is not None:
                self._final = RenderJob(self._final.gen, self._final.params, False,
                                        max(self._final.due, time.monotonic() + self._debounce))
            self._cond.notify_all()

    def wait(self, timeout: float | None = 30.0) -> bool:
        """Block until no request is waiting and no render is running (results delivered); returns
        ``False`` when ``timeout`` seconds passed first."""
        with self._cond:
            return self._cond.wait_for(self._idle_locked, timeout)

    def close(self, timeout: float | None = 5.0) -> None:
        """Drop waiting requests, let a running render finish, end the worker thread."""
        with self._cond:
            self._closed = True
            self._pending = self._final = None
            self._cond.notify_all()
            t = self._thread
        if t is not None and t is not threading.current_thread():
            t.join(timeout)

    # ------------------------------------------------------------------ worker
    def _next_job(self) -> RenderJob | None:
        """Under the lock: wait for a job that may start now; ``None`` = end the thread."""
        idle_deadline = time.monotonic() + self.idle_exit
        while True:
            if self._closed:
                return None
            now = time.monotonic()
            if self._pending is not None:
                job, self._pending = self._pending, None
                return job
            if self._final is not None and self._hold_full:
                self._cond.wait()
                idle_deadline = time.monotonic() + self.idle_exit
                continue
            if self._final is not None:
                if self._final.due <= now:
                    job, self._final = self._final, None
                    return job
                self._cond.wait(self._final.due - now)
                idle_deadline = time.monotonic() + self.idle_exit
                continue
            if now >= idle_deadline:
                return None
            self._cond.wait(idle_deadline - now)

    def _loop(self) -> None:
        me = threading.current_thread()
        while True:
            with self._cond:
                job = self._next_job()
                if job is None:
                    if self._thread is me:
                        self._thread = None
                    self._cond.notify_all()
                    return
                self._running = job
            t0 = time.perf_counter()
            try:
                try:
                    value = self._render(job.params, job.preview)
                except Exception as exc:  # shown inside the widget; the renderer stays usable
                    with self._cond:
                        self.stats.rendered += 1
                        self.stats.previews += int(job.preview)
                        self.stats.errors += 1
                        self.stats.last_seconds = time.perf_counter() - t0
                    log.debug("%s: render of request %d failed", self.name, job.gen, exc_info=True)
                    self._deliver_error(exc, job)
                else:
                    with self._cond:
                        self.stats.rendered += 1
                        self.stats.previews += int(job.preview)
                        self.stats.last_seconds = time.perf_counter() - t0
                    try:
                        self._on_result(value, job)
                        with self._cond:
                            self.stats.delivered += 1
                    except Exception as exc:  # a failing display update is an error like any other
                        log.debug("%s: delivering request %d failed", self.name, job.gen, exc_info=True)
                        self._deliver_error(exc, job)
            finally:
                with self._cond:
                    self._running = None
                    self._cond.notify_all()

    def _deliver_error(self, exc: BaseException, job: RenderJob) -> None:
        if self._on_error is None:
            log.warning("%s: %s: %s", self.name, type(exc).__name__, exc)
            return
        try:
            self._on_error(exc, job)
        except Exception:  # never let the worker die
            log.exception("%s: the error handler failed", self.name)

    def __repr__(self) -> str:
        s = self.stats
        return (f"Renderer({self.name!r}, debounce={self._debounce}, submitted={s.submitted}, rendered={s.rendered}, "
                f"dropped={s.dropped}, errors={s.errors})")
