#!/usr/bin/env python
"""A uniform model soup: the weights of several runs of one recipe, averaged (Wortsman et al., 2022, "Model soups").

Runs fine-tuned from the same pretrained start with different seeds often lie in one basin of the loss, so their
averaged weights make one model, as fast as each run, that can rank better than any of them on data none has seen.
Whether it does here is what `bench/operating_points.py` and `bench/collections_eval.py` measure on the soup.

Each run's last layer holds its transplant correction and its temperature (train_hf.py shifts the no-tumour logit,
then folds 1 / T into the layer). The soup undoes both per run (from its all_results.json), averages the raw weights,
applies the runs' mean correction, fits one temperature on the validation split of the first run's recipe, folds it
in, and refits the app's checks. Batch-norm running statistics are averaged like every other tensor, or, with
`--recompute_batch_norm N`, recomputed from the averaged network's own activations on N training slices.

Runs must share the architecture, the labels and the held-out collections; they may differ in seed only. The
validation split depends on the seed, so with several seeds some validation slices were training slices of another
run: the soup's temperature and checks, and any threshold fitted on validation, are fitted on slices part of it saw.

    python bench/soup.py --model runs/loo_cpu_mirror/loo/mnv2-aug-mask-transplant-prior-e8 \
        --model runs/loo_cpu_mirror/loo/mnv2-aug-mask-transplant-prior-e8-seed43 --output_dir runs/soups/e8
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from transformers import AutoImageProcessor, AutoModelForImageClassification

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from brain_tumor.calibration import fit_temperature  # noqa: E402
from brain_tumor.checks import save_checks  # noqa: E402
from brain_tumor.data import subsample  # noqa: E402
from brain_tumor.fit_checks import fit_checks_on_splits  # noqa: E402
from brain_tumor.labels import CLASS_NAMES, NOTUMOR_ID  # noqa: E402
from brain_tumor.modeling import batch_norms, fold_temperature, shift_class_logit  # noqa: E402
from brain_tumor.recipe import load_splits, read_recipe, save_recipe  # noqa: E402
from brain_tumor.transforms import collate, make_eval_transform  # noqa: E402

# Recipe keys that may differ between ingredients: only the seed (which also cuts validation and Br35H's test).
MAY_DIFFER = {"seed"}


def raw_state(folder: str) -> tuple[dict[str, torch.Tensor], float]:
    """The run's weights with its temperature and transplant correction taken out of the last layer, and that
    correction (0 without one)."""
    model = AutoModelForImageClassification.from_pretrained(folder)
    results = json.loads((Path(folder) / "all_results.json").read_text())
    offset = results.get("transplant_prior_offset") or 0.0
    fold_temperature(model, 1.0 / results["temperature"])
    if offset:
        shift_class_logit(model, NOTUMOR_ID, -offset)
    return {name: tensor.clone() for name, tensor in model.state_dict().items()}, offset


def check_ingredients(folders: list[str]) -> dict:
    """The first run's recipe, after checking that every run shares it up to the seed."""
    recipes = [read_recipe(folder) for folder in folders]
    if any(recipe is None for recipe in recipes):
        raise SystemExit("Every run needs a data_recipe.json (runs written by train_hf.py have one).")
    reference = {key: value for key, value in recipes[0].items() if key not in MAY_DIFFER}
    for folder, recipe in zip(folders[1:], recipes[1:]):
        if {key: value for key, value in recipe.items() if key not in MAY_DIFFER} != reference:
            raise SystemExit(f"{folder} was trained on other collections or splits than {folders[0]}.")
    configs = [json.loads((Path(folder) / "config.json").read_text()) for folder in folders]
    if len({(c["model_type"], json.dumps(c["id2label"], sort_keys=True)) for c in configs}) > 1:
        raise SystemExit("Every run must share the architecture and the labels.")
    return recipes[0]


def average(states: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Mean of each floating-point tensor; counters (batch norm's num_batches_tracked) from the first run."""
    return {name: torch.stack([state[name] for state in states]).mean(0) if states[0][name].is_floating_point()
            else states[0][name] for name in states[0]}


def batches(dataset, image_processor, size: int = 64):
    """Batches of the dataset, preprocessed as pipeline() does."""
    dataset = dataset.with_format(None)
    dataset.set_transform(make_eval_transform(image_processor))
    for start in range(0, len(dataset), size):
        yield collate([dataset[i] for i in range(start, min(start + size, len(dataset)))])


@torch.no_grad()
def recompute_batch_norm(model, image_processor, dataset) -> None:
    """Replace batch norm's running statistics by those of this network's own activations on `dataset`
    (a cumulative mean over its batches: momentum None)."""
    for norm in batch_norms(model):
        norm.reset_running_stats()
        norm.momentum = None
    model.train()
    for batch in batches(dataset, image_processor):
        model(pixel_values=batch["pixel_values"])
    model.eval()


@torch.no_grad()
def validation_logits(model, image_processor, dataset) -> tuple[np.ndarray, np.ndarray]:
    """Logits and labels of the finely labelled validation slices, preprocessed as pipeline() does."""
    model.eval()
    logits, labels = [], []
    for batch in batches(dataset, image_processor):
        logits.append(model(pixel_values=batch["pixel_values"]).logits.numpy())
        labels.append(batch["labels"].numpy())
    logits, labels = np.concatenate(logits), np.concatenate(labels)
    fine = labels < len(CLASS_NAMES)
    return logits[fine], labels[fine]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", required=True, help="a run folder written by train_hf.py (repeat)")
    parser.add_argument("--output_dir", required=True, help="where the soup is written")
    parser.add_argument("--recompute_batch_norm", type=int, default=0, metavar="N",
                        help="recompute batch norm's running statistics on N training slices (seeded, stratified)")
    args = parser.parse_args()
    if len(args.model) < 2:
        raise SystemExit("A soup needs at least two runs.")

    recipe = check_ingredients(args.model)
    model = AutoModelForImageClassification.from_pretrained(args.model[0])
    image_processor = AutoImageProcessor.from_pretrained(args.model[0])
    states, offsets = zip(*(raw_state(folder) for folder in args.model))
    model.load_state_dict(average(list(states)))
    shift_class_logit(model, NOTUMOR_ID, float(np.mean(offsets)))

    splits = load_splits(recipe)
    if args.recompute_batch_norm:
        recompute_batch_norm(model, image_processor, subsample(splits.train, args.recompute_batch_norm, recipe["seed"]))
    temperature = fit_temperature(*validation_logits(model, image_processor, splits.validation))
    fold_temperature(model, temperature)
    checks = fit_checks_on_splits(model, image_processor, splits, seed=recipe["seed"])

    output = Path(args.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(output)
    image_processor.save_pretrained(output)
    save_checks(checks, output)
    save_recipe(recipe, output)
    soup = {"ingredients": args.model, "batch_norm_recomputed_on": args.recompute_batch_norm or None,
            "transplant_prior_offset": float(np.mean(offsets)), "temperature": temperature}
    (output / "soup.json").write_text(json.dumps(soup, indent=1))
    print(json.dumps(soup, indent=1))


if __name__ == "__main__":
    main()
