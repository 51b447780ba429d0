"""The OOD check and the uncertainty rule: fitting, JSON round trip, and behaviour on clear cases."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from brain_tumor import checks
from brain_tumor.checks import (
    DEFAULT_CHECKS,
    feature_distance_reasons,
    feature_scores,
    fit_feature_distance,
    fit_image_statistics,
    fit_tumour_threshold,
    fit_uncertainty_thresholds,
    image_statistics,
    image_statistics_reasons,
    resolve_checks,
    tumour_threshold_reasons,
    uncertainty_reasons,
)

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.jpg"))
TESTING = ROOT.parent / "shared" / "data" / "brain-tumor-mri-v1" / "Testing"
DEFAULT_STATS = DEFAULT_CHECKS["image_statistics"]


def _document() -> Image.Image:
    img = Image.new("L", (224, 224), 250)
    draw = ImageDraw.Draw(img)
    for row in range(10):
        draw.text((8, 8 + 20 * row), "radiology report: findings normal", fill=10, font=ImageFont.load_default(size=14))
    return img


def _photo() -> Image.Image:
    from sklearn.datasets import load_sample_image

    return Image.fromarray(load_sample_image("flower.jpg"))


# --- image statistics --------------------------------------------------------------------------


def test_real_example_scans_pass_default_statistics():
    assert EXAMPLES, "examples/ should hold real scans"
    for path in EXAMPLES:
        assert image_statistics_reasons(image_statistics(Image.open(path)), DEFAULT_STATS) == [], path


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda: Image.new("L", (224, 224), 0), "black"),
        (lambda: Image.new("L", (224, 224), 128), "uniform"),
        (lambda: Image.new("L", (224, 224), 255), "bright"),
        (lambda: Image.fromarray(np.random.default_rng(0).integers(0, 256, (224, 224), dtype=np.uint8)), "noise"),
        (lambda: Image.fromarray(np.tile(np.linspace(0, 255, 224), (224, 1)).astype(np.uint8)), "smooth"),
        (_document, "border is bright"),
        (_photo, "colour"),
    ],
)
def test_obvious_non_mri_refused_with_reason(make, words):
    reasons = image_statistics_reasons(image_statistics(make()), DEFAULT_STATS)
    assert any(words in reason for reason in reasons), reasons


@pytest.mark.skipif(not TESTING.is_dir(), reason="the shared dataset is not on this machine")
def test_default_statistics_accept_nearly_all_official_test_scans():
    paths = sorted(TESTING.glob("*/*.jpg"))[::7]  # ~190 scans across the four classes
    refused = [p for p in paths if image_statistics_reasons(image_statistics(Image.open(p)), DEFAULT_STATS)]
    assert len(refused) / len(paths) <= 0.02, refused


def test_fit_image_statistics_ranges_and_colour_floor():
    images = [Image.open(p) for p in EXAMPLES]
    fitted = fit_image_statistics(images)
    assert set(fitted["ranges"]) == set(image_statistics(images[0]))
    assert fitted["ranges"]["colourfulness"][1] >= checks.COLOURFULNESS_FLOOR
    for low, high in fitted["ranges"].values():
        assert low < high
    json.dumps(fitted)


# --- feature distance --------------------------------------------------------------------------


# Features live near a 6-dimensional subspace around four class centres, as pooled CNN features do.
BASIS = np.random.default_rng(42).normal(size=(6, 40))


def _clusters(rng, n, dim=40, basis=BASIS):
    labels = rng.integers(0, 4, n)
    centres = np.eye(4, dim) * 6.0
    return centres[labels] + rng.normal(size=(n, 6)) @ basis * 0.5 + rng.normal(size=(n, dim)) * 0.05, labels


def test_feature_distance_accepts_in_distribution_and_refuses_far_points():
    rng = np.random.default_rng(0)
    train, y_train = _clusters(rng, 800)
    validation, _ = _clusters(rng, 400)
    fitted = fit_feature_distance(train, y_train, validation)
    json.dumps(fitted)
    test, _ = _clusters(rng, 400)
    accepted = sum(not feature_distance_reasons(x[None], fitted) for x in test)
    assert accepted / len(test) >= 0.97
    far = rng.normal(size=(50, 40)) * 3.0  # random directions: mostly outside the subspace
    refused = [feature_distance_reasons(x[None], fitted) for x in far]
    assert all(refused)
    assert "far from those of every training scan" in refused[0][0]


def test_feature_distance_fits_classes_with_no_spread_at_all():
    # Each class one image seen three times (tiny test fits): no within-class variance, yet the
    # covariance stays invertible and every score finite.
    points = np.random.default_rng(0).normal(size=(4, 16))
    train, labels = np.repeat(points, 3, axis=0), np.repeat(np.arange(4), 3)
    fitted = fit_feature_distance(train, labels, train)
    assert np.isfinite(fitted["precision"]).all()
    assert all(np.isfinite(score).all() for score in feature_scores(points, fitted))


def test_feature_distance_off_when_not_fitted():
    assert feature_distance_reasons(np.zeros((1, 8)), None) == []


# --- uncertainty -------------------------------------------------------------------------------


def _validation(rng, n=2000):
    """Probabilities whose correctness rises with confidence, like a calibrated model's."""
    labels = rng.integers(0, 4, n)
    top = rng.uniform(0.3, 1.0, n)
    correct = rng.uniform(size=n) < top
    predicted = np.where(correct, labels, (labels + 1) % 4)
    probs = np.full((n, 4), 0.0)
    probs[np.arange(n), predicted] = top
    rest = (1 - top) / 3
    for k in range(4):
        probs[:, k] += np.where(np.arange(4)[k] != predicted, rest, 0)
    return probs, labels


def test_uncertainty_thresholds_meet_target_with_most_coverage():
    probs, labels = _validation(np.random.default_rng(0))
    fitted = fit_uncertainty_thresholds(probs, labels, target_accuracy=0.8)
    assert fitted["target_met"]
    top, margin = probs.max(1), np.sort(probs, 1)[:, -1] - np.sort(probs, 1)[:, -2]
    accepted = (top >= fitted["min_top_probability"]) & (margin >= fitted["min_margin"])
    assert (probs.argmax(1) == labels)[accepted].mean() >= 0.8
    assert fitted["validation_coverage"] == pytest.approx(accepted.mean(), abs=1e-4)
    # A clearly lower top-probability threshold would miss the target.
    lower = top >= fitted["min_top_probability"] - 0.1
    assert (probs.argmax(1) == labels)[lower].mean() < 0.8
    json.dumps(fitted)


def test_uncertainty_target_unreachable_falls_back_and_says_so():
    probs, labels = _validation(np.random.default_rng(1))
    fitted = fit_uncertainty_thresholds(probs, labels, target_accuracy=0.9999)
    assert fitted["target_met"] is False
    assert fitted["validation_coverage"] >= 0.5


def test_uncertainty_perfect_model_needs_no_threshold():
    probs = np.eye(4)[np.arange(40) % 4] * 0.7 + 0.075
    fitted = fit_uncertainty_thresholds(probs, np.arange(40) % 4)
    assert fitted["validation_coverage"] == 1.0 and fitted["min_top_probability"] == 0.0


def test_uncertainty_reasons_words():
    labels = ["glioma", "meningioma", "notumor", "pituitary"]
    rule = {"min_top_probability": 0.6, "min_margin": 0.2}
    assert uncertainty_reasons([0.9, 0.05, 0.03, 0.02], labels, rule) == []
    reasons = uncertainty_reasons([0.45, 0.40, 0.1, 0.05], labels, rule)
    assert "below 60%" in reasons[0] and "meningioma" in reasons[1]


def test_resolve_checks_fills_missing_parts_with_defaults():
    assert resolve_checks(None)["uncertainty"] == DEFAULT_CHECKS["uncertainty"]
    custom = resolve_checks({"uncertainty": {"min_top_probability": 0.3, "min_margin": 0.0}})
    assert custom["uncertainty"]["min_top_probability"] == 0.3
    assert custom["image_statistics"] == DEFAULT_CHECKS["image_statistics"]
    json.dumps(DEFAULT_CHECKS)


# --- tumour threshold ----------------------------------------------------------------------------


def test_tumour_threshold_is_the_level_95_percent_of_validation_no_tumour_slices_stay_under():
    normal = np.random.default_rng(0).beta(1, 30, 390)  # P(tumour) of no-tumour slices: mostly near 0
    fitted = fit_tumour_threshold(normal)
    assert fitted["validation_specificity"] == 0.95 and fitted["n_validation_no_tumour"] == 390
    assert np.mean(normal <= fitted["threshold"]) == pytest.approx(0.95, abs=1 / 390)
    assert fit_tumour_threshold(normal, specificity=0.90)["threshold"] < fitted["threshold"]
    assert fit_tumour_threshold([]) is None  # no no-tumour slice in validation: nothing to fit


def test_only_a_no_tumour_answer_above_the_fitted_level_is_told_a_tumour_is_not_ruled_out():
    fitted = {"threshold": 0.08, "validation_specificity": 0.95, "n_validation_no_tumour": 390}
    [reason] = tumour_threshold_reasons(True, 0.2, fitted)
    assert reason == ("a tumour is not ruled out: the three tumour types together get 20.0%, above the 8.0% that "
                      "95% of the validation no-tumour slices stay under")
    assert tumour_threshold_reasons(True, 0.08, fitted) == []  # at the level, not above it
    assert tumour_threshold_reasons(False, 0.9, fitted) == []  # a tumour answer needs no such warning
    assert tumour_threshold_reasons(True, 0.2, None) == []  # not fitted: off
    assert tumour_threshold_reasons(True, None, fitted) == []  # a model with other classes
    assert DEFAULT_CHECKS["tumour_threshold"] is None and resolve_checks({})["tumour_threshold"] is None
