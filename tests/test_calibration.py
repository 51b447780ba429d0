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


def test_folding_the_temperature_keeps_the_argmax_and_gives_the_fitted_probabilities():
    torch.manual_seed(0)
    model, _ = build_from_config("resnet-mini", 32)
    model.eval()
    pixels = torch.randn(6, 3, 32, 32)
    with torch.no_grad():
        before = model(pixel_values=pixels).logits
        fold_temperature(model, 2.5)
        after = model(pixel_values=pixels).logits
    assert torch.equal(before.argmax(1), after.argmax(1))
    torch.testing.assert_close(after.softmax(1), (before / 2.5).softmax(1), rtol=1e-5, atol=1e-6)


def test_shifting_a_class_logit_moves_that_logit_alone():
    torch.manual_seed(0)
    model, _ = build_from_config("resnet-mini", 32)
    model.eval()
    pixels = torch.randn(5, 3, 32, 32)
    with torch.no_grad():
        before = model(pixel_values=pixels).logits
        shift_class_logit(model, 2, 0.75)
        after = model(pixel_values=pixels).logits
    expected = before.clone()
    expected[:, 2] += 0.75
    torch.testing.assert_close(after, expected)
