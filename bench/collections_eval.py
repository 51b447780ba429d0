#!/usr/bin/env python
"""Score model folders on every collection: each one's clean and official test, and held-out collections.

Splits are cut by `brain_tumor.recipe.load_splits`, exactly as training cuts them, from the files under
`--data_root` (the real collections). Give each model the collections it was trained on
(`--trained_on`, default: the model's own data_recipe.json) so that a held-out collection is one the
model never saw. Figures: accuracy (finely labelled images), tumour recall (any tumour class counts
for a tumour of unknown type) and no-tumour specificity, per collection and per plane (BRISC); and
the share of each collection's slices (all real MRI) that the app's checks flag as not an MRI or
as uncertain (the checks fitted beside the model), and the share of its tumour slices answered "no tumour" with
neither flag (what a user would read as a confident all-clear). The JSON also names the no-tumour slices called
tumours (`notumor_called_tumour`), so that they can be looked at, and every slice's label and answer
(`answers`), so that two models can be compared slice by slice (`bench/paired.py`).

    python bench/collections_eval.py --model models/brain-tumor-mri-classifier \
        --trained_on brain-tumor-mri-v1 --held_out br35h-2020
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from brain_tumor.evaluation import evaluate_groups  # noqa: E402
from brain_tumor.inference import Predictor  # noqa: E402
from brain_tumor.labels import CLASS_NAMES, DATASET_LABELS, NOTUMOR_ID  # noqa: E402
from brain_tumor.recipe import DEFAULTS, SPLIT_OPTIONS, load_splits, make_recipe, read_recipe  # noqa: E402

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def scores(predictor: Predictor, dataset) -> dict:
    """Per collection: the metrics, and how many of its (real MRI) slices the app's checks flag."""
    if dataset is None or not len(dataset):
        return {}
    raw = dataset.with_format(None)
    predictions = predictor.predict_batch(raw["image"], batch_size=32)
    probabilities = np.array([[p.probabilities[name] for name in predictor.labels] for p in predictions])
    labels, collections, file_names = (np.asarray(raw[column]) for column in ("label", "collection", "file_name"))
    report = evaluate_groups(np.log(np.clip(probabilities, 1e-12, 1)), labels, collections, file_names)
    not_mri, uncertain = (np.array([getattr(p, flag) for p in predictions]) for flag in ("not_mri", "uncertain"))
    called_normal = np.array([p.label == CLASS_NAMES[NOTUMOR_ID] for p in predictions])
    # Named, not only counted: some slices labelled no tumour show a lesion, and a reader must be able to look.
    false_alarms = (labels == NOTUMOR_ID) & ~called_normal
    silent = silent_misses(labels, called_normal, not_mri, uncertain)
    for name, entry in report.items():
        in_collection = collections == name
        entry["not_mri_rate"] = float(not_mri[in_collection].mean())
        entry["uncertain_rate"] = float(uncertain[in_collection].mean())
        tumours = int((in_collection & (labels != NOTUMOR_ID)).sum())
        entry["silent_miss_rate"] = float(silent[in_collection].sum() / tumours) if tumours else None
        entry["notumor_called_tumour"] = sorted(file_names[in_collection & false_alarms].tolist())
        entry["answers"] = answers_by_file(file_names[in_collection], labels[in_collection],
                                           [p.label for p, kept in zip(predictions, in_collection) if kept])
    return report


def silent_misses(labels, called_normal, not_mri, uncertain) -> np.ndarray:
    """The issue's worst failure: a tumour slice answered "no tumour" with neither check raised."""
    return (np.asarray(labels) != NOTUMOR_ID) & called_normal & ~np.asarray(not_mri) & ~np.asarray(uncertain)


def answers_by_file(file_names, labels, answers) -> dict[str, list[str]]:
    """{file name: [label, answer]} ("tumor" is a tumour of unknown type). A collection's test file
    names are unique, so two models' answers on the same slices can be matched by name."""
    if len(set(file_names)) != len(file_names):
        raise ValueError("file names repeat within a collection's split: answers cannot be matched by name")
    return {str(name): [DATASET_LABELS[label], answer] for name, label, answer in zip(file_names, labels, answers)}


def splits_on_original_files(model: str, data_root: str, trained_on: list[str] | None = None,
                             held_out: list[str] = ()) -> tuple[list[str], object]:
    """The model's collections by name (default: its data_recipe.json), and their splits cut from the
    files under `data_root` exactly as training cut them."""
    root = Path(data_root)
    saved = read_recipe(model) or DEFAULTS
    # A recipe names folders as training saw them (maybe a packed copy): keep the collection's name only.
    trained_on = trained_on or [Path(n).name for n in saved["datasets"]]
    if not trained_on:
        raise SystemExit("--trained_on is needed: the model folder has no data_recipe.json")
    # The seed and fractions cut flat collections' own test splits (Br35H): keep the model's, or a
    # model trained with another seed would be scored on slices it trained on.
    recipe = make_recipe([str(root / name) for name in trained_on], held_out=[str(root / name) for name in held_out],
                         **{key: saved[key] for key in SPLIT_OPTIONS})
    return trained_on, load_splits(recipe)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="model folder")
    parser.add_argument("--data_root", default="../shared/data", help="folder holding the collections")
    parser.add_argument("--trained_on", nargs="*", help="collection names the model was trained on "
                                                        "(default: from its data_recipe.json)")
    parser.add_argument("--held_out", nargs="*", default=[], help="collection names to score as never seen")
    parser.add_argument("--output_name", default=None, help="file name stem under bench/results/")
    args = parser.parse_args()

    trained_on, splits = splits_on_original_files(args.model, args.data_root, args.trained_on, args.held_out)
    predictor = Predictor.from_pretrained(args.model, device="cpu")
    report = {"model": args.model, "trained_on": trained_on, "held_out": args.held_out,
              "official_test": scores(predictor, splits.official_test),
              "clean_test": scores(predictor, splits.clean_test),
              "held_out_sets": scores(predictor, splits.held_out),
              "audit": {"collections": splits.audit["collections"], "held_out": splits.audit["held_out"]}}
    lines = [f"Model `{args.model}`, trained on {', '.join(trained_on)}; held out: {', '.join(args.held_out) or '-'}.",
             "", "| collection | split | images | accuracy | tumour recall | no-tumour specificity "
             "| flagged not MRI | flagged uncertain | tumours called no tumour with no flag |",
             "|---|---|---|---|---|---|---|---|---|"]
    for key in ("official_test", "clean_test", "held_out_sets"):
        for name, m in report[key].items():
            rows = [(name, m)] + [(f"{name}, {plane}", p) for plane, p in m.get("by_plane", {}).items()]
            for label, entry in rows:
                cells = [entry.get(k) for k in ("accuracy", "tumour_recall", "notumor_specificity", "not_mri_rate",
                                                "uncertain_rate", "silent_miss_rate")]
                lines.append(f"| {label} | {key} | {entry['images']} | "
                             + " | ".join("" if c is None else f"{c:.3f}" for c in cells) + " |")
    text = "\n".join(lines) + "\n"
    print(text)
    name = args.output_name or f"collections_{Path(args.model).resolve().name}"
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / f"{name}.md").write_text(text)
    (RESULTS_DIR / f"{name}.json").write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
