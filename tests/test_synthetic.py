"""Tests for sofgan_lab.synthetic: attributes, the SDF scene, exact rendering, photos, writers.

Expectations are derived independently of the code under test where possible: analytic ray /
sphere intersections, the documented left/right convention, mirror symmetry, empirical rates.
Images are kept small (32-96 px) so the whole file runs in seconds on two cores.
"""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sofgan_lab import labels as L
from sofgan_lab.cameras import PORTRAIT_TARGET, PORTRAIT_ZOOM, Camera
from sofgan_lab.labels import SOF, flip_horizontal
from sofgan_lab.synthetic import (ATTRIBUTE_NAMES, ATTRIBUTES, build_head, default_attributes,
                                  instance_rng, render_segmap, sample_attributes,
                                  validate_attributes)
from sofgan_lab.synthetic import writers as W
from sofgan_lab.synthetic.head import Head
from sofgan_lab.synthetic.photo import Photo, TextureStyle, render_photo, sample_style
from sofgan_lab.synthetic.sdf import Primitive, Scene, rotation
from sofgan_lab.synthetic.writers import write_photos, write_scans


# ------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------

def full_cam(size=64, yaw=0.0, pitch=0.0, fov=None) -> Camera:
    """The release's orthographic framing (whole bust)."""
    if fov is None:
        return Camera.from_orbit(yaw, pitch, image_size=size)
    return Camera.from_orbit(yaw, pitch, image_size=size, fov=fov)


def face_cam(size=64, yaw=0.0, pitch=0.0) -> Camera:
    """Orthographic close-up of the face (1.6 world units across), centred on x = 0."""
    return Camera.from_orbit(yaw, pitch, image_size=size, target=(0.0, 0.55, 0.0),
                             pixels_per_unit=size / 1.6)


def closeup(y: float, span: float, size=48) -> Camera:
    """Frontal orthographic close-up at height ``y`` spanning ``span`` world units."""
    return Camera.from_orbit(0.0, 0.0, image_size=size, target=(0.0, y, 0.0), pixels_per_unit=size / span)


def count(labels, *ids) -> int:
    return int(sum(int((labels == int(i)).sum()) for i in ids))


def mean_col(labels2d: torch.Tensor, label) -> float:
    """Mean pixel-centre column (j + 0.5) of ``label`` in an (H, W) map."""
    cols = torch.nonzero(labels2d == int(label))[:, 1].double() + 0.5
    assert cols.numel() > 0, f"no {SOF(int(label)).name} pixels"
    return float(cols.mean())


def render_labels(head, cam) -> torch.Tensor:
    return render_segmap(head, cam).labels


def asymmetric_head(index=3) -> Head:
    """A sampled head (sampled heads are mirror-symmetric by construction) plus one-sided extras:
    a lock of hair on the subject's left and a stud on the right, so mirroring changes it."""
    a = sample_attributes(instance_rng(0, index))
    base = build_head(a)
    extra = [
        Primitive("lock", int(SOF.HAIR), "ellipsoid", centre=[0.45, 0.55, 0.3], radii=[0.1, 0.4, 0.12],
                  rot=rotation(z_deg=25.0)),
        Primitive("stud", int(SOF.EAR_R), "ellipsoid", centre=[-0.55, 0.25, 0.05], radii=[0.07, 0.07, 0.07]),
        Primitive("patch", int(SOF.HAT), "ellipsoid", centre=[0.3, 1.05, 0.3], radii=[0.25, 0.12, 0.2]),
    ]
    return Head(dict(a), Scene(base.scene.primitives + extra))


# ------------------------------------------------------------------------------------------
# attributes
# ------------------------------------------------------------------------------------------

_DIST_RE = re.compile(r"^(Uniform\((-?[0-9.]+), (-?[0-9.]+)\)|Bernoulli\(([0-9.]+)\))$")


def test_attribute_table_is_documented():
    assert len(ATTRIBUTES) >= 16, f"only {len(ATTRIBUTES)} attributes"
    assert tuple(ATTRIBUTES) == ATTRIBUTE_NAMES
    for name, spec in ATTRIBUTES.items():
        assert spec.name == name
        assert spec.doc.strip(), f"{name}: no doc"
        m = _DIST_RE.match(spec.distribution)
        assert m, f"{name}: distribution string {spec.distribution!r}"
        if spec.kind == "uniform":
            assert (float(m.group(2)), float(m.group(3))) == pytest.approx((spec.low, spec.high))
            assert spec.low < spec.high
        else:
            assert spec.kind == "bernoulli", f"{name}: kind {spec.kind!r}"
            assert float(m.group(4)) == pytest.approx(spec.p)
            assert 0.0 < spec.p < 1.0
        assert spec.check(spec.default) == spec.default  # the default is a legal value


def test_default_attributes_are_the_spec_defaults():
    d = default_attributes()
    assert list(d) == list(ATTRIBUTE_NAMES)
    assert d == {n: s.default for n, s in ATTRIBUTES.items()}
    d2 = default_attributes(smile=0.7)
    assert d2["smile"] == 0.7 and {k: v for k, v in d2.items() if k != "smile"} == \
        {k: v for k, v in d.items() if k != "smile"}


def test_instance_sampling_is_deterministic_and_independent_of_dataset_size():
    a = [sample_attributes(instance_rng(7, i)) for i in range(5)]
    b = [sample_attributes(instance_rng(7, i)) for i in range(12)]  # a "bigger dataset"
    assert a == b[:5]
    assert list(a[0]) == list(ATTRIBUTE_NAMES)
    assert a[3] == sample_attributes(instance_rng(7, 3))
    assert a[3] != a[4], "different instances got identical attributes"
    assert a[3] != sample_attributes(instance_rng(8, 3)), "different seeds gave identical attributes"
    # streams are independent generators
    assert instance_rng(7, 3, 0).random() != instance_rng(7, 3, 1).random()
    for vals in b:
        validate_attributes(vals, complete=True)


def test_sampling_overrides_are_checked_and_applied():
    a = sample_attributes(instance_rng(0, 0), glasses=1.0, smile=0.25)
    assert a["glasses"] == 1.0 and a["smile"] == 0.25
    with pytest.raises(ValueError, match="smile"):
        sample_attributes(instance_rng(0, 0), smile=3.0)


@pytest.fixture(scope="module")
def many_samples():
    n = 2000
    rows = [sample_attributes(instance_rng(11, i)) for i in range(n)]
    return {name: np.array([r[name] for r in rows]) for name in ATTRIBUTE_NAMES}


def test_bernoulli_rates_match_their_p(many_samples):
    bern = [s for s in ATTRIBUTES.values() if s.kind == "bernoulli"]
    assert bern, "no binary attributes"
    for s in bern:
        x = many_samples[s.name]
        assert set(np.unique(x).tolist()) <= {0.0, 1.0}, f"{s.name}: non-binary values"
        sigma = math.sqrt(s.p * (1 - s.p) / len(x))
        assert abs(x.mean() - s.p) < 4.5 * sigma, f"{s.name}: rate {x.mean():.3f} vs p {s.p}"


def test_uniform_ranges_are_covered(many_samples):
    for s in ATTRIBUTES.values():
        if s.kind != "uniform":
            continue
        x = many_samples[s.name]
        width = s.high - s.low
        assert x.min() >= s.low and x.max() <= s.high, f"{s.name}: outside [{s.low}, {s.high}]"
        assert x.min() < s.low + 0.01 * width and x.max() > s.high - 0.01 * width, f"{s.name}: range not covered"
        sigma = width / math.sqrt(12 * len(x))
        assert abs(x.mean() - (s.low + s.high) / 2) < 4.5 * sigma, f"{s.name}: mean {x.mean():.4f}"
        # roughly flat: each quarter of the range holds about a quarter of the samples
        hist, _ = np.histogram(x, bins=4, range=(s.low, s.high))
        assert hist.min() > 0.2 * len(x), f"{s.name}: histogram {hist}"


def test_unknown_attribute_names_are_named():
    with pytest.raises(ValueError) as e:
        validate_attributes({"smiel": 0.5, "face_width": 1.0, "zzz": 1})
    assert "smiel" in str(e.value) and "zzz" in str(e.value)
    with pytest.raises(ValueError, match="beard"):
        build_head({"beard": 1.0})
    with pytest.raises(ValueError, match="wings"):
        default_attributes(wings=1.0)


@pytest.mark.parametrize("value", ["big", None, [0.5], object()])
def test_wrong_attribute_types_raise_type_error(value):
    with pytest.raises(TypeError, match="smile"):
        validate_attributes({"smile": value})


def test_wrong_container_and_rng_types():
    with pytest.raises(TypeError, match="attributes"):
        validate_attributes([("smile", 0.5)])
    with pytest.raises(TypeError, match="rng"):
        sample_attributes(0)


@pytest.mark.parametrize("name,value", [("smile", 1.5), ("smile", -0.1), ("face_width", 2.0),
                                        ("glasses", 0.5), ("hat", 2.0), ("eye_size", float("nan")),
                                        ("nose_size", float("inf"))])
def test_out_of_range_values_name_the_attribute(name, value):
    with pytest.raises(ValueError, match=name):
        validate_attributes({name: value})


def test_complete_and_bool_values():
    with pytest.raises(ValueError, match="missing"):
        validate_attributes({"smile": 0.5}, complete=True)
    assert validate_attributes({"glasses": True})["glasses"] == 1.0
    assert validate_attributes({"smile": np.float32(0.5)})["smile"] == 0.5


def test_instance_rng_rejects_bad_seeds():
    for bad in (-1, 1.5, "0", True):
        with pytest.raises(ValueError, match="seed"):
            instance_rng(bad, 0)


# ------------------------------------------------------------------------------------------
# SDF scene
# ------------------------------------------------------------------------------------------

def _near_surface_points(head: Head, n=60000, seed=0) -> torch.Tensor:
    """Points within 0.05 of a surface (by the full evaluation): uniform samples kept by |sdf|,
    plus rendered surface points jittered by up to 0.05 (so thin parts are covered)."""
    g = torch.Generator().manual_seed(seed)
    p = (torch.rand(n, 3, generator=g) * 2 - 1) * 1.5
    r = render_segmap(head, full_cam(48, yaw=15.0))
    surf = r.points[r.mask]
    jitter = (torch.rand(surf.shape, generator=g) * 2 - 1) * 0.05 / math.sqrt(3)
    pts = torch.cat([p, surf, surf + jitter])
    keep = head.scene.evaluate(pts, cull=False).sdf.abs() < 0.05
    return pts[keep]


@pytest.mark.parametrize("index", [0, 3])
def test_culled_evaluation_is_bit_identical_near_surfaces(index):
    a = sample_attributes(instance_rng(0, index), glasses=1.0, earrings=1.0, necklace=1.0, hat=float(index % 2))
    head = build_head(a)
    pts = _near_surface_points(head, seed=index)
    assert pts.shape[0] > 2500, "too few near-surface points to be a test"
    full = head.scene.evaluate(pts, cull=False)
    culled = head.scene.evaluate(pts, cull=True)
    assert torch.equal(full.sdf, culled.sdf), \
        f"sdf differs at {int((full.sdf != culled.sdf).sum())} points, max {(full.sdf - culled.sdf).abs().max():.3g}"
    assert torch.equal(full.label, culled.label)
    assert torch.equal(full.member, culled.member)
    # the sample reaches the small parts, not only the skin
    present = set(full.label.tolist())
    for cls in (SOF.L_EYE, SOF.R_NOSE, SOF.U_LIP, SOF.EYE_G, SOF.EAR_R, SOF.NECK_L):
        assert int(cls) in present, f"{cls.name} missing from the near-surface sample"


def test_evaluate_keeps_leading_shape_and_checks_input():
    scene = build_head(default_attributes()).scene
    s = scene.evaluate(torch.zeros(4, 5, 3))
    assert s.sdf.shape == (4, 5) and s.label.shape == (4, 5) and s.member.shape == (4, 5)
    assert s.sdf.dtype == torch.float32 and s.label.dtype == torch.int64
    with pytest.raises(ValueError, match="points"):
        scene.evaluate(torch.zeros(4, 2))
    with pytest.raises(TypeError, match="points"):
        scene.evaluate(np.zeros((4, 3)))


def test_sphere_distances_are_exact_along_axes():
    c = np.array([0.1, -0.2, 0.15])
    r = 0.4
    scene = Scene([Primitive("ball", int(SOF.SKIN), "ellipsoid", centre=c.tolist(), radii=[r, r, r])])
    pts, expected = [], []
    for axis in range(3):
        for s in (-0.9, -0.55, -0.3, -0.05, 0.05, 0.2, 0.39, 0.41, 0.7, 1.0):
            e = np.zeros(3)
            e[axis] = s
            pts.append(c + e)
            expected.append(abs(s) - r)
    pts.append(c)  # the centre itself: exactly -r inside
    expected.append(-r)
    for cull in (False, True):
        got = scene.sdf(torch.tensor(np.array(pts), dtype=torch.float32), cull=cull)
        np.testing.assert_allclose(got.numpy(), expected, atol=2e-6, err_msg=f"cull={cull}")


def test_rotated_ellipsoid_distances_are_exact_outside_along_its_axes():
    c = np.array([0.0, 0.3, -0.1])
    radii = np.array([0.3, 0.5, 0.4])
    rot = rotation(10.0, 30.0, -20.0)
    scene = Scene([Primitive("e", int(SOF.HAT), "ellipsoid", centre=c.tolist(), radii=radii.tolist(), rot=rot)])
    pts, expected = [], []
    for axis in range(3):
        for sign in (-1, 1):
            for gap in (0.01, 0.1, 0.3):
                pts.append(c + sign * (radii[axis] + gap) * rot[:, axis])
                expected.append(gap)
            pts.append(c + sign * 0.5 * radii[axis] * rot[:, axis])  # inside along the axis
            expected.append(-0.5 * radii[axis])
    got = scene.sdf(torch.tensor(np.array(pts), dtype=torch.float32), cull=False)
    np.testing.assert_allclose(got.numpy(), expected, atol=5e-6)


def test_scene_is_cut_by_its_bounding_ball():
    scene = Scene([Primitive("ball", 1, "ellipsoid", radii=[0.2, 0.2, 0.2])], bound_radius=1.0)
    far = torch.tensor([[0.0, 0.0, 3.0], [2.0, 0.0, 0.0]])
    np.testing.assert_allclose(scene.sdf(far, cull=False).numpy(), [2.8, 1.8], atol=1e-6)
    big = Scene([Primitive("big", 1, "ellipsoid", radii=[5.0, 5.0, 5.0])], bound_radius=1.0)
    np.testing.assert_allclose(big.sdf(torch.tensor([[0.0, 0.0, 0.5]]), cull=False).numpy(), [-0.5], atol=1e-6)


def test_nearest_member_gives_the_label():
    a = Primitive("a", int(SOF.HAIR), "ellipsoid", centre=[-0.5, 0, 0], radii=[0.2] * 3)
    b = Primitive("b", int(SOF.CLOTH), "capsule", a=[0.4, -0.2, 0], b=[0.4, 0.2, 0], radius=0.1)
    scene = Scene([a, b])
    s = scene.evaluate(torch.tensor([[-0.6, 0.0, 0.0], [0.6, 0.0, 0.0], [0.4, 0.5, 0.0]]), cull=False)
    assert s.label.tolist() == [int(SOF.HAIR), int(SOF.CLOTH), int(SOF.CLOTH)]
    np.testing.assert_allclose(s.sdf.numpy(), [-0.1, 0.1, 0.2], atol=1e-6)  # capsule exact too
    assert [scene.member_names[m] for m in s.member.tolist()] == ["a", "b", "b"]


def test_blend_group_with_mixed_labels_raises():
    a = Primitive("a", int(SOF.SKIN), "ellipsoid", radii=[0.3] * 3, blend="g")
    b = Primitive("b", int(SOF.HAIR), "ellipsoid", centre=[0.3, 0, 0], radii=[0.3] * 3, blend="g")
    with pytest.raises(ValueError, match="blend group"):
        Scene([a, b])
    # the same labels blend into one member
    b.label = int(SOF.SKIN)
    assert Scene([a, b]).num_members == 1


def test_scene_rejects_empty_and_unknown_kinds():
    with pytest.raises(ValueError, match="primitives"):
        Scene([])
    with pytest.raises(ValueError, match="cube"):
        Scene([Primitive("x", 1, "cube")])


# ------------------------------------------------------------------------------------------
# rendering: exact answers for a sphere
# ------------------------------------------------------------------------------------------

def _analytic_sphere(cam: Camera, c: np.ndarray, r: float):
    """Per pixel (H, W): hit, depth along the camera forward axis, cos of the incidence angle and
    the ray/sphere clearance, from the camera matrices alone (float64, pixel centres)."""
    K = cam.intrinsics[0].double().numpy()
    c2w = cam.cam2world[0].double().numpy()
    R, pos = c2w[:3, :3], c2w[:3, 3]
    H, Wd = cam.height, cam.width
    jj, ii = np.meshgrid(np.arange(Wd) + 0.5, np.arange(H) + 0.5)
    x = (jj - K[0, 2]) / K[0, 0]
    y = (ii - K[1, 2]) / K[1, 1]
    if cam.orthographic:
        o = pos + x[..., None] * R[:, 0] + y[..., None] * R[:, 1]
        d = np.broadcast_to(R[:, 2], o.shape)
    else:
        v = np.stack([x, y, np.ones_like(x)], -1) @ R.T
        d = v / np.linalg.norm(v, axis=-1, keepdims=True)
        o = np.broadcast_to(pos, d.shape)
    oc = o - c
    b = (oc * d).sum(-1)
    disc = b * b - ((oc * oc).sum(-1) - r * r)
    hit = disc > 0
    t = -b - np.sqrt(np.maximum(disc, 0))
    depth = t * (d @ R[:, 2])
    normal = (o + d * t[..., None] - c) / r
    cos = -(normal * d).sum(-1)
    clearance = np.sqrt(np.maximum((oc * oc).sum(-1) - b * b, 0)) - r
    return hit, depth, cos, clearance


@pytest.mark.parametrize("fov", [None, 30.0], ids=["orthographic", "perspective"])
def test_sphere_render_has_exact_depth_and_disc(fov):
    c = np.array([0.1, 0.2, -0.05])
    r = 0.6
    scene = Scene([Primitive("ball", int(SOF.HAT), "ellipsoid", centre=c.tolist(), radii=[r] * 3)])
    cam = full_cam(48, yaw=10.0, pitch=-5.0, fov=fov)
    out = render_segmap(scene, cam)
    hit, depth, cos, clearance = _analytic_sphere(cam, c, r)
    mask = out.mask[0].numpy()
    assert hit.sum() > 150
    # The mask is the analytic disc, except for near-tangent rays: the tracer stops at
    # |sdf| < eps = 5e-4, or < 20 eps = 1e-2 when a grazing ray runs out of steps, so a ray
    # passing within 1e-2 of the silhouette may count as a hit.
    clear = (clearance < -1e-3) | (clearance > 1e-2)
    assert np.array_equal(mask[clear], hit[clear]), \
        f"{int((mask != hit)[clear].sum())} pixels differ from the analytic disc"
    unsure = ~clear
    assert (mask != hit).sum() <= 4, f"{int((mask != hit).sum())} of {int(unsure.sum())} near-tangent pixels differ"
    lab = out.labels[0].numpy()
    assert (lab[mask] == int(SOF.HAT)).all() and (lab[~mask] == int(SOF.BACKGROUND)).all()
    got = out.depth[0].numpy()
    assert (got[~mask] == 0).all()
    both = hit & mask
    err = np.abs(got - depth)
    # converged rays stop within eps of the surface: along the ray that is eps / cos
    steep = both & (clearance < -1e-2)
    assert (err * cos)[steep].max() <= 1e-3, f"max err * cos {(err * cos)[steep].max():.3g}"
    facing = both & (cos > 0.7)
    assert facing.sum() > 100
    assert err[facing].max() <= 1e-3, f"max depth error {err[facing].max():.3g} on surfaces facing the camera"
    # every hit point lies on the sphere (within the tracer's tolerance)
    dist = np.abs(np.linalg.norm(out.points[0].numpy()[mask] - c, axis=-1) - r)
    assert dist.max() <= 1e-2 and (dist <= 5e-4 + 1e-6).mean() > 0.97, f"max {dist.max():.3g}"


def test_render_input_checks():
    head = build_head(default_attributes())
    with pytest.raises(TypeError, match="head"):
        render_segmap("head", full_cam(8))
    with pytest.raises(TypeError, match="camera"):
        render_segmap(head, "camera")
    for bad in (0, 9, True, 2.0):
        with pytest.raises(ValueError, match="supersample"):
            render_segmap(head, full_cam(8), supersample=bad)


# ------------------------------------------------------------------------------------------
# left / right and mirror symmetry
# ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def frontal_default():
    return render_labels(build_head(default_attributes()), face_cam(64))[0]


@pytest.mark.parametrize("part", ["eye", "brow", "ear", "nose"])
def test_subject_left_is_image_right_in_a_frontal_view(frontal_default, part):
    centre = frontal_default.shape[1] / 2
    left, right = SOF[f"L_{part.upper()}"], SOF[f"R_{part.upper()}"]
    assert mean_col(frontal_default, left) > centre, f"{left.name} not on the image's right"
    assert mean_col(frontal_default, right) < centre, f"{right.name} not on the image's left"


def test_nose_is_split_at_its_median_plane():
    lab = render_labels(build_head(default_attributes()), closeup(0.36, 0.45, 48))[0]
    centre = lab.shape[1] / 2
    r_cols = torch.nonzero(lab == int(SOF.R_NOSE))[:, 1].double() + 0.5
    l_cols = torch.nonzero(lab == int(SOF.L_NOSE))[:, 1].double() + 0.5
    assert r_cols.numel() > 20 and l_cols.numel() > 20
    assert r_cols.max() <= centre, f"r_nose pixel at column centre {r_cols.max()} > {centre}"
    assert l_cols.min() >= centre, f"l_nose pixel at column centre {l_cols.min()} < {centre}"
    # the halves meet: the nose covers both columns next to the centre line
    assert r_cols.max() == centre - 0.5 and l_cols.min() == centre + 0.5


@pytest.fixture(scope="module")
def asym():
    return asymmetric_head()


def test_asymmetric_head_is_really_asymmetric(asym):
    a = render_labels(asym, face_cam(64, yaw=20.0, pitch=5.0))
    b = flip_horizontal(render_labels(asym, face_cam(64, yaw=-20.0, pitch=5.0)))
    assert (a != b).float().mean() > 0.02, "the test head is (nearly) symmetric: mirror tests would be vacuous"


def test_mirrored_head_by_mirrored_camera_is_the_flipped_render(asym):
    yaw, pitch = 20.0, 5.0
    original = render_labels(asym, face_cam(64, yaw=yaw, pitch=pitch))
    mirrored = render_labels(asym.mirrored(), face_cam(64, yaw=-yaw, pitch=pitch))
    agree = (mirrored == flip_horizontal(original)).float().mean().item()
    assert agree >= 0.995, f"only {agree:.4f} of pixels agree"
    assert asym.mirrored().mirrored_copy and not asym.mirrored().mirrored().mirrored_copy


@pytest.mark.parametrize("yaw", [-25.0, 12.0])
def test_render_equals_flipped_render_of_mirror_twin(asym, yaw):
    a = render_labels(asym, face_cam(64, yaw=yaw))
    b = flip_horizontal(render_labels(asym.mirrored(), face_cam(64, yaw=-yaw)))
    agree = (a == b).float().mean().item()
    assert agree >= 0.995, f"only {agree:.4f} of pixels agree at yaw {yaw}"


def test_mirrored_swaps_labels_and_reflects_geometry(asym):
    m = asym.mirrored()
    by_name = {p.name: p for p in m.scene.primitives}
    assert by_name["l_eye"].label == int(SOF.R_EYE) and by_name["r_eye"].label == int(SOF.L_EYE)
    assert by_name["lock"].centre[0] == pytest.approx(-0.45)
    assert by_name["lock"].label == int(SOF.HAIR)
    # the mirror twin's distance at (x, y, z) is the original's at (-x, y, z)
    g = torch.Generator().manual_seed(1)
    p = (torch.rand(2000, 3, generator=g) * 2 - 1) * 1.2
    q = p * torch.tensor([-1.0, 1.0, 1.0])
    np.testing.assert_allclose(m.scene.sdf(p, cull=False).numpy(), asym.scene.sdf(q, cull=False).numpy(),
                               atol=1e-5)


# ------------------------------------------------------------------------------------------
# classes and attribute effects
# ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def scans_dir(tmp_path_factory):
    """A small default dataset, shared by the class-coverage and layout tests."""
    out = tmp_path_factory.mktemp("scans") / "ds"
    write_scans(out, instances=12, views=4, size=96, seed=0, workers=1, progress=False)
    return out


@pytest.mark.slow
def test_all_sof20_classes_occur_in_a_small_default_dataset(scans_dir):
    counts = np.zeros(L.NUM_SOF_CLASSES, dtype=np.int64)
    for f in sorted(scans_dir.glob("*/seg_??.png")):
        counts += np.bincount(np.asarray(Image.open(f)).ravel(), minlength=L.NUM_SOF_CLASSES)[:L.NUM_SOF_CLASSES]
    missing = [SOF(i).name for i in range(L.NUM_SOF_CLASSES) if counts[i] == 0]
    assert not missing, f"classes never drawn: {missing}"


def test_smile_raises_the_mouth_corners_and_widens_the_mouth():
    cam = closeup(0.13, 0.5, 48)
    stats = {}
    for smile in (0.0, 1.0):
        lab = render_labels(build_head(default_attributes(smile=smile)), cam)[0]
        lips = (lab == int(SOF.U_LIP)) | (lab == int(SOF.L_LIP)) | (lab == int(SOF.MOUTH))
        rows, cols = torch.nonzero(lips, as_tuple=True)
        off = (cols.double() + 0.5 - lab.shape[1] / 2).abs()
        outer = off > 0.7 * off.max()
        inner = off < 0.2 * off.max()
        stats[smile] = dict(area=int(lips.sum()), width=int(cols.max() - cols.min() + 1),
                            lift=float(rows[inner].double().mean() - rows[outer].double().mean()))
    s0, s1 = stats[0.0], stats[1.0]
    assert s1["lift"] > s0["lift"] + 2.0, f"corners not raised: {stats}"
    assert s1["width"] > s0["width"] and s1["area"] > s0["area"], stats


def test_mouth_opening_reveals_the_inner_mouth():
    cam = closeup(0.13, 0.5, 48)
    closed = count(render_labels(build_head(default_attributes(mouth_opening=0.0)), cam), SOF.MOUTH)
    opened = count(render_labels(build_head(default_attributes(mouth_opening=1.0)), cam), SOF.MOUTH)
    assert closed < 0.01 * 48 * 48, f"closed mouth shows {closed} MOUTH pixels"
    assert opened > 4 * max(closed, 1) and opened > 50, (closed, opened)
    face = face_cam(64)
    assert count(render_labels(build_head(default_attributes(mouth_opening=0.0)), face), SOF.MOUTH) == 0


def test_hair_length_adds_hair_and_hides_ears():
    cam = face_cam(64)
    short = render_labels(build_head(default_attributes(hair_length=0.0)), cam)
    long = render_labels(build_head(default_attributes(hair_length=1.0)), cam)
    assert count(long, SOF.HAIR) > 1.4 * count(short, SOF.HAIR), (count(short, SOF.HAIR), count(long, SOF.HAIR))
    ears_short, ears_long = count(short, SOF.L_EAR, SOF.R_EAR), count(long, SOF.L_EAR, SOF.R_EAR)
    assert ears_short > 10 and ears_long < 0.6 * ears_short, (ears_short, ears_long)


@pytest.mark.parametrize("name,label,cam", [
    ("glasses", SOF.EYE_G, "face"), ("hat", SOF.HAT, "face"), ("earrings", SOF.EAR_R, "face"),
    ("necklace", SOF.NECK_L, "full"), ("bangs", SOF.HAIR, "face")])
def test_accessories_appear_only_when_set(name, label, cam):
    camera = face_cam(64) if cam == "face" else full_cam(64)
    off = count(render_labels(build_head(default_attributes(**{name: 0.0})), camera), label)
    on = count(render_labels(build_head(default_attributes(**{name: 1.0})), camera), label)
    if name == "bangs":  # hair is there anyway; a fringe adds to it
        assert on > off + 20, (off, on)
    else:
        assert off == 0 and on > 0, (off, on)


# ------------------------------------------------------------------------------------------
# supersampling and depth
# ------------------------------------------------------------------------------------------

def test_supersampled_render_shape_labels_and_depth():
    head = build_head(sample_attributes(instance_rng(0, 5)))
    cam = Camera.from_orbit(torch.tensor([0.0, 25.0]), torch.tensor([0.0, -8.0]), image_size=(40, 32))
    plain = render_segmap(head, cam)
    ss = render_segmap(head, cam, supersample=3)
    assert ss.labels.shape == (2, 40, 32) and ss.depth.shape == (2, 40, 32) and ss.mask.shape == (2, 40, 32)
    assert ss.labels.dtype == torch.int64 and ss.depth.dtype == torch.float32
    assert ss.points is None and ss.member is None
    agree = (ss.labels == plain.labels).float().mean().item()
    assert agree > 0.9, f"supersampled labels agree with the plain render on only {agree:.3f}"
    for r in (plain, ss):
        bg = r.labels == int(SOF.BACKGROUND)
        assert torch.equal(r.mask, ~bg)
        assert (r.depth[bg] == 0).all(), "depth not exactly 0 on background"
        assert (r.depth[~bg] > 0).all(), "depth not positive on hits"
    # orthographic at radius 4.5: the bust lies within the 1.5-ball, so depth is in [3, 6]
    assert plain.depth[plain.mask].min() > 3.0 and plain.depth[plain.mask].max() < 6.0
    assert plain.points.shape == (2, 40, 32, 3) and plain.member.shape == (2, 40, 32)
    assert (plain.member[~plain.mask] == -1).all() and (plain.member[plain.mask] >= 0).all()


# ------------------------------------------------------------------------------------------
# photos
# ------------------------------------------------------------------------------------------

PS = 48  # photo size in the photo tests


@pytest.fixture(scope="module")
def photo_setup():
    head = build_head(sample_attributes(instance_rng(0, 1)))
    cam = Camera.from_orbit(torch.tensor([0.0, 25.0]), image_size=PS)
    style = sample_style(instance_rng(0, 1, 2))
    return head, cam, style, render_photo(head, cam, style)


def test_photo_types_shapes_and_determinism(photo_setup):
    head, cam, style, photo = photo_setup
    assert isinstance(photo, Photo)
    assert photo.images.dtype == np.uint8 and photo.images.shape == (2, PS, PS, 3)
    assert photo.segmap.labels.shape == (2, PS, PS)
    again = render_photo(head, cam, style)
    assert np.array_equal(photo.images, again.images)
    assert torch.equal(photo.segmap.labels, again.segmap.labels)


def test_two_styles_give_different_photos(photo_setup):
    head, cam, style, photo = photo_setup
    other = sample_style(instance_rng(0, 2, 2))
    assert other != style
    img2 = render_photo(head, cam, other).images
    hits = photo.segmap.mask.numpy()
    diff = np.abs(photo.images.astype(int) - img2.astype(int))
    assert diff[hits].mean() > 5, "two styles give near-identical heads"
    assert diff[~hits].mean() > 5, "two styles give near-identical backgrounds"


def test_photo_background_is_a_vertical_gradient(photo_setup):
    head, cam, style, photo = photo_setup
    s = 2  # render_photo's default supersampling
    big = render_segmap(head, cam.resized((s * PS, s * PS))).mask
    pure_bg = ~big.view(2, PS, s, PS, s).any(4).any(2)  # every sub-sample missed
    img = photo.images.astype(float)
    top, bottom = np.array(style.background_top), np.array(style.background_bottom)
    rows_seen = []
    for b in range(2):
        for i in range(PS):
            cols = pure_bg[b, i].numpy()
            if cols.sum() < 2:
                continue
            px = img[b, i, cols]
            assert np.ptp(px, axis=0).max() <= 1, f"row {i}: background not constant along the row"
            rows_seen.append((i, px.mean(0)))
    assert len(rows_seen) > 40
    i = np.array([r for r, _ in rows_seen], float)
    col = np.stack([c for _, c in rows_seen])
    # linear in the row, from ~top (row 0) to ~bottom (last row)
    for ch in range(3):
        fit = np.polyfit(i, col[:, ch], 1)
        assert np.abs(np.polyval(fit, i) - col[:, ch]).max() <= 1.0, f"channel {ch} not linear in the row"
        span = abs(bottom[ch] - top[ch])
        assert abs(np.polyval(fit, 0.0) - top[ch]) <= 0.05 * span + 1.5
        assert abs(np.polyval(fit, PS - 1.0) - bottom[ch]) <= 0.05 * span + 1.5


def test_photo_hits_are_shaded(photo_setup):
    head, cam, style, photo = photo_setup
    lab = photo.segmap.labels.numpy()
    is_skin = lab == int(SOF.SKIN)
    inner = is_skin.copy()  # skin pixels whose 3 x 3 neighbourhood is skin (no anti-aliased edges)
    for di in (-1, 0, 1):
        for dj in (-1, 0, 1):
            inner[:, 1:-1, 1:-1] &= is_skin[:, 1 + di:lab.shape[1] - 1 + di, 1 + dj:lab.shape[2] - 1 + dj]
    inner[:, [0, -1], :] = False
    inner[:, :, [0, -1]] = False
    skin = photo.images[inner].astype(float)
    assert len(skin) > 20
    assert skin.std(0).max() > 3, "skin is flat: no shading"
    assert len({tuple(p) for p in skin.astype(int)}) > 10
    # skin is darker than or equal to its base colour times full light, and never the background
    assert (skin <= np.array(style.skin) + 1.5).all()


def test_photo_input_checks(photo_setup):
    head, cam, style, _ = photo_setup
    with pytest.raises(TypeError, match="head"):
        render_photo(head.scene, cam, style)
    with pytest.raises(TypeError, match="style"):
        render_photo(head, cam, {"skin": (1, 2, 3)})
    with pytest.raises(ValueError, match="supersample"):
        render_photo(head, cam, style, supersample=0)
    with pytest.raises(TypeError, match="rng"):
        sample_style(3)
    assert isinstance(sample_style(np.random.default_rng(0)), TextureStyle)


# ------------------------------------------------------------------------------------------
# writers
# ------------------------------------------------------------------------------------------

def tree_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def no_leftovers(parent: Path) -> list[str]:
    return [p.name for p in parent.iterdir() if ".partial-" in p.name or ".old-" in p.name]


def test_write_scans_layout(scans_dir):
    index = json.loads((scans_dir / "index.json").read_text())
    for key, value in dict(format="sofgan-lab/sof-scans", seed=0, instances=12, views=4, size=96,
                           label_set="sof20", camera="orthographic", framing="portrait", supersample=1).items():
        assert index[key] == value, f"index[{key!r}] = {index.get(key)!r}"
    assert index["format_version"] == W.FORMAT_VERSION and index["generator"].startswith("sofgan-lab ")
    names = [f"{i:04d}" for i in range(12)]
    assert index["names"] == names
    assert sorted(p.name for p in scans_dir.iterdir() if p.is_dir()) == names
    expected_files = {f"{k}_{v:02d}.png" for k in ("seg", "seg_vis") for v in range(4)} | \
        {"cam2world.npy", "intrinsic.npy", "attributes.json"}
    for name in names[:3]:
        d = scans_dir / name
        assert {p.name for p in d.iterdir()} == expected_files
        for v in range(4):
            seg = Image.open(d / f"seg_{v:02d}.png")
            vis = Image.open(d / f"seg_vis_{v:02d}.png")
            assert seg.mode == "L" and seg.size == (96, 96)
            assert vis.mode == "RGB" and vis.size == (96, 96)
            lab = np.asarray(seg)
            assert lab.max() < L.NUM_SOF_CLASSES and (lab > 0).any()
            assert np.array_equal(L.decolorize(np.asarray(vis)), lab)
        c2w = np.load(d / "cam2world.npy")
        K = np.load(d / "intrinsic.npy")
        assert c2w.shape == (4, 4, 4) and c2w.dtype == np.float32
        assert K.shape == (4, 3, 3) and K.dtype == np.float32
        R = c2w[:, :3, :3].astype(np.float64)
        np.testing.assert_allclose(R.transpose(0, 2, 1) @ R, np.broadcast_to(np.eye(3), R.shape), atol=1e-5)
        np.testing.assert_allclose(np.linalg.det(R), 1.0, atol=1e-5)
        np.testing.assert_allclose(c2w[:, 3], np.broadcast_to([0, 0, 0, 1], (4, 4)))
        # the release's sampler poses, portrait framing: orthographic at radius 4.5 around
        # PORTRAIT_TARGET, PORTRAIT_ZOOM x 36 px/unit at 128 px
        np.testing.assert_allclose(np.linalg.norm(c2w[:, :3, 3] - np.array(PORTRAIT_TARGET), axis=1), 4.5, atol=1e-4)
        np.testing.assert_allclose(K[:, 0, 0], PORTRAIT_ZOOM * 36.0 * 96 / 128, rtol=1e-6)
        np.testing.assert_allclose(K[:, :2, 2], 48.0, rtol=1e-6)
        attrs = json.loads((d / "attributes.json").read_text())
        assert set(attrs) == set(ATTRIBUTE_NAMES)
        assert attrs == sample_attributes(instance_rng(0, int(name)))
        # the stored segmap is the render of the stored attributes at the stored cameras
        cam = Camera(cam2world=torch.from_numpy(c2w), intrinsics=torch.from_numpy(K), image_size=96,
                     orthographic=True)
        lab0 = render_labels(build_head(attrs), cam[0:1])[0].numpy()
        assert np.array_equal(lab0, np.asarray(Image.open(d / "seg_00.png")))
        break  # one instance rendered again is enough; the layout is checked above


def test_write_scans_is_deterministic_and_seeded(tmp_path):
    kw = dict(instances=3, views=2, size=32, progress=False)
    a = tree_bytes(write_scans(tmp_path / "a", seed=5, workers=1, **kw))
    b = tree_bytes(write_scans(tmp_path / "b", seed=5, workers=1, **kw))
    assert a == b, "same seed, different bytes"
    c = tree_bytes(write_scans(tmp_path / "c", seed=5, workers=2, **kw))
    assert a == c, "workers=2 differs from workers=1"
    d = tree_bytes(write_scans(tmp_path / "d", seed=6, workers=1, **kw))
    assert set(d) == set(a)
    differing = [k for k in a if a[k] != d[k]]
    assert any(k.endswith("seg_00.png") for k in differing) and "0000/attributes.json" in differing
    assert no_leftovers(tmp_path) == []


def test_write_scans_leaves_the_callers_torch_threads_alone(tmp_path):
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        write_scans(tmp_path / "t", instances=1, views=1, size=16, workers=1, progress=False)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_instances_are_a_prefix_of_a_bigger_dataset(tmp_path, scans_dir):
    small = write_scans(tmp_path / "small", instances=2, views=4, size=96, seed=0, workers=1, progress=False)
    for name in ("0000", "0001"):
        assert tree_bytes(small / name) == tree_bytes(scans_dir / name), f"instance {name} changed with the count"


def test_non_empty_out_needs_overwrite(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    before = tree_bytes(out)
    with pytest.raises(ValueError) as e:
        write_scans(out, instances=1, views=1, size=16, workers=1, progress=False)
    assert str(e.value).startswith("out:") and "overwrite" in str(e.value)
    assert tree_bytes(out) == before
    assert no_leftovers(tmp_path) == []
    with pytest.raises(ValueError, match="^out:"):
        write_photos(out, count=1, size=16, workers=1, progress=False)
    assert tree_bytes(out) == before
    # overwrite replaces the folder's content
    write_scans(out, instances=1, views=1, size=16, workers=1, overwrite=True, progress=False)
    assert not (out / "keep.txt").exists()
    assert (out / "index.json").is_file() and (out / "0000" / "seg_00.png").is_file()
    assert no_leftovers(tmp_path) == []
    # an empty folder is fine without overwrite; a file in the way is not
    empty = tmp_path / "empty"
    empty.mkdir()
    write_scans(empty, instances=1, views=1, size=16, workers=1, progress=False)
    assert (empty / "index.json").is_file()
    (tmp_path / "afile").write_text("x")
    with pytest.raises(ValueError, match="^out:"):
        write_scans(tmp_path / "afile", instances=1, views=1, size=16, workers=1, overwrite=True, progress=False)


def _failing_png(monkeypatch, fail_at=3):
    real = W._png
    calls = {"n": 0}

    def png(path, array):
        calls["n"] += 1
        if calls["n"] == fail_at:
            raise OSError("disk full (simulated)")
        real(path, array)

    monkeypatch.setattr(W, "_png", png)
    return calls


def test_interrupted_write_leaves_nothing_behind(tmp_path, monkeypatch):
    calls = _failing_png(monkeypatch)
    out = tmp_path / "ds"
    with pytest.raises(OSError, match="simulated"):
        write_scans(out, instances=3, views=2, size=16, workers=1, progress=False)
    assert calls["n"] == 3
    assert not out.exists()
    assert list(tmp_path.iterdir()) == [], f"leftovers: {[p.name for p in tmp_path.iterdir()]}"


def test_interrupted_overwrite_keeps_the_old_dataset(tmp_path, monkeypatch):
    out = write_scans(tmp_path / "ds", instances=1, views=1, size=16, workers=1, progress=False)
    before = tree_bytes(out)
    _failing_png(monkeypatch, fail_at=2)
    with pytest.raises(OSError):
        write_scans(out, instances=2, views=2, size=16, seed=3, workers=1, overwrite=True, progress=False)
    assert tree_bytes(out) == before
    assert no_leftovers(tmp_path) == []


def test_interrupted_photos_leave_nothing_behind(tmp_path, monkeypatch):
    _failing_png(monkeypatch, fail_at=2)
    with pytest.raises(OSError):
        write_photos(tmp_path / "ph", count=3, size=16, workers=1, progress=False)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("with_segmaps", [False, True])
def test_write_photos_layout(tmp_path, with_segmaps):
    out = write_photos(tmp_path / "ph", count=2, size=32, seed=4, with_segmaps=with_segmaps, workers=1,
                       progress=False)
    top = {p.name for p in out.iterdir()}
    assert top == {"index.json", "metadata.jsonl", "images"} | ({"segmaps", "segmaps_vis"} if with_segmaps else set())
    index = json.loads((out / "index.json").read_text())
    assert index["format"] == "sofgan-lab/photos" and index["count"] == 2 and index["size"] == 32
    assert index["with_segmaps"] is with_segmaps and index["seed"] == 4 and index["label_set"] == "sof20"
    assert sorted(p.name for p in (out / "images").iterdir()) == ["00000.png", "00001.png"]
    metas = [json.loads(line) for line in (out / "metadata.jsonl").read_text().splitlines()]
    assert [m["index"] for m in metas] == [0, 1]
    for i, m in enumerate(metas):
        assert m["attributes"] == sample_attributes(instance_rng(4, i))
        assert set(m["style"]) == set(TextureStyle.__dataclass_fields__)
        assert np.asarray(m["cam2world"]).shape == (4, 4) and np.asarray(m["intrinsics"]).shape == (3, 3)
        img = Image.open(out / "images" / f"{i:05d}.png")
        assert img.mode == "RGB" and img.size == (32, 32)
        if with_segmaps:
            seg = Image.open(out / "segmaps" / f"{i:05d}.png")
            assert seg.mode == "L" and seg.size == (32, 32)
            lab = np.asarray(seg)
            assert lab.max() < L.NUM_SOF_CLASSES
            vis = np.asarray(Image.open(out / "segmaps_vis" / f"{i:05d}.png"))
            assert np.array_equal(L.decolorize(vis), lab)
            # background pixels of the photo are where the segmap is background (mostly)
            assert (lab > 0).mean() > 0.05


_BAD = [
    ("scans", dict(size=0), ValueError, "size"),
    ("scans", dict(size=5000), ValueError, "size"),
    ("scans", dict(size=32.0), TypeError, "size"),
    ("scans", dict(instances=-1), ValueError, "instances"),
    ("scans", dict(instances=0), ValueError, "instances"),
    ("scans", dict(views=0), ValueError, "views"),
    ("scans", dict(seed=-1), ValueError, "seed"),
    ("scans", dict(seed=1.0), TypeError, "seed"),
    ("scans", dict(camera="fisheye"), ValueError, "camera"),
    ("scans", dict(supersample=9), ValueError, "supersample"),
    ("photos", dict(count=0), ValueError, "count"),
    ("photos", dict(size=0), ValueError, "size"),
    ("photos", dict(seed=-1), ValueError, "seed"),
    ("photos", dict(camera="fisheye"), ValueError, "camera"),
    ("photos", dict(with_segmaps=1), TypeError, "with_segmaps"),
]


@pytest.mark.parametrize("kind,kwargs,exc,name", _BAD, ids=[f"{k}-{n}-{list(kw.values())[0]}" for k, kw, _, n in _BAD])
def test_writer_argument_errors_name_the_argument(tmp_path, kind, kwargs, exc, name):
    out = tmp_path / "out"
    if kind == "scans":
        args = dict(instances=1, views=1, size=16, progress=False) | kwargs
        call = lambda: write_scans(out, **args)  # noqa: E731
    else:
        args = dict(count=1, size=16, progress=False) | kwargs
        call = lambda: write_photos(out, **args)  # noqa: E731
    with pytest.raises(exc) as e:
        call()
    assert str(e.value).startswith(f"{name}:"), f"message does not name {name!r}: {e.value}"
    assert list(tmp_path.iterdir()) == [], "a failed argument check left files behind"


def test_perspective_scans_use_the_perspective_camera(tmp_path):
    out = write_scans(tmp_path / "p", instances=1, views=2, size=32, camera="perspective", workers=1, progress=False)
    assert json.loads((out / "index.json").read_text())["camera"] == "perspective"
    K = np.load(out / "0000" / "intrinsic.npy")
    # vertical fov 43.1 degrees: fy = (H / 2) / tan(fov / 2), times the portrait framing's zoom
    np.testing.assert_allclose(K[:, 1, 1], PORTRAIT_ZOOM * 16.0 / math.tan(math.radians(43.1 / 2)), rtol=1e-5)
    assert (np.asarray(Image.open(out / "0000" / "seg_00.png")) > 0).any()


def test_official_framing_is_the_release_sampler_and_poses_do_not_depend_on_framing(tmp_path):
    kw = dict(instances=1, views=3, size=32, workers=1, progress=False)
    off = write_scans(tmp_path / "o", framing="official", **kw)
    por = write_scans(tmp_path / "p", **kw)
    assert json.loads((off / "index.json").read_text())["framing"] == "official"
    c_off, c_por = np.load(off / "0000" / "cam2world.npy"), np.load(por / "0000" / "cam2world.npy")
    np.testing.assert_allclose(np.linalg.norm(c_off[:, :3, 3] - [0, 0.1, 0], axis=1), 4.5, atol=1e-4)
    np.testing.assert_allclose(np.load(off / "0000" / "intrinsic.npy")[:, 0, 0], 36.0 * 32 / 128, rtol=1e-6)
    # the same view directions, only the look-at point and the scale differ
    np.testing.assert_allclose(c_off[:, :3, :3], c_por[:, :3, :3], atol=1e-6)
    np.testing.assert_allclose(np.load(por / "0000" / "intrinsic.npy")[:, 0, 0] / (36.0 * 32 / 128), PORTRAIT_ZOOM,
                               rtol=1e-6)
    with pytest.raises(ValueError, match="^framing:"):
        write_scans(tmp_path / "x", framing="closeup", **kw)
    with pytest.raises(ValueError, match="^framing:"):
        write_photos(tmp_path / "y", count=1, size=16, framing=None, progress=False)


def test_portrait_framing_frames_a_portrait():
    """The face (SOF ids 1-10) covers >= 20 % of a frontal portrait-framed view (mean over heads),
    the head and hair are in view (nothing but background on the top row and the side columns)
    and the top of the torso (cloth) meets the bottom edge in most views (a low collar leaves the neck
    there: the torso's top lies 2 px below the frame); the official framing shows the head small."""
    from sofgan_lab.cameras import framing

    face_ids = list(range(int(L.SOF.SKIN), int(L.SOF.L_LIP) + 1))
    fracs, off_fracs, top, sides, cloth_bottom = [], [], [], [], []
    for i in range(12):
        head = build_head(sample_attributes(instance_rng(0, i)))
        lab = render_labels(head, Camera.from_orbit(0.0, 0.0, image_size=64, **framing("portrait")))[0].numpy()
        off = render_labels(head, Camera.from_orbit(0.0, 0.0, image_size=64, **framing("official")))[0].numpy()
        fracs.append(np.isin(lab, face_ids).mean())
        off_fracs.append(np.isin(off, face_ids).mean())
        top.append((lab[0] > 0).mean())
        sides.append((lab[:, [0, -1]] > 0).mean())
        bottom = lab[-3:]  # the bottom 5 % of the rows: neck, collar or torso, long hair; never the face
        assert not np.isin(bottom, face_ids).any(), f"head {i}: the face reaches the bottom edge"
        cloth_bottom.append((bottom == int(L.SOF.CLOTH)).any())
    assert np.mean(fracs) >= 0.20, f"face covers {np.mean(fracs):.3f} of the portrait frame"
    assert np.mean(off_fracs) < 0.08, f"official framing: face {np.mean(off_fracs):.3f}"
    assert max(top) == 0 and max(sides) == 0, f"head cut: top row {max(top):.2f}, sides {max(sides):.2f}"
    assert np.mean(cloth_bottom) >= 0.6, f"shoulders at the bottom edge in {np.mean(cloth_bottom):.0%} of views"


def test_written_dataset_gets_the_usual_permissions(tmp_path):
    import os

    umask = os.umask(0)
    os.umask(umask)
    out = write_scans(tmp_path / "d", instances=1, views=1, size=8, workers=1, progress=False)
    assert out.stat().st_mode & 0o777 == 0o777 & ~umask
