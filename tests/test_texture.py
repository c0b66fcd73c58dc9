"""The SofGAN texture branch (``sofgan_lab.texture``): official parity, the FIR operator against a
naive reference, region styles (exact / fast), truncation, noise, validation, the discriminator,
persistence and the texture metrics.

Everything but the parity tests runs on a tiny random model (32 px, style 32) whose zero/one
initialised parameters are perturbed (as the official fixture recipe does), so that biases and
noise strengths are exercised.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sofgan_lab.labels import NUM_SOFGAN_CLASSES, sof_to_sofgan
from sofgan_lab.texture import (
    STYLE_GROUPS, SIWConfig, SIWDiscriminator, SIWGenerator, class_style_weights, group_style_weights,
    style_mixing_latents, two_style_weights,
)
from sofgan_lab.texture.generator import ModulatedConv2d, ToRGB
from sofgan_lab.texture.ops import make_kernel, upfirdn2d
from sofgan_lab.texture.regions import check_class_weights, check_region_map, region_map_from_weights

# one thread (tests/conftest.py): bit-stable sums and no OpenMP spinning on the busy machines
pytestmark = pytest.mark.usefixtures("one_thread")

# The official-format fixtures live in shared/ beside the checkout (SOFGAN_LAB_SHARED overrides).
SHARED = Path(os.environ.get("SOFGAN_LAB_SHARED", Path(__file__).resolve().parents[1].parent / "shared"))
FIXTURES = SHARED / "fixtures" / "official"
# Skipped where the folder is absent, except in CI, where a missing fixture fails loudly.
needs_fixtures = pytest.mark.skipif(not (FIXTURES / "sofgan_g.safetensors").is_file() and not os.environ.get("CI"),
                                    reason=f"official SofGAN fixtures not found at {FIXTURES}")
OFFICIAL_TEST_CONFIG = dict(size=64, style_dim=64, channels={4: 64, 8: 48, 16: 40, 32: 32, 64: 24})
TOL_IMAGE, TOL_LATENT = 1e-4, 1e-5  # fixtures README, "Recommended tolerances"


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------

def tiny_config(**kw) -> SIWConfig:
    base = dict(size=32, style_dim=32, channels={4: 32, 8: 32, 16: 16, 32: 16}, encoder_channels=(8, 16, 32),
                spade_hidden=8, spade_min=16, spade_max=32)  # SPADE at 16 and 32 so it is exercised
    base.update(kw)
    return SIWConfig(**base)


def perturb_(module: nn.Module, seed: int = 2025) -> nn.Module:
    """Add 0.1·N(0,1) to every parameter that is all zeros or all ones (biases, noise strengths)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            if bool((p == 0).all()) or bool((p == 1).all()):
                p.add_(0.1 * torch.randn(p.shape, generator=g))
    return module


@pytest.fixture(scope="module")
def G() -> SIWGenerator:
    torch.manual_seed(0)
    return perturb_(SIWGenerator(tiny_config())).eval()


def face_map(seed: int, size: int = 128) -> torch.Tensor:
    """A cartoon face label map (SofGAN-17 ids) with every class present, shifted by ``seed``."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    cy, cx = 0.5 + rng.uniform(-0.06, 0.06, 2)
    lab = np.zeros((size, size), np.int64)

    def ell(y, x, ry, rx):
        return ((yy - y) / ry) ** 2 + ((xx - x) / rx) ** 2 <= 1

    def box(y0, y1, x0, x1):
        return (yy >= y0) & (yy < y1) & (xx >= x0) & (xx < x1)

    lab[box(0.85, 1.0, 0.1, 0.9)] = 14                     # cloth
    lab[box(0.7, 0.9, cx - 0.12, cx + 0.12)] = 12          # neck
    lab[box(0.8, 0.85, cx - 0.12, cx + 0.12)] = 13         # necklace
    lab[ell(cy - 0.08, cx, 0.36, 0.32)] = 15               # hair
    lab[ell(cy, cx - 0.3, 0.08, 0.05)] = 9                 # ears
    lab[ell(cy, cx + 0.3, 0.08, 0.05)] = 9
    lab[ell(cy + 0.08, cx + 0.3, 0.03, 0.03)] = 10         # earring
    lab[ell(cy + 0.04, cx, 0.3, 0.26)] = 1                 # skin
    lab[box(cy - 0.45, cy - 0.36, cx - 0.2, cx + 0.2)] = 16  # hat
    for s in (-1, 1):
        lab[box(cy - 0.12, cy - 0.09, cx + s * 0.12 - 0.07, cx + s * 0.12 + 0.07)] = 2  # brows
        lab[box(cy - 0.07, cy - 0.0, cx + s * 0.12 - 0.08, cx + s * 0.12 + 0.08)] = 11  # glasses
        lab[ell(cy - 0.035, cx + s * 0.12, 0.025, 0.045)] = 3                           # eyes
    lab[box(cy + 0.02, cy + 0.12, cx - 0.04, cx)] = 4      # nose halves
    lab[box(cy + 0.02, cy + 0.12, cx, cx + 0.04)] = 5
    lab[box(cy + 0.16, cy + 0.18, cx - 0.09, cx + 0.09)] = 7  # upper lip
    lab[box(cy + 0.18, cy + 0.2, cx - 0.08, cx + 0.08)] = 6   # mouth
    lab[box(cy + 0.2, cy + 0.23, cx - 0.09, cx + 0.09)] = 8   # lower lip
    return torch.from_numpy(lab)


@pytest.fixture(scope="module")
def segs() -> torch.Tensor:
    return torch.stack([face_map(s) for s in range(3)])


def test_face_map_has_every_class(segs):
    assert torch.unique(segs[0]).tolist() == list(range(NUM_SOFGAN_CLASSES))


def naive_upfirdn(x: np.ndarray, k: np.ndarray, up: int, down: int, pad: tuple[int, int]) -> np.ndarray:
    """The definition, spelled out in float64: zero insertion, pad/crop, true convolution, decimation."""
    x = np.asarray(x, np.float64)
    k = np.asarray(k, np.float64)
    h, w = x.shape[-2:]
    u = np.zeros(x.shape[:-2] + (h * up, w * up))
    for i in range(h):
        for j in range(w):
            u[..., i * up, j * up] = x[..., i, j]
    p0, p1 = pad
    hp, wp = h * up + p0 + p1, w * up + p0 + p1
    padded = np.zeros(x.shape[:-2] + (hp, wp))
    for i in range(hp):
        for j in range(wp):
            si, sj = i - p0, j - p0
            if 0 <= si < h * up and 0 <= sj < w * up:
                padded[..., i, j] = u[..., si, sj]
    kh, kw = k.shape
    ho, wo = hp - kh + 1, wp - kw + 1
    full = np.zeros(x.shape[:-2] + (ho, wo))
    for i in range(ho):  # y[i, j] = sum_{a, b} padded[i + a, j + b] * k[kh - 1 - a, kw - 1 - b]
        for j in range(wo):
            acc = np.zeros(x.shape[:-2])
            for a in range(kh):
                for b in range(kw):
                    acc += padded[..., i + a, j + b] * k[kh - 1 - a, kw - 1 - b]
            full[..., i, j] = acc
    return full[..., ::down, ::down]


def ref_modconv(layer: ModulatedConv2d, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """A StyleGAN2 modulated conv with per-sample fused weights (the reference formulation), for
    per-sample modulation ``sigma`` [N, in]; upsampling through the naive FIR above (float64)."""
    outs = []
    k = layer.kernel_size
    for n in range(x.shape[0]):
        wgt = layer.weight[0].double() / math.sqrt(layer.in_ch * k * k) * sigma[n].double()[None, :, None, None]
        if layer.demodulate:
            wgt = wgt / torch.sqrt(wgt.pow(2).sum((1, 2, 3), keepdim=True) + 1e-8)
        xn = x[n:n + 1].double()
        if layer.upsample:
            y = F.conv_transpose2d(xn, wgt.transpose(0, 1), stride=2)
            kern = np.outer([1, 3, 3, 1], [1, 3, 3, 1]) / 64 * 4
            y = torch.from_numpy(naive_upfirdn(y.numpy(), kern, 1, 1, (1, 1)))
        else:
            y = F.conv2d(xn, wgt, padding=k // 2)
        outs.append(y)
    return torch.cat(outs).float()


def sigma_of(layer: ModulatedConv2d, w: torch.Tensor) -> torch.Tensor:
    """The modulation (1/sqrt(D))·A w + a, lr multiplier 1."""
    d = w.shape[-1]
    return w @ layer.modulation.weight.t() / math.sqrt(d) + layer.modulation.bias


def resize_p(p: torch.Tensor, size) -> torch.Tensor:
    return F.interpolate(p, size=tuple(size), mode="bilinear", align_corners=True)


def render(G, seg, z, **kw):
    with torch.no_grad():
        return G(seg, z, **kw)


# --------------------------------------------------------------------------------------------
# official parity (shared/fixtures/official, README section B)
# --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def official():
    from safetensors.torch import load_file

    state = load_file(str(FIXTURES / "sofgan_g.safetensors"))
    cases = {i: load_file(str(p)) for i, p in
             ((1, FIXTURES / "sofgan_case_1_single_style.safetensors"),
              (2, FIXTURES / "sofgan_case_2_style_mask.safetensors"),
              (3, FIXTURES / "sofgan_case_3_truncation.safetensors"))}
    return state, cases


def _official_model(state, **kw) -> SIWGenerator:
    g = SIWGenerator(SIWConfig(**OFFICIAL_TEST_CONFIG, **kw)).eval()
    g.load_state_dict(state, strict=True)
    return g


def _check_case(out, c, styles: int):
    assert (out.image - c["image"]).abs().max() <= TOL_IMAGE
    assert (out.seg_feature - c["seg_feature"]).abs().max() <= TOL_IMAGE
    for r, skip in zip((8, 16, 32), out.rgb_skips[1:4]):
        assert skip.shape == c[f"rgb_skip_{r}"].shape
        assert (skip - c[f"rgb_skip_{r}"]).abs().max() <= TOL_IMAGE, r
    assert out.latents.shape == (1, styles, 10, 64)
    assert (out.latents[0] - c["latent"]).abs().max() <= TOL_LATENT
    assert (out.w[0] - c["w"]).abs().max() <= TOL_LATENT


@needs_fixtures
def test_official_state_dict_keys_match_exactly(official):
    state, _ = official
    g = SIWGenerator(SIWConfig(**OFFICIAL_TEST_CONFIG))
    own = g.state_dict()
    assert set(own) == set(state)
    assert all(own[k].shape == state[k].shape for k in state)
    assert sum(v.numel() for v in state.values()) == 507_098  # README: stored values
    assert g.config.n_latent == 10 and g.config.num_noise == 9


@needs_fixtures
def test_official_case_1_single_style(official):
    state, cases = official
    c = cases[1]
    with torch.no_grad():
        out = _official_model(state)(c["label_map"][None], c["z"][0], return_all=True)
    _check_case(out, c, 1)


@needs_fixtures
def test_official_case_1_whole_pixelnorm(official):
    state, cases = official
    c = cases[1]
    g = _official_model(state, pixel_norm="whole")
    with torch.no_grad():
        out = g(c["label_map"][None], c["z"][0], return_all=True)
        split = _official_model(state)(c["label_map"][None], c["z"][0])
    assert (out.image - c["image_pixelnorm_whole"]).abs().max() <= TOL_IMAGE
    assert (out.w[0] - c["w_pixelnorm_whole"]).abs().max() <= TOL_LATENT
    assert (out.image - split).abs().max() > 1e-2  # the two variants really differ (README: 0.12)


@needs_fixtures
def test_official_case_2_style_mask(official):
    state, cases = official
    c = cases[2]
    g = _official_model(state)
    assert c["label_map"].shape == (256, 256)  # exercises the legacy nearest resize to 128
    with torch.no_grad():
        out = g(c["label_map"][None], c["z"][0][None], region_map=c["style_mask"], return_all=True)
        # the notebooks' path: the stored W+ latents as input
        via_latents = g(c["label_map"][None], latents=c["latent"][None], region_map=c["style_mask"])
        # the same mask from class weights: style B on the hair and eyes & mouth groups
        via_groups = g(c["label_map"][None], c["z"][0][None],
                       class_weights=two_style_weights({"hair": 1.0, "eyes_mouth": 1.0}))
    _check_case(out, c, 2)
    assert (via_latents - c["image"]).abs().max() <= TOL_IMAGE
    assert (via_groups - c["image"]).abs().max() <= TOL_IMAGE


@needs_fixtures
def test_official_case_3_truncation(official):
    state, cases = official
    c = cases[3]
    with torch.no_grad():
        out = _official_model(state)(c["label_map"][None], c["z"][0], truncation=float(c["truncation"]),
                                     truncation_latent=c["truncation_latent"], return_all=True)
    _check_case(out, c, 1)


# --------------------------------------------------------------------------------------------
# upfirdn2d against the naive definition
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("up,down,pad", [
    (1, 1, (2, 1)), (2, 1, (2, 1)), (1, 2, (1, 1)), (2, 2, (1, 2)), (1, 1, (-1, -1)), (2, 1, (-1, 2)),
    (1, 2, (0, -1)), (3, 1, (1, 1)), (1, 1, (0, 0)), (2, 1, (-2, -1)),
    # computed as a transposed convolution (issue 21): the 2x upsampling's pads and others
    (2, 1, (2, 1)), (2, 1, (1, 0)), (2, 1, (1, 1)), (2, 1, (0, -1)), (3, 1, (2, 1)), (3, 1, (0, 0)),
])
def test_upfirdn2d_matches_naive_definition(up, down, pad):
    g = torch.Generator().manual_seed(up * 100 + down * 10 + pad[0] + 7)
    x = torch.randn(2, 3, 6, 6, generator=g, dtype=torch.float64)
    kernel = torch.randn(3, 4, generator=g, dtype=torch.float64)  # asymmetric, non-square
    kernel = kernel[:3, :3] if up == 3 else kernel                # (also a 3x3 one)
    got = upfirdn2d(x, kernel, up=up, down=down, pad=pad)
    want = naive_upfirdn(x.numpy(), kernel.numpy(), up, down, pad)
    assert got.shape == want.shape
    kh = kernel.shape[0]
    assert got.shape[-2] == (6 * up + pad[0] + pad[1] - kh + down) // down
    np.testing.assert_allclose(got.numpy(), want, rtol=0, atol=1e-12)


def test_upfirdn2d_kernel_flip_matters():
    # a kernel with one off-centre tap shifts the signal one way (true convolution), not the other
    x = torch.zeros(1, 1, 5, 5)
    x[0, 0, 2, 2] = 1
    k = torch.zeros(3, 3)
    k[0, 0] = 1
    y = upfirdn2d(x, k, pad=(1, 1))
    assert y[0, 0, 1, 1] == 1 and y.sum() == 1
    assert torch.equal(y, torch.from_numpy(naive_upfirdn(x.numpy(), k.numpy(), 1, 1, (1, 1))).float())


def test_blur_kernels_match_official_buffers():
    k = make_kernel([1, 3, 3, 1])
    assert torch.allclose(k, torch.outer(torch.tensor([1., 3, 3, 1]), torch.tensor([1., 3, 3, 1])) / 64)


# --------------------------------------------------------------------------------------------
# region styles
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["exact", "fast"])
def test_batched_region_styles_equal_single_sample_calls(G, segs, mode):
    """No batch coupling (the release's batch > 1 bug): every sample uses its own segmap, codes and map."""
    gen = torch.Generator().manual_seed(1)
    z = torch.randn(3, 2, G.style_dim, generator=gen)
    p = torch.rand(3, 1, 40, 40, generator=gen)      # different soft maps per sample, not at 128
    p[1] = (p[1] > 0.5).float()
    pmap = torch.cat([1 - p, p], 1)
    batched = render(G, segs, z, region_map=pmap, mode=mode)
    for i in range(3):
        single = render(G, segs[i:i + 1], z[i:i + 1], region_map=pmap[i:i + 1], mode=mode)
        assert (batched[i:i + 1] - single).abs().max() <= 1e-5, i
    # and the samples really differ from each other
    assert (batched[0] - batched[1]).abs().max() > 1e-2


@pytest.mark.parametrize("upsample", [False, True])
def test_exact_blend_of_one_layer_equals_per_style_reference(upsample):
    torch.manual_seed(3)
    layer = perturb_(ModulatedConv2d(6, 5, 3, 16, upsample=upsample))
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(2, 6, 8, 8, generator=gen)
    w = torch.randn(2, 3, 16, generator=gen)
    p = torch.rand(2, 3, 12, 12, generator=gen)
    p = p / p.sum(1, keepdim=True)
    with torch.no_grad():
        got = layer(x, w, p, "exact")
        sig = sigma_of(layer, w)
        outs = torch.stack([ref_modconv(layer, x, sig[:, k]) for k in range(3)], 1)  # [N, K, C, H, W]
        want = (outs * resize_p(p, outs.shape[-2:])[:, :, None]).sum(1)
        # K = 1 also equals the reference
        single = layer(x, w[:, :1])
    assert got.shape == (2, 5, 16 if upsample else 8, 16 if upsample else 8)
    assert (got - want).abs().max() <= 1e-5
    assert (single - outs[:, 0]).abs().max() <= 1e-5


def test_torgb_blend_is_exact_for_any_map():
    torch.manual_seed(5)
    rgb = perturb_(ToRGB(6, 16, upsample=False))
    gen = torch.Generator().manual_seed(6)
    x = torch.randn(2, 6, 8, 8, generator=gen)
    w = torch.randn(2, 2, 16, generator=gen)
    p = torch.rand(2, 1, 8, 8, generator=gen)
    pmap = torch.cat([1 - p, p], 1)
    with torch.no_grad():
        got = rgb(x, w, None, pmap)
        per_style = torch.stack([rgb(x, w[:, k:k + 1]) for k in range(2)], 1)
    want = (per_style * pmap[:, :, None]).sum(1)
    assert (got - want).abs().max() <= 1e-5


def test_fast_mode_semantics_on_one_layer():
    """Fast = spatially varying modulation: with a constant soft map it is the conv modulated by the
    blended σ, demodulated by the blend of the per-style coefficients — *not* the blend of the
    per-style outputs."""
    torch.manual_seed(7)
    layer = perturb_(ModulatedConv2d(6, 5, 3, 16))
    gen = torch.Generator().manual_seed(8)
    x = torch.randn(2, 6, 8, 8, generator=gen)
    w = torch.randn(2, 2, 16, generator=gen)
    pmap = torch.cat([torch.full((2, 1, 8, 8), 0.3), torch.full((2, 1, 8, 8), 0.7)], 1)
    with torch.no_grad():
        fast = layer(x, w, pmap, "fast")
        exact = layer(x, w, pmap, "exact")
        sig = sigma_of(layer, w)
        # reference: plain conv of x scaled by the blended σ (no demodulation) ...
        lin = ModulatedConv2d(6, 5, 3, 16, demodulate=False)
        lin.weight.copy_(layer.weight)
        undemod = ref_modconv(lin, x, 0.3 * sig[:, 0] + 0.7 * sig[:, 1])
        # ... times the blend of each style's own demodulation coefficients
        wgt = layer.weight[0].double() / math.sqrt(6 * 9)
        d = [torch.rsqrt((wgt[None] * sig[:, k].double()[:, None, :, None, None]).pow(2).sum((2, 3, 4)) + 1e-8)
             for k in range(2)]                                               # [N, out] each
        want = undemod * (0.3 * d[0] + 0.7 * d[1]).float()[:, :, None, None]
    assert (fast - want).abs().max() <= 1e-5
    assert (fast - exact).abs().max() > 1e-3
    # without demodulation the layer is linear in σ, so fast is exact for a constant soft map
    lin = perturb_(ModulatedConv2d(6, 5, 3, 16, demodulate=False))
    with torch.no_grad():
        assert (lin(x, w, pmap, "fast") - lin(x, w, pmap, "exact")).abs().max() <= 1e-5


def test_all_a_map_equals_style_a(G, segs):
    z = torch.randn(2, 2, G.style_dim, generator=torch.Generator().manual_seed(9))
    a = render(G, segs[:2], z[:, :1])
    all_a = torch.zeros(2, 2, 128, 128)
    all_a[:, 0] = 1
    for mode in ("exact", "fast"):
        assert (render(G, segs[:2], z, region_map=all_a, mode=mode) - a).abs().max() <= 1e-5, mode
    b = render(G, segs[:2], z[:, 1:])
    assert (a - b).abs().max() > 1e-2


def test_fast_equals_exact_where_it_should(G, segs):
    z = torch.randn(2, 2, G.style_dim, generator=torch.Generator().manual_seed(10))
    # K = 1: mode is irrelevant
    assert torch.equal(render(G, segs[:2], z[:, :1], mode="fast"), render(G, segs[:2], z[:, :1], mode="exact"))
    # P constant and one-hot per sample (sample 0 all B, sample 1 all A)
    onehot = torch.zeros(2, 2, 128, 128)
    onehot[0, 1] = 1
    onehot[1, 0] = 1
    fast = render(G, segs[:2], z, region_map=onehot, mode="fast")
    exact = render(G, segs[:2], z, region_map=onehot, mode="exact")
    assert (fast - exact).abs().max() <= 1e-5
    assert (exact[0] - render(G, segs[:1], z[:1, 1:])[0]).abs().max() <= 1e-5
    # a constant *soft* map is not exact through the demodulated convs (see the layer test)
    soft = torch.cat([torch.full((2, 1, 128, 128), 0.3), torch.full((2, 1, 128, 128), 0.7)], 1)
    d = (render(G, segs[:2], z, region_map=soft, mode="fast") - render(G, segs[:2], z, region_map=soft)).abs()
    assert d.max() > 1e-4


def test_fast_differs_for_a_real_group_map(G, segs):
    z = torch.randn(2, 2, G.style_dim, generator=torch.Generator().manual_seed(11))
    cw = two_style_weights({"hair": 1.0, "eyes_mouth": 1.0})
    fast = render(G, segs[:2], z, class_weights=cw, mode="fast")
    exact = render(G, segs[:2], z, class_weights=cw, mode="exact")
    assert torch.isfinite(fast).all() and torch.isfinite(exact).all()
    assert (fast - exact).abs().max() > 1e-5


def test_class_weights_equal_the_equivalent_region_map(G, segs):
    gen = torch.Generator().manual_seed(12)
    z = torch.randn(3, 3, G.style_dim, generator=gen)
    cw = torch.rand(3, NUM_SOFGAN_CLASSES, 3, generator=gen)
    cw = cw / cw.sum(-1, keepdim=True)
    # P[n, k, y, x] = cw[n, label[n, y, x], k], built here by indexing
    pmap = torch.stack([cw[n][segs[n]].permute(2, 0, 1) for n in range(3)])
    for mode in ("exact", "fast"):
        via_cw = render(G, segs, z, class_weights=cw, mode=mode)
        via_map = render(G, segs, z, region_map=pmap, mode=mode)
        assert (via_cw - via_map).abs().max() <= 1e-6, mode
    onehot = F.one_hot(segs, NUM_SOFGAN_CLASSES).permute(0, 3, 1, 2).float()
    assert torch.allclose(region_map_from_weights(onehot, cw), pmap, atol=1e-6)


@pytest.mark.parametrize("mode", ["exact", "fast"])
def test_group_and_class_styles_run(G, segs, mode):
    gen = torch.Generator().manual_seed(13)
    for cw, k in ((group_style_weights(2), len(STYLE_GROUPS)), (class_style_weights(2), NUM_SOFGAN_CLASSES)):
        z = torch.randn(2, k, G.style_dim, generator=gen)
        out = render(G, segs[:2], z, class_weights=cw, mode=mode, return_all=True)
        assert out.image.shape == (2, 3, 32, 32) and torch.isfinite(out.image).all()
        assert out.region_map.shape == (2, k, 128, 128)
        assert torch.allclose(out.region_map.sum(1), torch.ones(2, 128, 128))
        assert out.latents.shape == (2, k, G.n_latent, G.style_dim)


def test_style_helpers_shapes_and_partition():
    g = group_style_weights(3)
    assert g.shape == (3, 17, 5) and torch.equal(g.sum(-1), torch.ones(3, 17))
    for k, ids in enumerate(STYLE_GROUPS.values()):
        assert g[0, list(ids), k].eq(1).all()
    assert torch.equal(class_style_weights(1)[0], torch.eye(17))
    t = two_style_weights([0.0, 0.25, 0.5, 0.75, 1.0])  # per group
    assert t.shape == (1, 17, 2)
    for k, ids in enumerate(STYLE_GROUPS.values()):
        assert torch.allclose(t[0, list(ids), 1], torch.tensor(0.25 * k))
    assert torch.allclose(t.sum(-1), torch.ones(1, 17))


def test_soft_sweep_end_points(G, segs):
    z = torch.randn(2, 2, G.style_dim, generator=torch.Generator().manual_seed(14))
    a = render(G, segs[:2], z[:, :1])
    b = render(G, segs[:2], z[:, 1:])
    for mode in ("exact", "fast"):
        p0 = render(G, segs[:2], z, class_weights=two_style_weights(0.0), mode=mode)
        p1 = render(G, segs[:2], z, class_weights=two_style_weights({g: 1.0 for g in STYLE_GROUPS}), mode=mode)
        assert (p0 - a).abs().max() <= 1e-5, mode
        assert (p1 - b).abs().max() <= 1e-5, mode
    mid = render(G, segs[:2], z, class_weights=two_style_weights(0.5))
    assert (mid - a).abs().max() > 1e-3 and (mid - b).abs().max() > 1e-3


def test_a_map_painted_by_one_style_runs_that_style_alone(G, segs, monkeypatch):
    """All weights 0 (or all 1): the same pixels as the full blend (computed with gradients on,
    where no shortcut is taken), from one style's convolutions instead of two."""
    from sofgan_lab.texture import generator as gen_mod

    z = torch.randn(2, 2, G.style_dim, generator=torch.Generator().manual_seed(21))
    batches = []
    conv = gen_mod.ModulatedConv2d._conv
    monkeypatch.setattr(gen_mod.ModulatedConv2d, "_conv", lambda self, x, w: batches.append(x.shape[0]) or conv(self, x, w))
    for mode in ("exact", "fast"):
        for weights, sole in ((two_style_weights(0.0), 0), (two_style_weights(1.0), 1)):
            with torch.enable_grad():
                full = G(segs[:2], z, class_weights=weights, mode=mode).detach()
            batches.clear()
            quick = render(G, segs[:2], z, class_weights=weights, mode=mode, return_all=True)
            assert set(batches) == {2}, (mode, batches)          # one style per sample, never 2 x 2
            assert (quick.image - full).abs().max() <= 1e-5, mode
            assert quick.latents.shape[1] == 2 and quick.region_map.shape[1] == 2   # the output still has both
            alone = render(G, segs[:2], z[:, sole:sole + 1])
            assert (quick.image - alone).abs().max() <= 1e-5
    batches.clear()
    render(G, segs[:2], z, class_weights=two_style_weights({"hair": 1.0}))  # a real mix blends both
    assert 4 in batches


def test_sole_style():
    from sofgan_lab.texture.generator import sole_style

    m = torch.zeros(2, 3, 4, 4)
    m[:, 2] = 1
    assert sole_style(m) == 2
    m[1, 2, 0, 0], m[1, 0, 0, 0] = 0.5, 0.5
    assert sole_style(m) is None
    m = torch.zeros(1, 2, 4, 4)
    m[:, 0] = 1
    m[:, 1, 1, 1] = 0.25          # style 0 everywhere, but style 1 also has a weight: not one style
    assert sole_style(m) is None


# --------------------------------------------------------------------------------------------
# truncation, mean latent, noise, style mixing
# --------------------------------------------------------------------------------------------

def test_truncation(G, segs):
    gen = torch.Generator().manual_seed(15)
    z = torch.randn(2, 1, G.style_dim, generator=gen)
    mean = torch.randn(G.style_dim, generator=gen)
    with torch.no_grad():
        base = G(segs[:2], z, return_all=True)
        same = G(segs[:2], z, truncation=1.0, truncation_latent=mean, return_all=True)
        zero = G(segs[:2], z, truncation=0.0, truncation_latent=mean, return_all=True)
        zero_default = G(segs[:2], z, truncation=0.0, return_all=True)
        cut = G(segs[:2], z, truncation=0.5, truncation_cutoff=3, truncation_latent=mean[None], return_all=True)
    assert torch.equal(base.image, same.image) and torch.equal(base.latents, same.latents)
    assert torch.allclose(zero.latents, mean.expand_as(zero.latents), atol=1e-6)
    assert (zero.image[0] - zero.image[1]).abs().max() > 1e-3  # different segmaps, same style
    assert torch.allclose(zero_default.latents, G.mean_latent().expand_as(zero.latents), atol=1e-6)
    w = base.w[:, :, None]
    assert torch.allclose(cut.latents[:, :, :3], mean + 0.5 * (w - mean), atol=1e-6)
    assert torch.equal(cut.latents[:, :, 3:], base.latents[:, :, 3:])
    assert torch.equal(cut.w, base.w)  # w is reported before truncation


def test_mean_latent_is_deterministic_cached_and_refreshed():
    torch.manual_seed(16)
    g = perturb_(SIWGenerator(tiny_config()))
    m1 = g.mean_latent(256, seed=3)
    assert g.mean_latent(256, seed=3) is m1                 # cached
    z = torch.randn(256, g.style_dim, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        assert torch.allclose(m1, g.mapping(z).mean(0), atol=1e-5)
    fresh = SIWGenerator(tiny_config())
    fresh.load_state_dict(g.state_dict())
    assert torch.equal(fresh.mean_latent(256, seed=3), m1)  # deterministic
    assert not torch.equal(g.mean_latent(256, seed=4), m1)  # other draws
    with torch.no_grad():
        g.style[3].weight.mul_(1.5)                         # the mapping changes in place
        want = g.mapping(z).mean(0)
    m2 = g.mean_latent(256, seed=3)
    assert m2 is not m1 and torch.allclose(m2, want, atol=1e-5)
    assert (m2 - m1).abs().max() > 1e-3


def test_noise_modes(G, segs):
    z = torch.randn(2, 1, G.style_dim, generator=torch.Generator().manual_seed(17))
    s = segs[:2]
    const = render(G, s, z)
    assert torch.equal(const, render(G, s, z, noise="const"))
    buffers = [getattr(G.noises, f"noise_{i}") for i in range(G.config.num_noise)]
    assert torch.equal(const, render(G, s, z, noise=buffers))
    r1 = render(G, s, z, noise="random", generator=torch.Generator().manual_seed(5))
    r2 = render(G, s, z, noise="random", generator=torch.Generator().manual_seed(5))
    r3 = render(G, s, z, noise="random", generator=torch.Generator().manual_seed(6))
    assert torch.equal(r1, r2)
    assert (r1 - r3).abs().max() > 1e-4
    none = render(G, s, z, noise="none")
    assert (none - const).abs().max() > 1e-4
    assert torch.equal(none, render(G, s, z, noise=[None] * G.config.num_noise))
    maps = G.make_noise(2, generator=torch.Generator().manual_seed(5))
    assert [m.shape[-1] for m in maps] == [4, 8, 8, 16, 16, 32, 32] and maps[0].shape[0] == 2
    with pytest.raises(ValueError, match="noise"):
        render(G, s, z, noise=buffers[:-1])
    with pytest.raises(ValueError, match="noise"):
        render(G, s, z, noise="fresh")


def test_style_mixing_latents_slots():
    gen = torch.Generator().manual_seed(18)
    wa, wb = torch.randn(3, 2, 8, generator=gen), torch.randn(3, 2, 8, generator=gen)
    lat = style_mixing_latents(wa, wb, torch.tensor([0, 4, 10]), 10)
    assert lat.shape == (3, 2, 10, 8)
    for n, c in enumerate((0, 4, 10)):
        for slot in range(10):
            want = wa[n] if slot < c else wb[n]
            assert torch.equal(lat[n, :, slot], want), (n, slot)
    lat2 = style_mixing_latents(wa, wb, 6, 10)
    assert torch.equal(lat2[:, :, :6], wa[:, :, None].expand(-1, -1, 6, -1))
    assert torch.equal(lat2[:, :, 6:], wb[:, :, None].expand(-1, -1, 4, -1))


def test_latents_input_equals_z_input(G, segs):
    z = torch.randn(2, 1, G.style_dim, generator=torch.Generator().manual_seed(19))
    out = render(G, segs[:2], z, return_all=True)
    assert torch.equal(render(G, segs[:2], None, latents=out.latents), out.image)
    assert torch.equal(render(G, segs[:2], None, w=out.w), out.image)
    # a single style row is broadcast over the batch
    one = render(G, segs[:2], z[:1])
    assert (one[1:] - render(G, segs[1:2], z[:1])).abs().max() <= 1e-5  # (batched conv rounding)
    assert (one[0] - render(G, segs[:1], z[:1])[0]).abs().max() <= 1e-5


def test_segmap_inputs(G, segs):
    z = torch.randn(1, 1, G.style_dim, generator=torch.Generator().manual_seed(20))
    ref = render(G, segs[:1], z)
    assert torch.equal(render(G, segs[0], z), ref)                        # [H, W]
    assert torch.equal(render(G, segs[0].numpy().astype(np.uint8), z), ref)  # numpy uint8
    onehot = F.one_hot(segs[:1], NUM_SOFGAN_CLASSES).permute(0, 3, 1, 2).float()
    assert torch.equal(render(G, onehot, z), ref)                         # float one-hot
    # nearest resize from 256: rows/columns 0, 2, 4, ...
    big = segs[0].repeat_interleave(2, 0).repeat_interleave(2, 1)
    assert torch.equal(render(G, big, z), ref)


# --------------------------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------------------------

def test_bad_generator_inputs_name_the_argument(G, segs):
    s = segs[:2]
    d = G.style_dim
    z1 = torch.randn(2, 1, d)
    z2 = torch.randn(2, 2, d)
    half = torch.full((2, 2, 16, 16), 0.5)
    bad = s.clone()
    bad[0, 0, 0] = 17
    cases = [
        (dict(segmap=bad, z=z1), "segmap"),
        (dict(segmap=s - 1, z=z1), "segmap"),
        (dict(segmap=s.float(), z=z1), "segmap"),
        (dict(segmap=s[:, None].expand(-1, 3, -1, -1), z=z1), "segmap"),
        (dict(segmap=s, z=torch.randn(2, 1, d + 1)), "z"),
        (dict(segmap=s, z=torch.randn(2, 1, 1, d)), "z"),
        (dict(segmap=s, z=None, latents=torch.randn(2, 1, G.n_latent + 1, d)), "latents"),
        (dict(segmap=s, z=z1, w=z1), "exactly one of z, w or latents"),
        (dict(segmap=s, z=None), "exactly one of z, w or latents"),
        (dict(segmap=s, z=torch.randn(3, 1, d)), "3 style rows"),
        (dict(segmap=s, z=z2), "region_map"),
        (dict(segmap=s, z=z1, region_map=half), "region_map"),
        (dict(segmap=s, z=z2, region_map=half, class_weights=two_style_weights(0.5)), "region_map"),
        (dict(segmap=s, z=z2, region_map=half * 3), "region_map"),
        (dict(segmap=s, z=z2, region_map=torch.cat([half[:, :1] * 3, -half[:, :1]], 1)), "region_map"),
        (dict(segmap=s, z=z2, region_map=torch.full((2, 2, 16, 16), 0.3)), "region_map"),
        (dict(segmap=s, z=z2, region_map=torch.full((2, 3, 16, 16), 1 / 3)), "region_map"),
        (dict(segmap=s, z=z2, region_map=torch.full((3, 2, 16, 16), 0.5)), "region_map"),
        (dict(segmap=s, z=z2, region_map=torch.full((2, 2, 16, 16), float("nan"))), "region_map"),
        (dict(segmap=s, z=z2, class_weights=torch.full((2, 17, 2), 0.3)), "class_weights"),
        (dict(segmap=s, z=z2, class_weights=torch.full((2, 17, 2), 1.5)), "class_weights"),
        (dict(segmap=s, z=z2, class_weights=torch.full((2, 17, 3), 1 / 3)), "class_weights"),
        (dict(segmap=s, z=z2, class_weights=torch.full((2, 16, 2), 0.5)), "class_weights"),
        (dict(segmap=s, z=z2, class_weights=torch.full((2, 17, 2), float("nan"))), "class_weights"),
        (dict(segmap=s, z=z1, mode="approx"), "mode"),
        (dict(segmap=s, z=z1, truncation=1.5), "truncation"),
        (dict(segmap=s, z=z1, truncation=-0.1), "truncation"),
        (dict(segmap=s, z=z1, truncation=0.5, truncation_cutoff=G.n_latent + 1), "truncation_cutoff"),
        (dict(segmap=s, z=z1, truncation=0.5, truncation_latent=torch.zeros(d + 1)), "truncation_latent"),
        (dict(segmap=s, z=z1, label_set="celeba"), "label_set"),
    ]
    for kwargs, match in cases:
        seg = kwargs.pop("segmap")
        zz = kwargs.pop("z")
        with pytest.raises(ValueError, match=match):
            with torch.no_grad():
                G(seg, zz, **kwargs)
    with pytest.raises(TypeError, match="segmap"):
        G(s.bool(), z1)
    with pytest.raises(ValueError, match="segmap"):   # a soft map outside [0, 1]
        G(torch.full((1, 17, 8, 8), 2.0), z1[:1])


def test_region_checks_directly():
    assert check_region_map(torch.full((1, 2, 4, 4), 0.5), 3, 2).shape == (3, 2, 4, 4)
    assert check_class_weights(two_style_weights(0.2), 3, 2).shape == (3, 17, 2)
    with pytest.raises(ValueError, match="region_map"):
        check_region_map([[[0.5, float("inf")]]], 1, 1)
    with pytest.raises(ValueError, match="class_weights"):
        check_class_weights(np.full((17, 2), 0.7), 1, 2)


def test_bad_config_and_helper_arguments():
    with pytest.raises(ValueError, match="size"):
        SIWConfig(size=48)
    with pytest.raises(ValueError, match="size"):
        SIWConfig(size=2048)
    with pytest.raises(ValueError, match="size"):
        SIWConfig(size=16, channels={4: 8, 8: 8, 16: 8})
    with pytest.raises(ValueError, match="channels"):
        SIWConfig(size=32, style_dim=32, channels={4: 32, 8: 32, 32: 16})
    with pytest.raises(ValueError, match="style_dim"):
        SIWConfig(size=32, style_dim=31, channels={4: 32, 8: 32, 16: 16, 32: 16})
    with pytest.raises(ValueError, match="pixel_norm"):
        tiny_config(pixel_norm="half")
    with pytest.raises(ValueError, match="encoder_channels"):
        tiny_config(encoder_channels=(8, 16))
    with pytest.raises(ValueError, match="preset"):
        SIWConfig.preset("large", 64)
    with pytest.raises(ValueError, match="unknown fields"):
        SIWConfig.from_dict({"size": 32, "depth": 3})
    with pytest.raises(ValueError, match="p"):
        two_style_weights({"beard": 1.0})
    with pytest.raises(ValueError, match="p"):
        two_style_weights(1.5)
    with pytest.raises(ValueError, match="p"):
        two_style_weights([0.5] * 4)
    with pytest.raises(TypeError, match="p"):
        two_style_weights({"hair": "yes"})


# --------------------------------------------------------------------------------------------
# discriminator
# --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def D() -> SIWDiscriminator:
    torch.manual_seed(21)
    return perturb_(SIWDiscriminator(tiny_config()))


@pytest.mark.parametrize("n", [1, 3, 4, 6, 8])
def test_discriminator_output_shape(D, n):
    x = torch.randn(n, 3, 32, 32, generator=torch.Generator().manual_seed(n))
    with torch.no_grad():
        out = D(x)
    assert out.shape == (n, 1) and torch.isfinite(out).all()


def test_discriminator_minibatch_stddev_groups(D):
    """Batch 8, group 4: sample i shares its stddev feature with i ± 2, 4, 6 (the rosinality layout)."""
    gen = torch.Generator().manual_seed(22)
    x = torch.randn(8, 3, 32, 32, generator=gen)
    y = x.clone()
    y[0] += torch.randn(3, 32, 32, generator=gen)
    with torch.no_grad():
        d = (D(x) - D(y)).abs()[:, 0]
    assert (d[[0, 2, 4, 6]] > 1e-4).all()
    assert (d[[1, 3, 5, 7]] <= 1e-6).all()


def test_discriminator_rejects_wrong_images(D):
    for bad in (torch.randn(2, 3, 64, 64), torch.randn(2, 1, 32, 32), torch.randn(3, 32, 32)):
        with pytest.raises(ValueError, match="images"):
            D(bad)
    with pytest.raises(ValueError, match="images"):
        D(np.zeros((1, 3, 32, 32), np.float32))


def test_gradients_flow_through_g_and_d(segs):
    torch.manual_seed(23)
    g = perturb_(SIWGenerator(tiny_config()))
    d = perturb_(SIWDiscriminator(tiny_config()))
    z = torch.randn(2, 2, g.style_dim, generator=torch.Generator().manual_seed(24))
    img = g(segs[:2], z, class_weights=two_style_weights({"hair": 1.0}), noise="random",
            generator=torch.Generator().manual_seed(0))
    real = torch.randn(2, 3, 32, 32, requires_grad=True)
    (d(img).sum() + d(real).sum()).backward()
    assert real.grad is not None and real.grad.abs().sum() > 0
    for name, p in list(g.named_parameters()) + list(d.named_parameters()):
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


# --------------------------------------------------------------------------------------------
# persistence and presets
# --------------------------------------------------------------------------------------------

def test_save_and_load_roundtrip(G, D, segs, tmp_path):
    z = torch.randn(2, 2, G.style_dim, generator=torch.Generator().manual_seed(25))
    cw = two_style_weights({"hair": 1.0})
    G.save_pretrained(tmp_path / "g")
    D.save_pretrained(tmp_path / "d")
    g2 = SIWGenerator.from_pretrained(tmp_path / "g").eval()
    d2 = SIWDiscriminator.from_pretrained(tmp_path / "d")
    assert g2.config == G.config and d2.config == D.config
    assert torch.equal(render(g2, segs[:2], z, class_weights=cw), render(G, segs[:2], z, class_weights=cw))
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(d2(x), D(x))
    from sofgan_lab.io.checkpoints import CheckpointError

    with pytest.raises(CheckpointError):
        SIWDiscriminator.from_pretrained(tmp_path / "g")


def test_config_dict_roundtrip():
    for cfg in (tiny_config(), tiny_config(pixel_norm="whole", blur_kernel=(1, 2, 1)), SIWConfig.demo(256),
                SIWConfig.official(1024)):
        d = json.loads(json.dumps(cfg.to_dict()))
        back = SIWConfig.from_dict(d)
        assert back == cfg and back.to_dict() == cfg.to_dict()


def test_config_is_frozen_and_every_field_is_documented():
    import dataclasses
    import inspect

    cfg = SIWConfig.demo(128)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.size = 256
    with pytest.raises(TypeError):
        cfg.channels[4] = 1                       # the width table is read-only too
    given = {4: 32, 8: 32, 16: 16, 32: 16}
    small = SIWConfig(size=32, style_dim=32, channels=given)
    given[4] = 1                                  # the caller's dict is copied, not kept
    assert small.channels[4] == 32 and hash(small) == hash(SIWConfig(size=32, style_dim=32, channels=dict(small.channels)))
    wider = dataclasses.replace(small, channels={**small.channels, 32: 24})
    assert wider.channels[32] == 24 and small.channels[32] == 16 and wider != small
    source = inspect.getsource(SIWConfig).splitlines()
    for f in dataclasses.fields(SIWConfig):       # a comment beside (or right below) every field
        at = next(i for i, line in enumerate(source) if line.strip().startswith(f"{f.name}:"))
        assert "#" in source[at] or source[at + 1].strip().startswith("#"), f"{f.name} has no comment"


def test_presets_build():
    cfg = SIWConfig.official(64)
    assert cfg.channels == {4: 512, 8: 512, 16: 512, 32: 512, 64: 512}
    assert cfg.style_dim == 512 and cfg.n_latent == 10 and cfg.num_noise == 9
    assert SIWConfig.preset("official", 64) == cfg and SIWConfig.preset("demo", 128) == SIWConfig.demo(128)
    with torch.device("meta"):  # shapes only, no memory
        g = SIWGenerator(cfg)
        big = SIWGenerator(SIWConfig.official(1024))
    assert g.convs[6].conv.weight.shape == (1, 512, 512, 3, 3)
    assert hasattr(g.convs[6], "segEncoder") and not hasattr(g.convs[4], "segEncoder")
    assert [m.conv.weight.shape[2] for m in g.to_rgbs] == [512] * 4
    assert g.conv1.conv.weight.shape == (1, 512, 128, 3, 3)
    # REFERENCE.md: ≈ 33.5 M (stored values of G at 1024², parameters plus the noise/FIR buffers)
    stored = sum(v.numel() for v in big.state_dict().values())
    assert round(stored / 1e6, 1) == 33.5
    assert big.n_latent == 18 and big.config.num_noise == 17
    assert [c for c in (64, 128, 256, 512, 1024)
            if hasattr(big.convs[2 * (int(math.log2(c)) - 3)], "segEncoder")] == [64, 128, 256]
    demo = SIWConfig.demo(128)
    assert demo.style_dim == 128 and demo.n_latent == 12 and sorted(demo.channels) == [4, 8, 16, 32, 64, 128]
    widths = [demo.channels[r] for r in sorted(demo.channels)]
    assert widths == sorted(widths, reverse=True)  # never widening with resolution


# --------------------------------------------------------------------------------------------
# texture metrics
# --------------------------------------------------------------------------------------------

def test_region_edit_leakage_matches_a_direct_computation(G, segs):
    from sofgan_lab.metrics.texture import region_edit_leakage

    seg32 = segs[:, ::4, ::4].contiguous()  # at the generator size, so no resize is involved
    rep = region_edit_leakage(G, seg32, "hair", seed=3, batch=2, dilation=1, mode="exact")
    assert rep["count"] == 3 and rep["group"] == "hair" and rep["inside_pixels"] > 0
    z = torch.randn(3, 2, G.style_dim, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        a = G(seg32, z[:, :1])
        ab = G(seg32, z, class_weights=two_style_weights({"hair": 1.0}))
    diff = ((a - ab).abs() / 2).mean(1)
    region = seg32 == 15
    dil = region.clone()
    for dy in (-1, 0, 1):                      # 3x3 dilation by shifting
        for dx in (-1, 0, 1):
            sh = torch.zeros_like(region)
            ys = slice(max(dy, 0), 32 + min(dy, 0))
            yd = slice(max(-dy, 0), 32 + min(-dy, 0))
            xs = slice(max(dx, 0), 32 + min(dx, 0))
            xd = slice(max(-dx, 0), 32 + min(-dx, 0))
            sh[:, yd, xd] = region[:, ys, xs]
            dil |= sh
    assert rep["inside_pixels"] == int(region.sum()) and rep["outside_pixels"] == int((~dil).sum())
    assert rep["inside"] == pytest.approx(float(diff[region].mean()), rel=1e-5)
    assert rep["outside"] == pytest.approx(float(diff[~dil].mean()), rel=1e-5)
    assert rep["inside"] > rep["outside"]
    # delta_e: the mean CIE76 distance between the hair's mean Lab colour in A and in A+B(hair)
    from sofgan_lab.metrics.texture import region_mean_lab

    shift = (region_mean_lab(a, seg32, (15,)) - region_mean_lab(ab, seg32, (15,))).norm(dim=1)
    assert not torch.isnan(shift).any()                  # every map has enough hair
    assert math.isfinite(rep["delta_e"]) and rep["delta_e"] > 0
    assert rep["delta_e"] == pytest.approx(float(shift.mean()), rel=1e-5)
    with pytest.raises(ValueError, match="group"):
        region_edit_leakage(G, seg32, "beard")


class StubParser(nn.Module):
    """Returns fixed SOF-20 label maps, whatever the images; records what it was given."""

    def __init__(self, labels20: torch.Tensor):
        super().__init__()
        self.labels20 = labels20
        self.calls = []
        self.pos = 0

    def parse(self, images: torch.Tensor) -> torch.Tensor:
        self.calls.append((tuple(images.shape), float(images.min()), float(images.max())))
        out = self.labels20[self.pos:self.pos + images.shape[0]]
        self.pos += images.shape[0]
        return out


def test_segmentation_consistency_with_a_stub_parser(G, segs):
    from sofgan_lab.metrics.texture import segmentation_consistency

    seg64 = segs[:, ::2, ::2].contiguous()      # resized by the metric to 32 (nearest: every other pixel)
    labels20 = torch.randint(0, 20, (3, 32, 32), generator=torch.Generator().manual_seed(26))
    parser = StubParser(labels20)
    rep = segmentation_consistency(G, parser, seg64, seed=0, batch=2)
    assert [c[0] for c in parser.calls] == [(2, 3, 32, 32), (1, 3, 32, 32)]
    assert all(lo >= -1 and hi <= 1 for _, lo, hi in parser.calls)
    pred = sof_to_sofgan(labels20).numpy()
    target = seg64[:, ::2, ::2].numpy()
    ious = []
    for c in range(NUM_SOFGAN_CLASSES):
        if not (target == c).any():
            continue
        inter = np.logical_and(pred == c, target == c).sum()
        union = np.logical_or(pred == c, target == c).sum()
        ious.append(inter / union)
    assert rep["count"] == 3
    assert rep["miou"] == pytest.approx(float(np.mean(ious)), abs=1e-12)
    assert rep["pixel_accuracy"] == pytest.approx(float((pred == target).mean()), abs=1e-12)
    assert len(rep["per_class"]) == len(ious)


# --------------------------------------------------------------------------------------------
# colour metrics: region_mean_lab, color_spread, photo_region_delta_e, style_color_diversity
# --------------------------------------------------------------------------------------------

def _lab(rgb01) -> np.ndarray:
    """CIE-Lab of sRGB colours ``(n, 3)`` in [0, 1] (through the converter tested in test_images.py)."""
    from sofgan_lab.images import rgb_to_lab

    x = torch.as_tensor(np.asarray(rgb01, np.float64)).reshape(-1, 3).float() * 2 - 1
    return rgb_to_lab(x[:, :, None, None])[:, :, 0, 0].double().numpy()


def _paint(seg: torch.Tensor, colours: list[dict]) -> torch.Tensor:
    """Images ``(N, 3, H, W)`` in [-1, 1]: image i has ``colours[i][label]`` (sRGB in [0, 1]) on ``label``."""
    out = torch.zeros(seg.shape[0], 3, *seg.shape[1:])
    for i, table in enumerate(colours):
        for label, rgb in table.items():
            out[i, :, seg[i] == label] = torch.tensor(rgb, dtype=torch.float32)[:, None] * 2 - 1
    return out


HAIR, SKIN, CLOTH, BG = 15, 1, 14, 0


def _blocks(n: int = 1, size: int = 20, shift: int = 0) -> torch.Tensor:
    """``n`` maps: background, a 7x7 skin block, a 7x7 hair block and a 7x16 cloth block (none at an edge)."""
    seg = torch.zeros(n, size, size, dtype=torch.long)
    seg[:, 2:9, 2:9] = SKIN
    seg[:, 2:9, 11:18] = HAIR
    seg[:, 11 + shift:18, 2:18] = CLOTH
    return seg


def test_region_mean_lab_of_uniform_regions_after_erosion():
    from sofgan_lab.metrics.texture import MIN_REGION_PIXELS, region_mean_lab

    seg = torch.zeros(3, 16, 16, dtype=torch.long)
    seg[0, 4:12, 4:12] = HAIR                       # 8x8: 6x6 = 36 pixels after a 1-pixel erosion
    seg[0, 5:11, 5:11] = 99                         # (painted only: the hair's inner 6x6)
    seg[2, 2:7, 2:7] = HAIR                         # 5x5: 3x3 = 9 < MIN_REGION_PIXELS after erosion
    inner, ring, small = (0.2, 0.4, 0.6), (1.0, 0.0, 0.0), (0.1, 0.8, 0.3)
    img = _paint(seg, [{0: (1, 1, 1), HAIR: ring, 99: inner}, {0: (0.5, 0.5, 0.5)}, {0: (0, 0, 0), HAIR: small}])
    seg[0][seg[0] == 99] = HAIR
    assert MIN_REGION_PIXELS == 16
    m = region_mean_lab(img, seg, [HAIR])
    assert m.shape == (3, 3) and m.dtype == torch.float64
    np.testing.assert_allclose(m[0].numpy(), _lab([inner])[0], atol=1e-4)     # the blended ring is eroded away
    assert torch.isnan(m[1]).all() and torch.isnan(m[2]).all()               # no hair / too few pixels left
    whole = region_mean_lab(img, seg, [HAIR], erode=0)
    np.testing.assert_allclose(whole[0].numpy(), (36 * _lab([inner])[0] + 28 * _lab([ring])[0]) / 64, atol=1e-4)
    np.testing.assert_allclose(whole[2].numpy(), _lab([small])[0], atol=1e-4)  # 25 pixels without erosion
    np.testing.assert_allclose(region_mean_lab(img, seg, [HAIR], min_pixels=9)[2].numpy(), _lab([small])[0],
                               atol=1e-4)
    # the background (uniform per image) and a union of classes
    np.testing.assert_allclose(region_mean_lab(img, seg, [BG])[1].numpy(), _lab([(0.5, 0.5, 0.5)])[0], atol=1e-4)
    np.testing.assert_allclose(region_mean_lab(img, seg, (BG, HAIR), erode=0)[2].numpy(),
                               (231 * _lab([(0, 0, 0)])[0] + 25 * _lab([small])[0]) / 256, atol=1e-4)
    # label maps at another size are resized (nearest) to the images
    torch.testing.assert_close(region_mean_lab(img[:1], seg[:1, ::2, ::2], [HAIR]), m[:1])


def test_region_mean_lab_bad_input():
    from sofgan_lab.metrics.texture import region_mean_lab

    img, seg = torch.zeros(2, 3, 8, 8), torch.zeros(2, 8, 8, dtype=torch.long)
    with pytest.raises(ValueError, match=r"^images: "):
        region_mean_lab(img[0], seg, [0])
    with pytest.raises(ValueError, match=r"^images: "):
        region_mean_lab(torch.zeros(2, 4, 8, 8), seg, [0])
    with pytest.raises(ValueError, match=r"^segmaps: "):
        region_mean_lab(img, seg[0], [0])
    with pytest.raises(ValueError, match=r"^segmaps: 3 maps for 2 images"):
        region_mean_lab(img, torch.zeros(3, 8, 8, dtype=torch.long), [0])
    with pytest.raises(ValueError, match=r"^images: contains NaN"):
        region_mean_lab(torch.full((2, 3, 8, 8), float("nan")), seg, [0])


def test_color_spread_is_the_trace_of_the_covariance():
    from sofgan_lab.metrics.texture import color_spread

    rng = np.random.default_rng(4)
    m = rng.normal(0, [20, 5, 9], (12, 3))
    expected = float(np.trace(np.cov(m, rowvar=False)))               # unbiased (n - 1) covariance
    assert color_spread(m) == pytest.approx(expected, rel=1e-12)
    assert color_spread(torch.as_tensor(m)) == pytest.approx(expected, rel=1e-12)
    with_nan = np.concatenate([m[:5], np.full((2, 3), np.nan), m[5:]])
    assert color_spread(with_nan) == pytest.approx(expected, rel=1e-12)   # NaN rows are skipped
    assert color_spread(np.repeat(m[:1], 4, 0)) == 0.0
    assert math.isnan(color_spread(m[:1])) and math.isnan(color_spread(np.full((3, 3), np.nan)))


def test_color_spread_of_photos_with_known_region_colours():
    from sofgan_lab.metrics.texture import color_spread, region_mean_lab

    rng = np.random.default_rng(7)
    hair = rng.uniform(0, 1, (6, 3))
    seg = _blocks(6)
    photos = _paint(seg, [{BG: (0.9, 0.9, 0.9), SKIN: (0.8, 0.6, 0.5), HAIR: tuple(c), CLOTH: (0.1, 0.1, 0.4)}
                          for c in hair])
    expected = float(np.trace(np.cov(_lab(hair), rowvar=False)))
    assert color_spread(region_mean_lab(photos, seg, [HAIR])) == pytest.approx(expected, rel=1e-5)
    assert color_spread(region_mean_lab(photos, seg, [SKIN])) == pytest.approx(0.0, abs=1e-8)


def test_photo_region_delta_e_is_the_lab_distance_of_the_region_colours():
    from sofgan_lab.metrics.texture import photo_region_delta_e

    red, white, black = (53.2408, 80.0925, 67.2032), (100.0, 0.0, 0.0), (0.0, 0.0, 0.0)  # published sRGB values
    seg = _blocks(4)
    seg[3][seg[3] == HAIR] = SKIN                                      # the 4th photo has no hair
    photos = _paint(seg, [{BG: (0.5, 0.5, 0.5), SKIN: (0.8, 0.6, 0.5), HAIR: c, CLOTH: (0, 0, 1)}
                          for c in ((1, 0, 0), (1, 1, 1), (0, 0, 0), (1, 1, 1))])
    two = photo_region_delta_e(photos[:2], seg[:2], "hair")
    assert two["pairs"] == 1 and two["photos"] == 2
    assert two["delta_e"] == pytest.approx(math.dist(red, white), abs=0.1)
    rep = photo_region_delta_e(photos, seg, "hair")
    assert rep["pairs"] == 3 and rep["photos"] == 3
    assert rep["delta_e"] == pytest.approx((math.dist(red, white) + math.dist(red, black) + 100.0) / 3, abs=0.1)
    same = photo_region_delta_e(photos, seg, "background")             # one grey in every photo
    assert same["pairs"] == 6 and same["delta_e"] == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match=r"^photos: fewer than two photos show the hair region"):
        photo_region_delta_e(photos[2:], seg[2:], "hair")
    with pytest.raises(ValueError, match=r"^group: "):
        photo_region_delta_e(photos, seg, "beard")


class FakeColourGenerator:
    """A stand-in texture generator: flat colours per SofGAN-17 region; the hair colour follows
    the style ``z`` (``tanh(z[:3])``) unless ``hair_follows_z`` is False. Records its calls."""

    style_dim = 4
    device = torch.device("cpu")
    FLAT = {BG: (0.2, 0.3, 0.4), SKIN: (0.7, 0.5, 0.4), CLOTH: (-0.5, 0.1, 0.6), HAIR: (0.1, -0.2, -0.4)}

    def __init__(self, hair_follows_z: bool = True):
        self.hair_follows_z = hair_follows_z
        self.training = True
        self.calls: list[dict] = []

    def eval(self):
        self.training = False
        return self

    def train(self, mode: bool = True):
        self.training = mode
        return self

    def __call__(self, segmaps, z, truncation=1.0, noise="random"):
        self.calls.append({"segmaps": segmaps.clone(), "z": z.clone(), "truncation": truncation, "noise": noise,
                           "training": self.training})
        img = torch.zeros(segmaps.shape[0], 3, *segmaps.shape[1:])
        for label, rgb in self.FLAT.items():
            colour = torch.tensor(rgb).expand(segmaps.shape[0], 3)
            if label == HAIR and self.hair_follows_z:
                colour = torch.tanh(z[:, :3])
            mask = (segmaps == label)[:, None]
            img = torch.where(mask, colour[:, :, None, None].expand_as(img), img)
        return img


def _diversity_photos(m: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(11)
    seg = _blocks(m)
    return _paint(seg, [{r: tuple(rng.uniform(0, 1, 3)) for r in (BG, SKIN, HAIR, CLOTH)} for _ in range(m)]), seg


def test_style_color_diversity_with_a_generator_whose_hair_follows_the_style():
    from sofgan_lab.metrics.texture import DIVERSITY_REGIONS, color_spread, region_mean_lab, style_color_diversity

    photos, photo_seg = _diversity_photos()
    segs = torch.cat([_blocks(1), _blocks(1, shift=1), _blocks(1, shift=2)])
    g = FakeColourGenerator()
    rep = style_color_diversity(g, segs, photos, photo_seg, n_styles=3, n_geometries=2, seed=5, truncation=0.7,
                                batch=4)
    assert set(rep["ratio"]) == set(DIVERSITY_REGIONS) == {"hair", "skin", "cloth", "background"}
    assert (rep["n_styles"], rep["n_geometries"], rep["n_photos"], rep["truncation"]) == (3, 2, 5, 0.7)
    # six portraits (each of the first 2 geometries x 3 styles) in batches of 4 and 2, in eval mode
    assert [c["segmaps"].shape[0] for c in g.calls] == [4, 2]
    assert torch.equal(torch.cat([c["segmaps"] for c in g.calls]), segs[[0, 0, 0, 1, 1, 1]])
    assert all(c["truncation"] == 0.7 and c["noise"] == "const" and not c["training"] for c in g.calls)
    assert g.training                                                  # the mode is restored
    z = torch.randn(6, 4, generator=torch.Generator().manual_seed(5))
    assert torch.equal(torch.cat([c["z"] for c in g.calls]), z)
    # hair: the spread of the Lab colours of tanh(z), over that of the photos' hair colours
    generated = float(np.trace(np.cov(_lab((torch.tanh(z[:, :3]).numpy() + 1) / 2), rowvar=False)))
    assert rep["generated"]["hair"] == pytest.approx(generated, rel=1e-4)
    assert rep["photos"]["hair"] == pytest.approx(color_spread(region_mean_lab(photos, photo_seg, [HAIR])))
    assert rep["ratio"]["hair"] > 0
    assert rep["ratio"]["hair"] == pytest.approx(rep["generated"]["hair"] / rep["photos"]["hair"], rel=1e-12)
    for region in ("skin", "cloth", "background"):                   # painted alike by every style
        assert rep["photos"][region] > 0
        assert rep["generated"][region] == pytest.approx(0.0, abs=1e-8)
        assert rep["ratio"][region] == pytest.approx(0.0, abs=1e-9)


def test_style_color_diversity_is_zero_for_a_generator_that_ignores_the_style():
    from sofgan_lab.metrics.texture import style_color_diversity

    photos, photo_seg = _diversity_photos()
    g = FakeColourGenerator(hair_follows_z=False)
    g.training = False
    rep = style_color_diversity(g, _blocks(2), photos, photo_seg, n_styles=4, n_geometries=1,
                                regions={"hair": (HAIR,)})
    assert set(rep["ratio"]) == {"hair"} and rep["ratio"]["hair"] == pytest.approx(0.0, abs=1e-9)
    assert not g.training and len(g.calls) == 1 and g.calls[0]["truncation"] == 1.0
    # photos that all look alike give no reference: NaN
    same = photos[:1].expand(3, -1, -1, -1)
    rep = style_color_diversity(FakeColourGenerator(), _blocks(2), same, photo_seg[:3], n_styles=2, n_geometries=1)
    assert all(math.isnan(v) for v in rep["ratio"].values())


@pytest.mark.parametrize("kw, match", [
    (dict(n_styles=1), "n_styles: "),
    (dict(n_styles=True), "n_styles: "),
    (dict(n_styles=2.0), "n_styles: "),
    (dict(n_geometries=0), "n_geometries: "),
    (dict(batch=0), "batch: "),
    (dict(n_geometries=3), "segmaps: 2 maps, fewer than n_geometries=3"),
])
def test_style_color_diversity_bad_arguments(kw, match):
    from sofgan_lab.metrics.texture import style_color_diversity

    photos, photo_seg = _diversity_photos(2)
    g = FakeColourGenerator()
    with pytest.raises(ValueError, match="^" + match):
        style_color_diversity(g, _blocks(2), photos, photo_seg, **{"n_styles": 2, "n_geometries": 1, **kw})
    assert g.calls == [] and g.training


# --------------------------------------------------------------------------------------------
# issue 20: bad input never gives an all-NaN image or an unnamed error
# --------------------------------------------------------------------------------------------
def _nan_at(shape, value=float("nan")):
    t = torch.zeros(shape)
    t.view(-1)[0] = value
    return t


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
@pytest.mark.parametrize("arg", ["z", "w", "latents", "truncation_latent", "noise"])
def test_non_finite_styles_and_noise_are_refused_naming_the_argument(G, segs, arg, value):
    """Before: each of these returned an all-NaN image without a word."""
    d, L = G.style_dim, G.n_latent
    kw = {"z": torch.zeros(1, d)}
    if arg in ("z", "w"):
        kw = {arg: _nan_at((1, d), value)}
    elif arg == "latents":
        kw = {"latents": _nan_at((1, L, d), value)}
    elif arg == "truncation_latent":
        kw.update(truncation=0.5, truncation_latent=_nan_at((d,), value))
    else:
        maps = [getattr(G.noises, f"noise_{i}").clone() for i in range(G.config.num_noise)]
        maps[2] = _nan_at(maps[2].shape, value)
        kw["noise"] = maps
    name = "noise\\[2\\]" if arg == "noise" else arg
    z = kw.pop("z", None)
    with pytest.raises(ValueError, match=f"{name}: contains NaN or infinite values"):
        render(G, segs[:1], z, **kw)


def test_mean_latent_and_random_z_check_their_counts(G):
    with pytest.raises(ValueError, match=r"n: expected an integer in 1\.\.1048576, got 0"):  # before: a NaN mean
        G.mean_latent(0)
    with pytest.raises(ValueError, match=r"n: expected an integer in 0\.\.1048576, got -1"):  # before: RuntimeError
        G.random_z(-1)
    with pytest.raises(ValueError, match="n: expected an integer in 0..1048576"):  # before: a multi-line TypeError
        G.random_z(2 ** 64)
    with pytest.raises(ValueError, match="n: expected an integer in 1..1048576"):
        G.mean_latent(2 ** 64)
    with pytest.raises(TypeError, match="n: expected an integer"):
        G.random_z(2.5)
    with pytest.raises(ValueError, match="k: expected an integer in 1..64"):
        G.random_z(1, 0)
    with pytest.raises(ValueError, match=r"seed: expected an integer in 0\.\.18446744073709551615"):
        G.random_z(1, seed=2 ** 64)  # before: "Overflow when unpacking long long"
    with pytest.raises(TypeError, match="generator: expected a torch.Generator"):
        G.random_z(1, generator=3)
    assert G.random_z(0).shape == (0, 1, G.style_dim)
    assert torch.equal(G.random_z(1, seed=2 ** 64 - 1), G.random_z(1, seed=2 ** 64 - 1))


@pytest.mark.parametrize("noise, exc, match", [
    (5, TypeError, "noise: expected one of .* or a list of 7 tensors, got 5 \\(int\\)"),
    ({"a": 1}, TypeError, "noise: expected one of"),
    ("5", ValueError, "noise: expected one of"),
])
def test_noise_of_a_wrong_kind_is_named(G, segs, noise, exc, match):
    with pytest.raises(exc, match=match):
        render(G, segs[:1], torch.zeros(1, G.style_dim), noise=noise)


def test_noise_maps_of_a_wrong_shape_or_type_are_named(G, segs):
    maps = [getattr(G.noises, f"noise_{i}").clone() for i in range(G.config.num_noise)]
    z = torch.zeros(2, G.style_dim)
    for i, bad, match in [(0, torch.zeros(1, 1, 8, 8), r"noise\[0\]: expected shape \[1, 1, 4, 4\] or \[2, 1, 4, 4\]"),
                          (3, torch.zeros(3, 1, 16, 16), r"noise\[3\]: expected shape"),
                          (1, torch.zeros(8, 8), r"noise\[1\]: expected shape"),
                          (2, np.zeros((1, 1, 8, 8), np.float32), r"noise\[2\]: expected a tensor"),
                          (2, torch.zeros(1, 1, 8, 8, dtype=torch.long), r"noise\[2\]: expected a float tensor")]:
        m = list(maps)
        m[i] = bad
        with pytest.raises((ValueError, TypeError), match=match):
            render(G, segs[:2], z, noise=m)
    # per-sample maps of the batch's size still work, and equal the shared ones repeated
    rep = [t.expand(2, -1, -1, -1).clone() for t in maps]
    assert torch.equal(render(G, segs[:2], z, noise=rep), render(G, segs[:2], z, noise=maps))


def test_numpy_and_0d_tensor_truncation_is_accepted(G, segs):
    """Before: ``truncation=np.float32(0.5)`` raised "expected a number in [0, 1]"."""
    z = torch.randn(1, G.style_dim, generator=torch.Generator().manual_seed(3))
    ref = render(G, segs[:1], z, truncation=0.5)
    assert torch.equal(render(G, segs[:1], z, truncation=np.float32(0.5)), ref)
    assert torch.equal(render(G, segs[:1], z, truncation=torch.tensor(0.5)), ref)
    for bad in (float("nan"), "0.5", True, 1.5):
        with pytest.raises(ValueError, match="truncation"):
            render(G, segs[:1], z, truncation=bad)
    with pytest.raises(TypeError, match="truncation_cutoff: expected an integer"):
        render(G, segs[:1], z, truncation=0.5, truncation_cutoff=2.5)  # before: silently 2


def test_styles_of_a_wrong_type_are_named(G, segs):
    with pytest.raises(TypeError, match="z: expected a float tensor, got 'abc'"):
        render(G, segs[:1], "abc")
    with pytest.raises(TypeError, match="latents: expected a float tensor, got dtype torch.int64"):
        render(G, segs[:1], None, latents=torch.zeros(1, G.n_latent, G.style_dim, dtype=torch.long))
    z = torch.randn(1, G.style_dim, generator=torch.Generator().manual_seed(3))
    assert torch.equal(render(G, segs[:1], z.numpy()), render(G, segs[:1], z))


@pytest.mark.parametrize("kw, match", [
    (dict(style_dim=10 ** 6), r"style_dim: expected an integer in 1\.\.4096"),
    (dict(n_mlp=1000), r"n_mlp: expected an integer in 1\.\.64"),
    (dict(channels={4: 32, 8: 32, 16: 10 ** 7, 32: 16}), "channels: width at 16 must be in 1..4096"),
    (dict(channels=5), "channels: expected a dict"),
    (dict(channels={"four": 3}), "channels: expected integer resolutions"),
    (dict(encoder_channels=(8, 16, 10 ** 6)), "encoder_channels: expected an integer in 1..4096"),
    (dict(encoder_channels="abc"), "encoder_channels: expected a list"),
    (dict(blur_kernel=(1, "x")), "blur_kernel"),
    (dict(lr_mlp=float("inf")), "lr_mlp"),
    (dict(condition_size=10 ** 6), "condition_size"),
    (dict(spade_max=2 ** 20), "spade_max"),
])
def test_config_bounds_keep_a_tampered_config_from_asking_for_terabytes(kw, match):
    with pytest.raises(ValueError, match=match):
        tiny_config(**kw)


def test_two_style_weights_refuse_nan_in_a_mapping():
    """Before: ``{'hair': nan}`` passed the [0, 1] check (NaN compares false) and gave NaN weights."""
    from sofgan_lab.texture.regions import two_style_weights

    with pytest.raises(ValueError, match=r"p\['hair'\]: expected a finite number, got nan"):
        two_style_weights({"hair": float("nan")})
    with pytest.raises(ValueError, match="p: contains NaN"):
        two_style_weights(torch.tensor([0.5, float("nan"), 0.0, 0.0, 0.0]))
    w = two_style_weights({"hair": np.float32(0.25), "eyes_mouth": torch.tensor(1.0)})
    assert torch.isfinite(w).all() and w[..., 1].max() == 1.0


@pytest.mark.parametrize("arg", ["w", "latents", "truncation_latent"])
def test_huge_styles_are_refused_not_rendered_as_nan(G, segs, arg):
    """w, W+ latents or a truncation latent of 3e38 gave an all-NaN image (the demodulation overflows)."""
    d, L = G.style_dim, G.n_latent
    kw = {"w": {"w": torch.full((1, d), 3e38)}, "latents": {"latents": torch.full((1, L, d), 3e38)},
          "truncation_latent": {"w": torch.zeros(1, d), "truncation": 0.5,
                                "truncation_latent": torch.full((d,), 3e38)}}[arg]
    with pytest.raises(ValueError, match=f"{arg}: values must lie within ±1e\\+06"):
        render(G, segs[:1], None, **kw)
    ok = render(G, segs[:1], None, w=torch.full((1, d), 1e6))
    assert torch.isfinite(ok).all()
