"""Training checkpoints (``sofgan_lab.train.common``) on tampered ``trainer.json`` files and killed
prunes (issue 20 items 7 and 11): errors name the file and the key; a kill mid-prune never leaves a
folder that lists as complete without its files, nor an empty ``step_N``."""
from __future__ import annotations

import json
import shutil

import pytest
import torch

from sofgan_lab.io.checkpoints import CheckpointError
from sofgan_lab.train import common
from sofgan_lab.train.common import list_checkpoints, load_checkpoint, save_checkpoint

pytestmark = pytest.mark.usefixtures("one_thread")


def _save(root, step, keep=2):
    torch.manual_seed(step)
    model = torch.nn.Linear(2, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    return save_checkpoint(root, step, model=model, model_kind="test", model_config={}, optimizer=opt, keep=keep)


def _load(ck):
    model = torch.nn.Linear(2, 2)
    return load_checkpoint(ck, model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
                           restore_global_rng=False)


@pytest.mark.parametrize("change, key", [
    (lambda m: m.pop("optimizer"), "'optimizer'"),
    (lambda m: m.update(optimizer=[1]), "'optimizer'"),
    (lambda m: m.update(optimizer={}), "'optimizer'"),
    (lambda m: m.pop("rng"), "'rng'"),
    (lambda m: m.update(rng=None), "'rng'"),
    (lambda m: m.update(step="10"), "'step'"),
    (lambda m: m.update(step=2.5), "'step'"),
    (lambda m: m.update(step=-1), "'step'"),
    (lambda m: m.update(format_version="x"), "'format_version'"),
])
def test_tampered_trainer_json_names_file_and_key(tmp_path, change, key):
    ck = _save(tmp_path / "ck", 3)
    meta_path = ck / "trainer.json"
    meta = json.loads(meta_path.read_text())
    change(meta)
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(CheckpointError) as e:
        _load(ck)
    assert str(meta_path) in str(e.value) and key in str(e.value) and "\n" not in str(e.value)


def test_trainer_json_that_is_a_list_is_named(tmp_path):
    ck = _save(tmp_path / "ck", 3)
    (ck / "trainer.json").write_text("[]")
    with pytest.raises(CheckpointError, match=r"trainer.json must hold a JSON object, got a list"):
        _load(ck)


def test_untampered_checkpoint_still_loads(tmp_path):
    assert _load(_save(tmp_path / "ck", 3))["step"] == 3


def test_a_kill_mid_prune_leaves_only_complete_checkpoints(tmp_path, monkeypatch):
    root = tmp_path / "ck"
    _save(root, 1)
    _save(root, 2)
    real_rmtree = shutil.rmtree

    def killed_rmtree(path, *a, **k):  # deletes one file of the tree, then the process dies
        victims = sorted(p for p in path.rglob("*") if p.is_file() and p.name != "trainer.json")
        if victims:
            victims[0].unlink()
        raise KeyboardInterrupt

    monkeypatch.setattr(common.shutil, "rmtree", killed_rmtree)
    with pytest.raises(KeyboardInterrupt):
        _save(root, 3)  # prunes step 1
    monkeypatch.setattr(common.shutil, "rmtree", real_rmtree)
    listed = list_checkpoints(root)
    assert [s for s, _ in listed] == [2, 3]
    for _, ck in listed:  # every listed checkpoint is whole
        assert sorted(p.name for p in ck.iterdir()) == ["config.json", "model.safetensors",
                                                         "optimizer.safetensors", "rng.safetensors", "trainer.json"]
    assert not [p for p in root.iterdir() if p.name.startswith("step_") and not any(p.iterdir())]
    _save(root, 4)  # the next save removes what the killed prune left
    assert sorted(p.name for p in root.iterdir()) == ["step_00000003", "step_00000004"]
