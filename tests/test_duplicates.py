import numpy as np
from helpers_datasets import image_dataset, reencode
from PIL import ImageEnhance, ImageOps

from brain_tumor.duplicates import fingerprint_dataset, find_twins, twin_groups
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


def test_twin_groups_join_copies_by_chains_of_twins_and_leave_distinct_images_alone():
    rng = np.random.default_rng(2)
    a, b, c = (make_slice(label, rng, 96) for label in ("glioma", "meningioma", "pituitary"))
    # a: stored twice exactly, once re-saved brighter, once mirrored; b: once; c: once, then a resampled copy.
    images = [a, b, a.copy(), ImageEnhance.Brightness(reencode(a, 70)).enhance(1.1), c,
              ImageOps.mirror(reencode(a, 80)), c.resize((120, 120)).resize((96, 96))]
    groups = twin_groups(fingerprint_dataset(image_dataset(images)))
    assert len(set(groups)) == 3
    assert len({groups[i] for i in (0, 2, 3, 5)}) == 1 and groups[4] == groups[6]
    assert len({groups[0], groups[1], groups[4]}) == 3
    assert twin_groups(fingerprint_dataset(image_dataset([]))).tolist() == []
