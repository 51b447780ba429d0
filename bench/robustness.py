"""Clean-test accuracy under the differences other MRI collections show (issue 3).

    python bench/robustness.py --model models/brain-tumor-mri-classifier --peer
    python bench/robustness.py --model runs/resnet-scratch --model runs/mobilenet-v2-finetuned
    python bench/robustness.py --model runs/smoke --limit 40                     # quick check

Each clean-test image is read from its file, perturbed in memory and given to the model as a PIL
image: other sizes and aspect ratios, RGB-encoded grayscale, JPEG quality, contrast, brightness,
burnt-in text, small rotations and 90 % crops. Every perturbation is deterministic: the random
ones draw from a generator seeded by (--seed, perturbation, file name), so a --limit subset sees
the same perturbed images as the full run. Prints accuracy and the drop in percentage points
(unperturbed minus perturbed: positive = worse) and writes bench/results/robustness.md and .json.
"""

from __future__ import annotations

import argparse
import io
import random
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import (  # noqa: E402
    Stopwatch, add_common_arguments, load_test_sets, machine_info, machine_line, markdown_table,
    predictor_factories, print_machine, write_results,
)
from brain_tumor.augment_ops import burn_in_text  # noqa: E402


def reencode_jpeg(image: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue()))


def rgb_tinted(image: Image.Image) -> Image.Image:
    """Grayscale stored as RGB, as many PACS exports do, with a faint warm tint, saved as JPEG."""
    gray = np.asarray(image.convert("L"), dtype=np.float32)[..., None]
    rgb = gray * np.array([1.0, 0.97, 0.93]) + np.array([4.0, 2.0, 0.0])
    return reencode_jpeg(Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8), "RGB"), quality=95)


def crop(image: Image.Image, fraction: float, rng: random.Random | None) -> Image.Image:
    """A crop of `fraction` of each side: centred, or (with rng) pushed into a random corner."""
    width, height = image.size
    crop_width, crop_height = round(width * fraction), round(height * fraction)
    if rng is None:
        left, top = (width - crop_width) // 2, (height - crop_height) // 2
    else:
        left, top = rng.choice((0, width - crop_width)), rng.choice((0, height - crop_height))
    return image.crop((left, top, left + crop_width, top + crop_height))


# name -> f(image, rng); rng is seeded per perturbation and file, used only where a choice is random.
PERTURBATIONS = {
    "upscale 512x512": lambda im, rng: im.resize((512, 512), Image.BICUBIC),
    "stretch 320x240": lambda im, rng: im.resize((320, 240), Image.BICUBIC),
    "downscale 128x128": lambda im, rng: im.resize((128, 128), Image.BICUBIC),
    "RGB-encoded gray, tinted": lambda im, rng: rgb_tinted(im),
    "JPEG quality 30": lambda im, rng: reencode_jpeg(im, 30),
    "JPEG quality 50": lambda im, rng: reencode_jpeg(im, 50),
    "JPEG quality 95": lambda im, rng: reencode_jpeg(im, 95),
    "contrast x0.7": lambda im, rng: ImageEnhance.Contrast(im).enhance(0.7),
    "contrast x1.3": lambda im, rng: ImageEnhance.Contrast(im).enhance(1.3),
    "brightness -20%": lambda im, rng: ImageEnhance.Brightness(im).enhance(0.8),
    "brightness +20%": lambda im, rng: ImageEnhance.Brightness(im).enhance(1.2),
    "burnt-in text": lambda im, rng: Image.fromarray(burn_in_text(np.asarray(im.convert("RGB")), rng)),
    "rotate +10 deg": lambda im, rng: im.rotate(10, resample=Image.BILINEAR, fillcolor=0),
    "rotate -10 deg": lambda im, rng: im.rotate(-10, resample=Image.BILINEAR, fillcolor=0),
    "crop 90% centred": lambda im, rng: crop(im, 0.9, None),
    "crop 90% off-centre": lambda im, rng: crop(im, 0.9, rng),
}


def accuracy_under(predictor, images: list, names: list[str], labels: np.ndarray, perturbation, key: str,
                   seed: int, batch_size: int) -> float:
    """Accuracy on perturbed copies, made a few batches at a time so upscaled copies stay small."""
    predictions = []
    for start in range(0, len(images), 4 * batch_size):
        chunk = [perturbation(image, random.Random(f"{seed}:{key}:{name}"))
                 for image, name in zip(images[start:start + 4 * batch_size], names[start:start + 4 * batch_size])]
        predictions.append(predictor.predict(chunk, batch_size).argmax(axis=1))
    return float(np.mean(np.concatenate(predictions) == labels))


def render(results: dict, machine: dict, n_images: int, args) -> str:
    names = list(results)
    header = ["perturbation"] + [f"{name} {column}" for name in names for column in ("accuracy", "drop (points)")]
    rows = [["none (unperturbed)"] + [cell for name in names for cell in (f"{results[name]['none']:.4f}", "")]]
    for key in PERTURBATIONS:
        rows.append([key] + [cell for name in names for cell in (
            f"{results[name][key]:.4f}", f"{100 * (results[name]['none'] - results[name][key]):+.1f}")])
    rows.append(["largest drop"] + [cell for name in names for cell in (
        "", f"{100 * (results[name]['none'] - min(results[name][k] for k in PERTURBATIONS)):+.1f}")])
    return "\n".join([
        "# Robustness: clean-test accuracy under perturbations", "",
        f"Command: `python bench/{Path(__file__).name} {' '.join(sys.argv[1:])}`  ",
        machine_line(machine) + "  ",
        f"Clean test: {n_images} images" + (f" (seeded subset, --limit {args.limit})" if args.limit else "")
        + f"; perturbation seed {args.seed}. Drop = unperturbed minus perturbed accuracy, in percentage "
        "points (positive = worse). Target for our models: every drop <= 2 points.", "",
        markdown_table(header, rows),
    ])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_common_arguments(parser)
    args = parser.parse_args(argv)

    machine = machine_info()
    print_machine(machine)
    clean_test = load_test_sets(args.dataset, args.limit, args.seed)["clean_test"]
    images = []
    for path in clean_test.paths:
        image = Image.open(path)
        image.load()  # decode once; every perturbation starts from these pixels
        images.append(image)
    names = [Path(path).name for path in clean_test.paths]
    print(f"Clean test: {len(images)} images", flush=True)

    results = {}
    for make_predictor in predictor_factories(args):
        predictor = make_predictor()
        print(f"\n== {predictor.name} ({predictor.source})", flush=True)
        accuracies = {}
        for key, perturbation in {"none": lambda im, rng: im, **PERTURBATIONS}.items():
            with Stopwatch() as watch:
                accuracies[key] = accuracy_under(predictor, images, names, clean_test.labels, perturbation, key,
                                                 args.seed, args.batch_size)
            drop = "" if key == "none" else f", drop {100 * (accuracies['none'] - accuracies[key]):+.1f} points"
            print(f"  {key:<26} accuracy {accuracies[key]:.4f}{drop}  ({watch.seconds:.1f} s)", flush=True)
        results[predictor.name] = accuracies
        del predictor

    markdown = render(results, machine, len(images), args)
    print("\n" + markdown)
    payload = {"machine": machine, "argv": sys.argv[1:], "limit": args.limit, "seed": args.seed,
               "clean_test_images": len(images), "accuracy": results,
               "drop_points": {name: {key: 100 * (acc["none"] - acc[key]) for key in PERTURBATIONS}
                               for name, acc in results.items()}}
    write_results(args.output_name or "robustness", payload, markdown)


if __name__ == "__main__":
    main()
