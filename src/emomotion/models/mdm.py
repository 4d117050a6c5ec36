"""The MDM network (Tevet et al. 2022, "Human Motion Diffusion Model"), in the official key layout.

A transformer over motion frames predicting the clean motion x0 from a noised x_t, conditioned on
a diffusion timestep and a text embedding (plus, optionally, an emotion label). Module names match
``GuyTevet/motion-diffusion-model`` (``input_process.poseEmbedding``, ``seqTransEncoder.layers.N``,
``embed_timestep.time_embed``, ``embed_text``, ``output_process.poseFinal``, the ``pe`` buffers), so
official checkpoints map without surgery. Motion is (B, T, 263) in and out; the official
sequence-first layout lives inside :meth:`MDM.forward` only. Padded frames are masked in attention,
unless ``mask_frames`` is off (as in official checkpoints, whose default lets padding take part).

``keep_base`` (an emotion fine-tune that keeps its base): the model also holds a frozen copy of the
weights it was fine-tuned from (``base_copy``), and, when sampling, a sample that asks for no emotion
(label -1 or no labels) is denoised by that copy, one that asks for one by the fine-tuned weights (the
label only routes; dropping it for guidance does not change the route). Training always runs the
fine-tuned weights. This is parameter isolation (task-specific parameters chosen by the task, here the
emotion request): the base corpus's prompts keep the base model exactly, whatever the fine-tune does.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

import torch
from torch import nn

from emomotion import skeleton as sk
from emomotion.errors import ConfigError
from emomotion.models.condition import MotionCondition


@dataclass(frozen=True)
class MDMConfig:
    latent_dim: int = 512
    ff_size: int = 1024
    num_layers: int = 8
    num_heads: int = 4
    dropout: float = 0.1
    activation: Literal["gelu", "relu"] = "gelu"
    arch: Literal["trans_enc", "trans_dec"] = "trans_enc"
    input_dim: int = sk.FEATURE_DIM
    text_dim: int = 384  # 384 MiniLM, 512 CLIP, 768 DistilBERT
    cond_mask_prob: float = 0.1  # text dropped in training, for classifier-free guidance
    num_emotions: int = 0  # > 0 adds an emotion-label embedding (with a null row)
    emotion_mask_prob: float = 0.1
    max_len: int = 5000
    # trans_dec only (as the official model): the decoder's memory is the text tokens (DistilBERT) or
    # the one sentence embedding (CLIP), with the timestep embedding added; emb_trans_dec also
    # prepends the timestep token to the motion frames
    memory: Literal["tokens", "sentence"] = "tokens"
    emb_trans_dec: bool = False
    # padded frames are masked out of attention (ours); official MDM checkpoints were trained and are
    # sampled with mask_frames False (its default): padded frames take part in attention
    mask_frames: bool = True
    keep_base: bool = False  # hold a frozen copy of the base for requests without emotion (module doc)

    def __post_init__(self) -> None:
        if self.latent_dim % self.num_heads:
            raise ConfigError(f"latent_dim {self.latent_dim} must be divisible by num_heads {self.num_heads}")
        if self.arch not in ("trans_enc", "trans_dec"):
            raise ConfigError(f"arch must be trans_enc or trans_dec, not {self.arch!r}")
        for name in ("cond_mask_prob", "emotion_mask_prob", "dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ConfigError(f"{name} must be in [0, 1)")


PRESETS: dict[str, MDMConfig] = {
    "tiny": MDMConfig(latent_dim=64, ff_size=128, num_layers=2, num_heads=2, dropout=0.0),
    "small": MDMConfig(latent_dim=256, ff_size=512, num_layers=4, num_heads=4),
    "mdm": MDMConfig(),
}
"""Named sizes: ``tiny`` for tests (seconds), ``small`` for the CPU study, ``mdm`` the official one."""


def preset(name: str, **overrides: object) -> MDMConfig:
    if name not in PRESETS:
        raise ConfigError(f"unknown MDM preset {name!r}; choose from {', '.join(PRESETS)}")
    return replace(PRESETS[name], **overrides)  # type: ignore[arg-type]


class PositionalEncoding(nn.Module):
    """Sinusoidal positions added to a sequence-first tensor; ``pe`` is (max_len, 1, d) as in MDM."""

    def __init__(self, d_model: int, dropout: float, max_len: int) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        position = torch.arange(max_len, dtype=torch.float32)[:, None]
        div = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model))
        pe = torch.zeros(max_len, d_model)
        pe[:, 0::2] = torch.sin(position * div)
        pe[:, 1::2] = torch.cos(position * div)
        self.register_buffer("pe", pe[:, None, :])

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (S, B, d)
        return self.dropout(x + self.pe[: x.shape[0]])


class TimestepEmbedder(nn.Module):
    def __init__(self, latent_dim: int, sequence_pos_encoder: PositionalEncoding) -> None:
        super().__init__()
        self.sequence_pos_encoder = sequence_pos_encoder
        self.time_embed = nn.Sequential(
            nn.Linear(latent_dim, latent_dim), nn.SiLU(), nn.Linear(latent_dim, latent_dim)
        )

    def forward(self, timesteps: torch.Tensor) -> torch.Tensor:  # (B,) -> (1, B, d)
        return self.time_embed(self.sequence_pos_encoder.pe[timesteps]).permute(1, 0, 2)


class InputProcess(nn.Module):
    def __init__(self, input_dim: int, latent_dim: int) -> None:
        super().__init__()
        self.poseEmbedding = nn.Linear(input_dim, latent_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, F) -> (T, B, d)
        return self.poseEmbedding(x.transpose(0, 1))


class OutputProcess(nn.Module):
    def __init__(self, input_dim: int, latent_dim: int) -> None:
        super().__init__()
        self.poseFinal = nn.Linear(latent_dim, input_dim)

    def forward(self, h: torch.Tensor) -> torch.Tensor:  # (T, B, d) -> (B, T, F)
        return self.poseFinal(h).transpose(0, 1)


class MDM(nn.Module):
    """x0-predicting motion transformer (see the module docstring)."""

    def __init__(self, cfg: MDMConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d = cfg.latent_dim
        self.input_process = InputProcess(cfg.input_dim, d)
        self.sequence_pos_encoder = PositionalEncoding(d, cfg.dropout, cfg.max_len)
        if cfg.arch == "trans_enc":
            layer = nn.TransformerEncoderLayer(
                d, cfg.num_heads, cfg.ff_size, cfg.dropout, activation=cfg.activation
            )
            self.seqTransEncoder = nn.TransformerEncoder(layer, cfg.num_layers, enable_nested_tensor=False)
        else:
            layer = nn.TransformerDecoderLayer(
                d, cfg.num_heads, cfg.ff_size, cfg.dropout, activation=cfg.activation
            )
            self.seqTransDecoder = nn.TransformerDecoder(layer, cfg.num_layers)
        self.embed_timestep = TimestepEmbedder(d, self.sequence_pos_encoder)
        self.embed_text = nn.Linear(cfg.text_dim, d)
        if cfg.num_emotions > 0:
            self.embed_emotion = nn.Embedding(cfg.num_emotions + 1, d)  # last row: "no emotion"
            nn.init.zeros_(self.embed_emotion.weight[cfg.num_emotions])
        self.output_process = OutputProcess(cfg.input_dim, d)
        self.base_copy: MDM | None = None
        if cfg.keep_base:
            self.base_copy = MDM(replace(cfg, keep_base=False)).requires_grad_(False)

    def guidance_drops(
        self, cond: MotionCondition, b: int, device: torch.device
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(drop text, drop emotion) per sample: the condition's own where it says; in training, where it
        leaves a condition undecided (None), random drops for classifier-free guidance."""

        def decide(given: torch.Tensor | None, rate: float) -> torch.Tensor:
            if given is not None:
                return given
            if self.training:
                return torch.rand(b, device=device) < rate
            return torch.zeros(b, dtype=torch.bool, device=device)

        return decide(cond.drop_text, self.cfg.cond_mask_prob), decide(
            cond.drop_emotion, self.cfg.emotion_mask_prob
        )

    def forward(
        self,
        x: torch.Tensor,
        timesteps: torch.Tensor,
        cond: MotionCondition,
        mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """x: (B, T, 263) noised motion; timesteps: (B,) long; mask: (B, T) True on real frames.
        Returns the predicted clean motion (B, T, 263)."""
        if self.base_copy is None or self.training:
            return self._denoise(x, timesteps, cond, mask)
        asked = (
            cond.emotion >= 0
            if cond.emotion is not None
            else torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
        )
        if bool(asked.all()):
            return self._denoise(x, timesteps, cond, mask)
        if not bool(asked.any()):
            return self.base_copy(x, timesteps, cond, mask)
        parts = []
        for rows, net in ((asked, self._denoise), (~asked, self.base_copy)):
            parts.append(
                net(x[rows], timesteps[rows], cond.select(rows), None if mask is None else mask[rows])
            )
        out = parts[0].new_empty((x.shape[0], *parts[0].shape[1:]))
        out[asked], out[~asked] = parts[0], parts[1].to(out.dtype)
        return out

    def _denoise(
        self,
        x: torch.Tensor,
        timesteps: torch.Tensor,
        cond: MotionCondition,
        mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The fine-tuned (or only) weights' prediction."""
        b = x.shape[0]
        drop_text, drop_emotion = self.guidance_drops(cond, b, x.device)
        time_emb = self.embed_timestep(timesteps)  # (1, B, d)
        cond_emb = torch.zeros_like(time_emb)  # emotion (and, for trans_enc, text) added here
        if self.cfg.num_emotions > 0 and cond.emotion is not None:
            null = self.cfg.num_emotions
            labels = torch.where(
                (cond.emotion < 0) | drop_emotion, torch.full_like(cond.emotion, null), cond.emotion
            )
            e = self.embed_emotion(labels)  # (B, d)
            if cond.intensity is not None:
                e = e * cond.intensity.to(x.dtype)[:, None]
            cond_emb = cond_emb + e[None]
        keep = (~drop_text).to(x.dtype)[:, None]
        h = self.input_process(x)  # (T, B, d)
        pad = None if mask is None or not self.cfg.mask_frames else ~mask  # (B, T) True = padding
        if self.cfg.arch == "trans_enc":
            emb = time_emb + cond_emb
            if cond.text is not None:
                emb = emb + self.embed_text(cond.text.sentence.to(x.dtype) * keep)[None]  # (1, B, d)
            if pad is not None:
                pad = torch.cat(
                    [torch.zeros(b, 1, dtype=torch.bool, device=x.device), pad], dim=1
                )  # (B, T+1)
            seq = self.sequence_pos_encoder(torch.cat([emb, h], dim=0))  # (T+1, B, d)
            out = self.seqTransEncoder(seq, src_key_padding_mask=pad)[1:]  # (T, B, d)
        else:
            if cond.text is None:
                raise ConfigError("trans_dec needs a text condition")
            if self.cfg.memory == "tokens":
                memory = self.embed_text(cond.text.tokens.to(x.dtype) * keep[:, :, None]).transpose(
                    0, 1
                )  # (L, B, d)
                memory_pad = ~cond.text.mask
            else:
                memory = self.embed_text(cond.text.sentence.to(x.dtype) * keep)[None]  # (1, B, d)
                memory_pad = None
            memory = memory + time_emb + cond_emb
            if self.cfg.emb_trans_dec:
                h = torch.cat([time_emb + cond_emb, h], dim=0)
                if pad is not None:
                    pad = torch.cat([torch.zeros(b, 1, dtype=torch.bool, device=x.device), pad], dim=1)
            seq = self.sequence_pos_encoder(h)
            out = self.seqTransDecoder(
                seq, memory, tgt_key_padding_mask=pad, memory_key_padding_mask=memory_pad
            )
            if self.cfg.emb_trans_dec:
                out = out[1:]
        return self.output_process(out)  # (B, T, 263)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)


def build_from_config(config: Mapping[str, Any]) -> MDM:
    """The checkpoint registry's factory for kind ``mdm``."""
    return MDM(MDMConfig(**config))
