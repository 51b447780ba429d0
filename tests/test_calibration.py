import numpy as np
import torch
from scipy.special import softmax

from brain_tumor.calibration import fit_temperature
from brain_tumor.metrics import classification_metrics, expected_calibration_error
from brain_tumor.modeling import build_from_config, fold_temperature


def test_fit_temperature_recovers_the_temperature_that_generated_the_labels():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, (4000, 4))
    labels = np.array([rng.choice(4, p=p) for p in softmax(logits / 2.0, axis=1)])
    assert abs(fit_temperature(logits, labels) - 2.0) < 0.15


def test_folding_the_temperature_keeps_the_argmax_and_gives_the_fitted_probabilities():
    torch.manual_seed(0)
    model, _ = build_from_config("resnet-mini", 32)
    model.eval()
    pixels = torch.randn(6, 3, 32, 32)
    with torch.no_grad():
        before = model(pixel_values=pixels).logits
        fold_temperature(model, 2.5)
        after = model(pixel_values=pixels).logits
    assert torch.equal(before.argmax(1), after.argmax(1))
    torch.testing.assert_close(after.softmax(1), (before / 2.5).softmax(1), rtol=1e-5, atol=1e-6)


def test_ece_is_zero_when_confidence_matches_accuracy_and_large_when_overconfident():
    labels = np.array([0, 0, 0, 1])
    calibrated = np.tile([0.75, 0.25, 0, 0], (4, 1))  # says 75 %, right 3 times in 4
    assert expected_calibration_error(calibrated, labels) == 0.0
    overconfident = np.tile([0.99, 0.01, 0, 0], (4, 1))
    assert abs(expected_calibration_error(overconfident, labels) - 0.24) < 1e-9


def test_classification_metrics_per_class_and_macro():
    logits = np.eye(4)[[0, 1, 2, 3, 0, 1]] * 5
    labels = np.array([0, 1, 2, 3, 1, 1])
    metrics = classification_metrics(logits, labels)
    assert metrics["accuracy"] == 5 / 6
    assert metrics["recall_meningioma"] == 2 / 3 and metrics["precision_glioma"] == 0.5
    assert 0 < metrics["macro_f1"] < 1
