import numpy as np
from helpers_datasets import image_dataset, reencode

from brain_tumor.duplicates import fingerprint_dataset, find_twins
from brain_tumor.splits import make_splits
from datasets import DatasetDict
from synthetic import make_slice


def test_splits_drop_test_twins_from_clean_test_and_validation_twins_from_train():
    rng = np.random.default_rng(1)
    labels = [0, 1, 2, 3] * 10
    names = ("glioma", "meningioma", "notumor", "pituitary")
    train_images = [make_slice(names[label], rng, 64) for label in labels]
    test_images = [train_images[0].copy(), reencode(train_images[5], 70)] + \
                  [make_slice(names[label], rng, 64) for label in labels[:6]]
    # A twin inside train: whichever half lands in validation, its copy must leave train.
    train_images.append(train_images[9].copy())
    labels = labels + [labels[9]]
    dataset = DatasetDict(train=image_dataset(train_images, labels),
                          test=image_dataset(test_images, [0, 1, 0, 1, 2, 3, 0, 1]))
    splits = make_splits(dataset, validation_fraction=0.25, seed=3)
    assert len(splits.official_test) == 8
    assert len(splits.clean_test) == 6
    assert sum(splits.audit["test_with_near_train_twin"].values()) == 2
    validation_prints = fingerprint_dataset(splits.validation)
    train_prints = fingerprint_dataset(splits.train)
    assert not find_twins(validation_prints, train_prints).near.any()
    assert len(splits.train) + len(splits.validation) + splits.audit["train_removed_as_twins_of_validation"] == 41
