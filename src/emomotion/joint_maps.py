"""Named maps from a source rig's joints to the SMPL-22 joints, and a registry of them.

A map assigns every SMPL-22 joint a weighted blend of source joints (usually one joint with
weight 1; e.g. Bandai's spine2 is the midpoint of its Spine and Chest). Maps match joints **by
name**, never by column index. User maps come from TOML files::

    name = "myrig"
    units = "cm"          # m | cm | mm | in | ft | metres per unit | auto (default auto)
    up = "y"              # y | z | auto (default auto)
    [joints]
    pelvis = "Hips"
    spine2 = { Spine = 0.5, Chest = 0.5 }
    ...

or, starting from a registered map and changing a few joints::

    extends = "cmu"
    [joints]
    head = "Neck1"
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from emomotion import skeleton as sk
from emomotion.errors import ConfigError, JointMapError
from emomotion.rigs.mapping import JointSource, RigMapping
from emomotion.rigs.units import UNIT_SCALE, parse_units

Units = str | float  # auto, a name in UNIT_SCALE, or metres per unit
UpAxis = Literal["auto", "y", "z"]
__all__ = ["UNIT_SCALE", "JointMap", "get_joint_map", "guess_joint_map", "load_joint_map_file"]

Blend = tuple[tuple[str, float], ...]


@dataclass(frozen=True)
class JointMap:
    """How to read SMPL-22 joints off a source rig."""

    name: str
    joints: Mapping[str, Blend]
    units: Units = "auto"
    up: UpAxis = "auto"
    description: str = ""
    aliases: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        missing = [j for j in sk.JOINT_NAMES if j not in self.joints]
        unknown = [j for j in self.joints if j not in sk.JOINT_INDEX]
        if missing or unknown:
            raise JointMapError(
                f"joint map {self.name!r}: "
                + (f"no source for SMPL joints {missing}" if missing else "")
                + ("; " if missing and unknown else "")
                + (f"unknown SMPL joint names {unknown}" if unknown else "")
            )
        for target, blend in self.joints.items():
            if not blend:
                raise JointMapError(f"joint map {self.name!r}: {target} has an empty blend")
            negative = [f"{n} = {w:g}" for n, w in blend if w < 0]
            if negative:
                raise JointMapError(
                    f"joint map {self.name!r}: weights of {target} must not be negative: {', '.join(negative)}"
                )
            total = sum(w for _, w in blend)
            if abs(total - 1.0) > 1e-6:
                raise JointMapError(
                    f"joint map {self.name!r}: weights of {target} must sum to 1, got {total:g}"
                )
        try:
            parse_units(self.units, what="units")
        except ConfigError as exc:
            raise JointMapError(f"joint map {self.name!r}: {exc.reason}") from None
        if self.up not in ("auto", "y", "z"):
            raise JointMapError(f"joint map {self.name!r}: up must be auto, y or z, not {self.up!r}")

    @property
    def source_joints(self) -> tuple[str, ...]:
        """Every source joint name the map reads, in SMPL order of first use."""
        seen: dict[str, None] = {}
        for target in sk.JOINT_NAMES:
            for name, _ in self.joints[target]:
                seen.setdefault(name, None)
        return tuple(seen)

    def as_mapping(self, method: str) -> RigMapping:
        """This map as a :class:`~emomotion.rigs.mapping.RigMapping` (every joint sourced by the map;
        made once per method, so its blend weights are computed once)."""
        cache = self.__dict__.setdefault("_mappings", {})
        if method not in cache:
            cache[method] = self._mapping(method)
        return cache[method]

    def _mapping(self, method: str) -> RigMapping:
        return RigMapping(
            self.name,
            method,
            {j: JointSource(tuple(self.joints[j]), "map", 1.0) for j in sk.JOINT_NAMES},
            units=parse_units(self.units),
            up=self.up,
        )

    def describe(self) -> str:
        """Every SMPL joint's assignment, one a line."""
        lines = [f"{self.name}: {self.description}", f"units: {self.units}, up: {self.up}"]
        for j in sk.JOINT_NAMES:
            blend = self.joints[j]
            lines.append(
                f"  {j:11s} <- " + " + ".join(n if len(blend) == 1 else f"{w:g}*{n}" for n, w in blend)
            )
        return "\n".join(lines)


def _simple(pairs: Mapping[str, str | Mapping[str, float]]) -> dict[str, Blend]:
    out: dict[str, Blend] = {}
    for target, src in pairs.items():
        out[target] = ((src, 1.0),) if isinstance(src, str) else tuple((k, float(v)) for k, v in src.items())
    return out


def _sided(
    common: Mapping[str, str | Mapping[str, float]], sided: Mapping[str, str], left: str, right: str
) -> dict[str, Blend]:
    """Expand ``{"hip": "{side}UpLeg"}`` into l_/r_ entries with the rig's side spellings."""
    pairs: dict[str, str | Mapping[str, float]] = dict(common)
    for smpl, pattern in sided.items():
        pairs[f"l_{smpl}"] = pattern.format(side=left)
        pairs[f"r_{smpl}"] = pattern.format(side=right)
    return _simple(pairs)


_REGISTRY: dict[str, JointMap] = {}


def register_joint_map(joint_map: JointMap) -> JointMap:
    """Add a map to the registry (by name and aliases); a clash is an error."""
    for key in (joint_map.name, *joint_map.aliases):
        if key in _REGISTRY:
            raise JointMapError(f"joint map {key!r} is already registered")
        _REGISTRY[key] = joint_map
    return joint_map


def joint_map_names() -> list[str]:
    return sorted({m.name for m in _REGISTRY.values()})


def load_joint_map_file(path: str | Path) -> JointMap:
    """Read a user joint map from a TOML file (see the module docstring)."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise JointMapError("joint map file not found", path=path) from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise JointMapError(f"not a valid TOML file: {exc}", path=path) from exc
    joints = data.get("joints")
    base = None
    if "extends" in data:
        try:
            base = get_joint_map(str(data["extends"]))
        except JointMapError as exc:
            raise JointMapError(f"extends: {exc.reason}", path=path) from None
        joints = joints if joints is not None else {}
    if not isinstance(joints, dict):
        raise JointMapError("missing [joints] table", path=path)
    for target, src in joints.items():
        ok = isinstance(src, str) or (
            isinstance(src, dict) and all(isinstance(v, int | float) for v in src.values())
        )
        if not ok:
            raise JointMapError(
                f"joints.{target} must be a joint name or a table of name = weight", path=path
            )
    merged = {**(dict(base.joints) if base else {}), **_simple(joints)}
    try:
        return JointMap(
            name=str(data.get("name", path.stem)),
            joints=merged,
            units=data.get("units", base.units if base else "auto"),
            up=data.get("up", base.up if base else "auto"),
            description=str(
                data.get("description", f"user map {path}" + (f", extends {base.name}" if base else ""))
            ),
        )
    except JointMapError as exc:
        raise JointMapError(exc.reason, path=path) from exc


def get_joint_map(name_or_path: str | Path | JointMap) -> JointMap:
    """A registered map by name, or a user map from a ``.toml`` path."""
    if isinstance(name_or_path, JointMap):
        return name_or_path
    key = str(name_or_path)
    if key in _REGISTRY:
        return _REGISTRY[key]
    if key.endswith(".toml") or Path(key).is_file():
        return load_joint_map_file(key)
    raise JointMapError(f"unknown joint map {key!r}; known: {', '.join(joint_map_names())}, or a .toml file")


def guess_joint_map(source_names: Sequence[str]) -> JointMap:
    """The registered map whose source joints all exist in ``source_names`` (the first such, by name)."""
    names = set(source_names)
    for map_name in joint_map_names():
        jm = _REGISTRY[map_name]
        if all(j in names for j in jm.source_joints):
            return jm
    raise JointMapError(
        "no registered joint map fits this skeleton; pass --joint-map NAME or a .toml file. "
        f"Joints seen: {', '.join(sorted(names)[:30])}"
    )


_LIMBS = {
    "xsens": {
        "hip": "{side}Hip",
        "knee": "{side}Knee",
        "ankle": "{side}Ankle",
        "foot": "{side}Toe",
        "collar": "{side}Collar",
        "shoulder": "{side}Shoulder",
        "elbow": "{side}Elbow",
        "wrist": "{side}Wrist",
    },
    "bandai": {
        "hip": "UpperLeg_{side}",
        "knee": "LowerLeg_{side}",
        "ankle": "Foot_{side}",
        "foot": "Toes_{side}",
        "collar": "Shoulder_{side}",
        "shoulder": "UpperArm_{side}",
        "elbow": "LowerArm_{side}",
        "wrist": "Hand_{side}",
    },
    "smpl": {
        "hip": "{side}UpLeg",
        "knee": "{side}Leg",
        "ankle": "{side}Foot",
        "foot": "{side}Toe",
        "collar": "{side}Shoulder",
        "shoulder": "{side}Arm",
        "elbow": "{side}ForeArm",
        "wrist": "{side}Hand",
    },
}

register_joint_map(
    JointMap(
        name="xsens",
        aliases=("emilya", "xsens-mvn"),
        joints=_sided(
            {
                "pelvis": "Hips",
                "spine1": "Chest",
                "spine2": "Chest3",
                "spine3": "Chest4",
                "neck": "Neck",
                "head": "Head",
            },
            _LIMBS["xsens"],
            "Left",
            "Right",
        ),
        units="auto",
        up="y",
        description="Xsens MVN (Emilya's rig): Chest, Chest3, Chest4 as the three spine joints; Chest2 unused",
    )
)
register_joint_map(
    JointMap(
        name="bandai",
        joints=_sided(
            {
                "pelvis": "Hips",
                "spine1": "Spine",
                "spine2": {"Spine": 0.5, "Chest": 0.5},
                "spine3": "Chest",
                "neck": "Neck",
                "head": "Head",
            },
            _LIMBS["bandai"],
            "L",
            "R",
        ),
        units="auto",
        up="y",
        description="Bandai Namco motion datasets: two spine joints, spine2 their midpoint; joint_Root dropped",
    )
)
register_joint_map(
    JointMap(
        name="smpl-bvh",
        aliases=("smpl",),
        joints=_sided(
            {
                "pelvis": "Hips",
                "spine1": "Spine",
                "spine2": "Spine1",
                "spine3": "Spine2",
                "neck": "Neck",
                "head": "Head",
            },
            _LIMBS["smpl"],
            "Left",
            "Right",
        ),
        units="auto",
        up="auto",
        description="22-joint SMPL-named BVH (HumanML3D/MoMask exports, and our own BVH writer)",
    )
)
register_joint_map(
    JointMap(
        name="mixamo",
        joints=_sided(
            {
                "pelvis": "mixamorig:Hips",
                "spine1": "mixamorig:Spine",
                "spine2": "mixamorig:Spine1",
                "spine3": "mixamorig:Spine2",
                "neck": "mixamorig:Neck",
                "head": "mixamorig:Head",
            },
            {
                "hip": "mixamorig:{side}UpLeg",
                "knee": "mixamorig:{side}Leg",
                "ankle": "mixamorig:{side}Foot",
                "foot": "mixamorig:{side}ToeBase",
                "collar": "mixamorig:{side}Shoulder",
                "shoulder": "mixamorig:{side}Arm",
                "elbow": "mixamorig:{side}ForeArm",
                "wrist": "mixamorig:{side}Hand",
            },
            "Left",
            "Right",
        ),
        units="auto",
        up="auto",
        description="Adobe Mixamo rig (mixamorig: prefix)",
    )
)
register_joint_map(
    JointMap(
        name="cmu",
        joints=_simple(
            {
                "pelvis": "Hips",
                # LowerBack sits on Hips: spine1..3 are points along Hips -> Spine -> Spine1 at the
                # target skeleton's proportions; Spine1 is where the neck and shoulders attach
                "spine1": {"Hips": 0.2, "Spine": 0.8},
                "spine2": {"Spine": 0.32, "Spine1": 0.68},
                "spine3": "Spine1",
                "neck": "Neck1",  # Neck sits on Spine1
                "head": "Head",
                **{
                    f"{s}_{smpl}": f"{side}{cmu}"
                    for s, side in (("l", "Left"), ("r", "Right"))
                    for smpl, cmu in (
                        ("hip", "UpLeg"),
                        ("knee", "Leg"),
                        ("ankle", "Foot"),
                        ("foot", "ToeBase"),
                        ("shoulder", "Arm"),
                        ("elbow", "ForeArm"),
                        ("wrist", "Hand"),
                    )
                },
                # LeftShoulder sits on Spine1: the collar is halfway to the upper arm
                "l_collar": {"LeftShoulder": 0.5, "LeftArm": 0.5},
                "r_collar": {"RightShoulder": 0.5, "RightArm": 0.5},
            }
        ),
        units="auto",
        up="auto",
        description="CMU mocap BVH (cgspeed MotionBuilder naming: LHipJoint, LowerBack, Spine1, Neck1, ...); "
        "'CMU units' are not a length unit, so the scale comes from the skeleton",
    )
)
