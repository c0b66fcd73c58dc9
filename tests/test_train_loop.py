"""The shared training loop (``sofgan_lab.train.loop``): checkpoints written before it existed still
resume, and the log of a resumed run equals that of an uninterrupted one."""
from __future__ import annotations

import importlib.util
import json
import math
import shutil
from pathlib import Path

import pytest

from sofgan_lab.train.common import MetricsLogger
from sofgan_lab.train.parser_trainer import train_parser
from sofgan_lab.train.siw_trainer import train_siw
from sofgan_lab.train.sof_trainer import train_sof

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "pre_loop_checkpoints"

pytestmark = pytest.mark.usefixtures("one_thread")


def _make_module():
    """tests/fixtures/pre_loop_checkpoints/make.py: the configs and data the fixtures were made with."""
    spec = importlib.util.spec_from_file_location("pre_loop_make", FIXTURES / "make.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


MAKE = _make_module()


class _Data:
    """The fixtures' data sets, each written once (on first use) into one folder."""

    def __init__(self, root: Path):
        self.root, self.made = root, {}

    def __getattr__(self, name: str) -> Path:  # scans, siw_photos, parser_photos
        if name not in self.made:
            self.made[name] = getattr(MAKE, name)(self.root)
        return self.made[name]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> _Data:
    return _Data(tmp_path_factory.mktemp("pre_loop"))


def _old_run(name: str, tmp_path: Path) -> Path:
    """A run folder holding the fixture's step-3 checkpoint and log (as the old code left them)."""
    run = tmp_path / name
    shutil.copytree(FIXTURES / name / "checkpoints", run / "checkpoints")
    shutil.copy(FIXTURES / name / "metrics.jsonl", run / "metrics.jsonl")
    return run


def _assert_as_old_code(state: dict, name: str) -> None:
    """The parameters' per-tensor sums and sums of squares equal those the old code reached from the
    same checkpoint (relative 1e-4: the same arithmetic; the data are regenerated here)."""
    want = json.loads((FIXTURES / name / "final.json").read_text())
    got = {k: [float(v.double().sum()), float(v.double().square().sum())] for k, v in state.items()
           if v.is_floating_point()}
    assert got.keys() == want.keys()
    bad = {k: (got[k], want[k]) for k in want
           if not all(math.isclose(a, b, rel_tol=1e-4, abs_tol=1e-7) for a, b in zip(got[k], want[k]))}
    assert not bad, f"{len(bad)} tensors differ from the old code's result, e.g. {list(bad.items())[:3]}"


def _old_log_kept(run: Path, name: str) -> None:
    old = MetricsLogger.read(FIXTURES / name / "metrics.jsonl")
    new = MetricsLogger.read(run / "metrics.jsonl")
    assert new[0] == old[0] and old[0]["step"] == 2  # the records before the checkpoint stay
    assert new[-1]["step"] == 6


def test_sof_resumes_a_checkpoint_written_before_the_shared_loop(data, tmp_path):
    run = _old_run("sof", tmp_path)
    res = train_sof(data.scans, run, model_config=MAKE.SOF_MODEL, train_config=MAKE.SOF_TRAIN,
                    progress=False, resume=True)
    assert res.finished and res.step == 6
    _assert_as_old_code(res.model.state_dict(), "sof")
    _old_log_kept(run, "sof")


def test_siw_resumes_a_checkpoint_written_before_the_shared_loop(data, tmp_path):
    run = _old_run("siw", tmp_path)
    photos = data.siw_photos
    res = train_siw(photos, photos, run, model_config=MAKE.SIW_MODEL, train_config=MAKE.SIW_TRAIN,
                    progress=False, resume=True)
    assert res.finished and res.step == 6
    _assert_as_old_code(res.generator.state_dict(), "siw")
    _old_log_kept(run, "siw")


def test_parser_resumes_a_checkpoint_written_before_the_shared_loop(data, tmp_path):
    run = _old_run("parser", tmp_path)
    res = train_parser(data.parser_photos, run, MAKE.PARSER_TRAIN, model_config=MAKE.PARSER_MODEL,
                       progress=False, resume=True)
    assert res.finished and res.step == 6
    _assert_as_old_code(res.model.state_dict(), "parser")
    _old_log_kept(run, "parser")


# ------------------------------------------------------------------------------------------
# the log of a resumed run equals that of an uninterrupted run
# ------------------------------------------------------------------------------------------

TIMINGS = ("rays_per_s", "images_per_s", "seconds")


def _records(run: Path) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in TIMINGS} for r in MetricsLogger.read(run / "metrics.jsonl")]


def _trainer(name: str, data: _Data):
    """``train(out, **kw)`` of one trainer with the fixture's configs (steps 6, log_every 2,
    checkpoint_every 3: checkpoints fall inside log windows)."""
    if name == "sof":
        scans = data.scans
        return lambda out, **kw: train_sof(scans, out, model_config=MAKE.SOF_MODEL, train_config=MAKE.SOF_TRAIN,
                                           progress=False, **kw)
    if name == "siw":
        photos = data.siw_photos
        return lambda out, **kw: train_siw(photos, photos, out, model_config=MAKE.SIW_MODEL,
                                           train_config=MAKE.SIW_TRAIN, progress=False, **kw)
    photos = data.parser_photos
    return lambda out, **kw: train_parser(photos, out, MAKE.PARSER_TRAIN, model_config=MAKE.PARSER_MODEL,
                                          progress=False, **kw)


@pytest.mark.parametrize("name", ["sof", "siw", "parser"])
def test_resumed_log_averages_equal_an_uninterrupted_run(name, data, tmp_path):
    train = _trainer(name, data)
    train(tmp_path / "straight")
    straight = _records(tmp_path / "straight")
    assert [r["step"] for r in straight if r["event"] == "train"] == [2, 4, 6]

    # stopped by ``until`` inside a window: the stop writes a record of the unfinished window ...
    train(tmp_path / "staged", until=3)
    assert [r["step"] for r in _records(tmp_path / "staged")] == [2, 3]
    train(tmp_path / "staged", resume=True)
    # ... which the resume replaces by the whole window's record (steps 3 and 4, not 4 alone)
    assert _records(tmp_path / "staged") == straight

    # killed after step 5: the newest complete checkpoint is step 3, inside the window of step 4
    train(tmp_path / "killed", until=5)
    shutil.rmtree(tmp_path / "killed" / "checkpoints" / "step_00000005")
    train(tmp_path / "killed", resume=True)
    assert _records(tmp_path / "killed") == straight


def test_running_means_state_round_trip_and_refuses_other_values():
    import torch

    from sofgan_lab.train.loop import RunningMeans

    a = RunningMeans(("loss", "ce"), device="cpu")
    a.add_all(torch.tensor([1.0, 0.5]))
    a.add_all(torch.tensor([2.0, 0.25]))
    b = RunningMeans(("loss", "ce"), device="cpu")
    b.load_state_dict(json.loads(json.dumps(a.state_dict())))
    assert b.means() == a.means() == {"loss": 1.5, "ce": 0.375}
    f = RunningMeans(("d_loss", "r1"))
    f.add("d_loss", 0.1)
    f.add("d_loss", 0.2)
    g = RunningMeans(("d_loss", "r1"))
    g.load_state_dict(json.loads(json.dumps(f.state_dict())))
    assert g.means() == f.means() == {"d_loss": (0.1 + 0.2) / 2} and not g.empty
    with pytest.raises(ValueError, match=r"ck: the logged values \['d_loss', 'r1'\] differ"):
        a.load_state_dict(f.state_dict(), where="ck")
