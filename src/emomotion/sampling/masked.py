"""Iterative parallel decoding for the masked motion model (MaskGIT, Chang et al. 2022; as MMM).

All motion tokens start masked. Each step predicts every position at once, fills the masked ones
(sampled with temperature and top-k, or greedy at temperature 0) and re-masks the least confident of
the newly filled tokens, so that ``floor(n cos(pi/2 (s + 1) / S))`` stay masked after step ``s``
(none after the last). Tokens fixed once stay fixed. Classifier-free guidance batches the conditional
and the text-dropped pass in one call: ``logits = u + g (c - u)``. A model with an emotion-label table
given labels adds the label's own guidance, as MDM does (in logit space here):
``logits = u + g (c_text - u) + intensity * s_e (c_full - c_text)``, where ``u`` drops text and label,
``c_text`` keeps the text only and ``c_full`` both; label scale or intensity 0 is exactly the text-only
decoding. The length must be given; it is rounded down to whole tokens (4 frames each). All randomness
comes from one seeded generator.

In-betweening (:func:`inbetween_motion`, MMM's editing task) fixes the tokens of a given motion's
first and last frames and decodes only the free ones in between; the schedule then counts the free
tokens only, so without fixed tokens decoding is exactly the plain one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from emomotion.errors import ConfigError
from emomotion.models.masked import MMM
from emomotion.sampling.editing import keep_mask, paste
from emomotion.sampling.token_guidance import TokenGuide
from emomotion.text.base import TextEmbedding


@dataclass(frozen=True)
class MaskedDecodingConfig:
    steps: int = 10
    temperature: float = 1.0  # 0 = greedy (argmax)
    top_k: int | None = None  # sample among the k most likely codes only
    guidance: float = 1.0  # classifier-free guidance scale; 1 = conditional pass only
    emotion_scale: float = 0.0  # the emotion label's own guidance scale (models with a label table)
    intensity: float = 1.0  # multiplies emotion_scale: 0 = the text alone

    @property
    def label_scale(self) -> float:
        """The weight of ``c_full - c_text``: ``intensity * emotion_scale``."""
        return self.intensity * self.emotion_scale

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ConfigError(f"decoding steps must be >= 1, got {self.steps}")
        if self.temperature < 0:
            raise ConfigError(f"temperature must be >= 0, got {self.temperature}")
        if self.top_k is not None and self.top_k < 1:
            raise ConfigError(f"top_k must be >= 1, got {self.top_k}")
        if self.emotion_scale < 0 or self.intensity < 0:
            raise ConfigError(
                f"emotion_scale and intensity must be >= 0, got {self.emotion_scale}, {self.intensity}"
            )


def _repeat_text(text: TextEmbedding, k: int) -> TextEmbedding:
    return TextEmbedding(text.sentence.repeat(k, 1), text.tokens.repeat(k, 1, 1), text.mask.repeat(k, 1))


def guided_logits(
    model: MMM,
    ids: torch.Tensor,
    text: TextEmbedding,
    token_mask: torch.Tensor,
    guidance: float,
    emotion: torch.Tensor | None = None,
    label_scale: float = 0.0,
) -> torch.Tensor:
    """(B, N) -> guided logits (B, N, K), every pass in one batched call: ``u`` (text and label
    dropped) unless ``guidance`` is 1, ``c_text`` (label dropped), and ``c_full`` when ``emotion`` (B,)
    labels are given to a model with a label table and ``label_scale`` (intensity x emotion scale) > 0."""
    b = ids.shape[0]
    labelled = emotion is not None and label_scale != 0.0 and model.cfg.trans.num_emotions > 0
    if guidance == 1.0 and not labelled:
        return model(ids, text, token_mask).float()
    # (drop text, drop label) per pass: c_text first, then u, then c_full
    passes = (
        [(False, True)] + ([(True, True)] if guidance != 1.0 else []) + ([(False, False)] if labelled else [])
    )
    k = len(passes)
    drop_text = torch.tensor([p[0] for p in passes], device=ids.device).repeat_interleave(b)
    drop_label = torch.tensor([p[1] for p in passes], device=ids.device).repeat_interleave(b)
    labels = emotion.repeat(k) if labelled and emotion is not None else None
    out = model(
        ids.repeat(k, 1), _repeat_text(text, k), token_mask.repeat(k, 1), drop_text, labels, drop_label
    )
    chunks = out.float().chunk(k)
    text_only = chunks[0]
    logits = text_only if guidance == 1.0 else chunks[1] + guidance * (text_only - chunks[1])
    return logits + label_scale * (chunks[-1] - text_only) if labelled else logits


@torch.no_grad()
def decode_tokens(
    model: MMM,
    text: TextEmbedding,
    num_tokens: torch.Tensor | Sequence[int],
    cfg: MaskedDecodingConfig = MaskedDecodingConfig(),
    *,
    seed: int = 0,
    fixed: torch.Tensor | None = None,
    emotion: torch.Tensor | None = None,
    guide: TokenGuide | None = None,
) -> torch.Tensor:
    """Token ids (B, max n + 1): ``n_b`` codes, END, then PAD. ``text`` holds B texts. ``fixed``
    (B, max n), optional: codes to keep at their positions, -1 where the model decodes. ``emotion``
    (B,) labels (-1 = none), guided with ``cfg.emotion_scale`` x ``cfg.intensity``. ``guide`` (e.g.
    :func:`emomotion.sampling.token_guidance.token_guidance`) adjusts each step's guided logits."""
    tcfg = model.cfg.trans
    device = text.sentence.device
    n = torch.as_tensor(num_tokens, dtype=torch.long, device=device)  # (B,)
    if n.ndim != 1 or n.shape[0] != text.sentence.shape[0]:
        raise ConfigError("give one token count per text")
    if int(n.min()) < 1 or int(n.max()) > tcfg.max_tokens:
        raise ConfigError(f"token counts must be in [1, {tcfg.max_tokens}], got {n.tolist()}")
    gen = torch.Generator(device=device).manual_seed(seed)
    pos = torch.arange(int(n.max()) + 1, device=device)[None]  # (1, N)
    real = pos < n[:, None]  # (B, N)
    token_mask = pos <= n[:, None]  # motion tokens and END
    ids = torch.full(real.shape, tcfg.pad_id, dtype=torch.long, device=device)
    ids[real] = tcfg.mask_id
    ids[pos == n[:, None]] = tcfg.end_id
    if fixed is not None:
        ids = _apply_fixed(ids, fixed.to(device), real, tcfg.num_codes)
    free = (ids == tcfg.mask_id).sum(-1)  # (B,) tokens to decode
    for step in range(cfg.steps):
        logits = guided_logits(
            model, ids, text, token_mask, cfg.guidance, emotion, cfg.label_scale
        )  # (B, N, K)
        if guide is not None:
            logits = guide(logits, ids, ids == tcfg.mask_id)
        probs = logits.softmax(-1)
        if cfg.top_k is not None and cfg.top_k < logits.shape[-1]:
            kth = logits.topk(cfg.top_k, dim=-1).values[..., -1:]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        if cfg.temperature == 0:
            pred = logits.argmax(-1)
        else:
            u = torch.rand(logits.shape, generator=gen, device=device).clamp(1e-20, 1.0)
            gumbel = -torch.log((-torch.log(u)).clamp(min=1e-20))
            pred = (logits / cfg.temperature + gumbel).argmax(-1)
        is_mask = ids == tcfg.mask_id
        ids = torch.where(is_mask, pred, ids)
        masked_count = is_mask.sum(-1)  # (B,)
        ratio = math.cos(math.pi / 2 * (step + 1) / cfg.steps)
        keep_masked = torch.minimum((free.float() * ratio).floor().long(), (masked_count - 1).clamp(min=0))
        if int(keep_masked.max()) == 0:  # everything is fixed (always so after the last step)
            break
        confidence = probs.gather(-1, pred[..., None])[..., 0].masked_fill(~is_mask, float("inf"))  # (B, N)
        rank = confidence.argsort(-1).argsort(-1)  # 0 = least confident
        ids = torch.where(rank < keep_masked[:, None], torch.full_like(ids, tcfg.mask_id), ids)
    return ids


def _apply_fixed(ids: torch.Tensor, fixed: torch.Tensor, real: torch.Tensor, num_codes: int) -> torch.Tensor:
    if fixed.shape != (ids.shape[0], ids.shape[1] - 1):
        raise ConfigError(
            f"fixed tokens must be (B, max n) = {(ids.shape[0], ids.shape[1] - 1)}, got {tuple(fixed.shape)}"
        )
    fixed = torch.cat([fixed.long(), torch.full_like(fixed[:, :1], -1).long()], dim=1)
    keep = fixed >= 0
    if bool((keep & ~real).any()):
        raise ConfigError("fixed tokens lie beyond a sample's length")
    if bool((fixed >= num_codes).any()):
        raise ConfigError(f"fixed tokens must be codes in [0, {num_codes})")
    return torch.where(keep, fixed, ids)


def frames_to_tokens(model: MMM, frames: int) -> int:
    tokens = frames // model.frames_per_token
    if not 1 <= tokens <= model.cfg.trans.max_tokens:
        raise ConfigError(
            f"{frames} frames give {tokens} tokens; the model takes 1 to {model.cfg.trans.max_tokens} "
            f"({model.cfg.trans.max_tokens * model.frames_per_token} frames)"
        )
    return tokens


@torch.no_grad()
def decode_motion(model: MMM, ids: torch.Tensor) -> list[torch.Tensor]:
    """Token ids from :func:`decode_tokens` -> one (4 n_b, 263) normalised motion per sample."""
    k = model.cfg.trans.num_codes
    out: list[torch.Tensor | None] = [None] * ids.shape[0]
    lengths = (ids < k).sum(-1)
    for length in lengths.unique().tolist():  # one decoder call per distinct length
        rows = (lengths == length).nonzero()[:, 0]
        motion = model.vq.decode(ids[rows, :length])  # (b, 4 n, 263)
        for i, r in enumerate(rows.tolist()):
            out[r] = motion[i]
    return [m for m in out if m is not None]


@torch.no_grad()
def generate_motion(
    model: MMM,
    text: TextEmbedding,
    frames: int,
    cfg: MaskedDecodingConfig = MaskedDecodingConfig(),
    *,
    seed: int = 0,
    emotion: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """B texts (and optional ``emotion`` labels), one length in frames -> (normalised motion
    (B, 4 (frames // 4), 263), token ids (B, n + 1))."""
    n = frames_to_tokens(model, frames)
    ids = decode_tokens(model, text, [n] * text.sentence.shape[0], cfg, seed=seed, emotion=emotion)
    return torch.stack(decode_motion(model, ids)), ids


@torch.no_grad()
def inbetween_motion(
    model: MMM,
    text: TextEmbedding,
    source: torch.Tensor,
    keep_first: int,
    keep_last: int,
    cfg: MaskedDecodingConfig = MaskedDecodingConfig(),
    *,
    seed: int = 0,
    emotion: torch.Tensor | None = None,
    guide: TokenGuide | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fill the middle of ``source`` (T, 263), normalised, for each of B texts (and optional
    ``emotion`` labels): the tokens covering its first ``keep_first`` and last ``keep_last`` frames are
    fixed, the rest decoded; the kept frames are then the given ones exactly.
    -> (motion (B, 4 (T // 4), 263), token ids (B, n + 1))."""
    if source.ndim != 2:
        raise ConfigError(f"the source motion must be (frames, features), got {tuple(source.shape)}")
    n = frames_to_tokens(model, source.shape[0])
    fpt = model.frames_per_token
    frames = n * fpt
    keep = keep_mask(frames, keep_first, keep_last)
    head, tail = -(-keep_first // fpt), -(-keep_last // fpt)  # tokens touching a kept frame
    if head + tail >= n:
        raise ConfigError(
            f"keeping {keep_first} + {keep_last} frames of {frames} leaves nothing to generate "
            f"({head} + {tail} of {n} tokens fixed)"
        )
    source = source[:frames].to(text.sentence.device)
    codes = model.vq.encode(source[None].float())
    if codes.ndim != 2:
        raise ConfigError("in-betweening needs a single-codebook VQ")
    b = text.sentence.shape[0]
    fixed = torch.full((b, n), -1, dtype=torch.long, device=source.device)
    fixed[:, :head] = codes[0, :head]
    fixed[:, n - tail :] = codes[0, n - tail :]
    ids = decode_tokens(model, text, [n] * b, cfg, seed=seed, fixed=fixed, emotion=emotion, guide=guide)
    return paste(torch.stack(decode_motion(model, ids)), source[None], keep), ids
