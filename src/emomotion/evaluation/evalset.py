"""The evaluation set: one split's real clips with their captions and emotion labels, the random
caption-and-crop pairing of each repetition, the settings of an evaluation, and the evaluator's
batched embeddings of motions and texts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from emomotion.data import layout
from emomotion.data.captions import Caption
from emomotion.data.dataset import DatasetConfig, MotionDataset
from emomotion.errors import ConfigError
from emomotion.skeleton import FEATURE_DIM, FPS, MAX_FRAMES, MIN_FRAMES

UNIT = 4  # the evaluator's frames per movement step


@dataclass(frozen=True)
class EvalSettings:
    """How an evaluation runs (recorded in every cached repetition)."""

    split: str = "test"
    reps: int = 3
    seed: int = 0
    batch_size: int = 32  # texts per generate_fn call
    diversity_pairs: int = 300
    mm_texts: int = 100  # 0 disables MultiModality
    mm_repeats: int = 30
    mm_pairs: int = 10
    max_frames: int = MAX_FRAMES
    min_frames: int = MIN_FRAMES
    grid_prompts: int = 4  # motions kept (from the first repetition) for the side-by-side grid
    max_clips: int = 0  # > 0: a fixed random subset of the split (slow samplers), noted in the report

    def __post_init__(self) -> None:
        if self.reps < 1 or self.batch_size < 1 or self.diversity_pairs < 2:
            raise ConfigError("reps and batch_size must be >= 1, diversity_pairs >= 2")
        if self.mm_texts < 0 or (self.mm_texts and (self.mm_repeats < 2 or self.mm_pairs < 1)):
            raise ConfigError("MultiModality needs mm_repeats >= 2 and mm_pairs >= 1 (or mm_texts=0)")
        if not UNIT <= self.min_frames <= self.max_frames:
            raise ConfigError(f"need {UNIT} <= min_frames <= max_frames")
        if self.grid_prompts < 0 or self.max_clips < 0:
            raise ConfigError("grid_prompts and max_clips must be >= 0")


@dataclass(frozen=True)
class Clip:
    clip_id: str
    features: np.ndarray  # (T, 263) de-normalised
    captions: tuple[Caption, ...]
    emotion: int  # -1 unknown


@dataclass(frozen=True)
class Draw:
    """One repetition's pairing: a caption and a real segment per clip."""

    texts: list[str]
    tokens: list[tuple[str, ...]]
    lengths: list[int]
    real: list[np.ndarray]


def cut_length(length: int, max_frames: int) -> int:
    return (min(length, max_frames) // UNIT) * UNIT


class EvalSet:
    """The clips of one split: real features, captions and emotion labels (read once)."""

    def __init__(self, root: str | Path, settings: EvalSettings) -> None:
        self.root = Path(root)
        self.settings = settings
        ds = MotionDataset(
            DatasetConfig(self.root, split=settings.split, min_frames=settings.min_frames, normalise=False)
        )
        self.clips: list[Clip] = []
        for clip_id, emotion in zip(ds.ids, ds.emotions.tolist(), strict=True):
            feats = np.load(self.root / layout.FEATURES_DIR / f"{clip_id}.npy").astype(np.float32)
            captions = tuple(layout.read_captions(self.root, clip_id))
            self.clips.append(Clip(clip_id, feats, captions or (Caption("", ()),), int(emotion)))
        self.total = len(self.clips)
        if settings.max_clips and len(self.clips) > settings.max_clips:
            keep = np.random.default_rng(settings.seed).choice(
                len(self.clips), settings.max_clips, replace=False
            )
            self.clips = [self.clips[i] for i in sorted(keep.tolist())]
        self.emotions = np.array([c.emotion for c in self.clips])

    def __len__(self) -> int:
        return len(self.clips)

    def reference(self) -> tuple[list[np.ndarray], list[int]]:
        """Every clip from its first frame, cut to max_frames and a multiple of 4 (the FID reference)."""
        motions = [c.features[: cut_length(len(c.features), self.settings.max_frames)] for c in self.clips]
        return motions, [len(m) for m in motions]

    def draw(self, rng: np.random.Generator) -> Draw:
        """A random caption per clip and the real segment it describes, randomly cropped."""
        s = self.settings
        texts, tokens, lengths, real = [], [], [], []
        for clip in self.clips:
            caption = clip.captions[int(rng.integers(len(clip.captions)))]
            start, stop = 0, len(clip.features)
            if not caption.whole_clip:
                a, b = int(caption.start * FPS), min(int(caption.end * FPS), stop)
                if b - a >= s.min_frames:
                    start, stop = a, b
            length = cut_length(stop - start, s.max_frames)
            offset = start + int(rng.integers(stop - start - length + 1))
            texts.append(caption.text)
            tokens.append(caption.tokens)
            lengths.append(length)
            real.append(clip.features[offset : offset + length])
        return Draw(texts, tokens, lengths, real)


def pad_motions(motions: Sequence[np.ndarray]) -> tuple[np.ndarray, list[int]]:
    lengths = [m.shape[0] for m in motions]
    out = np.zeros((len(motions), max(lengths), FEATURE_DIM), dtype=np.float32)  # (B, T, 263)
    for i, m in enumerate(motions):
        out[i, : m.shape[0]] = m
    return out, lengths


def embed_motions(evaluator: Any, motions: Sequence[np.ndarray], batch_size: int = 64) -> np.ndarray:
    """Motion co-embeddings ``(N, D)`` of de-normalised clips, batched by similar length."""
    order = np.argsort([len(m) for m in motions], kind="stable")
    out: list[np.ndarray] = [np.empty(0)] * len(motions)
    for i in range(0, len(order), batch_size):
        idx = order[i : i + batch_size]
        x, lengths = pad_motions([motions[j] for j in idx])
        emb = evaluator.embed_motion(x, lengths).numpy().astype(np.float64)
        for k, j in enumerate(idx):
            out[j] = emb[k]
    return np.stack(out)


def embed_texts(
    evaluator: Any, texts: Sequence[str], tokens: Sequence[Sequence[str]], batch_size: int = 64
) -> np.ndarray:
    chunks = [
        evaluator.embed_text(list(texts[i : i + batch_size]), tokens=list(tokens[i : i + batch_size])).numpy()
        for i in range(0, len(texts), batch_size)
    ]
    return np.concatenate(chunks).astype(np.float64)
