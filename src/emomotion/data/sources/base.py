"""The source contract and registry."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from emomotion.data.emotions import EmotionLabel
from emomotion.errors import ConfigError


@dataclass(frozen=True)
class BuildContext:
    """Options a source may need (from the build command)."""

    input: Path | None
    seed: int = 0
    joint_map: str | None = None
    labels: Path | None = None
    units: str | float | None = None  # BVH units override (a unit name or metres per unit)
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SourceClip:
    """One usable input, before loading."""

    key: str  # unique within the source; becomes the clip id
    path: Path | None
    action: str | None
    emotion: EmotionLabel
    actor: str | None = None
    captions: tuple[str, ...] | None = None  # given captions; None -> generated from templates
    style: str | None = None  # the source's own style label when it is not an emotion
    extra: Mapping[str, Any] = field(default_factory=dict)
    synthetic: bool = False


@dataclass(frozen=True)
class Skipped:
    """An input that was not used, and why (every one is listed in the manifest)."""

    path: str
    reason: str  # with the line number when there is one ("line 12: ...")
    line: int | None = None


@dataclass(frozen=True)
class LoadedClip:
    joints: np.ndarray  # (T, 22, 3) metres, Y-up, 20 fps (not yet canonical)
    info: Mapping[str, Any] = field(default_factory=dict)  # retarget report, source fps, frames...


class Source(Protocol):
    name: str
    description: str

    def scan(self, ctx: BuildContext) -> tuple[list[SourceClip], list[Skipped]]: ...

    def load(self, clip: SourceClip, ctx: BuildContext) -> LoadedClip: ...


_REGISTRY: dict[str, Source] = {}


def register_source(source: Source) -> Source:
    if source.name in _REGISTRY:
        raise ConfigError(f"data source {source.name!r} is already registered")
    _REGISTRY[source.name] = source
    return source


def get_source(name: str) -> Source:
    if name not in _REGISTRY:
        raise ConfigError(f"unknown data source {name!r}; known: {', '.join(source_names())}")
    return _REGISTRY[name]


def source_names() -> list[str]:
    return sorted(_REGISTRY)


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def require_dir(ctx: BuildContext, source: str) -> Path:
    if ctx.input is None:
        raise ConfigError(f"source {source!r} needs --input DIR")
    if not ctx.input.is_dir():
        raise ConfigError(f"source {source!r}: input folder not found: {ctx.input}")
    return ctx.input
