"""bench/determinism.py: the largest weight difference between two runs' saved models."""

import torch
from safetensors.torch import save_file

from bench.determinism import largest_difference


def test_largest_difference_is_the_biggest_gap_over_every_tensor_and_zero_for_identical_runs(tmp_path):
    weights = {"a": torch.zeros(3), "b": torch.ones(2, 2)}
    moved = {"a": torch.tensor([0.0, -0.25, 0.1]), "b": torch.ones(2, 2)}
    for name, tensors in (("one", weights), ("same", weights), ("moved", moved)):
        (tmp_path / name).mkdir()
        save_file(tensors, tmp_path / name / "model.safetensors")
    assert largest_difference(tmp_path / "one", tmp_path / "same") == 0
    assert largest_difference(tmp_path / "one", tmp_path / "moved") == 0.25
