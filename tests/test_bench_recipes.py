"""Every recipe in bench/recipes*.json is a command train_hf.py accepts.

A recipe file is run where compute is scarce (a lent GPU for a few minutes, or an hour of CPU), so a
misspelt flag or augmentation group must fail here, not after the data has been loaded there.
"""

import json
from pathlib import Path

import pytest

import train_hf
from bench.leave_one_out import run_command
from brain_tumor.augment import check_augmentations

RECIPE_FILES = sorted((Path(__file__).resolve().parents[1] / "bench").glob("recipes*.json"))


def recipe_commands():
    for path in RECIPE_FILES:
        spec = json.loads(path.read_text())
        for name, flags in spec["recipes"].items():
            for hold_out in (True, False):
                yield pytest.param(spec, flags, hold_out, id=f"{path.stem}:{name}:{'loo' if hold_out else 'full'}")


def test_there_are_recipe_files():
    assert {path.name for path in RECIPE_FILES} >= {"recipes.json", "recipes_cpu.json"}


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
