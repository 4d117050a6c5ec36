"""The ``emomotion`` command line: parse arguments, build a config, call one library function.

A typed :class:`~emomotion.errors.EmomotionError` prints one line naming the file and the reason and
exits with code 2; ``--debug`` (anywhere on the line) shows the traceback instead.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import click
import typer

from emomotion.errors import EmomotionError

app = typer.Typer(
    name="emomotion",
    help="Emotionally expressive text-to-motion: datasets from mocap, MDM/MMM fine-tuning, evaluation.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
log = logging.getLogger("emomotion")


@app.command()
def convert(
    source: Annotated[Path, typer.Argument(help="A .bvh, joints .npy (T,22,3) or features .npy (T,263).")],
    to: Annotated[str, typer.Option("--to", help="joints | features | bvh | gif | mp4")],
    out: Annotated[
        Path | None, typer.Option("--out", help="Output file (default: beside the input).")
    ] = None,
    joint_map: Annotated[
        str | None, typer.Option("--joint-map", help="Registered map name or a .toml file (BVH input).")
    ] = None,
    fps: Annotated[float | None, typer.Option("--fps", help="Frame rate of a joints .npy input.")] = None,
) -> None:
    """Convert a motion between BVH, joints, features, and gif/mp4 animations."""
    from emomotion.convert import convert as run

    written = run(source, to, out, joint_map=joint_map, fps=fps)
    typer.echo(str(written))


@app.command("joint-maps")
def joint_maps() -> None:
    """List the registered joint maps (source rig -> SMPL-22)."""
    from emomotion.joint_maps import get_joint_map, joint_map_names

    for name in joint_map_names():
        jm = get_joint_map(name)
        typer.echo(f"{name:10s} {jm.description}")


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", help="Output folder.")] = Path("demo_out"),
) -> None:
    """Run the end-to-end demo on the embedded synthetic data (no downloads, CPU only)."""
    from emomotion.demo import run_demo

    report = run_demo(out)
    typer.echo(f"Demo finished. Open {report} (and the gifs beside it).")


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    if debug:
        args.remove("--debug")
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        app(args=args, prog_name="emomotion", standalone_mode=False)
    except EmomotionError as exc:
        if debug:
            raise
        typer.echo(f"error: {exc}", err=True)
        return 2
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.exceptions.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Abort:
        typer.echo("aborted", err=True)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
