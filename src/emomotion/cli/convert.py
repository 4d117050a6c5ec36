"""``emomotion convert`` and ``emomotion joint-maps``: one motion between formats, the rig maps."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from emomotion.cli import checks


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
    units: Annotated[
        str | None,
        typer.Option("--units", help="BVH units: m, cm, mm, in, ft or metres per unit (default: guessed)."),
    ] = None,
    scale: Annotated[
        float | None, typer.Option("--scale", help="BVH metres per file unit (same as a numeric --units).")
    ] = None,
) -> None:
    """Convert a motion between BVH, joints, features, and gif/mp4 animations (BVH: prints the mapping)."""
    checks.existing("SOURCE", source, kind="file")
    checks.number("--fps", fps, low=1, high=10_000)
    from emomotion.convert import convert as run
    from emomotion.rigs.units import units_option

    written = run(
        source,
        to,
        out,
        joint_map=joint_map,
        fps=fps,
        units=units_option(units, scale),
        on_report=lambda report: typer.echo(report.describe()),
    )
    typer.echo(str(written))


def joint_maps(
    show: Annotated[
        str | None,
        typer.Option("--show", help="Print what a map (name or .toml) assigns to each SMPL joint."),
    ] = None,
) -> None:
    """List the registered joint maps (source rig -> SMPL-22), or show one."""
    from emomotion.joint_maps import get_joint_map, joint_map_names

    if show is not None:
        typer.echo(get_joint_map(show).describe())
        return
    for name in joint_map_names():
        jm = get_joint_map(name)
        typer.echo(f"{name:10s} {jm.description}")
