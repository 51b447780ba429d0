import pytest

from brain_tumor.labels import (
    ANY_TUMOR, CLASS_NAMES, DATASET_LABELS, TUMOR_CLASSES, allowed_classes, canonical_label, id2label, label2id,
)


@pytest.mark.parametrize("spelling, expected", [
    ("glioma", "glioma"), ("glioma_tumor", "glioma"), ("Glioma Tumour", "glioma"),
    ("meningioma_tumor", "meningioma"), ("no_tumor", "notumor"), ("No Tumor", "notumor"),
    ("notumor", "notumor"), ("no", "notumor"), ("pituitary_tumor", "pituitary"), ("Pituitary", "pituitary"),
])
def test_public_spellings_map_to_canonical_names(spelling, expected):
    assert canonical_label(spelling) == expected


def test_unknown_class_is_a_clear_error():
    with pytest.raises(ValueError, match="Unknown class name 'astrocytoma'.*glioma, meningioma, notumor, pituitary"):
        canonical_label("astrocytoma")


def test_id_maps_are_inverse_and_ordered():
    assert [id2label()[i] for i in range(4)] == list(CLASS_NAMES)
    assert all(label2id()[name] == i for i, name in id2label().items())


@pytest.mark.parametrize("spelling", ["yes", "Yes", "tumor", "tumour", "Brain Tumor"])
def test_coarse_tumour_folders_map_to_the_coarse_label_only_when_allowed(spelling):
    assert canonical_label(spelling, allow_coarse=True) == ANY_TUMOR
    with pytest.raises(ValueError, match=f"Unknown class name {spelling!r}"):
        canonical_label(spelling)  # a model's own labels never include it


def test_fine_labels_keep_their_ids_and_allow_only_themselves():
    assert DATASET_LABELS[:len(CLASS_NAMES)] == CLASS_NAMES
    for i in range(len(CLASS_NAMES)):
        assert allowed_classes(i) == (i,)


def test_coarse_label_allows_exactly_the_three_tumour_classes():
    allowed = allowed_classes(DATASET_LABELS.index(ANY_TUMOR))
    assert sorted(CLASS_NAMES[i] for i in allowed) == sorted(TUMOR_CLASSES) == ["glioma", "meningioma", "pituitary"]
    assert CLASS_NAMES.index("notumor") not in allowed


def test_unknown_class_error_mentions_the_coarse_label_when_allowed():
    with pytest.raises(ValueError, match="'tumor' / 'yes' for a tumour of unknown type"):
        canonical_label("maybe", allow_coarse=True)
