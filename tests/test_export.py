"""SMPL-22 BVH export: rotations solved from joints read back to the same joints."""

from __future__ import annotations

import numpy as np

from emomotion import features as F
from emomotion.export.smpl_bvh import save_smpl_bvh
from emomotion.io.bvh import read_bvh
from emomotion.retarget import retarget
from tests.conftest import shared_path


def test_humanml3d_joints_round_trip_through_bvh_within_1mm(tmp_path):
    joints = np.load(shared_path("humanml3d-sample", "new_joints_012314.npy")).astype(np.float64)
    path = save_smpl_bvh(tmp_path / "clip.bvh", joints)
    motion = read_bvh(path)
    assert motion.fps == 20.0 and len(motion.names) == 22 and motion.names[0] == "Hips"
    back = retarget(motion, "smpl-bvh").joints
    assert back.shape == joints.shape
    assert np.abs(back - joints).max() < 1e-3


def test_retargeted_bandai_round_trips(tmp_path):
    src = shared_path("bandai", "dataset-1", "data", "dataset-1_bye_sad_001.bvh")
    joints = F.process_joints(retarget(read_bvh(src), "bandai").joints).joints
    back = retarget(read_bvh(save_smpl_bvh(tmp_path / "b.bvh", joints)), "smpl-bvh").joints
    assert np.abs(back - joints).max() < 1e-3


def test_centimetre_export(tmp_path):
    joints = np.load(shared_path("humanml3d-sample", "new_joints_012314.npy")).astype(np.float64)[:20]
    motion = read_bvh(save_smpl_bvh(tmp_path / "cm.bvh", joints, units="cm"))
    back = retarget(motion, "smpl-bvh")
    assert back.report.units == "cm"
    assert np.abs(back.joints - joints).max() < 1e-3
