#!/usr/bin/env python
"""Every copy of some slices in some collections: the same slice re-saved, re-contrasted or flipped.

The collections re-save one slice many times (Br35H, and v1's `notumor` built from it), so a doubtful
label is rarely one file. Given a few file names, this script fingerprints every image of the folders
(`duplicates.fingerprint_image`: 32 x 32 gray thumbnails, mean-centred, cosine) and lists each image whose
thumbnail or its mirror image reaches `--threshold` against any of them, most similar first. A looser
threshold than the twin audit's 0.99 (0.97 by default) also catches copies with other contrast; look at
what it lists before acting on it (`bench/label_audit.py` draws slices; `--exclude_files` of train_hf.py
leaves a list out of training).

    python bench/find_copies.py --folder ../shared/data/brain-tumor-mri-v1 --of Tr-no_0838.jpg Tr-no_0858.jpg
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.missed_gallery import contact_sheet  # noqa: E402
from bench.operating_points import RESULTS_DIR  # noqa: E402
from brain_tumor.data import image_files  # noqa: E402
from brain_tumor.duplicates import Fingerprints, find_twins, fingerprint_image  # noqa: E402


def copies(prints: Fingerprints, query: Fingerprints, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """(indices, similarity) of the images of `prints` at or above `threshold` against any `query` image or its
    mirror image (the twin audit's `find_twins`, at a looser threshold), most similar first."""
    similarity = find_twins(prints, query, threshold).best_similarity
    found = np.flatnonzero(similarity >= threshold)
    order = found[np.argsort(-similarity[found], kind="stable")]
    return order, similarity[order]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--folder", type=Path, nargs="+", required=True, help="collection folders to search")
    parser.add_argument("--of", nargs="+", required=True, help="file names (in those folders) whose copies to list")
    parser.add_argument("--threshold", type=float, default=0.97, help="cosine of thumbnails, mirror included")
    parser.add_argument("--output_name", default=None,
                        help="also write the list to bench/results/<name>.md and the copies, drawn, to <name>.png")
    args = parser.parse_args(argv)
    files = sorted(path for folder in args.folder for path in image_files(folder))
    index_of = {}
    for index, path in enumerate(files):
        index_of.setdefault(path.name, index)
    missing = [name for name in args.of if name not in index_of]
    if missing:
        parser.error(f"not found in {', '.join(map(str, args.folder))}: {', '.join(missing)}")
    hashes, vectors = zip(*(fingerprint_image(Image.open(path)) for path in files))
    prints = Fingerprints(list(hashes), np.stack(vectors))
    chosen = [index_of[name] for name in args.of]
    query = Fingerprints([prints.hashes[i] for i in chosen], prints.vectors[chosen])
    indices, similarity = copies(prints, query, args.threshold)
    lines = [f"{len(indices)} images of {len(files)} at cosine >= {args.threshold} (mirror included) to "
             f"{', '.join(args.of)}:"]
    lines += [f"{value:.3f}  {files[index]}" for index, value in zip(indices, similarity)]
    print("\n".join(lines))
    if args.output_name:
        command = "python bench/find_copies.py " + shlex.join(argv if argv is not None else sys.argv[1:])
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        (RESULTS_DIR / f"{args.output_name}.md").write_text(
            f"    {command}\n\n" + "\n".join([lines[0], ""] + [f"- {line}" for line in lines[1:]]) + "\n")
        captions = [f"{files[index].name} {value:.3f}" for index, value in zip(indices, similarity)]
        contact_sheet([Image.open(files[index]) for index in indices], captions).save(
            RESULTS_DIR / f"{args.output_name}.png")


if __name__ == "__main__":
    main()
