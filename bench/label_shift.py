#!/usr/bin/env python
"""What the lesion transplant's label-shift correction does to models trained without it.

A transplant turns a share of the no-tumour training slices into tumours, so the model learns a smaller
no-tumour prior than the data has (`brain_tumor.transplant.label_shift_offset` says why and by how much).
`train_hf.py --correct_transplant_prior` moves the no-tumour logit by that offset after training. This
script applies the same offset, computed from each model's own training split (cut from its
data_recipe.json, as training cut it), to models trained with the transplant but without the correction,
and scores each one on the original files (`collections_eval.py`'s splits) with and without it:
accuracy, tumour recall and no-tumour specificity per collection and plane, and on the collection the
model never saw. The offset only moves the answer: ROC AUC and recall at a fixed specificity
(`operating_points.py`) cannot change.

    python bench/label_shift.py --share 0.4 --model runs/loo_cpu/full/lite0-aug-mask-transplant-e4 \
        --model runs/loo_cpu/loo/lite0-aug-mask-transplant-e4 --output_name label_shift_lite0_e4
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from collections_eval import splits_on_original_files  # noqa: E402

from brain_tumor.evaluation import evaluate_groups  # noqa: E402
from brain_tumor.inference import Predictor  # noqa: E402
from brain_tumor.labels import NOTUMOR_ID  # noqa: E402
from brain_tumor.recipe import collection_name, load_splits, read_recipe  # noqa: E402
from brain_tumor.transplant import label_shift_offset  # noqa: E402

RESULTS_DIR = Path(__file__).resolve().parent / "results"
SPLITS = ("official_test", "clean_test", "held_out")
METRICS = ("accuracy", "tumour_recall", "notumor_specificity")


def model_offset(folder: str, share: float) -> tuple[float, dict]:
    """The offset train_hf would have applied: from the class counts of the training split it trained on."""
    recipe = read_recipe(folder)
    if recipe is None:
        raise SystemExit(f"{folder}: needs a data_recipe.json to recount its training split.")
    labels = np.asarray(load_splits(recipe).train["label"])
    notumor = int(np.sum(labels == NOTUMOR_ID))
    counts = {"notumor": notumor, "tumour": len(labels) - notumor}
    return label_shift_offset(notumor, counts["tumour"], share), counts


def log_probabilities(predictor: Predictor, dataset) -> np.ndarray:
    predictions = predictor.predict_batch(dataset["image"], batch_size=32)
    probabilities = np.array([[p.probabilities[name] for name in predictor.labels] for p in predictions])
    return np.log(np.clip(probabilities, 1e-12, 1))


def score_model(folder: str, share: float, data_root: str) -> dict:
    offset, counts = model_offset(folder, share)
    recipe = read_recipe(folder)
    _, splits = splits_on_original_files(folder, data_root, held_out=[collection_name(n) for n in recipe["held_out"]])
    predictor = Predictor.from_pretrained(folder, device="cpu")
    notumor = predictor.labels.index("notumor")
    report = {"offset": offset, "training_counts": counts, "share": share, "splits": {}}
    for name in SPLITS:
        dataset = getattr(splits, name)
        if dataset is None or not len(dataset):
            continue
        raw = dataset.with_format(None)
        scores = log_probabilities(predictor, raw)
        shifted = scores.copy()
        shifted[:, notumor] += offset
        labels = np.asarray(raw["label"])
        report["splits"][name] = {
            "without": evaluate_groups(scores, labels, raw["collection"], raw["file_name"]),
            "with": evaluate_groups(shifted, labels, raw["collection"], raw["file_name"])}
    return report


def table(reports: dict) -> str:
    lines = ["Each cell: without the correction -> with it. Original files; splits cut as each model's training cut "
             "them.", "", "| model | offset | split | collection | images | "
             + " | ".join(m.replace("_", " ") for m in METRICS) + " |", "|---|---|---|---|---|" + "---|" * len(METRICS)]
    for folder, report in reports.items():
        for split, pair in report["splits"].items():
            for collection, without in pair["without"].items():
                with_ = pair["with"][collection]
                rows = [(collection, without, with_)] + [
                    (f"{collection}, {plane}", entry, with_["by_plane"][plane])
                    for plane, entry in without.get("by_plane", {}).items()]
                for label, before, after in rows:
                    cells = ["" if before.get(m) is None else f"{before[m]:.3f} -> {after[m]:.3f}" for m in METRICS]
                    lines.append(f"| `{folder}` | {report['offset']:.3f} | {split} | {label} | {before['images']} | "
                                 + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", required=True, help="a model folder trained with the transplant")
    parser.add_argument("--share", type=float, required=True, help="the transplant share it was trained with")
    parser.add_argument("--data_root", default="../shared/data", help="folder holding the original collections")
    parser.add_argument("--output_name", default="label_shift", help="file name stem under bench/results/")
    args = parser.parse_args()
    reports = {folder: score_model(folder, args.share, args.data_root) for folder in args.model}
    text = table(reports)
    print(text)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / f"{args.output_name}.md").write_text(text)
    (RESULTS_DIR / f"{args.output_name}.json").write_text(json.dumps(reports, indent=1, default=str))


if __name__ == "__main__":
    main()
