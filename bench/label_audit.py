#!/usr/bin/env python
"""Which "no tumour" labels does a model doubt? The no-tumour slices of every split, ranked by P(tumour).

A no-tumour slice the model calls a tumour is either a false alarm or a label error, and figures alone
cannot tell which. This script scores every no-tumour slice of a model's splits (training, validation,
official test; every collection of its data_recipe.json, cut as training cut them) and writes:
- `<output_name>.md`: per collection and split, how many no-tumour slices it holds and how many the model
  finds "more likely a tumour than not" (P(tumour) = 1 - P(notumor) > 0.5, the app's reading); then the
  `--count` slices with the highest P(tumour), each with its collection, split and P(tumour);
- `<output_name>.png`: those slices as one picture, highest first, for a reader (ideally a radiologist)
  to judge by eye.
A slice in the training split was learnt as "no tumour", so a high P(tumour) there is the model disagreeing
with its own training label: worth a look before the next training run. Nothing here changes a label.

    python bench/label_audit.py --output_name label_audit_default_mnv2      # from the repository root
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from datasets import concatenate_datasets

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import REPO_ROOT  # noqa: E402
from bench.missed_gallery import contact_sheet  # noqa: E402
from bench.operating_points import RESULTS_DIR, predict, slices_where  # noqa: E402
from brain_tumor import DEFAULT_MODEL  # noqa: E402
from brain_tumor.inference import TUMOUR_MORE_LIKELY, Predictor  # noqa: E402
from brain_tumor.recipe import load_splits, read_recipe  # noqa: E402

SPLIT_NAMES = ("train", "validation", "official_test")
CHUNK = 256  # slices decoded at once


def doubted(p_tumour: np.ndarray, count: int) -> np.ndarray:
    """Indices of the `count` slices with the highest P(tumour), highest first (ties in input order)."""
    return np.argsort(-p_tumour, kind="stable")[:count]


def counts_by_group(collections: list[str], splits: list[str], p_tumour: np.ndarray) -> list[list]:
    """[collection, split, slices, slices with P(tumour) > TUMOUR_MORE_LIKELY, their share] per group, in
    order of first appearance."""
    rows = []
    keys = list(dict.fromkeys(zip(collections, splits)))
    for collection, split in keys:
        where = (np.asarray(collections) == collection) & (np.asarray(splits) == split)
        above = int(np.sum(p_tumour[where] > TUMOUR_MORE_LIKELY))
        rows.append([collection, split, int(where.sum()), above, above / max(int(where.sum()), 1)])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(Path(DEFAULT_MODEL).relative_to(REPO_ROOT)),
                        help="a model folder with a data_recipe.json (default: the embedded model)")
    parser.add_argument("--count", type=int, default=48, help="how many doubted slices to list and show")
    parser.add_argument("--output_name", default="label_audit", help="file name stem under bench/results/")
    args = parser.parse_args()
    if args.count < 1:
        parser.error(f"--count must be at least 1, not {args.count}.")
    recipe = read_recipe(args.model)
    if recipe is None:
        raise SystemExit(f"{args.model}: needs a data_recipe.json (written by train_hf.py) to know its splits.")

    splits, predictor = load_splits(recipe), Predictor.from_pretrained(args.model, device="cpu")
    parts = [slices_where(getattr(splits, split_name), tumour=False) for split_name in SPLIT_NAMES]
    normal = concatenate_datasets(parts)
    split_names = [split_name for split_name, part in zip(SPLIT_NAMES, parts) for _ in range(len(part))]
    collections, file_names = normal["collection"], [Path(name).name for name in normal["file_name"]]
    # Decoded a chunk at a time: holding every no-tumour image at once would take gigabytes.
    p_tumour = np.concatenate([predict(predictor, normal.select(range(start, min(start + CHUNK, len(normal)))))[0]
                               for start in range(0, len(normal), CHUNK)] or [np.zeros(0)])

    shown = doubted(p_tumour, args.count)
    captions = [f"{file_names[i]} {p_tumour[i]:.2f}" for i in shown]
    lines = [f"`{args.model}`: every no-tumour slice of its splits ({', '.join(SPLIT_NAMES)}), by P(tumour) = "
             "1 - P(notumor).", "",
             f"| collection | split | no-tumour slices | P(tumour) > {TUMOUR_MORE_LIKELY} | share |", "|---|---|---|---|---|"]
    lines += [f"| {c} | {s} | {n} | {above} | {share:.3f} |"
              for c, s, n, above, share in counts_by_group(collections, split_names, p_tumour)]
    lines += ["", f"The {len(shown)} with the highest P(tumour), highest first (`{args.output_name}.png` shows them "
                  "in this order):", "", "| # | file | collection | split | P(tumour) |", "|---|---|---|---|---|"]
    lines += [f"| {rank} | {file_names[i]} | {collections[i]} | {split_names[i]} | {p_tumour[i]:.3f} |"
              for rank, i in enumerate(shown, 1)]
    text = "\n".join(lines) + "\n"
    print(text)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    contact_sheet(normal.select(shown).with_format(None)["image"], captions).save(RESULTS_DIR / f"{args.output_name}.png")
    (RESULTS_DIR / f"{args.output_name}.md").write_text(text)


if __name__ == "__main__":
    main()
