"""What each SMPL-22 joint comes from: a registered map, or a guess from names, hierarchy and rest pose.

A :class:`RigMapping` gives every SMPL joint a weighted blend of source joints, or (toes only) a point
carried by the ankle's rotation, with how it was found and a confidence. :func:`auto_map` builds one
for a rig no map describes:

- names (:mod:`emomotion.rigs.names`) pick pelvis, head, neck and the limb joints, checked against the
  hierarchy (a knee must descend from its hip, and so on);
- limbs the names do not give come from the rest pose: legs are the two chains from the pelvis that end
  lowest, arms the two most lateral chains from the spine, the head the highest end; left is
  ``up x forward`` with forward from the toes;
- the spine joints are points along the hierarchy path from the pelvis to where the arms attach, placed
  at the target skeleton's proportions (so one spine joint or five give the same three);
- a missing neck is a point between the upper spine and the head, a missing collar the midpoint of the
  upper spine and the shoulder, a missing toe a point the ankle's rotation carries (placed by
  :func:`emomotion.rigs.repair.place_toes`).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from emomotion import skeleton as sk
from emomotion.errors import RetargetError
from emomotion.rigs.names import classify

Blend = tuple[tuple[str, float], ...]
SPINE_FRACTIONS = np.cumsum(sk.BONE_LENGTHS[[3, 6, 9]]) / sk.BONE_LENGTHS[[3, 6, 9]].sum()
"""Where spine1, spine2, spine3 sit along pelvis -> upper spine on the target skeleton."""
NECK_FRACTION = 0.65
"""A synthesised neck sits this far from the upper spine to the head."""
CONFIDENCE = {3: 0.95, 2: 0.85, 1: 0.7}
SIDED_ROLES = ("hip", "knee", "ankle", "toe", "collar", "shoulder", "elbow", "wrist")
SMPL_SIDED = {
    "hip": "hip",
    "knee": "knee",
    "ankle": "ankle",
    "toe": "foot",
    "collar": "collar",
    "shoulder": "shoulder",
    "elbow": "elbow",
    "wrist": "wrist",
}


@dataclass(frozen=True)
class JointSource:
    """Where one SMPL joint comes from."""

    blend: Blend  # source joints and weights (for a synthesised toe: the ankle's blend)
    how: str  # map | name | path | geometry | synthesised | repaired
    confidence: float
    toe_from: str | None = None  # synthesised toe: the ankle joint whose rotation carries it
    toe_offset: tuple[float, float, float] | None = None  # ... the ankle -> toe vector in its local frame

    def source_text(self) -> str:
        """The source joints as text: ``0.5*LeftShoulder + 0.5*LeftArm``."""
        src = " + ".join(f"{w:.2g}*{n}" if abs(w - 1.0) > 1e-9 else n for n, w in self.blend)
        if self.toe_from is not None:
            src = f"ankle {self.toe_from} rotating its rest foot vector"
        return src


@dataclass(frozen=True)
class RigMapping:
    """SMPL-22 joint -> source, plus how the whole mapping was found."""

    name: str
    method: str
    joints: Mapping[str, JointSource]
    units: Any = "auto"  # 'auto', a unit name or metres per unit
    up: str = "auto"
    notes: tuple[str, ...] = field(default=())

    @property
    def synthesised(self) -> tuple[str, ...]:
        return tuple(j for j in sk.JOINT_NAMES if self.joints[j].how in ("synthesised", "repaired"))

    @property
    def source_joints(self) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for j in sk.JOINT_NAMES:
            for name, _ in self.joints[j].blend:
                seen.setdefault(name, None)
        return tuple(seen)

    def weights(self, names: tuple[str, ...]) -> np.ndarray:
        """(22, len(names)) blend weights over the source joints (toes carried by rotation excluded)."""
        cache = self.__dict__.setdefault("_weights", {})
        if names not in cache:
            index = {n: i for i, n in enumerate(names)}
            w = np.zeros((sk.NUM_JOINTS, len(names)))
            for j, smpl in enumerate(sk.JOINT_NAMES):
                for name, weight in self.joints[smpl].blend:
                    w[j, index[name]] += weight
            cache[names] = w
        return cache[names]

    def with_joint(self, smpl: str, source: JointSource, note: str) -> RigMapping:
        joints = dict(self.joints)
        joints[smpl] = source
        return RigMapping(self.name, self.method, joints, self.units, self.up, (*self.notes, note))

    @cached_property
    def summary(self) -> dict[str, Any]:
        """The mapping as the report and the manifest record it (computed once; do not modify)."""
        return {
            "name": self.name,
            "method": self.method,
            "joints": {
                j: {
                    "source": self.joints[j].source_text(),
                    "how": self.joints[j].how,
                    "confidence": round(self.joints[j].confidence, 3),
                }
                for j in sk.JOINT_NAMES
            },
            "synthesised": list(self.synthesised),
            "notes": list(self.notes),
        }


def mix(a: Blend, b: Blend, wb: float) -> Blend:
    """(1 - wb) * a + wb * b, merged by joint name."""
    out: dict[str, float] = {}
    for blend, w in ((a, 1.0 - wb), (b, wb)):
        for name, weight in blend:
            out[name] = out.get(name, 0.0) + w * weight
    return tuple((n, w) for n, w in out.items() if abs(w) > 1e-12)


# ----------------------------------------------------------------------------- the rig as a tree


@dataclass(frozen=True)
class Rig:
    """Names, parents and rest positions (file units) of a source skeleton."""

    names: tuple[str, ...]
    parents: np.ndarray
    rest: np.ndarray  # (J, 3) rest-pose world positions
    end_sites: Mapping[int, np.ndarray] = field(default_factory=dict)

    @classmethod
    def from_offsets(
        cls,
        names: Sequence[str],
        parents: np.ndarray,
        offsets: np.ndarray,
        end_sites: Mapping[int, np.ndarray] | None = None,
    ) -> Rig:
        rest = np.zeros((len(names), 3))
        for k, p in enumerate(parents):
            rest[k] = offsets[k] if p < 0 else rest[p] + offsets[k]
        return cls(tuple(names), np.asarray(parents), rest, dict(end_sites or {}))

    def chain(self, j: int) -> list[int]:
        """Root ... j."""
        out = []
        while j >= 0:
            out.append(j)
            j = int(self.parents[j])
        return out[::-1]

    def is_ancestor(self, a: int, b: int) -> bool:
        """a is b or above it."""
        return a in self.chain(b)

    def lca(self, a: int, b: int) -> int:
        ca, cb = self.chain(a), self.chain(b)
        common = -1
        for x, y in zip(ca, cb, strict=False):
            if x != y:
                break
            common = x
        if common < 0:
            raise RetargetError(f"{self.names[a]} and {self.names[b]} are in separate hierarchies")
        return common

    def path(self, a: int, b: int) -> list[int]:
        """a ... b for a an ancestor of b."""
        c = self.chain(b)
        return c[c.index(a) :]

    def children(self, j: int) -> list[int]:
        return [int(k) for k in np.flatnonzero(self.parents == j)]

    def leaves(self) -> list[int]:
        has_child = set(int(p) for p in self.parents if p >= 0)
        return [k for k in range(len(self.names)) if k not in has_child]

    def length(self, a: int, b: int) -> float:
        return float(np.linalg.norm(self.rest[a] - self.rest[b]))


def _unit(v: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(v))
    return v / n if n > 1e-12 else v


def point_on_path(rig: Rig, path: list[int], fraction: float) -> Blend:
    """The blend at ``fraction`` of the rest arc length along ``path`` (joint indexes)."""
    seg = np.array([rig.length(a, b) for a, b in itertools.pairwise(path)])
    total = float(seg.sum())
    if len(path) == 1 or total <= 1e-12:
        return ((rig.names[path[-1]], 1.0),)
    target = fraction * total
    acc = 0.0
    for i, s in enumerate(seg):
        if s > 0 and acc + s >= target - 1e-12:
            w = min(max((target - acc) / s, 0.0), 1.0)
            a, b = rig.names[path[i]], rig.names[path[i + 1]]
            if w < 1e-6:
                return ((a, 1.0),)
            if w > 1 - 1e-6:
                return ((b, 1.0),)
            return ((a, 1.0 - w), (b, w))
        acc += s
    return ((rig.names[path[-1]], 1.0),)


# ----------------------------------------------------------------------------- limbs


@dataclass
class _Limb:
    joints: dict[str, int]  # role -> joint
    how: dict[str, tuple[str, float]]  # role -> (how, confidence)


def _by_names(rig: Rig) -> dict[tuple[str, str | None], list[tuple[int, int]]]:
    """(role, side) -> [(score, joint)] from names; 'shoulder?' resolved per side."""
    cands: dict[tuple[str, str | None], list[tuple[int, int]]] = {}
    for k, name in enumerate(rig.names):
        info = classify(name)
        if info.role:
            cands.setdefault((info.role, info.side), []).append((info.score, k))
    for side in ("L", "R"):
        ambiguous = cands.pop(("shoulder?", side), [])
        strong_arm = any(s >= 2 for s, _ in cands.get(("shoulder", side), []))
        role = "collar" if strong_arm else "shoulder"
        cands.setdefault((role, side), []).extend(ambiguous)
    return cands


def _pick(rig: Rig, found: list[tuple[int, int]], *, below: int | None = None, above: int | None = None):
    """The strongest, then highest-in-the-hierarchy candidate below/above the given joints."""
    ok = [
        (s, k)
        for s, k in found
        if (below is None or (k != below and rig.is_ancestor(below, k)))
        and (above is None or (k != above and rig.is_ancestor(k, above)))
    ]
    if not ok:
        return None
    s, k = min(ok, key=lambda sk_: (-sk_[0], len(rig.chain(sk_[1])), sk_[1]))
    return s, k


def _named_limbs(rig: Rig, cands) -> dict[str, _Limb]:
    limbs: dict[str, _Limb] = {}
    for side in ("L", "R"):
        got: dict[str, int] = {}
        how: dict[str, tuple[str, float]] = {}

        def take(role: str, pick, got=got, how=how) -> None:
            if pick is not None:
                got[role] = pick[1]
                how[role] = ("name", CONFIDENCE[pick[0]])

        take("hip", _pick(rig, cands.get(("hip", side), [])))
        if "hip" in got:
            take("knee", _pick(rig, cands.get(("knee", side), []), below=got["hip"]))
        if "knee" in got:
            take("ankle", _pick(rig, cands.get(("ankle", side), []), below=got["knee"]))
        if "ankle" in got:
            toes = cands.get(("toe", side), []) + [
                c for c in cands.get(("ankle", side), []) if c[1] != got["ankle"]
            ]  # SMPL's own names: l_ankle, then l_foot as the toe
            take("toe", _pick(rig, toes, below=got["ankle"]))
        take("shoulder", _pick(rig, cands.get(("shoulder", side), [])))
        if "shoulder" in got:
            take("elbow", _pick(rig, cands.get(("elbow", side), []), below=got["shoulder"]))
            take("collar", _pick(rig, cands.get(("collar", side), []), above=got["shoulder"]))
        if "elbow" in got:
            take("wrist", _pick(rig, cands.get(("wrist", side), []), below=got["elbow"]))
        limbs[side] = _Limb(got, how)
    return limbs


def _distinct(rig: Rig, path: list[int], eps: float) -> list[int]:
    """Path joints that do not sit on the previous kept one."""
    out = [path[0]]
    for k in path[1:]:
        if rig.length(k, out[-1]) > eps:
            out.append(k)
    return out


def _geometric_limbs(rig: Rig) -> dict[str, _Limb]:
    """Legs, arms and sides from the rest pose alone, trying each axis as up (largest extent first)."""
    leaves = rig.leaves()
    if len(leaves) < 5:
        raise RetargetError(f"the skeleton has {len(leaves)} end joints; a body needs 5 (head, hands, feet)")
    error = RetargetError("no axis of the rest pose gives two legs, two arms and a head")
    for axis in np.argsort(-np.ptp(rig.rest, axis=0)):
        for sign in (1.0, -1.0):
            up = np.zeros(3)
            up[axis] = sign
            try:
                return _limbs_with_up(rig, leaves, up)
            except RetargetError as exc:
                error = exc
    raise error


def _limbs_with_up(rig: Rig, leaves: list[int], up: np.ndarray) -> dict[str, _Limb]:
    h = rig.rest @ up
    span = float(np.ptp(h))
    order = sorted(leaves, key=lambda k: h[k])
    a = order[0]
    b = next((k for k in order[1:] if h[rig.lca(a, k)] - max(h[a], h[k]) > 0.25 * span), None)
    if b is None:
        raise RetargetError("no two leg chains found in the rest pose")
    pelvis = rig.lca(a, b)
    head = max((k for k in leaves if k not in (a, b)), key=lambda k: h[k])
    if h[head] < h[pelvis] + 0.2 * span:
        raise RetargetError("no head above the pelvis in the rest pose")
    eps = 1e-3 * span
    legs = []
    for leaf in (a, b):
        c = _distinct(rig, rig.path(pelvis, leaf), eps)[1:]
        if len(c) < 3:
            raise RetargetError(f"the leg ending at {rig.names[leaf]} has fewer than 3 joints")
        ankle_i = next(i for i, k in enumerate(c) if h[k] - h[leaf] < 0.15 * (h[c[0]] - h[leaf]))
        ankle_i = max(ankle_i, 2)
        mid = 0.5 * (h[c[0]] + h[c[ankle_i]])
        knee_i = min(range(1, ankle_i), key=lambda i: abs(h[c[i]] - mid))
        leg = {"hip": c[0], "knee": c[knee_i], "ankle": c[ankle_i]}
        if ankle_i + 1 < len(c):
            leg["toe"] = c[ankle_i + 1]
        legs.append(leg)
    forward = np.zeros(3)
    for leg in legs:
        end = leg.get("toe")
        if end is not None:
            forward += rig.rest[end] - rig.rest[leg["ankle"]]
    forward -= (forward @ up) * up
    if np.linalg.norm(forward) < 1e-9:
        raise RetargetError("cannot tell the facing direction: no toes point forward in the rest pose")
    left = _unit(np.cross(up, _unit(forward)))
    sides = {}
    for leg in legs:
        sides["L" if (rig.rest[leg["hip"]] - rig.rest[pelvis]) @ left > 0 else "R"] = leg
    if len(sides) != 2:
        raise RetargetError("both leg chains are on the same side of the pelvis")
    used = set()
    for leg in legs:
        used |= set(rig.path(pelvis, leg.get("toe", leg["ankle"])))
    lateral = {
        k: float((rig.rest[k] - rig.rest[pelvis]) @ left) for k in leaves if k not in used and k != head
    }
    arms = {}
    for side, sign in (("L", 1.0), ("R", -1.0)):
        leaf = max(lateral, key=lambda k: sign * lateral[k])
        if sign * lateral[leaf] <= 0:
            raise RetargetError(f"no {side} arm chain found in the rest pose")
        arms[side] = leaf
    attach = rig.lca(arms["L"], arms["R"])
    limbs: dict[str, _Limb] = {}
    for side, leg in sides.items():
        path = _distinct(rig, rig.path(attach, arms[side]), eps)[1:]
        reach = rig.length(attach, arms[side])
        # the hand is where the fingers branch, near the end (a twist bone branches near the shoulder)
        branching = [
            k for k in path if len(rig.children(k)) >= 2 and rig.length(k, arms[side]) < 0.35 * reach
        ]
        wrist = branching[0] if branching else path[-1]
        c = path[: path.index(wrist) + 1]
        if len(c) < 3:
            raise RetargetError(f"the arm ending at {rig.names[arms[side]]} has fewer than 3 joints")
        arm = {"wrist": wrist}
        if len(c) >= 4:
            arm["collar"], rest = c[0], c[1:-1]
        else:
            rest = c[:-1]
        arm["shoulder"] = rest[0]
        reach = rig.length(rest[0], wrist)
        arm["elbow"] = min(rest[1:], key=lambda k: abs(rig.length(rest[0], k) - 0.5 * reach))
        joints = {**leg, **arm}
        limbs[side] = _Limb(joints, {r: ("geometry", 0.6) for r in joints})
    return limbs


# ----------------------------------------------------------------------------- the whole rig


def auto_map(rig: Rig, pose: np.ndarray | None = None) -> RigMapping:
    """Guess a mapping for ``rig`` (see the module docstring); RetargetError names what is missing.
    ``pose`` (J, 3), a frame of the motion, stands in for a rest pose that is not a body's (Bandai's
    joint-local offsets all point along x)."""
    cands = _by_names(rig)
    limbs = _named_limbs(rig, cands)
    method = "names"
    notes: list[str] = []
    core = ("hip", "knee", "ankle", "shoulder", "elbow", "wrist")
    if not all(r in limbs[s].joints for s in ("L", "R") for r in core):
        missing = [f"{s} {r}" for s in ("L", "R") for r in core if r not in limbs[s].joints]
        try:
            try:
                geo = _geometric_limbs(rig)
            except RetargetError:
                if pose is None:
                    raise
                geo = _geometric_limbs(Rig(rig.names, rig.parents, pose, rig.end_sites))
        except RetargetError as exc:
            raise RetargetError(
                f"cannot map this rig onto SMPL-22: no joint named as {', '.join(missing)}, and the rest "
                f"pose does not say either ({exc.reason}); pass --joint-map NAME or a .toml file"
            ) from None
        for side in ("L", "R"):
            if not all(r in limbs[side].joints for r in core):
                limbs[side] = geo[side]
        method = "names and rest-pose geometry"
        notes.append(f"limbs without usable names ({', '.join(missing)}) found from the rest pose")
    lj, rj = limbs["L"].joints, limbs["R"].joints
    legs_meet = rig.lca(lj["hip"], rj["hip"])
    pelvis_pick = _pick(rig, [c for c in cands.get(("pelvis", None), []) if rig.is_ancestor(c[1], legs_meet)])
    if pelvis_pick is not None:
        pelvis, pelvis_how = pelvis_pick[1], ("name", CONFIDENCE[pelvis_pick[0]])
    else:
        pelvis, pelvis_how = legs_meet, ("geometry", 0.7)
    arm_l = lj.get("collar", lj["shoulder"])
    arm_r = rj.get("collar", rj["shoulder"])
    attach = rig.lca(arm_l, arm_r)
    if not rig.is_ancestor(pelvis, attach):
        raise RetargetError(
            f"the arms meet at {rig.names[attach]}, which is not above the pelvis {rig.names[pelvis]}"
        )
    arm_joints = set(rig.path(attach, lj["wrist"])) | set(rig.path(attach, rj["wrist"]))
    head_pick = _pick(rig, cands.get(("head", None), []), below=pelvis)
    if head_pick is not None:
        head, head_how = head_pick[1], ("name", CONFIDENCE[head_pick[0]])
    else:
        ends = [k for k in rig.leaves() if rig.is_ancestor(attach, k) and k not in arm_joints]
        up = np.zeros(3)
        up[int(np.argmax(np.abs(rig.rest[attach] - rig.rest[pelvis])))] = 1.0
        sign = np.sign((rig.rest[attach] - rig.rest[pelvis]) @ up) or 1.0
        if not ends:
            raise RetargetError("cannot map this rig onto SMPL-22: no head joint above the arms")
        head, head_how = max(ends, key=lambda k: sign * rig.rest[k] @ up), ("geometry", 0.6)
    neck_pick = _pick(rig, cands.get(("neck", None), []), below=pelvis, above=head)
    top = attach
    if neck_pick is not None and rig.is_ancestor(neck_pick[1], attach):
        top = int(rig.parents[neck_pick[1]])  # Biped: the clavicles hang from the neck
    spine_path = rig.path(pelvis, top)
    if len(spine_path) == 1 or sum(rig.length(a, b) for a, b in itertools.pairwise(spine_path)) <= 1e-9:
        raise RetargetError(
            f"cannot map this rig onto SMPL-22: the arms attach at the pelvis {rig.names[pelvis]} (no spine)"
        )
    joints: dict[str, JointSource] = {"pelvis": JointSource(((rig.names[pelvis], 1.0),), *pelvis_how)}
    for smpl, frac in zip(("spine1", "spine2", "spine3"), SPINE_FRACTIONS, strict=True):
        joints[smpl] = JointSource(point_on_path(rig, spine_path, float(frac)), "path", 0.8)
    joints["head"] = JointSource(((rig.names[head], 1.0),), *head_how)
    if neck_pick is not None:
        joints["neck"] = JointSource(((rig.names[neck_pick[1]], 1.0),), "name", CONFIDENCE[neck_pick[0]])
    else:
        joints["neck"] = JointSource(
            mix(joints["spine3"].blend, joints["head"].blend, NECK_FRACTION), "synthesised", 0.5
        )
        notes.append(
            f"no neck joint: neck placed {NECK_FRACTION:.0%} of the way from the upper spine to the head"
        )
    for side, prefix in (("L", "l_"), ("R", "r_")):
        limb = limbs[side]
        for role in SIDED_ROLES:
            smpl = prefix + SMPL_SIDED[role]
            if role in limb.joints:
                how, conf = limb.how[role]
                joints[smpl] = JointSource(((rig.names[limb.joints[role]], 1.0),), how, conf)
        if "collar" not in limb.joints:
            joints[prefix + "collar"] = JointSource(
                mix(joints["spine3"].blend, joints[prefix + "shoulder"].blend, 0.5), "synthesised", 0.5
            )
            notes.append(f"no {side} collar joint: midpoint of the upper spine and the shoulder")
        if "toe" not in limb.joints:
            ankle = rig.names[limb.joints["ankle"]]
            joints[prefix + "foot"] = JointSource(((ankle, 1.0),), "synthesised", 0.5, toe_from=ankle)
            notes.append(f"no {side} toe joint: carried by {ankle}'s rotation")
    return RigMapping("auto", method, joints, notes=tuple(notes))


def check_sides(joints: np.ndarray) -> None:
    """Left hip and left shoulder must be on the same side (SMPL joints over frames): names that
    disagree are an error."""
    sample = joints[:: max(1, joints.shape[0] // 32)]
    hips = sample[:, sk.JOINT_INDEX["l_hip"]] - sample[:, sk.JOINT_INDEX["r_hip"]]
    shoulders = sample[:, sk.JOINT_INDEX["l_shoulder"]] - sample[:, sk.JOINT_INDEX["r_shoulder"]]
    if float(np.median((hips * shoulders).sum(-1))) < 0:
        raise RetargetError(
            "left and right disagree: the 'left' hip and the 'left' shoulder are on opposite sides"
        )
