"""The MMM masked motion transformer (Pinyoanuntapong et al. 2024, "MMM: Generative Masked Motion
Model"), official key layout, and :class:`MMM`, the VQ-VAE and the transformer in one module.

A bidirectional transformer over motion tokens predicts the codebook index of every position from a
partly masked sequence. A token's input embedding is its code vector from the (frozen) VQ codebook,
or a learned vector for the special ids END (``K``), PAD (``K + 1``) and MASK (``K + 2``), projected
to the model width. Text enters twice, as the official model: word states cross-attended by the
``cross_att`` blocks, then the projected sentence embedding prepended as the first position of the
self-attention stack (``trans_base.blocks`` then ``trans_head.blocks``). A sequence is ``n`` motion
tokens, one END, then PAD up to the block size. Dropping the text (classifier-free guidance) hides the
sentence position from attention (the official ``att_txt``) and replaces the words by one null word.

An optional emotion-label table (``num_emotions > 0``, ours: not in the official model) adds a learned
vector per label to the input of every position: each token's embedding (before the word
cross-attention) and the sentence position. Through the sentence position alone the label barely moved
the logits of a small model; on every token it acts as directly as the token's own code. Its last row
is "no label" (unknown, dropped, or no labels given); with ``emotion_drop_prob`` the label is dropped in
training so that the model learns the text alone as well, for the label's own classifier-free guidance.

Module names follow ``exitudio/MMM:models/t2m_trans.py`` (``trans_base.{learn_tok_emb, to_emb,
cond_emb, pos_embed.embed, word_emb, cross_att.N, blocks.N}``, ``trans_head.{blocks.N, ln_f, head}``).
The official file's VQ copy (``trans_base.vqvae.*``), its unused ``trans_base.pos_embedding`` and the
unused ``cross_att.N.attn.mask`` buffers have no counterpart here (see :mod:`emomotion.importers.mmm`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from emomotion.errors import ConfigError
from emomotion.models.vqvae import VQVAE, VQVAEConfig
from emomotion.text.base import TextEmbedding


@dataclass(frozen=True)
class MaskedTransformerConfig:
    num_codes: int = 8192  # K, the VQ codebook size; END = K, PAD = K + 1, MASK = K + 2
    code_dim: int = 32
    embed_dim: int = 1024
    text_dim: int = 512  # 512 CLIP (official), 384 MiniLM
    block_size: int = 51  # 1 text position + up to 49 motion tokens + END
    num_layers: int = 9  # self-attention blocks in trans_base (num_layers - num_local_layers) and trans_head
    num_local_layers: int = 2  # word cross-attention blocks
    num_heads: int = 16
    ff_rate: int = 4
    dropout: float = 0.1
    text_drop_prob: float = 0.1  # text dropped in training, for classifier-free guidance
    num_emotions: int = 0  # > 0: an emotion-label table (and a "no label" row) added to every position
    emotion_drop_prob: float = 0.1  # label dropped in training, for the label's classifier-free guidance

    def __post_init__(self) -> None:
        if self.embed_dim % self.num_heads:
            raise ConfigError(f"embed_dim {self.embed_dim} must be divisible by num_heads {self.num_heads}")
        if not 0 <= self.num_local_layers < self.num_layers:
            raise ConfigError("need 0 <= num_local_layers < num_layers")
        if self.block_size < 3:
            raise ConfigError("block_size must be >= 3 (text, one token, END)")
        if self.num_emotions < 0:
            raise ConfigError(f"num_emotions must be >= 0, got {self.num_emotions}")
        for name in ("dropout", "text_drop_prob", "emotion_drop_prob"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ConfigError(f"{name} must be in [0, 1)")

    @property
    def end_id(self) -> int:
        return self.num_codes

    @property
    def pad_id(self) -> int:
        return self.num_codes + 1

    @property
    def mask_id(self) -> int:
        return self.num_codes + 2

    @property
    def max_tokens(self) -> int:
        """Motion tokens that fit (the block also holds the text position and END)."""
        return self.block_size - 2


PRESETS: dict[str, MaskedTransformerConfig] = {
    "tiny": MaskedTransformerConfig(
        num_codes=64, code_dim=16, embed_dim=64, num_layers=3, num_local_layers=1, num_heads=4, dropout=0.0
    ),
    "small": MaskedTransformerConfig(
        num_codes=512, code_dim=32, embed_dim=256, num_layers=4, num_local_layers=1, num_heads=4, ff_rate=2
    ),
    "mmm": MaskedTransformerConfig(),
}
"""``tiny`` for tests; ``small`` for the CPU study, at the scale of MDM's ``small`` (width 256, 4 heads,
feed-forward 512; 3 + 1 + 4 blocks); ``mmm`` the official size (embed 1024, 9 + 7 + 2 blocks)."""


def preset(name: str, **overrides: Any) -> MaskedTransformerConfig:
    if name not in PRESETS:
        raise ConfigError(f"unknown masked-transformer preset {name!r}; choose from {', '.join(PRESETS)}")
    return replace(PRESETS[name], **overrides)


def sincos_table(length: int, dim: int) -> torch.Tensor:
    """(length, 1, dim) sinusoidal positions (the official ``PE1d_sincos``)."""
    position = torch.arange(length, dtype=torch.float32)[:, None]
    div = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(length, dim)
    table[:, 0::2] = torch.sin(position * div)
    table[:, 1::2] = torch.cos(position * div)
    return table[:, None, :]


class PositionEmbedding(nn.Module):
    """Fixed sinusoidal positions added to (B, S, d); ``embed`` is saved (official key, not trained)."""

    def __init__(self, length: int, dim: int) -> None:
        super().__init__()
        self.register_buffer("embed", sincos_table(length, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.embed[: x.shape[1], 0][None].to(x.dtype)


class Attention(nn.Module):
    """Multi-head attention with separate key/query/value projections (official names); queries from
    ``x`` (B, S, d), keys/values from ``context`` (B, L, d), ``key_mask`` (B, L) True = attend."""

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.key = nn.Linear(dim, dim)
        self.query = nn.Linear(dim, dim)
        self.value = nn.Linear(dim, dim)
        self.proj = nn.Linear(dim, dim)
        self.heads, self.dropout = heads, dropout
        self.resid_drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, context: torch.Tensor, key_mask: torch.Tensor | None) -> torch.Tensor:
        b, s, d = x.shape
        split = lambda t: t.view(b, t.shape[1], self.heads, d // self.heads).transpose(1, 2)  # noqa: E731
        q, k, v = (
            split(self.query(x)),
            split(self.key(context)),
            split(self.value(context)),
        )  # (B, h, S|L, d/h)
        mask = None if key_mask is None else key_mask[:, None, None, :]  # (B, 1, 1, L)
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0
        )
        return self.resid_drop(self.proj(y.transpose(1, 2).reshape(b, s, d)))


class Block(nn.Module):
    """Pre-norm self-attention block (official ``Block``)."""

    def __init__(self, dim: int, heads: int, dropout: float, ff_rate: int) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(dim)
        self.ln2 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads, dropout)
        self.mlp = nn.Sequential(
            nn.Linear(dim, ff_rate * dim), nn.GELU(), nn.Linear(ff_rate * dim, dim), nn.Dropout(dropout)
        )

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor | None) -> torch.Tensor:
        h = self.ln1(x)
        x = x + self.attn(h, h, key_mask)
        return x + self.mlp(self.ln2(x))


class CrossBlock(nn.Module):
    """Tokens attend to word states (official ``Block_crossatt``: ln1 on tokens, ln3 on words)."""

    def __init__(self, dim: int, heads: int, dropout: float, ff_rate: int) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(dim)
        self.ln2 = nn.LayerNorm(dim)
        self.ln3 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads, dropout)
        self.mlp = nn.Sequential(
            nn.Linear(dim, ff_rate * dim), nn.GELU(), nn.Linear(ff_rate * dim, dim), nn.Dropout(dropout)
        )

    def forward(self, x: torch.Tensor, words: torch.Tensor, word_mask: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x), self.ln3(words), word_mask)
        return x + self.mlp(self.ln2(x))


def _init_weights(module: nn.Module) -> None:
    if isinstance(module, nn.Linear | nn.Embedding):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


class TransBase(nn.Module):
    def __init__(self, cfg: MaskedTransformerConfig) -> None:
        super().__init__()
        d = cfg.embed_dim
        self.learn_tok_emb = nn.Embedding(3, cfg.code_dim)  # END, PAD, MASK
        self.to_emb = nn.Linear(cfg.code_dim, d)
        self.cond_emb = nn.Linear(cfg.text_dim, d)
        self.pos_embed = PositionEmbedding(cfg.block_size, d)
        self.blocks = nn.ModuleList(
            [
                Block(d, cfg.num_heads, cfg.dropout, cfg.ff_rate)
                for _ in range(cfg.num_layers - cfg.num_local_layers)
            ]
        )
        if cfg.num_local_layers > 0:
            self.word_emb = nn.Linear(cfg.text_dim, d)
            self.cross_att = nn.ModuleList(
                [CrossBlock(d, cfg.num_heads, cfg.dropout, cfg.ff_rate) for _ in range(cfg.num_local_layers)]
            )
        if cfg.num_emotions > 0:
            self.emotion_emb = nn.Embedding(cfg.num_emotions + 1, d)  # last row: "no label"
        self.apply(_init_weights)
        if cfg.num_emotions > 0:
            nn.init.zeros_(self.emotion_emb.weight[cfg.num_emotions])


class TransHead(nn.Module):
    def __init__(self, cfg: MaskedTransformerConfig) -> None:
        super().__init__()
        d = cfg.embed_dim
        self.blocks = nn.ModuleList(
            [Block(d, cfg.num_heads, cfg.dropout, cfg.ff_rate) for _ in range(cfg.num_layers)]
        )
        self.ln_f = nn.LayerNorm(d)
        self.head = nn.Linear(d, cfg.num_codes, bias=False)
        self.apply(_init_weights)


class MaskedTransformer(nn.Module):
    """Token ids (B, N) + code vectors + text -> logits (B, N, K) over the real codes."""

    def __init__(self, cfg: MaskedTransformerConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.trans_base = TransBase(cfg)
        self.trans_head = TransHead(cfg)

    def forward(
        self,
        ids: torch.Tensor,
        codes: torch.Tensor,
        text: TextEmbedding,
        token_mask: torch.Tensor,
        drop_text: torch.Tensor | None = None,
        emotion: torch.Tensor | None = None,
        drop_emotion: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """ids (B, N) long; codes (B, N, code_dim) the code vectors of ids < K (ignored elsewhere);
        token_mask (B, N) True on motion tokens and END; drop_text (B,) bool; emotion (B,) long label
        (-1 = none; ignored without a label table), drop_emotion (B,) bool -> logits (B, N, K)."""
        cfg, base = self.cfg, self.trans_base
        b, n = ids.shape
        if n + 1 > cfg.block_size:
            raise ConfigError(f"{n} tokens exceed the model's block size {cfg.block_size} (text + tokens)")
        drop = self._drops(drop_text, cfg.text_drop_prob, b, ids.device)
        special = ids >= cfg.num_codes
        learned = base.learn_tok_emb((ids - cfg.num_codes).clamp(0, 2))  # (B, N, code_dim)
        x = base.to_emb(torch.where(special[..., None], learned, codes.to(learned.dtype)))  # (B, N, d)
        label = None
        if cfg.num_emotions > 0:
            label = self._label_embedding(emotion, drop_emotion, b, ids.device)  # (B, d)
            x = x + label[:, None]
        sentence = text.sentence * (~drop)[:, None].to(text.sentence.dtype)  # (B, text_dim)
        if cfg.num_local_layers > 0:
            keep = (~drop)[:, None, None].to(text.tokens.dtype)
            words = base.word_emb(text.tokens * keep)  # (B, L, d)
            word_mask = text.mask.clone()
            word_mask[drop] = False
            word_mask[drop, 0] = True  # a dropped text is one null word
            x = base.pos_embed(x)
            for block in base.cross_att:
                x = block(x, words, word_mask)
        condition = base.cond_emb(sentence)  # (B, d)
        if label is not None:
            condition = condition + label
        x = torch.cat([condition[:, None], x], dim=1)  # (B, 1 + N, d)
        x = base.pos_embed(x)
        key_mask = torch.cat([~drop[:, None], token_mask], dim=1)  # (B, 1 + N)
        for block in base.blocks:
            x = block(x, key_mask)
        for block in self.trans_head.blocks:
            x = block(x, key_mask)
        return self.trans_head.head(self.trans_head.ln_f(x))[:, 1:]  # (B, N, K)

    def _drops(self, given: torch.Tensor | None, prob: float, b: int, device: torch.device) -> torch.Tensor:
        """(B,) bool: the samples ``given`` drops, plus random drops at ``prob`` in training."""
        drop = given if given is not None else torch.zeros(b, dtype=torch.bool, device=device)
        if self.training and prob > 0:
            drop = drop | (torch.rand(b, device=device) < prob)
        return drop

    def _label_embedding(
        self, emotion: torch.Tensor | None, drop_emotion: torch.Tensor | None, b: int, device: torch.device
    ) -> torch.Tensor:
        """(B, d): each sample's label row; the "no label" row where it is unknown, dropped or not given."""
        null = self.cfg.num_emotions
        drop = self._drops(drop_emotion, self.cfg.emotion_drop_prob, b, device)
        labels = torch.full((b,), null, dtype=torch.long, device=device) if emotion is None else emotion
        if int(labels.max()) > null:
            raise ConfigError(f"emotion labels must be below {null}, got {int(labels.max())}")
        labels = torch.where((labels < 0) | drop, torch.full_like(labels, null), labels)
        return self.trans_base.emotion_emb(labels)


@dataclass(frozen=True)
class MMMConfig:
    vq: VQVAEConfig
    trans: MaskedTransformerConfig

    def __post_init__(self) -> None:
        if self.vq.quantizer == "residual":
            raise ConfigError(
                "the masked transformer models one code per token: residual VQ is not supported"
            )
        if self.trans.num_codes != self.vq.codebook_size or self.trans.code_dim != self.vq.code_dim:
            raise ConfigError(
                f"transformer codebook {self.trans.num_codes} x {self.trans.code_dim} does not match the VQ's "
                f"{self.vq.codebook_size} x {self.vq.code_dim}"
            )


def mmm_config(vq: VQVAEConfig, trans_preset: str, **overrides: Any) -> MMMConfig:
    """A transformer preset sized to a given VQ (codebook size and code dim taken from it)."""
    trans = preset(trans_preset, num_codes=vq.codebook_size, code_dim=vq.code_dim, **overrides)
    return MMMConfig(vq, trans)


class MMM(nn.Module):
    """The VQ-VAE (``.vq``) and the masked transformer (``.trans``): one checkpoint of kind ``mmm``."""

    def __init__(self, cfg: MMMConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.vq = VQVAE(cfg.vq)
        self.trans = MaskedTransformer(cfg.trans)

    @property
    def frames_per_token(self) -> int:
        return self.cfg.vq.frames_per_token

    def forward(
        self,
        ids: torch.Tensor,
        text: TextEmbedding,
        token_mask: torch.Tensor,
        drop_text: torch.Tensor | None = None,
        emotion: torch.Tensor | None = None,
        drop_emotion: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """ids (B, N) with special ids -> logits (B, N, K). The VQ codebook is read, never trained here.
        ``emotion`` (B,) labels (-1 = none) and ``drop_emotion`` apply to models with a label table."""
        with torch.no_grad():
            codes = self.vq.quantizer.dequantize(
                ids.clamp(0, self.cfg.trans.num_codes - 1)
            )  # (B, N, code_dim)
        return self.trans(ids, codes, text, token_mask, drop_text, emotion, drop_emotion)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def mmm_config_from(config: Mapping[str, Any]) -> MMMConfig:
    from emomotion.configs import dataclass_from

    if "vq" not in config or "trans" not in config:
        raise ConfigError("an mmm config needs 'vq' and 'trans' sections")
    return MMMConfig(
        dataclass_from(VQVAEConfig, config["vq"]), dataclass_from(MaskedTransformerConfig, config["trans"])
    )


def build_from_config(config: Mapping[str, Any]) -> MMM:
    return MMM(mmm_config_from(config))
