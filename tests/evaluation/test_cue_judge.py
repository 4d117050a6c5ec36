"""The network-free emotion judge: fitted on real clips' cues, it recognises them above chance, ignores
unlabelled clips, is blind to smoothness (no jerk/acceleration), and joins an evaluation as a metric."""

from __future__ import annotations

import json

import numpy as np
import pytest

from emomotion.data.emotions import EMOTION_INDEX
from emomotion.errors import ConfigError
from emomotion.evaluation.cue_judge import JUDGE_CUES, fit_cue_judge
from emomotion.evaluation.cues import CUE_NAMES, clip_cues, cues_dict


def _cues(root, ids):
    return np.array(
        [list(cues_dict(clip_cues(np.load(root / "new_joints" / f"{i}.npy"))).values()) for i in ids]
    )


def test_the_judge_recognises_the_clips_it_learned_and_ignores_smoothness(synthetic_train_set):
    root = synthetic_train_set
    judge = fit_cue_judge(root)
    clips = json.loads((root / "manifest.json").read_text())["clips"]
    ids = (root / "train.txt").read_text().split()
    groups = [clips[i]["emotion"] for i in ids]
    cues = _cues(root, ids)
    assert judge.clips == len(ids)
    assert judge.accuracy(cues, groups) > 2.0 / len(set(groups))  # well above chance
    assert "jerk" not in JUDGE_CUES and "acceleration" not in JUDGE_CUES
    shaken = cues.copy()
    shaken[:, [CUE_NAMES.index("jerk"), CUE_NAMES.index("acceleration")]] *= 50
    np.testing.assert_array_equal(judge.predict(shaken), judge.predict(cues))
    # unlabelled clips are left out; none labelled gives no score
    assert judge.accuracy(cues, ["unlabelled"] * len(ids)) is None
    mixed = judge.accuracy(np.concatenate([cues, cues]), groups + ["unlabelled"] * len(ids))
    assert mixed == pytest.approx(judge.accuracy(cues, groups))
    assert set(judge.predict(cues)) <= set(EMOTION_INDEX.values())


def test_the_judge_needs_labelled_clips(tmp_path):
    with pytest.raises(ConfigError, match="manifest"):
        fit_cue_judge(tmp_path)
