"""Motion editing with a diffusion model (MDM's in-betweening): at every step the model's clean-motion
prediction is overwritten by the given motion on the kept frames, so the sampler only invents the rest
and blends into what is kept. Works with every sampler here, since they all step from ``x0``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from emomotion.errors import ConfigError

if TYPE_CHECKING:
    from emomotion.sampling.diffusion import Denoiser


def keep_mask(frames: int, keep_first: int, keep_last: int) -> torch.Tensor:
    """(frames,) bool: True on the first ``keep_first`` and last ``keep_last`` frames."""
    if keep_first < 0 or keep_last < 0 or keep_first + keep_last >= frames:
        raise ConfigError(f"keeping {keep_first} + {keep_last} of {frames} frames leaves nothing to generate")
    keep = torch.zeros(frames, dtype=torch.bool)
    keep[:keep_first] = True
    keep[frames - keep_last :] = True
    return keep


def paste(x: torch.Tensor, known: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """``x`` (B, T, D) with ``known`` (B or 1, T, D) wherever ``keep`` (T,) is set."""
    return torch.where(keep.to(x.device)[None, :, None], known.to(device=x.device, dtype=x.dtype), x)


def inpaint(denoise: Denoiser, known: torch.Tensor, keep: torch.Tensor) -> Denoiser:
    """``denoise`` whose ``x0`` equals ``known`` (B or 1, T, D) wherever ``keep`` (T,) is set."""
    return lambda x, t: paste(denoise(x, t), known, keep)
