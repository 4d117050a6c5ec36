"""Motion editing with a diffusion model (MDM's in-betweening): at every step the model's clean-motion
prediction is overwritten by the given motion on the kept frames, so the sampler only invents the rest
and blends into what is kept. Works with every sampler here, since they all step from ``x0``."""

from __future__ import annotations

import torch

from emomotion.errors import ConfigError
from emomotion.sampling.diffusion import Denoiser


def keep_mask(frames: int, keep_first: int, keep_last: int) -> torch.Tensor:
    """(frames,) bool: True on the first ``keep_first`` and last ``keep_last`` frames."""
    if keep_first < 0 or keep_last < 0 or keep_first + keep_last >= frames:
        raise ConfigError(f"keeping {keep_first} + {keep_last} of {frames} frames leaves nothing to generate")
    keep = torch.zeros(frames, dtype=torch.bool)
    keep[:keep_first] = True
    keep[frames - keep_last :] = True
    return keep


def inpaint(denoise: Denoiser, known: torch.Tensor, keep: torch.Tensor) -> Denoiser:
    """``denoise`` whose ``x0`` equals ``known`` (B or 1, T, D) wherever ``keep`` (T,) is set."""
    where = keep.to(known.device)[None, :, None]
    return lambda x, t: torch.where(where, known.to(x.dtype), denoise(x, t))
