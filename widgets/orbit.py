"""OrbitSurface: the portrait's square as a drag surface that streams frames (an anywidget).

Drag on the portrait to orbit the camera, as in the desktop GAN visualizers. The front end (a small
ES module, below) shows each frame it is sent and reports the pointer's motion; Python turns the
motion into yaw and pitch (:attr:`OrbitSurface.degrees_per_pixel`; a handler decides what to do
with it, e.g. :meth:`~sofgan_lab.widgets.CameraControl.orbit_by`, which keeps the camera inside the
trained poses unless the user freed it).

Streaming that keeps up on a slow kernel:

* frames travel as binary buffers (the ``frame`` bytes trait; no base64): JPEG previews while the
  pointer is down, the lossless PNG once the full-quality render follows the release;
* at most :attr:`max_in_flight` (2) preview frames are on their way at once: the front end
  acknowledges each frame when it has decoded and shown it, and a newer preview waits (replacing
  any older waiting one) until an acknowledgement frees a slot; full-quality frames are never held;
* drag messages go out as the pointer moves (at most one per animation frame), without waiting for
  the frames: the kernel renders only the newest pose, so a move waits for the render in progress
  and then its own, not for a round trip per message. At most four messages are unanswered (no frame
  shows them yet and the kernel has not said they change nothing, :meth:`OrbitSurface.still`) unless
  400 ms pass, so a busy kernel never builds a queue of them;
* each drag message carries a sequence number and each frame the number of the newest drag it
  shows (``frame_seq``), so the front end measures, for every message, the latency from its
  oldest pointer move to the first pixels that show it. It keeps those latencies (the
  ``.sofgan-orbit`` element's ``sofganOrbit.latencies``, for benchmarks and tests) and shows a
  frames-per-second readout in the corner while dragging.
"""
from __future__ import annotations

import logging
import threading
from typing import Any, Callable

import anywidget
from traitlets import Bool, Bytes, Float, Int, Unicode

__all__ = ["OrbitSurface"]

log = logging.getLogger(__name__)

_ESM = r"""
function render({ model, el }) {
  // Our own box inside `el` (whose display the host decides), sized and styled inline.
  const box = document.createElement("div");
  box.className = "sofgan-orbit";
  Object.assign(box.style, { position: "relative", flex: "0 0 auto", cursor: "grab", touchAction: "none",
                             userSelect: "none", overflow: "hidden" });
  const img = document.createElement("img");
  img.className = "sofgan-portrait-image sofgan-orbit-image";
  img.draggable = false;
  img.alt = "portrait (drag to orbit)";
  Object.assign(img.style, { width: "100%", height: "100%", objectFit: "contain", pointerEvents: "none",
                             display: "block" });
  const fps = document.createElement("div");
  fps.className = "sofgan-orbit-fps";
  Object.assign(fps.style, { position: "absolute", top: "4px", right: "6px", display: "none", padding: "1px 5px",
                             borderRadius: "3px", background: "rgba(0, 0, 0, 0.6)", color: "#fff",
                             font: "11px monospace" });
  box.append(img, fps);
  el.append(box);
  const state = { latencies: [], frames: 0, dragFrames: 0, drags: 0, dragging: false, fps: 0 };
  box.sofganOrbit = state;
  const size = () => { const s = model.get("size") + "px";
                       Object.assign(box.style, { width: s, height: s, minWidth: s, minHeight: s }); };
  size();
  model.on("change:size", size);
  let url = null, seq = 0, last = null, dx = 0, dy = 0, raf = 0, pointer = null;
  let movedAt = 0, lastSent = 0;
  const sent = new Map();   // drag message number -> time of the oldest pointer move it carries
  // A frame showing drag message `upTo` answers it and every older one: each one's latency (from its
  // oldest move to these pixels) is kept.
  function answer(upTo, now) {
    for (const k of Array.from(sent.keys())) {
      if (k > upTo) continue;
      state.latencies.push(now - sent.get(k));
      sent.delete(k);
    }
  }
  const shownAt = [];
  function show() {
    const buf = model.get("frame");
    const id = model.get("frame_id");
    if (!buf || !buf.byteLength) return;
    const type = model.get("frame_format") === "jpeg" ? "image/jpeg" : "image/png";
    const next = URL.createObjectURL(new Blob([buf], { type }));
    const fseq = model.get("frame_seq");
    const done = () => {
      if (url && url !== next) URL.revokeObjectURL(url);
      url = next;
      const now = performance.now();
      state.frames += 1;
      answer(fseq, now);
      if (state.dragging && (dx || dy) && !raf) flush(false);
      if (state.dragging) {
        state.dragFrames += 1;
        shownAt.push(now);
        while (shownAt.length && now - shownAt[0] > 1000) shownAt.shift();
        state.fps = shownAt.length;
        fps.textContent = `${shownAt.length} fps`;
      }
      model.send({ kind: "shown", id });
    };
    img.onload = done;
    img.onerror = done;
    img.src = next;
  }
  model.on("change:frame_id", show);
  // the kernel's word that a drag message changed nothing (no frame will show it)
  model.on("msg:custom", (msg) => { if (msg && msg.kind === "still") sent.delete(msg.seq); });
  show();
  // The motion goes out at most once per animation frame, without waiting for frames: the kernel
  // renders only the newest pose (older ones are dropped), so a move waits for the render in
  // progress and its own, not for a round trip per message. At most MAX_UNANSWERED messages are
  // unanswered (no frame shows them and the kernel has not said they change nothing) unless
  // WAIT_MS pass, so a busy kernel never builds a queue of messages.
  const MAX_UNANSWERED = 4, WAIT_MS = 400;
  function flush(force) {
    raf = 0;
    if (!dx && !dy) return;
    const now = performance.now();
    if (!force && sent.size >= MAX_UNANSWERED && now - lastSent < WAIT_MS) {
      raf = requestAnimationFrame(() => flush(false));
      return;
    }
    seq += 1;
    state.drags += 1;
    sent.set(seq, movedAt || now);
    model.send({ kind: "drag", dx, dy, seq });
    dx = 0; dy = 0; movedAt = 0; lastSent = now;
  }
  box.addEventListener("pointerdown", (e) => {
    if (!model.get("enabled") || e.button !== 0) return;
    pointer = e.pointerId;
    box.setPointerCapture(pointer);
    last = [e.clientX, e.clientY];
    state.dragging = true;
    shownAt.length = 0;
    fps.textContent = "";
    fps.style.display = "block";
    box.classList.add("sofgan-orbit-dragging");
    box.style.cursor = "grabbing";
    model.send({ kind: "start" });
    e.preventDefault();
  });
  box.addEventListener("pointermove", (e) => {
    if (!state.dragging || e.pointerId !== pointer) return;
    if (!dx && !dy) movedAt = performance.now();
    dx += e.clientX - last[0];
    dy += e.clientY - last[1];
    last = [e.clientX, e.clientY];
    if (!raf) raf = requestAnimationFrame(() => flush(false));
  });
  const end = (e) => {
    if (!state.dragging || e.pointerId !== pointer) return;
    if (raf) { cancelAnimationFrame(raf); raf = 0; }
    flush(true);
    state.dragging = false;
    box.classList.remove("sofgan-orbit-dragging");
    box.style.cursor = "grab";
    model.send({ kind: "end", seq });
    setTimeout(() => { if (!state.dragging) fps.style.display = "none"; }, 1500);
  };
  box.addEventListener("pointerup", end);
  box.addEventListener("pointercancel", end);
  return () => { if (url) URL.revokeObjectURL(url); };
}
export default { render };
"""

_CSS = ""  # every style is set inline by the module (the host decides the display of `el`)


class OrbitSurface(anywidget.AnyWidget):
    """A square that shows streamed frames and reports drags (see the module docstring).

    Args:
        size: CSS pixels of the square's side.
        on_drag: ``callback(d_yaw, d_pitch, seq)`` in degrees for each drag message (dragging right
            turns the camera toward +yaw; dragging up raises it), ``seq`` the message's number.
        on_start: ``callback()`` when the pointer goes down.
        on_release: ``callback(seq)`` when the pointer is released.
        **traits: initial trait values.
    """

    _esm = _ESM
    _css = _CSS

    frame = Bytes(b"", help="The image shown (JPEG or PNG bytes), sent as a binary buffer.").tag(sync=True)
    frame_format = Unicode("png", help="'jpeg' or 'png': the encoding of frame.").tag(sync=True)
    frame_id = Int(0, help="Number of the frame shown (increases with each frame).").tag(sync=True)
    frame_seq = Int(0, help="The newest drag message the frame shows (0: none).").tag(sync=True)
    size = Int(256, min=16, max=2048, help="CSS pixels of the square's side.").tag(sync=True)
    enabled = Bool(True, help="Whether dragging orbits.").tag(sync=True)
    degrees_per_pixel = Float(0.3, min=0.01, max=10.0, help="Degrees of yaw or pitch per CSS pixel dragged.")
    max_in_flight = Int(2, min=1, max=16, help="Preview frames sent and not yet shown, at most.")
    dragging = Bool(False, help="Whether the pointer is down (set from the front end).")
    acknowledged = Int(0, help="The newest frame the front end reports shown.")
    held = Int(0, help="Preview frames that waited for a free slot (replaced ones included).")

    def __init__(self, *, size: int = 256, on_drag: Callable[[float, float, int], Any] | None = None,
                 on_release: Callable[[int], Any] | None = None, on_start: Callable[[], Any] | None = None,
                 **traits: Any):
        super().__init__(size=size, **traits)
        self._lock = threading.Lock()
        self._pending: tuple[bytes, str, int] | None = None
        self._on_drag = on_drag
        self._on_release = on_release
        self._on_start = on_start
        self.on_msg(self._on_message)

    # ------------------------------------------------------------------ frames (any thread)
    @property
    def in_flight(self) -> int:
        """Frames sent that the front end has not reported shown."""
        return max(0, self.frame_id - self.acknowledged)

    def show(self, data: bytes, fmt: str = "png", *, seq: int = 0, preview: bool = False) -> bool:
        """Send a frame (``fmt`` "jpeg" or "png"). A ``preview`` frame waits while ``max_in_flight``
        frames are on their way (the newest waiting one wins); others go at once. Returns whether it
        was sent now."""
        if fmt not in ("jpeg", "png"):
            raise ValueError(f"fmt: expected 'jpeg' or 'png', got {fmt!r}")
        with self._lock:
            if preview and self.in_flight >= self.max_in_flight:
                self._pending = (bytes(data), fmt, int(seq))
                self.held += 1
                return False
            self._pending = None
            self._put_frame(bytes(data), fmt, int(seq))
            return True

    def _put_frame(self, data: bytes, fmt: str, seq: int) -> None:
        with self.hold_sync():
            self.frame = data
            self.frame_format = fmt
            self.frame_seq = seq
            self.frame_id = self.frame_id + 1

    def still(self, seq: int) -> None:
        """Tell the front end that drag message ``seq`` changes nothing (e.g. a pose clamped at the
        edge of the range): no frame will answer it."""
        self.send({"kind": "still", "seq": int(seq)})

    # ------------------------------------------------------------------ messages (kernel thread)
    def _on_message(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if not isinstance(content, dict):
            return
        kind = content.get("kind")
        try:
            if kind == "shown":
                with self._lock:
                    self.acknowledged = max(self.acknowledged, int(content.get("id", 0)))
                    pending, self._pending = self._pending, None
                    if pending is not None:
                        self._put_frame(*pending)
            elif kind == "start":
                self.dragging = True
                if self._on_start is not None:
                    self._on_start()
            elif kind == "drag":
                k = float(self.degrees_per_pixel)
                d_yaw, d_pitch = float(content.get("dx", 0.0)) * k, -float(content.get("dy", 0.0)) * k
                if self._on_drag is not None:
                    self._on_drag(d_yaw, d_pitch, int(content.get("seq", 0)))
            elif kind == "end":
                self.dragging = False
                if self._on_release is not None:
                    self._on_release(int(content.get("seq", 0)))
        except Exception:  # a front-end message must never kill the comm
            log.exception("orbit surface: message %r failed", content)
