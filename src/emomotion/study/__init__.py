"""The study: the whole method (datasets, pretraining, fine-tuning, evaluation, report) as one
resumable command."""

from __future__ import annotations

from pathlib import Path

from emomotion.study.config import StudyConfig, load_study_config, study_from_dict
from emomotion.study.plan import study_stages
from emomotion.study.runner import StudyContext, run_stages


def run_study(cfg: StudyConfig, out: str | Path, *, only: tuple[str, ...] = ()) -> StudyContext:
    """Run every stage of ``cfg`` not yet done in ``out`` (or only the named ones)."""
    return run_stages(cfg, Path(out), study_stages(cfg), only=only)


__all__ = ["StudyConfig", "StudyContext", "load_study_config", "run_study", "study_from_dict", "study_stages"]
