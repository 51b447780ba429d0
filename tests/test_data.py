import numpy as np
import pytest
from datasets import ClassLabel, DatasetDict
from helpers_datasets import image_dataset
from PIL import Image

from brain_tumor.data import DatasetError, attach_masks, class_counts, load_brain_mri, stratified_split, subsample
from brain_tumor.labels import ANY_TUMOR, CLASS_NAMES, DATASET_LABELS
from synthetic import make_brisc_folder, make_flat_folder, make_kaggle_folder, make_slice


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


# --- several layouts: flat class folders (Br35H), train/ test/ (BRISC), masks -------------------------------

TUMOR_ID = DATASET_LABELS.index(ANY_TUMOR)


def test_flat_folder_gets_a_seeded_stratified_test_split_with_the_coarse_label(tmp_path):
    folder = make_flat_folder(tmp_path / "br35h", {"yes": 15, "no": 10})
    dataset = load_brain_mri(str(folder), seed=7, flat_test_fraction=0.2)
    assert dataset["train"].features["label"].names == list(DATASET_LABELS)
    assert class_counts(dataset["test"]) == {"glioma": 0, "meningioma": 0, "notumor": 2, "pituitary": 0, "tumor": 3}
    assert class_counts(dataset["train"])["tumor"] == 12 and class_counts(dataset["train"])["notumor"] == 8
    assert not set(dataset["train"]["file_name"]) & set(dataset["test"]["file_name"])
    for split in dataset.values():  # 'yes' files carry the coarse label, 'no' files notumor
        for name, label in zip(split["file_name"], split["label"]):
            assert label == (TUMOR_ID if name.startswith("y") else CLASS_NAMES.index("notumor"))
    again = load_brain_mri(str(folder), seed=7, flat_test_fraction=0.2)
    assert again["test"]["file_name"] == dataset["test"]["file_name"]
    other_seed = load_brain_mri(str(folder), seed=8, flat_test_fraction=0.2)
    assert other_seed["test"]["file_name"] != dataset["test"]["file_name"]
    assert len(load_brain_mri(str(folder), seed=7, flat_test_fraction=0.4)["test"]) == 10


def test_flat_folder_of_fine_classes_keeps_four_label_names(tmp_path):
    dataset = load_brain_mri(str(make_flat_folder(tmp_path, {"no_tumor": 5, "glioma": 5})))
    assert dataset["train"].features["label"].names == list(CLASS_NAMES)
    assert class_counts(dataset["test"])["glioma"] == class_counts(dataset["test"])["notumor"] == 1


def test_flat_folder_with_an_unknown_class_folder_is_a_clear_error(tmp_path):
    make_flat_folder(tmp_path, {"yes": 2, "no": 2})
    (tmp_path / "maybe").mkdir()
    make_slice("glioma", np.random.default_rng(0)).save(tmp_path / "maybe" / "m0.jpg")
    with pytest.raises(DatasetError, match="Unknown class name 'maybe'"):
        load_brain_mri(str(tmp_path))


def test_train_test_subfolders_load_with_their_own_split_and_file_names(tmp_path):
    dataset = load_brain_mri(str(make_brisc_folder(tmp_path, per_plane_train=3, per_plane_test=1)))
    assert dataset["train"].features["label"].names == list(CLASS_NAMES)
    assert class_counts(dataset["train"])["notumor"] == 9 and class_counts(dataset["test"])["notumor"] == 3
    assert all(name.startswith("brisc2025_test_") for name in dataset["test"]["file_name"])
    assert {name.split("_")[4] for name in dataset["train"]["file_name"]} == {"ax", "co", "sa"}


def _save_mask(path, size=64):
    path.parent.mkdir(parents=True, exist_ok=True)
    mask = np.zeros((size, size), np.uint8)
    mask[10:30, 10:30] = 255
    Image.fromarray(mask).save(path)


def test_attach_masks_finds_mirrored_masks_and_gives_none_elsewhere(kaggle_folder, tmp_path):
    train = load_brain_mri(str(kaggle_folder))["train"]
    with_mask = [n for n in train["file_name"] if n.startswith("Tr-gl")][:3]
    for name in with_mask:
        _save_mask(tmp_path / "masks" / "Training" / "glioma" / name.replace(".jpg", ".png"))
    _save_mask(tmp_path / "masks" / "Testing" / "glioma" / "Te-gl_0000.png")  # mirrors no training file
    masked, found = attach_masks(train, kaggle_folder, tmp_path / "masks")
    assert found == 3 and len(masked) == len(train)
    for name, mask in zip(masked["file_name"], masked["mask"]):
        if name in with_mask:
            assert np.asarray(mask).max() == 255 and np.asarray(mask).shape == (64, 64)
        else:
            assert mask is None
    assert masked["image"][0].size == train["image"][0].size  # images untouched


def test_attach_masks_on_images_without_paths_or_a_missing_folder(tmp_path):
    in_memory = image_dataset([make_slice("glioma", np.random.default_rng(0))], [0])
    masked, found = attach_masks(in_memory, tmp_path, tmp_path)
    assert found == 0 and masked["mask"] == [None]
    with pytest.raises(DatasetError, match="Mask folder .*nowhere.* does not exist"):
        attach_masks(in_memory, tmp_path, tmp_path / "nowhere")
