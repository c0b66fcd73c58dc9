"""Safe reading of foreign checkpoints (``sofgan_lab.io.torchfile``) and the error reporting of the
official importers (``sofgan_lab.io.official``): pickles that would run code are refused without
running, corrupt files and mismatched state dicts raise ``CheckpointError`` naming file and key.

Runs without the official fixtures: the official-format state dicts are made from small random
models (our SofGAN attribute names are the official ones; the SOF key map is inverted).
"""
from __future__ import annotations

import os
import pathlib
import pickle

import pytest
import torch
from safetensors.torch import save_file

from sofgan_lab.geometry.sof import SemanticOccupancyField, SOFConfig
from sofgan_lab.io import CheckpointError, load_torch_file
from sofgan_lab.io.official import load_official_sof, load_official_sofgan
from sofgan_lab.io.official import _sof_key_map
from sofgan_lab.texture import SIWConfig, SIWGenerator

pytestmark = pytest.mark.usefixtures("one_thread")

SMALL_SOF = SOFConfig(latent_dim=16, hyper_dim=24, phi_dim=8, phi_layers=3, marcher_dim=12, marcher_layers=4,
                      classifier_dim=10, classifier_layers=3, num_classes=20, num_instances=3)
TINY_SIW = dict(size=32, style_dim=32, channels={4: 32, 8: 24, 16: 16, 32: 8}, encoder_channels=(8, 16, 32),
                spade_hidden=8, spade_min=16, spade_max=32)


class TouchOnLoad:
    """A pickle payload: unpickling it calls ``pathlib.Path.touch(marker)``."""

    def __init__(self, marker: pathlib.Path):
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (self.marker,))


class SystemOnLoad:
    """A pickle payload: unpickling it runs ``os.system("touch <marker>")``."""

    def __init__(self, marker: pathlib.Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))


@pytest.fixture(scope="module")
def sof_official_state() -> dict[str, torch.Tensor]:
    """A small SOF's state dict under the official key names."""
    torch.manual_seed(0)
    model = SemanticOccupancyField(SMALL_SOF)
    own = model.state_dict()
    return {off: own[ours].clone() for off, ours in _sof_key_map(model).items()}


@pytest.fixture(scope="module")
def siw_official_state() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return {k: v.clone() for k, v in SIWGenerator(SIWConfig(**TINY_SIW)).state_dict().items()}


# --------------------------------------------------------------------------------------------
# code-executing pickles
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("payload", [TouchOnLoad, SystemOnLoad])
@pytest.mark.parametrize("writer", ["torch.save", "pickle.dump"])
def test_code_executing_pickle_is_refused_without_running(tmp_path, payload, writer):
    marker = tmp_path / "PWNED"
    path = tmp_path / "evil.pth"
    obj = {"model": {"x": torch.zeros(2)}, "optimizer": payload(marker)}
    if writer == "torch.save":
        torch.save(obj, path)
    else:  # the legacy (non-zip) format: a raw pickle
        with open(path, "wb") as f:
            pickle.dump(obj, f, protocol=2)
    assert not marker.exists()
    for load in (lambda p: load_torch_file(p), load_official_sof, load_official_sofgan):
        with pytest.raises(CheckpointError) as info:
            load(path)
        msg = str(info.value)
        assert "evil.pth" in msg and "refuse" in msg and "execute code" in msg, msg
        assert "weights_only" not in msg  # no advice on how to switch the protection off
        assert not marker.exists(), "loading executed code from the checkpoint"


def test_the_payload_really_runs_code_under_plain_pickle(tmp_path):
    """Sanity check of the test above: the same payload does create its file when unpickled naively."""
    marker = tmp_path / "ran"
    pickle.loads(pickle.dumps({"optimizer": TouchOnLoad(marker)}))
    assert marker.exists()


# --------------------------------------------------------------------------------------------
# corrupt files and wrong containers
# --------------------------------------------------------------------------------------------

def test_reads_pth_and_safetensors(tmp_path):
    sd = {"a": torch.arange(6.0).view(2, 3), "b": torch.ones(1)}
    torch.save({"model": sd, "optimizer": {"state": {}, "param_groups": [{"lr": 1e-4}]}, "epoch": 3},
               tmp_path / "x.pth")
    got = load_torch_file(tmp_path / "x.pth")
    assert got["epoch"] == 3 and torch.equal(got["model"]["a"], sd["a"])
    save_file(sd, str(tmp_path / "x.safetensors"))
    got = load_torch_file(tmp_path / "x.safetensors")
    assert set(got) == {"a", "b"} and torch.equal(got["a"], sd["a"])


@pytest.mark.parametrize("kind", ["truncated_pth", "truncated_safetensors", "garbage", "empty"])
def test_corrupt_files(tmp_path, kind):
    sd = {"a": torch.randn(64, 64)}
    if kind == "truncated_safetensors":
        path = tmp_path / "broken.safetensors"
        save_file(sd, str(path))
        path.write_bytes(path.read_bytes()[:1000])
    else:
        path = tmp_path / "broken.pth"
        torch.save({"model": sd}, path)
        data = {"truncated_pth": path.read_bytes()[:2000], "garbage": b"not a checkpoint at all", "empty": b""}[kind]
        path.write_bytes(data)
    for load in (lambda p: load_torch_file(p), load_official_sof, load_official_sofgan):
        with pytest.raises(CheckpointError, match="broken"):
            load(path)


def test_missing_file_and_non_dict(tmp_path):
    with pytest.raises(CheckpointError, match=r"nothere\.pth.*no such file"):
        load_torch_file(tmp_path / "nothere.pth")
    torch.save([torch.zeros(1)], tmp_path / "list.pth")
    with pytest.raises(CheckpointError, match=r"list\.pth.*expected a dict.*list"):
        load_torch_file(tmp_path / "list.pth", what="SOF checkpoint")


def test_missing_container_entry_is_named(tmp_path, sof_official_state, siw_official_state):
    torch.save({"g": siw_official_state, "d": {}}, tmp_path / "no_ema.pt")
    with pytest.raises(CheckpointError, match=r"no_ema\.pt.*'g_ema'"):
        load_official_sofgan(tmp_path / "no_ema.pt")
    torch.save({"state": sof_official_state, "optimizer": {}}, tmp_path / "no_model.pth")
    with pytest.raises(CheckpointError, match=r"no_model\.pth.*'model'"):
        load_official_sof(tmp_path / "no_model.pth")
    # a SofGAN checkpoint given to the SOF importer and vice versa
    torch.save({"g": {}, "d": {}, "g_ema": siw_official_state}, tmp_path / "sofgan.pt")
    with pytest.raises(CheckpointError, match=r"sofgan\.pt.*'model'"):
        load_official_sof(tmp_path / "sofgan.pt")
    torch.save({"model": sof_official_state}, tmp_path / "sof.pth")
    with pytest.raises(CheckpointError, match=r"sof\.pth.*'g_ema'"):
        load_official_sofgan(tmp_path / "sof.pth")
    torch.save({"model": [1, 2, 3]}, tmp_path / "odd.pth")
    with pytest.raises(CheckpointError, match=r"odd\.pth.*'model' is not a state dict"):
        load_official_sof(tmp_path / "odd.pth")


# --------------------------------------------------------------------------------------------
# SOF: round trip and key errors
# --------------------------------------------------------------------------------------------

def test_sof_round_trip_through_official_keys(tmp_path, sof_official_state):
    torch.save({"model": sof_official_state, "optimizer": {}}, tmp_path / "sof.pth")
    model = load_official_sof(tmp_path / "sof.pth")
    assert model.config == SMALL_SOF
    assert not model.training
    torch.manual_seed(0)
    ref = SemanticOccupancyField(SMALL_SOF).state_dict()
    got = model.state_dict()
    assert set(got) == set(ref) and all(torch.equal(got[k], ref[k]) for k in ref)
    # a DataParallel prefix and a bare state dict in a .safetensors file load the same
    save_file({f"module.{k}": v for k, v in sof_official_state.items()}, str(tmp_path / "sof.safetensors"))
    again = load_official_sof(tmp_path / "sof.safetensors").state_dict()
    assert all(torch.equal(again[k], ref[k]) for k in ref)


@pytest.mark.parametrize("key", ["ray_marcher.lstm.bias.2.bias", "pixel_generator.net.1.net.1.weight",
                                 "hyper_phi.layers.1.hyper_linear.hypo_params.net.1.net.0.bias",
                                 "latent_codes.weight"])
def test_sof_missing_key_is_named(tmp_path, sof_official_state, key):
    sd = {k: v for k, v in sof_official_state.items() if k != key}
    torch.save({"model": sd}, tmp_path / "sof_missing.pth")
    with pytest.raises(CheckpointError) as info:
        load_official_sof(tmp_path / "sof_missing.pth")
    assert "sof_missing.pth" in str(info.value) and repr(key) in str(info.value), str(info.value)


@pytest.mark.parametrize("key,shape", [("ray_marcher.lstm.linear.1.weight", (12, 11)),
                                       ("pixel_generator.net.2.net.1.bias", (9,)),
                                       ("hyper_phi.layers.2.hyper_linear.hypo_params.net.2.weight", (70, 24)),
                                       ("latent_codes.weight", (3, 15))])
def test_sof_wrong_shape_is_named(tmp_path, sof_official_state, key, shape):
    sd = dict(sof_official_state)
    sd[key] = torch.zeros(shape)
    torch.save({"model": sd}, tmp_path / "sof_shape.pth")
    with pytest.raises(CheckpointError) as info:
        load_official_sof(tmp_path / "sof_shape.pth")
    assert "sof_shape.pth" in str(info.value) and repr(key) in str(info.value), str(info.value)


def test_sof_unexpected_and_bad_values_are_named(tmp_path, sof_official_state):
    sd = dict(sof_official_state, **{"ami_code.weight": torch.zeros(2, 4)})
    torch.save({"model": sd}, tmp_path / "extra.pth")
    with pytest.raises(CheckpointError, match=r"extra\.pth.*unexpected key 'ami_code\.weight'"):
        load_official_sof(tmp_path / "extra.pth")
    sd = dict(sof_official_state)
    sd["pixel_generator.net.3.bias"] = torch.full((20,), float("nan"))
    torch.save({"model": sd}, tmp_path / "nan.pth")
    with pytest.raises(CheckpointError, match=r"nan\.pth.*'pixel_generator\.net\.3\.bias'.*non-finite"):
        load_official_sof(tmp_path / "nan.pth")


# --------------------------------------------------------------------------------------------
# SofGAN: round trip and key errors
# --------------------------------------------------------------------------------------------

def test_sofgan_round_trip_infers_the_config(tmp_path, siw_official_state):
    torch.save({"g": siw_official_state, "d": {}, "g_ema": siw_official_state}, tmp_path / "g.pt")
    g = load_official_sofgan(tmp_path / "g.pt")
    assert g.config == SIWConfig(**TINY_SIW)
    got = g.state_dict()
    assert all(torch.equal(got[k], siw_official_state[k]) for k in siw_official_state)
    assert load_official_sofgan(tmp_path / "g.pt", pixel_norm="whole").config.pixel_norm == "whole"
    with pytest.raises(ValueError, match="pixel_norm"):
        load_official_sofgan(tmp_path / "g.pt", pixel_norm="half")


@pytest.mark.parametrize("cfg", [
    dict(size=64, style_dim=16, n_mlp=3, channels={4: 16, 8: 16, 16: 8, 32: 8, 64: 8}, encoder_channels=(4, 8, 16),
         spade_hidden=6),                                   # SPADE at 64 only: the release's default range
    dict(size=32, style_dim=16, channels={4: 16, 8: 16, 16: 8, 32: 8},
         encoder_channels=(4, 8, 16)),                      # below 64: no SPADE layer (hidden width: default)
    dict(size=32, style_dim=16, channels={4: 16, 8: 16, 16: 8, 32: 8}, encoder_channels=(4, 8, 16),
         spade_hidden=6, spade_min=8, spade_max=16),        # a non-default range
])
def test_sofgan_config_inference_variants(tmp_path, cfg):
    ref = SIWConfig(**cfg)
    save_file(SIWGenerator(ref).state_dict(), str(tmp_path / "g.safetensors"))
    assert load_official_sofgan(tmp_path / "g.safetensors").config == ref


@pytest.mark.parametrize("key", ["convs.3.noise.weight", "noises.noise_4", "to_rgbs.1.upsample.kernel",
                                 "convs.4.segEncoder.mlp_gamma.bias", "style.1.weight"])
def test_sofgan_missing_key_is_named(tmp_path, siw_official_state, key):
    sd = {k: v for k, v in siw_official_state.items() if k != key}
    torch.save({"g_ema": sd}, tmp_path / "g_missing.pt")
    with pytest.raises(CheckpointError) as info:
        load_official_sofgan(tmp_path / "g_missing.pt")
    assert "g_missing.pt" in str(info.value) and repr(key) in str(info.value), str(info.value)


@pytest.mark.parametrize("key,shape", [("convs.3.conv.weight", (1, 16, 15, 3, 3)), ("to_rgb1.bias", (3,)),
                                       ("noises.noise_2", (1, 1, 4, 4)), ("segEncoder.1.conv1.1.bias", (5,))])
def test_sofgan_wrong_shape_is_named(tmp_path, siw_official_state, key, shape):
    sd = dict(siw_official_state)
    sd[key] = torch.zeros(shape)
    torch.save({"g": {}, "d": {}, "g_ema": sd}, tmp_path / "g_shape.pt")
    with pytest.raises(CheckpointError) as info:
        load_official_sofgan(tmp_path / "g_shape.pt")
    assert "g_shape.pt" in str(info.value) and repr(key) in str(info.value), str(info.value)


def test_sofgan_unexpected_key_and_foreign_kernel_are_named(tmp_path, siw_official_state):
    sd = dict(siw_official_state, **{"input.input": torch.zeros(1, 32, 4, 4)})
    torch.save({"g_ema": sd}, tmp_path / "g_extra.pt")
    with pytest.raises(CheckpointError, match=r"g_extra\.pt.*unexpected key 'input\.input'"):
        load_official_sofgan(tmp_path / "g_extra.pt")
    sd = dict(siw_official_state)
    sd["convs.0.conv.blur.kernel"] = torch.full((4, 4), 0.25)
    torch.save({"g_ema": sd}, tmp_path / "g_kernel.pt")
    with pytest.raises(CheckpointError, match=r"g_kernel\.pt.*'convs\.0\.conv\.blur\.kernel'"):
        load_official_sofgan(tmp_path / "g_kernel.pt")


def test_atomic_write_leaves_the_old_file_or_the_new_one(tmp_path):
    Path = pathlib.Path
    from sofgan_lab.io.checkpoints import atomic_write, atomic_write_bytes, atomic_write_text

    target = tmp_path / "sub" / "out.png"
    seen = []
    atomic_write(target, lambda tmp: seen.append(tmp) or Path(tmp).write_bytes(b"one"))
    assert target.read_bytes() == b"one" and seen[0].endswith(".png")        # the suffix is kept for writers
    assert Path(seen[0]).parent == target.parent and not Path(seen[0]).exists()

    def fails(tmp):
        Path(tmp).write_bytes(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, fails)
    assert target.read_bytes() == b"one" and sorted(p.name for p in target.parent.iterdir()) == ["out.png"]
    atomic_write_bytes(target, b"two")
    atomic_write_text(tmp_path / "t.json", "{}\n")
    assert target.read_bytes() == b"two" and (tmp_path / "t.json").read_text() == "{}\n"
    assert (target.stat().st_mode & 0o777) != 0o600                          # not mkstemp's private mode


@pytest.mark.parametrize("text", ["garbage text\n", "go away\n", "{\"model\": 1}\n", "# notes\nlr = 0.1\n"])
def test_a_text_file_is_not_called_code(tmp_path, text):
    """A text file whose first byte happens to be an opcode torch's safe unpickler lacks ('g', '{', '#')
    was refused as a file that "asks to execute code"; it is simply not a checkpoint."""
    path = tmp_path / "notes.pt"
    path.write_text(text)
    with pytest.raises(CheckpointError) as info:
        load_torch_file(path)
    msg = str(info.value)
    assert str(path) in msg and "execute code" not in msg and "\n" not in msg, msg
