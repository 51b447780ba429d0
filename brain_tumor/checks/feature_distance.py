"""'Not a brain MRI', stage 2: distance of the model's own features from those of the training scans.

Features are the model's pooled features (the input of its classifier head), projected on the top
principal components of the training features. The score is the Mahalanobis distance to the
nearest class mean (shared covariance, Lee et al. 2018) plus the norm of the part of the feature
the components cannot explain (the residual: out-of-distribution inputs often differ in
directions the training data never varied in). Thresholds are the 99.5th percentile of each
score on the validation split, so about 1% of in-distribution validation scans are refused by
design. PCA keeps the fitted state small (k x D numbers, k <= 32); `storage.py` keeps these
arrays in `checks.safetensors` and the scalars in config.json.
"""

from __future__ import annotations

import numpy as np

from .rounding import round_tree

# The fitted entries that are arrays (stored in checks.safetensors); the rest are scalars.
ARRAY_KEYS = ("centre", "components", "class_means", "precision")


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
    # The floor covers the degenerate case of no within-class spread at all (each class one
    # repeated image), where 1% of nothing would leave the matrix singular.
    cov += max(0.01 * np.trace(cov) / k, 1e-6) * np.eye(k)
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
    return round_tree(fitted)


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
