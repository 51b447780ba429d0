import pytest
from datasets import ClassLabel, DatasetDict

from brain_tumor.data import DatasetError, class_counts, load_brain_mri, stratified_split, subsample
from brain_tumor.labels import CLASS_NAMES
from synthetic import make_kaggle_folder


def test_kaggle_folder_keeps_official_test_apart(kaggle_folder):
    dataset = load_brain_mri(str(kaggle_folder))
    assert set(dataset) == {"train", "test"}
    assert class_counts(dataset["train"]) == {name: 12 for name in CLASS_NAMES}
    assert class_counts(dataset["test"]) == {name: 4 for name in CLASS_NAMES}
    assert all(name.startswith("Te-") for name in dataset["test"]["file_name"])
    assert dataset["train"].features["label"].names == list(CLASS_NAMES)


def test_synonym_folders_map_to_canonical_labels(tmp_path):
    folders = {"glioma": "glioma_tumor", "notumor": "no_tumor", "pituitary": "Pituitary Tumor"}
    dataset = load_brain_mri(str(make_kaggle_folder(tmp_path, 2, 1, class_folders=folders)))
    assert class_counts(dataset["train"]) == {name: 2 for name in CLASS_NAMES}


def test_save_to_disk_folder_with_other_label_names_loads(kaggle_folder, tmp_path):
    dataset = load_brain_mri(str(kaggle_folder))
    # A Hub-style copy whose ClassLabel spells the classes differently and in another order.
    spellings = ["glioma_tumor", "meningioma_tumor", "no_tumor", "pituitary_tumor"]
    hub_labels = ClassLabel(names=list(reversed(spellings)))
    renamed = DatasetDict({
        split: ds.map(lambda row: {"class": spellings[row["label"]]}, remove_columns=["label"])
                 .cast_column("class", hub_labels)
        for split, ds in dataset.items()
    })
    renamed.save_to_disk(str(tmp_path / "saved"))
    reloaded = load_brain_mri(str(tmp_path / "saved"))
    assert reloaded["train"]["label"] == dataset["train"]["label"]


def test_unknown_class_folder_is_a_clear_error(tmp_path):
    make_kaggle_folder(tmp_path, 1, 1)
    (tmp_path / "Training" / "astrocytoma").mkdir()
    with pytest.raises(DatasetError, match="Unknown class name 'astrocytoma'"):
        load_brain_mri(str(tmp_path))


def test_empty_class_folder_is_a_clear_error(tmp_path):
    make_kaggle_folder(tmp_path, 1, 1)
    for image in (tmp_path / "Testing" / "glioma").iterdir():
        image.unlink()
    with pytest.raises(DatasetError, match="glioma holds no images"):
        load_brain_mri(str(tmp_path))


def test_folder_without_kaggle_layout_is_a_clear_error(tmp_path):
    (tmp_path / "images").mkdir()
    with pytest.raises(DatasetError, match="not in the Kaggle layout.*Training"):
        load_brain_mri(str(tmp_path))


def test_hub_id_while_offline_is_a_clear_error():
    with pytest.raises(DatasetError, match="Could not load dataset 'someone/brain-mri'.*local folder"):
        load_brain_mri("someone/brain-mri")


def test_missing_dataset_name_is_a_clear_error():
    with pytest.raises(DatasetError, match="No dataset given"):
        load_brain_mri("")


def test_validation_split_is_stratified_and_seeded(kaggle_folder):
    train = load_brain_mri(str(kaggle_folder))["train"]
    kept, validation = stratified_split(train, 0.25, seed=1)
    assert class_counts(validation) == {name: 3 for name in CLASS_NAMES}
    assert stratified_split(train, 0.25, seed=1)[1]["file_name"] == validation["file_name"]
    assert not set(kept["file_name"]) & set(validation["file_name"])
    assert class_counts(subsample(train, 8, seed=0)) == {name: 2 for name in CLASS_NAMES}
