"""Generate motion from text with a trained model: features, joints, BVH and animations.

One request is one batch: every prompt x ``num`` samples are drawn together, and each distinct
text is encoded once. MDM checkpoints sample with a diffusion sampler (``sampler``, ``steps``); MMM
checkpoints (kind ``mmm``) decode tokens iteratively: ``steps`` is the number of decoding steps
(default 10), ``temperature`` and ``top_k`` shape the sampling (temperature 0 = greedy), ``guidance``
is the classifier-free scale, and ``sampler`` does not apply. MMM lengths are whole tokens (4 frames).
Both families do in-betweening: given a ``source`` motion (HumanML3D features, .npy), its first
``keep_first`` and last ``keep_last`` frames are kept and the middle generated from the text (MDM:
the kept frames overwrite each step's clean-motion prediction; MMM: their tokens are fixed); the
length is then the source's.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from emomotion import skeleton as sk
from emomotion.checkpoint import Checkpoint, load_checkpoint
from emomotion.data.emotions import EMOTION_INDEX, canonical_label
from emomotion.errors import ConfigError
from emomotion.features import recover_joints
from emomotion.io.atomic import save_npy
from emomotion.limits import MAX_GUIDANCE, MAX_PROMPT_CHARS, MAX_SAMPLES
from emomotion.models.condition import MotionCondition
from emomotion.sampling.diffusion import SAMPLERS, DiffusionConfig, GaussianDiffusion, sample
from emomotion.sampling.editing import inpaint, keep_mask, paste
from emomotion.sampling.guidance import classifier_free_guidance
from emomotion.text import build_text_encoder

log = logging.getLogger(__name__)
DEFAULT_DECODING_STEPS = 10  # masked models (MMM uses <= 10)


@dataclass(frozen=True)
class GenerateRequest:
    texts: tuple[str, ...]
    seconds: float = 6.0
    num: int = 1
    sampler: str = "ddpm"
    steps: int | None = None
    guidance: float = 2.5
    emotion: str | None = None
    emotion_scale: float | None = None
    intensity: float = 1.0
    seed: int = 0
    temperature: float = 1.0  # masked models: sampling temperature (0 = greedy)
    top_k: int | None = None  # masked models: sample among the k most likely codes
    source: Path | None = None  # in-betweening: source motion, HumanML3D features (T, 263) .npy
    keep_first: int = 0  # frames of ``source`` kept at the start
    keep_last: int = 0  # frames of ``source`` kept at the end

    def __post_init__(self) -> None:
        if not self.texts or any(not t.strip() for t in self.texts):
            raise ConfigError("every prompt needs some text")
        longest = max(len(t) for t in self.texts)
        if longest > MAX_PROMPT_CHARS:
            raise ConfigError(f"a prompt is {longest} characters long; the limit is {MAX_PROMPT_CHARS}")
        lo, hi = sk.MIN_FRAMES / sk.FPS, sk.MAX_FRAMES / sk.FPS
        if not lo <= self.seconds <= hi:
            raise ConfigError(f"length must be between {lo:g} and {hi:g} seconds, got {self.seconds:g}")
        if not 1 <= self.num <= MAX_SAMPLES:
            raise ConfigError(f"num must be in [1, {MAX_SAMPLES}], got {self.num}")
        if not 0.0 <= self.guidance <= MAX_GUIDANCE:  # NaN fails too
            raise ConfigError(f"guidance must be in [0, {MAX_GUIDANCE:g}], got {self.guidance:g}")
        if self.emotion_scale is not None and not 0.0 <= self.emotion_scale <= MAX_GUIDANCE:
            raise ConfigError(f"emotion_scale must be in [0, {MAX_GUIDANCE:g}], got {self.emotion_scale:g}")
        if self.sampler not in SAMPLERS:
            raise ConfigError(f"unknown sampler {self.sampler!r}; choose from {', '.join(SAMPLERS)}")
        if not 0.0 <= self.intensity <= 1.0:
            raise ConfigError("intensity must be in [0, 1]")
        if not 0.0 <= self.temperature <= 100.0:
            raise ConfigError(f"temperature must be in [0, 100], got {self.temperature:g}")
        if self.top_k is not None and self.top_k < 1:
            raise ConfigError(f"top_k must be >= 1, got {self.top_k}")
        if self.steps is not None and self.steps < 1:
            raise ConfigError(f"steps must be >= 1, got {self.steps}")
        if self.keep_first < 0 or self.keep_last < 0:
            raise ConfigError("keep_first and keep_last are frame counts >= 0")
        if self.source is None and (self.keep_first or self.keep_last):
            raise ConfigError("keep_first/keep_last need a source motion to keep frames of")


@dataclass(frozen=True)
class GeneratedMotion:
    text: str
    features: np.ndarray  # (T, 263) de-normalised
    joints: np.ndarray  # (T, 22, 3)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:40] or "motion"


class MotionGenerator:
    """A loaded checkpoint with its text encoder and diffusion, ready to sample."""

    def __init__(self, checkpoint: str | Path | Checkpoint, device: str | torch.device = "cpu") -> None:
        self.ckpt = checkpoint if isinstance(checkpoint, Checkpoint) else load_checkpoint(checkpoint)
        if self.ckpt.kind not in ("mdm", "mmm"):
            raise ConfigError(
                f"generation for model kind {self.ckpt.kind!r} is not available", path=self.ckpt.path
            )
        self.device = torch.device(device)
        self.model = self.ckpt.build_model(use_ema=True).to(self.device)
        self.encoder = build_text_encoder(self.ckpt.text_encoder)
        self.diffusion: GaussianDiffusion | None = None
        if self.ckpt.kind == "mdm":
            self.diffusion = GaussianDiffusion(
                DiffusionConfig(**(self.ckpt.extra or {}).get("diffusion", {}))
            )
        else:
            # at least one token is fixed per step: more steps than tokens add nothing
            self.max_steps = self.model.cfg.trans.max_tokens
            self.default_steps = DEFAULT_DECODING_STEPS
        self.mean = self.ckpt.mean.numpy()
        self.std = self.ckpt.std.numpy()

    def __call__(self, request: GenerateRequest) -> list[GeneratedMotion]:
        if self.diffusion is None:
            return self._masked(request)
        if request.steps is not None and request.steps > self.diffusion.num_steps:
            raise ConfigError(
                f"steps {request.steps} exceed the {self.diffusion.num_steps} the model was trained with"
            )
        texts = [t for t in request.texts for _ in range(request.num)]
        frames = round(request.seconds * sk.FPS)
        known = keep = None
        if request.source is not None:
            known = torch.from_numpy(self._source(request.source)).to(self.device)[None]
            frames = known.shape[1]
            keep = keep_mask(frames, request.keep_first, request.keep_last)
        emotion = intensity = None
        num_emotions = self.ckpt.config.get("num_emotions", 0)
        if request.emotion is not None:
            if not num_emotions:
                raise ConfigError(
                    "this model has no emotion conditioning; put the emotion in the text instead"
                )
            try:
                label = canonical_label(request.emotion).emotion
            except KeyError as exc:
                raise ConfigError(str(exc.args[0])) from exc
            if label is None:
                raise ConfigError(f"unknown emotion {request.emotion!r}")
            emotion = torch.full((len(texts),), EMOTION_INDEX[label], device=self.device)
            intensity = torch.full((len(texts),), float(request.intensity), device=self.device)
        cond = MotionCondition(
            self.encoder.encode(texts, device=self.device), emotion=emotion, intensity=intensity
        )
        scale = request.emotion_scale if emotion is not None else None
        denoise = classifier_free_guidance(self.model, cond, text_scale=request.guidance, emotion_scale=scale)
        if known is not None and keep is not None:
            denoise = inpaint(denoise, known, keep)
        with torch.no_grad():
            x = sample(
                self.diffusion,
                denoise,
                (len(texts), frames, sk.FEATURE_DIM),
                sampler=request.sampler,
                steps=request.steps,
                seed=request.seed,
                device=self.device,
            )
        if known is not None and keep is not None:  # the kept frames exactly as given
            x = paste(x, known, keep)
        feats = x.cpu().numpy() * self.std + self.mean
        joints = recover_joints(feats)
        return [GeneratedMotion(t, feats[i].astype(np.float32), joints[i]) for i, t in enumerate(texts)]

    def _masked(self, request: GenerateRequest) -> list[GeneratedMotion]:
        """Iterative masked decoding (MMM) of every prompt x ``num``, then the VQ decoder."""
        from emomotion.sampling.masked import MaskedDecodingConfig, generate_motion, inbetween_motion

        if request.emotion is not None:
            raise ConfigError("this model has no emotion conditioning; put the emotion in the text instead")
        if request.steps is not None and request.steps > self.max_steps:
            raise ConfigError(f"decoding steps must be at most {self.max_steps}, got {request.steps}")
        guidance = request.guidance
        if guidance != 1.0 and self.model.cfg.trans.text_drop_prob == 0.0:
            log.warning("this model was trained without text dropout: guidance %g ignored", guidance)
            guidance = 1.0
        decoding = MaskedDecodingConfig(
            steps=request.steps or self.default_steps,
            temperature=request.temperature,
            top_k=request.top_k,
            guidance=guidance,
        )
        texts = [t for t in request.texts for _ in range(request.num)]
        frames = round(request.seconds * sk.FPS)
        text = self.encoder.encode(texts, device=self.device)
        if request.source is not None:
            source = torch.from_numpy(self._source(request.source))
            x, _ = inbetween_motion(
                self.model,
                text,
                source,
                request.keep_first,
                request.keep_last,
                decoding,
                seed=request.seed,
            )
        else:
            x, _ = generate_motion(self.model, text, frames, decoding, seed=request.seed)
        feats = x.cpu().numpy() * self.std + self.mean
        joints = recover_joints(feats)
        return [GeneratedMotion(t, feats[i].astype(np.float32), joints[i]) for i, t in enumerate(texts)]

    def _source(self, path: Path) -> np.ndarray:
        """The in-betweening source (HumanML3D features), checked and normalised with the model's
        statistics."""
        try:
            motion = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read the source motion: {exc}", path=path) from exc
        if motion.ndim != 2 or motion.shape[1] != sk.FEATURE_DIM:
            raise ConfigError(
                f"the source motion must be HumanML3D features (frames, {sk.FEATURE_DIM}), "
                f"got {motion.shape}",
                path=path,
            )
        if not np.isfinite(motion).all():
            raise ConfigError("the source motion holds NaN or infinite values", path=path)
        if not sk.MIN_FRAMES <= len(motion) <= sk.MAX_FRAMES:
            raise ConfigError(
                f"the source motion has {len(motion)} frames; use {sk.MIN_FRAMES} to {sk.MAX_FRAMES}",
                path=path,
            )
        return ((motion - self.mean) / self.std).astype(np.float32)


def generate_to(
    out: Path, motions: list[GeneratedMotion], *, formats: tuple[str, ...] = ("npy", "bvh", "gif")
) -> list[Path]:
    """Write each motion's files under ``out/NN_<text>/`` and a grid when there are several."""
    from emomotion.export.smpl_bvh import save_smpl_bvh
    from emomotion.render import render_animation, render_grid

    written: list[Path] = []
    for i, m in enumerate(motions):
        folder = out / f"{i:02d}_{_slug(m.text)}"
        if "npy" in formats:
            written.append(save_npy(folder / "features.npy", m.features))
            written.append(save_npy(folder / "joints.npy", m.joints.astype(np.float32)))
        if "bvh" in formats:
            written.append(save_smpl_bvh(folder / "motion.bvh", m.joints))
        for fmt in ("gif", "mp4"):
            if fmt in formats:
                written.append(render_animation(m.joints, folder / f"motion.{fmt}", title=m.text))
    if len(motions) > 1 and ("gif" in formats or "mp4" in formats):
        ext = "gif" if "gif" in formats else "mp4"
        written.append(
            render_grid([m.joints for m in motions], out / f"grid.{ext}", titles=[m.text for m in motions])
        )
    return written
