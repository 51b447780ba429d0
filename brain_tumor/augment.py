"""The catalogue of named augmentation groups, the training pipeline built from it, and its description.

Why these groups: a model trained on one mix of collections learns their signatures rather than
the tumour. The sequence (T1, T2, FLAIR) shows in the contrast, the collection in the framing:
how much of the head is in view, background level, aspect ratio, borders, burnt-in text. The
"contrast" groups make gray levels stop revealing the sequence; the "framing" groups make the
frame stop revealing the collection. Each group can be switched on or off by name, so its worth
can be measured (issue 9).

The pipeline runs in three stages: framing groups at the image's own resolution (they move
pixels, and a mask moves with them), then ONE resize to the model's input, then the contrast
groups (image only). The card's text comes from `describe_augmentation`, which reads this
catalogue, so it cannot drift from the code.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import albumentations as A
import cv2
import numpy as np
from PIL import Image

from .augment_ops import BiasField, BurnInText, PilResize, RandomAreaCrop, RandomIntensityRemap
from .transplant import LesionBank, describe_transplant

FRAMING, CONTRAST = "framing", "contrast"
TRAIN_RESIZES = ("processor", "cv2")


@dataclass(frozen=True)
class Augmentation:
    """One named group: where it runs, how often, what it does (one line), and how to build it."""

    stage: str  # FRAMING (before the resize, moves the mask too) or CONTRAST (after it, image only)
    probability: float  # fraction of training images the group touches
    description: str
    build: Callable[[float], A.BasicTransform]  # probability -> transform


# Catalogue order is pipeline order within each stage.
AUGMENTATIONS: dict[str, Augmentation] = {
    # --- framing: how the slice sits in the frame -------------------------------------------
    "geometry": Augmentation(
        FRAMING, 1.0,
        "random crop of 75-100 % of the area (aspect 0.8-1.25), horizontal flip (half of images), and for 70 % "
        "of images a rotation up to 12 degrees, scale 0.9-1.1 and shift up to 6 %",
        lambda p: A.Sequential([
            RandomAreaCrop(scale=(0.75, 1.0), ratio=(0.8, 1.25), p=1.0),
            A.HorizontalFlip(p=0.5),
            A.Affine(rotate=(-12, 12), scale=(0.9, 1.1), translate_percent=(-0.06, 0.06), p=0.7),
        ], p=p)),
    "skull_crop": Augmentation(
        FRAMING, 0.15, "tight crop that cuts up to 15 % from each side, often through the skull",
        lambda p: A.RandomCropFromBorders(crop_left=0.15, crop_right=0.15, crop_top=0.15, crop_bottom=0.15, p=p)),
    "aspect": Augmentation(
        FRAMING, 0.2, "horizontal stretch or squeeze by 0.75-1.33 (the aspect ratio of the anatomy changes)",
        lambda p: A.Affine(scale={"x": (0.75, 1.33), "y": 1.0}, p=p)),
    "zoom_out": Augmentation(
        FRAMING, 0.2,
        "pad each side by 5-40 % (the head shrinks in the frame) with a random dark background level (0-60 of 255)",
        lambda p: A.CropAndPad(percent=((0.05, 0.4),) * 4, keep_size=False, fill=(0, 60), p=p)),
    "border": Augmentation(
        FRAMING, 0.1, "bars of one random shade (0-255) added on some sides, 0-10 % wide each",
        lambda p: A.CropAndPad(percent=([0.0, 0.0, 0.03, 0.06, 0.1],) * 4, keep_size=False, fill=(0, 255), p=p)),
    "text": Augmentation(
        FRAMING, 0.25, "one or two scanner-style labels (L, T2, FLAIR, dates, IDs) burnt into corners",
        lambda p: BurnInText(p=p)),
    # --- contrast: what the gray levels say ---------------------------------------------------
    "remap": Augmentation(
        CONTRAST, 0.25,
        "random non-monotone intensity curve (smooth, through 2-4 random control points at quantiles of the "
        "tissue levels, slope at most 5; air stays dark): "
        "tissues swap brightness order, as between T1 and T2",
        lambda p: RandomIntensityRemap(points=(2, 4), max_slope=5.0, p=p)),
    "invert": Augmentation(CONTRAST, 0.1, "gray-level inversion", lambda p: A.InvertImg(p=p)),
    "bias_field": Augmentation(
        CONTRAST, 0.25, "smooth multiplicative field (3rd-order polynomial, gain 0.55-1.8), like coil shading",
        lambda p: BiasField(order=3, max_log_gain=0.6, p=p)),
    "gamma": Augmentation(CONTRAST, 0.4, "gamma 0.7-1.4", lambda p: A.RandomGamma(gamma_limit=(70, 140), p=p)),
    "brightness_contrast": Augmentation(
        CONTRAST, 0.5, "contrast +-25 %, brightness shifted by up to 25 % of the image's mean",
        # Shifts relative to the mean, not to 255: -25 % of 255 blanks a dark FLAIR slice.
        lambda p: A.RandomBrightnessContrast(brightness_limit=0.25, contrast_limit=0.25, brightness_by_max=False,
                                             p=p)),
    "blur_sharpen": Augmentation(
        CONTRAST, 0.15, "one of: Gaussian blur (sigma 0.5-1.5), mild sharpening, mild unsharp masking",
        lambda p: A.OneOf([A.GaussianBlur(sigma_limit=(0.5, 1.5)), A.Sharpen(alpha=(0.1, 0.3)),
                           A.UnsharpMask(alpha=(0.1, 0.3))], p=p)),
    "blur_noise": Augmentation(
        CONTRAST, 0.25, "light Gaussian blur (sigma 0.3-1.2) or gray Gaussian noise (1-5 %)",
        lambda p: A.OneOf([A.GaussianBlur(sigma_limit=(0.3, 1.2)),
                           A.GaussNoise(std_range=(0.01, 0.05), per_channel=False)], p=p)),
    "downscale": Augmentation(
        CONTRAST, 0.15, "down-scaling by 0.4-0.9 and back (area, then bilinear): lost detail",
        lambda p: A.Downscale(scale_range=(0.4, 0.9), p=p,
                              interpolation_pair={"downscale": cv2.INTER_AREA, "upscale": cv2.INTER_LINEAR})),
    "jpeg": Augmentation(CONTRAST, 0.4, "JPEG re-encoding at quality 30-95",
                         lambda p: A.ImageCompression(quality_range=(30, 95), p=p)),
}
DEFAULT_AUGMENTATIONS: tuple[str, ...] = tuple(AUGMENTATIONS)


def check_augmentations(names: Sequence[str]) -> tuple[str, ...]:
    """Validated groups, in pipeline order, without repeats: "name", or "name=P" to apply the group
    to a share P of images instead of its catalogue share; "all" stands for every group."""
    if isinstance(names, str):  # "geometry,remap=0.5" from a command line; "none" or "" for no augmentation
        names = [name.strip() for name in names.split(",") if name.strip() not in ("", "none")]
    chosen = {}
    for item in names:
        if item == "all":
            chosen.update({name: chosen.get(name) for name in AUGMENTATIONS})
            continue
        name, _, share_text = item.partition("=")
        if name not in AUGMENTATIONS:
            raise ValueError(f"Unknown augmentation group {name!r}; known groups: {', '.join(AUGMENTATIONS)} "
                             "(or all), each optionally as name=share, e.g. remap=0.5.")
        chosen[name] = _share_of(item, share_text) if share_text else chosen.get(name)
    return tuple(name if chosen[name] is None else f"{name}={chosen[name]:g}" for name in AUGMENTATIONS
                 if name in chosen)


def _share_of(item: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"Augmentation {item!r}: the share after '=' must be a number from 0 to 1.")
    return value


def group_and_share(item: str) -> tuple[str, float]:
    """("remap", 0.5) for "remap=0.5"; the catalogue's share for a bare name."""
    name, _, share_text = item.partition("=")
    return name, float(share_text) if share_text else AUGMENTATIONS[name].probability


def check_train_resize(train_resize: str) -> str:
    if train_resize not in TRAIN_RESIZES:
        raise ValueError(f"train_resize must be one of {TRAIN_RESIZES}, not {train_resize!r}.")
    return train_resize


def final_resize(height: int, width: int, train_resize: str, resample) -> A.BasicTransform:
    """The one resize to the model's input: like the image processor (Pillow, its `resample`,
    antialiased) or, as before, cv2 bilinear without antialiasing."""
    if check_train_resize(train_resize) == "processor":
        return PilResize(height, width, Image.Resampling.BILINEAR if resample is None else resample)
    return A.Resize(height, width, interpolation=cv2.INTER_LINEAR)


def build_pipeline(augmentations: Sequence[str], height: int, width: int, train_resize: str = "processor",
                   resample=None, seed: int = 0, always: bool = False) -> A.Compose:
    """framing groups -> resize to (height, width) -> contrast groups, seeded. uint8 HxWx3 in and out.

    `always` applies every group to every image (tests, contact sheets), not at its probability.
    """
    groups = [group_and_share(item) for item in check_augmentations(augmentations)]
    stage = {s: [AUGMENTATIONS[n].build(1.0 if always else p) for n, p in groups if AUGMENTATIONS[n].stage == s]
             for s in (FRAMING, CONTRAST)}
    pipeline = A.Compose([*stage[FRAMING], final_resize(height, width, train_resize, resample), *stage[CONTRAST]])
    reseed(pipeline, seed)
    return pipeline


def reseed(pipeline: A.Compose, seed: int) -> None:
    """Give the whole pipeline ONE pair of generators.

    Not `Compose(seed=)` or `set_random_seed`: albumentations 2.0.8 then seeds every transform with
    the same seed, so ops with equal probabilities fire together (measured: two p=0.5 ops were
    applied together on 1012 of 1012 draws; with shared generators, 521 of 1033).
    """
    pipeline.set_random_state(np.random.default_rng(seed), random.Random(seed))


def describe_augmentation(augmentations: Sequence[str] = DEFAULT_AUGMENTATIONS,
                          train_resize: str = "processor", transplant_share: float = 0.0,
                          lesions: LesionBank | None = None, prior_offset: float | None = None) -> str:
    """The model card's paragraph on training augmentation, generated from the catalogue (and, with
    a lesion bank, the transplant's sentence)."""
    transplant = (" " + describe_transplant(transplant_share, len(lesions.lesions), prior_offset, lesions.t2_share,
                                            lesions.t2_grow, lesions.t2_core_floor) if lesions else "")
    groups = [group_and_share(item) for item in check_augmentations(augmentations)]
    resize = ("Pillow with the image processor's own resampling (antialiased), as at serving time"
              if check_train_resize(train_resize) == "processor" else "cv2 bilinear (not antialiased)")
    if not groups:
        return f"No augmentation: training images are only resized ({resize}) and normalised.{transplant}"

    def items(stage: str) -> str:
        return "; ".join(f"`{name}` ({p * 100:.0f} % of images): {AUGMENTATIONS[name].description}"
                         for name, p in groups if AUGMENTATIONS[name].stage == stage) or "none"

    return (f"Augmentation (training only), each group applied at random to the stated share of images. "
            f"Framing, at the image's own size: {items(FRAMING)}. Then one resize to the model's input: "
            f"{resize}. Contrast: {items(CONTRAST)}.{transplant} Evaluation uses the image processor alone.")
