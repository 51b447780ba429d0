#!/usr/bin/env python
"""Write a small copy of the image collections, for training on a lent GPU machine.

Such a machine receives at most 64 MiB with the repository, so the collections under
../shared/data are copied with the same folder layout, as 8-bit grayscale JPEGs shrunk so that their
shorter side is at most `--size` pixels (masks as PNG, nearest neighbour, the same size as their
slice). Train at `--image_size` no larger than `--size`, so no training image is upscaled along
either axis: the image processor resizes a slice to a square, and a 216 x 369 BRISC slice shrunk by
its longer side (94 x 160) was stretched 1.7x across in training but shrunk at serving: a blur
that may have misled short-trained models (some two- and four-epoch models called far more BRISC
slices tumours on the original files than on that copy; others did not).

    python bench/pack_data.py --size 160 --output .data
"""

from __future__ import annotations

import argparse
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from PIL import Image

COLLECTIONS = ("brain-tumor-mri-v1", "br35h-2020", "brisc2025-no-tumor", "brain-tumor-mri-v1-masks")
SUFFIXES = {".jpg", ".jpeg", ".png"}


def shrink(job: tuple[Path, Path, int, int]) -> int:
    source, target, size, quality = job
    image = Image.open(source)
    is_mask = "masks" in source.parts[-4]
    image = image.convert("L")
    scale = min(1.0, size / min(image.size))
    new_size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    image = image.resize(new_size, Image.NEAREST if is_mask else Image.LANCZOS)
    target.parent.mkdir(parents=True, exist_ok=True)
    if is_mask:
        image.save(target.with_suffix(".png"), optimize=True)
    else:
        image.save(target, "JPEG", quality=quality)
    return target.stat().st_size if target.exists() else target.with_suffix(".png").stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", default="../shared/data", help="folder holding the collections")
    parser.add_argument("--output", default=".data", help="where the small copy is written")
    parser.add_argument("--size", type=int, default=160, help="shorter side in pixels (no axis is enlarged)")
    parser.add_argument("--quality", type=int, default=70, help="JPEG quality")
    parser.add_argument("--skip", action="append", default=[],
                        help="a sub-folder to leave out, e.g. br35h-2020/no (every image of it twins v1 notumor)")
    args = parser.parse_args()
    jobs = []
    for name in COLLECTIONS:
        root = Path(args.source) / name
        for path in sorted(root.rglob("*")):
            skipped = any(path.is_relative_to(Path(args.source) / s) for s in args.skip)
            if path.suffix.lower() in SUFFIXES and not skipped:
                jobs.append((path, Path(args.output) / name / path.relative_to(root), args.size, args.quality))
    with ProcessPoolExecutor() as pool:
        total = sum(pool.map(shrink, jobs, chunksize=64))
    print(f"{len(jobs)} files, {total / 2**20:.1f} MiB in {args.output}")


if __name__ == "__main__":
    main()
