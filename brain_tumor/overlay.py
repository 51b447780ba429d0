"""Draw a saliency map over the slice it belongs to (the picture the app and users see)."""

from __future__ import annotations

import numpy as np
from PIL import Image

# A perceptually ordered dark-to-bright colour ramp (close to matplotlib's "inferno"); kept here
# as five anchors so the package needs no plotting library.
_RAMP = np.array([[0, 0, 4], [87, 16, 110], [188, 55, 84], [249, 142, 9], [252, 255, 164]], dtype=np.float32) / 255.0


def colourise(values: np.ndarray) -> np.ndarray:
    """(..., ) values in [0, 1] -> (..., 3) RGB in [0, 1] on the ramp."""
    position = np.clip(values, 0, 1) * (len(_RAMP) - 1)
    low = np.floor(position).astype(int).clip(0, len(_RAMP) - 2)
    frac = (position - low)[..., None]
    return _RAMP[low] * (1 - frac) + _RAMP[low + 1] * frac


def overlay_heatmap(image: Image.Image, saliency: np.ndarray, alpha: float = 0.6) -> Image.Image:
    """An RGB picture of `image` with `saliency` (same height x width, values in [0, 1]) over it.

    Weak evidence stays transparent, so the anatomy under it remains readable.
    """
    weight = np.clip(np.asarray(saliency, dtype=np.float32), 0, 1)
    if weight.shape != (image.height, image.width):
        raise ValueError(f"saliency map is {weight.shape[1]} x {weight.shape[0]} pixels but the image is "
                         f"{image.width} x {image.height}; they must match")
    base = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    w = alpha * weight[..., None]
    blend = base * (1 - w) + colourise(weight) * w
    return Image.fromarray(np.round(np.clip(blend, 0, 1) * 255).astype(np.uint8), mode="RGB")
