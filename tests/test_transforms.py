import random

import albumentations as A
import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from brain_tumor.augment import (
    AUGMENTATIONS, CONTRAST, DEFAULT_AUGMENTATIONS, FRAMING, build_pipeline, check_augmentations,
    describe_augmentation, reseed,
)
from brain_tumor.augment_ops import RandomIntensityRemap, burn_in_text
from brain_tumor.modeling import build_from_config
from brain_tumor.transforms import (
    TrainTransform, collate, make_eval_transform, make_train_transform, processor_size,
)
from synthetic import make_slice


@pytest.fixture(scope="module")
def processor():
    return build_from_config("resnet-mini", 48)[1]


def bright_square(width=120, height=100, box=(30, 25, 70, 60)):
    """A gray slice-sized image, black but for a bright off-centre square, and the square's mask."""
    image = np.zeros((height, width), dtype=np.uint8)
    mask = np.zeros((height, width), dtype=np.uint8)
    left, top, right, bottom = box
    image[top:bottom, left:right] = 220
    mask[top:bottom, left:right] = 255
    return Image.fromarray(image, "L"), Image.fromarray(mask, "L")


def test_train_transform_gives_normalised_tensors_of_the_processor_size_for_any_input():
    _, processor = build_from_config("resnet-mini", 48)
    transform = TrainTransform(processor, seed=0)
    rng = np.random.default_rng(0)
    inputs = [make_slice("glioma", rng, 64), make_slice("notumor", rng, 64).convert("RGB").resize((90, 50))]
    outputs = [transform(image) for image in inputs]
    assert processor_size(processor) == (48, 48)
    for tensor in outputs:
        assert tensor.shape == (3, 48, 48) and tensor.dtype == torch.float32 and torch.isfinite(tensor).all()
        assert -1.01 <= tensor.min() and tensor.max() <= 1.01  # mean 0.5, std 0.5 maps [0, 1] to [-1, 1]


def test_train_transform_is_random_but_seeded():
    _, processor = build_from_config("resnet-mini", 48)
    image = make_slice("pituitary", np.random.default_rng(0), 64)
    first, second = TrainTransform(processor, seed=5), TrainTransform(processor, seed=5)
    a, b = [first(image) for _ in range(3)], [second(image) for _ in range(3)]
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not torch.equal(a[0], a[1])


def test_eval_transform_matches_the_image_processor_and_collates():
    _, processor = build_from_config("resnet-mini", 40)
    images = [make_slice("glioma", np.random.default_rng(i), 64) for i in range(2)]
    examples = make_eval_transform(processor)({"image": images, "label": [0, 2]})
    batch = collate([{"pixel_values": p, "labels": l} for p, l in zip(examples["pixel_values"], examples["labels"])])
    expected = processor([image.convert("RGB") for image in images], return_tensors="pt")["pixel_values"]
    assert torch.equal(batch["pixel_values"], expected)
    assert batch["labels"].tolist() == [0, 2]


def test_burn_in_text_changes_pixels_only_in_corner_bands():
    image = np.zeros((100, 100, 3), dtype=np.uint8)
    marked = burn_in_text(image, random.Random(0))
    changed_rows = np.flatnonzero(marked.any(axis=(1, 2)))
    assert changed_rows.size and (changed_rows.min() < 15 or changed_rows.max() > 85)


@pytest.mark.parametrize("name", list(AUGMENTATIONS))
def test_every_group_runs_on_gray_and_rgb_images_and_on_an_image_with_its_mask(name):
    pipeline = build_pipeline((name,), 48, 40, seed=1, always=True)
    gray = make_slice("glioma", np.random.default_rng(0), 64)
    rgb = Image.fromarray(np.stack([np.asarray(gray)] * 3, axis=-1) // np.array([1, 2, 3], dtype=np.uint8))
    _, mask = bright_square(64, 64, (20, 20, 44, 44))
    for image in (gray, rgb):
        out = pipeline(image=np.asarray(image.convert("RGB")), mask=np.asarray(mask))
        assert out["image"].shape == (48, 40, 3) and out["image"].dtype == np.uint8
        assert out["mask"].shape == (48, 40) and set(np.unique(out["mask"])) <= {0, 255}
        assert out["mask"].any()  # a central square survives every group


@pytest.mark.parametrize("train_resize", ["processor", "cv2"])
@pytest.mark.parametrize("name", [n for n, group in AUGMENTATIONS.items() if group.stage == FRAMING])
def test_the_mask_stays_on_the_bright_square_under_every_framing_group(name, train_resize):
    image, mask = bright_square()
    pipeline = build_pipeline((name,), 64, 64, train_resize=train_resize, seed=3, always=True)
    for _ in range(8):
        out = pipeline(image=np.asarray(image.convert("RGB")), mask=np.asarray(mask))
        pixels, square = out["image"][..., 0], out["mask"] > 0
        inside = cv2.erode(square.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
        assert inside.any() and pixels[inside].min() > 150
        if name not in ("border", "text"):  # bars and letters may be bright anywhere outside the square
            outside = cv2.dilate(square.astype(np.uint8), np.ones((5, 5), np.uint8)) == 0
            assert pixels[outside].max() < 100


@pytest.mark.parametrize("name", [n for n, group in AUGMENTATIONS.items() if group.stage == CONTRAST])
def test_contrast_groups_change_the_image_but_never_the_mask(name):
    image, mask = bright_square()
    image = make_slice("meningioma", np.random.default_rng(2), 100).resize((120, 100))
    plain = build_pipeline((), 64, 64)(image=np.asarray(image.convert("RGB")), mask=np.asarray(mask))
    out = build_pipeline((name,), 64, 64, seed=4, always=True)(image=np.asarray(image.convert("RGB")),
                                                             mask=np.asarray(mask))
    assert np.array_equal(out["mask"], plain["mask"])
    assert not np.array_equal(out["image"], plain["image"])


def test_remap_is_non_monotone_and_keeps_air_dark():
    ramp = np.tile(np.arange(256, dtype=np.uint8), (8, 1))
    remap = A.Compose([RandomIntensityRemap(p=1.0)])
    reseed(remap, 0)
    for _ in range(20):
        curve = remap(image=np.stack([ramp] * 3, axis=-1))["image"][0, :, 0].astype(int)
        assert curve[0] <= 0.15 * 255 + 1
        # Some pair of gray levels swaps order: a brighter input comes out darker.
        assert np.any(np.diff(curve) < 0)


def test_train_transform_outputs_masks_aligned_and_unknown_masks_as_minus_one(processor):
    image, mask = bright_square()
    apply = make_train_transform(processor, seed=0)
    examples = apply({"image": [image, image], "label": [1, 3], "mask": [mask, None]})
    assert len(examples["masks"]) == 2 and examples["labels"] == [1, 3]
    known, unknown = examples["masks"]
    assert known.shape == unknown.shape == (48, 48) and known.dtype == torch.float32
    assert set(known.unique().tolist()) <= {0.0, 1.0} and known.sum() > 0
    assert (unknown == -1).all()
    batch = collate([{"pixel_values": p, "labels": label, "masks": m}
                     for p, label, m in zip(examples["pixel_values"], examples["labels"], examples["masks"])])
    assert batch["masks"].shape == (2, 48, 48) and batch["pixel_values"].shape == (2, 3, 48, 48)
    assert "masks" not in make_train_transform(processor)({"image": [image], "label": [0]})


def test_masks_must_be_8_bit_and_the_size_of_their_image(processor):
    image, mask = bright_square()
    apply = make_train_transform(processor)
    with pytest.raises(ValueError, match="differs from its image"):
        apply({"image": [image], "label": [0], "mask": [mask.resize((60, 50))]})
    with pytest.raises(ValueError, match="8-bit"):
        apply({"image": [image], "label": [0], "mask": [mask.convert("RGB")]})


def test_train_and_eval_resize_alike_unless_cv2_is_asked_for(processor):
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (90, 130), dtype=np.uint8))
    served = make_eval_transform(processor)({"image": [image], "label": [0]})["pixel_values"][0]
    trained = make_train_transform(processor, augmentations=())({"image": [image], "label": [0]})["pixel_values"][0]
    assert torch.equal(trained, served)
    old = make_train_transform(processor, augmentations=(), train_resize="cv2")({"image": [image], "label": [0]})
    expected = cv2.resize(np.asarray(image.convert("RGB")), (48, 48), interpolation=cv2.INTER_LINEAR)
    expected = torch.from_numpy((expected.astype(np.float32) / 255.0 - 0.5) / 0.5).permute(2, 0, 1)
    assert torch.allclose(old["pixel_values"][0], expected, atol=1e-6)
    assert (old["pixel_values"][0] - served).abs().max() > 0.1  # noise: antialiasing matters
    with pytest.raises(ValueError, match="train_resize"):
        make_train_transform(processor, train_resize="bicubic")


def test_augmentation_is_reproducible_with_a_seed_and_differs_between_seeds(processor):
    image, mask = bright_square()
    batch = {"image": [image] * 4, "label": [0] * 4, "mask": [mask] * 4}
    first, again, other = (make_train_transform(processor, seed=s)(batch) for s in (7, 7, 8))
    for key in ("pixel_values", "masks"):
        assert all(torch.equal(a, b) for a, b in zip(first[key], again[key]))
    assert not all(torch.equal(a, b) for a, b in zip(first["pixel_values"], other["pixel_values"]))


def test_each_dataloader_worker_seed_gives_its_own_reproducible_stream(processor):
    image = make_slice("glioma", np.random.default_rng(0), 64)
    saved = torch.initial_seed()
    try:
        outputs = []
        for worker_seed in (11, 11, 12):
            torch.manual_seed(worker_seed)  # what DataLoader does in each worker
            outputs.append(TrainTransform(processor, seed=0)(image))
    finally:
        torch.manual_seed(saved)
    assert torch.equal(outputs[0], outputs[1]) and not torch.equal(outputs[0], outputs[2])


def test_groups_with_equal_probabilities_fire_independently():
    # albumentations' own seeding gives every transform the same seed, so equal-p ops fire together.
    image = np.zeros((8, 8, 3), dtype=np.uint8)
    image[:, :4] = 200
    pipeline = A.Compose([A.HorizontalFlip(p=0.5), A.InvertImg(p=0.5)])
    reseed(pipeline, 0)
    outcomes = [pipeline(image=image)["image"] for _ in range(200)]
    flipped = np.array([out[0, 0, 0] != out[0, 7, 0] and (out[0, 7, 0] in (200, 55)) for out in outcomes])
    inverted = np.array([out.max() == 255 for out in outcomes])
    assert 0.35 < flipped.mean() < 0.65 and 0.35 < inverted.mean() < 0.65
    assert 0.35 < (flipped != inverted).mean() < 0.65


def test_describe_augmentation_names_every_selected_group_with_its_share():
    text = describe_augmentation(DEFAULT_AUGMENTATIONS)
    for name, group in AUGMENTATIONS.items():
        assert f"`{name}` ({group.probability * 100:.0f} % of images): {group.description}" in text
    some = describe_augmentation(("remap", "zoom_out"), train_resize="cv2")
    assert "`remap`" in some and "`zoom_out`" in some and "`jpeg`" not in some and "cv2" in some
    assert describe_augmentation(()).startswith("No augmentation")


def test_augmentation_names_are_checked_and_put_in_pipeline_order():
    assert check_augmentations(["jpeg", "geometry", "jpeg"]) == ("geometry", "jpeg")
    assert check_augmentations("remap, invert") == ("remap", "invert")
    assert check_augmentations("none") == ()
    with pytest.raises(ValueError, match="Unknown augmentation group.*'rotate'.*known groups: geometry"):
        check_augmentations(["rotate"])


def test_a_groups_share_of_images_can_be_set_by_name():
    everything = check_augmentations("all,remap=0.5,invert=1")
    assert len(everything) == len(AUGMENTATIONS) and "remap=0.5" in everything and "invert=1" in everything
    assert check_augmentations("invert=0.3,invert") == ("invert=0.3",)  # a bare repeat keeps the share given
    for bad in ("remap=1.5", "remap=often"):
        with pytest.raises(ValueError, match="the share after '=' must be a number from 0 to 1"):
            check_augmentations(bad)
    assert "`remap` (50 % of images)" in describe_augmentation(everything)
    image = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    never, always = (build_pipeline([f"invert={p}"], 64, 64)(image=image)["image"] for p in (0, 1))
    np.testing.assert_array_equal(always, 255 - never)
