"""`train vq`, `train mmm`, `finetune mmm`, `generate`, `diagnose mmm` with MMM through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from emomotion.checkpoint import load_checkpoint
from emomotion.cli import main


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("mmmcli")
    data = base / "data"
    assert main(["data", "build", "synthetic", "--out", str(data), "--ratios", "0.6,0.1,0.3"]) == 0
    small = ["--preset", "tiny", "--batch-size", "8", "--save-every", "1000"]
    assert main(["train", "vq", "--data", str(data), "--out", str(base / "vq"), "--steps", "6", *small,
                 "--position-weight", "0.5", "--lr-schedule", "cosine"]) == 0  # fmt: skip
    assert main(["train", "mmm", "--data", str(data), "--vq", str(base / "vq"), "--out", str(base / "mmm"),
                 "--steps", "6", *small]) == 0  # fmt: skip
    assert main(["finetune", "mmm", "--from", str(base / "mmm"), "--data", str(data), "--out", str(base / "ft"),
                 "--strategy", "lora", "--steps", "3", "--batch-size", "8", "--replay", str(data),
                 "--eval-every", "2", "--patience", "5"]) == 0  # fmt: skip
    return {"data": data, "vq": base / "vq", "mmm": base / "mmm", "ft": base / "ft"}


def test_checkpoints_and_fine_tune_keeps_the_vq(runs):
    base, tuned = load_checkpoint(runs["mmm"]), load_checkpoint(runs["ft"])
    vq = load_checkpoint(runs["vq"])
    assert vq.config["position_weight"] == 0.5 and vq.extra["train"]["lr_schedule"] == "cosine"
    assert base.kind == tuned.kind == "mmm" and tuned.extra["finetune"]["strategy"] == "lora"
    assert (runs["ft"] / "validation.csv").read_text().splitlines()[1].startswith("2,")  # validated at step 2
    for key, value in base.model_state.items():
        if key.startswith("vq."):
            assert torch.equal(value, tuned.model_state[key]), key


def test_generate_with_mmm(runs, tmp_path):
    out = tmp_path / "g"
    rc = main(["generate", "--model", str(runs["ft"]), "--text", "a person walks sadly", "--length", "3",
               "--temperature", "0", "--steps", "4", "--format", "npy", "--out", str(out)])  # fmt: skip
    assert rc == 0
    feats = np.load(next(out.glob("*/features.npy")))
    assert feats.shape == (60, 263) and np.isfinite(feats).all()


def test_generate_inbetween_with_mmm(runs, tmp_path, capsys):
    clip = next((runs["data"] / "new_joint_vecs").glob("*.npy"))
    source = np.load(clip)[:64]
    out = tmp_path / "ib"
    rc = main(["generate", "--model", str(runs["ft"]), "--text", "a person walks sadly", "--inbetween", str(clip),
               "--keep-first", "12", "--keep-last", "8", "--steps", "4", "--format", "npy", "--out", str(out)])  # fmt: skip
    assert rc == 0
    feats = np.load(next(out.glob("*/features.npy")))
    n = len(np.load(clip)) // 4 * 4
    assert feats.shape == (n, 263)
    np.testing.assert_allclose(feats[:12], source[:12], atol=1e-4)
    np.testing.assert_allclose(feats[-8:], np.load(clip)[n - 8 : n], atol=1e-4)
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((40, 7), np.float32))
    rc = main(
        ["generate", "--model", str(runs["ft"]), "--text", "x", "--inbetween", str(bad), "--out", str(out)]
    )
    assert rc != 0 and "bad.npy" in capsys.readouterr().err


def test_diagnose_mmm(runs, tmp_path, capsys):
    out = tmp_path / "d"
    rc = main(["diagnose", "mmm", "--model", str(runs["mmm"]), "--data", str(runs["data"]), "--out", str(out),
               "--num", "8", "--steps", "3"])  # fmt: skip
    assert rc == 0 and "static rate" in capsys.readouterr().out
    report = json.loads((out / "diagnose.json").read_text())
    assert 0.0 <= report["static_rate"] <= 1.0 and list(out.glob("*.png"))
    assert report["recon_fid"] is None  # no evaluator given


def test_diagnose_mmm_reports_the_reconstruction_fid(runs, tmp_path, capsys):
    from emomotion.checkpoint import Checkpoint, save_checkpoint
    from emomotion.configs import config_dict
    from emomotion.models.evaluator import Evaluator
    from emomotion.models.evaluator import preset as evaluator_preset
    from emomotion.text import TextEncoderSpec

    torch.manual_seed(0)
    cfg = evaluator_preset("tiny")
    mmm = load_checkpoint(runs["mmm"])
    ev = Checkpoint(
        "evaluator", config_dict(cfg), Evaluator(cfg).state_dict(), mmm.mean, mmm.std, TextEncoderSpec()
    )
    ev_path = save_checkpoint(tmp_path / "ev.safetensors", ev)
    out = tmp_path / "d"
    rc = main(["diagnose", "mmm", "--model", str(runs["mmm"]), "--data", str(runs["data"]), "--out", str(out),
               "--num", "4", "--steps", "2", "--evaluator", str(ev_path)])  # fmt: skip
    assert rc == 0 and "FID" in capsys.readouterr().out
    report = json.loads((out / "diagnose.json").read_text())
    assert report["recon_fid"] >= 0.0
