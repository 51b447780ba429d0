"""The splits training and evaluation use, cut so that no number is inflated by twins.

One or more collections (see `data.load_brain_mri`) are pooled; each keeps its name in a
`collection` column. Per collection:

    official train ─► stratified ─► train (minus twins, below)
                                └─► validation            (early stopping, calibration, thresholds)
    official test ─────────────────► official_test        (what the collection's authors publish)
                  └─ minus twins of any official-train image of any collection ─► clean_test

Twin rules across collections (near twins: cosine >= threshold of 32 x 32 thumbnails):
- a collection's image that twins an image of an earlier collection is dropped (the earlier copy
  stands; Br35H `no/`, for example, is the source of v1's `notumor`);
- a training image that twins any validation image, any test image of another collection, or any
  held-out image is removed from training (within one collection the published split stands, and
  its clean test is the honest figure);
- held-out collections are never trained on; their images that twin an image of a training
  collection are dropped from the held-out set, so it measures slices the model never saw. With
  `held_out_twins="training"` the whole held-out collection is kept instead, and every training and
  validation image that twins it is removed (holding all of Br35H out then removes v1's `notumor`,
  which is Br35H's `no/`).

Last, `excluded_files` (file names, any folder) leave training and validation, after the splits are cut
and their twins removed: for labels an audit doubts. The tests stay the benchmark's, slice for slice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from datasets import Dataset, DatasetDict, concatenate_datasets

from .data import canonical_features, class_counts, stratified_split
from .duplicates import DEFAULT_NEAR_THRESHOLD, METHOD, Fingerprints, fingerprint_dataset, find_twins
from .labels import ANY_TUMOR

SPLIT_NAMES = ("train", "validation", "official_test", "clean_test")
HELD_OUT_TWINS = ("held_out", "training")  # which side of a held-out / training twin pair loses its image


@dataclass
class Splits:
    train: Dataset
    validation: Dataset
    official_test: Dataset
    clean_test: Dataset
    audit: dict = field(default_factory=dict)
    held_out: Dataset | None = None
    primary: str = "dataset"  # the first collection: the benchmark whose official/clean test we headline


def _take(fingerprints: Fingerprints, indices) -> Fingerprints:
    indices = np.asarray(indices, dtype=int)
    return Fingerprints([fingerprints.hashes[i] for i in indices], fingerprints.vectors[indices])


def _join(parts: list[Fingerprints]) -> Fingerprints:
    parts = [p for p in parts if len(p.hashes)]
    if not parts:
        return Fingerprints([], np.zeros((0, 32 * 32), np.float32))
    return Fingerprints([h for p in parts for h in p.hashes], np.concatenate([p.vectors for p in parts]))


def _per_class(labels: np.ndarray, mask: np.ndarray, names) -> dict[str, int]:
    """Counts per label name (the coarse label too, where the collection has it)."""
    return {name: int(np.sum(mask & (labels == i))) for i, name in enumerate(names)}


def _split_train(train: Dataset, validation_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Row positions of train and validation, stratified by label when there are several labels."""
    indexed = train.add_column("_row", list(range(len(train))))
    if len(set(train["label"])) > 1:
        kept, validation = stratified_split(indexed, validation_fraction, seed)
    else:
        parts = indexed.train_test_split(test_size=validation_fraction, seed=seed)
        kept, validation = parts["train"], parts["test"]
    return np.asarray(kept["_row"], dtype=int), np.asarray(validation["_row"], dtype=int)


@dataclass
class _Collection:
    """One collection while the splits are cut: rows kept so far and their fingerprints."""

    name: str
    train: Dataset
    test: Dataset
    train_prints: Fingerprints
    test_prints: Fingerprints
    audit: dict = field(default_factory=dict)
    # Set once validation is carved out of train:
    official_train_prints: Fingerprints | None = None
    validation: Dataset | None = None
    validation_prints: Fingerprints | None = None
    clean_test: Dataset | None = None

    @classmethod
    def load(cls, name: str, data: DatasetDict) -> "_Collection":
        return cls(name, data["train"], data["test"], fingerprint_dataset(data["train"]),
                   fingerprint_dataset(data["test"]))

    def keep_rows(self, split: str, keep) -> int:
        """Keep only the rows `keep` of a split and of its fingerprints; returns how many went."""
        data = getattr(self, split)
        dropped = len(data) - len(keep)
        if dropped:  # select() adds an indices mapping that every later read goes through: only when rows go
            setattr(self, split, data.select(keep))
            setattr(self, f"{split}_prints", _take(getattr(self, f"{split}_prints"), keep))
        return dropped

    def drop_twins_of(self, reference: Fingerprints, threshold: float) -> int:
        """Drop every row that twins a reference image; returns how many went."""
        dropped = 0
        for split in ("train", "test"):
            twins = find_twins(getattr(self, f"{split}_prints"), reference, threshold)
            dropped += self.keep_rows(split, np.flatnonzero(~twins.near))
        return dropped

    def leave_out(self, file_names: set[str]) -> dict[str, int]:
        """Drop the rows of train and validation whose file name (in any folder) is listed; how many went."""
        left_out = {}
        for split in ("train", "validation"):
            data = getattr(self, split)
            names = data["file_name"] if "file_name" in data.column_names else [""] * len(data)
            left_out[split] = self.keep_rows(
                split, [index for index, name in enumerate(names) if Path(name).name not in file_names])
        return left_out


def _pool(parts: list[Dataset], coarse: bool, with_mask: bool) -> Dataset:
    """One dataset from per-collection parts, with the same columns and label names in each."""
    aligned = []
    for part in parts:
        part = part.cast_column("label", canonical_features(coarse))
        if "file_name" not in part.column_names:
            part = part.add_column("file_name", [""] * len(part))
        if with_mask and "mask" not in part.column_names:
            part = part.add_column("mask", [None] * len(part)).cast_column("mask", _mask_feature(parts))
        columns = ["image", "label", "file_name", "collection"] + (["mask"] if with_mask else [])
        aligned.append(part.select_columns(columns))
    return concatenate_datasets(aligned)


def _mask_feature(parts: list[Dataset]):
    return next(p.features["mask"] for p in parts if "mask" in p.column_names)


def make_splits(dataset: DatasetDict | dict[str, DatasetDict], validation_fraction: float = 0.15, seed: int = 42,
                near_threshold: float = DEFAULT_NEAR_THRESHOLD,
                held_out: dict[str, DatasetDict] | None = None, held_out_twins: str = "held_out",
                excluded_files: list[str] | None = None) -> Splits:
    """Cut train / validation / official_test / clean_test (and held_out) from `load_brain_mri` results.

    `dataset` is one DatasetDict, or {collection name: DatasetDict} in priority order. `held_out_twins`
    says where a twin of a held-out image and a training collection's image is removed, and
    `excluded_files` which files leave training and validation (see above).
    """
    if held_out_twins not in HELD_OUT_TWINS:
        raise ValueError(f"held_out_twins must be one of {HELD_OUT_TWINS}, got {held_out_twins!r}.")
    named = {"dataset": dataset} if isinstance(dataset, DatasetDict) else dict(dataset)
    collections = [_Collection.load(name, data) for name, data in named.items()]

    # Twins across collections: the earlier collection's copy stands.
    earlier: list[Fingerprints] = []
    for collection in collections:
        if earlier:
            collection.audit["dropped_as_twins_of_earlier_collections"] = collection.drop_twins_of(
                _join(earlier), near_threshold)
        earlier += [collection.train_prints, collection.test_prints]
    all_training_collections = _join(earlier)

    # Held-out collections: never trained on, and only slices no training collection holds.
    held_out_parts, held_out_audit, held_out_kept_prints = [], {}, []
    for name, data in (held_out or {}).items():
        pooled = concatenate_datasets([data["train"], data["test"]]) if "test" in data else data["train"]
        prints = fingerprint_dataset(pooled)
        if held_out_twins == "training":
            keep = np.arange(len(pooled))
        else:
            keep = np.flatnonzero(~find_twins(prints, all_training_collections, near_threshold).near)
        held_out_parts.append(pooled.select(keep).add_column("collection", [name] * len(keep)))
        held_out_kept_prints.append(_take(prints, keep))
        held_out_audit[name] = {"images": len(pooled), "dropped_as_twins_of_training_collections":
                                len(pooled) - len(keep), "kept": len(keep)}
    held_out_prints = _join(held_out_kept_prints)

    # Validation per collection, then the training images that would leak into any evaluation.
    for collection in collections:
        train_rows, validation_rows = _split_train(collection.train, validation_fraction, seed)
        collection.official_train_prints = collection.train_prints
        collection.validation = collection.train.select(validation_rows)
        collection.validation_prints = _take(collection.train_prints, validation_rows)
        collection.keep_rows("train", train_rows)
        if held_out_twins == "training":  # early stopping and calibration must not see the held-out images either
            twins = find_twins(held_out_prints, collection.validation_prints, near_threshold).reference_twins
            collection.audit["validation_removed_as_twins_of_held_out"] = collection.keep_rows(
                "validation", np.flatnonzero(~twins))
    all_validation = _join([c.validation_prints for c in collections])
    all_official_train = _join([c.official_train_prints for c in collections])
    for collection in collections:
        other_tests = _join([c.test_prints for c in collections if c is not collection])
        removed = {}
        for reason, reference in (("validation", all_validation), ("other_collections_test", other_tests),
                                  ("held_out", held_out_prints)):
            twins = find_twins(reference, collection.train_prints, near_threshold).reference_twins
            removed[reason] = collection.keep_rows("train", np.flatnonzero(~twins))
        collection.audit["train_removed_as_twins_of"] = removed
        test_twins = find_twins(collection.test_prints, all_official_train, near_threshold)
        collection.clean_test = collection.test.select(np.flatnonzero(~test_twins.near))
        test_labels, names = np.asarray(collection.test["label"]), collection.test.features["label"].names
        collection.audit["test_with_exact_train_twin"] = _per_class(test_labels, test_twins.exact, names)
        collection.audit["test_with_near_train_twin"] = _per_class(test_labels, test_twins.near, names)
    excluded = set(excluded_files or ())
    left_out = [collection.leave_out(excluded) for collection in collections] if excluded else []

    # Pool the collections, each row keeping its collection's name.
    coarse = any(ANY_TUMOR in part.features["label"].names for part in [c.train for c in collections] + held_out_parts)
    with_mask = any("mask" in c.train.column_names for c in collections)
    pooled = {}
    for split, attribute in zip(SPLIT_NAMES, ("train", "validation", "test", "clean_test")):
        parts = [getattr(c, attribute).add_column("collection", [c.name] * len(getattr(c, attribute)))
                 for c in collections]
        if split in ("official_test", "clean_test"):
            parts = [p.remove_columns("mask") if "mask" in p.column_names else p for p in parts]
        pooled[split] = _pool(parts, coarse, with_mask and split in ("train", "validation"))
    held = _pool(held_out_parts, coarse, False) if held_out_parts else None

    audit = _audit(collections, pooled, held_out_audit, validation_fraction, seed, near_threshold)
    audit["held_out_twins"] = held_out_twins
    if excluded:
        audit["excluded_files"] = {"listed": len(excluded),
                                   "train": sum(counts["train"] for counts in left_out),
                                   "validation": sum(counts["validation"] for counts in left_out)}
    return Splits(**pooled, audit=audit, held_out=held, primary=collections[0].name)


def _audit(collections, pooled, held_out_audit, validation_fraction, seed, near_threshold) -> dict:
    def total(key):
        names = dict.fromkeys(name for c in collections for name in c.audit[key])
        return {name: sum(c.audit[key].get(name, 0) for c in collections) for name in names}

    per_collection = {}
    for c in collections:
        sizes = {split: class_counts(data) for split, data in
                 (("train", c.train), ("validation", c.validation), ("official_test", c.test),
                  ("clean_test", c.clean_test))}
        per_collection[c.name] = {**c.audit, "split_sizes": sizes}
    return {
        "method": METHOD,
        "near_threshold": near_threshold,
        "seed": seed,
        "validation_fraction": validation_fraction,
        "train_removed_as_twins_of_validation": sum(c.audit["train_removed_as_twins_of"]["validation"]
                                                    for c in collections),
        "test_with_exact_train_twin": total("test_with_exact_train_twin"),
        "test_with_near_train_twin": total("test_with_near_train_twin"),
        "split_sizes": {name: class_counts(data) for name, data in pooled.items()},
        "collections": per_collection,
        "held_out": held_out_audit,
    }

