"""Joint-name vocabularies: what a source joint's name says about its body part and side.

Names are split into lower-case words (namespaces such as ``mixamorig:`` and prefixes such as
``CC_Base_``, ``DEF-`` or ``Bip01`` dropped; camelCase, ``_``, ``.``, ``-`` and spaces split), side
words (``Left``/``Right``/``L``/``R``, in any position) taken out, and the rest looked up in one
vocabulary covering CMU, Mixamo, 3ds Max Biped, Unreal, MotionBuilder/HumanIK, Rokoko, Character
Creator, Blender, Daz/Poser, OptiTrack, Vicon, Kinect, SMPL, Xsens and Bandai spellings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_NAMESPACE = re.compile(r"^.*[:|]")
_PREFIX = re.compile(r"^(?:cc_base_|def[-_]|org[-_]|bip\d*[\s_]|b_|bn_|jnt_|mixamorig\d*_?)", re.IGNORECASE)
_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")
_SIDE_PREFIX = re.compile(r"^([LR])(?=[A-Z])")
_SIDES = {"l": "L", "left": "L", "r": "R", "right": "R"}
_IGNORED = frozenset(
    [
        "twist",
        "roll",
        "end",
        "nub",
        "tip",
        "site",
        "top",
        "ik",
        "fk",
        "target",
        "pole",
        "helper",
        "ctrl",
        "control",
        "share",
        "jaw",
        "eye",
        "eyes",
        "tongue",
        "teeth",
        "brow",
        "lid",
        "finger",
        "fingers",
        "thumb",
        "index",
        "middle",
        "ring",
        "pinky",
        "little",
        "carpal",
        "metacarpal",
        "hand1",
        "breast",
        "buttock",
        "pectoral",
        "bip01",
        "dummy",
        "prop",
        "weapon",
    ]
)
"""Words that mark a joint as not one of the 22 (twist/roll bones, end markers, fingers, face, props)."""

ROLE_WORDS: dict[str, tuple[str, int]] = {
    # centre
    "hips": ("pelvis", 3),
    "pelvis": ("pelvis", 3),
    "hip": ("pelvis", 2),  # unsided; with a side it is the thigh (below)
    "neck": ("neck", 3),
    "necktwist": ("neck", 2),  # Character Creator's only neck joint
    "head": ("head", 3),
    # legs
    "upleg": ("hip", 3),
    "upperleg": ("hip", 3),
    "thigh": ("hip", 3),
    "legupper": ("hip", 2),
    "uleg": ("hip", 2),
    "femur": ("hip", 2),
    "leg": ("knee", 2),
    "lowerleg": ("knee", 3),
    "leglower": ("knee", 2),
    "loleg": ("knee", 2),
    "knee": ("knee", 3),
    "calf": ("knee", 3),
    "shin": ("knee", 3),
    "tibia": ("knee", 2),
    "foot": ("ankle", 3),
    "ankle": ("ankle", 3),
    "toe": ("toe", 3),
    "toes": ("toe", 3),
    "toebase": ("toe", 3),
    "ball": ("toe", 3),
    "forefoot": ("toe", 2),
    # arms
    "clavicle": ("collar", 3),
    "collar": ("collar", 3),
    "collarbone": ("collar", 3),
    "shoulder": ("shoulder?", 1),  # the collar when the rig also has an upper-arm joint, else the upper arm
    "arm": ("shoulder", 2),
    "upperarm": ("shoulder", 3),
    "uparm": ("shoulder", 3),
    "uarm": ("shoulder", 3),  # OptiTrack
    "farm": ("elbow", 3),
    "radius": ("elbow", 2),  # Vicon
    "armupper": ("shoulder", 2),
    "shldr": ("shoulder", 3),
    "humerus": ("shoulder", 2),
    "forearm": ("elbow", 3),
    "lowerarm": ("elbow", 3),
    "armlower": ("elbow", 2),
    "loarm": ("elbow", 3),
    "elbow": ("elbow", 3),
    "hand": ("wrist", 3),
    "wrist": ("wrist", 3),
}
SIDED_HIP = ("hip", 1)
"""A sided 'hip' (Xsens ``LeftHip``, CMU ``LHipJoint``) is a thigh candidate, weaker than ``UpLeg``."""
SPINE_WORDS = frozenset(
    [
        "ab",
        "thorax",
        "spine",
        "chest",
        "upperchest",
        "back",
        "lowerback",
        "upperback",
        "abdomen",
        "abdomenupper",
        "abdomenlower",
        "torso",
        "waist",
    ]
)


@dataclass(frozen=True)
class NameInfo:
    """What one joint name says."""

    name: str
    words: tuple[str, ...]
    side: str | None  # 'L', 'R' or None
    role: str | None  # pelvis neck head hip knee ankle toe collar shoulder shoulder? elbow wrist spine
    score: int  # how strongly the name says it (3 strong, 1 weak)


def words_of(name: str) -> list[str]:
    """Lower-case words of a joint name, namespace and rig prefixes removed."""
    bare = _NAMESPACE.sub("", name.strip())
    bare = _PREFIX.sub("", bare)
    out: list[str] = []
    for part in re.split(r"[\s_.\-]+", bare):
        part = _SIDE_PREFIX.sub(r"\1 ", part)  # OptiTrack's LUArm, CMU's LHipJoint: L + a capital
        out.extend(w.lower() for w in _WORD.findall(part))
    return out


def classify(name: str) -> NameInfo:
    """The role, side and strength a name suggests (role None when it names none of the 22)."""
    words = words_of(name)
    sides = {_SIDES[w] for w in words if w in _SIDES}
    side = sides.pop() if len(sides) == 1 else None
    rest = [w for w in words if w not in _SIDES and not w.isdigit()]
    key = "".join(rest)
    if not rest or (key not in ROLE_WORDS and any(w in _IGNORED for w in rest)):
        return NameInfo(name, tuple(words), side, None, 0)
    if key in ("hip", "hipjoint") and side is not None:
        role, score = SIDED_HIP
    elif key in ROLE_WORDS:
        role, score = ROLE_WORDS[key]
    elif key in SPINE_WORDS:
        role, score = "spine", 2
    else:
        return NameInfo(name, tuple(words), side, None, 0)
    sided = role not in ("pelvis", "neck", "head", "spine")
    if sided != (side is not None):
        return NameInfo(name, tuple(words), side, None, 0)
    return NameInfo(name, tuple(words), side, role, score)
