"""Classifier guidance for masked token decoding (MMM), toward an emotion.

Tokens are discrete, so the classifier's gradient cannot move them; it can reweigh them. At each
decoding step the sequence is embedded softly - a fixed position takes its code's vector, a masked
one the mean of the codebook under the step's (text- and label-guided) probabilities - the VQ decoder
turns that into motion and a trained emotion classifier scores it. The gradient ``g_n`` of
``log p(emotion | motion)`` with respect to position ``n``'s embedding ``z_n`` gives, for each code
``k``, the first-order (Taylor) change of that log-probability if the position took code ``k``::

    delta_nk = g_n . (c_k - z_n)   ~   log p(e | code k at n) - log p(e | now)

which, added to the logits, would sample from ``p(token) p(e | token)`` to first order
(Taylor-approximated guidance, Nisonoff et al. 2024, here through the VQ decoder). A classifier's
gradients on decoded motion are small or large with its confidence, so, as MDM's classifier guidance
does, ``delta`` is normalised per sample (centred over the codes of each position, then unit
root-mean-square over the sample's masked positions and codes) and ``logits += scale * delta``:
``scale`` is a shift in logit units, whatever the classifier. Only masked positions of samples with a
target (>= 0) change; each clip is scored over its own length (whole tokens), so padding takes no
part. The decoder and the classifier are differentiated, never the transformer.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from emomotion.errors import ConfigError

Classifier = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # normalised (B, T, D), lengths -> logits
TokenGuide = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def codebook_of(vq: torch.nn.Module) -> torch.Tensor:
    """The (K, D) code vectors of a single-codebook VQ."""
    k = int(vq.cfg.codebook_size)
    codes = vq.quantizer.dequantize(torch.arange(k, device=next(vq.parameters()).device)[None])
    if codes.ndim != 3 or codes.shape[:2] != (1, k):
        raise ConfigError("classifier guidance for MMM needs a single-codebook VQ")
    return codes[0].float()


def token_guidance(
    vq: torch.nn.Module,
    classifier: Classifier,
    target: torch.Tensor,
    num_tokens: torch.Tensor,
    to_classifier: tuple[torch.Tensor, torch.Tensor],
    scale: float | torch.Tensor,
) -> TokenGuide:
    """A guide ``(logits (B, N + 1, K), ids (B, N + 1), masked (B, N + 1)) -> logits`` for
    :func:`emomotion.sampling.masked.decode_tokens`: ``target`` (B,) emotion indices (-1 = leave
    alone), ``num_tokens`` (B,) each sample's code count, ``to_classifier = (a, b)`` the affine map
    from the VQ's normalisation to the classifier's, ``scale`` a float or per-sample (B,)."""
    codebook = codebook_of(vq)  # (K, D)
    k = codebook.shape[0]
    fpt = int(vq.frames_per_token)
    a, b = to_classifier
    s = torch.as_tensor(scale, dtype=torch.float32, device=codebook.device)
    s = s.reshape(-1, 1, 1) if s.ndim else s
    wanted = target >= 0

    def guide(logits: torch.Tensor, ids: torch.Tensor, masked: torch.Tensor) -> torch.Tensor:
        n = ids.shape[1] - 1  # the last column is END or PAD
        real = torch.arange(n, device=ids.device)[None, :] < num_tokens[:, None]  # (B, N)
        free = masked[:, :n] & real & wanted[:, None]
        if not bool(free.any()):
            return logits
        probs = logits[:, :n].detach().float().softmax(-1)  # (B, N, K)
        fixed = codebook[ids[:, :n].clamp(0, k - 1)]  # (B, N, D)
        z = torch.where(masked[:, :n, None], probs @ codebook, fixed) * real[..., None]
        with torch.enable_grad():
            z = z.detach().requires_grad_(True)
            motion = vq.decoder(z.transpose(1, 2)).transpose(1, 2).float()  # (B, fpt N, 263)
            scores = classifier(motion * a + b, num_tokens * fpt).float()  # (B, C)
            logp = F.log_softmax(scores, dim=-1).gather(1, target.clamp(min=0)[:, None])[:, 0]
            (grad,) = torch.autograd.grad((logp * wanted.to(logp.dtype)).sum(), z)
        delta = grad @ codebook.T - (grad * z.detach()).sum(-1, keepdim=True)  # (B, N, K)
        delta = (delta - delta.mean(-1, keepdim=True)) * free[..., None]
        count = (free.sum(-1) * k).clamp(min=1)  # (B,) masked positions x codes
        rms = (delta.pow(2).sum(dim=(1, 2)) / count).sqrt()
        delta = delta / rms.clamp(min=1e-12)[:, None, None]
        out = logits.clone()
        out[:, :n] = out[:, :n] + s * delta * free[..., None]
        return out

    return guide
