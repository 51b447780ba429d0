"""Train and eval transforms, derived from the model's image processor.

Eval uses the image processor itself, so the numbers we report are the numbers `pipeline()`
users get. Train applies augmentation (albumentations) first and then the processor's own
resize and normalisation, read from the processor rather than repeated here.

The augmentation imitates how slices from other scanners and collections differ from this
dataset: other crops, sizes and aspect ratios, small rotations and shifts, brightness,
contrast and gamma, blur and noise, JPEG quality from 30 to 95, and text burnt into corners.
"""

from __future__ import annotations

import random

import albumentations as A
import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

# Strings of the kind scanners and PACS exports burn into slices.
_BURNT_IN_TEXTS = ("L", "R", "A", "P", "T1", "T2", "FLAIR", "T1+C", "MR 1.5T", "SE 4/IM 12", "2019-03-14",
                   "ID 00421", "W 812 L 403", "10 cm", "AX", "COR")


def processor_size(image_processor) -> tuple[int, int]:
    """(height, width) of the tensors an image processor produces."""
    size = getattr(image_processor, "crop_size", None) if getattr(image_processor, "do_center_crop", False) else None
    size = size or image_processor.size
    if "height" in size:
        return int(size["height"]), int(size["width"])
    edge = int(size["shortest_edge"])
    return edge, edge


def burn_in_text(image: np.ndarray, rng: random.Random) -> np.ndarray:
    """Write one or two short labels near the corners, as scanners and viewers do."""
    canvas = Image.fromarray(image)
    draw = ImageDraw.Draw(canvas)
    height, width = image.shape[:2]
    font = ImageFont.load_default(size=max(8, int(height * rng.uniform(0.04, 0.08))))
    for _ in range(rng.randint(1, 2)):
        text = rng.choice(_BURNT_IN_TEXTS)
        x = rng.choice((0.02, 0.6)) * width + rng.uniform(0, 0.1) * width
        y = rng.choice((0.02, 0.88)) * height
        shade = rng.randint(160, 255)
        draw.text((x, y), text, fill=(shade, shade, shade), font=font)
    return np.asarray(canvas)


class TrainTransform:
    """PIL image -> augmented, normalised CHW float tensor of the processor's size."""

    def __init__(self, image_processor, seed: int = 0):
        height, width = processor_size(image_processor)
        self.mean = np.asarray(image_processor.image_mean, dtype=np.float32)
        self.std = np.asarray(image_processor.image_std, dtype=np.float32)
        self.rng = random.Random(seed)
        self.seed = seed
        self._torch_seed = None
        self.augment = A.Compose([
            A.RandomResizedCrop(size=(height, width), scale=(0.75, 1.0), ratio=(0.8, 1.25), p=1.0),
            A.HorizontalFlip(p=0.5),
            A.Affine(rotate=(-12, 12), scale=(0.9, 1.1), translate_percent=(-0.06, 0.06), p=0.7),
            A.RandomBrightnessContrast(brightness_limit=0.25, contrast_limit=0.25, p=0.7),
            A.RandomGamma(gamma_limit=(70, 140), p=0.5),
            A.OneOf([A.GaussianBlur(sigma_limit=(0.3, 1.2)), A.GaussNoise(std_range=(0.01, 0.05))], p=0.3),
            A.Downscale(scale_range=(0.4, 0.9), p=0.2),
            A.ImageCompression(quality_range=(30, 95), p=0.5),
        ], seed=seed)

    def _reseed_for_worker(self) -> None:
        # DataLoader workers get copies of this object; without reseeding, every worker (and every
        # epoch's new workers) would replay the same augmentations. torch gives each worker of each
        # epoch its own initial seed, derived from the Trainer's seed, so this stays reproducible.
        torch_seed = torch.initial_seed()
        if torch_seed != self._torch_seed:
            self._torch_seed = torch_seed
            worker_seed = (self.seed + torch_seed) % 2**32
            self.rng.seed(worker_seed)
            self.augment.set_random_seed(worker_seed)

    def __call__(self, image: Image.Image) -> torch.Tensor:
        self._reseed_for_worker()
        array = np.asarray(image.convert("RGB"))
        if self.rng.random() < 0.3:
            array = burn_in_text(array, self.rng)
        array = self.augment(image=array)["image"].astype(np.float32) / 255.0
        array = (array - self.mean) / self.std
        return torch.from_numpy(array.transpose(2, 0, 1).copy())


def make_train_transform(image_processor, seed: int = 0):
    """A `Dataset.set_transform` function for training batches."""
    transform = TrainTransform(image_processor, seed)

    def apply(batch):
        return {"pixel_values": [transform(image) for image in batch["image"]], "labels": batch["label"]}

    return apply


def make_eval_transform(image_processor):
    """A `Dataset.set_transform` function that preprocesses exactly as `pipeline()` does."""

    def apply(batch):
        images = [image.convert("RGB") for image in batch["image"]]
        pixel_values = image_processor(images, return_tensors="pt")["pixel_values"]
        return {"pixel_values": list(pixel_values), "labels": batch["label"]}

    return apply


def collate(examples) -> dict[str, torch.Tensor]:
    return {
        "pixel_values": torch.stack([example["pixel_values"] for example in examples]),
        "labels": torch.tensor([example["labels"] for example in examples]),
    }
