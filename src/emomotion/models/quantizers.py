"""Vector quantizers for the motion VQ-VAE, behind one small interface.

Every quantizer maps encoder latents ``z (B, N, D)`` to ``(z_q (B, N, D), commit_loss, perplexity,
indices)`` in :meth:`forward` (training updates happen there), and offers :meth:`quantize` (latents ->
indices, never updates anything) and :meth:`dequantize` (indices -> code vectors). ``indices`` is
``(B, N)`` long, or ``(B, N, Q)`` for residual VQ.

- ``ema_reset``: the T2M-GPT / MMM quantizer (``exitudio/MMM:models/quantize_cnn.py``,
  ``QuantizeEMAReset``): nearest-code lookup, codebook = EMA (mu 0.99) of the assigned encoder outputs,
  and codes whose EMA count falls below 1 are reset to random encoder outputs of the batch, every 21st
  step for codes unused since the last reset (MMM's variant of the rule). Unlike the official module,
  the EMA state (``code_sum``, ``code_count``), the usage record and the ``initted`` flag are
  registered buffers: they are saved with the weights, so fine-tuning a trained codebook never
  re-initialises it from the first batch. The codebook key is ``codebook`` as in the official files.
- ``kmeans``: ``vector_quantize_pytorch.VectorQuantize`` with k-means initialisation and dead-code
  replacement (EMA codebook).
- ``residual``: ``vector_quantize_pytorch.ResidualVQ`` (MoMask-style residual codes).
- ``fsq``: ``vector_quantize_pytorch.FSQ`` (Mentzer et al. 2023, finite scalar quantization): an
  implicit codebook, no commitment loss, no collapse to a few codes by construction.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

QUANTIZERS = ("ema_reset", "kmeans", "residual", "fsq")


def perplexity_of(indices: torch.Tensor, num_codes: int) -> torch.Tensor:
    """exp(entropy) of the code histogram of ``indices`` (any shape): 1 = one code, ``num_codes`` = uniform."""
    counts = torch.bincount(indices.reshape(-1), minlength=num_codes).float()
    prob = counts / counts.sum().clamp(min=1.0)
    return torch.exp(-(prob * torch.log(prob + 1e-7)).sum())


class EMAResetQuantizer(nn.Module):
    """MMM's ``QuantizeEMAReset`` with its state in buffers (see the module docstring)."""

    def __init__(self, num_codes: int, code_dim: int, mu: float = 0.99, reset_every: int = 20) -> None:
        super().__init__()
        self.num_codes, self.code_dim, self.mu, self.reset_every = num_codes, code_dim, mu, reset_every
        self.register_buffer("codebook", torch.zeros(num_codes, code_dim))
        self.register_buffer("code_sum", torch.zeros(num_codes, code_dim))
        self.register_buffer("code_count", torch.zeros(num_codes))
        self.register_buffer("usage", torch.zeros(num_codes))
        self.register_buffer("reset_count", torch.zeros((), dtype=torch.long))
        self.register_buffer("initted", torch.zeros((), dtype=torch.bool))

    def _tile(self, x: torch.Tensor) -> torch.Tensor:
        """At least ``num_codes`` rows of ``x`` (N, D): repeated with a little noise when N is smaller."""
        n = x.shape[0]
        if n >= self.num_codes:
            return x
        out = x.repeat(math.ceil(self.num_codes / n), 1)
        return out + torch.randn_like(out) * (0.01 / math.sqrt(self.code_dim))

    @torch.no_grad()
    def _init_codebook(self, x: torch.Tensor) -> None:
        self.codebook.copy_(self._tile(x)[: self.num_codes])
        self.code_sum.copy_(self.codebook)
        self.code_count.fill_(1.0)
        self.initted.fill_(True)

    @torch.no_grad()
    def _update(self, x: torch.Tensor, idx: torch.Tensor) -> None:
        """EMA of code sums/counts over the assigned latents ``x (N, D)``; reset of unused codes."""
        onehot = F.one_hot(idx, self.num_codes).to(x.dtype)  # (N, K)
        code_sum = onehot.t() @ x  # (K, D)
        code_count = onehot.sum(0)  # (K,)
        tiled = self._tile(x)
        rand = tiled[torch.randperm(tiled.shape[0], device=x.device)[: self.num_codes]]
        self.code_sum.mul_(self.mu).add_(code_sum, alpha=1 - self.mu)
        self.code_count.mul_(self.mu).add_(code_count, alpha=1 - self.mu)
        used = (self.code_count >= 1.0).float()
        if int(self.reset_count) >= self.reset_every:
            self.reset_count.zero_()
            keep = ((used + self.usage) >= 1.0).float()
        else:
            self.reset_count.add_(1)
            self.usage.copy_(((used + self.usage) >= 1.0).float())
            keep = torch.ones_like(used)
        update = self.code_sum / self.code_count[:, None]
        self.codebook.copy_(keep[:, None] * update + (1 - keep[:, None]) * rand)

    def quantize(self, z: torch.Tensor) -> torch.Tensor:
        """(B, N, D) -> (B, N) nearest code indices."""
        flat = z.reshape(-1, self.code_dim).float()
        dist = (
            flat.pow(2).sum(-1, keepdim=True)
            - 2 * flat @ self.codebook.t()
            + self.codebook.pow(2).sum(-1)[None, :]
        )  # (B*N, K)
        return dist.argmin(-1).reshape(z.shape[:-1])

    def dequantize(self, indices: torch.Tensor) -> torch.Tensor:
        """(B, N) -> (B, N, D)."""
        return F.embedding(indices, self.codebook)

    def forward(
        self, z: torch.Tensor, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """z (B, N, D), mask (B, N) bool of real tokens -> (z_q, commit, perplexity, indices (B, N))."""
        valid = (
            z.reshape(-1, self.code_dim)[mask.reshape(-1)]
            if mask is not None
            else z.reshape(-1, self.code_dim)
        )
        if self.training and not bool(self.initted):
            self._init_codebook(valid.detach().float())
        idx = self.quantize(z)  # (B, N)
        zq = self.dequantize(idx).to(z.dtype)
        flat_idx = idx.reshape(-1)[mask.reshape(-1)] if mask is not None else idx.reshape(-1)
        if self.training:
            self._update(valid.detach().float(), flat_idx)
        perplexity = perplexity_of(flat_idx, self.num_codes)
        if mask is not None:
            m = mask[..., None].to(z.dtype)
            commit = ((z - zq.detach()) ** 2 * m).sum() / (m.sum().clamp(min=1.0) * self.code_dim)
        else:
            commit = F.mse_loss(z, zq.detach())
        zq = z + (zq - z).detach()  # straight-through
        return zq, commit, perplexity, idx


class LibraryQuantizer(nn.Module):
    """``vector_quantize_pytorch`` quantizers (``kmeans``, ``residual``, ``fsq``) behind our interface.

    Their EMA codebooks, counts and ``initted`` flags are buffers of the wrapped module, so they are
    saved with the weights like :class:`EMAResetQuantizer`'s.
    """

    def __init__(
        self,
        kind: str,
        num_codes: int,
        code_dim: int,
        *,
        mu: float = 0.99,
        dead_code_threshold: float = 2.0,
        num_quantizers: int = 1,
        fsq_levels: tuple[int, ...] = (),
    ) -> None:
        super().__init__()
        from vector_quantize_pytorch import FSQ, ResidualVQ, VectorQuantize

        self.kind, self.code_dim = kind, code_dim
        if kind == "kmeans":
            self.vq = VectorQuantize(
                dim=code_dim,
                codebook_size=num_codes,
                decay=mu,
                kmeans_init=True,
                threshold_ema_dead_code=dead_code_threshold,
                commitment_weight=1.0,
            )
            self.num_codes = num_codes
        elif kind == "residual":
            self.vq = ResidualVQ(
                dim=code_dim,
                num_quantizers=num_quantizers,
                codebook_size=num_codes,
                decay=mu,
                kmeans_init=True,
                threshold_ema_dead_code=dead_code_threshold,
                commitment_weight=1.0,
            )
            self.num_codes = num_codes
        elif kind == "fsq":
            self.vq = FSQ(levels=list(fsq_levels), dim=code_dim)
            self.num_codes = int(self.vq.codebook_size)
        else:
            raise ValueError(f"not a library quantizer: {kind!r}")

    def quantize(self, z: torch.Tensor) -> torch.Tensor:
        was = self.training
        self.eval()  # eval: no EMA update, no k-means init, no dead-code replacement
        try:
            with torch.no_grad():
                return self.vq(z.float())[1].long()
        finally:
            self.train(was)

    def dequantize(self, indices: torch.Tensor) -> torch.Tensor:
        if self.kind == "fsq":
            return self.vq.indices_to_codes(indices)
        return self.vq.get_output_from_indices(indices)

    def forward(
        self, z: torch.Tensor, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        if self.kind == "fsq":
            zq, idx = self.vq(z.float())
            commit = z.new_zeros(())
        else:
            zq, idx, commit = self.vq(z.float(), mask=mask)
            commit = commit.sum()
        idx = idx.long()
        valid = idx[mask] if mask is not None else idx
        flat = valid[..., 0] if self.kind == "residual" else valid  # perplexity of the first layer's codes
        return zq.to(z.dtype), commit, perplexity_of(flat, self.num_codes), idx.long()


def build_quantizer(
    kind: str,
    num_codes: int,
    code_dim: int,
    *,
    mu: float,
    dead_code_threshold: float,
    num_quantizers: int,
    fsq_levels: tuple[int, ...],
) -> nn.Module:
    if kind == "ema_reset":
        return EMAResetQuantizer(num_codes, code_dim, mu)
    return LibraryQuantizer(
        kind,
        num_codes,
        code_dim,
        mu=mu,
        dead_code_threshold=dead_code_threshold,
        num_quantizers=num_quantizers,
        fsq_levels=fsq_levels,
    )
