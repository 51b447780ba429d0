import io

import numpy as np
from PIL import Image, ImageEnhance

from brain_tumor.data import canonical_features
from brain_tumor.duplicates import fingerprint_dataset, find_twins
from brain_tumor.splits import make_splits
from datasets import Dataset, DatasetDict, Image as ImageFeature
from synthetic import make_slice


def _reencode(image: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue()))


def _dataset(images, labels=None) -> Dataset:
    labels = labels if labels is not None else [0] * len(images)
    buffers = []
    for image in images:
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        buffers.append({"bytes": buffer.getvalue(), "path": None})
    dataset = Dataset.from_dict({"image": buffers, "label": labels}).cast_column("image", ImageFeature())
    return dataset.cast_column("label", canonical_features())


def test_planted_exact_and_near_twins_are_found_and_distinct_images_left_alone():
    rng = np.random.default_rng(0)
    reference = [make_slice(label, rng, 96) for label in ("glioma", "meningioma", "pituitary", "notumor") * 5]
    exact_copy = reference[0].copy()
    near_copy = ImageEnhance.Brightness(_reencode(reference[1], 60)).enhance(1.1)  # re-encoded, brighter
    resized_copy = reference[2].resize((120, 120)).resize((96, 96))  # resampled
    distinct = [make_slice(label, np.random.default_rng(99), 96) for label in ("glioma", "notumor")]
    report = find_twins(fingerprint_dataset(_dataset([exact_copy, near_copy, resized_copy, *distinct])),
                        fingerprint_dataset(_dataset(reference)))
    assert report.exact.tolist() == [True, False, False, False, False]
    assert report.near.tolist() == [True, True, True, False, False]
    assert report.reference_twins[:3].all() and not report.reference_twins[3:].any()
    assert (report.best_similarity[3:] < 0.99).all()


def test_splits_drop_test_twins_from_clean_test_and_validation_twins_from_train():
    rng = np.random.default_rng(1)
    labels = [0, 1, 2, 3] * 10
    names = ("glioma", "meningioma", "notumor", "pituitary")
    train_images = [make_slice(names[label], rng, 64) for label in labels]
    test_images = [train_images[0].copy(), _reencode(train_images[5], 70)] + \
                  [make_slice(names[label], rng, 64) for label in labels[:6]]
    # A twin inside train: whichever half lands in validation, its copy must leave train.
    train_images.append(train_images[9].copy())
    labels = labels + [labels[9]]
    dataset = DatasetDict(train=_dataset(train_images, labels), test=_dataset(test_images, [0, 1, 0, 1, 2, 3, 0, 1]))
    splits = make_splits(dataset, validation_fraction=0.25, seed=3)
    assert len(splits.official_test) == 8
    assert len(splits.clean_test) == 6
    assert sum(splits.audit["test_with_near_train_twin"].values()) == 2
    validation_prints = fingerprint_dataset(splits.validation)
    train_prints = fingerprint_dataset(splits.train)
    assert not find_twins(validation_prints, train_prints).near.any()
    assert len(splits.train) + len(splits.validation) + splits.audit["train_removed_as_twins_of_validation"] == 41
