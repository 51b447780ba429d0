"""The four splits training and evaluation use, cut so that no number is inflated by twins.

    official train ─► stratified ─► train (minus twins of validation images)
                                └─► validation            (early stopping, calibration, thresholds)
    official test ─────────────────► official_test        (what the dataset's authors publish)
                  └─ minus twins of any official-train image ─► clean_test (the honest figure)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from datasets import Dataset, DatasetDict

from .data import class_counts, stratified_split
from .duplicates import DEFAULT_NEAR_THRESHOLD, METHOD, Fingerprints, fingerprint_dataset, find_twins
from .labels import CLASS_NAMES


@dataclass
class Splits:
    train: Dataset
    validation: Dataset
    official_test: Dataset
    clean_test: Dataset
    audit: dict = field(default_factory=dict)


def _take(fingerprints: Fingerprints, indices) -> Fingerprints:
    indices = np.asarray(indices, dtype=int)
    return Fingerprints([fingerprints.hashes[i] for i in indices], fingerprints.vectors[indices])


def _per_class(labels: np.ndarray, mask: np.ndarray) -> dict[str, int]:
    return {name: int(np.sum(mask & (labels == i))) for i, name in enumerate(CLASS_NAMES)}


def make_splits(dataset: DatasetDict, validation_fraction: float = 0.15, seed: int = 42,
                near_threshold: float = DEFAULT_NEAR_THRESHOLD) -> Splits:
    """Cut train / validation / official_test / clean_test from a `load_brain_mri` result."""
    official_train, official_test = dataset["train"], dataset["test"]
    train_fingerprints = fingerprint_dataset(official_train)

    # Split by row position so each image keeps its fingerprint.
    indexed = official_train.add_column("_row", list(range(len(official_train))))
    train, validation = stratified_split(indexed, validation_fraction, seed)
    train_rows, validation_rows = train["_row"], validation["_row"]
    train, validation = train.remove_columns("_row"), validation.remove_columns("_row")

    # Training images that twin a validation image would make validation look easier than it is.
    leak = find_twins(_take(train_fingerprints, validation_rows), _take(train_fingerprints, train_rows),
                      near_threshold).reference_twins
    train = train.select(np.flatnonzero(~leak))

    test_twins = find_twins(fingerprint_dataset(official_test), train_fingerprints, near_threshold)
    clean_test = official_test.select(np.flatnonzero(~test_twins.near))

    test_labels = np.asarray(official_test["label"])
    audit = {
        "method": METHOD,
        "near_threshold": near_threshold,
        "seed": seed,
        "validation_fraction": validation_fraction,
        "train_removed_as_twins_of_validation": int(leak.sum()),
        "test_with_exact_train_twin": _per_class(test_labels, test_twins.exact),
        "test_with_near_train_twin": _per_class(test_labels, test_twins.near),
        "split_sizes": {name: class_counts(split) for name, split in
                        (("train", train), ("validation", validation), ("official_test", official_test),
                         ("clean_test", clean_test))},
    }
    return Splits(train, validation, official_test, clean_test, audit)
