"""Semantic label sets, remaps, region groups, palettes and colour conversion.

Three label sets occur in sofgan-lab. Every label map is an integer array (int64 ``(B, H, W)``
inside the library) whose docstring says which set its ids are in.

**SOF-20** (geometry side; the ids the released SOF checkpoint outputs), enum :class:`SOF`::

    id name        id name        id name               id name
     0 background   5 r_eye       10 l_lip              15 neck
     1 skin         6 r_nose      11 l_ear              16 neck_l (necklace)
     2 l_brow       7 l_nose      12 r_ear              17 cloth
     3 r_brow       8 mouth       13 ear_r (earring)    18 hair
     4 l_eye        9 u_lip       14 eye_g (glasses)    19 hat

**SofGAN-17** (texture side), enum :class:`SofGAN`, made from SOF-20 by
:data:`SOF20_TO_SOFGAN17` = ``[0,1,2,2,3,3,4,5,6,7,8,9,9,10,11,12,13,14,15,16]`` (left/right
brows, eyes and ears merged; the two nose halves stay apart)::

    0 background  1 skin  2 eye_brow  3 eye  4 r_nose  5 l_nose  6 mouth  7 u_lip  8 l_lip
    9 ear  10 ear_r  11 eye_g  12 neck  13 neck_l  14 cloth  15 hair  16 hat

**CelebAMask-19** (the CelebAMask-HQ annotation order), enum :class:`CelebAMask`::

    0 background  1 skin  2 nose  3 eye_g  4 l_eye  5 r_eye  6 l_brow  7 r_brow  8 l_ear
    9 r_ear  10 mouth  11 u_lip  12 l_lip  13 hair  14 hat  15 ear_r  16 neck_l  17 neck
    18 cloth

It has a single nose class; :func:`celebamask_to_sof` splits it into the two SOF halves.

Left and right
--------------
"left"/"right" always mean the **subject's own** left/right: in a frontal photo the subject's
left eye (``l_eye``) appears on the *image's right* side, and ``r_nose`` is the half of the nose
on the image's left. In the canonical 3D frame (world y up, the face looks toward +z) the
subject's left is +x. Mirroring an image therefore swaps left and right ids
(:func:`flip_horizontal`).

Colours
-------
:data:`SOF20_OFFICIAL_PALETTE` is the release's visualisation palette; it is *not* injective
(l_brow/r_brow, l_eye/r_eye/eye_g, u_lip/l_lip and l_ear/r_ear share colours), so it cannot be
decoded. :data:`SOF20_PALETTE` (the default) keeps every official colour that is unique, keeps
the official colour for the first class of each shared group and gives the others distinct
nearby colours; its minimum pairwise RGB distance is about 40.6 (the official colours of mouth
and hat; see :func:`min_palette_distance`). :data:`SOFGAN17_PALETTE` and
:data:`CELEBAMASK19_PALETTE` are taken from it through the remaps, so the same part has the
same colour in every set.
"""
from __future__ import annotations

import logging
import math
import sys
import types
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import numpy as np

__all__ = [
    # label sets
    "SOF",
    "SofGAN",
    "CelebAMask",
    "SOF20_NAMES",
    "SOFGAN17_NAMES",
    "CELEBAMASK19_NAMES",
    "NUM_SOF_CLASSES",
    "NUM_SOFGAN_CLASSES",
    "NUM_CELEBAMASK_CLASSES",
    "LabelSet",
    "LABEL_SETS",
    "get_label_set",
    "validate_labels",
    # remaps
    "SOF20_TO_SOFGAN17",
    "CELEBAMASK19_TO_SOF20",
    "CELEBAMASK19_FACE_CLASSES",
    "sof_to_sofgan",
    "celebamask_to_sof",
    # left/right
    "SOF20_LR_SWAP",
    "SOFGAN17_LR_SWAP",
    "CELEBAMASK19_LR_SWAP",
    "swap_left_right",
    "flip_horizontal",
    # region groups
    "REGION_GROUPS",
    "REGION_GROUP_TITLES",
    "region_mask",
    # palettes and colours
    "SOF20_OFFICIAL_PALETTE",
    "SOF20_PALETTE",
    "SOFGAN17_PALETTE",
    "CELEBAMASK19_PALETTE",
    "PALETTE_NAMES",
    "get_palette",
    "min_palette_distance",
    "colorize",
    "decolorize",
]

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------
# Class tables
# --------------------------------------------------------------------------------------------

class SOF(IntEnum):
    """SOF-20 ids (geometry side). Left/right are the subject's own."""

    BACKGROUND = 0
    SKIN = 1
    L_BROW = 2
    R_BROW = 3
    L_EYE = 4
    R_EYE = 5
    R_NOSE = 6
    L_NOSE = 7
    MOUTH = 8
    U_LIP = 9
    L_LIP = 10
    L_EAR = 11
    R_EAR = 12
    EAR_R = 13  # earring
    EYE_G = 14  # glasses
    NECK = 15
    NECK_L = 16  # necklace
    CLOTH = 17
    HAIR = 18
    HAT = 19


class SofGAN(IntEnum):
    """SofGAN-17 ids (texture side). Left/right are the subject's own."""

    BACKGROUND = 0
    SKIN = 1
    EYE_BROW = 2
    EYE = 3
    R_NOSE = 4
    L_NOSE = 5
    MOUTH = 6
    U_LIP = 7
    L_LIP = 8
    EAR = 9
    EAR_R = 10  # earring
    EYE_G = 11  # glasses
    NECK = 12
    NECK_L = 13  # necklace
    CLOTH = 14
    HAIR = 15
    HAT = 16


class CelebAMask(IntEnum):
    """CelebAMask-HQ ids (19 classes, a single nose class). Left/right are the subject's own."""

    BACKGROUND = 0
    SKIN = 1
    NOSE = 2
    EYE_G = 3  # glasses
    L_EYE = 4
    R_EYE = 5
    L_BROW = 6
    R_BROW = 7
    L_EAR = 8
    R_EAR = 9
    MOUTH = 10
    U_LIP = 11
    L_LIP = 12
    HAIR = 13
    HAT = 14
    EAR_R = 15  # earring
    NECK_L = 16  # necklace
    NECK = 17
    CLOTH = 18


SOF20_NAMES: tuple[str, ...] = tuple(m.name.lower() for m in SOF)
SOFGAN17_NAMES: tuple[str, ...] = tuple(m.name.lower() for m in SofGAN)
CELEBAMASK19_NAMES: tuple[str, ...] = tuple(m.name.lower() for m in CelebAMask)

NUM_SOF_CLASSES = 20
NUM_SOFGAN_CLASSES = 17
NUM_CELEBAMASK_CLASSES = 19


def _frozen(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


def _swap_table(enum: type[IntEnum], pairs: Iterable[tuple[IntEnum, IntEnum]]) -> np.ndarray:
    table = np.arange(len(enum), dtype=np.int64)
    for a, b in pairs:
        table[a], table[b] = int(b), int(a)
    return _frozen(table)


SOF20_LR_SWAP: np.ndarray = _swap_table(
    SOF,
    [(SOF.L_BROW, SOF.R_BROW), (SOF.L_EYE, SOF.R_EYE), (SOF.R_NOSE, SOF.L_NOSE),
     (SOF.L_EAR, SOF.R_EAR)],
)
"""(20,) int64 permutation of SOF-20 ids that swaps each left class with its right twin."""

SOFGAN17_LR_SWAP: np.ndarray = _swap_table(SofGAN, [(SofGAN.R_NOSE, SofGAN.L_NOSE)])
"""(17,) int64 permutation of SofGAN-17 ids: only the nose halves have sides in this set."""

CELEBAMASK19_LR_SWAP: np.ndarray = _swap_table(
    CelebAMask,
    [(CelebAMask.L_EYE, CelebAMask.R_EYE), (CelebAMask.L_BROW, CelebAMask.R_BROW),
     (CelebAMask.L_EAR, CelebAMask.R_EAR)],
)
"""(19,) int64 permutation of CelebAMask-19 ids swapping eyes, brows and ears."""


@dataclass(frozen=True)
class LabelSet:
    """One label set: its key, display title, class names, id enum and left/right swap."""

    key: str  # "sof20", "sofgan17" or "celebamask19"
    title: str  # display name used in messages, e.g. "SOF-20"
    names: tuple[str, ...]  # class names in id order
    ids: type[IntEnum]  # the IntEnum of named ids
    lr_swap: np.ndarray  # (num_classes,) int64 permutation swapping left/right classes

    @property
    def num_classes(self) -> int:
        return len(self.names)


LABEL_SETS: Mapping[str, LabelSet] = types.MappingProxyType({
    "sof20": LabelSet("sof20", "SOF-20", SOF20_NAMES, SOF, SOF20_LR_SWAP),
    "sofgan17": LabelSet("sofgan17", "SofGAN-17", SOFGAN17_NAMES, SofGAN, SOFGAN17_LR_SWAP),
    "celebamask19": LabelSet(
        "celebamask19", "CelebAMask-19", CELEBAMASK19_NAMES, CelebAMask, CELEBAMASK19_LR_SWAP
    ),
})
"""The three label sets by key."""


def get_label_set(label_set: str | LabelSet) -> LabelSet:
    """The :class:`LabelSet` for ``"sof20"``, ``"sofgan17"`` or ``"celebamask19"`` (any case)."""
    if isinstance(label_set, LabelSet):
        return label_set
    if not isinstance(label_set, str):
        raise TypeError(
            f"label_set: expected one of {sorted(LABEL_SETS)} or a LabelSet, "
            f"got {type(label_set).__name__}"
        )
    key = label_set.lower().replace("-", "").replace("_", "")
    if key not in LABEL_SETS:
        raise ValueError(f"label_set: expected one of {sorted(LABEL_SETS)}, got {label_set!r}")
    return LABEL_SETS[key]


# --------------------------------------------------------------------------------------------
# Array helpers (numpy or torch, torch imported only if the caller already uses it)
# --------------------------------------------------------------------------------------------

def _is_tensor(x: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def _check_int(x: Any, name: str) -> Any:
    """``x`` as a numpy array or torch tensor of an integer dtype, else TypeError."""
    if _is_tensor(x):
        dt = x.dtype
        if dt.is_floating_point or dt.is_complex or dt == sys.modules["torch"].bool:
            raise TypeError(f"{name}: expected an integer dtype, got {dt}")
        return x
    try:
        a = np.asarray(x)
    except Exception as exc:  # pragma: no cover - exotic inputs
        raise TypeError(f"{name}: expected a numpy array or torch tensor, got {type(x).__name__}") from exc
    if not np.issubdtype(a.dtype, np.integer):
        raise TypeError(f"{name}: expected an integer dtype, got {a.dtype}")
    return a


def _format_values(values: np.ndarray, limit: int = 10) -> str:
    vals = [int(v) for v in values[:limit]]
    more = ", ..." if len(values) > limit else ""
    return "{" + ", ".join(str(v) for v in vals) + more + "}"


def _check_range(x: Any, num_classes: int, name: str, what: str, suffix: str = "") -> None:
    """ValueError naming ``name``, ``[0, num_classes-1]`` and the offending values."""
    if _is_tensor(x):
        if x.numel() == 0:
            return
        lo, hi = int(x.min()), int(x.max())
        if lo >= 0 and hi < num_classes:
            return
        bad = x[(x < 0) | (x >= num_classes)]
        values = np.unique(bad.detach().cpu().numpy().astype(np.int64))
    else:
        if x.size == 0:
            return
        lo, hi = int(x.min()), int(x.max())
        if lo >= 0 and hi < num_classes:
            return
        values = np.unique(x[(x < 0) | (x >= num_classes)].astype(np.int64))
    raise ValueError(
        f"{name}: {what}ids must be in [0, {num_classes - 1}]{suffix}, "
        f"got values {_format_values(values)}"
    )


def validate_labels(labels: Any, label_set: str | LabelSet = "sof20", *, name: str = "labels") -> Any:
    """Check that ``labels`` is an integer map with ids of ``label_set``; return it unchanged.

    ``labels``: any shape, integer numpy array / array-like or torch tensor. Raises ``TypeError``
    for a non-integer dtype and ``ValueError`` for ids outside ``[0, num_classes - 1]``; both
    messages name ``name``. Array-likes come back as numpy arrays.
    """
    ls = get_label_set(label_set)
    x = _check_int(labels, name)
    _check_range(x, ls.num_classes, name, ls.title + " ")
    return x


def _apply_table(x: Any, table: np.ndarray) -> Any:
    """``table[x]`` keeping x's container, dtype and device (x already validated)."""
    if _is_tensor(x):
        torch = sys.modules["torch"]
        t = torch.tensor(table, device=x.device)  # a copy: the table is read-only
        return t[x.long()].to(x.dtype)
    return table[x].astype(x.dtype, copy=False)


# --------------------------------------------------------------------------------------------
# Remaps
# --------------------------------------------------------------------------------------------

SOF20_TO_SOFGAN17: np.ndarray = _frozen(np.array(
    [SofGAN.BACKGROUND, SofGAN.SKIN, SofGAN.EYE_BROW, SofGAN.EYE_BROW, SofGAN.EYE, SofGAN.EYE,
     SofGAN.R_NOSE, SofGAN.L_NOSE, SofGAN.MOUTH, SofGAN.U_LIP, SofGAN.L_LIP, SofGAN.EAR,
     SofGAN.EAR, SofGAN.EAR_R, SofGAN.EYE_G, SofGAN.NECK, SofGAN.NECK_L, SofGAN.CLOTH,
     SofGAN.HAIR, SofGAN.HAT],
    dtype=np.int64,
))
"""(20,) int64: SOF-20 id -> SofGAN-17 id (``[0,1,2,2,3,3,4,5,6,...,16]``)."""

_NOSE_UNSPLIT = -1
CELEBAMASK19_TO_SOF20: np.ndarray = _frozen(np.array(
    [SOF.BACKGROUND, SOF.SKIN, _NOSE_UNSPLIT, SOF.EYE_G, SOF.L_EYE, SOF.R_EYE, SOF.L_BROW,
     SOF.R_BROW, SOF.L_EAR, SOF.R_EAR, SOF.MOUTH, SOF.U_LIP, SOF.L_LIP, SOF.HAIR, SOF.HAT,
     SOF.EAR_R, SOF.NECK_L, SOF.NECK, SOF.CLOTH],
    dtype=np.int64,
))
"""(19,) int64: CelebAMask-19 id -> SOF-20 id. The nose entry (id 2) is ``-1``: it has no single
SOF id and is split by :func:`celebamask_to_sof`."""

CELEBAMASK19_FACE_CLASSES: tuple[int, ...] = tuple(int(c) for c in (
    CelebAMask.SKIN, CelebAMask.NOSE, CelebAMask.L_BROW, CelebAMask.R_BROW, CelebAMask.L_EYE,
    CelebAMask.R_EYE, CelebAMask.MOUTH, CelebAMask.U_LIP, CelebAMask.L_LIP,
))
"""CelebAMask-19 ids that make up a "face" for the nose split: skin, nose, brows, eyes, mouth,
lips. Glasses, ears, earrings, neck, hair, hat, necklace and cloth are excluded (they are
asymmetric in non-frontal views or could join neighbouring faces)."""


def sof_to_sofgan(labels: Any) -> Any:
    """Remap SOF-20 ids to SofGAN-17 ids with :data:`SOF20_TO_SOFGAN17`.

    ``labels``: any shape, integer numpy array or torch tensor, SOF-20 ids in [0, 19].
    Returns the same container, shape, dtype and device with SofGAN-17 ids in [0, 16].
    """
    x = validate_labels(labels, "sof20", name="labels")
    return _apply_table(x, SOF20_TO_SOFGAN17)


_EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)


def _split_nose(cm: np.ndarray) -> np.ndarray:
    """(H, W) CelebAMask-19 ids -> (H, W) int64 SOF-20 ids (see :func:`celebamask_to_sof`)."""
    from scipy import ndimage

    out = CELEBAMASK19_TO_SOF20[cm]
    nose = cm == CelebAMask.NOSE
    if not nose.any():
        return out
    region = np.isin(cm, CELEBAMASK19_FACE_CLASSES)  # contains every nose pixel
    comp, n = ndimage.label(region, structure=_EIGHT_CONNECTED)
    index = np.arange(1, n + 1)
    cols = np.broadcast_to(np.arange(cm.shape[1], dtype=np.float64), cm.shape)
    medians = np.asarray(ndimage.median(cols, comp, index), dtype=np.float64).reshape(n)
    # A component is a face if it holds at least one face pixel that is not nose.
    is_face = np.asarray(ndimage.maximum(region & ~nose, comp, index), dtype=bool).reshape(n)
    threshold = medians.copy()
    if not is_face.all():
        if is_face.any():
            face_pixels = (comp > 0) & is_face[np.maximum(comp, 1) - 1]
            threshold[~is_face] = np.median(cols[face_pixels])
        logger.debug(
            "celebamask_to_sof: %d nose component(s) touch no face; split at %s",
            int((~is_face).sum()),
            "the median of all face pixels" if is_face.any() else "their own median",
        )
    # A face showing both eyes splits at the midpoint of the eyes' centroid columns: the sagittal
    # plane's trace, which the face's median column misses as soon as the head turns.
    le, re_ = cm == CelebAMask.L_EYE, cm == CelebAMask.R_EYE
    if le.any() and re_.any():
        count_l = np.bincount(comp[le], minlength=n + 1)[1:]
        count_r = np.bincount(comp[re_], minlength=n + 1)[1:]
        both = (count_l > 0) & (count_r > 0)
        if both.any():
            sum_l = np.bincount(comp[le], weights=cols[le], minlength=n + 1)[1:]
            sum_r = np.bincount(comp[re_], weights=cols[re_], minlength=n + 1)[1:]
            eyes_mid = 0.5 * (sum_l[both] / count_l[both] + sum_r[both] / count_r[both])
            threshold[both] = eyes_mid
    thr = threshold[comp[nose] - 1]
    out[nose] = np.where(cols[nose] < thr, int(SOF.R_NOSE), int(SOF.L_NOSE))
    return out


def celebamask_to_sof(labels: Any) -> Any:
    """Convert CelebAMask-19 ids to SOF-20 ids, splitting the nose into its two halves.

    ``labels``: ``(H, W)`` or ``(B, H, W)`` integer numpy array or torch tensor, CelebAMask-19
    ids in [0, 18]. Returns the same container, shape, dtype and device, SOF-20 ids in [0, 19].

    Every class but the nose maps one-to-one through :data:`CELEBAMASK19_TO_SOF20`. The nose
    is split per image (each item of a batch on its own) by this rule:

    1. The *face region* is the union of :data:`CELEBAMASK19_FACE_CLASSES` (skin, nose,
       l_brow, r_brow, l_eye, r_eye, mouth, u_lip, l_lip). Its 8-connected components are
       found; a component that contains at least one non-nose pixel is a *face*.
    2. Each nose pixel belongs to exactly one component (the nose is in the region). For a
       face that shows both eyes (l_eye and r_eye pixels in the component), the threshold is
       the midpoint of the two eyes' mean columns: the trace of the face's symmetry plane, right
       also for turned heads (on 24 synthetic heads turned by up to 15°, 0.88 of the nose pixels
       land in the right half, against 0.63 with the median rule below). For another
       face, the threshold is the median column (``numpy.median`` of the column indices of
       *all* its pixels, nose included; a half-integer when the count is even).
    3. A component made of nose pixels only (a nose touching no face) is split at the median
       column of all pixels of all faces in that image, or, if the image has no face, at the
       median column of that nose component itself.
    4. Nose pixels in a column ``< threshold`` become ``r_nose`` (the subject's right half,
       which appears on the image's left); columns ``>= threshold`` (a tie on the median
       column included) become ``l_nose``.

    Because of the tie rule, mirroring commutes with this conversion except for nose pixels lying
    exactly on an integer threshold column.
    """
    x = validate_labels(labels, "celebamask19", name="labels")
    if x.ndim not in (2, 3):
        raise ValueError(f"labels: expected shape (H, W) or (B, H, W), got {tuple(x.shape)}")
    if _is_tensor(x):
        a = x.detach().cpu().numpy().astype(np.int64)
    else:
        a = x.astype(np.int64, copy=False)
    if a.ndim == 2:
        out = _split_nose(a)
    else:
        out = np.stack([_split_nose(m) for m in a]) if len(a) else np.zeros(a.shape, np.int64)
    if _is_tensor(x):
        torch = sys.modules["torch"]
        return torch.from_numpy(out).to(device=x.device, dtype=x.dtype)
    return out.astype(x.dtype, copy=False)


# --------------------------------------------------------------------------------------------
# Left / right
# --------------------------------------------------------------------------------------------

def swap_left_right(labels: Any, label_set: str | LabelSet = "sof20") -> Any:
    """Swap every left class id with its right twin (no spatial change).

    ``labels``: any shape, integer numpy array or torch tensor with ids of ``label_set``
    (``"sof20"``: brows, eyes, nose halves, ears; ``"sofgan17"``: nose halves only;
    ``"celebamask19"``: eyes, brows, ears). Same container, shape, dtype and device back.
    """
    ls = get_label_set(label_set)
    x = validate_labels(labels, ls, name="labels")
    return _apply_table(x, ls.lr_swap)


def flip_horizontal(labels: Any, label_set: str | LabelSet = "sof20") -> Any:
    """Mirror a label map left-right (last axis) and swap left/right ids, as a mirrored photo.

    ``labels``: ``(H, W)`` or ``(B, H, W)`` integer numpy array or torch tensor with ids of
    ``label_set``. Same container, shape, dtype and device back (a new array).
    """
    ls = get_label_set(label_set)
    x = validate_labels(labels, ls, name="labels")
    if x.ndim not in (2, 3):
        raise ValueError(f"labels: expected shape (H, W) or (B, H, W), got {tuple(x.shape)}")
    if _is_tensor(x):
        return _apply_table(x.flip(-1), ls.lr_swap)
    return _apply_table(np.flip(x, -1), ls.lr_swap)


# --------------------------------------------------------------------------------------------
# Region groups (SofGAN-17 ids)
# --------------------------------------------------------------------------------------------

def _ids(*members: IntEnum) -> tuple[int, ...]:
    return tuple(int(m) for m in members)


# The grouping of the release's demo notebook for regional styling. Note that eye_brow (2)
# belongs only to "global" there: no other group contains it.
REGION_GROUPS: Mapping[str, tuple[int, ...]] = types.MappingProxyType({
    "global": _ids(*SofGAN),
    "background": _ids(SofGAN.BACKGROUND),
    "complexion": _ids(SofGAN.SKIN, SofGAN.R_NOSE, SofGAN.L_NOSE, SofGAN.EAR, SofGAN.NECK),
    "hair": _ids(SofGAN.HAIR),
    "eyes_mouth": _ids(SofGAN.EYE, SofGAN.MOUTH, SofGAN.U_LIP, SofGAN.L_LIP),
    "wearings": _ids(SofGAN.EAR_R, SofGAN.EYE_G, SofGAN.NECK_L, SofGAN.CLOTH, SofGAN.HAT),
})
"""Ordered region groups for regional styling: name -> SofGAN-17 ids."""

REGION_GROUP_TITLES: Mapping[str, str] = types.MappingProxyType({
    "global": "Global",
    "background": "Background",
    "complexion": "Complexion",
    "hair": "Hair",
    "eyes_mouth": "Eyes & Mouth",
    "wearings": "Wearings",
})
"""Display titles of :data:`REGION_GROUPS`, same keys, same order."""


def _group_ids(group_or_ids: Any) -> np.ndarray:
    if isinstance(group_or_ids, str):
        key = group_or_ids
        if key not in REGION_GROUPS:
            by_title = {t.lower(): k for k, t in REGION_GROUP_TITLES.items()}
            key = by_title.get(group_or_ids.lower(), group_or_ids.lower())
        if key not in REGION_GROUPS:
            raise ValueError(
                f"group_or_ids: expected a group name in {list(REGION_GROUPS)} or SofGAN-17 ids, "
                f"got {group_or_ids!r}"
            )
        return np.asarray(REGION_GROUPS[key], dtype=np.int64)
    if isinstance(group_or_ids, (int, np.integer)):
        group_or_ids = [group_or_ids]
    ids = np.asarray(list(group_or_ids) if not _is_tensor(group_or_ids)
                     else group_or_ids.detach().cpu().numpy()).reshape(-1)
    if ids.size and not np.issubdtype(ids.dtype, np.integer):
        raise TypeError(f"group_or_ids: expected integer SofGAN-17 ids, got dtype {ids.dtype}")
    ids = ids.astype(np.int64)
    _check_range(ids, NUM_SOFGAN_CLASSES, "group_or_ids", "SofGAN-17 ")
    return ids


def region_mask(labels17: Any, group_or_ids: str | Iterable[int] | int) -> Any:
    """Boolean mask of the pixels whose class is in a region group.

    ``labels17``: any shape, integer numpy array or torch tensor, SofGAN-17 ids in [0, 16].
    ``group_or_ids``: a key of :data:`REGION_GROUPS` (or its display title, e.g.
    ``"Eyes & Mouth"``), or SofGAN-17 ids (an int or an iterable of ints).
    Returns a bool mask of the same shape (numpy, or torch on the same device).
    """
    x = validate_labels(labels17, "sofgan17", name="labels17")
    ids = _group_ids(group_or_ids)
    member = np.zeros(NUM_SOFGAN_CLASSES, dtype=bool)
    member[ids] = True
    if _is_tensor(x):
        torch = sys.modules["torch"]
        return torch.as_tensor(member, device=x.device)[x.long()]
    return member[x]


# --------------------------------------------------------------------------------------------
# Palettes
# --------------------------------------------------------------------------------------------

SOF20_OFFICIAL_PALETTE: np.ndarray = _frozen(np.array([
    [0, 0, 0], [127, 212, 255], [255, 255, 127], [255, 255, 127], [255, 255, 170],
    [255, 255, 170], [240, 157, 240], [255, 212, 255], [31, 162, 230], [127, 255, 255],
    [127, 255, 255], [0, 255, 85], [0, 255, 85], [0, 255, 170], [255, 255, 170],
    [127, 170, 255], [85, 0, 255], [255, 170, 127], [212, 127, 255], [0, 170, 255],
], dtype=np.uint8))
"""(20, 3) uint8: the release's SOF-20 colours. NOT injective: l_brow/r_brow,
l_eye/r_eye/eye_g, u_lip/l_lip and l_ear/r_ear share colours; it cannot be decolorized."""

_sof20 = SOF20_OFFICIAL_PALETTE.copy()
# Shared official colours: the first class of each group keeps it, the others move to the
# nearest colour at distance >= 46 from every other entry (found by a grid search, rounded).
_sof20[SOF.R_BROW] = (208, 255, 127)  # official (255, 255, 127), shared with l_brow
_sof20[SOF.R_EYE] = (212, 242, 176)  # official (255, 255, 170), shared with l_eye, eye_g
_sof20[SOF.L_LIP] = (80, 255, 255)  # official (127, 255, 255), shared with u_lip
_sof20[SOF.R_EAR] = (0, 208, 85)  # official (0, 255, 85), shared with l_ear
_sof20[SOF.EYE_G] = (244, 210, 164)  # official (255, 255, 170), shared with l_eye, r_eye
SOF20_PALETTE: np.ndarray = _frozen(_sof20)
"""(20, 3) uint8: the default, injective SOF-20 palette (minimum pairwise distance ~40.6)."""
del _sof20

# SofGAN-17 colour = SOF-20 colour of the first SOF class mapping to it (eye_brow <- l_brow, ...).
_first_sof = np.array([int(np.flatnonzero(SOF20_TO_SOFGAN17 == k)[0]) for k in range(NUM_SOFGAN_CLASSES)])
SOFGAN17_PALETTE: np.ndarray = _frozen(SOF20_PALETTE[_first_sof].copy())
"""(17, 3) uint8, injective: each class takes the SOF-20 colour of its first SOF class."""

_celeba_src = CELEBAMASK19_TO_SOF20.copy()
_celeba_src[CelebAMask.NOSE] = SOF.R_NOSE  # the whole nose is shown in the r_nose colour
CELEBAMASK19_PALETTE: np.ndarray = _frozen(SOF20_PALETTE[_celeba_src].copy())
"""(19, 3) uint8, injective: each class takes the SOF-20 colour of the class it maps to; the
single nose class takes the r_nose colour."""
del _first_sof, _celeba_src

_PALETTES: Mapping[str, tuple[np.ndarray, LabelSet]] = types.MappingProxyType({
    "sof20": (SOF20_PALETTE, LABEL_SETS["sof20"]),
    "sof20_official": (SOF20_OFFICIAL_PALETTE, LABEL_SETS["sof20"]),
    "sofgan17": (SOFGAN17_PALETTE, LABEL_SETS["sofgan17"]),
    "celebamask19": (CELEBAMASK19_PALETTE, LABEL_SETS["celebamask19"]),
})
PALETTE_NAMES: tuple[str, ...] = tuple(_PALETTES)
"""Names accepted by :func:`get_palette`."""


def _resolve_palette(palette: Any, name: str = "palette") -> tuple[np.ndarray, LabelSet | None, str]:
    """(colours (K, 3) uint8, label set or None, description for messages)."""
    if isinstance(palette, str):
        key = palette.lower()
        if key not in _PALETTES:
            raise ValueError(
                f"{name}: expected one of {list(PALETTE_NAMES)} or a (K, 3) array, got {palette!r}"
            )
        colours, ls = _PALETTES[key]
        return colours, ls, f"palette {key!r}"
    if _is_tensor(palette):
        palette = palette.detach().cpu().numpy()
    a = np.asarray(palette)
    if a.ndim != 2 or a.shape[1] != 3 or a.shape[0] < 1:
        raise ValueError(f"{name}: expected shape (K, 3) with K >= 1, got {a.shape}")
    if not np.issubdtype(a.dtype, np.integer):
        raise TypeError(f"{name}: expected an integer dtype (RGB in [0, 255]), got {a.dtype}")
    if a.min() < 0 or a.max() > 255:
        raise ValueError(
            f"{name}: RGB values must be in [0, 255], got range [{int(a.min())}, {int(a.max())}]"
        )
    return _frozen(a.astype(np.uint8)), None, f"a {a.shape[0]}-colour palette"


def get_palette(palette: str | Any = "sof20") -> np.ndarray:
    """A palette as a read-only ``(K, 3)`` uint8 array.

    ``palette``: ``"sof20"`` (default, injective), ``"sof20_official"`` (the release's, not
    injective), ``"sofgan17"``, ``"celebamask19"``, or an integer array-like ``(K, 3)`` of RGB
    values in [0, 255] (returned as a uint8 copy).
    """
    return _resolve_palette(palette)[0]


def min_palette_distance(palette: str | Any = "sof20") -> float:
    """Smallest Euclidean RGB distance between two entries of ``palette`` (0 if not injective)."""
    p = get_palette(palette).astype(np.float64)
    if len(p) < 2:
        return float("inf")
    d = np.sqrt(((p[:, None, :] - p[None, :, :]) ** 2).sum(-1))
    np.fill_diagonal(d, np.inf)
    return float(d.min())


def colorize(labels: Any, palette: str | Any = "sof20") -> np.ndarray:
    """Label map -> RGB image.

    ``labels``: ``(H, W)`` or ``(B, H, W)`` integer numpy array or torch tensor, ids of the
    palette's label set (in ``[0, K - 1]`` for a ``K``-colour palette).
    ``palette``: see :func:`get_palette`.
    Returns uint8 numpy ``(H, W, 3)`` / ``(B, H, W, 3)``.
    """
    colours, ls, desc = _resolve_palette(palette)
    x = _check_int(labels, "labels")
    if x.ndim not in (2, 3):
        raise ValueError(f"labels: expected shape (H, W) or (B, H, W), got {tuple(x.shape)}")
    what = f"{ls.title} " if ls is not None else ""
    _check_range(x, len(colours), "labels", what, suffix=f" for {desc}")
    if _is_tensor(x):
        x = x.detach().cpu().numpy()
    return colours[x]


def _shared_colours_message(colours: np.ndarray, ls: LabelSet | None) -> str | None:
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, c in enumerate(colours.tolist()):
        groups.setdefault(tuple(c), []).append(i)
    shared = [(c, ids) for c, ids in groups.items() if len(ids) > 1]
    if not shared:
        return None

    def label(i: int) -> str:
        return f"{i} ({ls.names[i]})" if ls is not None and i < ls.num_classes else str(i)

    return "; ".join(f"classes {', '.join(label(i) for i in ids)} share {c}" for c, ids in shared)


_CHUNK = 1 << 18  # pixels per chunk of the nearest-colour search


def decolorize(rgb: Any, palette: str | Any = "sof20", tolerance: float | None = 30.0) -> np.ndarray:
    """RGB image -> label map, by the nearest palette colour (Euclidean distance in RGB).

    ``rgb``: ``(H, W, 3)`` or ``(B, H, W, 3)`` uint8 numpy array (a uint8 torch tensor is
    accepted and moved to the CPU). ``palette``: an injective palette (see :func:`get_palette`);
    a palette where two classes share a colour raises ``ValueError``. ``tolerance``: the
    largest allowed distance from a pixel to its nearest palette colour; ``None`` accepts
    every pixel. Pixels farther than ``tolerance`` raise ``ValueError`` naming their count and
    the first one. Equidistant colours resolve to the lower id.

    Returns int64 numpy ``(H, W)`` / ``(B, H, W)`` with ids of the palette's label set.
    Exact palette colours go through a sorted-key lookup; only the other pixels are compared
    against every palette colour, in chunks.
    """
    colours, ls, desc = _resolve_palette(palette)
    shared = _shared_colours_message(colours, ls)
    if shared is not None:
        raise ValueError(
            f"palette: {desc} is not injective and cannot be inverted: {shared}. "
            "Use an injective palette such as 'sof20'."
        )
    if tolerance is not None:
        from ._validate import check_number

        inf = isinstance(tolerance, float) and tolerance == math.inf  # as None: every pixel is accepted
        tolerance = math.inf if inf else check_number(tolerance, "tolerance", 0)
    if _is_tensor(rgb):
        rgb = rgb.detach().cpu().numpy()
    a = np.asarray(rgb)
    if a.dtype != np.uint8:
        raise TypeError(f"rgb: expected dtype uint8, got {a.dtype}")
    if a.ndim not in (3, 4) or a.shape[-1] != 3:
        raise ValueError(f"rgb: expected shape (H, W, 3) or (B, H, W, 3), got {a.shape}")

    flat = a.reshape(-1, 3)
    keys = (flat[:, 0].astype(np.int32) << 16) | (flat[:, 1].astype(np.int32) << 8) | flat[:, 2]
    pal_keys = (colours[:, 0].astype(np.int32) << 16) | (colours[:, 1].astype(np.int32) << 8) | colours[:, 2]
    order = np.argsort(pal_keys)
    sorted_keys = pal_keys[order]
    pos = np.minimum(np.searchsorted(sorted_keys, keys), len(sorted_keys) - 1)
    exact = sorted_keys[pos] == keys
    out = order[pos].astype(np.int64)

    rest = np.flatnonzero(~exact)
    if rest.size:
        p = colours.astype(np.float32)
        p_sq = (p * p).sum(1)
        best_d2 = np.empty(rest.size, dtype=np.float32)
        for s in range(0, rest.size, _CHUNK):
            idx = rest[s:s + _CHUNK]
            q = flat[idx].astype(np.float32)
            # |q - p|^2 = |q|^2 - 2 q.p + |p|^2; exact in float32 for 8-bit RGB (< 2^24).
            d2 = (q * q).sum(1, keepdims=True) - 2.0 * (q @ p.T) + p_sq
            k = d2.argmin(1)
            out[idx] = k
            best_d2[s:s + _CHUNK] = d2[np.arange(len(idx)), k]
        if tolerance is not None:
            far = best_d2 > np.float32(tolerance * tolerance)
            if far.any():
                n_far = int(far.sum())
                first = int(rest[np.flatnonzero(far)[0]])
                where = np.unravel_index(first, a.shape[:-1])
                coord = "(b, row, col)" if a.ndim == 4 else "(row, col)"
                colour = tuple(int(v) for v in flat[first])
                raise ValueError(
                    f"rgb: {n_far} pixel{'s are' if n_far != 1 else ' is'} farther than "
                    f"{tolerance:g} from every palette colour (first at {coord} = "
                    f"{tuple(int(w) for w in where)}, colour {colour})"
                )
    return out.reshape(a.shape[:-1])
