"""Hypothesis sweep of the file-loading entry points (issue 20): whatever JSON a model's, pipeline's,
space's or training checkpoint's metadata file holds, and whatever bytes an image file holds, loading
either succeeds or raises a one-line ``ValueError`` / ``TypeError``, never another exception type."""
from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from sofgan_lab.geometry.sof import SemanticOccupancyField, SOFConfig
from sofgan_lab.geometry.space import GeometrySpace
from sofgan_lab.images import read_image
from sofgan_lab.pipeline import SofGAN
from sofgan_lab.train.common import load_checkpoint, save_checkpoint

from _tiny import tiny_pipeline

pytestmark = pytest.mark.usefixtures("one_thread")

SWEEP = settings(max_examples=60, deadline=None, database=None,
                 suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
                    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=3),
                    max_leaves=8)


def _variants(good: dict):
    """Any JSON value, the good record with one key replaced by any JSON value, or with one key removed."""
    keys = st.sampled_from(sorted(good))
    return st.one_of(JSON, st.builds(lambda k, v: {**good, k: v}, keys, JSON),
                     st.builds(lambda k: {a: b for a, b in good.items() if a != k}, keys))


def _loads_or_clear_error(load):
    try:
        load()
    except (ValueError, TypeError) as exc:
        assert "\n" not in str(exc) and str(exc), repr(exc)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz")
    torch.manual_seed(0)
    sof = SemanticOccupancyField(SOFConfig(latent_dim=8, hyper_dim=8, phi_dim=8, phi_layers=2, marcher_dim=8,
                                           marcher_layers=2, classifier_dim=8, classifier_layers=2, num_classes=20,
                                           num_instances=2)).save_pretrained(root / "sof")
    pipe = tiny_pipeline().save_pretrained(root / "pipe")
    lin = torch.nn.Linear(2, 2)
    ck = save_checkpoint(root / "ck", 1, model=lin, model_kind="t", model_config={},
                         optimizer=torch.optim.SGD(lin.parameters(), lr=0.1))
    return {"config": sof / "config.json", "pipeline": pipe / "pipeline.json",
            "space": pipe / "geometry_space" / "space.json", "trainer": ck / "trainer.json"}


def _fuzz(path, load):
    good = json.loads(path.read_text())

    @SWEEP
    @given(_variants(good))
    def run(meta):
        path.write_text(json.dumps(meta))
        _loads_or_clear_error(load)

    try:
        run()
    finally:
        path.write_text(json.dumps(good))


def test_model_config_json(files):
    _fuzz(files["config"], lambda: SemanticOccupancyField.from_pretrained(files["config"].parent))


def test_pipeline_json(files):
    _fuzz(files["pipeline"], lambda: SofGAN.from_pretrained(files["pipeline"].parent))


def test_space_json(files):
    _fuzz(files["space"], lambda: GeometrySpace.load(files["space"].parent))


def test_trainer_json(files):
    def load():
        m = torch.nn.Linear(2, 2)
        load_checkpoint(files["trainer"].parent, model=m, optimizer=torch.optim.SGD(m.parameters(), lr=0.1),
                        restore_global_rng=False)

    _fuzz(files["trainer"], load)


def _encoded(fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (24, 24, 3), dtype=np.uint8)).save(buf, fmt)
    return buf.getvalue()


@SWEEP
@given(st.sampled_from(["PNG", "JPEG"]), st.lists(st.tuples(st.integers(0, 10 ** 6), st.integers(0, 255)), max_size=6),
       st.integers(0, 10 ** 6))
def test_mutated_image_bytes(tmp_path, fmt, flips, cut):
    data = bytearray(_encoded(fmt))
    for i, b in flips:
        data[i % len(data)] = b
    p = tmp_path / "x.png"
    p.write_bytes(bytes(data[: max(8, cut % (len(data) + 1))]))
    _loads_or_clear_error(lambda: np.asarray(read_image(p, "images").convert("RGB")))
