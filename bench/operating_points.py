#!/usr/bin/env python
"""Tumour / no-tumour trade-off of models trained without a collection: did a recipe find more of the
held-out collection's tumours, or does it only say "tumour" more often?

A recipe can raise held-out tumour recall by moving every answer towards "tumour". This script takes
P(tumour) = 1 - P(notumor) of each model and reports, with the held-out collection's tumour slices as
positives and the no-tumour slices of every collection's official test as negatives:
- ROC AUC (threshold-free: how well P(tumour) ranks a held-out tumour above a no-tumour slice);
- tumour recall and specificity of the model's own answer (arg max), and of "more likely a tumour than
  not" (P(tumour) > 0.5, as the app's verdict reads it: the three tumour types together outweigh no
  tumour, though none of them alone may);
- held-out tumour recall at the thresholds where specificity is 0.95 and 0.90 on those negatives
  (the same specificity for every model, so recalls compare like with like).
Beside those test-set thresholds, which no deployed model can have, the thresholds fitted where a deployer may
fit them: the P(tumour) quantiles of the validation split's no-tumour slices (training collections only) at the
same specificities, with the held-out recall above them and the official tests' specificity at them (does a
threshold fitted on validation carry to new slices?).
Where the held-out collection has no-tumour slices too (a run with `--held_out_twins training`, such as
all of Br35H held out), a second table scores them, never seen in training: the ROC AUC of held-out
tumours against held-out no-tumour slices, the specificity of the answer on them, and their specificity
at the thresholds above (does a threshold set on the training collections' slices hold on new ones?).
Splits come from each model's data_recipe.json, cut as training cut them.
With --ensemble, one more row scores the mean of the given models' probabilities, answered by its arg max: what
serving several seeds, or distilling them into one model, could reach. The models' data recipes may differ in the
seed only (the same collections, held out the same way): the row is scored on the first model's splits, so its
thresholds fitted on validation are read on slices the other seeds may have trained on, and flatter it.

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

from brain_tumor.duplicates import fingerprint_dataset, twin_groups  # noqa: E402
from brain_tumor.inference import TUMOUR_MORE_LIKELY, Predictor  # noqa: E402
from brain_tumor.labels import CLASS_NAMES, NOTUMOR_ID  # noqa: E402
from brain_tumor.recipe import load_splits, read_recipe  # noqa: E402

RESULTS_DIR = Path(__file__).resolve().parent / "results"
SPECIFICITIES = (0.95, 0.90)


def class_probabilities(predictor: Predictor, dataset) -> np.ndarray:
    """(slices, classes) probabilities of one model on a dataset's images, columns in CLASS_NAMES order."""
    predictions = predictor.predict_batch(dataset.with_format(None)["image"], batch_size=32)
    return np.array([[p.probabilities[name] for name in CLASS_NAMES] for p in predictions])


def tumour_scores(probabilities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """P(tumour) of each slice, and whether the answer (arg max of the four classes) is a tumour."""
    return 1.0 - probabilities[:, NOTUMOR_ID], probabilities.argmax(axis=1) != NOTUMOR_ID


def predict(predictor: Predictor, dataset) -> tuple[np.ndarray, np.ndarray]:
    """P(tumour) of each slice, and whether the model's answer (arg max of four classes) is a tumour."""
    return tumour_scores(class_probabilities(predictor, dataset))


def slices_where(dataset, tumour: bool):
    """The split's tumour slices (any tumour label, the coarse one included), or its no-tumour slices."""
    return dataset.filter(lambda label: (label != NOTUMOR_ID) == tumour, input_columns="label")


def roc_auc(positives: np.ndarray, negatives: np.ndarray) -> float:
    truth = np.concatenate([np.ones(len(positives)), np.zeros(len(negatives))])
    return float(roc_auc_score(truth, np.concatenate([positives, negatives])))


def thresholds(negatives: np.ndarray) -> dict[float, float]:
    """The P(tumour) above which a slice is called a tumour, for each specificity on these negatives."""
    return {specificity: float(np.quantile(negatives, specificity)) for specificity in SPECIFICITIES}


def specificity_at(scored: np.ndarray, reference: np.ndarray) -> dict[float, float]:
    """The specificity on `scored` no-tumour slices at each threshold set on the `reference` ones."""
    return {specificity: float(np.mean(scored <= threshold)) for specificity, threshold in thresholds(reference).items()}


def operating_points(positives: np.ndarray, negatives: np.ndarray) -> dict:
    report = {"positives": len(positives), "negatives": len(negatives), "roc_auc": roc_auc(positives, negatives)}
    for specificity, threshold in thresholds(negatives).items():
        report[f"recall_at_specificity_{specificity:.2f}"] = float(np.mean(positives > threshold))
    # The binary decision a tumour finder needs: a slice whose probability is split over three tumour
    # types can be a tumour more likely than not while its arg max is "no tumour".
    report["recall_summed"] = float(np.mean(positives > TUMOUR_MORE_LIKELY))
    report["specificity_summed"] = float(np.mean(negatives <= TUMOUR_MORE_LIKELY))
    return report


def fitted_on_validation(positives: np.ndarray, negatives: np.ndarray, validation_negatives: np.ndarray) -> dict:
    """Thresholds set on the validation split's no-tumour slices, scored on held-out tumours and test negatives."""
    report = {"validation_negatives": len(validation_negatives)}
    for specificity, threshold in thresholds(validation_negatives).items():
        report[f"validation_threshold_{specificity:.2f}"] = threshold
        report[f"recall_at_validation_threshold_{specificity:.2f}"] = float(np.mean(positives > threshold))
        report[f"specificity_at_validation_threshold_{specificity:.2f}"] = float(np.mean(negatives <= threshold))
    return report


def per_distinct_image(hits: np.ndarray, groups: np.ndarray) -> float:
    """The mean over distinct images of each one's share of hits among its copies: a slice saved forty times
    counts once, not forty times."""
    if not len(hits):
        return float("nan")
    counts = np.bincount(groups)
    shares = np.bincount(groups, weights=hits.astype(float))[counts > 0] / counts[counts > 0]
    return float(shares.mean())


def distinct_images(positives: np.ndarray, found: np.ndarray, groups: np.ndarray,
                    validation_negatives: np.ndarray) -> dict:
    """Held-out recall with each distinct image (its twins merged, `duplicates.twin_groups`) counted once."""
    report = {"distinct_positives": int(len(set(groups.tolist()))),
              "recall_argmax_distinct": per_distinct_image(found, groups)}
    for specificity, threshold in thresholds(validation_negatives).items():
        report[f"recall_at_validation_threshold_{specificity:.2f}_distinct"] = per_distinct_image(
            positives > threshold, groups)
    return report


def held_out_negatives(positives: np.ndarray, negatives: np.ndarray, held_negatives: np.ndarray,
                       held_false_alarms: np.ndarray, validation_negatives: np.ndarray | None = None) -> dict:
    """The held-out collection's own no-tumour slices, at the thresholds set on the official tests' ones (and on
    the validation split's, when given)."""
    report = {"held_out_negatives": len(held_negatives), "held_out_roc_auc": roc_auc(positives, held_negatives),
              "held_out_specificity_argmax": float(1 - held_false_alarms.mean())}
    references = {"specificity": negatives, "validation_threshold": validation_negatives}
    for name, reference in references.items():
        if reference is not None:
            for specificity, value in specificity_at(held_negatives, reference).items():
                report[f"held_out_specificity_at_{name}_{specificity:.2f}"] = value
    return report


@functools.lru_cache(maxsize=None)
def splits_of(recipe_text: str):
    """Splits cut once per recipe: runs of the same recipe share them."""
    return load_splits(json.loads(recipe_text))


@functools.lru_cache(maxsize=None)
def held_out_twin_groups(recipe_text: str) -> np.ndarray:
    """The twin group of each held-out tumour slice; runs of the same recipe share them (fingerprinting decodes
    every slice)."""
    held = slices_where(splits_of(recipe_text).held_out, tumour=True)
    return twin_groups(fingerprint_dataset(held.with_format(None)))


@functools.lru_cache(maxsize=None)
def leave_one_out_run(folder: str):
    """(recipe, splits, predictor) of a leave-one-out model folder, loaded once; stops with a clear message for any
    other folder."""
    recipe = read_recipe(folder)
    if recipe is None or not recipe["held_out"]:
        raise SystemExit(f"{folder}: needs a data_recipe.json with a held-out collection (a leave-one-out run).")
    return recipe, splits_of(json.dumps(recipe, sort_keys=True)), Predictor.from_pretrained(folder, device="cpu")


@functools.lru_cache(maxsize=None)
def run_probabilities(folder: str, recipe_text: str, split: str, tumour: bool) -> np.ndarray:
    """One model's class probabilities on the tumour (or no-tumour) slices of one split cut by `recipe_text`, computed
    once: the --ensemble row reuses what each model's own row computed on the same splits."""
    dataset = slices_where(getattr(splits_of(recipe_text), split), tumour)
    return class_probabilities(leave_one_out_run(folder)[2], dataset)


def check_seeds_of_one_recipe(folders: list[str]) -> None:
    """--ensemble scores the models on the first one's splits, so their data recipes may differ in the seed only."""
    recipes = [{key: value for key, value in leave_one_out_run(folder)[0].items() if key != "seed"}
               for folder in folders]
    if len(recipes) < 2 or any(recipe != recipes[0] for recipe in recipes):
        raise SystemExit("--ensemble needs two or more --model folders whose data_recipe.json differ in the seed "
                         "only (the same collections, held out the same way).")


def score(folders: tuple[str, ...]) -> dict:
    """The row of one model, or of the mean of several models' probabilities (answered by its arg max), on the
    first folder's splits."""
    recipe_text = json.dumps(leave_one_out_run(folders[0])[0], sort_keys=True)
    splits = splits_of(recipe_text)

    def scores(split: str, tumour: bool) -> tuple[np.ndarray, np.ndarray]:
        return tumour_scores(np.mean([run_probabilities(folder, recipe_text, split, tumour) for folder in folders],
                                     axis=0))

    (positives, found), (negatives, false_alarms) = scores("held_out", True), scores("official_test", False)
    report = {**operating_points(positives, negatives), "recall_argmax": float(found.mean()),
              "specificity_argmax": float(1 - false_alarms.mean()),
              "negatives_from": sorted(set(slices_where(splits.official_test, tumour=False)["collection"]))}
    validation_negatives = scores("validation", False)[0]
    report.update(fitted_on_validation(positives, negatives, validation_negatives))
    report.update(distinct_images(positives, found, held_out_twin_groups(recipe_text), validation_negatives))
    if len(slices_where(splits.held_out, tumour=False)):
        report.update(held_out_negatives(positives, negatives, *scores("held_out", False), validation_negatives))
    return report


def table(columns: list[str], reports: dict[str, dict], keys: list[str]) -> list[str]:
    """A markdown table: one row per model folder, the report's `keys` as cells."""
    lines = ["| model | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    return lines + [f"| `{folder}` | " + " | ".join(f"{r[key]:.3f}" for key in keys) + " |"
                    for folder, r in reports.items()]


def render(reports: dict[str, dict]) -> str:
    first = next(iter(reports.values()))
    per_s = [f"{s:.2f}" for s in SPECIFICITIES]
    lines = [f"Positives: the held-out collection's {first['positives']} tumour slices; negatives: the "
             f"{first['negatives']} no-tumour slices of the official tests of {', '.join(first['negatives_from'])}. "
             "P(tumour) = 1 - P(notumor).", ""]
    lines += table(["ROC AUC", "recall (arg max)", "specificity (arg max)", "recall (P(tumour) > 0.5)",
                    "specificity (P(tumour) > 0.5)", *(f"recall at specificity {s}" for s in per_s)], reports,
                   ["roc_auc", "recall_argmax", "specificity_argmax", "recall_summed", "specificity_summed",
                    *(f"recall_at_specificity_{s}" for s in per_s)])
    lines += ["", f"Thresholds fitted on the validation split's {first['validation_negatives']} no-tumour slices "
                  "(training collections only): the P(tumour) above which a slice is called a tumour at each "
                  "specificity there, the held-out tumour recall above it, and the official tests' no-tumour "
                  "specificity at it.", ""]
    lines += table([c for s in per_s for c in (f"threshold (validation specificity {s})", "held-out recall",
                                               "official specificity")], reports,
                   [f"{key}_{s}" for s in per_s for key in ("validation_threshold", "recall_at_validation_threshold",
                                                            "specificity_at_validation_threshold")])
    lines += ["", f"Distinct held-out images: a collection may hold one slice many times (re-saved with other "
                  f"contrast, sharpening or a flip). Joined by chains of twins (`duplicates.twin_groups`), the "
                  f"{first['positives']} held-out tumour slices are {first['distinct_positives']} distinct images; "
                  "each recall below counts every distinct image once (the share of its copies found).", ""]
    lines += table(["recall (arg max), per distinct image", *(f"held-out recall at the validation-{s} threshold, "
                                                             "per distinct image" for s in per_s)], reports,
                   ["recall_argmax_distinct", *(f"recall_at_validation_threshold_{s}_distinct" for s in per_s)])
    with_normals = {folder: r for folder, r in reports.items() if "held_out_negatives" in r}
    if with_normals:
        lines += ["", f"The held-out collection's own no-tumour slices "
                      f"({next(iter(with_normals.values()))['held_out_negatives']}, never trained on): ROC AUC of "
                      "held-out tumours against them, specificity of the answer on them, and specificity at the "
                      "thresholds set on the official tests' no-tumour slices and on the validation split's above.", ""]
        lines += table(["held-out ROC AUC", "held-out specificity (arg max)",
                        *(f"held-out specificity at the specificity-{s} threshold" for s in per_s),
                        *(f"at the validation-{s} threshold" for s in per_s)], with_normals,
                       ["held_out_roc_auc", "held_out_specificity_argmax",
                        *(f"held_out_specificity_at_specificity_{s}" for s in per_s),
                        *(f"held_out_specificity_at_validation_threshold_{s}" for s in per_s)])
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", required=True, help="a leave-one-out model folder (repeat)")
    parser.add_argument("--output_name", default="operating_points", help="file name stem under bench/results/")
    parser.add_argument("--ensemble", action="store_true",
                        help="also score the mean of the models' probabilities (their data recipes may differ in the seed only)")
    args = parser.parse_args()

    if args.ensemble:
        check_seeds_of_one_recipe(args.model)
    reports = {folder: score((folder,)) for folder in args.model}
    if args.ensemble:
        reports[f"mean of the {len(args.model)} models above"] = score(tuple(args.model))
    text = render(reports)
    print(text)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / f"{args.output_name}.md").write_text(text)
    (RESULTS_DIR / f"{args.output_name}.json").write_text(json.dumps(reports, indent=1))


if __name__ == "__main__":
    main()
