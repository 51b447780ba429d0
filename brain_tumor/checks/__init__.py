"""Two questions asked before a prediction is shown: is this a brain MRI slice, and is the model sure?

- `image_statistics`: "not a brain MRI", stage 1, six model-free image statistics with plain-word reasons.
- `feature_distance`: "not a brain MRI", stage 2, distance of the model's pooled features from the training ones.
- `uncertainty`: "uncertain" when the top probability or its margin over the runner-up is too low.
- `tumour_threshold`: "uncertain" too when a "no tumour" answer's tumour probability is above a fitted level.
- `storage`: config.json + checks.safetensors in a model folder; the defaults for a model without fitted checks.

This package is pure scoring: it never loads or runs a model. Fitting the checks for a trained
model runs the model, so it lives beside this package in `brain_tumor.fit_checks`.
"""

from .feature_distance import feature_distance_reasons, feature_scores, fit_feature_distance
from .image_statistics import COLOURFULNESS_FLOOR, fit_image_statistics, image_statistics, image_statistics_reasons
from .storage import CHECKS_FILE, CHECKS_VERSION, CONFIG_KEY, DEFAULT_CHECKS, load_checks, resolve_checks, save_checks
from .tumour_threshold import fit_tumour_threshold, tumour_threshold_reasons
from .uncertainty import fit_uncertainty_thresholds, top_two, uncertainty_reasons

__all__ = [
    "CHECKS_FILE", "CHECKS_VERSION", "COLOURFULNESS_FLOOR", "CONFIG_KEY", "DEFAULT_CHECKS",
    "feature_distance_reasons", "feature_scores", "fit_feature_distance", "fit_image_statistics",
    "fit_tumour_threshold", "fit_uncertainty_thresholds", "image_statistics", "image_statistics_reasons", "load_checks",
    "resolve_checks", "save_checks", "top_two", "tumour_threshold_reasons", "uncertainty_reasons",
]
