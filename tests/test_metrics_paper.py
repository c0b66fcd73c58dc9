"""The paper's §6.3 metrics (``sofgan_lab.metrics``): Fréchet distance closed forms, KID, LPIPS loading
and input rules, diversity (Table 2, SSG), FVV identity, FID plumbing, representability, tables.

Models: the shipped demo SOF + geometry space with a tiny random 32-px SIW generator (as in
``test_pipeline.py``); LPIPS with a random (seeded) trunk — no ImageNet weights are needed.
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
import torch.nn as nn

from sofgan_lab.metrics import (FeatureStats, MetricResult, compute_features, fid, frechet_distance, fvv_identity,
                                kid, load_lpips, lpips_diversity, make_provenance, metric_table, representability,
                                ssg_diversity, table_to_csv, table_to_latex, table_to_markdown)
from sofgan_lab.metrics.features import FID_INCEPTION_FILE, InceptionFeatures, ParserFeatures, load_inception
from sofgan_lab.metrics.perceptual import BACKBONE_FILES
from sofgan_lab.metrics.sampling import PipelineSampler, save_like
from sofgan_lab.pipeline import SofGAN
from _tiny import tiny_pipeline  # tests/_tiny.py

pytestmark = pytest.mark.usefixtures("one_thread")




@pytest.fixture(scope="module")
def pipe() -> SofGAN:
    return tiny_pipeline()


@pytest.fixture(scope="module")
def alex():
    return load_lpips("alex", pretrained_backbone=False)


def _images(n: int, size: int = 32, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def _rotation(d: int, seed: int) -> np.ndarray:
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(d, d)))
    return q


# --------------------------------------------------------------------------------------- Fréchet
def _closed_form(mu1, a, mu2, b) -> float:
    """FD of Gaussians whose covariances share eigenvectors, eigenvalues a and b."""
    return float(((mu1 - mu2) ** 2).sum() + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum())


def test_frechet_matches_closed_form_for_diagonal_and_commuting_covariances():
    rng = np.random.default_rng(0)
    d = 16
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    a, b = rng.uniform(0.1, 5, d), rng.uniform(0.1, 5, d)
    want = _closed_form(mu1, a, mu2, b)
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(want, rel=1e-6)
    q = _rotation(d, 1)
    s1, s2 = q @ np.diag(a) @ q.T, q @ np.diag(b) @ q.T
    s1, s2 = (s1 + s1.T) / 2, (s2 + s2.T) / 2
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(want, rel=1e-6)
    # torch inputs, 1-D case: (mu1 - mu2)^2 + (sigma1 - sigma2)^2
    assert frechet_distance(torch.tensor([1.0]), torch.tensor([[4.0]]), torch.tensor([-2.0]),
                            torch.tensor([[9.0]])) == pytest.approx(9.0 + 1.0, rel=1e-12)


def test_frechet_is_exact_and_finite_for_singular_covariances():
    rng = np.random.default_rng(2)
    d = 12
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    a, b = rng.uniform(0.5, 3, d), rng.uniform(0.5, 3, d)
    a[6:] = 0                                        # rank 6
    b[:3] = 0                                        # rank 9, a different null space
    q = _rotation(d, 3)
    s1, s2 = q @ np.diag(a) @ q.T, q @ np.diag(b) @ q.T
    v = frechet_distance(mu1, (s1 + s1.T) / 2, mu2, (s2 + s2.T) / 2)
    assert math.isfinite(v) and v == pytest.approx(_closed_form(mu1, a, mu2, b), rel=1e-6)
    # rank-1 covariances along different directions u, w: tr sqrt(S1 S2) = sqrt(a b) |u.w|
    u, w = rng.normal(size=d), rng.normal(size=d)
    u, w = u / np.linalg.norm(u), w / np.linalg.norm(w)
    s1, s2 = 2.0 * np.outer(u, u), 3.0 * np.outer(w, w)
    want = float(((mu1 - mu2) ** 2).sum() + 2.0 + 3.0 - 2 * math.sqrt(6.0) * abs(u @ w))
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(want, rel=1e-6)
    # all-zero covariances: only the means count
    z = np.zeros((d, d))
    assert frechet_distance(mu1, z, mu2, z) == pytest.approx(float(((mu1 - mu2) ** 2).sum()), rel=1e-12)


def test_frechet_general_case_agrees_with_sqrtm_and_is_symmetric():
    import scipy.linalg

    rng = np.random.default_rng(4)
    d = 10
    x, y = rng.normal(size=(3 * d, d)), rng.normal(size=(3 * d, d)) @ rng.normal(size=(d, d))
    mu1, mu2 = x.mean(0), y.mean(0) + 1
    s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    ref = float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2)
                - 2 * np.trace(scipy.linalg.sqrtm(s1 @ s2).real))
    v12, v21 = frechet_distance(mu1, s1, mu2, s2), frechet_distance(mu2, s2, mu1, s1)
    assert v12 == pytest.approx(ref, rel=1e-6)
    assert v12 == pytest.approx(v21, rel=1e-10)
    assert frechet_distance(mu1, s1, mu1, s1) == pytest.approx(0.0, abs=1e-8)


def test_frechet_rejects_bad_input_naming_the_argument():
    eye = np.eye(3)
    with pytest.raises(ValueError, match="sigma1: not symmetric"):
        frechet_distance(np.zeros(3), eye + np.triu(np.ones((3, 3)), 1), np.zeros(3), eye)
    with pytest.raises(ValueError, match="sigma2: not positive semi-definite"):
        frechet_distance(np.zeros(3), eye, np.zeros(3), -eye)
    with pytest.raises(ValueError, match="mu1, mu2"):
        frechet_distance(np.zeros(3), eye, np.zeros(4), np.eye(4))
    with pytest.raises(ValueError, match="sigma1: expected shape"):
        frechet_distance(np.zeros(3), np.eye(4), np.zeros(3), eye)
    with pytest.raises(ValueError, match="mu2: contains NaN"):
        frechet_distance(np.zeros(3), eye, np.array([0, np.nan, 0]), eye)


def test_feature_stats_stream_equals_numpy_in_any_batching():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(103, 7)) * 100 + 1e4       # large offset: naive sum-of-squares would lose digits
    s = FeatureStats()
    for chunk in np.array_split(x, [1, 5, 40, 41]):
        s.update(torch.from_numpy(chunk))
    np.testing.assert_allclose(s.mean, x.mean(0), rtol=1e-12)
    np.testing.assert_allclose(s.cov, np.cov(x, rowvar=False), rtol=1e-9)
    a, b = FeatureStats().update(x[:50]), FeatureStats().update(x[50:])
    np.testing.assert_allclose(a.merge(b).cov, np.cov(x, rowvar=False), rtol=1e-9)
    with pytest.raises(ValueError, match="feats: expected 7 feature dims"):
        s.update(np.zeros((2, 3)))


# --------------------------------------------------------------------------------------- KID
def test_kid_is_near_zero_for_one_distribution_and_positive_for_a_shift():
    rng = np.random.default_rng(6)
    d = 16
    x, y = rng.normal(size=(400, d)), rng.normal(size=(400, d))
    same = kid(x, y, subsets=20, subset_size=100, seed=0)
    shifted = kid(x, y + 0.5, subsets=20, subset_size=100, seed=0)
    assert same.metric == "kid" and same.n == 20 and same.error is not None
    assert abs(same.value) < 3 * same.error + 1e-3
    assert shifted.value > 0.05 and shifted.value > 20 * abs(same.value)
    assert not same.comparable_to_paper and same.provenance["extras"]["subset_size"] == 100
    with pytest.raises(ValueError, match="subset_size"):
        kid(x, y, subsets=2, subset_size=500)
    with pytest.raises(ValueError, match="feats1, feats2"):
        kid(x, y[:, :3], subsets=2, subset_size=10)


# --------------------------------------------------------------------------------------- LPIPS
def test_lpips_identity_symmetry_and_positivity(alex):
    x, y = _images(4, seed=1), _images(4, seed=2)
    assert torch.equal(alex(x, x), torch.zeros(4))
    d_xy, d_yx = alex(x, y), alex(y, x)
    assert d_xy.shape == (4,) and (d_xy > 0).all()
    torch.testing.assert_close(d_xy, d_yx, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(alex((x + 1) / 2, (y + 1) / 2, input_range=(0, 1)), d_xy, rtol=1e-5, atol=1e-6)
    assert not alex.backbone_pretrained and alex.caveats and alex.provenance()["backbone_pretrained"] is False


def test_lpips_input_rule(alex):
    x = _images(2)
    with pytest.raises(ValueError, match=r"x: expected values in \[-1, 1\].*input_range=\(0, 255\)"):
        alex((x + 1) * 127.5, x)
    with pytest.warns(UserWarning, match=r"y: every value lies in \[0, 1\]"):
        alex(x, (x + 1) / 2)
    with pytest.raises(ValueError, match="x, y: expected the same shape"):
        alex(x, _images(2, size=48))
    with pytest.raises(ValueError, match="at least 31x31"):
        alex(_images(1, size=16), _images(1, size=16))
    with pytest.raises(ValueError, match="input_range"):
        alex(x, x, input_range=(0, 2))
    with pytest.raises(ValueError, match="x: contains NaN"):
        alex(torch.full_like(x, float("nan")), x)
    with pytest.raises(ValueError, match="net: expected one of"):
        load_lpips("resnet", pretrained_backbone=False)


def test_lpips_missing_backbone_weights_say_which_file_goes_where(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(FileNotFoundError) as err:
        load_lpips("alex")
    msg = str(err.value)
    assert "alexnet-owt-7be5be79.pth" in msg and str(tmp_path / "hub" / "checkpoints") in msg
    assert "download.pytorch.org" in msg and "pretrained_backbone=False" in msg
    with pytest.raises(FileNotFoundError, match="weights: .* is not a file"):
        load_lpips("vgg", weights=tmp_path / "nope.pth")
    assert not (tmp_path / "hub").exists(), "nothing may be downloaded or created"


def test_lpips_loads_a_trunk_from_the_hub_cache_and_flags_a_bad_hash(tmp_path, monkeypatch):
    import torchvision

    ckpt = tmp_path / "hub" / "checkpoints"
    ckpt.mkdir(parents=True)
    torch.manual_seed(0)
    sd = torchvision.models.squeezenet1_1(weights=None).state_dict()
    torch.save(sd, ckpt / BACKBONE_FILES["squeeze"][0])           # right name, wrong bytes
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.warns(UserWarning, match="SHA-256"):
        m = load_lpips("squeeze")
    assert m.backbone_pretrained and m.weights_verified is False
    assert m.caveats and "SHA-256" in m.caveats[0]
    torch.testing.assert_close(m.model.net.slice1[0].weight, sd["features.0.weight"])
    x, y = _images(2, seed=3), _images(2, seed=4)
    assert (m(x, y) > 0).all() and torch.equal(m(x, x), torch.zeros(2))


# --------------------------------------------------------------------------------------- diversity
def test_pipeline_sampler_renders_what_the_pipeline_renders(pipe):
    s = PipelineSampler(pipe)
    img = s.images([5, 6], [7, 8])
    ref = pipe(geometry=[5, 6], texture=[7, 8], truncation=1.0)        # the same batch: the same pixels
    for i in range(2):
        assert torch.equal(img[i].cpu(), save_like(ref[i].tensor))
    levels = (img + 1) * 127.5
    assert torch.allclose(levels, levels.round(), atol=1e-4) and img.min() >= -1 and img.max() <= 1


def test_lpips_diversity_of_identical_images_is_zero_and_of_random_ones_positive(pipe, alex):
    one = _images(1, seed=9)
    same = lpips_diversity(lambda n, seed: one.expand(n, -1, -1, -1), 6, net=alex, batch=4, model_name="constant")
    assert same.value == 0.0 and same.error == 0.0 and str(same) == "0.00 ± 0.00"
    rand = lpips_diversity(lambda n, seed: _images(n, seed=seed), 6, net=alex, batch=4)
    assert rand.value > 0.01
    r = lpips_diversity(pipe, 8, net=alex, seed=3, batch=4, model_name="SofGAN (tiny)")
    again = lpips_diversity(pipe, 8, net=alex, seed=3, batch=4)
    assert r.metric == "lpips_diversity" and r.n == 8 and r.scores.shape == (8,)
    assert np.array_equal(r.scores, again.scores) and r.value > 0.01
    assert r.error == pytest.approx(r.scores.std(ddof=1) / math.sqrt(8))
    prov = r.provenance
    assert prov["model"] == "SofGAN (tiny)" and prov["seed"] == 3 and prov["backbone"] == "lpips-alex v0.1"
    assert prov["backbone_pretrained"] is False and prov["extras"]["truncation"] == 1.0
    assert not r.comparable_to_paper and "randomly initialised" in r.caveats[0]
    with pytest.raises(ValueError, match="n_pairs: expected an integer >= 2"):
        lpips_diversity(pipe, 1, net=alex)
    with pytest.raises(ValueError, match="net: expected one of"):
        lpips_diversity(pipe, 2, net="alexnet", pretrained_backbone=False)
    with pytest.raises(ValueError, match=r"model: produced values .* \[0, 255\]"):
        lpips_diversity(lambda n, seed: (_images(n) + 1) * 127.5, 2, net=alex)


def test_ssg_diversity(pipe, alex):
    r = ssg_diversity(pipe, 3, styles=4, pairs=3, net=alex, batch=2, seed=1)
    assert r.metric == "ssg_diversity" and r.n == 3 and r.value > 0.01
    ex = r.provenance["extras"]
    assert ex["styles"] == 4 and ex["pairs"] == 3 and ex["segmaps"].startswith("rendered")
    segs = PipelineSampler(pipe).segmaps([1, 2]).cpu()
    given = ssg_diversity(pipe, segmaps=segs, styles=3, pairs=2, net=alex)
    assert given.n == 2 and given.provenance["extras"]["segmaps"] == "given"
    flat = ssg_diversity(lambda seg, seed: _images(seg.shape[0], seed=0), segmaps=segs, styles=3, pairs=3, net=alex)
    assert flat.value == 0.0                                      # style-blind model: no diversity
    with pytest.raises(ValueError, match=r"pairs: at most styles\*\(styles-1\)/2 = 3"):
        ssg_diversity(pipe, 2, styles=3, pairs=4, net=alex)
    with pytest.raises(ValueError, match="segmaps: required"):
        ssg_diversity(lambda seg, seed: seg, 2, net=alex)
    with pytest.raises(ValueError, match="n_segmaps: 5 requested"):
        ssg_diversity(pipe, 5, segmaps=segs, net=alex)


# --------------------------------------------------------------------------------------- FVV
def test_fvv_identity(pipe):
    r = fvv_identity(pipe, 3, views=4, pairs=2, embedder=ParserFeatures(resize=None), batch=2, yaw_range=(-20, 20))
    assert r.metric == "fvv_identity" and r.n == 3 and -1 <= r.value <= 1
    ex = r.provenance["extras"]
    assert "dlib" in r.caveats[0] and not r.comparable_to_paper
    assert ex["views"] == 4 and ex["yaw_range"] == [-20.0, 20.0] and "impostor_similarity" in ex
    # a model whose views are identical: similarity 1 with any embedder
    still = lambda n, seed: _images(n, seed=seed)[:, None].expand(n, 5, 3, 32, 32)  # noqa: E731
    same = fvv_identity(still, 4, views=5, pairs=3, embedder=nn.Flatten(), center=False)
    assert same.value == pytest.approx(1.0, abs=1e-6)
    with pytest.raises(ValueError, match="pairs: at most"):
        fvv_identity(pipe, 2, views=3, pairs=4)
    with pytest.raises(ValueError, match="model: expected images"):
        fvv_identity(lambda n, seed: _images(n), 2, views=3, pairs=1, embedder=nn.Flatten())


# --------------------------------------------------------------------------------------- FID
class _Pool(nn.Module):
    """A toy extractor: 4x4 average-pooled pixels (48 dims)."""

    def forward(self, x):
        return nn.functional.adaptive_avg_pool2d(x, 4).flatten(1)


def test_fid_with_a_custom_extractor_streams_and_warns_for_few_samples(pipe):
    real = _images(20, seed=1)
    with pytest.warns(UserWarning, match="20 samples for 48 feature dims"):
        r = fid(real, [real[:7], real[7:]], _Pool(), batch=8)
    assert r.metric == "fid" and r.value == pytest.approx(0.0, abs=1e-6) and r.error is None and r.n == 20
    assert not r.comparable_to_paper and any("not the verified FID Inception" in c for c in r.caveats)
    assert str(r) == "0.00"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        g = fid(real, pipe, _Pool(), n=12, batch=6, model_name="tiny")
    assert g.value > 0 and g.provenance["extras"]["n_fake"] == 12 and g.provenance["model"] == "tiny"
    with pytest.raises(ValueError, match="n: required"):
        fid(real, pipe, _Pool())
    s1 = compute_features(_images(60, seed=2), _Pool(), keep_features=True)
    s2 = compute_features(_images(60, seed=3) * 0.5 + 0.3, _Pool(), keep_features=True)
    both = fid(s1, s2)                                            # extractor recorded in the stats
    assert both.value > 0 and both.provenance["backbone"] == "_Pool"
    assert kid(s1, s2, subsets=5, subset_size=30).value > 0


def test_fid_inception_missing_and_present(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(FileNotFoundError) as err:
        fid(_images(2), _images(2))
    assert FID_INCEPTION_FILE in str(err.value) and str(tmp_path / "hub" / "checkpoints") in str(err.value)
    torch.manual_seed(0)
    net = InceptionFeatures()
    (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
    torch.save(net.net.state_dict(), tmp_path / "hub" / "checkpoints" / FID_INCEPTION_FILE)
    with pytest.warns(UserWarning, match="SHA-256"):
        loaded = load_inception()
    assert loaded.pretrained and loaded.verified is False and not loaded.paper_feature
    x = _images(2, size=40)
    f = loaded(x)
    assert f.shape == (2, 2048) and torch.isfinite(f).all()
    torch.testing.assert_close(f, net(x))


# --------------------------------------------------------------------------------------- SOF space
def test_representability(pipe):
    segs = PipelineSampler(pipe).segmaps([1, 2]).cpu()
    r = representability(pipe, segs, steps=3, eval_every=3)
    assert r.metric == "representability" and r.n == 2 and 0 <= r.value <= 1
    assert 0 <= r.provenance["extras"]["dataset_miou"] <= 1 and r.comparable_to_paper
    with pytest.raises(ValueError, match="segmaps: need at least 2"):
        representability(pipe, segs[:1], steps=1)
    with pytest.raises(TypeError, match="segmaps: expected integer"):
        representability(pipe, segs.float(), steps=1)


def test_representability_known_answers(pipe):
    """Known answers: with the learning rate 0 the fit stays at its start, so maps rendered from the start
    code score exactly 1, and maps of another code score the mIoU of the start code's render against
    them (computed here with the plain ``miou``), averaged over maps."""
    from sofgan_lab.metrics.segmentation import miou

    sampler = PipelineSampler(pipe)
    cam = sampler.camera
    z1, z2 = pipe.geometry_code([1]), pipe.geometry_code([2])
    own = sampler.segmaps(torch.cat([z1, z1]), cam).cpu()
    other = sampler.segmaps(torch.cat([z2, pipe.geometry_code([3])]), cam).cpu()
    r = representability(pipe, own, cam, steps=2, eval_every=1, lr=0.0, init=z1[0])
    assert r.value == 1.0 and r.provenance["extras"]["dataset_miou"] == 1.0
    r = representability(pipe, other, cam, steps=2, eval_every=1, lr=0.0, init=z1[0])
    want = [miou(own[0], other[i]) for i in range(2)]
    assert max(want) < 0.99, want                         # the codes' maps differ: the answer is not 1
    assert r.value == pytest.approx(float(np.mean(want)), abs=1e-12)


# --------------------------------------------------------------------------------------- results, tables
def _result(metric, value, std, n, model, caveats=(), **extras):
    return MetricResult(metric, value, None if std is None else std / math.sqrt(n), n,
                        make_provenance(model=model, **extras), comparable_to_paper=not caveats, caveats=caveats)


def test_result_strings_follow_the_papers_scaled_error():
    assert str(_result("lpips_diversity", 0.6612, 0.0581, 50_000, "SofGAN")) == "0.66 ± 5.81"
    assert str(_result("fvv_identity", 0.471, 0.133, 1000, "SofGAN")) == "0.471 ± 13.3"
    assert str(_result("ssg_diversity", 0.463, 0.0617, 1000, "SofGAN")) == "0.463 ± 6.17"
    assert str(_result("ssg_diversity", 0.463, 0.0018, 1000, "SEAN")) == "0.463 ± 0.180"
    assert str(_result("fid", 12.3456, None, 50_000, "SofGAN")) == "12.35"
    r = _result("lpips_diversity", 0.6612, 0.0581, 50_000, "SofGAN")
    assert r.std == pytest.approx(0.0581) and r.error == pytest.approx(0.0581 / math.sqrt(50_000))
    assert MetricResult.from_dict(r.to_dict()) == r
    with pytest.raises(ValueError, match="metric: unknown metric 'lpips'"):
        MetricResult("lpips", 0.5, None, 1)
    with pytest.raises(ValueError, match="provenance: unknown keys"):
        MetricResult("fid", 1.0, None, 1, {"model": "x", "net": "alex"})
    with pytest.raises(ValueError, match="n: expected a sample count"):
        MetricResult("fid", 1.0, None, 0)


def test_metric_table_cells_marks_and_writers(tmp_path):
    rand = ("LPIPS alex trunk randomly initialised (no ImageNet weights)",)
    results = [
        _result("lpips_diversity", 0.6612, 0.0581, 50_000, "SofGAN", lpips_net="alex"),
        _result("lpips_diversity", 0.62, 0.0738, 50_000, "StyleGAN2", lpips_net="alex"),
        _result("fvv_identity", 0.471, 0.133, 1000, "SofGAN"),
        _result("lpips_diversity", 0.10, 0.056, 32, "tiny", caveats=rand, lpips_net="alex"),
        _result("fvv_identity", 0.981, 0.00836, 4, "tiny", caveats=("parser features, not dlib",)),
    ]
    df = metric_table(results)
    assert list(df.columns) == ["LPIPS (alex)", "FVV Identity"]
    assert list(df.index) == ["SofGAN", "StyleGAN2", "tiny"]
    assert df.loc["SofGAN", "LPIPS (alex)"] == "0.66 ± 5.81"
    assert df.loc["StyleGAN2", "LPIPS (alex)"] == "0.62 ± 7.38"
    assert df.loc["StyleGAN2", "FVV Identity"] == ""
    assert df.loc["tiny", "LPIPS (alex)"] == "0.10 ± 5.60†"
    assert df.loc["tiny", "FVV Identity"] == "0.981 ± 0.836‡"
    assert df.attrs["footnotes"] == ["† not comparable to the paper: " + rand[0],
                                     "‡ not comparable to the paper: parser features, not dlib"]
    md = table_to_markdown(df)
    assert md.splitlines()[:5] == [
        "| Model     | LPIPS (alex) ↑ | FVV Identity ↑ |",
        "|:----------|---------------:|---------------:|",
        "| SofGAN    |    0.66 ± 5.81 |   0.471 ± 13.3 |",
        "| StyleGAN2 |    0.62 ± 7.38 |              — |",
        "| tiny      |   0.10 ± 5.60† | 0.981 ± 0.836‡ |"]
    assert md.rstrip().endswith("‡ not comparable to the paper: parser features, not dlib")
    tex = table_to_latex(df, caption="Diversity")
    assert r"0.66$_{\pm 5.81}$" in tex and r"0.10$_{\pm 5.60}$$^{\dagger}$" in tex and r"\ddagger" in tex
    assert r"LPIPS (alex) $\uparrow$" in tex and "--" in tex
    csv = table_to_csv(df, tmp_path / "t.csv", numeric=True)
    assert (tmp_path / "t.csv").read_text() == csv and "comparable_to_paper" in csv.splitlines()[0]
    assert table_to_csv(df).splitlines()[1].startswith("SofGAN,0.66 ± 5.81,")
    grouped = metric_table([_result("lpips_diversity", 0.66, 0.0581, 9, "SofGAN", dataset="FFHQ", lpips_net="vgg")])
    assert list(grouped.columns) == ["FFHQ: LPIPS (vgg)"]
    with pytest.raises(ValueError, match="two results for model 'SofGAN'"):
        metric_table(results[:1] * 2)
    with pytest.raises(ValueError, match="metrics: unknown metric"):
        metric_table(results, metrics=["lpips"])
    with pytest.raises(TypeError, match="results: item 1"):
        metric_table([results[0], 0.5])


def test_plot_metrics_draws_bars_with_error_bars():
    pytest.importorskip("plotly")
    from sofgan_lab.widgets import plot_metrics

    fig = plot_metrics([_result("lpips_diversity", 0.66, 0.0581, 100, "SofGAN"),
                        _result("fvv_identity", 0.4, 0.1, 100, "SofGAN", caveats=("x",))], error="se")
    bars = [t for t in fig.data if t.type == "bar"]
    assert len(bars) == 2 and bars[0].error_y.array[0] == pytest.approx(0.0581 / 10)
    assert bars[1].marker.pattern.shape == "/"
    with pytest.raises(ValueError, match="error: expected"):
        plot_metrics(_result("fid", 1.0, None, 2, "m"), error="ci")


def test_fid_inception_takes_the_layout_of_the_released_weights(tmp_path):
    """The released ``pt_inception-2015-12-05`` file is the state dict of torchvision's ``Inception3`` with
    1008 classes and no auxiliary head (pytorch-fid builds that network and loads the file strictly; its
    FID blocks change only the pooling). Our network has exactly those keys and shapes; a file of that
    layout (without ``num_batches_tracked``, as a converted checkpoint may be) loads into it tensor for
    tensor; a layout with 1000 classes is refused with one line naming the file."""
    import warnings as _w

    from torchvision.models.inception import Inception3

    torch.manual_seed(0)
    with _w.catch_warnings():
        _w.simplefilter("ignore")
        ref = Inception3(num_classes=1008, aux_logits=False, transform_input=False, init_weights=False).state_dict()
    facts = {"Conv2d_1a_3x3.conv.weight": (32, 3, 3, 3), "Mixed_5b.branch_pool.conv.weight": (32, 192, 1, 1),
             "Mixed_6e.branch7x7dbl_5.conv.weight": (192, 192, 1, 7), "Mixed_7c.branch_pool.conv.weight": (192, 2048, 1, 1),
             "fc.weight": (1008, 2048), "fc.bias": (1008,)}
    assert {k: tuple(ref[k].shape) for k in facts} == facts
    ours = InceptionFeatures().net.state_dict()
    assert {k: tuple(v.shape) for k, v in ours.items()} == {k: tuple(v.shape) for k, v in ref.items()}
    plain = {k: v for k, v in ref.items() if not k.endswith("num_batches_tracked")}
    path = tmp_path / FID_INCEPTION_FILE
    torch.save(plain, path)
    net = load_inception(path, check_hash=False)
    got = net.net.state_dict()
    assert all(torch.equal(got[k], v) for k, v in plain.items())
    f = net(_images(2, size=40))
    assert f.shape == (2, 2048) and torch.isfinite(f).all()
    bad = dict(plain, **{"fc.weight": torch.zeros(1000, 2048), "fc.bias": torch.zeros(1000)})
    torch.save(bad, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match=r"^weights: .*bad\.pth.*fc\.weight") as err:
        load_inception(tmp_path / "bad.pth", check_hash=False)
    assert "\n" not in str(err.value)
