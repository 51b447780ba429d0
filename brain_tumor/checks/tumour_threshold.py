"""'A tumour is not ruled out': a "no tumour" answer whose tumour probability is still above a fitted level.

Held out of training, a new collection's tumours often come back "no tumour" with P(tumour) (the three
tumour types' summed probability) well above what the training collections' no-tumour slices get. The
level is the P(tumour) that a share `specificity` of the validation split's no-tumour slices stay at or
under (its quantile, as `bench/operating_points.py` fits it); above it, a "no tumour" answer is flagged
uncertain with this reason. The four-class answer, and so `pipeline()`, is unchanged.

Measured (bench/results/selection_rule.md, 2026-12-06 21:12 UTC addendum): fitted at a specificity of 0.95
on validation, the level carried to a collection held out of training. Without a fitted level (older
folders, models with other classes) the check is off.
"""

from __future__ import annotations

import numpy as np

from .rounding import round6

SPECIFICITY = 0.95


def fit_tumour_threshold(normal_tumour_probabilities, specificity: float = SPECIFICITY) -> dict | None:
    """The level from P(tumour) of the validation split's no-tumour slices; None without any such slice."""
    p = np.asarray(normal_tumour_probabilities, dtype=np.float64)
    if p.size == 0:
        return None
    return {"threshold": round6(float(np.quantile(p, specificity))), "validation_specificity": specificity,
            "n_validation_no_tumour": int(p.size)}


def tumour_threshold_reasons(answer_is_no_tumour: bool, tumour_probability: float | None,
                             fitted: dict | None) -> list[str]:
    """The reason to flag a "no tumour" answer whose P(tumour) is above the fitted level (none otherwise)."""
    if not fitted or not answer_is_no_tumour or tumour_probability is None:
        return []
    level = fitted["threshold"]
    if tumour_probability <= level:
        return []
    return [f"a tumour is not ruled out: the three tumour types together get {tumour_probability:.1%}, above "
            f"the {level:.1%} that {fitted['validation_specificity']:.0%} of the validation no-tumour slices "
            "stay under"]
