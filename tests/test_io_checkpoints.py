"""The native format's loading and writing (``sofgan_lab.io.checkpoints``) on tampered or unusual
input (issue 20 items 3, 6, 7, 11): every error names the file and the key, nothing garbage loads."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file, save_file

from sofgan_lab.geometry.sof import SemanticOccupancyField, SOFConfig
from sofgan_lab.io.checkpoints import (CheckpointError, atomic_write_bytes, check_output_path, clean_partials,
                                       commit_tree, inside, new_tree, read_json)

pytestmark = pytest.mark.usefixtures("one_thread")

SMALL_SOF = SOFConfig(latent_dim=8, hyper_dim=8, phi_dim=8, phi_layers=2, marcher_dim=8, marcher_layers=2,
                      classifier_dim=8, classifier_layers=2, num_classes=20, num_instances=2)


@pytest.fixture
def sof_dir(tmp_path):
    torch.manual_seed(0)
    return SemanticOccupancyField(SMALL_SOF).save_pretrained(tmp_path / "sof")


# ------------------------------------------------------------------ item 3: non-finite weights
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_weights_are_refused_naming_file_and_key(sof_dir, bad):
    weights = sof_dir / "model.safetensors"
    state = load_file(str(weights))
    key = sorted(k for k, v in state.items() if v.is_floating_point())[0]
    state[key] = state[key].clone()
    state[key].view(-1)[0] = bad
    save_file(state, str(weights))
    with pytest.raises(CheckpointError) as e:
        SemanticOccupancyField.from_pretrained(sof_dir)
    msg = str(e.value)
    assert str(weights) in msg and repr(key) in msg and "non-finite" in msg and "\n" not in msg


def test_finite_weights_still_load_exactly(sof_dir):
    a = SemanticOccupancyField.from_pretrained(sof_dir)
    saved = load_file(str(sof_dir / "model.safetensors"))
    assert all(torch.equal(v, saved[k]) for k, v in a.state_dict().items())


# ------------------------------------------------------------------ item 7: tampered config.json
@pytest.mark.parametrize("meta, key", [
    ([1, 2], "JSON object"),
    (None, "JSON object"),
    ({"format": "sofgan-lab", "kind": "sof", "format_version": 1}, "'config'"),
    ({"format": "sofgan-lab", "kind": "sof", "format_version": 1, "config": [1]}, "'config'"),
    ({"format": "sofgan-lab", "kind": "sof", "format_version": "one", "config": {}}, "'format_version'"),
    ({"format": "sofgan-lab", "kind": "sof", "format_version": 1.5, "config": {}}, "'format_version'"),
])
def test_tampered_config_json_names_file_and_key(sof_dir, meta, key):
    cfg = sof_dir / "config.json"
    if isinstance(meta, dict) and meta.get("config") == {}:
        meta["config"] = json.loads(cfg.read_text())["config"]
    cfg.write_text(json.dumps(meta))
    with pytest.raises(CheckpointError) as e:
        SemanticOccupancyField.from_pretrained(sof_dir)
    assert str(cfg) in str(e.value) and key in str(e.value)


def test_read_json_refuses_non_objects_and_non_json(tmp_path):
    p = tmp_path / "run.json"
    for text, what in (("[]", "a list"), ("null", "null"), ("3", "a number"), ("{", "not valid JSON")):
        p.write_text(text)
        with pytest.raises(CheckpointError, match="out: .*run.json") as e:
            read_json(p, "out")
        assert what in str(e.value)


# ------------------------------------------------------------------ item 8: component paths
@pytest.mark.parametrize("rel", ["/etc", "../sof", "a/../../b", "", None, 3])
def test_inside_refuses_paths_that_leave_the_folder(tmp_path, rel):
    with pytest.raises(CheckpointError, match="components.sof"):
        inside(tmp_path, rel, "components.sof", tmp_path / "pipeline.json", "name_or_dir")


def test_inside_keeps_relative_names(tmp_path):
    assert inside(tmp_path, "sof", "k", "p", "n") == tmp_path / "sof"
    assert inside(tmp_path, "parts/sof", "k", "p", "n") == tmp_path / "parts" / "sof"


# ------------------------------------------------------------------ item 6: an output under a file
def test_output_under_an_existing_file_is_named(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match=r"^path: .*file/sub/a.png cannot be written: .*file is a file"):
        atomic_write_bytes(tmp_path / "file" / "sub" / "a.png", b"data")
    with pytest.raises(ValueError, match=r"^out: .*is a file, not a folder"):
        new_tree(tmp_path / "file" / "out", overwrite=False)
    with pytest.raises(ValueError, match="exists and is a folder"):
        check_output_path(tmp_path, "--out")
    assert check_output_path(tmp_path / "new" / "a.png", "--out") == tmp_path / "new" / "a.png"


# ------------------------------------------------------------------ item 11: stale partial trees
def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_new_tree_removes_the_partials_of_killed_runs_only(tmp_path):
    out = tmp_path / "scans"
    orphan = tmp_path / ".scans.partial-orphan"          # no owner record (a run of an older version)
    dead = tmp_path / ".scans.partial-dead"              # its builder is gone
    live = tmp_path / ".scans.partial-live"              # its builder (this process) still runs
    other = tmp_path / ".other.partial-x"                # another output's tree
    for d in (orphan, dead, live, other):
        d.mkdir()
        (d / "index.json").write_text("{}")
    (dead / ".sofgan-lab-owner").write_text(f"{_dead_pid()}\n")
    (live / ".sofgan-lab-owner").write_text(f"{os.getpid()}\n")
    tmp = new_tree(out, overwrite=False)
    assert not orphan.exists() and not dead.exists()
    assert live.is_dir() and other.is_dir() and tmp.is_dir()
    (tmp / "a.txt").write_text("a")
    commit_tree(tmp, out)
    assert sorted(p.name for p in out.iterdir()) == ["a.txt"]  # the owner record is not published
    assert clean_partials(out) == 0 and live.is_dir()


def test_synth_scans_cleans_a_killed_runs_partial(tmp_path):
    from sofgan_lab.synthetic.writers import write_scans

    stale = tmp_path / ".scans.partial-killed"
    (stale / "0000").mkdir(parents=True)
    write_scans(tmp_path / "scans", instances=1, views=1, size=8, seed=0, workers=1, progress=False)
    assert not stale.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["scans"]
