"""The few augmentation ops albumentations lacks, written as albumentations transforms.

Each one draws its randomness from the generators albumentations gives it (`self.py_random`,
`self.random_generator`), so a seeded pipeline replays exactly. Geometric ones (Dual) move the
mask with the image; intensity ones (ImageOnly) leave the mask alone. Images are uint8 HxWx3.
"""

from __future__ import annotations

import functools
import random
from typing import Any

import albumentations as A
import cv2
import numpy as np
from albumentations.augmentations.crops import functional as fcrops
from PIL import Image, ImageDraw, ImageFont
from scipy.interpolate import PchipInterpolator

# Strings of the kind scanners and PACS exports burn into slices.
_BURNT_IN_TEXTS = ("L", "R", "A", "P", "T1", "T2", "FLAIR", "T1+C", "MR 1.5T", "SE 4/IM 12", "2019-03-14",
                   "ID 00421", "W 812 L 403", "10 cm", "AX", "COR")


@functools.lru_cache(maxsize=64)
def _font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)  # reading the font file costs more than drawing with it


def burn_in_text(image: np.ndarray, rng: random.Random) -> np.ndarray:
    """Write one or two short labels near the corners, as scanners and viewers do."""
    canvas = Image.fromarray(image)
    draw = ImageDraw.Draw(canvas)
    height, width = image.shape[:2]
    font = _font(max(8, int(height * rng.uniform(0.04, 0.08))))
    for _ in range(rng.randint(1, 2)):
        text = rng.choice(_BURNT_IN_TEXTS)
        x = rng.choice((0.02, 0.6)) * width + rng.uniform(0, 0.1) * width
        y = rng.choice((0.02, 0.88)) * height
        shade = rng.randint(160, 255)
        draw.text((x, y), text, fill=(shade, shade, shade), font=font)
    return np.asarray(canvas)


class BurnInText(A.ImageOnlyTransform):
    """`burn_in_text` as a transform: text is drawn over the image, never into the mask."""

    def apply(self, img: np.ndarray, **params: Any) -> np.ndarray:
        return burn_in_text(img, self.py_random)


class RandomAreaCrop(A.RandomResizedCrop):
    """RandomResizedCrop's choice of window (area and aspect ranges) without its resize.

    The pipeline resizes once, at the end, with the same resampling as serving; a resize here
    would resample twice and with cv2's non-antialiased bilinear.
    """

    def __init__(self, scale: tuple[float, float], ratio: tuple[float, float], p: float = 1.0):
        super().__init__(size=(1, 1), scale=scale, ratio=ratio, p=p)

    def apply(self, img: np.ndarray, crop_coords: tuple[int, int, int, int], **params: Any) -> np.ndarray:
        return fcrops.crop(img, *crop_coords)

    def apply_to_mask(self, mask: np.ndarray, crop_coords: tuple[int, int, int, int], **params: Any) -> np.ndarray:
        return fcrops.crop(mask, *crop_coords)


class PilResize(A.DualTransform):
    """Resize with Pillow, as transformers' image processors do at serving time (antialiased).

    The mask goes through the same filter and is thresholded at half, so its edge sits where the
    image's edge lands.
    """

    def __init__(self, height: int, width: int, resample: int = Image.Resampling.BILINEAR, p: float = 1.0):
        super().__init__(p=p)
        self.height, self.width, self.resample = height, width, Image.Resampling(int(resample))

    def apply(self, img: np.ndarray, **params: Any) -> np.ndarray:
        return np.asarray(Image.fromarray(img).resize((self.width, self.height), self.resample))

    def apply_to_mask(self, mask: np.ndarray, **params: Any) -> np.ndarray:
        resized = np.asarray(Image.fromarray(mask).resize((self.width, self.height), self.resample))
        return np.where(resized >= 128, 255, 0).astype(np.uint8)


class RandomIntensityRemap(A.ImageOnlyTransform):
    """Map gray levels through a random smooth curve that is NOT monotone increasing.

    T1, T2 and FLAIR differ mainly in which tissues are bright (CSF dark on T1, bright on T2),
    i.e. by a non-monotone map of one another's gray levels; a random such map keeps the anatomy
    and the tumour's outline but not the sequence's signature. The curve is a shape-preserving
    cubic (PCHIP, no overshoot) through `points` random control points placed at quantiles of
    the image's own tissue levels, so that each piece of the curve acts on an equal share of the
    head: a dark T1 slice uses few levels, and points spread evenly over 0-255 would blank it.
    - Levels below `dark_end` of the brightest tissue (air, background noise) map to one dark
      level: air is dark on every sequence.
    - No level weighs more than 2 % in the quantiles: a padded border or a flat region is one
      level covering much of the image, and would pull every control point onto itself.
    - No piece is steeper than `max_slope` (control values shrink towards the dark level): a
      steep piece over a narrow band of levels turns noise and JPEG artefacts into speckle.
    - The remapped tissue keeps a standard deviation of at least `min_contrast` (of the 0-1
      range); a curve that flattens the head to one shade, tumour included, is drawn again.
    """

    def __init__(self, points: tuple[int, int] = (2, 4), dark_end: float = 0.1, dark_level: float = 0.15,
                 max_slope: float = 5.0, min_contrast: float = 0.12, p: float = 0.5):
        super().__init__(p=p)
        self.points, self.dark_end, self.dark_level = points, dark_end, dark_level
        self.max_slope, self.min_contrast = max_slope, min_contrast

    def get_params_dependent_on_data(self, params: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        return {"lut": self.random_curve(data["image"])}

    def random_curve(self, image: np.ndarray, tries: int = 20) -> np.ndarray:
        """A 256-entry uint8 look-up table for this image."""
        histogram = np.bincount(image.ravel()[::7], minlength=256).astype(np.float64)  # a sample is plenty
        top = max(int(np.searchsorted(np.cumsum(histogram) / histogram.sum(), 0.995)), 25)
        histogram[: int(self.dark_end * top) + 1] = 0  # air
        histogram = np.minimum(histogram, 0.02 * histogram.sum())
        if histogram.sum() == 0:  # a blank image: nothing to remap
            return np.arange(256, dtype=np.uint8)
        weights = histogram / histogram.sum()
        levels = np.arange(256) / 255.0
        for _ in range(tries):  # rejection on contrast: most draws qualify; else the last one
            count = self.py_random.randint(*self.points)
            knots = np.searchsorted(np.cumsum(weights), np.arange(1, count + 1) / count * 0.995) / 255.0
            xs = np.concatenate([[0.0, self.dark_end * top / 255.0], knots])
            xs = np.maximum.accumulate(xs + np.arange(xs.size) * 1e-3)  # strictly increasing for PCHIP
            dark = self.random_generator.uniform(0.0, self.dark_level)
            ys = np.concatenate([[dark, dark], self.random_generator.uniform(0.0, 1.0, count)])
            if not np.any(np.diff(ys[1:]) < 0):  # monotone: reversed, the tissue points fall instead
                ys[2:] = ys[2:][::-1]
            steepest = np.max(np.abs(np.diff(ys)) / np.diff(xs))
            ys = dark + (ys - dark) * min(1.0, self.max_slope / steepest)
            if xs[-1] < 1.0:  # levels above the brightest knot keep its output
                xs, ys = np.append(xs, 1.0 + 1e-3), np.append(ys, ys[-1])
            curve = np.clip(PchipInterpolator(xs, ys)(levels), 0.0, 1.0)
            mean = np.sum(weights * curve)
            if np.sqrt(np.sum(weights * (curve - mean) ** 2)) >= self.min_contrast:
                break
        return np.round(curve * 255).astype(np.uint8)

    def apply(self, img: np.ndarray, lut: np.ndarray, **params: Any) -> np.ndarray:
        if img.ndim == 2 or img.shape[-1] == 1:
            return cv2.LUT(img, lut)
        # Remap the gray level and keep each channel's small offset from it: a slice saved with a
        # faint tint would otherwise come out in false colours where the curve is steep.
        gray = np.round(img.mean(axis=-1)).astype(np.uint8)
        offsets = img.astype(np.int16) - gray[..., None]
        return np.clip(cv2.LUT(gray, lut)[..., None] + offsets, 0, 255).astype(np.uint8)


class BiasField(A.ImageOnlyTransform):
    """Multiply by a smooth low-frequency field, as coil sensitivity (MRI bias field) does.

    The log of the field is a random polynomial of `order` in the normalised coordinates (as
    TorchIO's RandomBiasField), rescaled so that its largest magnitude is `max_log_gain` times a
    random fraction: gains stay within exp(+-max_log_gain).
    """

    def __init__(self, order: int = 3, max_log_gain: float = 0.6, p: float = 0.5):
        super().__init__(p=p)
        self.order, self.max_log_gain = order, max_log_gain

    def get_params_dependent_on_data(self, params: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        # A low-order polynomial is smooth: computed on a coarse grid and resized, it is the same
        # field at a small fraction of the cost of evaluating it at every pixel.
        y, x = np.meshgrid(np.linspace(-1, 1, 32), np.linspace(-1, 1, 32), indexing="ij")
        log_field = np.zeros((32, 32))
        for i in range(self.order + 1):
            for j in range(self.order + 1 - i):
                if i + j:  # no constant term: overall brightness is another group's job
                    log_field += self.random_generator.uniform(-1, 1) * x**i * y**j
        strength = self.max_log_gain * self.random_generator.uniform(0.3, 1.0)
        log_field *= strength / max(np.abs(log_field).max(), 1e-6)
        height, width = params["shape"][:2]
        field = cv2.resize(np.exp(log_field).astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)
        return {"field": field}

    def apply(self, img: np.ndarray, field: np.ndarray, **params: Any) -> np.ndarray:
        scaled = img.astype(np.float32) * (field[..., None] if img.ndim == 3 else field)
        return np.clip(scaled + 0.5, 0, 255).astype(np.uint8)
