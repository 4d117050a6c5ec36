"""End to end: real-vs-real, shuffled captions, a noise generator, the report; on a tiny synthetic split."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from emomotion.checkpoint import load_checkpoint
from emomotion.data import layout
from emomotion.data.build import BuildConfig, build_dataset
from emomotion.data.splits import SplitConfig
from emomotion.errors import ConfigError, MotionFormatError
from emomotion.evaluation import metrics
from emomotion.evaluation.evalset import EvalSet, EvalSettings, embed_motions, embed_texts, pad_motions
from emomotion.evaluation.evaluate import evaluate, evaluate_real
from emomotion.evaluation.report import write_report
from emomotion.training.config import TrainConfig
from emomotion.training.emotion_classifier import EmotionClassifierRun, run_emotion_classifier
from emomotion.training.evaluator import EvaluatorRun, run_evaluator


@pytest.fixture(scope="module")
def syn_data(tmp_path_factory) -> Path:
    """96 clips (6 actions x 8 emotions x 2), half train, half test, stratified by emotion."""
    out = tmp_path_factory.mktemp("evsyn")
    build_dataset(
        BuildConfig(
            source="synthetic",
            out=out,
            seed=0,
            split=SplitConfig(ratios=(0.5, 0.0, 0.5), strategy="stratified"),
            options={"clips_per_pair": 2, "seconds": (2.5, 4.0)},
        )
    )
    return out


def _train(steps: int, lr: float = 1e-3) -> TrainConfig:
    return TrainConfig(steps=steps, batch_size=16, lr=lr, ema_decay=0.0, log_every=1, save_every=steps)


@pytest.fixture(scope="module")
def evaluator_ckpt(syn_data, tmp_path_factory) -> Path:
    return run_evaluator(
        EvaluatorRun(syn_data, tmp_path_factory.mktemp("ev"), preset="tiny", train=_train(40))
    )


@pytest.fixture(scope="module")
def classifier_ckpt(syn_data, tmp_path_factory) -> Path:
    run = EmotionClassifierRun(
        syn_data, tmp_path_factory.mktemp("cls"), preset="tiny", train=_train(80, lr=2e-3)
    )
    return run_emotion_classifier(run)


def _stats(root: Path) -> tuple[np.ndarray, np.ndarray]:
    return np.load(root / "Mean.npy"), np.load(root / "Std.npy")


def _noise_fn(root: Path):
    mean, std = _stats(root)

    def generate(texts: list[str], lengths: list[int], seed: int) -> list[np.ndarray]:
        g = np.random.default_rng(seed)
        return [mean + std * g.standard_normal((n, 263)).astype(np.float32) for n in lengths]

    return generate


def _real_fn(root: Path):
    """Returns, for each text, a real test clip captioned with it (a 'perfect' generator)."""
    by_text: dict[str, np.ndarray] = {}
    for clip_id in layout.read_split(root, "test"):
        for caption in layout.read_captions(root, clip_id):
            by_text.setdefault(caption.text, np.load(root / layout.FEATURES_DIR / f"{clip_id}.npy"))

    def generate(texts: list[str], lengths: list[int], seed: int) -> list[np.ndarray]:
        return [by_text[t][:n] for t, n in zip(texts, lengths, strict=True)]

    return generate


@pytest.fixture(scope="module")
def models(evaluator_ckpt, classifier_ckpt):
    return load_checkpoint(evaluator_ckpt).build_model(), load_checkpoint(classifier_ckpt).build_model()


def test_trained_evaluator_beats_chance_and_shuffled_captions_are_chance(syn_data, models):
    evaluator, _ = models
    data = EvalSet(syn_data, EvalSettings())
    draw = data.draw(np.random.default_rng(0))
    text = embed_texts(evaluator, draw.texts, draw.tokens)
    motion = embed_motions(evaluator, draw.real)
    top = metrics.r_precision(text, motion)
    assert top[2] > 0.35, top  # chance top-3 in a batch of 32 is 3/32 ~ 0.094
    rng = np.random.default_rng(1)
    shuffled = np.mean([metrics.r_precision(text[rng.permutation(len(text))], motion)[2] for _ in range(20)])
    assert 0.03 < shuffled < 0.2, shuffled


def test_real_vs_real_and_noise_end_to_end_with_report(syn_data, models, tmp_path):
    evaluator, classifier = models
    out = tmp_path / "eval"
    kw = {"reps": 2, "emotion_classifier": classifier, "out_dir": out}
    real = evaluate_real(syn_data, evaluator, **kw)
    perfect = evaluate(
        _real_fn(syn_data), syn_data, evaluator, name="copy real", mm_texts=4, mm_repeats=3, **kw
    )
    noise = evaluate(_noise_fn(syn_data), syn_data, evaluator, name="noise", mm_texts=4, mm_repeats=3, **kw)
    assert real.real and real.value("fid") < 0.5 and "multimodality" not in real.metrics
    assert perfect.value("fid") < 0.5 and noise.value("fid") > 20 * max(real.value("fid"), 0.05)
    assert abs(perfect.value("r_precision_top3") - real.value("r_precision_top3")) < 0.2
    assert real.value("r_precision_top3") > 0.35 > noise.value("r_precision_top3")
    assert real.value("emotion_accuracy") > 0.4 and noise.value("emotion_accuracy") < 0.35
    assert real.confusion is not None and real.confusion.sum() == 2 * (real.confusion.sum() // 2)
    assert noise.value("jitter") > 10 * real.value("jitter") and noise.metrics["multimodality"][0] > 0
    assert any("Diversity over 48 pairs" in n for n in real.notes)
    assert set(real.cues) >= {"all", "Joy", "Sadness"}
    assert real.cues["Sadness"]["head_pitch"] > real.cues["Joy"]["head_pitch"] + 10
    # resume: every repetition is cached and reused as it is
    cached = sorted((out / "cache" / "noise").glob("rep*.json"))
    assert [p.name for p in cached] == ["rep000.json", "rep001.json"]
    again = evaluate(_noise_fn(syn_data), syn_data, evaluator, name="noise", mm_texts=4, mm_repeats=3, **kw)
    assert again.metrics == noise.metrics and len(again.samples) == 4

    report = write_report([noise, real, perfect], out, grid_frames=8, grid_size=96)
    text = report.read_text()
    for name in ("report.md", "metrics.json", "metrics.csv", "metrics.png", "cues.png", "grid.gif",
                 "confusion_noise.png", "confusion_real_data.png"):  # fmt: skip
        assert (out / name).stat().st_size > 0, name
    rows = [
        line for line in text.split("## ")[0].splitlines() if line.startswith("| ") and "rank" not in line
    ]
    assert rows[0].startswith("| real | real data") and rows[-1].startswith("| 2 | noise")
    table = json.loads((out / "metrics.json").read_text())
    assert [r["name"] for r in table] == ["real data", "copy real", "noise"]
    with open(out / "metrics.csv") as fh:
        assert [r["model"] for r in csv.DictReader(fh)] == ["real data", "copy real", "noise"]


def test_label_shuffled_classifier_is_at_chance(syn_data, classifier_ckpt, tmp_path):
    shuffled = run_emotion_classifier(
        EmotionClassifierRun(
            syn_data, tmp_path / "s", preset="tiny", shuffle_labels=True, train=_train(80, lr=2e-3)
        )
    )
    data = EvalSet(syn_data, EvalSettings())
    x, lengths = pad_motions([c.features for c in data.clips])
    true = data.emotions
    trained = load_checkpoint(classifier_ckpt).build_model().predict(x, lengths).argmax(1)
    control = load_checkpoint(shuffled).build_model().predict(x, lengths).argmax(1)
    assert metrics.accuracy(true, trained) > 0.45  # chance is 1/8
    assert metrics.accuracy(true, control) < 0.3


def test_generate_fn_errors_are_clear(syn_data, models):
    evaluator, _ = models
    with pytest.raises(MotionFormatError, match="returned 1 motions"):
        evaluate(lambda t, n, s: [np.zeros((8, 263), np.float32)], syn_data, evaluator, reps=1, mm_texts=0)
    with pytest.raises(MotionFormatError, match="NaN"):
        evaluate(lambda t, n, s: [np.full((m, 263), np.nan, np.float32) for m in n], syn_data, evaluator,
                 reps=1, mm_texts=0)  # fmt: skip
    with pytest.raises(ConfigError, match="unknown evaluation options"):
        evaluate(_noise_fn(syn_data), syn_data, evaluator, reps=1, mm_txts=3)


def test_fid_floor_of_held_out_real_clips(syn_data, models, tmp_path):
    from emomotion.evaluation.floor import fid_floor

    evaluator, _ = models
    settings = EvalSettings()
    floor = fid_floor(syn_data, evaluator, settings, draws=5)
    test = EvalSet(syn_data, settings)
    assert floor.clips == len(test) and floor.pool >= floor.clips and floor.draws == 5
    # held-out real motion sits well above the test clips' own re-crops and well below noise
    noise = embed_motions(evaluator, _noise_fn(syn_data)([""] * len(test), test.reference()[1], 0))
    reference = embed_motions(evaluator, test.reference()[0])
    assert 0.0 < floor.mean < metrics.fid(reference, noise) / 5
    assert floor == fid_floor(syn_data, evaluator, settings, draws=5)  # seeded
    # a pool smaller than the split to match is refused: a copy whose training split keeps 10 clips
    small = tmp_path / "small"
    shutil.copytree(syn_data, small)
    names = (small / "train.txt").read_text().split()
    (small / "train.txt").write_text("\n".join(names[:10]) + "\n")
    with pytest.raises(ValueError, match=f"the train split has 10 clips, fewer than the {len(test)} to draw"):
        fid_floor(small, evaluator, settings, draws=2)
    with pytest.raises(ValueError, match="draws must be >= 1"):
        fid_floor(syn_data, evaluator, settings, draws=0)
