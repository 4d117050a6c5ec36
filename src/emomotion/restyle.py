"""Re-express an existing motion in an emotion (SDEdit, Meng et al. 2022, with an MDM checkpoint).

The clip (BVH, joints or features ``.npy``, read by :func:`emomotion.convert.load_motion`) is turned
into the model's features, noised to the level that leaves ``strength`` of the sampler's steps, and
denoised with the emotion condition (the label, when the model has one, and/or classifier guidance):
strength 0 gives the clip back, 1 is free generation from the text, and in between the clip's coarse
structure (its path and timing) survives in proportion to ``1 - strength``. Its length is kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from emomotion import skeleton as sk
from emomotion.data.emotions import EMOTIONS
from emomotion.errors import ConfigError
from emomotion.generate import (
    GeneratedMotion,
    MotionGenerator,
    SamplingSettings,
    check_source,
    emotion_index,
    motions_from,
)
from emomotion.limits import MAX_PROMPT_CHARS


@dataclass(frozen=True)
class RestyleRequest:
    clip: Path
    emotion: str
    strength: float = 0.5
    text: str | None = None  # the prompt; default "a person moves with <emotion>"
    num: int = 1
    seed: int = 0
    settings: SamplingSettings = field(default_factory=SamplingSettings)
    joint_map: str | None = None  # BVH clips: the joint map (default: detected)

    def __post_init__(self) -> None:
        if not np.isfinite(self.strength) or not 0.0 <= self.strength <= 1.0:
            raise ConfigError(
                f"strength must be in [0, 1] (0 = unchanged, 1 = free generation), got {self.strength}"
            )
        emotion_index(self.emotion)
        if self.text is not None and (not self.text.strip() or len(self.text) > MAX_PROMPT_CHARS):
            raise ConfigError(f"the text must hold 1 to {MAX_PROMPT_CHARS} characters")
        if not 1 <= self.num <= 64:
            raise ConfigError(f"num must be in [1, 64], got {self.num}")

    @property
    def prompt(self) -> str:
        return self.text or f"a person moves with {EMOTIONS[emotion_index(self.emotion)].lower()}"


def load_clip(path: Path, joint_map: str | None = None) -> np.ndarray:
    """Any supported motion file -> HumanML3D features (T, 263), checked for editing."""
    from emomotion.convert import load_motion
    from emomotion.errors import EmomotionError

    try:
        motion = load_motion(path, joint_map=joint_map)
    except EmomotionError as exc:
        raise ConfigError(f"cannot read the clip: {exc.reason}", path=exc.path or path) from exc
    return check_source(motion.features, path)


def restyle(generator: MotionGenerator, request: RestyleRequest) -> list[GeneratedMotion]:
    """``request.num`` re-expressions of the clip, each as long as the clip."""
    if generator.kind != "mdm":
        raise ConfigError("restyling needs a diffusion (MDM) checkpoint")
    settings = request.settings
    if not generator.num_emotions and settings.emotion_guidance is None:
        raise ConfigError(
            "this model has no emotion conditioning: restyle with a labelled model, or steer with an "
            "emotion classifier (--emotion-guidance)"
        )
    feats = load_clip(request.clip, request.joint_map)
    init = torch.from_numpy(generator.normalise(feats)).to(generator.device)[None]
    frames = int(init.shape[1])
    label = emotion_index(request.emotion)
    out = generator.sample(
        [request.prompt] * request.num,
        [frames] * request.num,
        request.seed,
        settings,
        emotions=[label] * request.num,
        init=init,
        strength=request.strength,
    )
    assert all(f.shape == (frames, sk.FEATURE_DIM) for f in out)
    return motions_from([(request.prompt, request.emotion)] * request.num, out)
