"""The ranking and counting of bench/label_audit.py, on scores whose answers are known."""

import numpy as np

from bench.label_audit import counts_by_group, doubted


def test_the_doubted_come_highest_first_with_ties_in_input_order():
    p_tumour = np.array([0.2, 0.99, 0.5, 0.99, 0.01])
    assert doubted(p_tumour, 3).tolist() == [1, 3, 2]
    assert doubted(p_tumour, 10).tolist() == [1, 3, 2, 0, 4]  # every no-tumour slice is ranked, none dropped


def test_counts_are_per_collection_and_split_in_order_of_first_appearance_above_one_half():
    collections = ["v1", "v1", "brisc", "v1", "brisc", "v1"]
    splits = ["train", "train", "train", "official_test", "train", "train"]
    p_tumour = np.array([0.9, 0.5, 0.7, 0.51, 0.1, 0.2])  # 0.5 itself is not "more likely a tumour than not"
    assert counts_by_group(collections, splits, p_tumour) == [
        ["v1", "train", 3, 1, 1 / 3], ["brisc", "train", 2, 1, 0.5], ["v1", "official_test", 1, 1, 1.0]]
