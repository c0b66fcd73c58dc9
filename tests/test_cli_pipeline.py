"""``sofgan-lab generate`` and ``sofgan-lab video`` on a small saved pipeline (demo SOF + a tiny
random SIW generator), and their errors."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from sofgan_lab.cli import main
from sofgan_lab.pipeline import SofGAN
from _tiny import tiny_pipeline  # tests/_tiny.py

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return tiny_pipeline().save_pretrained(tmp_path_factory.mktemp("cli") / "pipe")


def _run(capsys, *argv):
    rc = main(["-q", *map(str, argv)])
    out, err = capsys.readouterr()
    return rc, out, err


def test_generate_writes_the_pipelines_portrait(model_dir, tmp_path, capsys):
    out, seg = tmp_path / "a.png", tmp_path / "seg.png"
    rc, stdout, _ = _run(capsys, "generate", "--model", model_dir, "--geometry-seed", 1, "--texture-seed", 2,
                         "--yaw", 20, "--out", out, "--segmap", seg, "--device", "cpu")
    assert rc == 0
    rec = json.loads(stdout)
    assert rec["out"] == str(out) and rec["camera"] == {"yaw": 20.0} and rec["size"] == [32, 32]
    p = SofGAN.from_pretrained(model_dir)(geometry=1, texture=2, camera={"yaw": 20})
    assert np.array_equal(np.asarray(Image.open(out)), p.array)
    assert np.array_equal(np.asarray(Image.open(seg)), np.asarray(p.segmap_image()))


def test_generate_region_mix(model_dir, tmp_path, capsys):
    out = tmp_path / "mix.png"
    rc, stdout, _ = _run(capsys, "generate", "--model", model_dir, "--geometry-seed", 1, "--texture-seed", 2,
                         "--texture-seed-b", 7, "--region", "hair=1", "--region", "wearings=0.5", "--out", out,
                         "--device", "cpu")
    assert rc == 0 and json.loads(stdout)["region_mix"] == {"hair": 1.0, "wearings": 0.5}
    p = SofGAN.from_pretrained(model_dir)(geometry=1, texture=(2, 7), region_mix={"hair": 1, "wearings": 0.5})
    assert np.array_equal(np.asarray(Image.open(out)), p.array)


@pytest.mark.parametrize("args, message", [
    (["--model", "nowhere", "--out", "x.png"], "--model: 'nowhere' is not a folder"),
    (["--out", "x.gif"], "--out: expected a .png or .jpg"),
    (["--region", "hair", "--texture-seed-b", "3", "--out", "x.png"], "--region: expected GROUP=P"),
    (["--region", "hair=1", "--out", "x.png"], "--region: needs a second style"),
    (["--texture-seed-b", "3", "--out", "x.png"], "--texture-seed-b: give the regions"),
    (["--region", "beard=1", "--texture-seed-b", "3", "--out", "x.png"], "--region: unknown style group 'beard'"),
    (["--region", "hair=2", "--texture-seed-b", "3", "--out", "x.png"], r"--region: values must lie in \[0, 1\]"),
    (["--truncation", "3", "--out", "x.png"], r"--truncation: expected a number in \[0, 1\]"),
    (["--yaw", "nan", "--out", "x.png"], "--yaw"),
])
def test_generate_errors_name_the_flag(model_dir, tmp_path, capsys, monkeypatch, args, message):
    import re

    monkeypatch.chdir(tmp_path)
    argv = [a if a != "MODEL" else str(model_dir) for a in args]
    if "--model" not in argv:
        argv = ["--model", str(model_dir), *argv]
    rc, _, err = _run(capsys, "generate", "--device", "cpu", *argv)
    assert rc == 2 and re.search(message, err), err
    assert not (tmp_path / "x.png").exists()


def test_video_writes_mp4_and_gif(model_dir, tmp_path, capsys):
    import imageio.v3 as iio

    from sofgan_lab.applications.video import free_view

    gif = tmp_path / "v.gif"
    rc, stdout, _ = _run(capsys, "video", "--model", model_dir, "--path", "spiral", "--frames", 4, "--fps", 8,
                         "--geometry-seed", 1, "--texture-seed", 2, "--out", gif, "--device", "cpu")
    assert rc == 0 and json.loads(stdout)["frames"] == 4
    frames = iio.imread(gif, index=None)
    expected = free_view(SofGAN.from_pretrained(model_dir), 1, 2, path="spiral", frames=4)
    assert frames.shape[:3] == (4, 32, 32)
    err = np.abs(frames[..., :3].astype(float) - expected.images).mean(axis=(1, 2, 3))
    assert (err < 8).all()           # a GIF is palette-quantised (frame content: test_applications_video.py)
    mp4 = tmp_path / "v.mp4"
    rc, _, _ = _run(capsys, "video", "--model", model_dir, "--frames", 3, "--out", mp4, "--device", "cpu")
    assert rc == 0 and mp4.stat().st_size > 1000 and mp4.read_bytes()[4:8] == b"ftyp"


@pytest.mark.parametrize("args, message", [
    (["--frames", "1", "--out", "v.mp4"], "--frames: expected at least 2"),
    (["--fps", "0", "--out", "v.mp4"], "--fps: expected a positive number"),
    (["--out", "v.avi"], "--out: expected a .mp4 or .gif"),
    (["--truncation", "-1", "--out", "v.gif"], "--truncation"),
])
def test_video_errors_name_the_flag(model_dir, tmp_path, capsys, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    rc, _, err = _run(capsys, "video", "--model", str(model_dir), "--device", "cpu", *args)
    assert rc == 2 and message in err, err
    assert not list(tmp_path.iterdir())


def test_eval_metrics_prints_the_table_and_writes_csv(model_dir, tmp_path, capsys):
    from sofgan_lab.synthetic.writers import write_photos

    real = write_photos(tmp_path / "real", count=6, size=32, seed=1, workers=1, progress=False)
    csv = tmp_path / "t.csv"
    with pytest.warns(UserWarning, match="covariance is singular"):   # 3 samples, 336 feature dims
        rc, stdout, err = _run(capsys, "eval", "metrics", "--model", model_dir, "--metrics", "diversity,ssg,fid",
                               "--n", 3, "--untrained-backbone", "--extractor", "parser", "--real", real,
                               "--csv", csv, "--device", "cpu")
    assert rc == 0, err
    lines = stdout.splitlines()
    assert lines[0].startswith("| Model") and "LPIPS (alex)" in lines[0] and "FID" in lines[0]
    assert lines[2].startswith(f"| {model_dir.name}") and "†" in lines[2]
    assert any("not comparable to the paper" in x for x in lines)
    rows = csv.read_text().splitlines()
    assert rows[0].startswith("Model,") and rows[1].startswith(model_dir.name)


@pytest.mark.parametrize("args, message", [
    (["--metrics", "beauty"], "--metrics: unknown metric(s) ['beauty']"),
    (["--metrics", "fid"], "--real: fid needs a folder"),
    (["--n", "1"], "--n: expected at least 2"),
    (["--csv", "t.txt"], "--csv: expected a .csv"),
])
def test_eval_metrics_errors(model_dir, tmp_path, capsys, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    rc, _, err = _run(capsys, "eval", "metrics", "--model", str(model_dir), "--device", "cpu", *args)
    assert rc == 2 and message in err, err


def test_demo_command_uses_the_demo_pipeline_when_present(model_dir, tmp_path, capsys, monkeypatch):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(model_dir, data / "demo")          # a saved pipeline has the demo's layout
    monkeypatch.setenv("SOFGAN_LAB_DATA", str(data))
    out = tmp_path / "out"
    rc, _, err = _run(capsys, "demo", out, "--count", 3, "--size", 32, "--seed", 4)
    assert rc == 0, err
    index = json.loads((out / "index.json").read_text())
    assert index["format"] == "sofgan-lab/demo-portraits" and index["geometry_seeds"] == [4, 5, 6]
    # the command renders its portraits as one batch (seeds 4, 5, 6): the same batch here, so float
    # rounding in batched convolutions cannot move a pixel
    expected = SofGAN.from_pretrained(data / "demo")(geometry=[4, 5, 6], texture=[4, 5, 6])[1]
    assert np.array_equal(np.asarray(Image.open(out / "images" / "00001.png")), expected.array)
    assert np.array_equal(np.asarray(Image.open(out / "segmaps" / "00001.png")), expected.segmap)
    sheet = np.asarray(Image.open(out / "contact_sheet.png"))
    assert sheet.shape == (64, 96, 3) and np.array_equal(sheet[32:, 32:64], expected.array)
    # a second run replaces the previous demo; the synthetic source is still available
    rc, _, _ = _run(capsys, "demo", out, "--count", 1, "--size", 32, "--source", "synthetic")
    assert rc == 0 and sorted(p.name for p in (out / "images").iterdir()) == ["00000.png"]


def test_demo_command_without_the_demo_texture_model(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SOFGAN_LAB_DATA", str(tmp_path / "empty"))
    rc, _, err = _run(capsys, "demo", tmp_path / "out", "--count", 1, "--size", 16, "--source", "pipeline")
    assert rc == 2 and "--source:" in err and "demo model" in err
    rc, _, err = _run(capsys, "demo", tmp_path / "out2", "--count", 1, "--size", 16)   # auto: synthetic photos
    assert rc == 0 and (tmp_path / "out2" / "contact_sheet.png").is_file()
