"""Tests for the TFLite -> transformers MobileNetV2 converter (brain_tumor/pretrained/mobilenet_v2_tflite.py).

They read the shared pretrained file (../shared/pretrained, or BRAIN_TUMOR_PRETRAINED_TFLITE) and
skip when it is absent. The conversion runs once per session; each test reads the written folder.
"""

from pathlib import Path

import numpy as np
import pytest
import tflite
import torch
from PIL import Image
from sklearn.datasets import load_sample_images
from transformers import AutoImageProcessor, MobileNetV2ForImageClassification, pipeline

from brain_tumor.__main__ import main
from brain_tumor.pretrained.batch_norm import calibrate_batch_norms, default_calibration_images
from brain_tumor.pretrained.mobilenet_v2_tflite import (
    build_image_processor,
    convert_tflite_to_transformers,
    load_tflite_model,
)
from brain_tumor.pretrained.sources import default_tflite_path

DEFAULT_TFLITE_PATH = default_tflite_path()

needs_tflite_file = pytest.mark.skipif(
    not DEFAULT_TFLITE_PATH.is_file(),
    reason=f"pretrained MobileNetV2 not found at {DEFAULT_TFLITE_PATH} (set BRAIN_TUMOR_PRETRAINED_TFLITE)",
)


@pytest.fixture(scope="session")
def converted_dir(tmp_path_factory) -> Path:
    if not DEFAULT_TFLITE_PATH.is_file():
        pytest.skip(f"pretrained MobileNetV2 not found at {DEFAULT_TFLITE_PATH} (set BRAIN_TUMOR_PRETRAINED_TFLITE)")
    return convert_tflite_to_transformers(DEFAULT_TFLITE_PATH, tmp_path_factory.mktemp("mobilenet_v2_imagenet"))


@pytest.fixture(scope="session")
def converted_model(converted_dir) -> MobileNetV2ForImageClassification:
    return MobileNetV2ForImageClassification.from_pretrained(converted_dir).eval()


@pytest.fixture(scope="session")
def calibration_pixels() -> torch.Tensor:
    """The converter's default calibration views, preprocessed once for the whole session."""
    return build_image_processor()(default_calibration_images(), return_tensors="pt")["pixel_values"]


@pytest.fixture(scope="session")
def temple_photo() -> Image.Image:
    return Image.fromarray(load_sample_images().images[0])  # china.jpg: a Chinese temple


def test_missing_tflite_file_is_named(tmp_path):
    missing = tmp_path / "no_such_model.tflite"
    with pytest.raises(FileNotFoundError, match="no_such_model.tflite"):
        convert_tflite_to_transformers(missing, tmp_path / "out")


def test_checkpoint_loads_and_pipeline_names_a_sensible_class(converted_dir, converted_model, temple_photo):
    config = converted_model.config
    assert config.tf_padding and config.num_labels == 1001
    assert config.id2label[0] == "background" and config.id2label[1].startswith("tench")
    assert (converted_dir / "model.safetensors").is_file()
    processor = AutoImageProcessor.from_pretrained(converted_dir)
    assert processor.crop_size == {"height": 224, "width": 224}

    classify = pipeline("image-classification", model=str(converted_dir))
    top = classify(temple_photo, top_k=5)
    # A temple roof: ImageNet's nearest classes are buildings of that kind.
    assert top[0]["label"] in {"palace", "monastery", "bell cote, bell cot", "castle"}, top


def test_processor_reproduces_tflite_input_scaling(temple_photo):
    """The TFLite input is (x - 128) / 128 on uint8 pixels; the processor must give exactly that."""
    processor = build_image_processor()
    values = processor(temple_photo, return_tensors="np")["pixel_values"][0]
    as_uint8 = values * 128 + 128
    assert np.abs(as_uint8 - np.rint(as_uint8)).max() < 1e-3
    assert as_uint8.min() >= -1e-3 and as_uint8.max() <= 255 + 1e-3


@needs_tflite_file
def test_first_convolution_matches_raw_tflite_arithmetic(converted_model, temple_photo):
    """Recompute the first layer straight from the flatbuffer's integers, independently of the
    converter: (q - zero point) * scale, bias scale = input scale x weight scale, TF SAME padding."""
    flat = tflite.Model.GetRootAsModel(DEFAULT_TFLITE_PATH.read_bytes(), 0)
    graph = flat.Subgraphs(0)
    op = graph.Operators(0)
    inp, weight, bias = (graph.Tensors(op.Inputs(i)) for i in range(3))

    def raw(tensor, dtype):
        return flat.Buffers(tensor.Buffer()).DataAsNumpy().view(dtype).reshape(tensor.ShapeAsNumpy())

    w_q = weight.Quantization()
    w = (raw(weight, np.uint8).astype(np.float64) - w_q.ZeroPoint(0)) * w_q.Scale(0)  # O x 3 x 3 x I
    b = raw(bias, np.int32) * (inp.Quantization().Scale(0) * w_q.Scale(0))

    pixels = np.asarray(temple_photo.resize((224, 224)), dtype=np.float64)
    x = np.pad((pixels - 128) / 128, ((0, 1), (0, 1), (0, 0)))  # SAME, stride 2, even size: pad bottom/right
    patches = np.stack([x[dy : dy + 224 : 2, dx : dx + 224 : 2] for dy in range(3) for dx in range(3)], axis=2)
    expected = np.clip(np.einsum("hwkc,okc->hwo", patches, w.reshape(32, 9, 3)) + b, 0, 6)

    pixel_values = torch.from_numpy((pixels - 128) / 128).permute(2, 0, 1)[None].float()
    with torch.inference_mode():
        got = converted_model.mobilenet_v2.conv_stem.first_conv(pixel_values)[0].permute(1, 2, 0).double().numpy()
    np.testing.assert_allclose(got, expected, atol=1e-4)


@needs_tflite_file
def test_batch_norm_reparametrisation_keeps_eval_output(calibration_pixels):
    model = load_tflite_model(DEFAULT_TFLITE_PATH)  # batch norms are still identity + folded bias here
    with torch.inference_mode():
        before = model(pixel_values=calibration_pixels[:4]).logits
    calibrate_batch_norms(model, calibration_pixels)
    with torch.inference_mode():
        after = model(pixel_values=calibration_pixels[:4]).logits
    torch.testing.assert_close(after, before, atol=1e-4, rtol=1e-5)
    norm = model.mobilenet_v2.layer[5].conv_3x3.normalization
    assert not torch.allclose(norm.running_var, torch.ones_like(norm.running_var))  # real statistics now


def test_training_mode_forward_keeps_pretrained_features(converted_dir, calibration_pixels):
    """The fine-tuning trap: BN momentum is 0.997, so one training-mode pass replaces the running
    statistics with its batch's. With identity batch norms this scrambles every feature (relative
    error about 1, no top-1 class kept); with calibrated statistics the batch is normalised as in eval."""
    model = MobileNetV2ForImageClassification.from_pretrained(converted_dir).eval()  # a copy we may spoil
    body = model.mobilenet_v2

    def relative_error(x, y):
        return float((x - y).norm() / y.norm())

    with torch.no_grad():
        eval_features = body(calibration_pixels).pooler_output
        body.train()
        train_features = body(calibration_pixels).pooler_output  # and the running statistics get replaced
        body.eval()
        after_features = body(calibration_pixels).pooler_output
        before_top1 = model.classifier(eval_features).argmax(-1)
        after_top1 = model.classifier(after_features).argmax(-1)
    # Batch statistics of the calibration images are the stored ones: training mode changes nothing.
    assert relative_error(train_features, eval_features) < 1e-4
    # The replaced statistics differ only by the unbiased-variance factor n / (n - 1).
    assert relative_error(after_features, eval_features) < 0.02
    assert torch.equal(after_top1, before_top1)


def test_agrees_with_tflite_interpreter(converted_model, calibration_pixels):
    interpreter_module = pytest.importorskip("ai_edge_litert.interpreter", reason="pip install ai-edge-litert")
    interpreter = interpreter_module.Interpreter(model_path=str(DEFAULT_TFLITE_PATH), num_threads=2)
    interpreter.allocate_tensors()
    (inp,), (out,) = interpreter.get_input_details(), interpreter.get_output_details()
    # Identical uint8 pixels to both: the processor's crops turned back into bytes.
    pixel_values = calibration_pixels[::2]
    pixels = (pixel_values * 128 + 128).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    reference = []
    for image in pixels:
        interpreter.set_tensor(inp["index"], image[None])
        interpreter.invoke()
        reference.append(interpreter.get_tensor(out["index"])[0] * out["quantization"][0])
    reference = np.stack(reference)
    with torch.inference_mode():
        probs = converted_model(pixel_values=pixel_values).logits.softmax(-1).numpy()
    assert (probs.argmax(1) == reference.argmax(1)).mean() >= 7 / 8
    assert np.corrcoef(probs.ravel(), reference.ravel())[0, 1] > 0.99


@needs_tflite_file
def test_cli_writes_a_checkpoint(tmp_path):
    out = tmp_path / "cli"
    assert main(["convert", "mobilenet-v2-tflite", str(out), "--source", str(DEFAULT_TFLITE_PATH)]) == 0
    assert (out / "model.safetensors").is_file() and (out / "preprocessor_config.json").is_file()


def test_cli_names_a_missing_tflite_file(tmp_path, capsys):
    missing = tmp_path / "absent.tflite"
    assert main(["convert", "mobilenet-v2-tflite", str(tmp_path / "out"), "--source", str(missing)]) == 2
    assert "absent.tflite" in capsys.readouterr().err and not (tmp_path / "out").exists()


def test_default_path_can_be_overridden_by_environment(monkeypatch, tmp_path):
    custom = tmp_path / "elsewhere.tflite"
    monkeypatch.setenv("BRAIN_TUMOR_PRETRAINED_TFLITE", str(custom))
    assert default_tflite_path() == custom
    monkeypatch.delenv("BRAIN_TUMOR_PRETRAINED_TFLITE")
    assert default_tflite_path().parts[-3:] == ("shared", "pretrained", "mobilenet_v2_1.0_224_quant.tflite")


def test_training_can_start_from_the_tflite_file(tmp_path):
    """train_hf's --model_name_or_path accepts the .tflite file: converted once, head swapped, BN calmed."""
    from brain_tumor.labels import CLASS_NAMES
    from brain_tumor.modeling import build_from_checkpoint

    if not DEFAULT_TFLITE_PATH.is_file():
        pytest.skip(f"pretrained MobileNetV2 not found at {DEFAULT_TFLITE_PATH}")
    model, processor = build_from_checkpoint(str(DEFAULT_TFLITE_PATH), cache_dir=str(tmp_path), image_size=96)
    assert (tmp_path / f"{DEFAULT_TFLITE_PATH.stem}-transformers" / "config.json").exists()
    assert list(model.config.id2label.values()) == list(CLASS_NAMES)
    assert model.classifier.out_features == 4
    assert all(m.momentum == 0.1 for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    pixels = processor(Image.new("RGB", (224, 300)), return_tensors="pt")["pixel_values"]
    assert pixels.shape == (1, 3, 96, 96)
    assert model(pixel_values=pixels).logits.shape == (1, 4)
