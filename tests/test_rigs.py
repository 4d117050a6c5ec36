"""Unseen rigs without a map: rigs made at test time from the shared BVH files (other names, units,
zero-length joints, twist and finger bones, no toes, no neck, one spine joint, Z-up, other channel
orders, 120 fps), checked against the original's joints and against what a body must look like."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest

from emomotion import features as F
from emomotion import skeleton as sk
from emomotion.cli import main
from emomotion.errors import JointMapError, RetargetError
from emomotion.io.bvh import read_bvh
from emomotion.joint_maps import get_joint_map, load_joint_map_file
from emomotion.retarget import retarget
from emomotion.rigs.names import classify
from emomotion.rigs.units import scale_from_leg
from tests.conftest import shared_path
from tests.rig_transforms import EditRig

I = sk.JOINT_INDEX
BANDAI_WALK = ("bandai", "dataset-1", "data", "dataset-1_walk_happy_001.bvh")
XSENS = ("bvh-samples", "xsens_mvn_000001.bvh")
LIMBS = [I[f"{s}_{j}"] for s in "lr" for j in ("hip", "knee", "ankle", "shoulder", "elbow", "wrist")]


def sided(pattern: dict[str, str], left: str, right: str) -> dict[str, str]:
    """Bandai's sided names -> ``pattern`` with this rig's side spellings."""
    out = {}
    for bandai, new in pattern.items():
        out[f"{bandai}_L"] = new.format(s=left)
        out[f"{bandai}_R"] = new.format(s=right)
    return out


BANDAI_PARTS = ("Shoulder", "UpperArm", "LowerArm", "Hand", "UpperLeg", "LowerLeg", "Foot", "Toes")


def vocab(centre: tuple[str, ...], parts: tuple[str, ...], left: str, right: str) -> dict[str, str]:
    names = dict(zip(("joint_Root", "Hips", "Spine", "Chest", "Neck", "Head"), centre, strict=True))
    names.update(sided(dict(zip(BANDAI_PARTS, parts, strict=True)), left, right))
    return names


VOCABULARIES = {
    "mixamo": vocab(
        ("Root", "mixamorig:Hips", "mixamorig:Spine", "mixamorig:Spine1", "mixamorig:Neck", "mixamorig:Head"),
        tuple(
            f"mixamorig:{{s}}{p}"
            for p in ("Shoulder", "Arm", "ForeArm", "Hand", "UpLeg", "Leg", "Foot", "ToeBase")
        ),
        "Left",
        "Right",
    ),
    "unreal": vocab(
        ("root", "pelvis", "spine_01", "spine_03", "neck_01", "head"),
        (
            "clavicle_{s}",
            "upperarm_{s}",
            "lowerarm_{s}",
            "hand_{s}",
            "thigh_{s}",
            "calf_{s}",
            "foot_{s}",
            "ball_{s}",
        ),
        "l",
        "r",
    ),
    "biped": vocab(
        ("Bip01", "Bip01_Pelvis", "Bip01_Spine", "Bip01_Spine1", "Bip01_Neck", "Bip01_Head"),
        tuple(
            f"Bip01_{{s}}_{p}"
            for p in ("Clavicle", "UpperArm", "Forearm", "Hand", "Thigh", "Calf", "Foot", "Toe0")
        ),
        "L",
        "R",
    ),
    "biped-spaces": vocab(  # 3ds Max writes the names with spaces
        ("Bip01", "Bip01 Pelvis", "Bip01 Spine", "Bip01 Spine1", "Bip01 Neck", "Bip01 Head"),
        tuple(
            f"Bip01 {{s}} {p}"
            for p in ("Clavicle", "UpperArm", "Forearm", "Hand", "Thigh", "Calf", "Foot", "Toe0")
        ),
        "L",
        "R",
    ),
    "blender": vocab(
        ("root", "DEF-spine", "DEF-spine.001", "DEF-spine.003", "DEF-neck", "DEF-head"),
        tuple(
            f"DEF-{p}.{{s}}"
            for p in ("shoulder", "upper_arm", "forearm", "hand", "thigh", "shin", "foot", "toe")
        ),
        "L",
        "R",
    ),
    "character-creator": vocab(
        (
            "CC_Base_BoneRoot",
            "CC_Base_Hip",
            "CC_Base_Waist",
            "CC_Base_Spine02",
            "CC_Base_NeckTwist01",
            "CC_Base_Head",
        ),
        tuple(
            f"CC_Base_{{s}}_{p}"
            for p in ("Clavicle", "Upperarm", "Forearm", "Hand", "Thigh", "Calf", "Foot", "ToeBase")
        ),
        "L",
        "R",
    ),
    "humanik-side-last": vocab(
        ("Reference", "Hips", "Spine", "Spine1", "Neck", "Head"),
        tuple(f"{p}{{s}}" for p in ("Shoulder", "Arm", "ForeArm", "Hand", "UpLeg", "Leg", "Foot", "Toe")),
        "Left",
        "Right",
    ),
    "smpl-native": vocab(
        ("root", "pelvis", "spine1", "spine3", "neck", "head"),
        tuple(f"{{s}}_{p}" for p in ("collar", "shoulder", "elbow", "wrist", "hip", "knee", "ankle", "foot")),
        "l",
        "r",
    ),
    "rokoko": vocab(
        ("Root", "Hips", "Spine1", "Spine4", "Neck", "Head"),
        tuple(f"{{s}}{p}" for p in ("Shoulder", "Arm", "ForeArm", "Hand", "Thigh", "Shin", "Foot", "Toe")),
        "Left",
        "Right",
    ),
}


@pytest.fixture(scope="module")
def bandai_rig() -> EditRig:
    return EditRig.read(shared_path(*BANDAI_WALK), slice(0, 90))


@pytest.fixture(scope="module")
def bandai_joints(bandai_rig, tmp_path_factory) -> np.ndarray:
    path = copy.deepcopy(bandai_rig).write(tmp_path_factory.mktemp("orig") / "orig.bvh")
    return retarget(read_bvh(path), "bandai").joints


def convert(rig: EditRig, path: Path):
    """Write the made rig, read it back and retarget it with no map."""
    return retarget(read_bvh(rig.write(path)))


def body_checks(joints: np.ndarray, name: str, *, toes: bool = False) -> None:
    """What the acceptance set asks of every converted file, on the canonical joints (the toes only
    where they are ours: the shared takes' own toes point down and back on some planted frames)."""
    pos = F.process_joints(joints).joints
    lowest = pos[:, [7, 8, 10, 11], 1].min(axis=1)
    assert np.median(lowest) <= 0.05 and lowest.min() >= -0.03, f"{name}: not on the floor"
    spine = pos[:, I["neck"]] - pos[:, 0]
    assert (spine[:, 1] / np.linalg.norm(spine, axis=-1)).min() > np.cos(np.radians(45)), (
        f"{name}: not upright"
    )

    def yaw(v: np.ndarray) -> np.ndarray:
        return np.arctan2(v[:, 0], v[:, 2])

    def gap(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.degrees(np.abs((a - b + np.pi) % (2 * np.pi) - np.pi))

    hips = pos[:, I["l_hip"]] - pos[:, I["r_hip"]]
    shoulders = pos[:, I["l_shoulder"]] - pos[:, I["r_shoulder"]]
    twist = float(gap(yaw(hips), yaw(shoulders)).max())
    assert twist <= 25, f"{name}: shoulders twisted {twist:.0f} degrees against the hips"
    facing = np.cross(hips, [0.0, 1.0, 0.0])  # (left - right) x up = forward
    for foot, ankle in ((I["l_foot"], I["l_ankle"]), (I["r_foot"], I["r_ankle"])) if toes else ():
        toe = pos[:, foot] - pos[:, ankle]
        planted = pos[:, ankle, 1] < pos[:, ankle, 1].min() + 0.03  # a swinging foot may point anywhere
        worst = float(gap(yaw(toe), yaw(facing))[planted].max())
        assert worst <= 50, f"{name}: toes {worst:.0f} degrees off the facing direction"
    lengths = F.bone_lengths(pos)[:, 1:]
    assert np.ptp(lengths, axis=0).max() < 1e-3, f"{name}: bone lengths change"
    assert np.linalg.norm(np.diff(pos, axis=0), axis=-1).max() <= 0.35, f"{name}: a joint jumps"


def test_names_of_common_vocabularies():
    expect = {
        "mixamorig:LeftUpLeg": ("hip", "L"),
        "mixamorig1:RightToeBase": ("toe", "R"),
        "Bip01 L Thigh": ("hip", "L"),
        "Bip01 R Toe0Nub": (None, "R"),
        "thigh_twist_01_l": (None, "L"),
        "calf_r": ("knee", "R"),
        "ball_l": ("toe", "L"),
        "upperarm_r": ("shoulder", "R"),
        "CC_Base_L_Forearm": ("elbow", "L"),
        "DEF-shin.R": ("knee", "R"),
        "lShldr": ("shoulder", "L"),
        "LHipJoint": ("hip", "L"),
        "LThumb": (None, "L"),
        "RightHandIndex1": (None, "R"),
        "HeadTop_End": (None, None),
        "Hips": ("pelvis", None),
        "spine_03": ("spine", None),
        "LeftShoulder": ("shoulder?", "L"),
        "Right_Ankle": ("ankle", "R"),
        "ThighLeft": ("hip", "L"),
        "LUArm": ("shoulder", "L"),
        "RFArm": ("elbow", "R"),
        "ShoulderLeft": ("shoulder?", "L"),
        "Ab": ("spine", None),
        "LowerBack": ("spine", None),
        "lShin": ("knee", "L"),  # Daz (CMU's Daz-friendly conversion)
        "rButtock": (None, "R"),
        "abdomen": ("spine", None),
        "hip": ("pelvis", None),
        "CC_Base_NeckTwist01": ("neck", None),
        "l_ankle": ("ankle", "L"),  # SMPL's own names
        "l_foot": ("ankle", "L"),  # (the deeper of two ankles becomes the toe)
    }
    got = {n: (classify(n).role, classify(n).side) for n in expect}
    assert got == expect
    assert classify("LHipJoint").score < classify("LeftUpLeg").score


@pytest.mark.parametrize("name", sorted(VOCABULARIES))
def test_renamed_rigs_map_by_name(name, bandai_rig, bandai_joints, tmp_path):
    rig = copy.deepcopy(bandai_rig).rename(VOCABULARIES[name])
    result = convert(rig, tmp_path / f"{name}.bvh")
    assert result.report.joint_map == "auto" and not result.report.mapping["synthesised"], name
    np.testing.assert_allclose(
        result.joints[:, LIMBS + [0, 10, 11, 15]], bandai_joints[:, LIMBS + [0, 10, 11, 15]], atol=1e-4
    )
    assert np.abs(result.joints - bandai_joints).max() < 0.08  # spine joints: points along the spine
    body_checks(result.joints, name)


def cmu_like(rig: EditRig) -> EditRig:
    """Bandai's motion on CMU's hierarchy: hip joints, LowerBack, Neck and shoulders sitting on their
    parents, Neck1 as the neck, fingers, no clavicle motion, CMU's own units."""
    rig.rename(VOCABULARIES["mixamo"]).rename({n: n.split(":")[-1] for n in rig.names})
    rig.rename({"Spine1": "Spine1", "Neck": "Neck1", "LeftToeBase": "LeftToeBase"})
    for side in ("Left", "Right"):
        rig.fold(f"{side}Shoulder")
        rig.insert_on("Spine1", f"{side}Shoulder", [f"{side}Arm"])
        rig.insert_on("Hips", f"{side[0]}HipJoint", [f"{side}UpLeg"])
        rig.add_children(f"{side}Hand", {f"{side}FingerBase": (2.0, 0, 0), f"{side[0]}Thumb": (1.0, 0, 1.0)})
    rig.insert_on("Hips", "LowerBack", ["Spine"])
    rig.insert_on("Spine1", "Neck", ["Neck1"])
    return rig.scale(0.01 / (0.0254 / 0.45))


def test_cmu_hierarchy_uses_the_builtin_map_and_its_own_scale(bandai_rig, bandai_joints, tmp_path):
    result = convert(cmu_like(copy.deepcopy(bandai_rig)), tmp_path / "cmu.bvh")
    report = result.report
    assert report.joint_map == "cmu" and report.units == "skeleton"
    k = float(
        np.vdot(bandai_joints[:, LIMBS], result.joints[:, LIMBS])
        / np.vdot(result.joints[:, LIMBS], result.joints[:, LIMBS])
    )
    np.testing.assert_allclose(k * result.joints[:, LIMBS], bandai_joints[:, LIMBS], atol=1e-4)
    body_checks(result.joints, "cmu")


def test_cmu_hierarchy_without_the_builtin_map(bandai_rig, tmp_path):
    """The same rig with one CMU name changed: no registered map fits, the guess must cope with the
    zero-length LowerBack, Neck and shoulders on its own."""
    rig = cmu_like(copy.deepcopy(bandai_rig)).rename({"Neck1": "UpperNeck"})
    result = convert(rig, tmp_path / "cmu_auto.bvh")
    mapping = result.report.mapping
    assert result.report.joint_map == "auto"
    assert "repaired" in {mapping["joints"][j]["how"] for j in ("l_collar", "neck", "spine1")}
    body_checks(result.joints, "cmu-auto")


@pytest.mark.parametrize(
    "edit",
    ["z_up", "channels_xyz", "twist_and_fingers", "inches", "no_toes", "no_neck_one_spine"],
)
def test_structural_edits(edit, bandai_rig, bandai_joints, tmp_path):
    rig = copy.deepcopy(bandai_rig).rename(VOCABULARIES["unreal"])
    exact = LIMBS + [0, 10, 11, 15]
    if edit == "z_up":
        rig.z_up()
    elif edit == "channels_xyz":
        rig.channel_order("XYZ")
    elif edit == "twist_and_fingers":
        for s in "lr":
            rig.split(f"calf_{s}", f"thigh_twist_01_{s}").split(f"lowerarm_{s}", f"upperarm_twist_01_{s}")
            rig.add_children(f"hand_{s}", {f"index_01_{s}": (8.0, 0, 0), f"thumb_01_{s}": (3.0, 0, 3.0)})
    elif edit == "inches":
        rig.scale(1 / 2.54)
    elif edit == "no_toes":
        rig.drop_leaf("ball_l").drop_leaf("ball_r")
        exact = LIMBS + [0, 15]
    elif edit == "no_neck_one_spine":
        rig.fold("neck_01").fold("spine_01")
        exact = LIMBS + [0, 10, 11, 15]
    result = convert(rig, tmp_path / f"{edit}.bvh")
    assert result.report.up == ("z" if edit == "z_up" else "y")
    assert result.report.units == ("in" if edit == "inches" else "cm")
    np.testing.assert_allclose(result.joints[:, exact], bandai_joints[:, exact], atol=1e-4)
    synthesised = set(result.report.mapping["synthesised"])
    if edit == "no_toes":
        assert synthesised == {"l_foot", "r_foot"}
        # the End Site the toe left behind carries the toe: the original toe, exactly
        np.testing.assert_allclose(result.joints[:, [10, 11]], bandai_joints[:, [10, 11]], atol=1e-4)
    elif edit == "no_neck_one_spine":
        assert synthesised == {"neck"}
    else:
        assert not synthesised
    body_checks(result.joints, edit)


def test_toeless_rig_without_end_sites_turns_its_feet_with_the_ankles(bandai_rig, bandai_joints, tmp_path):
    rig = copy.deepcopy(bandai_rig).rename(VOCABULARIES["unreal"]).drop_leaf("ball_l").drop_leaf("ball_r")
    rig.end_sites.pop("foot_l")
    rig.end_sites.pop("foot_r")
    result = convert(rig, tmp_path / "toeless.bvh")
    assert "l_foot" in result.report.mapping["synthesised"]
    toe = result.joints[:, [10, 11]] - result.joints[:, [7, 8]]
    true = bandai_joints[:, [10, 11]] - bandai_joints[:, [7, 8]]
    cos = (toe * true).sum(-1) / np.linalg.norm(toe, axis=-1) / np.linalg.norm(true, axis=-1)
    angle = np.degrees(np.arccos(np.clip(cos, -1, 1)))
    assert np.ptp(angle, axis=0).max() < 2  # a fixed angle to the real toe: it turns with the ankle
    body_checks(result.joints, "toeless", toes=True)


def test_foot_mapped_to_the_ankle_is_synthesised(bandai_rig, tmp_path):
    """A user map that names the ankle as the foot: the zero-length bone never sets a direction."""
    path = copy.deepcopy(bandai_rig).write(tmp_path / "orig.bvh")
    toml = tmp_path / "feet.toml"
    toml.write_text('extends = "bandai"\nname = "noteoes"\n[joints]\nl_foot = "Foot_L"\nr_foot = "Foot_R"\n')
    result = retarget(read_bvh(path), str(toml))
    assert set(result.report.mapping["synthesised"]) == {"l_foot", "r_foot"}
    body_checks(result.joints, "foot=ankle", toes=True)


def test_xsens_one_spine_no_neck_inches_120fps(tmp_path):
    """A 120-fps rig with one spine joint and no neck, in inches, starting in its bind pose."""
    rig = EditRig.read(shared_path(*XSENS))
    for joint in ("Chest2", "Chest3", "Chest4", "Neck"):
        rig.fold(joint)
    rig.rename({"Chest": "Spine"}).scale(1 / 2.54)
    result = convert(rig, tmp_path / "one_spine.bvh")
    assert result.report.joint_map == "auto" and result.report.units == "in"
    assert result.report.source_fps == 120 and result.report.bind_frames == (1, 0)
    assert set(result.report.mapping["synthesised"]) == {"neck"}
    original = retarget(read_bvh(shared_path(*XSENS)), "xsens").joints
    np.testing.assert_allclose(result.joints[:, LIMBS], original[:, LIMBS], atol=1e-4)
    body_checks(result.joints, "xsens-one-spine")


def test_rig_without_usable_names_is_mapped_from_its_rest_pose(tmp_path):
    """Xsens's rest pose (arms hanging) with every name replaced: legs end lowest, arms are the
    lateral chains, the head the highest end, left from the toes' forward direction."""
    rig = EditRig.read(shared_path(*XSENS), slice(0, 120))
    rig.rename({n: f"joint{k:02d}" for k, n in enumerate(rig.names)})
    result = convert(rig, tmp_path / "anonymous.bvh")
    assert result.report.mapping["method"] == "names and rest-pose geometry"
    original = retarget(read_bvh(shared_path(*XSENS)), "xsens").joints[: result.joints.shape[0]]
    np.testing.assert_allclose(
        result.joints[:, LIMBS + [10, 11, 13, 14]], original[:, LIMBS + [10, 11, 13, 14]], atol=1e-4
    )
    body_checks(result.joints, "anonymous")


def turn(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The rotation taking direction a onto direction b."""
    a, b = a / np.linalg.norm(a), b / np.linalg.norm(b)
    v, c = np.cross(a, b), float(a @ b)
    k = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
    return np.eye(3) + k + k @ k / (1 + c)


def test_t_pose_rig_without_names_is_mapped_from_its_rest_pose(tmp_path):
    """The same with the arms raised to a T in the rest pose (the arm span then equals the height)."""
    rig = EditRig.read(shared_path(*XSENS), slice(0, 120))
    for side in ("Left", "Right"):
        lateral = np.array([np.sign(rig.offsets[rig.i(f"{side}Shoulder")][0]), 0.0, 0.0])
        rig.rest_turn(f"{side}Shoulder", turn(rig.offsets[rig.i(f"{side}Elbow")], lateral))
    rig.rename({n: f"joint{k:02d}" for k, n in enumerate(rig.names)})
    result = convert(rig, tmp_path / "t_pose.bvh")
    original = retarget(read_bvh(shared_path(*XSENS)), "xsens").joints[: result.joints.shape[0]]
    np.testing.assert_allclose(result.joints[:, LIMBS], original[:, LIMBS], atol=1e-4)


def test_scale_from_the_leg():
    assert scale_from_leg(80.0)[1] == "cm" and scale_from_leg(33.0)[1] == "in"
    assert scale_from_leg(0.82)[1] == "m" and scale_from_leg(2.7)[1] == "ft"
    scale, unit, how = scale_from_leg(14.94)  # CMU units
    assert unit == "skeleton" and abs(scale * 14.94 - 0.816) < 0.01 and "skeleton" in how


def test_short_clip_and_wrong_frame_time_warn(bandai_rig, tmp_path):
    short = copy.deepcopy(bandai_rig)
    short.rot = [r[:20] for r in short.rot]
    short.local_pos = [p[:20] for p in short.local_pos]
    result = retarget(read_bvh(short.write(tmp_path / "short.bvh")), "bandai")
    assert any("at least 40 frames" in w for w in result.report.warnings)
    fast = copy.deepcopy(bandai_rig)
    fast.fps = 120.0  # the 30-fps walk stamped 4x too fast
    result = retarget(read_bvh(fast.write(tmp_path / "fast.bvh")), "bandai")
    assert any("Frame Time 0.00833333 s" in w for w in result.report.warnings), result.report.warnings
    assert not retarget(read_bvh(shared_path(*BANDAI_WALK)), "bandai").report.warnings


def test_unmappable_rig_names_what_is_missing(tmp_path, bandai_rig, capsys):
    rig = copy.deepcopy(bandai_rig)
    for side in "LR":  # no arms and no usable names: neither names nor geometry can place the arms
        for part in ("Hand", "LowerArm", "UpperArm", "Shoulder"):
            rig.drop_leaf(f"{part}_{side}")
    rig.rename({n: f"J{k}" for k, n in enumerate(rig.names)})
    with pytest.raises(RetargetError, match="cannot map this rig") as info:
        convert(rig, tmp_path / "anon.bvh")
    assert "anon.bvh" in str(info.value) and "L shoulder" in str(info.value)
    out = tmp_path / "anon.npy"
    assert main(["convert", str(tmp_path / "anon.bvh"), "--to", "joints", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "cannot map this rig" in err and not out.exists()


def test_toml_extends_and_clear_weight_errors(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text('extends = "cmu"\n[joints]\nhead = "Neck1"\n')
    jm = load_joint_map_file(path)
    assert (
        jm.joints["head"] == (("Neck1", 1.0),)
        and jm.joints["l_knee"] == get_joint_map("cmu").joints["l_knee"]
    )
    path.write_text('extends = "cmu"\nunits = "in"\n[joints]\nspine2 = { Spine = -0.5, Spine1 = 1.5 }\n')
    with pytest.raises(JointMapError, match=r"must not be negative: Spine = -0.5"):
        load_joint_map_file(path)
    path.write_text('extends = "cmu"\nunits = 0.0254\n')
    assert load_joint_map_file(path).units == 0.0254
    path.write_text('extends = "cmu"\nunits = "parsec"\n')
    with pytest.raises(JointMapError, match="units must be"):
        load_joint_map_file(path)


def test_cli_convert_prints_the_report_and_bad_input_writes_nothing(tmp_path, capsys, bandai_rig):
    src = copy.deepcopy(bandai_rig).rename(VOCABULARIES["biped"]).write(tmp_path / "biped.bvh")
    out = tmp_path / "x.npy"
    assert main(["convert", str(src), "--to", "joints", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "l_hip       <- Bip01_L_Thigh" in printed and out.is_file()
    for args, message in (
        (["--units", "parsec"], "--units must be"),
        (["--units", "-3"], "positive"),
        (["--joint-map", "xsens"], "needs joints missing from the source"),
    ):
        bad = tmp_path / "bad.npy"
        assert main(["convert", str(src), "--to", "joints", "--out", str(bad), *args]) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1 and not bad.exists(), err
    assert main(["joint-maps", "--show", "cmu"]) == 0
    assert "l_collar    <- 0.5*LeftShoulder + 0.5*LeftArm" in capsys.readouterr().out
