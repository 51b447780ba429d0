import numpy as np
import torch

from brain_tumor.modeling import build_from_config
from brain_tumor.transforms import TrainTransform, burn_in_text, collate, make_eval_transform, processor_size
from synthetic import make_slice


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
    import random
    marked = burn_in_text(image, random.Random(0))
    changed_rows = np.flatnonzero(marked.any(axis=(1, 2)))
    assert changed_rows.size and (changed_rows.min() < 15 or changed_rows.max() > 85)
