import pytest
import torch
from PIL import Image

from brain_tumor.labels import CLASS_NAMES
from brain_tumor.modeling import PRESETS, build_from_config


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_preset_builds_a_four_class_model_with_its_processor(preset):
    model, processor = build_from_config(preset, 64)
    pixel_values = processor(Image.new("RGB", (100, 80), (40, 40, 40)), return_tensors="pt")["pixel_values"]
    assert pixel_values.shape == (1, 3, 64, 64)  # a plain square resize: the whole slice, no crop
    with torch.inference_mode():
        logits = model.eval()(pixel_values=pixel_values).logits
    assert logits.shape == (1, len(CLASS_NAMES))
    assert [model.config.id2label[i] for i in range(len(CLASS_NAMES))] == list(CLASS_NAMES)

