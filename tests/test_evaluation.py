"""brain_tumor.evaluation on hand-made logits: every figure worked out by hand below."""

import numpy as np
import pytest
from transformers import EvalPrediction

from brain_tumor.evaluation import compute_metrics, evaluate, evaluate_groups, plane_of, selection_score
from brain_tumor.labels import ANY_TUMOR, CLASS_NAMES, DATASET_LABELS

GLIOMA, MENINGIOMA, NOTUMOR, PITUITARY = range(4)
TUMOR = DATASET_LABELS.index(ANY_TUMOR)


def logits_for(predictions) -> np.ndarray:
    """Logits whose argmax is each given class (and not calibrated to anything in particular)."""
    logits = np.zeros((len(predictions), len(CLASS_NAMES)))
    logits[np.arange(len(predictions)), predictions] = 3.0
    return logits


# Eight rows: four fine classes, three coarse 'tumour' rows, and a second notumor row.
LABELS = [GLIOMA, MENINGIOMA, NOTUMOR, PITUITARY, TUMOR, TUMOR, TUMOR, NOTUMOR]
PREDICTIONS = [GLIOMA, NOTUMOR, NOTUMOR, PITUITARY, MENINGIOMA, NOTUMOR, GLIOMA, GLIOMA]
# Tumour rows (labels other than notumor): 0, 1, 3, 4, 5, 6; answered with a tumour class: 0, 3, 4, 6.
# Fine rows: 0, 1, 2, 3, 7; right: 0, 2, 3. Per-class F1 on them: glioma 2/3 (one false positive),
# meningioma 0, notumor 1/2, pituitary 1.
MACRO_F1 = (2 / 3 + 0 + 1 / 2 + 1) / 4


def test_evaluate_scores_coarse_rows_only_as_tumour_or_not():
    metrics = evaluate(logits_for(PREDICTIONS), np.array(LABELS))
    assert metrics["images"] == 8 and metrics["tumour_images"] == 6 and metrics["notumor_images"] == 2
    assert metrics["tumour_recall"] == pytest.approx(4 / 6)
    assert metrics["notumor_specificity"] == pytest.approx(1 / 2)
    assert metrics["coarse_tumour_recall"] == pytest.approx(2 / 3)
    assert metrics["accuracy"] == pytest.approx(3 / 5)  # fine rows only
    assert metrics["macro_f1"] == pytest.approx(MACRO_F1)
    assert metrics["recall_glioma"] == 1.0 and metrics["recall_meningioma"] == 0.0
    assert metrics["recall_notumor"] == pytest.approx(1 / 2)


def test_evaluate_without_four_classes_gives_accuracy_but_no_macro_f1():
    metrics = evaluate(logits_for([NOTUMOR, GLIOMA, NOTUMOR]), np.array([NOTUMOR] * 3), four_class=False)
    assert metrics["accuracy"] == pytest.approx(2 / 3) == metrics["notumor_specificity"]
    assert "macro_f1" not in metrics and "tumour_recall" not in metrics and "coarse_tumour_recall" not in metrics


def test_evaluate_on_coarse_rows_only_has_no_four_class_figures():
    metrics = evaluate(logits_for([PITUITARY, NOTUMOR]), np.array([TUMOR, TUMOR]))
    assert metrics["tumour_recall"] == metrics["coarse_tumour_recall"] == 0.5
    assert "accuracy" not in metrics and "notumor_specificity" not in metrics


def test_selection_score_is_the_mean_of_macro_f1_and_balanced_binary_accuracy():
    metrics = evaluate(logits_for(PREDICTIONS), np.array(LABELS))
    expected = (MACRO_F1 + (4 / 6 + 1 / 2) / 2) / 2
    assert selection_score(metrics) == pytest.approx(expected)
    assert selection_score({"tumour_recall": 0.8}) == pytest.approx(0.8)  # only coarse rows
    assert selection_score({"macro_f1": 0.7}) == pytest.approx(0.7)
    assert selection_score({}) == 0.0


def test_compute_metrics_for_trainer_adds_the_balanced_score():
    metrics = compute_metrics(EvalPrediction(predictions=logits_for(PREDICTIONS), label_ids=np.array(LABELS)))
    assert metrics["balanced_score"] == pytest.approx((MACRO_F1 + (4 / 6 + 1 / 2) / 2) / 2)
    assert metrics["tumour_recall"] == pytest.approx(4 / 6)


@pytest.mark.parametrize("file_name, plane", [
    ("brisc2025_train_00001_no_ax_t1.jpg", "axial"), ("brisc2025_test_00140_no_co_t1.jpg", "coronal"),
    ("BRISC2025_TRAIN_00002_NO_SA_T1.JPG", "sagittal"), ("Tr-gl_0010.jpg", None), ("y12.jpg", None),
    ("", None), (None, None),
])
def test_plane_of_reads_brisc_file_names(file_name, plane):
    assert plane_of(file_name) == plane


def test_evaluate_groups_reports_each_collection_and_brisc_planes():
    rows = [  # (collection, file name, label, prediction)
        ("v1", "Te-gl_0000.jpg", GLIOMA, GLIOMA), ("v1", "Te-me_0000.jpg", MENINGIOMA, MENINGIOMA),
        ("v1", "Te-no_0000.jpg", NOTUMOR, PITUITARY), ("v1", "Te-pi_0000.jpg", PITUITARY, PITUITARY),
        ("brisc", "brisc2025_test_00001_no_ax_t1.jpg", NOTUMOR, NOTUMOR),
        ("brisc", "brisc2025_test_00002_no_ax_t1.jpg", NOTUMOR, NOTUMOR),
        ("brisc", "brisc2025_test_00003_no_co_t1.jpg", NOTUMOR, GLIOMA),
        ("brisc", "brisc2025_test_00004_no_sa_t1.jpg", NOTUMOR, NOTUMOR),
        ("br35h", "y1.jpg", TUMOR, MENINGIOMA), ("br35h", "y2.jpg", TUMOR, NOTUMOR),
        ("br35h", "no1.jpg", NOTUMOR, NOTUMOR),
    ]
    collections, names, labels, predictions = map(list, zip(*rows))
    report = evaluate_groups(logits_for(predictions), np.array(labels), collections, names)
    assert list(report) == ["v1", "brisc", "br35h"]
    assert report["v1"]["accuracy"] == 0.75 and report["v1"]["notumor_specificity"] == 0.0
    assert "macro_f1" in report["v1"] and "by_plane" not in report["v1"]
    assert report["brisc"]["notumor_specificity"] == report["brisc"]["accuracy"] == 0.75
    assert "macro_f1" not in report["brisc"]  # one class: four-class figures would mean nothing
    planes = report["brisc"]["by_plane"]
    assert list(planes) == ["axial", "coronal", "sagittal"]
    assert [planes[p]["notumor_specificity"] for p in planes] == [1.0, 0.0, 1.0]
    assert [planes[p]["images"] for p in planes] == [2, 1, 1]
    assert report["br35h"]["coarse_tumour_recall"] == report["br35h"]["tumour_recall"] == 0.5
    assert report["br35h"]["notumor_specificity"] == 1.0 and "by_plane" not in report["br35h"]
