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
    narrow = parse_setting("ddim:20:noise=0.8")
    assert narrow.noise_scale == 0.8 and narrow.label("mdm") == "ddim 20, noise x0.8"
    with pytest.raises(ConfigError, match="noise scale"):
        parse_setting("ddim:20:noise=0")


def test_parse_mmm_setting_with_emotion_options():
    s = parse_setting("mmm:10:0.8:5:guidance=2:label=2.5:intensity=1.5:cg=2", emotion_guidance=Path("cls"))
    assert (s.steps, s.temperature, s.top_k, s.guidance) == (10, 0.8, 5, 2.0)
    assert (s.emotion_scale, s.intensity, s.emotion_guidance_scale) == (2.5, 1.5, 2.0)
    assert s.classifier_guided and s.emotion_guidance == Path("cls")
    assert parse_setting("mmm:10:label=1").temperature == 1.0  # options may follow any positional part
    with pytest.raises(ConfigError, match=r"unknown option 'eta=0\.5'"):
        parse_setting("mmm:10:eta=0.5")  # an MDM sampler's option
    with pytest.raises(ConfigError, match="give --emotion-guidance"):
        parse_setting("mmm:10:cg=2")
    with pytest.raises(ConfigError, match="bad setting"):
        parse_setting("mmm:10:1:0:7")
    with pytest.raises(ConfigError, match="key=value"):
        parse_setting("ddim:20:7")


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


def test_eval_of_an_mmm_with_label_and_classifier_guidance(setup, tmp_path):
    small = ["--preset", "tiny", "--batch-size", "8", "--save-every", "1000", "--steps", "4"]
    vq, mmm = tmp_path / "vq", tmp_path / "mmm"
    assert (
        main(["train", "vq", "--data", str(setup["data"]), "--out", str(vq), "--window", "40", *small]) == 0
    )
    assert main(["train", "mmm", "--data", str(setup["data"]), "--vq", str(vq), "--out", str(mmm),
                 "--emotion-conditioning", *small]) == 0  # fmt: skip
    guide = tmp_path / "guide"
    assert main(["train", "emotion-classifier", "--data", str(setup["data"]), "--out", str(guide), "--steps", "5",
                 "--preset", "tiny", "--batch-size", "8", "--seed", "1"]) == 0  # fmt: skip
    out = tmp_path / "report"
    assert main(["eval", "--model", str(mmm), "--data", str(setup["data"]), "--evaluator", str(setup["ev"]),
                 "--emotion-classifier", str(setup["ec"]), "--reps", "1", "--mm-texts", "0", "--out", str(out),
                 "--setting", "mmm:4:1.0:guidance=2:label=2:cg=1", "--setting", "mmm:4:1.0:guidance=2",
                 "--emotion-guidance", str(guide)]) == 0  # fmt: skip
    rows = json.loads((out / "metrics.json").read_text())
    rows = rows["results"] if isinstance(rows, dict) else rows
    names = [r["name"] for r in rows]
    assert len(names) == 3 and any("cls guidance 1" in n for n in names), names
    guided, plain = (next(r for r in rows[1:] if ("cls" in r["name"]) == flag) for flag in (True, False))
    assert guided["metrics"]["fid"] != plain["metrics"]["fid"]  # the options reached the decoder
