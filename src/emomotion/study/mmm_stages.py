"""The study's MMM half: pretrain the VQ-VAE and the masked transformer on the base corpus, fine-tune
on the emotion set with the recipe that went static and with the remedies, and diagnose each.

The failing recipe reproduces what the original study did with the official code: the VQ-VAE is
fine-tuned on the emotion set with its codebook re-initialised from the first batch (the official
code does not save the quantizer's EMA state, so a resumed VQ re-initialises), the transformer is
fine-tuned at lr 1e-4 on that VQ's tokens while the base VQ is what it embeds and decodes with
(``official_load``: loading the base transformer file overwrites the fine-tuned VQ with its copy),
and motions are decoded greedily.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, replace
from typing import Any

from emomotion.errors import ConfigError
from emomotion.study.config import FinetuneVariant, StudyConfig
from emomotion.study.runner import Stage, StudyContext
from emomotion.study.stages import _inputs, _train_config, _training_inputs, _variant_train, early_stop_record

log = logging.getLogger(__name__)


# settings added after studies were run: left out of the fingerprint at their defaults, so that those
# studies' finished stages stay valid
_LATER_DEFAULTS = {"vq_window": 64, "vq_lr_schedule": "constant"}


def _mmm_base_inputs(cfg: StudyConfig) -> dict[str, Any]:
    mmm = {
        k: v
        for k, v in asdict(cfg.mmm).items()
        if k not in ("finetune", "headline", "guidance_rows", "headline_guidance")
        and not (k in _LATER_DEFAULTS and v == _LATER_DEFAULTS[k])
    }
    return {**_training_inputs(cfg), "mmm": mmm}


def _decodings(cfg: StudyConfig, variant: FinetuneVariant | None) -> dict[str, dict[str, Any]]:
    """The decoding settings a model is evaluated and diagnosed with: greedy and sampled (the variant's
    own first, so the effect of decoding is measured on the same weights)."""
    steps = cfg.mmm.decoding_steps
    greedy = {"steps": steps, "temperature": 0.0, "top_k": 0, "guidance": 1.0}
    sampled = {"steps": steps, "temperature": 1.0, "top_k": 0, "guidance": 4.0}
    if variant is not None:
        own = {
            "steps": steps,
            "temperature": variant.temperature,
            "top_k": variant.top_k,
            "guidance": variant.guidance,
        }
        return {"own": own, **({"greedy": greedy} if own != greedy else {"sampled": sampled})}
    return {"greedy": greedy, "sampled": sampled}


def vq_base_stage(cfg: StudyConfig) -> Stage:
    def run(ctx: StudyContext) -> dict[str, Any]:
        from emomotion.training.vq import VQRun, run_vq

        m = ctx.cfg.mmm
        train = _train_config(ctx.cfg, m.vq_steps, m.vq_batch_size, 2e-4, ctx.cfg.seed, ema=False)
        train = replace(train, lr_schedule=m.vq_lr_schedule)  # type: ignore[arg-type]
        ckpt = run_vq(
            VQRun(
                data=ctx.data / "base",
                out=ctx.runs / "vq_base",
                preset=m.full_vq_preset if ctx.cfg.full_size else m.vq_preset,
                train=train,
                window=m.vq_window,
            ),
            resume=True,
        )
        return {"checkpoint": str(ckpt)}

    return Stage("vq_base", run, "pretrain the motion VQ-VAE on the base corpus", _mmm_base_inputs(cfg))


def mmm_base_stage(cfg: StudyConfig) -> Stage:
    def run(ctx: StudyContext) -> dict[str, Any]:
        from emomotion.training.mmm import MMMRun, run_mmm

        m = ctx.cfg.mmm
        train = _train_config(ctx.cfg, m.steps, m.batch_size, m.lr, ctx.cfg.seed)
        ckpt = run_mmm(
            MMMRun(
                data=ctx.data / "base",
                out=ctx.runs / "mmm_base",
                vq=ctx.result("vq_base")["checkpoint"],
                preset=m.full_preset if ctx.cfg.full_size else m.preset,
                train=train,
                max_frames=ctx.cfg.max_frames,
            ),
            resume=True,
        )
        return {"checkpoint": str(ckpt), "family": "mmm", "decodings": _decodings(ctx.cfg, None)}

    return Stage("mmm_base", run, "pretrain the masked transformer on the base corpus", _mmm_base_inputs(cfg))


def mmm_finetune_stage(cfg: StudyConfig, variant: FinetuneVariant) -> Stage:
    name = f"mmm_{variant.name}"
    if variant.keep_base or variant.weights_of:
        raise ConfigError(f"MMM fine-tune {variant.name!r}: keep_base and weights_of are MDM's only")
    if variant.replay_target != "data":
        raise ConfigError(
            f"MMM fine-tune {variant.name!r}: replay_target 'teacher' is MDM's only (MMM replays data)"
        )

    def run(ctx: StudyContext) -> dict[str, Any]:
        from emomotion.training.finetune import FinetuneConfig
        from emomotion.training.mmm import MMMRun, run_mmm
        from emomotion.training.vq import VQRun, run_vq

        base = ctx.result("mmm_base")["checkpoint"]
        seed = variant.seeds[0]
        vq = None
        if variant.train_vq:  # the original recipe: the VQ fine-tuned too, its codebook re-initialised
            vq_train = _train_config(ctx.cfg, variant.steps, ctx.cfg.mmm.vq_batch_size, 2e-4, seed, ema=False)
            vq = run_vq(
                VQRun(
                    data=ctx.data / "emotion",
                    out=ctx.runs / f"{name}_vq",
                    init_from=base,
                    reinit_codebook=True,
                    train=vq_train,
                ),
                resume=True,
            )
        ckpt = run_mmm(
            MMMRun(
                data=ctx.data / "emotion",
                out=ctx.runs / name,
                init_from=base,
                vq=None if variant.official_load else vq,
                tokenize_with=vq if variant.official_load else None,
                finetune=FinetuneConfig(variant.strategy, lora_rank=variant.lora_rank),  # type: ignore[arg-type]
                replay=ctx.data / "base" if variant.replay_ratio > 0 else None,
                replay_ratio=variant.replay_ratio,
                add_emotion_conditioning=variant.add_emotion_conditioning,
                label_lr_scale=variant.label_lr_scale,
                train=_variant_train(ctx.cfg, variant, seed),
                max_frames=ctx.cfg.max_frames,
            ),
            resume=True,
        )
        return {
            "checkpoint": str(ckpt),
            "family": "mmm",
            "variant": variant.name,
            "vq_checkpoint": str(vq) if vq else None,
            "early_stop": early_stop_record(ckpt.parent),
            "decodings": _decodings(ctx.cfg, variant),
        }

    inputs = {**_mmm_base_inputs(cfg), **_inputs(emotion=cfg.emotion, variant=variant)}
    return Stage(name, run, f"fine-tune MMM on the emotion set ({variant.name})", inputs)


def _vq_base_test(ctx: StudyContext) -> dict[str, Any] | None:
    """The base VQ's reconstruction of the base corpus's test split (the corpus it was trained on):
    global and root-aligned MPJPE, and the evaluator's FID of the reconstructions."""
    if "vq_base" not in ctx.state["stages"]:
        return None
    from emomotion.checkpoint import load_checkpoint
    from emomotion.data.dataset import DatasetConfig, MotionDataset
    from emomotion.evaluation.diagnose import reconstruction_stats

    vq = load_checkpoint(ctx.result("vq_base")["checkpoint"]).build_model(use_ema=False)
    data = MotionDataset(DatasetConfig(ctx.data / "base", split="test", random_crop=False))
    evaluator = load_checkpoint(ctx.result("evaluator")["checkpoint"]).build_model().eval()
    stats = reconstruction_stats(vq, data, max_frames=ctx.cfg.max_frames, evaluator=evaluator)
    return {"clips": stats.clips, "vq_mpjpe_cm": stats.mpjpe * 100,
            "vq_pose_mpjpe_cm": stats.mpjpe_aligned * 100, "recon_fid": stats.fid}  # fmt: skip


def diagnose_stage(cfg: StudyConfig) -> Stage:
    def run(ctx: StudyContext) -> dict[str, Any]:
        from emomotion.evaluation.diagnose import diagnose_checkpoint
        from emomotion.sampling.masked import MaskedDecodingConfig

        reports = {}
        for name, record in ctx.state["stages"].items():
            result = record["result"]
            if result.get("family") != "mmm":
                continue
            for label, d in result["decodings"].items():
                decoding = MaskedDecodingConfig(
                    steps=d["steps"],
                    temperature=d["temperature"],
                    top_k=d["top_k"] or None,
                    guidance=d["guidance"],
                )
                out = ctx.out / "diagnose" / f"{name}_{label}"
                report = diagnose_checkpoint(
                    result["checkpoint"], ctx.data / "emotion", out, decoding=decoding
                )
                reports[f"{name} {label}"] = {
                    "folder": str(out),
                    "static_rate": report.static_rate,
                    "generated_perplexity": report.generated.perplexity,
                    "data_perplexity": report.data.perplexity,
                    "generated_unique_per_clip": report.generated.unique_per_clip,
                    "generated_longest_run": report.generated.longest_run,
                    "js_divergence": report.js_divergence,
                    "vq_mpjpe_cm": report.recon_mpjpe * 100,
                    "vq_pose_mpjpe_cm": report.recon_mpjpe_aligned * 100,
                    "collapsed": report.collapsed,
                }
        return {"reports": reports, "vq_base_test": _vq_base_test(ctx)}

    return Stage(
        "diagnose_mmm", run, "diagnose every MMM model (codebook use, static rate)", None, rerun=True
    )
