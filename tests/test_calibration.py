import numpy as np
import torch
from scipy.special import softmax

from brain_tumor.calibration import fit_temperature
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
