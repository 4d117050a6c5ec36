"""The MMM part of ``RESULTS.md``: the one-line MMM headline (read by scripts, keep its form), every MMM
row beside the real clips, the token diagnostics and the base VQ's reconstruction of the base corpus."""

from __future__ import annotations

import re
from typing import Any

from emomotion.study.tables import fmt, metric, seed_mean

DIAGNOSTICS = ("static_rate", "generated_perplexity", "data_perplexity", "generated_unique_per_clip",
               "generated_longest_run", "js_divergence", "vq_mpjpe_cm", "vq_pose_mpjpe_cm", "collapsed")  # fmt: skip


def _mdm_headline_fid(stages: dict[str, Any], rows: dict[str, dict[str, Any]]) -> float:
    """The MDM headline model's FID: the emotion-control recipe over its seeds, or else the text-only
    fine-tune (as trained) over its seeds."""
    control = stages.get("control_eval", {}).get("result")
    if control:
        recipe = [r for r in control["headline"] if r["name"].startswith("recipe ")]
        if recipe:
            return seed_mean(recipe, "fid")[0]
    tuned = [v for k, v in rows.items() if re.fullmatch(r"mdm_full_(\d+)_s\d+ ddpm \1", k)]
    return seed_mean(tuned, "fid")[0]


def mmm_guided_row(name: str, scale: float) -> str:
    """The evaluation row of MMM ``name``'s own decoding with classifier guidance ``scale``."""
    return f"{name} own, cls guidance {scale:g}"


def headline_row(variant: str, guidance: float) -> str:
    """The evaluation row of the MMM headline: ``variant``'s own decoding, classifier-guided when
    ``guidance`` > 0."""
    return mmm_guided_row(f"mmm_{variant}", guidance) if guidance else f"mmm_{variant} own"


def mmm_headline_sentence(
    stages: dict[str, Any], rows: dict[str, dict[str, Any]], variant: str, guidance: float = 0.0
) -> tuple[str, dict[str, float]] | None:
    """``MMM headline: FID x (MDM y), emotion accuracy a (real r), static rate s (real t), VQ MPJPE p cm
    root-aligned, g cm global`` for the fine-tune ``variant`` with its own decoding (classifier-guided
    at ``guidance`` > 0); ``None`` until the evaluation and the VQ diagnosis have run."""
    mmm = rows.get(headline_row(variant, guidance))
    real = rows.get("real data")
    vq = stages.get("diagnose_mmm", {}).get("result", {}).get("vq_base_test")
    if not variant or mmm is None or real is None or not vq:
        return None
    control = stages.get("control_eval", {}).get("result")
    if control:  # the same real row as the MDM headline
        real = next((r for r in control["headline"] if r["real"]), real)
    nums = {
        "fid": metric(mmm, "fid")[0],
        "mdm_fid": _mdm_headline_fid(stages, rows),
        "accuracy": metric(mmm, "emotion_accuracy")[0],
        "real_accuracy": metric(real, "emotion_accuracy")[0],
        "static": metric(mmm, "static_rate")[0],
        "real_static": metric(real, "static_rate")[0],
        "pose_cm": float(vq["vq_pose_mpjpe_cm"]),
        "global_cm": float(vq["vq_mpjpe_cm"]),
    }
    text = (
        f"MMM headline: FID {nums['fid']:.2f} (MDM {nums['mdm_fid']:.2f}), emotion accuracy "
        f"{nums['accuracy']:.3f} (real {nums['real_accuracy']:.3f}), static rate {nums['static']:.3f} "
        f"(real {nums['real_static']:.3f}), VQ MPJPE {nums['pose_cm']:.1f} cm root-aligned, "
        f"{nums['global_cm']:.1f} cm global"
    )
    return text, nums


def mmm_section(
    stages: dict[str, Any],
    rows: dict[str, dict[str, Any]],
    variant: str,
    table: list[str],
    guidance: float = 0.0,
) -> list[str]:
    """The MMM section: the headline line and what it means against the goals, ``table`` (every MMM row
    beside the real clips), the token diagnostics and the base VQ on the base corpus's test split."""
    lines = ["## MMM: the static-motion failure and its remedies", ""]
    headline = mmm_headline_sentence(stages, rows, variant, guidance)
    if headline:
        text, n = headline
        how = (
            f", classifier-guided at {guidance:g} by the guide classifier (which never scores)"
            if guidance
            else ""
        )
        lines += [
            text,
            "",
            f"The headline MMM is the `{variant}` fine-tune with its own decoding{how}. Against the goals: FID "
            f"{n['fid'] / n['mdm_fid']:.2f}x MDM's (goal <= 1.25x), emotion accuracy "
            f"{n['accuracy'] / n['real_accuracy']:.2f}x real (goal >= 0.9x), static rate "
            f"{'at or below' if n['static'] <= n['real_static'] else 'above'} real, VQ "
            f"{n['pose_cm']:.1f} cm root-aligned (goal <= 5) and {n['global_cm']:.1f} cm global (goal <= 15).",
            "",
        ]
    lines += [*table, ""]
    diagnosis = stages.get("diagnose_mmm", {}).get("result", {})
    diag = diagnosis.get("reports", {})
    if diag:
        present = [k for k in DIAGNOSTICS if any(k in d for d in diag.values())]
        lines += [
            "Token diagnostics (`emomotion diagnose mmm`):",
            "",
            "| model, decoding | " + " | ".join(present) + " |",
        ]
        lines.append("|---" * (len(present) + 1) + "|")
        for name, d in diag.items():
            cells = [
                ("yes" if d[k] else "no") if k == "collapsed" else fmt(d.get(k, float("nan")))
                for k in present
            ]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines += [
            "",
            "(VQ errors in this table are on the emotion set's test split, which the base VQ never saw.)",
            "",
        ]
    vq = diagnosis.get("vq_base_test")
    if vq:
        fid = "" if vq.get("recon_fid") is None else f", reconstruction FID {vq['recon_fid']:.2f}"
        lines += [
            f"Base VQ on the base corpus's test split ({vq['clips']} clips): MPJPE {vq['vq_pose_mpjpe_cm']:.1f} cm "
            f"root-aligned, {vq['vq_mpjpe_cm']:.1f} cm global{fid}.",
            "",
        ]
    return lines
