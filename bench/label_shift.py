#!/usr/bin/env python
"""What the lesion transplant's label-shift correction does to models trained without it.

A transplant turns a share of the no-tumour training slices into tumours, so the model learns a smaller
no-tumour prior than the data has (`brain_tumor.transplant.label_shift_offset` says why and by how much).
`train_hf.py --correct_transplant_prior` moves the no-tumour logit by that offset after training, before the
temperature is fitted and folded into the head. This script applies the same correction (the offset divided by the
model's temperature, as the saved logits are raw / T), computed from each model's own training split (cut from its
data_recipe.json, as training cut it), to models trained with the transplant but without the correction,
and scores each one on the original files (`collections_eval.py`'s splits) with and without it:
accuracy, tumour recall and no-tumour specificity per collection and plane, and on the collection the
model never saw. `--undo` does the reverse for models trained with the flag: the correction acts only after
training, so removing the offset the run recorded gives the model that training without the flag would have
given (up to the temperature, which does not change an answer). The offset only moves the answer: ROC AUC
and recall at a fixed specificity (`operating_points.py`) cannot change.

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

from bench.collections_eval import splits_on_original_files  # noqa: E402

from brain_tumor.evaluation import evaluate_groups  # noqa: E402
from brain_tumor.inference import Predictor  # noqa: E402
from brain_tumor.labels import NOTUMOR_ID  # noqa: E402
from brain_tumor.recipe import collection_name, load_splits, read_recipe  # noqa: E402
from brain_tumor.transplant import label_shift_offset  # noqa: E402

RESULTS_DIR = Path(__file__).resolve().parent / "results"
SPLITS = ("official_test", "clean_test", "held_out")
METRICS = ("accuracy", "tumour_recall", "notumor_specificity")


def run_results(folder: str) -> dict:
    path = Path(folder) / "all_results.json"
    if not path.is_file():
        raise SystemExit(f"{folder}: needs the all_results.json its training wrote (for its temperature).")
    return json.loads(path.read_text())


def model_offset(folder: str, recipe: dict, share: float) -> tuple[float, dict]:
    """The shift of the saved no-tumour logit that gives train_hf's correction, from the class counts of the
    training split the model trained on (cut from its data recipe). train_hf adds the offset before the
    temperature T is fitted and folded into the head, so the saved logits (raw / T) need offset / T."""
    labels = np.asarray(load_splits(recipe).train["label"])
    notumor = int(np.sum(labels == NOTUMOR_ID))
    tumour = len(labels) - notumor
    offset, temperature = label_shift_offset(notumor, tumour, share), run_results(folder)["temperature"]
    return offset / temperature, {"notumor": notumor, "tumour": tumour, "offset": offset, "temperature": temperature}


def recorded_offset(folder: str) -> tuple[float, dict]:
    """The shift of the saved no-tumour logit that removes the correction a --correct_transplant_prior run applied."""
    results = run_results(folder)
    if results.get("transplant_prior_offset") is None:
        raise SystemExit(f"{folder}: --undo needs a run trained with --correct_transplant_prior.")
    offset, temperature = results["transplant_prior_offset"], results["temperature"]
    return -offset / temperature, {"offset": offset, "temperature": temperature}


def log_probabilities(predictor: Predictor, dataset) -> np.ndarray:
    predictions = predictor.predict_batch(dataset["image"], batch_size=32)
    probabilities = np.array([[p.probabilities[name] for name in predictor.labels] for p in predictions])
    return np.log(np.clip(probabilities, 1e-12, 1))


def score_model(folder: str, share: float, data_root: str, undo: bool = False) -> dict:
    recipe = read_recipe(folder)
    if recipe is None:
        raise SystemExit(f"{folder}: needs a data_recipe.json to cut its splits as its training cut them.")
    offset, basis = recorded_offset(folder) if undo else model_offset(folder, recipe, share)
    _, splits = splits_on_original_files(folder, data_root, held_out=[collection_name(n) for n in recipe["held_out"]])
    predictor = Predictor.from_pretrained(folder, device="cpu")
    notumor = predictor.labels.index("notumor")
    report = {"offset": offset, "basis": basis, "share": share, "splits": {}}
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
            "as_is": evaluate_groups(scores, labels, raw["collection"], raw["file_name"]),
            "offset_added": evaluate_groups(shifted, labels, raw["collection"], raw["file_name"])}
    return report


def table(reports: dict) -> str:
    lines = ["Each cell: the model as it is -> with the offset added (a negative offset removes a correction). "
             "Original files; splits cut as each model's training cut them.", "",
             "| model | shift of the saved no-tumour logit | split | collection | images | "
             + " | ".join(m.replace("_", " ") for m in METRICS) + " |",
             "|---|---|---|---|---|" + "---|" * len(METRICS)]
    for folder, report in reports.items():
        for split, pair in report["splits"].items():
            for collection, as_is in pair["as_is"].items():
                shifted = pair["offset_added"][collection]
                rows = [(collection, as_is, shifted)] + [
                    (f"{collection}, {plane}", entry, shifted["by_plane"][plane])
                    for plane, entry in as_is.get("by_plane", {}).items()]
                for label, before, after in rows:
                    cells = ["" if before.get(m) is None else f"{before[m]:.3f} -> {after[m]:.3f}" for m in METRICS]
                    lines.append(f"| `{folder}` | {report['offset']:.3f} | {split} | {label} | {before['images']} | "
                                 + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", required=True, help="a model folder trained with the transplant")
    parser.add_argument("--share", type=float, help="the transplant share it was trained with")
    parser.add_argument("--undo", action="store_true",
                        help="models trained with --correct_transplant_prior: remove the offset they recorded")
    parser.add_argument("--data_root", default="../shared/data", help="folder holding the original collections")
    parser.add_argument("--output_name", default="label_shift", help="file name stem under bench/results/")
    args = parser.parse_args()
    if args.share is None and not args.undo:
        parser.error("--share is needed (or --undo for models trained with --correct_transplant_prior)")
    reports = {folder: score_model(folder, args.share, args.data_root, args.undo) for folder in args.model}
    text = table(reports)
    print(text)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / f"{args.output_name}.md").write_text(text)
    (RESULTS_DIR / f"{args.output_name}.json").write_text(json.dumps(reports, indent=1, default=str))


if __name__ == "__main__":
    main()
