"""Typed errors. Each names the file (when there is one), where in it, and the reason."""

from __future__ import annotations

import re
from pathlib import Path

MAX_REASON_CHARS = 1000
"""Longer reasons are cut and line breaks joined: an error message stays one readable line whatever
the input held."""


class EmomotionError(Exception):
    """Base class of every error the library raises on purpose."""

    def __init__(self, reason: str, *, path: str | Path | None = None, where: str | None = None) -> None:
        if "\n" in reason:  # an error is one line, whatever text it quotes
            reason = " ".join(reason.split())
        if len(reason) > MAX_REASON_CHARS:
            reason = f"{reason[:MAX_REASON_CHARS]}... ({len(reason):,} characters)"
        self.reason = reason
        self.path = Path(path) if path is not None else None
        self.where = where
        super().__init__(self._message())

    @property
    def line(self) -> int | None:
        """The line number in ``where`` ("line 12" -> 12), when there is one."""
        match = re.search(r"\bline (\d+)", self.where or "")
        return int(match.group(1)) if match else None

    def _message(self) -> str:
        parts = []
        if self.path is not None:
            parts.append(str(self.path))
        if self.where:
            parts.append(self.where)
        prefix = ":".join(parts)
        return f"{prefix}: {self.reason}" if prefix else self.reason


class BvhError(EmomotionError):
    """A BVH file cannot be read or written."""


class MotionFormatError(EmomotionError):
    """A motion array (joints, features) has the wrong shape, dtype or values."""


class RetargetError(EmomotionError):
    """A source skeleton cannot be mapped onto SMPL-22."""


class JointMapError(RetargetError):
    """A joint map is unknown, malformed, or names joints the source lacks."""


class DatasetError(EmomotionError):
    """A dataset folder or one of its files is invalid."""


class ConfigError(EmomotionError):
    """A configuration value is invalid."""


class CheckpointError(EmomotionError):
    """A checkpoint cannot be read, or does not match the model."""
