"""Small in-memory datasets of images for the twin and split tests."""

from __future__ import annotations

import io

from PIL import Image

from brain_tumor.data import canonical_features
from datasets import Dataset, Image as ImageFeature


def reencode(image: Image.Image, quality: int) -> Image.Image:
    """The image after a JPEG round trip at this quality: a near twin, not an exact copy."""
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue()))


def image_dataset(images, labels=None, coarse: bool = False) -> Dataset:
    """A `datasets.Dataset` with an image column (PNG bytes) and the canonical label feature
    (with the coarse "tumor" label too when `coarse`)."""
    labels = labels if labels is not None else [0] * len(images)
    buffers = []
    for image in images:
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        buffers.append({"bytes": buffer.getvalue(), "path": None})
    dataset = Dataset.from_dict({"image": buffers, "label": labels}).cast_column("image", ImageFeature())
    return dataset.cast_column("label", canonical_features(coarse))
