"""The control section's forgetting ratio compares the fine-tuned model with the base, never with the
real row that comes first."""

from __future__ import annotations

from emomotion.study.control_results import _forgetting


def _row(name: str, fid: float, real: bool = False) -> dict:
    metrics = {k: {"mean": v, "ci95": 0.0} for k, v in
               {"fid": fid, "r_precision_top1": 0.4, "r_precision_top3": 0.8, "mm_dist": 4.0, "jitter": 100.0}.items()}  # fmt: skip
    return {"name": name, "real": real, "metrics": metrics, "reps": []}


def test_forgetting_ratio_is_after_over_before():
    lines = _forgetting(
        [_row("real data", 0.012, real=True), _row("before (base)", 3.7), _row("after", 12.2)]
    )
    assert "FID after / before: 3.30." in lines
    assert _forgetting([_row("before (base)", 2.0), _row("after", 3.0)])[-2] == "FID after / before: 1.50."
    assert _forgetting([_row("real data", 0.01, real=True), _row("before (base)", 2.0)]) == []
