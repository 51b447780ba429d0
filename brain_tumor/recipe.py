"""The data recipe: which collections a model was trained on and how its splits were cut.

It is one small dict, saved as `data_recipe.json` beside the model, so that anything that must see
the same splits later (`python -m brain_tumor fit-checks`, the benchmarks) reads it instead of
repeating seeds and thresholds that could drift apart.
"""

from __future__ import annotations

import json
from pathlib import Path

from .data import attach_masks, load_brain_mri
from .duplicates import DEFAULT_NEAR_THRESHOLD
from .splits import Splits, make_splits

RECIPE_FILE = "data_recipe.json"
DEFAULTS = {"datasets": [], "held_out": [], "masks": None, "seed": 42, "validation_fraction": 0.15,
            "flat_test_fraction": 0.2, "near_threshold": DEFAULT_NEAR_THRESHOLD, "held_out_twins": "held_out",
            "excluded_files": []}
# The settings that decide how splits are cut, beside which collections: what scoring a model on its
# own splits must keep from its recipe.
SPLIT_OPTIONS = ("near_threshold", "validation_fraction", "flat_test_fraction", "seed", "held_out_twins")


def make_recipe(datasets: list[str], **settings) -> dict:
    unknown = set(settings) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"Unknown data recipe settings: {sorted(unknown)}")
    return {**DEFAULTS, **settings, "datasets": list(datasets), "held_out": list(settings.get("held_out") or [])}


def collection_name(dataset_name: str) -> str:
    """A collection's name in splits, metrics and the card: the folder's name, or the Hub id."""
    path = Path(dataset_name).expanduser()
    return path.resolve().name if path.exists() else dataset_name


def load_splits(recipe: dict, config_name: str | None = None, cache_dir: str | None = None) -> Splits:
    """Load every collection of the recipe and cut its splits (see `splits.make_splits`)."""
    def load(name):
        return load_brain_mri(name, config_name, cache_dir, seed=recipe["seed"],
                              flat_test_fraction=recipe["flat_test_fraction"])

    collections = {}
    for name in recipe["datasets"]:
        data = load(name)
        if recipe["masks"] and Path(name).expanduser().is_dir():
            train, found = attach_masks(data["train"], name, recipe["masks"])
            if found:  # masks mirror this collection's files
                data["train"] = train
        collections[collection_name(name)] = data
    held_out = {collection_name(name): load(name) for name in recipe["held_out"]}
    return make_splits(collections, recipe["validation_fraction"], recipe["seed"], recipe["near_threshold"],
                       held_out=held_out, held_out_twins=recipe["held_out_twins"],
                       excluded_files=recipe["excluded_files"])


def read_file_list(path: str | Path) -> list[str]:
    """File names from a text file, one per line; blank lines and everything after a '#' are ignored."""
    lines = (line.split("#", 1)[0].strip() for line in Path(path).read_text().splitlines())
    return sorted({line for line in lines if line})


def save_recipe(recipe: dict, folder: str | Path) -> Path:
    path = Path(folder) / RECIPE_FILE
    path.write_text(json.dumps(recipe, indent=2) + "\n")
    return path


def read_recipe(folder: str | Path) -> dict | None:
    path = Path(folder) / RECIPE_FILE
    return {**DEFAULTS, **json.loads(path.read_text())} if path.is_file() else None
