"""The study's write-up: ``RESULTS.md`` with what was trained for how long on what, the headline
(emotion recognition of generated motion, base vs fine-tuned, with confidence intervals over
seeds), the cost in text fidelity, samplers and step counts, the MMM collapse and its remedies, and
the figures, copied into the study folder (and into ``publish``, e.g. the repository's study/)."""

from __future__ import annotations

import logging
import re
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from emomotion.io.atomic import save_text
from emomotion.study.config import StudyConfig
from emomotion.study.mmm_results import mmm_section
from emomotion.study.runner import Stage, StudyContext
from emomotion.study.tables import LABELS, fmt, metric, seed_mean

log = logging.getLogger(__name__)

HEADLINE = (
    "emotion_accuracy",
    "emotion_f1_weighted",
    "fid",
    "r_precision_top3",
    "mm_dist",
    "diversity",
    "static_rate",
)


def _table(rows: list[dict[str, Any]], metrics: tuple[str, ...]) -> list[str]:
    lines = ["| model | " + " | ".join(LABELS.get(m, m) for m in metrics) + " |"]
    lines.append("|---" * (len(metrics) + 1) + "|")
    for r in rows:
        lines.append(f"| {r['name']} | " + " | ".join(fmt(*metric(r, m)) for m in metrics) + " |")
    return lines


def _headline(rows: dict[str, dict[str, Any]]) -> list[str]:
    """Base vs fine-tuned MDM (as-trained sampler), fine-tuned over its seeds."""
    lines: list[str] = []
    for n in sorted({int(m.group(1)) for k in rows if (m := re.match(r"mdm_base_(\d+) ddpm \1$", k))}):
        base = rows.get(f"mdm_base_{n} ddpm {n}")
        tuned = [v for k, v in rows.items() if re.fullmatch(rf"mdm_full_{n}_s\d+ ddpm {n}", k)]
        if base is None or not tuned:
            continue
        lines += [
            f"**MDM, {n} diffusion steps, sampled with its {n} DDPM steps** (fine-tuned: mean ± 95% CI over "
            f"{len(tuned)} fine-tuning seed(s); base and real: over evaluation repetitions)",
            "",
            "| | " + " | ".join(LABELS[m] for m in HEADLINE) + " |",
            "|---" * (len(HEADLINE) + 1) + "|",
        ]
        real = rows.get("real data")
        if real:
            lines.append("| real data | " + " | ".join(fmt(*metric(real, m)) for m in HEADLINE) + " |")
        lines.append("| base | " + " | ".join(fmt(*metric(base, m)) for m in HEADLINE) + " |")
        cells = []
        for m in HEADLINE:
            mean, ci, _ = seed_mean(tuned, m)
            cells.append(fmt(mean, ci))
        lines.append("| fine-tuned (full) | " + " | ".join(cells) + " |")
        b_acc = metric(base, "emotion_accuracy")[0]
        t_acc, t_ci, k = seed_mean(tuned, "emotion_accuracy")
        r_acc = metric(real, "emotion_accuracy")[0] if real else float("nan")
        lines += [
            "",
            f"Emotion accuracy of generated motion: base {b_acc:.3f}, fine-tuned {t_acc:.3f} ± {t_ci:.3f} "
            f"({k} seeds), real test clips {r_acc:.3f}; change {t_acc - b_acc:+.3f}. "
            f"FID: base {metric(base, 'fid')[0]:.2f}, fine-tuned {seed_mean(tuned, 'fid')[0]:.2f}. "
            f"R@3: base {metric(base, 'r_precision_top3')[0]:.3f}, fine-tuned "
            f"{seed_mean(tuned, 'r_precision_top3')[0]:.3f}.",
            "",
        ]
    return lines


KEY_CONFUSIONS = ("real_data", "mdm_base_50_ddpm_50", "mdm_full_50_s0_ddpm_50", "mdm_replay_50_s0_ddpm_50",
                  "mmm_study_recipe_own", "mmm_fixed_own")  # fmt: skip


def _copy_figures(ctx: StudyContext, dest: Path) -> tuple[list[str], list[str]]:
    """(figures shown, figures only linked): the summary plots, the prompts grid, the key confusion
    matrices and the MMM token histograms are shown; the rest are linked."""
    dest.mkdir(parents=True, exist_ok=True)
    shown, linked = [], []
    report = ctx.out / "eval" / "emotion"
    sources = [p for p in sorted(report.glob("*.png"))] + sorted((ctx.out / "figures").glob("*.gif"))
    for path in sources:
        if path.parent.resolve() != dest.resolve():
            shutil.copy(path, dest / path.name)
        key = path.stem.removeprefix("confusion_")
        important = not path.name.startswith("confusion_") or key in KEY_CONFUSIONS
        (shown if important else linked).append(path.name)
    for folder in sorted((ctx.out / "diagnose").glob("*")):
        for path in sorted(folder.glob("*.png")):
            target = f"diagnose_{folder.name}_{path.name}"
            shutil.copy(path, dest / target)
            (shown if "token_histogram" in path.name else linked).append(target)
    return shown, linked


def _training_time(result: dict[str, Any]) -> str:
    """Steps and the training loop's own clock from the run's metrics.csv (survives reruns)."""
    import csv

    ckpt = result.get("checkpoint")
    metrics = Path(ckpt).parent / "metrics.csv" if ckpt else None
    if metrics is None or not metrics.exists():
        return ""
    with open(metrics, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        return ""
    # the clock restarts when a run resumes: add up each stretch's last reading
    seconds = [float(r["seconds"]) for r in rows]
    ends = [a for a, b in zip(seconds, [*seconds[1:], -1.0], strict=True) if b < a]
    text = f"{rows[-1]['step']} steps, {sum(ends) / 60:.1f} min"
    if len(ends) > 1:
        text += f" in {len(ends)} sittings (resumed)"
    stop = result.get("early_stop")
    if stop:
        text += f"; stopped early, best validation at step {stop['best_step']}"
    return text


def write_results(ctx: StudyContext, dest: Path) -> Path:
    cfg = ctx.cfg
    stages = ctx.state["stages"]
    eval_rows = stages.get("eval", {}).get("result", {}).get("rows", [])
    rows = {r["name"]: r for r in eval_rows}
    lines = [
        f"# Study `{cfg.name}`: results",
        "",
        "Written by `emomotion study run` from the numbers it measured; every figure below is in `figures/`.",
        "",
        "## What was trained, for how long, on what",
        "",
        f"Machine: {ctx.state.get('machine', 'unknown')}. bf16 autocast: {cfg.bf16}. Step scale: {cfg.scale:g}"
        f"{', official model sizes' if cfg.full_size else ', small CPU presets'}.",
        "",
        "Stage wall times are those of the stage's last run (a stage rerun after it had finished shows "
        "the rerun); training is the training loop's own clock from the run's `metrics.csv`.",
        "",
        "| stage | stage wall time | training |",
        "|---|---|---|",
    ]
    order = {name: i for i, name in enumerate(ctx.order)}
    for name, record in sorted(stages.items(), key=lambda kv: order.get(kv[0], len(order))):
        lines.append(f"| {name} | {record['seconds'] / 60:.1f} min | {_training_time(record['result'])} |")
    total = sum(record["seconds"] for record in stages.values())
    lines += ["", f"Sum of the stage wall times: {total / 60:.1f} min."]
    lines.append("")
    for key in ("data_base", "data_emotion"):
        if key in stages:
            r = stages[key]["result"]
            lines.append(
                f"- `{key[5:]}` dataset: {r['clips']} clips (+{r['mirrored']} mirrored), {r['hours']:.2f} h, "
                f"splits {r['splits']}, {r['skipped']} inputs skipped (listed in its manifest)."
            )
    control = stages.get("control_eval", {}).get("result")
    if control:  # the headline is the emotion-control recipe's
        from emomotion.study.control_results import control_section

        lines += ["", *control_section(control, dest / "figures")]
        lines += ["## Text-only fine-tuning (the original study's recipe)", ""]
        lines += [x for x in _headline(rows) if not x.startswith("Emotion accuracy of generated motion:")]
    else:
        lines += ["", "## Does fine-tuning make generated motion express the emotion?", ""]
        lines += _headline(rows) or ["(the evaluation has not run yet)", ""]
    mdm_rows = [r for r in eval_rows if r["name"].startswith("mdm") or r["real"]]
    if mdm_rows:
        lines += ["## MDM: every model, sampler and step count", "", "Rows sampling more than "
                  f"{cfg.eval.slow_steps} steps have one repetition over a fixed 32 clips and no MultiModality.", ""]  # fmt: skip
        lines += _table(mdm_rows, (*HEADLINE, "multimodality", "jitter", "foot_skating_ratio"))
        lines.append("")
    mmm_rows = [r for r in eval_rows if r["name"].startswith("mmm") or r["real"]]
    if len(mmm_rows) > 1:
        table = _table(mmm_rows, (*HEADLINE, "jitter"))
        lines += mmm_section(stages, rows, cfg.mmm.headline, table, cfg.mmm.headline_guidance)
    shown, linked = _copy_figures(ctx, dest / "figures")
    if shown:
        lines += ["## Figures", ""] + [f"![{f}](figures/{f})" for f in shown]
    if linked:
        lines += ["", "More: " + ", ".join(f"[{f}](figures/{f})" for f in linked)]
    notes = sorted({n for r in eval_rows for n in r.get("notes", [])})
    if notes:
        lines += ["", "## Notes from the evaluation", ""] + [f"- {n}" for n in notes]
    discussion = dest / "DISCUSSION.md"
    if discussion.exists():
        lines += ["", discussion.read_text(encoding="utf-8").rstrip()]
    return save_text(dest / "RESULTS.md", "\n".join(lines) + "\n")


def results_stage(cfg: StudyConfig) -> Stage:
    def run(ctx: StudyContext) -> dict[str, Any]:
        written = [str(write_results(ctx, ctx.out))]
        if ctx.cfg.publish:
            written.append(str(write_results(ctx, Path(ctx.cfg.publish))))
        return {"results": written}

    return Stage("results", run, "write RESULTS.md and its figures", None, rerun=True)


def _intensity_row(ctx: StudyContext, frames: int) -> list[tuple[str, np.ndarray]]:
    """The emotion-control recipe's model (seed 0) on the first prompt at intensity 0, 1 and 2."""
    from emomotion.study.control_stages import recipe_generator

    c = ctx.cfg.control
    if not (c.enabled and ctx.cfg.prompts):
        return []
    from emomotion.features import recover_joints

    generator, settings, label = recipe_generator(ctx)
    prompt = ctx.cfg.prompts[0]
    row = []
    for intensity in (0.0, 1.0, 2.0):
        s = replace(settings, intensity=intensity)
        (feats,) = generator.sample([prompt], [frames], ctx.cfg.seed, s, emotions=[label(prompt)])
        row.append((f"{c.headline}: {prompt}, intensity {intensity:g}", recover_joints(feats)))
    return row


def _grid_models(ctx: StudyContext) -> list[tuple[str, dict[str, Any]]]:
    """The models shown side by side: each base and the first seed of each fine-tune."""
    picked = []
    for name, record in ctx.state["stages"].items():
        result = record["result"]
        if result.get("family") in ("mdm", "mmm") and result.get("seed", 0) == 0:
            picked.append((name, result))
    return picked


def prompts_stage(cfg: StudyConfig) -> Stage:
    """Every prompt of the config generated by every model: one gif, prompts down, models across."""

    def run(ctx: StudyContext) -> dict[str, Any]:
        from emomotion.evaluation.generators import CheckpointGenerator
        from emomotion.features import recover_joints
        from emomotion.generate import SamplingSettings
        from emomotion.render import render_grid
        from emomotion.skeleton import FPS

        models = _grid_models(ctx)
        frames = round(ctx.cfg.prompt_seconds * FPS)
        columns: list[list[np.ndarray]] = []
        titles = []
        for name, result in models:
            if result["family"] == "mdm":
                settings = SamplingSettings(sampler="ddim", steps=min(50, int(result["diffusion_steps"])))
            else:
                d = next(iter(result["decodings"].values()))
                settings = SamplingSettings(
                    steps=d["steps"], temperature=d["temperature"], guidance=d["guidance"]
                )
            generator = CheckpointGenerator(result["checkpoint"], settings)
            feats = generator(list(ctx.cfg.prompts), [frames] * len(ctx.cfg.prompts), ctx.cfg.seed)
            columns.append([recover_joints(f) for f in feats])
            titles.append(name)
        # every other frame at 10 fps and small panels: a gif small enough to commit
        motions = [columns[c][p][::2] for p in range(len(ctx.cfg.prompts)) for c in range(len(columns))]
        labels = [
            f"{titles[c]}: {ctx.cfg.prompts[p]}"
            for p in range(len(ctx.cfg.prompts))
            for c in range(len(columns))
        ]
        row = _intensity_row(ctx, frames)  # the emotion lever: one prompt at rising intensity
        for name, joints in row:
            motions.append(joints[::2])
            labels.append(name)
        intensities = [0.0, 1.0, 2.0] if row else []
        path = render_grid(
            motions,
            ctx.out / "figures" / "prompts_grid.gif",
            titles=labels,
            ncols=len(columns),
            suptitle="prompts (rows) x models (columns)",
            progress=True,
            fps=FPS / 2,
            size=150,
        )
        return {
            "grid": str(path),
            "models": titles,
            "prompts": list(ctx.cfg.prompts),
            "intensity_row": intensities,
        }

    return Stage(
        "prompts", run, "generate the config's prompts with every model (gif grid)", None, rerun=True
    )
