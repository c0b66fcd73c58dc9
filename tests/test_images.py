"""The image converters at the edges and the package's device choice."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import sofgan_lab
from sofgan_lab.images import tensor_to_uint8, uint8_to_tensor


def test_known_values_map_to_known_bytes():
    x = torch.tensor([-1.0, -0.5, 0.0, 0.5, 1.0, 2.0, -3.0]).view(1, 1, 7).expand(3, 1, 7)
    out = tensor_to_uint8(x)
    assert out.shape == (1, 7, 3) and out.dtype == np.uint8
    # (v + 1) * 127.5 rounded half to even; out-of-range values are clipped
    assert out[0, :, 0].tolist() == [0, 64, 128, 191, 255, 255, 0]


def test_roundtrip_is_exact_on_uint8(device):
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (2, 5, 7, 3), dtype=np.uint8)
    t = uint8_to_tensor(a).to(device)
    assert t.shape == (2, 3, 5, 7) and t.dtype == torch.float32
    assert float(t.min()) >= -1.0 and float(t.max()) <= 1.0
    np.testing.assert_array_equal(tensor_to_uint8(t), a)
    np.testing.assert_array_equal(tensor_to_uint8(uint8_to_tensor(a[0])), a[0])


def test_nan_is_refused():
    x = torch.zeros(3, 2, 2)
    x[1, 0, 1] = float("nan")
    with pytest.raises(ValueError, match="images: contains NaN"):
        tensor_to_uint8(x)


@pytest.mark.parametrize("bad, err, word", [
    (np.zeros((2, 2, 3)), TypeError, "images"),
    (torch.zeros(4, 2, 2), ValueError, r"\(4, 2, 2\)"),
    (torch.zeros(2, 2), ValueError, "images"),
])
def test_tensor_to_uint8_bad_input(bad, err, word):
    with pytest.raises(err, match=word):
        tensor_to_uint8(bad)


@pytest.mark.parametrize("bad, err, word", [
    (np.zeros((2, 2, 3), dtype=np.float32), TypeError, "array: expected dtype uint8"),
    (np.zeros((2, 2, 4), dtype=np.uint8), ValueError, r"array: .*\(2, 2, 4\)"),
])
def test_uint8_to_tensor_bad_input(bad, err, word):
    with pytest.raises(err, match=word):
        uint8_to_tensor(bad)


def test_default_device_is_usable():
    d = sofgan_lab.default_device()
    assert isinstance(d, torch.device)
    assert d.type == ("cuda" if torch.cuda.is_available() else d.type)
    torch.zeros(1, device=d)  # allocating there works
