"""The study's measuring instruments and measurements: the merged dataset the evaluator learns from,
the evaluator, the emotion classifier, and the side-by-side evaluation of every trained model."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

from emomotion.study.config import StudyConfig
from emomotion.study.mmm_results import mmm_guided_row
from emomotion.study.runner import Stage, StudyContext
from emomotion.study.stages import _inputs, _train_config

log = logging.getLogger(__name__)


def merge_stage(cfg: StudyConfig) -> Stage:
    def run(ctx: StudyContext) -> dict[str, Any]:
        from emomotion.data.merge import merge_datasets

        summary = merge_datasets(
            [ctx.data / "base", ctx.data / "emotion"],
            ctx.data / "merged",
            prefixes=["base", "emo"],
            overwrite=True,
        )
        return {"path": str(ctx.data / "merged"), "clips": summary.total}

    return Stage(
        "data_merged",
        run,
        "merge both datasets (the evaluator's training data)",
        _inputs(b=cfg.base, e=cfg.emotion, s=cfg.seed),
    )


def evaluator_stage(cfg: StudyConfig) -> Stage:
    def run(ctx: StudyContext) -> dict[str, Any]:
        from emomotion.training.evaluator import EvaluatorRun, run_evaluator

        e = ctx.cfg.eval
        train = _train_config(ctx.cfg, e.evaluator_steps, 32, 1e-4, ctx.cfg.seed, ema=False, bf16=False)
        ckpt = run_evaluator(
            EvaluatorRun(
                data=ctx.data / "merged",
                out=ctx.runs / "evaluator",
                preset="t2m" if ctx.cfg.full_size else e.evaluator_preset,
                train=train,
                max_frames=ctx.cfg.max_frames,
            ),
            resume=True,
        )
        return {"checkpoint": str(ckpt)}

    inputs = _inputs(b=cfg.base, e=cfg.emotion, seed=cfg.seed, scale=cfg.scale, full=cfg.full_size)
    inputs.update(preset=cfg.eval.evaluator_preset, steps=cfg.eval.evaluator_steps)
    return Stage("evaluator", run, "train the text-motion evaluator on the merged training split", inputs)


def classifier_stage(cfg: StudyConfig) -> Stage:
    def run(ctx: StudyContext) -> dict[str, Any]:
        from emomotion.training.emotion_classifier import EmotionClassifierRun, run_emotion_classifier

        e = ctx.cfg.eval
        train = _train_config(ctx.cfg, e.classifier_steps, 32, 3e-4, ctx.cfg.seed, ema=False, bf16=False)
        ckpt = run_emotion_classifier(
            EmotionClassifierRun(
                data=ctx.data / "emotion",
                out=ctx.runs / "emotion_classifier",
                train=train,
                max_frames=ctx.cfg.max_frames,
            ),
            resume=True,
        )
        return {"checkpoint": str(ckpt)}

    inputs = _inputs(e=cfg.emotion, seed=cfg.seed, scale=cfg.scale, steps=cfg.eval.classifier_steps)
    return Stage(
        "emotion_classifier", run, "train the emotion classifier on the emotion set's training split", inputs
    )


def _entries(ctx: StudyContext) -> list[Any]:
    """One row per (trained model, setting): every MDM setting for each base and the first seed of each
    fine-tune; the as-trained setting only for other seeds and variants; MMM with its own decoding. The
    emotion-control study's own fine-tunes (its headline and training ablation) are left to it."""
    from emomotion.evaluation.compare import Entry
    from emomotion.generate import SamplingSettings

    e, c = ctx.cfg.eval, ctx.cfg.control
    controlled = {c.headline, c.label_variant, c.training_ablation} - {""} if c.enabled else set()
    entries = []
    for name, record in ctx.state["stages"].items():
        result = record["result"]
        family = result.get("family")
        if family == "mdm" and result.get("variant") in controlled:
            continue  # the emotion-control evaluation measures these, with their recipe's settings
        if family == "mdm":
            n = int(result["diffusion_steps"])
            full_sweep = result.get("variant") in (None, "full") and result.get("seed", 0) == 0
            settings = e.mdm_samplers if full_sweep else e.mdm_samplers[:1]
            for sampler, steps in settings:
                if steps >= n:  # fewer steps than trained (the as-trained row is steps 0)
                    continue
                if steps == 0 and n > e.slow_steps and e.slow_models and name not in e.slow_models:
                    continue
                s = SamplingSettings(sampler=sampler, steps=steps, guidance=e.guidance)
                entries.append(Entry(f"{name} {sampler} {steps or n}", Path(result["checkpoint"]), s))
        elif family == "mmm":
            for label, decoding in result["decodings"].items():
                s = SamplingSettings(guidance=decoding["guidance"], temperature=decoding["temperature"],
                                      top_k=decoding["top_k"], steps=decoding["steps"])  # fmt: skip
                entries.append(Entry(f"{name} {label}", Path(result["checkpoint"]), s))
                if label == "own" and name == f"mmm_{ctx.cfg.mmm.headline}":
                    guide = Path(ctx.result("guide_classifier")["checkpoint"])
                    for g in ctx.cfg.mmm.guidance_rows:
                        guided = replace(s, emotion_guidance=guide, emotion_guidance_scale=g)
                        entries.append(Entry(mmm_guided_row(name, g), Path(result["checkpoint"]), guided))
    return entries


def emotion_eval_args(ctx: StudyContext, out: Path) -> dict[str, Any]:
    """What every comparison on the emotion set's test split shares: data, evaluator, the scoring emotion
    classifier and the cue judge (no network; fitted on the real training clips), seed, crop length;
    results under ``out``, the report written by the stage itself."""
    from emomotion.evaluation.cue_judge import fit_cue_judge

    return {
        "data": ctx.data / "emotion",
        "evaluator": ctx.result("evaluator")["checkpoint"],
        "out": out,
        "emotion_classifier": ctx.result("emotion_classifier")["checkpoint"],
        "emotion_judge": fit_cue_judge(ctx.data / "emotion", seed=ctx.cfg.seed),
        "seed": ctx.cfg.seed,
        "max_frames": ctx.cfg.max_frames,
        "report": False,
    }


def eval_stage(cfg: StudyConfig) -> Stage:
    def run(ctx: StudyContext) -> dict[str, Any]:
        from emomotion.evaluation.compare import compare
        from emomotion.evaluation.report import write_report

        e = ctx.cfg.eval
        out = ctx.out / "eval" / "emotion"
        entries = _entries(ctx)
        # sampling over hundreds of steps is the slow part: those rows get one repetition of one batch of
        # 32 clips and no MultiModality (said in the report); every other row gets the full protocol
        slow = [x for x in entries if _steps(ctx, x) > e.slow_steps]
        fast = [x for x in entries if x not in slow]
        common = emotion_eval_args(ctx, out)
        results = compare(fast, reps=e.reps, mm_texts=e.mm_texts, mm_repeats=e.mm_repeats, **common)
        if slow:
            results += compare(slow, reps=1, mm_texts=0, real_row=False, max_clips=32, **common)
        write_report(results, out)
        return {"report": str(out / "report.md"), "rows": [r.to_dict() for r in results]}

    # fingerprinted by the plan with every measurement setting (study.plan.measurement_settings)
    return Stage("eval", run, "evaluate every model on the emotion set's test split", None, rerun=True)


def _steps(ctx: StudyContext, entry: Any) -> int:
    if entry.settings.steps:
        return entry.settings.steps
    for record in ctx.state["stages"].values():
        if record["result"].get("checkpoint") == str(entry.checkpoint):
            return int(record["result"].get("diffusion_steps", 0))
    return 0
