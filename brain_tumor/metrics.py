"""Classification metrics: accuracy, macro-F1, per-class precision/recall, ECE, confusion matrix.

`evaluate`'s accuracy/F1/precision/recall are scripts fetched from the Hugging Face Hub at run
time (they fail offline, where this project trains and is tested) and wrap scikit-learn; we call
scikit-learn directly (`classification_report`, `ConfusionMatrixDisplay`). ECE has no well-kept
implementation in either, so it is written here.
"""

from __future__ import annotations

import numpy as np
from scipy.special import softmax
from sklearn.metrics import ConfusionMatrixDisplay, accuracy_score, classification_report

from .labels import CLASS_NAMES

ECE_BINS = 15


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray, n_bins: int = ECE_BINS) -> float:
    """Top-label ECE with equal-width confidence bins: sum_b |acc_b - conf_b| * n_b / n."""
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    bins = np.minimum((confidence * n_bins).astype(int), n_bins - 1)
    error = 0.0
    for b in range(n_bins):
        in_bin = bins == b
        if in_bin.any():
            error += abs(correct[in_bin].mean() - confidence[in_bin].mean()) * in_bin.mean()
    return float(error)


def classification_metrics(logits: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Every figure we report for one split, as a flat dict (Trainer prefixes it with the split)."""
    probabilities = softmax(logits, axis=1)
    predictions = probabilities.argmax(axis=1)
    # Every class is listed, so a class absent from a small split still gets its (zero) figures.
    report = classification_report(labels, predictions, labels=list(range(len(CLASS_NAMES))),
                                   target_names=CLASS_NAMES, output_dict=True, zero_division=0)
    metrics = {
        "accuracy": float(accuracy_score(labels, predictions)),
        "macro_f1": float(report["macro avg"]["f1-score"]),
        "ece": expected_calibration_error(probabilities, labels),
    }
    for name in CLASS_NAMES:
        metrics[f"precision_{name}"] = float(report[name]["precision"])
        metrics[f"recall_{name}"] = float(report[name]["recall"])
    return metrics


def compute_metrics(eval_prediction) -> dict[str, float]:
    """The `compute_metrics` hook for `Trainer`."""
    return classification_metrics(np.asarray(eval_prediction.predictions), np.asarray(eval_prediction.label_ids))


def save_confusion_matrix(logits: np.ndarray, labels: np.ndarray, path, title: str) -> None:
    """A labelled confusion-matrix PNG (rows: true class, columns: predicted class)."""
    import matplotlib

    matplotlib.use("Agg")  # no display on servers and CI
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(4.6, 4.0), dpi=120)
    ConfusionMatrixDisplay.from_predictions(labels, logits.argmax(axis=1), labels=list(range(len(CLASS_NAMES))),
                                            display_labels=CLASS_NAMES, cmap="Blues", colorbar=False,
                                            xticks_rotation=30, ax=axes)
    plt.setp(axes.get_xticklabels(), ha="right")  # rotated names end under their column
    axes.set_title(title, fontsize=10)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
