"""'Not a brain MRI', stage 1: six image statistics, each inside the range of the training scans.

Model-free and explainable: colourfulness, border brightness, dark fraction, mean, contrast and
roughness must fall inside the range seen on the training scans, widened by a margin. This
catches colour photos, documents, blank, gradient and noise images, and says *why* in plain
words. It cannot catch a grayscale photo that happens to have MRI-like statistics; the feature
distance (`feature_distance.py`) is for that.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from .rounding import round6

STAT_SIZE = 128  # statistics are measured on a 128 x 128 grayscale copy: cheap and size-free
BORDER = 0.1  # the border band is the outer 10% of each side

# Plain words for a statistic outside its range: (too low, too high).
_STAT_REASONS = {
    "colourfulness": (None, "it is in colour, while MRI slices are grayscale"),
    "border_brightness": (None, "its border is bright, while MRI slices show the head on a dark background"),
    "dark_fraction": ("it has almost no dark background", "it is almost entirely black"),
    "mean": ("it is almost entirely black", "it is much brighter overall than MRI slices"),
    "contrast": ("it is almost uniform (blank)", "its contrast is extreme, like text or a drawing"),
    "roughness": (
        "it is too smooth to show anatomy (like a gradient)",
        "it looks like noise or fine texture, not anatomy",
    ),
}

# Colour gets a floor: the training scans are all pure gray (colourfulness ~0), yet RGB-encoded
# grayscale from other sources carries JPEG chroma noise of a few percent. 0.06 is above that
# noise and below every colour photo we measured (bench/ood_check.py).
COLOURFULNESS_FLOOR = 0.06

# Ranges for a model folder without fitted checks, from the official Training split (5,708
# scans): `python bench/ood_check.py --print-default-ranges` prints them.
DEFAULT_RANGES = {
    "colourfulness": [-0.00138724, 0.06],
    "border_brightness": [-0.0371216, 0.411671],
    "dark_fraction": [-0.0800791, 0.88087],
    "mean": [0.0155235, 0.530761],
    "contrast": [0.0611135, 0.378274],
    "roughness": [0.0240167, 0.480927],
}


def image_statistics(image: Image.Image) -> dict[str, float]:
    """Six numbers (each in 0..1 or near it) describing how an image looks."""
    rgb = np.asarray(image.convert("RGB").resize((STAT_SIZE, STAT_SIZE), Image.BILINEAR), dtype=np.float32) / 255.0
    gray = np.asarray(image.convert("L").resize((STAT_SIZE, STAT_SIZE), Image.BILINEAR), dtype=np.float32) / 255.0
    band = max(1, int(round(STAT_SIZE * BORDER)))
    sides = (gray[:band], gray[-band:], gray[band:-band, :band], gray[band:-band, -band:])
    border = np.concatenate([side.ravel() for side in sides])
    contrast = float(gray.std())
    # Mean absolute difference between neighbours, relative to contrast: noise is ~1, anatomy ~0.15.
    step = (np.abs(np.diff(gray, axis=0)).mean() + np.abs(np.diff(gray, axis=1)).mean()) / 2.0
    return {
        "colourfulness": float((rgb.max(axis=2) - rgb.min(axis=2)).mean()),
        "border_brightness": float(border.mean()),
        "dark_fraction": float((gray < 0.1).mean()),
        "mean": float(gray.mean()),
        "contrast": contrast,
        "roughness": float(step / contrast) if contrast > 1e-3 else 0.0,
    }


def fit_image_statistics(images, low_q: float = 0.1, high_q: float = 99.9, margin: float = 0.1) -> dict:
    """Per-statistic ranges: training [0.1%, 99.9%] quantiles widened by 10% of their span.

    Quantiles rather than min/max so a handful of odd training files do not open the range;
    the margin so scans from other scanners, slightly outside the training ranges, still pass.
    """
    table = [image_statistics(img) for img in images]
    ranges = {}
    for name in table[0]:
        values = np.array([row[name] for row in table])
        low, high = np.percentile(values, [low_q, high_q])
        pad = margin * max(high - low, 1e-3)
        ranges[name] = [round6(low - pad), round6(high + pad)]
    ranges["colourfulness"][1] = max(ranges["colourfulness"][1], COLOURFULNESS_FLOOR)
    return {"ranges": ranges, "quantiles": [low_q, high_q], "margin": margin, "n_images": len(table)}


def image_statistics_reasons(stats: dict[str, float], fitted: dict) -> list[str]:
    """Plain-word reasons why these statistics are unlike the training scans (empty if alike)."""
    reasons = []
    for name, (low, high) in fitted["ranges"].items():
        too_low, too_high = _STAT_REASONS.get(name, (None, None))
        value = stats[name]
        if value < low and too_low and too_low not in reasons:
            reasons.append(too_low)
        elif value > high and too_high and too_high not in reasons:
            reasons.append(too_high)
    return reasons
