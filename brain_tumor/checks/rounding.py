"""Six significant digits for the fitted numbers stored in config.json.

Far below any threshold's precision, and short enough that a person can read the stored checks.
"""

from __future__ import annotations

import math


def round6(x: float) -> float:
    x = float(x)
    return float(f"{x:.6g}") if math.isfinite(x) else x


def round_tree(value):
    """`round6` applied to every float in nested dicts and lists."""
    if isinstance(value, dict):
        return {k: round_tree(v) for k, v in value.items()}
    if isinstance(value, list):
        return [round_tree(v) for v in value]
    if isinstance(value, float):
        return round6(value)
    return value
