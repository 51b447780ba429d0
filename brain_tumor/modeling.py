"""Building the classifier: from a checkpoint (head swapped for our labels) or from a config.

No pretrained weights can be downloaded on machines without the Hub, so a model can also start
from a config: one of the named presets below, or any `config.json`. Image preprocessing always
comes from an image processor saved beside the model, so `pipeline()` reproduces it.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from transformers import (AutoConfig, AutoImageProcessor, AutoModelForImageClassification, ConvNextConfig,
                          ResNetConfig, ViTImageProcessor)

from .input_size import fit_model_to_input_size, square_resize_processor
from .labels import id2label, label2id

# Small from-config architectures sized for 2-D slices on a CPU (see the model card for the
# one the default model uses and why).
PRESETS = {
    # ResNet-18 layout at half width: 2.8 M parameters, ~11 MB in float32.
    "resnet18-half": lambda: ResNetConfig(layer_type="basic", embedding_size=32, hidden_sizes=[32, 64, 128, 256],
                                          depths=[2, 2, 2, 2], downsample_in_first_stage=False),
    # ResNet-10 layout (one basic block a stage) at half width: 1.2 M parameters, ~5 MB. Half the
    # convolutions of resnet18-half, which matters on a CPU at batch 1: PyTorch runs the small
    # stage-3/4 maps of a single image through its slow im2col path, not oneDNN.
    "resnet10-half": lambda: ResNetConfig(layer_type="basic", embedding_size=32, hidden_sizes=[32, 64, 128, 256],
                                          depths=[1, 1, 1, 1], downsample_in_first_stage=False),
    # Three stages (ResNet-10-half's first three, the last one wider and two blocks deep): the last feature
    # map has stride 16 (10 x 10 at 160 px, not 5 x 5), so the class activation map that Grad-CAM shows,
    # and that the mask loss trains, can point at a tumour rather than at a quarter of the slice.
    "resnet-s16-half": lambda: ResNetConfig(layer_type="basic", embedding_size=32, hidden_sizes=[32, 64, 192],
                                            depths=[1, 1, 2], downsample_in_first_stage=False),
    # A narrower, shallower ResNet for quick experiments and tests.
    "resnet-mini": lambda: ResNetConfig(layer_type="basic", embedding_size=16, hidden_sizes=[16, 32, 64, 128],
                                        depths=[1, 1, 1, 1]),
    # ConvNeXt with ConvNeXt-Tiny's depth pattern at half width: ~7 M parameters.
    "convnext-half": lambda: ConvNextConfig(hidden_sizes=[48, 96, 192, 384], depths=[2, 2, 4, 2]),
}
# MRI slices are grey: one mean/std for all three (identical) channels.
FROM_CONFIG_MEAN = [0.5, 0.5, 0.5]
FROM_CONFIG_STD = [0.5, 0.5, 0.5]


class ModelLoadError(ValueError):
    """A model that cannot be loaded, with a message saying what was wrong."""


def load_error_message(name: str, error: Exception) -> str:
    """What went wrong loading a model folder or Hub id, and what the user can do."""
    detail = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    path = Path(name).expanduser()
    if path.is_dir():
        return (
            f"The folder {name!r} is not a usable model folder: it needs config.json, the weights "
            f"(model.safetensors) and preprocessor_config.json, as written by save_pretrained ({detail})."
        )
    if name.startswith((".", "/", "~")) or path.suffix or "\\" in name or name.count("/") > 1:
        return (
            f"No model folder at {name!r}. Give a folder written by save_pretrained, "
            "or a Hub id such as 'owner/model'."
        )
    return (
        f"Could not load {name!r} from the Hugging Face Hub: it is not in the local cache and the Hub "
        f"cannot be reached (offline, HF_HUB_OFFLINE=1, or no such repository). Download it once "
        f"with network access, or give a local model folder ({detail})."
    )


def override_config(config, overrides: str | None):
    """Apply `key=value,key=value` settings (transformers' `update_from_string` format) to a config.

    Only keys the config already has, with values of their type; anything else is a clear error.
    This is how a checkpoint's architecture switches are changed for fine-tuning, e.g.
    `tf_padding=false` (MobileNetV2: symmetric padding, no separate pad before each convolution)."""
    if not overrides:
        return config
    try:
        config.update_from_string(overrides)
    except (ValueError, TypeError) as error:
        raise ModelLoadError(f"--config_overrides {overrides!r}: {error}. Give key=value pairs separated by "
                             f"commas, with keys that {type(config).__name__} has.") from error
    return config


def load_config(config_name: str):
    """A preset name, a folder or config.json path, or a Hub id -> a config with our four labels."""
    if config_name in PRESETS:
        config = PRESETS[config_name]()
    else:
        path = Path(config_name)
        source = str(path.parent if path.is_file() else path) if path.exists() else config_name
        try:
            config = AutoConfig.from_pretrained(source)
        except (OSError, ValueError) as error:
            if path.exists():
                raise ModelLoadError(f"{config_name!r} is not a valid model config: {error}") from error
            known = ", ".join(PRESETS)
            raise ModelLoadError(f"Unknown config {config_name!r}: not a preset ({known}), not a local "
                                 f"config.json, and not loadable from the Hub ({type(error).__name__}).") from error
    config.num_labels = len(id2label())
    config.id2label, config.label2id = id2label(), label2id()
    return config


def build_from_config(config_name: str, image_size: int, config_overrides: str | None = None):
    """A randomly initialised model and a plain resize-and-normalise image processor."""
    config = override_config(load_config(config_name), config_overrides)
    model = AutoModelForImageClassification.from_config(config)
    processor = ViTImageProcessor(size={"height": image_size, "width": image_size}, resample=2,
                                  image_mean=FROM_CONFIG_MEAN, image_std=FROM_CONFIG_STD)
    return model, processor


def build_from_checkpoint(model_name_or_path: str, cache_dir: str | None = None, image_size: int | None = None,
                          config_overrides: str | None = None):
    """A pretrained model with its head replaced for our labels, and its own image processor.

    `model_name_or_path` may also be ImageNet weights in another format (`efficientnet-lite0`, a
    MobileNetV2 `.tflite` or a Lite0 `.pth` file; see `brain_tumor.pretrained`): converted once into
    a transformers checkpoint under `cache_dir` and loaded from there.
    `image_size`, when given, replaces the processor's resize and crop by a plain square resize:
    a slice is kept whole (no centre crop) and smaller inputs train and serve faster. How each
    processor family (ConvNeXt/ResNet, ViT, EfficientNet, MobileNetV2, ...) gets there, and how
    ViT-like position embeddings follow, is in `input_size`.
    `config_overrides` (`override_config`) changes the checkpoint's config before its weights load.
    """
    from .pretrained import resolve_checkpoint  # imports no converter unless one is needed

    try:
        model_name_or_path = resolve_checkpoint(model_name_or_path, cache_dir)
    except FileNotFoundError as error:
        raise ModelLoadError(str(error)) from error
    try:
        processor = AutoImageProcessor.from_pretrained(model_name_or_path, cache_dir=cache_dir)
        # id2label sets the head's size; passing num_labels too makes transformers warn that it
        # disagrees with the checkpoint's own id2label.
        config = AutoConfig.from_pretrained(model_name_or_path, id2label=id2label(), label2id=label2id(),
                                            cache_dir=cache_dir)
        model = AutoModelForImageClassification.from_pretrained(
            model_name_or_path, config=override_config(config, config_overrides), ignore_mismatched_sizes=True,
            cache_dir=cache_dir)
    except OSError as error:
        raise ModelLoadError(load_error_message(model_name_or_path, error)) from error
    if image_size:
        processor = square_resize_processor(processor, image_size)
        fit_model_to_input_size(model, image_size)
    calm_batch_norm(model)
    return model, processor


def channels_last(model: nn.Module) -> nn.Module:
    """The model with its 4-D weights stored channels last (NHWC), for inference.

    The answers are the same to float rounding, and on our 2-core CPU the default model answered
    sooner that way (PyTorch's CPU convolutions have NHWC kernels): `bench/latency_rounds.py
    --channels_last_too` measures it. Weights of other ranks are untouched, so any model may pass.
    """
    return model.to(memory_format=torch.channels_last)


# (convolution, batch norm) attribute pairs that transformers' vision models run back to back, with
# nothing between, in one module's forward (read in transformers 5.24): the ResNet and MobileNetV2
# conv layers and ResNet's shortcut; EfficientNet's stem, expansion, depthwise, projection and top.
# ConvNeXt has no batch norm, so it passes through unchanged.
CONVOLUTION_THEN_BATCH_NORM = (("convolution", "normalization"), ("convolution", "batchnorm"),
                               ("expand_conv", "expand_bn"), ("depthwise_conv", "depthwise_norm"),
                               ("project_conv", "project_bn"), ("top_conv", "top_bn"))


def fold_batch_norms(model: nn.Module) -> nn.Module:
    """Fold each eval-mode batch norm into the convolution before it, for inference only.

    In eval mode a batch norm is a fixed per-channel scale and shift, so PyTorch's
    `fuse_conv_bn_eval` can move it into the convolution's weights and bias: one pass over each
    feature map fewer, the same answers to float rounding. The model can no longer be trained or
    saved as its architecture, so only the app's `Predictor` (and benchmarks) do this.
    """
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    if model.training:
        raise ValueError("fold_batch_norms needs a model in eval mode: training uses the batch statistics")
    for module in list(model.modules()):
        for convolution_name, norm_name in CONVOLUTION_THEN_BATCH_NORM:
            convolution, norm = getattr(module, convolution_name, None), getattr(module, norm_name, None)
            # A subclass that changes the forward (BiT's weight standardisation) would undo the folding.
            plain_convolution = isinstance(convolution, nn.Conv2d) and type(convolution).forward is nn.Conv2d.forward
            if plain_convolution and isinstance(norm, nn.BatchNorm2d) and norm.track_running_stats:
                setattr(module, convolution_name, fuse_conv_bn_eval(convolution, norm))
                setattr(module, norm_name, nn.Identity())  # ResNet calls it unconditionally
    return model


def prepare_for_cpu_inference(model: nn.Module, fold_batch_norm: bool = True,
                              channels_last_weights: bool = True) -> nn.Module:
    """What the app does to a model it serves on a CPU: batch norms folded, weights channels last.

    Both keep the answers (to float rounding); the flags leave either out, as the benchmarks do
    (`bench/latency_rounds.py --channels_last_too --folded_too` times each against the model as
    saved; README, "Batch norms folded"). Folding comes first, since it writes new convolution weights.
    """
    if fold_batch_norm:
        fold_batch_norms(model)
    return channels_last(model) if channels_last_weights else model


# torch.compile for answering only: inductor with the weights frozen into the graph as constants (it
# then folds the batch norms itself and fuses the pads and activations around each convolution), and one
# graph per input shape, as a served model sees one shape only. The answers match the eager model's
# to float rounding; on our 2-core CPU the default answered through pipeline() a fifth to two fifths
# sooner (README, "Compiled for answering"). Frozen means later changes to the weights are not seen, and a
# call with gradients on compiles another, unfrozen graph: compile a model that is done changing,
# and keep the eager one for gradients (the heat map).
COMPILE_FOR_INFERENCE = {"dynamic": False, "options": {"freezing": True}}


def compiled_for_inference(module: nn.Module):
    """`module` compiled for answering (`COMPILE_FOR_INFERENCE`), as a new callable that shares its
    weights; `module` itself stays eager. Compiling happens on the first call, which is slow
    (tens of seconds on a 2-core CPU) and needs a C++ compiler: call it once before serving."""
    return torch.compile(module, **COMPILE_FOR_INFERENCE)


def batch_norms(module: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    """Every batch-norm layer inside `module`."""
    return [layer for layer in module.modules() if isinstance(layer, nn.modules.batchnorm._BatchNorm)]


def calm_batch_norm(model: nn.Module, momentum: float = 0.1) -> None:
    """Give batch norm a usual momentum before fine-tuning.

    transformers' MobileNetV2 (mirroring TF-slim) uses momentum 0.997, which in PyTorch's
    convention keeps almost only the newest batch: the first training step would replace the
    pretrained running statistics with one small batch's.
    """
    for norm in batch_norms(model):
        if norm.momentum and norm.momentum > 0.5:
            norm.momentum = momentum


def classifier_layer(model: nn.Module) -> nn.Linear:
    """The final linear layer that produces the logits."""
    head = getattr(model, "classifier", None)
    linears = [m for m in head.modules() if isinstance(m, nn.Linear)] if head is not None else []
    if not linears:
        raise ValueError(f"{type(model).__name__} has no linear classifier head to calibrate.")
    return linears[-1]


@torch.no_grad()
def shift_class_logit(model: nn.Module, class_id: int, offset: float) -> None:
    """Add `offset` to one class's logit inside the model (its bias in the last layer), so pipeline()
    answers with the shift and needs no code at inference time."""
    layer = classifier_layer(model)
    if layer.bias is None:
        raise ValueError(f"{type(model).__name__}'s classifier has no bias to shift.")
    layer.bias[class_id] += offset


@torch.no_grad()
def fold_temperature(model: nn.Module, temperature: float) -> None:
    """Divide the logits by `temperature` inside the model, so softmax gives calibrated probabilities.

    logits / T = (W x + b) / T = (W / T) x + b / T: scaling the last layer is exact, keeps the
    argmax, and needs no code at inference time (pipeline() just works).
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    layer = classifier_layer(model)
    layer.weight.div_(temperature)
    if layer.bias is not None:
        layer.bias.div_(temperature)
