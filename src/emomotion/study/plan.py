"""The ordered list of a study's stages, built from its config."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from emomotion.study.config import StudyConfig
from emomotion.study.control_stages import control_eval_stage, guide_classifier_stage
from emomotion.study.eval_stages import classifier_stage, eval_stage, evaluator_stage, merge_stage
from emomotion.study.mmm_stages import diagnose_stage, mmm_base_stage, mmm_finetune_stage, vq_base_stage
from emomotion.study.results import prompts_stage, results_stage
from emomotion.study.runner import Stage
from emomotion.study.stages import build_stage, fingerprint_dict, mdm_base_stage, mdm_finetune_stage


def study_stages(cfg: StudyConfig) -> list[Stage]:
    """Every stage of ``cfg``, in order: data, MDM, MMM, instruments, evaluation, report."""
    stages = [build_stage(cfg, "base"), build_stage(cfg, "emotion")]
    stages += [mdm_base_stage(cfg, n) for n in cfg.mdm.diffusion_steps]
    trained = [v for v in cfg.mdm.finetune if not v.weights_of]
    derived = [v for v in cfg.mdm.finetune if v.weights_of]  # after the runs they come from
    for variant in trained + derived:
        for n in cfg.mdm.diffusion_steps:
            if not variant.on or n in variant.on:
                stages += [mdm_finetune_stage(cfg, variant, n, s) for s in variant.seeds]
    if cfg.mmm.enabled:
        stages += [vq_base_stage(cfg), mmm_base_stage(cfg)]
        stages += [mmm_finetune_stage(cfg, v) for v in cfg.mmm.finetune]
    stages += [merge_stage(cfg), evaluator_stage(cfg), classifier_stage(cfg)]
    if cfg.control.enabled:
        stages.append(guide_classifier_stage(cfg))
    upstream = [s.fingerprint for s in stages]
    # measurements rerun (from their caches) whenever a model or the evaluation settings change
    evaluation = [eval_stage(cfg)]
    if cfg.control.enabled:
        evaluation.append(control_eval_stage(cfg))
    if cfg.mmm.enabled:
        evaluation.append(diagnose_stage(cfg))
    if cfg.prompts:
        evaluation.append(prompts_stage(cfg))
    evaluation.append(results_stage(cfg))
    settings = measurement_settings(cfg)
    for stage in evaluation:
        stages.append(
            Stage(
                stage.name, stage.fn, stage.description, {"own": settings, "upstream": upstream}, rerun=True
            )
        )
    return stages


def measurement_settings(cfg: StudyConfig) -> dict[str, Any]:
    """What the measurements read besides the trained models, so that editing any of it reruns them:
    the evaluation, the emotion-control study, the MMM headline's decoding and the prompt grid (the
    training stages leave these out of their own fingerprints)."""
    mmm = {k: getattr(cfg.mmm, k) for k in ("headline", "guidance_rows", "headline_guidance")}
    return {
        "eval": asdict(cfg.eval),
        "control": fingerprint_dict(cfg.control),
        "mmm": mmm,
        "prompts": list(cfg.prompts),
        "prompt_seconds": cfg.prompt_seconds,
    }
