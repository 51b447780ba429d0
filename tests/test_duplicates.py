import numpy as np
from helpers_datasets import image_dataset, reencode
from PIL import ImageEnhance, ImageOps

from brain_tumor.duplicates import fingerprint_dataset, find_twins
from synthetic import make_slice


def test_planted_exact_and_near_twins_are_found_and_distinct_images_left_alone():
    rng = np.random.default_rng(0)
    reference = [make_slice(label, rng, 96) for label in ("glioma", "meningioma", "pituitary", "notumor") * 5]
    exact_copy = reference[0].copy()
    near_copy = ImageEnhance.Brightness(reencode(reference[1], 60)).enhance(1.1)  # re-encoded, brighter
    resized_copy = reference[2].resize((120, 120)).resize((96, 96))  # resampled
    distinct = [make_slice(label, np.random.default_rng(99), 96) for label in ("glioma", "notumor")]
    report = find_twins(fingerprint_dataset(image_dataset([exact_copy, near_copy, resized_copy, *distinct])),
                        fingerprint_dataset(image_dataset(reference)))
    assert report.exact.tolist() == [True, False, False, False, False]
    assert report.near.tolist() == [True, True, True, False, False]
    assert report.reference_twins[:3].all() and not report.reference_twins[3:].any()
    assert (report.best_similarity[3:] < 0.99).all()


def test_a_mirror_image_copy_is_a_near_twin_unless_mirrors_are_switched_off():
    rng = np.random.default_rng(1)
    reference = [make_slice(label, rng, 96) for label in ("glioma", "meningioma", "pituitary", "notumor") * 3]
    flipped = ImageOps.mirror(reencode(reference[0], 80))  # flipped and re-saved, as the collections hold them
    distinct = make_slice("glioma", np.random.default_rng(99), 96)
    query = fingerprint_dataset(image_dataset([flipped, distinct]))
    prints = fingerprint_dataset(image_dataset(reference))
    with_mirror = find_twins(query, prints)
    assert with_mirror.near.tolist() == [True, False] and not with_mirror.exact.any()
    assert with_mirror.reference_twins[0] and with_mirror.reference_twins.sum() == 1
    # The synthetic slice is not left-right symmetric: without the mirror, the flipped copy is no twin.
    assert find_twins(query, prints, mirror=False).near.tolist() == [False, False]
