"""Generate motion from text with a trained model: features, joints, BVH and animations.

This module is the one path from a checkpoint to motion: :class:`MotionGenerator` is built from a
checkpoint (its config, statistics, text encoder and sampling defaults) and serves ``generate``,
``restyle``, ``eval`` (through :mod:`emomotion.evaluation.generators`), the web demo, the study and the
demo alike. How it samples is one :class:`SamplingSettings`; what a setting leaves unset comes from
:func:`sampling_defaults` of the checkpoint, stated once here.

MDM checkpoints sample with a diffusion sampler (``sampler``, ``steps``, ``eta``); MMM checkpoints
(kind ``mmm``) decode tokens iteratively: ``steps`` decoding steps, ``temperature`` and ``top_k``, and
``sampler`` does not apply. MMM lengths are whole tokens (4 frames). Emotion control:

- the emotion label (models with emotion conditioning, MDM or MMM) with its own classifier-free scale
  ``emotion_scale``: ``x0 = u + g (c_text - u) + intensity * s_e (c_full - c_text)`` (MMM: the same
  on the logits of each decoding step);
- classifier guidance with a trained emotion classifier (``emotion_guidance``, a checkpoint, and
  ``emotion_guidance_scale``, also multiplied by ``intensity``), which works for any model, labelled or
  not: MDM moves each step's clean-motion prediction up the classifier's gradient, MMM reweighs each
  decoding step's token logits by the gradient's first-order estimate (:mod:`emomotion.sampling.token_guidance`);
- ``intensity`` dials both: 0 is the text alone, 1 the default, up to 3 exaggerates.

Both families do in-betweening (a ``source`` whose first/last frames are kept); MDM also restyles a
whole clip (SDEdit, :mod:`emomotion.restyle`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from emomotion import skeleton as sk
from emomotion.checkpoint import Checkpoint, load_checkpoint
from emomotion.data.emotions import EMOTIONS
from emomotion.errors import ConfigError
from emomotion.features import recover_joints, smooth_features
from emomotion.io.atomic import save_npy
from emomotion.limits import MAX_PROMPT_CHARS, MAX_SAMPLES
from emomotion.models.condition import MotionCondition
from emomotion.sampling.diffusion import DiffusionConfig, GaussianDiffusion, sample
from emomotion.sampling.editing import inpaint, keep_mask, paste
from emomotion.sampling.guidance import classifier_free_guidance
from emomotion.sampling.settings import SamplingSettings, check_finite, emotion_index
from emomotion.text import build_text_encoder

log = logging.getLogger(__name__)


MDM_SMOOTHING = 1.0
"""MDM's default output smoothing (Gaussian sigma, frames): a diffusion sampler leaves frame-to-frame
noise, 4-18x the jerk of real motion at small scale; sigma 1 takes it to real motion's level."""


@dataclass(frozen=True)
class SamplingDefaults:
    """What a checkpoint samples with when a setting leaves it unset."""

    guidance: float
    steps: int
    emotion_scale: float = 2.5
    smoothing: float = 0.0


def sampling_defaults(ckpt: Checkpoint) -> SamplingDefaults:
    """The defaults, stated once: MDM samples its trained steps with text guidance 2.5 and label scale
    2.5, its output smoothed with sigma :data:`MDM_SMOOTHING` frames; MMM decodes in 10 steps with
    guidance 4, or 1 when it was trained without text dropout
    (imported official MMM: an unconditional pass it never learned would be noise)."""
    if ckpt.kind == "mdm":
        return SamplingDefaults(
            guidance=2.5, steps=int(diffusion_config(ckpt).steps), smoothing=MDM_SMOOTHING
        )
    trans = ckpt.config.get("trans", {})
    dropout = float(trans.get("text_drop_prob", 0.1)) if isinstance(trans, dict) else 0.1
    return SamplingDefaults(guidance=4.0 if dropout > 0 else 1.0, steps=10)


def diffusion_config(ckpt: Checkpoint) -> DiffusionConfig:
    """The one factory of a checkpoint's diffusion: its metadata's ``diffusion`` entry (tolerant of keys
    a newer version added; the official MDM default of 1000 cosine steps where absent)."""
    from emomotion.configs import dataclass_from

    return dataclass_from(DiffusionConfig, (ckpt.extra or {}).get("diffusion", {}) or {})


@dataclass(frozen=True)
class GenerateRequest:
    texts: tuple[str, ...]
    seconds: float = 6.0
    num: int = 1
    settings: SamplingSettings = field(default_factory=SamplingSettings)
    emotions: tuple[str | None, ...] = ()  # one per text (None: no label), or one for all, or none
    seed: int = 0
    source: Path | None = None  # in-betweening: source motion, HumanML3D features (T, 263) .npy
    keep_first: int = 0  # frames of ``source`` kept at the start
    keep_last: int = 0  # frames of ``source`` kept at the end

    def __post_init__(self) -> None:
        if not self.texts or any(not t.strip() for t in self.texts):
            raise ConfigError("every prompt needs some text")
        longest = max(len(t) for t in self.texts)
        if longest > MAX_PROMPT_CHARS:
            raise ConfigError(f"a prompt is {longest} characters long; the limit is {MAX_PROMPT_CHARS}")
        check_finite(length=self.seconds)
        lo, hi = sk.MIN_FRAMES / sk.FPS, sk.MAX_FRAMES / sk.FPS
        if not lo <= self.seconds <= hi:
            raise ConfigError(f"length must be between {lo:g} and {hi:g} seconds, got {self.seconds:g}")
        if not 1 <= self.num <= MAX_SAMPLES:
            raise ConfigError(f"num must be in [1, {MAX_SAMPLES}], got {self.num}")
        if len(self.emotions) not in (0, 1, len(self.texts)):
            raise ConfigError(
                f"give one emotion, or one per prompt ({len(self.texts)}), not {len(self.emotions)}"
            )
        for e in self.emotions:
            if e is not None:
                emotion_index(e)
        if self.keep_first < 0 or self.keep_last < 0:
            raise ConfigError("keep_first and keep_last are frame counts >= 0")
        if self.source is None and (self.keep_first or self.keep_last):
            raise ConfigError("keep_first/keep_last need a source motion to keep frames of")

    def emotion_of(self, i: int) -> str | None:
        if not self.emotions:
            return None
        return self.emotions[0] if len(self.emotions) == 1 else self.emotions[i]


@dataclass(frozen=True)
class GeneratedMotion:
    text: str
    features: np.ndarray  # (T, 263) de-normalised
    joints: np.ndarray  # (T, 22, 3)
    emotion: str | None = None


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:40] or "motion"


class MotionGenerator:
    """A loaded checkpoint with its text encoder, diffusion and defaults, ready to sample."""

    def __init__(self, checkpoint: str | Path | Checkpoint, device: str | torch.device = "cpu") -> None:
        self.ckpt = checkpoint if isinstance(checkpoint, Checkpoint) else load_checkpoint(checkpoint)
        if self.ckpt.kind not in ("mdm", "mmm"):
            raise ConfigError(
                f"generation for model kind {self.ckpt.kind!r} is not available", path=self.ckpt.path
            )
        self.device = torch.device(device)
        self.model = self.ckpt.build_model(use_ema=True).to(self.device).eval()
        self.encoder = build_text_encoder(self.ckpt.text_encoder)
        self.defaults = sampling_defaults(self.ckpt)
        self.diffusion = GaussianDiffusion(diffusion_config(self.ckpt)) if self.ckpt.kind == "mdm" else None
        # masked models fix at least one token per step: more steps than tokens add nothing
        self.max_steps = self.diffusion.num_steps if self.diffusion else self.model.cfg.trans.max_tokens
        self.mean = self.ckpt.mean.numpy()
        self.std = self.ckpt.std.numpy()
        self._classifiers: dict[Path, tuple[torch.nn.Module, tuple[torch.Tensor, torch.Tensor]]] = {}

    @property
    def kind(self) -> str:
        return self.ckpt.kind

    @property
    def num_emotions(self) -> int:
        """Emotion labels the model takes (0: no emotion conditioning); MMM's sit in its ``trans`` config."""
        config = self.ckpt.config if self.kind == "mdm" else self.ckpt.config.get("trans", {})
        return int(config.get("num_emotions", 0) or 0) if isinstance(config, dict) else 0

    @property
    def keeps_base(self) -> bool:
        """Whether the (MDM) model kept its base: a request without an emotion is answered by the base copy."""
        return self.kind == "mdm" and bool(self.ckpt.config.get("keep_base"))

    @property
    def default_steps(self) -> int:
        return self.defaults.steps

    def check(self, s: SamplingSettings, *, labelled: bool = False) -> SamplingSettings:
        """``s`` with the checkpoint's defaults filled in; a typed error for what this model can't do."""
        if s.steps and s.steps > self.max_steps:
            what = (
                "diffusion steps the model was trained with" if self.diffusion else "decoding steps (tokens)"
            )
            raise ConfigError(f"steps {s.steps} exceed the {self.max_steps} {what}")
        guidance = self.defaults.guidance if s.guidance is None else s.guidance
        if self.kind == "mmm":
            if labelled and not self.num_emotions:
                raise ConfigError(
                    "this MMM model has no emotion control; put the emotion in the text instead"
                )
            if guidance != 1.0 and self.defaults.guidance == 1.0:
                log.warning("this model was trained without text dropout: guidance %g ignored", guidance)
                guidance = 1.0
        elif labelled and not self.num_emotions and not self.keeps_base:
            raise ConfigError(
                "this model has no emotion conditioning: put the emotion in the text, or steer with an "
                "emotion classifier (--emotion-guidance)"
            )
        scale = s.emotion_scale
        if scale is None and self.num_emotions:
            scale = self.defaults.emotion_scale
        smoothing = self.defaults.smoothing if s.smoothing is None else s.smoothing
        return replace(s, steps=s.steps or self.defaults.steps, guidance=guidance, emotion_scale=scale,
                       top_k=s.top_k or None, smoothing=smoothing)  # fmt: skip

    def _classifier(self, path: Path) -> tuple[torch.nn.Module, tuple[torch.Tensor, torch.Tensor]]:
        """An emotion classifier and the affine map from this model's normalisation to its own."""
        path = Path(path)
        if path not in self._classifiers:
            ckpt = load_checkpoint(path)
            if ckpt.kind != "emotion_classifier":
                raise ConfigError(f"not an emotion classifier but a {ckpt.kind!r} checkpoint", path=ckpt.path)
            net = ckpt.build_model().to(self.device).eval()
            mean = torch.as_tensor(self.mean, device=self.device)
            std = torch.as_tensor(self.std, device=self.device)
            a = std / net.std
            b = (mean - net.mean) / net.std
            self._classifiers[path] = (net, (a, b))
        return self._classifiers[path]

    def sample(
        self,
        texts: Sequence[str],
        lengths: Sequence[int],
        seed: int,
        settings: SamplingSettings | None = None,
        *,
        emotions: Sequence[int] | None = None,
        init: torch.Tensor | None = None,
        strength: float = 1.0,
        keep: torch.Tensor | None = None,
    ) -> list[np.ndarray]:
        """Features (T_i, 263), de-normalised, for ``texts`` of ``lengths`` frames, one batch.

        ``emotions`` (index per text, -1 = none) set the label and the classifier guidance's target.
        MDM only: ``init`` (1 or B, T, 263), normalised, with ``strength`` restyles it (SDEdit) or, with
        ``keep`` (T,) bool, is kept on those frames (in-betweening). The output is smoothed in time
        (``smoothing``) except where it is the input: kept frames, and a restyle at strength 0."""
        if len(texts) != len(lengths):
            raise ConfigError("one length per text")
        settings = settings or SamplingSettings()
        labels = (
            None if emotions is None else torch.tensor(list(emotions), dtype=torch.long, device=self.device)
        )
        labelled = labels is not None and bool((labels >= 0).any())
        s = self.check(
            settings, labelled=labelled and settings.emotion_scale != 0.0 and not settings.emotion_guidance
        )
        with torch.no_grad():
            if self.kind == "mmm":
                x = self._masked(texts, lengths, seed, s, labels, init, keep)
            else:
                x = self._diffuse(texts, lengths, seed, s, labels, init, strength, keep)
        out = [f[:n] * self.std + self.mean for f, n in zip(x, lengths, strict=True)]
        if not s.smoothing or (init is not None and keep is None and strength == 0):
            return out
        smoothed = [smooth_features(f, float(s.smoothing)) for f in out]
        if keep is not None:
            kept = keep.cpu().numpy()
            for f, raw in zip(smoothed, out, strict=True):
                f[kept[: len(f)]] = raw[kept[: len(f)]]
        return smoothed

    def _diffuse(
        self,
        texts: Sequence[str],
        lengths: Sequence[int],
        seed: int,
        s: SamplingSettings,
        labels: torch.Tensor | None,
        init: torch.Tensor | None,
        strength: float,
        keep: torch.Tensor | None,
    ) -> np.ndarray:
        assert self.diffusion is not None
        t = max(lengths)
        n = torch.tensor(list(lengths), device=self.device)
        mask = torch.arange(t, device=self.device)[None, :] < n[:, None]  # (B, T)
        use_label = labels is not None and self.num_emotions > 0 and s.emotion_scale != 0.0
        # a model that kept its base routes by the emotion asked for, even when its label is not used
        routed = labels is not None and not use_label and self.keeps_base
        cond = MotionCondition(
            self.encoder.encode(list(texts), device=self.device),
            emotion=labels if use_label or routed else None,
            drop_emotion=torch.ones(len(texts), dtype=torch.bool, device=self.device) if routed else None,
        )
        scale = s.intensity * s.emotion_scale if use_label and s.emotion_scale is not None else None
        denoise = classifier_free_guidance(self.model, cond, text_scale=float(s.guidance), emotion_scale=scale,
                                           mask=mask)  # fmt: skip
        if s.classifier_guided and labels is not None:
            from emomotion.sampling.emotion_guidance import classifier_guidance

            net, affine = self._classifier(s.emotion_guidance)  # type: ignore[arg-type]
            denoise = classifier_guidance(
                denoise, net, labels, n, affine, s.intensity * s.emotion_guidance_scale
            )
        if init is not None and keep is not None:
            denoise = inpaint(denoise, init, keep)
        x = sample(
            self.diffusion, denoise, (len(texts), t, sk.FEATURE_DIM), sampler=s.sampler, steps=s.steps,
            seed=seed, device=self.device, mask=mask, eta=s.eta,
            init=init if keep is None else None, strength=strength, noise_scale=s.noise_scale,
        )  # fmt: skip
        if init is not None and keep is not None:  # the kept frames exactly as given
            x = paste(x, init, keep)
        return x.float().cpu().numpy()

    def _masked(
        self,
        texts: Sequence[str],
        lengths: Sequence[int],
        seed: int,
        s: SamplingSettings,
        labels: torch.Tensor | None,
        init: torch.Tensor | None,
        keep: torch.Tensor | None,
    ) -> list[np.ndarray]:
        """Iterative masked decoding (MMM), then the VQ decoder; lengths padded up from whole tokens.
        ``labels`` guide a model with emotion conditioning at ``intensity`` x ``emotion_scale``."""
        from emomotion.sampling.masked import (
            MaskedDecodingConfig,
            decode_motion,
            decode_tokens,
            frames_to_tokens,
            inbetween_motion,
        )

        use_label = labels is not None and self.num_emotions > 0 and bool(s.emotion_scale)
        decoding = MaskedDecodingConfig(
            steps=int(s.steps or self.defaults.steps), temperature=s.temperature, top_k=s.top_k,
            guidance=float(s.guidance), emotion_scale=float(s.emotion_scale or 0.0) if use_label else 0.0,
            intensity=s.intensity,
        )  # fmt: skip
        emotion = labels if use_label else None
        text = self.encoder.encode(list(texts), device=self.device)
        if init is not None and keep is None:
            raise ConfigError("MMM cannot restyle a clip; it does in-betweening (keep_first/keep_last)")
        frames = [init.shape[1]] * len(lengths) if init is not None else list(lengths)
        tokens = [frames_to_tokens(self.model, n) for n in frames]
        guide = None
        if s.classifier_guided and labels is not None:
            from emomotion.sampling.token_guidance import token_guidance

            net, affine = self._classifier(s.emotion_guidance)  # type: ignore[arg-type]
            counts = torch.tensor(tokens, device=self.device)
            guide = token_guidance(
                self.model.vq, net, labels, counts, affine, s.intensity * s.emotion_guidance_scale
            )
        if init is not None and keep is not None:
            first = int(keep.long().cumprod(0).sum())
            last = int(keep.flip(0).long().cumprod(0).sum())
            x, _ = inbetween_motion(
                self.model,
                text,
                init[0].cpu(),
                first,
                last,
                decoding,
                seed=seed,
                emotion=emotion,
                guide=guide,
            )
            motions = list(x)
        else:
            ids = decode_tokens(self.model, text, tokens, decoding, seed=seed, emotion=emotion, guide=guide)
            motions = decode_motion(self.model, ids)
        out = []
        for motion, n in zip(motions, lengths, strict=True):
            m = motion.float().cpu().numpy()  # (4 (n // 4), 263): tokens cover whole 4-frame units
            out.append(
                np.concatenate([m, np.repeat(m[-1:], n - m.shape[0], axis=0)]) if m.shape[0] < n else m
            )
        return out

    def __call__(self, request: GenerateRequest) -> list[GeneratedMotion]:
        """Every prompt x ``num`` samples in one batch; each distinct text is encoded once."""
        items = [(t, request.emotion_of(i)) for i, t in enumerate(request.texts) for _ in range(request.num)]
        texts = [t for t, _ in items]
        frames = round(request.seconds * sk.FPS)
        if self.kind == "mmm":  # whole 4-frame tokens
            frames -= frames % 4
        init = keep = None
        if request.source is not None:
            init = torch.from_numpy(self.normalise(load_features(request.source))).to(self.device)[None]
            frames = init.shape[1] - (init.shape[1] % 4 if self.kind == "mmm" else 0)
            init = init[:, :frames]
            keep = keep_mask(frames, request.keep_first, request.keep_last)
        emotions = [emotion_index(e) if e is not None else -1 for _, e in items]
        feats = self.sample(
            texts, [frames] * len(texts), request.seed, request.settings,
            emotions=emotions if any(e >= 0 for e in emotions) else None, init=init, keep=keep,
        )  # fmt: skip
        return motions_from(items, feats)

    def normalise(self, features: np.ndarray) -> np.ndarray:
        return ((features - self.mean) / self.std).astype(np.float32)


def motions_from(
    items: Sequence[tuple[str, str | None]], feats: Sequence[np.ndarray]
) -> list[GeneratedMotion]:
    joints = [recover_joints(f) for f in feats]
    return [
        GeneratedMotion(t, f.astype(np.float32), j, None if e is None else EMOTIONS[emotion_index(e)])
        for (t, e), f, j in zip(items, feats, joints, strict=True)
    ]


def load_features(path: Path) -> np.ndarray:
    """A source motion for editing: HumanML3D features (T, 263) ``.npy``, checked."""
    try:
        motion = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the source motion: {exc}", path=path) from exc
    if motion.ndim != 2 or motion.shape[1] != sk.FEATURE_DIM:
        raise ConfigError(
            f"the source motion must be HumanML3D features (frames, {sk.FEATURE_DIM}), got {motion.shape}",
            path=path,
        )
    return check_source(motion, path)


def check_source(motion: np.ndarray, path: Path | None) -> np.ndarray:
    if not np.isfinite(motion).all():
        raise ConfigError("the source motion holds NaN or infinite values", path=path)
    if not sk.MIN_FRAMES <= len(motion) <= sk.MAX_FRAMES:
        raise ConfigError(
            f"the source motion has {len(motion)} frames; use {sk.MIN_FRAMES} to {sk.MAX_FRAMES}", path=path
        )
    return motion.astype(np.float32)


def generate_to(
    out: Path, motions: list[GeneratedMotion], *, formats: tuple[str, ...] = ("npy", "bvh", "gif")
) -> list[Path]:
    """Write each motion's files under ``out/NN_<text>/`` and a grid when there are several."""
    from emomotion.export.smpl_bvh import save_smpl_bvh
    from emomotion.render import render_animation, render_grid

    written: list[Path] = []
    for i, m in enumerate(motions):
        tag = m.text if m.emotion is None or m.emotion.lower() in m.text.lower() else f"{m.text} {m.emotion}"
        folder = out / f"{i:02d}_{_slug(tag)}"
        if "npy" in formats:
            written.append(save_npy(folder / "features.npy", m.features))
            written.append(save_npy(folder / "joints.npy", m.joints.astype(np.float32)))
        if "bvh" in formats:
            written.append(save_smpl_bvh(folder / "motion.bvh", m.joints))
        for fmt in ("gif", "mp4"):
            if fmt in formats:
                title = m.text if m.emotion is None else f"{m.text} ({m.emotion})"
                written.append(render_animation(m.joints, folder / f"motion.{fmt}", title=title))
    if len(motions) > 1 and ("gif" in formats or "mp4" in formats):
        ext = "gif" if "gif" in formats else "mp4"
        written.append(
            render_grid(
                [m.joints for m in motions],
                out / f"grid.{ext}",
                titles=[m.text if m.emotion is None else f"{m.text} ({m.emotion})" for m in motions],
            )
        )
    return written
