"""Running a study: an ordered list of named stages, each recorded in ``study_state.json`` when done.

A stage that finished is skipped on the next run; a training stage that was interrupted resumes
from its newest checkpoint (the shared loop's exact resume), so ``emomotion study run`` can be
stopped and started again at any point. Every stage's wall time is recorded for the report.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from emomotion.errors import ConfigError
from emomotion.io.atomic import save_text
from emomotion.study.config import StudyConfig

log = logging.getLogger(__name__)
STATE_FILE = "study_state.json"


@dataclass
class StudyContext:
    cfg: StudyConfig
    out: Path
    state: dict[str, Any] = field(default_factory=dict)
    order: tuple[str, ...] = ()  # the names of the planned stages, in order

    @property
    def data(self) -> Path:
        return self.out / "data"

    @property
    def runs(self) -> Path:
        return self.out / "runs"

    def result(self, stage: str) -> dict[str, Any]:
        done = self.state.get("stages", {}).get(stage)
        if done is None:
            raise ConfigError(f"stage {stage!r} has not run yet")
        return done["result"]


StageFn = Callable[[StudyContext], dict[str, Any]]


@dataclass(frozen=True)
class Stage:
    """A named step; ``inputs`` is the part of the config it depends on (its fingerprint), so editing
    another part of the config (say, the evaluation) never invalidates it."""

    name: str
    fn: StageFn
    description: str = ""
    inputs: Any = None
    rerun: bool = False  # a changed fingerprint reruns the stage (cheap, cached work) instead of refusing

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(self.inputs, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _load_state(out: Path, cfg: StudyConfig) -> dict[str, Any]:
    path = out / STATE_FILE
    if not path.exists():
        return {"config": asdict(cfg), "stages": {}}
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"study state is not valid JSON: {exc}", path=path) from exc
    if state.get("name") not in (None, cfg.name):
        raise ConfigError(f"this folder holds study {state['name']!r}, not {cfg.name!r}", path=path)
    state["config"] = asdict(cfg)  # the latest config; each stage keeps the fingerprint it ran with
    return state


def _save_state(ctx: StudyContext, stage: str) -> None:
    """Record one finished stage. Stages of one study may run in several processes at once (say one
    per GPU, with ``--only``): under a lock, the file on disk is re-read and only this stage's record
    is replaced, so no process overwrites another's results."""
    path = ctx.out / STATE_FILE
    with open(ctx.out / ".study.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        on_disk = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {"stages": {}}
        on_disk.update({k: v for k, v in ctx.state.items() if k != "stages"})
        record = ctx.state["stages"][stage]
        on_disk["stages"] = {**ctx.state["stages"], **on_disk.get("stages", {}), stage: record}
        ctx.state["stages"] = dict(on_disk["stages"])
        save_text(path, json.dumps(on_disk, indent=2, default=str) + "\n")


def machine_description() -> str:
    threads = torch.get_num_threads()
    device = "CUDA " + torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU"
    return f"{platform.machine()}, {threads} torch threads, {device}, torch {torch.__version__}"


def _refresh(ctx: StudyContext) -> None:
    """Pick up stages finished by other processes since this one started."""
    path = ctx.out / STATE_FILE
    if path.exists():
        on_disk = json.loads(path.read_text(encoding="utf-8")).get("stages", {})
        ctx.state["stages"] = {**ctx.state["stages"], **on_disk}


def run_stages(
    cfg: StudyConfig, out: Path, stages: list[Stage], *, only: tuple[str, ...] = ()
) -> StudyContext:
    """Run the stages not yet done (or only those named); returns the context with every result."""
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    ctx = StudyContext(cfg, out, _load_state(out, cfg), tuple(s.name for s in stages))
    ctx.state.setdefault("machine", machine_description())
    ctx.state["name"] = cfg.name
    names = {s.name for s in stages}
    unknown = sorted(set(only) - names)
    if unknown:
        raise ConfigError(
            f"unknown stage(s) {', '.join(unknown)}; stages: {', '.join(s.name for s in stages)}"
        )
    for i, stage in enumerate(stages, 1):
        _refresh(ctx)  # another process may have finished this stage meanwhile
        record = ctx.state["stages"].get(stage.name)
        done = record is not None
        changed = done and record.get("fingerprint") != stage.fingerprint
        if changed and stage.rerun:
            done = False
        elif changed and not (only and stage.name in only):
            raise ConfigError(
                f"stage {stage.name} was run with a different config; rerun it with --only {stage.name} "
                f"(its training resumes from {out}/runs/{stage.name} unless you delete that folder) or use a new --out",
                path=out / STATE_FILE,
            )
        if (only and stage.name not in only) or (done and not only):
            log.info("[%d/%d] %s: %s", i, len(stages), stage.name, "done" if done else "not selected")
            continue
        log.info("[%d/%d] %s: %s", i, len(stages), stage.name, stage.description)
        start = time.perf_counter()
        result = stage.fn(ctx)
        seconds = time.perf_counter() - start
        ctx.state["stages"][stage.name] = {
            "seconds": round(seconds, 1),
            "fingerprint": stage.fingerprint,
            "result": result,
        }
        _save_state(ctx, stage.name)
        log.info("[%d/%d] %s finished in %.0f s", i, len(stages), stage.name, seconds)
    return ctx
