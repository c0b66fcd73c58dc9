"""Tests for ``sofgan_lab.datasets`` (CelebAMask-HQ masks -> segmap folders, FFHQ's nested layout,
resized image folders, the offline stand-ins) and the ``sofgan-lab data`` command.

The round trips start from the synthetic world's exact SOF-20 maps: stand-in (SOF-20 -> CelebAMask-19
part masks, nose halves merged) -> ``build_segmap_folder`` -> ``SegmapFolder``. Every pixel off the
nose must come back exactly. The nose is split again by ``celebamask_to_sof``'s median-column rule,
which matches the synthetic split (the head's 3D median plane) only in frontal views: there the
agreement on nose pixels is 1.0; with the stand-in's default ±15° yaw, ±5° pitch it was 0.22-1.0 per
image (0.49 on average over six 128² images), so for turned views we only check that the nose stays
a nose.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sofgan_lab import labels as L
from sofgan_lab.cli import main
from sofgan_lab.datasets import (CELEBAMASK_PARTS, SOF20_TO_CELEBAMASK19, STANDIN_MARKER, StreamingImageFolder,
                                 build_image_folder, build_segmap_folder, celebamask_indices, celebamask_mask_path,
                                 compose_masks, ffhq_images, make_celebamask_standin, make_ffhq_standin,
                                 read_celebamask_labels, sof_to_celebamask, source_images)
from sofgan_lab.train.siw_data import ImageFolder, SegmapFolder, list_images

pytestmark = pytest.mark.usefixtures("one_thread")

SIZE = 64
STRIDE = 1500  # indices 0, 1500, 3000, 4500: mask folders 0, 0, 1, 2
NOSE = (L.SOF.R_NOSE, L.SOF.L_NOSE)


@pytest.fixture(scope="module")
def frontal(tmp_path_factory) -> Path:
    """4 exactly frontal stand-in images, masks 64², photos 96², with their SOF-20 source maps."""
    return make_celebamask_standin(tmp_path_factory.mktemp("cm") / "CelebAMask-HQ", 4, size=SIZE, image_size=96,
                                   stride=STRIDE, yaw_range=(0, 0), pitch_range=(0, 0), keep_source=True,
                                   workers=1, progress=False)


@pytest.fixture(scope="module")
def turned(tmp_path_factory) -> Path:
    """4 stand-in images with the default views (yaw ±15°, pitch ±5°)."""
    return make_celebamask_standin(tmp_path_factory.mktemp("cmt") / "cm", 4, size=SIZE, seed=3, keep_source=True,
                                   workers=1, progress=False)


def source_maps(root: Path) -> dict[int, np.ndarray]:
    return {int(p.stem): np.asarray(Image.open(p)) for p in sorted((root / "source" / "segmaps").glob("*.png"))}


def read_folder(out: Path) -> dict[int, np.ndarray]:
    return {int(p.stem): np.asarray(Image.open(p)) for p in sorted((out / "segmaps").glob("*.png"))}


# ------------------------------------------------------------------------------------------
# label conversion and composition
# ------------------------------------------------------------------------------------------

def test_sof_to_celebamask_table():
    for sof_id, cm_id in enumerate(SOF20_TO_CELEBAMASK19.tolist()):
        sof_name, cm_name = L.SOF20_NAMES[sof_id], L.CELEBAMASK19_NAMES[cm_id]
        assert cm_name == ("nose" if sof_id in NOSE else sof_name)
    assert sorted(set(SOF20_TO_CELEBAMASK19.tolist())) == list(range(19))
    x = np.arange(20, dtype=np.uint8)[None].repeat(3, 0)
    y = sof_to_celebamask(x)
    assert y.dtype == np.uint8 and y.shape == x.shape
    back = L.CELEBAMASK19_TO_SOF20[y]
    off_nose = ~np.isin(x, NOSE)
    assert np.array_equal(back[off_nose], x[off_nose])
    with pytest.raises(ValueError, match="labels: SOF-20 ids must be in"):
        sof_to_celebamask(np.array([20]))


def test_part_names_follow_celebamask_order():
    assert CELEBAMASK_PARTS == L.CELEBAMASK19_NAMES[1:]
    assert CELEBAMASK_PARTS[:3] == ("skin", "nose", "eye_g") and CELEBAMASK_PARTS[-1] == "cloth"


def test_compose_masks_later_part_wins():
    z = np.zeros((6, 6), bool)
    skin, nose, hair, hat, cloth, neck = (z.copy() for _ in range(6))
    skin[1:5, 1:5] = True
    nose[2:4, 2:4] = True        # over skin: nose (2) is later than skin (1)
    hair[0:2, :] = True          # over skin's top row
    hat[0, :] = True             # over hair
    neck[5, :] = True
    cloth[5, 3:] = True          # cloth (18) is later than neck (17)
    got = compose_masks({"hat": hat, "skin": skin, "nose": nose, "hair": hair, "neck": neck, "cloth": cloth})
    C = L.CelebAMask
    assert got.dtype == np.uint8
    assert (got[0] == C.HAT).all()
    assert (got[1] == C.HAIR).all()
    assert got[2, 1] == C.SKIN and got[2, 2] == C.NOSE and got[2, 0] == C.BACKGROUND
    assert list(got[5]) == [C.NECK] * 3 + [C.CLOTH] * 3
    with pytest.raises(ValueError, match="masks: unknown part 'lips'"):
        compose_masks({"lips": z})
    with pytest.raises(ValueError, match="masks: 'hat' has shape"):
        compose_masks({"skin": z, "hat": np.zeros((3, 3))})
    with pytest.raises(ValueError, match="masks: expected at least one"):
        compose_masks({})


def _mask_tree(root: Path, index: int, masks: dict[str, np.ndarray]) -> Path:
    for part, m in masks.items():
        p = celebamask_mask_path(root, index, part)
        p.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(m).save(p)
    return root


def test_read_labels_composes_files_in_order(tmp_path):
    root = tmp_path / "CelebAMask-HQ"
    skin = np.zeros((8, 8), np.uint8)
    skin[2:8] = 255
    hair = np.zeros((8, 8, 3), np.uint8)  # an RGB mask: any non-zero channel counts
    hair[0:4, :, 2] = 200
    hat = np.zeros((8, 8, 4), np.uint8)   # RGBA: alpha is ignored
    hat[0, :, 0] = 255
    hat[..., 3] = 255
    _mask_tree(root, 2001, {"skin": skin, "hair": hair, "hat": hat})
    assert (root / "CelebAMask-HQ-mask-anno" / "1" / "02001_hair.png").is_file()
    got = read_celebamask_labels(root, 2001)
    assert got.shape == (8, 8) and got.dtype == np.uint8
    C = L.CelebAMask
    assert (got[0] == C.HAT).all() and (got[1:4] == C.HAIR).all() and (got[4:] == C.SKIN).all()
    # the parent of CelebAMask-HQ is accepted too
    assert np.array_equal(read_celebamask_labels(tmp_path, 2001), got)
    assert celebamask_indices(tmp_path) == [2001]


# ------------------------------------------------------------------------------------------
# the CelebAMask-HQ stand-in
# ------------------------------------------------------------------------------------------

def test_standin_layout(frontal):
    indices = [0, 1500, 3000, 4500]
    assert celebamask_indices(frontal) == indices
    marker = json.loads((frontal / STANDIN_MARKER).read_text())
    assert "not the real dataset" in marker["what"] and marker["layout"] == "CelebAMask-HQ"
    assert [v["index"] for v in marker["views"]] == indices
    for i in indices:
        with Image.open(frontal / "CelebA-HQ-img" / f"{i}.jpg") as im:
            assert im.format == "JPEG" and im.size == (96, 96) and im.mode == "RGB"
        folder = frontal / "CelebAMask-HQ-mask-anno" / str(i // 2000)
        files = sorted(folder.glob(f"{i:05d}_*.png"))
        assert {"skin", "hair", "nose", "l_eye", "r_eye"} <= {f.stem.split("_", 1)[1] for f in files}
        for f in files:
            a = np.asarray(Image.open(f))
            assert a.shape == (SIZE, SIZE) and set(np.unique(a).tolist()) <= {0, 255} and a.max() == 255
    assert sorted(p.name for p in (frontal / "CelebAMask-HQ-mask-anno").iterdir()) == ["0", "1", "2"]


def test_standin_is_deterministic(frontal, tmp_path):
    again = make_celebamask_standin(tmp_path / "again", 1, size=SIZE, image_size=96, yaw_range=(0, 0),
                                    pitch_range=(0, 0), workers=1, progress=False)
    for rel in ("CelebA-HQ-img/0.jpg", "CelebAMask-HQ-mask-anno/0/00000_skin.png"):
        assert (again / rel).read_bytes() == (frontal / rel).read_bytes()


def test_read_labels_equal_merged_source(frontal):
    for i, sof in source_maps(frontal).items():
        got = read_celebamask_labels(frontal, i, mask_size=SIZE)
        assert np.array_equal(got, sof_to_celebamask(sof)), i


# ------------------------------------------------------------------------------------------
# round trips through build_segmap_folder and SegmapFolder
# ------------------------------------------------------------------------------------------

def test_round_trip_sof20_frontal_is_exact(frontal, tmp_path):
    out = build_segmap_folder(frontal, tmp_path / "seg", workers=1, progress=False)
    index = json.loads((out / "index.json").read_text())
    assert index["label_set"] == "sof20" and index["complete"] and index["count"] == 4 and index["size"] == SIZE
    src, got = source_maps(frontal), read_folder(out)
    assert sorted(got) == sorted(src)
    nose_pixels = 0
    for i in src:
        nose = np.isin(src[i], NOSE)
        nose_pixels += int(nose.sum())
        assert np.array_equal(got[i][~nose], src[i][~nose]), i
        assert (got[i][nose] == src[i][nose]).mean() == 1.0, i  # frontal: the median column is the 3D plane
    assert nose_pixels > 0
    s = SegmapFolder(out, SIZE)  # label_set="auto" reads index.json
    assert s.source_label_set == "sof20"
    expect = torch.from_numpy(np.stack([L.sof_to_sofgan(src[i]) for i in sorted(src)]).astype(np.uint8))
    assert torch.equal(s.data, expect)


def test_round_trip_turned_views(turned, tmp_path):
    out = build_segmap_folder(turned, tmp_path / "seg", workers=1, progress=False)
    src, got = source_maps(turned), read_folder(out)
    rates = []
    for i in src:
        nose = np.isin(src[i], NOSE)
        assert np.array_equal(got[i][~nose], src[i][~nose]), i
        assert np.isin(got[i][nose], NOSE).all()  # a nose pixel stays a nose pixel
        if nose.any():
            rates.append(float((got[i][nose] == src[i][nose]).mean()))
    assert rates and all(0.0 <= r <= 1.0 for r in rates)


@pytest.mark.parametrize("label_set", ["sofgan17", "celebamask19"])
def test_round_trip_other_label_sets(frontal, tmp_path, label_set):
    out = build_segmap_folder(frontal, tmp_path / label_set, label_set=label_set, size=32, workers=1,
                              progress=False)
    src, got = source_maps(frontal), read_folder(out)
    for i in src:
        full = L.sof_to_sofgan(src[i]) if label_set == "sofgan17" else sof_to_celebamask(src[i])
        expect = np.asarray(Image.fromarray(full.astype(np.uint8)).resize((32, 32), Image.NEAREST))
        assert got[i].shape == (32, 32) and np.array_equal(got[i], expect), i
    s = SegmapFolder(out, 32)
    assert s.source_label_set == label_set
    assert torch.equal(s.data, SegmapFolder(out, 32, label_set=label_set).data)


def test_workers_give_the_same_files(frontal, tmp_path):
    one = build_segmap_folder(frontal, tmp_path / "one", workers=1, progress=False)
    two = build_segmap_folder(frontal, tmp_path / "two", workers=2, progress=False)
    names = sorted(p.name for p in (one / "segmaps").iterdir())
    assert names == sorted(p.name for p in (two / "segmaps").iterdir()) and len(names) == 4
    for n in names:
        assert (one / "segmaps" / n).read_bytes() == (two / "segmaps" / n).read_bytes()


def test_resume_skips_finished_files(frontal, tmp_path):
    out = build_segmap_folder(frontal, tmp_path / "seg", limit=2, workers=1, progress=False)
    first = {p.name: p.stat().st_mtime_ns for p in (out / "segmaps").iterdir()}
    assert sorted(first) == ["00000.png", "01500.png"]
    os.utime(out / "segmaps" / "00000.png", ns=(1, 1))
    (out / "segmaps" / ".03000.png.tmp-123").write_bytes(b"half")  # an interrupted write
    build_segmap_folder(frontal, out, workers=1, progress=False)
    files = sorted(p.name for p in (out / "segmaps").iterdir())
    assert files == ["00000.png", "01500.png", "03000.png", "04500.png"]
    assert (out / "segmaps" / "00000.png").stat().st_mtime_ns == 1  # not rewritten
    assert json.loads((out / "index.json").read_text())["count"] == 4
    with pytest.raises(ValueError, match=r"out: .* was built with label_set='sof20' \(now 'sofgan17'\)"):
        build_segmap_folder(frontal, out, label_set="sofgan17", workers=1, progress=False)
    rebuilt = build_segmap_folder(frontal, out, label_set="sofgan17", overwrite=True, workers=1, progress=False)
    assert SegmapFolder(rebuilt, SIZE).source_label_set == "sofgan17"


def test_errors(frontal, tmp_path):
    with pytest.raises(FileNotFoundError, match="root: .*missing is not a folder"):
        build_segmap_folder(tmp_path / "missing", tmp_path / "o")
    (tmp_path / "bare").mkdir()
    with pytest.raises(FileNotFoundError, match="root: .*bare has no CelebAMask-HQ-mask-anno folder"):
        celebamask_indices(tmp_path / "bare")
    (tmp_path / "bare" / "CelebAMask-HQ-mask-anno" / "0").mkdir(parents=True)
    with pytest.raises(ValueError, match="root: no part masks"):
        celebamask_indices(tmp_path / "bare")
    with pytest.raises(ValueError, match=r"index: no part masks for image 7 in .*0 \(expected files such as "
                                         r"00007_skin.png\)"):
        read_celebamask_labels(frontal, 7)
    with pytest.raises(ValueError, match=r"root: mask .*00000_skin.png is 64x64; expected 512x512"):
        read_celebamask_labels(frontal, 0, mask_size=512)

    # one mask of the wrong size inside a dataset
    bad = tmp_path / "bad"
    _mask_tree(bad, 0, {"skin": np.full((8, 8), 255, np.uint8)})
    _mask_tree(bad, 1, {"skin": np.full((8, 8), 255, np.uint8), "hair": np.full((4, 4), 255, np.uint8)})
    with pytest.raises(ValueError, match=r"root: mask .*00001_hair.png is 4x4; expected 8x8"):
        build_segmap_folder(bad, tmp_path / "o1", workers=1, progress=False)
    _mask_tree(bad, 2, {"skin": np.full((8, 6), 255, np.uint8)})
    with pytest.raises(ValueError, match=r"root: mask .*00002_skin.png is 6x8; expected square"):
        read_celebamask_labels(bad, 2)
    (celebamask_mask_path(bad, 3, "nose")).write_bytes(b"not a png")
    with pytest.raises(ValueError, match=r"root: mask .*00003_nose.png cannot be read"):
        read_celebamask_labels(bad, 3)

    with pytest.raises(ValueError, match="label_set: expected one of"):
        build_segmap_folder(frontal, tmp_path / "o2", label_set="sof")
    with pytest.raises(ValueError, match="size: expected an integer in 1..4096, got 0"):
        build_segmap_folder(frontal, tmp_path / "o2", size=0)
    with pytest.raises(TypeError, match="limit: expected an integer or None, got float"):
        build_segmap_folder(frontal, tmp_path / "o2", limit=2.0)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="out: .*busy is not empty and holds no sofgan-lab/segmaps index.json"):
        build_segmap_folder(frontal, tmp_path / "busy", workers=1, progress=False)
    with pytest.raises(ValueError, match="out: .*busy is not empty"):
        make_celebamask_standin(tmp_path / "busy", 1, size=16, progress=False)
    with pytest.raises(ValueError, match="yaw_range: expected low <= high"):
        make_celebamask_standin(tmp_path / "s", 1, size=16, yaw_range=(10, -10))
    with pytest.raises(ValueError, match="count: expected an integer >= 1, got 0"):
        make_ffhq_standin(tmp_path / "s", 0)


# ------------------------------------------------------------------------------------------
# FFHQ layout, image folders
# ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ffhq(tmp_path_factory) -> Path:
    """5 stand-in FFHQ photos at 16², 2 per folder: images1024x1024/{00000,00002,00004}/."""
    return make_ffhq_standin(tmp_path_factory.mktemp("ffhq") / "ffhq", 5, size=16, per_folder=2, workers=1,
                             progress=False)


def test_ffhq_nested_listing(ffhq):
    tree = ffhq / "images1024x1024"
    assert sorted(p.name for p in tree.iterdir()) == ["00000", "00002", "00004"]
    files = ffhq_images(ffhq)
    assert [p.relative_to(tree).as_posix() for p in files] == [
        "00000/00000.png", "00000/00001.png", "00002/00002.png", "00002/00003.png", "00004/00004.png"]
    assert ffhq_images(tree) == files
    # list_images descends one level when the folder itself holds no image
    assert list_images(tree, "images", "images") == files
    with pytest.raises(FileNotFoundError, match="images: no .* files in .*images1024x1024$"):
        list_images(tree, "images", "images", recursive=False)
    # ... but never two levels
    with pytest.raises(FileNotFoundError, match="or its sub-folders"):
        list_images(ffhq, "images", "images")
    # recursive=True adds the nested files to the top-level ones
    flat = tree / "00000"
    assert len(list_images(flat, "images", "images")) == 2
    loaded = ImageFolder(tree, 16)
    assert loaded.data.shape == (5, 3, 16, 16)
    assert np.array_equal(loaded.data[2].permute(1, 2, 0).numpy(), np.asarray(Image.open(files[2])))
    streamed = StreamingImageFolder(tree, 8)
    assert len(streamed) == 5
    idx = torch.tensor([4, 0, 2])
    assert torch.equal(streamed.batch(idx), ImageFolder(tree, 8).batch(idx))


def test_build_image_folder(frontal, ffhq, tmp_path):
    out = build_image_folder(frontal, tmp_path / "cm", size=32, workers=1, progress=False)
    assert sorted(p.name for p in (out / "images").iterdir()) == ["00000.png", "01500.png", "03000.png",
                                                                  "04500.png"]
    imgs = ImageFolder(out, 32)
    assert imgs.data.shape == (4, 3, 32, 32)
    src = Image.open(frontal / "CelebA-HQ-img" / "1500.jpg").convert("RGB").resize((32, 32), Image.LANCZOS,
                                                                                  reducing_gap=None)
    assert np.array_equal(imgs.data[1].permute(1, 2, 0).numpy(), np.asarray(src))
    assert [p.name for p in source_images(frontal)] == ["0.jpg", "1500.jpg", "3000.jpg", "4500.jpg"]

    jpg = build_image_folder(ffhq, tmp_path / "ff", size=8, limit=3, format="jpg", workers=1, progress=False)
    assert sorted(p.name for p in (jpg / "images").iterdir()) == ["00000.jpg", "00001.jpg", "00002.jpg"]
    index = json.loads((jpg / "index.json").read_text())
    assert index["complete"] and index["count"] == 3 and index["size"] == 8
    with pytest.raises(ValueError, match="format: expected 'png' or 'jpg'"):
        build_image_folder(ffhq, tmp_path / "x", format="webp")
    with pytest.raises(FileNotFoundError, match="source: .*nothing is not a folder"):
        build_image_folder(tmp_path / "nothing", tmp_path / "x")


# ------------------------------------------------------------------------------------------
# the `sofgan-lab data` command
# ------------------------------------------------------------------------------------------

def test_cli_data_celebamask(frontal, tmp_path, capsys):
    out = tmp_path / "segmaps"
    assert main(["-q", "data", "celebamask", str(frontal), "--out", str(out), "--size", "32", "--limit", "3",
                 "--label-set", "sofgan17", "--workers", "1"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1
    res = json.loads(lines[0])
    assert res == {"out": str(out), "segmaps": str(out / "segmaps"), "label_set": "sofgan17", "size": 32,
                   "count": 3}
    s = SegmapFolder(out, 32)
    assert len(s) == 3 and s.source_label_set == "sofgan17"


@pytest.mark.parametrize("args, message", [
    (["ROOT_MISSING"], "sofgan-lab: error: ROOT: .*missing is not a folder"),
    (["ROOT_BARE"], "sofgan-lab: error: ROOT: .*has no CelebAMask-HQ-mask-anno folder"),
    (["ROOT", "--size", "0"], "sofgan-lab: error: --size: expected an integer in 1..4096, got 0"),
    (["ROOT", "--limit", "0"], "sofgan-lab: error: --limit: expected an integer >= 1, got 0"),
    (["ROOT", "--workers", "0"], "sofgan-lab: error: --workers: expected an integer >= 1, got 0"),
    (["ROOT", "OUT_BUSY"], "sofgan-lab: error: --out: .* is not empty"),
])
def test_cli_data_errors(frontal, tmp_path, capsys, args, message):
    (tmp_path / "bare").mkdir()
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x.txt").write_text("x")
    subst = {"ROOT_MISSING": str(tmp_path / "missing"), "ROOT_BARE": str(tmp_path / "bare"), "ROOT": str(frontal)}
    argv = ["-q", "data", "celebamask", *[subst.get(a, a) for a in args if a != "OUT_BUSY"], "--out",
            str(tmp_path / ("busy" if "OUT_BUSY" in args else "o"))]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert re.fullmatch(message + ".*", err), err


def test_cli_data_bad_label_set_and_standin(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["data", "celebamask", str(tmp_path), "--out", str(tmp_path / "o"), "--label-set", "sof"])
    assert exc.value.code == 2
    assert "--label-set: invalid choice" in capsys.readouterr().err
    out = tmp_path / "ff"
    assert main(["-q", "data", "standin", "ffhq", str(out), "--count", "2", "--size", "16", "--workers", "1"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res == {"out": str(out), "layout": "FFHQ", "count": 2, "size": 16, "standin": True}
    assert [p.name for p in ffhq_images(out)] == ["00000.png", "00001.png"]
    assert main(["-q", "data", "standin", "celebamask", str(out), "--count", "1", "--size", "16"]) == 2
    assert "sofgan-lab: error: OUT: " in capsys.readouterr().err
    small = tmp_path / "small"
    assert main(["-q", "data", "images", str(out), "--out", str(small), "--size", "8", "--workers", "1"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res == {"out": str(small), "images": str(small / "images"), "size": 8, "count": 2}
    assert ImageFolder(small, 8).data.shape == (2, 3, 8, 8)
    assert main(["-q", "data", "images", str(tmp_path / "none"), "--out", str(small)]) == 2
    assert re.fullmatch(r"sofgan-lab: error: SOURCE: .*none is not a folder\n", capsys.readouterr().err)
