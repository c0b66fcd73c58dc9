"""Loading a saved pipeline and its geometry space from tampered files (issue 20 items 7 and 8):
``pipeline.json`` and ``space.json`` errors name the file and the key; components must stay inside
the pipeline folder."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from sofgan_lab.geometry.space import GeometrySpace
from sofgan_lab.io.checkpoints import CheckpointError
from sofgan_lab.pipeline import SofGAN

from _tiny import tiny_pipeline

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    return tiny_pipeline().save_pretrained(tmp_path_factory.mktemp("pipe") / "pipe")


@pytest.fixture
def pipe_dir(saved, tmp_path):
    return shutil.copytree(saved, tmp_path / "pipe")


def _edit(path, change):
    meta = json.loads(path.read_text())
    change(meta)
    path.write_text(json.dumps(meta))


@pytest.mark.parametrize("change, key", [
    (lambda m: m.update(components=None), "'components'"),
    (lambda m: m.update(components=["sof", "siw"]), "'components'"),
    (lambda m: m.pop("components"), "'components'"),
    (lambda m: m.update(format_version="2"), "'format_version'"),
])
def test_tampered_pipeline_json_names_file_and_key(pipe_dir, change, key):
    _edit(pipe_dir / "pipeline.json", change)
    with pytest.raises(CheckpointError) as e:
        SofGAN.from_pretrained(pipe_dir)
    assert str(pipe_dir / "pipeline.json") in str(e.value) and key in str(e.value)


def test_pipeline_json_that_is_null_is_named(pipe_dir):
    (pipe_dir / "pipeline.json").write_text("null")
    with pytest.raises(CheckpointError, match=r"pipeline.json must hold a JSON object, got null"):
        SofGAN.from_pretrained(pipe_dir)


@pytest.mark.parametrize("part", ["sof", "siw", "geometry_space"])
@pytest.mark.parametrize("escape", ["absolute", "dotdot"])
def test_components_outside_the_folder_are_refused(pipe_dir, tmp_path, part, escape):
    outside = shutil.copytree(pipe_dir / part, tmp_path / f"elsewhere_{part}")  # a loadable model, elsewhere
    value = str(outside) if escape == "absolute" else f"../{outside.name}"
    _edit(pipe_dir / "pipeline.json", lambda m: m["components"].update({part: value}))
    with pytest.raises(CheckpointError, match=rf"components.{part}.*absolute paths and '..' are refused"):
        SofGAN.from_pretrained(pipe_dir)


def test_untampered_pipeline_still_loads(pipe_dir):
    assert SofGAN.from_pretrained(pipe_dir).space is not None


@pytest.fixture
def space_dir(saved, tmp_path):
    return shutil.copytree(saved / "geometry_space", tmp_path / "space")


def test_space_json_naming_a_missing_array(space_dir):
    _edit(space_dir / "space.json", lambda m: m["directions"].append("wings"))
    with pytest.raises(CheckpointError) as e:
        GeometrySpace.load(space_dir)
    assert "'direction/wings'" in str(e.value) and str(space_dir / "space.npz") in str(e.value)


@pytest.mark.parametrize("value", [None, "hair_length", [1]])
def test_space_json_with_a_bad_name_list(space_dir, value):
    _edit(space_dir / "space.json", lambda m: m.update(attributes=value))
    with pytest.raises(CheckpointError, match=r"space.json: key 'attributes' must be a list of names"):
        GeometrySpace.load(space_dir)


def test_space_with_non_positive_definite_covariances(space_dir):
    with np.load(space_dir / "space.npz") as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["covariances"] = -arrays["covariances"]
    np.savez(space_dir / "space.npz", **arrays)
    with pytest.raises(CheckpointError, match=r"space.npz: key 'covariances' .*not positive definite"):
        GeometrySpace.load(space_dir)
