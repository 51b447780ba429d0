"""--image_size on checkpoints of every processor family: N x N, whole slice, same normalisation, both backends."""

import numpy as np
import pytest
import torch
import transformers
from PIL import Image
from transformers import AutoImageProcessor, AutoModelForImageClassification
from transformers.utils import is_torchvision_available

from brain_tumor.input_size import InputSizeError, fit_model_to_input_size, square_resize_processor
from brain_tumor.modeling import build_from_checkpoint
from tiny_checkpoints import FAMILIES, NATIVE_SIZE, save_checkpoint

BACKENDS = ["pil", pytest.param("torchvision", marks=pytest.mark.skipif(
    not is_torchvision_available(), reason="torchvision not installed: transformers uses its PIL classes"))]
# ConvNextImageProcessor (ConvNeXt, ResNet) only resizes by shortest edge and crops: it becomes a plain resize.
SQUARE_CLASS = {"convnext": "ViTImageProcessor", "resnet": "ViTImageProcessor", "vit": "ViTImageProcessor",
                "efficientnet": "EfficientNetImageProcessor", "mobilenet_v2": "MobileNetV2ImageProcessor"}


def banded_image(width=96, height=48) -> Image.Image:
    """Black, with a white band along the left edge: a centre crop of a wide image cuts the band off."""
    array = np.zeros((height, width, 3), np.uint8)
    array[:, : width // 16] = 255
    return Image.fromarray(array)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("checkpoints")
    return {family: save_checkpoint(root / family, family) for family in FAMILIES}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("family", FAMILIES)
def test_square_processor_keeps_the_whole_slice_at_n_by_n(checkpoints, family, backend):
    processor = AutoImageProcessor.from_pretrained(checkpoints[family], backend=backend)
    native = processor(banded_image(), return_tensors="pt")["pixel_values"]
    assert native.shape == (1, 3, NATIVE_SIZE, NATIVE_SIZE)

    square = square_resize_processor(processor, 56)
    pixels = square(banded_image(), return_tensors="pt")["pixel_values"]
    assert pixels.shape == (1, 3, 56, 56)
    white, black = pixels.amax(), pixels.amin()
    assert torch.allclose(pixels[0, :, :, 0].amax(), white) and torch.allclose(pixels[0, :, :, -1].amin(), black)
    if family in ("convnext", "resnet", "mobilenet_v2", "efficientnet"):  # their own processors crop the band off
        assert native[0, :, :, 0].amax() < white
    assert type(square).__name__.removesuffix("Pil") == SQUARE_CLASS[family]
    assert square.backend == processor.backend  # torchvision and PIL resize slightly differently
    # The same normalisation: a uniform grey image gives the same values at both sizes.
    grey = Image.new("RGB", (70, 50), (90, 90, 90))
    assert torch.allclose(square(grey, return_tensors="pt")["pixel_values"].mean((2, 3)),
                          processor(grey, return_tensors="pt")["pixel_values"].mean((2, 3)), atol=1e-4)


def test_convnext_processor_keeps_its_resampling_and_normalisation(checkpoints):
    processor = AutoImageProcessor.from_pretrained(checkpoints["convnext"])
    square = square_resize_processor(processor, 64)
    assert (square.resample, square.rescale_factor) == (processor.resample, processor.rescale_factor)
    assert list(square.image_mean) == list(processor.image_mean) and list(square.image_std) == list(processor.image_std)


def test_vit_position_embeddings_follow_the_new_size_and_survive_a_save(checkpoints, tmp_path):
    model, processor = build_from_checkpoint(str(checkpoints["vit"]), image_size=64)
    assert model.config.image_size == 64
    assert model.vit.embeddings.position_embeddings.shape[1] == 1 + (64 // 8) ** 2
    model.save_pretrained(tmp_path)
    reloaded = AutoModelForImageClassification.from_pretrained(tmp_path).eval()
    pixels = processor(banded_image(), return_tensors="pt")["pixel_values"]
    with torch.inference_mode():
        assert torch.allclose(model.eval()(pixel_values=pixels).logits, reloaded(pixel_values=pixels).logits)


def test_vit_embeddings_are_resampled_not_reinitialised(checkpoints):
    original = AutoModelForImageClassification.from_pretrained(checkpoints["vit"])
    model, _ = build_from_checkpoint(str(checkpoints["vit"]), image_size=80)  # 5 x 5 patches -> 10 x 10
    before = original.vit.embeddings.position_embeddings.detach()
    after = model.vit.embeddings.position_embeddings.detach()
    assert torch.equal(after[:, 0], before[:, 0])  # [CLS] has no place on the grid
    # Each old patch's embedding lands near the middle of its 2 x 2 block of new ones.
    old_grid, new_grid = before[0, 1:].reshape(5, 5, -1), after[0, 1:].reshape(10, 10, -1)
    block_means = new_grid.reshape(5, 2, 5, 2, -1).mean((1, 3))
    assert torch.corrcoef(torch.stack([block_means.flatten(), old_grid.flatten()]))[0, 1] > 0.9


def test_a_model_that_cannot_run_at_the_size_is_a_clear_error():
    # LeViT's attention biases are tied to the checkpoint's resolution.
    config = transformers.LevitConfig(image_size=64, hidden_sizes=[16, 32, 48], num_attention_heads=[1, 2, 3],
                                      depths=[1, 1, 1], key_dim=[8, 8, 8], num_labels=4)
    with pytest.raises(InputSizeError, match="LevitForImageClassification cannot run on 96 x 96 inputs.*"
                                             "Leave out --image_size"):
        fit_model_to_input_size(transformers.LevitForImageClassification(config), 96)
