"""``emomotion data``: build, merge and inspect HumanML3D-layout datasets."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from emomotion.cli import checks

data_app = typer.Typer(help="Build, merge and inspect HumanML3D-layout datasets.", no_args_is_help=True)


@data_app.command("build")
def data_build(
    source: Annotated[
        str, typer.Argument(help="emilya | bandai | bvh | synthetic (see `emomotion data sources`)")
    ],
    out: Annotated[Path, typer.Option("--out", help="Output folder (HumanML3D layout).")],
    input: Annotated[
        Path | None,
        typer.Option("--input", help="The source's folder, or a .tar/.tar.gz/.tar.zst/.zip of it."),
    ] = None,
    mirror: Annotated[
        bool, typer.Option("--mirror", help="Also write left/right mirrored clips (M + id).")
    ] = False,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    joint_map: Annotated[
        str | None, typer.Option("--joint-map", help="Joint map name or .toml file.")
    ] = None,
    labels: Annotated[Path | None, typer.Option("--labels", help="Labels CSV (bvh source).")] = None,
    workers: Annotated[int, typer.Option("--workers", help="Worker processes.")] = 1,
    ratios: Annotated[str, typer.Option("--ratios", help="train,val,test shares.")] = "0.8,0.1,0.1",
    split_by: Annotated[str, typer.Option("--split-by", help="auto | actor | group | stratified")] = "auto",
    captions: Annotated[int, typer.Option("--captions", help="Generated captions per clip.")] = 3,
    clips_per_pair: Annotated[
        int, typer.Option("--clips-per-pair", help="synthetic: clips per action x emotion.")
    ] = 1,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Rebuild an existing output folder.")
    ] = False,
    emotions_only: Annotated[
        bool,
        typer.Option(
            "--emotions-only", help="Keep only clips with an emotion label (others listed as skipped)."
        ),
    ] = False,
    strict: Annotated[
        bool, typer.Option("--strict", help="Exit with an error when any input was skipped.")
    ] = False,
    units: Annotated[
        str | None, typer.Option("--units", help="BVH units: m, cm, mm, in, ft or metres per unit.")
    ] = None,
    scale: Annotated[float | None, typer.Option("--scale", help="BVH metres per file unit.")] = None,
) -> None:
    """Build a dataset (features, joints, captions, splits, Mean/Std, manifest) from a source.

    An input that cannot be used never stops the build: it is listed, with its reason, under
    ``skipped`` in the manifest (``--strict`` then makes the exit status 2)."""
    checks.existing("--input", input)
    checks.existing("--labels", labels, kind="file")
    checks.at_least("--workers", workers, 1)
    checks.at_least("--captions", captions, 1)
    checks.at_least("--clips-per-pair", clips_per_pair, 1)
    from emomotion.data.build import BuildConfig, build_dataset
    from emomotion.data.splits import SplitConfig
    from emomotion.errors import ConfigError, DatasetError
    from emomotion.rigs.units import units_option

    try:
        shares = tuple(float(x) for x in ratios.split(","))
    except ValueError as exc:
        raise ConfigError(f"--ratios must be three numbers like 0.8,0.1,0.1, got {ratios!r}") from exc
    if len(shares) != 3:
        raise ConfigError(f"--ratios needs three numbers, got {ratios!r}")
    cfg = BuildConfig(
        source=source,
        out=out,
        input=input,
        mirror=mirror,
        seed=seed,
        joint_map=joint_map,
        labels=labels,
        workers=workers,
        split=SplitConfig(ratios=shares, strategy=split_by, seed=seed),  # type: ignore[arg-type]
        captions_per_clip=captions,
        overwrite=overwrite,
        emotions_only=emotions_only,
        units=units_option(units, scale),
        options={"clips_per_pair": clips_per_pair} if source == "synthetic" else {},
    )
    summary = build_dataset(cfg)
    typer.echo(summary.describe())
    if strict and summary.skipped:
        raise DatasetError(
            f"--strict: {len(summary.skipped)} input(s) skipped (listed in manifest.json)", path=out
        )


@data_app.command("merge")
def data_merge(
    inputs: Annotated[list[Path], typer.Argument(help="Two or more HumanML3D-layout folders.")],
    out: Annotated[Path, typer.Option("--out", help="Output folder.")],
    stats_from: Annotated[
        Path | None,
        typer.Option("--stats-from", help="Keep this dataset's Mean/Std (e.g. the pretraining set)."),
    ] = None,
    prefix: Annotated[
        list[str] | None,
        typer.Option("--prefix", help="Id prefix per input, in order (default: folder names)."),
    ] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite")] = False,
) -> None:
    """Merge datasets: per-source id prefixes, splits kept, manifests merged."""
    for path in inputs:
        checks.existing("INPUTS", path, kind="folder")
    checks.existing("--stats-from", stats_from, kind="folder")
    from emomotion.data.merge import merge_datasets

    summary = merge_datasets(inputs, out, prefixes=prefix or None, stats_from=stats_from, overwrite=overwrite)
    typer.echo(summary.describe())


@data_app.command("inspect")
def data_inspect(
    root: Annotated[Path, typer.Argument(help="A HumanML3D-layout folder.")],
    png: Annotated[
        Path | None, typer.Option("--png", help="Summary picture (default: ROOT/inspect.png).")
    ] = None,
) -> None:
    """Counts per emotion x action x split, lengths, and every problem found; a PNG summary."""
    checks.existing("ROOT", root, kind="folder")
    from emomotion.data.inspect import inspect_dataset

    report = inspect_dataset(root, png=png or root / "inspect.png")
    typer.echo(report.describe())
    typer.echo(f"summary picture: {png or root / 'inspect.png'}")


@data_app.command("sources")
def data_sources() -> None:
    """List the registered dataset sources."""
    from emomotion.data.sources import get_source, source_names

    for name in source_names():
        typer.echo(f"{name:10s} {get_source(name).description}")
