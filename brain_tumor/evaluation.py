"""Figures for evaluation sets that mix fine labels (four classes) and the coarse "tumour, type
unknown" label, per collection and per plane.

Coarse rows (Br35H `yes/`) are scored only where their label allows: is the answer a tumour class
(tumour recall)? No-tumour rows give the specificity. Four-class figures (accuracy, macro-F1,
per-class recall, ECE) use the finely labelled rows only.
"""

from __future__ import annotations

import re

import numpy as np
from .labels import CLASS_NAMES, DATASET_LABELS, NOTUMOR_ID
from .metrics import classification_metrics

FINE = len(CLASS_NAMES)  # dataset label ids below this are single classes
# BRISC file names carry the plane: brisc2025_train_02477_no_ax_t1.jpg
_PLANE = re.compile(r"_(ax|co|sa)_", re.IGNORECASE)
PLANES = {"ax": "axial", "co": "coronal", "sa": "sagittal"}


def binary_metrics(predictions: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Tumour recall (any tumour label answered with any tumour class) and no-tumour specificity."""
    tumour, healthy = labels != NOTUMOR_ID, labels == NOTUMOR_ID
    metrics = {"tumour_images": int(tumour.sum()), "notumor_images": int(healthy.sum())}
    if tumour.any():
        metrics["tumour_recall"] = float(np.mean(predictions[tumour] != NOTUMOR_ID))
    if healthy.any():
        metrics["notumor_specificity"] = float(np.mean(predictions[healthy] == NOTUMOR_ID))
    return metrics


def evaluate(logits: np.ndarray, labels: np.ndarray, four_class: bool = True) -> dict[str, float]:
    """Every figure for one evaluation set; `four_class` adds accuracy, macro-F1 and per-class figures
    (on its finely labelled rows), which only mean something where all four classes occur."""
    logits, labels = np.asarray(logits, dtype=np.float64), np.asarray(labels, dtype=int)
    predictions = logits.argmax(axis=1)
    fine = labels < FINE
    metrics = {"images": int(len(labels)), **binary_metrics(predictions, labels)}
    if fine.any():
        if four_class:
            metrics.update(classification_metrics(logits[fine], labels[fine]))
        else:
            metrics["accuracy"] = float(np.mean(predictions[fine] == labels[fine]))
    if (labels == DATASET_LABELS.index("tumor")).any():
        metrics["coarse_tumour_recall"] = float(np.mean(predictions[labels >= FINE] != NOTUMOR_ID))
    return metrics


def selection_score(metrics: dict[str, float]) -> float:
    """What picks the best checkpoint: the mean of macro-F1 (fine labels) and the balanced binary
    accuracy (tumour recall and specificity over all rows), so the coarse collections count too."""
    binary = [metrics[k] for k in ("tumour_recall", "notumor_specificity") if k in metrics]
    parts = [metrics["macro_f1"]] if "macro_f1" in metrics else []
    if binary:
        parts.append(float(np.mean(binary)))
    return float(np.mean(parts)) if parts else 0.0


def compute_metrics(eval_prediction) -> dict[str, float]:
    """The `compute_metrics` hook for `Trainer` (validation may hold coarse rows)."""
    metrics = evaluate(np.asarray(eval_prediction.predictions), np.asarray(eval_prediction.label_ids))
    metrics["balanced_score"] = selection_score(metrics)
    return metrics


def plane_of(file_name: str) -> str | None:
    match = _PLANE.search(file_name or "")
    return PLANES[match.group(1).lower()] if match else None


def evaluate_groups(logits: np.ndarray, labels: np.ndarray, collections: list[str],
                    file_names: list[str]) -> dict[str, dict]:
    """Per collection, and within it per plane where the file names reveal it (BRISC)."""
    logits, labels = np.asarray(logits), np.asarray(labels, dtype=int)
    collections, planes = np.asarray(collections), np.asarray([plane_of(n) or "" for n in file_names])
    report = {}
    for name in dict.fromkeys(collections):
        rows = collections == name
        entry = evaluate(logits[rows], labels[rows], four_class=len(set(labels[rows][labels[rows] < FINE])) > 1)
        by_plane = {plane: evaluate(logits[rows & (planes == plane)], labels[rows & (planes == plane)],
                                    four_class=False)
                    for plane in dict.fromkeys(planes[rows]) if plane}
        if by_plane:
            entry["by_plane"] = by_plane
        report[str(name)] = entry
    return report
