"""Units and scale: a unit name or a number of metres per unit, else the skeleton's own size.

The features re-pose a uniform target skeleton, so the scale only matters for speeds (jump and
bind-pose checks, warnings) and for the joints returned before canonicalisation. A named unit is
used when the leg length in that unit is an adult's; otherwise the scale makes the leg as long as
the target skeleton's, and the report says so.
"""

from __future__ import annotations

import math

from emomotion import skeleton as sk
from emomotion.errors import ConfigError

UNIT_SCALE: dict[str, float] = {"m": 1.0, "cm": 0.01, "mm": 0.001, "in": 0.0254, "ft": 0.3048}
"""Metres per unit of each named unit."""
REFERENCE_LEG = float(sk.BONE_LENGTHS[5] + sk.BONE_LENGTHS[8])
"""Hip -> knee -> ankle length (m) of the target skeleton."""
LEG_FACTOR = 1.5
"""A named unit fits when the leg measures within this factor of the reference (named units differ by
at least 2.54x, so at most one fits)."""

Units = str | float


def parse_units(value: object, *, what: str = "units") -> Units:
    """'auto', a unit name, or a positive number of metres per unit (a number or numeric text)."""
    if isinstance(value, str):
        text = value.strip()
        if text == "auto" or text in UNIT_SCALE:
            return text
        try:
            number = float(text)
        except ValueError:
            raise ConfigError(
                f"{what} must be auto, {', '.join(UNIT_SCALE)} or metres per unit (a number), not {value!r}"
            ) from None
    elif isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    else:
        raise ConfigError(f"{what} must be a unit name or a number, not {value!r}")
    if not (math.isfinite(number) and number > 0):
        raise ConfigError(f"{what} as metres per unit must be a positive finite number, not {value!r}")
    return number


def unit_scale(units: Units) -> float:
    """Metres per unit of a parsed unit (not 'auto')."""
    return float(units) if isinstance(units, float | int) else UNIT_SCALE[units]


def unit_label(units: Units) -> str:
    return f"{float(units):g} m/unit" if isinstance(units, float | int) else str(units)


def scale_from_leg(leg: float) -> tuple[float, str, str]:
    """(metres per unit, units label, how) for a median leg length in file units."""
    if not (math.isfinite(leg) and leg > 0):
        raise ConfigError(f"the leg length is {leg:.4g}: cannot set a scale")
    for name, scale in UNIT_SCALE.items():
        if REFERENCE_LEG / LEG_FACTOR <= leg * scale <= REFERENCE_LEG * LEG_FACTOR:
            return scale, name, f"{name} (a leg of {leg:.4g} {name})"
    scale = REFERENCE_LEG / leg
    return scale, "skeleton", f"no unit fits a leg of {leg:.4g}: {scale:.4g} m/unit from the skeleton's size"


def units_option(units: str | None, scale: float | None) -> Units | None:
    """The ``--units`` / ``--scale`` pair of the command line as one override (None: not given)."""
    if units is not None and scale is not None:
        raise ConfigError("give --units or --scale, not both")
    if scale is not None:
        return parse_units(scale, what="--scale")
    return parse_units(units, what="--units") if units is not None else None
