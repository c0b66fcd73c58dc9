"""Finding the shipped demo models."""
from __future__ import annotations

import pytest
import torch

from sofgan_lab.demo import data_dir, demo_dir
from sofgan_lab.geometry import SemanticOccupancyField, SOFConfig


def test_env_var_points_to_another_data_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("SOFGAN_LAB_DATA", str(tmp_path))
    assert data_dir() == tmp_path
    with pytest.raises(FileNotFoundError, match=r"name: the demo model 'sof' is not at .*SOFGAN_LAB_DATA"):
        demo_dir("sof")
    with pytest.raises(FileNotFoundError, match="demo model 'sof'"):
        SemanticOccupancyField.from_pretrained("demo")


def test_demo_resolves_to_a_saved_model(tmp_path, monkeypatch):
    monkeypatch.setenv("SOFGAN_LAB_DATA", str(tmp_path))
    torch.manual_seed(0)
    m = SemanticOccupancyField(SOFConfig(latent_dim=8, hyper_dim=8, phi_dim=8, marcher_dim=8,
                                         classifier_dim=8, num_instances=2))
    m.save_pretrained(tmp_path / "demo" / "sof")
    assert demo_dir("sof") == tmp_path / "demo" / "sof"
    loaded = SemanticOccupancyField.from_pretrained("demo")
    assert all(torch.equal(a, b) for a, b in zip(m.state_dict().values(), loaded.state_dict().values()))


@pytest.mark.parametrize("bad", ["", "../sof", "a/b", 3])
def test_bad_names(bad):
    with pytest.raises(ValueError, match="name"):
        demo_dir(bad)
