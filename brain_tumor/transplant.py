"""Lesion transplant: a real, expert-masked tumour pasted into a no-tumour slice of another source.

Why: in the benchmark the tumour classes and `notumor` come from different collections, so the
framing and sequence of a slice predict its answer ("Br35H framing means no tumour"). Augmenting
the whole image cannot break that link: every tumour the model sees is still in a tumour
collection's frame. Pasting tumours into the no-tumour slices themselves puts tumours in every
framing, sequence and plane that the no-tumour slices have, so only the lesion can tell the
classes apart. (Object-level copy-paste of tumours: TumorCP, Yang et al., MICCAI 2021; CarveMix,
Zhang et al., 2021.)

What a transplant keeps and what it does not:
- the lesion's texture and its contrast against the tissue around it, rescaled to the host's
  gray levels, with its polarity flipped at random (a tumour is bright on T2 and FLAIR, dark or
  ring-enhancing on T1): the sequence must not decide;
- its size relative to the head, so a 20 % lesion stays a 20 % lesion on a 900 px slice;
- NOT its type: a pituitary adenoma pasted into the cortex is no pituitary tumour, and a
  meningioma away from the dura is no meningioma. A pasted slice is labelled "some tumour" (the
  partial label, `ANY_TUMOR`), and its pasted mask feeds the mask loss.

The donors are contrast-enhanced T1 tumours, so a plain paste never looks like a tumour on T2: with
Br35H held out, the surest misses were T2 slices with a large bright mass (bench/missed_gallery.py).
With a `t2_share`, that share of pastes is drawn as T2 and FLAIR show most tumours instead: a core
near the fluid's gray level keeping the donor's texture faintly, an irregular bright halo of oedema,
and the tissue around it pushed aside (mass effect). The masses still missed after that were larger
than most pastes and often lay against the skull, where a paste centred in the brain never goes; a
`t2_grow` above 1 makes T2-like pastes up to that many times longer and places them wherever their
mask fits inside the skull. Most masses missed even then were only moderately bright, darker than
the fluid: a `t2_core_floor` below 1 draws the core's level anywhere from that share of the way from
the tissue to the bright end, up to it.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

from .labels import ANY_TUMOR_ID, allowed_classes

_MIN_LESION_PIXELS = 12  # a mask smaller than this is too small to carry a lesion
_MIN_HEAD_PIXELS = 400  # a 'head' smaller than 20 x 20 pixels is a thresholding failure
# Skull and scalp as a share of the head's size (sqrt of its area). A lesion's box keeps 0.06 from the head's edge;
# a lesion placed by its mask may come nearer, so it keeps a thick scalp's 0.08 (0.06 overlapped it by eye).
_SKULL_SHARE, _SCALP_AND_SKULL_SHARE = 0.06, 0.08


@dataclass(frozen=True)
class Lesion:
    """One donor lesion, cut out of its slice with a margin of surrounding tissue."""

    pixels: np.ndarray  # float32 gray crop, donor's gray levels
    mask: np.ndarray  # bool crop, True on the tumour
    background: float  # median gray of the tissue ring around the tumour
    spread: float  # inter-quartile range of the donor's head (its gray-level scale)
    head_size: float  # sqrt of the donor head's area in pixels (its spatial scale)


def gray(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("L"), dtype=np.float32)


def head_region(gray_image: np.ndarray) -> np.ndarray:
    """The head as one filled blob: Otsu's threshold, the largest component, holes filled."""
    smooth = cv2.GaussianBlur(np.clip(gray_image, 0, 255).astype(np.uint8), (5, 5), 0)
    _, binary = cv2.threshold(smooth, 0, 1, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    if count < 2:
        return np.zeros(gray_image.shape, bool)
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    blob = (labels == largest).astype(np.uint8)
    contours, _ = cv2.findContours(blob, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    filled = np.zeros_like(blob)
    cv2.drawContours(filled, contours, -1, 1, thickness=cv2.FILLED)
    return filled.astype(bool)


def _spread(values: np.ndarray) -> float:
    low, high = np.percentile(values, (25, 75))
    return float(max(high - low, 8.0))  # floor: a nearly flat head would blow the rescale up


def cut_lesion(image: Image.Image, mask: Image.Image) -> Lesion | None:
    """The lesion of a masked tumour slice, or None when the mask or the head is unusable."""
    pixels, tumour = gray(image), np.asarray(mask.convert("L")) > 127
    head = head_region(pixels)
    if tumour.sum() < _MIN_LESION_PIXELS or head.sum() < _MIN_HEAD_PIXELS:
        return None
    margin = max(3, int(0.25 * np.sqrt(tumour.sum())))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * margin + 1,) * 2)
    around = cv2.dilate(tumour.astype(np.uint8), kernel).astype(bool)
    ring = around & ~tumour & head
    if ring.sum() < _MIN_LESION_PIXELS:
        return None
    rows, cols = np.nonzero(around)
    box = slice(rows.min(), rows.max() + 1), slice(cols.min(), cols.max() + 1)
    return Lesion(pixels=pixels[box].astype(np.float32), mask=tumour[box], background=float(np.median(pixels[ring])),
                  spread=_spread(pixels[head]), head_size=float(np.sqrt(head.sum())))


class LesionBank:
    """Donor lesions from a training split's masked tumour slices, and the paste that uses them."""

    def __init__(self, lesions: list[Lesion], t2_share: float = 0.0, t2_grow: float = 1.0, t2_core_floor: float = 1.0):
        if not lesions:
            raise ValueError("Lesion transplant needs tumour slices with masks in the training split "
                             "(--masks_name_or_path); none was usable.")
        if not 0 <= t2_share <= 1:
            raise ValueError(f"The share of T2-like pastes must be from 0 to 1, not {t2_share}.")
        if t2_grow < 1 or (t2_grow > 1 and not t2_share):
            raise ValueError(f"T2-like pastes can grow by a factor of 1 or more (got {t2_grow}), and only when a "
                             "share of the pastes is T2-like.")
        if not 0 < t2_core_floor <= 1 or (t2_core_floor < 1 and not t2_share):
            raise ValueError(f"The T2-like core's floor must be above 0 and at most 1 (got {t2_core_floor}), and "
                             "below 1 only when a share of the pastes is T2-like.")
        self.lesions, self.t2_share, self.t2_grow, self.t2_core_floor = lesions, t2_share, t2_grow, t2_core_floor

    @classmethod
    def from_dataset(cls, dataset, t2_share: float = 0.0, t2_grow: float = 1.0,
                     t2_core_floor: float = 1.0) -> LesionBank:
        """Every usable lesion of the rows that have a tumour label and a mask (decoded once)."""
        if "mask" not in dataset.column_names:
            raise ValueError("Lesion transplant needs a 'mask' column: pass --masks_name_or_path.")
        labels = np.asarray(dataset["label"])
        rows = [int(i) for i in np.flatnonzero(np.isin(labels, allowed_classes(ANY_TUMOR_ID)))]
        lesions = []
        for row in dataset.select(rows).select_columns(["image", "mask"]):
            if row["mask"] is not None:
                lesion = cut_lesion(row["image"], row["mask"])
                if lesion is not None:
                    lesions.append(lesion)
        return cls(lesions, t2_share, t2_grow, t2_core_floor)

    def paste(self, host: Image.Image, rng: np.random.Generator,
              tries: int = 3) -> tuple[Image.Image, Image.Image] | None:
        """(RGB slice with a tumour in it, its 0/255 mask), or None when the host has no room for one
        (no head found, or `tries` lesions in a row too large for it)."""
        host_gray = gray(host)
        head = head_region(host_gray)
        if head.sum() < _MIN_HEAD_PIXELS:
            return None
        head_size, spread = float(np.sqrt(head.sum())), _spread(host_gray[head])
        for _ in range(tries):
            lesion = self.lesions[int(rng.integers(len(self.lesions)))]
            pasted = self._place(lesion, host_gray, head, head_size, spread, rng)
            if pasted is not None:
                return pasted
        return None

    def _place(self, lesion: Lesion, host_gray: np.ndarray, head: np.ndarray, head_size: float, spread: float,
               rng: np.random.Generator):
        # The style is drawn first only when T2-like pastes grow, so recipes without growth replay as before.
        t2_first = self._draw_t2(rng) if self.t2_grow > 1 else None
        # Same size relative to the head as in the donor, give or take a quarter.
        scale = head_size / lesion.head_size * rng.uniform(0.8, 1.25)
        if t2_first:
            scale *= rng.uniform(1, self.t2_grow)
        height, width = (max(3, round(n * scale)) for n in lesion.pixels.shape)
        pixels = cv2.resize(lesion.pixels, (width, height), interpolation=cv2.INTER_LINEAR)
        tumour = cv2.resize(lesion.mask.astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST)
        if rng.random() < 0.5:
            pixels, tumour = pixels[:, ::-1], tumour[:, ::-1]
        if rng.random() < 0.5:
            pixels, tumour = pixels[::-1], tumour[::-1]
        if tumour.sum() < _MIN_LESION_PIXELS or height >= host_gray.shape[0] or width >= host_gray.shape[1]:
            return None
        centres = (_centres_where_mask_fits(head, tumour, head_size) if t2_first
                   else _centres_inside_brain(head, height, width, head_size))
        centres = centres[(centres[:, 0] >= height // 2) & (centres[:, 0] < host_gray.shape[0] - (height + 1) // 2)
                          & (centres[:, 1] >= width // 2) & (centres[:, 1] < host_gray.shape[1] - (width + 1) // 2)]
        if not len(centres):
            return None
        row, col = centres[int(rng.integers(len(centres)))]
        box = slice(row - height // 2, row - height // 2 + height), slice(col - width // 2, col - width // 2 + width)

        tumour = tumour.astype(bool)
        t2_like = self._draw_t2(rng) if t2_first is None else t2_first
        if t2_like:
            out = _t2_like(host_gray, head, box, pixels, tumour, lesion, spread, rng, self.t2_core_floor)
        else:
            out = _contrast_at_random(host_gray, box, pixels, tumour, lesion, spread, rng)
        mask = np.zeros(host_gray.shape, np.uint8)
        mask[box] = tumour.astype(np.uint8) * 255
        rgb = np.repeat(np.round(out).astype(np.uint8)[..., None], 3, axis=2)
        return Image.fromarray(rgb), Image.fromarray(mask, mode="L")

    def _draw_t2(self, rng: np.random.Generator) -> bool:
        # No draw without a T2 share, so runs without one replay as before.
        return bool(self.t2_share) and rng.random() < self.t2_share


def _centres_inside_brain(head: np.ndarray, height: int, width: int, head_size: float) -> np.ndarray:
    """Centres that keep the lesion's box off the skull: the head eroded by half the box and a skull's width."""
    inset = int(max(height, width) / 2 + _SKULL_SHARE * head_size)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * inset + 1,) * 2)
    return np.argwhere(cv2.erode(head.astype(np.uint8), kernel) > 0)


def _centres_where_mask_fits(head: np.ndarray, tumour: np.ndarray, head_size: float) -> np.ndarray:
    """Centres (of the lesion's box) at which every tumour pixel lies inside the skull, i.e. in the head eroded by
    the scalp and skull margin: a large lesion finds room, and it may touch the skull. Counted by correlating the
    lesion with what lies outside (filter2D switches to the DFT for large kernels)."""
    inset = int(_SCALP_AND_SKULL_SHARE * head_size)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * inset + 1,) * 2)
    outside = (cv2.erode(head.astype(np.uint8), kernel) == 0).astype(np.float32)
    height, width = tumour.shape
    hits = cv2.filter2D(outside, -1, tumour.astype(np.float32), anchor=(width // 2, height // 2),
                        borderType=cv2.BORDER_CONSTANT)
    return np.argwhere(hits < 0.5)


def _soft_edge(tumour: np.ndarray) -> np.ndarray:
    """Full weight on the tumour, fading over a few pixels into the host."""
    sigma = max(1.0, 0.08 * np.sqrt(tumour.sum()))
    return np.clip(cv2.GaussianBlur(tumour.astype(np.float32), (0, 0), sigma) * 1.5, 0, 1)


def _tissue_level(around: np.ndarray, tumour: np.ndarray) -> float:
    """Median gray of the host around where the tumour goes (of the whole box when the tumour fills it)."""
    return float(np.median(around[~tumour])) if (~tumour).any() else float(np.median(around))


def _contrast_at_random(host_gray: np.ndarray, box, pixels: np.ndarray, tumour: np.ndarray, lesion: Lesion,
                        spread: float, rng: np.random.Generator) -> np.ndarray:
    """The lesion's contrast against its surroundings, in units of each head's gray-level spread, laid on
    the host's own tissue level there; polarity and gain at random."""
    target = host_gray[box]
    host_level = _tissue_level(target, tumour)
    gain = rng.uniform(0.7, 1.3) * (1.0 if rng.random() < 0.5 else -1.0)
    lesion_pixels = host_level + (pixels - lesion.background) / lesion.spread * spread * gain
    out = host_gray.copy()
    out[box] = np.clip(target + _soft_edge(tumour) * (lesion_pixels - target), 0, 255)
    return out


def _t2_like(host_gray: np.ndarray, head: np.ndarray, box, pixels: np.ndarray, tumour: np.ndarray, lesion: Lesion,
             spread: float, rng: np.random.Generator, core_floor: float = 1.0) -> np.ndarray:
    """The lesion as T2 and FLAIR show most tumours: the tissue around it pushed aside, a halo of oedema
    brighter than the tissue, and a core near the bright end of the host's head (fluid on T2), or with a
    `core_floor` below 1 anywhere from that share of the way there from the tissue, that keeps a fraction of
    the donor's texture."""
    full = np.zeros(host_gray.shape, bool)
    full[box] = tumour
    radius = float(np.sqrt(tumour.sum() / np.pi))
    centre = np.argwhere(full).mean(axis=0)
    out = _push_aside(host_gray, centre, radius, strength=rng.uniform(0.0, 0.4))
    tissue = _tissue_level(out[box], tumour)
    # Fluid's level on T2; on a head without bright fluid (T1), still well above the tissue.
    bright = max(float(np.percentile(host_gray[head], rng.uniform(90, 99.5))), tissue + rng.uniform(1.5, 3) * spread)

    # Oedema: brightens (never darkens) a band around the core whose width wanders with smooth noise.
    width = rng.uniform(0.1, 0.6) * radius
    if width >= 1:
        distance = cv2.distanceTransform((~full).astype(np.uint8), cv2.DIST_L2, 5)
        wander = cv2.GaussianBlur(rng.normal(0, 1, host_gray.shape).astype(np.float32), (0, 0), max(1.0, radius / 3))
        wander /= wander.std() + 1e-6
        halo = np.clip(1 - distance / (width * np.clip(1 + 0.5 * wander, 0.2, 2)), 0, 1) * head
        oedema = tissue + rng.uniform(0.3, 0.7) * (bright - tissue)
        out = out + halo * np.maximum(oedema - out, 0)

    # The donor's texture inside the tumour only: the soft edge fades the bright core, not the donor's tissue, out.
    texture = (pixels - np.median(pixels[tumour])) / lesion.spread * spread * rng.uniform(0.2, 0.5)
    # Drawn last, and only with a floor, so recipes without one replay as before.
    level = bright if core_floor == 1 else tissue + rng.uniform(core_floor, 1) * (bright - tissue)
    core = level + np.where(tumour, texture, 0)
    out[box] = np.clip(out[box] + _soft_edge(tumour) * (core - out[box]), 0, 255)
    return out


def _push_aside(gray_image: np.ndarray, centre: np.ndarray, radius: float, strength: float) -> np.ndarray:
    """The image with its content pushed radially away from `centre` (mass effect), most within about two
    lesion radii. Each pixel samples the image at centre + d (1 - strength exp(-d^2 / 2 s^2)): monotone
    along every ray for strength below 1, so nothing folds over."""
    rows, cols = np.indices(gray_image.shape, dtype=np.float32)
    d_row, d_col = rows - np.float32(centre[0]), cols - np.float32(centre[1])
    sigma = 1.5 * radius
    pull = np.float32(strength) * np.exp(-(d_row**2 + d_col**2) / np.float32(2 * sigma**2))
    return cv2.remap(gray_image.astype(np.float32), cols - pull * d_col, rows - pull * d_row, cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REPLICATE)


def label_shift_offset(notumor: int, tumours: int, share: float) -> float:
    """How far the no-tumour logit must move up, against the tumour logits, to undo the transplant's label shift.

    A transplant turns a `share` p of the N no-tumour training slices into tumours, so the model learns
    under priors (1 - p) N for no tumour and T + p N for the T tumour slices, and answers "tumour" too
    often on data with the real N : T. The Bayes-optimal answer under the real priors adds
    log(real prior / training prior) to each class's logit (label-shift correction; Saerens et al.,
    Neural Computation 2002). Assuming the pasted "some tumour" mass spreads over the tumour classes as
    the real tumours do, every tumour logit moves by log(T / (T + p N)) and the no-tumour logit by
    log(1 / (1 - p)); only their difference matters, log((T + p N) / ((1 - p) T)). A paste that finds no
    room leaves its slice a no-tumour one, so the real shift is slightly smaller than p says.
    """
    if not 0 <= share < 1:
        raise ValueError(f"The lesion transplant share must be from 0 to below 1, not {share}.")
    if notumor < 0 or tumours <= 0:
        raise ValueError(f"The label-shift correction needs tumour slices in training (got {tumours} tumour, "
                         f"{notumor} no-tumour).")
    return float(np.log((tumours + share * notumor) / ((1 - share) * tumours)))


def describe_transplant(share: float, donors: int, prior_offset: float | None = None, t2_share: float = 0.0,
                        t2_grow: float = 1.0, t2_core_floor: float = 1.0) -> str:
    """The model card's sentence on the transplant (and on the label-shift correction, when applied)."""
    correction = ("" if prior_offset is None else
                  f" After training, the no-tumour logit was moved up by {prior_offset:.3f} against the tumour logits "
                  "to undo the prior shift the transplant causes (label-shift correction, "
                  "`brain_tumor.transplant.label_shift_offset`), before the temperature was fitted.")
    t2_like = ("" if not t2_share else
               f" {t2_share * 100:.0f} % of the pastes are drawn as T2 and FLAIR show most tumours instead: the tissue "
               "around pushed aside (mass effect), an irregular bright halo of oedema, and a core near the bright "
               "end of the host's gray levels keeping a fraction of the donor's texture."
               + ("" if t2_grow == 1 else
                  f" These grow up to {t2_grow:g} times longer than the donor's size relative to the head and lie "
                  "wherever they fit inside the skull, against it too.")
               + ("" if t2_core_floor == 1 else
                  f" Their cores lie anywhere from {t2_core_floor * 100:.0f} % of the way from the tissue's gray level "
                  "to that bright end, up to it."))
    return (f"Lesion transplant: {share * 100:.0f} % of no-tumour training slices, drawn anew each epoch, get one of "
            f"{donors} expert-masked training tumours pasted inside the head (size relative to the head kept, "
            "contrast against the surrounding tissue rescaled to the host, polarity at random, soft edge) before "
            f"the augmentation above, and train as 'some tumour' (partial label) with the pasted mask.{t2_like}"
            f"{correction}")
