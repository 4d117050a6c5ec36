"""The text-motion matching evaluator of Guo et al. 2022 ("Generating Diverse and Natural 3D Human
Motions from Text"), the T2M evaluator that MDM and MMM report their metrics with.

Three networks with the official module and key layout, so official weights load by name:

- ``movement_encoder``: two strided Conv1d (kernel 4, stride 2) on the 259 features without the
  four foot contacts: ``(B, T, 259) -> (B, T/4, latent)``.
- ``motion_encoder``: bi-GRU over the movement sequence, final states of both directions ->
  MLP -> co-embedding ``(B, D)``.
- ``text_encoder``: bi-GRU over word vectors -> MLP -> co-embedding ``(B, D)``.

Two text front-ends feed the text encoder:

- ``glove`` (official): GloVe 300-d word vectors plus a 15-way POS one-hot (projected and added),
  from the POS-tagged caption tokens ``word/POS``, wrapped in ``sos``/``eos`` and cut to 20 words.
  The vocabulary and its vectors live in the checkpoint (see :mod:`emomotion.importers.t2m_evaluator`).
- ``minilm`` (ours, trained by :mod:`emomotion.training.evaluator`): the frozen token states of an
  :mod:`emomotion.text` encoder (384-d for MiniLM), outside the state_dict.

The evaluator normalises motions with its OWN statistics (buffers ``mean``/``std``, also the
checkpoint's stats): callers always give de-normalised features.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from emomotion.configs import dataclass_from
from emomotion.errors import ConfigError
from emomotion.skeleton import FEATURE_DIM

log = logging.getLogger(__name__)

FOOT_CONTACT_DIMS = 4
"""The last four features are foot contacts; the evaluator never sees them."""

POS_TAGS: dict[str, int] = {
    tag: i
    for i, tag in enumerate(
        (
            "VERB",
            "NOUN",
            "DET",
            "ADP",
            "NUM",
            "AUX",
            "PRON",
            "ADJ",
            "ADV",
            "Loc_VIP",
            "Body_VIP",
            "Obj_VIP",
            "Act_VIP",
            "Desc_VIP",
            "OTHER",
        )
    )
}
"""The official 15-way POS one-hot (spaCy universal tags plus five motion-word classes)."""

_VIP_TEXT: dict[str, str] = {
    "Loc_VIP": "left right clockwise counterclockwise anticlockwise forward back backward up down straight curve",
    "Body_VIP": "arm chin foot feet face hand mouth leg waist eye knee shoulder thigh",
    "Obj_VIP": "stair dumbbell chair window floor car ball handrail baseball basketball",
    "Act_VIP": "walk run swing pick bring kick put squat throw hop dance jump turn stumble stop sit lift lower "
    "raise wash stand kneel stroll rub bend balance flap jog shuffle lean rotate spin spread climb",
    "Desc_VIP": "slowly carefully fast careful slow quickly happy angry sad happily angrily sadly",
}
VIP_WORDS: dict[str, frozenset[str]] = {vip: frozenset(words.split()) for vip, words in _VIP_TEXT.items()}
"""Words whose POS one-hot is their motion class instead of their tag (first class listed wins)."""

UNKNOWN, START, END = "unk", "sos", "eos"

TextFrontend = Literal["minilm", "glove"]


@dataclass(frozen=True)
class EvaluatorConfig:
    """Sizes of the three encoders and the text front-end. ``t2m`` is the official evaluator."""

    text_frontend: TextFrontend = "minilm"
    text_model: str = "minilm"  # emomotion.text encoder name (minilm front-end)
    text_model_path: str | None = None  # its local folder, for encoders that need one
    word_dim: int = 384  # 384 for MiniLM tokens, 300 for GloVe
    movement_hidden: int = 512
    movement_latent: int = 512
    motion_hidden: int = 1024
    text_hidden: int = 512
    embed_dim: int = 512
    input_dim: int = FEATURE_DIM
    unit_length: int = 4  # frames per movement step (the conv downsamples by 4)
    max_text_tokens: int = 20  # glove front-end: words kept before sos/eos are added
    vocabulary: tuple[str, ...] = ()  # glove front-end: word of each row of word_vectors

    def __post_init__(self) -> None:
        if self.text_frontend not in ("minilm", "glove"):
            raise ConfigError(f"text_frontend must be 'minilm' or 'glove', got {self.text_frontend!r}")
        sizes = (
            "word_dim",
            "movement_hidden",
            "movement_latent",
            "motion_hidden",
            "text_hidden",
            "embed_dim",
        )
        for name in sizes:
            if getattr(self, name) < 1:
                raise ConfigError(f"evaluator {name} must be >= 1, got {getattr(self, name)}")
        if self.input_dim <= FOOT_CONTACT_DIMS:
            raise ConfigError(
                f"input_dim must exceed the {FOOT_CONTACT_DIMS} foot contacts, got {self.input_dim}"
            )
        if self.unit_length != 4:
            raise ConfigError(
                f"the movement encoder downsamples by 4; unit_length must be 4, got {self.unit_length}"
            )
        if self.max_text_tokens < 1:
            raise ConfigError(f"max_text_tokens must be >= 1, got {self.max_text_tokens}")
        object.__setattr__(self, "vocabulary", tuple(self.vocabulary))
        if self.text_frontend == "glove":
            missing = [w for w in (UNKNOWN, START, END) if w not in set(self.vocabulary)]
            if missing:
                raise ConfigError(f"a glove evaluator's vocabulary must hold {missing} (special tokens)")
        elif self.vocabulary:
            raise ConfigError("only the glove text front-end has a vocabulary")

    @property
    def pos_dim(self) -> int:
        """Width of the POS one-hot added to the word vectors (0: no POS input)."""
        return len(POS_TAGS) if self.text_frontend == "glove" else 0


PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {
        "movement_hidden": 64,
        "movement_latent": 64,
        "motion_hidden": 128,
        "text_hidden": 128,
        "embed_dim": 128,
    },
    "small": {
        "movement_hidden": 256,
        "movement_latent": 256,
        "motion_hidden": 512,
        "text_hidden": 256,
        "embed_dim": 512,
    },
    "t2m": {},  # the official sizes (EvaluatorMDMWrapper)
}


def preset(name: str, **overrides: Any) -> EvaluatorConfig:
    """A named preset (``tiny``, ``small``, ``t2m``) with field overrides."""
    if name not in PRESETS:
        raise ConfigError(f"unknown evaluator preset {name!r}; known: {', '.join(PRESETS)}")
    return replace(EvaluatorConfig(**PRESETS[name]), **overrides)


def _init_weight(module: nn.Module) -> None:
    """Xavier-normal weights and zero biases for conv and linear layers (as the official code)."""
    if isinstance(module, nn.Conv1d | nn.Linear):
        nn.init.xavier_normal_(module.weight)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


class MovementConvEncoder(nn.Module):
    """``(B, T, input) -> (B, T/4, output)``: two Conv1d(kernel 4, stride 2, padding 1) + LeakyReLU."""

    def __init__(self, input_size: int, hidden_size: int, output_size: int) -> None:
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv1d(input_size, hidden_size, 4, 2, 1),
            nn.Dropout(0.2),
            nn.LeakyReLU(0.2),
            nn.Conv1d(hidden_size, output_size, 4, 2, 1),
            nn.Dropout(0.2),
            nn.LeakyReLU(0.2),
        )
        self.out_net = nn.Linear(output_size, output_size)
        self.apply(_init_weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.main(x.permute(0, 2, 1)).permute(0, 2, 1)  # (B, T/4, output)
        return self.out_net(h)


class _BiGRUEncoder(nn.Module):
    """Linear -> bi-GRU from a learned initial state -> both final states -> MLP."""

    def __init__(self, input_size: int, hidden_size: int, output_size: int) -> None:
        super().__init__()
        self.input_emb = nn.Linear(input_size, hidden_size)
        self.gru = nn.GRU(hidden_size, hidden_size, batch_first=True, bidirectional=True)
        self.output_net = nn.Sequential(
            nn.Linear(hidden_size * 2, hidden_size),
            nn.LayerNorm(hidden_size),
            nn.LeakyReLU(0.2),
            nn.Linear(hidden_size, output_size),
        )
        self.input_emb.apply(_init_weight)
        self.output_net.apply(_init_weight)
        self.hidden = nn.Parameter(torch.randn(2, 1, hidden_size))

    def _encode(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        packed = pack_padded_sequence(
            self.input_emb(x), lengths.detach().cpu().long(), batch_first=True, enforce_sorted=False
        )
        _, last = self.gru(packed, self.hidden.repeat(1, b, 1).contiguous())  # last (2, B, H)
        return self.output_net(torch.cat([last[0], last[1]], dim=-1))  # (B, output)


class MotionEncoderBiGRUCo(_BiGRUEncoder):
    """Movement sequence ``(B, T/4, latent)`` with step counts ``(B,)`` -> co-embedding ``(B, D)``."""

    def forward(self, movements: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self._encode(movements, lengths)


class TextEncoderBiGRUCo(_BiGRUEncoder):
    """Word vectors ``(B, L, word)`` (+ POS one-hot ``(B, L, pos)``) with lengths -> ``(B, D)``."""

    def __init__(self, word_size: int, pos_size: int, hidden_size: int, output_size: int) -> None:
        super().__init__(word_size, hidden_size, output_size)
        self.pos_emb = nn.Linear(pos_size, word_size) if pos_size else None
        if self.pos_emb is not None:
            self.pos_emb.apply(_init_weight)

    def forward(
        self, word_embs: torch.Tensor, pos_onehot: torch.Tensor | None, lengths: torch.Tensor
    ) -> torch.Tensor:
        if self.pos_emb is not None:
            if pos_onehot is None:
                raise ConfigError("this text encoder needs POS one-hots (glove front-end)")
            word_embs = word_embs + self.pos_emb(pos_onehot)
        return self._encode(word_embs, lengths)


class Evaluator(nn.Module):
    """The three encoders, the evaluator's own normalisation and its text front-end."""

    def __init__(self, cfg: EvaluatorConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.movement_encoder = MovementConvEncoder(
            cfg.input_dim - FOOT_CONTACT_DIMS, cfg.movement_hidden, cfg.movement_latent
        )
        self.text_encoder = TextEncoderBiGRUCo(cfg.word_dim, cfg.pos_dim, cfg.text_hidden, cfg.embed_dim)
        self.motion_encoder = MotionEncoderBiGRUCo(cfg.movement_latent, cfg.motion_hidden, cfg.embed_dim)
        self.register_buffer("mean", torch.zeros(cfg.input_dim))
        self.register_buffer("std", torch.ones(cfg.input_dim))
        if cfg.text_frontend == "glove":
            self.register_buffer("word_vectors", torch.zeros(len(cfg.vocabulary), cfg.word_dim))
            self._word_index = {w: i for i, w in enumerate(cfg.vocabulary)}
        object.__setattr__(self, "_text_model", None)  # frozen text encoder, built on first use, never saved

    @property
    def device(self) -> torch.device:
        return self.mean.device

    def set_stats(self, mean: np.ndarray | torch.Tensor, std: np.ndarray | torch.Tensor) -> None:
        """Store the normalisation statistics ``(263,)`` this evaluator's weights expect."""
        mean_t = torch.as_tensor(np.asarray(mean, dtype=np.float32))
        std_t = torch.as_tensor(np.asarray(std, dtype=np.float32))
        if mean_t.shape != self.mean.shape or std_t.shape != self.std.shape:
            raise ConfigError(f"evaluator stats must have shape {tuple(self.mean.shape)}, got {mean_t.shape}")
        if not bool((std_t > 0).all()):
            raise ConfigError("evaluator std must be positive everywhere")
        self.mean.copy_(mean_t)
        self.std.copy_(std_t)

    # motion ----------------------------------------------------------------------

    def encode_motion(self, motion: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Normalised features ``(B, T, 263)`` (zero past each length) -> ``(B, D)``, with gradients.

        ``lengths`` are frame counts; the GRU runs over ``lengths // 4`` movement steps.
        """
        unit = self.cfg.unit_length
        pad = (-motion.shape[1]) % unit
        if pad:
            motion = nn.functional.pad(motion, (0, 0, 0, pad))  # (B, T', 263), T' a multiple of 4
        movements = self.movement_encoder(motion[..., :-FOOT_CONTACT_DIMS])  # (B, T'/4, latent)
        steps = (lengths // unit).clamp(min=1)
        return self.motion_encoder(movements, steps)  # (B, D)

    def normalise(self, features: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """De-normalised ``(B, T, 263)`` -> normalised with zeros past each length cut to a multiple of 4."""
        lengths = (lengths // self.cfg.unit_length) * self.cfg.unit_length
        if bool((lengths < self.cfg.unit_length).any()):
            raise ConfigError(
                f"every motion needs at least {self.cfg.unit_length} frames, got {lengths.tolist()}"
            )
        x = (features - self.mean) / self.std
        keep = torch.arange(x.shape[1], device=x.device)[None, :] < lengths[:, None]  # (B, T)
        return x * keep[..., None], lengths

    @torch.no_grad()
    def embed_motion(
        self, features: np.ndarray | torch.Tensor, lengths: Sequence[int] | torch.Tensor
    ) -> torch.Tensor:
        """De-normalised features ``(B, T, 263)`` and frame counts ``(B,)`` -> ``(B, D)`` on CPU."""
        x = torch.as_tensor(np.asarray(features, dtype=np.float32)).to(self.device)
        if x.ndim != 3 or x.shape[-1] != self.cfg.input_dim:
            raise ConfigError(f"motions must have shape (B, T, {self.cfg.input_dim}), got {tuple(x.shape)}")
        n = torch.as_tensor(np.asarray(lengths), dtype=torch.long).to(self.device).clamp(max=x.shape[1])
        x, n = self.normalise(x, n)
        return self.encode_motion(x, n).float().cpu()

    # text -------------------------------------------------------------------------

    def text_model(self) -> Any:
        """The frozen token encoder of the minilm front-end (built once, kept out of the state_dict)."""
        if self._text_model is None:
            from emomotion.text import TextEncoderSpec, build_text_encoder

            self.use_text_model(
                build_text_encoder(TextEncoderSpec(self.cfg.text_model, self.cfg.text_model_path))
            )
        return self._text_model

    def use_text_model(self, encoder: Any) -> None:
        """Use an already built frozen text encoder (its token width must be ``word_dim``)."""
        if encoder.dim != self.cfg.word_dim:
            raise ConfigError(
                f"text model {self.cfg.text_model!r} gives {encoder.dim}-d tokens, "
                f"the evaluator expects word_dim={self.cfg.word_dim}"
            )
        object.__setattr__(self, "_text_model", encoder)  # not a submodule: stays out of the state_dict

    def text_inputs(
        self, texts: Sequence[str] | None = None, tokens: Sequence[Sequence[str]] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """Word inputs ``(B, L, word)``, POS one-hots ``(B, L, 15)`` or None, lengths ``(B,)``."""
        if self.cfg.text_frontend == "minilm":
            if texts is None:
                raise ConfigError("the minilm evaluator embeds texts, not POS-tagged tokens")
            emb = self.text_model().encode(list(texts), device=self.device)
            return emb.tokens, None, emb.mask.sum(1)
        if tokens is None:
            if texts is None:
                raise ConfigError("embed_text needs texts or tokens")
            from emomotion.data.captions import make_caption

            tokens = [make_caption(t).tokens for t in texts]
        return self._glove_inputs(tokens)

    def _glove_inputs(
        self, tokens: Sequence[Sequence[str]]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        limit = self.cfg.max_text_tokens
        width = limit + 2
        words = torch.full((len(tokens), width), self._word_index[UNKNOWN], dtype=torch.long)
        pos = torch.full((len(tokens), width), POS_TAGS["OTHER"], dtype=torch.long)
        lengths = torch.zeros(len(tokens), dtype=torch.long)
        for i, sentence in enumerate(tokens):
            items = [(START, "OTHER"), *(_split_token(t) for t in list(sentence)[:limit]), (END, "OTHER")]
            for j, (word, tag) in enumerate(items):
                words[i, j], pos[i, j] = self._glove_token(word, tag)
            lengths[i] = len(items)
        vectors = self.word_vectors[words.to(self.device)]  # (B, L, 300)
        onehot = nn.functional.one_hot(pos, len(POS_TAGS)).float().to(self.device)  # (B, L, 15)
        return vectors, onehot, lengths

    def _glove_token(self, word: str, tag: str) -> tuple[int, int]:
        """Row of the word (``unk`` when unknown) and its POS class, as the official word vectoriser."""
        index = self._word_index.get(word)
        if index is None:
            return self._word_index[UNKNOWN], POS_TAGS["OTHER"]
        for vip, members in VIP_WORDS.items():
            if word in members:
                return index, POS_TAGS[vip]
        return index, POS_TAGS.get(tag, POS_TAGS["OTHER"])

    def encode_text(
        self, texts: Sequence[str] | None = None, tokens: Sequence[Sequence[str]] | None = None
    ) -> torch.Tensor:
        """Texts (or ``word/POS`` token lists) -> co-embeddings ``(B, D)``, with gradients."""
        words, pos, lengths = self.text_inputs(texts, tokens)
        return self.text_encoder(words, pos, lengths)

    @torch.no_grad()
    def embed_text(
        self, texts: Sequence[str] | None = None, tokens: Sequence[Sequence[str]] | None = None
    ) -> torch.Tensor:
        """Texts (or ``word/POS`` token lists, glove front-end) -> ``(B, D)`` on CPU."""
        return self.encode_text(texts, tokens).float().cpu()

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def _split_token(token: str) -> tuple[str, str]:
    """``"walk/VERB"`` -> ``("walk", "VERB")``; a token without a tag counts as OTHER."""
    word, _, tag = token.rpartition("/")
    return (word, tag) if word else (token, "OTHER")


def build_from_config(config: Mapping[str, Any]) -> Evaluator:
    """The checkpoint factory of kind ``"evaluator"``."""
    return Evaluator(dataclass_from(EvaluatorConfig, config))
