"""Commands over a model's splits: `audit` (twins within and across collections) and `fit-checks`.

Both cut their splits with `recipe.load_splits`, the code path training uses, so the counts and the
fitted checks are those of the splits a model is trained on:

    python -m brain_tumor audit DATASET [DATASET ...] [--held_out DATASET ...] [--json]
    python -m brain_tumor fit-checks MODEL [DATASET ...]

`fit-checks` reads the model folder's `data_recipe.json` (written by train_hf.py) when no dataset is
named; datasets named on the command line replace the recipe's collections.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..recipe import DEFAULTS, RECIPE_FILE, SPLIT_OPTIONS, make_recipe, read_recipe
from ..splits import HELD_OUT_TWINS

SPLITS = ("train", "validation", "official_test", "clean_test")


def _add_split_options(parser: argparse.ArgumentParser, defaults: bool) -> None:
    """The options that decide the splits. Without `defaults` an option not given stays None, and
    fit-checks takes it from the model's data recipe."""
    parser.add_argument("--held_out", nargs="+", default=None, metavar="DATASET",
                        help="Collections never trained on; their slices that twin a training collection's are "
                             "dropped (see --held_out_twins).")
    where = f"default {DEFAULTS['held_out_twins']}" if defaults else "default: the model's data recipe"
    parser.add_argument("--held_out_twins", choices=HELD_OUT_TWINS, default=DEFAULTS["held_out_twins"] if defaults
                        else None, help="Which side of a held-out / training twin pair loses its image: held_out, or "
                                        f"training (the held-out collections are scored whole) ({where}).")
    metavars = {"near_threshold": "COSINE", "seed": "N"}
    for flag, key, kind, what in (
            ("--threshold", "near_threshold", float, "Cosine similarity of 32x32 thumbnails counted as a near twin"),
            ("--validation_fraction", "validation_fraction", float, "Share of each official train split kept for "
                                                                     "validation"),
            ("--flat_test_fraction", "flat_test_fraction", float, "Share of a collection without a published split "
                                                                   "kept as its test split"),
            ("--seed", "seed", int, "Seed of the validation and flat-folder test splits")):
        default = f"default {DEFAULTS[key]}" if defaults else f"default: the model's data recipe, else {DEFAULTS[key]}"
        parser.add_argument(flag, dest=key, type=kind, default=DEFAULTS[key] if defaults else None,
                            metavar=metavars.get(key, "FRACTION"), help=f"{what} ({default}).")


def add_split_parsers(commands) -> None:
    audit = commands.add_parser(
        "audit", help="Count twins within and across collections, as training's splits remove them.",
        description="Cut the splits training uses and print what the twin rules removed, per collection.")
    audit.add_argument("datasets", nargs="+", metavar="DATASET",
                       help="Collections in priority order: Hub dataset ids or local folders (Kaggle layout, "
                            "train/ test/, flat class folders such as yes/ no/, or save_to_disk).")
    _add_split_options(audit, defaults=True)
    audit.add_argument("--json", action="store_true", help="Print the audit as JSON.")
    audit.set_defaults(handler=audit_command)

    fit = commands.add_parser(
        "fit-checks", help="Fit the 'not a brain MRI' and 'uncertain' checks of a model folder on its splits.",
        description="Fit the serving checks of a model folder on the splits it was trained with and store them "
                    f"in its config.json and checks.safetensors. The splits come from the folder's {RECIPE_FILE} "
                    "(written by train_hf.py); datasets named here replace its collections.")
    fit.add_argument("model", help="Model folder (written by train_hf.py or save_pretrained).")
    fit.add_argument("datasets", nargs="*", metavar="DATASET",
                     help=f"The collections the model was trained on (default: those in its {RECIPE_FILE}).")
    _add_split_options(fit, defaults=False)
    fit.set_defaults(handler=fit_checks_command)


# --- audit ---------------------------------------------------------------------------------------------

def audit_command(args) -> int:
    from datasets import disable_progress_bars

    from ..recipe import load_splits

    disable_progress_bars()  # one bar per select() would bury the table

    recipe = make_recipe(args.datasets, held_out=args.held_out, **{k: getattr(args, k) for k in SPLIT_OPTIONS})
    audit = load_splits(recipe).audit
    print(json.dumps(audit, indent=2) if args.json else format_audit(audit, recipe["flat_test_fraction"]))
    return 0


def _table(header: list[str], rows: list[list], first_width: int) -> list[str]:
    widths = [first_width] + [max(len(h), 6) + 2 for h in header[1:]]
    def line(cells):
        return f"{cells[0]:<{widths[0]}}" + "".join(f"{str(c):>{w}}" for c, w in zip(cells[1:], widths[1:]))
    return [line(header)] + [line(row) for row in rows]


def format_audit(audit: dict, flat_test_fraction: float) -> str:
    collections, held_out = audit["collections"], audit["held_out"]
    width = max(len(n) for n in (*collections, *held_out, "collection")) + 2
    lines = [f"Method: {audit['method']}",
             f"Near-duplicate threshold: cosine similarity >= {audit['near_threshold']}",
             f"Validation: seeded ({audit['seed']}), stratified {audit['validation_fraction']:.0%} of each "
             f"collection's official train; {audit['train_removed_as_twins_of_validation']} train images removed "
             "as twins of validation images.",
             f"Collections without a published split get a seeded, stratified {flat_test_fraction:.0%} test split.",
             "", "Per collection, in priority order (an image that twins an earlier collection's image is dropped; "
                 "the earlier copy stands):"]
    twins, sizes = [], []
    for name, entry in collections.items():
        removed = entry["train_removed_as_twins_of"]
        twins.append([name, entry.get("dropped_as_twins_of_earlier_collections", 0), removed["validation"],
                      removed["other_collections_test"], removed["held_out"],
                      sum(entry["test_with_exact_train_twin"].values()), sum(entry["test_with_near_train_twin"].values())])
        sizes.append([name, *(sum(entry["split_sizes"][split].values()) for split in SPLITS)])
    lines += _table(["collection", "dropped", "train-val", "train-test", "train-held", "test-exact", "test-near"],
                    twins, width)
    lines += ["  dropped: twins of an earlier collection. train-val / train-test / train-held: training images removed",
              "  as twins of a validation image / another collection's test image / a held-out image. test-exact /",
              "  test-near: official test images with an exact / near twin in any collection's official train",
              "  (left out of clean_test).", "", "Split sizes per collection:"]
    lines += _table(["collection", *SPLITS], sizes, width)
    if held_out:
        if audit.get("held_out_twins") == "training":
            validation = ", ".join(f"{name} {entry.get('validation_removed_as_twins_of_held_out', 0)}"
                                   for name, entry in collections.items())
            lines += ["", "Held out (never trained on; scored whole: their twins left training, train-held above, "
                          f"and validation: {validation}):"]
        else:
            lines += ["", "Held out (never trained on; slices that twin a training collection's are dropped):"]
        lines += _table(["collection", "images", "dropped", "kept"],
                        [[name, e["images"], e["dropped_as_twins_of_training_collections"], e["kept"]]
                         for name, e in held_out.items()], width)
    lines += ["", "All collections together, per class:"]
    classes = list(dict.fromkeys(c for counts in (audit["test_with_near_train_twin"], *audit["split_sizes"].values())
                                 for c in counts))
    per_class = [("official test with an exact train twin", audit["test_with_exact_train_twin"]),
                 ("official test with a near train twin", audit["test_with_near_train_twin"]),
                 *((f"{split} split size", counts) for split, counts in audit["split_sizes"].items())]
    lines += _table(["", *classes, "total"], [[title, *(counts.get(c, 0) for c in classes), sum(counts.values())]
                                              for title, counts in per_class], 44)
    return "\n".join(lines)


# --- fit-checks ----------------------------------------------------------------------------------------

def recipe_for_model(args) -> dict:
    """The data recipe fit-checks uses: the model's own, with what the command line names in its place."""
    saved = read_recipe(args.model)
    if saved is None and not args.datasets:
        raise ValueError(f"{args.model} has no {RECIPE_FILE}, so its splits are unknown: name the collections the "
                         "model was trained on, e.g. python -m brain_tumor fit-checks MODEL "
                         "../shared/data/brain-tumor-mri-v1")
    base = saved or DEFAULTS
    settings = {key: getattr(args, key) if getattr(args, key) is not None else base[key] for key in SPLIT_OPTIONS}
    if args.datasets:  # named collections replace the recipe's, held-out ones included
        return make_recipe(args.datasets, held_out=args.held_out, **settings)
    held_out = args.held_out if args.held_out is not None else base["held_out"]
    # Masks add a column but change no split: not loaded here.
    return make_recipe(base["datasets"], held_out=held_out, **settings)


def fit_checks_command(args) -> int:
    """Fit the serving checks for an existing model folder; store them in its config.json and checks.safetensors."""
    if not Path(args.model).is_dir():
        raise ValueError(f"Model folder {args.model!r} does not exist; fit-checks writes into a local model folder.")
    from transformers import AutoImageProcessor, AutoModelForImageClassification

    from datasets import disable_progress_bars

    from ..checks import save_checks
    from ..fit_checks import fit_checks_on_splits
    from ..recipe import load_splits

    disable_progress_bars()
    recipe = recipe_for_model(args)
    source = "the command line" if args.datasets else f"{Path(args.model) / RECIPE_FILE}"
    print(f"Splits from {source}: {', '.join(recipe['datasets'])}"
          + (f"; held out: {', '.join(recipe['held_out'])}" if recipe["held_out"] else ""), file=sys.stderr)
    model = AutoModelForImageClassification.from_pretrained(args.model).eval()
    processor = AutoImageProcessor.from_pretrained(args.model)
    checks = fit_checks_on_splits(model, processor, load_splits(recipe), seed=recipe["seed"])
    save_checks(checks, args.model)
    print(json.dumps({k: v for k, v in checks.items() if k != "feature_distance"}, indent=2))
    return 0
