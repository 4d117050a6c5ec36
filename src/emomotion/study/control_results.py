"""The emotion-control part of ``RESULTS.md``: the headline sentence (read by scripts, keep its form),
per-emotion accuracy and confusion matrices, the intensity curve with the emotion's cues, samplers at
10/20/50 steps, the ablation, forgetting, and the honest-scoring checks (the guiding classifier's own
accuracy, and the cue profile of generated vs real clips, which involves no network)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from emomotion.data.emotions import EMOTIONS
from emomotion.study.tables import LABELS, fmt, metric, seed_mean

CUES = ("speed", "torso_lean", "arm_expansion", "head_pitch")
TABLE = (
    "emotion_accuracy",
    "judge_accuracy",
    "emotion_f1_weighted",
    "fid",
    "r_precision_top3",
    "mm_dist",
    "jitter",
    "static_rate",
)


def _table(rows: list[dict[str, Any]], metrics: tuple[str, ...] = TABLE) -> list[str]:
    lines = ["| | " + " | ".join(LABELS.get(m, m) for m in metrics) + " |", "|---" * (len(metrics) + 1) + "|"]
    for r in rows:
        lines.append(f"| {r['name']} | " + " | ".join(fmt(*metric(r, m)) for m in metrics) + " |")
    return lines


def _confusion(rows: list[dict[str, Any]]) -> np.ndarray | None:
    mats = [np.asarray(r["confusion"], dtype=float) for r in rows if r.get("confusion") is not None]
    return np.sum(mats, axis=0) if mats else None


def _present(conf: np.ndarray) -> list[int]:
    return [i for i in range(len(EMOTIONS)) if conf[i].sum() > 0]


def headline_sentence(result: dict[str, Any]) -> tuple[str, dict[str, float]]:
    """The one sentence scripts read, and its numbers."""
    rows = result["headline"]
    real = next(r for r in rows if r["real"])
    base = next(r for r in rows if r["name"] == "base")
    recipe = [r for r in rows if r["name"].startswith("recipe ")]
    b, y = metric(base, "emotion_accuracy")[0], seed_mean(recipe, "emotion_accuracy")
    r = metric(real, "emotion_accuracy")[0]
    text = (
        f"Emotion accuracy of generated motion: base {b:.3f}, fine-tuned {y[0]:.3f} ± {y[1]:.3f} "
        f"({y[2]} seeds), real test clips {r:.3f}"
    )
    return text, {"base": b, "tuned": y[0], "ci": y[1], "seeds": y[2], "real": r}


def control_section(result: dict[str, Any], figures: Path) -> list[str]:
    rows = result["headline"]
    real = next(r for r in rows if r["real"])
    base = next(r for r in rows if r["name"] == "base")
    recipe = [r for r in rows if r["name"].startswith("recipe ")]
    sentence, nums = headline_sentence(result)
    lines = ["## Does the generated motion express the emotion asked for?", "", sentence, ""]
    ratio = nums["tuned"] / nums["real"] if nums["real"] > 0 else float("nan")
    lines += [
        f"The recipe reaches {ratio:.2f}x the real clips' accuracy. Every row is scored by the study's "
        "emotion classifier; the classifier that guides sampling is another one (another seed) and never "
        "scores (see *Honest scoring*).",
        "",
    ]
    seeds_row = {"name": f"recipe, mean over {len(recipe)} seeds", "real": False,
                 "metrics": {m: {"mean": seed_mean(recipe, m)[0], "ci95": seed_mean(recipe, m)[1]}
                             for m in TABLE}}  # fmt: skip
    lines += _table([real, base, seeds_row, *recipe]) + [""]
    lines += _floor_lines(result.get("fid_floor"))
    conf_real, conf_gen = _confusion([real]), _confusion(recipe)
    if conf_real is not None and conf_gen is not None:
        present = _present(conf_real)
        lines += [
            "### Accuracy per emotion",
            "",
            "| emotion | clips | real | generated (recipe) |",
            "|---|---|---|---|",
        ]
        for i in present:
            acc_r = conf_real[i, i] / conf_real[i].sum()
            acc_g = conf_gen[i, i] / conf_gen[i].sum() if conf_gen[i].sum() else float("nan")
            lines.append(f"| {EMOTIONS[i]} | {int(conf_real[i].sum())} | {acc_r:.2f} | {fmt(acc_g)} |")
        lines.append("")
        for title, conf in (("real test clips", conf_real), ("generated (recipe, all seeds)", conf_gen)):
            lines += [f"Confusion, {title} (rows: asked, columns: recognised):", ""]
            lines.append("| | " + " | ".join(EMOTIONS[j] for j in present) + " |")
            lines.append("|---" * (len(present) + 1) + "|")
            for i in present:
                lines.append(f"| {EMOTIONS[i]} | " + " | ".join(str(int(conf[i, j])) for j in present) + " |")
            lines.append("")
        _plot_confusions(conf_real, conf_gen, present, figures / "control_confusion.png")
        lines += ["![confusion](figures/control_confusion.png)", ""]
    lines += _intensity(result.get("intensity", []), real, figures)
    lines += _samplers(result.get("samplers", []), nums["tuned"])
    if result.get("ablation"):
        lines += ["### What each lever adds (seed 0 of the recipe's fine-tune unless named)", ""]
        lines += _table([real, *result["ablation"]]) + [""]
    lines += _forgetting(result.get("forgetting", []), bool(result.get("recipe_keeps_base")))
    lines += _honest(result, real, recipe)
    return lines


def _intensity(rows: list[dict[str, Any]], real: dict[str, Any], figures: Path) -> list[str]:
    if not rows:
        return []
    present = [e for e in EMOTIONS if e in real.get("cues", {})]
    lines = ["### Intensity", "", "| intensity | Emo acc ↑ | FID ↓ | Jitter ↓ |", "|---|---|---|---|"]
    for r in rows:
        cells = [fmt(*metric(r, m)) for m in ("emotion_accuracy", "fid", "jitter")]
        lines.append(f"| {r['name'].removeprefix('intensity ')} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "The emotion's cues per intensity (mean over the clips asked for each emotion; real clips last):",
        "",
    ]
    for cue in CUES:
        lines += [
            f"{cue}:",
            "",
            "| intensity | " + " | ".join(present) + " |",
            "|---" * (len(present) + 1) + "|",
        ]
        for r in [*rows, {"name": "real", "cues": real.get("cues", {})}]:
            cells = [fmt(r.get("cues", {}).get(e, {}).get(cue, float("nan"))) for e in present]
            lines.append(f"| {r['name'].removeprefix('intensity ')} | " + " | ".join(cells) + " |")
        lines.append("")
    _plot_intensity(rows, figures / "control_intensity.png")
    return [*lines, "![intensity](figures/control_intensity.png)", ""]


def _samplers(rows: list[dict[str, Any]], headline: float) -> list[str]:
    if not rows:
        return []
    lines = ["### Samplers and step counts (the recipe, seed 0)", "",
             "| sampler, steps | Emo acc ↑ | share of the headline | FID ↓ | Jitter ↓ |", "|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        acc = metric(r, "emotion_accuracy")
        share = acc[0] / headline if headline > 0 else float("nan")
        lines.append(
            f"| {r['name']} | {fmt(*acc)} | {share:.2f} | {fmt(*metric(r, 'fid'))} | {fmt(*metric(r, 'jitter'))} |"
        )
    return [*lines, ""]


def _floor_lines(floor: dict[str, Any] | None) -> list[str]:
    if not floor:
        return []
    if "skipped" in floor:
        return [f"FID floor not measured: {floor['skipped']}.", ""]
    return [
        f"FID floor at this test-set size: {floor['draws']} draws of {floor['clips']} real {floor['split']} clips "
        f"(from {floor['pool']}) against the same test reference score FID {floor['mean']:.2f} ± {floor['std']:.2f} "
        "(mean ± sd): what a generator reproducing real motion exactly would score here. The real-data row "
        "above re-crops the test clips themselves, so its FID is near zero.",
        "",
    ]


def _forgetting(rows: list[dict[str, Any]], kept: bool = False) -> list[str]:
    models = [r for r in rows if not r.get("real")]  # the real row comes first when there is one
    if len(models) < 2:
        return []
    before, after = models[0], models[1]
    fb, fa = metric(before, "fid")[0], metric(after, "fid")[0]
    lines = ["### Forgetting: the base corpus's own test prompts, before and after fine-tuning", ""]
    lines += _table(rows, ("fid", "r_precision_top1", "r_precision_top3", "mm_dist", "jitter"))
    lines += ["", f"FID after / before: {fa / fb:.2f}." if fb > 0 else "", ""]
    if kept:
        lines += [
            "The recipe's fine-tune keeps its base (`keep_base`): a request without an emotion is denoised by "
            "a frozen copy of the base weights, one with an emotion by the fine-tuned weights, so the base "
            "corpus's prompts get the base model by construction. The rows below it show what the "
            "fine-tuned weights alone would do to those prompts.",
            "",
        ]
    for other in models[2:]:
        fo = metric(other, "fid")[0]
        if fb > 0:
            lines += [f"{other['name'].removeprefix('after, ')}: FID after / before {fo / fb:.2f}.", ""]
    return lines


def _honest(result: dict[str, Any], real: dict[str, Any], recipe: list[dict[str, Any]]) -> list[str]:
    lines = ["### Honest scoring", ""]
    guide = [r for r in result.get("guide_real", []) if r["real"]]
    scorer = metric(real, "emotion_accuracy")[0]
    if guide:
        lines.append(
            f"On the real test clips the scoring classifier is right {scorer:.3f} of the time and the guiding "
            f"classifier {metric(guide[0], 'emotion_accuracy')[0]:.3f}: both are trained on the real training split "
            "only, with different seeds; the guide never scores."
        )
        lines.append("")
    judge_real = metric(real, "judge_accuracy")[0]
    if np.isfinite(judge_real):
        judged = seed_mean(recipe, "judge_accuracy")
        lines += [
            f"A second judge shares nothing with the classifiers (no network, no features, no gradients): a "
            f"random forest on the movement cues below, fitted on the real training clips. It recognises "
            f"{judge_real:.3f} of the real test clips and {judged[0]:.3f} ± {judged[1]:.3f} of the recipe's "
            f"({judged[2]} seeds): {judged[0] / judge_real:.2f}x real, against "
            f"{seed_mean(recipe, 'emotion_accuracy')[0] / scorer:.2f}x by the scoring classifier.",
            "",
        ]
    present = [e for e in EMOTIONS if e in real.get("cues", {})]
    gen_cues = _mean_cues([r.get("cues", {}) for r in recipe], present)
    if present and gen_cues:
        lines += ["Cue profile per emotion, real vs generated (no network involved):", "",
                  "| emotion | " + " | ".join(f"{c} real / gen" for c in CUES) + " |", "|---" * (len(CUES) + 1) + "|"]  # fmt: skip
        for e in present:
            cells = [f"{fmt(real['cues'][e][c])} / {fmt(gen_cues[e][c])}" for c in CUES]
            lines.append(f"| {e} | " + " | ".join(cells) + " |")
        corr = []
        for c in CUES:
            a = np.array([real["cues"][e][c] for e in present])
            b = np.array([gen_cues[e][c] for e in present])
            corr.append(float(np.corrcoef(a, b)[0, 1]) if a.std() > 0 and b.std() > 0 else float("nan"))
        lines += ["", "Correlation across emotions of each cue, real vs generated: "
                  + ", ".join(f"{c} {v:+.2f}" for c, v in zip(CUES, corr, strict=True)) + ".", ""]  # fmt: skip
    return lines


def _mean_cues(tables: list[dict[str, Any]], present: list[str]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for e in present:
        vals = [t[e] for t in tables if e in t]
        if vals:
            out[e] = {c: float(np.mean([v[c] for v in vals])) for c in CUES}
    return out


def _plot_confusions(real: np.ndarray, gen: np.ndarray, present: list[int], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.5))
    names = [EMOTIONS[i] for i in present]
    for ax, conf, title in zip(axes, (real, gen), ("real test clips", "generated (recipe)"), strict=True):
        m = conf[np.ix_(present, present)]
        m = m / np.maximum(m.sum(1, keepdims=True), 1)
        ax.imshow(m, vmin=0, vmax=1, cmap="Blues")
        ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
        ax.set_yticks(range(len(names)), names)
        ax.set_title(title)
        for i in range(len(names)):
            for j in range(len(names)):
                ax.text(j, i, f"{m[i, j]:.2f}", ha="center", va="center", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _plot_intensity(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    x = [float(r["name"].removeprefix("intensity ")) for r in rows]
    fig, axes = plt.subplots(1, 1 + len(CUES), figsize=(3.2 * (1 + len(CUES)), 3))
    acc = [metric(r, "emotion_accuracy") for r in rows]
    axes[0].errorbar(x, [a[0] for a in acc], yerr=[a[1] for a in acc], marker="o")
    axes[0].set_title("emotion accuracy")
    for ax, cue in zip(axes[1:], CUES, strict=True):
        for e in sorted({e for r in rows for e in r.get("cues", {}) if e in EMOTIONS}):
            ax.plot(x, [r["cues"].get(e, {}).get(cue, float("nan")) for r in rows], marker=".", label=e)
        ax.set_title(cue)
    axes[-1].legend(fontsize=6)
    for ax in axes:
        ax.set_xlabel("intensity")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
