"""bench/localization.py's validation split: the model's own validation slices that have an expert mask."""

from pathlib import Path

import numpy as np
import pytest
from datasets import Image as DatasetImage
from PIL import Image

from bench.localization import load_cases, parse_args
from brain_tumor.recipe import load_splits, make_recipe, save_recipe
from synthetic import make_flat_folder, make_kaggle_folder


def _masks_for(images_root: Path, masks_root: Path, every: int = 2) -> set[str]:
    """A square mask for every other Training/ tumour slice, mirrored under masks_root; their image paths."""
    masked = set()
    for i, image in enumerate(sorted(images_root.glob("Training/*/*.jpg"))):
        if image.parent.name == "notumor" or i % every:
            continue
        mask = np.zeros((64, 64), np.uint8)
        mask[20:40, 20:40] = 255
        target = masks_root / image.relative_to(images_root).with_suffix(".png")
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(mask).save(target)
        masked.add(str(image.resolve()))
    return masked


def test_validation_cases_are_the_masked_tumour_slices_of_the_models_validation_split(tmp_path):
    v1 = make_kaggle_folder(tmp_path / "v1", per_class_train=10, per_class_test=2, seed=0)
    flat = make_flat_folder(tmp_path / "flat", {"yes": 6, "no": 6}, seed=1)
    masked = _masks_for(v1, tmp_path / "masks")
    model = tmp_path / "model"
    model.mkdir()
    recipe = make_recipe([str(v1), str(flat)], masks=str(tmp_path / "masks"), validation_fraction=0.4)
    save_recipe(recipe, model)

    args = parse_args(["--model", str(model), "--masks", str(tmp_path / "masks"), "--split", "validation"])
    cases, members = load_cases(args)

    validation = load_splits(recipe).validation.cast_column("image", DatasetImage(decode=False))
    expected = {str(Path(row["path"]).resolve()) for row in validation["image"]} & masked
    assert list(members) == ["validation"] and expected
    assert {str(Path(c["path"]).resolve()) for c in cases} == expected
    assert {str(Path(p).resolve()) for p in members["validation"]} == expected
    assert all(c["mask"].any() and c["near"].sum() > c["mask"].sum() for c in cases)


def test_validation_split_refuses_the_test_only_options(tmp_path):
    with pytest.raises(SystemExit):
        parse_args(["--split", "validation", "--write-model-json"])
