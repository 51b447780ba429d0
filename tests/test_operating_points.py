"""The operating-point arithmetic of bench/operating_points.py, on scores whose answers are known, and its mean of
models on tiny real ones."""

import numpy as np
import pytest
from datasets import Dataset, Features
from datasets import Image as ImageFeature
from helpers_models import save_tiny_model
from PIL import Image

from bench.operating_points import (
    class_probabilities,
    distinct_images,
    fitted_on_validation,
    held_out_negatives,
    operating_points,
    per_distinct_image,
    thresholds,
    tumour_scores,
)
from brain_tumor.checks import fit_tumour_threshold
from brain_tumor.checks.rounding import round6
from brain_tumor.inference import Predictor
from brain_tumor.labels import CLASS_NAMES, NOTUMOR_ID


def test_recall_is_read_where_the_negatives_reach_the_asked_specificity():
    negatives = np.linspace(0.0, 0.99, 100)  # P(tumour) of 100 no-tumour slices
    positives = np.array([0.2, 0.92, 0.96, 0.995])
    report = operating_points(positives, negatives)
    assert report["positives"] == 4 and report["negatives"] == 100
    # Above the 0.95 quantile (0.9405) lie 0.96 and 0.995; above the 0.90 quantile (0.891) also 0.92.
    assert report["recall_at_specificity_0.95"] == pytest.approx(0.5)
    assert report["recall_at_specificity_0.90"] == pytest.approx(0.75)
    assert 0.5 < report["roc_auc"] < 1
    # P(tumour) > 0.5: three of the four tumours; the 49 negatives above 0.50 are false alarms, 0.50 itself is not.
    assert report["recall_summed"] == pytest.approx(0.75)
    assert report["specificity_summed"] == pytest.approx(0.51)


def test_held_out_normals_are_scored_at_the_thresholds_of_the_official_ones():
    official = np.linspace(0.0, 0.99, 100)
    positives = np.array([0.95, 0.97, 0.99])
    held_normals = np.array([0.1, 0.5, 0.93, 0.999])  # two above the 0.90 threshold, one above the 0.95 one
    report = held_out_negatives(positives, official, held_normals, np.array([False, False, True, True]))
    assert report["held_out_negatives"] == 4
    assert report["held_out_specificity_argmax"] == pytest.approx(0.5)
    assert report["held_out_specificity_at_specificity_0.90"] == pytest.approx(0.5)
    assert report["held_out_specificity_at_specificity_0.95"] == pytest.approx(0.75)
    assert report["held_out_roc_auc"] == pytest.approx(9 / 12)  # every tumour above three of the four normals
    assert "held_out_specificity_at_validation_threshold_0.90" not in report

    validation = np.linspace(0.0, 0.099, 100)  # thresholds 0.09405 and 0.0891: only the 0.1 normal stays below
    report = held_out_negatives(positives, official, held_normals, np.array([False, False, True, True]), validation)
    assert report["held_out_specificity_at_validation_threshold_0.95"] == pytest.approx(0.0)
    held_normals = np.array([0.05, 0.09, 0.5, 0.999])  # 0.09 lies between the two thresholds
    report = held_out_negatives(positives, official, held_normals, np.array([False, False, True, True]), validation)
    assert report["held_out_specificity_at_validation_threshold_0.95"] == pytest.approx(0.5)
    assert report["held_out_specificity_at_validation_threshold_0.90"] == pytest.approx(0.25)


def test_thresholds_fitted_on_validation_are_scored_on_held_out_tumours_and_test_negatives():
    validation = np.linspace(0.0, 0.99, 100)  # quantiles 0.9405 (specificity 0.95) and 0.891 (0.90)
    positives = np.array([0.2, 0.92, 0.96, 0.995])
    test_negatives = np.array([0.1, 0.5, 0.9, 0.95])  # one above 0.9405, two above 0.891
    report = fitted_on_validation(positives, test_negatives, validation)
    assert report["validation_negatives"] == 100
    assert report["validation_threshold_0.95"] == pytest.approx(0.9405)
    assert report["recall_at_validation_threshold_0.95"] == pytest.approx(0.5)
    assert report["recall_at_validation_threshold_0.90"] == pytest.approx(0.75)
    assert report["specificity_at_validation_threshold_0.95"] == pytest.approx(0.75)
    assert report["specificity_at_validation_threshold_0.90"] == pytest.approx(0.5)


def test_the_served_tumour_threshold_is_the_one_this_script_scores():
    # The app's "tumour not ruled out" level must be the validation threshold whose recall is reported here.
    validation = np.random.default_rng(1).beta(1, 30, 390)
    assert fit_tumour_threshold(validation)["threshold"] == round6(thresholds(validation)[0.95])


def test_recall_per_distinct_image_counts_a_slice_saved_many_times_once():
    # Image 0 saved four times and found once; images 1 and 2 once each, found and missed.
    hits = np.array([True, False, False, False, True, False])
    groups = np.array([0, 0, 0, 0, 1, 2])
    assert per_distinct_image(hits, groups) == pytest.approx((0.25 + 1 + 0) / 3)
    assert per_distinct_image(hits, np.arange(6)) == pytest.approx(hits.mean())  # no twins: the slice recall
    assert np.isnan(per_distinct_image(np.array([], bool), np.array([], int)))
    # Group numbers need not be consecutive.
    assert per_distinct_image(np.array([True, False]), np.array([0, 5])) == pytest.approx(0.5)


def test_distinct_images_scores_the_answer_and_the_validation_thresholds_per_image():
    positives = np.array([0.9, 0.9, 0.9, 0.2, 0.02])
    found = positives > 0.5
    groups = np.array([0, 0, 0, 1, 2])
    validation_negatives = np.linspace(0, 0.1, 101)  # thresholds 0.095 (specificity 0.95) and 0.09 (0.90)
    report = distinct_images(positives, found, groups, validation_negatives)
    assert report["distinct_positives"] == 3
    assert report["recall_argmax_distinct"] == pytest.approx(1 / 3)
    assert report["recall_at_validation_threshold_0.95_distinct"] == pytest.approx(2 / 3)
    assert report["recall_at_validation_threshold_0.90_distinct"] == pytest.approx(2 / 3)


def test_the_mean_of_models_averages_their_probabilities_and_answers_its_arg_max(tmp_path):
    predictors = [Predictor.from_pretrained(save_tiny_model(tmp_path / f"m{seed}", "resnet", seed=seed), device="cpu")
                  for seed in (0, 1)]
    generator = np.random.default_rng(0)
    images = Dataset.from_dict(
        {"image": [Image.fromarray(generator.integers(0, 255, (48, 40), dtype=np.uint8)).convert("RGB")
                   for _ in range(3)]}, features=Features({"image": ImageFeature()}))
    singles = [predictor.predict_batch(images.with_format(None)["image"], batch_size=2) for predictor in predictors]
    first, second = (class_probabilities(predictor, images) for predictor in predictors)
    assert first.shape == (3, len(CLASS_NAMES))
    for row, prediction in zip(first, singles[0]):  # columns in CLASS_NAMES order, as the model gave them
        assert row.tolist() == pytest.approx([prediction.probabilities[name] for name in CLASS_NAMES])
    assert not np.allclose(first, second)  # two different models, so the mean is not either
    mean = (first + second) / 2
    p_tumour, answer_is_tumour = tumour_scores(mean)
    assert p_tumour == pytest.approx(1 - mean[:, NOTUMOR_ID])
    assert answer_is_tumour.tolist() == (mean.argmax(axis=1) != NOTUMOR_ID).tolist()


def test_the_answer_is_the_arg_max_not_the_summed_tumour_probability():
    # Split over three types, the tumours outweigh "no tumour" (0.6) while no tumour is still the arg max.
    p_tumour, answer_is_tumour = tumour_scores(np.array([[0.3, 0.0, 0.4, 0.3], [0.7, 0.1, 0.1, 0.1]]))
    assert p_tumour == pytest.approx([0.6, 0.9])
    assert answer_is_tumour.tolist() == [False, True]
