"""Turn Google's quantized ImageNet MobileNetV2 (a .tflite file) into a transformers checkpoint.

No pretrained checkpoint can be downloaded on the project's machines, but the uint8 TFLite release of
MobileNetV2 (see ../shared/pretrained/README.md) is at hand. Its layers follow the TF-slim MobileNetV2
that transformers' `MobileNetV2ForImageClassification(tf_padding=True)` mirrors, so a conversion is:
dequantize every weight, change layouts, and put it in the matching module.

Batch norm is folded into the TFLite convolutions. We keep the folded weights in the convolution and
re-parametrise each BatchNorm so that its eval output is exactly `conv(x) + folded_bias` while its
running statistics are real per-channel statistics measured on calibration images. Identity batch
norms would work for inference but are a trap for fine-tuning: transformers' MobileNetV2 uses
momentum 0.997, so the first training-mode forward would replace the statistics with one batch's and
training-mode outputs would be normalised very differently from what the pretrained layers expect.
Fine-tuning code should still lower that momentum (`brain_tumor.modeling.calm_batch_norm`) or keep
batch norm in eval mode: transformers hard-codes 0.997 rather than reading it from the config, so a
checkpoint cannot carry a better value.

Library only: `python -m brain_tumor convert mobilenet-v2-tflite DEST [--source FILE.tflite]` runs it.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tflite
import torch
from PIL import Image
from transformers import MobileNetV2Config, MobileNetV2ForImageClassification, MobileNetV2ImageProcessorPil
from transformers.image_utils import PILImageResampling

from .batch_norm import calibrate_batch_norms, default_calibration_images
from .sources import IMAGENET_LABELS_FILENAME, imagenet_labels

# TFLite tensor types we can meet in this graph, as numpy dtypes.
_NUMPY_TYPES = {tflite.TensorType.UINT8: np.uint8, tflite.TensorType.INT8: np.int8, tflite.TensorType.INT32: np.int32}
_CONV_OPS = {tflite.BuiltinOperator.CONV_2D: "conv", tflite.BuiltinOperator.DEPTHWISE_CONV_2D: "depthwise"}


@dataclass
class FoldedConv:
    """One TFLite convolution, dequantized and in PyTorch layout (OIHW; depthwise is C x 1 x H x W)."""

    scope: str  # the TF-slim scope of its weight tensor, e.g. "MobilenetV2/expanded_conv_3/expand/Conv2D_Fold"
    kind: str  # "conv" or "depthwise"
    weight: np.ndarray
    bias: np.ndarray
    stride: int
    relu6: bool


def _constant(model: "tflite.Model", tensor: "tflite.Tensor", path: Path) -> np.ndarray:
    """The raw (still quantized) values of a constant tensor."""
    name = tensor.Name().decode()
    if tensor.Type() not in _NUMPY_TYPES:
        raise ValueError(f"{path}: tensor {name!r} has TFLite type {tensor.Type()}; expected uint8, int8 or int32.")
    data = model.Buffers(tensor.Buffer()).DataAsNumpy()
    if isinstance(data, int) or data.size == 0:
        raise ValueError(f"{path}: constant tensor {name!r} has no data in the flatbuffer.")
    return data.view(_NUMPY_TYPES[tensor.Type()]).reshape(tensor.ShapeAsNumpy())


def _scale_and_zero_point(tensor: "tflite.Tensor", ndim: int) -> tuple[np.ndarray, np.ndarray]:
    """Scale and zero point shaped to broadcast against the tensor (this file is per-tensor, but a
    per-channel file only differs by the axis the arrays lie along)."""
    q = tensor.Quantization()
    if q is None or q.ScaleLength() == 0:
        raise ValueError(f"tensor {tensor.Name().decode()!r} is not quantized; this converter expects a uint8 model.")
    shape = [1] * ndim
    shape[q.QuantizedDimension() if q.ScaleLength() > 1 else 0] = -1
    scale = q.ScaleAsNumpy().astype(np.float64).reshape(shape)
    zero_point = q.ZeroPointAsNumpy().astype(np.float64).reshape(shape)
    return scale, zero_point


def tflite_operators(model: "tflite.Model"):
    """(index, operator, builtin opcode) for every operator of the graph, in execution order."""
    graph = model.Subgraphs(0)
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        code = model.OperatorCodes(op.OpcodeIndex())
        # Old files set only the deprecated int8 opcode field (the int32 one then reads 0); newer files
        # set both. The larger of the two is right either way.
        yield i, op, max(code.BuiltinCode(), code.DeprecatedBuiltinCode())


def read_tflite_convolutions(tflite_path: str | Path) -> list[FoldedConv]:
    """Every CONV_2D / DEPTHWISE_CONV_2D of the graph, in execution order, as float weights."""
    path = Path(tflite_path)
    if not path.is_file():
        raise FileNotFoundError(
            f"TFLite model not found: {path}. Pass the path of mobilenet_v2_1.0_224_quant.tflite "
            f"(or set BRAIN_TUMOR_PRETRAINED_TFLITE)."
        )
    model = tflite.Model.GetRootAsModel(path.read_bytes(), 0)
    graph = model.Subgraphs(0)
    convs = []
    for i, op, opcode in tflite_operators(model):
        kind = _CONV_OPS.get(opcode)
        if kind is None:
            continue
        inp, weight_t, bias_t = (graph.Tensors(op.Inputs(j)) for j in range(3))
        # Dequantize: (q - zero_point) * scale. The bias comes from *this* operator's inputs, never by
        # name (the exporter merges names, so a bias can carry another layer's). Its scale is defined
        # as input scale x weight scale, which is what the interpreter computes with.
        w_raw = _constant(model, weight_t, path)
        w_scale, w_zero = _scale_and_zero_point(weight_t, w_raw.ndim)
        weight = (w_raw.astype(np.float64) - w_zero) * w_scale
        in_scale, _ = _scale_and_zero_point(inp, 1)
        bias = _constant(model, bias_t, path).astype(np.float64) * (in_scale * w_scale.reshape(-1))
        options_class = tflite.Conv2DOptions if kind == "conv" else tflite.DepthwiseConv2DOptions
        options = options_class()
        table = op.BuiltinOptions()
        options.Init(table.Bytes, table.Pos)
        if options.Padding() != tflite.Padding.SAME or options.StrideH() != options.StrideW():
            raise ValueError(f"{path}: operator {i} is not a square-stride SAME convolution; not a MobileNetV2 file?")
        # Layouts: conv OHWI -> OIHW; depthwise 1HWC (multiplier 1) -> C1HW.
        weight = weight.transpose(0, 3, 1, 2) if kind == "conv" else weight[0].transpose(2, 0, 1)[:, None]
        convs.append(
            FoldedConv(
                scope=weight_t.Name().decode().split(";")[0],
                kind=kind,
                weight=weight.astype(np.float32),
                bias=bias.astype(np.float32),
                stride=options.StrideH(),
                relu6=options.FusedActivationFunction() == tflite.ActivationFunctionType.RELU6,
            )
        )
    return convs


def tflite_layer_map(model: MobileNetV2ForImageClassification) -> list[tuple[str, torch.nn.Module]]:
    """The model's weighted layers in the order of the TFLite convolutions, with the TF-slim scope each
    one's weight is expected under: (scope, MobileNetV2ConvLayer), and last the classifier (Linear)."""
    body = model.mobilenet_v2
    stem = body.conv_stem
    layers = [
        ("MobilenetV2/Conv/", stem.first_conv),
        ("MobilenetV2/expanded_conv/depthwise/", stem.conv_3x3),
        ("MobilenetV2/expanded_conv/project/", stem.reduce_1x1),
    ]
    for i, block in enumerate(body.layer, start=1):
        scope = f"MobilenetV2/expanded_conv_{i}/"
        layers += [(scope + "expand/", block.expand_1x1), (scope + "depthwise/", block.conv_3x3)]
        layers.append((scope + "project/", block.reduce_1x1))
    return layers + [("MobilenetV2/Conv_1/", body.conv_1x1), ("MobilenetV2/Logits/Conv2d_1c_1x1/", model.classifier)]


def read_labels(tflite_path: str | Path) -> list[str]:
    """The 1001 labels from the file next to the .tflite file."""
    return imagenet_labels(Path(tflite_path).with_name(IMAGENET_LABELS_FILENAME))


def load_tflite_model(tflite_path: str | Path) -> MobileNetV2ForImageClassification:
    """MobileNetV2 with the TFLite weights; each batch norm is an exact identity plus the folded bias."""
    convs = read_tflite_convolutions(tflite_path)
    labels = read_labels(tflite_path)
    config = MobileNetV2Config(
        tf_padding=True,  # TF "SAME" padding: stride-2 convs pad bottom/right only, as the file was trained
        # TF-slim trains with keep_prob 0.8; transformers' default (0.8 *drop*) would starve a fine-tune.
        classifier_dropout_prob=0.2,
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
    )
    model = MobileNetV2ForImageClassification(config).eval()
    targets = tflite_layer_map(model)
    if len(convs) != len(targets):
        raise ValueError(f"{tflite_path}: found {len(convs)} convolutions; MobileNetV2 1.0 has {len(targets)}.")
    with torch.no_grad():
        for conv, (scope, layer) in zip(convs, targets):
            if not conv.scope.startswith(scope):
                raise ValueError(f"{tflite_path}: expected a weight under {scope!r}, found {conv.scope!r}.")
            if layer is model.classifier:  # a 1 x 1 conv over the pooled features is a Linear layer
                layer.weight.copy_(torch.from_numpy(conv.weight.reshape(layer.weight.shape)))
                layer.bias.copy_(torch.from_numpy(conv.bias))
                continue
            target = layer.convolution
            if tuple(conv.weight.shape) != tuple(target.weight.shape) or conv.stride != target.stride[0]:
                raise ValueError(
                    f"{tflite_path}: {conv.scope} has shape {conv.weight.shape} stride {conv.stride}; "
                    f"the model expects {tuple(target.weight.shape)} stride {target.stride[0]}."
                )
            if conv.relu6 != (layer.activation is not None):
                raise ValueError(f"{tflite_path}: {conv.scope} activation does not match the model's layer.")
            target.weight.copy_(torch.from_numpy(conv.weight))
            norm = layer.normalization
            norm.running_mean.zero_()
            norm.running_var.fill_(1.0)
            norm.weight.fill_(float(np.sqrt(1.0 + norm.eps)))
            norm.bias.copy_(torch.from_numpy(conv.bias))
    return model


def build_image_processor() -> MobileNetV2ImageProcessorPil:
    """The preprocessing the TFLite model expects, as a transformers image processor.

    The TFLite input is uint8 with scale 1/128 and zero point 128: x_float = (x - 128) / 128.
    Rescaling by 1/255 and normalising with mean = std = 128/255 gives exactly that, while staying
    in the usual "ToTensor then Normalize(mean, std)" form that training transforms derive from the
    processor (mean = std = 0.5 would give (x - 127.5) / 127.5, a 0.4 % scale and offset error).
    Geometry: squash to 256 x 256 and centre-crop 224 reproduces TF-slim's eval preprocessing for this
    model (central 87.5 % crop, resized to 224 x 224); bench/check_tflite_conversion.py compares it
    with the other settings.
    """
    # The PIL backend directly: the default class wants torchvision, which this project does not use.
    return MobileNetV2ImageProcessorPil(
        do_resize=True,
        size={"height": 256, "width": 256},
        resample=PILImageResampling.BILINEAR,
        do_center_crop=True,
        crop_size={"height": 224, "width": 224},
        do_rescale=True,
        rescale_factor=1 / 255,
        do_normalize=True,
        image_mean=[128 / 255] * 3,
        image_std=[128 / 255] * 3,
    )


def convert_tflite_to_transformers(
    tflite_path: str | Path, output_dir: str | Path, calibration_images: list[Image.Image] | None = None
) -> Path:
    """Write a transformers checkpoint (safetensors + config + image processor) converted from the
    TFLite file. `calibration_images` (PIL images) set the batch-norm running statistics; they do not
    change eval outputs. None means `default_calibration_images()`."""
    model = load_tflite_model(tflite_path)
    processor = build_image_processor()
    images = default_calibration_images() if calibration_images is None else list(calibration_images)
    if not images:
        raise ValueError("calibration_images is empty; pass at least one PIL image, or None for the defaults.")
    pixel_values = processor([image.convert("RGB") for image in images], return_tensors="pt")["pixel_values"]
    calibrate_batch_norms(model, pixel_values)
    output_dir = Path(output_dir)
    model.save_pretrained(output_dir)
    processor.save_pretrained(output_dir)
    return output_dir
