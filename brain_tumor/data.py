"""Loading brain-MRI datasets and cutting honest splits.

Every source gives the same result, a `DatasetDict` with `train` and `test` splits, an `image`
column and a `label` column whose `ClassLabel` names are `labels.CLASS_NAMES` (or
`labels.DATASET_LABELS` when the collection has coarse "tumour, type unknown" labels):
- a local folder in the Kaggle layout (`Training/<class>/*.jpg`, `Testing/<class>/*.jpg`) or with
  `train/` and `test/` sub-folders (BRISC);
- a local folder of class folders with no published split (Br35H `yes/`, `no/`): a seeded,
  stratified test split is cut here (`flat_test_fraction`, `seed`);
- a folder written by `DatasetDict.save_to_disk`;
- a Hugging Face Hub dataset id.

The official test split is always kept apart. `imagefolder` merges Kaggle's `Testing` into its
single `train` split, so local folders are listed file by file instead.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from datasets import ClassLabel, Dataset, DatasetDict, Image, load_dataset, load_from_disk

from .labels import ANY_TUMOR_ID, CLASS_NAMES, DATASET_LABELS, canonical_label

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff"}
# Folder and split names public datasets use for the two official splits.
TRAIN_SPLIT_NAMES = ("train", "training")
TEST_SPLIT_NAMES = ("test", "testing")
IMAGE_COLUMN_NAMES = ("image", "img", "images", "pixel_values")
LABEL_COLUMN_NAMES = ("label", "labels", "class", "target")


class DatasetError(ValueError):
    """A dataset that cannot be used, with a message saying what was wrong."""


def canonical_features(coarse: bool = False):
    return ClassLabel(names=list(DATASET_LABELS if coarse else CLASS_NAMES))


def load_brain_mri(dataset_name: str, dataset_config_name: str | None = None, cache_dir: str | None = None,
                   seed: int = 42, flat_test_fraction: float = 0.2) -> DatasetDict:
    """Load `train` and `test` splits (test = the official test split) with canonical labels."""
    if not dataset_name:
        raise DatasetError("No dataset given: pass --dataset_name (a Hub dataset id or a local folder).")
    path = Path(dataset_name).expanduser()
    if path.is_dir():
        if (path / "dataset_dict.json").exists():
            raw = load_from_disk(str(path))
        elif _find_child(path, TRAIN_SPLIT_NAMES) is None and _find_child(path, TEST_SPLIT_NAMES) is None \
                and _any_class_folder(path):
            return _split_flat_folder(_list_class_folders(path), flat_test_fraction, seed)
        else:
            return _load_kaggle_folder(path)
    elif path.exists():
        raise DatasetError(f"--dataset_name {dataset_name!r} is a file; expected a folder or a Hub dataset id.")
    else:
        raw = _load_from_hub(dataset_name, dataset_config_name, cache_dir)
    return _normalise_dataset_dict(raw, source=dataset_name)


def _load_from_hub(dataset_id: str, config_name: str | None, cache_dir: str | None) -> DatasetDict:
    try:
        return load_dataset(dataset_id, config_name, cache_dir=cache_dir)
    except Exception as error:  # datasets raises several types for "not found" and "offline"
        raise DatasetError(
            f"Could not load dataset {dataset_id!r}: it is not a local folder, and loading it from the "
            f"Hugging Face Hub failed ({type(error).__name__}: {error}). Offline, pass a local folder in "
            f"the Kaggle layout (Training/<class>/, Testing/<class>/) or one written by save_to_disk."
        ) from error


def _find_child(folder: Path, names: tuple[str, ...]) -> Path | None:
    for child in sorted(folder.iterdir()):
        if child.is_dir() and child.name.lower() in names:
            return child
    return None


def _class_dirs(folder: Path) -> list[Path]:
    return sorted(d for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))


def _any_class_folder(folder: Path) -> bool:
    """True when a sub-folder is named after a class: a flat collection such as Br35H's yes/ no/
    (any other sub-folder is then an unknown class, and the error names it)."""
    def is_class(name: str) -> bool:
        try:
            return bool(canonical_label(name, allow_coarse=True))
        except ValueError:
            return False

    return any(is_class(d.name) for d in _class_dirs(folder))


def _list_class_folders(split_dir: Path) -> Dataset:
    paths, labels = [], []
    class_dirs = _class_dirs(split_dir)
    if not class_dirs:
        raise DatasetError(f"{split_dir} has no class folders; expected {', '.join(CLASS_NAMES)}.")
    for class_dir in class_dirs:
        try:
            label = canonical_label(class_dir.name, allow_coarse=True)
        except ValueError as error:
            raise DatasetError(f"In {split_dir}: {error}") from None
        files = image_files(class_dir)
        if not files:
            raise DatasetError(f"Class folder {class_dir} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))}).")
        paths += [str(p) for p in files]
        labels += [DATASET_LABELS.index(label)] * len(files)
    dataset = Dataset.from_dict({"image": paths, "label": labels, "file_name": [Path(p).name for p in paths]})
    return dataset.cast_column("image", Image()).cast_column("label", canonical_features(ANY_TUMOR_ID in labels))


def _split_flat_folder(dataset: Dataset, test_fraction: float, seed: int) -> DatasetDict:
    """A collection without a published split: a seeded, class-stratified test split of our own."""
    if len(set(dataset["label"])) > 1:
        parts = dataset.train_test_split(test_size=test_fraction, stratify_by_column="label", seed=seed)
    else:
        parts = dataset.train_test_split(test_size=test_fraction, seed=seed)
    return DatasetDict(train=parts["train"], test=parts["test"])


def _load_kaggle_folder(folder: Path) -> DatasetDict:
    train_dir = _find_child(folder, TRAIN_SPLIT_NAMES)
    test_dir = _find_child(folder, TEST_SPLIT_NAMES)
    if train_dir is None or test_dir is None:
        raise DatasetError(
            f"{folder} is not in the Kaggle layout: expected sub-folders 'Training/<class>/' and "
            f"'Testing/<class>/' (or 'train/' and 'test/', or only class folders such as 'yes/' and 'no/'); "
            f"found {sorted(p.name for p in folder.iterdir())}."
        )
    train, test = _list_class_folders(train_dir), _list_class_folders(test_dir)
    if train.features["label"] != test.features["label"]:  # one split has coarse labels: widen both
        train, test = (split.cast_column("label", canonical_features(coarse=True)) for split in (train, test))
    return DatasetDict(train=train, test=test)


def _pick_column(dataset: Dataset, candidates: tuple[str, ...], what: str) -> str:
    for name in dataset.column_names:
        if name.lower() in candidates:
            return name
    raise DatasetError(f"No {what} column found; columns are {dataset.column_names}, expected one of {candidates}.")


def _normalise_split(dataset: Dataset) -> Dataset:
    image_column = _pick_column(dataset, IMAGE_COLUMN_NAMES, "image")
    label_column = _pick_column(dataset, LABEL_COLUMN_NAMES, "label")
    feature = dataset.features[label_column]
    source_names = feature.names if isinstance(feature, ClassLabel) else sorted(set(dataset[label_column]))
    try:
        mapping = {name: DATASET_LABELS.index(canonical_label(name, allow_coarse=True)) for name in source_names}
    except ValueError as error:
        raise DatasetError(str(error)) from None
    if isinstance(feature, ClassLabel):
        mapping = {feature.str2int(name): target for name, target in mapping.items()}
    labels = [mapping[value] for value in dataset[label_column]]
    dataset = dataset.select_columns([image_column] + [c for c in ("file_name",) if c in dataset.column_names])
    if image_column != "image":
        dataset = dataset.rename_column(image_column, "image")
    dataset = dataset.add_column("label", labels)
    return dataset.cast_column("label", canonical_features(coarse=ANY_TUMOR_ID in labels))


def _normalise_dataset_dict(raw, source: str) -> DatasetDict:
    if isinstance(raw, Dataset):
        raise DatasetError(f"{source!r} has a single split; it needs a train split and an official test split.")
    splits = {name.lower(): name for name in raw}
    train_name = next((splits[n] for n in TRAIN_SPLIT_NAMES if n in splits), None)
    test_name = next((splits[n] for n in TEST_SPLIT_NAMES if n in splits), None)
    if train_name is None or test_name is None:
        raise DatasetError(f"{source!r} has splits {list(raw)}; expected a 'train' and a 'test' split.")
    return DatasetDict(train=_normalise_split(raw[train_name]), test=_normalise_split(raw[test_name]))


def subsample(dataset: Dataset, max_samples: int | None, seed: int) -> Dataset:
    """A seeded, class-stratified subset (for quick runs with --max_*_samples)."""
    if max_samples is None or max_samples >= len(dataset):
        return dataset
    if max_samples < len(CLASS_NAMES):
        return dataset.shuffle(seed=seed).select(range(max_samples))
    return dataset.train_test_split(train_size=max_samples, stratify_by_column="label", seed=seed)["train"]


def stratified_split(dataset: Dataset, validation_fraction: float, seed: int) -> tuple[Dataset, Dataset]:
    """Carve a seeded, class-stratified validation split from train."""
    parts = dataset.train_test_split(test_size=validation_fraction, stratify_by_column="label", seed=seed)
    return parts["train"], parts["test"]


def image_files(folder: str | Path) -> list[Path]:
    """Every image file under `folder`, at any depth, sorted."""
    return sorted(path for path in Path(folder).rglob("*") if path.suffix.lower() in IMAGE_SUFFIXES)


def class_counts(dataset: Dataset) -> dict[str, int]:
    """Images per label name; the coarse label appears only where the dataset can carry it."""
    names = dataset.features["label"].names
    counts = np.bincount(np.asarray(dataset["label"], dtype=int), minlength=len(names))
    return {name: int(count) for name, count in zip(names, counts)}


def attach_masks(dataset: Dataset, images_root: str | Path, masks_root: str | Path) -> tuple[Dataset, int]:
    """Add a `mask` column: the tumour mask whose path mirrors the image's under `masks_root`
    (`Training/glioma/Tr-gl_0010.jpg` -> `<masks_root>/Training/glioma/Tr-gl_0010.png`), or None.

    Returns the dataset and how many rows got a mask. Only give it training splits: test masks
    are for measuring heat maps, never for training.
    """
    images_root, masks_root = Path(images_root).resolve(), Path(masks_root).expanduser().resolve()
    if not masks_root.is_dir():
        raise DatasetError(f"Mask folder {str(masks_root)!r} does not exist.")
    paths = [row["path"] for row in dataset.cast_column("image", Image(decode=False))["image"]]
    masks = []
    for path in paths:
        try:
            candidate = masks_root / Path(path).resolve().relative_to(images_root).with_suffix(".png")
        except (TypeError, ValueError):  # not a file under images_root (e.g. a Hub dataset)
            candidate = None
        masks.append(str(candidate) if candidate is not None and candidate.is_file() else None)
    found = sum(mask is not None for mask in masks)
    return dataset.add_column("mask", masks).cast_column("mask", Image()), found
