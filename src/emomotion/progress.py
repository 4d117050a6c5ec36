"""Progress bars for long work: one look everywhere (bar, count, rate, elapsed, ETA)."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text


class RateColumn(ProgressColumn):
    """Items per second, e.g. ``42.0 clips/s``."""

    def __init__(self, unit: str = "it") -> None:
        super().__init__()
        self.unit = unit

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("" if speed is None else f"{speed:.1f} {self.unit}/s", style="progress.data.speed")


def progress_bar(unit: str = "it", *, transient: bool = False, disable: bool = False) -> Progress:
    """A rich Progress on stderr: description, bar, n/total, rate, elapsed and remaining time (nothing
    shown when ``disable``: say, in every process of a distributed run but the main one)."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(unit),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        transient=transient,
        disable=disable,
        console=Console(stderr=True),
    )
