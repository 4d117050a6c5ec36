"""The VQ-VAE's optional losses (root features, global joint positions): off by default (the official
objective unchanged), zero on a perfect reconstruction, growing with trajectory drift, saved in the
config, and trainable in a tiny run."""

from __future__ import annotations

import csv
import math
from dataclasses import replace

import pytest
import torch

from emomotion.checkpoint import load_checkpoint
from emomotion.configs import config_dict, dataclass_from
from emomotion.errors import ConfigError
from emomotion.features import ROOT_XZ_VEL
from emomotion.models.vqvae import VQVAE, VQVAEConfig, position_loss, preset, vq_loss
from emomotion.training.config import TrainConfig
from emomotion.training.vq import VQRun, run_vq

ZERO, ONE = torch.zeros(263), torch.ones(263)


def clip(frames: int = 64, seed: int = 0) -> torch.Tensor:
    """(1, T, 263) smooth unit-scale signals standing in for normalised features."""
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(frames, dtype=torch.float32)[:, None] / 20.0
    freq = torch.rand(1, 263, generator=g) * 2.0 + 0.2
    phase = torch.rand(1, 263, generator=g) * 2 * math.pi
    return torch.sin(2 * math.pi * freq * t + phase)[None] * 0.1


def test_new_losses_default_off():
    for name in ("tiny", "mmm"):  # the official architecture and objective keep their defaults
        cfg = preset(name)
        assert cfg.root_weight == 0.0 and cfg.position_weight == 0.0
    assert VQVAEConfig().joint_weight == 0.5 and VQVAEConfig().commit_weight == 0.02
    traj = preset("small_traj")
    assert traj.position_weight > 0 and replace(traj, position_weight=0.0) == preset("small")


def test_position_loss_zero_on_perfect_reconstruction_and_grows_with_drift():
    x = clip(64)
    assert float(position_loss(x, x.clone(), None, ZERO, ONE)) == 0.0
    drifted = x.clone()
    drifted[..., ROOT_XZ_VEL] += 0.01  # 1 cm per frame of velocity bias: a root trajectory drifting away
    short = float(position_loss(drifted[:, :16], x[:, :16], None, ZERO, ONE))
    long = float(position_loss(drifted, x, None, ZERO, ONE))
    assert 0.0 < short < long  # integrated: the error grows along the window
    mask = torch.zeros(1, 64, dtype=torch.bool)
    mask[:, :16] = True  # frames past the mask do not count
    assert float(position_loss(drifted, x, mask, ZERO, ONE)) == pytest.approx(short, rel=1e-5)
    with pytest.raises(ConfigError, match="Mean/Std"):
        position_loss(drifted, x, None, None, None)


def test_vq_loss_adds_the_weighted_terms():
    torch.manual_seed(0)
    model = VQVAE(preset("tiny")).eval()  # eval: the codebook is not updated between the two passes
    x = clip(32)
    base, parts = vq_loss(model, x)
    assert "root" not in parts and "position" not in parts
    model.cfg = replace(model.cfg, root_weight=2.0, position_weight=3.0)
    total, parts = vq_loss(model, x, mean=ZERO, std=ONE)
    assert parts["root"] > 0 and parts["position"] > 0
    assert float(total.detach()) == pytest.approx(
        float(base.detach()) + 2.0 * parts["root"] + 3.0 * parts["position"], rel=1e-4
    )
    with pytest.raises(ConfigError, match="Mean/Std"):
        vq_loss(model, x)


def test_config_round_trip_and_old_configs():
    cfg = preset("tiny", root_weight=1.5, position_weight=0.25)
    assert dataclass_from(VQVAEConfig, config_dict(cfg)) == cfg
    old = {
        k: v for k, v in config_dict(preset("tiny")).items() if k not in ("root_weight", "position_weight")
    }
    assert dataclass_from(VQVAEConfig, old) == preset("tiny")  # checkpoints from before the options
    with pytest.raises(ConfigError, match=">= 0"):
        preset("tiny", position_weight=-1.0)


def test_tiny_vq_trains_with_the_new_losses(synthetic_train_set, tmp_path):
    train = TrainConfig(steps=4, batch_size=4, lr=1e-3, save_every=4, log_every=1, ema_decay=0.0)
    weights = {"root_weight": 1.0, "position_weight": 1.0}
    ckpt = run_vq(VQRun(synthetic_train_set, tmp_path / "vq", train=train, vq=weights))
    saved = load_checkpoint(ckpt)
    assert saved.config["position_weight"] == 1.0 and saved.config["root_weight"] == 1.0
    with open(tmp_path / "vq" / "metrics.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 4 and all(math.isfinite(float(r["loss"])) for r in rows)
    assert "position" in rows[-1]["extra"] and "root" in rows[-1]["extra"]
    with pytest.raises(ConfigError, match="unknown VQ-VAE settings"):
        VQRun(synthetic_train_set, tmp_path / "x", vq={"no_such_weight": 1.0})
    with pytest.raises(ConfigError, match="fine-tuning"):
        VQRun(synthetic_train_set, tmp_path / "y", init_from=ckpt, vq=weights)
