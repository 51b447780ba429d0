"""The 'uncertain' rule: a prediction whose top probability, or its margin over the runner-up, is too low.

The two thresholds are fitted on the validation split by `fit_uncertainty_thresholds`.
"""

from __future__ import annotations

import numpy as np

from .rounding import round6

# Without a validation split we cannot fit the thresholds; 0.6 / 0.2 flag a top class under 60%
# or fewer than 20 points ahead of the runner-up, a common conservative choice.
DEFAULT_THRESHOLDS = {"min_top_probability": 0.6, "min_margin": 0.2}


def top_two(probabilities) -> tuple[int, float, float]:
    """(index of top class, top probability, its margin over the runner-up)."""
    p = np.asarray(probabilities, dtype=np.float64)
    order = np.argsort(-p, kind="stable")  # ties go to the lower index, as argmax does
    second = p[order[1]] if len(p) > 1 else 0.0
    return int(order[0]), float(p[order[0]]), float(p[order[0]] - second)


def fit_uncertainty_thresholds(probabilities, labels, target_accuracy: float = 0.99, min_coverage: float = 0.5) -> dict:
    """Pick (min_top_probability, min_margin) on validation predictions.

    Rule: among candidate pairs (each threshold from 0 and quantiles of the observed top
    probabilities / margins), keep those whose *accepted* validation cases (top >= t_p and
    margin >= t_m) reach `target_accuracy` while accepting at least `min_coverage` of the cases;
    choose the one accepting the most cases, ties going to the lower thresholds. If none does,
    choose the most accurate pair that still accepts `min_coverage` (`target_met` is then
    False): a rule that calls most scans uncertain would be of no use.
    """
    p = np.asarray(probabilities, dtype=np.float64)
    y = np.asarray(labels)
    ordered = np.sort(p, axis=1)
    top, margin = ordered[:, -1], ordered[:, -1] - ordered[:, -2]
    correct = p.argmax(axis=1) == y
    # Candidate thresholds: quantiles of the observed values (a few dozen is plenty, and keeps
    # the search fast on any split size).
    grid = np.linspace(0, 100, 41)
    t_ps = np.unique(np.concatenate([[0.0], np.percentile(top, grid)]))
    t_ms = np.unique(np.concatenate([[0.0], np.percentile(margin, grid)]))
    best, fallback = None, None
    for t_p in t_ps:
        for t_m in t_ms:
            accepted = (top >= t_p) & (margin >= t_m)
            n = int(accepted.sum())
            if n == 0:
                continue
            accuracy = float(correct[accepted].mean())
            coverage = n / len(y)
            key = (coverage, -(t_p + t_m))
            if accuracy >= target_accuracy and coverage >= min_coverage and (best is None or key > best[0]):
                best = (key, t_p, t_m, accuracy, coverage)
            if coverage >= min_coverage and (fallback is None or (accuracy, key) > (fallback[3], fallback[0])):
                fallback = (key, t_p, t_m, accuracy, coverage)
    chosen = best or fallback or ((1.0, 0.0), 0.0, 0.0, float(correct.mean()), 1.0)
    _, t_p, t_m, accuracy, coverage = chosen
    return {
        "min_top_probability": round6(t_p),
        "min_margin": round6(t_m),
        "target_accuracy": target_accuracy,
        "target_met": best is not None,
        "validation_accuracy_accepted": round6(accuracy),
        "validation_coverage": round6(coverage),
        "validation_accuracy_all": round6(float(correct.mean())),
        "n_validation": int(len(y)),
    }


def uncertainty_reasons(probabilities, labels: list[str], fitted: dict) -> list[str]:
    index, top, margin = top_two(probabilities)
    reasons = []
    if top < fitted["min_top_probability"]:
        reasons.append(f"the top probability {top:.0%} is below {fitted['min_top_probability']:.0%}")
    if margin < fitted["min_margin"]:
        runner_up = labels[int(np.argsort(-np.asarray(probabilities), kind="stable")[1])] if len(labels) > 1 else "-"
        reasons.append(f"it leads {runner_up} by only {margin:.0%} (needs {fitted['min_margin']:.0%})")
    return reasons
