"""Retargeting: joint maps by name, units, up axis, jump trimming, resampling by time."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from emomotion import features as F
from emomotion import skeleton as sk
from emomotion.errors import ConfigError, JointMapError
from emomotion.io.bvh import read_bvh
from emomotion.joint_maps import get_joint_map, guess_joint_map, joint_map_names, load_joint_map_file
from emomotion.retarget import find_jumps, resample, retarget, select_joints
from tests.conftest import shared_path


def standing_pose() -> np.ndarray:
    """A rest pose of the target skeleton (22, 3), feet on the floor, facing +Z."""
    rest = sk.target_offsets()
    pose = np.zeros((22, 3))
    for j in range(1, 22):
        pose[j] = pose[sk.PARENTS[j]] + rest[j]
    pose[:, 1] -= pose[:, 1].min()
    return pose


@dataclass
class FakeMotion:
    """A PoseSequence with SMPL-BVH joint names."""

    positions: np.ndarray
    fps: float
    names: tuple[str, ...] = ()

    def world_positions(self) -> np.ndarray:
        return self.positions


SMPL_BVH_NAMES = tuple(get_joint_map("smpl-bvh").joints[j][0][0] for j in sk.JOINT_NAMES)


def walking(frames: int, fps: float, speed: float = 1.0) -> np.ndarray:
    pose = standing_pose()
    t = np.arange(frames) / fps
    pos = np.repeat(pose[None], frames, axis=0)
    pos[:, :, 2] += speed * t[:, None]
    return pos


def test_registry_has_the_documented_maps():
    assert {"xsens", "bandai", "smpl-bvh", "mixamo", "cmu"} <= set(joint_map_names())
    assert get_joint_map("emilya") is get_joint_map("xsens")
    xs = get_joint_map("xsens").joints
    assert xs["pelvis"] == (("Hips", 1.0),) and xs["spine1"] == (("Chest", 1.0),)
    assert xs["spine2"] == (("Chest3", 1.0),) and xs["spine3"] == (("Chest4", 1.0),)
    assert xs["l_foot"] == (("LeftToe", 1.0),) and "Chest2" not in get_joint_map("xsens").source_joints
    assert get_joint_map("bandai").joints["spine2"] == (("Spine", 0.5), ("Chest", 0.5))


def test_select_joints_blends_by_weight():
    jm = get_joint_map("bandai")
    names = jm.source_joints
    pos = np.random.default_rng(0).normal(size=(4, len(names), 3))
    out = select_joints(names, pos, jm)
    i_spine, i_chest = names.index("Spine"), names.index("Chest")
    np.testing.assert_allclose(out[:, sk.JOINT_INDEX["spine2"]], 0.5 * (pos[:, i_spine] + pos[:, i_chest]))
    np.testing.assert_allclose(out[:, sk.JOINT_INDEX["spine3"]], pos[:, i_chest])


def test_missing_source_joint_is_named():
    names = tuple(n for n in SMPL_BVH_NAMES if n != "LeftForeArm")
    motion = FakeMotion(np.zeros((3, 21, 3)), 20.0, names)
    with pytest.raises(JointMapError, match="LeftForeArm"):
        retarget(motion, "smpl-bvh", source="take.bvh")
    with pytest.raises(JointMapError, match=r"take\.bvh"):
        retarget(motion, "smpl-bvh", source="take.bvh")


@pytest.mark.parametrize(("unit", "scale"), [("m", 1.0), ("cm", 100.0), ("mm", 1000.0)])
def test_units_detected_and_converted(unit, scale):
    motion = FakeMotion(walking(40, 20.0) * scale, 20.0, SMPL_BVH_NAMES)
    result = retarget(motion, "smpl-bvh")
    assert result.report.units == unit
    np.testing.assert_allclose(result.joints, walking(40, 20.0), atol=1e-9)


def test_z_up_is_rotated_to_y_up():
    pos = walking(30, 20.0)
    z_up = np.stack([pos[..., 0], -pos[..., 2], pos[..., 1]], axis=-1)  # Y-up -> Z-up
    result = retarget(FakeMotion(z_up, 20.0, SMPL_BVH_NAMES), "smpl-bvh")
    assert result.report.up == "z"
    np.testing.assert_allclose(result.joints, pos, atol=1e-9)


def test_unknown_units_take_the_scale_from_the_skeleton():
    result = retarget(FakeMotion(walking(40, 20.0) * 7.0, 20.0, SMPL_BVH_NAMES), "smpl-bvh")
    assert result.report.units == "skeleton" and "skeleton's size" in result.report.scale_from
    np.testing.assert_allclose(result.joints, walking(40, 20.0), atol=1e-9)  # the target's own leg length
    inches = retarget(FakeMotion(walking(40, 20.0) / 0.0254, 20.0, SMPL_BVH_NAMES), "smpl-bvh")
    assert inches.report.units == "in"
    with pytest.raises(ConfigError, match="--units"):
        retarget(FakeMotion(walking(40, 20.0), 20.0, SMPL_BVH_NAMES), "smpl-bvh", units="parsec")


def test_resample_by_time_not_by_striding():
    pos = walking(121, 120.0, speed=1.5)  # exactly 1 s
    out = resample(pos, 120.0, 20.0)
    assert out.shape[0] == 21
    np.testing.assert_allclose(out[:, 0, 2], 1.5 * np.arange(21) / 20.0, atol=1e-12)
    odd = resample(walking(31, 30.0), 30.0, 20.0)  # 30 fps has no integer stride to 20
    assert odd.shape[0] == 21
    np.testing.assert_allclose(np.diff(odd[:, 0, 2]), 1.0 / 20.0, atol=1e-12)


def test_bind_pose_jump_is_trimmed_and_reported():
    pos = walking(121, 120.0)
    pos[0] += np.array([0.0, -0.4, 0.3])  # a bind pose 50 cm away from frame 1
    result = retarget(FakeMotion(pos, 120.0, SMPL_BVH_NAMES), "smpl-bvh")
    assert result.report.jumps == (1,)
    assert result.report.trimmed_start == 1 and result.report.trimmed_end == 0
    assert result.report.notes and "jumps" in result.report.notes[0]
    assert len(find_jumps(result.joints, 20.0)) == 0


def test_guess_joint_map():
    assert guess_joint_map(SMPL_BVH_NAMES).name == "smpl-bvh"
    with pytest.raises(JointMapError, match="no registered joint map"):
        guess_joint_map(("A", "B"))


def write_toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rig.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_user_toml_map(tmp_path):
    lines = ['name = "mine"', 'units = "cm"', 'up = "y"', "[joints]"]
    lines += [f'{j} = "{n}"' for j, n in zip(sk.JOINT_NAMES, SMPL_BVH_NAMES, strict=True) if j != "spine2"]
    lines.append("spine2 = { Spine = 0.25, Spine2 = 0.75 }")
    jm = load_joint_map_file(write_toml(tmp_path, "\n".join(lines)))
    assert jm.name == "mine" and jm.units == "cm"
    assert jm.joints["spine2"] == (("Spine", 0.25), ("Spine2", 0.75))
    motion = FakeMotion(walking(20, 20.0) * 100, 20.0, SMPL_BVH_NAMES)
    assert retarget(motion, str(tmp_path / "rig.toml")).report.joint_map == "mine"


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("name = 'x'\n[joints]\npelvis = 'Hips'\n", "no source for SMPL joints"),
        ("[joints\n", "not a valid TOML"),
        ("name = 'x'\n", r"missing \[joints\]"),
        ("[joints]\npelvis = 3\n", "joints.pelvis"),
    ],
)
def test_bad_toml_maps_name_the_file(tmp_path, text, match):
    path = write_toml(tmp_path, text)
    with pytest.raises(JointMapError, match=match) as info:
        load_joint_map_file(path)
    assert str(path) in str(info.value)


def test_bad_weights_rejected(tmp_path):
    lines = ["[joints]"] + [f'{j} = "{n}"' for j, n in zip(sk.JOINT_NAMES, SMPL_BVH_NAMES, strict=True)]
    lines[1] = "pelvis = { Hips = 0.5 }"
    with pytest.raises(JointMapError, match="sum to 1"):
        load_joint_map_file(write_toml(tmp_path, "\n".join(lines)))


def test_unknown_map_name():
    with pytest.raises(JointMapError, match="unknown joint map"):
        get_joint_map("nope")


def test_canonical_features_of_retargeted_motion_are_clean():
    pos = walking(60, 20.0)
    out = F.process_joints(retarget(FakeMotion(pos * 100, 20.0, SMPL_BVH_NAMES), "smpl-bvh").joints)
    assert np.isfinite(out.features).all()


# ----------------------------------------------------------------------------- real files


def canonical_checks(joints: np.ndarray, name: str) -> F.ProcessedMotion:
    out = F.process_joints(joints)
    assert np.isfinite(out.features).all(), name
    lengths = F.bone_lengths(out.joints)[:, 1:]
    assert np.abs(lengths - sk.BONE_LENGTHS[1:]).max() < 1e-3, name
    feet = out.joints[:, [7, 8, 10, 11], 1]
    assert abs(feet.min()) < 0.01, name
    r_hip, l_hip, r_sdr, l_sdr = sk.FACE_JOINTS
    p = out.joints[0]
    across = (p[r_hip] - p[l_hip]) + (p[r_sdr] - p[l_sdr])
    forward = np.cross([0.0, 1.0, 0.0], across)
    forward /= np.linalg.norm(forward)
    np.testing.assert_allclose(forward, [0, 0, 1], atol=1e-6)
    assert (p[15, 1] - p[0, 1]) > 0.3, f"{name}: head not above the pelvis"
    return out


def test_xsens_sample_gives_57_frames_without_the_bind_pose_jump():
    result = retarget(read_bvh(shared_path("bvh-samples", "xsens_mvn_000001.bvh")), "xsens")
    assert 56 <= result.joints.shape[0] <= 58
    assert result.report.trimmed_start == 1 and result.report.units == "cm"
    assert len(find_jumps(result.joints, 20.0)) == 0
    canonical_checks(result.joints, "xsens")


def test_smpl_template_retargets():
    result = retarget(read_bvh(shared_path("bvh-samples", "smpl22_template_momask.bvh")), "smpl-bvh")
    assert result.report.units == "m" and result.report.up == "y"
    assert result.joints.shape[0] == 240  # 720 frames at 60 fps = 12 s
    canonical_checks(result.joints, "smpl22")


def test_every_bandai_clip_retargets_cleanly():
    files = sorted(shared_path("bandai", "dataset-1", "data").glob("*.bvh"))
    assert len(files) == 174
    for f in files:
        result = retarget(read_bvh(f), "bandai")
        assert result.report.units == "cm" and not result.report.jumps, f.name
        out = canonical_checks(result.joints, f.name)
        if "_walk_" in f.name:  # a forward walk travels forward (+Z once facing +Z)
            travel = out.joints[-1, 0] - out.joints[0, 0]
            assert travel[2] > 1.0 and travel[2] > 3 * abs(travel[0]), f.name


def test_bandai_walk_travels_about_nine_metres():
    path = shared_path("bandai", "dataset-1", "data", "dataset-1_walk_angry_001.bvh")
    joints = retarget(read_bvh(path), "bandai").joints
    travel = np.linalg.norm(joints[-1, 0, [0, 2]] - joints[0, 0, [0, 2]])
    assert 8.5 < travel < 9.5
