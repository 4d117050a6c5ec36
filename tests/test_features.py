"""Golden tests of the HumanML3D representation against the official files in ../shared/data."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from emomotion import features as F
from emomotion import geometry as g
from emomotion import skeleton as sk
from emomotion.errors import MotionFormatError
from tests.conftest import shared_path

# Max errors the reference code itself reaches when recomputing features from new_joints_012314.npy.
REFERENCE_TOLERANCE = {
    "root_yaw": 3.1e-4,
    "root_xz_vel": 1.4e-4,
    "root_y": 3.7e-7,
    "ric": 6.8e-3,
    "rot6d": 1.33e-2,
    "local_vel": 4.2e-4,
    "foot_contact": 0.0,
}


@pytest.fixture(scope="module")
def sample():
    d = shared_path("humanml3d-sample")
    return {
        "vecs": np.load(d / "new_joint_vecs_012314.npy"),
        "joints": np.load(d / "new_joints_012314.npy"),
        "momask": np.load(d / "momask_example_000612.npy"),
    }


def test_feature_layout_covers_263_dims():
    covered = np.zeros(sk.FEATURE_DIM, dtype=int)
    for s in F.FEATURE_GROUPS.values():
        covered[s] += 1
    assert (covered == 1).all()


def test_recover_joints_matches_official_new_joints(sample):
    joints = F.recover_joints(sample["vecs"])
    assert joints.shape == (170, 22, 3)
    np.testing.assert_allclose(joints, sample["joints"], atol=1e-4, rtol=0)


def test_recover_torch_batched_and_float32(sample):
    feats = torch.from_numpy(np.stack([sample["vecs"], sample["vecs"]]))
    joints = F.recover_joints_t(feats)
    assert joints.shape == (2, 170, 22, 3) and joints.dtype == torch.float32
    np.testing.assert_allclose(joints[1].numpy(), sample["joints"], atol=1e-4, rtol=0)


def test_recover_is_differentiable(sample):
    feats = torch.from_numpy(sample["vecs"][:20].astype(np.float64)).requires_grad_(True)
    F.recover_joints_t(feats).square().sum().backward()
    assert feats.grad is not None and torch.isfinite(feats.grad).all()
    assert feats.grad[:, F.RIC].abs().sum() > 0 and feats.grad[:, 0].abs().sum() > 0


def test_features_from_joints_match_official_within_reference_error(sample):
    feats = F.joints_to_features(sample["joints"])
    assert feats.shape == (169, 263) and feats.dtype == np.float32
    for name, sl in F.FEATURE_GROUPS.items():
        err = np.abs(feats[:, sl] - sample["vecs"][:-1, sl]).max()
        assert err <= REFERENCE_TOLERANCE[name], f"{name}: {err:.3g} > {REFERENCE_TOLERANCE[name]:.3g}"


def test_joints_features_joints_round_trip(sample):
    joints = sample["joints"]
    recovered = F.recover_joints(F.joints_to_features(joints))
    np.testing.assert_allclose(recovered, joints[:-1], atol=1e-3, rtol=0)


def test_momask_float64_round_trip(sample):
    feats = sample["momask"]
    assert feats.dtype == np.float64 and feats.shape == (199, 263)
    joints = F.recover_joints(feats)
    again = F.recover_joints(F.joints_to_features(joints))
    np.testing.assert_allclose(again, F.canonicalise(joints)[:-1], atol=1e-4, rtol=0)


def test_rotation_fk_recovers_the_same_joints(sample):
    joints = F.recover_joints_from_rot_t(torch.from_numpy(sample["vecs"].astype(np.float64))).numpy()
    np.testing.assert_allclose(joints, sample["joints"], atol=1e-4, rtol=0)


def test_processed_motion_is_canonical(sample):
    out = F.process_joints(sample["joints"])
    lengths = F.bone_lengths(out.joints)
    np.testing.assert_allclose(lengths, np.broadcast_to(sk.BONE_LENGTHS, lengths.shape), atol=1e-6)
    assert abs(out.joints[..., 1].min()) < 1e-9
    np.testing.assert_allclose(out.joints[0, 0, [0, 2]], 0.0, atol=1e-9)


def test_uniform_skeleton_rescales_bones_and_keeps_directions():
    rng = np.random.default_rng(0)
    joints = np.cumsum(rng.normal(size=(5, 22, 3)), axis=1) * 0.3
    joints[:, 0] = rng.normal(size=(5, 3))
    out = F.uniform_skeleton(joints)
    np.testing.assert_allclose(F.bone_lengths(out), np.broadcast_to(sk.BONE_LENGTHS, (5, 22)), atol=1e-9)
    parents = np.array(sk.PARENTS)
    src_dir = joints[:, 1:] - joints[:, parents[1:]]
    dst_dir = out[:, 1:] - out[:, parents[1:]]
    cos = (src_dir * dst_dir).sum(-1) / np.linalg.norm(src_dir, axis=-1) / np.linalg.norm(dst_dir, axis=-1)
    np.testing.assert_allclose(cos, 1.0, atol=1e-9)


def test_mirror_features_equals_featurising_mirrored_joints(sample):
    joints = sample["joints"].astype(np.float64)
    direct = F.features_from_canonical(F.mirror_joints(joints))
    np.testing.assert_allclose(F.mirror_features(F.features_from_canonical(joints)), direct, atol=1e-9)
    np.testing.assert_allclose(F.mirror_joints(F.mirror_joints(joints)), joints)


def test_mirror_swaps_sides():
    joints = np.zeros((3, 22, 3))
    joints[:, 1, 0] = 0.1  # l_hip on +x
    m = F.mirror_joints(joints)
    assert m[0, 2, 0] == pytest.approx(-0.1) and m[0, 1, 0] == 0


def test_yaw_crossing_180_degrees_recovers_exactly():
    # A figure spinning on the spot through +-180 deg: the yaw velocity keeps its sign throughout.
    rest = sk.target_offsets()
    base = np.zeros((22, 3))
    for child in range(1, 22):
        base[child] = base[sk.PARENTS[child]] + rest[child]
    base[:, 1] -= base[:, 1].min()
    angles = np.linspace(0, 1.5 * np.pi, 80)
    c, s = np.cos(angles), np.sin(angles)
    rot = np.stack(
        [np.stack([c, 0 * c, s], -1), np.tile([0, 1, 0], (80, 1)), np.stack([-s, 0 * c, c], -1)], 1
    )
    joints = np.einsum("tij,nj->tni", rot, base)
    feats = F.joints_to_features(joints)
    assert (np.sign(feats[1:, 0]) == np.sign(feats[1, 0])).all()  # no sign flip at +-180 deg
    np.testing.assert_allclose(F.recover_joints(feats), F.canonicalise(joints)[:-1], atol=1e-4)


@pytest.mark.parametrize(
    "bad",
    [np.zeros((10, 21, 3)), np.zeros((1, 22, 3)), np.full((4, 22, 3), np.nan), np.zeros((4, 22))],
)
def test_bad_joint_arrays_raise_typed_errors(bad):
    with pytest.raises(MotionFormatError):
        F.joints_to_features(bad)


def test_bad_feature_arrays_raise_typed_errors():
    with pytest.raises(MotionFormatError):
        F.recover_joints(np.zeros((10, 262)))
    with pytest.raises(MotionFormatError):
        F.recover_joints(np.full((3, 263), np.inf))


def test_smooth_features_low_passes_the_body_and_keeps_contacts():
    from emomotion.evaluation.metrics import jitter
    from emomotion.features import FOOT_CONTACT, recover_joints, smooth_features

    rng = np.random.default_rng(0)
    t = np.arange(80)[:, None]
    contacts = (t % 20 < 10) * np.ones((1, 4))
    ramp = np.concatenate([0.01 * t * np.ones((1, FOOT_CONTACT.start)), contacts], 1)
    assert smooth_features(ramp, 0.0) is ramp
    # a straight line is its own low-pass away from the ends; the contacts stay exactly binary
    np.testing.assert_allclose(smooth_features(ramp, 1.0)[5:-5], ramp[5:-5], atol=1e-9)
    np.testing.assert_array_equal(smooth_features(ramp, 1.0)[:, FOOT_CONTACT], contacts)
    clean = np.concatenate([0.1 * np.sin(2 * np.pi * t / 40) * np.ones((1, FOOT_CONTACT.start)), contacts], 1)
    noisy = clean + np.concatenate([rng.normal(0, 0.02, (80, FOOT_CONTACT.start)), np.zeros((80, 4))], 1)
    before, after = jitter(recover_joints(noisy)), jitter(recover_joints(smooth_features(noisy, 1.0)))
    assert after < before / 5
    with pytest.raises(ValueError, match="sigma"):
        smooth_features(ramp, -1.0)


def test_geometry_cross_is_numpy_cross_with_broadcasting():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(5, 4, 3)), rng.normal(size=(4, 3))
    np.testing.assert_array_equal(g.cross(a, b), np.cross(a, b))
    np.testing.assert_array_equal(g.cross(b[0], a), np.cross(b[0], a))
