"""Reading an official ``.pt`` / ``.pth`` / ``.tar`` file: weights only, typed errors naming the file."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch

from emomotion.errors import CheckpointError


def load_official(path: Path) -> Any:
    """``torch.load(weights_only=True)`` on CPU; a missing or non-checkpoint file is a CheckpointError."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. the pickle-protocol note: the error (if any) says it all
            return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError as exc:
        raise CheckpointError("checkpoint not found", path=path) from exc
    except Exception as exc:  # torch raises several types for non-checkpoint bytes
        raise CheckpointError(
            f"not a loadable weights-only torch checkpoint: {_gist(exc)}", path=path
        ) from exc


def _gist(exc: Exception) -> str:
    """What torch's several-paragraph load error says is wrong: the unpickler's verdict, or its first line."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    for i, line in enumerate(lines):
        if "WeightsUnpickler error:" in line:
            verdict = line.split("WeightsUnpickler error:", 1)[1].strip()
            return verdict or (lines[i + 1] if i + 1 < len(lines) else line)
    return lines[0] if lines else type(exc).__name__
