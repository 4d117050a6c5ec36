"""`train mdm`, `finetune mdm` and `generate` through the CLI, with their error paths."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from emomotion.checkpoint import load_checkpoint
from emomotion.cli import main
from emomotion.io.bvh import read_bvh


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("cli")
    assert main(["data", "build", "synthetic", "--out", str(base / "data"), "--clips-per-pair", "1"]) == 0
    rc = main(
        [
            "train",
            "mdm",
            "--data",
            str(base / "data"),
            "--out",
            str(base / "run"),
            "--preset",
            "tiny",
            "--steps",
            "12",
            "--batch-size",
            "8",
            "--diffusion-steps",
            "50",
            "--save-every",
            "6",
            "--emotion-conditioning",
            "--bf16",
        ]
    )
    assert rc == 0
    return base / "data", base / "run"


def test_train_writes_checkpoints_and_resume_continues(trained, capsys):
    data, run = trained
    assert sorted(p.name for p in run.glob("step*.safetensors")) == [
        "step00000006.safetensors",
        "step00000012.safetensors",
    ]
    rc = main(
        [
            "train",
            "mdm",
            "--data",
            str(data),
            "--out",
            str(run),
            "--preset",
            "tiny",
            "--steps",
            "14",
            "--batch-size",
            "8",
            "--diffusion-steps",
            "50",
            "--save-every",
            "100",
            "--emotion-conditioning",
            "--resume",
        ]
    )
    assert rc == 0 and (run / "step00000014.safetensors").exists()


def test_generate_outputs(trained, tmp_path, capsys):
    _, run = trained
    rc = main(
        [
            "generate",
            "--model",
            str(run),
            "--text",
            "a person walks sadly",
            "--text",
            "a person waves happily",
            "--num",
            "2",
            "--length",
            "2.5",
            "--sampler",
            "dpmpp",
            "--steps",
            "8",
            "--emotion",
            "Sadness",
            "--emotion-scale",
            "2",
            "--out",
            str(tmp_path / "g"),
            "--format",
            "npy,bvh,gif",
        ]
    )
    assert rc == 0
    folders = sorted(p for p in (tmp_path / "g").iterdir() if p.is_dir())
    assert len(folders) == 4 and (tmp_path / "g" / "grid.gif").exists()
    feats = np.load(folders[0] / "features.npy")
    joints = np.load(folders[0] / "joints.npy")
    assert feats.shape == (50, 263) and joints.shape == (50, 22, 3) and np.isfinite(joints).all()
    assert read_bvh(folders[0] / "motion.bvh").num_frames == 50


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--text", ""], "needs some text"),
        (["--text", "x", "--length", "30"], "--length must be in [2, 9.8], got 30"),
        (["--text", "x", "--sampler", "euler"], "unknown sampler"),
        (["--text", "x", "--steps", "51"], "exceed"),
        (["--text", "x", "--format", "fbx"], "unknown format"),
        (["--text", "x", "--emotion", "Boredom"], "unknown emotion"),
    ],
)
def test_bad_generate_requests(trained, tmp_path, capsys, args, message):
    _, run = trained
    rc = main(["generate", "--model", str(run), "--out", str(tmp_path / "g"), *args])
    assert rc == 2 and message in capsys.readouterr().err


@pytest.mark.parametrize(
    "extra",
    [[], ["--strategy", "lora", "--lora-rank", "2"], ["--strategy", "freeze", "--replay-ratio", "0.5"]],
    ids=["full", "lora", "freeze+replay"],
)
def test_finetune_from_run_dir(trained, tmp_path, extra):
    data, run = trained
    if "--replay-ratio" in extra:
        extra = [*extra, "--replay", str(data)]
    rc = main(
        [
            "finetune",
            "mdm",
            "--from",
            str(run),
            "--data",
            str(data),
            "--out",
            str(tmp_path / "ft"),
            "--steps",
            "3",
            "--batch-size",
            "4",
            *extra,
        ]
    )
    assert rc == 0 and (tmp_path / "ft" / "step00000003.safetensors").exists()
    tuned = load_checkpoint(tmp_path / "ft")
    assert tuned.extra["finetune"]["strategy"] == (extra[1] if extra else "full")
    tuned.build_model()


def test_finetune_unknown_strategy_is_a_clear_error(trained, tmp_path, capsys):
    data, run = trained
    rc = main(
        [
            "finetune",
            "mdm",
            "--from",
            str(run),
            "--data",
            str(data),
            "--out",
            str(tmp_path / "x"),
            "--strategy",
            "half",
        ]
    )
    assert rc == 2 and "unknown fine-tuning strategy 'half'" in capsys.readouterr().err


def test_finetune_keeping_the_base_and_the_replay_target_through_the_cli(trained, tmp_path, capsys):
    data, run = trained
    common = ["finetune", "mdm", "--from", str(run), "--data", str(data), "--steps", "2", "--batch-size", "4"]
    assert main([*common, "--out", str(tmp_path / "k"), "--keep-base"]) == 0
    kept = load_checkpoint(tmp_path / "k")
    assert kept.config["keep_base"] and any(k.startswith("base_copy.") for k in kept.model_state)
    out = tmp_path / "g"  # a text-only model that kept its base takes an emotion request (it routes)
    rc = main(["generate", "--model", str(tmp_path / "k"), "--text", "a person walks", "--emotion", "Sadness",
               "--sampler", "ddim", "--steps", "5", "--format", "npy", "--out", str(out)])  # fmt: skip
    assert rc == 0 and list(out.glob("*/features.npy"))
    rc = main([*common, "--out", str(tmp_path / "t"), "--replay", str(data), "--replay-target", "teacher"])
    assert rc == 0 and load_checkpoint(tmp_path / "t").extra["replay"]["target"] == "teacher"
    bad = tmp_path / "bad"
    assert main([*common, "--out", str(bad), "--replay", str(data), "--replay-target", "base"]) == 2
    assert "--replay-target must be one of data, teacher, got 'base'" in capsys.readouterr().err
    assert main([*common, "--out", str(bad), "--keep-base", "--replay", str(data)]) == 2
    assert "keep_base" in capsys.readouterr().err and not bad.exists()


def test_inbetween_with_mdm(trained, tmp_path):
    data, run = trained
    clip = next((data / "new_joint_vecs").glob("*.npy"))
    source = np.load(clip)
    out = tmp_path / "ib"
    rc = main(["generate", "--model", str(run), "--text", "a person walks sadly", "--inbetween", str(clip),
               "--keep-first", "10", "--keep-last", "10", "--sampler", "ddim", "--steps", "5", "--format", "npy",
               "--out", str(out)])  # fmt: skip
    assert rc == 0
    feats = np.load(next(out.glob("*/features.npy")))
    assert feats.shape == source.shape
    np.testing.assert_allclose(feats[:10], source[:10], atol=1e-4)
    np.testing.assert_allclose(feats[-10:], source[-10:], atol=1e-4)
    assert np.abs(feats[10:-10] - source[10:-10]).mean() > 1e-3


def test_generate_from_missing_checkpoint(tmp_path, capsys):
    rc = main(["generate", "--model", str(tmp_path / "nope"), "--text", "x", "--out", str(tmp_path / "g")])
    assert rc == 2 and "--model: file or folder not found" in capsys.readouterr().err
