"""Every recipe in bench/recipes*.json is a command train_hf.py accepts.

A recipe file is run where compute is scarce (a lent GPU for a few minutes, or an hour of CPU), so a
misspelt flag or augmentation group must fail here, not after the data has been loaded there.
"""

import json
from pathlib import Path

import pytest

import train_hf
from bench.leave_one_out import load_recipes, run_command, write_report
from brain_tumor.augment import check_augmentations

RECIPE_FILES = sorted((Path(__file__).resolve().parents[1] / "bench").glob("recipes*.json"))


def recipe_commands():
    for path in RECIPE_FILES:
        spec = load_recipes(path)
        for name, flags in spec["recipes"].items():
            for hold_out in (True, False):
                yield pytest.param(spec, flags, hold_out, id=f"{path.stem}:{name}:{'loo' if hold_out else 'full'}")


def test_there_are_recipe_files():
    assert {path.name for path in RECIPE_FILES} >= {"recipes.json", "recipes_cpu.json"}


def test_a_recipe_file_can_share_another_files_common_flags(tmp_path):
    (tmp_path / "base.json").write_text(json.dumps({"common": ["--seed", "42"], "recipes": {}}))
    (tmp_path / "variant.json").write_text(json.dumps({"common_from": "base.json", "common": ["--held_out_twins",
                                                                                             "training"]}))
    assert load_recipes(tmp_path / "variant.json")["common"] == ["--seed", "42", "--held_out_twins", "training"]


@pytest.mark.parametrize("spec, flags, hold_out", recipe_commands())
def test_recipe_parses_as_train_hf_arguments(spec, flags, hold_out, tmp_path):
    command = run_command(spec, flags, tmp_path / "run", hold_out)
    argv = command[command.index(str(Path(train_hf.__file__).resolve())) + 1:]
    model_args, data_args, training_args = train_hf.parse_args(argv)

    assert set(data_args.held_out_dataset) == (set(spec["held_out"]) if hold_out else set())
    assert not set(data_args.held_out_dataset) & set(data_args.dataset_name)
    assert training_args.output_dir == str(tmp_path / "run")
    if data_args.augmentations:
        assert check_augmentations(data_args.augmentations)


def test_a_run_on_all_collections_only_gets_its_per_class_row(tmp_path, monkeypatch):
    """A second seed trained with --full_only has no held-out run; its per-class figures must still be reported."""
    monkeypatch.setattr("bench.leave_one_out.RESULTS_DIR", tmp_path / "results")
    run = tmp_path / "runs" / "full" / "seed44"
    run.mkdir(parents=True)
    (run / "all_results.json").write_text(json.dumps({"clean_test": {
        "recall_glioma": 0.958, "recall_meningioma": 0.941, "recall_notumor": 0.889, "recall_pituitary": 0.912}}))

    text = write_report({"seed44": ["--seed", "44"]}, tmp_path / "runs", ["br35h"], "report")

    assert "| seed44 | all collections | 0.958 | 0.941 | 0.889 | 0.912 |" in text
    assert "| seed44 | held out |" not in text
    assert (tmp_path / "results" / "report.md").read_text() == text
