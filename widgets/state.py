"""The explorer's state as data: a JSON document, its check, a history with undo/redo, bookmarks.

An :class:`~.explorer.Explorer` state is a plain JSON-serialisable dict (``STATE_VERSION`` 1)::

    {"version": 1,
     "geometry": {"base": [latent_dim floats], "amounts": {direction: standard deviations, non-zero only},
                  "restrict": false, "regions": ["face"], "label": "sample 3 · seed 0"},
     "camera":   {"yaw": 0.0, "pitch": 0.0, "radius": 4.5, "fov": null, "target": [x, y, z], "zoom": 1.0,
                  "free_camera": false},
     "texture":  {"style_a": 0, "style_b": 1, "mix": {style group: p in [0, 1]}, "truncation": 0.7},
     "sampler":  {"seed": 0, "component": null, "temperature": 1.0}}

It holds exactly what the controls hold (the sliders' base code and edits, the camera's orbit
parameters, the mixer's seeds, weights and ψ, the sampler's batch), so the portrait it gives is a
function of it: the same state, the same pixels. ``geometry.label`` names where the base code came
from (shown in the readout; it does not change the pixels). A state being loaded may leave out
sections or keys (they keep their current values); every value present is checked, and a bad one
raises a one-line ``ValueError`` naming it (``state['camera']['yaw']: expected a number, got 'x'``)
before anything changes.

:class:`StateHistory` is the undo/redo stack (pure Python); :class:`StateControls` is the small
panel of buttons around it (*copy state* into a text area, *load state* from it, *bookmark* into a
drop-down, *undo*, *redo*). Neither knows the explorer: they read and apply states through the two
callables they are given.
"""
from __future__ import annotations

import copy
import hashlib
import html
import json
import logging
import math
import time
from contextlib import contextmanager
from typing import Any, Callable, Mapping

import ipywidgets as W
from traitlets import Bool, Float

from ._base import Panel
from ._render import status_html

__all__ = ["STATE_VERSION", "StateHistory", "StateControls", "explorer_state", "check_state", "apply_state",
           "state_summary", "readout_html", "code_label"]

log = logging.getLogger(__name__)

#: Version of the state document (``state["version"]``).
STATE_VERSION = 1

_SECTIONS = {
    "geometry": ("base", "amounts", "restrict", "regions", "label"),
    "camera": ("yaw", "pitch", "radius", "fov", "target", "zoom", "free_camera"),
    "texture": ("style_a", "style_b", "mix", "truncation"),
    "sampler": ("seed", "component", "temperature"),
}
_CAMERA_KEYS = ("yaw", "pitch", "radius", "fov", "target", "zoom")
_MAX_SEED = 2**31 - 1
_POSE_TOLERANCE = 1e-6  # degrees: rounding noise at an end of the trained range is inside
_NO_BOOKMARK_LABEL = "bookmarks…"  # the drop-down's placeholder (value "")


# --------------------------------------------------------------------------------------- checks
def _where(path: tuple) -> str:
    return "state" + "".join(f"[{k!r}]" for k in path)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _number(value: Any, path: tuple, lo: float | None = None, hi: float | None = None, *,
            integer: bool = False) -> float | int:
    kind = "an integer" if integer else "a number"
    ok = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok:
        raise ValueError(f"{_where(path)}: expected {kind}, got {_short(value)}")
    if not math.isfinite(value):
        raise ValueError(f"{_where(path)}: expected a finite number, got {_short(value)}")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ValueError(f"{_where(path)}: expected {kind} in [{lo}, {hi}], got {_short(value)}")
    return int(value) if integer else float(value)


def _bool(value: Any, path: tuple) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{_where(path)}: expected true or false, got {_short(value)}")
    return value


def _mapping(value: Any, path: tuple, known: tuple | list | None = None, what: str = "keys") -> Mapping:
    if not isinstance(value, Mapping):
        raise ValueError(f"{_where(path)}: expected a dict, got {type(value).__name__}")
    if known is not None:
        unknown = sorted(str(k) for k in value if k not in known)
        if unknown:
            raise ValueError(f"{_where(path)}: unknown {what} {unknown}; expected some of {list(known)}")
    return value


def _sequence(value: Any, path: tuple) -> list:
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        raise ValueError(f"{_where(path)}: expected a list, got {type(value).__name__}")
    return list(value)


def code_label(code: Any) -> str:
    """A short name of a geometry code that tells codes apart: ``"code 1a2b3c4d"`` (a digest of the
    floats' JSON text)."""
    digest = hashlib.sha1(json.dumps([float(v) for v in code]).encode()).hexdigest()[:8]
    return f"code {digest}"


# --------------------------------------------------------------------------------------- explorer ⇄ state
def explorer_state(explorer: Any) -> dict:
    """The state of ``explorer`` (an :class:`~.explorer.Explorer`) as a JSON-serialisable dict (see the
    module docstring); read from its controls' traits."""
    sl, cam, mx, sam = explorer.sliders, explorer.camera, explorer.mixer, explorer.sampler
    c = cam.camera
    return {
        "version": STATE_VERSION,
        "geometry": {"base": [float(v) for v in sl.base],
                     "amounts": {d: float(a) for d, a in sl.amounts.items() if a != 0.0},
                     "restrict": bool(sl.restrict), "regions": [str(r) for r in sl.regions],
                     "label": explorer.geometry_label},
        "camera": {"yaw": float(c["yaw"]), "pitch": float(c["pitch"]), "radius": float(c["radius"]),
                   "fov": None if c["fov"] is None else float(c["fov"]),
                   "target": [float(v) for v in c["target"]], "zoom": float(c["zoom"]),
                   "free_camera": bool(cam.free_camera)},
        "texture": {"style_a": int(mx.style_a), "style_b": int(mx.style_b),
                    "mix": {g: float(p) for g, p in mx.mix.items()}, "truncation": float(mx.truncation)},
        "sampler": {"seed": int(sam.seed), "component": None if sam.component is None else int(sam.component),
                    "temperature": float(sam.temperature)},
    }


def check_state(explorer: Any, state: Any) -> dict:
    """``state`` checked against ``explorer`` and completed from its current state: a full state.

    Raises ``ValueError`` naming the first bad key (``state['texture']['mix']['hair']: expected a
    number in [0.0, 1.0], got 2``); nothing is changed."""
    if not isinstance(state, Mapping):
        raise ValueError(f"state: expected a dict (an Explorer.state), got {type(state).__name__}")
    _mapping(state, (), ("version", *_SECTIONS))
    if "version" not in state:
        raise ValueError(f"state['version']: missing; expected {STATE_VERSION}")
    v = state["version"]
    if isinstance(v, bool) or v != STATE_VERSION:
        raise ValueError(f"state['version']: expected {STATE_VERSION}, got {_short(v)}")
    out = explorer_state(explorer)
    sections = {name: _mapping(state.get(name, {}), (name,), keys) for name, keys in _SECTIONS.items()}
    _check_geometry(explorer, sections["geometry"], out["geometry"])
    _check_camera(explorer, sections["camera"], out["camera"])
    _check_texture(explorer, sections["texture"], out["texture"])
    _check_sampler(explorer, sections["sampler"], out["sampler"])
    return out


def _check_geometry(explorer: Any, g: Mapping, og: dict) -> None:
    """``state['geometry']`` (``g``) checked into the explorer's geometry state ``og`` (in place)."""
    from sofgan_lab.geometry.space import REGIONS

    if "base" in g:
        base = _sequence(g["base"], ("geometry", "base"))
        dim = len(explorer.sliders.base)
        if len(base) != dim:
            raise ValueError(f"state['geometry']['base']: expected {dim} numbers, got {len(base)}")
        og["base"] = [_number(x, ("geometry", "base", i)) for i, x in enumerate(base)]
        og["label"] = code_label(og["base"])  # a new code: its own name unless one is given
    if "amounts" in g:
        directions = list(explorer.sliders.directions)
        amounts = _mapping(g["amounts"], ("geometry", "amounts"), directions, "directions")
        checked = {d: _number(amounts[d], ("geometry", "amounts", d)) for d in directions if d in amounts}
        og["amounts"] = {d: a for d, a in checked.items() if a != 0.0}
    if "restrict" in g:
        og["restrict"] = _bool(g["restrict"], ("geometry", "restrict"))
    if "regions" in g:
        regions = _sequence(g["regions"], ("geometry", "regions"))
        bad = [r for r in regions if not isinstance(r, str) or r not in REGIONS]
        if bad:
            raise ValueError(f"state['geometry']['regions']: unknown regions {bad}; expected some of {sorted(REGIONS)}")
        og["regions"] = [str(r) for r in regions]
    if "label" in g:
        if not isinstance(g["label"], str):
            raise ValueError(f"state['geometry']['label']: expected a string, got {_short(g['label'])}")
        og["label"] = g["label"]


def _check_camera(explorer: Any, c: Mapping, oc: dict) -> None:
    """``state['camera']`` (``c``) checked into the explorer's camera state ``oc`` (in place); a
    confined camera's pose must lie in the trained poses."""
    traits = explorer.camera.traits()
    if "free_camera" in c:
        oc["free_camera"] = _bool(c["free_camera"], ("camera", "free_camera"))
    for k in ("yaw", "pitch", "radius"):
        if k in c:
            oc[k] = _number(c[k], ("camera", k), traits[k].min, traits[k].max)
    if "fov" in c:
        oc["fov"] = None if c["fov"] is None else _number(c["fov"], ("camera", "fov"), traits["fov"].min,
                                                          traits["fov"].max)
    if "zoom" in c:
        oc["zoom"] = _number(c["zoom"], ("camera", "zoom"))
        if oc["zoom"] <= 0:
            raise ValueError(f"state['camera']['zoom']: expected a number > 0, got {_short(c['zoom'])}")
    if "target" in c:
        target = _sequence(c["target"], ("camera", "target"))
        if len(target) != 3:
            raise ValueError(f"state['camera']['target']: expected 3 numbers (x, y, z), got {len(target)}")
        oc["target"] = [_number(x, ("camera", "target", i)) for i, x in enumerate(target)]
    if not oc["free_camera"]:  # a confined camera would clamp the pose: say so instead
        for k in ("yaw", "pitch"):
            lo, hi = explorer.pipe.pose_range[k]
            if not lo - _POSE_TOLERANCE <= oc[k] <= hi + _POSE_TOLERANCE:
                raise ValueError(f"state['camera']['{k}']: {oc[k]} is outside the trained poses [{lo}, {hi}]; "
                                 "set state['camera']['free_camera'] to true to leave them")


def _check_texture(explorer: Any, t: Mapping, ot: dict) -> None:
    """``state['texture']`` (``t``) checked into the explorer's texture state ``ot`` (in place)."""
    for k in ("style_a", "style_b"):
        if k in t:
            ot[k] = _number(t[k], ("texture", k), 0, _MAX_SEED, integer=True)
    if "mix" in t:
        groups = list(explorer.mixer.mix)
        mix = _mapping(t["mix"], ("texture", "mix"), groups, "style groups")
        ot["mix"] = {gr: _number(mix[gr], ("texture", "mix", gr), 0.0, 1.0) if gr in mix else 0.0 for gr in groups}
    if "truncation" in t:
        ot["truncation"] = _number(t["truncation"], ("texture", "truncation"), 0.0, 1.0)


def _check_sampler(explorer: Any, s: Mapping, os_: dict) -> None:
    """``state['sampler']`` (``s``) checked into the explorer's sampler state ``os_`` (in place)."""
    if "seed" in s:
        os_["seed"] = _number(s["seed"], ("sampler", "seed"), 0, _MAX_SEED, integer=True)
    if "component" in s:
        k = explorer.pipe.space.num_components
        os_["component"] = None if s["component"] is None else _number(s["component"], ("sampler", "component"),
                                                                        0, k - 1, integer=True)
    if "temperature" in s:
        tt = explorer.sampler.traits()["temperature"]
        os_["temperature"] = _number(s["temperature"], ("sampler", "temperature"), tt.min, tt.max)


def apply_state(explorer: Any, state: dict) -> None:
    """Write a full, checked state (:func:`check_state`) into ``explorer``'s controls (their traits;
    each change reaches the portrait through the explorer's links)."""
    sam, s = explorer.sampler, state["sampler"]
    with sam.hold_trait_notifications():
        sam.seed, sam.component, sam.temperature = s["seed"], s["component"], s["temperature"]
    sl, g = explorer.sliders, state["geometry"]
    explorer._name_geometry(g["base"], g["label"])
    with sl.hold_trait_notifications():
        sl.base = list(g["base"])
        sl.amounts = {d: float(g["amounts"].get(d, 0.0)) for d in sl.directions}
        sl.restrict = g["restrict"]
        sl.regions = list(g["regions"])
    cam, c = explorer.camera, state["camera"]
    cam.free_camera = c["free_camera"]  # first: a free pose must not be clamped
    cam.camera = {k: (list(c[k]) if k == "target" else c[k]) for k in _CAMERA_KEYS}
    mx, t = explorer.mixer, state["texture"]
    with mx.hold_trait_notifications():
        mx.style_a, mx.style_b = t["style_a"], t["style_b"]
        mx.mix = dict(t["mix"])
        mx.truncation = t["truncation"]


def state_summary(state: Mapping) -> str:
    """One line naming a state: ``sample 3 · seed 0, pc2 -1.0 | yaw 15.0° pitch 0.0° | style A 0 + B 1
    (hair 1.00) | ψ 0.70``."""
    g, c, t = state["geometry"], state["camera"], state["texture"]
    edits = ", ".join(f"{d} {a:+.1f}" for d, a in g["amounts"].items())
    geo = g.get("label") or code_label(g["base"])
    geo += f", {edits}" if edits else ""
    if g.get("restrict") and edits:
        geo += f" (in {'/'.join(g['regions'])})"
    cam = f"yaw {c['yaw']:.1f}° pitch {c['pitch']:.1f}°"
    if c.get("fov") is not None:
        cam += f" fov {c['fov']:.0f}°"
    mixed = [f"{grp} {p:.2f}" for grp, p in t["mix"].items() if p > 0]
    tex = f"style A {t['style_a']}" + (f" + B {t['style_b']} ({', '.join(mixed)})" if mixed else "")
    return f"{geo} | {cam} | {tex} | ψ {t['truncation']:.2f}"


# --------------------------------------------------------------------------------------- history
class StateHistory:
    """An undo/redo stack of states (dicts, stored as copies).

    :meth:`record` pushes a state unless it equals the current one; a push after an :meth:`undo`
    drops the states that could have been redone. Changes of one ``group`` (e.g. one slider being
    dragged) less than ``settle`` seconds apart are one step: the newer state replaces the top (and a
    step that returns to the state before it disappears). At most ``limit`` states are kept (the
    oldest go first)."""

    def __init__(self, limit: int = 100):
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 2:
            raise ValueError(f"limit: expected an integer >= 2, got {limit!r}")
        self.limit = limit
        self._states: list[dict] = []
        self._pos = -1
        self._group: str | None = None  # group and time of the last record (None: the next one is a new step)
        self._time = -math.inf

    def reset(self, state: Mapping) -> None:
        """Forget everything; ``state`` is the only (current) entry."""
        self._states, self._pos = [copy.deepcopy(dict(state))], 0
        self.barrier()

    def barrier(self) -> None:
        """The next record starts a new step (called after undo, redo and loads)."""
        self._group, self._time = None, -math.inf

    @property
    def current(self) -> dict | None:
        return copy.deepcopy(self._states[self._pos]) if self._states else None

    @property
    def states(self) -> tuple[dict, ...]:
        """Copies of every kept state, oldest first (``index`` is the current one's position)."""
        return tuple(copy.deepcopy(s) for s in self._states)

    @property
    def index(self) -> int:
        return self._pos

    def __len__(self) -> int:
        return len(self._states)

    @property
    def can_undo(self) -> bool:
        return self._pos > 0

    @property
    def can_redo(self) -> bool:
        return 0 <= self._pos < len(self._states) - 1

    def record(self, state: Mapping, group: str | None = None, settle: float = 0.0,
               now: float | None = None) -> bool:
        """Record ``state`` as the current one (see the class docstring); returns whether the history
        changed."""
        state = dict(state)
        if not self._states:
            self.reset(state)
            return True
        if state == self._states[self._pos]:
            return False
        now = time.monotonic() if now is None else now
        del self._states[self._pos + 1:]
        if group is not None and group == self._group and now - self._time < settle and self._pos > 0:
            self._states[self._pos] = copy.deepcopy(state)  # the same change, still moving
            if self._states[self._pos] == self._states[self._pos - 1]:
                del self._states[self._pos]
                self._pos -= 1
        else:
            self._states.append(copy.deepcopy(state))
            self._pos += 1
            if len(self._states) > self.limit:
                del self._states[0]
                self._pos -= 1
        self._group, self._time = group, now
        return True

    def undo(self) -> dict | None:
        """Step back: the previous state (a copy), or ``None`` at the oldest."""
        if not self.can_undo:
            return None
        self._pos -= 1
        self.barrier()
        return self.current

    def redo(self) -> dict | None:
        """Step forward again: the next state (a copy), or ``None`` at the newest."""
        if not self.can_redo:
            return None
        self._pos += 1
        self.barrier()
        return self.current


# --------------------------------------------------------------------------------------- panel
class StateControls(Panel):
    """*copy state*, *load state*, *bookmark* (+ the bookmarks drop-down), *undo*, *redo* (see the module
    docstring).

    Args:
        get_state: ``get_state() -> dict``, the current state.
        apply_state: ``apply_state(state)`` checks a state (``ValueError`` naming the bad key, nothing
            changed) and applies it.
        history_limit: the most states kept for undo.
        describe: ``describe(state) -> str``, the default name of a bookmark (after its number).
        **traits: initial trait values.

    Attributes:
        history: the :class:`StateHistory`.
        text: the ``Textarea`` that *copy state* fills and *load state* reads.
        bookmark_list: the ``Dropdown`` of bookmarks; choosing one loads it.
        status: the HTML line of the last action's outcome or error.
    """

    history_settle = Float(0.5, min=0.0, max=60.0,
                           help="Seconds within which successive changes of one control are one undo step "
                                "(a slider being dragged); 0 = every change is a step.")
    can_undo = Bool(False, help="Whether undo() has a state to go back to (set by the panel).")
    can_redo = Bool(False, help="Whether redo() has a state to go forward to (set by the panel).")

    def __init__(self, get_state: Callable[[], dict], apply_state: Callable[[dict], None], *,
                 history_limit: int = 100, describe: Callable[[dict], str] | None = None, **traits: Any):
        if not callable(get_state) or not callable(apply_state):
            raise TypeError("get_state, apply_state: expected callables")
        self._get = get_state
        self._apply = apply_state
        self._describe = describe
        self._applying = 0
        self._bookmarks: list[tuple[str, dict]] = []
        self._choosing = False
        self.history = StateHistory(history_limit)
        super().__init__()
        for k, v in traits.items():
            if not self.has_trait(k):
                raise TypeError(f"{k}: StateControls has no trait {k!r}")
            setattr(self, k, v)

        def button(description: str, tooltip: str, width: str = "96px") -> W.Button:
            return W.Button(description=description, tooltip=tooltip, layout=W.Layout(width=width))

        self.copy_button = button("copy state", "write the state as JSON into the box below (copy it from there)")
        self.load_button = button("load state", "apply the JSON state in the box below")
        self.bookmark_button = button("bookmark", "add the current state to the bookmarks")
        self.bookmark_list = W.Dropdown(options=[(_NO_BOOKMARK_LABEL, "")], value="",
                                        tooltip="bookmarks: choose one to load it", layout=W.Layout(width="170px"))
        self.undo_button = button("undo", "back to the previous state", "64px")
        self.redo_button = button("redo", "forward to the state undone", "64px")
        self.text = W.Textarea(value="", placeholder="state JSON: 'copy state' writes it here; paste one and "
                               "press 'load state'", rows=2,
                               layout=W.Layout(width="auto", align_self="stretch"))  # the column minus margins
        self.status = W.HTML("")
        for w, cls in ((self.copy_button, "copy"), (self.load_button, "load"), (self.bookmark_button, "bookmark"),
                       (self.bookmark_list, "bookmarks"), (self.undo_button, "undo"), (self.redo_button, "redo"),
                       (self.text, "text")):
            w.add_class(f"sofgan-state-{cls}")
        self.copy_button.on_click(lambda _: self._ui(self.copy))
        self.load_button.on_click(lambda _: self._ui(self.load_text))
        self.bookmark_button.on_click(lambda _: self._ui(self.add_bookmark))
        self.undo_button.on_click(lambda _: self._ui(self.undo))
        self.redo_button.on_click(lambda _: self._ui(self.redo))
        self.bookmark_list.observe(self._bookmark_chosen, "value")
        self.children = [W.HBox([self.copy_button, self.load_button, self.bookmark_button, self.bookmark_list,
                                 self.undo_button, self.redo_button], layout=W.Layout(flex_flow="row wrap")),
                         self.text, self.status]
        self.add_class("sofgan-state")
        self.history.reset(get_state())
        self._sync()

    # ------------------------------------------------------------------ history
    @property
    def applying(self) -> bool:
        """Whether a state is being applied (changes then are not recorded)."""
        return self._applying > 0

    @contextmanager
    def _applying_state(self):
        self._applying += 1
        try:
            yield
        finally:
            self._applying -= 1

    def record(self, group: str | None = None, state: Mapping | None = None) -> bool:
        """Record the current state (or ``state``) after a change of ``group``; ignored while a state is
        being applied. Returns whether the history changed."""
        if self._applying or self._closed:
            return False
        changed = self.history.record(self._get() if state is None else state, group, settle=self.history_settle)
        self._sync()
        return changed

    def reset_history(self) -> None:
        """Forget the undo history: the current state is its only entry."""
        self.history.reset(self._get())
        self._sync()

    def _sync(self) -> None:
        self.can_undo, self.can_redo = self.history.can_undo, self.history.can_redo
        if hasattr(self, "undo_button"):
            self.undo_button.disabled = not self.can_undo
            self.redo_button.disabled = not self.can_redo

    def _go(self, state: dict | None) -> bool:
        if state is None:
            return False
        with self._applying_state():
            self._apply(state)
        self._sync()
        return True

    def undo(self) -> bool:
        """Back to the previous state; returns ``False`` when there is none."""
        return self._go(self.history.undo())

    def redo(self) -> bool:
        """Forward to the state last undone; returns ``False`` when there is none."""
        return self._go(self.history.redo())

    def load(self, state: Any) -> None:
        """Apply ``state`` (``ValueError`` naming the bad key, nothing changed); one undo step."""
        with self._applying_state():
            self._apply(state)
        self.history.barrier()
        self.history.record(self._get())
        self.history.barrier()
        self._sync()

    # ------------------------------------------------------------------ text
    def copy(self) -> str:
        """The current state as JSON, also written into :attr:`text`."""
        text = json.dumps(self._get())
        self.text.value = text
        self._report("state copied into the box below")
        return text

    def load_text(self, text: str | None = None) -> None:
        """Load the JSON state ``text`` (default: :attr:`text`'s)."""
        text = self.text.value if text is None else text
        if not isinstance(text, str) or not text.strip():
            raise ValueError("state: the box is empty; paste a state (from 'copy state') first")
        try:
            state = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"state: not valid JSON ({exc})") from None
        self.load(state)
        self._report("state loaded")

    # ------------------------------------------------------------------ bookmarks
    @property
    def bookmarks(self) -> list[tuple[str, dict]]:
        """``(name, state)`` of every bookmark, oldest first (copies)."""
        return [(n, copy.deepcopy(s)) for n, s in self._bookmarks]

    def add_bookmark(self, name: str | None = None) -> str:
        """Bookmark the current state under ``name`` (default: its number and summary); returns the name."""
        state = self._get()
        if name is None:
            number = len(self._bookmarks) + 1
            name = f"{number}: {self._describe(state)}" if self._describe is not None else f"bookmark {number}"
        if not isinstance(name, str) or not name:
            raise ValueError(f"name: expected a non-empty string, got {name!r}")
        if any(n == name for n, _ in self._bookmarks):
            raise ValueError(f"name: a bookmark {name!r} exists already")
        self._bookmarks.append((name, copy.deepcopy(state)))
        self._show_no_bookmark()
        self._report(f"bookmarked {name!r}")
        return name

    def load_bookmark(self, name: str) -> None:
        """Load the bookmark ``name`` (what choosing it in the drop-down does)."""
        for n, state in self._bookmarks:
            if n == name:
                self.load(copy.deepcopy(state))
                self._report(f"loaded bookmark {name!r}")
                return
        raise ValueError(f"name: no bookmark {name!r}; the bookmarks are {[n for n, _ in self._bookmarks]}")

    def _show_no_bookmark(self) -> None:
        """The drop-down back on its placeholder (so that choosing the same bookmark again loads it)."""
        self._choosing = True
        try:
            self.bookmark_list.options = [(_NO_BOOKMARK_LABEL, ""), *((n, n) for n, _ in self._bookmarks)]
            self.bookmark_list.value = ""
        finally:
            self._choosing = False

    def _bookmark_chosen(self, change: Any) -> None:
        if self._choosing or not change.new:
            return
        try:
            self._ui(self.load_bookmark, change.new)
        finally:
            self._show_no_bookmark()

    # ------------------------------------------------------------------ feedback
    def _ui(self, action: Callable, *args: Any) -> None:
        """Run a button's action; a ``ValueError`` is shown in the status line, not raised."""
        try:
            action(*args)
        except ValueError as exc:
            self._show_error(exc, self.status)

    def _report(self, text: str) -> None:
        self.error = ""
        self.status.value = status_html(text)


def readout_html(state: Mapping) -> str:
    """The readout line under the portrait (escaped HTML)."""
    return (f'<div class="sofgan-explorer-readout" style="color:#444;font-family:monospace;font-size:small">'
            f"{html.escape(state_summary(state))}</div>")
