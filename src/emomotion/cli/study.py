"""``emomotion study``: the whole method as one resumable staged run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from emomotion.cli import checks

study_app = typer.Typer(help="Run the whole method as one resumable study.", no_args_is_help=True)


@study_app.command("run")
def study_run(
    config: Annotated[Path, typer.Argument(help="Study config (TOML), e.g. study/bandai.toml.")],
    out: Annotated[Path, typer.Option("--out", help="Study folder (data, runs, evaluation, report).")] = Path(
        "study_out"
    ),
    scale: Annotated[
        float, typer.Option("--scale", help="Multiply every step count (GPU users: 10-100).")
    ] = 1.0,
    full_size: Annotated[
        bool, typer.Option("--full-size", help="Official model sizes instead of the small CPU presets.")
    ] = False,
    only: Annotated[
        list[str] | None, typer.Option("--only", help="Run only these stages (repeatable).")
    ] = None,
) -> None:
    """Run every stage not yet done (an interrupted study resumes where it stopped)."""
    checks.existing("CONFIG", config, kind="file")
    checks.number("--scale", scale, low=0, low_open=True, high=1000)
    from emomotion.study import load_study_config, run_study

    cfg = load_study_config(config).scaled(scale, full_size)
    ctx = run_study(cfg, out, only=tuple(only or ()))
    typer.echo(f"study {cfg.name}: {len(ctx.state['stages'])} stage(s) done in {out}")


@study_app.command("stages")
def study_stages_cmd(
    config: Annotated[Path, typer.Argument(help="Study config (TOML).")],
    out: Annotated[Path, typer.Option("--out")] = Path("study_out"),
) -> None:
    """List the stages of a study and which are done."""
    import json

    from emomotion.study import load_study_config, study_stages
    from emomotion.study.runner import STATE_FILE

    cfg = load_study_config(config)
    state_path = out / STATE_FILE
    done = json.loads(state_path.read_text())["stages"] if state_path.exists() else {}
    for stage in study_stages(cfg):
        mark = f"done ({done[stage.name]['seconds']:.0f} s)" if stage.name in done else "to do"
        typer.echo(f"{stage.name:32s} {mark:16s} {stage.description}")
