"""Classifier-free guidance (Ho & Salimans 2022) with the conditional and unconditional passes
batched into one network call; a second scale for the emotion label dials its intensity."""

from __future__ import annotations

from collections.abc import Callable

import torch

from emomotion.models.condition import MotionCondition, concat_conditions

Network = Callable[[torch.Tensor, torch.Tensor, MotionCondition, torch.Tensor | None], torch.Tensor]


def classifier_free_guidance(
    model: Network,
    cond: MotionCondition,
    *,
    text_scale: float = 2.5,
    emotion_scale: float | None = None,
    mask: torch.Tensor | None = None,
) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """A denoiser ``(x_t, t) -> x0`` for the samplers.

    ``x0 = u + text_scale * (c_text - u) [+ emotion_scale * (c_full - c_text)]`` where ``u`` drops
    every condition, ``c_text`` keeps the text only and ``c_full`` keeps text and emotion. Scale 1
    and no emotion scale is the plain conditional model (one pass).
    """
    if emotion_scale is None and text_scale == 1.0:
        return lambda x, t: model(x, t, cond, mask)
    # text scale 1 cancels the unconditional pass: x0 = c_text + emotion_scale * (c_full - c_text)
    skip_uncond = emotion_scale is not None and text_scale == 1.0
    passes = [] if skip_uncond else [cond.dropped(text=True, emotion=True)]
    if emotion_scale is not None:
        passes.append(cond.dropped(text=False, emotion=True))
    passes.append(cond)
    stacked = passes[0]
    for extra in passes[1:]:
        stacked = concat_conditions(stacked, extra)
    k = len(passes)
    big_mask = None if mask is None else mask.repeat(k, 1)

    def denoise(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        out = model(x.repeat(k, 1, 1), t.repeat(k), stacked, big_mask).chunk(k)
        if emotion_scale is None:
            uncond, full = out
            return uncond + text_scale * (full - uncond)
        if skip_uncond:
            text_only, full = out
            return text_only + emotion_scale * (full - text_only)
        uncond, text_only, full = out
        return uncond + text_scale * (text_only - uncond) + emotion_scale * (full - text_only)

    return denoise
