"""Train and eval transforms, derived from the model's image processor.

Eval uses the image processor itself, so the numbers we report are the numbers `pipeline()`
users get. Train applies the named augmentation groups of `augment.py` and one resize to the
processor's size: by default with the processor's own resampling (Pillow, antialiased), so that
training and serving see equally smooth pixels; `train_resize="cv2"` keeps the earlier cv2
bilinear resize, to measure the difference (issue 10). Mean and std come from the processor.
Training rows may carry a tumour mask; it is moved with the image by every geometric step.
With a lesion bank (`transplant.py`), a share of the no-tumour slices get a real tumour pasted in
first and become "some tumour" rows with that tumour's mask.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image

from .augment import DEFAULT_AUGMENTATIONS, build_pipeline, reseed
from .labels import ANY_TUMOR_ID, NOTUMOR_ID
from .transplant import LesionBank

UNKNOWN_MASK = -1.0  # fills the mask tensor of a row that has no mask


def processor_size(image_processor) -> tuple[int, int]:
    """(height, width) of the tensors an image processor produces."""
    size = getattr(image_processor, "crop_size", None) if getattr(image_processor, "do_center_crop", False) else None
    size = size or image_processor.size
    if "height" in size:
        return int(size["height"]), int(size["width"])
    edge = int(size["shortest_edge"])
    return edge, edge


class TrainTransform:
    """PIL image (and optional PIL mask) -> augmented, normalised CHW float tensor of the processor's
    size (and an HxW float mask in {0, 1} at that size)."""

    def __init__(self, image_processor, seed: int = 0, augmentations: Sequence[str] = DEFAULT_AUGMENTATIONS,
                 train_resize: str = "processor", lesions: LesionBank | None = None, transplant_share: float = 0.0):
        if not 0.0 <= transplant_share <= 1.0:
            raise ValueError(f"The lesion transplant share must be from 0 to 1, not {transplant_share}.")
        if transplant_share and lesions is None:
            raise ValueError("A lesion transplant share needs a lesion bank (tumour slices with masks).")
        self.height, self.width = processor_size(image_processor)
        self.lesions, self.transplant_share = lesions, transplant_share
        self.rng = np.random.default_rng(seed)
        self.mean = np.asarray(image_processor.image_mean, dtype=np.float32)
        self.std = np.asarray(image_processor.image_std, dtype=np.float32)
        self.seed = seed
        self._torch_seed = None
        self.augment = build_pipeline(augmentations, self.height, self.width, train_resize,
                                      getattr(image_processor, "resample", None), seed)

    def _reseed_for_worker(self) -> None:
        # DataLoader workers get copies of this object; without reseeding, every worker (and every
        # epoch's new workers) would replay the same augmentations. torch gives each worker of each
        # epoch its own initial seed, derived from the Trainer's seed, so this stays reproducible.
        torch_seed = torch.initial_seed()
        if torch_seed != self._torch_seed:
            self._torch_seed = torch_seed
            reseed(self.augment, (self.seed + torch_seed) % 2**32)
            self.rng = np.random.default_rng((self.seed + torch_seed) % 2**32)

    def maybe_transplant(self, image: Image.Image, mask: Image.Image | None, label: int):
        """(image, mask, label), where a share of no-tumour slices become the same slice with a pasted
        tumour, its mask and the label "some tumour" (`transplant.py` says why)."""
        if not self.transplant_share or label != NOTUMOR_ID:
            return image, mask, label
        self._reseed_for_worker()
        if self.rng.random() >= self.transplant_share:
            return image, mask, label
        pasted = self.lesions.paste(image, self.rng)
        return (image, mask, label) if pasted is None else (*pasted, ANY_TUMOR_ID)

    def __call__(self, image: Image.Image, mask: Image.Image | None = None):
        """The image tensor; given a mask, an (image tensor, mask tensor) pair."""
        self._reseed_for_worker()
        array = np.asarray(image.convert("RGB"))
        if mask is None:
            out = self.augment(image=array)
        else:
            out = self.augment(image=array, mask=mask_array(mask, image.size))
        pixels = (out["image"].astype(np.float32) / 255.0 - self.mean) / self.std
        tensor = torch.from_numpy(pixels.transpose(2, 0, 1).copy())
        return tensor if mask is None else (tensor, torch.from_numpy((out["mask"] > 127).astype(np.float32)))

    def unknown_mask(self) -> torch.Tensor:
        return torch.full((self.height, self.width), UNKNOWN_MASK, dtype=torch.float32)


def mask_array(mask: Image.Image, image_size: tuple[int, int]) -> np.ndarray:
    """A 0/255 uint8 array from an 8-bit (or 1-bit) PIL mask the size of its image."""
    if not isinstance(mask, Image.Image):
        raise TypeError(f"A mask must be a PIL image (or None), not {type(mask).__name__}.")
    if mask.mode not in ("L", "1"):
        raise ValueError(f"A mask must be an 8-bit gray ('L') or 1-bit image, not mode {mask.mode!r}.")
    if mask.size != image_size:
        raise ValueError(f"Mask size {mask.size} differs from its image's size {image_size} (width, height).")
    return np.where(np.asarray(mask.convert("L")) > 127, 255, 0).astype(np.uint8)


def make_train_transform(image_processor, seed: int = 0, augmentations: Sequence[str] = DEFAULT_AUGMENTATIONS,
                         train_resize: str = "processor", lesions: LesionBank | None = None,
                         transplant_share: float = 0.0):
    """A `Dataset.set_transform` function for training batches.

    Batch columns: "image" (PIL), "label", optional "mask" (PIL 0/255 or None per row). Output:
    "pixel_values", "labels", and with a "mask" column "masks" (HxW float, 1 tumour, 0 not, all -1
    for a row without a mask). With `lesions` and a `transplant_share`, that share of no-tumour rows
    is drawn with a pasted tumour (label ANY_TUMOR_ID, the pasted mask).
    """
    transform = TrainTransform(image_processor, seed, augmentations, train_resize, lesions, transplant_share)

    def apply(batch):
        with_masks = "mask" in batch or transform.transplant_share > 0  # a pasted tumour brings its mask
        rows = zip(batch["image"], batch.get("mask") or [None] * len(batch["image"]), batch["label"])
        pixel_values, masks, labels = [], [], []
        for image, mask, label in rows:
            image, mask, label = transform.maybe_transplant(image, mask, label)
            if mask is None:
                pixel_values.append(transform(image))
                if with_masks:
                    masks.append(transform.unknown_mask())
            else:
                pixels, mask_tensor = transform(image, mask)
                pixel_values.append(pixels)
                masks.append(mask_tensor)
            labels.append(label)
        return {"pixel_values": pixel_values, "labels": labels, **({"masks": masks} if with_masks else {})}

    return apply


def make_eval_transform(image_processor):
    """A `Dataset.set_transform` function that preprocesses exactly as `pipeline()` does."""

    def apply(batch):
        images = [image.convert("RGB") for image in batch["image"]]
        pixel_values = image_processor(images, return_tensors="pt")["pixel_values"]
        return {"pixel_values": list(pixel_values), "labels": batch["label"]}

    return apply


def collate(examples) -> dict[str, torch.Tensor]:
    """Stack pixel values (B, 3, H, W), labels (B,) and, when present, masks (B, H, W)."""
    batch = {
        "pixel_values": torch.stack([example["pixel_values"] for example in examples]),
        "labels": torch.tensor([example["labels"] for example in examples]),
    }
    if "masks" in examples[0]:
        batch["masks"] = torch.stack([example["masks"] for example in examples])
    return batch
