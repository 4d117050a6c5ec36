"""The ``emomotion`` command line: parse arguments, build a config, call one library function.

Each command group lives in its own module here; this one assembles them. A typed :class:`~emomotion.errors.EmomotionError` prints one line naming the file and the reason and
exits with code 2, and so does a bad option value (checked before any work, see
:mod:`emomotion.cli.checks`); ``--debug`` (anywhere on the line) shows the traceback instead.
``--threads N`` (before the command) sets torch's CPU threads per process (default:
:func:`emomotion.threads.default_threads`). Under a distributed launcher only process 0 logs at INFO
level; the others log warnings and errors.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Annotated

import typer

from emomotion.cli import convert, data, evaluate, generate, importers, study, train
from emomotion.errors import EmomotionError

app = typer.Typer(
    name="emomotion",
    help="Emotionally expressive text-to-motion: datasets from mocap, MDM/MMM fine-tuning, evaluation.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _configure(
    threads: Annotated[
        int | None,
        typer.Option(
            "--threads",
            min=1,
            help="torch CPU threads per process (default: OMP_NUM_THREADS, else the cores divided among "
            "the processes a launcher started on this machine).",
        ),
    ] = None,
) -> None:
    from emomotion.threads import configure_threads

    configure_threads(threads)


app.command()(convert.convert)
app.command("joint-maps")(convert.joint_maps)
app.add_typer(data.data_app, name="data")
app.add_typer(train.train_app, name="train")
app.add_typer(train.finetune_app, name="finetune")
app.command("eval")(evaluate.eval_cmd)
app.command()(generate.generate)
app.command()(generate.restyle)
app.add_typer(importers.import_app, name="import")
app.add_typer(evaluate.diagnose_app, name="diagnose")
app.add_typer(study.study_app, name="study")
app.command()(generate.serve)
app.command()(generate.demo)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    if debug:
        args.remove("--debug")
    level = logging.DEBUG if debug else logging.INFO
    if int(os.environ.get("RANK", "0")) > 0:  # one writer: the other processes of a distributed run
        level = logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    try:
        code = app(args=args, prog_name="emomotion", standalone_mode=False)
    except EmomotionError as exc:
        if debug:
            raise
        typer.echo(f"error: {exc}", err=True)
        return 2
    except typer.TyperException as exc:  # typer's (vendored click's) usage errors: one line naming the option
        if type(exc).__name__ == "NoArgsIsHelpError":  # no arguments: the help text
            exc.show()  # type: ignore[attr-defined]
            return exc.exit_code
        ctx = getattr(exc, "ctx", None)
        hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
        typer.echo(f"error: {' '.join(exc.format_message().split())}{hint}", err=True)
        return exc.exit_code
    except typer.Abort:
        typer.echo("aborted", err=True)
        return 130
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else int(exc.code is not None)
    return code if isinstance(code, int) else 0
