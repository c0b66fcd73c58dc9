"""Tests for the SOF trainer (``sofgan_lab.train``): schedule, checkpoints, exact resume (also
after SIGKILL), DDP with two CPU processes, a loss that falls, and the ``train sof`` / ``eval sof``
commands."""
from __future__ import annotations

import json
import math
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from sofgan_lab.cli import main
from sofgan_lab.geometry import SemanticOccupancyField, SOFConfig
from sofgan_lab.io.checkpoints import CheckpointError
from sofgan_lab.synthetic import write_scans
from sofgan_lab.train.common import (MetricsLogger, latest_checkpoint, list_checkpoints, load_checkpoint,
                                     make_warmup_cosine, save_checkpoint, schedule_config, apply_schedule_config,
                                     warmup_cosine_factor)
from sofgan_lab.train.sof_trainer import SOFTrainConfig, train_sof

REPO = Path(__file__).resolve().parents[1]

#: the small config shrunk further: seconds on a CPU
TINY = SOFConfig(latent_dim=16, hyper_dim=16, phi_dim=16, marcher_dim=16, classifier_dim=16,
                 classifier_layers=1, march_steps=3)


# one thread; `scans`: the shared tiny dataset (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("one_thread")


def cfg(**kw) -> SOFTrainConfig:
    base = dict(steps=6, batch_views=2, rays_per_view=32, lr=3e-3, warmup_steps=2, min_lr_ratio=0.1,
                checkpoint_every=2, log_every=1, eval_every=0, holdout_views=1, device="cpu")
    base.update(kw)
    return SOFTrainConfig(**base)


def params(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def assert_identical(a: dict, b: dict):
    assert a.keys() == b.keys()
    worst = max((float((a[k] - b[k]).abs().max()), k) for k in a)
    assert all(torch.equal(a[k], b[k]) for k in a), f"parameters differ; largest difference {worst}"


# ------------------------------------------------------------------------------------------
# schedule, logger, checkpoints
# ------------------------------------------------------------------------------------------

def test_warmup_cosine_values():
    f = lambda s: warmup_cosine_factor(s, total_steps=10, warmup_steps=2, min_lr_ratio=0.1)  # noqa: E731
    assert f(0) == 0.5 and f(1) == 1.0 and f(2) == 1.0
    assert f(6) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))  # 0.55
    assert f(4) == pytest.approx(0.1 + 0.45 * (1 + math.cos(math.pi / 4)))
    assert f(10) == pytest.approx(0.1) and f(50) == pytest.approx(0.1)
    assert warmup_cosine_factor(0, total_steps=4, warmup_steps=0, min_lr_ratio=0.0) == 1.0
    opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=2.0)
    sched = make_warmup_cosine(opt, total_steps=10, warmup_steps=2, min_lr_ratio=0.1)
    lrs = []
    for _ in range(10):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    np.testing.assert_allclose(lrs, [2 * f(s) for s in range(10)])


def test_resumed_schedule_follows_this_runs_config(tmp_path):
    """load_checkpoint restores the saved peak lr and schedule; apply_schedule_config puts this run's
    --lr/--steps back (at the saved step), and leaves an unchanged schedule exactly as saved."""
    def run(lr, total, steps, ck=None):
        opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(2))], lr=lr)
        sched = make_warmup_cosine(opt, total_steps=total, warmup_steps=2, min_lr_ratio=0.1)
        if ck is not None:
            cfg_now = schedule_config(sched)
            load_checkpoint(ck, model=torch.nn.Linear(1, 1), optimizer=opt, scheduler=sched)
            changed = apply_schedule_config(sched, cfg_now)
        else:
            changed = None
        for _ in range(steps):
            opt.step()
            sched.step()
        return opt, sched, changed

    opt, sched, _ = run(1.0, 10, 4)
    ck = save_checkpoint(tmp_path / "ck", 4, model=torch.nn.Linear(1, 1), model_kind="test", model_config={},
                         optimizer=opt, scheduler=sched)
    f = lambda s, total: warmup_cosine_factor(s, total_steps=total, warmup_steps=2, min_lr_ratio=0.1)  # noqa: E731
    same, sched_same, changed = run(1.0, 10, 0, ck)
    assert changed is False and same.param_groups[0]["lr"] == opt.param_groups[0]["lr"] == f(4, 10)
    new, sched_new, changed = run(0.5, 20, 2, ck)
    assert changed is True and sched_new.last_epoch == 6
    assert new.param_groups[0]["lr"] == pytest.approx(0.5 * f(6, 20)) and sched_new.base_lrs == [0.5]


def test_metrics_logger_truncates_after_resume(tmp_path):
    log = MetricsLogger(tmp_path / "m.jsonl")
    for s in range(1, 6):
        log.log({"step": s, "loss": float(s), "bad": float("nan")})
    log.close()
    with open(tmp_path / "m.jsonl", "a") as f:
        f.write('{"step": 6, "lo')  # cut by a kill
    log.truncate_after(3)
    recs = MetricsLogger.read(tmp_path / "m.jsonl")
    assert [r["step"] for r in recs] == [1, 2, 3] and recs[0]["bad"] is None


def test_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    model = SemanticOccupancyField(SOFConfig(**{**TINY.to_dict(), "num_instances": 3}))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    sched = make_warmup_cosine(opt, total_steps=10, warmup_steps=2, min_lr_ratio=0.1)
    for _ in range(2):
        loss = sum(p.square().sum() for p in model.parameters())
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    gen = torch.Generator().manual_seed(42)
    torch.rand(3, generator=gen)
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    ck = save_checkpoint(tmp_path / "ck", 2, model=model, model_kind="sof", model_config=model.config.to_dict(),
                         optimizer=opt, scheduler=sched, generators={"sampler/rank0": gen})
    expect = (torch.rand(4), np.random.rand(3), random.random(), torch.rand(4, generator=gen))
    assert ck.name == "step_00000002" and latest_checkpoint(tmp_path / "ck") == ck
    assert sorted(p.name for p in ck.iterdir()) == ["config.json", "model.safetensors", "optimizer.safetensors",
                                                     "rng.safetensors", "trainer.json"]
    # a checkpoint is also a model folder
    assert_identical(params(SemanticOccupancyField.from_pretrained(ck)), params(model))

    torch.manual_seed(99)
    model2 = SemanticOccupancyField(model.config)
    opt2 = torch.optim.Adam(model2.parameters(), lr=1e-2)
    sched2 = make_warmup_cosine(opt2, total_steps=10, warmup_steps=2, min_lr_ratio=0.1)
    gen2 = torch.Generator().manual_seed(0)
    random.seed(5)
    np.random.seed(5)
    meta = load_checkpoint(ck, model=model2, optimizer=opt2, scheduler=sched2, generators={"sampler/rank0": gen2})
    assert meta["step"] == 2
    assert_identical(params(model2), params(model))
    s1, s2 = opt.state_dict(), opt2.state_dict()
    assert s1["param_groups"] == s2["param_groups"]
    for pid in s1["state"]:
        for k, v in s1["state"][pid].items():
            assert torch.equal(v, s2["state"][pid][k]), (pid, k)
    assert sched2.state_dict() == sched.state_dict() and sched2.last_epoch == 2
    got = (torch.rand(4), np.random.rand(3), random.random(), torch.rand(4, generator=gen2))
    assert torch.equal(got[0], expect[0]) and np.array_equal(got[1], expect[1]) and got[2] == expect[2]
    assert torch.equal(got[3], expect[3])

    # keep the newest two; stale partial folders are cleaned up
    (tmp_path / "ck" / ".step_00000009.partial-x").mkdir()
    for s in (4, 6):
        save_checkpoint(tmp_path / "ck", s, model=model, model_kind="sof", model_config=model.config.to_dict(),
                        optimizer=opt)
    assert [s for s, _ in list_checkpoints(tmp_path / "ck")] == [4, 6]
    assert not list((tmp_path / "ck").glob(".step_*"))
    with pytest.raises(CheckpointError, match="generator 'sampler/rank0'"):
        load_checkpoint(tmp_path / "ck" / "step_00000006", model=model2, generators={"sampler/rank0": gen2})
    other = SemanticOccupancyField(SOFConfig(**{**TINY.to_dict(), "num_instances": 5}))
    with pytest.raises(CheckpointError, match="latents.weight"):
        load_checkpoint(tmp_path / "ck" / "step_00000006", model=other)


# ------------------------------------------------------------------------------------------
# training
# ------------------------------------------------------------------------------------------

def test_exact_resume(scans, tmp_path):
    straight = train_sof(scans, tmp_path / "a", model_config=TINY, train_config=cfg(), progress=False)
    assert straight.finished and straight.step == 6
    part = train_sof(scans, tmp_path / "b", model_config=TINY, train_config=cfg(), progress=False, until=3)
    assert not part.finished and not (tmp_path / "b" / "model").exists()
    assert [s for s, _ in list_checkpoints(tmp_path / "b" / "checkpoints")] == [2, 3]
    resumed = train_sof(scans, tmp_path / "b", model_config=TINY, train_config=cfg(), progress=False, resume=True)
    assert resumed.finished
    assert_identical(params(resumed.model), params(straight.model))
    assert not torch.equal(straight.model.latents.weight, SemanticOccupancyField(
        SOFConfig(**{**TINY.to_dict(), "num_instances": 2})).latents.weight)
    # the logs agree too (apart from timings)
    strip = lambda recs: [{k: v for k, v in r.items() if k not in ("rays_per_s", "seconds")} for r in recs]  # noqa
    assert strip(MetricsLogger.read(tmp_path / "a" / "metrics.jsonl")) == strip(
        MetricsLogger.read(tmp_path / "b" / "metrics.jsonl"))
    # the final model records its training data
    meta = json.loads((tmp_path / "a" / "model" / "config.json").read_text())
    assert meta["training_data"]["seed"] == 0 and meta["training_data"]["instances"] == ["0000", "0001"]
    training = json.loads((tmp_path / "a" / "model" / "training.json").read_text())
    assert training["data_index"]["seed"] == 0 and training["steps"] == 6
    assert training["train_config"]["steps"] == 6 and 0.0 <= training["final_metrics"]["miou"] <= 1.0
    assert_identical(params(SemanticOccupancyField.from_pretrained(tmp_path / "a" / "model")),
                     params(straight.model))
    # an existing run is not overwritten by accident
    with pytest.raises(ValueError, match="out: .* already holds a training run"):
        train_sof(scans, tmp_path / "a", model_config=TINY, train_config=cfg(), progress=False)


def test_loss_falls(tmp_path):
    data = write_scans(tmp_path / "one", instances=1, views=4, size=16, workers=1, progress=False)
    r = train_sof(data, tmp_path / "run", model_config=TINY, progress=False,
                  train_config=cfg(steps=60, batch_views=3, rays_per_view=128, lr=1e-2, warmup_steps=3,
                                   checkpoint_every=0, holdout_views=0))
    recs = [x for x in MetricsLogger.read(tmp_path / "run" / "metrics.jsonl") if x["event"] == "train"]
    assert [x["step"] for x in recs] == list(range(1, 61))
    first = np.mean([x["ce"] for x in recs[:5]])
    last = np.mean([x["ce"] for x in recs[-5:]])
    assert last < 0.6 * first, (first, last)
    assert recs[0]["lr"] == pytest.approx(1e-2 / 3) and recs[-1]["rays_per_s"] > 0
    assert r.finished and [s for s, _ in list_checkpoints(tmp_path / "run" / "checkpoints")] == [60]


def test_config_errors(scans, tmp_path):
    with pytest.raises(ValueError, match="steps: expected an integer >= 1"):
        SOFTrainConfig(steps=0)
    with pytest.raises(ValueError, match="lr: expected"):
        SOFTrainConfig(lr=-1.0)
    with pytest.raises(ValueError, match="warmup_steps: expected at most steps"):
        SOFTrainConfig(steps=10, warmup_steps=20)
    with pytest.raises(ValueError, match="holdout_views: expected fewer than 4"):
        train_sof(scans, tmp_path / "r", model_config=TINY, train_config=cfg(holdout_views=4), progress=False)
    with pytest.raises(ValueError, match="model_config: num_instances is 5"):
        train_sof(scans, tmp_path / "r", model_config=SOFConfig(**{**TINY.to_dict(), "num_instances": 5}),
                  train_config=cfg(), progress=False)


_CHILD = r"""
import json, sys, time
import torch
torch.set_num_threads(1)
from sofgan_lab.geometry import SOFConfig
from sofgan_lab.train import sof_data
from sofgan_lab.train.sof_trainer import SOFTrainConfig, train_sof
_orig = sof_data.SOFScanDataset.sample_rays
_calls = []
def _stall(self, *a, **k):  # step 8 never ends: the parent kills the process there
    _calls.append(1)
    if len(_calls) > int(sys.argv[3]):
        time.sleep(600)
    return _orig(self, *a, **k)
sof_data.SOFScanDataset.sample_rays = _stall
train_sof(sys.argv[1], sys.argv[2], model_config=SOFConfig(**json.loads(sys.argv[4])),
          train_config=SOFTrainConfig(**json.loads(sys.argv[5])), resume=True, progress=False)
"""


@pytest.mark.slow
def test_resume_after_sigkill(scans, tmp_path):
    c = cfg(steps=12, checkpoint_every=3)
    run = tmp_path / "killed"
    script = tmp_path / "child.py"
    script.write_text(_CHILD)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    errors = tmp_path / "child.err"
    with open(errors, "w") as err:
        proc = subprocess.Popen([sys.executable, str(script), str(scans), str(run), "7",
                                 json.dumps(TINY.to_dict()), json.dumps(c.to_dict())], cwd=REPO, env=env, stderr=err)
    try:
        deadline = time.monotonic() + 120
        while not (run / "checkpoints" / "step_00000006").is_dir():
            assert proc.poll() is None, f"the child ended early: {errors.read_text()[-3000:]}"
            assert time.monotonic() < deadline, "no checkpoint at step 6 in time"
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert [s for s, _ in list_checkpoints(run / "checkpoints")] == [3, 6] and not (run / "model").exists()
    steps = [r["step"] for r in MetricsLogger.read(run / "metrics.jsonl") if r["event"] == "train"]
    assert steps in (list(range(1, 7)), list(range(1, 8))), steps  # step 7 (if done) is lost with the kill
    resumed = train_sof(scans, run, model_config=TINY, train_config=c, progress=False, resume=True)
    straight = train_sof(scans, tmp_path / "straight", model_config=TINY, train_config=c, progress=False)
    assert_identical(params(resumed.model), params(straight.model))
    steps = [r["step"] for r in MetricsLogger.read(run / "metrics.jsonl") if r["event"] == "train"]
    assert steps == list(range(1, 13)), steps


_DDP_WORKER = r"""
import json, os, sys
import torch
torch.set_num_threads(1)
from sofgan_lab.geometry import SOFConfig
from sofgan_lab.train import sof_data
from sofgan_lab.train.common import parameters_checksum
from sofgan_lab.train.sof_trainer import SOFTrainConfig, train_sof
seen = []
_orig = sof_data.SOFScanDataset.sample_rays
def _record(self, *a, **k):
    b = _orig(self, *a, **k)
    seen.append(b.pixels.tolist())
    return b
sof_data.SOFScanDataset.sample_rays = _record
r = train_sof(sys.argv[1], sys.argv[2], model_config=SOFConfig(**json.loads(sys.argv[3])),
              train_config=SOFTrainConfig(**json.loads(sys.argv[4])), progress=False)
rank = int(os.environ["RANK"])
with open(os.path.join(sys.argv[2], f"rank{rank}.json"), "w") as f:
    json.dump({"world_size": int(os.environ["WORLD_SIZE"]), "checksum": parameters_checksum(r.model),
               "latents": r.model.latents.weight.tolist(), "pixels": seen}, f)
"""


@pytest.mark.slow
def test_ddp_two_cpu_processes(scans, tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(_DDP_WORKER)
    run = tmp_path / "ddp"
    c = cfg(steps=2, checkpoint_every=1, lr=1e-2, warmup_steps=0)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    # --standalone: torchrun picks a free local port itself (no race between choosing and binding)
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           str(script), str(scans),
                           str(run), json.dumps(TINY.to_dict()), json.dumps(c.to_dict())],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-6000:]
    r0, r1 = (json.loads((run / f"rank{r}.json").read_text()) for r in (0, 1))
    assert r0["world_size"] == r1["world_size"] == 2
    assert r0["pixels"] != r1["pixels"], "both ranks sampled the same rays"
    assert r0["checksum"] == r1["checksum"], "the ranks' parameters diverged"
    torch.manual_seed(c.seed)
    init = SemanticOccupancyField(SOFConfig(**{**TINY.to_dict(), "num_instances": 2})).latents.weight
    assert not torch.allclose(torch.tensor(r0["latents"]), init), "the latent table was not trained"
    rng = load_file(str(run / "checkpoints" / "step_00000002" / "rng.safetensors"))
    assert not torch.equal(rng["generator/sampler/rank0"], rng["generator/sampler/rank1"])
    assert json.loads((run / "model" / "training.json").read_text())["world_size"] == 2


# ------------------------------------------------------------------------------------------
# CLI
# ------------------------------------------------------------------------------------------

TRAIN = ["--steps", "2", "--batch-views", "2", "--rays-per-view", "16", "--device", "cpu"]


def test_cli_train_and_eval(scans, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["-q", "train", "sof", str(scans), "--out", str(run), *TRAIN]) == 0
    out = json.loads(capsys.readouterr().out.strip())
    assert out["steps"] == 2 and Path(out["model"]) == run / "model" and "miou" in out
    training = json.loads((run / "model" / "training.json").read_text())
    assert training["model_config"]["latent_dim"] == SOFConfig.small().latent_dim
    assert training["train_config"]["steps"] == 2 and training["train_config"]["amp"] is False
    assert main(["-q", "train", "sof", str(scans), "--out", str(tmp_path / "amp"), *TRAIN, "--amp"]) == 0
    capsys.readouterr()
    assert json.loads((tmp_path / "amp" / "model" / "training.json").read_text())["train_config"]["amp"] is True

    assert main(["-q", "eval", "sof", str(run / "model"), "--data", str(scans)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1
    rep = json.loads(lines[0])
    assert rep["source"] == "data" and rep["instances"] == 2 and rep["views"] == 4 and rep["seen_in_training"] == 0
    assert set(rep["iou"]) >= {"background", "skin", "hair"} and 0.0 <= rep["miou"] <= 1.0
    assert 0.0 <= rep["pixel_accuracy"] <= 1.0

    # without --data: the synthetic training instances are rebuilt from the recorded seed
    assert main(["-q", "eval", "sof", str(run), "--heldout-views", "2", "--seed", "4", "--instances", "1"]) == 0
    rep = json.loads(capsys.readouterr().out.strip())
    assert rep["source"] == "synthetic" and rep["views"] == 2 and rep["instances"] == 1 and rep["seed"] == 4
    # framed as the training data was (the `scans` fixture is written at the default, portrait, framing)
    assert json.loads((scans / "index.json").read_text())["framing"] == "portrait" and rep["framing"] == "portrait"

    # --resume of a finished run does not train again; without --resume the run is protected
    assert main(["-q", "train", "sof", str(scans), "--out", str(run), *TRAIN, "--resume"]) == 0
    capsys.readouterr()
    assert main(["-q", "train", "sof", str(scans), "--out", str(run), *TRAIN]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("sofgan-lab: error: --out:") and "--resume" in err and "\n" not in err

    bad = [
        (["eval", "sof", str(tmp_path / "none")], "MODEL:"),
        (["eval", "sof", str(run), "--data", str(tmp_path / "none")], "--data:"),
        (["eval", "sof", str(run), "--data", str(scans), "--heldout-views", "0"], "--heldout-views:"),
        (["eval", "sof", str(run), "--data", str(scans), "--heldout-views", "4"], "--heldout-views:"),
        (["eval", "sof", str(run), "--instances", "9"], "--instances:"),
        (["eval", "sof", str(run), "--data", str(scans), "--framing", "official"], "--framing:"),
        (["train", "sof", str(tmp_path / "none"), "--out", str(tmp_path / "r2")], "DATA:"),
        (["train", "sof", str(scans), "--out", str(tmp_path / "r3"), "--steps", "0"], "--steps:"),
        (["train", "sof", str(scans), "--out", str(tmp_path / "r4"), "--lr", "-1"], "--lr:"),
        (["train", "sof", str(scans), "--out", str(tmp_path / "r5"), "--batch-views", "0"], "--batch-views:"),
    ]
    if not torch.cuda.is_available():
        bad.append((["train", "sof", str(scans), "--out", str(tmp_path / "r6"), "--device", "cuda"], "--device:"))
    for argv, flag in bad:
        assert main(["-q", *argv]) == 2, argv
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"sofgan-lab: error: {flag}"), (argv, err)
        assert "Traceback" not in err and "\n" not in err


def test_eval_sof_new_cameras_follow_the_training_framing(scans, monkeypatch, capsys):
    """The demo SOF was trained on portrait-framed scans ("framing": "portrait" in its data index):
    new cameras take that framing by default; ``framing="official"`` (--framing official) gives the
    release's look-at point and zoom."""
    from sofgan_lab import cameras
    from sofgan_lab.demo import demo_dir
    from sofgan_lab.train.sof_eval import evaluate_sof_model

    model = demo_dir("sof")
    assert json.loads((model / "training.json").read_text())["data_index"]["framing"] == "portrait"
    seen = []
    real = cameras.random_views

    def spy(*args, **kwargs):
        seen.append(real(*args, **kwargs))
        return seen[-1]

    monkeypatch.setattr(cameras, "random_views", spy)
    assert main(["-q", "eval", "sof", str(model), "--instances", "1", "--heldout-views", "1"]) == 0
    portrait = json.loads(capsys.readouterr().out.strip())
    assert portrait["framing"] == "portrait" and portrait["source"] == "synthetic" and portrait["views"] == 1
    official = evaluate_sof_model(model, instances=1, heldout_views=1, device="cpu", framing="official")
    assert official["framing"] == "official" and portrait["miou"] != official["miou"]
    b, a = seen
    ref = real(1, seed=0, image_size=128)                             # the official framing: from_orbit's defaults
    assert torch.equal(a.cam2world, ref.cam2world) and torch.equal(a.intrinsics, ref.intrinsics)
    assert float(a.focal[0, 0]) == 36.0
    assert float(b.focal[0, 0]) == pytest.approx(36.0 * cameras.PORTRAIT_ZOOM)
    torch.testing.assert_close(b.rotation, a.rotation)                # the same pose, another look-at point
    torch.testing.assert_close(b.position - a.position,
                               (torch.tensor(cameras.PORTRAIT_TARGET) - torch.tensor(cameras.DEFAULT_TARGET))[None])
    assert main(["-q", "eval", "sof", str(model), "--instances", "1", "--heldout-views", "1",
                 "--framing", "official"]) == 0
    cli = json.loads(capsys.readouterr().out.strip())
    assert cli["framing"] == "official" and cli["miou"] == pytest.approx(official["miou"])
    assert len(seen) == 3 and torch.equal(seen[2].intrinsics, a.intrinsics)
    with pytest.raises(ValueError, match="^framing: "):
        evaluate_sof_model(model, instances=1, heldout_views=1, device="cpu", framing="close")
    with pytest.raises(ValueError, match="^framing: only without data"):
        evaluate_sof_model(model, data=scans, instances=1, heldout_views=1, device="cpu", framing="official")
    assert len(seen) == 3                                             # refused before rendering
    with pytest.raises(SystemExit) as e:
        main(["-q", "eval", "sof", str(model), "--framing", "close"])
    assert e.value.code == 2 and "--framing" in capsys.readouterr().err.strip().splitlines()[-1]


def test_cli_eval_without_recorded_seed(scans, tmp_path, capsys):
    run = tmp_path / "run"
    train_sof(scans, run, model_config=TINY, train_config=cfg(steps=1, warmup_steps=0), progress=False)
    (run / "model" / "training.json").unlink()
    assert main(["-q", "eval", "sof", str(run)]) == 2
    assert capsys.readouterr().err.startswith("sofgan-lab: error: --data:")
    assert main(["-q", "eval", "sof", str(run), "--data", str(scans), "--heldout-views", "1"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["seen_in_training"] is None and rep["views"] == 2


@pytest.mark.gpu
def test_amp_on_cuda(scans, tmp_path):
    r = train_sof(scans, tmp_path / "gpu", model_config=TINY, progress=False,
                  train_config=cfg(steps=4, device="cuda", amp=True))
    assert r.finished and next(r.model.parameters()).is_cuda
    assert all(math.isfinite(x["loss"]) for x in MetricsLogger.read(tmp_path / "gpu" / "metrics.jsonl")
               if x["event"] == "train")


def test_init_from_a_saved_model_starts_from_its_weights(scans, tmp_path):
    first = train_sof(scans, tmp_path / "a", model_config=TINY, train_config=cfg(steps=3), progress=False)
    base = params(first.model)
    tiny_lr = cfg(steps=1, lr=1e-12, warmup_steps=0, checkpoint_every=0)
    tuned = train_sof(scans, tmp_path / "b", model_config=TINY, train_config=tiny_lr, progress=False,
                      init_from=first.model_dir)
    after = params(tuned.model)
    worst = max(float((after[k] - base[k]).abs().max()) for k in base)
    assert worst < 1e-6, worst
    fresh = train_sof(scans, tmp_path / "c", model_config=TINY, train_config=tiny_lr, progress=False)
    assert max(float((params(fresh.model)[k] - base[k]).abs().max()) for k in base) > 1e-3
    record = json.loads((tmp_path / "b" / "run.json").read_text())
    assert record["init_from"] == str(first.model_dir.resolve())


def test_init_from_a_model_of_another_size_is_refused(scans, tmp_path):
    first = train_sof(scans, tmp_path / "a", model_config=TINY, train_config=cfg(steps=2), progress=False)
    other = SOFConfig(**{**TINY.to_dict(), "phi_dim": 8})
    with pytest.raises(ValueError, match="init_from"):
        train_sof(scans, tmp_path / "b", model_config=other, train_config=cfg(steps=2), progress=False,
                  init_from=first.model_dir)
