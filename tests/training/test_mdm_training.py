"""MDM training on the shared loop: loss falls, checkpoints reload identically, resume is exact."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

from emomotion.checkpoint import load_checkpoint, load_train_state, resolve_checkpoint
from emomotion.errors import CheckpointError
from emomotion.models.condition import MotionCondition
from emomotion.sampling.diffusion import DiffusionConfig
from emomotion.text import build_text_encoder
from emomotion.training.config import TrainConfig
from emomotion.training.mdm import MDMRun, run_mdm


@pytest.fixture(scope="module")
def data(synthetic_train_set) -> Path:
    return synthetic_train_set


def run(data: Path, out: Path, steps: int, **train) -> MDMRun:
    cfg = TrainConfig(
        steps=steps,
        batch_size=8,
        lr=1e-3,
        save_every=train.pop("save_every", steps),
        log_every=1,
        ema_decay=0.9,
        **train,
    )
    return MDMRun(
        data=data,
        out=out,
        preset="tiny",
        diffusion=DiffusionConfig(50),
        train=cfg,
        max_frames=64,
        emotion_conditioning=True,
    )


def losses(run_dir: Path) -> list[float]:
    with open(run_dir / "metrics.csv") as fh:
        return [float(r["loss"]) for r in csv.DictReader(fh)]


def test_loss_falls_and_checkpoints_reload(data, tmp_path):
    last = run_mdm(run(data, tmp_path / "r", 60, save_every=30))
    assert last.name == "step00000060.safetensors" and (tmp_path / "r" / "step00000030.safetensors").exists()
    curve = losses(tmp_path / "r")
    assert len(curve) == 60 and sum(curve[-10:]) / 10 < 0.7 * sum(curve[:10]) / 10
    ckpt = load_checkpoint(tmp_path / "r")
    assert ckpt.step == 60 and ckpt.kind == "mdm" and ckpt.extra["diffusion"]["steps"] == 50
    assert ckpt.config["num_emotions"] == 8 and ckpt.ema_state is not None
    a, b = ckpt.build_model(use_ema=False), load_checkpoint(last).build_model(use_ema=False)
    enc = build_text_encoder(ckpt.text_encoder)
    cond = MotionCondition(enc.encode(["a person walks sadly"]), emotion=torch.tensor([6]))
    x, t = torch.randn(1, 30, 263), torch.tensor([10])
    assert torch.equal(a(x, t, cond), b(x, t, cond))
    assert not torch.equal(ckpt.build_model(use_ema=True)(x, t, cond), a(x, t, cond))


def test_resume_equals_uninterrupted(data, tmp_path):
    straight = run_mdm(run(data, tmp_path / "a", 24, save_every=100))
    first = run_mdm(run(data, tmp_path / "b", 24, save_every=100), stop_after=10)
    assert first.name == "step00000010.safetensors" and load_train_state(first)["step"] == 10
    stale = tmp_path / "b" / ".step00000020.safetensors.k1ll3d.tmp.safetensors"  # a write killed by SIGKILL
    stale.write_bytes(b"half a checkpoint")
    with open(tmp_path / "b" / "metrics.csv", "a") as fh:  # logged after the checkpoint, then killed
        fh.write("11,0.5,1e-3,1.0,0.1,88,{}\n12,0.5,1e-3,1.1,0.1,96,{}\n13,0.4")
    resumed = run_mdm(run(data, tmp_path / "b", 24, save_every=100), resume=True)
    assert not stale.exists()
    a, b = load_checkpoint(straight), load_checkpoint(resumed)
    for key, value in a.model_state.items():
        assert torch.equal(value, b.model_state[key]), key
    for key, value in a.ema_state.items():
        assert torch.equal(value, b.ema_state[key]), key
    assert losses(tmp_path / "a") == losses(tmp_path / "b")


def test_fine_tuning_keeps_base_stats_and_text_encoder(data, tmp_path):
    base = run_mdm(run(data, tmp_path / "base", 5))
    tuned = run_mdm(
        MDMRun(
            data=data,
            out=tmp_path / "ft",
            init_from=base,
            train=TrainConfig(steps=3, batch_size=4, lr=1e-5, log_every=1),
        )
    )
    b, t = load_checkpoint(base), load_checkpoint(tuned)
    assert torch.equal(b.mean, t.mean) and torch.equal(b.std, t.std) and b.text_encoder == t.text_encoder
    assert b.config == t.config and t.extra["init_from"] == str(base)


def test_missing_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(CheckpointError, match="no step"):
        resolve_checkpoint(tmp_path)
    (tmp_path / "x.safetensors").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="not a readable"):
        load_checkpoint(tmp_path / "x.safetensors")
