"""Two questions asked before a prediction is shown: is this a brain MRI slice, and is the model sure?

Out-of-distribution (OOD) check, two stages, either can refuse:
1. Image statistics (model-free, explainable): six numbers per image (colourfulness, border
   brightness, dark fraction, mean, contrast, roughness). Each must fall inside the range seen on
   the training scans, widened by a margin. This catches colour photos, documents, blank,
   gradient and noise images, and says *why* in plain words. It cannot catch a grayscale photo
   that happens to have MRI-like statistics; stage 2 is for that.
2. Feature distance: the model's pooled features (input of its classifier head) projected on the
   top principal components of the training features. The score is the Mahalanobis distance to
   the nearest class mean (shared covariance, Lee et al. 2018) plus the norm of the part of the
   feature the components cannot explain (the residual: OOD inputs often differ in directions
   the training data never varied in). Thresholds are the 99.5th percentile of each score on the
   validation split, so about 1% of in-distribution validation scans are refused by design.
   PCA keeps the fitted state small enough to live in config.json (k x D numbers, k <= 32).

Uncertainty rule: a prediction is "uncertain" when its top probability or its margin over the
runner-up is below thresholds fitted on the validation split by `fit_uncertainty_thresholds`.

Everything fitted is a plain JSON dict, stored by training as `model.config.brain_tumor_checks`.
When a model has none, `DEFAULT_CHECKS` apply (image statistics and uncertainty only).
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

CHECKS_VERSION = 1
STAT_SIZE = 128  # statistics are measured on a 128 x 128 grayscale copy: cheap and size-free
BORDER = 0.1  # the border band is the outer 10% of each side

# Plain words for a statistic outside its range: (too low, too high).
_STAT_REASONS = {
    "colourfulness": (None, "it is in colour, while MRI slices are grayscale"),
    "border_brightness": (None, "its border is bright, while MRI slices show the head on a dark background"),
    "dark_fraction": ("it has almost no dark background", "it is almost entirely black"),
    "mean": ("it is almost entirely black", "it is much brighter overall than MRI slices"),
    "contrast": ("it is almost uniform (blank)", "its contrast is extreme, like text or a drawing"),
    "roughness": (
        "it is too smooth to show anatomy (like a gradient)",
        "it looks like noise or fine texture, not anatomy",
    ),
}

# Colour gets a floor: the training scans are all pure gray (colourfulness ~0), yet RGB-encoded
# grayscale from other sources carries JPEG chroma noise of a few percent. 0.06 is above that
# noise and below every colour photo we measured (bench/ood_check.py).
COLOURFULNESS_FLOOR = 0.06

# Defaults for a model folder without fitted checks. The ranges come from the official Training
# split (5,708 scans): `python bench/ood_check.py --print-default-ranges` prints them.
DEFAULT_CHECKS = {
    "version": CHECKS_VERSION,
    "source": "defaults: image-statistics ranges from the Training split; conventional uncertainty thresholds",
    "image_statistics": {
        "ranges": {
            "colourfulness": [-0.00138724, 0.06],
            "border_brightness": [-0.0371216, 0.411671],
            "dark_fraction": [-0.0800791, 0.88087],
            "mean": [0.0155235, 0.530761],
            "contrast": [0.0611135, 0.378274],
            "roughness": [0.0240167, 0.480927],
        }
    },
    # Without a validation split we cannot fit these; 0.6 / 0.2 flag a top class under 60% or
    # fewer than 20 points ahead of the runner-up, a common conservative choice.
    "uncertainty": {"min_top_probability": 0.6, "min_margin": 0.2},
    "feature_distance": None,
}


# --- image statistics ----------------------------------------------------------------------


def image_statistics(image: Image.Image) -> dict[str, float]:
    """Six numbers (each in 0..1 or near it) describing how an image looks."""
    rgb = np.asarray(image.convert("RGB").resize((STAT_SIZE, STAT_SIZE), Image.BILINEAR), dtype=np.float32) / 255.0
    gray = np.asarray(image.convert("L").resize((STAT_SIZE, STAT_SIZE), Image.BILINEAR), dtype=np.float32) / 255.0
    band = max(1, int(round(STAT_SIZE * BORDER)))
    sides = (gray[:band], gray[-band:], gray[band:-band, :band], gray[band:-band, -band:])
    border = np.concatenate([side.ravel() for side in sides])
    contrast = float(gray.std())
    # Mean absolute difference between neighbours, relative to contrast: noise is ~1, anatomy ~0.15.
    step = (np.abs(np.diff(gray, axis=0)).mean() + np.abs(np.diff(gray, axis=1)).mean()) / 2.0
    return {
        "colourfulness": float((rgb.max(axis=2) - rgb.min(axis=2)).mean()),
        "border_brightness": float(border.mean()),
        "dark_fraction": float((gray < 0.1).mean()),
        "mean": float(gray.mean()),
        "contrast": contrast,
        "roughness": float(step / contrast) if contrast > 1e-3 else 0.0,
    }


def fit_image_statistics(images, low_q: float = 0.1, high_q: float = 99.9, margin: float = 0.1) -> dict:
    """Per-statistic ranges: training [0.1%, 99.9%] quantiles widened by 10% of their span.

    Quantiles rather than min/max so a handful of odd training files do not open the range;
    the margin so scans from other scanners, slightly outside the training ranges, still pass.
    """
    table = [image_statistics(img) for img in images]
    ranges = {}
    for name in table[0]:
        values = np.array([row[name] for row in table])
        low, high = np.percentile(values, [low_q, high_q])
        pad = margin * max(high - low, 1e-3)
        ranges[name] = [_round(low - pad), _round(high + pad)]
    ranges["colourfulness"][1] = max(ranges["colourfulness"][1], COLOURFULNESS_FLOOR)
    return {"ranges": ranges, "quantiles": [low_q, high_q], "margin": margin, "n_images": len(table)}


def image_statistics_reasons(stats: dict[str, float], fitted: dict) -> list[str]:
    """Plain-word reasons why these statistics are unlike the training scans (empty if alike)."""
    reasons = []
    for name, (low, high) in fitted["ranges"].items():
        too_low, too_high = _STAT_REASONS.get(name, (None, None))
        value = stats[name]
        if value < low and too_low and too_low not in reasons:
            reasons.append(too_low)
        elif value > high and too_high and too_high not in reasons:
            reasons.append(too_high)
    return reasons


# --- feature distance ----------------------------------------------------------------------


def fit_feature_distance(
    train_features, train_labels, validation_features, quantile: float = 99.5, max_components: int = 32
) -> dict:
    """Fit the PCA-Mahalanobis + residual detector (see module docstring) and its thresholds."""
    x = np.asarray(train_features, dtype=np.float64)
    y = np.asarray(train_labels)
    centre = x.mean(axis=0)
    _, singular, vt = np.linalg.svd(x - centre, full_matrices=False)
    # At most half the feature dimensions, so the residual always has room to measure something.
    k = int(min(max_components, max(1, x.shape[1] // 2), max(1, x.shape[0] - len(np.unique(y)) - 1)))
    components = vt[:k]
    z = (x - centre) @ components.T
    classes = sorted(int(c) for c in np.unique(y))
    means = np.stack([z[y == c].mean(axis=0) for c in classes])
    within = z - means[np.searchsorted(classes, y)]
    cov = within.T @ within / max(1, len(z) - len(classes))
    # Shrink towards a scaled identity: small classes give noisy covariances and some
    # directions may have (near) zero variance; 1% of the mean variance keeps the inverse sane.
    cov += 0.01 * np.trace(cov) / k * np.eye(k)
    fitted = {
        "centre": centre.tolist(),
        "components": components.tolist(),
        "class_ids": classes,
        "class_means": means.tolist(),
        "precision": np.linalg.inv(cov).tolist(),
    }
    train_resid = _residual_norm(x, centre, components)
    fitted["residual_scale"] = float(np.median(train_resid)) or 1.0
    mahalanobis, residual = feature_scores(validation_features, fitted)
    fitted["max_mahalanobis"] = float(np.percentile(mahalanobis, quantile))
    fitted["max_residual"] = float(np.percentile(residual, quantile))
    fitted["quantile"] = quantile
    fitted["explained_variance"] = float((singular[:k] ** 2).sum() / max((singular**2).sum(), 1e-12))
    return _round_tree(fitted)


def feature_scores(features, fitted: dict) -> tuple[np.ndarray, np.ndarray]:
    """(Mahalanobis distance to the nearest class mean, residual norm / training median)."""
    x = np.atleast_2d(np.asarray(features, dtype=np.float64))
    centre = np.asarray(fitted["centre"])
    components = np.asarray(fitted["components"])
    z = (x - centre) @ components.T
    diff = z[:, None, :] - np.asarray(fitted["class_means"])[None, :, :]
    d2 = np.einsum("nci,ij,ncj->nc", diff, np.asarray(fitted["precision"]), diff)
    mahalanobis = np.sqrt(np.maximum(d2.min(axis=1), 0.0))
    residual = _residual_norm(x, centre, components) / fitted.get("residual_scale", 1.0)
    return mahalanobis, residual


def _residual_norm(x: np.ndarray, centre: np.ndarray, components: np.ndarray) -> np.ndarray:
    centred = x - centre
    return np.linalg.norm(centred - (centred @ components.T) @ components, axis=1)


def feature_distance_reasons(features, fitted: dict | None) -> list[str]:
    if not fitted:
        return []
    mahalanobis, residual = feature_scores(features, fitted)
    if mahalanobis[0] > fitted["max_mahalanobis"] or residual[0] > fitted["max_residual"]:
        return [
            "the model's internal features are far from those of every training scan "
            f"(distance {mahalanobis[0]:.1f} vs at most {fitted['max_mahalanobis']:.1f}; "
            f"residual {residual[0]:.2f} vs at most {fitted['max_residual']:.2f})"
        ]
    return []


# --- uncertainty ---------------------------------------------------------------------------


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
        "min_top_probability": _round(t_p),
        "min_margin": _round(t_m),
        "target_accuracy": target_accuracy,
        "target_met": best is not None,
        "validation_accuracy_accepted": _round(accuracy),
        "validation_coverage": _round(coverage),
        "validation_accuracy_all": _round(float(correct.mean())),
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


# --- fitting everything at once (called by training) -----------------------------------------


def fit_checks(
    model,
    image_processor,
    train_images,
    validation_images,
    validation_labels,
    train_labels=None,
    batch_size: int = 32,
    target_accuracy: float = 0.99,
) -> dict:
    """Fit all checks for a trained model; the result is JSON-ready for `config.brain_tumor_checks`.

    Images are PIL images (or anything `Predictor` accepts: paths, bytes). `train_labels` are
    used for the class means when given; otherwise the model's own predictions stand in.
    Validation labels may be class ids or names from `model.config.label2id`.
    """
    from .inference import Predictor  # here, not at the top: inference imports this module

    predictor = Predictor(model, image_processor, checks={})
    train_images, validation_images = list(train_images), list(validation_images)
    train = predictor.forward_many(train_images, batch_size=batch_size)
    validation = predictor.forward_many(validation_images, batch_size=batch_size)
    label2id = {str(k): int(v) for k, v in model.config.label2id.items()}
    y_val = np.array([int(v) if not isinstance(v, str) else label2id[v] for v in validation_labels])
    if train_labels is None:
        y_train = train["probabilities"].argmax(axis=1)
    else:
        y_train = np.array([int(v) if not isinstance(v, str) else label2id[v] for v in train_labels])
    return {
        "version": CHECKS_VERSION,
        "source": f"fitted on {len(train_images)} training and {len(validation_images)} validation images",
        "image_statistics": fit_image_statistics(predictor.slices(train_images)),
        "uncertainty": fit_uncertainty_thresholds(validation["probabilities"], y_val, target_accuracy=target_accuracy),
        "feature_distance": fit_feature_distance(train["features"], y_train, validation["features"]),
    }


def resolve_checks(stored: dict | None) -> dict:
    """The checks a model uses: its fitted ones, with defaults for any part it lacks."""
    checks = dict(DEFAULT_CHECKS)
    for key, value in (stored or {}).items():
        if value is not None or key not in checks:
            checks[key] = value
    return checks


def _round(x: float) -> float:
    # 6 significant digits: far below any threshold's precision, and halves config.json's size.
    x = float(x)
    return float(f"{x:.6g}") if math.isfinite(x) else x


def _round_tree(value):
    if isinstance(value, dict):
        return {k: _round_tree(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_round_tree(v) for v in value]
    if isinstance(value, float):
        return _round(value)
    return value


def fit_checks_on_splits(model, image_processor, splits, max_train_images: int = 3000, seed: int = 42) -> dict:
    """`fit_checks` on a `splits.Splits`: a seeded, stratified training subset and all of validation."""
    from .data import subsample

    # Raw images, whatever transform training set on these datasets.
    train = subsample(splits.train, max_train_images, seed).with_format(None)
    validation = splits.validation.with_format(None)
    return fit_checks(model, image_processor, train["image"], validation["image"], validation["label"],
                      train_labels=train["label"])
