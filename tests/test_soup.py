"""The weight arithmetic of bench/soup.py: each run's calibration taken out, weights averaged, mixed runs refused."""

import json

import pytest
import torch
from helpers_models import build_tiny_model

from bench.soup import average, check_ingredients, raw_state
from brain_tumor.labels import NOTUMOR_ID
from brain_tumor.modeling import classifier_layer, fold_temperature, shift_class_logit
from brain_tumor.recipe import make_recipe, save_recipe


def save_run(folder, model, temperature: float, offset: float, seed: int = 42, datasets=("a", "b")):
    """A run as train_hf.py leaves it: the correction shifted into the head, then the temperature folded in."""
    shift_class_logit(model, NOTUMOR_ID, offset)
    fold_temperature(model, temperature)
    model.save_pretrained(folder)
    (folder / "all_results.json").write_text(json.dumps({"temperature": temperature,
                                                         "transplant_prior_offset": offset}))
    save_recipe(make_recipe(list(datasets), seed=seed), folder)
    return folder


def test_raw_state_takes_the_temperature_and_the_correction_out_of_the_head(tmp_path):
    model, _ = build_tiny_model("mobilenet_v2")
    raw = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    raw_head = classifier_layer(model).weight.clone()
    run = save_run(tmp_path / "run", model, temperature=0.5, offset=0.7)
    assert not torch.allclose(classifier_layer(model).weight, raw_head)  # the saved head is calibrated
    recovered, offset = raw_state(str(run))
    assert offset == pytest.approx(0.7)
    for name, tensor in raw.items():
        assert torch.allclose(recovered[name].float(), tensor.float(), atol=1e-5), name


def test_average_means_the_weights_and_keeps_the_first_runs_counters():
    first = {"w": torch.tensor([1.0, 3.0]), "n": torch.tensor(5)}
    second = {"w": torch.tensor([3.0, 5.0]), "n": torch.tensor(9)}
    soup = average([first, second])
    assert torch.equal(soup["w"], torch.tensor([2.0, 4.0])) and soup["n"].item() == 5


def test_runs_may_differ_in_seed_but_not_in_their_collections(tmp_path):
    seeds = [save_run(tmp_path / f"seed{seed}", build_tiny_model("resnet")[0], 1.0, 0.0, seed=seed) for seed in (1, 2)]
    assert check_ingredients([str(folder) for folder in seeds])["seed"] == 1
    other = save_run(tmp_path / "other", build_tiny_model("resnet")[0], 1.0, 0.0, datasets=("a", "c"))
    with pytest.raises(SystemExit, match="other collections"):
        check_ingredients([str(seeds[0]), str(other)])
