import pytest

from brain_tumor.labels import CLASS_NAMES, canonical_label, id2label, label2id


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
