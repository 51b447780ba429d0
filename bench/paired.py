#!/usr/bin/env python
"""Two models on the same test slices: is the gap between them larger than chance?

Reads two JSON files written by `bench/collections_eval.py` (their `answers`: each slice's label and
answer) and compares the models on the slices both scored, in one split of one collection:
- each model's accuracy with its 95 % Wilson interval (how far the figure can move on this many slices);
- the slices only one of them gets right, and the exact McNemar test on them (a two-sided binomial
  test of "each of those slices is equally likely to favour either model"), which is the paired test
  for two models on one test set.

A slice counts as right when the answer is its label; a tumour of unknown type ("tumor", Br35H
`yes/`) is right when the answer is any tumour class. One test set of one seed each: a small p says
these two runs differ on these slices, not that their recipes would on another seed.

    python bench/paired.py bench/results/collections_A.json bench/results/collections_B.json \\
        --split clean_test --collection brain-tumor-mri-v1 --output_name paired_A_B
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from scipy.stats import binomtest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from brain_tumor.data import IMAGE_SUFFIXES  # noqa: E402
from brain_tumor.labels import ANY_TUMOR, TUMOR_CLASSES  # noqa: E402

RESULTS_DIR = Path(__file__).resolve().parent / "results"
SPLITS = ("official_test", "clean_test", "held_out_sets")


def is_right(label: str, answer: str) -> bool:
    return answer in TUMOR_CLASSES if label == ANY_TUMOR else answer == label


def read_answers(path: str, split: str, collection: str) -> dict[str, list[str]]:
    report = json.loads(Path(path).read_text())
    entry = report.get(split, {}).get(collection)
    if entry is None:
        raise SystemExit(f"{path}: no {split} of {collection} (has: {', '.join(report.get(split, {})) or 'none'})")
    if "answers" not in entry:
        raise SystemExit(f"{path}: no per-slice answers; re-run bench/collections_eval.py to write them")
    return entry["answers"]


def listed_names(path: str) -> set[str]:
    """The image file names a text file mentions, by base name: a plain list, `doubted_notumor_labels.txt`, or
    the `.md` that `bench/find_copies.py` writes."""
    suffixes = "|".join(sorted((suffix.lstrip(".") for suffix in IMAGE_SUFFIXES), key=len, reverse=True))
    names = re.findall(rf"[^\s]+\.(?:{suffixes})\b", Path(path).read_text(), re.IGNORECASE)
    return {Path(name).name for name in names}


def restricted(answers: dict[str, list[str]], names: set[str]) -> dict[str, list[str]]:
    return {name: answer for name, answer in answers.items() if Path(name).name in names}


def compare(answers_a: dict[str, list[str]], answers_b: dict[str, list[str]]) -> dict:
    """Accuracy of each model with its Wilson interval, and the exact McNemar test, on the slices both scored."""
    shared = sorted(set(answers_a) & set(answers_b))
    if not shared:
        raise ValueError("the two models scored no slice in common")
    mismatched = [name for name in shared if answers_a[name][0] != answers_b[name][0]]
    if mismatched:
        raise ValueError(f"{len(mismatched)} slices carry different labels in the two files, e.g. {mismatched[0]}")
    right_a = [is_right(*answers_a[name]) for name in shared]
    right_b = [is_right(*answers_b[name]) for name in shared]
    only_a = sum(a and not b for a, b in zip(right_a, right_b))
    only_b = sum(b and not a for a, b in zip(right_a, right_b))
    report = {"slices": len(shared), "only_a_right": only_a, "only_b_right": only_b,
              "mcnemar_p": binomtest(only_a, only_a + only_b, 0.5).pvalue if only_a + only_b else 1.0}
    for key, right in (("a", right_a), ("b", right_b)):
        interval = binomtest(sum(right), len(right)).proportion_ci(confidence_level=0.95, method="wilson")
        report[f"accuracy_{key}"] = sum(right) / len(right)
        report[f"accuracy_{key}_95"] = [float(interval.low), float(interval.high)]
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model_a", help="collections_eval JSON of the first model")
    parser.add_argument("model_b", help="collections_eval JSON of the second model")
    parser.add_argument("--split", default="clean_test", choices=SPLITS)
    parser.add_argument("--collection", default="brain-tumor-mri-v1")
    parser.add_argument("--only", default=None,
                        help="a text file naming slices (a list, or bench/find_copies.py's .md): compare on those only")
    parser.add_argument("--output_name", default=None, help="file name stem under bench/results/")
    args = parser.parse_args()

    answers_a, answers_b = (read_answers(path, args.split, args.collection) for path in (args.model_a, args.model_b))
    if args.only:
        names = listed_names(args.only)
        answers_a, answers_b = restricted(answers_a, names), restricted(answers_b, names)
    report = compare(answers_a, answers_b)
    report.update(model_a=args.model_a, model_b=args.model_b, split=args.split, collection=args.collection,
                  only=args.only)
    low_a, high_a = report["accuracy_a_95"]
    low_b, high_b = report["accuracy_b_95"]
    text = "\n".join([
        f"{args.collection}, {args.split}{f', only the slices `{args.only}` names' if args.only else ''}: "
        f"{report['slices']} slices scored by both models.", "",
        "| model | accuracy | 95 % Wilson interval | slices only it gets right |", "|---|---|---|---|",
        f"| A: `{args.model_a}` | {report['accuracy_a']:.3f} | {low_a:.3f}-{high_a:.3f} | {report['only_a_right']} |",
        f"| B: `{args.model_b}` | {report['accuracy_b']:.3f} | {low_b:.3f}-{high_b:.3f} | {report['only_b_right']} |",
        "", f"Exact McNemar test on the {report['only_a_right'] + report['only_b_right']} slices they disagree on: "
        f"p = {report['mcnemar_p']:.3g}.", ""])
    print(text)
    if args.output_name:
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        (RESULTS_DIR / f"{args.output_name}.md").write_text(text)
        (RESULTS_DIR / f"{args.output_name}.json").write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
