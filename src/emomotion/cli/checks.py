"""Option values checked before any work: a bad one raises a ConfigError naming the option.

Typer parses types; these check ranges (NaN and infinities included, which ``float`` options
accept), and that input paths exist, so that a run never loads a model or a dataset only to fail
on a value it could have refused at once.
"""

from __future__ import annotations

import math
from pathlib import Path

from emomotion.errors import ConfigError
from emomotion.limits import MAX_LENGTH_BUCKETS


def number(
    option: str,
    value: float | None,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> None:
    """``value`` is finite and within [low, high] (``*_open``: the bound itself is excluded); None passes."""
    if value is None:
        return
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{option} must be a finite number, got {value}")
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and (value >= high if high_open else value > high)
    if too_low or too_high:
        if high is None:
            bound = f"{'>' if low_open else '>='} {low:g}"
        elif low is None:
            bound = f"{'<' if high_open else '<='} {high:g}"
        else:
            bound = f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        raise ConfigError(f"{option} must be {bound}, got {value:g}")


def positive(option: str, value: float | None) -> None:
    number(option, value, low=0, low_open=True)


def at_least(option: str, value: float | None, low: float) -> None:
    number(option, value, low=low)


def fraction(option: str, value: float | None, *, high_open: bool = False) -> None:
    """In [0, 1] (or [0, 1) with ``high_open``)."""
    number(option, value, low=0.0, high=1.0, high_open=high_open)


def one_of(option: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{option} must be one of {', '.join(choices)}, got {value!r}")


def existing(option: str, path: Path | None, *, kind: str = "file or folder") -> None:
    """``path`` exists (``kind``: "file", "folder" or "file or folder"); None passes."""
    if path is None:
        return
    ok = path.is_file() if kind == "file" else path.is_dir() if kind == "folder" else path.exists()
    if not ok:
        raise ConfigError(f"{option}: {kind} not found", path=path)


def training(
    *,
    steps: int,
    batch_size: int,
    lr: float,
    save_every: int,
    ema: float | None = None,
    length_buckets: int | None = None,
) -> None:
    """The options every trainer shares."""
    at_least("--steps", steps, 1)
    at_least("--batch-size", batch_size, 1)
    number("--lr", lr, low=0.0, low_open=True, high=1.0)
    at_least("--save-every", save_every, 1)
    fraction("--ema", ema, high_open=True)
    number("--length-buckets", length_buckets, low=0, high=MAX_LENGTH_BUCKETS)
