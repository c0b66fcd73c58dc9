"""The image converters at the edges and the package's device choice."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import sofgan_lab
from sofgan_lab.images import rgb_to_lab, tensor_to_uint8, uint8_to_tensor


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


# ------------------------------------------------------------------------------------------
# rgb_to_lab: sRGB in [-1, 1] -> CIE-Lab (D65)
# ------------------------------------------------------------------------------------------

def _pixels(*rgb01) -> torch.Tensor:
    """(3, 1, n) image of the given sRGB colours (components in [0, 1]) in the [-1, 1] range."""
    return (torch.tensor(rgb01, dtype=torch.float64).T[:, None, :] * 2 - 1).float()


@pytest.mark.parametrize("rgb, lab", [
    ((1.0, 1.0, 1.0), (100.0, 0.0, 0.0)),            # the D65 white
    ((0.0, 0.0, 0.0), (0.0, 0.0, 0.0)),
    ((1.0, 0.0, 0.0), (53.2408, 80.0925, 67.2032)),  # the published sRGB primaries
    ((0.0, 1.0, 0.0), (87.7347, -86.1827, 83.1793)),
    ((0.0, 0.0, 1.0), (32.2970, 79.1875, -107.8602)),
])
def test_rgb_to_lab_known_colours(rgb, lab):
    out = rgb_to_lab(_pixels(rgb))
    assert out.shape == (3, 1, 1) and out.dtype == torch.float32
    np.testing.assert_allclose(out[:, 0, 0].numpy(), lab, atol=0.05)


def test_rgb_to_lab_greys_are_neutral_and_follow_the_lightness_formula():
    v = np.array([0.0, 0.02, 0.04045, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0])
    out = rgb_to_lab(_pixels(*[(x, x, x) for x in v]))[:, 0].numpy()
    np.testing.assert_allclose(out[1:], 0.0, atol=1e-3)             # a* = b* = 0 for every grey
    # sRGB decoding, then L* = 116 Y^(1/3) - 16 above (6/29)^3 and (29/3)^3 Y below
    y = np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)
    lightness = np.where(y > (6 / 29) ** 3, 116 * np.cbrt(y) - 16, (29 / 3) ** 3 * y)
    np.testing.assert_allclose(out[0], lightness, atol=1e-3)
    assert (np.diff(out[0]) > 0).all()
    assert y[1] < (6 / 29) ** 3 < y[3]                                # both branches are exercised


def test_rgb_to_lab_keeps_batch_dims_and_clips():
    x = torch.rand(2, 4, 3, 5, 6, generator=torch.Generator().manual_seed(0)) * 2 - 1
    out = rgb_to_lab(x)
    assert out.shape == x.shape and out.dtype == torch.float32
    torch.testing.assert_close(out[1, 2], rgb_to_lab(x[1, 2]))      # pixels are independent of the batch
    torch.testing.assert_close(rgb_to_lab(torch.full((3, 2, 2), 3.0)), rgb_to_lab(torch.ones(3, 2, 2)))
    torch.testing.assert_close(rgb_to_lab(torch.full((3, 2, 2), -7.0)), torch.zeros(3, 2, 2), atol=1e-4, rtol=0)
    assert rgb_to_lab(torch.ones(3, 2, 2, dtype=torch.float64)).dtype == torch.float32


@pytest.mark.parametrize("bad, err, match", [
    (torch.tensor([[[0.0]], [[float("nan")]], [[0.0]]]), ValueError, "images: contains NaN"),
    (torch.zeros(4, 2, 2), ValueError, r"images: .*\(4, 2, 2\)"),
    (torch.zeros(2, 3, 2), ValueError, r"images: .*\(2, 3, 2\)"),
    (torch.zeros(3, 2), ValueError, "images: "),
    (np.zeros((3, 2, 2)), TypeError, "images: expected a torch.Tensor"),
])
def test_rgb_to_lab_bad_input(bad, err, match):
    with pytest.raises(err, match=match):
        rgb_to_lab(bad)


def test_from_uint8_is_the_one_conversion_into_the_model_range():
    from sofgan_lab.images import from_uint8, tensor_to_uint8, uint8_to_tensor

    levels = torch.arange(256, dtype=torch.uint8).reshape(1, 1, 16, 16).expand(1, 3, 16, 16)
    x = from_uint8(levels)
    assert x.dtype == torch.float32 and x.shape == levels.shape
    assert x.min() == -1.0 and x.max() == 1.0 and float(x[0, 0, 8, 0]) == pytest.approx(128 / 127.5 - 1, abs=1e-6)
    assert np.array_equal(tensor_to_uint8(x), levels.movedim(1, -1).numpy())     # round trip
    hwc = levels[0].movedim(0, -1).numpy()
    assert torch.equal(uint8_to_tensor(hwc), from_uint8(torch.from_numpy(hwc)).movedim(-1, 0))
    assert levels[0, 0, 0, 1] == 1                                                # the input is not changed
    with pytest.raises(TypeError, match="x: expected a uint8 torch.Tensor, got torch.float32"):
        from_uint8(x)


def test_image_grid_places_tiles_and_their_companions():
    from sofgan_lab.images import image_grid

    tiles = [np.full((4, 6, 3), 40 * k, np.uint8) for k in range(1, 6)]
    under = [np.full((2, 3, 3), 7 * k, np.uint8) for k in range(1, 6)]   # resized to the tile size
    g = np.asarray(image_grid(tiles, 3, pad=1, under=under))
    assert g.shape == (2 * 2 * (4 + 1) - 1, 3 * (6 + 1) - 1, 3)
    for k in range(5):
        r, c = divmod(k, 3)
        x, y = c * 7, r * 10
        assert (g[y:y + 4, x:x + 6] == 40 * (k + 1)).all() and (g[y + 5:y + 9, x:x + 6] == 7 * (k + 1)).all()
    assert (g[:, 6] == 255).all() and (g[10:, 14:] == 255).all()            # gaps and the empty cell stay white
    plain = np.asarray(image_grid(tiles[:2], 2, pad=0))
    assert plain.shape == (4, 12, 3) and (plain[:, 6:] == 80).all()
