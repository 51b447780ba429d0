import pytest
import torch
from PIL import Image

from brain_tumor.labels import CLASS_NAMES
from brain_tumor.modeling import PRESETS, ModelLoadError, build_from_checkpoint, build_from_config
from tiny_checkpoints import NATIVE_SIZE, save_checkpoint


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_preset_builds_a_four_class_model_with_its_processor(preset):
    model, processor = build_from_config(preset, 64)
    pixel_values = processor(Image.new("RGB", (100, 80), (40, 40, 40)), return_tensors="pt")["pixel_values"]
    assert pixel_values.shape == (1, 3, 64, 64)  # a plain square resize: the whole slice, no crop
    with torch.inference_mode():
        logits = model.eval()(pixel_values=pixel_values).logits
    assert logits.shape == (1, len(CLASS_NAMES))
    assert [model.config.id2label[i] for i in range(len(CLASS_NAMES))] == list(CLASS_NAMES)


def test_config_overrides_switch_a_checkpoints_padding_and_keep_its_weights(tmp_path):
    checkpoint = save_checkpoint(tmp_path / "checkpoint", "mobilenet_v2")
    torch.manual_seed(0)
    as_saved, _ = build_from_checkpoint(str(checkpoint))
    torch.manual_seed(0)
    symmetric, _ = build_from_checkpoint(str(checkpoint), config_overrides="tf_padding=false")
    assert as_saved.config.tf_padding is True and symmetric.config.tf_padding is False
    assert symmetric.config.id2label == as_saved.config.id2label  # our four labels either way
    saved_state, symmetric_state = as_saved.state_dict(), symmetric.state_dict()
    assert saved_state.keys() == symmetric_state.keys()
    assert all(torch.equal(saved_state[key], symmetric_state[key]) for key in saved_state)
    # The layers were built with the changed config: the same weights now pad, and so answer, differently.
    pixel_values = torch.randn(1, 3, NATIVE_SIZE, NATIVE_SIZE, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        assert not torch.allclose(as_saved.eval()(pixel_values=pixel_values).logits,
                                  symmetric.eval()(pixel_values=pixel_values).logits)


def test_config_overrides_change_a_preset_from_scratch():
    model, _ = build_from_config("resnet10-half", 64, config_overrides="hidden_act=gelu")
    assert model.config.hidden_act == "gelu"


@pytest.mark.parametrize("overrides, named", [("no_such_key=1", "no_such_key"), ("tf_padding", "key=value"),
                                              ("tf_padding=sometimes", "sometimes")])
def test_bad_config_overrides_are_a_clear_error(overrides, named, tmp_path):
    checkpoint = save_checkpoint(tmp_path / "checkpoint", "mobilenet_v2")
    with pytest.raises(ModelLoadError, match=named):
        build_from_checkpoint(str(checkpoint), config_overrides=overrides)
