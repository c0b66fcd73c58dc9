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


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("pre_loop")


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
    res = train_sof(MAKE.scans(data), run, model_config=MAKE.SOF_MODEL, train_config=MAKE.SOF_TRAIN,
                    progress=False, resume=True)
    assert res.finished and res.step == 6
    _assert_as_old_code(res.model.state_dict(), "sof")
    _old_log_kept(run, "sof")


def test_siw_resumes_a_checkpoint_written_before_the_shared_loop(data, tmp_path):
    run = _old_run("siw", tmp_path)
    photos = MAKE.siw_photos(data)
    res = train_siw(photos, photos, run, model_config=MAKE.SIW_MODEL, train_config=MAKE.SIW_TRAIN,
                    progress=False, resume=True)
    assert res.finished and res.step == 6
    _assert_as_old_code(res.generator.state_dict(), "siw")
    _old_log_kept(run, "siw")


def test_parser_resumes_a_checkpoint_written_before_the_shared_loop(data, tmp_path):
    run = _old_run("parser", tmp_path)
    res = train_parser(MAKE.parser_photos(data), run, MAKE.PARSER_TRAIN, model_config=MAKE.PARSER_MODEL,
                       progress=False, resume=True)
    assert res.finished and res.step == 6
    _assert_as_old_code(res.model.state_dict(), "parser")
    _old_log_kept(run, "parser")
