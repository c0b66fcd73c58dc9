"""Reading image files (``sofgan_lab.images.read_image``, used by every dataset): a truncated, non-image
or decompression-bomb PNG/JPEG is a one-line ``ValueError`` naming the file (issue 20 item 5), in the
helper and in each dataset that reads photos or label maps."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from sofgan_lab.images import read_image

from _bad_images import KINDS, break_image

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
@pytest.mark.parametrize("kind", KINDS)
def test_read_image_names_the_file(tmp_path, suffix, kind):
    p = tmp_path / f"a{suffix}"
    Image.fromarray(np.full((32, 32, 3), 100, np.uint8)).save(p)
    break_image(p, kind)
    with pytest.raises(ValueError) as e:
        read_image(p, "images")
    msg = str(e.value)
    assert msg.startswith(f"images: {p} cannot be read as an image") and "\n" not in msg
    if kind == "bomb":
        assert "decompression bomb" in msg


def test_read_image_keeps_good_files_exact(tmp_path):
    a = np.random.default_rng(0).integers(0, 256, (9, 7, 3), dtype=np.uint8)
    Image.fromarray(a).save(tmp_path / "a.png")
    im = read_image(tmp_path / "a.png", "images")
    assert im.mode == "RGB" and np.array_equal(np.asarray(im), a)
    assert read_image(tmp_path / "a.png", "images", header_only=True).size == (7, 9)


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    from sofgan_lab.synthetic.writers import write_photos

    return write_photos(tmp_path_factory.mktemp("ph") / "photos", count=2, size=32, seed=0, with_segmaps=True,
                        workers=1, progress=False)


@pytest.fixture(scope="module")
def scans(tmp_path_factory):
    from sofgan_lab.synthetic.writers import write_scans

    return write_scans(tmp_path_factory.mktemp("sc") / "scans", instances=1, views=2, size=16, seed=0, workers=1,
                       progress=False)


def _copy(src, tmp_path):
    import shutil

    return shutil.copytree(src, tmp_path / src.name)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("reader", ["ImageFolder", "SegmapFolder", "parser photos", "load_rgb"])
def test_photo_datasets_name_the_broken_file(photos, tmp_path, kind, reader):
    from sofgan_lab.datasets.images import load_rgb
    from sofgan_lab.train.parser_trainer import PhotoSet
    from sofgan_lab.train.siw_data import ImageFolder, SegmapFolder

    d = _copy(photos, tmp_path)
    sub = "segmaps" if reader == "SegmapFolder" else "images"
    bad = break_image(d / sub / "00001.png", kind)
    run = {"ImageFolder": lambda: ImageFolder(d, 32), "SegmapFolder": lambda: SegmapFolder(d, 32),
           "parser photos": lambda: PhotoSet(d), "load_rgb": lambda: load_rgb(bad, 32)}[reader]
    with pytest.raises(ValueError, match="cannot be read as an image") as e:
        run()
    assert str(bad) in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("kind", KINDS)
def test_sof_scans_name_the_broken_map(scans, tmp_path, kind):
    from sofgan_lab.train.sof_data import SOFScanDataset

    d = _copy(scans, tmp_path)
    bad = break_image(d / "0000" / "seg_01.png", kind)
    with pytest.raises(ValueError, match="cannot be read as an image") as e:
        SOFScanDataset(d, preload=True)
    assert str(bad) in str(e.value) and str(e.value).startswith("root: ")
