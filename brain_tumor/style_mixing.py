"""Feature-statistics mixing in training (MixStyle: Zhou, Yang, Qiao and Xiang, ICLR 2021).

Why: the tumours a held-out run misses are mostly bright masses on T2, a sequence in which training shows only normal
slices. The channel means and standard deviations of a CNN's early feature maps carry much of an image's style (the
sequence, scanner and contrast), the normalised maps its content. MixStyle gives each training image, at random, a
mix of its own style and another image's in the batch, so that the answer cannot lean on the style. It was built for
domain generalisation, to do well on a domain the model never saw, which is what the held-out collection measures.

Only in training, through forward hooks that `style_mixing` removes on leaving: nothing is mixed at evaluation, and
the saved model is an ordinary transformers image classifier. Tried once on the default's recipe with Br35H held
out (2026-12-07), it found fewer of the unseen tumours, so no recipe uses it (bench/results/cpu_experiments.md).
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn

# Beta(0.1, 0.1), the paper's choice: most draws lie near 0 or 1, so most images keep nearly one style.
MIX_CONCENTRATION = 0.1
_EPS = 1e-6


def mix_styles(features: torch.Tensor, weights: torch.Tensor, partners: torch.Tensor) -> torch.Tensor:
    """Re-style each (C, H, W) map with `weights` of its own channel statistics and `1 - weights` of its partner's.

    `weights` has one value per image, `partners` one batch index per image. The statistics are not differentiated
    through (as in the paper), so the gradient reaches the content, not the style."""
    mean = features.mean(dim=(2, 3), keepdim=True).detach()
    std = (features.var(dim=(2, 3), keepdim=True) + _EPS).sqrt().detach()
    content = (features - mean) / std
    weights = weights.to(features).view(-1, 1, 1, 1)
    mixed_mean = weights * mean + (1 - weights) * mean[partners]
    mixed_std = weights * std + (1 - weights) * std[partners]
    return content * mixed_std + mixed_mean


def mix_random_styles(features: torch.Tensor) -> torch.Tensor:
    """`mix_styles` with a random partner for each image and a Beta(0.1, 0.1) weight (torch's seeded generator)."""
    batch = features.shape[0]
    if batch < 2:
        return features
    concentration = torch.tensor(MIX_CONCENTRATION)
    weights = torch.distributions.Beta(concentration, concentration).sample((batch,))
    return mix_styles(features, weights, torch.randperm(batch).to(features.device))


def mixing_points(model: nn.Module) -> list[nn.Module]:
    """Where styles are mixed: the end of each resolution stage but the last, at most three (the paper's res1-res3;
    the last stage carries the class, not the style). MobileNetV2 blocks, ResNet and ConvNeXt stages."""
    base = model.base_model
    if model.config.model_type == "mobilenet_v2":
        blocks = list(base.layer)
        # A block ends a stage when the next one halves the resolution.
        ends = [block for block, after in zip(blocks, blocks[1:]) if after.conv_3x3.convolution.stride[0] == 2]
    elif model.config.model_type in ("resnet", "convnext"):
        ends = list(base.encoder.stages)[:-1]
    else:
        raise ValueError("--style_mixing works with MobileNetV2, ResNet and ConvNeXt models, not "
                         f"{model.config.model_type!r}.")
    if not ends:
        raise ValueError(f"This {model.config.model_type} has a single resolution stage: no style to mix before it.")
    return ends[:3]


@contextlib.contextmanager
def style_mixing(points: list[nn.Module], probability: float):
    """Inside the block, each of `points` (from `mixing_points`) re-styles its output with `probability` per forward
    pass, in training mode only. The hooks are removed on leaving."""
    def hook(module, args, output):
        if not module.training or torch.rand(()) >= probability:
            return None
        return mix_random_styles(output)

    handles = [point.register_forward_hook(hook) for point in points]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
