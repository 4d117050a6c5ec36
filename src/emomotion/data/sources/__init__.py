"""Dataset sources, one registry: each turns an input folder into clips with labels.

A source lists its inputs (:meth:`Source.scan`), recording every input it cannot use with the
reason, and loads one clip as SMPL-22 joints at 20 fps (:meth:`Source.load`). Adding a dataset is
one module that calls :func:`register_source`.
"""

from __future__ import annotations

from emomotion.data.sources import bandai, bvh_folder, emilya, humanml3d, synthetic  # noqa: F401  (registration)
from emomotion.data.sources.base import (
    BuildContext,
    LoadedClip,
    Skipped,
    Source,
    SourceClip,
    get_source,
    register_source,
    source_names,
)

__all__ = [
    "BuildContext",
    "LoadedClip",
    "Skipped",
    "Source",
    "SourceClip",
    "get_source",
    "register_source",
    "source_names",
]
