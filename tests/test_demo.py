"""`make demo` runs the whole method in miniature on the embedded synthetic data."""

from __future__ import annotations

import json
import re

from emomotion.demo import DEMO_CLIPS, demo_config_path, demo_models, run_demo
from emomotion.study import load_study_config, study_stages

HEADLINE = (
    r"Emotion accuracy of generated motion: base \d\.\d{3}, fine-tuned \d\.\d{3} ± \d\.\d{3} "
    r"\(\d+ seeds\), real test clips \d\.\d{3}"
)
MMM_HEADLINE = (
    r"MMM headline: FID [\d.]+ \(MDM [\d.]+\), emotion accuracy \d\.\d{3} \(real \d\.\d{3}\), static rate "
    r"\d\.\d{3} \(real \d\.\d{3}\), VQ MPJPE [\d.]+ cm root-aligned, [\d.]+ cm global"
)


def state_of(out):
    return json.loads((out / "study_state.json").read_text())


def test_serve_without_a_model_says_how_to_get_one(tmp_path, capsys, monkeypatch):
    from emomotion.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["serve"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "make demo" in err


def test_demo_config_covers_the_whole_method():
    names = [s.name for s in study_stages(load_study_config(demo_config_path()))]
    for stage in ("data_base", "data_emotion", "mdm_base_50", "mdm_full_50_s0", "vq_base", "mmm_base",
                  "mmm_study_recipe", "mmm_fixed", "evaluator", "emotion_classifier", "eval", "diagnose_mmm",
                  "prompts", "results"):  # fmt: skip
        assert stage in names, stage


def test_demo_writes_report_results_and_grids(tmp_path):
    out = tmp_path / "demo"
    report = run_demo(out, seconds=2.0, scale=0.03)
    text = report.read_text()
    assert (out / "representation" / "grid.gif").stat().st_size > 0
    assert (out / "figures" / "prompts_grid.gif").stat().st_size > 0
    assert len(list((out / "representation" / "bvh").glob("*.bvh"))) == len(DEMO_CLIPS)
    rows = [line for line in text.splitlines() if line.startswith("| walk") or line.startswith("| knock")]
    assert len(rows) == len(DEMO_CLIPS)
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert float(cells[2]) < 1e-4 and float(cells[3]) < 1e-3
    results = (out / "RESULTS.md").read_text()
    headline = [
        line for line in results.splitlines() if line.startswith("Emotion accuracy of generated motion:")
    ]
    assert len(headline) == 1 and re.fullmatch(HEADLINE, headline[0]), headline
    for section in ("### Accuracy per emotion", "### Intensity", "### Samplers and step counts",
                    "### What each lever adds", "### Forgetting", "### Honest scoring"):  # fmt: skip
        assert section in results, section
    control = state_of(out)["stages"]["control_eval"]["result"]
    assert [r["name"] for r in control["intensity"]] == ["intensity 0", "intensity 1", "intensity 2"]
    assert any(r["name"].startswith("restyle") for r in control["ablation"])
    prompts = state_of(out)["stages"]["prompts"]["result"]
    assert prompts["intensity_row"] == [0.0, 1.0, 2.0]
    assert [p.name for p in demo_models(out)] == ["mdm_label_50_s0", "mdm_full_50_s0", "mmm_fixed"]
    assert "mmm_study_recipe" in results and "static_rate" in results
    state = json.loads((out / "study_state.json").read_text())
    metrics = {r["name"] for r in state["stages"]["eval"]["result"]["rows"]}
    assert "real data" in metrics and "mdm_full_50_s0 ddpm 50" in metrics and "mmm_fixed own" in metrics
    assert "mmm_fixed own, cls guidance 2" in metrics
    mmm = [line for line in results.splitlines() if line.startswith("MMM headline:")]
    assert len(mmm) == 1 and re.fullmatch(MMM_HEADLINE, mmm[0]), mmm
