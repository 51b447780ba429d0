import cv2
import numpy as np
import pytest
import torch
from datasets import Dataset, Features, Image as ImageFeature, Value
from PIL import Image

from brain_tumor.labels import ANY_TUMOR_ID, CLASS_NAMES
from brain_tumor.modeling import build_from_config
from brain_tumor.transforms import make_train_transform
from brain_tumor.transplant import (LesionBank, _centres_inside_brain, _centres_where_mask_fits, _push_aside,
                                    cut_lesion, describe_transplant, head_region, label_shift_offset)

GLIOMA, NOTUMOR = CLASS_NAMES.index("glioma"), CLASS_NAMES.index("notumor")


def head_slice(size: int, radius: float, lesion: tuple[int, int, int] | None = None, seed: int = 0):
    """A gray disc 'head' (level 100, noise) on black; optionally a bright square lesion (row, col, side)
    and its 0/255 mask."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size]
    head = (y - size / 2) ** 2 + (x - size / 2) ** 2 < radius**2
    image = head * (100 + rng.normal(0, 6, (size, size)))
    mask = np.zeros((size, size), np.uint8)
    if lesion is not None:
        row, col, side = lesion
        image[row:row + side, col:col + side] = 200
        mask[row:row + side, col:col + side] = 255
    return Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).convert("RGB"), Image.fromarray(mask)


@pytest.fixture(scope="module")
def bank():
    image, mask = head_slice(96, 40, lesion=(40, 30, 12))
    return LesionBank([cut_lesion(image, mask)])


def test_head_region_is_the_filled_disc():
    image, _ = head_slice(96, 40)
    head = head_region(np.asarray(image.convert("L")).astype(np.float32))
    expected = np.pi * 40**2
    assert abs(head.sum() - expected) / expected < 0.05
    assert head[48, 48] and not head[2, 2]


def test_cut_lesion_keeps_the_tumour_and_a_ring_of_tissue():
    image, mask = head_slice(96, 40, lesion=(40, 30, 12))
    lesion = cut_lesion(image, mask)
    assert lesion.mask.sum() == 12 * 12
    assert lesion.pixels.shape == lesion.mask.shape and lesion.pixels.shape[0] > 12  # a margin around it
    assert lesion.background == pytest.approx(100, abs=6)  # the tissue around it, not the tumour
    assert lesion.head_size == pytest.approx(np.sqrt(np.pi) * 40, rel=0.05)


def test_cut_lesion_refuses_an_empty_mask():
    image, _ = head_slice(96, 40)
    assert cut_lesion(image, Image.new("L", image.size)) is None


def test_paste_puts_the_tumour_inside_the_host_head_scaled_to_it_and_changes_nothing_far_from_it(bank):
    host, _ = head_slice(192, 80, seed=1)  # a head twice the donor's diameter
    before = np.asarray(host.convert("L")).astype(int)
    rng = np.random.default_rng(0)
    for _ in range(20):
        image, mask = bank.paste(host, rng)
        assert image.size == host.size and image.mode == "RGB" and mask.size == host.size
        tumour = np.asarray(mask) > 0
        after = np.asarray(image.convert("L")).astype(int)
        # Twice the head diameter: about four times the donor's 144 tumour pixels (scale 0.8-1.25 each way).
        assert 4 * 144 * 0.8**2 * 0.8 <= tumour.sum() <= 4 * 144 * 1.25**2 * 1.2
        assert head_region(before.astype(np.float32))[tumour].all()  # inside the head
        rows, cols = np.nonzero(tumour)
        far = np.ones_like(tumour)
        far[max(rows.min() - 12, 0):rows.max() + 13, max(cols.min() - 12, 0):cols.max() + 13] = False
        assert np.array_equal(after[far], before[far])
        assert np.abs(after[tumour] - before[tumour]).mean() > 30  # the lesion stands out (either polarity)


def pasted_contrast(bank: LesionBank, seeds: range) -> list[float]:
    """For each seed, the pasted tumour's mean gray minus the host's there (positive: brighter)."""
    host, _ = head_slice(192, 80, seed=1)
    before = np.asarray(host.convert("L")).astype(float)
    contrasts = []
    for seed in seeds:
        image, mask = bank.paste(host, np.random.default_rng(seed))
        tumour = np.asarray(mask) > 0
        contrasts.append(float(np.asarray(image.convert("L"))[tumour].mean() - before[tumour].mean()))
    return contrasts


def test_t2_like_pastes_are_always_bright_while_plain_ones_take_either_polarity(bank):
    plain = pasted_contrast(bank, range(20))
    assert min(plain) < -30 and max(plain) > 30  # polarity at random
    t2_like = pasted_contrast(LesionBank(bank.lesions, t2_share=1.0), range(20))
    # A bright core, as on T2 and FLAIR: this flat head has no fluid, so at least 1.5 times its gray-level
    # spread (8) above the tissue.
    assert min(t2_like) > 10
    mixed = pasted_contrast(LesionBank(bank.lesions, t2_share=0.5), range(40))
    assert sum(c < -30 for c in mixed) >= 5  # some pastes keep the random polarity


def test_a_core_floor_draws_dimmer_t2_like_cores_that_stay_brighter_than_the_tissue(bank):
    at_the_bright_end = pasted_contrast(LesionBank(bank.lesions, t2_share=1.0), range(20))
    floored = pasted_contrast(LesionBank(bank.lesions, t2_share=1.0, t2_core_floor=0.3), range(20))
    # Level drawn from 0.3 to 1 of the way from the tissue to the bright end: 0.65 on average.
    assert np.mean(floored) < 0.85 * np.mean(at_the_bright_end)
    assert min(floored) > 0.3 * 10  # still brighter than the tissue: at least 0.3 of 1.5 spreads (8) above it


def test_a_t2_like_paste_brightens_a_halo_around_the_core_and_changes_nothing_far_from_it(bank):
    host, _ = head_slice(192, 80, seed=1)
    before = np.asarray(host.convert("L")).astype(int)
    t2_bank = LesionBank(bank.lesions, t2_share=1.0)
    for seed in range(10):
        image, mask = t2_bank.paste(host, np.random.default_rng(seed))
        after = np.asarray(image.convert("L")).astype(int)
        tumour = np.asarray(mask) > 0
        assert head_region(before.astype(np.float32))[tumour].all()
        # The mass effect fades within a few lesion radii (it is 0.01 pixel at four times its reach, 1.5 radii).
        radius = np.sqrt(tumour.sum() / np.pi)
        rows, cols = np.indices(tumour.shape)
        centre = np.argwhere(tumour).mean(axis=0)
        far = np.hypot(rows - centre[0], cols - centre[1]) > 4 * 1.5 * radius
        assert far.sum() > 1000 and np.abs(after[far] - before[far]).max() <= 1
        # The ring just outside the core is brighter on average, never darker: oedema only adds signal.
        ring = cv2.dilate(tumour.astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool) & ~tumour
        assert (after[ring] - before[ring]).mean() > -3


def test_push_aside_moves_content_away_from_the_centre_and_strength_0_changes_nothing():
    image = np.zeros((101, 101), np.float32)
    image[:, 60] = 255  # a line 10 pixels right of the centre
    np.testing.assert_allclose(_push_aside(image, np.array([50.0, 50.0]), 10.0, 0.0), image, atol=1e-4)
    pushed = _push_aside(image, np.array([50.0, 50.0]), 10.0, 0.4)
    assert np.argmax(pushed[50]) > 60  # pushed outward on the row through the centre
    assert np.argmax(pushed[0]) == 60  # far from the centre the line stays put


def test_t2_share_is_checked_and_described(bank):
    with pytest.raises(ValueError, match="T2-like pastes must be from 0 to 1"):
        LesionBank(bank.lesions, t2_share=1.5)
    assert "T2" not in describe_transplant(0.4, 10)
    assert "50 % of the pastes are drawn as T2 and FLAIR show" in describe_transplant(0.4, 10, t2_share=0.5)


def test_grown_t2_like_pastes_are_larger_and_inside_the_head(bank):
    host, _ = head_slice(192, 80, seed=1)
    head = head_region(np.asarray(host.convert("L")).astype(np.float32))

    def draws(lesions: LesionBank) -> list[np.ndarray]:
        return [np.asarray(lesions.paste(host, np.random.default_rng(seed))[1]) > 0 for seed in range(30)]

    centred, grown = draws(LesionBank(bank.lesions, t2_share=1.0)), draws(LesionBank(bank.lesions, 1.0, t2_grow=2.0))
    # Lengthwise growth drawn from 1 to 2: about (1.5^2 + 0.5^2 / 3) = 2.3 times the area on average.
    assert np.mean([t.sum() for t in grown]) > 1.6 * np.mean([t.sum() for t in centred])
    assert all(head[tumour].all() for tumour in grown)


def test_placing_by_the_mask_lets_a_lesion_reach_the_skull_but_not_the_scalp():
    size, radius = 192, 80
    y, x = np.mgrid[0:size, 0:size]
    head = (y - size / 2) ** 2 + (x - size / 2) ** 2 < radius**2
    head_size = np.sqrt(head.sum())
    tumour = np.zeros((36, 36), bool)  # a 24-pixel lesion in its crop with a 6-pixel ring of tissue
    tumour[6:30, 6:30] = True

    def reach(centres: np.ndarray) -> float:
        """How far from the head's centre the farthest centre lies."""
        return float(np.hypot(centres[:, 0] - size / 2, centres[:, 1] - size / 2).max())

    by_mask, by_box = _centres_where_mask_fits(head, tumour, head_size), _centres_inside_brain(head, 36, 36, head_size)
    assert reach(by_mask) > reach(by_box) + 3  # the ring of tissue around the lesion may overlap the skull
    # At the farthest centre the lesion's own pixels keep the scalp and skull margin (0.08 of the head's size).
    row, col = by_mask[np.argmax(np.hypot(by_mask[:, 0] - size / 2, by_mask[:, 1] - size / 2))]
    rows, cols = np.nonzero(tumour)
    farthest_pixel = np.hypot(rows + row - 18 - size / 2, cols + col - 18 - size / 2).max()
    assert radius - 0.08 * head_size - 2 <= farthest_pixel <= radius - 0.08 * head_size + 1


def test_t2_grow_is_checked_and_described(bank):
    for grow, share in ((0.5, 1.0), (2.0, 0.0)):
        with pytest.raises(ValueError, match="T2-like pastes can grow by a factor of 1 or more"):
            LesionBank(bank.lesions, t2_share=share, t2_grow=grow)
    assert "grow" not in describe_transplant(0.4, 10, t2_share=0.5)
    assert "These grow up to 2 times longer" in describe_transplant(0.4, 10, t2_share=0.5, t2_grow=2.0)


def test_t2_core_floor_is_checked_and_described(bank):
    for floor, share in ((0.0, 1.0), (1.5, 1.0), (0.5, 0.0)):
        with pytest.raises(ValueError, match="T2-like core's floor must be above 0 and at most 1"):
            LesionBank(bank.lesions, t2_share=share, t2_core_floor=floor)
    assert "Their cores" not in describe_transplant(0.4, 10, t2_share=0.5)
    assert "Their cores lie anywhere from 30 % of the way" in describe_transplant(0.4, 10, t2_share=0.5,
                                                                                   t2_core_floor=0.3)


def test_paste_gives_up_on_a_host_without_a_head(bank):
    assert bank.paste(Image.new("RGB", (96, 96)), np.random.default_rng(0)) is None


def test_a_lesion_bank_needs_masked_tumour_rows():
    image, mask = head_slice(64, 26, lesion=(24, 24, 8))
    features = Features({"image": ImageFeature(), "label": Value("int64")})
    no_masks = Dataset.from_dict({"image": [image], "label": [GLIOMA]}, features=features)
    with pytest.raises(ValueError, match="masks_name_or_path"):
        LesionBank.from_dataset(no_masks)
    with_masks = Dataset.from_dict({"image": [image, image], "label": [GLIOMA, NOTUMOR], "mask": [mask, None]},
                                   features=Features({**features, "mask": ImageFeature()}))
    assert len(LesionBank.from_dataset(with_masks).lesions) == 1  # the notumor row gives no lesion
    with pytest.raises(ValueError, match="none was usable"):
        LesionBank([])


def test_train_transform_turns_a_share_of_no_tumour_rows_into_coarse_rows_with_the_pasted_mask(bank):
    processor = build_from_config("resnet-mini", 48)[1]
    host, _ = head_slice(96, 40, seed=2)
    tumour, tumour_mask = head_slice(96, 40, lesion=(30, 30, 10), seed=3)
    batch = {"image": [host] * 40 + [tumour], "label": [NOTUMOR] * 40 + [GLIOMA], "mask": [None] * 40 + [tumour_mask]}
    out = make_train_transform(processor, seed=0, augmentations=(), lesions=bank, transplant_share=0.5)(batch)
    pasted = [i for i, label in enumerate(out["labels"]) if label == ANY_TUMOR_ID]
    assert 10 <= len(pasted) <= 30  # about half, seeded
    assert set(out["labels"]) - {ANY_TUMOR_ID} == {NOTUMOR, GLIOMA} and out["labels"][-1] == GLIOMA
    for i, mask in enumerate(out["masks"]):
        assert mask.shape == (48, 48)
        if i in pasted or i == 40:
            assert set(torch.unique(mask).tolist()) == {0.0, 1.0}
        else:
            assert torch.all(mask == -1)  # no-tumour rows left alone have no mask
    plain = make_train_transform(processor, seed=0, augmentations=())(batch)
    assert plain["labels"] == batch["label"]


def test_a_transplant_share_needs_a_lesion_bank_and_a_share_from_0_to_1(bank):
    processor = build_from_config("resnet-mini", 48)[1]
    with pytest.raises(ValueError, match="lesion bank"):
        make_train_transform(processor, transplant_share=0.3)
    with pytest.raises(ValueError, match="from 0 to 1"):
        make_train_transform(processor, lesions=bank, transplant_share=1.5)


def test_label_shift_offset_turns_the_posterior_under_transplant_priors_into_the_real_one():
    # Class 0 no tumour (N = 300), classes 1-3 tumours (T = 400); 40 % of no-tumour slices become tumours,
    # spread over the tumour classes like the real tumours.
    real = np.array([300.0, 200.0, 100.0, 100.0])
    share, tumours = 0.4, real[1:].sum()
    trained = np.concatenate([[real[0] * (1 - share)], real[1:] * (1 + share * real[0] / tumours)])
    likelihoods = np.random.default_rng(0).uniform(0.01, 1.0, (50, 4))

    def posterior(log_scores):
        scores = np.exp(log_scores - log_scores.max(1, keepdims=True))
        return scores / scores.sum(1, keepdims=True)

    learned = np.log(likelihoods * trained)  # what a perfect model trained with the transplant outputs
    learned[:, 0] += label_shift_offset(int(real[0]), int(tumours), share)
    np.testing.assert_allclose(posterior(learned), posterior(np.log(likelihoods * real)), rtol=1e-9)


def test_label_shift_offset_is_zero_without_a_transplant_and_refuses_impossible_shares():
    assert label_shift_offset(300, 400, 0.0) == 0.0
    with pytest.raises(ValueError, match="share"):
        label_shift_offset(300, 400, 1.0)
    with pytest.raises(ValueError, match="tumour slices"):
        label_shift_offset(300, 0, 0.4)
