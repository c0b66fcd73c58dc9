"""Tests for sofgan_lab.geometry.space: GeometrySpace, interpolate, region_ids, restricted_edit."""
from __future__ import annotations

import math
import shutil

import numpy as np
import pytest
import torch

from sofgan_lab.geometry.space import REGIONS, EditResult, GeometrySpace, interpolate, region_ids, restricted_edit
from sofgan_lab.io.checkpoints import CheckpointError

CENTERS = np.array([[6.0, 0, 0, 0, 0, 0], [0, 6.0, 0, 0, 0, 0], [0, 0, 6.0, 0, 0, 0]])


def _cluster_codes(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.concatenate([c + 0.3 * rng.standard_normal((20, 6)) for c in CENTERS])


@pytest.fixture(scope="module")
def codes() -> np.ndarray:
    return _cluster_codes()


@pytest.fixture(scope="module")
def space(codes) -> GeometrySpace:
    return GeometrySpace.fit(codes, n_components=4, seed=0)


@pytest.fixture(scope="module")
def attr_setup():
    """Isotropic-ish codes with a continuous, a binary and a pc1-score attribute."""
    rng = np.random.default_rng(1)
    z = rng.standard_normal((200, 6)) * np.array([3.0, 2.0, 1.5, 1.0, 0.7, 0.5])
    w = np.array([0.3, -0.8, 0.5, 0.2, 0.0, 0.4])
    w_bin = np.array([-0.5, 0.2, 0.7, 0.1, -0.4, 0.3])
    y = z @ w + 0.05 * rng.standard_normal(200)
    yb = (z @ w_bin > 0).astype(float)
    zc = z - z.mean(0)
    _, _, vt = np.linalg.svd(zc, full_matrices=False)
    pc1_score = zc @ vt[0]
    noise = rng.standard_normal(200)
    attrs = {"cont": y, "bin": yb, "score": pc1_score, "noise": noise}
    sp = GeometrySpace.fit(z, attrs, n_components=1, seed=0)
    return sp, z, w, w_bin, vt


def _nearest_center(x: np.ndarray) -> np.ndarray:
    return np.argmin(np.linalg.norm(x[:, None] - CENTERS[None], axis=-1), axis=1)


# ------------------------------------------------------------------ sampling
def test_sample_same_seed_identical_different_seed_differs(space):
    a = space.sample(50, seed=7)
    b = space.sample(50, seed=7)
    c = space.sample(50, seed=8)
    assert a.shape == (50, 6) and a.dtype == torch.float32
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)


def test_sample_generator_deterministic(space):
    a = space.sample(20, generator=torch.Generator().manual_seed(3))
    b = space.sample(20, generator=torch.Generator().manual_seed(3))
    c = space.sample(20, generator=torch.Generator().manual_seed(4))
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)


def test_samples_not_grouped_by_component(space):
    s = space.sample(300, seed=0).numpy().astype(np.float64)
    near = _nearest_center(s)
    # all three clusters represented roughly evenly
    counts = np.bincount(near, minlength=3)
    assert counts.min() > 60, counts
    assert not np.all(np.diff(near) >= 0)
    changes = int((np.diff(near) != 0).sum())
    # random order of 3 balanced clusters: ~2/3 of 299 transitions change
    assert changes > 120, changes


def test_sample_component_near_mean(space):
    k = int(np.argmax(space.weights))
    s = space.sample(100, seed=1, component=k).numpy().astype(np.float64)
    # the draws scatter around means[k] (the DP prior inflates the covariance a little)
    assert np.linalg.norm(s.mean(0) - space.means[k]) < 0.5
    assert np.linalg.norm(s - space.means[k], axis=1).max() < 4.0
    # and near the cluster the mean sits on
    c = _nearest_center(space.means[k][None])[0]
    assert np.all(_nearest_center(s) == c)


def test_sample_temperature_zero_gives_means(space):
    s = space.sample(40, seed=2, temperature=0)
    means32 = torch.from_numpy(space.means.astype(np.float32))
    for row in s:
        assert any(torch.equal(row, m) for m in means32)
    s1 = space.sample(10, seed=2, component=1, temperature=0.0)
    assert torch.equal(s1, means32[1].expand(10, -1))


# ------------------------------------------------------------------ density / nearest
def test_log_density_matches_independent_mixture(codes, space):
    from scipy.stats import multivariate_normal
    from sklearn.mixture import BayesianGaussianMixture

    g = BayesianGaussianMixture(n_components=4, covariance_type="full",
                                weight_concentration_prior_type="dirichlet_process",
                                max_iter=500, random_state=0, reg_covar=1e-6).fit(codes)
    x = np.concatenate([codes[::7] + 0.1, CENTERS + 0.5])
    # point-estimate mixture density sum_k w_k N(x; mu_k, Sigma_k) of the fitted mixture.
    # (BayesianGaussianMixture.score_samples is a variational quantity with digamma/dof terms,
    # not this density, so it is not the reference.)
    ref = np.log(sum(g.weights_[k] * multivariate_normal(g.means_[k], g.covariances_[k]).pdf(x)
                     for k in range(4)))
    got = space.log_density(x)
    assert got.shape == (len(x),)
    np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(space.weights, g.weights_, rtol=1e-10)
    # tensor input and 1-D input
    np.testing.assert_allclose(space.log_density(torch.from_numpy(x[:1])), got[:1], rtol=1e-12)
    np.testing.assert_allclose(space.log_density(x[0]), got[:1], rtol=1e-12)


def test_nearest_returns_own_indices(codes, space):
    idx, dist = space.nearest(codes)
    assert idx.shape == (60, 1) and dist.shape == (60, 1)
    np.testing.assert_array_equal(idx[:, 0], np.arange(60))
    assert np.all(dist == 0)
    idx3, dist3 = space.nearest(codes[:5], k=3)
    assert idx3.shape == (5, 3)
    assert np.all(np.diff(dist3, axis=1) >= 0)
    # brute force
    d = np.linalg.norm(codes[:5, None] - codes[None], axis=-1)
    np.testing.assert_array_equal(np.sort(d, axis=1)[:, :3], dist3)
    with pytest.raises(ValueError, match="k"):
        space.nearest(codes[:1], k=0)


# ------------------------------------------------------------------ directions
def test_pc1_is_first_principal_axis(attr_setup):
    sp, z, _, _, vt = attr_setup
    d = sp.direction("pc1")
    assert d.shape == (6,) and d.dtype == torch.float32
    assert abs(float(d.norm()) - 1.0) < 1e-6
    assert abs(float(d.numpy().astype(np.float64) @ vt[0])) > 0.999
    d2 = sp.direction("pc2").numpy().astype(np.float64)
    assert abs(d2 @ vt[1]) > 0.999
    assert sp.direction_names[:6] == [f"pc{i}" for i in range(1, 7)]
    for bad in ("pc0", "pc99"):
        with pytest.raises(ValueError, match="direction"):
            sp.direction(bad)
    with pytest.raises(ValueError, match="direction"):
        sp.direction("nonexistent")


def test_continuous_attribute_direction(attr_setup):
    sp, z, w, _, _ = attr_setup
    d = sp.direction("cont").numpy().astype(np.float64)
    cos = d @ w / np.linalg.norm(w)
    assert cos > 0.95, cos  # oriented: y increases along d
    assert abs(np.linalg.norm(d) - 1) < 1e-6


def test_binary_attribute_direction(attr_setup):
    sp, z, _, w_bin, _ = attr_setup
    assert "bin" in sp.binary and "cont" not in sp.binary
    d = sp.direction("bin").numpy().astype(np.float64)
    cos = d @ w_bin / np.linalg.norm(w_bin)
    assert cos > 0.9, cos


def test_direction_std(attr_setup):
    sp, z, _, _, vt = attr_setup
    d = sp.direction("pc1").numpy().astype(np.float64)
    assert sp.direction_std("pc1") == pytest.approx(float((z @ d).std()), rel=1e-9)
    # pc1 std equals sqrt of largest singular value^2 / N (population std)
    s = np.linalg.svd(z - z.mean(0), compute_uv=False)
    assert sp.direction_std("pc1") == pytest.approx(s[0] / math.sqrt(len(z)), rel=1e-5)


@pytest.mark.parametrize("name", ["pc1", "pc3", "cont"])
def test_edit_moves_by_amount_times_std(attr_setup, name):
    sp, z, _, _, _ = attr_setup
    d = sp.direction(name).numpy().astype(np.float64)
    std = sp.direction_std(name)
    z1 = z[3]
    out = sp.edit(z1, name, 1.5)
    assert out.shape == (6,) and out.dtype == torch.float32
    delta = out.numpy().astype(np.float64) - z1
    np.testing.assert_allclose(delta, 1.5 * std * d, atol=1e-5)
    outn = sp.edit(torch.from_numpy(z[:4]).float(), name, -2.0)
    assert outn.shape == (4, 6)
    deltan = outn.numpy().astype(np.float64) - z[:4].astype(np.float32)
    np.testing.assert_allclose(deltan, np.broadcast_to(-2.0 * std * d, (4, 6)), atol=1e-5)
    out_t1 = sp.edit(torch.from_numpy(z1).float(), name, 0.5)
    assert out_t1.shape == (6,)
    assert torch.equal(sp.edit(z1, name, 0), torch.from_numpy(z1.astype(np.float32)))


def test_edit_bad_amount(space):
    for bad in (float("nan"), float("inf"), "1", True):
        with pytest.raises(ValueError, match="amount"):
            space.edit(space.codes[0], "pc1", bad)


def test_correlation_table(attr_setup, space):
    sp, *_ = attr_setup
    df = sp.correlation_table(n_pcs=3)
    assert list(df.index) == ["pc1", "pc2", "pc3"]
    assert set(df.columns) == {"explained_variance", "cont", "bin", "score", "noise", "top_attribute", "top_r"}
    assert df.loc["pc1", "top_attribute"] == "score"
    assert df.loc["pc1", "top_r"] == pytest.approx(1.0, abs=1e-9)
    assert df.loc["pc1", "score"] == pytest.approx(1.0, abs=1e-9)
    np.testing.assert_allclose(df["explained_variance"].to_numpy(dtype=float), sp.explained_variance_ratio[:3])
    vals = df[["cont", "bin", "score", "noise"]].to_numpy(dtype=float)
    assert np.all((vals >= 0) & (vals <= 1 + 1e-12))
    with pytest.raises(ValueError, match="attributes"):
        space.correlation_table()


# ------------------------------------------------------------------ persistence
def test_save_load_round_trip(attr_setup, tmp_path):
    sp, *_ = attr_setup
    out = sp.save(tmp_path / "s")
    assert (out / "space.npz").is_file() and (out / "space.json").is_file()
    with np.load(out / "space.npz", allow_pickle=False) as npz:
        assert "codes" in npz.files
        np.testing.assert_array_equal(npz["codes"], sp.codes)
    sp2 = GeometrySpace.load(out)
    for attr in ("codes", "weights", "means", "covariances", "pca_mean", "pca_components", "pca_variance"):
        np.testing.assert_array_equal(getattr(sp2, attr), getattr(sp, attr))
    assert sorted(sp2.attribute_directions) == sorted(sp.attribute_directions)
    for k in sp.attribute_directions:
        np.testing.assert_array_equal(sp2.attribute_directions[k], sp.attribute_directions[k])
        np.testing.assert_array_equal(sp2.attributes[k], sp.attributes[k])
    assert sp2.binary == sp.binary and sp2.meta == sp.meta
    assert torch.equal(sp2.sample(30, seed=5), sp.sample(30, seed=5))
    assert torch.equal(sp2.direction("bin"), sp.direction("bin"))


def test_load_errors(space, tmp_path):
    with pytest.raises(CheckpointError, match="space.npz"):
        GeometrySpace.load(tmp_path / "nothing")
    d = space.save(tmp_path / "s")
    bad = tmp_path / "bad"
    shutil.copytree(d, bad)
    (bad / "space.json").write_text('{"format": "something-else"}')
    with pytest.raises(CheckpointError, match="space.json"):
        GeometrySpace.load(bad)
    (bad / "space.json").write_text("not json {")
    with pytest.raises(CheckpointError, match="space.json"):
        GeometrySpace.load(bad)
    missing_json = tmp_path / "nojson"
    shutil.copytree(d, missing_json)
    (missing_json / "space.json").unlink()
    with pytest.raises(CheckpointError, match="space.json"):
        GeometrySpace.load(missing_json)


# ------------------------------------------------------------------ interpolate
def test_interpolate_linear():
    a = np.array([1.0, 2.0, -1.0, 0.5])
    b = np.array([-3.0, 0.0, 2.0, 4.5])
    out = interpolate(a, b, 5)
    assert out.shape == (5, 4) and out.dtype == torch.float32
    assert torch.equal(out[0], torch.from_numpy(a.astype(np.float32)))
    assert torch.equal(out[-1], torch.from_numpy(b.astype(np.float32)))
    np.testing.assert_allclose(out[2].numpy(), (a + b) / 2, atol=1e-6)
    np.testing.assert_allclose(out[1].numpy(), 0.75 * a + 0.25 * b, atol=1e-6)
    one = interpolate(a, b, 1)
    assert one.shape == (1, 4) and torch.equal(one[0], torch.from_numpy(a.astype(np.float32)))


def test_interpolate_slerp():
    a = np.array([2.0, 0.0, 0.0])
    b = np.array([0.0, 4.0, 0.0])
    n = 7
    out = interpolate(torch.from_numpy(a), b, n, mode="slerp").numpy().astype(np.float64)
    np.testing.assert_allclose(out[0], a, atol=1e-6)
    np.testing.assert_allclose(out[-1], b, atol=1e-6)
    t = np.linspace(0, 1, n)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), (1 - t) * 2.0 + t * 4.0, rtol=1e-6)
    angles = np.arctan2(out[:, 1], out[:, 0])
    np.testing.assert_allclose(np.diff(angles), np.full(n - 1, (math.pi / 2) / (n - 1)), atol=1e-6)
    np.testing.assert_allclose(out[:, 2], 0, atol=1e-7)
    # a generic pair in 5-D: equal great-circle steps, stays in the plane of a and b
    rng = np.random.default_rng(3)
    a5, b5 = rng.standard_normal(5), rng.standard_normal(5)
    o5 = interpolate(a5, b5, 6, mode="slerp").numpy().astype(np.float64)
    u = o5 / np.linalg.norm(o5, axis=1, keepdims=True)
    steps = np.arccos(np.clip((u[:-1] * u[1:]).sum(1), -1, 1))
    total = math.acos(a5 @ b5 / np.linalg.norm(a5) / np.linalg.norm(b5))
    np.testing.assert_allclose(steps, total / 5, atol=1e-5)
    # parallel vectors fall back to linear
    par = interpolate(a, 3 * a, 3, mode="slerp").numpy()
    np.testing.assert_allclose(par[1], 2 * a, atol=1e-6)


def test_interpolate_errors():
    a, b = np.zeros(3), np.ones(3)
    with pytest.raises(ValueError, match="mode"):
        interpolate(a, b, 3, mode="cubic")
    for bad_n in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="n"):
            interpolate(a, b, bad_n)
    with pytest.raises(ValueError, match="z1"):
        interpolate(a, np.ones(4), 3)
    with pytest.raises(ValueError, match="z0"):
        interpolate(np.array([np.nan, 0, 0]), b, 3)


# ------------------------------------------------------------------ regions
def test_region_ids():
    assert region_ids("face") == tuple(range(2, 11))
    assert region_ids("mouth") == (8, 9, 10)
    assert region_ids(["eyes", "hair"]) == (4, 5, 18)
    assert region_ids(["nose", 7, 1]) == (1, 6, 7)
    assert region_ids(16) == (16,)
    assert set(REGIONS) >= {"face", "mouth", "eyes", "hair"}
    for bad in ("tail", ["eyes", "tail"], 20, -1, [], [True], 2.0):
        with pytest.raises(ValueError, match="regions"):
            region_ids(bad)


# ------------------------------------------------------------------ restricted edit
def test_restricted_edit():
    from sofgan_lab.cameras import Camera
    from sofgan_lab.geometry import SemanticOccupancyField, SOFConfig

    torch.manual_seed(0)
    model = SemanticOccupancyField(SOFConfig(latent_dim=8, hyper_dim=8, phi_dim=8, marcher_dim=8,
                                             classifier_dim=8)).eval()
    cam = Camera.from_orbit(0.0, 0.0, image_size=16)
    g = torch.Generator().manual_seed(1)
    z = torch.randn(3, 8, generator=g) * 3
    z_ed = z + torch.randn(3, 8, generator=g) * 3
    with torch.no_grad():
        a = model.render(z, cam).labels.cpu()
        b = model.render(z_ed, cam).labels.cpu()
    present = sorted(set(torch.unique(a).tolist()) | set(torch.unique(b).tolist()))
    assert len(present) >= 2, present
    # pick the rarest present label as the region
    counts = {lab: int((a == lab).sum() + (b == lab).sum()) for lab in present}
    region = min(counts, key=counts.get)
    with torch.no_grad():
        res = restricted_edit(model, z, z_ed, cam, [region])
    assert isinstance(res, EditResult)
    assert res.original.shape == (3, 16, 16) and res.restricted.dtype == torch.int64
    assert torch.equal(res.original, a) and torch.equal(res.edited, b)
    mask = (a == region) | (b == region)
    assert torch.equal(res.restricted[mask], b[mask])
    assert torch.equal(res.restricted[~mask], a[~mask])
    assert res.leakage_restricted == 0.0
    outside = a != region
    expected = int(((a != b) & outside).sum()) / max(int(outside.sum()), 1)
    assert res.leakage_unrestricted == pytest.approx(expected, abs=1e-12)
    assert ((a != b) & outside).any(), "test setup: the edit should change some outside pixels"
    # a 1-D code works too
    with torch.no_grad():
        one = restricted_edit(model, z[0], z_ed[0], cam, region)
    assert one.original.shape == (1, 16, 16)
    with pytest.raises(ValueError, match="regions"):
        restricted_edit(model, z, z_ed, cam, "tail")


# ------------------------------------------------------------------ bad input
def test_fit_bad_inputs(codes):
    with pytest.raises(ValueError, match="codes"):
        GeometrySpace.fit(codes[:3], n_components=4)
    nan = codes.copy()
    nan[5, 2] = np.nan
    with pytest.raises(ValueError, match="codes"):
        GeometrySpace.fit(nan, n_components=2)
    with pytest.raises(ValueError, match="codes"):
        GeometrySpace.fit(np.zeros((4, 2, 3)), n_components=1)
    with pytest.raises(TypeError, match="codes"):
        GeometrySpace.fit(np.array([["a", "b"], ["c", "d"]]), n_components=1)
    with pytest.raises(ValueError, match="attributes"):
        GeometrySpace.fit(codes, {"x": np.zeros(59)}, n_components=2)
    with pytest.raises(ValueError, match="attributes"):
        GeometrySpace.fit(codes, {"x": np.full(60, np.nan)}, n_components=2)
    with pytest.raises(ValueError, match="n_components"):
        GeometrySpace.fit(codes, n_components=0)
    with pytest.raises(ValueError, match="covariance"):
        GeometrySpace.fit(codes, n_components=2, covariance="diag")


def test_sample_and_query_bad_inputs(space):
    for bad_n in (0, -3, 1.5, True):
        with pytest.raises(ValueError, match="n"):
            space.sample(bad_n, seed=0)
    for bad_t in (-0.1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="temperature"):
            space.sample(3, seed=0, temperature=bad_t)
    for bad_c in (-1, 4, 1.0):
        with pytest.raises(ValueError, match="component"):
            space.sample(3, seed=0, component=bad_c)
    with pytest.raises(ValueError, match="seed"):
        space.sample(3, seed=-1)
    with pytest.raises(TypeError, match="generator"):
        space.sample(3, generator=123)
    with pytest.raises(ValueError, match="z"):
        space.log_density(np.zeros((2, 5)))
    with pytest.raises(ValueError, match="z"):
        space.edit(np.zeros(5), "pc1", 1.0)
    with pytest.raises(ValueError, match="direction"):
        space.edit(space.codes[0], "smile", 1.0)
    with pytest.raises(ValueError, match="direction"):
        space.direction_std("pc0")


# ------------------------------------------------------------------ issue 20: bad input
def test_huge_temperature_and_amount_are_refused_not_inf_codes(space):
    """Before: ``temperature=1e300`` and ``amount=1e308`` returned codes of inf."""
    with pytest.raises(ValueError, match=r"temperature: expected a number in \[0, 100.0\], got 1e\+300"):
        space.sample(2, seed=0, temperature=1e300)
    with pytest.raises(ValueError, match=r"amount: expected a number in \[-1000.0, 1000.0\], got 1e\+308"):
        space.edit(space.codes[0], "pc1", 1e308)
    with pytest.raises(ValueError, match="amount"):
        space.edit(space.codes[0], "pc1", -1e308)
    with pytest.raises(ValueError, match="z: contains NaN or infinite"):  # beyond float32
        space.edit(np.full(space.dim, 1e39), "pc1", 1.0)
    with pytest.raises(TypeError, match="temperature"):
        space.sample(2, seed=0, temperature="hot")
    with pytest.raises(ValueError, match="n: expected an integer in 1..1048576"):  # was: a MemoryError
        space.sample(10 ** 12, seed=0)
    assert torch.isfinite(space.sample(2, seed=0, temperature=100)).all()
    assert torch.isfinite(space.edit(space.codes[0], "pc1", -1000)).all()
    # numpy numbers are numbers
    assert torch.equal(space.sample(2, seed=0, temperature=np.float32(0.5)), space.sample(2, seed=0, temperature=0.5))
    assert torch.equal(space.edit(space.codes[0], "pc1", np.float32(2)), space.edit(space.codes[0], "pc1", 2.0))


@pytest.mark.parametrize("data", [b"", b"not an npz archive at all", b"PK\x03\x04truncated zip"])
def test_load_of_a_garbage_npz_names_the_file(space, tmp_path, data):
    d = space.save(tmp_path / "space")
    (d / "space.npz").write_bytes(data)
    with pytest.raises(CheckpointError, match=f"directory: {d / 'space.npz'} cannot be read") as info:
        GeometrySpace.load(d)
    assert "\n" not in str(info.value)


def test_direction_of_a_non_name_is_named_in_one_short_line(space):
    """A direction of 10**400 repeated its 400 digits in the message; a list raised "unhashable type"."""
    for bad in (10 ** 400, ["pc1"], None):
        with pytest.raises(TypeError, match="direction: expected a name") as info:
            space.edit(space.codes[0], bad, 1.0)
        assert len(str(info.value)) < 200
