"""The MMM headline line keeps the exact form scripts read, from the numbers the study measured."""

from __future__ import annotations

import re

import pytest

from emomotion.errors import ConfigError
from emomotion.study.config import FinetuneVariant, MMMStudy
from emomotion.study.mmm_results import mmm_headline_sentence, mmm_section

FORM = (
    r"MMM headline: FID (\S+) \(MDM (\S+)\), emotion accuracy (\S+) \(real (\S+)\), static rate (\S+) "
    r"\(real (\S+)\), VQ MPJPE (\S+) cm root-aligned, (\S+) cm global"
)


def _row(name: str, real: bool = False, **values: float) -> dict:
    return {"name": name, "real": real, "metrics": {k: {"mean": v, "ci95": 0.0} for k, v in values.items()}}


def _stages(control: bool) -> dict:
    stages = {
        "diagnose_mmm": {
            "result": {"vq_base_test": {"clips": 9, "vq_pose_mpjpe_cm": 3.44, "vq_mpjpe_cm": 12.08}}
        }
    }
    if control:
        recipe = [_row(f"recipe seed {s}", fid=f) for s, f in enumerate((8.0, 10.0, 12.0))]
        real = _row("real data", True, emotion_accuracy=0.6, static_rate=0.05, fid=0.1)
        stages["control_eval"] = {"result": {"headline": [real, _row("base", emotion_accuracy=0.2), *recipe]}}
    return stages


ROWS = {
    "real data": _row("real data", True, emotion_accuracy=0.6, static_rate=0.05),
    "mmm_label own": _row("mmm_label own", fid=20.0, emotion_accuracy=0.45, static_rate=0.02),
    "mmm_label greedy": _row("mmm_label greedy", fid=40.0, emotion_accuracy=0.1, static_rate=0.5),
    "mdm_full_50_s0 ddpm 50": _row("mdm_full_50_s0 ddpm 50", fid=14.0),
    "mdm_full_50_s1 ddpm 50": _row("mdm_full_50_s1 ddpm 50", fid=16.0),
    "mdm_full_50_s0 ddim 20": _row("mdm_full_50_s0 ddim 20", fid=99.0),
}


def test_the_line_has_the_exact_form_and_the_recipe_is_mdms_headline():
    text, nums = mmm_headline_sentence(_stages(control=True), ROWS, "label")
    m = re.fullmatch(FORM, text)
    assert m, text
    assert [float(x) for x in m.groups()] == [20.0, 10.0, 0.45, 0.6, 0.02, 0.05, 3.4, 12.1]
    assert nums["mdm_fid"] == pytest.approx(10.0)


def test_without_the_control_study_mdm_is_the_text_only_fine_tune_as_trained():
    text, nums = mmm_headline_sentence(_stages(control=False), ROWS, "label")
    assert nums["mdm_fid"] == pytest.approx(15.0)  # the two DDPM-50 seeds, not the DDIM row
    assert re.fullmatch(FORM, text)


def test_nothing_until_measured_and_the_section_says_the_goals():
    assert mmm_headline_sentence({}, ROWS, "label") is None
    assert mmm_headline_sentence(_stages(True), ROWS, "fixed") is None  # never evaluated
    lines = mmm_section(_stages(True), ROWS, "label", ["| table |"])
    assert any(re.fullmatch(FORM, x) for x in lines)
    assert any("2.00x MDM's" in x and "0.75x real" in x for x in lines)


def test_the_headline_must_name_an_mmm_fine_tune():
    with pytest.raises(ConfigError, match=r"mmm\.headline 'nope'"):
        MMMStudy(headline="nope", finetune=(FinetuneVariant(name="label"),))
    assert MMMStudy(headline="label", finetune=(FinetuneVariant(name="label"),)).headline == "label"


def test_a_classifier_guided_headline_reads_its_own_row():
    rows = {
        **ROWS,
        "mmm_label own, cls guidance 2": _row("g", fid=25.0, emotion_accuracy=0.58, static_rate=0.01),
    }
    text, nums = mmm_headline_sentence(_stages(control=True), rows, "label", 2.0)
    assert nums["accuracy"] == 0.58 and nums["fid"] == 25.0 and re.fullmatch(FORM, text)
    assert mmm_headline_sentence(_stages(control=True), ROWS, "label", 2.0) is None  # not evaluated yet


def test_guidance_rows_are_checked():
    label = (FinetuneVariant(name="label"),)
    with pytest.raises(ConfigError, match="guidance_rows"):
        MMMStudy(finetune=label, guidance_rows=(1.0,))  # no headline variant
    with pytest.raises(ConfigError, match="headline_guidance 3"):
        MMMStudy(headline="label", finetune=label, guidance_rows=(1.0, 2.0), headline_guidance=3.0)
    assert MMMStudy(
        headline="label", finetune=label, guidance_rows=(2.0,), headline_guidance=2.0
    ).guidance_rows
