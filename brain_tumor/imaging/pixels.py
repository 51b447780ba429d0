"""Pixel conversions every reader shares: any PIL mode or numeric array -> 8-bit "L" or "RGB".

A slice may have up to 40 megapixels, so the float work is done a block of rows at a time: a
float64 copy of a whole 40-megapixel slice alone would take 320 MB.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from PIL import Image

_BLOCK_VALUES = 1 << 20  # values per block of rows: 8 MB of float64


def map_row_blocks(arr: np.ndarray, func: Callable[[np.ndarray], np.ndarray], dtype=np.uint8) -> np.ndarray:
    """`func` applied to `arr` a block of rows at a time, into one output array of `dtype`."""
    out = np.empty(arr.shape, dtype=dtype)
    step = max(1, _BLOCK_VALUES // max(1, arr[:1].size))
    for start in range(0, arr.shape[0], step):
        out[start:start + step] = func(arr[start:start + step])
    return out


def scale_to_uint8(arr: np.ndarray, low_pct: float = 0.5, high_pct: float = 99.5,
                   pixelwise: Callable[[np.ndarray], np.ndarray] | None = None) -> Image.Image:
    """Map a wide-range array to 8-bit grayscale by robust percentiles (outliers clip).

    `pixelwise`, when given, first maps stored values to the values to scale (e.g. a DICOM
    rescale); like everything here it runs a block of rows at a time, so no float copy of the
    whole mapped slice is kept besides the one the percentiles are taken from.
    """
    arr = np.asarray(arr)

    def values(block: np.ndarray) -> np.ndarray:
        block = np.asarray(pixelwise(block)) if pixelwise is not None else block
        if block.dtype.kind in "iu":
            return block
        return np.nan_to_num(block.astype(np.float64) if block.dtype.kind != "f" else block,
                             nan=0.0, posinf=0.0, neginf=0.0)

    # Our own copy, so the percentiles may reorder it in place. The percentiles of an integer or
    # float32 array are those of its float64 copy, so it keeps the values' own type.
    owned = map_row_blocks(arr, values, dtype=values(arr[:1]).dtype)
    low, high = np.percentile(owned, [low_pct, high_pct], overwrite_input=True)
    del owned
    if high <= low:  # constant image: nothing to stretch, keep it uniformly dark
        return Image.fromarray(np.zeros(arr.shape, dtype=np.uint8), mode="L")
    scaled = map_row_blocks(arr, lambda block: unit_to_uint8((values(block).astype(np.float64) - low) / (high - low)))
    return Image.fromarray(scaled, mode="L")


def unit_to_uint8(values: np.ndarray) -> np.ndarray:
    """0..1 (clipped) onto 0..255, rounded."""
    return np.round(np.clip(values, 0.0, 1.0) * 255.0).astype(np.uint8)


def to_gray_or_rgb(img: Image.Image, notes: list[str]) -> Image.Image:
    """Convert any PIL mode to "L", or to "RGB" when the picture really has colour."""
    mode = img.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        depth = "16-bit" if mode.startswith("I;16") else f"{mode}-mode"
        notes.append(f"{depth} image scaled to 8-bit by its 0.5-99.5 percentiles")
        return scale_to_uint8(np.asarray(img))
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in img.info):
        # Transparent areas are background; MRI background is black, so composite onto black.
        rgba = img if mode == "RGBA" else img.convert("RGBA")
        img = Image.alpha_composite(Image.new("RGBA", rgba.size, (0, 0, 0, 255)), rgba).convert("RGB")
        notes.append("transparency composited onto black")
    elif mode == "CMYK":
        notes.append("CMYK converted to RGB")
        img = img.convert("RGB")
    elif mode != "L":
        img = img.convert("RGB")
    if img.mode == "RGB" and _is_gray(np.asarray(img)):
        img = img.convert("L")
    return img


def _is_gray(rgb: np.ndarray) -> bool:
    # Many MRI exports are grayscale stored as RGB; JPEG chroma noise leaves small differences.
    step = max(1, _BLOCK_VALUES // max(1, rgb[:1].size))
    for start in range(0, rgb.shape[0], step):
        block = rgb[start:start + step].astype(np.int16)
        if np.abs(block - block.mean(axis=2, keepdims=True)).max() > 8:
            return False
    return True


def colour_to_uint8(arr: np.ndarray) -> np.ndarray:
    """An RGB array of any depth -> uint8, each channel by its own percentiles."""
    if arr.dtype == np.uint8:
        return arr
    return np.stack([np.asarray(scale_to_uint8(arr[..., c])) for c in range(arr.shape[-1])], axis=-1)
