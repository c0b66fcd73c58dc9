"""The ``sofgan-lab`` command on bad input (issue 20 items 5, 6, 7, 11, 12, 14): a one-line error
naming the file or the flag and a non-zero exit, never a traceback; arguments checked before work."""
from __future__ import annotations

import json
import shutil

import pytest

from sofgan_lab.cli import main

from _bad_images import KINDS, break_image
from _tiny import tiny_pipeline

pytestmark = pytest.mark.usefixtures("one_thread")


def _run(capsys, *argv):
    rc = main(["-q", *map(str, argv)])
    out, err = capsys.readouterr()
    return rc, out, err


def _one_line_error(rc, err, *needles):
    assert rc == 2, err
    assert err.startswith("sofgan-lab: error: ") and err.count("\n") == 1, err
    for n in needles:
        assert str(n) in err, (n, err)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return tiny_pipeline().save_pretrained(tmp_path_factory.mktemp("cli") / "pipe")


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    from sofgan_lab.synthetic.writers import write_photos

    return write_photos(tmp_path_factory.mktemp("ph") / "photos", count=2, size=32, seed=0, with_segmaps=True,
                        workers=1, progress=False)


@pytest.fixture(scope="module")
def scans(tmp_path_factory):
    from sofgan_lab.synthetic.writers import write_scans

    return write_scans(tmp_path_factory.mktemp("sc") / "scans", instances=2, views=2, size=16, seed=0, workers=1,
                       progress=False)


# ------------------------------------------------------------------ item 5: broken image files
COMMANDS = {
    "train sof": ("scans", "0000", lambda d, run: ["train", "sof", d, "--out", run, "--steps", 1, "--holdout-views", 1,
                                                   "--device", "cpu"]),
    "train siw": ("photos", "images", lambda d, run: ["train", "siw", d, d, "--out", run, "--size", 32, "--steps", 1,
                                                      "--device", "cpu"]),
    "eval siw": ("photos", "segmaps", lambda d, run: ["eval", "siw", "demo", "--segmaps", d, "--device", "cpu"]),
    "train parser": ("photos", "images", lambda d, run: ["train", "parser", d, "--out", run, "--steps", 1,
                                                         "--device", "cpu"]),
    "eval parser": ("photos", "images", lambda d, run: ["eval", "parser", "demo", "--data", d, "--device", "cpu"]),
}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("command", list(COMMANDS))
def test_broken_image_files_are_named(request, tmp_path, capsys, command, kind):
    data, sub, argv = COMMANDS[command]
    d = shutil.copytree(request.getfixturevalue(data), tmp_path / data)
    bad = break_image(sorted(p for p in (d / sub).rglob("*.png") if "_vis" not in p.name)[-1], kind)
    rc, _, err = _run(capsys, *argv(d, tmp_path / "run"))
    _one_line_error(rc, err, bad, "cannot be read as an image")


# ------------------------------------------------------------------ item 6: OUT under a file
def test_outputs_under_an_existing_file(model_dir, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    rc, _, err = _run(capsys, "generate", "--model", model_dir, "--out", blocker / "a.png", "--device", "cpu")
    _one_line_error(rc, err, "--out: ", blocker / "a.png", "is a file, not a folder")
    rc, _, err = _run(capsys, "generate", "--model", model_dir, "--out", tmp_path / "a.png",
                      "--segmap", blocker / "s.png", "--device", "cpu")
    _one_line_error(rc, err, "--segmap: ", "is a file, not a folder")
    assert not (tmp_path / "a.png").exists()  # nothing rendered or written before the check
    rc, _, err = _run(capsys, "video", "--model", model_dir, "--out", blocker / "v.gif", "--frames", 2,
                      "--device", "cpu")
    _one_line_error(rc, err, "--out: ", "is a file, not a folder")
    rc, _, err = _run(capsys, "synth", "scans", blocker / "scans", "--instances", 1, "--views", 1, "--size", 8)
    _one_line_error(rc, err, "OUT: ", "is a file, not a folder")


# ------------------------------------------------------------------ item 7: tampered JSON through the CLI
@pytest.mark.parametrize("text, needle", [("null", "got null"), ('{"format": "sofgan-lab/pipeline", '
                                                                  '"components": ["sof"]}', "'components'")])
def test_tampered_pipeline_json(model_dir, tmp_path, capsys, text, needle):
    d = shutil.copytree(model_dir, tmp_path / "pipe")
    (d / "pipeline.json").write_text(text)
    rc, _, err = _run(capsys, "generate", "--model", d, "--out", tmp_path / "a.png", "--device", "cpu")
    _one_line_error(rc, err, "--model: ", d / "pipeline.json", needle)


def test_run_json_that_is_not_json(photos, tmp_path, capsys):
    run = tmp_path / "run"
    rc, _, err = _run(capsys, "train", "parser", photos, "--out", run, "--steps", 1, "--device", "cpu")
    assert rc == 0, err
    (run / "run.json").write_text("{not json")
    rc, _, err = _run(capsys, "train", "parser", photos, "--out", run, "--steps", 2, "--resume", "--device", "cpu")
    _one_line_error(rc, err, "--out: ", run / "run.json", "not valid JSON")


# ------------------------------------------------------------------ item 11: partial trees of killed runs
def test_data_standin_cleans_a_killed_runs_partial(tmp_path, capsys):
    stale = tmp_path / ".standin.partial-killed"
    (stale / "images").mkdir(parents=True)
    rc, out, err = _run(capsys, "data", "standin", "ffhq", tmp_path / "standin", "--count", 1, "--size", 16,
                        "--workers", 1)
    assert rc == 0, err
    assert not stale.exists() and [p.name for p in tmp_path.iterdir()] == ["standin"]


# ------------------------------------------------------------------ item 12: device errors are not the model's
def test_device_errors_name_the_device_not_the_model(model_dir, tmp_path, capsys, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    rc, _, err = _run(capsys, "generate", "--model", model_dir, "--out", tmp_path / "a.png", "--device", "cuda")
    _one_line_error(rc, err, "--device: ", "CUDA is not available")
    assert "--model" not in err


def test_model_errors_keep_the_path(model_dir, tmp_path, capsys):
    d = shutil.copytree(model_dir, tmp_path / "pipe")
    cfg = d / "sof" / "config.json"
    meta = json.loads(cfg.read_text())
    meta["kind"] = "parser"
    cfg.write_text(json.dumps(meta))
    rc, _, err = _run(capsys, "generate", "--model", d, "--out", tmp_path / "a.png", "--device", "cpu")
    _one_line_error(rc, err, f"--model: {cfg}: holds a 'parser' model")


# ------------------------------------------------------------------ item 14: arguments first
@pytest.mark.parametrize("fps", ["inf", "-inf", "nan", "0"])
def test_video_fps_is_refused_before_any_frame(model_dir, tmp_path, capsys, monkeypatch, fps):
    from sofgan_lab.applications import video

    calls = []
    real = video.free_view
    monkeypatch.setattr(video, "free_view", lambda *a, **k: calls.append(1) or real(*a, **k))
    rc, _, err = _run(capsys, "video", "--model", model_dir, "--out", tmp_path / "v.gif", "--frames", 2,
                      f"--fps={fps}", "--device", "cpu")
    _one_line_error(rc, err, "--fps: ")
    assert calls == [] and not (tmp_path / "v.gif").exists()


# ------------------------------------------------------------------ the CLI package (issue 19 item 4)
def test_version_and_help_do_not_import_torch():
    """The trainers' flags come from their configs (modules that import torch) only when a train
    command is parsed; ``--help`` stays fast."""
    import subprocess
    import sys

    code = ("import sys, contextlib, io\nfrom sofgan_lab.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    try:\n        main(['--help'])\n    except SystemExit:\n        pass\n"
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_train_flags_follow_the_configs():
    """Each trainer flag's default in the help is its config field's; a given flag overrides that field."""
    import dataclasses

    from sofgan_lab.cli import build_parser
    from sofgan_lab.cli._common import overrides
    from sofgan_lab.train.parser_trainer import ParserTrainConfig
    from sofgan_lab.train.siw_trainer import SIWTrainConfig
    from sofgan_lab.train.sof_trainer import SOFTrainConfig

    p = build_parser()
    args = p.parse_args(["train", "sof", "D", "--out", "R", "--steps", "7", "--latent-lr-scale", "2.5"])
    assert overrides(args) == {"steps": 7, "latent_lr_scale": 2.5}
    args = p.parse_args(["train", "parser", "P", "--out", "R", "--batch", "3"])
    assert overrides(args) == {"batch_size": 3}
    args = p.parse_args(["train", "siw", "I", "S", "--out", "R", "--r1-gamma", "0", "--region-mode", "fast"])
    assert overrides(args) == {"r1_gamma": 0.0, "region_mode": "fast"}
    for cls, argv in ((SOFTrainConfig, ["train", "sof", "-h"]), (ParserTrainConfig, ["train", "parser", "-h"]),
                      (SIWTrainConfig, ["train", "siw", "-h"])):
        sub = p._subparsers._group_actions[0].choices["train"]._subparsers._group_actions[0].choices[argv[1]]
        fields = {f.name: f.default for f in dataclasses.fields(cls)}
        for action in sub._actions:
            field = sub.get_default("_fields").get(action.dest)
            if field is not None and "(default " in (action.help or "") and isinstance(fields[field], int):
                assert f"default {fields[field]}" in action.help, (argv, action.help)
