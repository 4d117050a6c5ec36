"""An emotion judge without a network: a random forest on a clip's movement cues (:mod:`cues`).

It is trained on the real training clips of a dataset and scores any clip from its cues alone (how fast
the body moves, how the head and torso incline, how far the arms reach, stride, height), so it shares
nothing with the neural emotion classifiers: no features, no gradients, no architecture. Guidance that
fools a network without changing those cues does not fool it. Jerk and acceleration are left out: they
measure how smooth a clip is (a sampler's noise, output smoothing) more than which emotion it shows.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from emomotion.data.emotions import EMOTION_INDEX
from emomotion.errors import ConfigError
from emomotion.evaluation.cues import CUE_NAMES, clip_cues, cues_dict

JUDGE_CUES: tuple[str, ...] = tuple(n for n in CUE_NAMES if n not in ("acceleration", "jerk"))
_COLUMNS = [CUE_NAMES.index(n) for n in JUDGE_CUES]


@dataclass
class CueJudge:
    """A fitted forest; ``predict`` takes cue rows in :data:`CUE_NAMES` order."""

    forest: object  # sklearn.ensemble.RandomForestClassifier
    clips: int  # training clips

    def predict(self, cues: np.ndarray) -> np.ndarray:
        """Emotion indices (into :data:`EMOTIONS`) of cue rows ``(N, len(CUE_NAMES))``."""
        rows = np.asarray(cues, dtype=np.float64).reshape(-1, len(CUE_NAMES))
        if not len(rows):
            return np.zeros(0, dtype=np.int64)
        return np.asarray(self.forest.predict(rows[:, _COLUMNS]), dtype=np.int64)  # type: ignore[attr-defined]

    def accuracy(self, cues: Sequence[Sequence[float]], groups: Sequence[str]) -> float | None:
        """Share of the clips labelled with an emotion (``groups``: emotion names) judged as it."""
        keep = [i for i, g in enumerate(groups) if g in EMOTION_INDEX]
        if not keep:
            return None
        pred = self.predict(np.asarray(cues, dtype=np.float64)[keep])
        true = np.array([EMOTION_INDEX[groups[i]] for i in keep])
        return float(np.mean(pred == true))


def fit_cue_judge(
    dataset_root: str | Path, split: str = "train", seed: int = 0, trees: int = 300
) -> CueJudge:
    """Fit the judge on the emotion-labelled real clips of ``split`` (joints from ``new_joints/``)."""
    from sklearn.ensemble import RandomForestClassifier

    root = Path(dataset_root)
    try:
        clips = json.loads((root / "manifest.json").read_text(encoding="utf-8"))["clips"]
        ids = (root / f"{split}.txt").read_text(encoding="utf-8").split()
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(f"cannot read the dataset's manifest or {split} split: {exc}", path=root) from exc
    rows, labels = [], []
    for clip_id in ids:
        emotion = (clips.get(clip_id) or {}).get("emotion")
        if emotion not in EMOTION_INDEX:
            continue
        joints = np.load(root / "new_joints" / f"{clip_id}.npy")
        if len(joints) < 4:
            continue
        rows.append(list(cues_dict(clip_cues(joints)).values()))
        labels.append(EMOTION_INDEX[emotion])
    if len(set(labels)) < 2:
        raise ConfigError(f"the {split} split needs clips of at least two emotions to fit a judge", path=root)
    forest = RandomForestClassifier(n_estimators=trees, min_samples_leaf=2, random_state=seed, n_jobs=1)
    forest.fit(np.asarray(rows)[:, _COLUMNS], np.asarray(labels))
    return CueJudge(forest, len(labels))
