"""The text-encoder contract, its spec (saved in checkpoints) and the registry."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from emomotion.errors import ConfigError


@dataclass(frozen=True)
class TextEncoderSpec:
    """What a checkpoint records about its text encoder; ``path`` is a local folder or file."""

    name: str = "minilm"
    path: str | None = None
    max_length: int = 77

    def __post_init__(self) -> None:
        if self.max_length < 2:
            raise ConfigError(f"text max_length must be >= 2, got {self.max_length}")


@dataclass(frozen=True)
class TextEmbedding:
    """Sentence embeddings and per-token states of a batch of texts."""

    sentence: torch.Tensor  # (B, D)
    tokens: torch.Tensor  # (B, L, D)
    mask: torch.Tensor  # (B, L) bool, True on real tokens

    def to(self, device: torch.device | str) -> TextEmbedding:
        return TextEmbedding(self.sentence.to(device), self.tokens.to(device), self.mask.to(device))


class TextEncoder(torch.nn.Module):
    """A frozen encoder with a per-text cache (texts repeat across epochs and CFG passes)."""

    dim: int

    def __init__(self, spec: TextEncoderSpec, cache_size: int = 4096) -> None:
        super().__init__()
        self.spec = spec
        self._cache: OrderedDict[str, tuple[torch.Tensor, torch.Tensor]] = OrderedDict()
        self._cache_size = cache_size

    def _encode(self, texts: list[str]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per text: (sentence (D,), tokens (L_i, D)), float32 on CPU."""
        raise NotImplementedError

    @torch.no_grad()
    def encode(self, texts: Sequence[str], device: torch.device | str = "cpu") -> TextEmbedding:
        missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if missing:
            for text, value in zip(missing, self._encode(missing), strict=True):
                self._cache[text] = value
                if len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        items = [self._cache[t] for t in texts]
        for t in texts:
            self._cache.move_to_end(t)
        length = max(tok.shape[0] for _, tok in items)
        tokens = torch.zeros(len(items), length, self.dim)
        mask = torch.zeros(len(items), length, dtype=torch.bool)
        for i, (_, tok) in enumerate(items):
            tokens[i, : tok.shape[0]] = tok
            mask[i, : tok.shape[0]] = True
        sentence = torch.stack([s for s, _ in items])
        return TextEmbedding(sentence, tokens, mask).to(device)

    def train(self, mode: bool = True) -> TextEncoder:  # always frozen, always eval
        return super().train(False)


_REGISTRY: dict[str, Callable[[TextEncoderSpec], TextEncoder]] = {}


def register_text_encoder(
    name: str,
) -> Callable[[Callable[[TextEncoderSpec], TextEncoder]], Callable[[TextEncoderSpec], TextEncoder]]:
    def wrap(factory: Callable[[TextEncoderSpec], TextEncoder]) -> Callable[[TextEncoderSpec], TextEncoder]:
        if name in _REGISTRY:
            raise ConfigError(f"text encoder {name!r} is already registered")
        _REGISTRY[name] = factory
        return factory

    return wrap


def text_encoder_names() -> list[str]:
    return sorted(_REGISTRY)


def build_text_encoder(spec: TextEncoderSpec | str) -> TextEncoder:
    spec = TextEncoderSpec(spec) if isinstance(spec, str) else spec
    if spec.name not in _REGISTRY:
        raise ConfigError(f"unknown text encoder {spec.name!r}; known: {', '.join(text_encoder_names())}")
    encoder = _REGISTRY[spec.name](spec)
    encoder.requires_grad_(False)
    return encoder.eval()
