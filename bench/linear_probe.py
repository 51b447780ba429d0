#!/usr/bin/env python
"""A frozen backbone and a logistic-regression head: the leave-one-collection-out figure without fine-tuning.

The issue behind leave-one-out found that frozen ImageNet features with a linear head found more
tumours in an outside collection than the fine-tuned model did. This measures the same on our
held-out collection, on the splits `train_hf.py` cuts (same recipe, same twin rules): pooled
features of the frozen model for the training collections' train and validation splits, a
logistic regression whose strength C is chosen on validation (balanced score, as training picks
its checkpoint), then tumour recall on the held-out collection and accuracy on the clean test.
Runs on a CPU in minutes: the backbone runs once per image and nothing is back-propagated.

    python -m brain_tumor convert efficientnet-lite0 runs/lite0      # the ImageNet start
    python bench/linear_probe.py --model runs/lite0 --image_size 160 \\
        --trained_on brain-tumor-mri-v1 brisc2025-no-tumor --held_out br35h-2020
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from brain_tumor.evaluation import evaluate, evaluate_groups, selection_score  # noqa: E402
from brain_tumor.inference import Predictor  # noqa: E402
from brain_tumor.recipe import load_splits, make_recipe  # noqa: E402

RESULTS_DIR = Path(__file__).resolve().parent / "results"
STRENGTHS = (0.01, 0.03, 0.1, 0.3, 1.0)


def features(predictor: Predictor, dataset) -> tuple[np.ndarray, dict]:
    raw = dataset.with_format(None)
    columns = {key: raw[key] for key in ("label", "collection", "file_name")}
    return predictor.forward_many(raw["image"], batch_size=64)["features"], columns


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="model folder whose pooled features are probed (frozen)")
    parser.add_argument("--image_size", type=int, default=None, help="square input size (default: the processor's)")
    parser.add_argument("--data_root", default="../shared/data")
    parser.add_argument("--trained_on", nargs="+", required=True, help="collections the head is trained on")
    parser.add_argument("--held_out", nargs="+", required=True, help="collections never trained on")
    parser.add_argument("--output_name", default="linear_probe")
    args = parser.parse_args(argv)

    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from transformers import AutoImageProcessor, AutoModelForImageClassification

    from brain_tumor.input_size import square_resize_processor

    root = Path(args.data_root)
    recipe = make_recipe([str(root / n) for n in args.trained_on], held_out=[str(root / n) for n in args.held_out])
    splits = load_splits(recipe)
    model = AutoModelForImageClassification.from_pretrained(args.model).eval()
    processor = AutoImageProcessor.from_pretrained(args.model)
    if args.image_size:
        processor = square_resize_processor(processor, args.image_size)
    predictor = Predictor(model, processor, checks={})
    start = time.perf_counter()
    sets = {name: features(predictor, getattr(splits, name))
            for name in ("train", "validation", "clean_test", "official_test", "held_out")}
    print(f"features of {sum(len(x) for x, _ in sets.values())} images in {time.perf_counter() - start:.0f} s")

    (x_train, train), (x_val, val) = sets["train"], sets["validation"]
    # The training collections named here are finely labelled (a coarse collection would need the
    # partial-label loss, which a plain logistic regression does not have).
    if max(train["label"]) >= 4:
        raise SystemExit("--trained_on includes coarsely labelled slices; probe finely labelled collections only")
    heads = {}
    for strength in STRENGTHS:
        head = make_pipeline(StandardScaler(), LogisticRegression(C=strength, max_iter=3000))
        head.fit(x_train, train["label"])
        heads[strength] = (selection_score(evaluate(head.predict_log_proba(x_val), np.asarray(val["label"]))), head)
    strength = max(heads, key=lambda c: heads[c][0])
    head = heads[strength][1]
    report = {"model": args.model, "image_size": args.image_size, "trained_on": args.trained_on,
              "held_out": args.held_out, "C": strength,
              "validation_balanced_score": {str(c): round(s, 4) for c, (s, _) in heads.items()}}
    for name in ("clean_test", "official_test", "held_out"):
        x, columns = sets[name]
        report[name] = evaluate_groups(head.predict_log_proba(x), np.asarray(columns["label"]),
                                       columns["collection"], columns["file_name"])
    lines = [f"Linear probe of `{args.model}` (frozen, {args.image_size or 'processor'} px), head trained on "
             f"{', '.join(args.trained_on)}; held out: {', '.join(args.held_out)}; C = {strength} (by validation "
             "balanced score).", "", "| collection | split | images | accuracy | tumour recall | no-tumour specificity |",
             "|---|---|---|---|---|---|"]
    for split in ("clean_test", "official_test", "held_out"):
        for name, m in report[split].items():
            cells = [m.get(k) for k in ("accuracy", "tumour_recall", "notumor_specificity")]
            lines.append(f"| {name} | {split} | {m['images']} | "
                         + " | ".join("" if c is None else f"{c:.3f}" for c in cells) + " |")
    text = "\n".join(lines) + f"\n\nCommand: `python bench/linear_probe.py {' '.join(argv or sys.argv[1:])}`\n"
    print(text)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / f"{args.output_name}.md").write_text(text)
    (RESULTS_DIR / f"{args.output_name}.json").write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
