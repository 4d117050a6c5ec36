"""Frozen config dataclasses to and from the plain dicts stored in checkpoint metadata.

The lowest layer of the package (beside :mod:`emomotion.errors`): networks build their configs with it
and checkpoints store them, without either importing the other.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, fields, is_dataclass
from typing import Any


def config_dict(cfg: Any) -> dict[str, Any]:
    """A config dataclass (or a mapping) as a plain dict."""
    return asdict(cfg) if is_dataclass(cfg) else dict(cfg)


def dataclass_from(cls: type, data: Mapping[str, Any]) -> Any:
    """Build a frozen config from a dict, ignoring keys it does not know (forward compatible)."""
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in names})
