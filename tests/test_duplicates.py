import numpy as np
from helpers_datasets import image_dataset, reencode
from PIL import ImageEnhance

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
