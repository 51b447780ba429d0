#!/usr/bin/env python
"""What a leave-one-out model misses: the held-out tumour slices it is surest are normal, as one picture.

A recall figure says how many held-out tumours a model misses, not which. This script scores every
held-out tumour slice of a leave-one-out run (P(tumour) = 1 - P(notumor), as `operating_points.py`
does), and writes:
- `<output_name>.png`: the `--count` slices with the lowest P(tumour), each captioned with its file
  name and P(tumour), so a reader sees at a glance what kind of tumour the model does not know;
- `<output_name>.md`: how the held-out slices spread over P(tumour), and the file names of those shown.
With `--compare_with` another run's `.md`, it also says how many of the slices shown there this model
still misses (did a change of recipe find the tumours an earlier run was surest were normal?).
Splits come from the model's data_recipe.json, cut as training cut them.

    python bench/missed_gallery.py --model runs/loo_cpu_mirror/loo/mnv2-aug-mask-transplant-prior-e8 \
        --output_name missed_mirror_e8_cpu
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageOps

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.operating_points import RESULTS_DIR, leave_one_out_run, predict, slices_where  # noqa: E402
from brain_tumor.inference import TUMOUR_MORE_LIKELY  # noqa: E402

# Edges of the P(tumour) bins the report counts held-out tumours in: sure misses, misses, found.
BIN_EDGES = (0.0, 0.05, TUMOUR_MORE_LIKELY, 1.0)
# Written before the shown slices' captions in the .md, and read back by --compare_with.
SHOWN_LIST_STARTS = "lowest first: "


def surest_misses(p_tumour: np.ndarray, count: int) -> np.ndarray:
    """Indices of the `count` slices with P(tumour) below TUMOUR_MORE_LIKELY (misses by the app's verdict),
    lowest P(tumour) first."""
    order = np.argsort(p_tumour, kind="stable")
    return order[p_tumour[order] < TUMOUR_MORE_LIKELY][:count]


def spread(p_tumour: np.ndarray) -> list[tuple[str, int, float]]:
    """(bin, count, share) of held-out tumours in each P(tumour) bin of BIN_EDGES (numpy closes the last bin)."""
    counts, _ = np.histogram(p_tumour, bins=BIN_EDGES)
    names = [f"{low:.2f} <= P(tumour) {'<=' if high == BIN_EDGES[-1] else '<'} {high:.2f}"
             for low, high in zip(BIN_EDGES[:-1], BIN_EDGES[1:])]
    return [(name, int(n), float(n / max(len(p_tumour), 1))) for name, n in zip(names, counts)]


def shown_in(gallery_md: str) -> list[str]:
    """The file names a gallery `.md` lists as shown (its captions: 'name P(tumour)', comma-separated, on one line;
    a comparison the gallery carries follows on lines of its own)."""
    listed = gallery_md.split(SHOWN_LIST_STARTS, 1)[1].split("\n", 1)[0].strip().rstrip(".")
    return [caption.rsplit(" ", 1)[0] for caption in listed.split(", ")]


def rescored(names: list[str], file_names: list[str], p_tumour: np.ndarray) -> list[tuple[str, float]]:
    """(name, this model's P(tumour)) for each of `names`, matched on the file name alone."""
    by_name = {Path(path).name: float(p) for path, p in zip(file_names, p_tumour)}
    missing = [name for name in names if name not in by_name]
    if missing:
        raise SystemExit(f"--compare_with lists slices this run's held-out set lacks: {', '.join(missing[:5])}")
    return [(name, by_name[name]) for name in names]


def contact_sheet(images: list[Image.Image], captions: list[str], columns: int = 8, tile: int = 160) -> Image.Image:
    """The images as one gray grid of `tile`-pixel squares (aspect kept, padded), a caption on each."""
    rows = max(1, -(-len(images) // columns))
    sheet = Image.new("L", (columns * tile, rows * tile))
    for index, (image, caption) in enumerate(zip(images, captions)):
        square = ImageOps.pad(image.convert("L"), (tile, tile))
        ImageDraw.Draw(square).text((2, 2), caption, fill=255)
        sheet.paste(square, ((index % columns) * tile, (index // columns) * tile))
    return sheet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a leave-one-out model folder")
    parser.add_argument("--count", type=int, default=40, help="how many missed slices to show")
    parser.add_argument("--output_name", default="missed_gallery", help="file name stem under bench/results/")
    parser.add_argument("--compare_with", type=Path, default=None,
                        help="another run's gallery .md: how many of the slices it shows this model still misses")
    args = parser.parse_args()
    if args.count < 1:
        parser.error(f"--count must be at least 1, not {args.count}.")

    recipe, splits, predictor = leave_one_out_run(args.model)
    held = slices_where(splits.held_out, tumour=True)
    p_tumour, _ = predict(predictor, held)
    shown = surest_misses(p_tumour, args.count)
    misses = held.select(shown)
    captions = [f"{Path(name).name or f'#{i}'} {p_tumour[i]:.3f}"  # rows of a Hub dataset have no file name
                for i, name in zip(shown, misses["file_name"])]
    sheet = contact_sheet(misses["image"], captions)

    lines = [f"`{args.model}`: {len(held)} held-out tumour slices of {', '.join(recipe['held_out'])}, "
             "by P(tumour) = 1 - P(notumor).", "", "| P(tumour) | slices | share |", "|---|---|---|"]
    lines += [f"| {name} | {n} | {share:.3f} |" for name, n, share in spread(p_tumour)]
    lines += ["", f"`{args.output_name}.png` shows the {len(shown)} with the lowest P(tumour), {SHOWN_LIST_STARTS}"
                  + ", ".join(captions) + "."]
    if args.compare_with:
        again = rescored(shown_in(args.compare_with.read_text()), held["file_name"], p_tumour)
        still = [f"{name} {p:.3f}" for name, p in again if p < TUMOUR_MORE_LIKELY]
        lines += ["", f"Of the {len(again)} slices `{args.compare_with.name}` shows, this model still misses {len(still)} "
                      f"(P(tumour) < {TUMOUR_MORE_LIKELY}): " + (", ".join(still) or "none") + "."]
    text = "\n".join(lines) + "\n"
    print(text)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    sheet.save(RESULTS_DIR / f"{args.output_name}.png")
    (RESULTS_DIR / f"{args.output_name}.md").write_text(text)


if __name__ == "__main__":
    main()
