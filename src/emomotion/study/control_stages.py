"""The study's emotion-control measurements: the guiding classifier, then one evaluation of the headline
recipe over its seeds, each lever alone (the ablation), the intensity curve, every sampler at 10/20/50
steps, restyling, and forgetting on the base corpus's own test prompts.

Honest scoring: the classifier that steers sampling (``guide_classifier``, trained on the same real
training split with another seed) never scores; every row is scored by the study's emotion classifier,
whose accuracy on the real test clips is the real row beside them.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from emomotion.study.config import StudyConfig
from emomotion.study.eval_stages import emotion_eval_args
from emomotion.study.runner import Stage, StudyContext
from emomotion.study.stages import _inputs, _train_config

log = logging.getLogger(__name__)

GUIDE = "guide_classifier"


def guide_classifier_stage(cfg: StudyConfig) -> Stage:
    def run(ctx: StudyContext) -> dict[str, Any]:
        from emomotion.training.emotion_classifier import EmotionClassifierRun, run_emotion_classifier

        c = ctx.cfg.control
        train = _train_config(
            ctx.cfg, c.guide_classifier_steps, 32, 3e-4, c.guide_classifier_seed, ema=False, bf16=False
        )
        ckpt = run_emotion_classifier(
            EmotionClassifierRun(
                data=ctx.data / "emotion",
                out=ctx.runs / GUIDE,
                preset=c.guide_classifier_preset,
                train=train,
                max_frames=ctx.cfg.max_frames,
            ),
            resume=True,
        )
        return {"checkpoint": str(ckpt)}

    c = cfg.control
    inputs = _inputs(e=cfg.emotion, seed=c.guide_classifier_seed, scale=cfg.scale,
                     steps=c.guide_classifier_steps, preset=c.guide_classifier_preset)  # fmt: skip
    return Stage(GUIDE, run, "train the guiding emotion classifier (another seed; never scores)", inputs)


def _checkpoint(ctx: StudyContext, stage: str) -> Path:
    return Path(ctx.result(stage)["checkpoint"])


def _variant_stages(ctx: StudyContext, variant: str) -> list[str]:
    n = ctx.cfg.control.diffusion_steps
    prefix = f"mdm_{variant}_{n}_s"
    return sorted(k for k in ctx.state["stages"] if k.startswith(prefix))


def control_entries(ctx: StudyContext) -> dict[str, list[Any]]:
    """The rows of each table, by table: ``headline``, ``ablation``, ``intensity``, ``samplers``."""
    from emomotion.evaluation.compare import Entry
    from emomotion.generate import SamplingSettings

    c = ctx.cfg.control
    guide = _checkpoint(ctx, GUIDE)
    steps = c.steps or 0

    def recipe(**over: Any) -> SamplingSettings:
        base = {"sampler": c.sampler, "steps": steps, "guidance": c.text_guidance, "emotion_scale": c.label_scale,
                "emotion_guidance": guide if c.guidance_scale > 0 else None,
                "emotion_guidance_scale": c.guidance_scale, "smoothing": c.smoothing,
                "noise_scale": c.noise_scale}  # fmt: skip
        base.update(over)
        if not base["emotion_guidance_scale"]:
            base["emotion_guidance"] = None
        return SamplingSettings(**base)

    headline = _variant_stages(ctx, c.headline)
    if not headline:
        from emomotion.errors import ConfigError

        raise ConfigError(f"control.headline: no fine-tuned MDM stage for variant {c.headline!r}")
    first = _checkpoint(ctx, headline[0])
    base = _checkpoint(ctx, f"mdm_base_{c.diffusion_steps}")
    plain = SamplingSettings(sampler=c.sampler, steps=steps, guidance=c.text_guidance, smoothing=c.smoothing,
                             noise_scale=c.noise_scale)  # fmt: skip
    rows: dict[str, list[Any]] = {"headline": [], "ablation": [], "intensity": [], "samplers": []}
    rows["headline"].append(Entry("base", base, plain))
    rows["headline"] += [Entry(f"recipe {name}", _checkpoint(ctx, name), recipe()) for name in headline]
    ablation = rows["ablation"]
    ablation.append(Entry("base, text only", base, plain))
    if c.guidance_scale > 0:
        ablation.append(Entry("base + classifier guidance", base, recipe(emotion_scale=None)))
    for variant, label in ((c.text_only, "fine-tuned on text"),):
        stages = _variant_stages(ctx, variant) if variant else []
        if stages:
            ckpt = _checkpoint(ctx, stages[0])
            ablation.append(Entry(label, ckpt, plain))
            if c.guidance_scale > 0:
                ablation.append(Entry(f"{label} + classifier guidance", ckpt, recipe(emotion_scale=None)))
    labelled = _variant_stages(ctx, c.label_variant) if c.label_variant else headline[:1]
    if not labelled:
        from emomotion.errors import ConfigError

        raise ConfigError(f"control.label_variant: no fine-tuned MDM stage for variant {c.label_variant!r}")
    label_ckpt = _checkpoint(ctx, labelled[0])
    own = label_ckpt == first  # the headline's own label, or another variant's
    ablation.append(
        Entry("label, text only (scale 0)", label_ckpt, recipe(emotion_scale=0.0, emotion_guidance_scale=0.0))
    )
    ablation.append(Entry("label", label_ckpt, recipe(emotion_guidance_scale=0.0)))
    ablation.append(Entry("label + classifier guidance" + (" (recipe)" if own else ""), label_ckpt, recipe()))
    if c.training_ablation:
        stages = _variant_stages(ctx, c.training_ablation)
        if stages:
            what = "recipe" if own else "label + classifier guidance"
            ablation.append(
                Entry(f"{what} without the training changes", _checkpoint(ctx, stages[0]), recipe())
            )
    if not own:
        ablation.append(Entry(f"recipe ({c.headline} + classifier guidance)", first, recipe()))
    if c.smoothing != 0.0:
        ablation.append(Entry("recipe without output smoothing", first, recipe(smoothing=0.0)))
    if c.noise_scale != 1.0:
        ablation.append(Entry("recipe from unit noise (scale 1)", first, recipe(noise_scale=1.0)))
    for i in c.intensities:
        rows["intensity"].append(Entry(f"intensity {i:g}", first, recipe(intensity=i)))
    for sampler, n in c.samplers:
        eta = c.ddim_eta if sampler == "ddim" else None
        rows["samplers"].append(Entry(f"{sampler} {n}", first, recipe(sampler=sampler, steps=n, eta=eta)))
    return rows


def recipe_generator(ctx: StudyContext) -> tuple[Any, Any, Any]:
    """(generator, settings, caption -> emotion index) of the recipe on its first fine-tuning seed."""
    from emomotion.evaluation.generators import caption_emotion
    from emomotion.generate import MotionGenerator

    entry = control_entries(ctx)["headline"][1]
    return MotionGenerator(entry.checkpoint), entry.settings, caption_emotion


class RestyleGenerator:
    """``generate_fn`` restyling base-corpus test clips (cut to each length) into each caption's emotion."""

    def __init__(self, checkpoint: Path, source_root: Path, settings: Any, strength: float) -> None:
        from emomotion.data.dataset import DatasetConfig, MotionDataset
        from emomotion.evaluation.generators import CheckpointGenerator

        self.inner = CheckpointGenerator(checkpoint, settings)
        ds = MotionDataset(DatasetConfig(source_root, split="test", normalise=False))
        self.sources = [
            np.load(source_root / "new_joint_vecs" / f"{i}.npy").astype(np.float32) for i in ds.ids
        ]
        self.strength = strength
        self.ckpt = self.inner.ckpt

    def __call__(self, texts: list[str], lengths: list[int], seed: int) -> list[np.ndarray]:
        import torch

        from emomotion.evaluation.generators import caption_emotion

        gen = self.inner.generator
        rng = np.random.default_rng(seed)
        t = max(lengths)
        init = np.zeros((len(texts), t, gen.mean.shape[0]), np.float32)
        for k, n in enumerate(lengths):
            fits = [s for s in self.sources if len(s) >= n] or [max(self.sources, key=len)]
            clip = fits[int(rng.integers(len(fits)))]
            start = int(rng.integers(len(clip) - min(n, len(clip)) + 1))
            seg = clip[start : start + n]
            init[k, : len(seg)] = gen.normalise(seg)
        emotions = [caption_emotion(x) for x in texts]
        return gen.sample(texts, lengths, seed, self.inner.settings, emotions=emotions,
                          init=torch.from_numpy(init), strength=self.strength)  # fmt: skip


def _floor(ctx: StudyContext, evaluator: Any) -> dict[str, Any]:
    """The FID of held-out real motion (training clips) against the test reference, at the test's count."""
    from emomotion.evaluation.evalset import EvalSettings
    from emomotion.evaluation.floor import fid_floor

    settings = EvalSettings(seed=ctx.cfg.seed, max_frames=ctx.cfg.max_frames)
    try:
        return fid_floor(ctx.data / "emotion", evaluator, settings).to_dict()
    except ValueError as err:  # a corpus whose training split is smaller than its test split (the demo's)
        log.warning("FID floor not measured: %s", err)
        return {"skipped": str(err)}


def control_eval_stage(cfg: StudyConfig) -> Stage:
    def run(ctx: StudyContext) -> dict[str, Any]:
        from emomotion.checkpoint import load_checkpoint
        from emomotion.evaluation.compare import compare
        from emomotion.evaluation.evaluate import evaluate

        c = ctx.cfg.control
        out = ctx.out / "eval" / "control"
        common = {**emotion_eval_args(ctx, out), "mm_texts": 0}
        tables = control_entries(ctx)
        result: dict[str, Any] = {}
        ev = load_checkpoint(common["evaluator"]).build_model()
        result["headline"] = [r.to_dict() for r in compare(tables["headline"], reps=c.reps, **common)]
        result["fid_floor"] = _floor(ctx, ev)
        for name in ("ablation", "intensity", "samplers"):
            rows = compare(tables[name], reps=c.detail_reps, real_row=False, **common)
            result[name] = [r.to_dict() for r in rows]
        first = tables["headline"][1]
        restyler = RestyleGenerator(first.checkpoint, ctx.data / "base", first.settings, c.restyle_strength)
        cls = load_checkpoint(common["emotion_classifier"]).build_model()
        restyled = evaluate(restyler, ctx.data / "emotion", ev, name=f"restyle {c.restyle_strength:g}",
                            reps=c.detail_reps, emotion_classifier=cls, seed=ctx.cfg.seed, out_dir=out,
                            emotion_judge=common["emotion_judge"],
                            max_frames=ctx.cfg.max_frames, mm_texts=0,
                            model_id=f"restyle:{first.checkpoint}:{first.settings}:{c.restyle_strength}")  # fmt: skip
        result["ablation"].append(restyled.to_dict())
        # forgetting: the base corpus's own test prompts (no emotion), before and after fine-tuning
        from emomotion.evaluation.compare import Entry

        base = tables["headline"][0]  # the base model with the recipe's sampling, no emotion
        forget = [Entry("before (base)", base.checkpoint, base.settings),
                  Entry("after (recipe model)", first.checkpoint, base.settings)]  # fmt: skip
        kept = bool(load_checkpoint(first.checkpoint).config.get("keep_base"))
        result["recipe_keeps_base"] = kept
        others = [(f"after, {c.text_only} (the same fine-tune, base not kept)", c.text_only)] if kept else []
        others += [(f"after, {c.label_variant} (the label fine-tune)", c.label_variant)]
        for label, variant in others:
            stages = _variant_stages(ctx, variant) if variant else []
            if stages:
                forget.append(Entry(label, _checkpoint(ctx, stages[0]), base.settings))
        rows = compare(forget, data=ctx.data / "base", evaluator=common["evaluator"], out=ctx.out / "eval" / "forgetting",
                       seed=ctx.cfg.seed, max_frames=ctx.cfg.max_frames, report=False, mm_texts=0, reps=1,
                       max_clips=c.forgetting_clips)  # fmt: skip
        result["forgetting"] = [r.to_dict() for r in rows]
        guide_real = compare([], reps=c.reps, **{**common, "emotion_classifier": _checkpoint(ctx, GUIDE),
                                                 "out": ctx.out / "eval" / "guide_real"})  # fmt: skip
        result["guide_real"] = [r.to_dict() for r in guide_real]
        return result

    # fingerprinted by the plan with every measurement setting (study.plan.measurement_settings)
    return Stage("control_eval", run, "evaluate emotion control: headline, levers, intensity, samplers",
                 None, rerun=True)  # fmt: skip
