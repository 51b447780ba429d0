"""Measure the "is this a brain MRI slice?" check: false accepts on non-MRI images, false rejects
on the clean and the official test split.

    python bench/ood_check.py [--model FOLDER_OR_HUB_ID] [--limit N]
    python bench/ood_check.py --print-default-ranges   # the ranges in checks.DEFAULT_CHECKS

The non-MRI set is generated here, seeded, so every run measures the same images: the photos
shipped with scikit-learn (whole, grayscale, crops), rendered text documents (dark on light and
light on dark), noise, gradients, blank images, geometric patterns, and two *synthetic* medical-
looking kinds drawn from ellipses: a chest-X-ray-like and a head-CT-like image. The synthetic ones
are crude stand-ins, not real X-rays or CT; real ones would be a harder and better test.

A model without fitted checks (`brain_tumor_checks` in config.json) is measured with the defaults;
`python -m brain_tumor fit-checks MODEL DATASET` fits them on the same splits train_hf.py uses.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import DEFAULT_DATASET, load_test_sets  # noqa: E402
from brain_tumor import DEFAULT_MODEL  # noqa: E402
from brain_tumor.checks import fit_image_statistics  # noqa: E402
from brain_tumor.inference import Predictor  # noqa: E402
from brain_tumor.labels import CLASS_NAMES  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / DEFAULT_DATASET  # Training images for --print-default-ranges


# --- the non-MRI set -----------------------------------------------------------------------


def non_mri_images(seed: int = 0) -> list[tuple[str, Image.Image]]:
    """(category, image) pairs; categories are what the report groups by."""
    from sklearn.datasets import load_sample_images

    rng = np.random.default_rng(seed)
    out = []
    for photo in load_sample_images().images:
        img = Image.fromarray(photo)
        out += [("photo", img), ("photo_gray", img.convert("L"))]
        for _ in range(8):
            side = int(rng.integers(120, min(img.size)))
            x, y = int(rng.integers(0, img.width - side)), int(rng.integers(0, img.height - side))
            crop = img.crop((x, y, x + side, y + side)).resize((224, 224))
            out += [("photo_crop", crop), ("photo_crop_gray", crop.convert("L"))]
    for i in range(8):
        out.append(("document", _document(rng, dark_on_light=True, size=int(14 + 3 * i))))
        out.append(("document_inverted", _document(rng, dark_on_light=False, size=int(14 + 3 * i))))
    for i in range(4):
        out.append(("noise_uniform", Image.fromarray(rng.integers(0, 256, (224, 224), dtype=np.uint8))))
        gauss = np.clip(rng.normal(60 + 40 * i, 40, (224, 224)), 0, 255).astype(np.uint8)
        out.append(("noise_gaussian", Image.fromarray(gauss)))
        colour = rng.integers(0, 256, (224, 224, 3), dtype=np.uint8)
        out.append(("noise_colour", Image.fromarray(colour)))
        blurred = Image.fromarray(rng.integers(0, 256, (224, 224), dtype=np.uint8))
        blurred = blurred.filter(ImageFilter.GaussianBlur(3 + 3 * i))
        out.append(("noise_smooth", blurred))
    ramp = np.linspace(0, 255, 224)
    out.append(("gradient", Image.fromarray(np.tile(ramp, (224, 1)).astype(np.uint8))))
    out.append(("gradient", Image.fromarray(np.tile(ramp[:, None], (1, 224)).astype(np.uint8))))
    yy, xx = np.mgrid[:224, :224]
    radius = np.hypot(xx - 112, yy - 112)
    out.append(("gradient", Image.fromarray((255 * np.clip(1 - radius / 160, 0, 1)).astype(np.uint8))))
    out.append(("gradient", Image.fromarray((255 * np.clip(radius / 160, 0, 1)).astype(np.uint8))))
    for value in (0, 1, 128, 255):
        out.append(("blank", Image.new("L", (224, 224), value)))
    out.append(("pattern", _checkerboard(16)))
    out.append(("pattern", _checkerboard(56)))
    out.append(("pattern", _shapes(rng)))
    out.append(("pattern", _shapes(rng, dark=True)))
    for i in range(4):
        out.append(("synthetic_xray", _chest_xray_like(rng, i)))
        out.append(("synthetic_ct", _head_ct_like(rng, i)))
    return out


def _document(rng, dark_on_light: bool, size: int) -> Image.Image:
    background, ink = (250, 20) if dark_on_light else (10, 235)
    img = Image.new("L", (224, 224), background)
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=size)
    words = "patient report scan result normal follow up contrast axial slice findings the of and".split()
    y = 8
    while y < 210:
        line = " ".join(rng.choice(words, size=6))
        draw.text((8, y), line, fill=ink, font=font)
        y += size + 6
    return img


def _checkerboard(cell: int) -> Image.Image:
    yy, xx = np.mgrid[:224, :224]
    return Image.fromarray((((yy // cell + xx // cell) % 2) * 255).astype(np.uint8))


def _shapes(rng, dark: bool = False) -> Image.Image:
    img = Image.new("L", (224, 224), 0 if dark else 255)
    draw = ImageDraw.Draw(img)
    for _ in range(12):
        x0, y0 = rng.integers(0, 180, 2)
        w, h = rng.integers(10, 60, 2)
        fill = int(rng.integers(0, 256))
        shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
        shape((int(x0), int(y0), int(x0 + w), int(y0 + h)), fill=fill)
    return img


def _chest_xray_like(rng, i: int) -> Image.Image:
    """Crude: a bright torso filling the frame, two dark lungs, rib arcs, a spine; blurred."""
    img = Image.new("L", (224, 224), int(rng.integers(20, 60)))
    draw = ImageDraw.Draw(img)
    draw.ellipse((-30, 10, 254, 260), fill=190)
    draw.ellipse((30, 40, 105, 190), fill=70 + 10 * i)
    draw.ellipse((119, 40, 194, 190), fill=70 + 10 * i)
    for k in range(7):
        y = 50 + 20 * k
        draw.arc((25, y - 10, 110, y + 25), 180, 360, fill=160, width=3)
        draw.arc((114, y - 10, 199, y + 25), 180, 360, fill=160, width=3)
    draw.rectangle((104, 0, 120, 224), fill=220)
    img = img.filter(ImageFilter.GaussianBlur(2))
    noise = rng.normal(0, 6, (224, 224))
    return Image.fromarray(np.clip(np.asarray(img, dtype=float) + noise, 0, 255).astype(np.uint8))


def _head_ct_like(rng, i: int) -> Image.Image:
    """Crude: black air, a white skull ring, uniform gray brain, dark ventricles (CT windowing)."""
    img = Image.new("L", (224, 224), 0)
    draw = ImageDraw.Draw(img)
    a, b = 80 + 4 * i, 100 + 3 * i
    draw.ellipse((112 - a, 112 - b, 112 + a, 112 + b), fill=250)
    draw.ellipse((112 - a + 9, 112 - b + 9, 112 + a - 9, 112 + b - 9), fill=105)
    draw.ellipse((95, 85, 108, 130), fill=40)
    draw.ellipse((116, 85, 129, 130), fill=40)
    img = img.filter(ImageFilter.GaussianBlur(1))
    noise = rng.normal(0, 5, (224, 224))
    return Image.fromarray(np.clip(np.asarray(img, dtype=float) + noise, 0, 255).astype(np.uint8))


# --- measurement ---------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=DEFAULT_MODEL, help="model folder or Hub id (default: the embedded model)")
    parser.add_argument("--limit", type=int, default=None,
                        help="measure false rejects on a seeded sample of N test images")
    parser.add_argument("--print-default-ranges", action="store_true",
                        help="print image-statistics ranges fitted on all of Training")
    parser.add_argument("--save-checks", default=None, help="write the checks used to this JSON file")
    args = parser.parse_args()

    if args.print_default_ranges:
        fitted = fit_image_statistics(Image.open(p) for p in sorted((DATA / "Training").glob("*/*.jpg")))
        print(json.dumps(fitted, indent=2))
        return

    started = time.time()
    predictor = Predictor.from_pretrained(args.model)
    if args.save_checks:
        Path(args.save_checks).write_text(json.dumps(predictor.checks))
    has_features = bool(predictor.checks.get("feature_distance"))
    print(f"model: {args.model}")
    stage = "on" if has_features else "off (not fitted)"
    print(f"checks: {predictor.checks.get('source')}; feature-distance stage: {stage}")

    # False accepts: a non-MRI image passed both stages.
    items = non_mri_images()
    predictions = predictor.predict_batch([img for _, img in items])
    accepted, total = Counter(), Counter()
    stage_hits = Counter()
    for (category, _), pred in zip(items, predictions):
        total[category] += 1
        accepted[category] += not pred.not_mri
        stats_reasons = [r for r in pred.not_mri_reasons if "internal features" not in r]
        stage_hits["image statistics"] += bool(stats_reasons)
        stage_hits["feature distance"] += len(stats_reasons) < len(pred.not_mri_reasons)
    print(f"\nnon-MRI images: {len(items)} in {len(total)} categories")
    for category in total:
        print(f"  {category:20s} false accepts {accepted[category]:3d} / {total[category]:3d}")
    far = sum(accepted.values()) / len(items)
    print(f"  refused by stage: {dict(stage_hits)} (an image can be refused by both)")

    # False rejects: a real test scan called "not a brain MRI slice".
    print(f"\nFALSE-ACCEPT RATE (non-MRI called MRI): {far:.1%} ({sum(accepted.values())}/{len(items)})")
    test_sets = load_test_sets(DEFAULT_DATASET, args.limit, seed=0)
    # The clean test is a subset of the official test: predict every file once.
    paths = list(dict.fromkeys(path for test_set in test_sets.values() for path in test_set.paths))
    prediction_of = dict(zip(paths, predictor.predict_batch(paths)))
    for split, test_set in reversed(test_sets.items()):
        test_x, test_y = test_set.paths, [CLASS_NAMES[i] for i in test_set.labels]
        test_predictions = [prediction_of[path] for path in test_x]
        rejected = Counter(y for y, pred in zip(test_y, test_predictions) if pred.not_mri)
        counts = Counter(test_y)
        uncertain = sum(pred.uncertain for pred in test_predictions) / len(test_x)
        print(f"\n{split}: {len(test_x)} scans")
        for label in sorted(counts):
            print(f"  {label:12s} false rejects {rejected[label]:3d} / {counts[label]:3d}")
        print(f"  flagged uncertain: {uncertain:.1%}")
        print(f"FALSE-REJECT RATE on {split} (MRI called non-MRI): {sum(rejected.values()) / len(test_x):.1%} "
              f"({sum(rejected.values())}/{len(test_x)})")
    print(f"({time.time() - started:.0f} s)")


if __name__ == "__main__":
    main()
