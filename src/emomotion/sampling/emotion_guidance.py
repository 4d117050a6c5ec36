"""Classifier guidance (Dhariwal & Nichol 2021) toward an emotion, for x0-predicting diffusion models.

At every sampling step the network's clean-motion prediction ``x0`` is moved up the gradient of a
trained emotion classifier's log-probability of the wanted emotion, evaluated on ``x0`` itself (as in
universal guidance, Bansal et al. 2023: the classifier never sees noise and the network is not
differentiated). Three choices keep the push on the motion's expressive cues rather than on the
classifier's blind spots:

- the gradient is smoothed over time (a moving average of ``smooth_frames``), so it changes posture,
  tempo and amplitude, not single frames (no jitter, fewer adversarial directions);
- it is normalised per sample to unit root-mean-square over real frames, so ``scale`` is a step in
  units of the model's feature standard deviation, whatever the classifier's confidence;
- padded frames take no part: the classifier reads each clip's length and the gradient is zero there.

Any sampler can be guided, since they all step from ``x0``. Samples with target ``-1`` are left alone.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

Denoiser = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Classifier = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # normalised (B, T, D), lengths -> logits


def smooth_in_time(g: torch.Tensor, frames: int) -> torch.Tensor:
    """Moving average of ``g`` (B, T, D) over ``frames`` (odd) frames, edges replicated."""
    if frames <= 1:
        return g
    k = frames | 1
    x = F.pad(g.transpose(1, 2), (k // 2, k // 2), mode="replicate")  # (B, D, T + k - 1)
    return F.avg_pool1d(x, k, stride=1).transpose(1, 2)  # (B, T, D)


def emotion_gradient(
    classifier: Classifier,
    x0: torch.Tensor,
    target: torch.Tensor,
    lengths: torch.Tensor,
    to_classifier: tuple[torch.Tensor, torch.Tensor],
    smooth_frames: int = 9,
) -> torch.Tensor:
    """Unit-RMS, time-smoothed gradient (B, T, D) of ``log p(target | x0)`` w.r.t. ``x0``.

    ``x0`` is in the generating model's normalisation; ``to_classifier = (a, b)`` maps it to the
    classifier's (``x * a + b``). Rows with ``target < 0`` and padded frames get zero.
    """
    a, b = to_classifier
    frames = torch.arange(x0.shape[1], device=x0.device)[None, :] < lengths[:, None]  # (B, T)
    wanted = target >= 0
    with torch.enable_grad():
        z = x0.detach().float().requires_grad_(True)
        logits = classifier(z * a + b, lengths).float()  # (B, C)
        logp = F.log_softmax(logits, dim=-1).gather(1, target.clamp(min=0)[:, None])[:, 0]  # (B,)
        (grad,) = torch.autograd.grad((logp * wanted.to(logp.dtype)).sum(), z)
    m = frames[..., None].to(grad.dtype)
    grad = smooth_in_time(grad * m, smooth_frames) * m
    rms = ((grad**2).sum(dim=(1, 2)) / (m.sum(dim=(1, 2)) * grad.shape[-1]).clamp(min=1.0)).sqrt()
    return grad / rms.clamp(min=1e-12)[:, None, None]


def classifier_guidance(
    denoise: Denoiser,
    classifier: Classifier,
    target: torch.Tensor,
    lengths: torch.Tensor,
    to_classifier: tuple[torch.Tensor, torch.Tensor],
    scale: float | torch.Tensor,
    smooth_frames: int = 9,
) -> Denoiser:
    """``denoise`` whose ``x0`` moves ``scale`` (a float or per-sample (B,)) along the emotion gradient."""
    s = torch.as_tensor(scale, dtype=torch.float32)
    s = s.reshape(-1, 1, 1) if s.ndim else s

    def guided(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        x0 = denoise(x, t)
        g = emotion_gradient(classifier, x0, target, lengths, to_classifier, smooth_frames)
        return x0 + s.to(x0.device, x0.dtype) * g.to(x0.dtype)

    return guided
