"""The small copy of the collections that a lent GPU trains on must not upscale any axis at training."""

import numpy as np
from PIL import Image

from bench.pack_data import shrink


def test_a_portrait_slice_keeps_its_aspect_and_its_shorter_side_reaches_the_input_size(tmp_path):
    source = tmp_path / "shared" / "brisc" / "train" / "no_tumor" / "slice.jpg"
    source.parent.mkdir(parents=True)
    Image.new("RGB", (216, 369), (90, 90, 90)).save(source)
    target = tmp_path / "copy" / "slice.jpg"
    shrink((source, target, 160, 70))
    packed = Image.open(target)
    assert packed.mode == "L" and packed.size == (160, 273)  # the image processor's 160 x 160 only shrinks it


def test_a_small_slice_is_not_enlarged_and_a_mask_stays_binary(tmp_path):
    image = tmp_path / "shared" / "v1" / "Training" / "glioma" / "small.jpg"
    mask = tmp_path / "shared" / "v1-masks" / "Training" / "glioma" / "small.png"
    for path in (image, mask):
        path.parent.mkdir(parents=True)
    Image.new("L", (120, 140), 80).save(image)
    binary = Image.new("L", (400, 300), 0)
    binary.paste(255, (100, 100, 200, 200))
    binary.save(mask)
    shrink((image, tmp_path / "copy" / "small.jpg", 160, 70))
    shrink((mask, tmp_path / "copy" / "mask.png", 160, 70))
    assert Image.open(tmp_path / "copy" / "small.jpg").size == (120, 140)
    packed_mask = Image.open(tmp_path / "copy" / "mask.png")
    assert packed_mask.size == (213, 160) and set(np.unique(np.asarray(packed_mask))) <= {0, 255}
