"""Procedural emotional full-body motion on SMPL-22: the embedded default dataset.

A small kinematic character (forward kinematics over the SMPL-22 tree) performs everyday actions
(walk, knock, lift, throw, sit down, wave) in Emilya's eight emotions. Emotions change
interpretable movement qualities reported in the literature on emotional body expression:

- Wallbott (1998), "Bodily expression of emotion": movement activity, expansiveness and dynamics
  separate hot anger / joy (large, fast, expansive) from sadness / shame (small, slow, closed).
- Roether, Omlor, Christensen & Giese (2009), "Critical features for the perception of emotion
  from gait": head inclination (sad), elbow flexion (anger, fear), amplitude and speed of the
  limbs.
- Gross, Crane & Fredrickson (2012), "Effort-Shape and kinematic assessment of bodily expression
  of emotion during gait": slower, smaller, more flexed gait for sadness; faster and more upright
  for joy and pride; forward lean and faster, jerky movement for anger.

It is deterministic for its arguments, marked synthetic in manifests, and meant for demos and fast
tests, never as a substitute for real data in results.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields

import numpy as np

from emomotion import skeleton as sk
from emomotion.data.emotions import EMOTIONS
from emomotion.errors import ConfigError

MIN_SECONDS, MAX_SECONDS = 1.0, 9.8


@dataclass(frozen=True)
class EmotionStyle:
    """Interpretable movement qualities (neutral = the defaults)."""

    tempo: float = 1.0  # speed multiplier of every rhythm
    amplitude: float = 1.0  # range of motion of the limbs
    lean: float = 0.0  # torso pitch, degrees, + forward
    head_pitch: float = 0.0  # degrees, + down
    expansion: float = 0.0  # arm abduction, degrees, + away from the body
    elbow_flex: float = 0.0  # extra elbow flexion, degrees
    jerk: float = 0.0  # irregular 3-6 Hz perturbation, degrees
    tremor: float = 0.0  # 7-9 Hz tremor, degrees
    bounce: float = 1.0  # vertical bob multiplier
    knee_flex: float = 0.0  # extra knee flexion (slumped, crouched), degrees

    def blend(self, intensity: float) -> EmotionStyle:
        """Interpolate from neutral (0) to this style (1)."""
        neutral = EmotionStyle()
        return EmotionStyle(
            **{
                f.name: getattr(neutral, f.name)
                + intensity * (getattr(self, f.name) - getattr(neutral, f.name))
                for f in fields(self)
            }
        )


STYLES: dict[str, EmotionStyle] = {
    "Neutral": EmotionStyle(),
    "Joy": EmotionStyle(tempo=1.25, amplitude=1.3, lean=-3, head_pitch=-10, expansion=12, bounce=1.8),
    "Anger": EmotionStyle(
        tempo=1.3, amplitude=1.35, lean=9, head_pitch=-2, expansion=8, elbow_flex=25, jerk=7
    ),
    "Sadness": EmotionStyle(
        tempo=0.7, amplitude=0.55, lean=12, head_pitch=28, expansion=-4, bounce=0.5, knee_flex=6
    ),
    "Pride": EmotionStyle(tempo=0.9, amplitude=1.1, lean=-8, head_pitch=-14, expansion=10, bounce=1.0),
    "Shame": EmotionStyle(
        tempo=0.8, amplitude=0.65, lean=11, head_pitch=32, expansion=-6, bounce=0.6, knee_flex=4
    ),
    "Panic Fear": EmotionStyle(
        tempo=1.45,
        amplitude=1.05,
        lean=-6,
        head_pitch=4,
        expansion=-8,
        elbow_flex=55,
        jerk=9,
        tremor=1.5,
        knee_flex=10,
    ),
    "Anxiety": EmotionStyle(
        tempo=1.0, amplitude=0.8, lean=5, head_pitch=10, expansion=-5, elbow_flex=15, jerk=2.5, tremor=3.0
    ),
}

# Rest directions of every bone (from its parent), a standing pose with the arms hanging. Metres come
# from skeleton.BONE_LENGTHS. +X is the character's left, +Z forward, +Y up.
_REST_DIRS = np.array(
    [
        [0, 0, 0],
        [0.55, -0.83, 0],
        [-0.55, -0.83, 0],
        [0, 1, -0.05],
        [0, -1, 0],
        [0, -1, 0],
        [0, 1, 0.03],
        [0, -1, -0.02],
        [0, -1, -0.02],
        [0, 1, 0],
        [0, -0.35, 1],
        [0, -0.35, 1],
        [0, 1, 0.1],
        [1, 0.25, -0.1],
        [-1, 0.25, -0.1],
        [0, 1, 0.25],
        [1, -0.15, 0],
        [-1, -0.15, 0],
        [0.12, -1, 0],
        [-0.12, -1, 0],
        [0.05, -1, 0.08],
        [-0.05, -1, 0.08],
    ],
    dtype=np.float64,
)
_REST_DIRS[1:] /= np.linalg.norm(_REST_DIRS[1:], axis=1, keepdims=True)
J = sk.JOINT_INDEX


@dataclass(frozen=True)
class SyntheticClip:
    joints: np.ndarray  # (T, 22, 3) float64, metres, Y-up, 20 fps, feet on the floor
    action: str
    emotion: str
    intensity: float
    seed: int
    actor: str


def _rot(axis: int, degrees: np.ndarray) -> np.ndarray:
    a = np.radians(degrees)
    c, s = np.cos(a), np.sin(a)
    m = np.zeros(a.shape + (3, 3))
    i, j = [(1, 2), (2, 0), (0, 1)][axis]
    m[..., axis, axis] = 1
    m[..., i, i] = c
    m[..., j, j] = c
    m[..., i, j] = -s
    m[..., j, i] = s
    return m


class _Pose:
    """Per-frame local joint angles (degrees) about X (pitch), Y (yaw) and Z (roll), composed Y @ X @ Z."""

    def __init__(self, frames: int) -> None:
        self.angles = np.zeros((frames, sk.NUM_JOINTS, 3))
        self.root = np.zeros((frames, 3))

    def add(self, joint: str, axis: int, degrees: np.ndarray | float) -> None:
        self.angles[:, J[joint], axis] += degrees

    def flex_leg(
        self, side: str, hip: np.ndarray | float, knee: np.ndarray | float, ankle: np.ndarray | float = 0.0
    ) -> None:
        self.add(f"{side}_hip", 0, -np.asarray(hip))  # thigh forward
        self.add(f"{side}_knee", 0, knee)  # shin backward
        self.add(f"{side}_ankle", 0, -np.asarray(ankle))

    def arm(
        self, side: str, flex: np.ndarray | float, abduct: np.ndarray | float, elbow: np.ndarray | float
    ) -> None:
        sign = 1.0 if side == "l" else -1.0
        self.add(f"{side}_shoulder", 0, -np.asarray(flex))  # upper arm forward
        self.add(f"{side}_shoulder", 2, sign * np.asarray(abduct))  # upper arm out to the side
        self.add(f"{side}_elbow", 0, -np.asarray(elbow))  # forearm forward / up

    def joints(self, offsets: np.ndarray) -> np.ndarray:
        a = self.angles
        local = _rot(1, a[..., 1]) @ _rot(0, a[..., 0]) @ _rot(2, a[..., 2])
        world_rot = np.empty_like(local)
        pos = np.empty(a.shape[:2] + (3,))
        for j, p in enumerate(sk.PARENTS):
            if p < 0:
                world_rot[:, j] = local[:, j]
                pos[:, j] = self.root
            else:
                world_rot[:, j] = world_rot[:, p] @ local[:, j]
                pos[:, j] = pos[:, p] + world_rot[:, p] @ offsets[j]
        return pos


def _noise(rng: np.random.Generator, t: np.ndarray, lo: float, hi: float, n: int = 3) -> np.ndarray:
    """A smooth irregular signal in [-1, 1]-ish: a few sinusoids of random frequency and phase."""
    freqs = rng.uniform(lo, hi, n)
    phases = rng.uniform(0, 2 * np.pi, n)
    return np.sin(2 * np.pi * freqs[:, None] * t[None] + phases[:, None]).sum(0) / np.sqrt(n)


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


# ----------------------------------------------------------------------------- actions


def _walk(p: _Pose, t: np.ndarray, s: EmotionStyle, rng: np.random.Generator) -> None:
    cadence = 0.9 * s.tempo  # gait cycles per second
    phase = 2 * np.pi * cadence * t + rng.uniform(0, 2 * np.pi)
    amp = s.amplitude
    for side, shift in (("l", 0.0), ("r", np.pi)):
        ph = phase + shift
        hip = 22 * amp * np.sin(ph)
        knee = 8 + s.knee_flex + 50 * amp * np.clip(np.sin(ph + 1.2), 0, None) ** 2
        ankle = 8 * amp * np.sin(ph - 0.6)
        p.flex_leg(side, hip, knee, ankle)
        p.arm(
            side,
            -18 * amp * np.sin(ph),
            6 + s.expansion,
            12 + s.elbow_flex + 10 * amp * np.sin(ph + 0.5) ** 2,
        )
    step_length = 0.36 * (0.55 + 0.45 * amp)
    speed = 2 * cadence * step_length  # two steps per cycle
    p.root[:, 2] = speed * t
    p.root[:, 1] = 0.025 * s.bounce * np.cos(2 * phase)
    p.add("pelvis", 1, 4 * amp * np.sin(phase))
    p.add("spine3", 1, -6 * amp * np.sin(phase))


def _reach(t: np.ndarray, start: float, duration: float) -> np.ndarray:
    return _smoothstep((t - start) / duration)


def _knock(p: _Pose, t: np.ndarray, s: EmotionStyle, rng: np.random.Generator) -> None:
    up = _reach(t, 0.3 / s.tempo, 0.6 / s.tempo)
    down = _reach(t, t[-1] - 0.8 / s.tempo, 0.6 / s.tempo)
    raised = up * (1 - down)
    knock_time = (t - 1.0 / s.tempo) * s.tempo
    beats = np.where(
        (knock_time > 0) & (knock_time < 1.5), np.maximum(np.sin(2 * np.pi * 2.0 * knock_time), 0), 0
    )
    p.arm(
        "r",
        raised * (70 + 10 * s.amplitude) + 12 * s.amplitude * beats,
        10 + s.expansion,
        raised * 85 - 20 * s.amplitude * beats,
    )
    p.arm("l", 4, 6 + s.expansion, 10 + s.elbow_flex)
    p.flex_leg("l", 2, 3 + s.knee_flex)
    p.flex_leg("r", 2, 3 + s.knee_flex)


def _lift(p: _Pose, t: np.ndarray, s: EmotionStyle, rng: np.random.Generator) -> None:
    dur = t[-1]
    bend = _reach(t, 0.15 * dur, 0.3 * dur / s.tempo**0.5) * (
        1 - _reach(t, 0.55 * dur, 0.3 * dur / s.tempo**0.5)
    )
    hold = _reach(t, 0.55 * dur, 0.3 * dur)
    depth = 0.7 + 0.3 * s.amplitude
    for side in ("l", "r"):
        p.flex_leg(side, 70 * depth * bend, 110 * depth * bend + s.knee_flex, 25 * bend)
        p.arm(
            side, 45 * bend + 70 * hold * s.amplitude, 8 + s.expansion, 30 * bend + 60 * hold + s.elbow_flex
        )
    p.add("spine1", 0, 35 * bend)


def _throw(p: _Pose, t: np.ndarray, s: EmotionStyle, rng: np.random.Generator) -> None:
    dur = t[-1]
    wind = _reach(t, 0.2 * dur, 0.35 * dur / s.tempo)
    release = _reach(t, 0.55 * dur, 0.12 * dur / s.tempo)
    a = s.amplitude
    p.arm(
        "r",
        wind * (-40 * a) + release * (160 * a),
        30 + s.expansion + 30 * wind * (1 - release),
        70 * wind * (1 - release) + 15,
    )
    p.arm("l", 30 * wind, 15 + s.expansion, 30 + s.elbow_flex)
    p.add("spine3", 1, -30 * a * wind + 50 * a * release)
    p.add("spine1", 0, 15 * release * a)
    p.flex_leg("l", 15 * release * a, 10 + s.knee_flex)
    p.flex_leg("r", -5 * release, 15 + s.knee_flex)


def _sit_down(p: _Pose, t: np.ndarray, s: EmotionStyle, rng: np.random.Generator) -> None:
    dur = t[-1]
    sit = _reach(t, 0.2 * dur, 0.5 * dur / s.tempo**0.5)
    lean_phase = np.sin(np.pi * np.clip((t - 0.2 * dur) / (0.6 * dur), 0, 1))
    for side in ("l", "r"):
        p.flex_leg(side, 90 * sit, 90 * sit + s.knee_flex * (1 - sit), 0)
        p.arm(side, 20 * sit, 8 + s.expansion, 30 * sit + s.elbow_flex)
    p.add("spine1", 0, 30 * lean_phase)
    p.root[:, 2] = -0.1 * sit


def _wave(p: _Pose, t: np.ndarray, s: EmotionStyle, rng: np.random.Generator) -> None:
    up = _reach(t, 0.3 / s.tempo, 0.5 / s.tempo) * (1 - _reach(t, t[-1] - 0.7 / s.tempo, 0.5 / s.tempo))
    wave = np.sin(2 * np.pi * 2.0 * s.tempo * t)
    p.arm("r", 20 * up, up * (130 + 25 * (s.amplitude - 1)) + s.expansion, up * 40 + 0 * t)
    p.add("r_elbow", 2, -up * 28 * s.amplitude * wave)
    p.arm("l", 3, 6 + s.expansion, 10 + s.elbow_flex)
    p.flex_leg("l", 2, 3 + s.knee_flex)
    p.flex_leg("r", 2, 3 + s.knee_flex)


ActionFn = Callable[[_Pose, np.ndarray, EmotionStyle, np.random.Generator], None]
ACTIONS: dict[str, ActionFn] = {
    "walk": _walk,
    "knock": _knock,
    "lift": _lift,
    "throw": _throw,
    "sit_down": _sit_down,
    "wave": _wave,
}


def _actor_offsets(actor: int) -> tuple[np.ndarray, float, float]:
    rng = np.random.default_rng(1000 + actor)
    scale = rng.uniform(0.93, 1.07) * rng.uniform(0.97, 1.03, sk.NUM_JOINTS)
    offsets = _REST_DIRS * (sk.BONE_LENGTHS * scale)[:, None]
    return offsets, float(rng.uniform(0.94, 1.06)), float(rng.uniform(0.9, 1.1))


def generate_clip(
    action: str,
    emotion: str,
    *,
    seconds: float = 4.0,
    intensity: float = 1.0,
    seed: int = 0,
    actor: int = 0,
) -> SyntheticClip:
    """One clip of ``action`` performed with ``emotion`` (see the module docstring)."""
    if action not in ACTIONS:
        raise ConfigError(f"unknown synthetic action {action!r}; choose from {', '.join(ACTIONS)}")
    if emotion not in STYLES:
        raise ConfigError(f"unknown emotion {emotion!r}; choose from {', '.join(EMOTIONS)}")
    if not MIN_SECONDS <= seconds <= MAX_SECONDS:
        raise ConfigError(f"seconds must be in [{MIN_SECONDS}, {MAX_SECONDS}], got {seconds}")
    if not 0.0 <= intensity <= 1.0:
        raise ConfigError(f"intensity must be in [0, 1], got {intensity}")
    offsets, tempo_k, amp_k = _actor_offsets(actor)
    base = STYLES[emotion].blend(intensity)
    style = EmotionStyle(
        **{**base.__dict__, "tempo": base.tempo * tempo_k, "amplitude": base.amplitude * amp_k}
    )
    frames = round(seconds * sk.FPS)
    t = np.arange(frames) / sk.FPS
    rng = np.random.default_rng(zlib.crc32(f"{action}|{seed}|{actor}".encode()))
    pose = _Pose(frames)
    ACTIONS[action](pose, t, style, rng)
    # posture: torso lean split over the spine, head pitch on the neck and head
    pose.add("spine1", 0, 0.4 * style.lean)
    pose.add("spine2", 0, 0.3 * style.lean)
    pose.add("spine3", 0, 0.3 * style.lean)
    pose.add("neck", 0, 0.5 * style.head_pitch)
    pose.add("head", 0, 0.5 * style.head_pitch)
    noise_rng = np.random.default_rng(zlib.crc32(f"noise|{seed}|{actor}|{action}".encode()))
    if style.jerk:
        for joint in ("l_shoulder", "r_shoulder", "l_elbow", "r_elbow", "spine3", "neck"):
            pose.add(joint, 0, style.jerk * _noise(noise_rng, t, 3.0, 6.0))
    if style.tremor:
        for joint in ("l_wrist", "r_wrist", "head", "l_elbow", "r_elbow"):
            pose.add(joint, 2, style.tremor * _noise(noise_rng, t, 7.0, 9.0))
    joints = pose.joints(offsets)
    feet = [J["l_ankle"], J["r_ankle"], J["l_foot"], J["r_foot"]]
    if action == "walk":
        joints[..., 1] -= joints[:, feet, 1].min()
    else:  # standing actions keep the lowest foot on the floor in every frame
        joints[..., 1] -= joints[:, feet, 1].min(axis=1, keepdims=True)
    return SyntheticClip(joints, action, emotion, float(intensity), int(seed), f"synthetic_actor{actor}")


def generate_corpus(
    *,
    actions: list[str] | None = None,
    emotions: list[str] | None = None,
    clips_per_pair: int = 1,
    actors: int = 3,
    seconds: tuple[float, float] = (3.0, 6.0),
    seed: int = 0,
) -> Iterator[SyntheticClip]:
    """Every action x emotion, ``clips_per_pair`` times, over ``actors`` actors; deterministic."""
    rng = np.random.default_rng(seed)
    for action in actions or list(ACTIONS):
        for emotion in emotions or list(EMOTIONS):
            for _ in range(clips_per_pair):
                yield generate_clip(
                    action,
                    emotion,
                    seconds=float(rng.uniform(*seconds)),
                    seed=int(rng.integers(2**31)),
                    actor=int(rng.integers(actors)),
                )
