"""Reading an official ``.pt`` / ``.pth`` / ``.tar`` file: weights only, typed errors naming the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from emomotion.errors import CheckpointError


def load_official(path: Path) -> Any:
    """``torch.load(weights_only=True)`` on CPU; a missing or non-checkpoint file is a CheckpointError."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError as exc:
        raise CheckpointError("checkpoint not found", path=path) from exc
    except Exception as exc:  # torch raises several types for non-checkpoint bytes
        raise CheckpointError(f"not a loadable weights-only torch checkpoint: {exc}", path=path) from exc
