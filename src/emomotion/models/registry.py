"""The model kinds a checkpoint can hold: kind -> ``factory(config_dict) -> nn.Module``, one entry per
network family.

Checkpoints name their kind in their metadata; :meth:`emomotion.checkpoint.Checkpoint.build_model`
looks the factory up here. The networks know nothing of checkpoints: they only build themselves from
a config dict (:func:`emomotion.configs.dataclass_from`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from emomotion.errors import CheckpointError
from emomotion.models import emotion_classifier, evaluator, masked, mdm, vqvae

ModelFactory = Callable[[Mapping[str, Any]], torch.nn.Module]

MODEL_KINDS: Mapping[str, ModelFactory] = {  # a new family is one entry here
    "mdm": mdm.build_from_config,
    "vqvae": vqvae.build_from_config,
    "mmm": masked.build_from_config,
    "evaluator": evaluator.build_from_config,
    "emotion_classifier": emotion_classifier.build_from_config,
}


def model_factory(kind: str, path: Path | None = None) -> ModelFactory:
    """The factory of ``kind``; ``path`` (the checkpoint) is named in the error for an unknown kind."""
    factory = MODEL_KINDS.get(kind)
    if factory is None:
        raise CheckpointError(
            f"unknown model kind {kind!r} (known: {', '.join(sorted(MODEL_KINDS))})", path=path
        )
    return factory
