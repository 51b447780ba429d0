"""brain_tumor.recipe: the data recipe saved beside a model, and the splits it reproduces."""

import json
from pathlib import Path

import numpy as np
import pytest
from helpers_collections import PLANTED, make_collections
from PIL import Image

from brain_tumor.data import load_brain_mri
from brain_tumor.duplicates import DEFAULT_NEAR_THRESHOLD
from brain_tumor.recipe import (
    DEFAULTS,
    RECIPE_FILE,
    collection_name,
    load_splits,
    make_recipe,
    read_recipe,
    save_recipe,
)


def test_make_recipe_fills_defaults_and_refuses_unknown_settings():
    recipe = make_recipe(["a", "b"], held_out=None, seed=3)
    assert recipe == {**DEFAULTS, "datasets": ["a", "b"], "held_out": [], "seed": 3}
    assert recipe["near_threshold"] == DEFAULT_NEAR_THRESHOLD and recipe["validation_fraction"] == 0.15
    with pytest.raises(ValueError, match=r"Unknown data recipe settings: \['sead'\]"):
        make_recipe(["a"], sead=3)


def test_recipe_round_trips_beside_a_model_and_is_none_where_absent(tmp_path):
    recipe = make_recipe(["../shared/data/v1", "someone/hub-set"], held_out=["x"], masks="m", seed=7)
    path = save_recipe(recipe, tmp_path)
    assert path == tmp_path / RECIPE_FILE and json.loads(path.read_text()) == recipe
    assert read_recipe(tmp_path) == recipe
    assert read_recipe(tmp_path / "elsewhere") is None
    (tmp_path / RECIPE_FILE).write_text(json.dumps({"datasets": ["a"]}))  # an older, shorter recipe
    assert read_recipe(tmp_path) == {**DEFAULTS, "datasets": ["a"]}


def test_collection_name_is_the_folder_name_or_the_hub_id(tmp_path):
    (tmp_path / "br35h-2020").mkdir()
    assert collection_name(str(tmp_path / "br35h-2020") + "/") == "br35h-2020"
    assert collection_name(str(tmp_path / "br35h-2020" / ".." / "br35h-2020")) == "br35h-2020"
    assert collection_name("someone/brain-mri") == "someone/brain-mri"


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("recipe")
    folders = make_collections(root)
    masked = sorted((folders.v1 / "Training" / "glioma").iterdir())[:4]
    for image in masked:
        mask = np.zeros((64, 64), np.uint8)
        mask[16:40, 16:40] = 255
        target = root / "masks" / "Training" / "glioma" / image.with_suffix(".png").name
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(mask).save(target)
    folders.masks = root / "masks"
    folders.masked = {image.name for image in masked}
    return folders


def test_load_splits_names_collections_attaches_masks_and_holds_out(folders):
    recipe = make_recipe(folders.training, held_out=[str(folders.held)], masks=str(folders.masks), seed=5)
    splits = load_splits(recipe)
    assert list(splits.audit["collections"]) == ["v1", "br35h", "brisc"] and splits.primary == "v1"
    assert set(splits.held_out["collection"]) == {"held"}
    assert splits.audit["held_out"]["held"]["dropped_as_twins_of_training_collections"] == 2
    # Masks: on training and validation rows of the collection they mirror, None elsewhere, never on tests.
    with_mask = set()
    for split in (splits.train, splits.validation):
        for name, collection, mask in zip(split["file_name"], split["collection"], split["mask"]):
            if mask is not None:
                assert collection == "v1" and np.asarray(mask).max() == 255
                with_mask.add(name)
    assert with_mask == folders.masked
    assert "mask" not in splits.official_test.column_names and "mask" not in splits.held_out.column_names


def test_the_same_recipe_gives_the_same_splits(folders):
    recipe = make_recipe(folders.training, seed=11, flat_test_fraction=0.3)
    first, second = load_splits(recipe), load_splits(recipe)
    for split in ("train", "validation", "official_test", "clean_test"):
        assert getattr(first, split)["file_name"] == getattr(second, split)["file_name"]
    assert first.audit == second.audit
    assert first.held_out is None and "mask" not in first.train.column_names
    br35h_test = [n for n, c in zip(first.official_test["file_name"], first.official_test["collection"])
                  if c == "br35h"]
    own_split = load_brain_mri(str(folders.br35h), seed=11, flat_test_fraction=0.3)["test"]["file_name"]
    assert len(own_split) == 8  # 30 % of 25 files, rounded up
    assert br35h_test == [name for name in own_split if name not in PLANTED["br35h"]]


def test_excluded_files_leave_training_and_validation_only_and_are_counted(folders):
    recipe = make_recipe(folders.training, seed=11)
    full = load_splits(recipe)
    # One file name from each of training and validation, one from the official test, one that is nowhere.
    from_train, from_validation = Path(full.train["file_name"][0]).name, Path(full.validation["file_name"][-1]).name
    from_test = Path(full.official_test["file_name"][0]).name
    listed = [from_train, from_validation, from_test, "not-in-any-collection.jpg"]
    cleaned = load_splits(make_recipe(folders.training, seed=11, excluded_files=listed))

    def names(split):
        return [Path(name).name for name in split["file_name"]]

    for split_name in ("train", "validation"):
        before, after = names(getattr(full, split_name)), names(getattr(cleaned, split_name))
        assert after == [name for name in before if name not in listed]  # the rest kept, in order
        assert len(after) < len(before)
        assert sum(cleaned.audit["split_sizes"][split_name].values()) == len(after)
        per_collection = [entry["split_sizes"][split_name] for entry in cleaned.audit["collections"].values()]
        assert sum(sum(counts.values()) for counts in per_collection) == len(after)
    # The tests are the benchmark's, slice for slice: a listed test file stays.
    for split_name in ("official_test", "clean_test"):
        assert getattr(cleaned, split_name)["file_name"] == getattr(full, split_name)["file_name"]
    assert from_test in names(cleaned.official_test)
    assert cleaned.audit["excluded_files"] == {
        "listed": 4, "train": len(full.train) - len(cleaned.train),
        "validation": len(full.validation) - len(cleaned.validation)}
    assert "excluded_files" not in full.audit
