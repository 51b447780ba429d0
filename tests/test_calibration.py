import json

import numpy as np
import pytest
import torch
from scipy.special import softmax

from bench.label_shift import recorded_offset
from brain_tumor.calibration import fit_temperature
from brain_tumor.labels import NOTUMOR_ID
from brain_tumor.modeling import build_from_config, fold_temperature, shift_class_logit


def test_fit_temperature_recovers_the_temperature_that_generated_the_labels():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, (4000, 4))
    labels = np.array([rng.choice(4, p=p) for p in softmax(logits / 2.0, axis=1)])
    assert abs(fit_temperature(logits, labels) - 2.0) < 0.15


def logits_before_and_after(edit_head) -> tuple[torch.Tensor, torch.Tensor]:
    """A tiny model's logits on random pixels, before and after `edit_head(model)` changes its last layer."""
    torch.manual_seed(0)
    model, _ = build_from_config("resnet-mini", 32)
    model.eval()
    pixels = torch.randn(6, 3, 32, 32)
    with torch.no_grad():
        before = model(pixel_values=pixels).logits
        edit_head(model)
        return before, model(pixel_values=pixels).logits


def test_folding_the_temperature_keeps_the_argmax_and_gives_the_fitted_probabilities():
    before, after = logits_before_and_after(lambda model: fold_temperature(model, 2.5))
    assert torch.equal(before.argmax(1), after.argmax(1))
    torch.testing.assert_close(after.softmax(1), (before / 2.5).softmax(1), rtol=1e-5, atol=1e-6)


def test_shifting_a_class_logit_moves_that_logit_alone():
    before, after = logits_before_and_after(lambda model: shift_class_logit(model, 2, 0.75))
    expected = before.clone()
    expected[:, 2] += 0.75
    torch.testing.assert_close(after, expected)


def test_label_shift_undo_on_the_saved_logits_gives_the_run_without_the_correction(tmp_path):
    """bench/label_shift.py --undo: train_hf adds the offset before folding the temperature in, so on the saved
    logits the correction is offset / T; removing that must give what training without the flag saves (raw / T)."""
    offset, temperature = 0.7, 0.55

    def save_as_train_hf_with_the_flag(model):
        shift_class_logit(model, NOTUMOR_ID, offset)
        fold_temperature(model, temperature)

    raw, saved = logits_before_and_after(save_as_train_hf_with_the_flag)
    (tmp_path / "all_results.json").write_text(json.dumps({"temperature": temperature,
                                                           "transplant_prior_offset": offset}))
    shift, _ = recorded_offset(str(tmp_path))
    undone = saved.log_softmax(1)
    undone[:, NOTUMOR_ID] += shift
    torch.testing.assert_close(undone.softmax(1), (raw / temperature).softmax(1), rtol=1e-5, atol=1e-6)


def test_label_shift_undo_refuses_a_run_trained_without_the_correction(tmp_path):
    (tmp_path / "all_results.json").write_text(json.dumps({"temperature": 0.6, "transplant_prior_offset": None}))
    with pytest.raises(SystemExit, match="--correct_transplant_prior"):
        recorded_offset(str(tmp_path))
