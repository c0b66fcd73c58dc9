"""Tests for sofgan_lab.labels: class tables, remaps, nose split, left/right, groups, palettes."""
from __future__ import annotations

import re
import statistics
from collections import deque

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import sofgan_lab.labels as L
from sofgan_lab.labels import SOF, CelebAMask, SofGAN

HSETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Tables typed in here from the reference (not derived from the module).
SOF20 = ("background", "skin", "l_brow", "r_brow", "l_eye", "r_eye", "r_nose", "l_nose", "mouth",
         "u_lip", "l_lip", "l_ear", "r_ear", "ear_r", "eye_g", "neck", "neck_l", "cloth", "hair", "hat")
SOFGAN17 = ("background", "skin", "eye_brow", "eye", "r_nose", "l_nose", "mouth", "u_lip", "l_lip",
            "ear", "ear_r", "eye_g", "neck", "neck_l", "cloth", "hair", "hat")
CELEBA19 = ("background", "skin", "nose", "eye_g", "l_eye", "r_eye", "l_brow", "r_brow", "l_ear",
            "r_ear", "mouth", "u_lip", "l_lip", "hair", "hat", "ear_r", "neck_l", "neck", "cloth")
OFFICIAL = [[0, 0, 0], [127, 212, 255], [255, 255, 127], [255, 255, 127], [255, 255, 170],
            [255, 255, 170], [240, 157, 240], [255, 212, 255], [31, 162, 230], [127, 255, 255],
            [127, 255, 255], [0, 255, 85], [0, 255, 85], [0, 255, 170], [255, 255, 170],
            [127, 170, 255], [85, 0, 255], [255, 170, 127], [212, 127, 255], [0, 170, 255]]

# CelebAMask / SOF ids used in hand-drawn maps.
BG, SKIN, NOSE, GLS, HAIR, NECK = 0, 1, 2, 3, 13, 17  # CelebAMask-19
R_NOSE, L_NOSE = 6, 7  # SOF-20
PAIR_BY_NAME = {"l_": "r_", "r_": "l_"}

INJECTIVE = [("sof20", 20), ("sofgan17", 17), ("celebamask19", 19)]


def brute_min_distance(p: np.ndarray) -> float:
    p = np.asarray(p, dtype=float)
    return min(float(np.linalg.norm(p[i] - p[j])) for i in range(len(p)) for j in range(i + 1, len(p)))


def swapped_name(name: str) -> str:
    if name in ("u_lip", "l_lip"):  # upper / lower lip: no side
        return name
    return PAIR_BY_NAME[name[:2]] + name[2:] if name[:2] in PAIR_BY_NAME else name


# --------------------------------------------------------------------------------------------
# Class tables
# --------------------------------------------------------------------------------------------

def test_name_tables_match_reference():
    assert L.SOF20_NAMES == SOF20
    assert L.SOFGAN17_NAMES == SOFGAN17
    assert L.CELEBAMASK19_NAMES == CELEBA19
    assert (L.NUM_SOF_CLASSES, L.NUM_SOFGAN_CLASSES, L.NUM_CELEBAMASK_CLASSES) == (20, 17, 19)


@pytest.mark.parametrize("enum, names", [(SOF, SOF20), (SofGAN, SOFGAN17), (CelebAMask, CELEBA19)])
def test_enums_follow_name_order(enum, names):
    assert [m.value for m in enum] == list(range(len(names)))
    assert [m.name.lower() for m in enum] == list(names)


def test_enum_spot_values():
    assert (SOF.BACKGROUND, SOF.L_BROW, SOF.R_NOSE, SOF.L_NOSE, SOF.EYE_G, SOF.HAT) == (0, 2, 6, 7, 14, 19)
    assert (SofGAN.EYE_BROW, SofGAN.R_NOSE, SofGAN.HAIR, SofGAN.HAT) == (2, 4, 15, 16)
    assert (CelebAMask.NOSE, CelebAMask.EYE_G, CelebAMask.NECK, CelebAMask.CLOTH) == (2, 3, 17, 18)


def test_label_sets_registry():
    ls = L.get_label_set("SOF-20")
    assert ls.key == "sof20" and ls.num_classes == 20 and ls.ids is SOF
    assert L.get_label_set("sofgan17").names == SOFGAN17
    assert L.get_label_set(L.LABEL_SETS["celebamask19"]).title == "CelebAMask-19"
    with pytest.raises(ValueError, match=r"label_set: expected one of .*got 'sof19'"):
        L.get_label_set("sof19")
    with pytest.raises(TypeError, match="label_set"):
        L.get_label_set(20)


# --------------------------------------------------------------------------------------------
# SOF-20 -> SofGAN-17
# --------------------------------------------------------------------------------------------

def test_sof20_to_sofgan17_table():
    expected = [0, 1, 2, 2, 3, 3, 4, 5, 6, 7, 8, 9, 9, 10, 11, 12, 13, 14, 15, 16]
    assert L.SOF20_TO_SOFGAN17.dtype == np.int64
    assert L.SOF20_TO_SOFGAN17.tolist() == expected
    merged = {"l_brow": "eye_brow", "r_brow": "eye_brow", "l_eye": "eye", "r_eye": "eye",
              "l_ear": "ear", "r_ear": "ear"}
    for i, name in enumerate(SOF20):
        assert SOFGAN17[expected[i]] == merged.get(name, name)
    with pytest.raises(ValueError):
        L.SOF20_TO_SOFGAN17[0] = 5  # read-only module constant


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.int32, np.int64])
def test_sof_to_sofgan_numpy_keeps_dtype_and_shape(dtype):
    x = np.array([[0, 2, 3], [4, 5, 19]], dtype=dtype)
    y = L.sof_to_sofgan(x)
    assert isinstance(y, np.ndarray) and y.dtype == dtype and y.shape == (2, 3)
    assert y.tolist() == [[0, 2, 2], [3, 3, 16]]
    assert x.tolist() == [[0, 2, 3], [4, 5, 19]]  # input untouched


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int32, torch.int64])
def test_sof_to_sofgan_torch_keeps_type_dtype_device(dtype):
    x = torch.arange(20, dtype=dtype).reshape(1, 4, 5)
    y = L.sof_to_sofgan(x)
    assert isinstance(y, torch.Tensor) and y.dtype == dtype and y.device == x.device
    assert y.shape == (1, 4, 5)
    assert y.flatten().tolist() == [0, 1, 2, 2, 3, 3, 4, 5, 6, 7, 8, 9, 9, 10, 11, 12, 13, 14, 15, 16]


def test_sof_to_sofgan_any_shape():
    assert int(L.sof_to_sofgan(np.int64(13))) == 10
    assert L.sof_to_sofgan(np.zeros((2, 1, 3, 4), np.int64) + 12).tolist() == np.full((2, 1, 3, 4), 9).tolist()
    assert L.sof_to_sofgan(np.zeros((0, 5), np.int64)).shape == (0, 5)


def test_sof_to_sofgan_errors():
    with pytest.raises(ValueError) as e:
        L.sof_to_sofgan(np.array([[1, 23], [40, -1]]))
    assert str(e.value) == "labels: SOF-20 ids must be in [0, 19], got values {-1, 23, 40}"
    with pytest.raises(ValueError, match=r"labels: SOF-20 ids must be in \[0, 19\], got values \{20\}"):
        L.sof_to_sofgan(torch.tensor([20, 3]))
    with pytest.raises(TypeError, match="labels: expected an integer dtype, got float32"):
        L.sof_to_sofgan(np.zeros((2, 2), np.float32))
    with pytest.raises(TypeError, match="labels: expected an integer dtype"):
        L.sof_to_sofgan(torch.zeros(2, 2))
    with pytest.raises(TypeError, match="labels"):
        L.sof_to_sofgan(torch.zeros(2, 2, dtype=torch.bool))


def test_out_of_range_message_truncates_long_lists():
    with pytest.raises(ValueError) as e:
        L.sof_to_sofgan(np.arange(20, 40))
    assert str(e.value).endswith("got values {20, 21, 22, 23, 24, 25, 26, 27, 28, 29, ...}")


# --------------------------------------------------------------------------------------------
# CelebAMask-19 -> SOF-20
# --------------------------------------------------------------------------------------------

def test_celebamask_to_sof20_table():
    assert L.CELEBAMASK19_TO_SOF20.dtype == np.int64
    assert L.CELEBAMASK19_TO_SOF20.tolist() == [0, 1, -1, 14, 4, 5, 2, 3, 11, 12, 8, 9, 10, 18, 19, 13, 16, 15, 17]
    for i, name in enumerate(CELEBA19):
        if name != "nose":
            assert SOF20[L.CELEBAMASK19_TO_SOF20[i]] == name


def test_celebamask_face_classes_documented_choice():
    names = {CELEBA19[i] for i in L.CELEBAMASK19_FACE_CLASSES}
    assert names == {"skin", "nose", "l_brow", "r_brow", "l_eye", "r_eye", "mouth", "u_lip", "l_lip"}


def test_celebamask_to_sof_non_nose_classes():
    x = np.array([[0, 1, 3, 4, 5, 6, 7, 8, 9], [10, 11, 12, 13, 14, 15, 16, 17, 18]])
    y = L.celebamask_to_sof(x)
    expected = [[SOF20.index(CELEBA19[v]) for v in row] for row in x.tolist()]
    assert y.tolist() == expected
    assert y.tolist() == [[0, 1, 14, 4, 5, 2, 3, 11, 12], [8, 9, 10, 18, 19, 13, 16, 15, 17]]


def test_nose_split_single_face_even_width():
    # Face occupies columns 1..6 (6 columns, symmetric) -> median column 3.5.
    x = np.array([
        [0, 1, 1, 1, 1, 1, 1, 0],
        [0, 1, 1, 2, 2, 1, 1, 0],
        [0, 1, 2, 2, 2, 2, 1, 0],
        [0, 1, 1, 1, 1, 1, 1, 0],
    ])
    r, l_ = R_NOSE, L_NOSE
    expected = np.array([
        [0, 1, 1, 1, 1, 1, 1, 0],
        [0, 1, 1, r, l_, 1, 1, 0],
        [0, 1, r, r, l_, l_, 1, 0],
        [0, 1, 1, 1, 1, 1, 1, 0],
    ])
    np.testing.assert_array_equal(L.celebamask_to_sof(x), expected)


def test_nose_split_tie_on_integer_median_goes_to_l_nose():
    # Face columns 0..4 in every row (5 columns, symmetric) -> median column exactly 2.
    x = np.array([
        [1, 1, 1, 1, 1],
        [1, 2, 2, 2, 1],
        [1, 1, 1, 1, 1],
    ])
    y = L.celebamask_to_sof(x)
    assert y[1].tolist() == [1, R_NOSE, L_NOSE, L_NOSE, 1]


def test_nose_split_median_counts_all_pixels_of_the_face():
    # An asymmetric face: lots of skin on the right pulls the median to the right.
    # Pixel columns: row0: 0..7 (8 px), row1: 0..7 (8 px) -> median 3.5 ... add rows on the right
    x = np.zeros((4, 10), np.int64)
    x[0:2, 0:8] = SKIN
    x[2:4, 4:10] = SKIN  # connected to the block above
    x[1, 3:7] = NOSE
    # columns: rows 0-1: 0..7 twice, rows 2-3: 4..9 twice -> 28 values; median of sorted list
    cols = sorted(list(range(8)) * 2 + list(range(4, 10)) * 2)
    median = (cols[13] + cols[14]) / 2
    assert median == 5.0
    y = L.celebamask_to_sof(x)
    assert y[1, 3:7].tolist() == [R_NOSE, R_NOSE, L_NOSE, L_NOSE]


def test_two_faces_side_by_side_split_independently():
    x = np.zeros((3, 16), np.int64)
    x[:, 0:6] = SKIN  # face A, columns 0..5 -> median 2.5
    x[:, 10:16] = SKIN  # face B, columns 10..15 -> median 12.5
    x[1, 1:5] = NOSE
    x[1, 11:15] = NOSE
    y = L.celebamask_to_sof(x)
    assert y[1, 1:5].tolist() == [R_NOSE, R_NOSE, L_NOSE, L_NOSE]
    assert y[1, 11:15].tolist() == [R_NOSE, R_NOSE, L_NOSE, L_NOSE]
    # a single global median (7.5) would have made face A all r_nose: make sure it did not.
    assert (y == L_NOSE).sum() == 4 and (y == R_NOSE).sum() == 4


def test_faces_joined_only_by_excluded_classes_stay_separate():
    x = np.zeros((3, 15), np.int64)
    x[:, 0:6] = SKIN
    x[:, 9:15] = SKIN
    x[0, 6:9] = GLS  # glasses bridge
    x[2, 6:9] = NECK  # neck bridge
    x[1, 6:9] = HAIR
    x[1, 1:5] = NOSE
    x[1, 10:14] = NOSE
    y = L.celebamask_to_sof(x)
    assert y[1, 1:5].tolist() == [R_NOSE, R_NOSE, L_NOSE, L_NOSE]
    assert y[1, 10:14].tolist() == [R_NOSE, R_NOSE, L_NOSE, L_NOSE]


def test_diagonal_contact_joins_components_eight_connectivity():
    # The nose touches the face only diagonally; with 8-connectivity it belongs to the face
    # (median 1.5) and splits there. With 4-connectivity it would be an isolated nose split
    # at the median of all face pixels instead; a second face on the right moves that median.
    x = np.zeros((4, 12), np.int64)
    x[0:2, 0:4] = SKIN  # face A, cols 0..3 -> median 1.5
    x[2, 4:6] = NOSE  # touches x[1, 3] diagonally -> part of A; columns 4, 5 >= 1.5 -> l_nose
    x[0:4, 8:12] = SKIN  # face B far right: the all-face median (24 px) would be 8 -> r_nose
    y = L.celebamask_to_sof(x)
    assert y[2, 4:6].tolist() == [L_NOSE, L_NOSE]
    # Break the diagonal contact: now isolated -> split at median of all face pixels.
    x2 = x.copy()
    x2[1, 3] = BG
    x2[2, 4:6] = BG
    x2[3, 4:6] = NOSE
    # face pixels: A = rows 0..1 cols 0..3 minus (1,3) -> 7 px; B = 16 px at cols 8..11
    cols = sorted([0, 1, 2, 3, 0, 1, 2] + list(range(8, 12)) * 4)
    assert statistics.median(cols) == 9
    y2 = L.celebamask_to_sof(x2)
    assert y2[3, 4:6].tolist() == [R_NOSE, R_NOSE]


def test_isolated_nose_uses_median_of_all_face_pixels():
    x = np.zeros((3, 12), np.int64)
    x[:, 0:4] = SKIN  # face, columns 0..3, median 1.5
    x[1, 7:11] = NOSE  # nose not touching the face
    # all face pixels: cols 0..3 -> median 1.5, so every nose pixel (>= 7) is l_nose.
    y = L.celebamask_to_sof(x)
    assert y[1, 7:11].tolist() == [L_NOSE] * 4
    # If the nose were split at its own median (8.5), two pixels would be r_nose.
    x[:, 0:4] = BG
    x[0, 6:12] = HAIR  # no face at all now (hair is not face); the nose touches the hair
    y = L.celebamask_to_sof(x)
    assert y[1, 7:11].tolist() == [R_NOSE, R_NOSE, L_NOSE, L_NOSE]


def test_isolated_nose_without_any_face_splits_each_nose_component_on_its_own():
    x = np.zeros((2, 12), np.int64)
    x[0, 0:3] = NOSE  # median 1 -> [r, l, l]
    x[0, 6:10] = NOSE  # median 7.5 -> [r, r, l, l]
    y = L.celebamask_to_sof(x)
    assert y[0].tolist() == [R_NOSE, L_NOSE, L_NOSE, 0, 0, 0, R_NOSE, R_NOSE, L_NOSE, L_NOSE, 0, 0]


def test_batch_items_are_independent():
    a = np.zeros((3, 10), np.int64)
    a[:, 0:4] = SKIN
    a[1, 1:3] = NOSE
    b = np.zeros((3, 10), np.int64)
    b[:, 6:10] = SKIN
    b[1, 7:9] = NOSE
    y = L.celebamask_to_sof(np.stack([a, b]))
    assert y.shape == (2, 3, 10)
    assert y[0, 1, 1:3].tolist() == [R_NOSE, L_NOSE]
    assert y[1, 1, 7:9].tolist() == [R_NOSE, L_NOSE]


def test_nose_split_follows_the_eyes_of_a_turned_face():
    # A face turned to the image's right: skin reaches further left than right of the eyes, so the
    # face's median column lies left of the symmetry line; the eyes' midpoint (column 10) does not.
    L_EYE, R_EYE = int(L.CelebAMask.L_EYE), int(L.CelebAMask.R_EYE)
    x = np.zeros((6, 16), np.int64)
    x[:, 0:14] = int(L.CelebAMask.SKIN)
    x[1, 7:9] = R_EYE       # the subject's right eye appears on the image's left
    x[1, 11:13] = L_EYE
    x[3, 8:12] = NOSE
    y = L.celebamask_to_sof(x)
    assert y[3, 8:12].tolist() == [R_NOSE, R_NOSE, L_NOSE, L_NOSE]          # split at column 10
    x2 = x.copy()
    x2[1, 11:13] = int(L.CelebAMask.SKIN)             # one eye only: the face's median column (6.5)
    assert L.celebamask_to_sof(x2)[3, 8:12].tolist() == [L_NOSE] * 4


def test_celebamask_to_sof_torch_and_dtype():
    x = np.zeros((3, 6), np.uint8)
    x[:, :] = SKIN
    x[1, 1:5] = NOSE
    t = torch.from_numpy(x).to(torch.int32)[None]
    y = L.celebamask_to_sof(t)
    assert isinstance(y, torch.Tensor) and y.dtype == torch.int32 and y.device == t.device
    assert y[0, 1].tolist() == [1, R_NOSE, R_NOSE, L_NOSE, L_NOSE, 1]
    yn = L.celebamask_to_sof(x)
    assert yn.dtype == np.uint8 and yn[1].tolist() == [1, R_NOSE, R_NOSE, L_NOSE, L_NOSE, 1]


def test_celebamask_to_sof_errors():
    with pytest.raises(ValueError, match=r"labels: CelebAMask-19 ids must be in \[0, 18\], got values \{19\}"):
        L.celebamask_to_sof(np.array([[0, 19]]))
    with pytest.raises(ValueError, match=r"labels: expected shape \(H, W\) or \(B, H, W\), got \(5,\)"):
        L.celebamask_to_sof(np.zeros(5, np.int64))
    with pytest.raises(ValueError, match="labels: expected shape"):
        L.celebamask_to_sof(np.zeros((1, 1, 2, 2), np.int64))
    with pytest.raises(TypeError, match="labels"):
        L.celebamask_to_sof(np.zeros((2, 2), np.float64))


def test_celebamask_mirror_symmetric_scene():
    # Two faces of even width (half-integer medians) -> mirroring commutes exactly.
    x = np.zeros((5, 20), np.int64)
    x[0:5, 1:7] = SKIN
    x[1, 2] = 6  # l_brow
    x[1, 5] = 7  # r_brow
    x[2, 2:6] = NOSE
    x[3, 3:6] = NOSE
    x[0:4, 11:19] = SKIN
    x[2, 12:18] = NOSE
    x[2, 19] = 9  # r_ear
    y = L.celebamask_to_sof(x)
    mirrored = L.celebamask_to_sof(L.flip_horizontal(x, "celebamask19"))
    np.testing.assert_array_equal(L.flip_horizontal(mirrored, "sof20"), y)
    assert y[2, 12:18].tolist() == [R_NOSE] * 3 + [L_NOSE] * 3


def reference_celebamask_to_sof(m: np.ndarray) -> tuple[np.ndarray, dict]:
    """Slow, independent reference: BFS components; returns labels and per-nose thresholds."""
    h, w = m.shape
    face_names = {"skin", "nose", "l_brow", "r_brow", "l_eye", "r_eye", "mouth", "u_lip", "l_lip"}
    in_face = [[CELEBA19[m[i, j]] in face_names for j in range(w)] for i in range(h)]
    comp = [[-1] * w for _ in range(h)]
    comps = []
    for i in range(h):
        for j in range(w):
            if in_face[i][j] and comp[i][j] < 0:
                pix, q = [], deque([(i, j)])
                comp[i][j] = len(comps)
                while q:
                    a, b = q.popleft()
                    pix.append((a, b))
                    for da in (-1, 0, 1):
                        for db in (-1, 0, 1):
                            u, v = a + da, b + db
                            if 0 <= u < h and 0 <= v < w and in_face[u][v] and comp[u][v] < 0:
                                comp[u][v] = len(comps)
                                q.append((u, v))
                comps.append(pix)
    is_face = [any(CELEBA19[m[a, b]] != "nose" for a, b in pix) for pix in comps]
    all_face_cols = [b for k, pix in enumerate(comps) if is_face[k] for _, b in pix]
    out = np.zeros((h, w), np.int64)
    thresholds = {}
    for i in range(h):
        for j in range(w):
            name = CELEBA19[m[i, j]]
            if name != "nose":
                out[i, j] = SOF20.index(name)
                continue
            k = comp[i][j]
            eyes = {e: [b for a, b in comps[k] if CELEBA19[m[a, b]] == e] for e in ("l_eye", "r_eye")}
            if is_face[k] and eyes["l_eye"] and eyes["r_eye"]:
                thr = (statistics.mean(eyes["l_eye"]) + statistics.mean(eyes["r_eye"])) / 2
            elif is_face[k]:
                thr = statistics.median(b for _, b in comps[k])
            elif all_face_cols:
                thr = statistics.median(all_face_cols)
            else:
                thr = statistics.median(b for _, b in comps[k])
            thresholds[(i, j)] = thr
            out[i, j] = SOF20.index("r_nose") if j < thr else SOF20.index("l_nose")
    return out, thresholds


# Maps biased toward skin and nose so that faces and noses of many shapes occur.
celeba_maps = hnp.arrays(
    np.int64,
    st.tuples(st.integers(1, 9), st.integers(1, 12)),
    elements=st.sampled_from([0, 0, 1, 1, 1, 2, 2, 2, 3, 4, 5, 6, 10, 13, 17]),
)


@HSETTINGS
@given(celeba_maps)
def test_celebamask_to_sof_matches_reference(m):
    expected, _ = reference_celebamask_to_sof(m)
    np.testing.assert_array_equal(L.celebamask_to_sof(m), expected)


@HSETTINGS
@given(celeba_maps)
def test_celebamask_to_sof_mirror_property(m):
    _, thresholds = reference_celebamask_to_sof(m)
    y = L.celebamask_to_sof(m)
    back = L.flip_horizontal(L.celebamask_to_sof(L.flip_horizontal(m, "celebamask19")), "sof20")
    differ = {(int(i), int(j)) for i, j in zip(*np.nonzero(back != y))}
    # Only nose pixels exactly on an integer threshold column may differ (the tie goes to l_nose).
    assert all(p in thresholds and thresholds[p] == p[1] for p in differ), differ


@HSETTINGS
@given(hnp.arrays(np.int64, st.tuples(st.integers(1, 3), st.integers(1, 6), st.integers(1, 8)),
                  elements=st.sampled_from([0, 1, 1, 2, 2, 4, 13])))
def test_celebamask_to_sof_batch_equals_per_item(b):
    y = L.celebamask_to_sof(b)
    for k in range(len(b)):
        np.testing.assert_array_equal(y[k], reference_celebamask_to_sof(b[k])[0])


# --------------------------------------------------------------------------------------------
# Left / right
# --------------------------------------------------------------------------------------------

def test_lr_swap_tables_literal():
    assert L.SOF20_LR_SWAP.tolist() == [0, 1, 3, 2, 5, 4, 7, 6, 8, 9, 10, 12, 11, 13, 14, 15, 16, 17, 18, 19]
    assert L.SOFGAN17_LR_SWAP.tolist() == [0, 1, 2, 3, 5, 4, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]
    assert L.CELEBAMASK19_LR_SWAP.tolist() == [0, 1, 2, 3, 5, 4, 7, 6, 9, 8, 10, 11, 12, 13, 14, 15, 16, 17, 18]


@pytest.mark.parametrize("table, names", [(L.SOF20_LR_SWAP, SOF20), (L.SOFGAN17_LR_SWAP, SOFGAN17),
                                          (L.CELEBAMASK19_LR_SWAP, CELEBA19)])
def test_lr_swap_tables_follow_names(table, names):
    assert table.dtype == np.int64
    for i, name in enumerate(names):
        assert names[table[i]] == swapped_name(name)
    assert table[table].tolist() == list(range(len(names)))  # involution


def test_lr_swap_u_lip_l_lip_are_not_sides():
    # "l_lip" is the LOWER lip, not a left lip: it must not be swapped with u_lip.
    assert L.SOF20_LR_SWAP[SOF.L_LIP] == SOF.L_LIP
    assert L.SOF20_LR_SWAP[SOF.U_LIP] == SOF.U_LIP


def test_swap_left_right_numpy_and_torch():
    x = np.array([[2, 3, 4], [6, 7, 12]], np.int32)
    assert L.swap_left_right(x).tolist() == [[3, 2, 5], [7, 6, 11]]
    assert L.swap_left_right(x).dtype == np.int32
    t = torch.tensor([[4, 5, 6]], dtype=torch.int64)
    y = L.swap_left_right(t, "sofgan17")
    assert isinstance(y, torch.Tensor) and y.tolist() == [[5, 4, 6]]
    with pytest.raises(ValueError, match=r"labels: SofGAN-17 ids must be in \[0, 16\], got values \{17\}"):
        L.swap_left_right(np.array([17]), "sofgan17")


def test_flip_horizontal_hand_example():
    x = np.array([[0, 2, 6], [4, 18, 11]])
    assert L.flip_horizontal(x).tolist() == [[7, 3, 0], [12, 18, 5]]
    b = np.stack([x, x[::-1]])
    assert L.flip_horizontal(b).tolist() == [[[7, 3, 0], [12, 18, 5]], [[12, 18, 5], [7, 3, 0]]]
    t = torch.tensor([[4, 5, 1]], dtype=torch.uint8)
    ft = L.flip_horizontal(t, "sofgan17")
    assert isinstance(ft, torch.Tensor) and ft.dtype == torch.uint8 and ft.tolist() == [[1, 4, 5]]
    with pytest.raises(ValueError, match=r"labels: expected shape \(H, W\) or \(B, H, W\), got \(3,\)"):
        L.flip_horizontal(np.array([1, 2, 3]))


@HSETTINGS
@given(hnp.arrays(np.int64, st.tuples(st.integers(1, 3), st.integers(1, 5), st.integers(1, 7)),
                  elements=st.integers(0, 19)))
def test_flip_horizontal_properties(x):
    f = L.flip_horizontal(x)
    np.testing.assert_array_equal(L.flip_horizontal(f), x)
    # flipping commutes with the SOF -> SofGAN remap
    np.testing.assert_array_equal(L.sof_to_sofgan(f), L.flip_horizontal(L.sof_to_sofgan(x), "sofgan17"))
    # per-pixel definition
    w = x.shape[-1]
    for j in range(w):
        np.testing.assert_array_equal(f[..., j], L.SOF20_LR_SWAP[x[..., w - 1 - j]])


# --------------------------------------------------------------------------------------------
# Region groups
# --------------------------------------------------------------------------------------------

def test_region_groups_literal():
    assert list(L.REGION_GROUPS) == ["global", "background", "complexion", "hair", "eyes_mouth", "wearings"]
    assert dict(L.REGION_GROUPS) == {
        "global": tuple(range(17)), "background": (0,), "complexion": (1, 4, 5, 9, 12),
        "hair": (15,), "eyes_mouth": (3, 6, 7, 8), "wearings": (10, 11, 13, 14, 16),
    }
    assert list(L.REGION_GROUP_TITLES.values()) == [
        "Global", "Background", "Complexion", "Hair", "Eyes & Mouth", "Wearings"]
    assert list(L.REGION_GROUP_TITLES) == list(L.REGION_GROUPS)


def test_region_groups_partition_except_eye_brow():
    seen = [i for k, ids in L.REGION_GROUPS.items() if k != "global" for i in ids]
    assert len(seen) == len(set(seen))
    assert set(range(17)) - set(seen) == {SOFGAN17.index("eye_brow")}
    names = {k: {SOFGAN17[i] for i in ids} for k, ids in L.REGION_GROUPS.items()}
    assert names["complexion"] == {"skin", "r_nose", "l_nose", "ear", "neck"}
    assert names["wearings"] == {"ear_r", "eye_g", "neck_l", "cloth", "hat"}


def test_region_mask_variants():
    x = np.array([[0, 1, 2], [3, 15, 16]])
    assert L.region_mask(x, "complexion").tolist() == [[False, True, False], [False, False, False]]
    assert L.region_mask(x, "Eyes & Mouth").tolist() == [[False, False, False], [True, False, False]]
    assert L.region_mask(x, "global").all()
    assert L.region_mask(x, [2, 16]).tolist() == [[False, False, True], [False, False, True]]
    assert L.region_mask(x, 15).tolist() == [[False, False, False], [False, True, False]]
    assert L.region_mask(x, []).sum() == 0
    t = torch.tensor(x, dtype=torch.int32)
    m = L.region_mask(t, "wearings")
    assert isinstance(m, torch.Tensor) and m.dtype == torch.bool and m.tolist() == [[False] * 3, [False, False, True]]


def test_region_mask_errors():
    x = np.zeros((2, 2), np.int64)
    with pytest.raises(ValueError, match="group_or_ids: expected a group name in .*got 'nose'"):
        L.region_mask(x, "nose")
    with pytest.raises(ValueError, match=r"group_or_ids: SofGAN-17 ids must be in \[0, 16\], got values \{17\}"):
        L.region_mask(x, [1, 17])
    with pytest.raises(TypeError, match="group_or_ids"):
        L.region_mask(x, [1.5])
    with pytest.raises(ValueError, match=r"labels17: SofGAN-17 ids must be in \[0, 16\], got values \{19\}"):
        L.region_mask(np.array([19]), "hair")
    with pytest.raises(TypeError, match="labels17"):
        L.region_mask(np.zeros(2), "hair")


# --------------------------------------------------------------------------------------------
# Palettes
# --------------------------------------------------------------------------------------------

def test_official_palette_literal_and_not_injective():
    p = L.SOF20_OFFICIAL_PALETTE
    assert p.dtype == np.uint8 and p.shape == (20, 3)
    assert p.tolist() == OFFICIAL
    assert L.min_palette_distance("sof20_official") == 0.0
    assert len({tuple(c) for c in OFFICIAL}) == 15


@pytest.mark.parametrize("name, k", INJECTIVE)
def test_injective_palettes_min_distance(name, k):
    p = L.get_palette(name)
    assert p.dtype == np.uint8 and p.shape == (k, 3)
    d = brute_min_distance(p)
    assert d >= 40.0
    assert L.min_palette_distance(name) == pytest.approx(d)


def test_sof20_palette_close_to_official():
    p = L.SOF20_PALETTE.astype(int)
    off = np.array(OFFICIAL)
    counts = {}
    for c in OFFICIAL:
        counts[tuple(c)] = counts.get(tuple(c), 0) + 1
    for i, c in enumerate(OFFICIAL):
        if counts[tuple(c)] == 1:
            assert p[i].tolist() == c, SOF20[i]
        assert np.linalg.norm(p[i] - off[i]) <= 50, SOF20[i]
    # the first class of each shared group keeps the official colour
    for i in (SOF.L_BROW, SOF.L_EYE, SOF.U_LIP, SOF.L_EAR):
        assert p[i].tolist() == OFFICIAL[i]


def test_derived_palettes_agree_with_sof20():
    p20, p17, p19 = L.SOF20_PALETTE, L.SOFGAN17_PALETTE, L.CELEBAMASK19_PALETTE
    assert p17[SofGAN.EYE_BROW].tolist() == p20[SOF.L_BROW].tolist()
    assert p17[SofGAN.EYE].tolist() == p20[SOF.L_EYE].tolist()
    assert p17[SofGAN.EAR].tolist() == p20[SOF.L_EAR].tolist()
    assert p17[SofGAN.HAT].tolist() == p20[SOF.HAT].tolist()
    assert p17[SofGAN.R_NOSE].tolist() == p20[SOF.R_NOSE].tolist()
    for i, name in enumerate(CELEBA19):
        if name != "nose":
            assert p19[i].tolist() == p20[SOF20.index(name)].tolist(), name


def test_get_palette_inputs_and_errors():
    assert L.get_palette("SOF20").tolist() == L.SOF20_PALETTE.tolist()
    assert L.get_palette().tolist() == L.SOF20_PALETTE.tolist()
    custom = L.get_palette([[1, 2, 3], [250, 0, 9]])
    assert custom.dtype == np.uint8 and custom.tolist() == [[1, 2, 3], [250, 0, 9]]
    with pytest.raises(ValueError, match="palette: expected one of"):
        L.get_palette("viridis")
    with pytest.raises(ValueError, match=r"palette: expected shape \(K, 3\)"):
        L.get_palette(np.zeros((4, 4), np.uint8))
    with pytest.raises(TypeError, match="palette: expected an integer dtype"):
        L.get_palette(np.zeros((4, 3), np.float32))
    with pytest.raises(ValueError, match=r"palette: RGB values must be in \[0, 255\], got range \[0, 256\]"):
        L.get_palette([[0, 0, 0], [256, 0, 0]])
    with pytest.raises(ValueError):
        L.get_palette("sof20")[0, 0] = 1  # read-only


# --------------------------------------------------------------------------------------------
# colorize / decolorize
# --------------------------------------------------------------------------------------------

def test_colorize_hand_example():
    x = np.array([[0, 1], [19, 8]])
    c = L.colorize(x, "sof20_official")
    assert c.dtype == np.uint8 and c.shape == (2, 2, 3)
    assert c.tolist() == [[[0, 0, 0], [127, 212, 255]], [[0, 170, 255], [31, 162, 230]]]
    cb = L.colorize(torch.tensor(np.stack([x, x]), dtype=torch.int32), "sof20_official")
    assert isinstance(cb, np.ndarray) and cb.shape == (2, 2, 2, 3) and cb[1].tolist() == c.tolist()
    c2 = L.colorize(np.array([[1, 0]]), [[9, 9, 9], [200, 100, 50]])
    assert c2.tolist() == [[[200, 100, 50], [9, 9, 9]]]


def test_colorize_errors():
    with pytest.raises(ValueError) as e:
        L.colorize(np.array([[0, 20]]))
    assert str(e.value) == "labels: SOF-20 ids must be in [0, 19] for palette 'sof20', got values {20}"
    with pytest.raises(ValueError, match=r"labels: SofGAN-17 ids must be in \[0, 16\].*\{-3, 17\}"):
        L.colorize(np.array([[17, -3]]), "sofgan17")
    with pytest.raises(ValueError, match=r"labels: ids must be in \[0, 1\] for a 2-colour palette, got values \{2\}"):
        L.colorize(np.array([[2]]), [[0, 0, 0], [1, 1, 1]])
    with pytest.raises(TypeError, match="labels: expected an integer dtype"):
        L.colorize(np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"labels: expected shape \(H, W\) or \(B, H, W\)"):
        L.colorize(np.zeros((1, 1, 2, 2), np.int64))


def label_maps(k):
    return hnp.arrays(np.int64, st.one_of(st.tuples(st.integers(1, 8), st.integers(1, 8)),
                                          st.tuples(st.integers(1, 3), st.integers(1, 6), st.integers(1, 6))),
                      elements=st.integers(0, k - 1))


@pytest.mark.parametrize("name, k", INJECTIVE)
def test_round_trip_property(name, k):
    @HSETTINGS
    @given(label_maps(k))
    def check(x):
        rgb = L.colorize(x, name)
        y = L.decolorize(rgb, name)
        assert y.dtype == np.int64 and y.shape == x.shape
        np.testing.assert_array_equal(y, x)

    check()


@pytest.mark.parametrize("name, k", INJECTIVE)
def test_round_trip_with_jpeg_like_noise(name, k):
    @HSETTINGS
    @given(st.data())
    def check(data):
        x = data.draw(label_maps(k))
        noise = data.draw(hnp.arrays(np.int64, x.shape + (3,), elements=st.integers(-10, 10)))
        rgb = np.clip(L.colorize(x, name).astype(np.int64) + noise, 0, 255).astype(np.uint8)
        np.testing.assert_array_equal(L.decolorize(rgb, name), x)

    check()


def test_round_trip_all_corners_of_noise_cube():
    # The worst case of +-10 per channel: every sign combination on every class.
    x = np.arange(20).reshape(1, 20)
    base = L.colorize(x).astype(np.int64)
    for signs in np.array(np.meshgrid([-10, 10], [-10, 10], [-10, 10])).T.reshape(-1, 3):
        rgb = np.clip(base + signs, 0, 255).astype(np.uint8)
        np.testing.assert_array_equal(L.decolorize(rgb), x)


def test_decolorize_nearest_and_tie_rule():
    pal = [[0, 0, 0], [100, 0, 0]]
    rgb = np.array([[[49, 0, 0], [51, 0, 0], [50, 0, 0]]], np.uint8)
    assert L.decolorize(rgb, pal, tolerance=None).tolist() == [[0, 1, 0]]  # tie -> lower id


def test_decolorize_tolerance_boundary_and_message():
    rgb = np.zeros((5, 9, 3), np.uint8)
    rgb[0, 0] = (30, 0, 0)  # distance exactly 30 from black: accepted
    assert L.decolorize(rgb)[0, 0] == 0
    rgb[3, 7] = (12, 200, 9)
    rgb[4, 1] = (12, 200, 9)
    rgb[4, 8] = (31, 0, 0)
    with pytest.raises(ValueError) as e:
        L.decolorize(rgb)
    assert str(e.value) == ("rgb: 3 pixels are farther than 30 from every palette colour "
                            "(first at (row, col) = (3, 7), colour (12, 200, 9))")
    with pytest.raises(ValueError, match=r"rgb: 1 pixel is farther than 5 .*\(b, row, col\) = \(1, 0, 0\), colour \(30, 0, 0\)"):
        L.decolorize(np.stack([np.zeros_like(rgb[:1]), rgb[:1]]), tolerance=5)
    y = L.decolorize(rgb, tolerance=None)
    assert y[4, 8] == 0 and y.shape == (5, 9)


def test_decolorize_rejects_non_injective_palette():
    with pytest.raises(ValueError) as e:
        L.decolorize(np.zeros((2, 2, 3), np.uint8), "sof20_official")
    msg = str(e.value)
    assert msg.startswith("palette: palette 'sof20_official' is not injective and cannot be inverted")
    for frag in ("2 (l_brow), 3 (r_brow)", "4 (l_eye), 5 (r_eye), 14 (eye_g)",
                 "9 (u_lip), 10 (l_lip)", "11 (l_ear), 12 (r_ear)"):
        assert frag in msg
    with pytest.raises(ValueError, match=r"classes 0, 2 share \(1, 1, 1\)"):
        L.decolorize(np.zeros((2, 2, 3), np.uint8), [[1, 1, 1], [0, 0, 0], [1, 1, 1]])


def test_decolorize_input_errors():
    with pytest.raises(TypeError, match="rgb: expected dtype uint8, got int64"):
        L.decolorize(np.zeros((2, 2, 3), np.int64))
    with pytest.raises(ValueError, match=r"rgb: expected shape \(H, W, 3\) or \(B, H, W, 3\), got \(2, 2, 4\)"):
        L.decolorize(np.zeros((2, 2, 4), np.uint8))
    with pytest.raises(ValueError, match="tolerance"):
        L.decolorize(np.zeros((2, 2, 3), np.uint8), tolerance=-1)
    # issue 20: a non-number tolerance named the argument nowhere ("could not convert string to float")
    for bad in ("x", [3], True, float("nan")):
        with pytest.raises((TypeError, ValueError), match="tolerance: expected a finite number >= 0"):
            L.decolorize(np.zeros((2, 2, 3), np.uint8), tolerance=bad)
    rgb = np.full((1, 1, 3), 200, np.uint8)  # far from every colour
    assert L.decolorize(rgb, tolerance=float("inf")).tolist() == L.decolorize(rgb, tolerance=None).tolist()
    assert L.decolorize(rgb, tolerance=np.float32(1e6)).tolist() == L.decolorize(rgb, tolerance=None).tolist()


def test_decolorize_accepts_torch_uint8():
    x = np.array([[3, 17], [0, 9]])
    rgb = torch.from_numpy(L.colorize(x))
    y = L.decolorize(rgb)
    assert isinstance(y, np.ndarray) and y.tolist() == x.tolist()


def test_colorize_decolorize_1024_roundtrip():
    # Speed is measured by the `labels_colorize` benchmark case, not asserted here.
    rng = np.random.default_rng(0)
    x = rng.integers(0, 20, (1024, 1024))
    rgb = L.colorize(x)
    noisy = np.clip(rgb.astype(np.int16) + rng.integers(-10, 11, rgb.shape), 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(L.decolorize(rgb), x)
    np.testing.assert_array_equal(L.decolorize(noisy), x)


# --------------------------------------------------------------------------------------------
# Devices and module surface
# --------------------------------------------------------------------------------------------

@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_tensors_stay_on_device():
    x = torch.tensor([[2, 6, 19], [4, 12, 0]], device="cuda")
    for y in (L.sof_to_sofgan(x), L.swap_left_right(x), L.flip_horizontal(x)):
        assert y.device.type == "cuda" and y.dtype == x.dtype
    assert L.flip_horizontal(x).cpu().tolist() == [[19, 7, 3], [0, 11, 5]]
    m = L.region_mask(L.sof_to_sofgan(x), "complexion")
    assert m.device.type == "cuda" and m.cpu().tolist() == [[False, True, False], [False, True, False]]
    c = torch.tensor([[1, 2, 2, 1]], device="cuda")
    y = L.celebamask_to_sof(c)
    assert y.device.type == "cuda" and y.cpu().tolist() == [[1, R_NOSE, L_NOSE, 1]]
    assert L.colorize(x).shape == (2, 3, 3)


def test_all_names_exist():
    assert len(L.__all__) == len(set(L.__all__))
    for name in L.__all__:
        assert hasattr(L, name), name


def test_library_does_not_print(capsys):
    m = np.zeros((3, 8), np.int64)
    m[1, 5:7] = NOSE
    m[:, 0:3] = SKIN
    L.celebamask_to_sof(m)
    L.decolorize(L.colorize(np.zeros((2, 2), np.int64)))
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""
    assert re.fullmatch(r"sofgan_lab\.labels", L.logger.name)
