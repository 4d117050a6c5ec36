"""`make demo` runs end to end on the embedded synthetic data."""

from __future__ import annotations

from emomotion.demo import DEMO_CLIPS, run_demo


def test_demo_writes_report_grid_and_round_trips(tmp_path):
    report = run_demo(tmp_path / "demo", seconds=2.0, train_steps=20)
    text = report.read_text()
    assert (tmp_path / "demo" / "grid.gif").stat().st_size > 0
    assert (tmp_path / "demo" / "generated.gif").stat().st_size > 0
    assert (tmp_path / "demo" / "mdm_tiny" / "step00000020.safetensors").exists()
    assert len(list((tmp_path / "demo" / "bvh").glob("*.bvh"))) == len(DEMO_CLIPS)
    rows = [line for line in text.splitlines() if line.startswith("| walk") or line.startswith("| knock")]
    assert len(rows) == len(DEMO_CLIPS)
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert float(cells[2]) < 1e-4 and float(cells[3]) < 1e-3
