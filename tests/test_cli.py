"""Tests for the ``sofgan-lab`` command (``sofgan_lab.cli``): layouts, determinism, errors.

Most runs are in-process through ``sofgan_lab.cli.main([...])`` (fast); a few go through a real
subprocess (``python -m sofgan_lab.cli``) to check the exit status and stderr as a shell sees them.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sofgan_lab import __version__
from sofgan_lab import labels as L
from sofgan_lab.cli import build_parser, main

REPO = Path(__file__).resolve().parents[1]


def run_cli(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sofgan_lab.cli", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout)


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


SMALL = ["--instances", "2", "--views", "2", "--size", "24", "--workers", "1"]


def scans(out: Path, *extra: str) -> list[str]:
    return ["-q", "synth", "scans", str(out), *SMALL, *extra]


# ------------------------------------------------------------------------------------------
# synth scans
# ------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_synth_scans_subprocess_writes_the_layout(tmp_path):
    out = tmp_path / "ds"
    # default --workers (a process pool) through a real shell-like invocation
    proc = run_cli("-q", "synth", "scans", str(out), "--instances", "3", "--views", "2", "--size", "24",
                   "--seed", "1")
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    index = json.loads((out / "index.json").read_text())
    assert (index["instances"], index["views"], index["size"], index["seed"]) == (3, 2, 24, 1)
    assert index["names"] == ["0000", "0001", "0002"]
    for name in index["names"]:
        d = out / name
        assert {p.name for p in d.iterdir()} == {"seg_00.png", "seg_01.png", "seg_vis_00.png", "seg_vis_01.png",
                                                 "cam2world.npy", "intrinsic.npy", "attributes.json"}
        assert np.load(d / "cam2world.npy").shape == (2, 4, 4)
        assert Image.open(d / "seg_00.png").mode == "L"
    # the same as the library call in-process with one worker
    again = tmp_path / "again"
    assert main(["-q", "synth", "scans", str(again), "--instances", "3", "--views", "2", "--size", "24",
                 "--seed", "1", "--workers", "1"]) == 0
    assert tree_bytes(out) == tree_bytes(again)


def test_synth_scans_in_process_layout_and_determinism(tmp_path, capsys):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    assert main(scans(a, "--seed", "3")) == 0
    assert main(scans(b, "--seed", "3")) == 0
    assert main(scans(c, "--seed", "4")) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""  # -q: no bars, no messages
    ta, tb, tc = tree_bytes(a), tree_bytes(b), tree_bytes(c)
    assert ta == tb, "same seed, different bytes"
    assert set(ta) == set(tc) and ta != tc
    index = json.loads((a / "index.json").read_text())
    assert index["seed"] == 3 and index["camera"] == "orthographic" and index["supersample"] == 1
    lab = np.asarray(Image.open(a / "0001" / "seg_01.png"))
    assert lab.shape == (24, 24) and lab.max() < L.NUM_SOF_CLASSES
    assert np.array_equal(L.decolorize(np.asarray(Image.open(a / "0001" / "seg_vis_01.png"))), lab)


def test_overwrite_flag(tmp_path, capsys):
    out = tmp_path / "ds"
    out.mkdir()
    (out / "old.txt").write_text("old")
    assert main(scans(out)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("sofgan-lab: error: OUT:") and "--overwrite" in err
    assert [p.name for p in out.iterdir()] == ["old.txt"], "a refused run touched OUT"
    assert main(scans(out, "--overwrite")) == 0
    assert not (out / "old.txt").exists() and (out / "index.json").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["ds"], "temporary folders left behind"


def test_camera_and_supersample_flags(tmp_path):
    out = tmp_path / "p"
    assert main(scans(out, "--camera", "perspective", "--supersample", "2")) == 0
    index = json.loads((out / "index.json").read_text())
    assert index["camera"] == "perspective" and index["supersample"] == 2


def test_framing_flag(tmp_path):
    from sofgan_lab.cameras import DEFAULT_TARGET, PORTRAIT_TARGET, PORTRAIT_ZOOM

    one = ["--instances", "1", "--views", "1", "--size", "16", "--workers", "1"]
    official, portrait = tmp_path / "official", tmp_path / "portrait"
    assert main(["-q", "synth", "scans", str(official), *one, "--framing", "official"]) == 0
    assert main(["-q", "synth", "scans", str(portrait), *one]) == 0                 # the default
    assert json.loads((official / "index.json").read_text())["framing"] == "official"
    assert json.loads((portrait / "index.json").read_text())["framing"] == "portrait"
    k_o, k_p = np.load(official / "0000" / "intrinsic.npy"), np.load(portrait / "0000" / "intrinsic.npy")
    assert k_o[0, 0, 0] == k_o[0, 1, 1] == np.float32(36.0 * 16 / 128)            # the release's scale
    np.testing.assert_allclose(k_p[0, [0, 1], [0, 1]], 36.0 * 16 / 128 * PORTRAIT_ZOOM, rtol=1e-6)
    # the same pose looking at another point: rotation equal, position moved by the target shift
    c_o, c_p = np.load(official / "0000" / "cam2world.npy"), np.load(portrait / "0000" / "cam2world.npy")
    np.testing.assert_allclose(c_p[0, :3, :3], c_o[0, :3, :3], atol=1e-6)
    np.testing.assert_allclose(c_p[0, :3, 3] - c_o[0, :3, 3], np.subtract(PORTRAIT_TARGET, DEFAULT_TARGET), atol=1e-5)
    photos = tmp_path / "photos"
    assert main(["-q", "synth", "photos", str(photos), "--count", "1", "--size", "16", "--workers", "1",
                 "--framing", "official"]) == 0
    assert json.loads((photos / "index.json").read_text())["framing"] == "official"


# ------------------------------------------------------------------------------------------
# errors: exit 2, one line naming the flag, no traceback
# ------------------------------------------------------------------------------------------

_LIB_ERRORS = [
    (["synth", "scans", "{out}", "--size", "0"], "--size"),
    (["synth", "scans", "{out}", "--size", "5000"], "--size"),
    (["synth", "scans", "{out}", "--instances", "0"], "--instances"),
    (["synth", "scans", "{out}", "--views", "0"], "--views"),
    (["synth", "scans", "{out}", "--seed", "-1"], "--seed"),
    (["synth", "scans", "{out}", "--supersample", "9"], "--supersample"),
    (["synth", "scans", "{out}", "--workers", "0"], "--workers"),
    (["synth", "photos", "{out}", "--count", "0"], "--count"),
    (["synth", "photos", "{out}", "--count", "1", "--size", "-3"], "--size"),
    (["demo", "{out}", "--count", "0"], "--count"),
]


@pytest.mark.parametrize("argv,flag", _LIB_ERRORS, ids=[" ".join(a[:2] + a[3:]) for a, _ in _LIB_ERRORS])
def test_bad_values_exit_2_with_one_line_naming_the_flag(tmp_path, capsys, argv, flag):
    out = tmp_path / "out"
    code = main([a.format(out=out) for a in argv])
    captured = capsys.readouterr()
    assert code == 2
    lines = captured.err.splitlines()
    assert len(lines) == 1, f"expected one line, got {captured.err!r}"
    assert lines[0].startswith(f"sofgan-lab: error: {flag}:"), lines[0]
    assert "Traceback" not in captured.err and captured.out == ""
    assert not out.exists() and list(tmp_path.iterdir()) == []


_PARSE_ERRORS = [
    (["synth", "scans", "{out}", "--size", "abc"], "--size"),
    (["synth", "scans", "{out}", "--seed", "1.5"], "--seed"),
    (["synth", "scans", "{out}", "--instances", "ten"], "--instances"),
    (["synth", "scans", "{out}", "--camera", "fisheye"], "--camera"),
    (["synth", "scans", "{out}", "--framing", "close"], "--framing"),
    (["synth", "photos", "{out}", "--count", "1", "--framing", "Portrait"], "--framing"),
    (["synth", "photos", "{out}"], "--count"),
]


@pytest.mark.parametrize("argv,flag", _PARSE_ERRORS, ids=[" ".join(a[:2] + a[3:]) for a, _ in _PARSE_ERRORS])
def test_unparsable_arguments_exit_2_naming_the_flag(tmp_path, capsys, argv, flag):
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as e:
        main([a.format(out=out) for a in argv])
    assert e.value.code == 2
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]  # argparse: usage, then the one-line error
    assert "error:" in last and flag in last, err
    assert "Traceback" not in err
    assert not out.exists()


def test_errors_through_a_real_process(tmp_path):
    out = tmp_path / "out"
    proc = run_cli("synth", "scans", str(out), "--size", "0")
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [proc.stderr.strip()] and proc.stderr.startswith("sofgan-lab: error: --size:")
    assert "Traceback" not in proc.stderr and not out.exists()
    proc = run_cli("synth", "scans", str(out), "--size", "12x")
    assert proc.returncode == 2 and "--size" in proc.stderr.splitlines()[-1]
    assert "Traceback" not in proc.stderr
    out.mkdir()
    (out / "x").write_text("x")
    proc = run_cli("synth", "scans", str(out), "--instances", "1", "--views", "1", "--size", "8")
    assert proc.returncode == 2 and "OUT" in proc.stderr and "Traceback" not in proc.stderr
    assert [p.name for p in out.iterdir()] == ["x"]


# ------------------------------------------------------------------------------------------
# synth photos, demo, --version
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("segmaps", [True, False])
def test_synth_photos_layout(tmp_path, segmaps):
    out = tmp_path / "ph"
    argv = ["-q", "synth", "photos", str(out), "--count", "2", "--size", "24", "--workers", "1"]
    assert main(argv + (["--with-segmaps"] if segmaps else [])) == 0
    expected = {"images", "index.json", "metadata.jsonl"} | ({"segmaps", "segmaps_vis"} if segmaps else set())
    assert {p.name for p in out.iterdir()} == expected
    names = ["00000.png", "00001.png"]
    assert sorted(p.name for p in (out / "images").iterdir()) == names
    if segmaps:
        assert sorted(p.name for p in (out / "segmaps").iterdir()) == names
        assert sorted(p.name for p in (out / "segmaps_vis").iterdir()) == names
    assert Image.open(out / "images" / "00000.png").mode == "RGB"
    assert len((out / "metadata.jsonl").read_text().splitlines()) == 2
    assert json.loads((out / "index.json").read_text())["with_segmaps"] is segmaps


def test_demo_writes_images_and_a_contact_sheet(tmp_path):
    out = tmp_path / "demo"
    assert main(["-q", "demo", str(out), "--count", "3", "--size", "24", "--source", "synthetic"]) == 0
    assert sorted(p.name for p in (out / "images").iterdir()) == ["00000.png", "00001.png", "00002.png"]
    sheet = Image.open(out / "contact_sheet.png")
    # two rows (segmaps, photos) of three tiles
    assert sheet.mode == "RGB" and sheet.size == (3 * 24, 2 * 24)
    arr = np.asarray(sheet)
    assert np.array_equal(arr[24:, :24], np.asarray(Image.open(out / "images" / "00000.png")))
    assert np.array_equal(arr[:24, 48:], np.asarray(Image.open(out / "segmaps_vis" / "00002.png")))


def test_demo_replaces_a_previous_demo_but_not_other_folders(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["-q", "demo", str(out), "--count", "2", "--size", "16", "--source", "synthetic"]) == 0
    assert main(["-q", "demo", str(out), "--count", "1", "--size", "16", "--source", "synthetic"]) == 0  # replaced
    assert sorted(p.name for p in (out / "images").iterdir()) == ["00000.png"]
    other = tmp_path / "notes"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    capsys.readouterr()
    assert main(["-q", "demo", str(other), "--count", "1", "--size", "16", "--source", "synthetic"]) == 2
    err = capsys.readouterr().err
    assert "OUT" in err and "--overwrite" in err and "Traceback" not in err
    assert (other / "keep.txt").read_text() == "mine"
    assert main(["-q", "demo", str(other), "--count", "1", "--size", "16", "--overwrite", "--source", "synthetic"]) == 0
    assert not (other / "keep.txt").exists()


@pytest.mark.parametrize("workers", ["0", "-2"])
def test_bad_workers_exit_2_naming_the_flag(tmp_path, capsys, workers):
    assert main(["-q", "synth", "scans", str(tmp_path / "o"), "--instances", "1", "--views", "1",
                 "--size", "8", "--workers", workers]) == 2
    err = capsys.readouterr().err
    assert "--workers" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out.strip() == f"sofgan-lab {__version__}"
    proc = run_cli("--version")
    assert proc.returncode == 0 and proc.stdout.strip() == f"sofgan-lab {__version__}"


def test_parser_defaults_match_the_paper_set():
    args = build_parser().parse_args(["synth", "scans", "x"])
    assert (args.instances, args.views, args.size, args.seed, args.camera) == (122, 64, 128, 0, "orthographic")
    assert args.workers is None and not args.overwrite
