"""Contact sheets of the training augmentation on real slices, to check by eye that they stay plausible MRI.

    python bench/augment_examples.py --out /tmp/augment            # writes groups.png and samples.png

groups.png: one row per slice; the original, then each named group applied on its own (always).
samples.png: one row per slice; the original, then draws of the default pipeline (each group at
its own probability), as training sees them. Pixels are shown before normalisation. With --masks,
each tumour mask that exists is carried through the same draws and its outline drawn in red, to
check by eye that it stays on the lesion.
transplant.png (with --masks): one row per no-tumour slice; the original, then draws of the lesion
transplant (brain_tumor/transplant.py, donors: the masked tumour slices of --dataset's Training/),
each followed by the same draw with the pasted mask outlined. --t2_share draws that share of the
pastes as T2 and FLAIR show tumours (train_hf.py --transplant_t2_share): 1 shows only those; --t2_grow
lets those grow and lie against the skull (--transplant_t2_grow); --t2_core_floor dims their cores
(--transplant_t2_core_floor).
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from brain_tumor.augment import AUGMENTATIONS, DEFAULT_AUGMENTATIONS, build_pipeline  # noqa: E402
from brain_tumor.transplant import LesionBank, cut_lesion  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]


def pick_slices(training: Path, per_class: int, seed: int) -> list[Path]:
    rng = random.Random(seed)
    return [path for folder in sorted(p for p in training.iterdir() if p.is_dir())
            for path in rng.sample(sorted(folder.iterdir()), per_class)]


def outlined(image: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    if mask is None:
        return image
    edge = (mask > 0) & ~(cv2.erode((mask > 0).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0)
    out = image.copy()
    out[edge] = (255, 0, 0)
    return out


def sheet(rows: list[list[np.ndarray]], headers: list[str], size: int) -> Image.Image:
    band = 16
    canvas = Image.new("RGB", (size * len(headers), band + size * len(rows)), (255, 255, 255))
    draw, font = ImageDraw.Draw(canvas), ImageFont.load_default(size=11)
    for column, header in enumerate(headers):
        draw.text((column * size + 3, 2), header, fill=(0, 0, 0), font=font)
    for r, row in enumerate(rows):
        for column, tile in enumerate(row):
            canvas.paste(Image.fromarray(tile), (column * size, band + r * size))
    return canvas


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="../shared/data/brain-tumor-mri-v1",
                        help="Kaggle-layout folder (its Training/ is sampled) or a folder of class folders; "
                             "relative to the repository root")
    parser.add_argument("--masks", default=None,
                        help="folder of masks mirroring --dataset (e.g. ../shared/data/brain-tumor-mri-v1-masks)")
    parser.add_argument("--out", required=True, help="folder for groups.png and samples.png")
    parser.add_argument("--t2_share", type=float, default=0.0,
                        help="share of the transplant.png pastes drawn T2-like (as --transplant_t2_share)")
    parser.add_argument("--t2_grow", type=float, default=1.0,
                        help="how much longer T2-like pastes may grow, placed where they fit (as --transplant_t2_grow)")
    parser.add_argument("--t2_core_floor", type=float, default=1.0,
                        help="lowest T2-like core level, as a share from tissue to fluid (as --transplant_t2_core_floor)")
    parser.add_argument("--per_class", type=int, default=1)
    parser.add_argument("--samples", type=int, default=10, help="default-pipeline draws per slice")
    parser.add_argument("--size", type=int, default=144)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    root = (REPO_ROOT / args.dataset).resolve()
    paths = pick_slices(root / "Training" if (root / "Training").is_dir() else root, args.per_class, args.seed)
    images = [np.asarray(Image.open(path).convert("RGB")) for path in paths]
    masks = [find_mask(path, root, args.masks) for path in paths]
    original = build_pipeline((), args.size, args.size)

    def show(image, mask=None, pipeline=original):
        if mask is None:
            return pipeline(image=image)["image"]
        out = pipeline(image=image, mask=mask)
        return outlined(out["image"], out["mask"])

    groups = [[show(image)] + [build_pipeline((name,), args.size, args.size, seed=args.seed + i, always=True)(
        image=image)["image"] for name in AUGMENTATIONS] for i, image in enumerate(images)]
    sheet(groups, ["original", *AUGMENTATIONS], args.size).save(out / "groups.png")
    pipeline = build_pipeline(DEFAULT_AUGMENTATIONS, args.size, args.size, seed=args.seed)
    samples = [[show(image, mask)] + [show(image, mask, pipeline) for _ in range(args.samples)]
               for image, mask in zip(images, masks)]
    sheet(samples, ["original"] + [f"draw {i + 1}" for i in range(args.samples)], args.size).save(out / "samples.png")
    print("\n".join(f"{path.parent.name}/{path.name}" for path in paths))
    print(f"wrote {out / 'groups.png'} and {out / 'samples.png'}")
    if args.masks:
        transplant_sheet(root, args, out / "transplant.png")


def transplant_sheet(root: Path, args, path: Path, hosts: int = 8, draws: int = 4, donors: int = 300) -> None:
    training = root / "Training" if (root / "Training").is_dir() else root
    tumours = [p for p in pick_slices(training, donors // 3, args.seed) if p.parent.name != "notumor"]
    lesions = [cut_lesion(Image.open(p), Image.fromarray(m)) for p in tumours
               if (m := find_mask(p, root, args.masks)) is not None]
    bank = LesionBank([lesion for lesion in lesions if lesion is not None], args.t2_share, args.t2_grow,
                      args.t2_core_floor)
    rng, resize = np.random.default_rng(args.seed), build_pipeline((), args.size, args.size)
    rows = []
    for host_path in random.Random(args.seed).sample(sorted((training / "notumor").iterdir()), hosts):
        host = Image.open(host_path)
        row = [resize(image=np.asarray(host.convert("RGB")))["image"]]
        for _ in range(draws):
            pasted = bank.paste(host, rng)
            if pasted is None:
                row += [np.zeros((args.size, args.size, 3), np.uint8)] * 2
                continue
            out = resize(image=np.asarray(pasted[0]), mask=np.asarray(pasted[1]))
            row += [out["image"], outlined(out["image"], out["mask"])]
        rows.append(row)
    headers = ["no tumour"] + [text for i in range(draws) for text in (f"pasted {i + 1}", "its mask")]
    sheet(rows, headers, args.size).save(path)
    print(f"wrote {path} ({len(bank.lesions)} donor lesions)")


def find_mask(path: Path, root: Path, masks: str | None) -> np.ndarray | None:
    if masks is None:
        return None
    mask_path = ((REPO_ROOT / masks).resolve() / path.relative_to(root)).with_suffix(".png")
    return np.asarray(Image.open(mask_path).convert("L")) if mask_path.exists() else None


if __name__ == "__main__":
    main()
