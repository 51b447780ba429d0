"""Synthetic MRI-like slices for tests: a grey 'head' on black, a bright blob whose place says the class.

They are not medical images; they only give loaders, splits and training something real to chew on.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from brain_tumor.labels import ANY_TUMOR, CLASS_NAMES, canonical_label

# Where each class puts its blob (fractions of width, height); notumor has none.
_BLOB_CENTRES = {"glioma": (0.35, 0.35), "meningioma": (0.65, 0.35), "pituitary": (0.5, 0.7), "notumor": None}


def make_slice(label: str, rng: np.random.Generator, size: int = 64, structures: int = 6,
               contrast: float = 50) -> Image.Image:
    y, x = np.mgrid[0:size, 0:size] / size
    rx, ry = rng.uniform(0.3, 0.45, 2)
    head = ((x - 0.5) ** 2 / rx**2 + (y - 0.5) ** 2 / ry**2) < 1
    # A few random soft structures, so that no two slices look alike (as real anatomy differs). The
    # head's outline dominates a 32 x 32 thumbnail: collections whose slices must never twin by chance
    # (no blob to tell them apart) use more and stronger structures.
    anatomy = sum(rng.uniform(-contrast, contrast) * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * s**2))
                  for cx, cy, s in zip(rng.uniform(0.2, 0.8, structures), rng.uniform(0.2, 0.8, structures),
                                       rng.uniform(0.05, 0.15, structures)))
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


# Anatomy for the extra collections: far from chance twins of each other and of make_kaggle_folder's slices.
DISTINCT = {"structures": 12, "contrast": 80}


def make_flat_folder(root: Path, counts: dict[str, int] | None = None, size: int = 64, seed: int = 0) -> Path:
    """Class folders with no split, as Br35H: `yes/y0.jpg` (a tumour of some type), `no/no0.jpg`.

    `counts` maps folder names to image counts (default 10 `yes`, 10 `no`); a folder named for a
    tumour of unknown type draws its blob from the three tumour classes in turn."""
    rng = np.random.default_rng(seed)
    tumours = ("glioma", "meningioma", "pituitary")
    for folder_name, count in (counts or {"yes": 10, "no": 10}).items():
        label = canonical_label(folder_name, allow_coarse=True)
        folder = root / folder_name
        folder.mkdir(parents=True, exist_ok=True)
        prefix = "y" if label == ANY_TUMOR else folder_name.lower()[:2]
        for i in range(count):
            drawn = tumours[i % 3] if label == ANY_TUMOR else label
            make_slice(drawn, rng, size, **DISTINCT).save(folder / f"{prefix}{i}.jpg", quality=95)
    return root


BRISC_PLANES = ("ax", "co", "sa")


def make_brisc_folder(root: Path, per_plane_train: int = 4, per_plane_test: int = 2, size: int = 64,
                      seed: int = 0) -> Path:
    """BRISC-like `train/no_tumor/` and `test/no_tumor/`, the plane in each file name:
    `brisc2025_train_00001_no_ax_t1.jpg`."""
    rng = np.random.default_rng(seed)
    number = 0
    for split, count in (("train", per_plane_train), ("test", per_plane_test)):
        folder = root / split / "no_tumor"
        folder.mkdir(parents=True, exist_ok=True)
        for plane in BRISC_PLANES:
            for _ in range(count):
                number += 1
                make_slice("notumor", rng, size, **DISTINCT).save(folder / f"brisc2025_{split}_{number:05d}_no_{plane}_t1.jpg",
                                                      quality=95)
    return root
