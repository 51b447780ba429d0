import numpy as np
import pytest
from helpers_collections import PLANTED, make_collections
from helpers_datasets import image_dataset, reencode

from brain_tumor.card import collections_section
from brain_tumor.data import load_brain_mri
from brain_tumor.duplicates import fingerprint_dataset, find_twins
from brain_tumor.labels import ANY_TUMOR, CLASS_NAMES, DATASET_LABELS
from brain_tumor.splits import make_splits
from datasets import DatasetDict
from PIL import ImageOps
from synthetic import make_slice


def test_splits_drop_test_twins_from_clean_test_and_validation_twins_from_train():
    rng = np.random.default_rng(1)
    labels = [0, 1, 2, 3] * 10
    names = ("glioma", "meningioma", "notumor", "pituitary")
    train_images = [make_slice(names[label], rng, 64) for label in labels]
    # Twins: an exact copy, a re-encoded one, and a flipped one (the collections hold slices flipped too).
    test_images = [train_images[0].copy(), reencode(train_images[5], 70), ImageOps.mirror(train_images[6])] + \
                  [make_slice(names[label], rng, 64) for label in labels[:6]]
    # A twin inside train: whichever half lands in validation, its copy must leave train.
    train_images.append(train_images[9].copy())
    labels = labels + [labels[9]]
    dataset = DatasetDict(train=image_dataset(train_images, labels),
                          test=image_dataset(test_images, [0, 1, 2, 0, 1, 2, 3, 0, 1]))
    splits = make_splits(dataset, validation_fraction=0.25, seed=3)
    assert len(splits.official_test) == 9
    assert len(splits.clean_test) == 6
    assert sum(splits.audit["test_with_near_train_twin"].values()) == 3
    validation_prints = fingerprint_dataset(splits.validation)
    train_prints = fingerprint_dataset(splits.train)
    assert not find_twins(validation_prints, train_prints).near.any()
    assert len(splits.train) + len(splits.validation) + splits.audit["train_removed_as_twins_of_validation"] == 41


def test_one_dataset_dict_is_one_collection_named_dataset():
    rng = np.random.default_rng(2)
    names = ("glioma", "meningioma", "notumor", "pituitary")
    labels = [0, 1, 2, 3] * 4
    dataset = DatasetDict(train=image_dataset([make_slice(names[i], rng) for i in labels], labels),
                          test=image_dataset([make_slice(names[i], rng) for i in labels[:4]], labels[:4]))
    splits = make_splits(dataset, validation_fraction=0.25, seed=0)
    assert splits.primary == "dataset" and splits.held_out is None
    assert set(splits.audit["collections"]) == {"dataset"} and splits.audit["held_out"] == {}
    assert "dropped_as_twins_of_earlier_collections" not in splits.audit["collections"]["dataset"]
    for split in (splits.train, splits.validation, splits.official_test, splits.clean_test):
        assert set(split["collection"]) == {"dataset"}
        assert split.features["label"].names == list(names)  # no coarse label where none was given
        assert "mask" not in split.column_names


def test_coarse_test_rows_with_a_train_twin_are_counted_and_left_out_of_clean_test():
    rng = np.random.default_rng(4)
    tumour = DATASET_LABELS.index(ANY_TUMOR)
    train_images = [make_slice(("glioma", "notumor")[i % 2], rng) for i in range(8)]
    train_labels = [(tumour, 2)[i % 2] for i in range(8)]
    test_images = [train_images[0].copy(), make_slice("pituitary", rng), make_slice("notumor", rng)]
    dataset = DatasetDict(train=image_dataset(train_images, train_labels, coarse=True),
                          test=image_dataset(test_images, [tumour, tumour, 2], coarse=True))
    splits = make_splits({"flat": dataset}, validation_fraction=0.25, seed=0)
    assert len(splits.clean_test) == 2
    assert splits.audit["collections"]["flat"]["test_with_exact_train_twin"]["tumor"] == 1
    assert splits.audit["test_with_near_train_twin"]["tumor"] == 1
    assert splits.train.features["label"].names == list(DATASET_LABELS)


# --- several collections, twins planted across them (tests/helpers_collections.py) ------------------------

@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    return make_collections(tmp_path_factory.mktemp("collections"))


@pytest.fixture(scope="module")
def several(folders):
    loaded = {name: load_brain_mri(str(getattr(folders, name)), seed=5) for name in ("v1", "br35h", "brisc")}
    return make_splits(loaded, validation_fraction=0.2, seed=5,
                       held_out={"held": load_brain_mri(str(folders.held), seed=5)})


def _rows(dataset, collection=None, other_than=None):
    keep = [i for i, name in enumerate(dataset["collection"])
            if (collection is None or name == collection) and (other_than is None or name != other_than)]
    return dataset.select(keep)


def test_twins_of_an_earlier_collection_are_dropped_and_counted(several):
    collections = several.audit["collections"]
    assert list(collections) == ["v1", "br35h", "brisc"] and several.primary == "v1"
    assert collections["v1"].get("dropped_as_twins_of_earlier_collections", 0) == 0
    assert collections["br35h"]["dropped_as_twins_of_earlier_collections"] == 5
    assert collections["brisc"]["dropped_as_twins_of_earlier_collections"] == 1
    for name in ("br35h", "brisc"):
        kept = set().union(*(set(_rows(split, name)["file_name"]) for split in
                             (several.train, several.validation, several.official_test)))
        assert kept.isdisjoint(PLANTED[name])
    # The earlier collection's copies stand.
    assert len(several.official_test.filter(lambda n: n == "Te-gl_0000.jpg", input_columns="file_name")) == 1


def test_held_out_rows_that_twin_a_training_collection_are_dropped(several):
    assert several.audit["held_out"] == {"held": {"images": 8, "dropped_as_twins_of_training_collections": 2,
                                                  "kept": 6}}
    assert set(several.held_out["collection"]) == {"held"} and len(several.held_out) == 6
    assert set(several.held_out["file_name"]).isdisjoint(PLANTED["held"])
    assert set(several.held_out["label"]) == {DATASET_LABELS.index(ANY_TUMOR)}


def test_no_training_image_twins_any_evaluation_image(several):
    train_prints = {name: fingerprint_dataset(_rows(several.train, name)) for name in ("v1", "br35h", "brisc")}
    held_out = fingerprint_dataset(several.held_out)
    validation = fingerprint_dataset(several.validation)
    clean_test = fingerprint_dataset(several.clean_test)
    for name, prints in train_prints.items():
        other_tests = fingerprint_dataset(_rows(several.official_test, other_than=name))
        for reference in (validation, other_tests, held_out, clean_test):
            assert not find_twins(prints, reference).near.any(), name
    removed = {name: entry["train_removed_as_twins_of"] for name, entry in several.audit["collections"].items()}
    assert all(set(reasons) == {"validation", "other_collections_test", "held_out"} for reasons in removed.values())


def test_every_row_keeps_its_collection_and_label(several):
    origin = {"Tr": "v1", "Te": "v1", "y": "br35h", "no": "br35h", "brisc2025": "brisc"}
    sizes = {name: entry["split_sizes"] for name, entry in several.audit["collections"].items()}
    for split_name in ("train", "validation", "official_test", "clean_test"):
        split = getattr(several, split_name)
        assert split.features["label"].names == list(DATASET_LABELS)  # one collection is coarse: all widen
        for file_name, collection, label in zip(split["file_name"], split["collection"], split["label"]):
            prefix = next(p for p in sorted(origin, key=len, reverse=True) if file_name.startswith(p))
            assert collection == origin[prefix], file_name
            if collection == "v1":
                assert CLASS_NAMES[label][:2] == file_name[3:5]
            elif collection == "brisc" or file_name.startswith("no"):
                assert label == CLASS_NAMES.index("notumor")
            else:
                assert label == DATASET_LABELS.index(ANY_TUMOR)
        for name, per_collection in sizes.items():
            assert len(_rows(split, name)) == sum(per_collection[split_name].values())
    assert sum(sizes["v1"]["official_test"].values()) == 12 and sum(sizes["brisc"]["official_test"].values()) == 6



def test_held_out_twins_training_scores_the_whole_held_out_collection_and_clears_its_twins(folders, several):
    # The variant of holding all of Br35H out: its no/ slices are v1's notumor, so they must leave v1's
    # training and validation rather than the held-out set.
    loaded = {name: load_brain_mri(str(getattr(folders, name)), seed=5) for name in ("v1", "br35h", "brisc")}
    whole = make_splits(loaded, validation_fraction=0.2, seed=5, held_out_twins="training",
                        held_out={"held": load_brain_mri(str(folders.held), seed=5)})
    assert whole.audit["held_out_twins"] == "training"
    assert whole.audit["held_out"] == {"held": {"images": 8, "dropped_as_twins_of_training_collections": 0, "kept": 8}}
    assert PLANTED["held"][0] in set(whole.held_out["file_name"])
    held_out = fingerprint_dataset(whole.held_out)
    for split in (whole.train, whole.validation):
        assert not find_twins(fingerprint_dataset(split), held_out).near.any()
    # The held-out copy of a v1 training file took that file out of v1's train or validation; the copy of a
    # BRISC test file leaves BRISC's test alone (tests are never trained on).
    collections = whole.audit["collections"]
    removed_from_v1 = (collections["v1"]["train_removed_as_twins_of"]["held_out"]
                       + collections["v1"]["validation_removed_as_twins_of_held_out"])
    assert removed_from_v1 == 1
    assert len(whole.train) + len(whole.validation) == len(several.train) + len(several.validation) - 1
    assert len(whole.official_test) == len(several.official_test)
    assert "scored whole" in collections_section(whole.audit) and "scored whole" not in collections_section(several.audit)


def test_held_out_twins_must_name_a_side(folders):
    data = {"v1": load_brain_mri(str(folders.v1), seed=5)}
    with pytest.raises(ValueError, match="held_out_twins must be one of"):
        make_splits(data, held_out_twins="both")
