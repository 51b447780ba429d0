"""`python -m brain_tumor audit` and `fit-checks`, run in-process on a synthetic Kaggle folder."""

import json

import pytest
from helpers_collections import make_collections
from transformers import AutoConfig

from brain_tumor.__main__ import main
from brain_tumor.recipe import load_splits, make_recipe, save_recipe
from helpers_models import save_tiny_model


def test_audit_prints_counts_per_class_and_the_method(kaggle_folder, capsys):
    assert main(["audit", str(kaggle_folder)]) == 0
    out = capsys.readouterr().out
    assert "Near-duplicate threshold: cosine similarity >= 0.99" in out
    assert "official test with a near train twin" in out and "clean_test split size" in out


def test_audit_json_and_bad_dataset(kaggle_folder, tmp_path, capsys):
    assert main(["audit", str(kaggle_folder), "--json"]) == 0
    audit = json.loads(capsys.readouterr().out)
    assert sum(audit["split_sizes"]["official_test"].values()) == 16
    assert main(["audit", str(tmp_path)]) == 2
    assert "not in the Kaggle layout" in capsys.readouterr().err


def test_fit_checks_stores_fitted_checks_in_the_model_config(kaggle_folder, tmp_path, capsys):
    model_dir = save_tiny_model(tmp_path / "tiny")
    assert main(["fit-checks", model_dir, str(kaggle_folder)]) == 0
    checks = AutoConfig.from_pretrained(model_dir).brain_tumor_checks
    assert checks["source"].startswith("fitted on")
    assert set(checks["uncertainty"]) >= {"min_top_probability", "min_margin"}
    assert checks["feature_distance"] is not None
    assert "min_top_probability" in capsys.readouterr().out


# --- several collections (tests/helpers_collections.py plants twins across them) --------------------------

@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    return make_collections(tmp_path_factory.mktemp("cli-collections"))


def test_audit_counts_twins_per_collection_and_held_out(folders, capsys):
    assert main(["audit", *folders.training, "--held_out", str(folders.held), "--json"]) == 0
    audit = json.loads(capsys.readouterr().out)
    assert list(audit["collections"]) == ["v1", "br35h", "brisc"]
    assert [entry.get("dropped_as_twins_of_earlier_collections", 0) for entry in audit["collections"].values()] \
        == [0, 5, 1]
    assert audit["held_out"] == {"held": {"images": 8, "dropped_as_twins_of_training_collections": 2, "kept": 6}}
    assert main(["audit", *folders.training, "--held_out", str(folders.held)]) == 0
    rows = {}
    for line in capsys.readouterr().out.splitlines():  # a collection's first row: the twins table
        if line.strip():
            rows.setdefault(line.split()[0], line.split()[1:])
    assert rows["br35h"][0] == "5" and rows["brisc"][0] == "1"
    assert rows["held"] == ["8", "2", "6"]


def test_audit_of_a_missing_collection_is_a_clear_error(folders, tmp_path, capsys):
    assert main(["audit", str(folders.v1), str(tmp_path / "nowhere")]) == 2
    assert "Could not load dataset" in capsys.readouterr().err


def _fitted_on(model_dir) -> str:
    return AutoConfig.from_pretrained(model_dir).brain_tumor_checks["source"]


def _expected_source(recipe) -> str:
    splits = load_splits(recipe)
    return f"fitted on {len(splits.train)} training and {len(splits.validation)} validation images"


def test_fit_checks_reads_the_models_data_recipe(folders, tmp_path, capsys):
    model_dir = save_tiny_model(tmp_path / "tiny")
    recipe = make_recipe([str(folders.v1), str(folders.br35h)], held_out=[str(folders.held)], seed=5,
                         validation_fraction=0.25)
    save_recipe(recipe, model_dir)
    assert main(["fit-checks", model_dir]) == 0
    assert f"Splits from {model_dir}/data_recipe.json: {folders.v1}, {folders.br35h}; held out: {folders.held}" \
        in capsys.readouterr().err
    assert _fitted_on(model_dir) == _expected_source(recipe)
    # Options given on the command line replace the recipe's, one by one.
    assert main(["fit-checks", model_dir, "--validation_fraction", "0.4"]) == 0
    assert _fitted_on(model_dir) == _expected_source({**recipe, "validation_fraction": 0.4})


def test_fit_checks_datasets_on_the_command_line_replace_the_recipes(folders, tmp_path, capsys):
    model_dir = save_tiny_model(tmp_path / "tiny")
    save_recipe(make_recipe([str(folders.v1), str(folders.br35h)], seed=5), model_dir)
    assert main(["fit-checks", model_dir, str(folders.brisc), str(folders.v1)]) == 0
    assert "Splits from the command line" in capsys.readouterr().err
    assert _fitted_on(model_dir) == _expected_source(make_recipe([str(folders.brisc), str(folders.v1)], seed=5))


def test_fit_checks_without_recipe_or_dataset_is_a_clear_error(tmp_path, capsys):
    model_dir = save_tiny_model(tmp_path / "tiny")
    assert main(["fit-checks", model_dir]) == 2
    assert "has no data_recipe.json, so its splits are unknown: name the collections" in capsys.readouterr().err
    assert main(["fit-checks", str(tmp_path / "missing"), str(tmp_path)]) == 2
    assert "does not exist; fit-checks writes into a local model folder" in capsys.readouterr().err
