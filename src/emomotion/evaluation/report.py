"""The side-by-side report of an evaluation: one table row per model (real data first), plots and a
rendered grid of the same prompts across models.

Writes ``report.md``, ``metrics.json``, ``metrics.csv``, ``metrics.png`` (bars with 95% CIs),
``confusion_<name>.png`` per model with an emotion classifier, ``cues.png`` (per-emotion cue
bars) and ``grid.gif`` (rows = models, columns = prompts) when results carry sample motions.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from emomotion.data.emotions import EMOTIONS
from emomotion.evaluation.cues import CUE_NAMES, CUE_UNITS
from emomotion.evaluation.evaluate import EvalResult, metric_names
from emomotion.io.atomic import atomic_path, save_text

log = logging.getLogger(__name__)

LOWER_IS_BETTER = {
    "fid",
    "mm_dist",
    "foot_skating",
    "foot_skating_ratio",
    "jitter",
    "penetration",
    "static_rate",
}
LABELS = {
    "r_precision_top1": "R@1 ↑",
    "r_precision_top2": "R@2 ↑",
    "r_precision_top3": "R@3 ↑",
    "fid": "FID ↓",
    "mm_dist": "MM-Dist ↓",
    "diversity": "Diversity →",
    "multimodality": "MModality ↑",
    "emotion_accuracy": "Emo acc ↑",
    "judge_accuracy": "Cue judge ↑",
    "emotion_f1_macro": "Emo F1 macro ↑",
    "emotion_f1_weighted": "Emo F1 w ↑",
    "foot_skating": "Skate m/s ↓",
    "foot_skating_ratio": "Skate ratio ↓",
    "jitter": "Jitter m/s³ ↓",
    "penetration": "Penetr. m ↓",
    "static_rate": "Static ↓",
}


def _slug(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in name).strip("_") or "model"


def _cell(result: EvalResult, metric: str) -> str:
    if metric not in result.metrics:
        return "–"
    mean, ci = result.metrics[metric]
    return f"{mean:.3f} ± {ci:.3f}"


def ranked(results: Sequence[EvalResult]) -> list[EvalResult]:
    """Real rows first, then models by FID (lowest first), then by R@3 (highest first)."""

    def key(r: EvalResult) -> tuple[int, float, float]:
        fid = r.value("fid")
        r3 = r.value("r_precision_top3")
        return (
            0 if r.real else 1,
            fid if math.isfinite(fid) else math.inf,
            -(r3 if math.isfinite(r3) else 0),
        )

    return sorted(results, key=key)


def _markdown(results: list[EvalResult], names: list[str], files: list[str]) -> str:
    lines = ["# Evaluation report", ""]
    lines.append("Mean ± 95% confidence half width over repetitions. ↑ higher is better, ↓ lower is better, "
                 "→ closer to the real data is better. Models are ranked by FID.")  # fmt: skip
    lines += ["", "| rank | model | " + " | ".join(LABELS.get(m, m) for m in names) + " |"]
    lines.append("|---|---|" + "---|" * len(names))
    rank = 0
    for r in results:
        rank_text = "real" if r.real else str(rank := rank + 1)
        lines.append(f"| {rank_text} | {r.name} | " + " | ".join(_cell(r, m) for m in names) + " |")
    notes = sorted({f"{r.name}: {n}" for r in results for n in r.notes})
    if notes:
        lines += ["", "## Notes", "", *[f"- {n}" for n in notes]]
    cue_rows = [r for r in results if "all" in r.cues]
    if cue_rows:
        lines += ["", "## Movement cues (all clips)", ""]
        lines.append("| model | " + " | ".join(f"{c} ({CUE_UNITS[c]})" for c in CUE_NAMES) + " |")
        lines.append("|---|" + "---|" * len(CUE_NAMES))
        for r in cue_rows:
            lines.append(f"| {r.name} | " + " | ".join(f"{r.cues['all'][c]:.3f}" for c in CUE_NAMES) + " |")
    lines += ["", "## Files", "", *[f"- [{f}]({f})" for f in files], ""]
    return "\n".join(lines)


def _save_figure(fig: object, path: Path) -> None:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")  # type: ignore[attr-defined]
    plt.close(fig)  # type: ignore[arg-type]
    with atomic_path(path) as tmp:
        tmp.write_bytes(buf.getvalue())


def _plot_metrics(results: list[EvalResult], names: list[str], path: Path) -> None:
    import matplotlib.pyplot as plt

    cols = min(4, len(names))
    rows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows), squeeze=False)
    labels = [r.name for r in results]
    colors = ["#888888" if r.real else f"C{i % 10}" for i, r in enumerate(results)]
    for ax, metric in zip(axes.flat, names, strict=False):
        means = [r.value(metric) for r in results]
        cis = [r.metrics[metric][1] if metric in r.metrics else 0.0 for r in results]
        ax.bar(range(len(results)), np.nan_to_num(means), yerr=cis, color=colors, capsize=3)
        ax.set_title(LABELS.get(metric, metric), fontsize=9)
        ax.set_xticks(range(len(results)), labels, rotation=30, ha="right", fontsize=7)
        ax.tick_params(axis="y", labelsize=7)
    for ax in list(axes.flat)[len(names) :]:
        ax.axis("off")
    fig.tight_layout()
    _save_figure(fig, path)


def _plot_confusion(result: EvalResult, path: Path) -> None:
    import matplotlib.pyplot as plt

    counts = np.asarray(result.confusion, dtype=np.float64)
    rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1.0)
    fig, ax = plt.subplots(figsize=(5.2, 4.6))
    ax.imshow(rates, vmin=0.0, vmax=1.0, cmap="Blues")
    ax.set_xticks(range(len(EMOTIONS)), EMOTIONS, rotation=45, ha="right", fontsize=7)
    ax.set_yticks(range(len(EMOTIONS)), EMOTIONS, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("intended")
    for i in range(rates.shape[0]):
        for j in range(rates.shape[1]):
            if counts[i, j]:
                ax.text(j, i, f"{rates[i, j]:.2f}", ha="center", va="center", fontsize=6,
                        color="white" if rates[i, j] > 0.5 else "black")  # fmt: skip
    ax.set_title(f"{result.name}: emotion confusion (row-normalised)", fontsize=9)
    fig.tight_layout()
    _save_figure(fig, path)


def _plot_cues(results: list[EvalResult], path: Path) -> None:
    import matplotlib.pyplot as plt

    groups = [e for e in EMOTIONS if any(e in r.cues for r in results)] or ["all"]
    fig, axes = plt.subplots(2, 4, figsize=(13, 5.4), squeeze=False)
    width = 0.8 / max(len(results), 1)
    for ax, cue in zip(axes.flat, CUE_NAMES, strict=False):
        for k, r in enumerate(results):
            values = [r.cues.get(g, {}).get(cue, np.nan) for g in groups]
            ax.bar(np.arange(len(groups)) + k * width, np.nan_to_num(values), width, label=r.name,
                   color="#888888" if r.real else f"C{k % 10}")  # fmt: skip
        ax.set_title(f"{cue} ({CUE_UNITS[cue]})", fontsize=9)
        ax.set_xticks(np.arange(len(groups)) + 0.4 - width / 2, groups, rotation=45, ha="right", fontsize=7)
        ax.tick_params(axis="y", labelsize=7)
    axes.flat[0].legend(fontsize=6)
    fig.tight_layout()
    _save_figure(fig, path)


def _render_grid(results: list[EvalResult], path: Path, max_frames: int, size: int) -> bool:
    from emomotion.render import render_grid

    rows = [r for r in results if r.samples]
    if not rows:
        return False
    prompts = min(len(r.samples) for r in rows)
    motions, titles = [], []
    for r in rows:
        for i in range(prompts):
            motions.append(r.samples[i][:max_frames])
            titles.append(f"{r.name}: {r.sample_texts[i]}" if i < len(r.sample_texts) else r.name)
    render_grid(motions, path, titles=titles, ncols=prompts, size=size)
    return True


def write_report(
    results: Sequence[EvalResult],
    out_dir: str | Path,
    *,
    grid: bool = True,
    grid_frames: int = 120,
    grid_size: int = 240,
) -> Path:
    """Write the report files for ``results`` (the real row included) into ``out_dir``; returns report.md."""
    if not results:
        raise ValueError("write_report needs at least one result")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ordered = ranked(results)
    names = metric_names(ordered)
    files = ["metrics.json", "metrics.csv", "metrics.png"]
    save_text(out / "metrics.json", json.dumps([r.to_dict() for r in ordered], indent=1) + "\n")
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["model", "real", *[c for m in names for c in (m, f"{m}_ci95")]])
    for r in ordered:
        row: list[object] = [r.name, int(r.real)]
        for m in names:
            row += list(r.metrics[m]) if m in r.metrics else ["", ""]
        writer.writerow(row)
    save_text(out / "metrics.csv", buf.getvalue())
    _plot_metrics(ordered, names, out / "metrics.png")
    for r in ordered:
        if r.confusion is not None:
            name = f"confusion_{_slug(r.name)}.png"
            _plot_confusion(r, out / name)
            files.append(name)
    if any(r.cues for r in ordered):
        _plot_cues(ordered, out / "cues.png")
        files.append("cues.png")
    if grid and _render_grid(ordered, out / "grid.gif", grid_frames, grid_size):
        files.append("grid.gif")
    path = save_text(out / "report.md", _markdown(ordered, names, files))
    log.info("report written to %s", path)
    return path
