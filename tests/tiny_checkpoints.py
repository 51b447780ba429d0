"""Tiny checkpoint folders of the families users fine-tune, each saved with its family's real image processor.

Random weights, a few thousand to 40 thousand parameters, and a two-class head that fine-tuning
replaces, as a Hub checkpoint's ImageNet head would be. The processors keep their family's
geometry at a small size: ConvNeXt/ResNet `shortest_edge` + `crop_pct`, ViT `height`/`width`,
EfficientNet `height`/`width` + centre crop, MobileNetV2 `shortest_edge` + centre crop. Saved
with the PIL classes: the file is the same as the torchvision classes write (both save the base
class name), and `AutoImageProcessor` loads whichever backend the machine has.
"""

from __future__ import annotations

from pathlib import Path

import torch
import transformers as tf
from torch import nn

# Side of the square each family's own processor outputs (no --image_size).
NATIVE_SIZE = 40
FAMILIES = ("convnext", "resnet", "vit", "efficientnet", "mobilenet_v2")
IMAGENET_MEAN, IMAGENET_STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def _family(name: str):
    """(model, processor) for one family."""
    if name == "convnext":
        model = tf.ConvNextForImageClassification(tf.ConvNextConfig(num_stages=2, hidden_sizes=[8, 16], depths=[1, 1]))
        # 40 / 0.875 = 45: resize the short side to 45, centre-crop 40 x 40, as facebook/convnext-* do at 224.
        return model, tf.ConvNextImageProcessorPil(size={"shortest_edge": NATIVE_SIZE}, crop_pct=0.875,
                                                   image_mean=IMAGENET_MEAN, image_std=IMAGENET_STD)
    if name == "resnet":
        model = tf.ResNetForImageClassification(tf.ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1]))
        return model, tf.ConvNextImageProcessorPil(size={"shortest_edge": NATIVE_SIZE}, crop_pct=0.875,
                                                   image_mean=IMAGENET_MEAN, image_std=IMAGENET_STD)
    if name == "vit":
        config = tf.ViTConfig(image_size=NATIVE_SIZE, patch_size=8, hidden_size=16, num_hidden_layers=1,
                              num_attention_heads=2, intermediate_size=32)
        return tf.ViTForImageClassification(config), tf.ViTImageProcessorPil(
            size={"height": NATIVE_SIZE, "width": NATIVE_SIZE})
    if name == "efficientnet":
        config = tf.EfficientNetConfig(image_size=NATIVE_SIZE, width_coefficient=0.1, depth_coefficient=0.1,
                                       hidden_dim=128)  # hidden_dim = the top conv's width at this scale
        return tf.EfficientNetForImageClassification(config), tf.EfficientNetImageProcessorPil(
            size={"height": 48, "width": 48}, crop_size={"height": NATIVE_SIZE, "width": NATIVE_SIZE},
            do_center_crop=True)
    if name == "mobilenet_v2":
        config = tf.MobileNetV2Config(depth_multiplier=0.1, min_depth=4, finegrained_output=False,
                                      image_size=NATIVE_SIZE)
        return tf.MobileNetV2ForImageClassification(config), tf.MobileNetV2ImageProcessorPil(
            size={"shortest_edge": 48}, crop_size={"height": NATIVE_SIZE, "width": NATIVE_SIZE})
    raise ValueError(f"unknown family {name!r}; known: {', '.join(FAMILIES)}")


def save_checkpoint(folder, family: str, seed: int = 0) -> Path:
    """Write config.json, model.safetensors and preprocessor_config.json for `family` into `folder`."""
    torch.manual_seed(seed)
    model, processor = _family(family)
    settle_batch_norm(model)
    model.config.id2label, model.config.label2id = {0: "cat", 1: "dog"}, {"cat": 0, "dog": 1}
    folder = Path(folder)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


@torch.no_grad()
def settle_batch_norm(model: nn.Module) -> None:
    """Give batch norms what a trained network's have: scale 1 and running statistics that match the activations.

    Freshly initialised ones differ (EfficientNet draws the scale from N(0, 0.02)): activations then
    shrink to zero through the layers and every image gets the same features, which no real
    checkpoint does.
    """
    norms = [module for module in model.modules() if isinstance(module, nn.modules.batchnorm._BatchNorm)]
    momenta = [norm.momentum for norm in norms]
    for norm in norms:
        nn.init.ones_(norm.weight)
        norm.reset_running_stats()
        norm.momentum = None  # a plain average over this one batch
    model.train()(pixel_values=torch.rand(16, 3, NATIVE_SIZE, NATIVE_SIZE))
    for norm, momentum in zip(norms, momenta):
        norm.momentum = momentum
    model.eval()
