"""Frozen text encoders, one registry: ``minilm`` (default, ships its weights), ``clip`` and
``distilbert`` (from local folders the user gives). Their weights never enter a model's state_dict."""

from emomotion.text import encoders  # noqa: F401  (registration)
from emomotion.text.base import (
    TextEmbedding,
    TextEncoder,
    TextEncoderSpec,
    build_text_encoder,
    register_text_encoder,
    text_encoder_names,
)

__all__ = [
    "TextEmbedding",
    "TextEncoder",
    "TextEncoderSpec",
    "build_text_encoder",
    "register_text_encoder",
    "text_encoder_names",
]
