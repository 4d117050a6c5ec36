"""The control section's forgetting ratio compares the fine-tuned model with the base, never with the
real row that comes first; the FID floor line states its draws."""

from __future__ import annotations

from emomotion.study.control_results import _floor_lines, _forgetting


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


def test_floor_line_states_the_draws_and_the_value():
    floor = {"mean": 5.646, "std": 1.78, "clips": 40, "pool": 94, "draws": 20, "split": "train"}
    (line, blank) = _floor_lines(floor)
    assert line.startswith("FID floor at this test-set size: 20 draws of 40 real train clips (from 94)")
    assert "FID 5.65 ± 1.78" in line and blank == ""
    assert _floor_lines(None) == [] and _floor_lines({}) == []
    skipped = _floor_lines(
        {"skipped": "data/emotion: the train split has 39 clips, fewer than the 44 to draw"}
    )
    assert skipped == [
        "FID floor not measured: data/emotion: the train split has 39 clips, fewer than the 44 to draw.",
        "",
    ]


def test_forgetting_of_a_recipe_that_keeps_its_base_shows_the_fine_tuned_weights_too():
    rows = [_row("before (base)", 4.0), _row("after (recipe model)", 4.0),
            _row("after, full (the same fine-tune, base not kept)", 40.0), _row("after, label (the label fine-tune)", 6.0)]  # fmt: skip
    lines = _forgetting(rows, kept=True)
    assert "FID after / before: 1.00." in lines
    assert any("by construction" in line for line in lines)
    assert "full (the same fine-tune, base not kept): FID after / before 10.00." in lines
    assert "label (the label fine-tune): FID after / before 1.50." in lines
    assert not any("by construction" in line for line in _forgetting(rows[:2]))


def test_the_training_time_of_a_resumed_run_adds_up_its_sittings(tmp_path):
    from emomotion.study.results import _training_time

    rows = ["step,loss,seconds", "10,1.0,5.0", "20,1.0,60.0", "30,1.0,4.0", "40,1.0,120.0"]
    (tmp_path / "metrics.csv").write_text("\n".join(rows) + "\n")
    result = {"checkpoint": str(tmp_path / "step00000040.safetensors"), "early_stop": {"best_step": 30}}
    assert (
        _training_time(result)
        == "40 steps, 3.0 min in 2 sittings (resumed); stopped early, best validation at step 30"
    )
    (tmp_path / "metrics.csv").write_text("\n".join(rows[:3]) + "\n")
    assert _training_time({"checkpoint": result["checkpoint"]}) == "20 steps, 1.0 min"
