"""Validation and early stopping in the shared loop: validation never changes training, is the same
every time, a stop keeps the best checkpoint (the run directory then stands for it), resume honours
the stop, and misconfigurations are typed errors."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from emomotion.checkpoint import load_checkpoint, resolve_checkpoint, run_checkpoints
from emomotion.data.build import BuildConfig, build_dataset
from emomotion.data.splits import SplitConfig
from emomotion.errors import ConfigError, DatasetError
from emomotion.sampling.diffusion import DiffusionConfig
from emomotion.training.config import TrainConfig
from emomotion.training.mdm import MDMRun, run_mdm


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("es") / "data"
    build_dataset(
        BuildConfig(
            source="synthetic",
            out=out,
            seed=0,
            split=SplitConfig(ratios=(0.6, 0.4, 0.0)),
            options={"actions": ["walk", "knock"], "seconds": (2.5, 3.5)},
        )
    )
    return out


def run(data: Path, out: Path, **train) -> MDMRun:
    cfg = {
        "steps": 6,
        "batch_size": 8,
        "lr": 1e-3,
        "log_every": 1,
        "ema_decay": 0.9,
        "save_every": 100,
        **train,
    }
    return MDMRun(data=data, out=out, preset="tiny", diffusion=DiffusionConfig(50), train=TrainConfig(**cfg),
                  max_frames=48)  # fmt: skip


def _val_rows(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "validation.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_validation_leaves_training_untouched_and_repeats_exactly(data, tmp_path):
    plain = load_checkpoint(run_mdm(run(data, tmp_path / "plain")))
    validated = load_checkpoint(run_mdm(run(data, tmp_path / "val", eval_every=2)))
    for key, value in plain.model_state.items():
        assert torch.equal(value, validated.model_state[key]), key
    rows = _val_rows(tmp_path / "val")
    assert [int(r["step"]) for r in rows] == [2, 4, 6]
    run_mdm(run(data, tmp_path / "val2", eval_every=2))
    assert [r["val_loss"] for r in _val_rows(tmp_path / "val2")] == [r["val_loss"] for r in rows]
    best = min(rows, key=lambda r: float(r["val_loss"]))
    assert (tmp_path / "val" / f"step{int(best['step']):08d}.safetensors").exists()  # each new best is saved


def test_early_stop_keeps_the_best_checkpoint_and_resume_honours_it(data, tmp_path):
    out = tmp_path / "es"
    final = run_mdm(run(data, out, steps=40, lr=1.0, eval_every=1, patience=2))
    record = json.loads((out / "early_stop.json").read_text())
    rows = _val_rows(out)
    losses = [float(r["val_loss"]) for r in rows]
    best_at = min(range(len(losses)), key=losses.__getitem__)
    assert record["stopped_at"] < 40 and record["best_step"] == int(rows[best_at]["step"])
    assert len(rows) == best_at + 1 + 2  # exactly `patience` validations after the best
    assert record["best_val_loss"] == pytest.approx(losses[best_at], abs=1e-5)
    assert final == resolve_checkpoint(out) and all(
        at <= record["best_step"] for at, _ in run_checkpoints(out)
    )
    assert load_checkpoint(final).step == record["best_step"]
    metrics = (out / "metrics.csv").read_text()
    assert run_mdm(run(data, out, steps=40, lr=1.0, eval_every=1, patience=2), resume=True) == final
    assert (out / "metrics.csv").read_text() == metrics  # nothing trained again


def test_validation_errors(data, tmp_path):
    with pytest.raises(ConfigError, match="eval_every"):
        TrainConfig(patience=3)
    with pytest.raises(ConfigError, match="val_batches"):
        TrainConfig(eval_every=1, val_batches=0)
    empty = tmp_path / "train_only"
    build_dataset(BuildConfig(source="synthetic", out=empty, seed=0, split=SplitConfig(ratios=(1.0, 0.0, 0.0)),
                              options={"actions": ["walk"], "seconds": (2.5, 3.5)}))  # fmt: skip
    with pytest.raises(DatasetError, match="split 'val'"):
        run_mdm(run(empty, tmp_path / "x", eval_every=1))
