"""Tests for the SIW-StyleGAN trainer (``sofgan_lab.train.siw_data`` / ``siw_trainer``): the unpaired
data folders and their augmentation, the GAN losses, a short run and its outputs, exact resume
(also past a checkpoint cut by a kill), region-style batches, data-parallel training with two CPU
processes, and the ``train siw`` command."""
from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import load_file

from sofgan_lab.cli import main
from sofgan_lab.labels import NUM_SOFGAN_CLASSES, SOFGAN17_NAMES, celebamask_to_sof, sof_to_sofgan, swap_left_right
from sofgan_lab.synthetic.writers import write_photos
from sofgan_lab.texture.generator import SIWConfig, SIWGenerator
from sofgan_lab.train import siw_trainer
from sofgan_lab.train.common import MetricsLogger, list_checkpoints, parameters_checksum
from sofgan_lab.train.siw_data import ImageFolder, SegmapFolder, augment_batch
from sofgan_lab.train.siw_trainer import (SIWTrainConfig, d_logistic_loss, g_nonsaturating_loss, r1_penalty,
                                          train_siw)

REPO = Path(__file__).resolve().parents[1]

#: a 32² generator small enough for a CPU thread
TINY = SIWConfig(size=32, style_dim=32, channels={4: 32, 8: 32, 16: 16, 32: 16}, encoder_channels=(8, 16, 32),
                 spade_hidden=8)

pytestmark = pytest.mark.usefixtures("one_thread")


def cfg(**kw) -> SIWTrainConfig:
    base = dict(steps=4, batch=2, d_reg_every=2, g_reg_every=2, log_every=1, sample_every=2, sample_count=4,
                checkpoint_every=2, device="cpu")
    base.update(kw)
    return SIWTrainConfig(**base)


class _OneThread:
    """Module-scoped fixtures run before the function-scoped ``one_thread``: pin the thread count
    there too (bit-exact comparisons with runs made inside tests)."""

    def __enter__(self):
        self.n = torch.get_num_threads()
        torch.set_num_threads(1)

    def __exit__(self, *exc):
        torch.set_num_threads(self.n)


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """8 synthetic 32² photos with SOF-20 segmaps (index.json says sof20)."""
    return write_photos(tmp_path_factory.mktemp("siw") / "photos", count=8, size=32, seed=5, with_segmaps=True,
                        workers=1, progress=False)


@pytest.fixture(scope="module")
def straight(photos, tmp_path_factory):
    """A finished 4-step run (the reference for outputs and for the resume test)."""
    with _OneThread():
        out = tmp_path_factory.mktemp("siw") / "straight"
        return train_siw(photos, photos, out, model_config=TINY, train_config=cfg(), progress=False)


def _write_maps(folder: Path, maps, index: dict | None = None) -> Path:
    folder.mkdir(parents=True)
    for i, m in enumerate(maps):
        Image.fromarray(np.asarray(m, dtype=np.uint8), mode="L").save(folder / f"{i:03d}.png")
    if index is not None:
        (folder / "index.json").write_text(json.dumps(index))
    return folder


def _train_records(path: Path) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "images_per_s"} for r in MetricsLogger.read(path)]


# ------------------------------------------------------------------------------------------
# data
# ------------------------------------------------------------------------------------------

def test_image_folder_loads_and_resizes(photos, tmp_path):
    full = ImageFolder(photos, 32)  # the images/ sub-folder of a photos folder
    assert full.data.shape == (8, 3, 32, 32) and full.data.dtype == torch.uint8
    first = np.asarray(Image.open(photos / "images" / "00000.png").convert("RGB"))
    assert np.array_equal(full.data[0].permute(1, 2, 0).numpy(), first)
    b = full.batch(torch.tensor([0, 3]))
    assert b.dtype == torch.float32 and b.shape == (2, 3, 32, 32) and -1 <= b.min() and b.max() <= 1
    torch.testing.assert_close(b[0], full.data[0].float() / 127.5 - 1)

    half = ImageFolder(photos, 16, limit=3)
    assert half.data.shape == (3, 3, 16, 16)
    expect = np.asarray(Image.fromarray(first).resize((16, 16), Image.BILINEAR, reducing_gap=None))
    assert np.array_equal(half.data[0].permute(1, 2, 0).numpy(), expect)

    # a non-square image is centre-cropped to a square first
    wide = np.zeros((24, 40, 3), np.uint8)
    wide[:, :8] = (255, 0, 0)
    wide[:, 8:32] = (0, 255, 0)
    wide[:, 32:] = (0, 0, 255)
    (tmp_path / "wide").mkdir()
    Image.fromarray(wide).save(tmp_path / "wide" / "a.png")
    crop = ImageFolder(tmp_path / "wide", 32)
    assert crop.data.shape == (1, 3, 32, 32)
    assert (crop.data[0, 1] == 255).all() and (crop.data[0, [0, 2]] == 0).all()

    with pytest.raises(FileNotFoundError, match="images: .* is not a folder"):
        ImageFolder(tmp_path / "none", 32)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="images: no "):
        ImageFolder(tmp_path / "empty", 32)


def test_segmap_folder_sof20(photos):
    raw = np.stack([np.asarray(Image.open(p)) for p in sorted((photos / "segmaps").glob("*.png"))])
    assert raw.max() == 19
    for label_set in ("auto", "sof20"):  # auto: from the photos' index.json
        s = SegmapFolder(photos, 32, label_set=label_set)
        assert s.source_label_set == "sof20" and s.data.dtype == torch.uint8 and s.data.shape == (8, 32, 32)
        assert np.array_equal(s.data.numpy(), sof_to_sofgan(raw))
    b = s.batch(torch.tensor([1, 1]))
    assert b.dtype == torch.int64 and torch.equal(b[0], b[1]) and int(b.max()) < NUM_SOFGAN_CLASSES
    small = SegmapFolder(photos / "segmaps", 16, label_set="sof20", limit=2)  # nearest-neighbour resize
    assert small.data.shape == (2, 16, 16)
    assert np.array_equal(small.data.numpy(), sof_to_sofgan(raw[:2])[:, ::2, ::2])


def test_segmap_folder_celebamask_and_sofgan17(tmp_path):
    m = np.zeros((16, 16), np.uint8)
    m[2:14, 3:13] = 1          # skin
    m[6:10, 6:10] = 2          # nose (split into halves on the way to SOF-20)
    m[4, 4:6], m[4, 9:11] = 4, 5  # eyes
    m[11, 6:10] = 11           # mouth
    m[0, :] = 13               # hair
    m[15, :] = 18              # cloth: the largest CelebAMask id
    maps = [m, m[:, ::-1]]
    s = SegmapFolder(_write_maps(tmp_path / "cm", maps), 16, label_set="celebamask19")
    assert s.source_label_set == "celebamask19"
    expect = sof_to_sofgan(np.stack([celebamask_to_sof(x.astype(np.int64)) for x in maps]))
    assert np.array_equal(s.data.numpy(), expect)

    # sofgan17 ids are kept; index.json settles the otherwise ambiguous set
    ids = np.arange(256).reshape(16, 16) % NUM_SOFGAN_CLASSES
    s17 = SegmapFolder(_write_maps(tmp_path / "s17", [ids], {"label_set": "sofgan17"}), 16)
    assert s17.source_label_set == "sofgan17" and np.array_equal(s17.data[0].numpy(), ids)
    with pytest.raises(ValueError, match="segmaps: the label set of .* is ambiguous"):
        SegmapFolder(_write_maps(tmp_path / "amb", [ids]), 16)
    # id 19 exists only in SOF-20
    with19 = ids.copy()
    with19[0, 0] = 19
    assert SegmapFolder(_write_maps(tmp_path / "s20", [with19]), 16).source_label_set == "sof20"
    # ids outside the set
    with pytest.raises(ValueError, match=r"segmaps: ids \[19\] .* outside the sofgan17 set"):
        SegmapFolder(tmp_path / "s20", 16, label_set="sofgan17")
    with pytest.raises(ValueError, match="segmaps: ids up to 200"):
        SegmapFolder(_write_maps(tmp_path / "far", [np.full((16, 16), 200)]), 16)
    with pytest.raises(ValueError, match="label_set: expected one of"):
        SegmapFolder(tmp_path / "s20", 16, label_set="sof")


def test_segmap_folder_rejects_rgb_and_mixed_maps(tmp_path):
    (tmp_path / "rgb").mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "rgb" / "a.png")
    with pytest.raises(ValueError, match="segmaps: .* mode RGB.*decolorize"):
        SegmapFolder(tmp_path / "rgb", 8)
    mixed = _write_maps(tmp_path / "mixed", [np.zeros((8, 8))])
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(mixed / "b.png")
    with pytest.raises(ValueError, match="segmaps: .*b.png is 16x16, 000.png is 8x8"):
        SegmapFolder(mixed, 8, label_set="sofgan17")
    (mixed / "b.png").unlink()
    Image.fromarray(np.zeros((8, 16), np.uint8)).save(mixed / "c.png")
    with pytest.raises(ValueError, match="segmaps: .*c.png is 16x8; expected square"):
        SegmapFolder(mixed, 8, label_set="sofgan17")


def _flip_pattern(out: torch.Tensor, x: torch.Tensor) -> list[bool]:
    flipped = []
    for o, i in zip(out, x):
        same, mirror = torch.allclose(o, i, atol=1e-5), torch.allclose(o, i.flip(-1), atol=1e-5)
        assert same != mirror
        flipped.append(mirror)
    return flipped


def test_augment_flip_only_is_an_exact_mirror():
    torch.manual_seed(0)
    x = torch.rand(12, 3, 8, 8) * 2 - 1
    out = augment_batch(x, torch.Generator().manual_seed(1), scale_range=(1.0, 1.0), flip=True)
    flipped = _flip_pattern(out, x)
    assert any(flipped) and not all(flipped)

    labels = torch.randint(0, NUM_SOFGAN_CLASSES, (12, 8, 8))
    lab = augment_batch(labels, torch.Generator().manual_seed(1), scale_range=(1.0, 1.0), flip=True, labels=True)
    assert lab.dtype == torch.int64
    for i, f in enumerate(flipped):  # the same generator state flips the same items
        expect = torch.as_tensor(swap_left_right(labels[i].flip(-1).numpy(), "sofgan17")) if f else labels[i]
        assert torch.equal(lab[i], expect), i
    # without flip and scale the batch comes back unchanged
    assert torch.equal(augment_batch(x, torch.Generator(), scale_range=(1.0, 1.0), flip=False), x)


def test_augment_scale_keeps_shape_and_ids():
    torch.manual_seed(0)
    x = torch.rand(6, 3, 16, 16) * 2 - 1
    labels = torch.randint(0, NUM_SOFGAN_CLASSES, (6, 16, 16))
    a = augment_batch(x, torch.Generator().manual_seed(3), scale_range=(1.3, 1.7))
    b = augment_batch(x, torch.Generator().manual_seed(3), scale_range=(1.3, 1.7))
    c = augment_batch(x, torch.Generator().manual_seed(4), scale_range=(1.3, 1.7))
    assert a.shape == x.shape and torch.equal(a, b) and not torch.equal(a, c)
    assert a.min() >= -1 - 1e-6 and a.max() <= 1 + 1e-6 and not torch.allclose(a, x)
    la = augment_batch(labels, torch.Generator().manual_seed(3), scale_range=(1.3, 1.7), labels=True)
    lb = augment_batch(labels, torch.Generator().manual_seed(3), scale_range=(1.3, 1.7), labels=True)
    assert la.shape == labels.shape and la.dtype == torch.int64 and torch.equal(la, lb)
    assert 0 <= int(la.min()) and int(la.max()) < NUM_SOFGAN_CLASSES
    for i in range(6):  # nearest sampling: only ids of the input (or their mirrored twins)
        allowed = set(labels[i].unique().tolist())
        allowed |= {int(swap_left_right(np.array([v]), "sofgan17")[0]) for v in allowed}
        assert set(la[i].unique().tolist()) <= allowed


# ------------------------------------------------------------------------------------------
# losses
# ------------------------------------------------------------------------------------------

def test_logistic_losses_match_the_formulas():
    real = torch.tensor([[0.5], [-1.0], [3.0]])
    fake = torch.tensor([[2.0], [0.0], [-0.25]])
    sp = lambda v: math.log1p(math.exp(v))  # noqa: E731
    d = np.mean([sp(-r) for r in (0.5, -1.0, 3.0)]) + np.mean([sp(f) for f in (2.0, 0.0, -0.25)])
    assert float(d_logistic_loss(real, fake)) == pytest.approx(d, rel=1e-6)
    assert float(g_nonsaturating_loss(fake)) == pytest.approx(np.mean([sp(-f) for f in (2.0, 0.0, -0.25)]), rel=1e-6)
    assert float(d_logistic_loss(torch.full((2, 1), 50.0), torch.full((2, 1), -50.0))) < 1e-20


def test_r1_penalty_analytic():
    torch.manual_seed(0)
    x = torch.randn(3, 2, 4, 4, requires_grad=True)
    w = torch.randn(2, 4, 4)
    linear = (x * w).flatten(1).sum(1, keepdim=True)              # dD/dx = w for every sample
    assert float(r1_penalty(linear, x)) == pytest.approx(float(w.pow(2).sum()), rel=1e-5)
    quad = 0.5 * x.pow(2).flatten(1).sum(1, keepdim=True)         # dD/dx = x
    r1 = r1_penalty(quad, x)
    assert float(r1.detach()) == pytest.approx(float(x.detach().pow(2).flatten(1).sum(1).mean()), rel=1e-5)
    (g,) = torch.autograd.grad(r1, x)                              # differentiable (create_graph)
    torch.testing.assert_close(g, 2 * x.detach() / 3)


def test_diversity_ratio_is_the_pooled_image_distance_over_the_latent_distance():
    img = torch.zeros(4, 3, 32, 32)
    img[2] = 0.5                       # pair (0, 2): a flat 0.5 apart
    img[3, :, :16] = 1.0               # pair (1, 3): half the image 1 apart (0.5 on average)
    img[1, :, ::2] = 0.25              # fine stripes: pooled away (2 x 2 pooling at 32²)
    lat = torch.zeros(4, 5, 8)
    lat[2] = 0.25
    lat[3] = 1.0
    r = siw_trainer.diversity_ratio(img, lat.requires_grad_(True))
    # pair (1, 3): pooled, image 1 is a flat 0.125: |1 - 0.125| on the top half, 0.125 below: 0.5
    torch.testing.assert_close(r, torch.tensor([0.5 / 0.25, (0.875 + 0.125) / 2 / 1.0]))
    # the latents are detached: only the images receive gradient
    x = img.clone().requires_grad_(True)
    w = lat.detach().clone().requires_grad_(True)
    siw_trainer.diversity_ratio(x, w).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0 and w.grad is None
    with pytest.raises(ValueError, match="images: the diversity ratio needs pairs"):
        siw_trainer.diversity_ratio(img[:1], lat[:1])


def test_region_diversity_ratio_compares_the_mean_colours_of_the_regions_the_segmap_shows():
    from sofgan_lab.labels import SofGAN

    seg = torch.full((4, 16, 16), int(SofGAN.BACKGROUND))
    seg[:, :8] = int(SofGAN.HAIR)               # hair on top, background below
    seg[1, 8:] = int(SofGAN.EYE)                # pair (1, 3): hair and an eye region (not measured)
    img = torch.zeros(4, 3, 16, 16)
    img[2, :, :8] = 0.5                          # pair (0, 2): the hair 0.5 apart, background equal
    img[2, 0, 8:, ::2] = 0.3                     # ... and background stripes: mean red 0.15 apart
    img[3, :, :8, :8] = 1.0                      # pair (1, 3): half the hair 1 apart (mean 0.5)
    img[3, :, 8:] = -1.0                         # ... the eye region changes: ignored
    lat = torch.zeros(4, 5, 8)
    lat[2] = 0.5
    lat[3] = 1.0
    r = siw_trainer.region_diversity_ratio(img, lat, seg)
    torch.testing.assert_close(r, torch.tensor([(0.5 + 0.15 / 3) / 2 / 0.5, 0.5 / 1.0]))
    # the pooled ratio of the same pairs counts the eye region and the stripes' layout alike
    assert not torch.allclose(siw_trainer.diversity_ratio(img, lat), r)
    # segmaps at another resolution are resized (nearest); gradient reaches the images only
    x = img.clone().requires_grad_(True)
    w = lat.clone().requires_grad_(True)
    big = seg.repeat_interleave(2, 1).repeat_interleave(2, 2)
    torch.testing.assert_close(siw_trainer.region_diversity_ratio(x, w, big), r)
    siw_trainer.region_diversity_ratio(x, w, seg).sum().backward()
    assert x.grad[0, :, :8].abs().sum() > 0 and w.grad is None
    assert float(x.grad[1, :, 8:].abs().sum()) == 0.0       # pixels of no measured region
    none = torch.full((2, 16, 16), int(SofGAN.EYE))         # no measured region at all: 0
    assert float(siw_trainer.region_diversity_ratio(img[:2], lat[:2], none)[0]) == 0.0
    with pytest.raises(ValueError, match="images: the diversity ratio needs pairs"):
        siw_trainer.region_diversity_ratio(img[:1], lat[:1], seg[:1])
    with pytest.raises(ValueError, match="diversity_mode: expected 'pooled' or 'regions'"):
        SIWTrainConfig(diversity_mode="pixels")


class _FixedParser(torch.nn.Module):
    """A 'parser' whose SOF-20 logits put a large score on the given SOF-20 map's ids."""

    def __init__(self, sof20: torch.Tensor, margin: float = 20.0):
        super().__init__()
        self.register_buffer("logits", F.one_hot(sof20, 20).permute(0, 3, 1, 2).float() * margin)

    def forward(self, images):
        return self.logits[: images.shape[0]] + 0 * images.mean()


def test_parser_segmap_loss_merges_sof20_into_sofgan17_and_balances_the_classes():
    from sofgan_lab.labels import SOF

    sof = torch.full((1, 16, 16), int(SOF.SKIN))
    sof[0, :, :8] = int(SOF.BACKGROUND)
    sof[0, 4, 4:6] = int(SOF.L_EYE)          # a 2-pixel class
    seg17 = sof_to_sofgan(sof)
    img = torch.zeros(1, 3, 16, 16)
    right = siw_trainer.parser_segmap_loss(_FixedParser(sof), img, seg17)
    assert float(right) < 1e-6
    # the parser answers r_eye where the segmap says l_eye: SOF-20 l/r eyes are one SofGAN-17 class
    swapped = sof.clone()
    swapped[0, 4, 4:6] = int(SOF.R_EYE)
    assert int(sof_to_sofgan(swapped)[0, 4, 4]) == int(seg17[0, 4, 4])
    assert float(siw_trainer.parser_segmap_loss(_FixedParser(swapped), img, seg17)) < 1e-6
    # missing the 2-pixel class costs far more than its pixel share: half the loss is per class
    wrong = sof.clone()
    wrong[0, 4, 4:6] = int(SOF.SKIN)
    lost = float(siw_trainer.parser_segmap_loss(_FixedParser(wrong), img, seg17))
    per_pixel = -math.log(1e-6)  # a pixel the parser is sure is another class: the probability floor
    assert lost == pytest.approx(0.5 * per_pixel * 2 / 256 + 0.5 * per_pixel / 3, rel=1e-3)
    with pytest.raises(ValueError, match="loss_parser: expected a SOF-20 parser"):
        siw_trainer.parser_segmap_loss(lambda x: torch.zeros(1, 5, 16, 16), img, seg17)


def test_diversity_and_parser_terms_train_toward_their_goals(straight, photos, tmp_path):
    """Off by default (the straight run is the paper's recipe); switched on, each term moves G
    toward its goal over a few steps: more different images for two styles on one segmap, a parser
    that reads the segmaps better."""
    from sofgan_lab.parsing.model import FaceParser, FaceParserConfig

    assert SIWTrainConfig().diversity_weight == 0 and SIWTrainConfig().parser_weight == 0
    torch.manual_seed(0)
    parser_dir = tmp_path / "parser"
    random_parser = FaceParser(FaceParserConfig(widths=(8, 8)))
    torch.nn.init.normal_(random_parser.head.weight, 0.0, 1.0)  # logits that depend on the image
    random_parser.save_pretrained(parser_dir)
    parser = FaceParser.from_pretrained(parser_dir)
    segs = SegmapFolder(photos, 32).data[:4].long()
    z = torch.randn(8, TINY.style_dim, generator=torch.Generator().manual_seed(7))

    def measures(g):
        with torch.no_grad():
            w = g.mapping(z)
            lat = w[:, None].expand(-1, g.n_latent, -1)
            img = g(torch.cat([segs, segs]), latents=lat, noise="const")
            return (float(siw_trainer.diversity_ratio(img, lat).mean()),
                    float(siw_trainer.parser_segmap_loss(parser, img, torch.cat([segs, segs]))))

    common = dict(steps=6, batch=4, lr=0.01, sample_every=0, checkpoint_every=0, r1_gamma=0, pl_weight=0)
    base = train_siw(photos, photos, tmp_path / "base", model_config=TINY, progress=False,
                     train_config=cfg(**common))
    div = train_siw(photos, photos, tmp_path / "div", model_config=TINY, progress=False,
                    train_config=cfg(**common, diversity_weight=20.0, diversity_tau=100.0))
    sem = train_siw(photos, photos, tmp_path / "sem", model_config=TINY, progress=False,
                    train_config=cfg(**common, parser_weight=200.0, loss_parser=str(parser_dir)))
    reg = train_siw(photos, photos, tmp_path / "reg", model_config=TINY, progress=False,
                    train_config=cfg(**common, diversity_weight=20.0, diversity_tau=100.0, diversity_mode="regions"))

    def region_measure(g):
        with torch.no_grad():
            lat = g.mapping(z)[:, None].expand(-1, g.n_latent, -1)
            seg2 = torch.cat([segs, segs])
            return float(siw_trainer.region_diversity_ratio(g(seg2, latents=lat, noise="const"), lat, seg2).mean())

    def raw(r):  # the trained G itself (G_ema lags behind after a few steps)
        return siw_trainer.load_siw_generator(list_checkpoints(r.out / "checkpoints")[-1][1], which="g")

    (b_div, b_sem), (d_div, _), (_, s_sem) = measures(raw(base)), measures(raw(div)), measures(raw(sem))
    assert d_div > 1.2 * b_div, (d_div, b_div)
    b_reg, r_reg = region_measure(raw(base)), region_measure(raw(reg))
    assert r_reg > 1.2 * b_reg, (r_reg, b_reg)
    assert s_sem < b_sem - 0.05, (s_sem, b_sem)  # a random parser: a small but steady gain
    logged = {k for r in MetricsLogger.read(tmp_path / "div" / "metrics.jsonl") for k in r}
    assert "diversity" in logged and "semantic" not in logged
    recs = [r for r in MetricsLogger.read(tmp_path / "sem" / "metrics.jsonl") if r["event"] == "train"]
    assert all(math.isfinite(r["semantic"]) for r in recs) and "diversity" not in recs[0]
    tc = json.loads((sem.model_dir / "training.json").read_text())["train_config"]
    assert tc["parser_weight"] == 200.0 and tc["loss_parser"] == str(parser_dir)
    with pytest.raises(ValueError, match="loss_parser: parser_weight > 0 needs"):
        SIWTrainConfig(parser_weight=1.0)
    with pytest.raises(ValueError, match="diversity_weight: expected"):
        SIWTrainConfig(diversity_weight=-1.0)
    with pytest.raises(ValueError, match="diversity_tau: expected"):
        SIWTrainConfig(diversity_tau=0.0)
    with pytest.raises(ValueError, match="batch: the diversity term needs pairs"):
        SIWTrainConfig(batch=1, diversity_weight=1.0)


# ------------------------------------------------------------------------------------------
# training
# ------------------------------------------------------------------------------------------

def test_run_outputs(straight, photos):
    out = straight.out
    assert straight.finished and straight.step == 4 and straight.model_dir == out / "model"
    run = json.loads((out / "run.json").read_text())
    assert run["format"] == "sofgan-lab/siw-run" and run["num_images"] == run["num_segmaps"] == 8
    assert run["segmap_label_set"] == "sof20" and run["world_size"] == 1
    assert run["model_config"] == TINY.to_dict() and run["train_config"]["steps"] == 4

    recs = MetricsLogger.read(out / "metrics.jsonl")
    assert [r["step"] for r in recs] == [1, 2, 3, 4] and {r["event"] for r in recs} == {"train"}
    for r in recs:
        for k in ("d_loss", "g_loss", "real_score", "fake_score", "pl_mean", "images_per_s"):
            assert math.isfinite(r[k]), (k, r)
        assert r["d_loss"] > 0 and r["g_loss"] > 0
    # lazy regularisation: R1 and path length on steps 0 and 2 (logged as steps 1 and 3)
    assert [("r1" in r, "pl" in r) for r in recs] == [(True, True), (False, False)] * 2
    assert all(math.isfinite(r["r1"]) and r["r1"] >= 0 and math.isfinite(r["pl"]) for r in recs[::2])
    assert recs[-1]["pl_mean"] > 0

    assert sorted(p.name for p in (out / "samples").iterdir()) == ["step_00000002.png", "step_00000004.png"]
    grid = np.asarray(Image.open(out / "samples" / "step_00000004.png"))
    assert grid.shape == (5 * 32, 4 * 32, 3)  # segmaps + 4 styles, 4 segmaps

    cks = list_checkpoints(out / "checkpoints")
    assert [s for s, _ in cks] == [2, 4]
    ck = cks[-1][1]
    assert {"optimizer.g.safetensors", "optimizer.d.safetensors", "model.safetensors", "rng.safetensors",
            "trainer.json"} <= {p.name for p in ck.iterdir()}
    trainer = json.loads((ck / "trainer.json").read_text())
    assert trainer["step"] == 4 and set(trainer["optimizer"]["multiple"]) == {"g", "d"}
    state = load_file(str(ck / "model.safetensors"))
    assert {k.split(".")[0] for k in state} == {"g", "d", "g_ema", "pl_mean"}
    assert "generator/train/rank0" in load_file(str(ck / "rng.safetensors"))
    # the EMA lags behind G
    g_keys = [k[2:] for k in state if k.startswith("g.")]
    assert any(not torch.equal(state["g." + k], state["g_ema." + k]) for k in g_keys)
    assert all(torch.equal(state["g_ema." + k], v) for k, v in straight.generator.state_dict().items())

    loaded = SIWGenerator.from_pretrained(out / "model")
    assert loaded.config.to_dict() == TINY.to_dict()
    assert parameters_checksum(loaded) == parameters_checksum(straight.generator)
    training = json.loads((out / "model" / "training.json").read_text())
    assert training["steps"] == 4 and training["train_config"]["d_reg_every"] == 2
    with torch.no_grad():
        img = loaded(SegmapFolder(photos, 32).batch(torch.tensor([0])), torch.randn(1, TINY.style_dim))
    assert img.shape == (1, 3, 32, 32) and torch.isfinite(img).all()

    # an existing run is not overwritten by accident
    with pytest.raises(FileExistsError, match="out: .* is not empty.*resume"):
        train_siw(photos, photos, out, model_config=TINY, train_config=cfg(), progress=False)


def test_exact_resume_past_a_killed_checkpoint(straight, photos, tmp_path):
    run = tmp_path / "resumed"
    part = train_siw(photos, photos, run, model_config=TINY, train_config=cfg(), progress=False, until=2)
    assert not part.finished and part.step == 2 and part.model_dir is None and not (run / "model").exists()
    assert [s for s, _ in list_checkpoints(run / "checkpoints")] == [2]
    # a checkpoint cut by a kill (hidden partial folder, a step folder without trainer.json) and a
    # metrics line cut in the middle: all ignored on resume
    partial = run / "checkpoints" / ".step_00000003.partial-x1y2"
    partial.mkdir()
    (partial / "model.safetensors").write_bytes(b"\0" * 10)
    (run / "checkpoints" / "step_00000003").mkdir()
    with open(run / "metrics.jsonl", "a") as f:
        f.write('{"event": "train", "step": 3, "d_lo')
    resumed = train_siw(photos, photos, run, model_config=TINY, train_config=cfg(), progress=False, resume=True)
    assert resumed.finished and resumed.step == 4
    assert parameters_checksum(resumed.generator) == parameters_checksum(straight.generator)
    assert _train_records(run / "metrics.jsonl") == _train_records(straight.out / "metrics.jsonl")
    a = load_file(str(run / "checkpoints" / "step_00000004" / "model.safetensors"))
    b = load_file(str(straight.out / "checkpoints" / "step_00000004" / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)  # G, D, G_ema, pl_mean
    for name in ("g", "d"):
        oa = load_file(str(run / "checkpoints" / "step_00000004" / f"optimizer.{name}.safetensors"))
        ob = load_file(str(straight.out / "checkpoints" / "step_00000004" / f"optimizer.{name}.safetensors"))
        assert oa.keys() == ob.keys() and all(torch.equal(oa[k], ob[k]) for k in oa)
    assert not partial.exists()
    assert [s for s, _ in list_checkpoints(run / "checkpoints")] == [2, 4]
    # resuming a finished run trains no further
    again = train_siw(photos, photos, run, model_config=TINY, train_config=cfg(), progress=False, resume=True)
    assert again.finished and parameters_checksum(again.generator) == parameters_checksum(straight.generator)
    # another architecture cannot continue the run
    other = SIWConfig(**{**TINY.to_dict(), "style_dim": 16})
    with pytest.raises(ValueError, match="model_config: differs"):
        train_siw(photos, photos, run, model_config=other, train_config=cfg(), progress=False, resume=True)


def test_resume_applies_a_new_learning_rate(photos, tmp_path):
    """``--resume --lr X`` anneals: the optimizers' saved learning rate does not override the config."""
    run = tmp_path / "anneal"
    train_siw(photos, photos, run, model_config=TINY, train_config=cfg(), progress=False, until=2)
    new = cfg(lr=0.0005, beta2=0.9)
    train_siw(photos, photos, run, model_config=TINY, train_config=new, progress=False, resume=True)
    for step, c in ((2, cfg()), (4, new)):
        saved = json.loads((run / "checkpoints" / f"step_{step:08d}" / "trainer.json").read_text())
        for name, every in (("g", c.g_reg_every), ("d", c.d_reg_every)):
            ratio = every / (every + 1)
            (group,) = saved["optimizer"]["multiple"][name]["param_groups"]
            assert group["lr"] == pytest.approx(c.lr * ratio) and group["betas"][1] == pytest.approx(c.beta2 ** ratio)
    assert json.loads((run / "run.json").read_text())["train_config"]["lr"] == 0.0005


@pytest.mark.parametrize("mode,prob", [("fast", 1.0), ("exact", 0.0)])
def test_region_mix_batches(photos, tmp_path, monkeypatch, mode, prob):
    seen = []
    orig = siw_trainer._styles

    def record(*a, region, **k):
        kwargs, lat = orig(*a, region=region, **k)
        seen.append((region, kwargs.get("mode"), lat.shape[1]))
        return kwargs, lat

    monkeypatch.setattr(siw_trainer, "_styles", record)
    r = train_siw(photos, photos, tmp_path / "run", model_config=TINY, progress=False, limit=4,
                  train_config=cfg(steps=2, region_mix_prob=prob, region_mode=mode, d_reg_every=1, g_reg_every=1,
                                   sample_every=0, checkpoint_every=0))
    assert r.finished and seen
    if prob == 1.0:
        assert set(seen) == {(True, mode, 2)}
    else:
        assert set(seen) == {(False, None, 1)}  # one style per sample (layer-wise mixing in W+)
    recs = MetricsLogger.read(tmp_path / "run" / "metrics.jsonl")
    assert all(math.isfinite(x[k]) for x in recs for k in ("d_loss", "g_loss", "r1", "pl"))
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["num_images"] == run["num_segmaps"] == 4


def test_parser_evaluation_during_training(photos, tmp_path):
    from sofgan_lab.parsing.model import FaceParser, FaceParserConfig

    torch.manual_seed(0)
    parser_dir = tmp_path / "parser"
    FaceParser(FaceParserConfig(widths=(4, 8))).save_pretrained(parser_dir)
    r = train_siw(photos, photos, tmp_path / "run", model_config=TINY, progress=False, limit=4,
                  train_config=cfg(steps=2, eval_every=1, eval_count=4, parser=str(parser_dir), sample_every=0))
    evals = [x for x in MetricsLogger.read(tmp_path / "run" / "metrics.jsonl") if x["event"] == "eval"]
    assert [x["step"] for x in evals] == [1, 2] and all(0 <= x["parser_miou"] <= 1 for x in evals)
    # the colour diversity against the training photos (regions labelled by the parser) is logged
    # at each evaluation: a ratio >= 0 per region, or None where the random parser finds none
    for x in evals:
        for region in ("hair", "skin", "cloth", "background"):
            v = x[f"diversity_{region}"]
            assert v is None or (isinstance(v, float) and v >= 0), (region, v)
    assert r.metrics["parser_miou"] == evals[-1]["parser_miou"]
    training = json.loads((r.model_dir / "training.json").read_text())
    assert training["final_metrics"]["parser_miou"] == evals[-1]["parser_miou"]


def test_colour_diversity_during_training_uses_the_parsers_regions(photos, tmp_path, monkeypatch):
    """The training-time colour diversity labels the reference photos with the parser: a parser that
    calls every pixel skin gives a finite skin ratio > 0 (a random generator's colours vary) and no
    hair ratio (no photo shows hair)."""
    from sofgan_lab import parsing
    from sofgan_lab.labels import SOF

    class AllSkin:
        def to(self, device):
            return self

        def eval(self):
            return self

        def parse(self, images, **kw):
            return torch.full((images.shape[0], *images.shape[-2:]), int(SOF.SKIN), dtype=torch.long)

    monkeypatch.setattr(parsing.FaceParser, "from_pretrained", classmethod(lambda cls, *a, **k: AllSkin()))
    torch.manual_seed(0)
    train_siw(photos, photos, tmp_path / "run", model_config=TINY, progress=False, limit=4,
              train_config=cfg(steps=1, eval_every=1, eval_count=4, parser="demo", sample_every=0))
    (ev,) = [x for x in MetricsLogger.read(tmp_path / "run" / "metrics.jsonl") if x["event"] == "eval"]
    assert ev["diversity_hair"] is None and ev["diversity_background"] is None, ev
    assert isinstance(ev["diversity_skin"], float) and math.isfinite(ev["diversity_skin"]) and ev["diversity_skin"] > 0, ev


def test_config_errors(photos, tmp_path):
    with pytest.raises(ValueError, match="steps: expected an integer >= 1"):
        SIWTrainConfig(steps=0)
    with pytest.raises(ValueError, match="region_mode: expected"):
        SIWTrainConfig(region_mode="slow")
    with pytest.raises(ValueError, match="scale_min/scale_max"):
        SIWTrainConfig(scale_max=0.5)
    with pytest.raises(ValueError, match="parser: eval_every > 0"):
        SIWTrainConfig(eval_every=10)
    for kw, match in ((dict(until=0), "until: expected"), (dict(limit=0), "limit: expected"),
                      (dict(limit=-1), "limit: expected"), (dict(train_config={}), "train_config: expected")):
        with pytest.raises((ValueError, TypeError), match=match):
            train_siw(photos, photos, tmp_path / "r", model_config=TINY, progress=False, **kw)
    assert not (tmp_path / "r").exists()


def test_amp_on_cpu_is_opt_in_and_changes_the_arithmetic(straight, photos, tmp_path):
    r = train_siw(photos, photos, tmp_path / "bf16", model_config=TINY, progress=False,
                  train_config=cfg(amp_cpu=True))
    assert r.finished
    recs = [x for x in MetricsLogger.read(tmp_path / "bf16" / "metrics.jsonl") if x["event"] == "train"]
    assert recs and all(math.isfinite(x[k]) for x in recs for k in ("d_loss", "g_loss", "r1", "pl") if k in x)
    a, b = straight.generator.state_dict(), r.generator.state_dict()
    diffs = [float((a[k] - b[k]).abs().max()) for k in a if a[k].is_floating_point()]
    assert max(diffs) > 0            # bfloat16 autocast ran (the float32 run is bit-exact otherwise)
    assert max(diffs) < 0.5          # ... and trained the same model, roughly


@pytest.mark.gpu
def test_amp_on_cuda(photos, tmp_path):
    r = train_siw(photos, photos, tmp_path / "gpu", model_config=TINY, progress=False,
                  train_config=cfg(steps=2, device="cuda", amp=True, d_reg_every=1, g_reg_every=1))
    assert r.finished and r.generator.device.type == "cuda"
    recs = MetricsLogger.read(tmp_path / "gpu" / "metrics.jsonl")
    assert all(math.isfinite(x[k]) for x in recs for k in ("d_loss", "g_loss", "r1", "pl"))


# ------------------------------------------------------------------------------------------
# data-parallel: two CPU processes (gloo)
# ------------------------------------------------------------------------------------------

_DDP_WORKER = r"""
import json, os, sys
import torch
torch.set_num_threads(1)
from sofgan_lab.texture.generator import SIWConfig
from sofgan_lab.train import siw_trainer
from sofgan_lab.train.common import parameters_checksum
from sofgan_lab.train.siw_trainer import SIWTrainConfig, train_siw
nets, drawn = [], []
_ema, _index = siw_trainer._ema_update, siw_trainer._index
def _keep(g_ema, g, beta):
    nets[:] = [g]
    return _ema(g_ema, g, beta)
def _record(count, n, gen):
    i = _index(count, n, gen)
    drawn.append(i.tolist())
    return i
siw_trainer._ema_update, siw_trainer._index = _keep, _record
r = train_siw(sys.argv[1], sys.argv[1], sys.argv[2], model_config=SIWConfig.from_dict(json.loads(sys.argv[3])),
              train_config=SIWTrainConfig(**json.loads(sys.argv[4])), progress=False)
rank = int(os.environ["RANK"])
with open(os.path.join(sys.argv[2], f"rank{rank}.json"), "w") as f:
    json.dump({"world_size": int(os.environ["WORLD_SIZE"]), "g": parameters_checksum(nets[0]),
               "g_ema": parameters_checksum(r.generator), "drawn": drawn}, f)
"""


def test_ddp_two_cpu_processes(photos, tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(_DDP_WORKER)
    run = tmp_path / "ddp"
    c = cfg(steps=2, d_reg_every=1, g_reg_every=1, sample_every=0, checkpoint_every=1)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    # --standalone: torchrun picks a free local port itself
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           str(script), str(photos), str(run), json.dumps(TINY.to_dict()), json.dumps(c.to_dict())],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-6000:]
    r0, r1 = (json.loads((run / f"rank{r}.json").read_text()) for r in (0, 1))
    assert r0["world_size"] == r1["world_size"] == 2
    assert r0["drawn"] != r1["drawn"], "both ranks drew the same data"
    assert r0["g"] == r1["g"], "the ranks' generators diverged"
    assert r0["g_ema"] == r1["g_ema"]
    rng = load_file(str(run / "checkpoints" / "step_00000002" / "rng.safetensors"))
    assert not torch.equal(rng["generator/train/rank0"], rng["generator/train/rank1"])
    assert json.loads((run / "model" / "training.json").read_text())["world_size"] == 2
    assert len(MetricsLogger.read(run / "metrics.jsonl")) == 2  # rank 0 logs alone
    # a resumed run must use the same number of processes
    with pytest.raises(ValueError, match="out: the run .* used 2 processes"):
        train_siw(photos, photos, run, model_config=TINY, train_config=c, progress=False, resume=True)


# ------------------------------------------------------------------------------------------
# CLI
# ------------------------------------------------------------------------------------------

def test_cli_train_siw(photos, tmp_path, capsys):
    run = tmp_path / "run"
    args = ["-q", "train", "siw", str(photos), str(photos), "--out", str(run), "--size", "32", "--steps", "2",
            "--batch", "2", "--limit", "4", "--device", "cpu", "--lr", "0.001", "--r1-gamma", "5",
            "--pl-weight", "1", "--region-mix-prob", "1", "--region-mode", "fast", "--scale-max", "1.2",
            "--no-flip", "--segmap-labels", "sof20", "--log-every", "1", "--seed", "3", "--stream-images",
            "--amp-cpu"]
    assert main([*args, "--until", "1"]) == 0
    out = json.loads(capsys.readouterr().out.strip())
    assert out == {"model": None, "steps": 1, "finished": False}
    assert main([*args, "--resume"]) == 0
    out = json.loads(capsys.readouterr().out.strip())
    assert out == {"model": str(run / "model"), "steps": 2, "finished": True}
    training = json.loads((run / "model" / "training.json").read_text())
    assert training["model_config"] == SIWConfig.demo(32).to_dict()
    tc = training["train_config"]
    assert (tc["steps"], tc["batch"], tc["lr"], tc["r1_gamma"], tc["pl_weight"], tc["region_mix_prob"],
            tc["region_mode"], tc["scale_max"], tc["flip"], tc["seed"], tc["log_every"], tc["device"]) == (
        2, 2, 0.001, 5.0, 1.0, 1.0, "fast", 1.2, False, 3, 1, "cpu")
    assert tc["images_in_memory"] is False and tc["amp_cpu"] is True
    assert tc["checkpoint_every"] == tc["sample_every"] == 2  # clamped to --steps
    assert training["num_images"] == 4 and training["segmap_label_set"] == "sof20"
    assert [r["step"] for r in MetricsLogger.read(run / "metrics.jsonl")] == [1, 2]
    assert SIWGenerator.from_pretrained(run / "model").config.size == 32

    # without --resume the run is protected
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("sofgan-lab: error: --out:") and "--resume" in err and "\n" not in err


def test_cli_bad_arguments(photos, tmp_path, capsys):
    from sofgan_lab.demo import demo_dir

    def argv(*extra, images=photos, segmaps=photos, out=tmp_path / "r"):
        return ["-q", "train", "siw", str(images), str(segmaps), "--out", str(out), "--size", "32", *extra]

    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x.txt").write_text("x")
    bad = [
        (argv("--size", "48"), "--size:"),
        (argv("--size", "16"), "--size:"),
        (argv(images=tmp_path / "none"), "IMAGES:"),
        (argv(segmaps=tmp_path / "none"), "SEGMAPS:"),
        (argv(segmaps=photos / "images"), "SEGMAPS:"),                    # RGB files
        (argv(images=tmp_path / "full"), "IMAGES:"),                      # no image files
        (argv(out=tmp_path / "full"), "--out:"),
        (argv("--segmap-labels", "sofgan17"), "SEGMAPS:"),                # ids 17..19
        (argv("--steps", "0"), "--steps:"),
        (argv("--batch", "0"), "--batch:"),
        (argv("--lr", "-1"), "--lr:"),
        (argv("--r1-gamma", "-1"), "--r1-gamma:"),
        (argv("--pl-weight", "-1"), "--pl-weight:"),
        (argv("--region-mix-prob", "2"), "--region-mix-prob:"),
        (argv("--scale-max", "0.5"), "--scale-max:"),
        (argv("--log-every", "0"), "--log-every:"),
        (argv("--sample-every", "-1"), "--sample-every:"),
        (argv("--checkpoint-every", "-1"), "--checkpoint-every:"),
        (argv("--seed", "-1"), "--seed:"),
        (argv("--until", "0"), "--until:"),
        (argv("--limit", "0"), "--limit:"),
        (argv("--eval-every", "5"), "--parser:"),
        (argv("--eval-every", "5", "--parser", str(tmp_path / "none")), "--parser:"),
        (argv("--parser-weight", "1"), "--loss-parser:"),
        (argv("--parser-weight", "1", "--loss-parser", str(tmp_path / "none")), "--loss-parser:"),
        (argv("--parser-weight", "-1"), "--parser-weight:"),
        (argv("--diversity-weight", "-1"), "--diversity-weight:"),
        (argv("--diversity-tau", "0"), "--diversity-tau:"),
    ]
    try:
        demo_dir("parser")
    except FileNotFoundError:  # no demo parser shipped (yet)
        bad.append((argv("--eval-every", "5", "--parser", "demo"), "--parser:"))
    if not torch.cuda.is_available():
        bad.append((argv("--device", "cuda"), "--device:"))
    for args, flag in bad:
        assert main(args) == 2, args
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"sofgan-lab: error: {flag}"), (args, err)
        assert "Traceback" not in err and "\n" not in err
    assert not (tmp_path / "r").exists()
    # argparse's own checks: exit status 2 and the flag named
    for args, flag in ((argv("--region-mode", "slow"), "--region-mode"), (argv("--preset", "big"), "--preset"),
                       (argv("--segmap-labels", "x"), "--segmap-labels"), (argv("--steps", "x"), "--steps")):
        with pytest.raises(SystemExit) as exc:
            main(args)
        assert exc.value.code == 2
        assert flag in capsys.readouterr().err


def test_streamed_photos_train_exactly_like_preloaded_ones(straight, photos, tmp_path, monkeypatch):
    from sofgan_lab.train import siw_trainer as st

    r = train_siw(photos, photos, tmp_path / "stream", model_config=TINY, progress=False,
                  train_config=cfg(images_in_memory=False))
    a, b = straight.generator.state_dict(), r.generator.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    # auto: a folder above the memory budget is streamed
    seen = []
    orig = st._image_source

    def spy(*args):
        src = orig(*args)
        seen.append(type(src).__name__)
        return src

    monkeypatch.setattr(st, "_image_source", spy)
    monkeypatch.setattr(st, "IMAGES_IN_MEMORY_BYTES", 100)
    train_siw(photos, photos, tmp_path / "auto", model_config=TINY, progress=False, limit=4,
              train_config=cfg(steps=1, sample_every=0, checkpoint_every=0))
    assert seen == ["StreamingImageFolder"]
    with pytest.raises(TypeError, match="images_in_memory: expected a bool"):
        cfg(images_in_memory="yes")


def test_load_siw_generator_from_model_run_and_checkpoint_folders(straight):
    from sofgan_lab.train import load_siw_generator

    out = straight.out
    ref = parameters_checksum(straight.generator)
    assert parameters_checksum(load_siw_generator(out / "model")) == ref
    assert parameters_checksum(load_siw_generator(out)) == ref                      # run folder -> model/
    ck2, ck4 = (p for _, p in list_checkpoints(out / "checkpoints"))
    assert parameters_checksum(load_siw_generator(ck4)) == ref                      # G_ema of the last step
    state = load_file(str(ck2 / "model.safetensors"))
    g2 = load_siw_generator(ck2, which="g")
    assert not g2.training
    assert all(torch.equal(v, state["g." + k]) for k, v in g2.state_dict().items())
    assert not all(torch.equal(v, state["g_ema." + k]) for k, v in g2.state_dict().items())
    with pytest.raises(ValueError, match="which: .*'g' needs a checkpoint folder"):
        load_siw_generator(out / "model", which="g")
    with pytest.raises(ValueError, match="which: expected"):
        load_siw_generator(ck4, which="d")
    with pytest.raises(ValueError, match="path: .* is not a folder"):
        load_siw_generator(out / "nothing")


def test_load_siw_generator_from_an_unfinished_run_takes_the_newest_checkpoint(straight, tmp_path):
    from sofgan_lab.train import load_siw_generator

    run = tmp_path / "run"
    shutil.copytree(straight.out / "checkpoints", run / "checkpoints")
    assert parameters_checksum(load_siw_generator(run)) == parameters_checksum(straight.generator)
    with pytest.raises(ValueError, match="holds no model/, no checkpoints"):
        load_siw_generator(tmp_path)


def test_evaluate_siw_and_the_eval_siw_command(straight, photos, tmp_path, capsys):
    from sofgan_lab.parsing.model import FaceParser, FaceParserConfig
    from sofgan_lab.train import evaluate_siw

    torch.manual_seed(0)
    parser_dir = tmp_path / "parser"
    parser = FaceParser(FaceParserConfig(widths=(4, 8)))
    parser.save_pretrained(parser_dir)
    segs = SegmapFolder(photos, 32).data[:4]
    rep = evaluate_siw(straight.generator, parser, segs, seed=1)
    assert rep["count"] == 4 and 0 <= rep["miou"] <= 1 and 0 <= rep["pixel_accuracy"] <= 1
    assert rep["leak_outside"] >= 0 and rep["leak_inside"] > 0 and set(rep["per_class"]) <= set(SOFGAN17_NAMES)
    assert rep["miou"] == pytest.approx(np.mean(list(rep["per_class"].values())))

    base = ["-q", "eval", "siw", str(straight.out / "checkpoints" / "step_00000004"), "--segmaps", str(photos),
            "--parser", str(parser_dir), "--n", "4", "--seed", "1"]
    assert main(base) == 0
    out = json.loads(capsys.readouterr().out.strip())
    assert out["miou"] == pytest.approx(rep["miou"]) and out["leak_outside"] == pytest.approx(rep["leak_outside"])
    assert out["count"] == 4 and out["group"] == "hair" and out["truncation"] == 1.0
    assert main([*base, "--which", "g"]) == 0
    assert json.loads(capsys.readouterr().out.strip())["leak_inside"] != out["leak_inside"]

    for extra, flag in ((["--n", "0"], "--n:"), (["--parser", str(tmp_path / "none")], "--parser:"),
                        (["--group", "beard"], "--group:"), (["--dilation", "-1"], "--dilation:")):
        assert main([*base, *extra]) == 2, extra
        assert capsys.readouterr().err.startswith(f"sofgan-lab: error: {flag}"), extra
    assert main(["-q", "eval", "siw", str(tmp_path / "none"), "--segmaps", str(photos)]) == 2
    assert capsys.readouterr().err.startswith("sofgan-lab: error: MODEL:")
    assert main([*base[:3], str(straight.out), "--segmaps", str(tmp_path / "none")]) == 2
    assert capsys.readouterr().err.startswith("sofgan-lab: error: --segmaps:")


def test_eval_siw_colour_diversity_against_the_photos(straight, photos, tmp_path, capsys):
    """With photos (by default the --segmaps folder when it holds images/): the colour diversity per
    region, the photos' hair ΔE and the region mixer's ΔE; NaN (undefined) comes out as null."""
    from sofgan_lab.metrics.texture import photo_region_delta_e, region_edit_leakage
    from sofgan_lab.parsing.model import FaceParser, FaceParserConfig
    from sofgan_lab.train import evaluate_siw

    torch.manual_seed(0)
    parser_dir = tmp_path / "parser"
    parser = FaceParser(FaceParserConfig(widths=(4, 8)))
    parser.save_pretrained(parser_dir)
    base = ["-q", "eval", "siw", str(straight.out / "checkpoints" / "step_00000004"), "--parser", str(parser_dir),
            "--n", "3", "--seed", "2", "--styles", "2", "--geometries", "1"]
    assert main([*base, "--segmaps", str(photos)]) == 0
    out = json.loads(capsys.readouterr().out.strip())
    assert set(out["diversity_ratio"]) == {"hair", "skin", "cloth", "background"}
    assert all(v is None or (math.isfinite(v) and v >= 0) for v in out["diversity_ratio"].values())
    assert out["diversity_ratio"]["hair"] > 0 and out["diversity_ratio"]["background"] > 0
    assert (out["diversity_styles"], out["diversity_geometries"], out["photos"]) == (2, 1, 3)
    imgs = ImageFolder(photos, 32, limit=3).data.float() / 127.5 - 1
    segs = SegmapFolder(photos, 32, limit=3).data
    assert out["photo_delta_e"] == pytest.approx(photo_region_delta_e(imgs, segs, "hair")["delta_e"], rel=1e-6)
    leak = region_edit_leakage(straight.generator, segs, "hair", seed=2, dilation=5)
    assert out["mix_delta_e"] == pytest.approx(leak["delta_e"], rel=1e-6) and out["mix_delta_e"] > 0
    assert out["mix_delta_e_ratio"] == pytest.approx(out["mix_delta_e"] / out["photo_delta_e"], rel=1e-9)
    rep = evaluate_siw(straight.generator, parser, segs, seed=2, photos=imgs, photo_segmaps=segs, n_styles=2,
                       n_geometries=1)
    for region, v in rep["diversity_ratio"].items():
        assert out["diversity_ratio"][region] == (None if math.isnan(v) else pytest.approx(v, rel=1e-6))
    # --photos given explicitly: the same numbers; a segmaps folder without images/: no photo metrics
    assert main([*base, "--segmaps", str(photos), "--photos", str(photos)]) == 0
    again = json.loads(capsys.readouterr().out.strip())
    assert again["photo_delta_e"] == out["photo_delta_e"] and again["diversity_ratio"] == out["diversity_ratio"]
    maps_only = tmp_path / "maps_only"
    shutil.copytree(photos / "segmaps", maps_only / "segmaps")
    shutil.copy(photos / "index.json", maps_only / "index.json")
    assert main([*base, "--segmaps", str(maps_only)]) == 0
    bare = json.loads(capsys.readouterr().out.strip())
    assert "diversity_ratio" not in bare and "photo_delta_e" not in bare and "mix_delta_e_ratio" not in bare
    assert bare["mix_delta_e"] == pytest.approx(out["mix_delta_e"], rel=1e-9)
    # errors name the flag
    images_only = tmp_path / "images_only"
    shutil.copytree(photos / "images", images_only / "images")
    for extra, flag in ((["--photos", str(images_only)], "--photos:"), (["--photos", str(tmp_path / "none")], "--photos:"),
                        (["--styles", "1"], "--styles:"), (["--geometries", "0"], "--geometries:")):
        assert main([*base, "--segmaps", str(photos), *extra]) == 2, extra
        err = capsys.readouterr().err
        assert err.startswith(f"sofgan-lab: error: {flag}"), (extra, err)
        assert err.count("\n") == 1 and "Traceback" not in err
    # photos whose hair all looks alike give no ΔE reference: the ratio is NaN, not a crash
    same = imgs[:1].expand(3, -1, -1, -1)
    rep = evaluate_siw(straight.generator, parser, segs, seed=2, photos=same, photo_segmaps=segs[:1].expand(3, -1, -1),
                       n_styles=2, n_geometries=1)
    assert rep["photo_delta_e"] == pytest.approx(0.0, abs=1e-6) and math.isnan(rep["mix_delta_e_ratio"])
    with pytest.raises(ValueError, match="^photo_segmaps: "):
        evaluate_siw(straight.generator, parser, segs, photos=imgs)


def test_init_from_grows_spade_layers_as_the_identity(straight, photos, tmp_path, capsys):
    """Fine-tuning: start from a checkpoint, add SPADE at 16² and 32² (the source has none at 32²);
    the new layers start as the identity, so the first images are the source's exactly."""
    from sofgan_lab.train import load_siw_generator
    from sofgan_lab.train.siw_trainer import SIWNetworks, _ema_beta, _init_from

    ck = straight.out / "checkpoints" / "step_00000004"
    grown_cfg = SIWConfig(**{**TINY.to_dict(), "spade_min": 16})
    torch.manual_seed(3)
    nets = SIWNetworks(grown_cfg)
    info = _init_from(nets, ck)
    assert info["networks"] == ["d", "g", "g_ema"] and info["new_spade_layers"] == ["convs.2", "convs.4"]
    src = load_siw_generator(ck)
    seg = SegmapFolder(photos, 32).batch(torch.tensor([0, 1]))
    z = torch.randn(2, TINY.style_dim, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(nets.g_ema.eval()(seg, z), src(seg, z), rtol=0, atol=1e-6)
    assert nets.g_ema.convs[2].segEncoder.mlp_gamma.weight.abs().max() == 0
    assert nets.g_ema.convs[2].segEncoder.mlp_shared[0].weight.abs().max() > 0  # only gamma/beta are zeroed
    # D comes along from a checkpoint; a saved generator brings G only
    d_src = load_file(str(ck / "model.safetensors"))
    assert all(torch.equal(v, d_src[f"d.{k}"]) for k, v in nets.d.state_dict().items())
    assert _init_from(SIWNetworks(TINY), straight.model_dir)["networks"] == ["g", "g_ema"]
    # anything but added SPADE layers is an error
    with pytest.raises(ValueError, match="init_from: .* does not fit this model"):
        _init_from(SIWNetworks(SIWConfig(**{**TINY.to_dict(), "style_dim": 16})), ck)
    with pytest.raises(ValueError, match="init_from: .* is not a folder"):
        _init_from(SIWNetworks(TINY), tmp_path / "none")
    # a fine-tuning run's EMA has no ramp-up (it would throw the trained G_ema away)
    c = cfg()
    assert _ema_beta(c, 16, 8, rampup=False) == pytest.approx(0.5 ** (8 / 10000))
    assert _ema_beta(c, 16, 8) < 0.01

    # the command: --init-from + --spade-min, recorded in run.json, resumable
    common = ["-q", "train", "siw", str(photos), str(photos), "--size", "32", "--steps", "1", "--batch", "2",
              "--pl-weight", "0", "--device", "cpu"]
    assert main([*common, "--out", str(tmp_path / "src")]) == 0  # the demo preset at 32², SPADE from 64²: none
    run = tmp_path / "ft"
    args = [*common, "--out", str(run), "--spade-min", "16", "--init-from", str(tmp_path / "src")]
    assert main(args) == 0
    capsys.readouterr()
    record = json.loads((run / "run.json").read_text())
    assert record["init_from"] == str(tmp_path / "src") and record["model_config"]["spade_min"] == 16
    tuned = load_siw_generator(run)
    assert tuned.config.spade_min == 16 and tuned.convs[4].segEncoder.mlp_gamma.weight.abs().max() > 0
    # resumed without --init-from, it stays a fine-tuning run (run.json keeps init_from, which
    # is what turns the EMA ramp-up off)
    resumed = [a if a != "1" else "2" for a in args if a not in ("--init-from", str(tmp_path / "src"))]
    assert main([*resumed, "--resume"]) == 0
    capsys.readouterr()
    assert json.loads((run / "run.json").read_text())["init_from"] == str(tmp_path / "src")
    for extra, flag in ((["--spade-min", "24"], "--spade-min:"), (["--spade-min", "64", "--spade-max", "32"],
                                                                   "--spade-min/--spade-max:"),
                        (["--init-from", str(tmp_path / "none")], "--init-from:")):
        bad = [a for a in args if a not in ("--spade-min", "16")]
        bad[bad.index("--out") + 1] = str(tmp_path / "bad")
        assert main([*bad, *extra]) == 2, extra
        assert capsys.readouterr().err.startswith(f"sofgan-lab: error: {flag}"), extra


def test_init_from_widens_the_channels_without_changing_the_function(straight, photos, tmp_path, capsys):
    """``--channels`` + ``--init-from``: a wider model (more channels at 16² and 32²) starts from a
    narrower checkpoint and computes what it computed — G, G_ema and D — while the new channels
    are connected onward (they can learn) and the old weights are all there."""
    from sofgan_lab.train import load_siw_generator
    from sofgan_lab.train.siw_trainer import SIWNetworks, _init_from
    from sofgan_lab.io.checkpoints import load_module

    ck = straight.out / "checkpoints" / "step_00000004"
    wide_cfg = SIWConfig(**{**TINY.to_dict(), "channels": {4: 32, 8: 32, 16: 24, 32: 32}})
    torch.manual_seed(4)
    nets = SIWNetworks(wide_cfg)
    info = _init_from(nets, ck)
    assert info["widened"] == {"16": [16, 24], "32": [16, 32]}
    src = load_module(SIWNetworks, ck, kind="siw_train", config_cls=SIWConfig)
    seg = SegmapFolder(photos, 32).batch(torch.tensor([0, 1, 2]))
    z = torch.randn(3, TINY.style_dim, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        for name in ("g", "g_ema"):
            torch.manual_seed(1)  # the same noise draws: their shapes do not depend on the widths
            want = getattr(src, name).eval()(seg, z)
            torch.manual_seed(1)
            torch.testing.assert_close(getattr(nets, name).eval()(seg, z), want, rtol=0, atol=1e-5)
        x = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(2))
        torch.testing.assert_close(nets.d(x), src.d(x), rtol=0, atol=1e-4)
    # the equalised-lr weights were rescaled for their larger fan-in; weights from the new inputs
    # are zero, the new outputs keep their fresh init (also in D's first layer: 16 -> 32 from RGB)
    w_old, w_new = src.g.convs[4].conv.weight, nets.g.convs[4].conv.weight  # to 32²: in 16 -> 24, out 16 -> 32
    torch.testing.assert_close(w_new[:, :16, :16], w_old * (24 / 16) ** 0.5)
    assert w_new[:, :, 16:].abs().max() == 0 and w_new[:, 16:, :16].abs().max() > 0
    assert nets.d.convs[0][0].weight[16:].abs().max() > 0
    assert torch.equal(w_new[:, 16:], nets.g_ema.convs[4].conv.weight[:, 16:])  # G_ema starts as G
    # narrower or a different 4x4 width: an error that names init_from
    for table in ({4: 32, 8: 32, 16: 8, 32: 16}, {4: 48, 8: 32, 16: 16, 32: 16}):
        with pytest.raises(ValueError, match="init_from: .* may only be wider"):
            _init_from(SIWNetworks(SIWConfig(**{**TINY.to_dict(), "channels": table})), ck)

    # the command: --channels with --init-from trains on, and --channels is checked
    common = ["-q", "train", "siw", str(photos), str(photos), "--size", "32", "--steps", "1", "--batch", "2",
              "--pl-weight", "0", "--device", "cpu"]
    assert main([*common, "--out", str(tmp_path / "src")]) == 0
    run = tmp_path / "wide"
    assert main([*common, "--out", str(run), "--channels", "32:96", "--init-from", str(tmp_path / "src")]) == 0
    capsys.readouterr()
    assert load_siw_generator(run).config.channels[32] == 96
    with pytest.raises(SystemExit) as exit_:  # argparse's own error
        main([*common, "--out", str(tmp_path / "bad"), "--channels", "32:x"])
    assert exit_.value.code == 2 and "argument --channels: expected RES:WIDTH" in capsys.readouterr().err
    for extra, flag in ((["--channels", "64:8"], "--channels:"),
                        (["--channels", "32:16", "--init-from", str(tmp_path / "src")], "--init-from:")):
        assert main([*common, "--out", str(tmp_path / "bad"), *extra]) == 2, extra
        err = capsys.readouterr().err
        assert flag in err.splitlines()[-1], (extra, err)


@pytest.mark.parametrize("name", ["lr", "pl_weight", "r1_gamma", "ema_kimg", "ema_rampup", "scale_max"])
@pytest.mark.parametrize("value", [math.inf, math.nan])
def test_config_refuses_non_finite_floats_like_sofs(name, value):
    """Before: ``lr``, ``pl_weight``, ``r1_gamma`` = inf were accepted (SOFTrainConfig refuses them)."""
    with pytest.raises(ValueError, match=f"{name}: expected a finite number"):
        SIWTrainConfig(**{name: value})


def test_config_refuses_strings_for_numbers_naming_them():
    with pytest.raises(TypeError, match="lr: expected a finite number > 0, got '0.002' \\(str\\)"):
        SIWTrainConfig(lr="0.002")  # before: "'>' not supported between instances of 'str' and 'int'"
    with pytest.raises(ValueError, match=r"mixing: expected a number in \[0, 1\], got nan"):
        SIWTrainConfig(mixing=math.nan)
