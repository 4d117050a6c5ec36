"""Deterministic train / val / test splits: actor-disjoint where actors are known.

Strategies (``SplitConfig.strategy``):
- ``actor``: whole actors go to one split (a model is never tested on an actor it trained on);
  actors are assigned greedily to the split furthest below its target share of *clips*.
- ``group``: the same by an arbitrary key (e.g. content/action) when actors are unknown.
- ``stratified``: clips shuffled within each emotion and cut by ratio, so every split has every
  emotion in proportion.
``auto`` picks ``actor`` when at least 3 actors are known, else ``stratified``. Mirrored clips
(``M`` prefix) always follow their original.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from emomotion.errors import ConfigError

SPLITS = ("train", "val", "test")
Strategy = Literal["auto", "actor", "group", "stratified"]


@dataclass(frozen=True)
class SplitConfig:
    ratios: tuple[float, float, float] = (0.8, 0.1, 0.1)
    strategy: Strategy = "auto"
    seed: int = 0

    def __post_init__(self) -> None:
        if len(self.ratios) != 3 or any(r < 0 for r in self.ratios) or abs(sum(self.ratios) - 1) > 1e-6:
            raise ConfigError(
                f"split ratios must be three non-negative numbers summing to 1, got {self.ratios}"
            )
        if self.strategy not in ("auto", "actor", "group", "stratified"):
            raise ConfigError(
                f"unknown split strategy {self.strategy!r}; use auto, actor, group or stratified"
            )


@dataclass(frozen=True)
class SplitItem:
    clip_id: str
    actor: str | None = None
    group: str | None = None
    emotion: str | None = None


def _assign_groups(groups: Mapping[str, Sequence[str]], cfg: SplitConfig) -> dict[str, str]:
    rng = random.Random(cfg.seed)
    keys = sorted(groups)
    rng.shuffle(keys)
    keys.sort(key=lambda k: -len(groups[k]))  # big groups first, ties in shuffled order (stable sort)
    total = sum(len(v) for v in groups.values())
    counts = dict.fromkeys(SPLITS, 0)
    out: dict[str, str] = {}

    def put(key: str, split: str) -> None:
        counts[split] += len(groups[key])
        for clip in groups[key]:
            out[clip] = split

    wanted = [s for i, s in enumerate(SPLITS) if cfg.ratios[i] > 0]
    if len(keys) >= len(wanted):  # every split asked for gets a group: held-out splits the smallest ones
        for split in reversed(wanted[1:]):
            put(keys.pop(), split)
    for key in keys:
        deficits = {s: cfg.ratios[i] * total - counts[s] for i, s in enumerate(SPLITS) if cfg.ratios[i] > 0}
        put(key, max(deficits, key=lambda s: deficits[s]))
    return out


def _stratified(items: Sequence[SplitItem], cfg: SplitConfig) -> dict[str, str]:
    rng = random.Random(cfg.seed)
    by_emotion: dict[str, list[str]] = defaultdict(list)
    for item in items:
        by_emotion[item.emotion or ""].append(item.clip_id)
    out: dict[str, str] = {}
    for emotion in sorted(by_emotion):
        ids = sorted(by_emotion[emotion])
        rng.shuffle(ids)
        n_train = round(cfg.ratios[0] * len(ids))
        n_val = round(cfg.ratios[1] * len(ids))
        for i, clip in enumerate(ids):
            out[clip] = "train" if i < n_train else "val" if i < n_train + n_val else "test"
    return out


def assign_splits(items: Sequence[SplitItem], cfg: SplitConfig) -> tuple[dict[str, str], str]:
    """clip id -> split for original clips, and the strategy used. Mirrored ids are handled by the caller
    through :func:`split_of`."""
    strategy = cfg.strategy
    actors = {i.actor for i in items if i.actor}
    if strategy == "auto":
        strategy = "actor" if len(actors) >= 3 and all(i.actor for i in items) else "stratified"
    if strategy in ("actor", "group"):
        attr = "actor" if strategy == "actor" else "group"
        groups: dict[str, list[str]] = defaultdict(list)
        for item in items:
            key = getattr(item, attr)
            if not key:
                raise ConfigError(
                    f"split strategy {strategy!r} needs a {attr} for every clip; {item.clip_id} has none"
                )
            groups[key].append(item.clip_id)
        return _assign_groups(groups, cfg), strategy
    return _stratified(items, cfg), strategy


def split_of(clip_id: str, assignment: Mapping[str, str]) -> str:
    """The split of a clip; a mirrored ``M<id>`` clip shares its original's split."""
    if clip_id in assignment:
        return assignment[clip_id]
    if clip_id.startswith("M") and clip_id[1:] in assignment:
        return assignment[clip_id[1:]]
    raise KeyError(clip_id)
