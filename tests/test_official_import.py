"""Import of the official checkpoints (``sofgan_lab.io.official``) against the fixtures made by the
official code (``shared/fixtures/official``, see its README): inferred configs, SOF parity of the
official-compatible forward (both cameras, zero and replayed random jitter), SofGAN parity of the
imported generator (three cases and the whole-vector PixelNorm), and ``sofgan-lab import-official``.

The fixture weights go through real checkpoint files in the release's layouts
(``{'model': ..., 'optimizer': ...}`` and ``{'g', 'd', 'g_ema'}``) as well as the ``.safetensors`` files.
"""
from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from sofgan_lab.geometry.sof import SemanticOccupancyField, SOFConfig
from sofgan_lab.io.official import load_official_sof, load_official_sofgan, official_sof_render
from sofgan_lab.texture import SIWConfig, SIWGenerator

# one thread (tests/conftest.py): bit-stable sums and no OpenMP spinning on the busy machines
pytestmark = pytest.mark.usefixtures("one_thread")

# The official-format fixtures live in shared/ beside the checkout (SOFGAN_LAB_SHARED overrides).
SHARED = Path(os.environ.get("SOFGAN_LAB_SHARED", Path(__file__).resolve().parents[1].parent / "shared"))
FIXTURES = SHARED / "fixtures" / "official"
# Skipped where the folder is absent, except in CI, where a missing fixture fails loudly.
needs_fixtures = pytest.mark.skipif(
    not ((FIXTURES / "sof_model.safetensors").is_file() and (FIXTURES / "sofgan_g.safetensors").is_file())
    and not os.environ.get("CI"), reason=f"official fixtures not found at {FIXTURES}")

TOL_SOF = 1e-4                      # README: logits, depth, points
LABEL_MARGIN = 1e-3                 # README: labels exact where the top-1/top-2 margin is larger
TOL_IMAGE, TOL_LATENT = 1e-4, 1e-5  # README: SofGAN image / skips / seg feature, w / latent

# README section A, "Config" (hidden_dim=32, 4 instances, 20 classes; the rest are the official sizes)
README_SOF_CONFIG = SOFConfig(latent_dim=256, hyper_dim=256, phi_dim=32, phi_layers=3, marcher_dim=256,
                              marcher_layers=4, classifier_dim=32, classifier_layers=3, num_classes=20,
                              march_steps=10, sphere_radius=1.5, num_instances=4)
# README section B, "Config"
README_SOFGAN_CONFIG = dict(size=64, style_dim=64, n_mlp=8, lr_mlp=0.01,
                            channels={4: 64, 8: 48, 16: 40, 32: 32, 64: 24}, num_classes=17,
                            condition_size=128, encoder_channels=(32, 64, 128), spade_hidden=128,
                            spade_min=64, spade_max=256, blur_kernel=(1, 3, 3, 1))

# max differences measured by the parity tests, printed at the end with -s (for reports)
MEASURED: dict[str, float] = {}


@pytest.fixture(scope="module", autouse=True)
def _report_measured():
    yield
    if MEASURED:
        print("\nofficial parity, max abs diff:")
        for k, v in sorted(MEASURED.items()):
            print(f"  {k}: {v:.3g}")


# --------------------------------------------------------------------------------------------
# SOF
# --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def sof_pth(tmp_path_factory) -> Path:
    """The fixture weights in the release's checkpoint layout."""
    path = tmp_path_factory.mktemp("official") / "sof.pth"
    sd = load_file(str(FIXTURES / "sof_model.safetensors"))
    torch.save({"model": sd, "optimizer": {}}, path)
    return path


@pytest.fixture(scope="module")
def sof(sof_pth) -> SemanticOccupancyField:
    return load_official_sof(sof_pth)


@pytest.fixture(scope="module")
def sof_cases() -> dict[str, dict[str, torch.Tensor]]:
    return {name: load_file(str(FIXTURES / f"sof_case_{name}.safetensors")) for name in ("ortho", "persp")}


def _render_case(model, c: dict, variant: str):
    kw = {}
    if variant == "seeded_jitter":
        kw = dict(init_depth=c["seeded_jitter.init_depth_noise"], sphere_jitter=c["seeded_jitter.sphere_jitter"])
    H, W = c["resolution"].tolist()
    with torch.no_grad():
        return official_sof_render(model, c["z"], c["cam2world"], c["intrinsics"], c["uv"],
                                   orthographic=bool(c["orthographic"].item()), resolution=(H, W), **kw)


@needs_fixtures
def test_sof_config_is_inferred_from_shapes(sof):
    assert sof.config == README_SOF_CONFIG
    assert sof.num_parameters() == 1_121_144  # README: parameters of the fixture model
    assert not sof.training


@needs_fixtures
def test_sof_pth_and_safetensors_load_the_same_weights(sof):
    other = load_official_sof(FIXTURES / "sof_model.safetensors")
    assert other.config == sof.config
    a, b = sof.state_dict(), other.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


@needs_fixtures
@pytest.mark.parametrize("variant", ["zero_jitter", "seeded_jitter"])
@pytest.mark.parametrize("case", ["ortho", "persp"])
def test_sof_official_forward_parity(sof, sof_cases, case, variant):
    c = sof_cases[case]
    assert torch.equal(sof.latents.weight[int(c["instance_idx"])], c["z"])  # the stored code is the table row
    out = _render_case(sof, c, variant)
    names = ["logits", "depth", "points_init", "points_final"]
    for name in names:
        got, want = getattr(out, name)[0], c[f"{variant}.{name}"]
        assert got.shape == want.shape, name
        d = (got - want).abs().max().item()
        MEASURED[f"sof {case} {variant} {name}"] = d
        assert d <= TOL_SOF, (name, d)
    if variant == "zero_jitter":
        d = (out.points_steps[0] - c["zero_jitter.points_steps"]).abs().max().item()
        MEASURED[f"sof {case} {variant} points_steps"] = d
        assert d <= TOL_SOF
    want_labels = c[f"{variant}.labels"].long()
    top2 = c[f"{variant}.logits"].topk(2, dim=0).values
    confident = (top2[0] - top2[1]) > LABEL_MARGIN
    assert confident.float().mean() > 0.98
    assert torch.equal(out.labels[0][confident], want_labels[confident])


@needs_fixtures
def test_sof_official_forward_defaults_and_layouts(sof, sof_cases):
    c = sof_cases["persp"]
    H, W = c["resolution"].tolist()
    with torch.no_grad():
        rays = official_sof_render(sof, c["z"], c["cam2world"], c["intrinsics"], c["uv"], orthographic=False)
        image = _render_case(sof, c, "zero_jitter")
        # a batch of two latents with the same camera matches the single renders
        both = official_sof_render(sof, torch.stack([c["z"], sof.latents.weight[2]]), c["cam2world"],
                                   c["intrinsics"], c["uv"], orthographic=False, resolution=(H, W))
        # the release's random jitter, drawn from a generator: reproducible, and a real change
        g1 = official_sof_render(sof, c["z"], c["cam2world"], c["intrinsics"], c["uv"], orthographic=False,
                                 generator=torch.Generator().manual_seed(5))
        g2 = official_sof_render(sof, c["z"], c["cam2world"], c["intrinsics"], c["uv"], orthographic=False,
                                 generator=torch.Generator().manual_seed(5))
    assert rays.logits.shape == (1, H * W, 20) and rays.points_steps.shape == (1, 11, H * W, 3)
    assert torch.equal(rays.logits.view(1, H, W, 20).permute(0, 3, 1, 2), image.logits)
    assert (both.logits[:1] - image.logits).abs().max() <= 1e-5
    assert torch.equal(g1.logits, g2.logits)
    assert 1e-4 < (g1.logits - rays.logits).abs().max() < 0.5
    with pytest.raises(ValueError, match="resolution"):
        official_sof_render(sof, c["z"], c["cam2world"], c["intrinsics"], c["uv"], orthographic=False,
                            resolution=(H, W + 1))
    with pytest.raises(ValueError, match="sphere_jitter"):
        official_sof_render(sof, c["z"], c["cam2world"], c["intrinsics"], c["uv"], orthographic=False,
                            sphere_jitter=torch.zeros(7))
    with pytest.raises(ValueError, match="cam2world"):
        official_sof_render(sof, c["z"], c["cam2world"][:3], c["intrinsics"], c["uv"], orthographic=False)


# --------------------------------------------------------------------------------------------
# SofGAN
# --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def sofgan_pt(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("official") / "sofgan.pt"
    sd = load_file(str(FIXTURES / "sofgan_g.safetensors"))
    torch.save({"g": sd, "d": {}, "g_ema": sd}, path)
    return path


@pytest.fixture(scope="module")
def sofgan(sofgan_pt) -> SIWGenerator:
    return load_official_sofgan(sofgan_pt)


@pytest.fixture(scope="module")
def sofgan_cases() -> dict[int, dict[str, torch.Tensor]]:
    names = {1: "1_single_style", 2: "2_style_mask", 3: "3_truncation"}
    return {i: load_file(str(FIXTURES / f"sofgan_case_{n}.safetensors")) for i, n in names.items()}


def _check_sofgan(name: str, out, c: dict, styles: int) -> None:
    diffs = {"image": (out.image - c["image"]).abs().max().item(),
             "seg_feature": (out.seg_feature - c["seg_feature"]).abs().max().item()}
    for r, skip in zip((8, 16, 32), out.rgb_skips[1:4]):
        assert skip.shape == c[f"rgb_skip_{r}"].shape
        diffs[f"rgb_skip_{r}"] = (skip - c[f"rgb_skip_{r}"]).abs().max().item()
    assert out.latents.shape == (1, styles, 10, 64)
    lat = {"latent": (out.latents[0] - c["latent"]).abs().max().item(), "w": (out.w[0] - c["w"]).abs().max().item()}
    for k, v in {**diffs, **lat}.items():
        MEASURED[f"sofgan {name} {k}"] = v
    assert max(diffs.values()) <= TOL_IMAGE, diffs
    assert max(lat.values()) <= TOL_LATENT, lat


@needs_fixtures
def test_sofgan_config_is_inferred_from_shapes(sofgan):
    assert sofgan.config == SIWConfig(**README_SOFGAN_CONFIG, pixel_norm="split")
    assert sofgan.config.n_latent == 10 and sofgan.config.num_noise == 9
    assert sum(v.numel() for v in sofgan.state_dict().values()) == 507_098  # README: stored values
    assert not sofgan.training


@needs_fixtures
def test_sofgan_case_1_single_style(sofgan, sofgan_cases):
    c = sofgan_cases[1]
    with torch.no_grad():
        out = sofgan(c["label_map"][None], c["z"][0], return_all=True)
    _check_sofgan("case 1", out, c, 1)


@needs_fixtures
def test_sofgan_case_2_style_mask(sofgan, sofgan_cases):
    c = sofgan_cases[2]
    with torch.no_grad():
        out = sofgan(c["label_map"][None], c["z"][0][None], region_map=c["style_mask"], return_all=True)
    _check_sofgan("case 2", out, c, 2)


@needs_fixtures
def test_sofgan_case_3_truncation(sofgan, sofgan_cases):
    c = sofgan_cases[3]
    with torch.no_grad():
        out = sofgan(c["label_map"][None], c["z"][0], truncation=float(c["truncation"]),
                     truncation_latent=c["truncation_latent"], return_all=True)
    _check_sofgan("case 3", out, c, 1)


@needs_fixtures
def test_sofgan_whole_pixelnorm_from_safetensors(sofgan_cases):
    c = sofgan_cases[1]
    g = load_official_sofgan(FIXTURES / "sofgan_g.safetensors", pixel_norm="whole")
    assert g.config == SIWConfig(**README_SOFGAN_CONFIG, pixel_norm="whole")
    with torch.no_grad():
        out = g(c["label_map"][None], c["z"][0], return_all=True)
    d_img = (out.image - c["image_pixelnorm_whole"]).abs().max().item()
    d_w = (out.w[0] - c["w_pixelnorm_whole"]).abs().max().item()
    MEASURED["sofgan case 1 whole-PixelNorm image"], MEASURED["sofgan case 1 whole-PixelNorm w"] = d_img, d_w
    assert d_img <= TOL_IMAGE and d_w <= TOL_LATENT
    assert (out.image - c["image"]).abs().max() > 1e-2  # the split default really differs


# --------------------------------------------------------------------------------------------
# sofgan-lab import-official
# --------------------------------------------------------------------------------------------

def _assert_official_framing(pipe, out: Path) -> None:
    """An imported pipeline keeps the release's framing: target (0, 0.1, 0), zoom 1, the sampler's poses."""
    from sofgan_lab.cameras import DEFAULT_TARGET, TRAINED_PITCH_RANGE, TRAINED_YAW_RANGE, Camera, framing

    assert pipe.default_camera["target"] == [0.0, 0.1, 0.0] == list(DEFAULT_TARGET)
    assert pipe.default_camera["zoom"] == 1.0 and pipe.default_camera["fov"] is None
    assert pipe.pose_range == {"yaw": TRAINED_YAW_RANGE, "pitch": TRAINED_PITCH_RANGE}
    meta = json.loads((out / "pipeline.json").read_text())
    assert meta["camera"]["target"] == [0.0, 0.1, 0.0] and meta["camera"]["zoom"] == 1.0
    assert meta["pose_range"] == {"yaw": list(TRAINED_YAW_RANGE), "pitch": list(TRAINED_PITCH_RANGE)}
    cam = pipe.camera(yaw=15.0)
    ref = Camera.from_orbit(15.0, image_size=pipe.image_size, **framing("official"))
    assert torch.equal(cam.cam2world, ref.cam2world) and torch.equal(cam.intrinsics, ref.intrinsics)
    assert float(cam.focal[0, 0]) == 36.0 * pipe.image_size / 128   # the release's orthographic scale


needs_pipeline = pytest.mark.skipif(importlib.util.find_spec("sofgan_lab.pipeline") is None,
                                    reason="sofgan_lab.pipeline is not available yet")


@needs_fixtures
@needs_pipeline
def test_cli_import_official_writes_a_native_pipeline(tmp_path, sof_pth, sofgan_pt, sof, sofgan, capsys):
    from sofgan_lab.cli import main
    from sofgan_lab.pipeline import SofGAN

    out = tmp_path / "native"
    rc = main(["-q", "import-official", "--sof", str(sof_pth), "--sofgan", str(sofgan_pt), "--out", str(out),
               "--pixel-norm", "whole"])
    assert rc == 0, capsys.readouterr().err
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["out"] == str(out) and result["space"] is None  # 4 latent codes: too few for a space
    pipe = SofGAN.from_pretrained(out)
    a, b = pipe.sof.state_dict(), sof.state_dict()
    assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)
    assert pipe.siw.config.pixel_norm == "whole"
    a, b = pipe.siw.state_dict(), sofgan.state_dict()
    assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)
    _assert_official_framing(pipe, out)


@needs_fixtures
def test_cli_import_official_bad_input_exits_2(tmp_path, sofgan_pt, capsys):
    from sofgan_lab.cli import main

    bad = tmp_path / "broken.pth"
    bad.write_bytes(b"garbage")
    rc = main(["-q", "import-official", "--sof", str(bad), "--sofgan", str(sofgan_pt), "--out",
               str(tmp_path / "native")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("sofgan-lab: error: --sof:") and "broken.pth" in err[0]
    assert not (tmp_path / "native").exists()


@needs_pipeline
def test_cli_import_official_fits_a_space_with_enough_codes(tmp_path, capsys):
    """Small random models in the official layouts (no fixtures needed): 10 latent codes give a space."""
    from safetensors.torch import save_file

    from sofgan_lab.cli import main
    from sofgan_lab.io.official import _sof_key_map
    from sofgan_lab.pipeline import SofGAN

    torch.manual_seed(0)
    sof = SemanticOccupancyField(SOFConfig(latent_dim=16, hyper_dim=16, phi_dim=8, marcher_dim=8, classifier_dim=8,
                                           num_instances=10))
    own = sof.state_dict()
    torch.save({"model": {k: own[v] for k, v in _sof_key_map(sof).items()}, "optimizer": {}}, tmp_path / "sof.pth")
    siw = SIWGenerator(SIWConfig(size=32, style_dim=16, channels={4: 16, 8: 16, 16: 8, 32: 8},
                                 encoder_channels=(4, 8, 16)))  # no SPADE below 64
    save_file(siw.state_dict(), str(tmp_path / "g_ema.safetensors"))
    out = tmp_path / "native"
    out.mkdir()
    (out / "old.txt").write_text("x")
    argv = ["-q", "import-official", "--sof", str(tmp_path / "sof.pth"),
            "--sofgan", str(tmp_path / "g_ema.safetensors"), "--out", str(out)]
    assert main(argv) == 2
    assert "--out" in capsys.readouterr().err
    assert main(argv + ["--overwrite"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["space"] == 5 and result["latent_codes"] == 10
    pipe = SofGAN.from_pretrained(out)
    assert pipe.space is not None and pipe.space.dim == 16
    assert torch.equal(pipe.sof.latents.weight, sof.latents.weight)
    assert pipe.siw.config == siw.config
    _assert_official_framing(pipe, out)
