"""brain_tumor.imaging.pixels: the 8-bit conversions, done a block of rows at a time, give exactly
what the whole-array float64 formulas give."""

import numpy as np
import pytest
from PIL import Image

from brain_tumor.imaging import pixels


def whole_array_scale(arr, low_pct=0.5, high_pct=99.5):
    """The reference: one float64 copy of everything (what the reader did before it worked in blocks)."""
    arr = np.nan_to_num(np.asarray(arr, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    low, high = np.percentile(arr, [low_pct, high_pct])
    if high <= low:
        return np.zeros(arr.shape, dtype=np.uint8)
    return np.round(np.clip((arr - low) / (high - low), 0.0, 1.0) * 255.0).astype(np.uint8)


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch):
    monkeypatch.setattr(pixels, "_BLOCK_VALUES", 500)  # many blocks even for small test arrays


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16, np.int32, np.float32, np.float64, bool])
def test_scale_to_uint8_matches_the_whole_array_formula(dtype):
    rng = np.random.default_rng(0)
    arr = rng.normal(1000, 400, (97, 61))
    if dtype is bool:
        arr = arr > 1000
    elif np.dtype(dtype).kind == "f":
        arr[3, 4], arr[5, 6], arr[7, 8] = np.nan, np.inf, -np.inf
    arr = arr.astype(dtype) if dtype is not bool else arr
    assert np.array_equal(np.asarray(pixels.scale_to_uint8(arr)), whole_array_scale(arr))


def test_scale_to_uint8_pixelwise_and_views():
    arr = np.random.default_rng(1).integers(0, 4096, (80, 70)).astype(np.uint16)
    rescaled = np.asarray(pixels.scale_to_uint8(arr, pixelwise=lambda block: block * 0.37 - 12.5))
    assert np.array_equal(rescaled, whole_array_scale(arr * 0.37 - 12.5))
    view = arr[::-1, ::-1].T  # a non-contiguous view, as the NIfTI reader passes
    assert np.array_equal(np.asarray(pixels.scale_to_uint8(view)), whole_array_scale(view))
    assert np.asarray(pixels.scale_to_uint8(np.full((40, 40), 7.0))).max() == 0  # constant: dark


def test_gray_rgb_detected_across_blocks():
    gray = np.random.default_rng(2).integers(0, 256, (90, 50)).astype(np.uint8)
    rgb = np.stack([gray] * 3, axis=-1)
    assert pixels.to_gray_or_rgb(Image.fromarray(rgb), []).mode == "L"
    rgb[-1, -1] = (255, 0, 0)  # one coloured pixel in the last block keeps the colour
    assert pixels.to_gray_or_rgb(Image.fromarray(rgb), []).mode == "RGB"
