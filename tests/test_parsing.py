"""Tests for the synthetic face parser (``sofgan_lab.parsing``): the network's contract, save/load,
input checks, augmentation (the flip's left/right swap), training with exact resume, evaluation,
the ``train parser`` / ``eval parser`` commands and the shipped demo parser."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from sofgan_lab.cli import main
from sofgan_lab.images import uint8_to_tensor
from sofgan_lab.io.checkpoints import CheckpointError
from sofgan_lab.labels import SOF, SOF20_LR_SWAP, SOF20_NAMES, flip_horizontal
from sofgan_lab.parsing import FaceParser, FaceParserConfig
from sofgan_lab.train.parser_trainer import (ParserTrainConfig, PhotoSet, augment_batch, class_weights, degrade,
                                      evaluate_parser, gaussian_blur, hflip, train_parser)
from sofgan_lab.synthetic import write_photos
from sofgan_lab.train.common import MetricsLogger, parameters_checksum

REPO = Path(__file__).resolve().parents[1]
TINY = FaceParserConfig.tiny()

# one thread (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """8 synthetic photos with segmaps, 64 px, seed 0."""
    return write_photos(tmp_path_factory.mktemp("parser") / "photos", count=8, size=64, seed=0,
                        with_segmaps=True, workers=1, progress=False)


def tiny_model(seed: int = 0) -> FaceParser:
    torch.manual_seed(seed)
    return FaceParser(TINY).eval()


def rand_images(n=2, h=32, w=48, seed=0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, h, w, generator=g) * 2 - 1


# ------------------------------------------------------------------------------------------
# config and network
# ------------------------------------------------------------------------------------------

def test_config_roundtrip_and_small_size():
    cfg = FaceParserConfig.small()
    assert FaceParserConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    n = FaceParser(cfg).num_parameters()
    assert 500_000 <= n <= 1_200_000, n
    assert cfg.multiple == 16
    with pytest.raises(ValueError, match="widths"):
        FaceParserConfig(widths=(8,))
    with pytest.raises(ValueError, match="norm"):
        FaceParserConfig(norm="batch")
    with pytest.raises(ValueError, match="unknown"):
        FaceParserConfig.from_dict({"widths": [4, 8], "depth": 3})
    with pytest.raises(TypeError, match="config"):
        FaceParser({"widths": [4, 8]})


def test_forward_and_parse_shapes_and_dtypes():
    m = tiny_model()
    x = rand_images(2, 32, 48)
    logits = m(x)
    assert logits.shape == (2, 20, 32, 48) and logits.dtype == torch.float32
    labels = m.parse(x)
    assert labels.shape == (2, 32, 48) and labels.dtype == torch.int64
    assert torch.equal(labels, logits.argmax(1))
    single = m.parse(x[0])
    assert single.shape == (32, 48) and torch.equal(single, labels[0])
    assert torch.equal(m.parse(x, batch_size=1), labels)  # batching changes nothing (per-pixel norm)


def test_flip_average_is_mirror_equivariant():
    m = tiny_model(1)
    x = rand_images(2, 32, 32)
    plain, avg = m.parse(x), m.parse(x, flip_average=True)
    assert avg.shape == plain.shape and avg.dtype == torch.int64
    # mirroring the photo mirrors the labels and swaps left and right ids, exactly
    assert torch.equal(m.parse(x.flip(-1), flip_average=True), flip_horizontal(avg))
    with torch.no_grad():
        want = (m(x).softmax(1) + m(x.flip(-1)).flip(-1)[:, torch.from_numpy(SOF20_LR_SWAP.copy())].softmax(1))
    assert torch.equal(avg, want.argmax(1))
    with pytest.raises(ValueError, match="flip_average"):
        FaceParser(FaceParserConfig(widths=(4, 8), num_classes=5)).parse(x, flip_average=True)


def test_parse_keeps_train_mode_and_has_no_grad():
    m = tiny_model().train()
    out = m.parse(rand_images(1, 16, 16))
    assert m.training and not out.requires_grad


def test_parse_uint8_equals_parse_of_the_converted_floats():
    m = tiny_model()
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    want = m.parse(uint8_to_tensor(arr))
    assert torch.equal(m.parse(arr), want)                       # numpy (N, H, W, 3)
    assert torch.equal(m.parse(torch.from_numpy(arr)), want)     # tensor (N, H, W, 3)
    assert torch.equal(m.parse(arr[1]), want[1])                 # numpy (H, W, 3)


@pytest.mark.parametrize("bad, exc, words", [
    (torch.zeros(1, 3, 30, 32), ValueError, "divisible by 16"),
    (torch.zeros(1, 4, 32, 32), ValueError, "shape"),
    (torch.zeros(3, 32, 32), ValueError, "shape"),               # forward needs a batch
    (torch.zeros(1, 3, 32, 32, dtype=torch.int32), ValueError, "float"),
    (torch.full((1, 3, 32, 32), 255.0), ValueError, r"\[-1, 1\]"),
    (torch.full((1, 3, 32, 32), float("nan")), ValueError, "non-finite"),
    (np.zeros((1, 3, 32, 32), np.float32), TypeError, "torch.Tensor"),
])
def test_forward_rejects_bad_images_naming_the_argument(bad, exc, words):
    with pytest.raises(exc, match=f"images: .*{words}"):
        tiny_model()(bad)


@pytest.mark.parametrize("bad, exc, words", [
    (np.zeros((32, 32, 3), np.float32), ValueError, "uint8"),
    (np.zeros((32, 32, 4), np.uint8), ValueError, "shape"),
    (np.zeros((20, 32, 3), np.uint8), ValueError, "divisible by 16"),
    (torch.zeros(1, 3, 32, 32, dtype=torch.int64), ValueError, "dtype"),
    (torch.full((1, 3, 32, 32), -2.0), ValueError, r"\[-1, 1\]"),
    ([[0, 1]], TypeError, "torch.Tensor or numpy"),
])
def test_parse_rejects_bad_images_naming_the_argument(bad, exc, words):
    with pytest.raises(exc, match=f"images: .*{words}"):
        tiny_model().parse(bad)
    with pytest.raises(ValueError, match="batch_size"):
        tiny_model().parse(rand_images(1, 16, 16), batch_size=0)


def test_save_load_roundtrip_gives_identical_logits(tmp_path):
    m = tiny_model(3)
    d = m.save_pretrained(tmp_path / "p")
    assert sorted(p.name for p in d.iterdir()) == ["config.json", "model.safetensors"]
    back = FaceParser.from_pretrained(d)
    assert back.config == m.config and not back.training
    x = rand_images(2, 32, 32)
    assert torch.equal(back(x), m(x))
    with pytest.raises(CheckpointError, match="directory"):
        FaceParser.from_pretrained(tmp_path / "nothing")
    meta = json.loads((d / "config.json").read_text())
    meta["kind"] = "sof"
    (d / "config.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="face_parser"):
        FaceParser.from_pretrained(d)


# ------------------------------------------------------------------------------------------
# augmentation and degradation
# ------------------------------------------------------------------------------------------

def test_hflip_mirrors_and_swaps_left_and_right_ids():
    labels = torch.zeros(1, 4, 6, dtype=torch.int64)
    labels[0, 1, 4] = SOF.L_EYE    # the subject's left eye: on the image's right
    labels[0, 1, 1] = SOF.R_EYE
    labels[0, 2, 2] = SOF.R_NOSE
    labels[0, 0, 5] = SOF.L_EAR
    labels[0, 3, 0] = SOF.HAIR     # no side: only mirrored
    images = torch.arange(72, dtype=torch.float32).reshape(1, 3, 4, 6)
    fi, fl = hflip(images, labels)
    assert torch.equal(fi, images.flip(-1))
    assert fl[0, 1, 1] == SOF.R_EYE and fl[0, 1, 4] == SOF.L_EYE  # positions swapped, ids swapped
    assert fl[0, 2, 3] == SOF.L_NOSE and fl[0, 0, 0] == SOF.R_EAR and fl[0, 3, 5] == SOF.HAIR
    assert int((fl != 0).sum()) == 5


def test_augment_flip_is_hflip_of_the_unflipped_batch(photos):
    ps = PhotoSet(photos)
    off = dict(crop=32, color_jitter=0.0, resample_prob=0.0, blur_prob=0.0, noise_prob=0.0, noise_std_max=0.0,
               blur_sigma_max=0.0)
    idx = torch.arange(4)
    x0, y0 = augment_batch(ps, idx, ParserTrainConfig.tiny(flip_prob=0.0, **off), torch.Generator().manual_seed(5))
    x1, y1 = augment_batch(ps, idx, ParserTrainConfig.tiny(flip_prob=1.0, **off), torch.Generator().manual_seed(5))
    fx, fy = hflip(x0, y0)
    assert torch.equal(y1, fy) and torch.equal(x1, fx)
    assert x1.shape == (4, 3, 32, 32) and y1.dtype == torch.int64
    # on whole photos: the mirrored left eye is exactly the flipped photo's right eye, and back
    labels = ps.labels.long()
    _, flipped = hflip(torch.zeros(8, 3, 64, 64), labels)
    assert bool((labels == SOF.L_EYE).any())
    assert torch.equal((labels == SOF.L_EYE).flip(-1), flipped == SOF.R_EYE)
    assert torch.equal((labels == SOF.R_BROW).flip(-1), flipped == SOF.L_BROW)
    assert torch.equal(hflip(torch.zeros(8, 3, 64, 64), flipped)[1], labels)


def test_augment_batch_is_deterministic_and_in_range(photos):
    ps = PhotoSet(photos)
    cfg = ParserTrainConfig.tiny(crop=0)
    a = augment_batch(ps, torch.arange(3), cfg, torch.Generator().manual_seed(1))
    b = augment_batch(ps, torch.arange(3), cfg, torch.Generator().manual_seed(1))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert a[0].shape == (3, 3, 64, 64) and a[1].shape == (3, 64, 64)
    assert a[0].min() >= -1 and a[0].max() <= 1 and 0 <= a[1].min() and a[1].max() < 20


def test_degrade_and_blur():
    x = rand_images(2, 32, 32) * 0.5
    assert torch.equal(gaussian_blur(x, 0.0), x)
    blurred = gaussian_blur(x, 1.0)
    assert blurred.std() < x.std() and torch.allclose(blurred.mean(), x.mean(), atol=0.02)
    d1 = degrade(x, blur_sigma=1.0, noise_std=0.05, seed=3)
    assert torch.equal(d1, degrade(x, blur_sigma=1.0, noise_std=0.05, seed=3))
    assert d1.min() >= -1 and d1.max() <= 1
    assert abs(float((d1 - blurred).std()) - 0.1) < 0.01         # 0.05 of [0, 1] = 0.1 on [-1, 1]
    with pytest.raises(ValueError, match="noise_std"):
        degrade(x, noise_std=-1.0)


def test_class_weights():
    w = class_weights(np.array([1000, 10, 0, 100]), 0.5, 10.0)
    assert w[2] == 1 and w[1] > w[3] > w[0] and float(w.max()) <= 10
    assert torch.equal(class_weights(np.array([5, 1]), 0.0, 10.0), torch.ones(2))


# ------------------------------------------------------------------------------------------
# training and evaluation
# ------------------------------------------------------------------------------------------

def train_cfg(**kw) -> ParserTrainConfig:
    base = dict(steps=12, batch_size=4, crop=32, lr=5e-3, warmup_steps=2, checkpoint_every=4, log_every=2)
    base.update(kw)
    return ParserTrainConfig.tiny(**base)


def test_training_reduces_the_loss_and_resume_is_exact(photos, tmp_path):
    full = train_parser(photos, tmp_path / "full", train_cfg(), model_config=TINY, progress=False)
    assert full.finished and (full.model_dir / "model.safetensors").is_file()
    recs = [r for r in MetricsLogger.read(tmp_path / "full" / "metrics.jsonl") if r["event"] == "train"]
    assert recs[-1]["loss"] < recs[0]["loss"], [r["loss"] for r in recs]

    part = train_parser(photos, tmp_path / "part", train_cfg(), model_config=TINY, progress=False, until=6)
    assert not part.finished and part.step == 6
    with pytest.raises(ValueError, match="out_dir"):
        train_parser(photos, tmp_path / "part", train_cfg(), model_config=TINY, progress=False)
    rest = train_parser(photos, tmp_path / "part", train_cfg(), model_config=TINY, progress=False, resume=True)
    assert rest.finished
    assert parameters_checksum(rest.model) == parameters_checksum(full.model)
    a = MetricsLogger.read(tmp_path / "full" / "metrics.jsonl")
    b = MetricsLogger.read(tmp_path / "part" / "metrics.jsonl")
    assert [r["loss"] for r in a] == [r["loss"] for r in b]
    loaded = FaceParser.from_pretrained(rest.model_dir)
    assert parameters_checksum(loaded) == parameters_checksum(full.model)


def test_train_parser_rejects_bad_arguments(photos, tmp_path):
    with pytest.raises(ValueError, match="crop"):
        train_parser(photos, tmp_path / "r", train_cfg(crop=24), model_config=TINY, progress=False)
    with pytest.raises(ValueError, match="photos_dir"):
        train_parser(tmp_path / "missing", tmp_path / "r", train_cfg(), model_config=TINY, progress=False)
    (tmp_path / "nosegs" / "images").mkdir(parents=True)
    with pytest.raises(ValueError, match="photos_dir: .*segmaps"):
        train_parser(tmp_path / "nosegs", tmp_path / "r", train_cfg(), model_config=TINY, progress=False)
    with pytest.raises(ValueError, match="batch_size"):
        ParserTrainConfig(batch_size=0)
    with pytest.raises(ValueError, match="flip_prob"):
        ParserTrainConfig(flip_prob=2.0)


def test_evaluate_parser_report(photos):
    m = tiny_model()
    rep = evaluate_parser(m, photos)
    assert set(rep) >= {"miou", "pixel_accuracy", "iou", "images"} and rep["images"] == 8
    assert list(rep["iou"]) == list(SOF20_NAMES) and 0 <= rep["miou"] <= 1
    deg = evaluate_parser(m, photos, blur_sigma=1.0, noise_std=0.05, limit=4, flip_average=True)
    assert deg["images"] == 4 and deg["blur_sigma"] == 1.0 and deg["noise_std"] == 0.05 and deg["flip_average"]


# ------------------------------------------------------------------------------------------
# command line
# ------------------------------------------------------------------------------------------

def test_cli_train_and_eval_parser(photos, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["-q", "train", "parser", str(photos), "--out", str(run), "--steps", "2", "--batch", "2",
                 "--crop", "32", "--amp", "--eval", str(photos)]) == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert res["steps"] == 2 and "miou" in res["clean"] and "miou" in res["degraded"]
    assert (run / "model" / "training.json").is_file()
    assert main(["-q", "eval", "parser", str(run), "--data", str(photos), "--blur", "1", "--noise", "0.05",
                 "--flip-average"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 and 0 <= json.loads(lines[0])["miou"] <= 1


@pytest.mark.parametrize("argv, flag", [
    (["train", "parser", "{photos}", "--out", "{tmp}/r", "--batch", "0"], "--batch"),
    (["train", "parser", "{photos}", "--out", "{tmp}/r", "--crop", "20"], "--crop"),
    (["train", "parser", "{tmp}/absent", "--out", "{tmp}/r"], "PHOTOS"),
    (["train", "parser", "{photos}", "--out", "{tmp}/r", "--eval", "{tmp}/absent"], "--eval"),
    (["eval", "parser", "{tmp}/absent", "--data", "{photos}"], "MODEL"),
    (["eval", "parser", "{tmp}", "--data", "{photos}"], "MODEL"),
    (["eval", "parser", "demo", "--data", "{tmp}/absent"], "--data"),
    (["eval", "parser", "demo", "--data", "{photos}", "--noise", "-1"], "--noise"),
])
def test_cli_bad_arguments_exit_2_naming_the_flag(photos, tmp_path, capsys, argv, flag):
    argv = [a.format(photos=photos, tmp=tmp_path) for a in argv]
    if "demo" in argv and not (REPO / "data" / "demo" / "parser").is_dir():
        pytest.skip("no shipped demo parser")
    assert main(["-q", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"sofgan-lab: error: {flag}:"), err


# ------------------------------------------------------------------------------------------
# the shipped demo parser
# ------------------------------------------------------------------------------------------

@pytest.mark.skipif(not (REPO / "data" / "demo" / "parser").is_dir(), reason="no shipped demo parser")
def test_demo_parser_is_small_and_segments_new_photos(tmp_path):
    d = REPO / "data" / "demo" / "parser"
    assert (d / "model.safetensors").stat().st_size <= 5 * 2**20
    m = FaceParser.from_pretrained("demo")
    # new photos framed as the parser's training photos were (data written before framings existed:
    # the release's whole-bust framing)
    index = json.loads((d / "training.json").read_text())["photos_index"]
    held = write_photos(tmp_path / "held", count=16, size=128, seed=4, with_segmaps=True, workers=2, progress=False,
                        framing=index.get("framing", "official"))
    rep = evaluate_parser(m, held)
    assert rep["miou"] >= 0.7, rep
