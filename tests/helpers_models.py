"""Tiny models for tests: built from a config, random weights, saved like a real model folder.

Fast enough to build in a fraction of a second and to serve 100 requests in a few seconds on
two CPU cores. Their predictions are meaningless; tests check plumbing, shapes and messages.
"""

from __future__ import annotations

from pathlib import Path

from brain_tumor.labels import CLASS_NAMES

IMAGE_SIZE = 64


def build_tiny_model(arch: str = "resnet", seed: int = 0):
    """(model, image_processor) for one of "resnet", "convnext", "mobilenet_v2"."""
    import torch
    from transformers import (
        ConvNextConfig,
        ConvNextForImageClassification,
        ConvNextImageProcessorPil,
        MobileNetV2Config,
        MobileNetV2ForImageClassification,
        ResNetConfig,
        ResNetForImageClassification,
    )

    labels = {
        "num_labels": len(CLASS_NAMES),
        "id2label": dict(enumerate(CLASS_NAMES)),
        "label2id": {name: i for i, name in enumerate(CLASS_NAMES)},
    }
    torch.manual_seed(seed)
    if arch == "resnet":
        config = ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], **labels)
        model = ResNetForImageClassification(config)
    elif arch == "convnext":
        config = ConvNextConfig(num_stages=2, hidden_sizes=[8, 16], depths=[1, 1], **labels)
        model = ConvNextForImageClassification(config)
    elif arch == "mobilenet_v2":
        config = MobileNetV2Config(depth_multiplier=0.35, image_size=IMAGE_SIZE, **labels)
        model = MobileNetV2ForImageClassification(config)
    else:
        raise ValueError(f"unknown arch {arch!r}")
    # The PIL backend works without torchvision (absent here); crop_pct gives the resize-then-
    # centre-crop behaviour of real ConvNeXt/ResNet checkpoints, so heat-map geometry is tested.
    processor = ConvNextImageProcessorPil(size={"shortest_edge": IMAGE_SIZE}, crop_pct=0.875)
    return model.eval(), processor


def save_tiny_model(folder, arch: str = "resnet", checks: dict | None = None, seed: int = 0) -> str:
    """Write a tiny model folder (config, weights, image processor) and return its path."""
    model, processor = build_tiny_model(arch, seed=seed)
    if checks is not None:
        model.config.brain_tumor_checks = checks
    folder = Path(folder)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return str(folder)
