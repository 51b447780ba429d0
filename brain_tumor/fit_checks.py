"""Fitting the serving checks (`brain_tumor.checks`) for a trained model: runs the model on the splits.

Kept apart from the scoring package because it needs a model: it uses `Predictor` for the pooled
features and probabilities, and `inference` imports the scoring code, not this module.
Store the result with `brain_tumor.checks.save_checks(checks, folder)` after `save_pretrained`.
"""

from __future__ import annotations

import numpy as np

from .checks import (CHECKS_VERSION, fit_feature_distance, fit_image_statistics, fit_tumour_threshold,
                     fit_uncertainty_thresholds)
from .data import subsample
from .inference import Predictor, is_no_tumour, tumour_probability


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
    """Fit all checks for a trained model; the result is one JSON-ready dict.

    Images are PIL images (or anything `Predictor` accepts: paths, bytes). `train_labels` are
    used for the class means when given; otherwise the model's own predictions stand in.
    Validation labels may be class ids or names from `model.config.label2id`; an id past the
    model's classes is a coarse label ("a tumour, type unknown", `labels.ANY_TUMOR_ID`).

    Coarse rows count for what an MRI slice looks like (image statistics, the feature distance: a
    collection's slices must not be refused as "not an MRI" because their type is unknown), and
    form their own group of the feature distance's class means; they are left out of the
    uncertainty thresholds, which need one true class per image to score an answer. The tumour threshold
    reads the validation no-tumour slices only (none for a model without the four classes).
    """
    # The caller's model stays as it is (it is saved after this): the batch norms are not folded.
    predictor = Predictor(model, image_processor, checks={}, prepare_for_cpu=False)
    train_images, validation_images = list(train_images), list(validation_images)
    train_slices = predictor.slices(train_images)  # decoded once: the features and the image statistics read them
    train = predictor.forward_many(train_slices, batch_size=batch_size)
    validation = predictor.forward_many(validation_images, batch_size=batch_size)
    label2id = {str(k): int(v) for k, v in model.config.label2id.items()}
    y_val = np.array([int(v) if not isinstance(v, str) else label2id[v] for v in validation_labels])
    if train_labels is None:
        y_train = train["probabilities"].argmax(axis=1)
    else:
        y_train = np.array([int(v) if not isinstance(v, str) else label2id[v] for v in train_labels])
    fine = y_val < len(model.config.id2label)
    return {
        "version": CHECKS_VERSION,
        "source": f"fitted on {len(train_images)} training and {len(validation_images)} validation images",
        "image_statistics": fit_image_statistics(train_slices),
        "uncertainty": fit_uncertainty_thresholds(validation["probabilities"][fine], y_val[fine],
                                                  target_accuracy=target_accuracy),
        "feature_distance": fit_feature_distance(train["features"], y_train, validation["features"]),
        "tumour_threshold": _fit_tumour_threshold(predictor.labels, validation["probabilities"], y_val),
    }


def _fit_tumour_threshold(labels: list[str], probabilities: np.ndarray, y_val: np.ndarray) -> dict | None:
    """The 'tumour not ruled out' level, from the validation rows labelled no tumour."""
    if tumour_probability(dict.fromkeys(labels, 0.0)) is None:
        return None  # a model with other classes than the four
    return fit_tumour_threshold([tumour_probability(dict(zip(labels, row))) for row, y in zip(probabilities, y_val)
                                 if y < len(labels) and is_no_tumour(labels[y])])


def fit_checks_on_splits(model, image_processor, splits, max_train_images: int = 3000, seed: int = 42) -> dict:
    """`fit_checks` on a `splits.Splits`: a seeded, stratified training subset and all of validation,
    coarse rows included (see `fit_checks`)."""
    # Raw images, whatever transform training set on these datasets.
    train = subsample(splits.train, max_train_images, seed).with_format(None)
    validation = splits.validation.with_format(None)
    return fit_checks(model, image_processor, train["image"], validation["image"], validation["label"],
                      train_labels=train["label"])
