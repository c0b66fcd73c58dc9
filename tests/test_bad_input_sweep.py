"""A hypothesis sweep of the public entry points with wide inputs (issue 20): NaN, inf, huge, negative
numbers, wrong types, wrong shapes. Every call either returns finite output of the right shape or raises
``ValueError`` / ``TypeError`` with a one-line message; anything else (another exception, a traceback-like
message, NaN/inf in the output, a wrong shape) fails the test.

Small and deterministic by default (``derandomize=True``, a few examples per entry point, the tiny models of
``tests/_tiny.py``). ``SOFGAN_SWEEP_EXAMPLES=300`` runs a larger sweep; with ``SOFGAN_SWEEP_REPORT=path`` the
outcome counts of every entry point are written to that JSON file, and nothing is asserted (the counts then
include what would have failed, under ``other``).
"""
from __future__ import annotations

import json
import math
import os
from collections import Counter, defaultdict

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sofgan_lab.cameras import Camera
from sofgan_lab.geometry import SemanticOccupancyField, SOFConfig
from sofgan_lab.geometry.space import GeometrySpace
from sofgan_lab.texture import SIWConfig
from sofgan_lab.train.siw_trainer import SIWTrainConfig
from sofgan_lab.train.sof_trainer import SOFTrainConfig
from _tiny import tiny_pipeline  # tests/_tiny.py

pytestmark = pytest.mark.usefixtures("one_thread")

EXAMPLES = int(os.environ.get("SOFGAN_SWEEP_EXAMPLES", "12"))
REPORT = os.environ.get("SOFGAN_SWEEP_REPORT")
SWEEP = settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None, print_blob=False,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                        HealthCheck.filter_too_much])

COUNTS: dict[str, Counter] = defaultdict(Counter)
EXAMPLES_OF_OTHER: dict[str, list[str]] = defaultdict(list)


@pytest.fixture(scope="module", autouse=True)
def _write_report():
    yield
    if REPORT:
        with open(REPORT, "w") as f:
            json.dump({"examples_per_test": EXAMPLES, "counts": {k: dict(v) for k, v in sorted(COUNTS.items())},
                       "other": {k: v[:20] for k, v in EXAMPLES_OF_OTHER.items()}}, f, indent=1)


@pytest.fixture(scope="module")
def pipe():
    return tiny_pipeline()


def _finite(x) -> bool:
    return bool(torch.isfinite(torch.as_tensor(x)).all())


def outcome(entry: str, call, check) -> None:
    """Run ``call()``; a result must pass ``check`` (returns an error text or None), an exception must be a
    one-line ValueError/TypeError. Records the outcome under ``entry``; asserts unless writing a report."""
    problem = None
    try:
        result = call()
    except (ValueError, TypeError) as exc:
        msg = str(exc)
        if not msg or "\n" in msg or len(msg) > 500:
            problem = f"{type(exc).__name__} without a one-line message: {msg[:300]!r}"
        else:
            COUNTS[entry]["clear_error"] += 1
            return
    except Exception as exc:  # noqa: BLE001 - the sweep's point is to catch these
        problem = f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
    else:
        problem = check(result)
        if problem is None:
            COUNTS[entry]["ok"] += 1
            return
    COUNTS[entry]["other"] += 1
    EXAMPLES_OF_OTHER[entry].append(problem)
    if not REPORT:
        raise AssertionError(f"{entry}: {problem}")


# ------------------------------------------------------------------------------------ strategies
huge = st.sampled_from([1e300, -1e300, 1e39, 2 ** 64, 2 ** 70, -2 ** 63, 10 ** 400])
special = st.sampled_from([math.nan, math.inf, -math.inf, 0.0, -0.0, -1, 0, 1])
numbers = st.one_of(special, huge, st.floats(allow_nan=True, allow_infinity=True), st.integers(-10, 10 ** 6),
                    st.floats(-3, 3).map(np.float32), st.integers(0, 5).map(np.int64),
                    st.floats(-3, 3).map(lambda v: torch.tensor(v)))
wrong_types = st.one_of(st.none(), st.booleans(), st.text(max_size=4), st.just(b"x"), st.just(1j),
                        st.lists(st.integers(0, 3), max_size=3), st.just({"a": 1}), st.just(object()))
anything = st.one_of(numbers, wrong_types)
def mostly(valid, wide=anything):
    """``valid`` three times in four, else ``wide``: every argument is sometimes bad, the call often valid."""
    return st.integers(0, 3).flatmap(lambda i: valid if i else wide)


shapes = st.lists(st.integers(0, 5), min_size=0, max_size=4).map(tuple)
fills = st.sampled_from([0.0, 0.5, -1.0, math.nan, math.inf, 1e20, 3e38])


@st.composite
def tensors(draw, good_shape=None):
    """A float tensor: of ``good_shape`` (most of the time, when given) or any small shape, filled with one
    value or random normals; sometimes numpy, sometimes an integer dtype."""
    shape = draw(st.one_of(st.just(good_shape), shapes)) if good_shape is not None else draw(shapes)
    fill = draw(st.one_of(fills, st.just("randn")))
    t = (torch.randn(shape, generator=torch.Generator().manual_seed(draw(st.integers(0, 9))))
         if fill == "randn" else torch.full(shape, fill))
    kind = draw(st.sampled_from(["torch", "torch", "numpy", "long"]))
    return t.numpy() if kind == "numpy" else t.long() if kind == "long" and fill in (0.0, 0.5, -1.0, "randn") else t


# ------------------------------------------------------------------------------------ the pipeline
def _portraits(result, size: int = 32):
    items = list(result) if isinstance(result, list) else [result]
    for p in items:
        if tuple(p.tensor.shape) != (3, size, size):
            return f"portrait of shape {tuple(p.tensor.shape)}"
        if not _finite(p.tensor):
            return "a portrait with NaN/inf pixels"
        if p.depth is not None and not np.isfinite(p.depth).all():
            return "a depth map with NaN/inf"
    return None


angles = st.floats(-60, 60)
camera_values = mostly(st.one_of(st.none(), st.fixed_dictionaries(
    {}, optional={"yaw": mostly(angles), "pitch": mostly(st.floats(-30, 30)), "radius": mostly(st.floats(2, 10)),
                  "fov": mostly(st.one_of(st.none(), st.floats(5, 60))), "zoom": mostly(st.floats(0.5, 2)),
                  "target": mostly(st.lists(st.floats(-0.5, 0.5), min_size=3, max_size=3),
                                   st.one_of(anything, st.lists(anything, min_size=3, max_size=3)))})))
seeds_or_codes = st.one_of(st.integers(-2, 2 ** 65), huge, wrong_types, st.lists(st.integers(-1, 3), max_size=3),
                           tensors(good_shape=(64,)), tensors(good_shape=(32,)), st.floats())


@SWEEP
@given(geometry=mostly(st.integers(0, 2 ** 70), seeds_or_codes),
       texture=mostly(st.one_of(st.integers(0, 9), st.tuples(st.integers(0, 9), st.integers(0, 9))),
                      st.one_of(seeds_or_codes, st.tuples(seeds_or_codes, seeds_or_codes))),
       camera=camera_values, truncation=mostly(st.one_of(st.none(), st.floats(0, 1))),
       region_mix=mostly(st.one_of(st.none(), st.dictionaries(st.sampled_from(["hair", "eyes_mouth"]), st.floats(0, 1),
                                                               min_size=1, max_size=2)),
                         st.one_of(anything, st.dictionaries(st.sampled_from(["hair", "eyes_mouth", "beard"]),
                                                             anything, max_size=2))))
def test_sweep_pipeline_call(pipe, geometry, texture, camera, truncation, region_mix):
    outcome("pipe(...)", lambda: pipe(geometry=geometry, texture=texture, camera=camera, truncation=truncation,
                                      region_mix=region_mix), _portraits)


@st.composite
def label_maps(draw):
    kind = draw(st.sampled_from(["ids", "ids", "ids", "rgb", "pil", "pil", "other"]))
    if kind == "other":
        return draw(st.one_of(anything, tensors()))
    h, w = draw(mostly(st.integers(1, 40), st.integers(0, 3))), draw(mostly(st.integers(1, 40), st.integers(0, 3)))
    dtype = draw(mostly(st.sampled_from([np.uint8, np.int64]),
                        st.sampled_from([np.uint16, np.int32, np.int8, np.float32, np.bool_])))
    hi = draw(mostly(st.sampled_from([1, 17]), st.sampled_from([20, 300])))
    a = np.random.default_rng(draw(st.integers(0, 99))).integers(0, hi, (h, w)).astype(dtype)
    if kind == "rgb":
        a = np.stack([a] * 3, -1)
    if kind == "pil" and h and w:
        from PIL import Image

        mode = draw(mostly(st.sampled_from(["L", "P", "I"]), st.sampled_from(["RGB", "F", "1", "LA"])))
        img = Image.fromarray(a.astype(np.uint8)).convert(mode)
        return img
    return a


@SWEEP
@given(label_map=label_maps(), texture=mostly(st.integers(0, 5)),
       label_set=mostly(st.sampled_from(["sof20", "sofgan17"])),
       truncation=mostly(st.one_of(st.none(), st.floats(0, 1))))
def test_sweep_from_segmap(pipe, label_map, texture, label_set, truncation):
    def check(result):
        items = list(result) if isinstance(result, list) else [result]
        for p in items:
            if not _finite(p.tensor) or p.tensor.shape[0] != 3:
                return f"portrait {tuple(p.tensor.shape)} finite={_finite(p.tensor)}"
        return None

    outcome("pipe.from_segmap", lambda: pipe.from_segmap(label_map, texture, label_set=label_set,
                                                         truncation=truncation), check)


# ------------------------------------------------------------------------------------ the texture generator
@SWEEP
@given(which=st.sampled_from(["z", "w", "latents"]), styles=st.data(), truncation=mostly(st.floats(0, 1)),
       cutoff=mostly(st.one_of(st.none(), st.integers(0, 8))),
       mean=mostly(st.none(), st.one_of(anything, tensors(good_shape=(32,)))),
       noise=mostly(st.sampled_from(["const", "random", "none"]),
                    st.one_of(anything, st.lists(st.one_of(st.none(), tensors(good_shape=(1, 1, 4, 4))),
                                                 min_size=7, max_size=7))),
       n=mostly(st.integers(0, 3), st.one_of(st.integers(-2, 2 ** 70), anything)))
def test_sweep_siw_forward(pipe, which, styles, truncation, cutoff, mean, noise, n):
    G = pipe.siw
    good = {"z": (1, 32), "w": (1, 32), "latents": (1, G.n_latent, 32)}[which]
    style = styles.draw(mostly(st.integers(0, 9).map(lambda s: torch.randn(good, generator=torch.Generator()
                                                                             .manual_seed(s))),
                               st.one_of(tensors(good_shape=good), anything)))
    seg = torch.zeros(1, 32, 32, dtype=torch.long)

    def check(img):
        if tuple(img.shape) != (1, 3, 32, 32):
            return f"image of shape {tuple(img.shape)}"
        return None if _finite(img) else "an image with NaN/inf"

    with torch.no_grad():
        outcome("SIWGenerator.forward", lambda: G(seg, **{which: style}, truncation=truncation,
                                                  truncation_cutoff=cutoff, truncation_latent=mean, noise=noise), check)
    outcome("SIWGenerator.random_z", lambda: G.random_z(n, seed=0),
            lambda z: None if z.shape == (n, 1, 32) and _finite(z) else f"codes {tuple(z.shape)}")
    outcome("SIWGenerator.mean_latent", lambda: G.mean_latent(n if not isinstance(n, int) else max(n, 0) * 50),
            lambda m: None if m.shape == (32,) and _finite(m) else f"mean {tuple(m.shape)}")


# ------------------------------------------------------------------------------------ SOF rendering
@pytest.fixture(scope="module")
def sof():
    torch.manual_seed(0)
    return SemanticOccupancyField(SOFConfig(latent_dim=8, hyper_dim=16, phi_dim=16, marcher_dim=16,
                                            classifier_dim=16, march_steps=4)).eval()


@SWEEP
@given(steps=mostly(st.one_of(st.none(), st.integers(0, 12)), st.one_of(st.integers(-2, 10 ** 9), anything)),
       chunk=mostly(st.integers(1, 100), st.one_of(st.integers(-1, 0), anything)),
       pixel_offset=mostly(st.floats(0, 1)),
       start_depth=mostly(st.one_of(st.none(), st.floats(-1, 6)), st.one_of(anything, tensors(good_shape=(1, 8, 8)))),
       z=mostly(st.integers(0, 9).map(lambda s: torch.randn(1, 8, generator=torch.Generator().manual_seed(s))),
                st.one_of(tensors(good_shape=(1, 8)), anything)))
def test_sweep_sof_render(sof, steps, chunk, pixel_offset, start_depth, z):
    cam = Camera.from_orbit(0.0, 0.0, image_size=8, pixels_per_unit=1.0)

    def check(r):
        if tuple(r.labels.shape) != (1, 8, 8):
            return f"labels of shape {tuple(r.labels.shape)}"
        if not (_finite(r.depth) and _finite(r.logits) and _finite(r.points)):
            return "NaN/inf in the depth, logits or points"
        return None

    outcome("SemanticOccupancyField.render", lambda: sof.render(z, cam, steps=steps, chunk=chunk,
                                                                pixel_offset=pixel_offset, start_depth=start_depth),
            check)


# ------------------------------------------------------------------------------------ the geometry space
@SWEEP
@given(n=mostly(st.integers(1, 5), st.one_of(st.integers(-2, 10 ** 12), anything)),
       seed=mostly(st.integers(0, 2 ** 70), st.one_of(st.integers(-2, 0), anything)),
       component=mostly(st.one_of(st.none(), st.integers(0, 3)), st.one_of(st.integers(-2, 20), anything)),
       temperature=mostly(st.floats(0, 3)),
       z=mostly(st.integers(0, 9).map(lambda s: np.random.default_rng(s).normal(size=(2, 64))),
                st.one_of(tensors(good_shape=(64,)), tensors(good_shape=(2, 64)), anything)),
       direction=mostly(st.sampled_from(["pc1", "pc3"]),
                        st.one_of(st.sampled_from(["pc0", "pc999", "hair_length", ""]), anything)),
       amount=mostly(st.floats(-3, 3)))
def test_sweep_geometry_space(pipe, n, seed, component, temperature, z, direction, amount):
    space: GeometrySpace = pipe.space
    outcome("GeometrySpace.sample", lambda: space.sample(n, seed=seed, component=component, temperature=temperature),
            lambda c: None if c.shape == (n, space.dim) and _finite(c) else f"codes {tuple(c.shape)}")

    def check_edit(c):
        want = tuple(np.shape(z)) if np.ndim(z) == 2 else (space.dim,)
        return None if tuple(c.shape) == want and _finite(c) else f"edit {tuple(c.shape)} finite={_finite(c)}"

    outcome("GeometrySpace.edit", lambda: space.edit(z, direction, amount), check_edit)


# ------------------------------------------------------------------------------------ config constructors
def _config_fields(cls):
    return list(cls.__dataclass_fields__)


@SWEEP
@given(data=st.data())
def test_sweep_config_constructors(data):
    for cls in (SOFConfig, SIWConfig, SIWTrainConfig, SOFTrainConfig):
        names = data.draw(st.lists(st.sampled_from(_config_fields(cls)), min_size=1, max_size=3, unique=True))
        kw = {k: data.draw(st.one_of(anything, st.integers(-5, 10 ** 12))) for k in names}
        if cls is SIWConfig:
            kw.setdefault("size", 32)
            kw.setdefault("channels", {4: 8, 8: 8, 16: 8, 32: 8})
        outcome(f"{cls.__name__}(...)", lambda: cls(**kw), lambda cfg: None)
