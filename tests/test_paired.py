"""bench/paired.py, and the per-slice answers and the splits of bench/collections_eval.py, on data whose counts are known."""

import json

import numpy as np
import pytest
from helpers_collections import make_collections
from scipy.stats import binomtest

from bench.collections_eval import answers_by_file, silent_misses, splits_on_original_files
from bench.paired import compare, listed_names, read_answers, restricted
from brain_tumor.labels import ANY_TUMOR_ID, CLASS_NAMES
from brain_tumor.recipe import load_splits, make_recipe, save_recipe


def test_answers_are_keyed_by_file_name_with_the_label_spelled_out():
    labels = np.array([CLASS_NAMES.index("glioma"), ANY_TUMOR_ID])
    answers = answers_by_file(np.array(["a.jpg", "y1.jpg"]), labels, ["meningioma", "pituitary"])
    assert answers == {"a.jpg": ["glioma", "meningioma"], "y1.jpg": ["tumor", "pituitary"]}
    with pytest.raises(ValueError, match="repeat"):
        answers_by_file(np.array(["a.jpg", "a.jpg"]), labels, ["glioma", "glioma"])


def test_mcnemar_counts_only_the_slices_one_model_gets_right():
    # 20 slices both get right, 8 only A gets right, 2 only B, 5 both get wrong; one slice only A scored.
    a, b = {}, {}
    for i in range(35):
        right_a, right_b = i < 28, i < 20 or 28 <= i < 30
        a[f"s{i}"] = ["glioma", "glioma" if right_a else "meningioma"]
        b[f"s{i}"] = ["glioma", "glioma" if right_b else "pituitary"]
    a["extra"] = ["glioma", "glioma"]
    report = compare(a, b)
    assert report["slices"] == 35 and (report["only_a_right"], report["only_b_right"]) == (8, 2)
    assert report["accuracy_a"] == pytest.approx(28 / 35) and report["accuracy_b"] == pytest.approx(22 / 35)
    assert report["mcnemar_p"] == pytest.approx(binomtest(8, 10, 0.5).pvalue)  # 0.109: not below 0.05
    low, high = report["accuracy_a_95"]
    assert low < 28 / 35 < high and high - low > 0.2  # 35 slices cannot pin an accuracy down


def test_a_tumour_of_unknown_type_is_right_as_any_tumour_class():
    report = compare({"y1": ["tumor", "pituitary"], "y2": ["tumor", "notumor"]},
                     {"y1": ["tumor", "glioma"], "y2": ["tumor", "glioma"]})
    assert (report["accuracy_a"], report["accuracy_b"]) == (0.5, 1.0)
    assert (report["only_a_right"], report["only_b_right"]) == (0, 1)


def test_files_that_disagree_on_labels_or_lack_answers_are_refused(tmp_path):
    with pytest.raises(ValueError, match="different labels"):
        compare({"s": ["glioma", "glioma"]}, {"s": ["meningioma", "glioma"]})
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"clean_test": {"brain-tumor-mri-v1": {"accuracy": 0.9}}}))
    with pytest.raises(SystemExit, match="re-run bench/collections_eval.py"):
        read_answers(str(old), "clean_test", "brain-tumor-mri-v1")
    with pytest.raises(SystemExit, match="no clean_test of br35h-2020"):
        read_answers(str(old), "clean_test", "br35h-2020")


def test_collections_eval_cuts_splits_with_the_models_own_seed(tmp_path):
    # Br35H-like flat collections get their test split from the seed: a seed-43 model scored on a
    # seed-42 cut would be scored on slices it trained on.
    collections = make_collections(tmp_path / "data")
    model = tmp_path / "model"
    model.mkdir()
    save_recipe(make_recipe(collections.training, seed=43), model)

    def br35h_test_files(splits):
        test = splits.official_test.filter(lambda row: row == "br35h", input_columns="collection")
        return sorted(test["file_name"])

    trained_on, splits = splits_on_original_files(str(model), str(tmp_path / "data"))
    assert trained_on == ["v1", "br35h", "brisc"]
    as_trained = load_splits(make_recipe(collections.training, seed=43))
    as_seed_42 = load_splits(make_recipe(collections.training, seed=42))
    assert br35h_test_files(splits) == br35h_test_files(as_trained) != br35h_test_files(as_seed_42)


def test_a_silent_miss_is_a_tumour_called_normal_with_no_flag():
    labels = np.array([0, 0, 0, 0, 2, 4])  # glioma x4, notumor, "a tumour, type unknown"
    called_normal = np.array([True, True, True, False, True, True])
    not_mri = np.array([False, True, False, False, False, False])
    uncertain = np.array([False, False, True, False, False, False])
    assert silent_misses(labels, called_normal, not_mri, uncertain).tolist() == [True, False, False, False, False, True]


def test_only_the_listed_slices_are_compared_whatever_form_the_list_takes(tmp_path):
    copies = tmp_path / "copies.md"  # as bench/find_copies.py writes it
    copies.write_text("    python bench/find_copies.py --of y2.jpg\n\n2 images of 9 ...:\n\n"
                      "- 1.000  ../shared/data/br35h-2020/yes/y2.jpg\n- 0.981  ../shared/data/br35h-2020/yes/Y10.JPG\n")
    plain = tmp_path / "doubted.txt"  # as doubted_notumor_labels.txt
    plain.write_text("# a comment naming no file\nTe-no_0001.jpg  # Testing/notumor\nno3.png\n")
    assert listed_names(str(copies)) == {"y2.jpg", "Y10.JPG"}
    assert listed_names(str(plain)) == {"Te-no_0001.jpg", "no3.png"}
    answers = {"y2.jpg": ["tumor", "notumor"], "y3.jpg": ["tumor", "glioma"], "Y10.JPG": ["tumor", "glioma"]}
    kept = restricted(answers, listed_names(str(copies)))
    assert kept == {"y2.jpg": ["tumor", "notumor"], "Y10.JPG": ["tumor", "glioma"]}
    assert compare(kept, kept)["accuracy_a"] == 0.5
