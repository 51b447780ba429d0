"""Fitting the checks for a model, storing them beside it, and serving them from the folder."""

import json
from pathlib import Path

from helpers_models import build_tiny_model
from PIL import Image

from brain_tumor.checks import CHECKS_FILE, save_checks
from brain_tumor.fit_checks import fit_checks
from brain_tumor.inference import Predictor

EXAMPLES = sorted((Path(__file__).resolve().parent.parent / "examples").glob("*.jpg"))


def test_fitted_checks_saved_beside_the_model_are_the_ones_predictor_uses(tmp_path):
    model, processor = build_tiny_model("resnet")
    images = [Image.open(p) for p in EXAMPLES] * 6
    labels = [p.name.split("_")[0] for p in EXAMPLES] * 6
    saved_as = {name: tuple(value.shape) for name, value in model.state_dict().items()}
    fitted = fit_checks(model, processor, images, images[:12], labels[:12], train_labels=labels)
    # train_hf.py saves the model after fitting its checks: the batch norms must still be there.
    assert {name: tuple(value.shape) for name, value in model.state_dict().items()} == saved_as
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    save_checks(fitted, tmp_path)
    assert "centre" not in json.loads((tmp_path / "config.json").read_text())["brain_tumor_checks"]["feature_distance"]
    predictor = Predictor.from_pretrained(str(tmp_path))
    assert predictor.checks_fitted and predictor.checks == fitted
    predictor.predict(EXAMPLES[0], heatmap=False)  # the fitted feature detector runs

    (tmp_path / CHECKS_FILE).unlink()  # a folder copied without the arrays still serves
    predictor = Predictor.from_pretrained(str(tmp_path))
    assert predictor.checks["feature_distance"] is None and predictor.checks["uncertainty"] == fitted["uncertainty"]
    assert predictor.predict(EXAMPLES[0], heatmap=False).label in predictor.labels


def test_coarse_rows_shape_the_mri_checks_but_not_the_uncertainty_thresholds():
    # Label 4 is "a tumour, type unknown" (Br35H yes/): no single true class for the uncertainty rule,
    # but real MRI slices that the "not an MRI" checks must know.
    model, processor = build_tiny_model("resnet")
    images = [Image.open(p) for p in EXAMPLES] * 6
    labels = [model.config.label2id[p.name.split("_")[0]] for p in EXAMPLES] * 6
    coarse = [4] * len(EXAMPLES)
    fitted = fit_checks(model, processor, images, images[:12] + images[:4], labels[:12] + coarse[:4],
                        train_labels=labels[:-4] + coarse[:4])
    assert fitted["uncertainty"]["n_validation"] == 12
    assert 4 in fitted["feature_distance"]["class_ids"]
    assert fitted["source"] == f"fitted on {len(images)} training and 16 validation images"


def test_the_tumour_level_is_fitted_on_the_validation_no_tumour_slices_only():
    model, processor = build_tiny_model("resnet")
    images = [Image.open(p) for p in EXAMPLES] * 3
    labels = [p.name.split("_")[0] for p in EXAMPLES] * 3
    fitted = fit_checks(model, processor, images, images, labels, train_labels=labels)
    level = fitted["tumour_threshold"]
    assert level["n_validation_no_tumour"] == labels.count("notumor") > 0
    assert 0.0 <= level["threshold"] <= 1.0 and level["validation_specificity"] == 0.95
