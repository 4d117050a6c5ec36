"""A torch Dataset over a HumanML3D-layout folder, and the batch type every model trains on.

Features are memory-mapped and read per item, captions are read per item: what the dataset holds
in memory is a few numbers per clip, so memory stays flat as the dataset grows. As in MDM, clips
shorter than ``min_frames`` are left out, longer ones are randomly cropped to ``max_frames``, a
caption with a time span selects that part of the clip, and features are normalised with the
dataset's Mean/Std (or another dataset's, e.g. the pretraining set's when fine-tuning).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from emomotion import skeleton as sk
from emomotion.data import layout
from emomotion.data.emotions import EMOTION_INDEX
from emomotion.errors import ConfigError, DatasetError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DatasetConfig:
    root: Path
    split: str = "train"
    min_frames: int = sk.MIN_FRAMES
    max_frames: int = sk.MAX_FRAMES
    stats_root: Path | None = None  # take Mean/Std from here instead of root
    normalise: bool = True
    random_crop: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        if not 1 <= self.min_frames <= self.max_frames:
            raise ConfigError(f"need 1 <= min_frames <= max_frames, got {self.min_frames}, {self.max_frames}")


@dataclass
class MotionBatch:
    """A padded batch. ``motion`` is normalised features (B, T, 263); ``mask`` is True on real frames."""

    motion: torch.Tensor  # (B, T, 263) float32
    lengths: torch.Tensor  # (B,) int64
    mask: torch.Tensor  # (B, T) bool
    texts: list[str]
    emotion: torch.Tensor  # (B,) int64, -1 where unknown
    ids: list[str]
    replay: torch.Tensor | None = None  # (B,) bool: drawn from a replay (base) dataset when fine-tuning

    def to(self, device: torch.device | str) -> MotionBatch:
        return MotionBatch(
            self.motion.to(device),
            self.lengths.to(device),
            self.mask.to(device),
            self.texts,
            self.emotion.to(device),
            self.ids,
            None if self.replay is None else self.replay.to(device),
        )


@dataclass(frozen=True)
class MotionSample:
    motion: np.ndarray  # (T, 263) float32
    text: str
    emotion: int
    clip_id: str
    replay: bool = False  # drawn from a replay (base) dataset


class MotionDataset(Dataset[MotionSample]):
    """Clips of one split of a HumanML3D-layout folder (see the module docstring)."""

    def __init__(self, cfg: DatasetConfig) -> None:
        self.cfg = cfg
        root = Path(cfg.root)
        self.root = root
        self.mean, self.std = layout.load_stats(cfg.stats_root or root)
        try:
            clips = layout.read_manifest(root).get("clips", {})
        except DatasetError:
            clips = {}
        ids, lengths, emotions, dropped = [], [], [], 0
        for clip_id in layout.read_split(root, cfg.split):
            path = root / layout.FEATURES_DIR / f"{clip_id}.npy"
            try:
                shape = np.load(path, mmap_mode="r").shape
            except FileNotFoundError as exc:
                raise DatasetError(
                    f"split {cfg.split} lists {clip_id} but its features are missing", path=path
                ) from exc
            if len(shape) != 2 or shape[1] != sk.FEATURE_DIM:
                raise DatasetError(f"features must be (T, {sk.FEATURE_DIM}), got {shape}", path=path)
            if shape[0] < cfg.min_frames:
                dropped += 1
                continue
            ids.append(clip_id)
            lengths.append(shape[0])
            emotion = (clips.get(clip_id) or {}).get("emotion")
            emotions.append(EMOTION_INDEX.get(emotion, -1) if emotion else -1)
        if not ids:
            raise DatasetError(f"split {cfg.split!r} has no clip with >= {cfg.min_frames} frames", path=root)
        if dropped:
            log.info(
                "%s/%s: left out %d clip(s) shorter than %d frames", root, cfg.split, dropped, cfg.min_frames
            )
        self.ids: list[str] = ids
        self.lengths = np.asarray(lengths, dtype=np.int32)
        self.emotions = np.asarray(emotions, dtype=np.int16)
        self._rng = random.Random(cfg.seed)
        self._worker: int | None = None

    def _generator(self) -> random.Random:
        """The crop/caption RNG; each DataLoader worker reseeds its copy from torch's worker seed so
        that workers do not repeat each other's choices (still deterministic for a seed)."""
        info = torch.utils.data.get_worker_info()
        if info is not None and self._worker != info.id:
            self._worker = info.id
            self._rng = random.Random(info.seed)
        return self._rng

    def rng_state(self) -> tuple:
        """The crop/caption RNG state (saved in training checkpoints for exact resume)."""
        return self._rng.getstate()

    def set_rng_state(self, state: tuple) -> None:
        self._rng.setstate(state)

    def reseed(self, seed: int) -> None:
        """Start the crop/caption RNG afresh from ``seed`` (each process of a distributed run its own)."""
        self._rng = random.Random(seed)

    def __len__(self) -> int:
        return len(self.ids)

    def item_lengths(self) -> np.ndarray:
        """Each clip's length as an item (frames, after cropping to ``max_frames``)."""
        return np.minimum(self.lengths, self.cfg.max_frames)

    def _window(self, start: int, stop: int) -> tuple[int, int]:
        """Crop [start, stop) to at most max_frames (random offset when random_crop)."""
        length = stop - start
        if length <= self.cfg.max_frames:
            return start, stop
        offset = self._generator().randint(0, length - self.cfg.max_frames) if self.cfg.random_crop else 0
        return start + offset, start + offset + self.cfg.max_frames

    def __getitem__(self, index: int) -> MotionSample:
        clip_id = self.ids[index]
        data = np.load(self.root / layout.FEATURES_DIR / f"{clip_id}.npy", mmap_mode="r")
        captions = layout.read_captions(self.root, clip_id)
        usable = [
            c
            for c in captions
            if c.whole_clip or int(c.end * sk.FPS) - int(c.start * sk.FPS) >= self.cfg.min_frames
        ]
        caption = self._generator().choice(usable or captions) if captions else None
        start, stop = 0, data.shape[0]
        if caption is not None and not caption.whole_clip:
            start, stop = int(caption.start * sk.FPS), min(int(caption.end * sk.FPS), data.shape[0])
            if stop - start < self.cfg.min_frames:
                start, stop = 0, data.shape[0]
        start, stop = self._window(start, stop)
        motion = np.asarray(data[start:stop], dtype=np.float32)
        if self.cfg.normalise:
            motion = (motion - self.mean) / self.std
        return MotionSample(motion, caption.text if caption else "", int(self.emotions[index]), clip_id)


def collate(samples: Sequence[MotionSample]) -> MotionBatch:
    """Pad to the longest clip of the batch."""
    lengths = torch.tensor([s.motion.shape[0] for s in samples], dtype=torch.long)
    t = int(lengths.max())
    motion = torch.zeros(len(samples), t, sk.FEATURE_DIM)
    for i, s in enumerate(samples):
        motion[i, : s.motion.shape[0]] = torch.from_numpy(s.motion)
    mask = torch.arange(t)[None, :] < lengths[:, None]
    return MotionBatch(
        motion=motion,
        lengths=lengths,
        mask=mask,
        texts=[s.text for s in samples],
        emotion=torch.tensor([s.emotion for s in samples], dtype=torch.long),
        ids=[s.clip_id for s in samples],
        replay=torch.tensor([s.replay for s in samples], dtype=torch.bool),
    )
