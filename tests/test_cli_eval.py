"""`train evaluator`, `train emotion-classifier` and `eval` through the CLI on the synthetic set."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from emomotion.cli import main
from emomotion.errors import ConfigError
from emomotion.evaluation.compare import parse_setting
from emomotion.generate import SamplingSettings


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("eval")
    data = base / "data"
    assert main(["data", "build", "synthetic", "--out", str(data), "--ratios", "0.5,0.1,0.4"]) == 0
    small = ["--preset", "tiny", "--batch-size", "8", "--save-every", "1000"]
    assert main(["train", "mdm", "--data", str(data), "--out", str(base / "mdm"), "--steps", "4",
                 "--diffusion-steps", "20", *small]) == 0  # fmt: skip
    assert (
        main(["train", "evaluator", "--data", str(data), "--out", str(base / "ev"), "--steps", "10", *small])
        == 0
    )
    assert main(["train", "emotion-classifier", "--data", str(data), "--out", str(base / "ec"), "--steps", "10",
                 *small]) == 0  # fmt: skip
    return {"data": data, "mdm": base / "mdm", "ev": base / "ev", "ec": base / "ec"}


def test_eval_writes_a_report_with_real_and_model_rows(setup, tmp_path):
    out = tmp_path / "report"
    rc = main(["eval", "--model", str(setup["mdm"]), "--data", str(setup["data"]), "--evaluator", str(setup["ev"]),
               "--emotion-classifier", str(setup["ec"]), "--setting", "ddim:10", "--setting", "ddpm:5",
               "--reps", "1", "--mm-texts", "0", "--out", str(out)])  # fmt: skip
    assert rc == 0
    metrics = json.loads((out / "metrics.json").read_text())
    rows = [r["name"] for r in (metrics["results"] if isinstance(metrics, dict) else metrics)]
    assert rows[0] == "real data" and sorted(rows[1:]) == ["mdm ddim 10", "mdm ddpm 5"]
    text = (out / "report.md").read_text()
    assert "real data" in text and "mdm ddim 10" in text
    assert (out / "metrics.csv").exists() and list(out.glob("*.png"))


def test_eval_refuses_more_steps_than_trained(setup, tmp_path, capsys):
    rc = main(["eval", "--model", str(setup["mdm"]), "--data", str(setup["data"]), "--evaluator", str(setup["ev"]),
               "--setting", "ddim:50", "--reps", "1", "--out", str(tmp_path / "r")])  # fmt: skip
    assert rc == 2 and "exceed the 20" in capsys.readouterr().err


def test_parse_setting():
    assert parse_setting("ddim:50").steps == 50 and parse_setting("ddim:50").sampler == "ddim"
    mmm = parse_setting("mmm:10:0")
    assert mmm.steps == 10 and mmm.temperature == 0.0 and mmm.label("mmm") == "10 steps, greedy"
    guided = SamplingSettings(steps=10, emotion_guidance=Path("cls.pt"), emotion_guidance_scale=2.0)
    assert guided.classifier_guided and guided.label("mmm") == "10 steps, T=1, cls guidance 2"
    assert not SamplingSettings(emotion_guidance=Path("cls.pt")).classifier_guided
    with pytest.raises(ConfigError, match="bad setting"):
        parse_setting("ddim:many")


def test_eval_with_emotion_guidance_setting(setup, tmp_path, capsys):
    guide = tmp_path / "guide"
    assert main(["train", "emotion-classifier", "--data", str(setup["data"]), "--out", str(guide), "--steps", "5",
                 "--preset", "tiny", "--batch-size", "8", "--seed", "1"]) == 0  # fmt: skip
    out = tmp_path / "report"
    common = ["eval", "--model", str(setup["mdm"]), "--data", str(setup["data"]), "--evaluator", str(setup["ev"]),
              "--emotion-classifier", str(setup["ec"]), "--reps", "1", "--mm-texts", "0", "--out", str(out)]  # fmt: skip
    assert main([*common, "--setting", "ddim:10:cg=0.5:intensity=2", "--emotion-guidance", str(guide)]) == 0
    rows = json.loads((out / "metrics.json").read_text())
    names = [r["name"] for r in (rows["results"] if isinstance(rows, dict) else rows)]
    assert "mdm ddim 10, cls guidance 0.5, intensity 2" in names
    assert main([*common, "--setting", "ddim:10:cg=0.5", "--emotion-guidance", str(setup["ec"])]) == 2
    assert "must not be the scoring" in capsys.readouterr().err
