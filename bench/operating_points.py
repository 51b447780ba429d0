#!/usr/bin/env python
"""Tumour / no-tumour trade-off of models trained without a collection: did a recipe find more of the
held-out collection's tumours, or does it only say "tumour" more often?

A recipe can raise held-out tumour recall by moving every answer towards "tumour". This script takes
P(tumour) = 1 - P(notumor) of each model and reports, with the held-out collection's tumour slices as
positives and the no-tumour slices of every collection's official test as negatives:
- ROC AUC (threshold-free: how well P(tumour) ranks a held-out tumour above a no-tumour slice);
- tumour recall and specificity of the model's own answer (arg max);
- held-out tumour recall at the thresholds where specificity is 0.95 and 0.90 on those negatives
  (the same specificity for every model, so recalls compare like with like).
Splits come from each model's data_recipe.json, cut as training cut them.

    python bench/operating_points.py --model runs/loo_cpu/loo/lite0-aug-mask-e2 \
        --model runs/loo_cpu/loo/lite0-aug-mask-transplant-e2 --output_name operating_points_cpu
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from brain_tumor.inference import Predictor  # noqa: E402
from brain_tumor.labels import NOTUMOR_ID as NOTUMOR  # noqa: E402
from brain_tumor.recipe import load_splits, read_recipe  # noqa: E402

RESULTS_DIR = Path(__file__).resolve().parent / "results"
SPECIFICITIES = (0.95, 0.90)


def predict(predictor: Predictor, dataset) -> tuple[np.ndarray, np.ndarray]:
    """P(tumour) of each slice, and whether the model's answer (arg max of four classes) is a tumour."""
    predictions = predictor.predict_batch(dataset.with_format(None)["image"], batch_size=32)
    return (np.array([1.0 - p.probabilities["notumor"] for p in predictions]),
            np.array([p.label != "notumor" for p in predictions]))


def operating_points(positives: np.ndarray, negatives: np.ndarray) -> dict:
    truth = np.concatenate([np.ones(len(positives)), np.zeros(len(negatives))])
    report = {"positives": len(positives), "negatives": len(negatives),
              "roc_auc": float(roc_auc_score(truth, np.concatenate([positives, negatives])))}
    for specificity in SPECIFICITIES:
        threshold = float(np.quantile(negatives, specificity))
        report[f"recall_at_specificity_{specificity:.2f}"] = float(np.mean(positives > threshold))
    return report


@functools.lru_cache(maxsize=None)
def splits_of(recipe_text: str):
    """Splits cut once per recipe: runs of the same recipe share them."""
    return load_splits(json.loads(recipe_text))


def score_model(folder: str) -> dict:
    recipe = read_recipe(folder)
    if recipe is None or not recipe["held_out"]:
        raise SystemExit(f"{folder}: needs a data_recipe.json with a held-out collection (a leave-one-out run).")
    splits = splits_of(json.dumps(recipe, sort_keys=True))
    predictor = Predictor.from_pretrained(folder, device="cpu")
    held = splits.held_out.filter(lambda label: label != NOTUMOR, input_columns="label")
    official = splits.official_test.filter(lambda label: label == NOTUMOR, input_columns="label")
    (positives, found), (negatives, false_alarms) = predict(predictor, held), predict(predictor, official)
    return {**operating_points(positives, negatives), "recall_argmax": float(found.mean()),
            "specificity_argmax": float(1 - false_alarms.mean()),
            "negatives_from": sorted(set(official["collection"]))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", required=True, help="a leave-one-out model folder (repeat)")
    parser.add_argument("--output_name", default="operating_points", help="file name stem under bench/results/")
    args = parser.parse_args()

    reports = {folder: score_model(folder) for folder in args.model}
    first = next(iter(reports.values()))
    lines = [f"Positives: the held-out collection's {first['positives']} tumour slices; negatives: the "
             f"{first['negatives']} no-tumour slices of the official tests of {', '.join(first['negatives_from'])}. "
             "P(tumour) = 1 - P(notumor).", "",
             "| model | ROC AUC | recall (arg max) | specificity (arg max) | "
             + " | ".join(f"recall at specificity {s:.2f}" for s in SPECIFICITIES) + " |",
             "|---|---|---|---|" + "---|" * len(SPECIFICITIES)]
    for folder, r in reports.items():
        cells = [r["roc_auc"], r["recall_argmax"], r["specificity_argmax"],
                 *(r[f"recall_at_specificity_{s:.2f}"] for s in SPECIFICITIES)]
        lines.append(f"| `{folder}` | " + " | ".join(f"{c:.3f}" for c in cells) + " |")
    text = "\n".join(lines) + "\n"
    print(text)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / f"{args.output_name}.md").write_text(text)
    (RESULTS_DIR / f"{args.output_name}.json").write_text(json.dumps(reports, indent=1))


if __name__ == "__main__":
    main()
