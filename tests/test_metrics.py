import numpy as np
from PIL import Image

from brain_tumor.labels import CLASS_NAMES
from brain_tumor.metrics import classification_metrics, expected_calibration_error, save_confusion_matrix


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


def test_classification_metrics_name_every_class_even_when_a_split_lacks_one():
    logits = np.eye(4)[[0, 0, 1]] * 5
    metrics = classification_metrics(logits, np.array([0, 1, 1]))  # no notumor, no pituitary
    assert set(metrics) == {"accuracy", "macro_f1", "ece", *(f"{kind}_{name}" for name in CLASS_NAMES
                                                              for kind in ("precision", "recall"))}
    assert metrics["recall_notumor"] == 0.0 and metrics["precision_pituitary"] == 0.0
    assert metrics["macro_f1"] == (2 / 3 + 2 / 3) / 4  # absent classes count as zero, as train_hf reports them


def test_confusion_matrix_png_is_written(tmp_path):
    logits = np.eye(4)[[0, 1, 2, 3, 0, 1]] * 5
    save_confusion_matrix(logits, np.array([0, 1, 2, 3, 1, 1]), tmp_path / "matrix.png", "a split (6 images)")
    with Image.open(tmp_path / "matrix.png") as image:
        assert image.format == "PNG" and image.size == (552, 480)  # 4.6 x 4.0 inches at 120 dpi
