"""Synthetic MRI-like slices for tests: a grey 'head' on black, a bright blob whose place says the class.

They are not medical images; they only give loaders, splits and training something real to chew on.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from brain_tumor.labels import CLASS_NAMES

# Where each class puts its blob (fractions of width, height); notumor has none.
_BLOB_CENTRES = {"glioma": (0.35, 0.35), "meningioma": (0.65, 0.35), "pituitary": (0.5, 0.7), "notumor": None}


def make_slice(label: str, rng: np.random.Generator, size: int = 64) -> Image.Image:
    y, x = np.mgrid[0:size, 0:size] / size
    rx, ry = rng.uniform(0.3, 0.45, 2)
    head = ((x - 0.5) ** 2 / rx**2 + (y - 0.5) ** 2 / ry**2) < 1
    # A few random soft structures, so that no two slices look alike (as real anatomy differs).
    anatomy = sum(rng.uniform(-50, 50) * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * s**2))
                  for cx, cy, s in zip(rng.uniform(0.2, 0.8, 6), rng.uniform(0.2, 0.8, 6), rng.uniform(0.05, 0.15, 6)))
    image = head * (90 + 30 * rng.random() + anatomy) + rng.normal(0, 8, (size, size))
    centre = _BLOB_CENTRES[label]
    if centre is not None:
        cx, cy = centre[0] + rng.normal(0, 0.03), centre[1] + rng.normal(0, 0.03)
        image += 140 * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * 0.06 ** 2))
    return Image.fromarray(np.clip(image, 0, 255).astype(np.uint8), mode="L")


def make_kaggle_folder(root: Path, per_class_train: int = 12, per_class_test: int = 4, size: int = 64,
                       seed: int = 0, class_folders: dict[str, str] | None = None) -> Path:
    """Training/<class>/*.jpg and Testing/<class>/*.jpg; class_folders renames folders (e.g. to synonyms)."""
    rng = np.random.default_rng(seed)
    for split, count in (("Training", per_class_train), ("Testing", per_class_test)):
        for label in CLASS_NAMES:
            folder = root / split / (class_folders or {}).get(label, label)
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                make_slice(label, rng, size).save(folder / f"{split[:2]}-{label[:2]}_{i:04d}.jpg", quality=95)
    return root
